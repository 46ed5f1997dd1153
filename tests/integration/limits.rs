//! Limits and hostile input: oversized messages (whatever the RPC), request floods (by unit, or by address without
//! a token) and too many streams (uploads included) are RESOURCE_EXHAUSTED; request tokens dated outside the skew
//! window or before the server started, or replayed, are UNAUTHENTICATED; garbage bytes, truncated messages and
//! oversized frames leave the server serving everyone else; a second server on the same data directory refuses to
//! start.
use crate::common;

use std::time::Duration;

use bytes::{Buf, BufMut};
use common::*;
use gongwen::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

const DEADLINE: Duration = Duration::from_secs(10);

/// Sends and receives raw message bytes, so a test can put anything on the wire.
#[derive(Default, Clone)]
struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

async fn raw_call(h: &Harness, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(h.channel_as(ZIBO));
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, Raw).await.map(|r| r.into_inner())
}

/// The same call without a token (for public RPCs).
async fn raw_public_call(h: &Harness, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(h.raw_channel());
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, Raw).await.map(|r| r.into_inner())
}

/// An empty request message padded to about `size` bytes with an unknown field, which decoders skip: a valid
/// request of any size.
fn padded(size: usize) -> Vec<u8> {
    let mut m = vec![];
    prost::encoding::encode_key(1000, prost::encoding::WireType::LengthDelimited, &mut m);
    prost::encoding::encode_varint(size as u64, &mut m);
    m.resize(m.len() + size, 0x5a);
    m
}

/// An upload of `chunks`, each one message.
async fn upload_chunks(h: &Harness, chunks: Vec<Vec<u8>>) -> Result<pb::UploadReply, tonic::Status> {
    let meta = pb::upload_chunk::Part::Meta(pb::UploadMeta {
        file_name: "f".into(),
        media_type: "application/octet-stream".into(),
        expected_sha256: String::new(),
    });
    let msgs = std::iter::once(pb::UploadChunk { part: Some(meta) })
        .chain(chunks.into_iter().map(|c| pb::UploadChunk { part: Some(pb::upload_chunk::Part::Chunk(c)) }));
    h.documents().upload_attachment(tokio_stream::iter(msgs.collect::<Vec<_>>())).await.map(|r| r.into_inner())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A refusal for a full per-caller share of the streams, naming whose (`who`).
fn assert_share_full(s: &tonic::Status, who: &str) {
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains(who) && s.message().contains("the most one caller may"), "{}", s.message());
}

fn assert_too_large(s: &tonic::Status) {
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("limit"), "{}", s.message());
}

async fn still_serving(h: &Harness) {
    let groups = h.registry().list_groups(pb::ListGroupsRequest {}).await.expect("the server still answers");
    assert!(!groups.into_inner().groups.is_empty());
}

#[tokio::test]
async fn garbage_requests_are_refused_and_the_server_keeps_serving() {
    let mut h = Harness::start_configured(|c| c.max_message_bytes = 64 * 1024).await;
    h.load_bundled().await;
    for body in [vec![0xff; 16], vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![0x12], (0..=255u8).collect()] {
        let s = raw_call(&h, "/gongwen.v1.RegistryService/ListUnits", body.clone()).await.expect_err("garbage refused");
        assert_ne!(s.code(), Code::Ok);
        let s = raw_call(&h, "/gongwen.v1.DeliveryService/Acknowledge", body).await.expect_err("garbage refused");
        assert!(matches!(s.code(), Code::Internal | Code::InvalidArgument | Code::Unauthenticated), "{s:?}");
    }
    let s = raw_call(&h, "/gongwen.v1.RegistryService/ListUnits", vec![0x22; 65 * 1024]).await.expect_err("too large");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    let s = raw_call(&h, "/gongwen.v1.NoSuchService/Nothing", vec![]).await.expect_err("no such method");
    assert_eq!(s.code(), Code::Unimplemented);
    still_serving(&h).await;

    // Bytes that are not HTTP/2 at all, a preface followed by an oversized frame, and a connection cut mid-frame.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let mut huge_frame = preface.clone();
    huge_frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    huge_frame.extend_from_slice(&[0u8; 1024]);
    let mut truncated = preface;
    truncated.extend_from_slice(&[0x00, 0x00, 0x10, 0x04]);
    for bytes in [b"GET / HTTP/1.1\r\n\r\n".to_vec(), vec![0xde; 4096], huge_frame, truncated] {
        let mut s = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
        let _ = s.write_all(&bytes).await;
        let _ = s.shutdown().await;
        let mut sink = vec![];
        let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut sink)).await;
    }
    still_serving(&h).await;
}

