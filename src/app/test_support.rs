//! What the app's unit tests share: an app over a new store (or over a gated one), its operator, and polling with
//! a deadline.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{App, AppConfig, SystemClock};
use crate::signing::Signer;
use crate::store::{BlobStore, Flushes, Outcome, Pair, SledStore, Store, StoreError, Ticket, Tx, Visit};

/// The operator of [`app_with`]'s apps.
pub(crate) fn operator() -> Signer {
    Signer::from_secret("operator", [1; 32])
}

/// An app over a new store in `dir`, with `config` and [`operator`].
pub(crate) fn app_with(dir: &Path, config: AppConfig) -> Arc<App> {
    let store = SledStore::open(&dir.join("db"), 8 << 20).expect("store");
    app_over(dir, config, Arc::new(store))
}

/// An app over `store`, its attachments in `dir`, with `config` and [`operator`].
pub(crate) fn app_over(dir: &Path, config: AppConfig, store: Arc<dyn Store>) -> Arc<App> {
    let blobs = BlobStore::open(&dir.join("blobs"), 1 << 20).expect("blobs");
    let key = crate::cli::serve::operator_seal(&operator());
    Arc::new(App::open(store, Arc::new(blobs), Arc::new(SystemClock), config, Some(key)).expect("app"))
}

/// The real store, with a pause for walks: once [`Gated::arm`]ed, the next scan of keys under `prefix` waits at a
/// gate until [`Gated::open`]; scans of the prefix and the pairs they yield are counted from the arming on. What
/// a test needs to stop a walk at a known point while its caller goes away. `visit` is the trait's own, through
/// the gated `scan`, so a walk that visits is paused too.
pub(crate) struct Gated {
    inner: SledStore,
    prefix: Vec<u8>,
    armed: AtomicBool,
    reached: AtomicBool,
    gate: (Mutex<bool>, Condvar),
    scans: AtomicUsize,
    pairs: Arc<AtomicUsize>,
}

impl Gated {
    pub(crate) fn new(dir: &Path, prefix: &[u8]) -> Arc<Gated> {
        Arc::new(Gated {
            inner: SledStore::open(&dir.join("db"), 8 << 20).expect("store"),
            prefix: prefix.to_vec(),
            armed: AtomicBool::new(false),
            reached: AtomicBool::new(false),
            gate: (Mutex::new(false), Condvar::new()),
            scans: AtomicUsize::new(0),
            pairs: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub(crate) fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether a scan waits at the gate (or has passed it).
    pub(crate) fn reached(&self) -> bool {
        self.reached.load(Ordering::SeqCst)
    }

    pub(crate) fn open(&self) {
        *self.gate.0.lock().expect("gate") = true;
        self.gate.1.notify_all();
    }

    /// Scans of the prefix since the arming, and the pairs they yielded.
    pub(crate) fn read(&self) -> (usize, usize) {
        (self.scans.load(Ordering::SeqCst), self.pairs.load(Ordering::SeqCst))
    }
}

impl Store for Gated {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + '_> {
        if !self.armed.load(Ordering::SeqCst) || !prefix.starts_with(&self.prefix) {
            return self.inner.scan(prefix, after, reverse);
        }
        self.scans.fetch_add(1, Ordering::SeqCst);
        if !self.reached.swap(true, Ordering::SeqCst) {
            let shut = self.gate.0.lock().expect("gate");
            drop(self.gate.1.wait_while(shut, |open| !*open).expect("gate"));
        }
        let pairs = self.pairs.clone();
        Box::new(self.inner.scan(prefix, after, reverse).inspect(move |_| {
            pairs.fetch_add(1, Ordering::SeqCst);
        }))
    }

    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>) -> Result<(), StoreError> {
        self.inner.transact_dyn(f)
    }

    fn stage_many(&self, n: usize, run: &mut dyn FnMut(usize, &mut dyn Tx) -> Outcome) -> Result<Ticket, StoreError> {
        self.inner.stage_many(n, run)
    }

    fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.wait_durable(ticket)
    }

    fn flushes(&self) -> Flushes {
        self.inner.flushes()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.size_on_disk()
    }

    fn snapshot(&self, f: &mut Visit<'_>) -> Result<(), StoreError> {
        self.inner.snapshot(f)
    }
}

/// Polls `done` until it holds, for at most ten seconds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::task::yield_now().await;
    }
}
