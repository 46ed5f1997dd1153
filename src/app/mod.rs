//! The transport-neutral application layer: every RPC's behaviour, independent of gRPC.
//!
//! Each operation authenticates the signed statement, checks it against the domain rules on a snapshot of the
//! registry, and applies it in one atomic, durable store transaction together with its event and index entries.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::domain::merkle;
use crate::domain::model::{EventKind, Registry, SealKey, StepKind, Unit};
use crate::domain::seal;
use crate::pb;
use crate::signing::{Signer, Statement};
use crate::store::horizon_file::HorizonFile;
use crate::store::{BlobStore, ScanCache, Store, Tx};

pub mod access;
pub mod backup;
mod briefs;
pub mod deliveries;
pub mod documents;
pub mod error;
pub mod format;
pub mod horizon;
pub mod import;
mod lean;
pub mod limits;
pub mod log;
pub mod not_acted;
pub mod pages;
mod parallel;
mod recent;
pub use briefs::{Briefs, UnitBrief};
pub mod registry;
pub mod registry_cache;
pub mod schema;
pub mod statements;
pub mod supervision;
pub mod tally;
#[cfg(test)]
mod test_support;
pub mod trace;
#[cfg(test)]
mod walk_tests;
mod writer;

pub use error::AppError;

/// The one place the service reads the time, so tests and tools can set it.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told otherwise: for tests and for replaying a scenario at a given date.
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The second this process started, by the machine's clock. Whole seconds, because clients may send token times
/// without fractions.
fn started_second() -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 0)
}

/// Document heads kept in memory per generation (two generations; a head is a few hundred bytes).
const HEADS_KEPT: usize = 16_384;
/// Decoded public keys kept per generation: about 200 bytes each, so at most some 13 MiB.
const PUBLIC_KEYS_KEPT: usize = 32_768;

/// Settings the application layer enforces.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Largest attachment accepted, in bytes.
    pub max_attachment_bytes: u64,
    /// Accept 机密 and 绝密 documents (off by default: they may not travel over an ordinary network).
    pub allow_confidential: bool,
    /// How far a request token's time may be from the machine's clock, in seconds; used nonces are kept as long.
    pub auth_skew_secs: u64,
    /// Largest request message of any call (a unary request, an upload chunk, a public read), in bytes.
    pub max_message_bytes: usize,
    /// Requests per second each caller may make on average.
    pub rate_per_sec: u32,
    /// Requests a caller may make in a burst above the average.
    pub rate_burst: u32,
    /// Streaming calls (watch, log stream, streamed traces, downloads, uploads) open at once, over all callers.
    pub max_streams: usize,
    /// Streaming calls one caller (a unit, the operator, or an address calling without a token) may have open at
    /// once.
    pub max_streams_per_caller: usize,
    /// Memory for keeping whole documents' deliveries and forwards, which traces and status matrices walk, in
    /// bytes; 0 turns the cache off.
    pub trace_cache_bytes: usize,
    /// Traces, status matrices, not-acted and overdue lists and audit bundles built at once; more wait their turn.
    /// Each walk already runs on every core, so more at once add no speed, only memory: each holds its whole tree
    /// (or bundle) while it builds it.
    pub max_tree_walks: usize,
    /// Largest audit bundle, in bytes: ExportBundle builds a bundle whole before it sends it, so this is also the
    /// memory one export may take.
    pub max_bundle_bytes: usize,
    /// Where the registry is kept between runs (`registry_cache`); `None` reads it from the store's records at
    /// every start.
    pub registry_file: Option<registry_cache::RegistryFile>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            max_attachment_bytes: 64 * 1024 * 1024,
            allow_confidential: false,
            auth_skew_secs: 300,
            max_message_bytes: 4 * 1024 * 1024,
            rate_per_sec: 500,
            rate_burst: 1000,
            max_streams: 256,
            max_streams_per_caller: 64,
            trace_cache_bytes: 256 * 1024 * 1024,
            max_tree_walks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            // The CLI's largest reply: a larger bundle would be refused by the client after the server built it.
            max_bundle_bytes: 256 * 1024 * 1024,
            registry_file: None,
        }
    }
}