#[tokio::test]
async fn a_flood_from_one_caller_is_refused_without_hurting_others() {
    let mut h = Harness::start_configured(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 5;
    })
    .await;
    // Loading the registry spends one of the operator's five.
    h.load_bundled().await;
    let mut registry = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(ZIBO));
    for _ in 0..5 {
        registry.list_groups(pb::ListGroupsRequest {}).await.expect("within the burst");
    }
    let s = registry.list_groups(pb::ListGroupsRequest {}).await.expect_err("over the rate");
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("rate"), "{}", s.message());
    let mut other = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(BOSHAN));
    other.list_groups(pb::ListGroupsRequest {}).await.expect("another caller is unaffected");
}

#[tokio::test]
async fn streams_beyond_the_cap_are_refused_until_one_closes() {
    let mut h = Harness::start_configured(|c| c.max_streams = 2).await;
    h.load_bundled().await;
    let watch = |unit: &str| {
        let mut c = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(unit));
        let req = pb::WatchInboxRequest { unit_id: unit.into() };
        async move { c.watch_inbox(req).await }
    };
    let first = watch(ZIBO).await.expect("first stream");
    let _second = watch(BOSHAN).await.expect("second stream");
    let s = watch("370100.czj").await.expect_err("third refused");
    assert_eq!(s.code(), Code::ResourceExhausted);
    drop(first);
    // The server notices the hang-up asynchronously: poll with a deadline.
    // A permit comes back once a stream closes.
    once_admitted("streams are open", || watch("370100.czj")).await;
}

#[tokio::test]
async fn streams_without_a_token_count_against_their_address() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut h = Harness::start_configured(|c| c.max_streams_per_caller = 1).await;
    h.load_bundled().await;
    let watch = || {
        let mut c = HealthClient::new(h.raw_channel());
        async move { c.watch(HealthCheckRequest { service: String::new() }).await }
    };
    let first = watch().await.expect("a first health watch");
    let s = watch().await.expect_err("a second from the same address");
    assert_share_full(&s, "calls without a request token from 127.0.0.1 have 1 streams open");
    // A unit's share is its own, whatever address it calls from.
    let mut c = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(ZIBO));
    let inbox = c.watch_inbox(pb::WatchInboxRequest { unit_id: ZIBO.into() }).await.expect("a unit's watch");
    drop((first, inbox));
    // The address's share comes back once its watch ends.
    once_admitted("the most one caller may", watch).await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut cfg = gongwen::server::ServerConfig::new(h.dir.path().join("data"));
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let err = gongwen::server::start(cfg).await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("in use by another gongwen process"), "{text}");
    still_serving(&h).await;
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted_whatever_the_rpc() {
    const LIMIT: usize = 64 * 1024;
    let mut h = Harness::start_configured(|c| c.max_message_bytes = LIMIT).await;
    h.load_bundled().await;
    let (small, large) = (padded(LIMIT - 1024), padded(LIMIT + 1024));

    // A signed unary request.
    raw_call(&h, "/gongwen.v1.RegistryService/ListGroups", small.clone()).await.expect("within the limit");
    let before = h.digest().await;
    let s = raw_call(&h, "/gongwen.v1.RegistryService/ListGroups", large.clone()).await.expect_err("over");
    assert_too_large(&s);

    // A public request, which carries no token.
    raw_public_call(&h, "/gongwen.v1.RegistryService/GetServerInfo", small).await.expect("public, within");
    let s = raw_public_call(&h, "/gongwen.v1.RegistryService/GetServerInfo", large.clone()).await.expect_err("over");
    assert_too_large(&s);
    let s = raw_public_call(&h, "/gongwen.v1.PublicService/GetPublicDocument", large).await.expect_err("over");
    assert_too_large(&s);

    // An upload whose chunk is over the limit stores nothing; the same bytes in smaller chunks are fine.
    let bytes: Vec<u8> = (0..LIMIT + 4096).map(|i| (i % 251) as u8).collect();
    let s = upload_chunks(&h, vec![bytes.clone()]).await.expect_err("chunk over the limit");
    assert_too_large(&s);
    assert!(!attachment_stored(&h, &sha256_hex(&bytes)).await, "a refused upload stores nothing");
    assert_eq!(before, h.digest().await, "refused requests changed the store");
    let reply = upload_chunks(&h, bytes.chunks(LIMIT / 2).map(<[u8]>::to_vec).collect()).await.expect("small chunks");
    assert_eq!(reply.sha256, sha256_hex(&bytes));
    still_serving(&h).await;
}

