//! Bad input: each refused with the right status and a readable message, and the store unchanged.
use crate::common;

use common::*;
use gongwen::pb;
use gongwen::signing::Signer;
use prost::Message;
use sha2::Digest;
use tonic::Code;

async fn setup() -> (Harness, pb::Document) {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "doc-1", draft("鲁财采", "山东省财政厅关于测试的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    (h, doc)
}

fn ack_statement(unit: &str, doc: &str) -> pb::Acknowledge {
    pb::Acknowledge {
        request_id: "a-1".into(),
        unit_id: unit.into(),
        document_id: doc.into(),
        registration_number: String::new(),
    }
}

#[tokio::test]
async fn signatures_keys_and_envelopes() {
    let (h, doc) = setup().await;
    let good = h.sign(ZIBO, &ack_statement(ZIBO, &doc.id));

    let mut bad_sig = good.clone();
    bad_sig.signature[0] ^= 1;
    refused(&h, Code::Unauthenticated, h.deliveries().acknowledge(bad_sig)).await;

    let mut bad_payload = good.clone();
    let last = bad_payload.payload.len() - 1;
    bad_payload.payload[last] ^= 1;
    refused(&h, Code::Unauthenticated, h.deliveries().acknowledge(bad_payload)).await;

    let stranger = Signer::from_secret("stranger#1", [9u8; 32]);
    refused(&h, Code::Unauthenticated, h.deliveries().acknowledge(stranger.envelope(&ack_statement(ZIBO, &doc.id))))
        .await;

    let mut wrong_type = good.clone();
    wrong_type.payload_type = "gongwen.v1.Complete".into();
    refused(&h, Code::InvalidArgument, h.deliveries().acknowledge(wrong_type)).await;
    // A correctly signed statement of another type sent to the wrong RPC.
    let complete =
        pb::Complete { request_id: "c".into(), unit_id: ZIBO.into(), document_id: doc.id.clone(), note: String::new() };
    refused(&h, Code::InvalidArgument, h.deliveries().acknowledge(h.sign(ZIBO, &complete))).await;

    let mut garbage = good.clone();
    garbage.payload = vec![0xff, 0xff, 0xff];
    refused(&h, Code::InvalidArgument, h.deliveries().acknowledge(garbage)).await;

    // Zibo's valid key, but the statement claims to be Boshan: a unit acting for another.
    let s =
        refused(&h, Code::PermissionDenied, h.deliveries().acknowledge(h.sign(ZIBO, &ack_statement(BOSHAN, &doc.id))))
            .await;
    assert!(s.message().contains("may not act for"), "{}", s.message());

    // Registry changes need the operator's key.
    let change = pb::RegistryChange { request_id: "r".into(), ..Default::default() };
    refused(&h, Code::Unauthenticated, h.registry().apply_registry_change(h.sign(PROVINCE, &change))).await;

    // The good envelope still works afterwards.
    h.deliveries().acknowledge(good).await.expect("the untouched envelope is accepted");
}

#[tokio::test]
async fn forwarding_needs_a_received_document_not_returned() {
    let (h, doc) = setup().await;
    let s = refused(
        &h,
        Code::FailedPrecondition,
        h.forward(BOSHAN, "f", &doc.id, forward_draft("博财采", vec![group("区直各部门、单位")])),
    )
    .await;
    assert!(s.message().contains("has not received"), "{}", s.message());
    // Received but not yet acknowledged.
    refused(
        &h,
        Code::FailedPrecondition,
        h.forward(ZIBO, "f", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])),
    )
    .await;
    let ret = pb::ReturnDelivery {
        request_id: "r".into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        reason: "误投".into(),
    };
    h.deliveries().r#return(h.sign(ZIBO, &ret)).await.expect("return");
    refused(
        &h,
        Code::FailedPrecondition,
        h.forward(ZIBO, "f2", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])),
    )
    .await;
    refused(&h, Code::NotFound, h.forward(ZIBO, "f3", "d-nope", forward_draft("淄财采", vec![group("各区县财政局")])))
        .await;
}