/// Something new for some units' inboxes, published after the write is durable.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Delivered or Reminded.
    pub kind: StepKind,
    /// The document.
    pub document_id: String,
    /// The recipients concerned.
    pub units: Arc<BTreeSet<String>>,
}

/// The registry as of the last committed change, with a key index for signature checks.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Regions, units, groups.
    pub registry: Registry,
    /// Seal key id → owning unit id.
    pub key_owner: HashMap<String, String>,
    /// Ids of keys with a revocation time: only steps signed with one of these can be suspect, and usually there
    /// are none, so a trace asks this first.
    revoked_keys: HashSet<Box<[u8]>>,
    /// What a trace or matrix shows of each unit.
    pub briefs: Briefs,
}

impl Snapshot {
    fn new(registry: Registry) -> Snapshot {
        let key_owner = registry
            .units
            .values()
            .flat_map(|u| u.keys.iter().map(move |k| (k.key_id.clone(), u.id.clone())))
            .collect();
        let revoked_keys = registry
            .units
            .values()
            .flat_map(|u| u.keys.iter().filter(|k| k.revoked_at.is_some()).map(|k| k.key_id.as_bytes().into()))
            .collect();
        let briefs = Briefs::new(registry.units.values());
        Snapshot { registry, key_owner, revoked_keys, briefs }
    }

    /// Why a step is suspect (signed with a key revoked at or before it), found through the key index.
    pub fn suspect(&self, step: &crate::domain::model::Step) -> Option<String> {
        self.suspect_key(step.key_id.as_bytes(), || Ok::<_, std::convert::Infallible>(step.at)).unwrap_or_default()
    }

    /// Why a step signed with `key_id` at `at()` is suspect; `at` is read only for a revoked key. The key id comes
    /// as bytes: a trace reads it straight from a stored record, and checks it is text only for a revoked key.
    pub fn suspect_key<E>(
        &self,
        key_id: &[u8],
        at: impl FnOnce() -> Result<DateTime<Utc>, E>,
    ) -> Result<Option<String>, E> {
        if self.revoked_keys.is_empty() || !self.revoked_keys.contains(key_id) {
            return Ok(None);
        }
        let Ok(key_id) = std::str::from_utf8(key_id) else { return Ok(None) };
        let Some(owner) = self.key_owner.get(key_id) else { return Ok(None) };
        Ok(self.registry.suspect_key(owner, key_id, at()?))
    }

    /// A unit or NOT_FOUND.
    pub fn unit(&self, id: &str) -> Result<&Unit, AppError> {
        self.registry.units.get(id).ok_or_else(|| AppError::NotFound(format!("unknown unit {id:?}")))
    }
}