#[tokio::test]
async fn a_message_limit_above_four_mib_applies() {
    const MIB: usize = 1024 * 1024;
    let mut h = Harness::start_configured(|c| c.max_message_bytes = 8 * MIB).await;
    h.load_bundled().await;
    raw_call(&h, "/gongwen.v1.RegistryService/ListGroups", padded(5 * MIB)).await.expect("a 5 MiB unary request");
    raw_public_call(&h, "/gongwen.v1.RegistryService/GetServerInfo", padded(5 * MIB)).await.expect("5 MiB public");
    let chunk: Vec<u8> = (0..5 * MIB).map(|i| (i % 253) as u8).collect();
    let reply = upload_chunks(&h, vec![chunk.clone()]).await.expect("a 5 MiB upload chunk");
    assert_eq!(reply.sha256, sha256_hex(&chunk));
    let s = raw_call(&h, "/gongwen.v1.RegistryService/ListGroups", padded(9 * MIB)).await.expect_err("9 MiB");
    assert_too_large(&s);
}

#[tokio::test]
async fn uploads_count_against_the_stream_cap() {
    let mut h = Harness::start_configured(|c| c.max_streams = 1).await;
    h.load_bundled().await;
    let app = h.server.as_ref().expect("running").app.clone();
    // An upload left open holds the only permit.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadChunk>(4);
    let meta = pb::upload_chunk::Part::Meta(pb::UploadMeta {
        file_name: "open.txt".into(),
        media_type: "text/plain".into(),
        expected_sha256: String::new(),
    });
    tx.send(pb::UploadChunk { part: Some(meta) }).await.expect("send meta");
    let mut documents = h.documents();
    let open = tokio::spawn(async move {
        documents.upload_attachment(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map(|r| r.into_inner())
    });
    tokio::time::timeout(DEADLINE, async {
        while app.open_streams() < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the open upload takes a stream permit");

    let s = h.upload(b"second").await.expect_err("a second upload is over the cap");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("streams"), "{}", s.message());
    let mut deliveries = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(ZIBO));
    let s = deliveries.watch_inbox(pb::WatchInboxRequest { unit_id: ZIBO.into() }).await.expect_err("watch too");
    assert_eq!(s.code(), Code::ResourceExhausted);

    tx.send(pb::UploadChunk { part: Some(pb::upload_chunk::Part::Chunk(b"first".to_vec())) }).await.expect("send");
    drop(tx);
    let first = open.await.expect("join").expect("the open upload completes");
    assert_eq!(first.size, 5);
    // The permit comes back once the upload is done.
    let second = once_admitted("streams are open", || h.upload(b"second")).await;
    assert_eq!(second.size, 6);
}

#[tokio::test]
async fn a_flood_without_a_token_is_refused_by_address_without_starving_units() {
    let mut h = Harness::start_configured(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 5;
    })
    .await;
    h.load_bundled().await;
    let mut anonymous = pb::registry_service_client::RegistryServiceClient::new(h.raw_channel());
    for _ in 0..5 {
        anonymous.get_server_info(pb::GetServerInfoRequest {}).await.expect("within the burst");
    }
    let s = anonymous.get_server_info(pb::GetServerInfoRequest {}).await.expect_err("over the rate");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("without a request token from 127.0.0.1"), "{}", s.message());
    // One budget for every call without a token from that address: health checks and public reads too.
    let mut health = tonic_health::pb::health_client::HealthClient::new(h.raw_channel());
    let s = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect_err("health");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    let mut public = pb::public_service_client::PublicServiceClient::new(h.raw_channel());
    let req = pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id("d-nothing".into())) };
    assert_eq!(public.get_public_document(req).await.expect_err("public").code(), Code::ResourceExhausted);
    // Authenticated callers on the same address keep their own budgets.
    let mut unit = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(ZIBO));
    unit.list_groups(pb::ListGroupsRequest {}).await.expect("a unit is unaffected");
    unit.get_server_info(pb::GetServerInfoRequest {}).await.expect_err("a public call is charged to the address");
    h.registry().list_groups(pb::ListGroupsRequest {}).await.expect("the operator is unaffected");
}

