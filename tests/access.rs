//! Who may read what, through the real server: a matrix of (caller × RPC × resource), tokens that must be fresh,
//! for this method and body, never replayed, and public reads without a token.
mod common;

use common::*;
use gongwen::pb;
use gongwen::pb::audit_service_client::AuditServiceClient;
use gongwen::pb::delivery_service_client::DeliveryServiceClient;
use gongwen::pb::document_service_client::DocumentServiceClient;
use gongwen::pb::public_service_client::PublicServiceClient;
use gongwen::pb::registry_service_client::RegistryServiceClient;
use gongwen::pb::supervision_service_client::SupervisionServiceClient;
use gongwen::pb::trace_service_client::TraceServiceClient;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Code;

const AUDITOR: &str = "370300.sjj";
const OUTSIDER: &str = "370000.mzt";
const JINAN: &str = "370100.czj";
const BOSHAN_DEPT: &str = "370304.jtj";

struct World {
    h: Harness,
    province: pb::Document,
    city: pb::Document,
    table: String,
}

async fn world() -> World {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let grant = pb::RegistryChange {
        request_id: "grant".into(),
        auditor_grants: vec![pb::AuditorGrant { unit_id: AUDITOR.into(), region_code: "370300".into() }],
        ..Default::default()
    };
    h.apply(grant).await.expect("grant");
    let table = h.upload("联系点名单".as_bytes()).await.expect("upload").sha256;
    let mut d = draft("鲁财采", "山东省财政厅关于访问控制的通知", vec![group("各市财政局")]);
    d.disclosure = pb::Disclosure::NotPublic as i32;
    d.attachments =
        vec![pb::AttachmentRef { sha256: table.clone(), title: "名单".into(), media_type: String::new() }];
    let province = h.issue(PROVINCE, "p", d).await.expect("issue");
    h.ack(ZIBO, &province.id).await.expect("ack");
    let city = h
        .forward(ZIBO, "z", &province.id, forward_draft("淄财采", vec![group("各区县财政局")]))
        .await
        .expect("forward");
    h.ack(BOSHAN, &city.id).await.expect("ack");
    let fwd = h
        .forward(BOSHAN, "b", &city.id, forward_draft("博财采", vec![group("区直各部门、单位")]))
        .await
        .expect("forward");
    assert!(fwd.main_unit_ids.contains(&BOSHAN_DEPT.to_string()));
    World { h, province, city, table }
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

fn by_id(id: &str) -> pb::GetDocumentRequest {
    pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(id.into())) }
}

async fn get_doc(w: &World, who: &str, id: &str) -> Code {
    code(DocumentServiceClient::new(w.h.channel_as(who)).get_document(by_id(id)).await)
}

