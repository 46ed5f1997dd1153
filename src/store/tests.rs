//! One suite every [`Store`] backend must pass, run here against sled; and the attachment store's tests.
use std::sync::Arc;

use sha2::Digest;

use super::*;

fn put(store: &dyn Store, k: &[u8], v: &[u8]) {
    store
        .transact(|tx| -> Result<(), StoreError> {
            tx.put(k, v);
            Ok(())
        })
        .expect("commit");
}

fn keys(it: Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + '_>) -> Vec<String> {
    it.map(|r| String::from_utf8(r.expect("scan").0).expect("utf8")).collect()
}

/// The shared backend suite.
fn suite(store: &dyn Store) {
    // Writes, reads, deletes.
    put(store, b"a/1", b"one");
    assert_eq!(store.get(b"a/1").expect("get"), Some(b"one".to_vec()));
    store
        .transact(|tx| -> Result<(), StoreError> {
            tx.delete(b"a/1");
            Ok(())
        })
        .expect("delete");
    assert_eq!(store.get(b"a/1").expect("get"), None);

    // Read-your-writes inside a transaction, and all-or-nothing.
    store
        .transact(|tx| -> Result<(), StoreError> {
            tx.put(b"t/x", b"1");
            assert_eq!(tx.get(b"t/x")?, Some(b"1".to_vec()));
            tx.delete(b"t/x");
            assert_eq!(tx.get(b"t/x")?, None);
            tx.put(b"t/y", b"2");
            tx.put(b"t/z", b"3");
            Ok(())
        })
        .expect("commit");
    assert_eq!(store.get(b"t/x").expect("get"), None);
    assert_eq!(store.get(b"t/y").expect("get"), Some(b"2".to_vec()));
    let aborted: Result<(), StoreError> = store.transact(|tx| {
        tx.put(b"t/w", b"4");
        tx.delete(b"t/y");
        Err(StoreError::Backend("refused".into()))
    });
    assert!(aborted.is_err());
    assert_eq!(store.get(b"t/w").expect("get"), None, "an aborted transaction writes nothing");
    assert_eq!(store.get(b"t/y").expect("get"), Some(b"2".to_vec()));

    // A group: each transaction sees the committed ones before it; an aborted one leaves no trace.
    store
        .transact_many(3, &mut |i, tx| match i {
            0 => {
                tx.put(b"g/n", b"1");
                Outcome::Commit
            }
            1 => {
                tx.put(b"g/n", b"junk");
                tx.put(b"g/aborted", b"x");
                Outcome::Abort
            }
            _ => {
                let seen = tx.get(b"g/n").ok().flatten();
                tx.put(b"g/seen", &seen.unwrap_or_default());
                Outcome::Commit
            }
        })
        .expect("group");
    assert_eq!(store.get(b"g/n").expect("get"), Some(b"1".to_vec()));
    assert_eq!(store.get(b"g/seen").expect("get"), Some(b"1".to_vec()), "the third saw the first");
    assert_eq!(store.get(b"g/aborted").expect("get"), None);

    // Scans stay inside their prefix, in both directions, with and without a start.
    for k in ["s/a", "s/b", "s/c", "s0", "r/z", "s/\u{ff}"] {
        put(store, k.as_bytes(), b"v");
    }
    assert_eq!(keys(store.scan(b"s/", None, false)), ["s/a", "s/b", "s/c", "s/\u{ff}"]);
    assert_eq!(keys(store.scan(b"s/", None, true)), ["s/\u{ff}", "s/c", "s/b", "s/a"]);
    assert_eq!(keys(store.scan(b"s/", Some(b"s/a"), false)), ["s/b", "s/c", "s/\u{ff}"]);
    assert_eq!(keys(store.scan(b"s/", Some(b"s/c"), true)), ["s/b", "s/a"]);
    assert_eq!(keys(store.scan(b"s/", Some(b"r/"), false)), ["s/a", "s/b", "s/c", "s/\u{ff}"]);
    assert!(keys(store.scan(b"q/", None, false)).is_empty());
    let mut visited = vec![];
    store
        .visit(b"s/", &mut |k, v| {
            visited.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
            Ok(())
        })
        .expect("visit");
    assert_eq!(visited.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["s/a", "s/b", "s/c", "s/\u{ff}"]);
    assert!(visited.iter().all(|(_, v)| v == b"v"), "a visit lends the stored values");
    let stop = store.visit(b"s/", &mut |_, _| Err(StoreError::Backend("enough".into())));
    assert!(stop.is_err(), "the visitor's error ends the visit");
}

