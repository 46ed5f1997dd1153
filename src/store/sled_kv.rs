//! The sled backend of [`Store`](super::Store).
//!
//! sled 0.34's own issue tracker documents the traps this file avoids: one `Db` per process, kept open; one tree with
//! prefixed key spaces; an explicit cache size; no `flush_async` (it deadlocks across runtimes), and an fsync after
//! `flush`, because on Linux sled flushes with `sync_file_range`, which does not make the data durable on its own.
//! sled writes large pages to files of their own under `blobs/` and never fsyncs them; the flush does that too.
//!
//! Commits that bring many new keys are applied to the tree in the background ([`super::deferred`]).
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::deferred::{self, Batch, Files, Merge, Overlay, PRIVATE};
pub use super::gather::GATHER_WAIT;
use super::gather::Recent;
use super::{Flushes, Outcome, Pair, Store, StoreError, Ticket, Tx, Visit};

/// How a [`SledStore`] is opened.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// A commit group with at least this many keys written by [`Tx::put_new`] is applied in the background.
    pub defer_at: usize,
    /// Run the background applier (tests turn it off to look at the overlay).
    pub apply_in_background: bool,
    /// The longest a flush waits for its group to gather ([`super::gather`]).
    pub gather_wait: std::time::Duration,
}

/// The default [`SledOptions::defer_at`]: below a few thousand keys sled applies a batch in tens of
/// milliseconds, not worth a second copy.
pub const DEFER_AT: usize = 4096;

impl SledOptions {
    /// The defaults with a page cache of `cache_bytes`.
    pub fn new(cache_bytes: u64) -> SledOptions {
        SledOptions { cache_bytes, defer_at: DEFER_AT, apply_in_background: true, gather_wait: GATHER_WAIT }
    }
}

/// sled-backed store: one `Db`, one tree, prefixed key spaces, group-committed durable writes.
pub struct SledStore {
    inner: Arc<Inner>,
    applier: Option<JoinHandle<()>>,
}

struct Inner {
    db: sled::Db,
    /// sled's main data file, opened again only to fsync it.
    data_file: File,
    blobs_dir: PathBuf,
    /// Files of deferred batches.
    files: Files,
    defer_at: usize,
    gather_wait: std::time::Duration,
    /// Serialises writers: a transaction's reads and its batch see no interleaved writer.
    write_lock: Mutex<Applied>,
    /// Wakes a flush leader gathering its group (with `write_lock`).
    staged: Condvar,
    flush: Mutex<FlushState>,
    flushed: Condvar,
    /// Why the last flush failed, once one has: batches after `durable` cannot be acknowledged, nor can any
    /// later one while the store stays open. Set with the flush lock held; receivers learn of it at once.
    failed: tokio::sync::watch::Sender<Option<String>>,
    blob_sync: Mutex<BlobSync>,
    overlay: Overlay,
    /// Tells the applier there is work, or that it must stop.
    applier: Mutex<ApplierState>,
    applier_wake: Condvar,
    /// Makes the next flush panic, for the test of what a panicking flush leaves behind.
    #[cfg(test)]
    panic_next_flush: std::sync::atomic::AtomicBool,
}

/// One staged write.
#[derive(Debug, Clone)]
enum Write {
    Put(Vec<u8>),
    /// A key that did not exist (see [`Tx::put_new`]).
    New(Vec<u8>),
    Delete,
}

impl Write {
    fn value(&self) -> Option<Vec<u8>> {
        match self {
            Write::Put(v) | Write::New(v) => Some(v.clone()),
            Write::Delete => None,
        }
    }
}

/// Committed transactions: how many so far, and the writes of those not yet handed to sled.
struct Applied {
    count: u64,
    /// Writes of committed transactions since the last flush, newest value per key. Transactions read through
    /// it; the flush leader hands it to sled as one batch. One `apply_batch` per flush instead of one per
    /// transaction matters: sled's batch apply costs ~0.2 ms at the 90th percentile, under the write lock.
    pending: BTreeMap<Vec<u8>, Write>,
    /// The id the next deferred batch gets.
    next_batch: u64,
    /// A flush leader gathering its group wants a wake-up once `count` reaches this.
    wake_at: u64,
}

