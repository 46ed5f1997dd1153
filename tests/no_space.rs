//! An attachment that does not fit on the server's disk (here: past this process's file-size limit, which fails a
//! write the way a full disk or a quota does) is refused with RESOURCE_EXHAUSTED, leaves no file behind, and the
//! server goes on serving: the same upload succeeds once there is room. The limit is the whole test process's, so
//! this file holds this one test.
mod common;

use common::{PROVINCE, cli_server, set_file_size_limit};
use gongwen::cli::CliError;

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_upload_that_finds_no_room_is_refused_and_leaves_nothing_behind() {
    // SIGXFSZ would end this process at the first write past the limit; listening for it replaces that default,
    // and the write fails with EFBIG instead.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)).expect("SIGXFSZ");
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, url, c) = cli_server(dir.path()).await;
    let blobs = dir.path().join("data").join("blobs");
    c.upload_bytes(Some(PROVINCE), "small.txt", "text/plain", b"fits".to_vec()).await.expect("a small upload");
    let before = (files(&blobs), files(&blobs.join("tmp")));

    // Room for sled's file as it is and some more, not for the attachment.
    let db = std::fs::metadata(dir.path().join("data").join("db").join("db")).expect("sled's data file").len();
    let limit = db + (2 << 20);
    set_file_size_limit(&limit.to_string());
    let big: Vec<u8> = (0..limit + (1 << 20)).map(|i| (i % 251) as u8).collect();
    let refused = c.upload_bytes(Some(PROVINCE), "big.bin", "application/octet-stream", big.clone()).await;
    let Err(CliError::Rpc(status)) = refused else { panic!("the upload was not refused: {refused:?}") };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("no room"), "{}", status.message());
    assert_eq!((files(&blobs), files(&blobs.join("tmp"))), before, "the refused upload left nothing behind");

    // Not a failure of the server: once there is room, the same upload goes through.
    set_file_size_limit("unlimited");
    let stored = c.upload_bytes(Some(PROVINCE), "big.bin", "application/octet-stream", big).await.expect("upload");
    assert_eq!(stored.size, limit + (1 << 20));
    assert!(gongwen::cli::client::health(&url, &Default::default()).await.is_ok());
    assert!(running.app.store_failure().is_none());
}
