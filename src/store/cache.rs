//! A read cache of whole key groups over any [`Store`]: a group is every key under one prefix (all deliveries of
//! one document), and a [`Store::visit`] of exactly that prefix is answered from memory once the group is loaded.
//! A trace over 200,000 deliveries spends more time in sled's iterator than in everything else it does; a
//! supervisor's dashboard asks for the same trees again and again.
//!
//! Coherence, without a lock across the backend's reads:
//! - Writes reach the cache in commit order, after [`Store::wait_durable`] of their ticket returns (so after the
//!   backend shows them) and before it returns to the caller (so a reply is never followed by an older read). The
//!   cache may lag the backend by the commits being flushed at that moment, never by an acknowledged one.
//! - The backend's flush may show later commits than the ticket it was asked for (sled applies everything
//!   pending). A key changed again by such an unsettled commit is not set back to the older value: its group is
//!   dropped instead. Commits are counted per key before they can become visible, while the backend still holds
//!   its write lock inside [`Store::stage_many`].
//! - A group being loaded keeps the changes that arrive meanwhile and replays them over what its scan found: the
//!   scan may or may not have seen each of them, and replaying a key's newest value is right either way.
//! - A group that a reader is iterating is not changed under it: a small one is copied for the change, a large
//!   one dropped, to load again at its next visit. Dropped too: a group whose changes piled up during a long
//!   load, and every group a failed flush touched. A dropped group's slot goes, so a load finishing after the
//!   drop finds none and is discarded; epochs tell a load from a later one of the same group.
//! - A load is kept only whole: one that outgrew the budget leaves a marker, and later visits of that group read
//!   the backend without copying it.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Flushes, Outcome, Pair, Store, StoreError, Ticket, Tx, Visit};

/// Where a key's group ends: the length of its group prefix, or `None` for keys that are not cached.
pub type GroupOf = fn(&[u8]) -> Option<usize>;

/// What one cached pair is counted as, beyond its bytes (map node and vectors).
const ENTRY_OVERHEAD: usize = 64;
/// A group a reader holds is copied for a change up to this many pairs and bytes, and dropped above: the copy is
/// made on the flush thread, under the cache's lock.
const COPY_ON_WRITE_MAX: (usize, usize) = (1024, 256 * 1024);
/// Changes a loading group keeps for its replay; past this the load is given up.
const MAX_REPLAY: usize = 16_384;

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;
/// A key's value after a commit; `None` for a delete.
type Change = (Vec<u8>, Option<Vec<u8>>);

/// The cache's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes the loaded groups take (approximately).
    pub bytes: usize,
    /// Groups loaded.
    pub groups: usize,
    /// Visits answered from memory.
    pub hits: u64,
    /// Visits that read the backend.
    pub misses: u64,
}

/// A [`Store`] that keeps the groups it is asked to visit in memory, within a byte budget.
pub struct ScanCache {
    inner: Arc<dyn Store>,
    group_of: GroupOf,
    budget: usize,
    /// Pairs and bytes up to which a group a reader holds is copied for a change ([`COPY_ON_WRITE_MAX`]).
    copy_max: (usize, usize),
    state: Mutex<State>,
    /// Held from staging a group of transactions to queueing its changes, so the queue is in commit order.
    staging: Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct State {
    slots: HashMap<Vec<u8>, Slot>,
    /// Committed changes of groups not yet known durable, oldest first.
    queued: Vec<(Ticket, Vec<Change>)>,
    bytes: usize,
    /// Keys with committed changes not yet settled, and how many: such a change may already be visible in the
    /// backend (its flush leader applies everything pending), so an older change to the key must not be applied.
    inflight: HashMap<Vec<u8>, usize>,
    epochs: u64,
    clock: u64,
}

/// One group: loaded, being loaded, or too large to keep.
struct Slot {
    epoch: u64,
    entries: Option<Arc<Entries>>,
    /// The group alone outgrew the budget: visits read through without copying it.
    oversize: bool,
    /// While loading: changes since the load began, to replay over its scan.
    replay: Vec<Change>,
    /// Bytes counted for `entries` and `replay`.
    bytes: usize,
    used: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn entry_bytes(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

impl State {
    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Forgets a group. Its slot goes too, so a load in progress finds none and is discarded, and nothing keeps
    /// collecting replay for a group nobody may read again.
    fn drop_group(&mut self, group: &[u8]) {
        if let Some(slot) = self.slots.remove(group) {
            self.bytes = self.bytes.saturating_sub(slot.bytes);
        }
    }

    fn drop_group_of(&mut self, group_of: GroupOf, key: &[u8]) {
        if let Some(group) = group_of(key).and_then(|end| key.get(..end)) {
            self.drop_group(group);
        }
    }

    /// One commit's change to `key` is settled (or abandoned).
    fn release(&mut self, key: &[u8]) {
        if let Some(n) = self.inflight.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.inflight.remove(key);
            }
        }
    }

