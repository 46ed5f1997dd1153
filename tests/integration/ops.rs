//! What standard tools need: gRPC health checking and server reflection, without a token.
use crate::common;

use common::*;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_and_reflection_answer_standard_clients() {
    let h = Harness::start().await;
    let mut health = HealthClient::new(h.raw_channel());
    let overall = health.check(HealthCheckRequest { service: String::new() }).await.expect("health").into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);

    gongwen::cli::client::health(&format!("http://{}", h.addr), &Default::default())
        .await
        .expect("`gongwen health` says SERVING");
    assert!(
        gongwen::cli::client::health("http://127.0.0.1:1", &Default::default()).await.is_err(),
        "nothing listens there"
    );

    let mut reflection = ServerReflectionClient::new(h.raw_channel());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.expect("reflection").into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected {reply:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for svc in
        ["gongwen.v1.DocumentService", "gongwen.v1.AuditService", "gongwen.v1.PublicService", "grpc.health.v1.Health"]
    {
        assert!(names.iter().any(|n| n == svc), "{svc} missing from {names:?}");
    }
}

/// The older name of the reflection service, which grpcurl before 1.9, grpcui, Evans and Postman ask for: the same
/// answers, also without a token, down to a service's whole file.
#[tokio::test]
async fn reflection_answers_under_its_older_v1alpha_name_too() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let h = Harness::start().await;
    let mut reflection = ServerReflectionClient::new(h.raw_channel());
    let ask = |m: MessageRequest| ServerReflectionRequest { host: String::new(), message_request: Some(m) };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol("gongwen.v1.TraceService".into())),
    ];
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter(requests)).await.expect("v1alpha").into_inner();
    let listed = replies.message().await.expect("reply").expect("a list").message_response;
    let Some(MessageResponse::ListServicesResponse(list)) = listed else { panic!("unexpected {listed:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for svc in ["gongwen.v1.TraceService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"] {
        assert!(names.iter().any(|n| n == svc), "{svc} missing from {names:?}");
    }
    let file = replies.message().await.expect("reply").expect("a file").message_response;
    let Some(MessageResponse::FileDescriptorResponse(file)) = file else { panic!("unexpected {file:?}") };
    let described = file.file_descriptor_proto.iter().any(|bytes| {
        <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice())
            .is_ok_and(|f| f.service.iter().any(|s| s.name() == "TraceService"))
    });
    assert!(described, "the file that defines TraceService");
}

