//! The stored record format: a store says which format it holds, and a build opens only its own. A store of a
//! newer format is refused with a message saying so, and left as it was; a store of format 1 or 2, or from before
//! the marker existed, is brought to the current format at its first open and reads the same; a backup holding a
//! newer format does not restore.
use crate::common;

use common::*;
use gongwen::app::format::CURRENT;
use gongwen::app::log::COMPUTED_UP_TO;
use gongwen::app::schema;
use gongwen::domain::merkle;
use gongwen::pb;
use gongwen::store::{SledStore, Store};
use sha2::{Digest, Sha256};

const FORMAT: &[u8] = b"meta/format";

/// Runs `f` on the stopped server's sled store.
fn with_store<T>(h: &Harness, f: impl FnOnce(&dyn Store) -> T) -> T {
    let store = SledStore::open(&h.data_dir().join("db"), 8 << 20).expect("open the stopped store");
    f(&store)
}

fn digest(store: &dyn Store) -> Vec<u8> {
    let mut h = Sha256::new();
    for pair in store.scan(b"", None, false) {
        let (k, v) = pair.expect("read");
        h.update((k.len() as u64).to_be_bytes());
        h.update(&k);
        h.update((v.len() as u64).to_be_bytes());
        h.update(&v);
    }
    h.finalize().to_vec()
}

fn set_format(store: &dyn Store, value: Option<u32>) {
    store
        .transact(|tx| -> Result<(), gongwen::store::StoreError> {
            match value {
                Some(v) => tx.put(FORMAT, &v.to_be_bytes()),
                None => tx.delete(FORMAT),
            }
            Ok(())
        })
        .expect("write the marker");
}

/// Starts a server on the harness's stopped data directory, with `adjust` applied to its configuration.
async fn start_on_with(
    h: &Harness,
    adjust: impl FnOnce(&mut gongwen::server::ServerConfig),
) -> Result<gongwen::server::Running, gongwen::server::ServerError> {
    let mut cfg = gongwen::server::ServerConfig::new(h.data_dir());
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    adjust(&mut cfg);
    gongwen::server::start(cfg).await
}

async fn start_on(h: &Harness) -> Result<gongwen::server::Running, gongwen::server::ServerError> {
    start_on_with(h, |_| {}).await
}

#[tokio::test]
async fn a_store_of_a_newer_format_is_refused_and_left_as_it_was() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    h.stop().await;
    let before = with_store(&h, |s| {
        assert_eq!(s.get(FORMAT).expect("read"), Some(CURRENT.to_be_bytes().to_vec()), "a new store is marked");
        set_format(s, Some(CURRENT + 1));
        digest(s)
    });
    let err = start_on(&h).await.err().expect("a newer format is refused").to_string();
    let newer = format!("record format {}, written by a newer gongwen", CURRENT + 1);
    assert!(err.contains(&newer) && err.contains(&format!("reads format {CURRENT}")), "{err}");
    assert_eq!(with_store(&h, digest), before, "the refused start changed the store");
}

#[tokio::test]
async fn a_store_from_before_the_marker_is_marked_and_brought_up_to_date_at_its_first_open() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "format-1", draft("鲁财采", "山东省财政厅关于格式的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.stop().await;
    with_store(&h, |s| set_format(s, None));
    h.restart().await;
    let got = h
        .documents()
        .get_document(pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(doc.id.clone())) })
        .await
        .expect("the document is read as before")
        .into_inner();
    assert_eq!(got.number, doc.number);
    h.stop().await;
    assert_eq!(with_store(&h, |s| s.get(FORMAT).expect("read")), Some(CURRENT.to_be_bytes().to_vec()));
}

/// What format `old` (1 or 2) wrote besides what the current format writes, for the events `(key, entry)` in
/// order: every interior node of the log's tree up to [`COMPUTED_UP_TO`] (both stored every interior node) and,
/// for format 1, every leaf hash under `mt/` at level 0 and each document event's entry under `evdoc/`.
fn old_format_keys(old: u32, events: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = vec![];
    let mut leaves: Vec<merkle::Hash> = vec![];
    for (key, entry) in events {
        let seq: [u8; 8] = key[key.len() - 8..].try_into().expect("a sequence number");
        let leaf = merkle::leaf_hash(entry);
        let completed = merkle::append(&merkle::Leaves(&leaves), leaves.len() as u64, leaf).expect("nodes");
        leaves.push(leaf);
        for (level, index, hash) in completed {
            if (1..=COMPUTED_UP_TO).contains(&level) || (old == 1 && level == 0) {
                out.push((schema::merkle_node(level, index), hash.to_vec()));
            }
        }
        let doc = <pb::LogEntry as prost::Message>::decode(entry.as_slice()).expect("entry").document_id;
        if old == 1 && !doc.is_empty() {
            out.push(([b"evdoc/", doc.as_bytes(), &[0], &seq].concat(), vec![]));
        }
    }
    out
}