/// The running service's state.
pub struct App {
    store: Arc<dyn Store>,
    /// The read cache in front of the store, when it is on.
    cache: Option<Arc<ScanCache>>,
    writer: writer::Writer,
    blobs: Arc<BlobStore>,
    clock: Arc<dyn Clock>,
    config: AppConfig,
    operator: SealKey,
    /// Signs checkpoints of the event log; made at the first start and kept in the store.
    log_key: Signer,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises registry changes so each is checked against the snapshot it replaces.
    registry_lock: tokio::sync::Mutex<()>,
    notices: broadcast::Sender<Notice>,
    /// Request-token nonces seen within the skew window (digest → forget after).
    nonces: std::sync::Mutex<HashMap<[u8; 32], DateTime<Utc>>>,
    /// The nonces above are only those seen since this process started: the bounds below which tokens are
    /// refused because an earlier process may have accepted them.
    horizons: horizon::Horizons,
    /// The state of the registry the registry file last held (or, when it could not be written, none).
    registry_kept: Arc<std::sync::Mutex<Option<registry_cache::Stamp>>>,
    /// Per-caller request budgets.
    rates: std::sync::Mutex<HashMap<String, limits::Bucket>>,
    /// Permits for streaming calls, and how many each caller holds.
    streams: Arc<tokio::sync::Semaphore>,
    stream_shares: Arc<std::sync::Mutex<HashMap<limits::StreamOwner, usize>>>,
    /// Permits for walks that build a whole tree in memory, and the calls waiting for one.
    walks: Arc<tokio::sync::Semaphore>,
    walks_waiting: std::sync::atomic::AtomicUsize,
    /// Walks that stopped because their caller had gone, since the start.
    walks_abandoned: Arc<std::sync::atomic::AtomicU64>,
    /// Set when the server begins to stop: calls that would otherwise stay open for as long as their client
    /// likes (`Act`, `WatchInbox`) end, so the stop does not wait on them.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Statements sent on `Act` calls, for the metrics.
    pub statements: tally::Tally,
    /// Heads of documents read before (documents never change once issued).
    heads: recent::Recent<String, Arc<crate::domain::model::DocHead>>,
    /// Seal keys' public points, by their bytes: every request checks two signatures.
    public_keys: recent::Recent<Vec<u8>, Arc<seal::PublicKey>>,
}

/// A statement whose signature checked out.
pub struct Signed<M> {
    /// The decoded statement.
    pub statement: M,
    /// The envelope as received, stored in the event's log entry.
    pub envelope: pb::SignedEnvelope,
    /// SHA-256 of payload type and payload: a retried request must match it.
    pub digest: [u8; 32],
}

impl App {
    /// Opens the application over a store. `initial_operator` is recorded at the first start; later starts use
    /// the recorded key and refuse a different one.
    pub fn open(
        store: Arc<dyn Store>,
        blobs: Arc<BlobStore>,
        clock: Arc<dyn Clock>,
        config: AppConfig,
        initial_operator: Option<SealKey>,
    ) -> Result<App, AppError> {
        let older_format = format::inspect(store.as_ref())?;
        let operator = match schema::load::<SealKey>(store.as_ref(), schema::OPERATOR)? {
            Some(stored) => {
                if let Some(given) = &initial_operator
                    && given.public_key != stored.public_key
                {
                    return Err(AppError::Precondition(format!(
                        "this data directory belongs to operator key {}; a different operator key was given",
                        stored.key_id
                    )));
                }
                stored
            }
            None => {
                let Some(given) = initial_operator else {
                    return Err(AppError::Precondition(
                        "a new data directory needs an operator key (gongwen keygen operator)".into(),
                    ));
                };
                seal::check_public_key(given.algorithm, &given.public_key)?;
                let dyn_store: &dyn Store = store.as_ref();
                dyn_store.transact(|tx| -> Result<(), AppError> {
                    schema::save(tx, schema::OPERATOR, &given)?;
                    Ok(())
                })?;
                given
            }
        };
        let (store, cache): (Arc<dyn Store>, _) = if config.trace_cache_bytes > 0 {
            let cache = Arc::new(ScanCache::new(store, schema::cached_group, config.trace_cache_bytes));
            (cache.clone(), Some(cache))
        } else {
            (store, None)
        };
        let log_key = load_or_make_log_key(store.as_ref())?;
        let (registry, kept) = registry_cache::load(store.as_ref(), config.registry_file.as_ref())?;
        let current = match kept {
            registry_cache::Kept::Current(stamp) => Some(stamp),
            registry_cache::Kept::Stale(_) | registry_cache::Kept::Unused => None,
        };
        let registry_kept = Arc::new(std::sync::Mutex::new(current));
        if let (Some(file), registry_cache::Kept::Stale(stamp)) = (config.registry_file.clone(), kept) {
            // Kept for the next start in the background: serving does not wait for the file. A stop that comes
            // first writes the file itself, and this then leaves it alone.
            let (kept, registry) = (registry_kept.clone(), registry.clone());
            let _ = std::thread::Builder::new().name("gongwen-registry-file".into()).spawn(move || {
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.is_some() {
                    return;
                }
                match file.write(&registry, stamp) {
                    Ok(()) => *kept = Some(stamp),
                    Err(e) => tracing::warn!("the registry will be read from the store at the next start: {e}"),
                }
            });
        }
        if let Some(from) = older_format {
            format::step(store.as_ref(), from)?;
        }
        let (notices, _) = broadcast::channel(1024);
        Ok(App {
            writer: writer::Writer::start(store.clone())?,
            store,
            cache,
            blobs,
            clock,
            operator,
            log_key,
            snapshot: RwLock::new(Arc::new(Snapshot::new(registry))),
            registry_lock: tokio::sync::Mutex::new(()),
            notices,
            nonces: std::sync::Mutex::new(HashMap::new()),
            horizons: horizon::Horizons::load(None, started_second())?,
            registry_kept,
            rates: std::sync::Mutex::new(HashMap::new()),
            streams: Arc::new(tokio::sync::Semaphore::new(config.max_streams)),
            stream_shares: Arc::new(std::sync::Mutex::new(HashMap::new())),
            // No permit at all would leave every trace waiting for ever.
            walks: Arc::new(tokio::sync::Semaphore::new(config.max_tree_walks.max(1))),
            walks_waiting: std::sync::atomic::AtomicUsize::new(0),
            walks_abandoned: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            statements: tally::Tally::default(),
            heads: recent::Recent::new(HEADS_KEPT),
            public_keys: recent::Recent::new(PUBLIC_KEYS_KEPT),
            config,
        })
    }