    fn apply(&mut self, group_of: GroupOf, copy_max: (usize, usize), (key, value): Change) {
        let Some(end) = group_of(&key) else { return };
        let Some(group) = key.get(..end) else { return };
        let Some(slot) = self.slots.get_mut(group) else { return };
        if slot.oversize {
            return;
        }
        let (old, new) = match &mut slot.entries {
            Some(entries) => {
                // A reader iterating this version keeps it unchanged: a small group is copied for the change, a
                // large one dropped (copying it would hold up the flush thread).
                if Arc::get_mut(entries).is_none() && (entries.len() > copy_max.0 || slot.bytes > copy_max.1) {
                    self.drop_group_of(group_of, &key);
                    return;
                }
                let entries = Arc::make_mut(entries);
                let old = match &value {
                    Some(v) => entries.insert(key.clone(), v.clone()),
                    None => entries.remove(&key),
                };
                (
                    old.map(|o| entry_bytes(&key, Some(&o))).unwrap_or(0),
                    value.as_deref().map(|v| entry_bytes(&key, Some(v))).unwrap_or(0),
                )
            }
            None => {
                if slot.replay.len() >= MAX_REPLAY {
                    self.drop_group_of(group_of, &key);
                    return;
                }
                let added = entry_bytes(&key, value.as_deref());
                slot.replay.push((key, value));
                (0, added)
            }
        };
        slot.bytes = slot.bytes.saturating_sub(old) + new;
        self.bytes = self.bytes.saturating_sub(old) + new;
    }

    /// Removes least recently used groups until the loaded ones fit `budget`.
    fn evict(&mut self, budget: usize) {
        if self.bytes <= budget {
            return;
        }
        let mut by_use: Vec<(u64, Vec<u8>)> = self.slots.iter().map(|(k, s)| (s.used, k.clone())).collect();
        by_use.sort_unstable();
        for (_, group) in by_use {
            if self.bytes <= budget {
                break;
            }
            if let Some(slot) = self.slots.remove(&group) {
                self.bytes = self.bytes.saturating_sub(slot.bytes);
            }
        }
    }
}

impl ScanCache {
    /// Caches the groups `group_of` names, keeping at most about `budget` bytes of them.
    pub fn new(inner: Arc<dyn Store>, group_of: GroupOf, budget: usize) -> ScanCache {
        ScanCache::with_copy_max(inner, group_of, budget, COPY_ON_WRITE_MAX)
    }

