//! Limits that keep one caller from starving the others: a token bucket per caller (per unit, or per address for
//! calls without a token), a cap on open streams, over all callers and per caller, and one on walks that build a
//! whole tree in memory. They answer RESOURCE_EXHAUSTED rather than queueing without end: walks wait in a line of
//! at most [`WALKS_WAITING_MAX`].
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::access::Caller;
use super::{App, AppError};

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token could be taken now, without taking it.
    fn available(&self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst) >= 1.0
    }

    /// True when the bucket has refilled: forgetting it then changes nothing.
    fn full(&self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * rate >= burst
    }
}

/// Buckets kept before refilled ones are forgotten (addresses of anonymous callers are many and come and go).
const MAX_BUCKETS: usize = 10_000;

impl App {
    /// Spends one request of `caller`'s budget.
    pub fn charge(&self, caller: &Caller) -> Result<(), AppError> {
        let name = match caller {
            Caller::Operator => "operator",
            Caller::Unit(u) => u.as_str(),
        };
        self.spend(name).then_some(()).ok_or_else(|| {
            AppError::Exhausted(format!(
                "{name} is over its request rate ({} a second, bursts of {}); retry shortly",
                self.config.rate_per_sec, self.config.rate_burst
            ))
        })
    }

    /// Spends one request of the budget shared by the calls without a token from `peer` (health, reflection,
    /// public reads), kept apart from every unit's so a flood of them cannot starve authenticated callers.
    pub fn charge_anonymous(&self, peer: String) -> Result<(), AppError> {
        let key = format!("anonymous {peer}");
        self.spend(&key).then_some(()).ok_or_else(|| {
            AppError::Exhausted(format!(
                "calls without a request token from {peer} are over their request rate ({} a second, bursts of {}); \
                 retry shortly",
                self.config.rate_per_sec, self.config.rate_burst
            ))
        })
    }

    /// Refuses, before its token is even checked, a call from an address whose calls failed to authenticate more
    /// often lately than the request rate allows: otherwise a flood of bad tokens costs a signature check each.
    /// Callers that do authenticate are never charged here.
    pub fn check_failures(&self, peer: &str) -> Result<(), AppError> {
        let (rate, burst) = (f64::from(self.config.rate_per_sec), f64::from(self.config.rate_burst.max(1)));
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        match rates.get(&failures_key(peer)) {
            Some(b) if !b.available(rate, burst, Instant::now()) => Err(AppError::Exhausted(format!(
                "calls from {peer} failed to authenticate too often ({} a second, bursts of {}); retry shortly",
                self.config.rate_per_sec, self.config.rate_burst
            ))),
            _ => Ok(()),
        }
    }

    /// Counts one failed authentication against `peer` (see [`App::check_failures`]).
    pub fn charge_failure(&self, peer: &str) {
        // An empty bucket is what `check_failures` reports; here there is nothing more to do.
        let _ = self.spend(&failures_key(peer));
    }

    /// Takes one token from `key`'s bucket; false when it is empty.
    fn spend(&self, key: &str) -> bool {
        let (rate, burst) = (f64::from(self.config.rate_per_sec), f64::from(self.config.rate_burst.max(1)));
        let now = Instant::now();
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        if rates.len() >= MAX_BUCKETS && !rates.contains_key(key) {
            rates.retain(|_, b| !b.full(rate, burst, now));
        }
        let bucket = rates.entry(key.to_owned()).or_insert(Bucket { tokens: burst, last: now });
        bucket.take(rate, burst, now)
    }

    /// Streaming calls (server- or client-streaming) open now.
    pub fn open_streams(&self) -> usize {
        self.config.max_streams.saturating_sub(self.streams.available_permits())
    }

    /// Events in the log and bytes the store takes on disk.
    pub async fn sizes(&self) -> Result<(u64, u64), AppError> {
        self.read(|s| Ok((super::log::size(s)?, s.size_on_disk()?))).await
    }

    /// Keys of acknowledged commits the store is still moving into place (see [`crate::store::Store::deferred_keys`]).
    pub fn deferred_keys(&self) -> usize {
        self.store.deferred_keys()
    }

    /// The store's flushes so far and the transactions they made durable (see [`crate::store::Store::flushes`]).
    pub fn store_flushes(&self) -> crate::store::Flushes {
        self.store.flushes()
    }