fn counter(store: &dyn Store) -> u64 {
    store.get(b"counter").expect("get").map_or(0, |v| u64::from_be_bytes(v.try_into().expect("8 bytes")))
}

/// Many writers doing read-increment-write lose no update.
fn no_lost_updates(store: Arc<dyn Store>) {
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let s: &dyn Store = s.as_ref();
                    s.transact(|tx| -> Result<(), StoreError> {
                        let n = tx.get(b"counter")?.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])));
                        tx.put(b"counter", &(n + 1).to_be_bytes());
                        Ok(())
                    })
                    .expect("commit");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(counter(store.as_ref()), 32 * 50);
}

#[test]
fn sled_passes_the_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path(), 8 << 20).expect("open");
    suite(&store);
}

#[test]
fn a_store_created_with_sled_s_default_segments_still_opens_and_a_new_one_gets_large_ones() {
    let conf =
        |dir: &std::path::Path| String::from_utf8_lossy(&std::fs::read(dir.join("conf")).expect("conf")).into_owned();
    let old = tempfile::tempdir().expect("tempdir");
    {
        let db = sled::Config::new().path(old.path()).open().expect("sled with its defaults");
        db.insert(b"k", b"v".as_slice()).expect("insert");
        db.flush().expect("flush");
    }
    let store = SledStore::open(old.path(), 8 << 20).expect("a store of 512 KiB segments opens");
    assert_eq!(store.get(b"k").expect("get"), Some(b"v".to_vec()));
    put(&store, b"k2", b"v2");
    drop(store);
    assert!(conf(old.path()).contains("segment_size: 524288"), "{}", conf(old.path()));
    let store = SledStore::open(old.path(), 8 << 20).expect("and again");
    assert_eq!(store.get(b"k2").expect("get"), Some(b"v2".to_vec()));

    let new = tempfile::tempdir().expect("tempdir");
    drop(SledStore::open(new.path(), 8 << 20).expect("open"));
    assert!(conf(new.path()).contains(&format!("segment_size: {}", super::sled_kv::NEW_SEGMENT_BYTES)));
}

#[test]
fn sled_loses_no_concurrent_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), 8 << 20).expect("open"));
    no_lost_updates(store);
}

#[test]
fn sled_keeps_commits_across_reopen_and_refuses_a_second_opener() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SledStore::open(dir.path(), 8 << 20).expect("open");
        put(&store, b"k", b"v");
        match SledStore::open(dir.path(), 8 << 20) {
            Err(StoreError::DataDir { reason, .. }) => assert!(reason.contains("in use"), "{reason}"),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a second opener must be refused"),
        }
    }
    let store = SledStore::open(dir.path(), 8 << 20).expect("reopen");
    assert_eq!(store.get(b"k").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn blobs_round_trip_dedupe_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path(), 1000).expect("open");
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let info = blobs.put(&data).expect("put");
    assert!(info.newly_stored);
    assert_eq!(info.size, 1000);
    assert_eq!(info.sha256, hex::encode(sha2::Sha256::digest(&data)));
    assert!(!blobs.put(&data).expect("again").newly_stored);
    assert_eq!(blobs.size_of(&info.sha256).expect("size"), Some(1000));

    let mut r = blobs.reader(&info.sha256, 300).expect("reader");
    let mut back = vec![];
    while let Some(c) = r.next_chunk().expect("chunk") {
        assert!(c.len() <= 300);
        back.extend(c);
    }
    assert_eq!(back, data);

    let mut w = blobs.writer().expect("writer");
    w.write(&data[..600]).expect("within");
    assert!(matches!(w.write(&data[..401]), Err(StoreError::TooLarge { limit: 1000 })));
    assert!(w.write(b"x").is_err(), "an abandoned upload stays refused");
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count(), 0, "temp file removed");
}

