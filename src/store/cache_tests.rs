//! The read cache against the store under it: whatever is written, and whenever, a cached visit shows what an
//! uncached one does.
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

/// Groups `a/`, `b/` and `c/`; other keys are not cached.
fn groups(key: &[u8]) -> Option<usize> {
    matches!(key.get(..2), Some(b"a/" | b"b/" | b"c/")).then_some(2)
}

fn open(budget: usize) -> (tempfile::TempDir, Arc<dyn Store>, ScanCache) {
    open_copying(budget, true)
}

/// With `copy` false, a group a reader holds is always dropped on a write, never copied: the other path.
fn open_copying(budget: usize, copy: bool) -> (tempfile::TempDir, Arc<dyn Store>, ScanCache) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), 8 << 20).expect("open"));
    let cache = if copy {
        ScanCache::new(sled.clone(), groups, budget)
    } else {
        ScanCache::with_copy_max(sled.clone(), groups, budget, (0, 0))
    };
    (dir, sled, cache)
}

fn write(store: &dyn Store, key: &[u8], value: Option<&[u8]>) {
    store
        .transact(|tx| -> Result<(), StoreError> {
            match value {
                Some(v) => tx.put(key, v),
                None => tx.delete(key),
            }
            Ok(())
        })
        .expect("commit");
}

fn pairs(store: &dyn Store, prefix: &[u8]) -> Vec<Pair> {
    let mut out = vec![];
    store
        .visit(prefix, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("visit");
    out
}

/// Visits `prefix` and, at its first pair, writes `key`: a write to a group a reader holds.
fn write_while_reading(cache: &ScanCache, prefix: &[u8], key: &[u8], value: &[u8]) {
    let mut first = true;
    cache
        .visit(prefix, &mut |_, _| {
            if std::mem::take(&mut first) {
                write(cache, key, Some(value));
            }
            Ok(())
        })
        .expect("visit");
}

fn pair(k: &str, v: &str) -> Pair {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn a_loaded_group_is_answered_from_memory_and_follows_later_writes() {
    let (_dir, sled, cache) = open(1 << 20);
    write(&cache, b"a/1", Some(b"one"));
    write(&cache, b"a/2", Some(b"two"));
    assert_eq!(pairs(&cache, b"a/"), [pair("a/1", "one"), pair("a/2", "two")]);
    assert_eq!((cache.stats().misses, cache.stats().hits, cache.stats().groups), (1, 0, 1));

    write(&cache, b"a/2", None);
    write(&cache, b"a/3", Some(b"three"));
    let dyn_cache: &dyn Store = &cache;
    dyn_cache
        .transact(|tx| -> Result<(), StoreError> {
            tx.put_new(b"a/4", b"four");
            tx.put(b"a/1", b"uno");
            Ok(())
        })
        .expect("commit");
    let aborted: Result<(), StoreError> = dyn_cache.transact(|tx| {
        tx.put(b"a/9", b"never");
        Err(StoreError::Backend("refused".into()))
    });
    assert!(aborted.is_err());
    let want = [pair("a/1", "uno"), pair("a/3", "three"), pair("a/4", "four")];
    assert_eq!(pairs(&cache, b"a/"), want);
    assert_eq!(pairs(sled.as_ref(), b"a/"), want, "the store under it agrees");
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1), "the second visit was a hit");

    // Not a whole group, or not a cached family: passed through.
    assert_eq!(pairs(&cache, b"a/3"), [pair("a/3", "three")]);
    write(&cache, b"z/1", Some(b"z"));
    assert_eq!(pairs(&cache, b"z/"), [pair("z/1", "z")]);
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
}

#[test]
fn writes_that_land_while_a_group_loads_are_replayed_over_the_load() {
    let (_dir, sled, cache) = open(1 << 20);
    for k in ["b/1", "b/2", "b/3"] {
        write(&cache, k.as_bytes(), Some(b"old"));
    }
    let mut seen = 0;
    cache
        .visit(b"b/", &mut |_, _| {
            seen += 1;
            if seen == 2 {
                // The load is half way: one key behind it changes, one ahead, one appears, one goes.
                write(&cache, b"b/1", Some(b"new"));
                write(&cache, b"b/3", Some(b"new"));
                write(&cache, b"b/4", Some(b"new"));
                write(&cache, b"b/2", None);
            }
            Ok(())
        })
        .expect("visit");
    let want = [pair("b/1", "new"), pair("b/3", "new"), pair("b/4", "new")];
    assert_eq!(pairs(sled.as_ref(), b"b/"), want);
    assert_eq!(pairs(&cache, b"b/"), want);
    assert_eq!(cache.stats().hits, 1, "the load was kept, the replayed changes on top of it");
}

