//! Backup under write load, restore into a new directory, and the restored server holds the same log.
use crate::common;

use std::net::SocketAddr;

use common::*;
use gongwen::auth::SignRequests;
use gongwen::domain::merkle;
use gongwen::pb;
use gongwen::server::{self, ServerConfig};
use gongwen::verify::{Trust, verify_bundle};
use tonic::transport::Channel;
use tower::Layer;

async fn leaves(ch: Ch) -> Vec<merkle::Hash> {
    let mut s = pb::audit_service_client::AuditServiceClient::new(ch)
        .stream_log(pb::StreamLogRequest { from_seq: 1, limit: 0 })
        .await
        .expect("stream")
        .into_inner();
    let mut out = vec![];
    while let Some(r) = s.message().await.expect("record") {
        out.push(merkle::leaf_hash(&r.entry));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_to_the_same_log() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于备份的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    let up = h.upload_as(PROVINCE, b"attachment kept in the backup").await.expect("upload");
    let mut d = draft("鲁财采", "山东省财政厅关于附件的通知", vec![group("各市财政局")]);
    d.attachments =
        vec![pb::AttachmentRef { sha256: up.sha256.clone(), title: "附件".into(), media_type: String::new() }];
    h.issue(PROVINCE, "a", d).await.expect("issue with attachment");

    // Acknowledgments keep coming while the backup runs.
    let cities = h.expand("各市财政局", PROVINCE).await;
    let mut load = vec![];
    for city in cities {
        let mut client = pb::delivery_service_client::DeliveryServiceClient::new(h.channel_as(&city));
        let m = pb::Acknowledge {
            request_id: format!("a-{city}"),
            unit_id: city.clone(),
            document_id: doc.id.clone(),
            registration_number: String::new(),
        };
        let env = h.sign(&city, &m);
        load.push(tokio::spawn(async move { client.acknowledge(env).await.is_ok() }));
    }
    let bytes = h.backup().await;
    for t in load {
        assert!(t.await.expect("task"), "writes go on during a backup");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.gw");
    std::fs::write(&file, &bytes).expect("write backup");

    // A damaged backup is refused.
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    std::fs::write(dir.path().join("damaged.gw"), &damaged).expect("write");
    assert!(gongwen::app::backup::restore(&dir.path().join("damaged.gw"), &dir.path().join("bad")).is_err());

    let restored_dir = dir.path().join("restored");
    let summary = gongwen::app::backup::restore(&file, &restored_dir).expect("restore");
    assert!(summary.files >= 1 && summary.events > 0);
    assert!(gongwen::app::backup::restore(&file, &restored_dir).is_err(), "never over an existing directory");
    // It records whose directory it is, for `serve --check-config` before the first start.
    let (key_id, public) =
        gongwen::store::layout::recorded_operator(&restored_dir).expect("readable").expect("the operator recorded");
    assert_eq!((key_id.as_str(), public.as_slice()), (h.operator.key_id.as_str(), &h.operator.public_key()[..]));
    // A restore writes a new store, so it has the segment size of a new store, whatever the backed-up one had.
    let conf = std::fs::read(restored_dir.join("db").join("conf")).expect("sled's conf");
    let want = format!("segment_size: {}", gongwen::store::sled_kv::NEW_SEGMENT_BYTES);
    assert!(String::from_utf8_lossy(&conf).contains(&want), "{}", String::from_utf8_lossy(&conf));

    let mut cfg = ServerConfig::new(&restored_dir);
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.store.cache_bytes = 16 << 20;
    let restored = server::start(cfg).await.expect("the restored server starts");
    let raw = Channel::from_shared(format!("http://{}", restored.addr)).expect("uri").connect().await.expect("connect");
    let ch: Ch = SignRequests::new("operator", h.operator.clone()).layer(raw);

    let live = leaves(h.channel_as_operator()).await;
    let back = leaves(ch.clone()).await;
    assert_eq!(back.len() as u64, summary.events);
    assert_eq!(back[..], live[..back.len()], "the restored log is a prefix of the live one");
    let bundle = pb::audit_service_client::AuditServiceClient::new(ch.clone())
        .export_bundle(pb::ExportRequest {
            scope: Some(pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 })),
            previous_size: 0,
        })
        .await
        .expect("export")
        .into_inner();
    assert!(verify_bundle(&bundle, &Trust::default()).ok());
    // The restored server's own backup carries its own checkpoint only (not also the one its store was restored
    // from), and restores to the same count.
    let again = dir.path().join("again.gw");
    let taken = restored.app.backup(&again).await.expect("a backup of the restored server");
    let put_back = gongwen::app::backup::restore(&again, &dir.path().join("again")).expect("restore again");
    assert_eq!(taken, put_back);
    let mut docs = pb::document_service_client::DocumentServiceClient::new(ch);
    docs.get_document(pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(doc.id.clone())) })
        .await
        .expect("document restored");
    let mut s = docs
        .download_attachment(pb::DownloadRequest { sha256: up.sha256.clone() })
        .await
        .expect("attachment restored")
        .into_inner();
    let mut got = vec![];
    while let Some(c) = s.message().await.expect("chunk") {
        got.extend(c.chunk);
    }
    assert_eq!(got, b"attachment kept in the backup");
    restored.stop().await.expect("stop");
}

/// `gongwen backup -o FILE` leaves a file only its owner can read, even over a file that was readable by all: it
/// holds the log's signing key and every record. A restore from a file that is not there names it.
#[tokio::test]
async fn a_backup_file_is_its_owner_s_only_and_a_missing_one_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, _, client) = cli_server_configured(dir.path(), |_| {}).await;
    let output = dir.path().join("backup.gw");
    std::fs::write(&output, b"an older file").expect("write");
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    client.run(gongwen::cli::Command::Backup { output: output.clone() }).await.expect("backup");
    let mode = std::fs::metadata(&output).expect("the backup").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    running.stop().await.expect("stop");

    let missing = dir.path().join("no-such-backup.gw");
    let err = gongwen::app::backup::restore(&missing, &dir.path().join("restored")).expect_err("nothing to read");
    assert!(err.to_string().contains("no-such-backup.gw"), "{err}");
    assert!(!dir.path().join("restored").exists(), "a refused restore leaves nothing");
}