    /// Keeps the request-token horizon in `file`, so that tokens accepted by this process are refused after a
    /// restart as well as before it (see [`horizon`]). Without it, only tokens dated before this start are.
    pub fn with_token_horizon(mut self, file: HorizonFile) -> Result<App, AppError> {
        self.horizons = horizon::Horizons::load(Some(file), started_second())?;
        Ok(self)
    }

    /// Tokens dated before this are refused: what a server waits out before it listens, when the last stop was a
    /// crash within [`horizon::LEASE`] of now.
    pub fn token_floor(&self) -> DateTime<Utc> {
        self.horizons.floor()
    }

    /// For a clean stop, once no request is left: saves the exact token horizon, so that the next start does not
    /// wait out the lease, and the registry, if it changed since the registry file last held it. Blocking.
    pub fn close(&self) -> Result<(), AppError> {
        self.horizons.close()?;
        if let Some(file) = &self.config.registry_file
            && let Err(e) = self.keep_registry(file)
        {
            tracing::warn!("the registry will be read from the store at the next start: {e}");
        }
        Ok(())
    }

    /// Writes the registry file if the store's registry changed since it was last written. Under the registry
    /// lock the running registry is the store's: every change updates it before it lets the lock go, even when its
    /// caller has gone (`App::apply_registry_change`). A change still running (a stop does not wait for one) leaves
    /// the file as it is, and the next start reads the store.
    fn keep_registry(&self, file: &registry_cache::RegistryFile) -> Result<(), AppError> {
        let Ok(_no_change_running) = self.registry_lock.try_lock() else {
            return Err(AppError::Precondition("a registry change is still running".into()));
        };
        let stamp = registry_cache::Stamp::of(self.store.as_ref())?;
        let mut kept = self.registry_kept.lock().unwrap_or_else(|p| p.into_inner());
        if *kept != Some(stamp) {
            file.write(&self.snapshot().registry, stamp)?;
            *kept = Some(stamp);
        }
        Ok(())
    }

    /// The operator's public key.
    pub fn operator(&self) -> &SealKey {
        &self.operator
    }

