//! Keys over time: rotation, revocation, and a compromise revoked back to its date, through the real server, the
//! trace and the offline verifier.
use crate::common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use gongwen::app::ManualClock;
use gongwen::pb;
use gongwen::signing::Signer;
use gongwen::verify::{Trust, verify_bundle};
use tonic::Code;

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 }
}

fn key_change(rid: &str, changes: Vec<pb::KeyChange>) -> pb::RegistryChange {
    pb::RegistryChange { request_id: rid.into(), key_changes: changes, ..Default::default() }
}

fn revoke(unit: &str, key_id: &str, at: Option<DateTime<Utc>>) -> pb::KeyChange {
    pb::KeyChange {
        unit_id: unit.into(),
        change: Some(pb::key_change::Change::Revoke(pb::KeyRevocation {
            key_id: key_id.into(),
            revoked_at: at.map(ts),
            reason: "测试".into(),
        })),
    }
}

async fn full_bundle(h: &Harness) -> pb::AuditBundle {
    let scope = pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 });
    h.audit()
        .export_bundle(pb::ExportRequest { scope: Some(scope), previous_size: 0 })
        .await
        .expect("export")
        .into_inner()
}

#[tokio::test]
async fn rotation_retires_the_old_key_and_keeps_old_records_valid() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于轮换的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("signed with the first key");
    let old = h.signer(ZIBO).clone();
    let new = Signer::from_secret(format!("{ZIBO}#k2"), [77u8; 32]);
    let add = pb::KeyChange { unit_id: ZIBO.into(), change: Some(pb::key_change::Change::Add(new.seal_key())) };
    let reply = h.apply(key_change("rotate", vec![add, revoke(ZIBO, &old.key_id, None)])).await.expect("rotate");
    assert_eq!(reply.keys_changed, 2);

    let handle = |rid: &str| pb::StartHandling {
        request_id: rid.into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        lead_office: String::new(),
        note: String::new(),
    };
    let s = refused(&h, Code::Unauthenticated, h.deliveries().start_handling(old.envelope(&handle("h-old")))).await;
    assert!(s.message().contains("revoked"), "{}", s.message());
    h.keys.insert(ZIBO.into(), new.clone());
    h.deliveries().start_handling(new.envelope(&handle("h-new"))).await.expect("the new key signs");

    // Nobody else may take the key id, and a revocation cannot be moved later.
    let clash = pb::KeyChange { unit_id: BOSHAN.into(), change: Some(pb::key_change::Change::Add(new.seal_key())) };
    refused(&h, Code::AlreadyExists, h.apply(key_change("clash", vec![clash]))).await;
    refused(
        &h,
        Code::FailedPrecondition,
        h.apply(key_change("later", vec![revoke(ZIBO, &old.key_id, Some(Utc::now() + chrono::Duration::days(1)))])),
    )
    .await;
    refused(&h, Code::NotFound, h.apply(key_change("nokey", vec![revoke(ZIBO, "no-such-key", None)]))).await;

    // The acknowledgment signed before the rotation still verifies; so does everything else.
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    let trust = Trust {
        log_public_key: Some(info.log_public_key),
        operator_public_key: Some(info.operator_public_key),
        previous_checkpoint: None,
    };
    let report = verify_bundle(&full_bundle(&h).await, &trust);
    assert!(report.ok(), "{:?}", report.failures);
}