#[tokio::test]
async fn jurisdiction_prefixes_and_recipients() {
    let (h, _) = setup().await;
    // A district cannot send up or sideways.
    refused(&h, Code::PermissionDenied, h.issue(BOSHAN, "j1", draft("博财采", "越权", vec![unit(ZIBO)]))).await;
    refused(&h, Code::PermissionDenied, h.issue(BOSHAN, "j2", draft("博财采", "越权", vec![unit("370100.czj")]))).await;
    // Skipping a level needs the skipped unit on cc.
    let s =
        refused(&h, Code::InvalidArgument, h.issue(PROVINCE, "j3", draft("鲁财采", "越级", vec![unit(BOSHAN)]))).await;
    assert!(s.message().contains("越级"), "{}", s.message());
    let mut with_cc = draft("鲁财采", "抄送市局", vec![unit(BOSHAN)]);
    with_cc.cc_recipients = vec![unit(ZIBO)];
    let ok = h.issue(PROVINCE, "j4", with_cc).await.expect("with the skipped bureau on cc");
    assert_eq!(ok.cc_unit_ids, vec![ZIBO.to_string()]);
    // Someone else's prefix.
    refused(&h, Code::PermissionDenied, h.issue(ZIBO, "p1", draft("鲁财采", "借用文号", vec![group("各区县财政局")])))
        .await;
    // Unknown recipients.
    refused(&h, Code::NotFound, h.issue(PROVINCE, "u1", draft("鲁财采", "x", vec![group("各县财政局")]))).await;
    refused(&h, Code::NotFound, h.issue(PROVINCE, "u2", draft("鲁财采", "x", vec![unit("379999.nobody")]))).await;
    refused(&h, Code::InvalidArgument, h.issue(PROVINCE, "u3", draft("鲁财采", "x", vec![unit("Not A Unit")]))).await;
    refused(&h, Code::InvalidArgument, h.issue(PROVINCE, "u4", draft("鲁财采", "x", vec![]))).await;
}

#[tokio::test]
async fn a_refused_forward_stores_no_attachment_file() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    // Sign the issue statement here, so the test knows the bytes a forward attaches as 附件 1.
    let issue = pb::IssueDocument {
        request_id: "doc-1".into(),
        unit_id: PROVINCE.into(),
        draft: Some(draft("鲁财采", "山东省财政厅关于附件的通知", vec![group("各市财政局")])),
    };
    let envelope = h.sign(PROVINCE, &issue);
    let record_sha = hex::encode(sha2::Sha256::digest(envelope.encode_to_vec()));
    let doc = h.documents().issue_document(envelope).await.expect("issue").into_inner();
    h.ack(ZIBO, &doc.id).await.expect("ack");
    assert!(!attachment_stored(&h, &record_sha).await, "issuing alone stores no copy of its record");

    // Received and acknowledged, so the state allows forwarding; each of these fails later on.
    refused(
        &h,
        Code::PermissionDenied,
        h.forward(ZIBO, "f1", &doc.id, forward_draft("鲁财采", vec![group("各区县财政局")])),
    )
    .await;
    refused(
        &h,
        Code::PermissionDenied,
        h.forward(ZIBO, "f2", &doc.id, forward_draft("淄财采", vec![unit("370100.czj")])),
    )
    .await;
    refused(&h, Code::NotFound, h.forward(ZIBO, "f3", &doc.id, forward_draft("淄财采", vec![group("各县财政局")])))
        .await;
    assert!(!attachment_stored(&h, &record_sha).await, "a refused forward left the source's record as a file");

    // The same forward done right attaches exactly that record, so the check above looked for the right file.
    let fwd =
        h.forward(ZIBO, "f4", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    assert_eq!(fwd.attachments.first().map(|a| a.sha256.as_str()), Some(record_sha.as_str()));
    assert!(attachment_stored(&h, &record_sha).await);
}