#[test]
fn blobs_refuse_bad_names_and_detect_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path(), 1 << 20).expect("open");
    for bad in ["", "../etc/passwd", &"A".repeat(64), &"0".repeat(63), "tmp"] {
        assert_eq!(blobs.size_of(bad).expect("size"), None);
        assert!(matches!(blobs.reader(bad, 10), Err(StoreError::BlobMissing(_))), "{bad}");
    }
    let info = blobs.put(b"hello attachment").expect("put");
    let path = dir.path().join(&info.sha256);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&path, bytes).expect("damage it");
    let mut r = blobs.reader(&info.sha256, 4).expect("reader");
    let outcome = loop {
        match r.next_chunk() {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(matches!(outcome, Err(StoreError::BlobDamaged { .. })));
}

#[test]
fn blobs_clean_up_temp_files_on_drop_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path(), 1 << 20).expect("open");
    let mut w = blobs.writer().expect("writer");
    w.write(b"partial").expect("write");
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count(), 0);
    std::fs::write(dir.path().join("tmp").join("upload-crashed"), b"x").expect("leftover");
    drop(blobs);
    let _again = BlobStore::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count(), 0);
}

fn held(dir: &std::path::Path) -> SledStore {
    let options = SledOptions { defer_at: 8, apply_in_background: false, ..SledOptions::new(8 << 20) };
    SledStore::open_with(dir, options).expect("open")
}

fn all(store: &dyn Store) -> Vec<(String, String)> {
    store
        .scan(b"", None, false)
        .map(|r| {
            let (k, v) = r.expect("scan");
            (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned())
        })
        .collect()
}

/// Commits 20 new keys `n/00`..`n/19` and one ordinary key in one transaction.
fn commit_new_keys(store: &dyn Store) {
    store
        .transact(|tx| -> Result<(), StoreError> {
            for i in 0..20 {
                tx.put_new(format!("n/{i:02}").as_bytes(), format!("v{i}").as_bytes());
            }
            tx.put(b"m/x", b"plain");
            Ok(())
        })
        .expect("commit");
}

fn wait_applied(store: &dyn Store) {
    within_a_minute("the background applier did not finish", || store.deferred_keys() == 0);
}