/// An operator token for `method` and `m`, dated `at`.
fn token_at<M: prost::Message + Clone>(
    h: &Harness,
    method: &str,
    m: &M,
    at: chrono::DateTime<chrono::Utc>,
) -> tonic::Request<M> {
    token_as(&h.operator, "operator", method, m, at)
}

#[tokio::test]
async fn tokens_from_the_future_from_before_the_start_or_replayed_are_refused() {
    const METHOD: &str = "/gongwen.v1.RegistryService/ListGroups";
    let msg = pb::ListGroupsRequest {};
    // A second before this server exists: what a token captured before a restart looks like afterwards.
    let before_start = chrono::Utc::now() - chrono::Duration::seconds(1);
    let h = Harness::start_configured(|c| c.auth_skew_secs = 30).await;
    let mut client = pb::registry_service_client::RegistryServiceClient::new(h.raw_channel());
    let unauthenticated = |r: Result<tonic::Response<pb::ListGroupsReply>, tonic::Status>, why: &str| {
        let s = r.expect_err("refused");
        assert_eq!(s.code(), Code::Unauthenticated, "{}", s.message());
        assert!(s.message().contains(why), "{}", s.message());
    };

    let now = chrono::Utc::now();
    client.list_groups(token_at(&h, METHOD, &msg, now + chrono::Duration::seconds(10))).await.expect("within 30 s");
    // 60 s ahead is inside the default 300 s, so this refusal is the configured window at work.
    let ahead = client.list_groups(token_at(&h, METHOD, &msg, now + chrono::Duration::seconds(60))).await;
    unauthenticated(ahead, "clock skew of 30 s");
    let old = client.list_groups(token_at(&h, METHOD, &msg, before_start)).await;
    unauthenticated(old, "tokens from before a restart are refused");

    let once = token_at(&h, METHOD, &msg, chrono::Utc::now());
    let mut again = tonic::Request::new(msg);
    *again.metadata_mut() = once.metadata().clone();
    client.list_groups(once).await.expect("a fresh token");
    unauthenticated(client.list_groups(again).await, "replayed");
}

/// A copy of `req`'s token on a new request: the same bytes a replaying attacker would send.
fn replay_of<M: Clone>(req: &tonic::Request<M>) -> tonic::Request<M> {
    let mut again = tonic::Request::new(req.get_ref().clone());
    *again.metadata_mut() = req.metadata().clone();
    again
}