    /// Why the store can no longer make writes durable, once it cannot (see [`crate::store::Store::failure`]).
    pub fn store_failure(&self) -> Option<String> {
        self.store.failure().borrow().clone()
    }

    /// The trace cache's size and hit counts; `None` when it is off.
    pub fn trace_cache(&self) -> Option<crate::store::CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }

    /// Calls waiting for one of the [`super::AppConfig::max_tree_walks`] permits.
    pub fn tree_walks_waiting(&self) -> usize {
        self.walks_waiting.load(Ordering::Relaxed)
    }

    /// Walks that stopped because their caller had gone (see [`Wanted`]), since the start.
    pub fn tree_walks_abandoned(&self) -> u64 {
        self.walks_abandoned.load(Ordering::Relaxed)
    }

    /// Waits for a permit to walk a whole tree, counted among [`App::tree_walks_waiting`] meanwhile, until it has
    /// one or the call is dropped (its client gone). Refused when the line is full.
    pub(super) async fn walk_permit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let ahead = self.walks_waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.walks_waiting);
        if ahead >= WALKS_WAITING_MAX && self.walks.available_permits() == 0 {
            return Err(AppError::Exhausted(format!(
                "{ahead} traces, status matrices, not-acted or overdue lists and audit bundles (with an auditor's \
                 search of the log for its bundle) are waiting for one of the {} built at once; retry later",
                self.config.max_tree_walks.max(1)
            )));
        }
        // The semaphore is never closed; an error here would be a bug, answered as one.
        self.walks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Store(crate::store::StoreError::Backend("tree walks are closed".into())))
    }

    /// A permit to open one streaming call (watch, log, trace, download, upload, backup, `Act`) for `owner`;
    /// dropped when the stream ends. Refused when the server has [`super::AppConfig::max_streams`] open, or `owner`
    /// has [`super::AppConfig::max_streams_per_caller`]: without the second, one caller's idle watches or `Act`
    /// calls could take every stream and shut the others out.
    pub fn stream_permit(&self, owner: StreamOwner) -> Result<StreamPermit, AppError> {
        let share = {
            let mut open = self.stream_shares.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(owner.clone()).or_insert(0);
            if *n >= self.config.max_streams_per_caller {
                return Err(AppError::Exhausted(format!(
                    "{owner} {n} streams open, the most one caller may (--max-streams-per-caller); end one or retry \
                     later"
                )));
            }
            *n += 1;
            Share { shares: self.stream_shares.clone(), owner }
        };
        // Taken after the share, so that a refusal here drops the share and gives it back.
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            AppError::Exhausted(format!(
                "{} streams are open, the most this server allows; retry later",
                self.config.max_streams
            ))
        })?;
        Ok(StreamPermit { _permit: permit, _share: share })
    }
}

/// Whose share of the streams a call counts against (see [`App::stream_permit`]): a unit's, the operator's, or for
/// calls without a token, their address's (as their request rate is).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamOwner {
    Operator,
    Unit(String),
    Anonymous(String),
}

impl StreamOwner {
    /// The owner of `caller`'s streams.
    pub fn of(caller: &Caller) -> StreamOwner {
        match caller {
            Caller::Operator => StreamOwner::Operator,
            Caller::Unit(u) => StreamOwner::Unit(u.clone()),
        }
    }
}

/// The start of a refusal: who has how many open.
impl std::fmt::Display for StreamOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamOwner::Operator => write!(f, "the operator has"),
            StreamOwner::Unit(u) => write!(f, "{u} has"),
            StreamOwner::Anonymous(peer) => write!(f, "calls without a request token from {peer} have"),
        }
    }
}

/// One open streaming call: a place among the server's streams and among its caller's.
#[derive(Debug)]
pub struct StreamPermit {
    _permit: OwnedSemaphorePermit,
    _share: Share,
}

/// One of a caller's open streams; given back when dropped.
#[derive(Debug)]
struct Share {
    shares: Arc<Mutex<HashMap<StreamOwner, usize>>>,
    owner: StreamOwner,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            // Callers come and go; a caller with nothing open costs no memory.
            if *n == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// Calls that may wait for a walk permit; beyond them a call is refused. On a 200,000-delivery tree (some 90 ms of
/// walking on two cores each) a line this long takes about half a minute to get through.
pub const WALKS_WAITING_MAX: usize = 256;

/// How many records a walk that reads record after record goes through between two asks of [`Wanted`].
const WANTED_EVERY: usize = 1024;

/// Whether anyone still waits for a walk's result: a walk asks between its parts and stops once its call has been
/// dropped (its client gave up, its deadline passed), so an abandoned tree or bundle stops costing CPU and frees
/// its walk permit for the next caller.
#[derive(Debug, Clone, Default)]
pub(super) struct Wanted(Arc<AtomicBool>);

impl Wanted {
    /// False once the call waiting for the walk is gone.
    pub(super) fn still(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
    }