    /// The settings in force.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The attachment store.
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// Now, from the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The current registry snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_snapshot(&self, registry: Registry) {
        let new = Arc::new(Snapshot::new(registry));
        match self.snapshot.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// SHA-256 over every key and value in the store, in key order: equal digests mean equal stores. For checks
    /// that a refused request changed nothing, and for comparing a restored copy.
    pub async fn content_digest(&self) -> Result<[u8; 32], AppError> {
        self.read(|store| {
            let mut h = Sha256::new();
            for pair in store.scan(b"", None, false) {
                let (k, v) = pair?;
                h.update((k.len() as u64).to_be_bytes());
                h.update(&k);
                h.update((v.len() as u64).to_be_bytes());
                h.update(&v);
            }
            Ok(h.finalize().into())
        })
        .await
    }

    /// Tells the open-ended calls to end: the server is stopping.
    pub fn begin_stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves with the reason once the store can no longer make writes durable (a failed flush: see
    /// [`crate::store::Store::failure`]), which lasts until the server is restarted; never resolves while the store
    /// is open and sound (and with `None` for a store that cannot fail so).
    pub fn store_failed(&self) -> impl std::future::Future<Output = Option<String>> + Send + 'static {
        let mut rx = self.store.failure();
        async move { rx.wait_for(Option::is_some).await.ok().and_then(|reason| reason.clone()) }
    }

    /// Resolves once the server begins to stop (at once if it has).
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            // An error means the app is gone, which is a stop as well.
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// Subscribes to inbox notices.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    fn publish(&self, notice: Notice) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.notices.send(notice);
    }

    /// Runs a transaction on the writer thread; `Ok` means committed and durable.
    async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, AppError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Runs a read on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, AppError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref())).await?
    }

    /// [`App::read`] for a walk that builds a whole tree in memory, once one of the
    /// [`AppConfig::max_tree_walks`] permits is free.
    /// `f` is told through its [`limits::Wanted`] when this call is dropped, and stops between its parts.
    async fn walk<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store, &limits::Wanted) -> Result<T, AppError> + Send + 'static,
    {
        let permit = self.walk_permit().await?;
        self.walk_with(permit, f).await
    }

    /// [`App::walk`] with a permit the caller already holds (taken for work that leads up to the walk).
    async fn walk_with<T, F>(&self, permit: tokio::sync::OwnedSemaphorePermit, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store, &limits::Wanted) -> Result<T, AppError> + Send + 'static,
    {
        let wanted = limits::Wanted::default();
        let _gone_when_dropped = wanted.until_dropped();
        // The permit goes with the walk, not with this call: a client that gives up stops the walk only between
        // its parts, and must not free its permit while the walk still holds its tree.
        let abandoned = self.walks_abandoned.clone();
        self.read(move |store| {
            let _permit = permit;
            let walked = f(store, &wanted);
            if matches!(walked, Err(AppError::Cancelled)) {
                abandoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            walked
        })
        .await
    }

    /// Decodes an envelope's statement after checking its type (see [`open_envelope`]).
    fn open_envelope<M: Statement>(&self, envelope: &pb::SignedEnvelope) -> Result<Signed<M>, AppError> {
        open_envelope(envelope)
    }

    /// Checks that `envelope` is signed by a valid key of `unit_id`.
    fn verify_unit(&self, snapshot: &Snapshot, unit_id: &str, envelope: &pb::SignedEnvelope) -> Result<(), AppError> {
        if unit_id.is_empty() {
            return Err(AppError::field("unit_id", "the acting unit is required"));
        }
        let owner = snapshot
            .key_owner
            .get(&envelope.key_id)
            .ok_or_else(|| AppError::Unauthenticated(format!("unknown signing key {:?}", envelope.key_id)))?;
        if owner != unit_id {
            return Err(AppError::Denied(format!(
                "key {:?} belongs to {owner}, which may not act for {unit_id}",
                envelope.key_id
            )));
        }
        let unit = snapshot.unit(unit_id)?;
        let key = unit
            .keys
            .iter()
            .find(|k| k.key_id == envelope.key_id)
            .ok_or_else(|| AppError::Unauthenticated(format!("unknown signing key {:?}", envelope.key_id)))?;
        self.verify_seal(key, &envelope.payload_type, &envelope.payload, &envelope.signature, self.now())
    }

    /// Checks that `envelope` is signed by the operator key.
    fn verify_operator(&self, envelope: &pb::SignedEnvelope) -> Result<(), AppError> {
        if envelope.key_id != self.operator.key_id {
            return Err(AppError::Unauthenticated(format!(
                "registry changes must be signed by the operator key {:?}, not {:?}",
                self.operator.key_id, envelope.key_id
            )));
        }
        self.verify_seal(&self.operator, &envelope.payload_type, &envelope.payload, &envelope.signature, self.now())
    }

    /// [`seal::verify`] with the key's point decoded once for all its requests; a failure is UNAUTHENTICATED.
    fn verify_seal(
        &self,
        key: &SealKey,
        payload_type: &str,
        payload: &[u8],
        signature: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let unauth = |e: crate::domain::DomainError| AppError::Unauthenticated(e.to_string());
        let public = match self.public_keys.get(key.public_key.as_slice()) {
            Some(public) if public.algorithm() == key.algorithm => public,
            _ => {
                let public = Arc::new(seal::PublicKey::parse(key).map_err(unauth)?);
                self.public_keys.insert(key.public_key.clone(), public.clone());
                public
            }
        };
        seal::verify_with(key, &public, payload_type, payload, signature, at).map_err(unauth)
    }
}

