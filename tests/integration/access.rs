//! Who may read what, through the real server: a matrix of (caller × RPC × resource), tokens that must be fresh,
//! for this method and body, never replayed, and public reads without a token.
use crate::common;

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
use tonic::Code;

const AUDITOR: &str = "370300.sjj";
const OUTSIDER: &str = "370000.mzt";
const JINAN: &str = "370100.czj";
const BOSHAN_DEPT: &str = "370304.jtj";
/// An auditor whose grant (济南, 370100) holds none of the city document's issuer or recipients.
const AUDITOR_OUT: &str = "370000.sjt";

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
        auditor_grants: vec![
            pb::AuditorGrant { unit_id: AUDITOR.into(), region_code: "370300".into() },
            pb::AuditorGrant { unit_id: AUDITOR_OUT.into(), region_code: "370100".into() },
        ],
        ..Default::default()
    };
    h.apply(grant).await.expect("grant");
    let table = h.upload_as(PROVINCE, "联系点名单".as_bytes()).await.expect("upload").sha256;
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
        async move { code(TraceServiceClient::new(ch).trace(pb::TraceRequest { document_id: doc, max_depth: 0 }).await) }
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

/// A status's message with `id` replaced, to compare the shape of two answers.
fn shape(s: &tonic::Status, id: &str) -> String {
    s.message().replace(id, "<X>")
}

#[tokio::test]
async fn a_refused_read_looks_like_a_missing_document_by_id_and_by_number() {
    let w = world().await;
    let mut jinan = DocumentServiceClient::new(w.h.channel_as(JINAN));
    let missing_id = "d-00000000000000000000";
    let refused = jinan.get_document(by_id(&w.city.id)).await.expect_err("Jinan may not read the city's forward");
    let missing = jinan.get_document(by_id(missing_id)).await.expect_err("missing");
    assert_eq!((refused.code(), missing.code()), (Code::PermissionDenied, Code::PermissionDenied));
    assert_eq!(shape(&refused, &w.city.id), shape(&missing, missing_id));

    let number = |n: &str| pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Number(n.into())) };
    let missing_number = "淄财采〔2022〕999号";
    // Any accepted bracket form; the answer names the number as printed, never the document's id.
    let refused = jinan.get_document(number(&w.city.number.replace('〔', "[").replace('〕', "]"))).await;
    let refused = refused.expect_err("refused");
    let missing = jinan.get_document(number(missing_number)).await.expect_err("missing");
    assert_eq!((refused.code(), missing.code()), (Code::PermissionDenied, Code::PermissionDenied));
    assert_eq!(refused.message(), format!("no document numbered {} that you may read", w.city.number));
    assert_eq!(shape(&refused, &w.city.number), shape(&missing, missing_number));
    assert!(!refused.message().contains(&w.city.id), "{}", refused.message());
    // Readers and the operator still get what is there (and the operator sees what is not).
    assert_eq!(
        code(DocumentServiceClient::new(w.h.channel_as(BOSHAN)).get_document(number(&w.city.number)).await),
        Code::Ok
    );
    assert_eq!(code(w.h.documents().get_document(number(missing_number)).await), Code::NotFound);
}

#[tokio::test]
async fn a_delivery_to_yourself_of_a_missing_or_unreadable_document_looks_the_same() {
    let w = world().await;
    let mut outsider = DeliveryServiceClient::new(w.h.channel_as(OUTSIDER));
    let ask = |doc: &str| pb::GetDeliveryRequest { document_id: doc.into(), recipient_unit_id: OUTSIDER.into() };
    let missing_id = "d-00000000000000000000";
    let refused = outsider.get_delivery(ask(&w.city.id)).await.expect_err("not delivered, not readable");
    let missing = outsider.get_delivery(ask(missing_id)).await.expect_err("no such document");
    assert_eq!((refused.code(), missing.code()), (Code::PermissionDenied, Code::PermissionDenied));
    assert_eq!(shape(&refused, &w.city.id), shape(&missing, missing_id));
    // Someone else's delivery of an unreadable document: the same answer again.
    let other = pb::GetDeliveryRequest { document_id: w.city.id.clone(), recipient_unit_id: BOSHAN.into() };
    let s = outsider.get_delivery(other).await.expect_err("refused");
    assert_eq!(shape(&s, &w.city.id), shape(&missing, missing_id));
    // A reader of the document may learn it was not delivered to someone: the document names its recipients.
    let mut boshan = DeliveryServiceClient::new(w.h.channel_as(BOSHAN));
    let not_to_me = pb::GetDeliveryRequest { document_id: w.province.id.clone(), recipient_unit_id: BOSHAN.into() };
    assert_eq!(code(boshan.get_delivery(not_to_me).await), Code::NotFound);
}

