//! Limits and hostile input: oversized requests, request floods and too many streams are RESOURCE_EXHAUSTED;
//! garbage bytes, truncated messages and oversized frames leave the server serving everyone else; a second server
//! on the same data directory refuses to start.
mod common;

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
    let reopened = tokio::time::timeout(DEADLINE, async {
        loop {
            match watch("370100.czj").await {
                Ok(s) => return s,
                Err(s) if s.code() == Code::ResourceExhausted => tokio::task::yield_now().await,
                Err(s) => panic!("unexpected {s:?}"),
            }
        }
    })
    .await
    .expect("a permit comes back once a stream closes");
    drop(reopened);
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