#[tokio::test]
async fn a_compromise_revoked_back_to_its_date_flags_what_the_key_signed_after() {
    let t = |d: u32, hr: u32| Utc.with_ymd_and_hms(2022, 12, d, hr, 0, 0).single().expect("time");
    let clock = Arc::new(ManualClock::new(t(20, 1)));
    let mut h = Harness::start_with_clock(clock.clone()).await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于泄露的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    clock.set(t(21, 1));
    h.ack(ZIBO, &doc.id).await.expect("before the compromise");
    let city =
        h.forward(ZIBO, "z", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    let zibo_notice = h
        .issue(ZIBO, "zn", draft("淄财采", "淄博市财政局关于报送材料的通知", vec![group("各区县财政局")]))
        .await
        .expect("issue");
    clock.set(t(21, 12));
    let before = h.ack(BOSHAN, &zibo_notice.id).await.expect("signed before the key was stolen");
    let before_seq = before.history.last().map(|s| s.event_seq).expect("ack step");
    clock.set(t(23, 1));
    h.ack(BOSHAN, &city.id).await.expect("signed with the key that later turns out stolen");
    // Discovered on the 25th: Boshan's key was stolen on the 22nd.
    clock.set(t(25, 1));
    let boshan_key = h.signer(BOSHAN).key_id.clone();
    h.apply(key_change("compromise", vec![revoke(BOSHAN, &boshan_key, Some(t(22, 1)))])).await.expect("revoke");

    let tree = h
        .tracer()
        .trace(pb::TraceRequest { document_id: doc.id.clone(), max_depth: 0 })
        .await
        .expect("trace")
        .into_inner();
    let zibo = tree.nodes.iter().find(|n| n.unit_id == ZIBO).expect("zibo");
    assert!(zibo.flags.is_empty(), "Zibo's key is sound: {:?}", zibo.flags);
    let boshan = zibo.children.iter().find(|n| n.unit_id == BOSHAN).expect("boshan");
    assert_eq!(boshan.flags.len(), 1, "{:?}", boshan.flags);
    assert!(boshan.flags[0].contains(&boshan_key));
    let d = h.delivery(&city.id, BOSHAN).await;
    let ack = d.history.iter().find(|s| s.kind == pb::EventKind::Acknowledged as i32).expect("ack step");
    assert_eq!(ack.key_id, boshan_key);
    assert!(!ack.flag.is_empty());
    // What the same key signed before the compromise date stands: no flag in the trace or the delivery.
    let earlier = h
        .tracer()
        .trace(pb::TraceRequest { document_id: zibo_notice.id.clone(), max_depth: 0 })
        .await
        .expect("trace")
        .into_inner();
    let node = earlier.nodes.iter().find(|n| n.unit_id == BOSHAN).expect("boshan");
    assert!(node.flags.is_empty(), "signed before the 22nd: {:?}", node.flags);
    let d = h.delivery(&zibo_notice.id, BOSHAN).await;
    let ack = d.history.iter().find(|s| s.kind == pb::EventKind::Acknowledged as i32).expect("ack step");
    assert_eq!((ack.key_id.as_str(), ack.flag.as_str()), (boshan_key.as_str(), ""));

    let report = verify_bundle(&full_bundle(&h).await, &Trust::default());
    let failures: Vec<(Option<u64>, &str)> = report.failures.iter().map(|f| (f.event_seq, f.check)).collect();
    assert_eq!(failures.len(), 1, "{:?}", report.failures);
    assert_ne!(failures[0].0, Some(before_seq), "the record signed before the compromise verifies cleanly");
    assert_eq!(failures[0].1, "signature");
    assert!(report.failures[0].detail.contains("revoked"));
    // The compromised key signs nothing now.
    let m = pb::StartHandling {
        request_id: "h".into(),
        unit_id: BOSHAN.into(),
        document_id: city.id.clone(),
        lead_office: String::new(),
        note: String::new(),
    };
    refused(&h, Code::Unauthenticated, h.deliveries().start_handling(h.sign(BOSHAN, &m))).await;
}

#[tokio::test]
async fn an_sm2_seal_signs_statements_and_tokens_and_the_verifier_accepts_it() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于国密印章的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    // Zibo moves to an SM2 seal: added, the Ed25519 one revoked.
    let old = h.signer(ZIBO).clone();
    let sm2 = Signer::generate_with(format!("{ZIBO}#sm2"), gongwen::domain::model::KeyAlgorithm::Sm2).expect("key");
    assert_eq!(sm2.seal_key().algorithm, "sm2");
    let add = pb::KeyChange { unit_id: ZIBO.into(), change: Some(pb::key_change::Change::Add(sm2.seal_key())) };
    h.apply(key_change("to-sm2", vec![add, revoke(ZIBO, &old.key_id, None)])).await.expect("rotate");
    h.keys.insert(ZIBO.into(), sm2.clone());

    // Request tokens and statements are both SM2 from here on.
    h.ack(ZIBO, &doc.id).await.expect("an SM2-signed acknowledgment");
    let city = h
        .forward(ZIBO, "z", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")]))
        .await
        .expect("an SM2-signed forward");
    assert_eq!(h.delivery(&doc.id, ZIBO).await.state, pb::DeliveryState::Forwarded as i32);

    // A flipped bit in an SM2 signature is refused and changes nothing.
    let before = h.digest().await;
    let m = pb::Acknowledge {
        request_id: "bad-sm2".into(),
        unit_id: ZIBO.into(),
        document_id: city.id.clone(),
        registration_number: String::new(),
    };
    let mut env = sm2.envelope(&m);
    env.signature[10] ^= 1;
    let s = refused(&h, Code::Unauthenticated, h.deliveries().acknowledge(env)).await;
    assert!(s.message().contains("does not verify"), "{}", s.message());
    assert_eq!(h.digest().await, before);

    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    let trust = Trust {
        log_public_key: Some(info.log_public_key),
        operator_public_key: Some(info.operator_public_key),
        previous_checkpoint: None,
    };
    let report = verify_bundle(&full_bundle(&h).await, &trust);
    assert!(report.ok(), "{:?}", report.failures);
}

// ---- Key changes signed by the unit's parent unit (ChangeUnitKeys) ----

const SIBLING: &str = "370302.czj"; // 淄博市淄川区财政局, Boshan's sibling
const TOWNSHIP: &str = "370304001.czs"; // 博山区城西街道财政所, Boshan's child
const OTHER_CITY: &str = "370700.czj"; // 潍坊市财政局

fn unit_keys(
    signer: Option<&str>,
    rid: &str,
    unit: &str,
    add: Vec<pb::SealKey>,
    revoke: Vec<pb::KeyRevocation>,
) -> pb::ChangeUnitKeys {
    pb::ChangeUnitKeys {
        request_id: rid.into(),
        signer_unit_id: signer.unwrap_or_default().into(),
        unit_id: unit.into(),
        add_keys: add,
        revoke,
    }
}

fn revocation(key_id: &str, at: Option<DateTime<Utc>>) -> pb::KeyRevocation {
    pb::KeyRevocation { key_id: key_id.into(), revoked_at: at.map(ts), reason: "到期轮换".into() }
}

/// Signs a key change as `signer` (a unit with a key in the harness, or the operator for `None`) and sends it.
async fn change_keys(h: &Harness, m: &pb::ChangeUnitKeys) -> Result<pb::RegistryChangeReply, tonic::Status> {
    let env = if m.signer_unit_id.is_empty() { h.operator.envelope(m) } else { h.sign(&m.signer_unit_id, m) };
    h.registry().change_unit_keys(env).await.map(|r| r.into_inner())
}

async fn seal_keys(h: &Harness, unit: &str) -> Vec<pb::SealKey> {
    h.registry().get_unit(pb::GetUnitRequest { id: unit.into() }).await.expect("unit").into_inner().seal_keys
}

async fn trusted(h: &Harness) -> Trust {
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    Trust {
        log_public_key: Some(info.log_public_key),
        operator_public_key: Some(info.operator_public_key),
        previous_checkpoint: None,
    }
}

fn handle(rid: &str, unit: &str, doc: &str) -> pb::StartHandling {
    pb::StartHandling {
        request_id: rid.into(),
        unit_id: unit.into(),
        document_id: doc.into(),
        lead_office: String::new(),
        note: String::new(),
    }
}

#[tokio::test]
async fn a_parent_rotates_its_childs_key_and_the_verifier_accepts_the_bundle() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于上级换章的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("zibo acknowledges");
    let city =
        h.forward(ZIBO, "z", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    h.ack(BOSHAN, &city.id).await.expect("signed with Boshan's first key");

    // 淄博市财政局 rotates 博山区财政局's seal: the new key in, the old one out, in one signed statement.
    let old = h.signer(BOSHAN).clone();
    let new = Signer::from_secret(format!("{BOSHAN}#k2"), [91u8; 32]);
    let m = unit_keys(Some(ZIBO), "rotate-boshan", BOSHAN, vec![new.seal_key()], vec![revocation(&old.key_id, None)]);
    let reply = change_keys(&h, &m).await.expect("the parent unit may rotate");
    assert_eq!(reply.keys_changed, 2);
    assert!(reply.event_seq > 0);
    let keys = seal_keys(&h, BOSHAN).await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.key_id == old.key_id && k.revoked_at.is_some()));
    assert!(keys.iter().any(|k| k.key_id == new.key_id && k.revoked_at.is_none()));

    // A retry answers the same and records nothing; the same id for something else is refused.
    let before = h.digest().await;
    let again = change_keys(&h, &m).await.expect("an identical retry");
    assert_eq!(again.event_seq, reply.event_seq);
    assert_eq!(h.digest().await, before);
    let other = unit_keys(Some(ZIBO), "rotate-boshan", BOSHAN, vec![], vec![revocation(&new.key_id, None)]);
    refused(&h, Code::AlreadyExists, change_keys(&h, &other)).await;

    // The old key signs nothing now; the new one does.
    let s = refused(
        &h,
        Code::Unauthenticated,
        h.deliveries().start_handling(old.envelope(&handle("h-old", BOSHAN, &city.id))),
    )
    .await;
    assert!(s.message().contains("revoked"), "{}", s.message());
    h.keys.insert(BOSHAN.into(), new.clone());
    h.deliveries().start_handling(new.envelope(&handle("h-new", BOSHAN, &city.id))).await.expect("the new key signs");
    // The acknowledgment signed with the old key before the rotation is not flagged.
    let d = h.delivery(&city.id, BOSHAN).await;
    let ack = d.history.iter().find(|s| s.kind == pb::EventKind::Acknowledged as i32).expect("ack step");
    assert_eq!((ack.key_id.as_str(), ack.flag.as_str()), (old.key_id.as_str(), ""));

    // The whole log verifies, and so does the document's bundle, which carries the key change it needs.
    let trust = trusted(&h).await;
    let report = verify_bundle(&full_bundle(&h).await, &trust);
    assert!(report.ok(), "{:?}", report.failures);
    let scope = pb::export_request::Scope::DocumentId(doc.id.clone());
    let bundle = h
        .audit()
        .export_bundle(pb::ExportRequest { scope: Some(scope), previous_size: 0 })
        .await
        .expect("export")
        .into_inner();
    assert!(bundle.entries.iter().any(|e| e.event_seq == reply.event_seq), "the key change is not in the bundle");
    let report = verify_bundle(&bundle, &trust);
    assert!(report.ok(), "{:?}", report.failures);
}