/// One way to spoil a draft.
type Change = Box<dyn Fn(&mut pb::DocumentDraft)>;

#[tokio::test]
async fn document_fields_are_checked() {
    let (h, _) = setup().await;
    let base = || draft("鲁财采", "山东省财政厅关于字段的通知", vec![group("各市财政局")]);
    let cases: Vec<(&str, Change)> = vec![
        ("no date", Box::new(|d| d.dated.clear())),
        ("bad date", Box::new(|d| d.dated = "2022-13-01".into())),
        ("no title", Box::new(|d| d.title.clear())),
        ("no genre", Box::new(|d| d.genre = 0)),
        ("unknown genre", Box::new(|d| d.genre = 99)),
        ("no disclosure", Box::new(|d| d.disclosure = 0)),
        ("bad prefix", Box::new(|d| d.number_prefix = "LCC".into())),
        ("bad year", Box::new(|d| d.number_year = 22)),
        ("classified without term", Box::new(|d| d.classification = pb::Classification::Secret as i32)),
        (
            "malformed sha",
            Box::new(|d| {
                d.attachments =
                    vec![pb::AttachmentRef { sha256: "xyz".into(), title: "t".into(), media_type: String::new() }]
            }),
        ),
        (
            "deadline for a non-recipient",
            Box::new(|d| {
                d.recipient_deadlines =
                    vec![pb::RecipientDeadline { recipient: Some(unit(BOSHAN)), due: "2022-11-30".into() }]
            }),
        ),
    ];
    for (name, change) in cases {
        let mut d = base();
        change(&mut d);
        let s = refused(&h, Code::InvalidArgument, h.issue(PROVINCE, &format!("bad-{name}"), d)).await;
        println!("{name}: {}", s.message());
    }
    let mut secret = base();
    secret.classification = pb::Classification::Confidential as i32;
    secret.classification_term = "10年".into();
    refused(&h, Code::PermissionDenied, h.issue(PROVINCE, "confidential", secret)).await;
    let mut unknown_attachment = base();
    unknown_attachment.attachments =
        vec![pb::AttachmentRef { sha256: "ab".repeat(32), title: "附件".into(), media_type: String::new() }];
    // A file never uploaded is refused like someone else's file, so a refusal says nothing of what is stored.
    refused(&h, Code::PermissionDenied, h.issue(PROVINCE, "unknown-attachment", unknown_attachment)).await;
    refused(&h, Code::InvalidArgument, h.issue(PROVINCE, "", base())).await;
    refused(&h, Code::InvalidArgument, h.issue(PROVINCE, "bad id with spaces", base())).await;
    // The same request id with a different statement.
    h.issue(PROVINCE, "once", base()).await.expect("first");
    let mut other = base();
    other.title = "山东省财政厅关于另一件事的通知".into();
    refused(&h, Code::AlreadyExists, h.issue(PROVINCE, "once", other)).await;
}

#[tokio::test]
async fn unknown_ids_and_malformed_numbers() {
    let (h, doc) = setup().await;
    let by = |k: pb::get_document_request::Key| pb::GetDocumentRequest { key: Some(k) };
    for bad in ["鲁财采2022〕14号", "鲁财采〔22〕14号", "鲁财采〔2022〕0号", "2022〕14号"] {
        refused(
            &h,
            Code::InvalidArgument,
            h.documents().get_document(by(pb::get_document_request::Key::Number(bad.into()))),
        )
        .await;
    }
    refused(
        &h,
        Code::NotFound,
        h.documents().get_document(by(pb::get_document_request::Key::Number("鲁财采〔2022〕999号".into()))),
    )
    .await;
    refused(&h, Code::NotFound, h.documents().get_document(by(pb::get_document_request::Key::Id("d-missing".into()))))
        .await;
    refused(&h, Code::InvalidArgument, h.documents().get_document(pb::GetDocumentRequest { key: None })).await;
    refused(&h, Code::NotFound, h.deliveries().acknowledge(h.sign(ZIBO, &ack_statement(ZIBO, "d-missing")))).await;
    refused(&h, Code::NotFound, h.tracer().trace(pb::TraceRequest { document_id: "d-missing".into(), max_depth: 0 }))
        .await;
    refused(&h, Code::NotFound, h.registry().get_unit(pb::GetUnitRequest { id: "nobody".into() })).await;
    refused(&h, Code::NotFound, h.registry().get_region(pb::GetRegionRequest { code: "999999".into() })).await;
    refused(
        &h,
        Code::NotFound,
        h.deliveries()
            .get_delivery(pb::GetDeliveryRequest { document_id: doc.id.clone(), recipient_unit_id: BOSHAN.into() }),
    )
    .await;
    // Boshan was not sent the province's document.
    refused(&h, Code::NotFound, h.deliveries().acknowledge(h.sign(BOSHAN, &ack_statement(BOSHAN, &doc.id)))).await;
}