/// Makes a stopped store of the current format look as format `old` left it: its marker, and its extra keys.
fn add_old_format_keys(store: &dyn Store, old: u32) {
    let events: Vec<(Vec<u8>, Vec<u8>)> = store.scan(b"ev/", None, false).map(|p| p.expect("read")).collect();
    store
        .transact(|tx| -> Result<(), gongwen::store::StoreError> {
            for (k, v) in old_format_keys(old, &events) {
                tx.put(&k, &v);
            }
            tx.put(FORMAT, &old.to_be_bytes());
            Ok(())
        })
        .expect("write the old format's keys");
}

/// What an auditor reads of the log: the tree size and root, a document's bundle (entries and proofs) and every
/// event's inclusion proof.
async fn log_view(h: &Harness, doc: &str) -> (u64, Vec<u8>, Vec<pb::BundleEntry>, Vec<Vec<Vec<u8>>>) {
    let cp = h.audit().get_checkpoint(pb::GetCheckpointRequest {}).await.expect("checkpoint").into_inner();
    let cp = <pb::Checkpoint as prost::Message>::decode(cp.checkpoint.as_slice()).expect("checkpoint");
    let scope = pb::export_request::Scope::DocumentId(doc.to_owned());
    let bundle =
        h.audit().export_bundle(pb::ExportRequest { scope: Some(scope), previous_size: 0 }).await.expect("export");
    let mut proofs = vec![];
    for seq in 1..=cp.tree_size {
        let req = pb::InclusionProofRequest { event_seq: seq, tree_size: 0 };
        proofs.push(h.audit().get_inclusion_proof(req).await.expect("proof").into_inner().hashes);
    }
    (cp.tree_size, cp.root_hash, bundle.into_inner().entries, proofs)
}

#[tokio::test]
async fn a_format_1_store_is_brought_to_the_current_format_and_reads_the_same() {
    brought_up_to_date(1).await;
}

#[tokio::test]
async fn a_format_2_store_is_brought_to_the_current_format_and_reads_the_same() {
    brought_up_to_date(2).await;
}

async fn brought_up_to_date(old: u32) {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "format-2", draft("鲁财采", "山东省财政厅关于格式二的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    for unit in [ZIBO, "370100.czj", "370200.czj"] {
        h.ack(unit, &doc.id).await.expect("ack");
    }
    let before = log_view(&h, &doc.id).await;
    assert_eq!(before.2.len(), 5, "the registry change, the issue and 3 acknowledgments");
    h.stop().await;
    with_store(&h, |s| {
        let kept = |prefix: &[u8]| s.scan(prefix, None, false).count();
        assert_eq!(kept(b"evdoc/"), 0, "format 2 indexes no document events");
        // The bundled registry's change is one long event: only its leaf is stored.
        let long = s
            .scan(b"ev/", None, false)
            .filter(|p| p.as_ref().is_ok_and(|(_, v)| v.len() > gongwen::app::log::LEAF_STORED_ABOVE))
            .count();
        assert_eq!(long, 1);
        assert_eq!(kept(&schema::merkle_node(0, 0)[..7]), long, "format 2 stores leaf hashes of long events only");
        let low = (1..=COMPUTED_UP_TO).map(|level| kept(&schema::merkle_node(level, 0)[..7])).sum::<usize>();
        assert_eq!(low, 0, "format 3 stores no interior node of the lowest levels");
        add_old_format_keys(s, old);
    });
    // A start refused for another reason leaves it in its old format, for the build before to open.
    let format_1 = with_store(&h, digest);
    let stranger = gongwen::signing::Signer::from_secret("operator#other", [5u8; 32]);
    let err = start_on_with(&h, |cfg| cfg.operator = Some(gongwen::cli::serve::operator_seal(&stranger)))
        .await
        .err()
        .expect("another operator key is refused")
        .to_string();
    assert!(err.contains("different operator key"), "{err}");
    assert_eq!(with_store(&h, digest), format_1, "the refused start changed the format-1 store");
    let not_pem = h.data_dir().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "not a certificate").expect("write");
    let tls = gongwen::server::TlsFiles { cert: not_pem.clone(), key: not_pem.clone(), client_ca: None };
    let err = start_on_with(&h, |cfg| cfg.tls = Some(tls)).await.err().expect("a bad certificate is refused");
    assert_eq!(with_store(&h, digest), format_1, "a start refused for its certificate ({err}) changed the store");
    std::fs::remove_file(&not_pem).expect("remove");
    h.restart().await;
    assert_eq!(log_view(&h, &doc.id).await, before, "format {old}'s store reads differently after the step");
    // And the log goes on growing on top of it, its new nodes computed from the old ones.
    for unit in ["370400.czj", "370500.czj", "370600.czj", "370700.czj", "370800.czj"] {
        h.ack(unit, &doc.id).await.expect("ack after the step");
    }
    let after = log_view(&h, &doc.id).await;
    let leaves: Vec<merkle::Hash> = after.2.iter().map(|e| merkle::leaf_hash(&e.entry)).collect();
    assert_eq!(after.0, 10, "5 more events");
    assert_eq!(leaves.len(), 10, "every event of the tree is about the document or the registry");
    assert_eq!(after.1, merkle::reference_root(&leaves).to_vec(), "the root is the one the leaves make");
    h.stop().await;
    assert_eq!(with_store(&h, |s| s.get(FORMAT).expect("read")), Some(CURRENT.to_be_bytes().to_vec()));
}