#[test]
fn a_write_to_a_group_being_read_from_memory_copies_a_small_one_and_drops_a_large_one() {
    let (_dir, _sled, cache) = open(1 << 24);
    write(&cache, b"c/1", Some(b"one"));
    assert_eq!(pairs(&cache, b"c/"), [pair("c/1", "one")]);
    let mut during = vec![];
    cache
        .visit(b"c/", &mut |k, v| {
            during.push((k.to_vec(), v.to_vec()));
            write(&cache, b"c/2", Some(b"two"));
            Ok(())
        })
        .expect("visit");
    assert_eq!(during, [pair("c/1", "one")], "the reader finishes on the version it started with");
    assert_eq!(pairs(&cache, b"c/"), [pair("c/1", "one"), pair("c/2", "two")]);
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 2), "the small group was copied, not dropped");

    let big: Vec<(Vec<u8>, Vec<u8>)> = (0..2000u32).map(|i| (format!("b/{i:05}").into_bytes(), vec![1])).collect();
    let dyn_cache: &dyn Store = &cache;
    dyn_cache
        .transact(|tx| -> Result<(), StoreError> {
            for (k, v) in &big {
                tx.put(k, v);
            }
            Ok(())
        })
        .expect("commit");
    assert_eq!(pairs(&cache, b"b/").len(), 2000);
    write_while_reading(&cache, b"b/", b"b/x", b"new");
    let misses = cache.stats().misses;
    assert_eq!(pairs(&cache, b"b/").len(), 2001);
    assert_eq!(cache.stats().misses, misses + 1, "the large group was dropped and loaded again");
}

#[test]
fn the_budget_evicts_the_least_recently_used_group_and_refuses_one_larger_than_itself() {
    let value = vec![b'x'; 1000];
    let (_dir, _sled, cache) = open(5000);
    for g in ["a", "b", "c"] {
        for i in 0..2 {
            write(&cache, format!("{g}/{i}").as_bytes(), Some(&value));
        }
    }
    pairs(&cache, b"a/");
    pairs(&cache, b"b/");
    assert_eq!(cache.stats().groups, 2);
    pairs(&cache, b"a/");
    pairs(&cache, b"c/");
    let stats = cache.stats();
    assert_eq!(stats.groups, 2, "{stats:?}");
    assert!(stats.bytes <= 5000, "{stats:?}");
    pairs(&cache, b"a/");
    assert_eq!(cache.stats().hits, 2, "a/ was used more recently than b/, which went");
    pairs(&cache, b"b/");
    assert_eq!(cache.stats().hits, 2, "b/ was loaded again");

    for i in 2..6 {
        write(&cache, format!("c/{i}").as_bytes(), Some(&value));
    }
    let misses = cache.stats().misses;
    assert_eq!(pairs(&cache, b"c/").len(), 6);
    assert_eq!(pairs(&cache, b"c/").len(), 6);
    assert_eq!(cache.stats().misses, misses + 2, "a group over the budget is read through every time");
    assert!(cache.stats().bytes <= 5000);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, u8),
    Delete(u8, u8),
    Visit(u8),
    /// A visit whose visitor writes after the `n`th pair.
    VisitWriting(u8, u8, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, 0..8u8, any::<u8>()).prop_map(|(g, k, v)| Op::Put(g, k, v)),
        (0..4u8, 0..8u8).prop_map(|(g, k)| Op::Delete(g, k)),
        (0..4u8).prop_map(Op::Visit),
        (0..4u8, 0..4u8, 0..8u8, any::<u8>()).prop_map(|(g, n, k, v)| Op::VisitWriting(g, n, k, v)),
    ]
}