#[tokio::test]
async fn the_read_matrix() {
    let w = world().await;
    let (p, c) = (w.province.id.as_str(), w.city.id.as_str());

    // Documents: issuer, recipients (directly or through forwards), auditors of the region; nobody else.
    for (who, doc, want) in [
        (PROVINCE, p, Code::Ok),
        (ZIBO, p, Code::Ok),
        (JINAN, p, Code::Ok),
        (BOSHAN, p, Code::Ok),
        (BOSHAN_DEPT, p, Code::Ok),
        (OUTSIDER, p, Code::PermissionDenied),
        (JINAN, c, Code::PermissionDenied),
        (AUDITOR, c, Code::Ok),
        (AUDITOR, p, Code::Ok),
        (OUTSIDER, "d-does-not-exist", Code::PermissionDenied),
    ] {
        assert_eq!(get_doc(&w, who, doc).await, want, "{who} reading {doc}");
    }
    // The operator sees that a document does not exist; a unit cannot tell.
    assert_eq!(code(w.h.documents().get_document(by_id("d-does-not-exist")).await), Code::NotFound);
    let by_number =
        pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Number("淄财采〔2022〕999号".into())) };
    assert_eq!(
        code(DocumentServiceClient::new(w.h.channel_as(JINAN)).get_document(by_number).await),
        Code::PermissionDenied
    );

    // Traces: issuers up the chain and auditors.
    let trace = |who: &str, doc: &str| {
        let ch = w.h.channel_as(who);
        let doc = doc.to_string();
        async move { code(TraceServiceClient::new(ch).trace(pb::TraceRequest { document_id: doc }).await) }
    };
    for (who, doc, want) in [
        (PROVINCE, p, Code::Ok),
        (ZIBO, p, Code::PermissionDenied),
        (ZIBO, c, Code::Ok),
        (PROVINCE, c, Code::Ok),
        (BOSHAN, c, Code::PermissionDenied),
        (AUDITOR, c, Code::Ok),
        (OUTSIDER, p, Code::PermissionDenied),
    ] {
        assert_eq!(trace(who, doc).await, want, "{who} tracing {doc}");
    }

    // Inboxes and unit views: the unit itself, its auditors, the operator.
    let inbox = |who: &str, unit: &str| {
        let ch = w.h.channel_as(who);
        let req = pb::ListInboxRequest { unit_id: unit.into(), states: vec![], page: None };
        async move { code(DeliveryServiceClient::new(ch).list_inbox(req).await) }
    };
    assert_eq!(inbox(ZIBO, ZIBO).await, Code::Ok);
    assert_eq!(inbox(BOSHAN, ZIBO).await, Code::PermissionDenied);
    assert_eq!(inbox(AUDITOR, ZIBO).await, Code::Ok);
    assert_eq!(inbox(AUDITOR, JINAN).await, Code::PermissionDenied, "Jinan is outside the auditor's grant");
    assert_eq!(
        code(
            w.h.deliveries()
                .list_inbox(pb::ListInboxRequest { unit_id: ZIBO.into(), states: vec![], page: None })
                .await
        ),
        Code::Ok
    );
    let view = |who: &str, unit: &str| {
        let ch = w.h.channel_as(who);
        let req = pb::UnitViewRequest { unit_id: unit.into() };
        async move { code(SupervisionServiceClient::new(ch).unit_view(req).await) }
    };
    assert_eq!(view(BOSHAN, BOSHAN).await, Code::Ok);
    assert_eq!(view(ZIBO, BOSHAN).await, Code::PermissionDenied);

    // Region-wide supervision and the whole log: auditors and the operator only.
    let overdue = |who: &str| {
        let ch = w.h.channel_as(who);
        let req = pb::OverdueRequest { scope: Some(pb::overdue_request::Scope::RegionCode("370300".into())), order: 0 };
        async move { code(SupervisionServiceClient::new(ch).list_overdue(req).await) }
    };
    assert_eq!(overdue(AUDITOR).await, Code::Ok);
    assert_eq!(overdue(ZIBO).await, Code::PermissionDenied);
    let stream = |who: &str| {
        let ch = w.h.channel_as(who);
        async move { code(AuditServiceClient::new(ch).stream_log(pb::StreamLogRequest { from_seq: 1, limit: 1 }).await) }
    };
    assert_eq!(stream(AUDITOR).await, Code::Ok);
    assert_eq!(stream(ZIBO).await, Code::PermissionDenied);

    // Proofs for events of documents one may read.
    let seq = w.province.event_seq;
    let proof = |who: &str| {
        let ch = w.h.channel_as(who);
        async move {
            code(
                AuditServiceClient::new(ch)
                    .get_inclusion_proof(pb::InclusionProofRequest { event_seq: seq, tree_size: 0 })
                    .await,
            )
        }
    };
    assert_eq!(proof(ZIBO).await, Code::Ok);
    assert_eq!(proof(OUTSIDER).await, Code::PermissionDenied);

    // Attachments follow their documents.
    let download = |who: &str| {
        let ch = w.h.channel_as(who);
        let sha = w.table.clone();
        async move { code(DocumentServiceClient::new(ch).download_attachment(pb::DownloadRequest { sha256: sha }).await) }
    };
    assert_eq!(download(ZIBO).await, Code::Ok);
    assert_eq!(download(OUTSIDER).await, Code::PermissionDenied);

    // The registry is open to every authenticated caller.
    assert_eq!(
        code(RegistryServiceClient::new(w.h.channel_as(OUTSIDER)).list_groups(pb::ListGroupsRequest {}).await),
        Code::Ok
    );
}