/// A backup file (src/app/backup.rs: magic, `K` key-value records, `B` files, `E`, then the SHA-256 of everything
/// before) rewritten as a format-1 store's backup: marker 1, and format 1's extra keys, after the other records.
fn as_format_1_backup(backup: &[u8]) -> Vec<u8> {
    const MAGIC: &[u8] = b"GONGWEN-BACKUP-1\n";
    let mut at = MAGIC.len();
    let part = |at: &mut usize| {
        let n = u64::from_be_bytes(backup[*at..*at + 8].try_into().expect("a length")) as usize;
        *at += 8 + n;
        backup[*at - n..*at].to_vec()
    };
    fn record(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
        out.push(b'K');
        for p in [k, v] {
            out.extend_from_slice(&(p.len() as u64).to_be_bytes());
            out.extend_from_slice(p);
        }
    }
    let mut out = MAGIC.to_vec();
    let mut events = vec![];
    let extra = |out: &mut Vec<u8>, events: &mut Vec<(Vec<u8>, Vec<u8>)>| {
        for (k, v) in old_format_keys(1, &std::mem::take(events)) {
            record(out, &k, &v);
        }
    };
    loop {
        let kind = backup[at];
        at += 1;
        if kind != b'K' {
            extra(&mut out, &mut events);
        }
        match kind {
            b'K' => {
                let (k, v) = (part(&mut at), part(&mut at));
                if k == FORMAT {
                    record(&mut out, &k, &1u32.to_be_bytes());
                    continue;
                }
                if k.starts_with(b"ev/") {
                    events.push((k.clone(), v.clone()));
                }
                record(&mut out, &k, &v);
            }
            b'B' => {
                let start = at - 1;
                at += 64;
                part(&mut at);
                out.extend_from_slice(&backup[start..at]);
            }
            _ => break,
        }
    }
    out.push(b'E');
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

#[tokio::test]
async fn a_backup_of_format_1_restores_as_the_current_format() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "backup-1", draft("鲁财采", "山东省财政厅关于旧格式备份的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("ack");
    let bytes = h.backup().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("format-1.gw");
    std::fs::write(&file, as_format_1_backup(&bytes)).expect("write the backup");
    let restored = dir.path().join("restored");
    let summary = gongwen::app::backup::restore(&file, &restored).expect("a format-1 backup restores");
    assert_eq!(summary.events, 3, "the registry change, the issue and the acknowledgment, verified");
    let store = SledStore::open(&restored.join("db"), 8 << 20).expect("open the restored store");
    assert_eq!(store.get(FORMAT).expect("read"), Some(CURRENT.to_be_bytes().to_vec()), "restored as the current");
    assert!(store.scan(b"evdoc/", None, false).next().is_some(), "format 1's keys are kept, unread");
}

#[test]
fn a_backup_of_a_newer_format_does_not_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The backup layout (src/app/backup.rs): magic, `K` records, `E`, then the SHA-256 of everything before.
    let mut body = b"GONGWEN-BACKUP-1\nK".to_vec();
    for part in [FORMAT, &7u32.to_be_bytes()[..]] {
        body.extend_from_slice(&(part.len() as u64).to_be_bytes());
        body.extend_from_slice(part);
    }
    body.push(b'E');
    let sum = Sha256::digest(&body);
    body.extend_from_slice(&sum);
    let file = dir.path().join("newer.gwbak");
    std::fs::write(&file, &body).expect("write the backup");
    let err = gongwen::app::backup::restore(&file, &dir.path().join("restored")).expect_err("refused").to_string();
    assert!(err.contains("record format 7, written by a newer gongwen"), "{err}");
    // The refused restore does not leave a store of format 7 behind, which nothing verified, in the way of the
    // next try: the directory is as it was, absent or empty.
    assert!(!dir.path().join("restored").exists(), "the refused restore left a data directory");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert!(gongwen::app::backup::restore(&file, &empty).is_err());
    let left: Vec<_> = std::fs::read_dir(&empty).expect("read").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the refused restore left {left:?}");
}