#[tokio::test]
async fn only_the_parent_unit_or_the_operator_may_change_a_units_keys() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let fresh = |n: u8| Signer::from_secret(format!("new#{n}"), [n; 32]).seal_key();
    let boshan_key = h.signer(BOSHAN).key_id.clone();
    let zibo_key = h.signer(ZIBO).key_id.clone();
    let cases: Vec<(&str, &str, &str)> = vec![
        (SIBLING, BOSHAN, "a sibling"),
        (BOSHAN, BOSHAN, "the unit itself"),
        (PROVINCE, BOSHAN, "the grandparent, skipping Zibo"),
        (OTHER_CITY, BOSHAN, "an unrelated unit"),
        (BOSHAN, ZIBO, "a child, for its parent"),
        (TOWNSHIP, ZIBO, "a grandchild"),
        (TOWNSHIP, BOSHAN, "a child, for its parent"),
    ];
    for (i, (signer, unit, who)) in cases.into_iter().enumerate() {
        let old = if unit == BOSHAN { &boshan_key } else { &zibo_key };
        let m =
            unit_keys(Some(signer), &format!("deny-{i}"), unit, vec![fresh(i as u8 + 1)], vec![revocation(old, None)]);
        let s = refused(&h, Code::PermissionDenied, change_keys(&h, &m)).await;
        assert!(s.message().contains("may"), "{who}: {}", s.message());
    }
    // Claiming to be the parent while signing with the child's key is no better.
    let m = unit_keys(Some(ZIBO), "impostor", BOSHAN, vec![fresh(50)], vec![]);
    refused(&h, Code::PermissionDenied, h.registry().change_unit_keys(h.sign(BOSHAN, &m))).await;
    // The operator's key must sign what claims to be the operator's.
    let m = unit_keys(None, "not-operator", BOSHAN, vec![fresh(51)], vec![]);
    refused(&h, Code::Unauthenticated, h.registry().change_unit_keys(h.sign(ZIBO, &m))).await;
    // A city department has no single parent (every provincial department qualifies): only the operator.
    let m = unit_keys(Some("370000.jyt"), "dept", "370300.jyj", vec![fresh(52)], vec![]);
    let s = refused(&h, Code::PermissionDenied, change_keys(&h, &m)).await;
    assert!(s.message().contains("only the operator"), "{}", s.message());
    assert_eq!(seal_keys(&h, BOSHAN).await.len(), 1);
    assert_eq!(seal_keys(&h, ZIBO).await.len(), 1);

    // The right parents may: the province for a city, a district for a township office and a zone bureau.
    change_keys(&h, &unit_keys(Some(PROVINCE), "ok-zibo", ZIBO, vec![fresh(60)], vec![])).await.expect("province");
    change_keys(&h, &unit_keys(Some(BOSHAN), "ok-twp", TOWNSHIP, vec![fresh(61)], vec![])).await.expect("district");
    change_keys(&h, &unit_keys(Some(ZIBO), "ok-gxq", "370300.gxq-czj", vec![fresh(62)], vec![])).await.expect("zone");
    change_keys(&h, &unit_keys(None, "ok-dept", "370300.jyj", vec![fresh(63)], vec![])).await.expect("operator");
    assert_eq!(seal_keys(&h, ZIBO).await.len(), 2);
    let report = verify_bundle(&full_bundle(&h).await, &trusted(&h).await);
    assert!(report.ok(), "{:?}", report.failures);
}

