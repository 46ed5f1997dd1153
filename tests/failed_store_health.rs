//! A server in this process whose store can no longer make writes durable (the process may not grow a file past
//! a limit, which fails sled's write the way a full disk does): health checks answer NOT_SERVING, and the metric
//! behind the alert turns 1. `gongwen serve` then exits (tests/integration/failed_store.rs); an embedded server stays up, and
//! says so. The limit is the whole test process's, so this file holds this one test.
mod common;

use std::time::Duration;

use common::{cli_server_configured, issue_notice, scrape, set_file_size_limit};

async fn serving(url: &str) -> bool {
    gongwen::cli::client::health(url, &Default::default()).await.is_ok()
}

#[tokio::test]
async fn a_store_that_cannot_flush_turns_health_not_serving_and_its_metric_on() {
    // SIGXFSZ would end this process at the first write past the limit; listening for it replaces that default,
    // and the write fails with EFBIG instead.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).expect("SIGXFSZ");
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, url, c) = cli_server_configured(dir.path(), |cfg| {
        cfg.metrics = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let metrics = running.metrics_addr.expect("metrics address").to_string();
    issue_notice(&c, "before-the-limit").await.expect("a write before the limit");
    assert!(serving(&url).await);
    assert!(scrape(&metrics).await.contains("\ngongwen_store_failed 0"));

    let size = std::fs::metadata(dir.path().join("data").join("db").join("db")).expect("sled's data file").len();
    set_file_size_limit(&size.to_string());
    let mut written = 0;
    let status = loop {
        match issue_notice(&c, &format!("after-the-limit-{written}")).await {
            Ok(_) => written += 1,
            Err(status) => break status,
        }
        assert!(written < 2_000, "2,000 writes went through a file that may not grow");
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let again = issue_notice(&c, "after-the-failure").await.expect_err("nothing is acknowledged after a failed flush");
    assert_eq!(again.code(), tonic::Code::Unavailable, "refused before it runs: {again:?}");
    // The store has failed for good; the test harness's own output must not be cut short by the limit.
    set_file_size_limit("unlimited");

    // The health service learns of it from the app, asynchronously.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while serving(&url).await {
        assert!(tokio::time::Instant::now() < deadline, "health stays SERVING on a failed store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(scrape(&metrics).await.contains("\ngongwen_store_failed 1"));
    let said = gongwen::cli::client::health(&url, &Default::default()).await.expect_err("not serving").to_string();
    assert!(said.starts_with("NOT_SERVING"), "`gongwen health` names the status: {said}");
    assert!(running.app.store_failure().is_some());
}