    /// [`AppError::Cancelled`] once the call waiting for the walk is gone.
    pub(super) fn check(&self) -> Result<(), AppError> {
        if self.still() { Ok(()) } else { Err(AppError::Cancelled) }
    }

    /// [`Wanted::check`] at every [`WANTED_EVERY`]th record of a walk that reads record after record: `read`
    /// counts the records so far.
    pub(super) fn check_every(&self, read: usize) -> Result<(), AppError> {
        if read.is_multiple_of(WANTED_EVERY) { self.check() } else { Ok(()) }
    }

    /// Marks the walk unwanted when dropped: held by the call that awaits the walk.
    pub(super) fn until_dropped(&self) -> impl Drop + Send + use<> {
        struct Gone(Arc<AtomicBool>);
        impl Drop for Gone {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        Gone(self.0.clone())
    }
}

fn failures_key(peer: &str) -> String {
    format!("failed {peer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::app::AppConfig;
    use crate::app::test_support::{app_with, until};

    /// An app over a new store in `dir` that builds one tree at a time.
    fn one_walk_app(dir: &std::path::Path) -> Arc<App> {
        app_with(dir, AppConfig { max_tree_walks: 1, ..AppConfig::default() })
    }

    #[test]
    fn each_caller_has_a_share_of_the_streams_and_refusals_hold_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app_with(dir.path(), AppConfig { max_streams: 3, max_streams_per_caller: 2, ..AppConfig::default() });
        let (a, b) = (StreamOwner::Unit("a".into()), StreamOwner::Anonymous("10.0.0.1".into()));
        let a1 = app.stream_permit(a.clone()).expect("a's first");
        let a2 = app.stream_permit(a.clone()).expect("a's second");
        let refused = app.stream_permit(a.clone()).expect_err("a's third");
        assert!(matches!(&refused, AppError::Exhausted(m) if m.contains("a has 2 streams open")), "{refused}");
        let b1 = app.stream_permit(b.clone()).expect("b is not a");
        assert!(app.stream_permit(StreamOwner::Operator).is_err(), "the server is full");
        assert_eq!(app.open_streams(), 3);
        // Over the server's cap, b's refusal must not keep a share it never got.
        let full = app.stream_permit(b.clone()).expect_err("the server is full");
        assert!(matches!(&full, AppError::Exhausted(m) if m.contains("3 streams are open")), "{full}");
        assert_eq!(app.stream_shares.lock().expect("shares").get(&b), Some(&1));
        drop(a1);
        let a3 = app.stream_permit(a.clone()).expect("a's share came back");
        drop((a2, a3, b1));
        assert_eq!(app.open_streams(), 0);
        assert!(app.stream_shares.lock().expect("shares").is_empty(), "callers with nothing open cost nothing");
    }

    #[tokio::test]
    async fn a_walk_is_unwanted_once_the_call_awaiting_it_is_dropped() {
        let wanted = Wanted::default();
        let seen = wanted.clone();
        let call = async move {
            let _gone = wanted.until_dropped();
            std::future::pending::<()>().await
        };
        assert!(tokio::time::timeout(Duration::from_millis(1), call).await.is_err(), "the call never ends");
        assert!(!seen.still());
        assert!(matches!(seen.check(), Err(AppError::Cancelled)));
        assert!(seen.check_every(1).is_ok() && seen.check_every(WANTED_EVERY).is_err(), "asked every so often");
        let kept = Wanted::default();
        let _held = kept.until_dropped();
        assert!(kept.still() && kept.check().is_ok(), "wanted while the call is there");
    }

    /// Starts `call` while the app's one walk permit is held, checks that it waits in line and does nothing
    /// meanwhile, then frees the permit; returns the call.
    async fn waits_for_the_permit<T: Send + 'static>(
        app: &Arc<App>,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let held = app.walk_permit().await.expect("the one permit");
        let call = tokio::spawn(call);
        until("the call waiting for the permit", || app.tree_walks_waiting() == 1).await;
        assert!(!call.is_finished(), "nothing is read while the permit is held");
        drop(held);
        call
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tree_walks_wait_for_a_permit_in_a_line_of_bounded_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = one_walk_app(dir.path());
        let held = app.walk_permit().await.expect("the one permit");
        // A trace of a document that does not exist still waits for its turn before it looks.
        let trace = |app: &Arc<App>| {
            let app = app.clone();
            tokio::spawn(async move { app.trace("no-such-document", 0).await.map(|_| ()) })
        };
        let mut line: Vec<_> = (0..WALKS_WAITING_MAX).map(|_| trace(&app)).collect();
        until("a full line", || app.tree_walks_waiting() == WALKS_WAITING_MAX).await;
        assert!(line.iter().all(|t| !t.is_finished()), "nobody walks while the permit is held");

        let refused = app.trace("no-such-document", 0).await.expect_err("the line is full");
        assert!(matches!(&refused, AppError::Exhausted(m) if m.contains("retry later")), "{refused}");
        assert_eq!(app.tree_walks_waiting(), WALKS_WAITING_MAX, "a refused call leaves the line as it was");

        // A call whose client went away leaves the line.
        if let Some(gone) = line.pop() {
            gone.abort();
            assert!(gone.await.expect_err("cancelled").is_cancelled());
        }
        until("the cancelled call leaving", || app.tree_walks_waiting() == WALKS_WAITING_MAX - 1).await;

        drop(held);
        for t in line {
            let walked = t.await.expect("joined");
            assert!(matches!(walked, Err(AppError::NotFound(_))), "each walks in turn: {walked:?}");
        }
        assert_eq!(app.tree_walks_waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_bundles_wait_for_a_walk_permit_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = one_walk_app(dir.path());
        let export = waits_for_the_permit(&app, {
            let app = app.clone();
            async move { app.export_bundle(crate::app::log::ExportScope::Range { from: 1, to: 0 }, 0).await }
        })
        .await;
        let bundle = export.await.expect("joined").expect("a bundle");
        assert!(bundle.complete && bundle.entries.is_empty(), "an empty log's whole bundle");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_auditor_s_search_of_the_log_for_what_it_may_export_waits_for_a_walk_permit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = one_walk_app(dir.path());
        let export = waits_for_the_permit(&app, {
            let app = app.clone();
            async move { app.export_range(&Caller::Unit("370000.czt".into()), 1, 0, 0).await }
        })
        .await;
        // With one permit, the search hands its own to the bundle: waiting for a second would never end.
        let bundle = tokio::time::timeout(Duration::from_secs(10), export)
            .await
            .expect("the bundle is built under the search's permit")
            .expect("joined")
            .expect("a bundle");
        assert!(bundle.entries.is_empty(), "nothing in an empty log");
        assert_eq!(app.walks.available_permits(), 1, "given back once the bundle is built");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_walk_keeps_its_permit_until_it_ends_even_when_its_caller_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = one_walk_app(dir.path());
        let (started, walking) = std::sync::mpsc::channel::<()>();
        let (finish, release) = std::sync::mpsc::channel::<()>();
        let call = tokio::spawn({
            let app = app.clone();
            async move {
                app.walk(move |_, _| {
                    let _ = started.send(());
                    let _ = release.recv();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || walking.recv()).await.expect("joined").expect("the walk started");
        call.abort();
        assert!(call.await.expect_err("cancelled").is_cancelled());
        assert_eq!(app.walks.available_permits(), 0, "the walk still runs, holding its tree and its permit");
        finish.send(()).expect("the walk waits");
        until("the permit coming back", || app.walks.available_permits() == 1).await;
    }

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut b = Bucket { tokens: 3.0, last: start };
        assert!(b.take(1.0, 3.0, start) && b.take(1.0, 3.0, start) && b.take(1.0, 3.0, start));
        assert!(!b.take(1.0, 3.0, start));
        assert!(b.take(1.0, 3.0, start + Duration::from_secs(1)));
        assert!(!b.take(1.0, 3.0, start + Duration::from_secs(1)));
        // Saving up stops at the burst.
        let later = start + Duration::from_secs(100);
        assert!(b.full(1.0, 3.0, later) && !b.full(1.0, 3.0, start + Duration::from_secs(1)));
        assert!((0..3).all(|_| b.take(1.0, 3.0, later)));
        assert!(!b.take(1.0, 3.0, later));
    }
}