#[tokio::test]
async fn registry_changes_are_atomic_and_checked() {
    let (h, _) = setup().await;
    let region = |code: &str, parent: &str| pb::Region {
        code: code.into(),
        name: format!("区域{code}"),
        parent_code: parent.into(),
        level: pb::Level::County as i32,
    };
    let new_unit = |id: &str, key: &Signer| pb::Unit {
        id: id.into(),
        full_name: format!("单位{id}"),
        region_code: "370399".into(),
        level: pb::Level::County as i32,
        kind: pb::UnitKind::Department as i32,
        seal_keys: vec![key.seal_key()],
        ..Default::default()
    };
    let k1 = Signer::from_secret("new#1", [1u8; 32]);
    // Everything valid but the last unit, whose key id is already taken: nothing at all is stored.
    let change = pb::RegistryChange {
        request_id: "atomic".into(),
        regions: vec![region("370399", "370300")],
        units: vec![
            new_unit("370399.a", &k1),
            new_unit("370399.b", &Signer::from_secret(format!("{ZIBO}#k1"), [2u8; 32])),
        ],
        ..Default::default()
    };
    refused(&h, Code::AlreadyExists, h.apply(change)).await;
    refused(&h, Code::NotFound, h.registry().get_region(pb::GetRegionRequest { code: "370399".into() })).await;
    refused(&h, Code::NotFound, h.registry().get_unit(pb::GetUnitRequest { id: "370399.a".into() })).await;

    let orphan = pb::RegistryChange {
        request_id: "orphan".into(),
        regions: vec![region("370398", "379900")],
        ..Default::default()
    };
    refused(&h, Code::NotFound, h.apply(orphan)).await;
    let mut bad = new_unit("Bad Id", &k1);
    bad.region_code = "370300".into();
    refused(
        &h,
        Code::InvalidArgument,
        h.apply(pb::RegistryChange { request_id: "bad".into(), units: vec![bad], ..Default::default() }),
    )
    .await;
    let mut no_region = new_unit("370397.x", &k1);
    no_region.region_code = "370397".into();
    refused(
        &h,
        Code::NotFound,
        h.apply(pb::RegistryChange { request_id: "nr".into(), units: vec![no_region], ..Default::default() }),
    )
    .await;
    let mut short_key = new_unit("370300.y", &k1);
    short_key.region_code = "370300".into();
    short_key.seal_keys[0].public_key.truncate(31);
    refused(
        &h,
        Code::InvalidArgument,
        h.apply(pb::RegistryChange { request_id: "sk".into(), units: vec![short_key], ..Default::default() }),
    )
    .await;
    let mut taken_prefix = new_unit("370300.z", &k1);
    taken_prefix.region_code = "370300".into();
    taken_prefix.number_prefixes = vec!["淄财采".into()];
    refused(
        &h,
        Code::AlreadyExists,
        h.apply(pb::RegistryChange { request_id: "tp".into(), units: vec![taken_prefix], ..Default::default() }),
    )
    .await;
}