#[tokio::test]
async fn bad_key_changes_are_refused_and_change_nothing() {
    let t = |d: u32| Utc.with_ymd_and_hms(2023, 3, d, 9, 0, 0).single().expect("time");
    let clock = Arc::new(ManualClock::new(t(1)));
    let mut h = Harness::start_with_clock(clock.clone()).await;
    h.load_bundled().await;
    let old = h.signer(BOSHAN).key_id.clone();
    let new = Signer::from_secret(format!("{BOSHAN}#k2"), [92u8; 32]).seal_key();
    let by_zibo = |rid: &str, unit: &str, add: Vec<pb::SealKey>, revoke: Vec<pb::KeyRevocation>| {
        unit_keys(Some(ZIBO), rid, unit, add, revoke)
    };
    let s =
        refused(&h, Code::NotFound, change_keys(&h, &by_zibo("b1", "370304.nope", vec![new.clone()], vec![]))).await;
    assert!(s.message().contains("370304.nope"), "{}", s.message());
    let taken = pb::SealKey { key_id: h.signer(ZIBO).key_id.clone(), ..new.clone() };
    refused(&h, Code::AlreadyExists, change_keys(&h, &by_zibo("b2", BOSHAN, vec![taken], vec![]))).await;
    refused(&h, Code::AlreadyExists, change_keys(&h, &by_zibo("b3", BOSHAN, vec![new.clone(), new.clone()], vec![])))
        .await;
    let short = pb::SealKey { public_key: vec![1, 2, 3], ..new.clone() };
    refused(&h, Code::InvalidArgument, change_keys(&h, &by_zibo("b4", BOSHAN, vec![short], vec![]))).await;
    let rsa = pb::SealKey { algorithm: "rsa".into(), ..new.clone() };
    refused(&h, Code::InvalidArgument, change_keys(&h, &by_zibo("b5", BOSHAN, vec![rsa], vec![]))).await;
    refused(&h, Code::InvalidArgument, change_keys(&h, &by_zibo("b6", BOSHAN, vec![], vec![]))).await;
    refused(&h, Code::NotFound, change_keys(&h, &by_zibo("b7", BOSHAN, vec![], vec![revocation("no-such", None)])))
        .await;
    // Revoking a unit's only key would lock it out.
    let s = refused(
        &h,
        Code::FailedPrecondition,
        change_keys(&h, &by_zibo("b8", BOSHAN, vec![], vec![revocation(&old, None)])),
    )
    .await;
    assert!(s.message().contains("no valid seal key"), "{}", s.message());
    refused(&h, Code::InvalidArgument, change_keys(&h, &unit_keys(Some(ZIBO), "", BOSHAN, vec![new.clone()], vec![])))
        .await;
    // A registry change sent to the key RPC, and a signature that does not verify.
    let wrong = h.operator.envelope(&pb::RegistryChange { request_id: "x".into(), ..Default::default() });
    refused(&h, Code::InvalidArgument, h.registry().change_unit_keys(wrong)).await;
    let mut env = h.sign(ZIBO, &by_zibo("b9", BOSHAN, vec![new.clone()], vec![]));
    env.signature[3] ^= 1;
    refused(&h, Code::Unauthenticated, h.registry().change_unit_keys(env)).await;
    assert_eq!(seal_keys(&h, BOSHAN).await.len(), 1);

    // A compromise may be dated in the past; the revocation then only moves earlier, never later.
    let m = by_zibo(
        "ok",
        BOSHAN,
        vec![new.clone()],
        vec![revocation(&old, Some(Utc.with_ymd_and_hms(2023, 2, 20, 0, 0, 0).single().expect("t")))],
    );
    change_keys(&h, &m).await.expect("rotate, revoking back to the compromise");
    clock.set(t(2));
    let later = by_zibo("later", BOSHAN, vec![], vec![revocation(&old, Some(t(1)))]);
    let s = refused(&h, Code::FailedPrecondition, change_keys(&h, &later)).await;
    assert!(s.message().contains("only move earlier"), "{}", s.message());
    let twice = by_zibo(
        "twice",
        BOSHAN,
        vec![],
        vec![revocation(&new.key_id, Some(t(9))), revocation(&new.key_id, Some(t(8)))],
    );
    refused(&h, Code::InvalidArgument, change_keys(&h, &twice)).await;
    // Zibo's own key, once revoked, can no longer change its children's keys.
    let z_new = Signer::from_secret(format!("{ZIBO}#k2"), [93u8; 32]);
    let z_old = h.signer(ZIBO).clone();
    let rotate_zibo =
        unit_keys(Some(PROVINCE), "zibo", ZIBO, vec![z_new.seal_key()], vec![revocation(&z_old.key_id, None)]);
    change_keys(&h, &rotate_zibo).await.expect("the province rotates Zibo");
    let third = Signer::from_secret(format!("{BOSHAN}#k3"), [94u8; 32]).seal_key();
    let stale = z_old.envelope(&by_zibo("stale", BOSHAN, vec![third.clone()], vec![]));
    let s = refused(&h, Code::Unauthenticated, h.registry().change_unit_keys(stale)).await;
    assert!(s.message().contains("revoked"), "{}", s.message());
    h.keys.insert(ZIBO.into(), z_new);
    change_keys(&h, &by_zibo("fresh", BOSHAN, vec![third], vec![])).await.expect("Zibo's new key may");
}