struct FlushState {
    /// Every batch up to this count is on disk.
    durable: u64,
    /// A leader is flushing now.
    in_progress: bool,
    /// What the last flushes carried, which says how long the next one waits for company.
    recent: Recent,
    /// What [`Store::flushes`] reports.
    counts: Flushes,
}

/// Held by a flush leader: should its flush panic, the flush is marked failed and waiters are woken, instead of
/// every later writer waiting for a leader that is gone.
struct Leading<'a>(&'a Inner);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.flush);
        state.in_progress = false;
        self.0.fail("a flush panicked".into());
        self.0.flushed.notify_all();
    }
}

/// Blob files already fsynced, and the directory's modification time when they were listed.
#[derive(Default)]
struct BlobSync {
    synced: HashSet<OsString>,
    listed_at: Option<SystemTime>,
}

#[derive(Default)]
struct ApplierState {
    stop: bool,
    work: bool,
}

fn backend(e: sled::Error) -> StoreError {
    match e {
        // sled shows an I/O error's Debug form; a person reading the log wants "File too large (os error 27)".
        sled::Error::Io(io) => StoreError::Backend(format!("I/O error: {io}")),
        other => StoreError::Backend(other.to_string()),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind, which stay meaningful.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keys the background applier moves per step; the write lock is released between steps.
const APPLY_STEP: usize = 2048;

/// Longer than the coarsest clock file times may come from (a jiffy at 100 Hz is 10 ms).
const CLOCK_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the applier waits before trying a failed batch again.
const APPLY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl SledStore {
    /// Opens (or creates) the database under `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        SledStore::open_with(dir, SledOptions::new(cache_bytes))
    }

    /// Opens (or creates) the database under `dir`, loading deferred batches a previous run left unapplied.
    pub fn open_with(dir: &Path, options: SledOptions) -> Result<SledStore, StoreError> {
        let data_dir_error = |reason: String| StoreError::DataDir { path: dir.display().to_string(), reason };
        let holds_data = std::fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0);
        let segment = segment_bytes(std::fs::read(dir.join("conf")), holds_data).map_err(data_dir_error)?;
        let db = open_db(dir, options.cache_bytes, segment).map_err(|e| match e {
            sled::Error::Io(io) if is_locked(&io) => {
                data_dir_error("it is in use by another gongwen process (sled holds a lock on it)".into())
            }
            other => data_dir_error(other.to_string()),
        })?;
        let data_file = File::open(dir.join("db")).map_err(|e| data_dir_error(format!("cannot open db file: {e}")))?;
        let files = Files::open(dir)?;
        let markers = db.scan_prefix(deferred::marker_prefix()).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())));
        let waiting = files.load(markers.map(|r| r.map_err(backend)))?;
        let kept: Vec<u64> = waiting.iter().map(|b| b.id).collect();
        let next_batch = waiting.last().map_or(0, |b| b.id + 1);
        let overlay = Overlay::default();
        let work = !waiting.is_empty();
        for b in waiting {
            overlay.push(Arc::new(b));
        }
        let inner = Arc::new(Inner {
            db,
            data_file,
            blobs_dir: dir.join("blobs"),
            files,
            defer_at: options.defer_at.max(1),
            gather_wait: options.gather_wait,
            write_lock: Mutex::new(Applied { count: 0, pending: BTreeMap::new(), next_batch, wake_at: u64::MAX }),
            staged: Condvar::new(),
            flush: Mutex::new(FlushState {
                durable: 0,
                in_progress: false,
                recent: Recent::default(),
                counts: Flushes::default(),
            }),
            flushed: Condvar::new(),
            failed: tokio::sync::watch::Sender::new(None),
            blob_sync: Mutex::new(BlobSync::default()),
            overlay,
            applier: Mutex::new(ApplierState { stop: false, work }),
            applier_wake: Condvar::new(),
            #[cfg(test)]
            panic_next_flush: std::sync::atomic::AtomicBool::new(false),
        });
        let stale = inner.files.others(&kept)?;
        if !stale.is_empty() {
            // After a crash, what sled recovered may be only in the page cache: it goes to disk (blobs too) before
            // files are deleted on its word. Only then: after a long run that fsync can take many seconds.
            inner.flush_to_disk()?;
            inner.files.remove_all(&stale)?;
        }
        let applier = if options.apply_in_background {
            let worker = inner.clone();
            let handle = std::thread::Builder::new()
                .name("gongwen-apply".into())
                .spawn(move || worker.run_applier())
                .map_err(|e| data_dir_error(format!("cannot start the background applier: {e}")))?;
            Some(handle)
        } else {
            None
        };
        Ok(SledStore { inner, applier })
    }
}