fn key(g: u8, k: u8) -> Vec<u8> {
    vec![b"abcz"[usize::from(g % 4)], b'/', b'0' + k]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any mix of writes, visits and visits that write, under a budget that fits about two groups: every visit
    /// through the cache shows what the store under it holds.
    #[test]
    fn cached_visits_always_match_the_store(ops in proptest::collection::vec(op(), 1..60), copy in any::<bool>()) {
        let (_dir, sled, cache) = open_copying(700, copy);
        for op in ops {
            match op {
                Op::Put(g, k, v) => write(&cache, &key(g, k), Some(&[v; 20])),
                Op::Delete(g, k) => write(&cache, &key(g, k), None),
                Op::Visit(g) => {
                    let prefix = &key(g, 0)[..2];
                    prop_assert_eq!(pairs(&cache, prefix), pairs(sled.as_ref(), prefix));
                }
                Op::VisitWriting(g, n, k, v) => {
                    let prefix = &key(g, 0)[..2];
                    let mut seen = 0;
                    cache.visit(prefix, &mut |_, _| {
                        if seen == n {
                            write(&cache, &key(g, k), Some(&[v; 20]));
                        }
                        seen += 1;
                        Ok(())
                    }).expect("visit");
                    prop_assert_eq!(pairs(&cache, prefix), pairs(sled.as_ref(), prefix));
                }
            }
        }
        for g in 0..4 {
            let prefix = &key(g, 0)[..2];
            prop_assert_eq!(pairs(&cache, prefix), pairs(sled.as_ref(), prefix));
        }
        prop_assert!(cache.stats().bytes <= 700);
    }
}

/// Stages (without waiting for the flush) one commit setting `a/1` to `v`, as the writer thread does.
fn stage_a1(cache: &ScanCache, v: &'static [u8]) -> Ticket {
    let mut put = |_: usize, tx: &mut dyn Tx| {
        tx.put(b"a/1", v);
        Outcome::Commit
    };
    cache.stage_many(1, &mut put).expect("stage")
}

/// A load over the budget stops copying pairs, and deletes replayed over it can bring its byte count back under
/// the budget: what was copied is still not the whole group and must not be kept.
#[test]
fn a_load_cut_short_by_the_budget_is_never_kept() {
    // 8 keys of 87 counted bytes each plus 66 for the group: 762 > 500, so the load stops copying after 5 keys.
    let (_dir, sled, cache) = open(500);
    for k in 0..8u8 {
        write(&cache, &key(0, k), Some(&[1; 20]));
    }
    let mut seen = 0;
    cache
        .visit(b"a/", &mut |_, _| {
            seen += 1;
            if seen == 8 {
                // Deletes of keys the load already copied, landing while it is still open.
                for k in 0..4u8 {
                    write(&cache, &key(0, k), None);
                }
            }
            Ok(())
        })
        .expect("visit");
    let truth = pairs(sled.as_ref(), b"a/");
    assert_eq!(truth.len(), 4, "a/4..a/7 remain");
    assert_eq!(pairs(&cache, b"a/"), truth, "a group never copied whole is not served");
}

/// The writer stages group N+1 while the flush waiter waits for group N, and the flush leader for N hands
/// everything pending to sled, N+1 included. Settling N must not write N's value over a group that may already
/// show N+1's.
#[test]
fn settling_a_ticket_does_not_set_back_a_key_a_later_visible_commit_changed() {
    let (_dir, sled, cache) = open(1 << 20);
    write(&cache, b"a/1", Some(b"old"));
    assert_eq!(pairs(&cache, b"a/"), [pair("a/1", "old")]);
    let (t1, t2) = (stage_a1(&cache, b"first"), stage_a1(&cache, b"second"));
    assert!(t2 > t1);
    // The flush waiter, for group 1: its flush makes group 2 visible too.
    cache.wait_durable(t1).expect("durable 1");
    // Group 1's reply goes out here.
    assert_eq!(pairs(sled.as_ref(), b"a/"), [pair("a/1", "second")]);
    assert_eq!(pairs(&cache, b"a/"), [pair("a/1", "second")], "the cache must not show an older value than sled");
    cache.wait_durable(t2).expect("durable 2");
}

/// Same window, a load instead of a loaded group: a trace that loads during group 1's fsync sees group 2's
/// value, and a trace after group 1's reply must not see group 1's.
#[test]
fn a_load_during_a_flush_is_not_set_back_by_its_settle() {
    let (_dir, sled, cache) = open(1 << 20);
    write(&cache, b"a/1", Some(b"old"));
    let (t1, t2) = (stage_a1(&cache, b"first"), stage_a1(&cache, b"second"));
    // What the flush leader of `cache.wait_durable(t1)` does before its settle: apply everything pending (the
    // fsync that follows takes milliseconds, during which a trace can load the group).
    sled.wait_durable(t1).expect("the leader's apply and flush");
    let during = pairs(&cache, b"a/");
    assert_eq!(during, [pair("a/1", "second")]);
    cache.wait_durable(t1).expect("settle 1");
    let after = pairs(&cache, b"a/");
    assert_eq!(after, during, "a later read must not show an older value");
    cache.wait_durable(t2).expect("durable 2");
}

