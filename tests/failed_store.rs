//! A store that can no longer make writes durable: here its file may not grow (a file-size limit, which fails a
//! write the way a full disk or a quota does). Every write is answered UNAVAILABLE, health checks turn NOT_SERVING
//! so that an orchestrator restarts the server, and after a restart everything acknowledged before is there and
//! the refused write goes through when sent again.
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gongwen::cli::client::Client;
use gongwen::cli::keystore::Keystore;
use gongwen::pb;
use tokio::process::{Child, Command};

const PROVINCE: &str = "370000.czt";

/// `gongwen serve` on a free port, and its metrics on another. Through `sh`, which ignores SIGXFSZ before it
/// becomes the server: ignored signals stay ignored across `exec`, so a write past the file-size limit fails with
/// EFBIG instead of killing the process.
async fn start(data: &Path, keys: &Path) -> (Child, String, String) {
    let mut child = Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_gongwen"))
        .args(["serve", "--plaintext", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--keys")
        .arg(keys)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let (url, metrics) = common::serving_urls(&mut child, true).await;
    (child, url, metrics.expect("a metrics address"))
}

fn notice(request_id: &str) -> pb::IssueDocument {
    pb::IssueDocument {
        request_id: request_id.into(),
        unit_id: PROVINCE.into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: "鲁财采".into(),
            number_year: 2022,
            title: format!("山东省财政厅关于{request_id}的通知"),
            genre: pb::Genre::Notice as i32,
            main_recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Group("各市财政局".into()))
            }],
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    }
}

async fn issue(c: &Client, request_id: &str) -> Result<pb::Document, tonic::Status> {
    let env = c.sign(PROVINCE, &notice(request_id)).expect("sign");
    c.documents().issue_document(env).await.map(|r| r.into_inner())
}

async fn serving(url: &str) -> bool {
    gongwen::cli::client::health(url, &Default::default()).await.is_ok()
}

#[tokio::test]
async fn a_store_that_cannot_flush_refuses_writes_and_fails_health_until_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let (mut child, url, metrics) = start(&data, &keys).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let before = issue(&c, "before-the-limit").await.expect("a write before the limit");
    assert!(serving(&url).await, "a sound store is SERVING");
    assert!(common::scrape(&metrics).await.contains("\ngongwen_store_failed 0"));

    // From now on sled's data file may not grow past its present size.
    let db = data.join("db").join("db");
    let size = std::fs::metadata(&db).expect("sled's data file").len();
    let pid = child.id().expect("the server runs").to_string();
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--fsize={size}")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(limited.success(), "prlimit set the server's file-size limit");

    // sled may still fill what its file already holds; a write that has to go past it fails, and so does every
    // write after it.
    let mut acknowledged = vec![];
    let refused = loop {
        let id = format!("after-the-limit-{}", acknowledged.len());
        match issue(&c, &id).await {
            Ok(doc) => acknowledged.push(doc.id),
            Err(status) => break (id, status),
        }
        assert!(acknowledged.len() < 2_000, "2,000 writes went through a file that may not grow");
    };
    let (refused_id, status) = refused;
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("can no longer make writes durable"), "{}", status.message());
    let again = issue(&c, "after-the-failure").await.expect_err("no write is acknowledged after a failed flush");
    assert_eq!(again.code(), tonic::Code::Unavailable, "{again:?}");

    // Health checks (the container's and systemd's `gongwen health`) turn NOT_SERVING.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while serving(&url).await {
        assert!(tokio::time::Instant::now() < deadline, "health stays SERVING on a failed store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(common::scrape(&metrics).await.contains("\ngongwen_store_failed 1"), "the alert's metric says so too");

    // What an orchestrator does: kill and start again, here without the limit.
    child.kill().await.expect("kill");
    let (_child, url, metrics) = start(&data, &keys).await;
    assert!(serving(&url).await, "a restarted server recovers its store and serves");
    assert!(common::scrape(&metrics).await.contains("\ngongwen_store_failed 0"));
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    for id in std::iter::once(&before.id).chain(&acknowledged) {
        c.documents()
            .get_document(pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(id.clone())) })
            .await
            .unwrap_or_else(|e| panic!("acknowledged document {id} is there after the restart: {e}"));
    }
    let retried = issue(&c, &refused_id).await.expect("the refused write, sent again with its request id");
    assert!(!acknowledged.contains(&retried.id) && retried.id != before.id);
}