/// The read RPCs of the matrix, each on the city document (淄财采, forwarded to Boshan and on to its departments).
#[derive(Debug, Clone, Copy)]
enum Rpc {
    GetDelivery,
    WatchInbox,
    ListIssued,
    ExportDocument,
    ExportRange,
    StatusMatrix,
    ExportReport,
    ListNotActed,
    OverdueByDocument,
    Backup,
    GetCheckpoint,
    GetConsistencyProof,
    GetRegion,
    ListRegions,
    GetUnit,
    ExpandGroup,
}

/// Calls `rpc` over `ch` (signed or not) and returns the status code; a stream counts from its first message,
/// except the inbox watch, which has none to send.
async fn call<T>(ch: T, rpc: Rpc, doc: &str) -> Code
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    use gongwen::pb::admin_service_client::AdminServiceClient;
    let doc = doc.to_owned();
    let audit = || AuditServiceClient::new(ch.clone()).max_decoding_message_size(64 * 1024 * 1024);
    let sup = || SupervisionServiceClient::new(ch.clone());
    let reg = || RegistryServiceClient::new(ch.clone());
    match rpc {
        Rpc::GetDelivery => code(
            DeliveryServiceClient::new(ch.clone())
                .get_delivery(pb::GetDeliveryRequest { document_id: doc, recipient_unit_id: BOSHAN.into() })
                .await,
        ),
        Rpc::WatchInbox => code(
            DeliveryServiceClient::new(ch.clone()).watch_inbox(pb::WatchInboxRequest { unit_id: BOSHAN.into() }).await,
        ),
        Rpc::ListIssued => code(
            DocumentServiceClient::new(ch.clone())
                .list_issued(pb::ListIssuedRequest { unit_id: ZIBO.into(), page: None })
                .await,
        ),
        Rpc::ExportDocument => code(
            audit()
                .export_bundle(pb::ExportRequest {
                    scope: Some(pb::export_request::Scope::DocumentId(doc)),
                    previous_size: 0,
                })
                .await,
        ),
        Rpc::ExportRange => code(
            audit()
                .export_bundle(pb::ExportRequest {
                    scope: Some(pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 })),
                    previous_size: 0,
                })
                .await,
        ),
        Rpc::StatusMatrix => code(sup().status_matrix(pb::MatrixRequest { document_id: doc, with_units: true }).await),
        Rpc::ExportReport => code(
            sup()
                .export_report(pb::ReportRequest {
                    kind: pb::ReportKind::Matrix as i32,
                    format: pb::ReportFormat::Csv as i32,
                    document_id: doc,
                    region_code: String::new(),
                })
                .await,
        ),
        Rpc::ListNotActed => code(
            TraceServiceClient::new(ch.clone())
                .list_not_acted(pb::ListNotActedRequest { document_id: doc, ..Default::default() })
                .await,
        ),
        Rpc::OverdueByDocument => code(
            sup()
                .list_overdue(pb::OverdueRequest { scope: Some(pb::overdue_request::Scope::DocumentId(doc)), order: 0 })
                .await,
        ),
        Rpc::Backup => match AdminServiceClient::new(ch.clone()).backup(pb::BackupRequest {}).await {
            Ok(s) => code(s.into_inner().message().await),
            Err(s) => s.code(),
        },
        Rpc::GetCheckpoint => code(audit().get_checkpoint(pb::GetCheckpointRequest {}).await),
        Rpc::GetConsistencyProof => {
            code(audit().get_consistency_proof(pb::ConsistencyProofRequest { old_size: 1, new_size: 0 }).await)
        }
        Rpc::GetRegion => code(reg().get_region(pb::GetRegionRequest { code: "370300".into() }).await),
        Rpc::ListRegions => code(reg().list_regions(pb::ListRegionsRequest { subtree_of: "370300".into() }).await),
        Rpc::GetUnit => code(reg().get_unit(pb::GetUnitRequest { id: ZIBO.into() }).await),
        Rpc::ExpandGroup => code(
            reg()
                .expand_group(pb::ExpandGroupRequest {
                    group: "各区县财政局".into(), issuer_unit_id: ZIBO.into()
                })
                .await,
        ),
    }
}