/// Decodes an envelope's statement after checking its type. The signature is checked by [`App::verify_unit`]
/// or [`App::verify_operator`] once the acting unit is known from the statement.
pub(crate) fn open_envelope<M: Statement>(envelope: &pb::SignedEnvelope) -> Result<Signed<M>, AppError> {
    let expected_type = M::TYPE;
    if envelope.payload_type != expected_type {
        return Err(AppError::Invalid(format!(
            "this RPC takes a {expected_type} statement, not {:?}",
            envelope.payload_type
        )));
    }
    let statement = M::decode(envelope.payload.as_slice())
        .map_err(|e| AppError::Invalid(format!("the {expected_type} payload does not decode: {e}")))?;
    let mut h = Sha256::new();
    h.update(seal::pae(&envelope.payload_type, &envelope.payload));
    Ok(Signed { statement, envelope: envelope.clone(), digest: h.finalize().into() })
}

/// The server's log key: read from the store, or made and stored at the first start.
fn load_or_make_log_key(store: &dyn Store) -> Result<Signer, AppError> {
    if let Some((key_id, secret)) = schema::load::<(String, [u8; 32])>(store, schema::LOG_KEY)? {
        return Ok(Signer::from_secret(key_id, secret));
    }
    let mut key =
        Signer::generate("").map_err(|e| AppError::Store(crate::store::StoreError::Backend(e.to_string())))?;
    key.key_id = format!("log#{}", &hex::encode(key.public_key())[..8]);
    let record = (key.key_id.clone(), key.secret());
    store.transact(|tx| -> Result<(), AppError> {
        schema::save(tx, schema::LOG_KEY, &record)?;
        Ok(())
    })?;
    Ok(key)
}