#[test]
fn sled_serves_a_deferred_commit_before_and_after_it_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected: Vec<(String, String)> = {
        let store = held(dir.path());
        commit_new_keys(&store);
        assert_eq!(store.deferred_keys(), 20, "20 new keys reach the threshold of 8");
        assert_eq!(store.get(b"n/07").expect("get"), Some(b"v7".to_vec()));
        assert_eq!(store.get(b"m/x").expect("get"), Some(b"plain".to_vec()));
        assert_eq!(keys(store.scan(b"n/", None, false)).len(), 20);
        let back = keys(store.scan(b"n/", Some(b"n/05"), true));
        assert_eq!(back, ["n/04", "n/03", "n/02", "n/01", "n/00"]);
        assert_eq!(keys(store.scan(b"n/", Some(b"n/17"), false)), ["n/18", "n/19"]);
        let mut visited = 0;
        store
            .visit(b"n/1", &mut |_, _| {
                visited += 1;
                Ok(())
            })
            .expect("visit");
        assert_eq!(visited, 10);
        // Transactions read them too, and a later write wins over the waiting copy.
        (&store as &dyn Store)
            .transact(|tx| -> Result<(), StoreError> {
                assert_eq!(tx.get(b"n/03")?, Some(b"v3".to_vec()));
                tx.put(b"n/03", b"later");
                Ok(())
            })
            .expect("commit");
        assert_eq!(store.get(b"n/03").expect("get"), Some(b"later".to_vec()));
        let everything = all(&store);
        assert_eq!(everything.len(), 21, "the log chunks are not visible: {everything:?}");
        let mut snapshot = 0;
        store
            .snapshot(&mut |_, _| {
                snapshot += 1;
                Ok(())
            })
            .expect("snapshot");
        assert_eq!(snapshot, 21);
        everything
    };
    // A restart before the keys were applied loads them back from their log chunks.
    let store = held(dir.path());
    assert_eq!(store.deferred_keys(), 20);
    assert_eq!(all(&store), expected);
    drop(store);
    // The applier moves them into the tree; nothing changes for readers, and the chunks go.
    let store = SledStore::open(dir.path(), 8 << 20).expect("open");
    wait_applied(&store);
    assert_eq!(all(&store), expected);
    assert_eq!(store.get(b"n/03").expect("get"), Some(b"later".to_vec()), "the later write still wins");
    drop(store);
    let store = held(dir.path());
    assert_eq!(store.deferred_keys(), 0, "no chunk is left to load");
    assert_eq!(all(&store), expected);
}

#[test]
fn sled_deletes_a_waiting_key_for_good_and_keeps_small_commits_direct() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = held(dir.path());
        (&store as &dyn Store)
            .transact(|tx| -> Result<(), StoreError> {
                for i in 0..7 {
                    tx.put_new(format!("s/{i}").as_bytes(), b"small");
                }
                Ok(())
            })
            .expect("commit");
        assert_eq!(store.deferred_keys(), 0, "7 new keys stay under the threshold of 8");
        commit_new_keys(&store);
        (&store as &dyn Store)
            .transact(|tx| -> Result<(), StoreError> {
                tx.delete(b"n/05");
                Ok(())
            })
            .expect("delete");
        assert_eq!(store.get(b"n/05").expect("get"), None);
        assert_eq!(store.deferred_keys(), 0, "a delete of a waiting key applies the waiting batches first");
        assert_eq!(keys(store.scan(b"n/", None, false)).len(), 19);
        let files = std::fs::read_dir(dir.path().join("deferred")).expect("the batch directory").count();
        assert_eq!(files, 0, "the drained batch's file goes once its marker's removal is flushed");
    }
    let store = held(dir.path());
    assert_eq!(store.get(b"n/05").expect("get"), None, "the deleted key does not come back after a restart");
    assert_eq!(keys(store.scan(b"n/", None, false)).len(), 19);
    assert_eq!(keys(store.scan(b"s/", None, false)).len(), 7);
}

#[test]
fn sled_with_deferral_passes_the_suite_and_loses_no_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SledStore::open_with(dir.path(), SledOptions { defer_at: 8, ..SledOptions::new(8 << 20) }).expect("open"),
    );
    commit_new_keys(store.as_ref());
    suite(store.as_ref());
    no_lost_updates(store.clone());
    wait_applied(store.as_ref());
    assert_eq!(keys(store.scan(b"n/", None, false)).len(), 20);
}