#[tokio::test]
async fn tokens_accepted_before_a_restart_are_refused_after_it_even_when_dated_ahead() {
    const METHOD: &str = "/gongwen.v1.RegistryService/ListGroups";
    let msg = pb::ListGroupsRequest {};
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut client = pb::registry_service_client::RegistryServiceClient::new(h.raw_channel());
    // The operator's clock runs a minute ahead (inside the 300 s skew); Boshan's is in step with the server's,
    // and its token falls in the second the next server starts in.
    let minute = chrono::Duration::seconds(60);
    let ahead = token_at(&h, METHOD, &msg, chrono::Utc::now() + minute);
    let in_step = token_as(h.signer(BOSHAN), BOSHAN, METHOD, &msg, chrono::Utc::now());
    let (ahead_again, in_step_again) = (replay_of(&ahead), replay_of(&in_step));
    client.list_groups(ahead).await.expect("a minute ahead is within the skew");
    client.list_groups(in_step).await.expect("a fresh token");
    h.restart().await;
    let mut client = pb::registry_service_client::RegistryServiceClient::new(h.raw_channel());
    for replayed in [ahead_again, in_step_again] {
        let s = client.list_groups(replayed).await.expect_err("a replay after the restart");
        assert_eq!(s.code(), Code::Unauthenticated, "{}", s.message());
        assert!(s.message().contains("tokens from before a restart are refused"), "{}", s.message());
    }
    // The clean stop saved the exact horizon: the next tokens of both pass at once, and the operator's clock being
    // ahead did not hold Boshan back.
    let now = chrono::Utc::now();
    client.list_groups(token_as(h.signer(BOSHAN), BOSHAN, METHOD, &msg, now)).await.expect("Boshan after the restart");
    let next = now + minute + chrono::Duration::milliseconds(1);
    client.list_groups(token_at(&h, METHOD, &msg, next)).await.expect("the operator's next token");
}

#[tokio::test]
async fn failed_authentications_are_charged_to_the_address_and_then_refused_unchecked() {
    let mut h = Harness::start_configured(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 5;
    })
    .await;
    h.load_bundled().await;
    // A token signed with a key the registry does not know.
    let forger = gongwen::signing::Signer::from_secret(format!("{ZIBO}#forged"), [9u8; 32]);
    let forged = tower::Layer::layer(&gongwen::auth::SignRequests::new(ZIBO, forger), h.raw_channel());
    let mut bad = pb::registry_service_client::RegistryServiceClient::new(forged);
    for _ in 0..5 {
        let s = bad.list_groups(pb::ListGroupsRequest {}).await.expect_err("a forged token");
        assert_eq!(s.code(), Code::Unauthenticated, "{}", s.message());
    }
    let s = bad.list_groups(pb::ListGroupsRequest {}).await.expect_err("over the failure budget");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("failed to authenticate too often"), "{}", s.message());
    // Cut off from authenticating: the address's next calls with a token are refused before it is checked.
    let mut unit = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(BOSHAN));
    assert_eq!(unit.list_groups(pb::ListGroupsRequest {}).await.expect_err("refused").code(), Code::ResourceExhausted);
    // Calls without a token keep their own budget.
    let mut anonymous = pb::registry_service_client::RegistryServiceClient::new(h.raw_channel());
    anonymous.get_server_info(pb::GetServerInfoRequest {}).await.expect("anonymous calls are unaffected");
}

#[tokio::test]
async fn callers_that_authenticate_spend_nothing_of_the_failure_budget() {
    let mut h = Harness::start_configured(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 5;
    })
    .await;
    h.load_bundled().await;
    // Five units, five calls each: 25 successes from one address, five times the failure burst.
    for unit in ["370100.czj", "370200.czj", ZIBO, "370400.czj", "370500.czj"] {
        let mut c = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(unit));
        for _ in 0..5 {
            c.list_groups(pb::ListGroupsRequest {}).await.expect("within the unit's own budget");
        }
    }
    let mut c = pb::registry_service_client::RegistryServiceClient::new(h.channel_as(BOSHAN));
    c.list_groups(pb::ListGroupsRequest {}).await.expect("the address has no failures to its name");
}