    /// [`ScanCache::new`] with another copy-on-write limit; `(0, 0)` drops every group a reader holds.
    pub(crate) fn with_copy_max(
        inner: Arc<dyn Store>,
        group_of: GroupOf,
        budget: usize,
        copy_max: (usize, usize),
    ) -> ScanCache {
        ScanCache {
            inner,
            group_of,
            budget,
            copy_max,
            state: Mutex::default(),
            staging: Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Bytes, groups, hits and misses.
    pub fn stats(&self) -> CacheStats {
        let state = lock(&self.state);
        CacheStats {
            bytes: state.bytes,
            groups: state.slots.values().filter(|s| s.entries.is_some()).count(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// What a visit of `group` does: use the loaded version, load it under an epoch, or read through.
    fn lookup(&self, group: &[u8]) -> Lookup {
        let mut state = lock(&self.state);
        let used = state.tick();
        if let Some(slot) = state.slots.get_mut(group) {
            slot.used = used;
            return match &slot.entries {
                Some(entries) => Lookup::Hit(entries.clone()),
                None if slot.oversize => Lookup::Through,
                None => Lookup::Load(slot.epoch),
            };
        }
        let epoch = state.next_epoch();
        let slot = Slot { epoch, entries: None, oversize: false, replay: vec![], bytes: 0, used };
        state.slots.insert(group.to_vec(), slot);
        Lookup::Load(epoch)
    }

    /// Keeps a finished load, unless the group was dropped or loaded meanwhile; one that does not fit the budget
    /// (`entries` is `None`: the load stopped copying) leaves the oversize marker.
    fn keep(&self, group: &[u8], epoch: u64, entries: Option<Entries>, mut bytes: usize) {
        let mut state = lock(&self.state);
        let Some(slot) = state.slots.get_mut(group) else { return };
        if slot.epoch != epoch || slot.entries.is_some() || slot.oversize {
            return;
        }
        let (replay, replayed) = (std::mem::take(&mut slot.replay), std::mem::take(&mut slot.bytes));
        let entries = entries.map(|mut entries| {
            for (key, value) in replay {
                let old = match value {
                    Some(v) => {
                        bytes += entry_bytes(&key, Some(&v));
                        entries.insert(key.clone(), v)
                    }
                    None => entries.remove(&key),
                };
                bytes = bytes.saturating_sub(old.map_or(0, |o| entry_bytes(&key, Some(&o))));
            }
            entries
        });
        match entries {
            Some(entries) if bytes <= self.budget => {
                slot.entries = Some(Arc::new(entries));
                slot.bytes = bytes;
                state.bytes = state.bytes.saturating_sub(replayed) + bytes;
                state.evict(self.budget);
            }
            _ => {
                slot.oversize = true;
                state.bytes = state.bytes.saturating_sub(replayed);
            }
        }
    }

    /// Forgets a load that did not finish (the visitor or the backend failed).
    fn abandon(&self, group: &[u8], epoch: u64) {
        let mut state = lock(&self.state);
        if state.slots.get(group).is_some_and(|s| s.epoch == epoch && s.entries.is_none()) {
            state.drop_group(group);
        }
    }

    /// Applies (or, after a failed flush, drops the groups of) the queued changes up to `ticket`.
    fn settle(&self, ticket: Ticket, durable: bool) {
        let mut state = lock(&self.state);
        let due = state.queued.iter().take_while(|(t, _)| *t <= ticket).count();
        let settled: Vec<(Ticket, Vec<Change>)> = state.queued.drain(..due).collect();
        for (key, _) in settled.iter().flat_map(|(_, changes)| changes) {
            state.release(key);
        }
        for change in settled.into_iter().flat_map(|(_, changes)| changes) {
            if durable && !state.inflight.contains_key(&change.0) {
                state.apply(self.group_of, self.copy_max, change);
            } else {
                // A failed flush; or a later commit changed the key too and may be what the backend shows.
                state.drop_group_of(self.group_of, &change.0);
            }
        }
        state.evict(self.budget);
    }
}

enum Lookup {
    Hit(Arc<Entries>),
    Load(u64),
    Through,
}

/// Passes a transaction through, noting its writes to cached groups.
struct Noting<'a> {
    inner: &'a mut dyn Tx,
    group_of: GroupOf,
    changes: Vec<Change>,
}

impl Noting<'_> {
    fn note(&mut self, key: &[u8], value: Option<&[u8]>) {
        if (self.group_of)(key).is_some() {
            self.changes.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        }
    }
}

impl Tx for Noting<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.note(key, Some(value));
        self.inner.put(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.note(key, None);
        self.inner.delete(key);
    }
    fn put_new(&mut self, key: &[u8], value: &[u8]) {
        self.note(key, Some(value));
        self.inner.put_new(key, value);
    }
}

impl Store for ScanCache {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + '_> {
        self.inner.scan(prefix, after, reverse)
    }

    fn visit(&self, prefix: &[u8], f: &mut Visit<'_>) -> Result<(), StoreError> {
        if (self.group_of)(prefix) != Some(prefix.len()) {
            return self.inner.visit(prefix, f);
        }
        let epoch = match self.lookup(prefix) {
            Lookup::Hit(entries) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                for (k, v) in entries.iter() {
                    f(k, v)?;
                }
                return Ok(());
            }
            Lookup::Through => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return self.inner.visit(prefix, f);
            }
            Lookup::Load(epoch) => epoch,
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (mut loaded, mut bytes, mut whole) = (vec![], prefix.len() + ENTRY_OVERHEAD, true);
        let scanned = self.inner.visit(prefix, &mut |k, v| {
            f(k, v)?;
            if whole {
                bytes += entry_bytes(k, Some(v));
                // Past the budget the group cannot be kept: stop copying it.
                whole = bytes <= self.budget;
                if whole {
                    loaded.push((k.to_vec(), v.to_vec()));
                } else {
                    loaded = vec![];
                }
            }
            Ok(())
        });
        if let Err(e) = scanned {
            self.abandon(prefix, epoch);
            return Err(e);
        }
        // The pairs come in key order, which the map builds from in one pass.
        self.keep(prefix, epoch, whole.then(|| loaded.into_iter().collect()), bytes);
        Ok(())
    }

    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>) -> Result<(), StoreError> {
        let mut failed = None;
        let ticket = self.stage_many(1, &mut |_, tx| match f(tx) {
            Ok(outcome) => outcome,
            Err(e) => {
                failed = Some(e);
                Outcome::Abort
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.wait_durable(ticket)
    }

    fn stage_many(&self, n: usize, run: &mut dyn FnMut(usize, &mut dyn Tx) -> Outcome) -> Result<Ticket, StoreError> {
        let _order = lock(&self.staging);
        let mut changes = vec![];
        let staged = self.inner.stage_many(n, &mut |i, tx| {
            let mut noting = Noting { inner: tx, group_of: self.group_of, changes: vec![] };
            let outcome = run(i, &mut noting);
            if outcome == Outcome::Commit && !noting.changes.is_empty() {
                // Still under the backend's write lock: counted before the commit can become visible.
                let mut state = lock(&self.state);
                for (key, _) in &noting.changes {
                    *state.inflight.entry(key.clone()).or_insert(0) += 1;
                }
                drop(state);
                changes.append(&mut noting.changes);
            }
            outcome
        });
        let ticket = match staged {
            Ok(ticket) => ticket,
            Err(e) => {
                // Some of these may have committed: their groups cannot be trusted.
                let mut state = lock(&self.state);
                for (key, _) in &changes {
                    state.release(key);
                    state.drop_group_of(self.group_of, key);
                }
                return Err(e);
            }
        };
        if !changes.is_empty() {
            lock(&self.state).queued.push((ticket, changes));
        }
        Ok(ticket)
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let result = self.inner.wait_durable(ticket);
        self.settle(ticket, result.is_ok());
        result
    }

    fn deferred_keys(&self) -> usize {
        self.inner.deferred_keys()
    }

    fn flushes(&self) -> Flushes {
        self.inner.flushes()
    }

    fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.inner.failure()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.size_on_disk()
    }

    fn snapshot(&self, f: &mut Visit<'_>) -> Result<(), StoreError> {
        self.inner.snapshot(f)
    }
}