#[tokio::test]
async fn prometheus_metrics_count_requests_by_method_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = gongwen::signing::Signer::from_secret("op#m", [3u8; 32]);
    let mut cfg = gongwen::server::ServerConfig::new(dir.path().join("data"));
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.metrics = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
    let running = gongwen::server::start(cfg).await.expect("server");
    let raw = tonic::transport::Channel::from_shared(format!("http://{}", running.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut reg = gongwen::pb::registry_service_client::RegistryServiceClient::new(raw);
    reg.get_server_info(gongwen::pb::GetServerInfoRequest {}).await.expect("info");
    let _ = reg.list_groups(gongwen::pb::ListGroupsRequest {}).await.expect_err("no token");

    let text = scrape(&running.metrics_addr.expect("metrics address").to_string()).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains(r#"gongwen_requests_total{code="0",method="/gongwen.v1.RegistryService/GetServerInfo"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gongwen_requests_total{code="16",method="/gongwen.v1.RegistryService/ListGroups"} 1"#),
        "{text}"
    );
    assert!(text.contains("gongwen_request_seconds_bucket"));
    assert!(text.contains("gongwen_log_events 0"));
    assert!(text.contains("gongwen_store_bytes"));
    assert!(text.contains("gongwen_store_deferred_keys 0"), "nothing is waiting after small commits");
    assert!(text.contains("gongwen_store_failed 0"), "a sound store has not failed");
    let value = |name: &str| -> u64 {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {text}"));
        line[name.len() + 1..].trim().parse().unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    let started = value("gongwen_start_time_seconds");
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    assert!(started <= now && started + 600 > now, "started {started}, now {now}");
    let (flushes, flushed) = (value("gongwen_store_flushes_total"), value("gongwen_store_flushed_transactions_total"));
    // A new data directory's first write (the operator's key) is already one.
    assert!(flushes >= 1, "no flush counted");
    assert!(flushed >= flushes, "a flush counted carried at least one transaction: {flushes} / {flushed}");
    assert!(text.contains("gongwen_open_streams 0"));
    assert!(text.contains("gongwen_tree_walks_waiting 0"));
    assert!(text.contains("gongwen_tree_walks_abandoned_total 0"));
    assert!(text.contains("gongwen_trace_cache_bytes 0"), "nothing traced yet");
    running.stop().await.expect("stop");
}

/// The log position of sled's newest snapshot in a store directory (its files are named `snap.<LSN in hex>`).
fn newest_snapshot(db: &std::path::Path) -> u64 {
    std::fs::read_dir(db)
        .expect("the store directory")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("snap.").map(str::to_owned))
        .filter_map(|lsn| u64::from_str_radix(&lsn, 16).ok())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_graceful_stop_writes_the_snapshot_so_the_next_start_replays_nothing() {
    // A plain stop leaves the snapshot of the last open: the next start replays every write since.
    let mut plain = Harness::start().await;
    let db = plain.data_dir().join("db");
    let at_open = newest_snapshot(&db);
    plain.load_bundled().await;
    plain.stop().await;
    assert_eq!(newest_snapshot(&db), at_open, "a plain stop writes no snapshot");

    // The stop `gongwen serve` makes on SIGTERM covers the writes, and the data is all there afterwards.
    let mut h = Harness::start().await;
    let db = h.data_dir().join("db");
    let at_open = newest_snapshot(&db);
    h.load_bundled().await;
    let units = h.expand("各市财政局", PROVINCE).await;
    h.stop_and_snapshot().await;
    assert!(newest_snapshot(&db) > at_open, "the snapshot covers the writes of the run");
    h.restart().await;
    assert_eq!(h.expand("各市财政局", PROVINCE).await, units, "everything written is there after the restart");
}

#[tokio::test]
async fn a_stop_cuts_off_a_reply_its_client_stopped_reading_after_the_grace() {
    let mut h = Harness::start().await;
    h.stop_grace = std::time::Duration::from_millis(300);
    h.restart().await;
    let bytes: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let sha = h.upload(&bytes).await.expect("upload").sha256;
    let db = h.data_dir().join("db");
    let at_open = newest_snapshot(&db);
    h.load_bundled().await;
    // The download's first chunks fill the flow-control windows; the client reads nothing more.
    let mut stalled = h
        .documents()
        .download_attachment(gongwen::pb::DownloadRequest { sha256: sha.clone() })
        .await
        .expect("download starts")
        .into_inner();
    tokio::time::timeout(std::time::Duration::from_secs(30), h.stop_and_snapshot())
        .await
        .expect("the stop ends within its grace and the release's bound, whatever the client does");
    // The connection was cut, so nothing held the store: it was released and its snapshot written.
    assert!(newest_snapshot(&db) > at_open, "the stop wrote the snapshot despite the stalled reader");
    // The rest of what was sent before the cut, then an error: the 16 MiB never all arrive.
    let ended = async {
        loop {
            match stalled.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    };
    let end = tokio::time::timeout(std::time::Duration::from_secs(30), ended).await.expect("the download ends");
    assert!(end.is_some(), "the cut download ended as if complete");
    h.restart().await;
    assert!(attachment_stored(&h, &sha).await, "the file is kept");
}

/// A start refused because its address is taken is refused before the store is opened: no data directory is left
/// behind (an operator retrying with another port would otherwise find a store made by a server that never ran).
#[tokio::test]
async fn a_start_on_a_taken_address_makes_no_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let operator = gongwen::signing::Signer::from_secret("op#t", [4u8; 32]);
    for (listen, metrics) in [
        (taken.local_addr().expect("address"), None),
        (std::net::SocketAddr::from(([127, 0, 0, 1], 0)), Some(taken.local_addr().expect("address"))),
    ] {
        let mut cfg = gongwen::server::ServerConfig::new(dir.path().join("data"));
        cfg.listen = listen;
        cfg.metrics = metrics;
        cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
        let Err(refused) = gongwen::server::start(cfg).await else { panic!("started on a taken address") };
        assert!(refused.to_string().contains("cannot listen for"), "{refused}");
        assert!(!dir.path().join("data").exists(), "{refused}: yet a data directory was made");
    }
}