/// A process that stops right after a deferred commit was acknowledged (no clean close, no background move)
/// leaves it whole, and none of it in the blob files sled never fsyncs. Runs itself as the child process.
#[test]
fn sled_keeps_a_deferred_commit_out_of_unsynced_blobs_across_an_abrupt_exit() {
    const N: usize = 6000;
    if let Ok(dir) = std::env::var("GONGWEN_TEST_CHILD_STORE") {
        let store = held(std::path::Path::new(&dir));
        (&store as &dyn Store)
            .transact(|tx| -> Result<(), StoreError> {
                for i in 0..N {
                    tx.put_new(format!("n/{i:05}").as_bytes(), &[b'x'; 200]);
                }
                tx.put(b"m/doc", b"the document");
                Ok(())
            })
            .expect("commit");
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let test = "store::tests::sled_keeps_a_deferred_commit_out_of_unsynced_blobs_across_an_abrupt_exit";
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture"])
        .env("GONGWEN_TEST_CHILD_STORE", dir.path())
        .status()
        .expect("child runs");
    assert!(status.success());
    let blobs = std::fs::read_dir(dir.path().join("blobs")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(blobs, 0, "the 1.3 MB of new keys went to a file of ours, not to sled blobs");
    let store = held(dir.path());
    assert_eq!(store.get(b"m/doc").expect("get"), Some(b"the document".to_vec()));
    assert_eq!(store.deferred_keys(), N);
    assert_eq!(keys(store.scan(b"n/", None, false)).len(), N);
    assert_eq!(keys(store.scan(b"", Some(b"\xff\xff"), true)).len(), N + 1, "no private key in a reverse scan");
}

/// The group the cached store keeps in the suite: `s/`, which the suite visits.
fn suite_groups(key: &[u8]) -> Option<usize> {
    key.starts_with(b"s/").then_some(2)
}

#[test]
fn the_read_cache_over_sled_passes_the_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), 8 << 20).expect("open"));
    let cached = ScanCache::new(sled, suite_groups, 1 << 20);
    suite(&cached);
    // The second visit of `s/` in the suite was answered from memory.
    let stats = cached.stats();
    assert_eq!((stats.groups, stats.misses), (1, 1), "{stats:?}");
    assert!(stats.hits >= 1, "{stats:?}");
}

#[test]
fn the_read_cache_over_sled_loses_no_concurrent_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), 8 << 20).expect("open"));
    no_lost_updates(Arc::new(ScanCache::new(sled, |k| k.starts_with(b"count").then_some(5), 1 << 20)));
}

/// Opens a store whose flushes wait `gather_wait` at most for their groups to gather.
fn gathering_store(dir: &std::path::Path, gather_wait: std::time::Duration) -> Arc<SledStore> {
    Arc::new(SledStore::open_with(dir, SledOptions { gather_wait, ..SledOptions::new(8 << 20) }).expect("open"))
}

fn put_each(store: &dyn Store, names: &[String]) -> Ticket {
    store
        .stage_many(names.len(), &mut |i, tx| {
            tx.put(names[i].as_bytes(), b"v");
            Outcome::Commit
        })
        .expect("stage")
}