#[tokio::test]
async fn health_watch_streams_count_against_the_stream_cap_while_open() {
    let h = Harness::start_configured(|c| c.max_streams = 1).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(h.raw_channel());
    let watch = || tonic_health::pb::HealthCheckRequest { service: String::new() };
    let mut first = health.watch(watch()).await.expect("the first watch").into_inner();
    first.message().await.expect("a status").expect("one message");
    let s = health.watch(watch()).await.expect_err("the cap is taken");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    // Plain health checks are not streams and go on.
    health.check(watch()).await.expect("a check");
    // Closing the stream gives the permit back (the server notices a moment later: polled, with a deadline).
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match health.watch(watch()).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::ResourceExhausted && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Err(s) => panic!("the permit did not come back: {s}"),
        }
    }
}

#[tokio::test]
async fn public_downloads_and_uploads_count_against_their_caller_s_share() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut h = Harness::start_configured(|c| c.max_streams_per_caller = 1).await;
    h.load_bundled().await;
    let file = h.upload_as(PROVINCE, "公开的附件".as_bytes()).await.expect("upload");
    let mut d = draft("鲁财采", "山东省财政厅关于公开附件的通知", vec![group("各市财政局")]);
    d.attachments =
        vec![pb::AttachmentRef { sha256: file.sha256.clone(), title: "附件".into(), media_type: String::new() }];
    let open = h.issue(PROVINCE, "public-with-file", d).await.expect("issue");
    let download = || {
        let mut c = pb::public_service_client::PublicServiceClient::new(h.raw_channel());
        let req = pb::PublicAttachmentRequest { document_id: open.id.clone(), sha256: file.sha256.clone() };
        async move { c.download_public_attachment(req).await }
    };

    // A public download is a stream of the caller's address: an open health watch from it fills the share.
    let mut health = HealthClient::new(h.raw_channel());
    let watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("a health watch");
    let s = download().await.expect_err("a download from the same address");
    assert_share_full(&s, "calls without a request token from 127.0.0.1 have 1 streams open");
    drop(watch);
    let mut chunks = once_admitted("the most one caller may", download).await.into_inner();
    let mut bytes = vec![];
    while let Some(c) = chunks.message().await.expect("chunk") {
        bytes.extend(c.chunk);
    }
    assert_eq!(bytes, "公开的附件".as_bytes());

    // An upload is a stream of its unit: the unit's open watch fills the share, and the refused upload stores
    // nothing.
    let mut deliveries = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(PROVINCE));
    let inbox = deliveries.watch_inbox(pb::WatchInboxRequest { unit_id: PROVINCE.into() }).await.expect("a watch");
    let before = h.digest().await;
    let other = "另一个附件".as_bytes();
    let s = h.upload_as(PROVINCE, other).await.expect_err("an upload while the unit's share is full");
    assert_share_full(&s, &format!("{PROVINCE} has 1 streams open"));
    assert!(!attachment_stored(&h, &sha256_hex(other)).await, "a refused upload stores nothing");
    assert_eq!(before, h.digest().await, "the refused upload changed the store");
    drop(inbox);
    let stored = once_admitted("the most one caller may", || h.upload_as(PROVINCE, other)).await;
    assert_eq!(stored.sha256, sha256_hex(other));
}

/// A socket that can be frozen: from then on it neither reads nor writes, and never closes, as the connection of
/// a machine that lost power or network looks from the other end.
struct Freezable {
    inner: tokio::net::TcpStream,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Freezable {
    /// What `io` answers for the socket, until it is frozen; then nothing, ever.
    fn unless_frozen<R>(
        &mut self,
        io: impl FnOnce(std::pin::Pin<&mut tokio::net::TcpStream>) -> std::task::Poll<R>,
    ) -> std::task::Poll<R> {
        if self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            return std::task::Poll::Pending;
        }
        io(std::pin::Pin::new(&mut self.inner))
    }
}

