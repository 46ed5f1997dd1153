//! `gongwen serve` on a store that can no longer make writes durable: here its file may not grow (a file-size
//! limit, which fails a write the way a full disk or a quota does). The write is answered UNAVAILABLE and the
//! server exits with an error, so that its supervisor restarts it; after the restart everything acknowledged
//! before is there and the refused write goes through when sent again. (Health and metrics on such a store:
//! tests/failed_store_health.rs.)
use crate::common;

use std::path::Path;
use std::time::Duration;

use common::issue_notice;
use gongwen::cli::client::Client;
use gongwen::cli::keystore::Keystore;
use gongwen::pb;
use tokio::process::{Child, Command};

/// `gongwen serve` on a free port. Through `sh`, which ignores SIGXFSZ before it becomes the server: ignored
/// signals stay ignored across `exec`, so a write past the file-size limit fails with EFBIG instead of killing
/// the process.
async fn start(data: &Path, keys: &Path) -> (Child, String) {
    let mut sh = Command::new("sh");
    sh.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""]).arg(env!("CARGO_BIN_EXE_gongwen"));
    common::spawn_serve(sh, data, keys, &[]).await
}

#[tokio::test]
async fn a_server_whose_store_cannot_flush_refuses_the_write_exits_and_recovers_at_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let (mut child, url) = start(&data, &keys).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let mut acknowledged = vec![issue_notice(&c, "before-the-limit").await.expect("a write before the limit").id];

    // From now on sled's data file may not grow past its present size.
    let size = std::fs::metadata(data.join("db").join("db")).expect("sled's data file").len();
    let pid = child.id().expect("the server runs").to_string();
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--fsize={size}")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(limited.success(), "prlimit set the server's file-size limit");

    // sled may still fill what its file already holds; the first write that has to go past it is refused.
    let (refused_id, status) = loop {
        let id = format!("after-the-limit-{}", acknowledged.len());
        match issue_notice(&c, &id).await {
            Ok(doc) => acknowledged.push(doc.id),
            Err(status) => break (id, status),
        }
        assert!(acknowledged.len() < 2_000, "2,000 writes went through a file that may not grow");
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("can no longer make writes durable"), "{}", status.message());

    // The server exits with an error: what systemd's Restart=on-failure and Docker's restart policy act on.
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the server exits once its store has failed")
        .expect("wait for the server");
    assert!(!exit.success(), "{exit:?}");

    let (_child, url) = start(&data, &keys).await;
    assert!(gongwen::cli::client::health(&url, &Default::default()).await.is_ok(), "a restarted server serves");
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    for id in &acknowledged {
        let key = Some(pb::get_document_request::Key::Id(id.clone()));
        c.documents()
            .get_document(pb::GetDocumentRequest { key })
            .await
            .unwrap_or_else(|e| panic!("acknowledged document {id} is there after the restart: {e}"));
    }
    let retried = issue_notice(&c, &refused_id).await.expect("the refused write, sent again with its request id");
    assert!(!acknowledged.contains(&retried.id));
}