#[tokio::test]
async fn every_read_rpc_by_role() {
    use Code::{Ok as OK, PermissionDenied as PD, Unauthenticated as UA};
    let w = world().await;
    // Columns: the operator, the city document's issuer, a direct recipient, a recipient through a forward, an
    // unrelated unit, an auditor of the region, an auditor of another region, and a caller with no token.
    let units = [ZIBO, BOSHAN, BOSHAN_DEPT, OUTSIDER, AUDITOR, AUDITOR_OUT];
    let all = [OK, OK, OK, OK, OK, OK, OK, UA];
    let tracers = [OK, OK, PD, PD, PD, OK, PD, UA];
    let table: &[(Rpc, [Code; 8])] = &[
        (Rpc::GetDelivery, [OK, OK, OK, OK, PD, OK, PD, UA]),
        (Rpc::WatchInbox, [OK, PD, OK, PD, PD, OK, PD, UA]),
        (Rpc::ListIssued, [OK, OK, PD, PD, PD, OK, PD, UA]),
        (Rpc::ExportDocument, tracers),
        // Auditors may ask for any stretch and get the events they may read in it.
        (Rpc::ExportRange, [OK, PD, PD, PD, PD, OK, OK, UA]),
        (Rpc::StatusMatrix, tracers),
        (Rpc::ExportReport, tracers),
        (Rpc::ListNotActed, tracers),
        (Rpc::OverdueByDocument, tracers),
        (Rpc::Backup, [OK, PD, PD, PD, PD, PD, PD, UA]),
        (Rpc::GetCheckpoint, all),
        (Rpc::GetConsistencyProof, all),
        (Rpc::GetRegion, all),
        (Rpc::ListRegions, all),
        (Rpc::GetUnit, all),
        (Rpc::ExpandGroup, all),
    ];
    let doc = w.city.id.as_str();
    for (rpc, want) in table {
        let mut got = vec![call(w.h.channel_as_operator(), *rpc, doc).await];
        for u in units {
            got.push(call(w.h.channel_as(u), *rpc, doc).await);
        }
        got.push(call(w.h.raw_channel(), *rpc, doc).await);
        assert_eq!(got, want.to_vec(), "{rpc:?} for operator, {}, no token", units.join(", "));
    }
}

#[tokio::test]
async fn public_documents_by_number_and_their_attachments_need_no_token() {
    let w = world().await;
    let notice = w.h.upload_as(PROVINCE, "公开的附件".as_bytes()).await.expect("upload");
    let mut d = draft("鲁财采", "山东省财政厅关于公开附件的通知", vec![group("各市财政局")]);
    d.attachments =
        vec![pb::AttachmentRef { sha256: notice.sha256.clone(), title: "附件".into(), media_type: String::new() }];
    let open = w.h.issue(PROVINCE, "open-with-file", d).await.expect("issue");
    let mut public = PublicServiceClient::new(w.h.raw_channel());
    let number = |n: &str| pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Number(n.into())) };
    let got = public.get_public_document(number(&open.number)).await.expect("public by number").into_inner();
    assert_eq!(got.id, open.id);
    assert_eq!(code(public.get_public_document(number(&w.province.number)).await), Code::NotFound, "不予公开");
    let req = pb::PublicAttachmentRequest { document_id: open.id.clone(), sha256: notice.sha256.clone() };
    let mut stream = public.download_public_attachment(req).await.expect("download").into_inner();
    let mut bytes = vec![];
    while let Some(c) = stream.message().await.expect("chunk") {
        bytes.extend(c.chunk);
    }
    assert_eq!(bytes, "公开的附件".as_bytes());
}