#[tokio::test]
async fn no_token_means_unauthenticated_except_public_reads() {
    let w = world().await;
    let raw = w.h.raw_channel();
    let s =
        RegistryServiceClient::new(raw.clone()).list_units(pb::ListUnitsRequest::default()).await.expect_err("refused");
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("token"));
    assert_eq!(
        code(DocumentServiceClient::new(raw.clone()).get_document(by_id(&w.province.id)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(RegistryServiceClient::new(raw.clone()).get_server_info(pb::GetServerInfoRequest {}).await),
        Code::Ok
    );

    // 主动公开 documents need no token; others look exactly like documents that do not exist.
    let mut public = PublicServiceClient::new(raw.clone());
    assert_eq!(code(public.get_public_document(by_id(&w.city.id)).await), Code::NotFound, "inherits 不予公开");
    assert_eq!(code(public.get_public_document(by_id("d-nothing")).await), Code::NotFound);
    let open =
        w.h.issue(PROVINCE, "open", draft("鲁财采", "山东省财政厅关于公开事项的通知", vec![group("各市财政局")]))
            .await
            .expect("issue");
    let got = public.get_public_document(by_id(&open.id)).await.expect("public").into_inner();
    assert_eq!(got.number, open.number);
    let req = pb::PublicAttachmentRequest { document_id: w.province.id.clone(), sha256: w.table.clone() };
    assert_eq!(code(public.download_public_attachment(req).await), Code::NotFound, "not a public document");
}

/// The gRPC body of a unary request: a 5-byte frame header and the message.
fn body_digest<M: Message>(m: &M) -> Vec<u8> {
    let bytes = m.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    framed.extend_from_slice(&bytes);
    Sha256::digest(&framed).to_vec()
}

fn with_token<M>(m: M, token: &pb::AuthToken) -> tonic::Request<M> {
    let mut req = tonic::Request::new(m);
    req.metadata_mut()
        .insert_bin(gongwen::auth::HEADER, tonic::metadata::MetadataValue::from_bytes(&token.encode_to_vec()));
    req
}

fn token_at(
    h: &Harness,
    method: &str,
    digest: Vec<u8>,
    at: chrono::DateTime<chrono::Utc>,
    nonce: [u8; 16],
) -> pb::AuthToken {
    let t = pb::RequestToken {
        unit_id: "operator".into(),
        method: method.into(),
        time: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        nonce: nonce.to_vec(),
        body_sha256: digest,
    }
    .encode_to_vec();
    pb::AuthToken {
        signature: h.operator.sign_raw(gongwen::auth::TOKEN_TYPE, &t),
        token: t,
        key_id: h.operator.key_id.clone(),
    }
}

#[tokio::test]
async fn tokens_must_be_fresh_for_this_call_and_used_once() {
    let w = world().await;
    let raw = w.h.raw_channel();
    let method = "/gongwen.v1.RegistryService/ListGroups";
    let msg = pb::ListGroupsRequest {};
    let now = chrono::Utc::now();
    let good = token_at(&w.h, method, body_digest(&msg), now, [1; 16]);
    let mut client = RegistryServiceClient::new(raw.clone());
    assert_eq!(code(client.list_groups(with_token(msg, &good)).await), Code::Ok, "a hand-made token works");
    let again = client.list_groups(with_token(msg, &good)).await.expect_err("replay refused");
    assert_eq!(again.code(), Code::Unauthenticated);
    assert!(again.message().contains("replayed"), "{}", again.message());

    let stale = token_at(&w.h, method, body_digest(&msg), now - chrono::Duration::minutes(10), [2; 16]);
    assert_eq!(code(client.list_groups(with_token(msg, &stale)).await), Code::Unauthenticated);
    let other_method = token_at(&w.h, "/gongwen.v1.RegistryService/ListRegions", body_digest(&msg), now, [3; 16]);
    assert_eq!(code(client.list_groups(with_token(msg, &other_method)).await), Code::Unauthenticated);
    let other_body = token_at(&w.h, method, body_digest(&pb::GetUnitRequest { id: "x".into() }), now, [4; 16]);
    assert_eq!(code(client.list_groups(with_token(msg, &other_body)).await), Code::Unauthenticated);
    let mut forged = token_at(&w.h, method, body_digest(&msg), now, [5; 16]);
    forged.signature[0] ^= 1;
    assert_eq!(code(client.list_groups(with_token(msg, &forged)).await), Code::Unauthenticated);
    // A unit's token signed with another unit's key.
    let mut t = pb::RequestToken::decode(token_at(&w.h, method, body_digest(&msg), now, [6; 16]).token.as_slice())
        .expect("token");
    t.unit_id = ZIBO.into();
    let bytes = t.encode_to_vec();
    let impostor = pb::AuthToken {
        signature: w.h.signer(BOSHAN).sign_raw(gongwen::auth::TOKEN_TYPE, &bytes),
        token: bytes,
        key_id: w.h.signer(BOSHAN).key_id.clone(),
    };
    assert_eq!(code(client.list_groups(with_token(msg, &impostor)).await), Code::Unauthenticated);
}