type Polled<T> = std::task::Poll<std::io::Result<T>>;

impl tokio::io::AsyncRead for Freezable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Polled<()> {
        self.unless_frozen(|io| io.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Freezable {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> Polled<usize> {
        self.unless_frozen(|io| io.poll_write(cx, buf))
    }
    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Polled<()> {
        self.unless_frozen(|io| io.poll_flush(cx))
    }
    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Polled<()> {
        self.unless_frozen(|io| io.poll_shutdown(cx))
    }
}

#[tokio::test]
async fn a_dead_client_s_streams_come_back_once_it_stops_answering_pings() {
    let mut h = Harness::start_configured(|c| c.max_streams_per_caller = 1).await;
    // Pings every 100 ms; a second to answer, so a test thread busy for a moment does not lose a live connection.
    h.keepalive = gongwen::server::Keepalive { interval: Duration::from_millis(100), timeout: Duration::from_secs(1) };
    h.restart().await;
    h.load_bundled().await;
    let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let connector = {
        let (addr, frozen) = (h.addr, frozen.clone());
        tower::service_fn(move |_: http::Uri| {
            let frozen = frozen.clone();
            async move {
                let inner = tokio::net::TcpStream::connect(addr).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(Freezable { inner, frozen }))
            }
        })
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", h.addr))
        .expect("uri")
        .connect_with_connector(connector)
        .await
        .expect("connect");
    let signed = gongwen::auth::SignRequests::new(ZIBO, h.signer(ZIBO).clone());
    let mut doomed = pb::delivery_service_client::DeliveryServiceClient::new(tower::Layer::layer(&signed, channel));
    let watch = || {
        let mut c = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(ZIBO));
        async move { c.watch_inbox(pb::WatchInboxRequest { unit_id: ZIBO.into() }).await }
    };
    let _held = doomed.watch_inbox(pb::WatchInboxRequest { unit_id: ZIBO.into() }).await.expect("the first watch");
    let s = watch().await.expect_err("ZIBO's share is taken");
    assert_share_full(&s, &format!("{ZIBO} has 1 streams open"));
    // The machine goes away without a word: its connection stays open at the TCP level, unanswering.
    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    once_admitted("the most one caller may", watch).await;
}

/// The bundled registry, and a document the province sent to its 16 cities: a tree of more subtrees than a walk
/// has threads. Returns the running server's app and the document.
async fn sent_to_every_city(h: &mut Harness) -> (std::sync::Arc<gongwen::app::App>, pb::Document) {
    h.load_bundled().await;
    let d = draft("鲁财采", "山东省财政厅关于采购的通知", vec![group("各市财政局")]);
    let doc = h.issue(PROVINCE, "to-every-city", d).await.expect("issued");
    (h.server.as_ref().expect("running").app.clone(), doc)
}

/// A unary trace whose caller goes away stops walking after the subtrees it is growing: the server does not go on
/// growing and encoding a tree nobody will read. `map` stands for the reply's encoding here; it waits at a gate so
/// that the walk is held mid-way while the caller goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_whose_caller_went_away_stops_walking() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    let mut h = Harness::start_configured(|c| c.max_tree_walks = 1).await;
    let (app, doc) = sent_to_every_city(&mut h).await;
    let top = app.trace(&doc.id, 0).await.expect("trace").nodes.len();
    assert!(top > 8, "more subtrees ({top}) than a walk has threads");