/// A group dropped because a reader held it, or whose load failed, must not stay as a slot collecting every later
/// write for a replay that never comes.
#[test]
fn a_dropped_or_abandoned_group_collects_nothing() {
    let (_dir, _sled, cache) = open(1 << 20);
    // Large enough to be dropped, not copied, when a write lands while it is read.
    let dyn_cache: &dyn Store = &cache;
    dyn_cache
        .transact(|tx| -> Result<(), StoreError> {
            for i in 0..1100u32 {
                tx.put(format!("c/x{i:04}").as_bytes(), b"v");
            }
            Ok(())
        })
        .expect("commit");
    pairs(&cache, b"c/");
    write_while_reading(&cache, b"c/", b"c/2", b"two");
    // A visit that stops early (the visitor's error) leaves a slot that is never loaded either.
    write(&cache, b"b/1", Some(b"x"));
    let _ = cache.visit(b"b/", &mut |_, _| Err(StoreError::Backend("stop".into())));
    for i in 0..500 {
        write(&cache, format!("c/{i:03}").as_bytes(), Some(&[7; 100]));
        write(&cache, format!("b/{i:03}").as_bytes(), Some(&[7; 100]));
    }
    let stats = cache.stats();
    assert_eq!(stats.groups, 0);
    assert_eq!(stats.bytes, 0, "bytes held for groups that are not loaded: {stats:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Like the model test above, with deletes inside visits and groups that outgrow the budget, so loads are cut
    /// short while replayed deletes shrink them again.
    #[test]
    fn cached_visits_match_the_store_when_visits_delete_and_loads_outgrow_the_budget(
        ops in proptest::collection::vec((0..4u8, 0..4u8, 0..8u8, any::<bool>(), 0..8u8), 1..60),
        copy in any::<bool>(),
    ) {
        let (_dir, sled, cache) = open_copying(600, copy);
        for (g, n, k, delete, fill) in ops {
            let prefix = &key(g, 0)[..2];
            if fill == 0 {
                for i in 0..8u8 { write(&cache, &key(g, i), Some(&[i; 20])); }
                continue;
            }
            let mut seen = 0;
            cache.visit(prefix, &mut |_, _| {
                if seen == n {
                    let v = [k; 20];
                    write(&cache, &key(g, k), if delete { None } else { Some(&v) });
                }
                seen += 1;
                Ok(())
            }).expect("visit");
            prop_assert_eq!(pairs(&cache, prefix), pairs(sled.as_ref(), prefix));
        }
    }
}

/// Writers on several threads (each its own stage and flush wait, so flushes show each other's commits) and
/// readers of the same group: no read shows less than a value whose commit has returned, and the end agrees with
/// the store. (Two reads in a row may see a commit still being flushed and then not: one loads from sled, which
/// shows it already, the next is answered from the cache, which takes it at its settle. That is allowed.)
#[test]
fn concurrent_writers_and_readers_never_see_a_value_go_back() {
    for copy in [true, false] {
        readers_and_writers(copy);
    }
}

fn readers_and_writers(copy: bool) {
    let (_dir, sled, cache) = open_copying(1 << 20, copy);
    let cache = Arc::new(cache);
    let acknowledged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let read = |c: &ScanCache| -> u64 {
        let mut n = 0;
        c.visit(b"a/", &mut |_, v| {
            n = u64::from_be_bytes(v.try_into().unwrap_or([0; 8]));
            Ok(())
        })
        .expect("visit");
        n
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (c, acknowledged) = (cache.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let c: &dyn Store = c.as_ref();
                    let written = c
                        .transact(|tx| -> Result<u64, StoreError> {
                            let n = tx.get(b"a/n")?.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])));
                            tx.put(b"a/n", &(n + 1).to_be_bytes());
                            Ok(n + 1)
                        })
                        .expect("commit");
                    acknowledged.fetch_max(written, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (c, acknowledged) = (cache.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let floor = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
                    let n = read(&c);
                    assert!(n >= floor, "read {n} after {floor} was acknowledged");
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().expect("thread");
    }
    assert_eq!(read(&cache), 400);
    assert_eq!(pairs(sled.as_ref(), b"a/"), pairs(cache.as_ref(), b"a/"));
}