#[tokio::test]
async fn the_verifier_names_a_key_change_altered_to_come_from_a_sibling() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let new = Signer::from_secret(format!("{BOSHAN}#k2"), [95u8; 32]);
    let m = unit_keys(Some(ZIBO), "rot", BOSHAN, vec![new.seal_key()], vec![]);
    let seq = change_keys(&h, &m).await.expect("rotate").event_seq;
    let mut bundle = full_bundle(&h).await;
    // What a dishonest server would have recorded for a change the sibling made.
    let forged = pb::ChangeUnitKeys { signer_unit_id: SIBLING.into(), ..m };
    let pos = bundle.entries.iter().position(|e| e.event_seq == seq).expect("the key change");
    let mut entry = <pb::LogEntry as prost::Message>::decode(bundle.entries[pos].entry.as_slice()).expect("entry");
    entry.actor = SIBLING.into();
    entry.envelope = Some(h.sign(SIBLING, &forged));
    bundle.entries[pos].entry = prost::Message::encode_to_vec(&entry);
    let report = verify_bundle(&bundle, &Trust::default());
    let keys: Vec<&gongwen::verify::Failure> = report.failures.iter().filter(|f| f.check == "keys").collect();
    assert_eq!(keys.len(), 1, "{:?}", report.failures);
    assert_eq!(keys[0].event_seq, Some(seq));
    assert!(keys[0].detail.contains(SIBLING) && keys[0].detail.contains(ZIBO), "{}", keys[0].detail);
    assert!(keys[0].to_string().starts_with(&format!("event #{seq}: keys check failed")), "{}", keys[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gongwen_keys_rotates_a_childs_seal_from_the_command_line() {
    use gongwen::cli::client::Client;
    use gongwen::cli::keystore::Keystore;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let operator = Keystore::new(&keys).generate("operator", None).expect("operator key");
    let mut cfg = gongwen::server::ServerConfig::new(dir.path().join("data"));
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.store.cache_bytes = 16 << 20;
    cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
    let running = gongwen::server::start(cfg).await.expect("server");
    let addr = format!("http://{}", running.addr);
    let client = Client::connect(&addr, &keys, "operator", false).await.expect("client");
    client.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let old = Keystore::new(&keys).load(BOSHAN).expect("Boshan's key").key_id;
    let new_keys = dir.path().join("new-keys");
    let (keys_arg, new_arg) = (keys.to_string_lossy().into_owned(), new_keys.to_string_lossy().into_owned());
    let gongwen = |args: &[&str]| {
        let mut all = vec!["--server", addr.as_str(), "--keys", keys_arg.as_str()];
        all.extend_from_slice(args);
        common::gongwen().args(&all).output().expect("run gongwen")
    };
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let o = gongwen(&["keygen", BOSHAN, "--keys", &new_arg]);
    assert!(o.status.success(), "{}", text(&o));
    let new = Keystore::new(&new_keys).load(BOSHAN).expect("the new key").key_id;

    // A sibling may not; the parent may.
    let o = gongwen(&["keys", "add", "--unit", BOSHAN, "--as", SIBLING, "--from", &new_arg, "--revoke", &old]);
    assert!(!o.status.success());
    assert!(text(&o).contains("PERMISSION_DENIED"), "{}", text(&o));
    let o = gongwen(&["keys", "add", "--unit", BOSHAN, "--as", ZIBO, "--from", &new_arg, "--revoke", &old]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 key change(s)"), "{}", text(&o));
    let o = gongwen(&["keys", "revoke", "--unit", BOSHAN, "--as", ZIBO, "--key-id", &old, "--at", "not a time"]);
    assert!(!o.status.success() && text(&o).contains("RFC 3339"), "{}", text(&o));

    let unit = client.registry().get_unit(pb::GetUnitRequest { id: BOSHAN.into() }).await.expect("unit").into_inner();
    let state: Vec<(String, bool)> =
        unit.seal_keys.iter().map(|k| (k.key_id.clone(), k.revoked_at.is_some())).collect();
    assert_eq!(state, vec![(old, true), (new, false)]);
}