fn is_locked(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// Opens sled, waiting a little while the directory is locked: sled's I/O threads let go of the lock only after
/// they finish, a moment after the `Db` that used it was dropped, so a reopen in the same process (a restart, the
/// snapshot at a graceful stop) can find it still held. Another process holding it is refused after the wait.
fn open_db(dir: &Path, cache_bytes: u64, segment_bytes: usize) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let config = sled::Config::new().path(dir).cache_capacity(cache_bytes).segment_size(segment_bytes);
    loop {
        match config.open() {
            Err(sled::Error::Io(io)) if is_locked(&io) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// sled's segment size for a store it creates, in place of its default of 512 KiB. sled reads the header of every
/// segment of its file when it opens a store, one read each: an 18 GiB store of 10 million events has 38,000
/// segments of 512 KiB, and once its file is out of the page cache those reads took about 1.5 s of a 3 s start.
/// 8 MiB segments make 16 times fewer. sled writes into one segment-sized buffer until it is full and keeps a page
/// out of line (in `blobs/`) only past a quarter of a segment, so a larger segment also means fewer blob files.
/// (sled marks the setting as meant for its tests; its checks accept powers of two up to 16 MiB.)
pub const NEW_SEGMENT_BYTES: usize = 8 << 20;

/// The segment size to open a store with, given what reading sled's `conf` file gave (text lines, then a binary
/// checksum) and whether its `db` file holds anything. sled refuses to open a store with a segment size other than
/// the one its `conf` records, so a store created with sled's default keeps it. Without a readable size in `conf`,
/// sled would take the size it is given and write a new `conf` (it treats a short one as missing): right for a new
/// store, but for one that holds data a wrong guess would misread its log, so that is refused instead.
fn segment_bytes(conf: std::io::Result<Vec<u8>>, holds_data: bool) -> Result<usize, String> {
    let recorded = conf.as_ref().ok().and_then(|bytes| {
        String::from_utf8_lossy(bytes).lines().find_map(|line| line.strip_prefix("segment_size: ")?.trim().parse().ok())
    });
    match (recorded, conf) {
        (Some(bytes), _) => Ok(bytes),
        (None, _) if !holds_data => Ok(NEW_SEGMENT_BYTES),
        (None, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("its db file holds data but sled's conf file, which records the store's segment size, is missing; put \
             it back or restore a backup"
                .into())
        }
        (None, Err(e)) => Err(format!("cannot read sled's conf file: {e}")),
        (None, Ok(_)) => {
            Err("sled's conf file does not record the store's segment size (it is damaged); put it back or restore a \
             backup"
                .into())
        }
    }
}

/// How long [`open_db`] waits for a lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for SledStore {
    fn drop(&mut self) {
        lock(&self.inner.applier).stop = true;
        self.inner.applier_wake.notify_all();
        if let Some(handle) = self.applier.take() {
            // A batch half applied is finished by the next start; nothing is lost by stopping here.
            let _ = handle.join();
        }
    }
}

impl SledStore {
    /// A flush leader is waiting for its group to gather.
    #[cfg(test)]
    pub(super) fn gathering(&self) -> bool {
        lock(&self.inner.write_lock).wake_at != u64::MAX
    }

    /// After a failed flush no write can be acknowledged: one is refused before it runs, saying why, instead of
    /// failing on whatever sled's error state breaks first.
    fn refuse_if_failed(&self) -> Result<(), StoreError> {
        self.inner.failed.borrow().clone().map_or(Ok(()), |reason| Err(StoreError::Failed(reason)))
    }

    /// Makes the next flush panic in its leader.
    #[cfg(test)]
    pub(crate) fn panic_next_flush(&self) {
        self.inner.panic_next_flush.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Inner {
    /// Waits, at most `gather_wait`, until `count` transactions have been committed: see [`super::gather`].
    fn gather(&self, count: u64) {
        let Some(deadline) = std::time::Instant::now().checked_add(self.gather_wait) else {
            return;
        };
        let mut applied = lock(&self.write_lock);
        applied.wake_at = count;
        while applied.count < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            applied = match self.staged.wait_timeout(applied, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        applied.wake_at = u64::MAX;
    }

    /// Records the store's failure, keeping the first reason; call it with the flush lock held.
    fn fail(&self, reason: String) {
        self.failed.send_if_modified(|failed| {
            let first = failed.is_none();
            if first {
                *failed = Some(reason);
            }
            first
        });
    }

    /// Waits until batch `ticket` is durable, flushing as the leader if nobody else is.
    fn wait_until(&self, ticket: u64) -> Result<(), StoreError> {
        let mut state = lock(&self.flush);
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            // Set under the flush lock, like `durable`: read with it, the two agree.
            if let Some(reason) = self.failed.borrow().clone() {
                return Err(StoreError::Failed(reason));
            }
            if !state.in_progress {
                state.in_progress = true;
                let (durable, want) = (state.durable, state.recent.want());
                drop(state);
                let leading = Leading(self);
                let waited = want > 1 && !self.gather_wait.is_zero();
                if waited {
                    self.gather(durable.saturating_add(want));
                }
                // Everything committed by now rides on this flush, including other writers' transactions.
                let result = self.apply_pending().and_then(|(target, drained)| {
                    self.flush_to_disk()?;
                    // The flush made their markers' removal durable: no marker on disk names these files now.
                    for id in drained {
                        self.files.remove(id);
                    }
                    Ok(target)
                });
                std::mem::forget(leading);
                state = lock(&self.flush);
                state.in_progress = false;
                match result {
                    Ok(target) => {
                        let group = target.saturating_sub(state.durable);
                        state.recent.record(group);
                        state.counts.flushes += u64::from(group > 0);
                        state.counts.transactions += group;
                        state.counts.waited += u64::from(waited);
                        state.durable = state.durable.max(target);
                    }
                    Err(e) => self.fail(e.to_string()),
                }
                self.flushed.notify_all();
                continue;
            }
            state = self.flushed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Hands the committed writes to sled as one atomic batch; returns the count of transactions they cover, and
    /// the ids of deferred batches a delete drained into it, whose files may go once it is flushed. The write lock
    /// is held throughout, so a transaction never sees them in neither place.
    fn apply_pending(&self) -> Result<(u64, Vec<u64>), StoreError> {
        #[cfg(test)]
        if self.panic_next_flush.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("the flush fault a test asked for");
        }
        let mut applied = lock(&self.write_lock);
        if applied.pending.is_empty() {
            return Ok((applied.count, vec![]));
        }
        let pending = std::mem::take(&mut applied.pending);
        let mut batch = sled::Batch::default();
        // A delete must not let a waiting copy of the key show through: the waiting batches go into this one.
        let view = self.overlay.view();
        let drained = if !view.is_empty() && pending.iter().any(|(k, w)| matches!(w, Write::Delete) && view.contains(k))
        {
            // Their files go once this batch, which drops their markers, is flushed (or at the next open).
            for b in view.batches() {
                self.stage_deferred(&mut batch, b, &b.entries.keys().collect::<Vec<_>>())?;
                batch.remove(deferred::marker_key(b.id));
            }
            view.batches().to_vec()
        } else {
            vec![]
        };
        let new_keys = pending.values().filter(|w| matches!(w, Write::New(_))).count();
        let mut deferred = BTreeMap::new();
        for (k, w) in pending {
            match w {
                Write::New(v) if new_keys >= self.defer_at => {
                    deferred.insert(k, v);
                }
                Write::Put(v) | Write::New(v) => batch.insert(k, v),
                Write::Delete => batch.remove(k),
            }
        }
        let added = if deferred.is_empty() {
            None
        } else {
            let b = Batch { id: applied.next_batch, entries: deferred };
            applied.next_batch += 1;
            // The file is on disk before the marker that commits it can be.
            let (marker, value) = self.files.write(&b)?;
            batch.insert(marker, value);
            Some(Arc::new(b))
        };
        let woke = added.is_some();
        let drained_ids: Vec<u64> = drained.iter().map(|b| b.id).collect();
        if added.is_none() && drained.is_empty() {
            self.db.apply_batch(batch).map_err(backend)?;
        } else {
            // Readers see the group's deferred keys, and lose its drained ones, together with the rest of it.
            self.overlay.change_with(added, &drained_ids, || self.db.apply_batch(batch).map_err(backend))?;
        }
        if woke {
            lock(&self.applier).work = true;
            self.applier_wake.notify_all();
        }
        Ok((applied.count, drained_ids))
    }

    /// Adds the waiting `keys` of `b` that the tree lacks to `batch`.
    fn stage_deferred(&self, batch: &mut sled::Batch, b: &Batch, keys: &[&Vec<u8>]) -> Result<(), StoreError> {
        for k in keys {
            if !self.db.contains_key(k.as_slice()).map_err(backend)?
                && let Some(v) = b.entries.get(k.as_slice())
            {
                batch.insert(k.as_slice(), v.as_slice());
            }
        }
        Ok(())
    }

    /// Flushes sled and fsyncs its data file, with the blob files sled made since the last flush fsynced before
    /// (so no flushed log entry points to a blob that is not on disk) and after (for blobs of entries made
    /// meanwhile). What this cannot cover: sled also writes its log on its own, every 500 ms and whenever an I/O
    /// buffer fills, without waiting for us, so for a moment a log entry can reach the disk before its blob.
    fn flush_to_disk(&self) -> Result<(), StoreError> {
        self.sync_blobs()?;
        self.db.flush().map_err(backend)?;
        self.data_file.sync_all()?;
        self.sync_blobs()
    }

    /// fsyncs the blob files sled made since the last call, and their directory. The directory's modification
    /// time says whether there are any, so a flush without new blobs costs one `stat`; a modification time is
    /// trusted only once it is some milliseconds old, because file times may come from a clock that ticks only
    /// every few milliseconds, and a blob made within the same tick would leave it unchanged.
    fn sync_blobs(&self) -> Result<(), StoreError> {
        let modified = match std::fs::metadata(&self.blobs_dir) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut sync = lock(&self.blob_sync);
        if sync.listed_at == Some(modified) {
            return Ok(());
        }
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&self.blobs_dir)? {
            let name = entry?.file_name();
            if !sync.synced.contains(&name) {
                match File::open(self.blobs_dir.join(&name)) {
                    Ok(f) => f.sync_all()?,
                    // sled removed it meanwhile: a page rewritten since needs no sync of the old copy.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            present.insert(name);
        }
        File::open(&self.blobs_dir)?.sync_all()?;
        sync.synced = present;
        let settled = SystemTime::now().duration_since(modified).is_ok_and(|age| age > CLOCK_TICK);
        sync.listed_at = settled.then_some(modified);
        Ok(())
    }

    /// The background applier: moves waiting batches into the tree, oldest first, a step at a time.
    fn run_applier(&self) {
        loop {
            {
                let mut state = lock(&self.applier);
                while !state.stop && !state.work {
                    state = self.applier_wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                if state.stop {
                    return;
                }
                state.work = false;
            }
            while let Some(b) = self.overlay.oldest() {
                match self.apply_deferred(&b) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        // The batch stays readable through the overlay; try again in a while (or at the next start).
                        tracing::error!(error = %e, batch = b.id, "applying a deferred batch failed; retrying");
                        let state = lock(&self.applier);
                        if state.stop {
                            return;
                        }
                        let (state, _) =
                            self.applier_wake.wait_timeout(state, APPLY_RETRY).unwrap_or_else(|p| p.into_inner());
                        if state.stop {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Applies one waiting batch; `Ok(false)` when told to stop first.
    fn apply_deferred(&self, b: &Arc<Batch>) -> Result<bool, StoreError> {
        let keys: Vec<&Vec<u8>> = b.entries.keys().collect();
        for step in keys.chunks(APPLY_STEP) {
            if lock(&self.applier).stop {
                return Ok(false);
            }
            let _writers_wait = lock(&self.write_lock);
            if !self.overlay.holds(b.id) {
                // A delete drained it into a commit of its own (see `apply_pending`).
                return Ok(true);
            }
            let mut batch = sled::Batch::default();
            self.stage_deferred(&mut batch, b, step)?;
            self.db.apply_batch(batch).map_err(backend)?;
            drop(_writers_wait);
            // The lock is not fair: let a waiting writer in before taking it again.
            std::thread::yield_now();
        }
        {
            let _writers_wait = lock(&self.write_lock);
            if !self.overlay.holds(b.id) {
                return Ok(true);
            }
            let mut batch = sled::Batch::default();
            batch.remove(deferred::marker_key(b.id));
            // sled's log is replayed in order up to its first torn entry, and these entries are small (no blob), so
            // if the marker's removal survives a crash the keys applied before it do too.
            self.db.apply_batch(batch).map_err(backend)?;
            self.overlay.remove(b.id);
        }
        // The file may go only once no marker on disk names it, and once the keys it held are on disk, blobs too.
        self.flush_to_disk()?;
        self.files.remove(b.id);
        Ok(true)
    }
}

struct SledTx<'a> {
    tree: &'a sled::Db,
    /// Committed writes not yet in sled.
    pending: &'a BTreeMap<Vec<u8>, Write>,
    overlay: &'a Overlay,
    staged: BTreeMap<Vec<u8>, Write>,
}

impl Tx for SledTx<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.staged.get(key).or_else(|| self.pending.get(key)) {
            return Ok(w.value());
        }
        // Under the write lock nothing moves between the tree and the overlay.
        match self.tree.get(key).map_err(backend)? {
            Some(v) => Ok(Some(v.to_vec())),
            None => Ok(self.overlay.guard().get(key)),
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.staged.insert(key.to_vec(), Write::Put(value.to_vec()));
    }

    fn put_new(&mut self, key: &[u8], value: &[u8]) {
        // Written earlier in this transaction or in an earlier one of the group: not new, whatever the caller
        // believes (a deferred copy would lose to the tree's older value).
        let write = if self.staged.contains_key(key) || self.pending.contains_key(key) {
            Write::Put(value.to_vec())
        } else {
            Write::New(value.to_vec())
        };
        self.staged.insert(key.to_vec(), write);
    }

    fn delete(&mut self, key: &[u8]) {
        self.staged.insert(key.to_vec(), Write::Delete);
    }
}

/// The smallest key greater than every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The end of a scan of `prefix`: the prefix's end, and never past the start of the store's private keys.
fn scan_end(prefix: &[u8]) -> Vec<u8> {
    match prefix_end(prefix) {
        Some(end) if end.as_slice() <= [PRIVATE].as_slice() => end,
        _ => vec![PRIVATE],
    }
}

type Pairs<'a> = Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + 'a>;

impl SledStore {
    fn tree_scan(&self, prefix: &[u8], after: Option<&[u8]>, reverse: bool) -> Pairs<'_> {
        let upper = Bound::Excluded(scan_end(prefix));
        let (lower, upper) = match (after, reverse) {
            (Some(a), false) => (Bound::Excluded(a.to_vec()), upper),
            (Some(a), true) => {
                let end = scan_end(prefix);
                (Bound::Included(prefix.to_vec()), Bound::Excluded(if a < end.as_slice() { a.to_vec() } else { end }))
            }
            (None, _) => (Bound::Included(prefix.to_vec()), upper),
        };
        let prefix = prefix.to_vec();
        let iter = self.inner.db.range::<Vec<u8>, _>((lower, upper));
        let map =
            move |r: sled::Result<(sled::IVec, sled::IVec)>| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend);
        // `after` may lie outside the prefix; the filter keeps the promise that only prefixed keys come back.
        let keep = move |r: &Result<Pair, StoreError>| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix));
        if reverse { Box::new(iter.rev().map(map).filter(keep)) } else { Box::new(iter.map(map).filter(keep)) }
    }

    fn stage(
        &self,
        applied: &mut Applied,
        run: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut tx = SledTx {
            tree: &self.inner.db,
            pending: &applied.pending,
            overlay: &self.inner.overlay,
            staged: BTreeMap::new(),
        };
        if run(&mut tx)? == Outcome::Abort || tx.staged.is_empty() {
            return Ok(false);
        }
        let staged = tx.staged;
        applied.pending.extend(staged);
        applied.count += 1;
        if applied.count >= applied.wake_at {
            applied.wake_at = u64::MAX;
            self.inner.staged.notify_all();
        }
        Ok(true)
    }
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // Held across the tree read: no deferred group lands and no batch leaves the overlay meanwhile.
        let overlay = self.inner.overlay.guard();
        match self.inner.db.get(key).map_err(backend)? {
            Some(v) => Ok(Some(v.to_vec())),
            None => Ok(overlay.get(key)),
        }
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, reverse: bool) -> Pairs<'_> {
        if self.inner.overlay.is_empty() {
            return self.tree_scan(prefix, after, reverse);
        }
        let waiting = self.inner.overlay.view().range(prefix, after, reverse);
        Box::new(Merge::new(self.tree_scan(prefix, after, reverse), waiting, reverse))
    }

    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>) -> Result<(), StoreError> {
        self.refuse_if_failed()?;
        let ticket = {
            let mut applied = lock(&self.inner.write_lock);
            if !self.stage(&mut applied, f)? {
                return Ok(());
            }
            applied.count
        };
        self.inner.wait_until(ticket)
    }

    fn stage_many(&self, n: usize, run: &mut dyn FnMut(usize, &mut dyn Tx) -> Outcome) -> Result<Ticket, StoreError> {
        self.refuse_if_failed()?;
        let mut applied = lock(&self.inner.write_lock);
        for i in 0..n {
            self.stage(&mut applied, &mut |tx| Ok(run(i, tx)))?;
        }
        Ok(Ticket(applied.count))
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.wait_until(ticket.0)
    }

    fn visit(&self, prefix: &[u8], f: &mut Visit<'_>) -> Result<(), StoreError> {
        if !self.inner.overlay.is_empty() {
            for pair in self.scan(prefix, None, false) {
                let (k, v) = pair?;
                f(&k, &v)?;
            }
            return Ok(());
        }
        for pair in self.inner.db.range(prefix.to_vec()..scan_end(prefix)) {
            let (k, v) = pair.map_err(backend)?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn snapshot(&self, f: &mut Visit<'_>) -> Result<(), StoreError> {
        // Writes still pending belong to transactions not yet acknowledged; sled holds a prefix of the commit
        // order (groups are applied whole, in order), which is what a consistent snapshot needs. Waiting
        // deferred keys belong to acknowledged commits and are part of it.
        let _writers_wait = lock(&self.inner.write_lock);
        for pair in self.scan(b"", None, false) {
            let (k, v) = pair?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.db.size_on_disk().map_err(backend)
    }

    fn deferred_keys(&self) -> usize {
        self.inner.overlay.waiting()
    }

    fn flushes(&self) -> Flushes {
        lock(&self.inner.flush).counts
    }

    fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.inner.failed.subscribe()
    }
}

#[cfg(test)]
mod segment_tests {
    use super::*;

    #[test]
    fn a_new_store_gets_large_segments_and_an_existing_one_keeps_its_own() {
        let missing = || Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no conf"));
        assert_eq!(segment_bytes(missing(), false), Ok(NEW_SEGMENT_BYTES));
        let mut conf = b"segment_size: 524288\nuse_compression: false\nversion: 0.34\n".to_vec();
        conf.extend_from_slice(&[0x76, 0x51, 0xff, 0x33]);
        assert_eq!(segment_bytes(Ok(conf.clone()), true), Ok(512 << 10));
        assert_eq!(segment_bytes(Ok(conf), false), Ok(512 << 10), "sled would refuse another size");
        // A store with data and no size on record is refused, not guessed at.
        let err = segment_bytes(missing(), true).expect_err("conf missing");
        assert!(err.contains("missing"), "{err}");
        let damaged = || Ok(b"use_compression: false\n".to_vec());
        assert!(segment_bytes(damaged(), true).expect_err("no size").contains("damaged"));
        assert_eq!(segment_bytes(damaged(), false), Ok(NEW_SEGMENT_BYTES));
        let denied = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        assert!(segment_bytes(Err(denied), true).expect_err("unreadable").contains("cannot read"));
    }
}
