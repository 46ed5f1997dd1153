//! Keys over time: rotation, revocation, and a compromise revoked back to its date, through the real server, the
//! trace and the offline verifier.
mod common;

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

    let tree = h.tracer().trace(pb::TraceRequest { document_id: doc.id.clone() }).await.expect("trace").into_inner();
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
    let earlier =
        h.tracer().trace(pb::TraceRequest { document_id: zibo_notice.id.clone() }).await.expect("trace").into_inner();
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