/// Appends one event inside a transaction: its log entry, a registry event's index entry, and the interior Merkle
/// nodes it completes above `log::COMPUTED_UP_TO` (and its leaf, when the event is long). Returns its sequence
/// number.
fn append_event(
    tx: &mut dyn Tx,
    kind: EventKind,
    actor: &str,
    document_id: Option<&str>,
    envelope: &pb::SignedEnvelope,
    at: DateTime<Utc>,
) -> Result<u64, AppError> {
    let seq = schema::load_u64(tx, schema::EVENT_SEQ)? + 1;
    let entry = pb::LogEntry {
        event_seq: seq,
        kind: log_kind(kind) as i32,
        recorded_at: Some(prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        actor: actor.to_owned(),
        document_id: document_id.unwrap_or_default().to_owned(),
        envelope: Some(envelope.clone()),
    }
    .encode_to_vec();
    tx.put(&schema::event(seq), &entry);
    tx.put(schema::EVENT_SEQ, &seq.to_be_bytes());
    // A document's events are found through its record and its deliveries' steps (`log::document_events`), so
    // only the few registry events are indexed: every key per event is one sled loads at each start.
    if document_id.is_none() {
        tx.put(&schema::registry_event(seq), &[]);
    }
    let nodes = merkle::append(&log::TxNodes(tx), seq - 1, merkle::leaf_hash(&entry))?;
    // A short event's leaf is read as the hash of the event itself, and the lowest interior nodes as the hash of
    // the leaves below them (`log::node_from`): about one key less per event each.
    let leaf_kept = entry.len() > log::LEAF_STORED_ABOVE;
    let stored = |level: u32| if level == 0 { leaf_kept } else { level > log::COMPUTED_UP_TO };
    for (level, index, hash) in nodes.into_iter().filter(|(level, _, _)| stored(*level)) {
        tx.put(&schema::merkle_node(level, index), &hash);
    }
    Ok(seq)
}

fn log_kind(kind: EventKind) -> pb::LogEventKind {
    match kind {
        EventKind::RegistryChanged => pb::LogEventKind::RegistryChanged,
        EventKind::Issued => pb::LogEventKind::Issued,
        EventKind::Forwarded => pb::LogEventKind::Forwarded,
        EventKind::Acknowledged => pb::LogEventKind::Acknowledged,
        EventKind::Returned => pb::LogEventKind::Returned,
        EventKind::HandlingStarted => pb::LogEventKind::HandlingStarted,
        EventKind::Reported => pb::LogEventKind::Reported,
        EventKind::Completed => pb::LogEventKind::Completed,
        EventKind::Reminded => pb::LogEventKind::Reminded,
        EventKind::Imported => pb::LogEventKind::Imported,
        EventKind::KeysChanged => pb::LogEventKind::KeysChanged,
    }
}

/// What a request id produced the first time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum FirstResult {
    Registry { regions: u32, units: u32, groups: u32, baselines: u32, keys: u32, event_seq: u64 },
    Document(String),
    Delivery { document_id: String, recipient: String },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RequestRecord {
    digest: [u8; 32],
    result: FirstResult,
}

/// Looks up a request id: the first result for an identical retry, ALREADY_EXISTS for a different statement.
fn replayed(tx: &dyn Tx, actor: &str, request_id: &str, digest: &[u8; 32]) -> Result<Option<FirstResult>, AppError> {
    check_request_id(request_id)?;
    match schema::load_tx::<RequestRecord>(tx, &schema::request(actor, request_id))? {
        None => Ok(None),
        Some(r) if &r.digest == digest => Ok(Some(r.result)),
        Some(_) => Err(AppError::AlreadyExists(format!(
            "request id {request_id:?} was already used by {actor} for a different request"
        ))),
    }
}

fn remember(
    tx: &mut dyn Tx,
    actor: &str,
    request_id: &str,
    digest: [u8; 32],
    result: FirstResult,
) -> Result<(), AppError> {
    schema::save(tx, &schema::request(actor, request_id), &RequestRecord { digest, result })?;
    Ok(())
}

fn check_request_id(request_id: &str) -> Result<(), AppError> {
    if request_id.is_empty() || request_id.len() > 128 || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::field("request_id", "1 to 128 printable ASCII characters are required"));
    }
    Ok(())
}