/// Polls `done` until it holds, failing after a generous deadline instead of hanging.
fn within_a_minute(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        // A pause between polls: a spinning poll would fight the threads it waits for for the store's locks.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Commits a crowd's group of `n` transactions at once and waits for its flush.
fn crowd(store: &SledStore, n: u64) {
    let names: Vec<String> = (0..n).map(|i| format!("crowd/{i:03}")).collect();
    store.wait_durable(put_each(store, &names)).expect("flush");
}

/// Commits one transaction on a thread of its own; the store's own wait may not end the test's.
fn lone(store: &Arc<SledStore>, key: &str) -> std::thread::JoinHandle<()> {
    let (store, key) = (store.clone(), key.to_owned());
    std::thread::spawn(move || put(store.as_ref(), key.as_bytes(), b"v"))
}

const fn counts(flushes: u64, transactions: u64, waited: u64) -> Flushes {
    Flushes { flushes, transactions, waited }
}

#[test]
fn a_flush_after_a_large_group_waits_for_half_as_many() {
    use super::gather::CROWD;
    let dir = tempfile::tempdir().expect("tempdir");
    // Long enough that only the group's arrival can end the wait.
    let store = gathering_store(dir.path(), std::time::Duration::from_secs(600));
    crowd(&store, CROWD);
    assert_eq!(store.flushes(), counts(1, CROWD, 0));

    let alone = lone(&store, "lone");
    within_a_minute("the lone transaction's flush waits for company", || store.gathering());
    assert!(!alone.is_finished(), "not durable before its group has gathered");
    // All but one of the half crowd wanted: still waiting.
    let more: Vec<String> = (2..CROWD / 2).map(|i| format!("more/{i:03}")).collect();
    let _ = put_each(store.as_ref(), &more);
    assert!(store.gathering() && !alone.is_finished());
    let last = put_each(store.as_ref(), &["more/last".to_owned()]);
    store.wait_durable(last).expect("flush");
    alone.join().expect("the lone transaction");
    assert_eq!(store.flushes(), counts(2, CROWD + CROWD / 2, 1), "one flush for the half crowd");
    assert!(!store.gathering());
}

#[test]
fn a_flush_waits_no_longer_than_its_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = gathering_store(dir.path(), std::time::Duration::from_millis(20));
    crowd(&store, super::gather::CROWD);
    // Nobody joins: the lone transactions still become durable, the first two after the wait, and then the
    // groups they are measured against are small, so the third does not wait.
    for i in 0..3 {
        let alone = lone(&store, &format!("lone/{i}"));
        within_a_minute("a lone transaction is flushed after the wait", || alone.is_finished());
        alone.join().expect("the lone transaction");
    }
    assert_eq!(store.flushes(), counts(4, super::gather::CROWD + 3, 2));
    assert_eq!(store.get(b"lone/2").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn small_groups_never_wait_for_company() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = gathering_store(dir.path(), std::time::Duration::from_secs(600));
    let small = super::gather::CROWD - 1;
    for round in 0..3 {
        crowd(&store, small);
        let alone = lone(&store, &format!("solo/{round}"));
        within_a_minute("a lone transaction after a small group is flushed at once", || alone.is_finished());
        alone.join().expect("the lone transaction");
    }
    assert_eq!(store.flushes(), counts(6, 3 * (small + 1), 0), "no flush waited");
}

#[test]
fn a_flush_that_panics_fails_the_waiting_writes_instead_of_hanging_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = gathering_store(dir.path(), std::time::Duration::ZERO);
    put(store.as_ref(), b"before", b"v");
    assert_eq!(*store.failure().borrow(), None);
    store.panic_next_flush();
    // The leader is the committing thread itself: its commit panics with the flush.
    let leader = lone(&store, "lost");
    within_a_minute("the flush leader's thread ends", || leader.is_finished());
    assert!(leader.join().is_err(), "the leader's commit panicked with its flush");
    // Later writes get an error at once, not a wait for a leader that is gone.
    let later = {
        let store = store.clone();
        std::thread::spawn(move || {
            let store: &dyn Store = store.as_ref();
            store.transact(|tx| -> Result<(), StoreError> {
                tx.put(b"after", b"v");
                Ok(())
            })
        })
    };
    within_a_minute("a write after the panicked flush is answered", || later.is_finished());
    let refused = later.join().expect("the later write's thread");
    assert!(
        matches!(&refused, Err(StoreError::Failed(m)) if m.contains("a flush panicked")),
        "the later write is refused, naming the panic: {refused:?}"
    );
    assert_eq!(store.failure().borrow().as_deref(), Some("a flush panicked"), "the store says why it failed");
    // A write after the failure is refused before it runs: nothing reads a store in an unknown state for it.
    let mut ran = false;
    let refused = (store.as_ref() as &dyn Store).transact(|_tx| -> Result<(), StoreError> {
        ran = true;
        Ok(())
    });
    assert!(matches!(refused, Err(StoreError::Failed(_))) && !ran, "{refused:?}");
    let ticket = store.stage_many(1, &mut |_, _| {
        ran = true;
        Outcome::Commit
    });
    assert!(matches!(ticket, Err(StoreError::Failed(_))) && !ran, "{ticket:?}");
    assert_eq!(store.get(b"before").expect("get"), Some(b"v".to_vec()), "what was durable before stays readable");
}