    let mapped = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let call = tokio::spawn({
        let (app, mapped, gate, id) = (app.clone(), mapped.clone(), gate.clone(), doc.id.clone());
        async move {
            app.trace_mapped(&id, 0, move |node| {
                mapped.fetch_add(1, Ordering::SeqCst);
                let (open, opened) = &*gate;
                let shut = open.lock().expect("gate");
                drop(opened.wait_while(shut, |open| !*open).expect("gate"));
                node
            })
            .await
        }
    });
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while mapped.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the walk did not start");
        tokio::task::yield_now().await;
    }
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()), "the caller went away mid-walk");
    *gate.0.lock().expect("gate") = true;
    gate.1.notify_all();
    // The one walk permit is free once the abandoned walk has ended: the next trace gets it then.
    let again = app.trace(&doc.id, 0).await.expect("the next trace");
    assert_eq!(again.nodes.len(), top);
    let walked = mapped.load(Ordering::SeqCst);
    assert!(walked < top, "{walked} of {top} subtrees were still grown after the caller went away");
    assert_eq!(app.tree_walks_abandoned(), 1, "counted for the operator's metrics");
}

/// A streamed trace whose reader has gone walks no further and ends without an error; it counts as abandoned.
#[tokio::test]
async fn a_streamed_trace_without_a_reader_stops_and_is_counted() {
    let mut h = Harness::start().await;
    let (app, doc) = sent_to_every_city(&mut h).await;
    let (out, reader) = tokio::sync::mpsc::channel(4);
    drop(reader);
    app.stream_trace(&doc.id, 0, 1, out, |chunk| chunk.nodes.len()).await.expect("ends quietly");
    assert_eq!(app.tree_walks_abandoned(), 1);

    let (out, mut reader) = tokio::sync::mpsc::channel::<Result<usize, gongwen::app::AppError>>(64);
    let read = tokio::spawn(async move {
        let mut nodes = 0;
        while let Some(chunk) = reader.recv().await {
            nodes += chunk.expect("a chunk");
        }
        nodes
    });
    app.stream_trace(&doc.id, 0, 1, out, |chunk| chunk.nodes.len()).await.expect("streamed");
    assert!(read.await.expect("reader") > 8, "a stream with its reader runs to its end");
    assert_eq!(app.tree_walks_abandoned(), 1, "and is not counted");
}

/// A call whose deadline passes while it waits (here for the one walk permit, held by a walk stopped at a gate) is
/// dropped by the server without a reply of its own: the metrics count it as DEADLINE_EXCEEDED all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_deadline_passes_while_it_waits_is_counted_as_deadline_exceeded() {
    use std::sync::{Arc, Condvar, Mutex};

    let mut h = Harness::start_configured(|c| c.max_tree_walks = 1).await;
    let (app, doc) = sent_to_every_city(&mut h).await;
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (entered, mut inside) = tokio::sync::mpsc::unbounded_channel::<()>();
    let walk = tokio::spawn({
        let (app, gate, id) = (app.clone(), gate.clone(), doc.id.clone());
        async move {
            app.trace_mapped(&id, 0, move |node| {
                let _ = entered.send(());
                let (open, opened) = &*gate;
                let shut = open.lock().expect("gate");
                drop(opened.wait_while(shut, |open| !*open).expect("gate"));
                node
            })
            .await
        }
    });
    tokio::time::timeout(DEADLINE, inside.recv()).await.expect("the walk holds the permit in time");
    let mut req = tonic::Request::new(pb::MatrixRequest { document_id: doc.id.clone(), with_units: false });
    req.set_timeout(std::time::Duration::from_millis(100));
    let refused = h.supervision().status_matrix(req).await;
    // The gate opens before any assertion, so a failure cannot leave the walk's threads waiting for ever.
    *gate.0.lock().expect("gate") = true;
    gate.1.notify_all();
    walk.await.expect("joined").expect("the walk ends");
    // tonic ends a call whose deadline passed with CANCELLED, "Timeout expired"; the metrics name the cause.
    let s = refused.expect_err("no permit before the deadline");
    assert!(s.code() == tonic::Code::Cancelled && s.message().contains("Timeout"), "{s:?}");
    let counted = r#"gongwen_requests_total{code="4",method="/gongwen.v1.SupervisionService/StatusMatrix"} 1"#;
    h.metrics_until(counted, "not counted as DEADLINE_EXCEEDED").await;
}
