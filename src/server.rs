//! Starting and stopping the gRPC server over a data directory.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::app::registry_cache::RegistryFile;
use crate::app::{App, AppConfig, AppError, Clock, SystemClock, horizon};
use crate::domain::model::SealKey;
use crate::grpc::{
    audit::AuditApi, deliveries::DeliveryApi, documents::DocumentApi, registry::RegistryApi,
    supervision::SupervisionApi, trace::TraceApi,
};
use crate::pb;
use crate::store::horizon_file::HorizonFile;
use crate::store::{BlobStore, SledOptions, SledStore, StoreError, layout};

mod cut;

/// Largest reply: bundles and traces of large trees are far above tonic's 4 MiB default.
const MAX_REPLY: usize = 512 * 1024 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("gRPC and metrics cannot share {0}: give metrics an address of its own")]
    SharedAddress(SocketAddr),
    #[error("gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("TLS: {0}")]
    Tls(String),
    /// A part built from what is compiled in (reflection's descriptors, the metrics registry) failed to build.
    #[error("cannot set up {0}")]
    Setup(String),
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Data directory: `db/` for sled, `blobs/` for attachments.
    pub data_dir: PathBuf,
    /// How the store is opened: sled's page cache, the deferral threshold for large commits, the flush's
    /// gathering wait (the background applier is off only in tests that look at the store before it).
    pub store: SledOptions,
    /// Application limits.
    pub app: AppConfig,
    /// Operator key recorded at the first start of a new data directory.
    pub operator: Option<SealKey>,
    /// Where to serve Prometheus metrics (plain HTTP); `None` serves none.
    pub metrics: Option<SocketAddr>,
    /// TLS; `None` serves plaintext (the command line refuses that unless `--plaintext` is given).
    pub tls: Option<TlsFiles>,
    /// How long a stop waits for the requests in flight before it cuts them off: a client that stops reading a
    /// reply stream (a download, a log) would otherwise hold the stop for as long as it likes.
    pub stop_grace: std::time::Duration,
    /// How often the server pings a connection (HTTP/2 PING), and how long it waits for the answer before it closes
    /// the connection. A client whose machine died or whose network went away sends no FIN: without pings, its
    /// idle watch or `Act` call would hold a stream and its caller's share of them for ever.
    pub keepalive: Keepalive,
}

/// HTTP/2 keepalive pings: every `interval`, answered within `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
}

/// The default [`ServerConfig::keepalive`]: a dead peer's streams come back within a minute, for a ping of a few
/// dozen bytes every 30 s per connection.
pub const KEEPALIVE: Keepalive =
    Keepalive { interval: std::time::Duration::from_secs(30), timeout: std::time::Duration::from_secs(20) };

/// PEM files for TLS (rustls).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::Tls(format!("{}: {source}", path.display())))
}

/// `builder` serving TLS from `tls`'s files, read and parsed (a certificate or key that does not parse fails here).
fn with_tls(builder: tonic::transport::Server, tls: &TlsFiles) -> Result<tonic::transport::Server, ServerError> {
    let identity = tonic::transport::Identity::from_pem(read_pem(&tls.cert)?, read_pem(&tls.key)?);
    let mut t = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        t = t.client_ca_root(tonic::transport::Certificate::from_pem(read_pem(ca)?));
    }
    builder.tls_config(t).map_err(|e| {
        let why = error_chain(&e);
        let files = match &tls.client_ca {
            Some(ca) => format!("{}, {} and client CA {}", tls.cert.display(), tls.key.display(), ca.display()),
            None => format!("{} and {}", tls.cert.display(), tls.key.display()),
        };
        ServerError::Tls(format!("{files}: {why}"))
    })
}

/// Binds the listen and metrics addresses together and lets them go: a start refused for an address in use (or
/// the two the same) is refused before the store is opened, leaving no data directory behind. The real binds come
/// once the store is open; only a process taking the address in between slips past this.
pub fn probe_addresses(config: &ServerConfig) -> Result<(), ServerError> {
    if let Some(metrics) = config.metrics {
        // One family's unspecified address covers that family's others; a bind in the other family may succeed.
        let overlaps = |a: std::net::IpAddr, b: std::net::IpAddr| {
            a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        };
        if metrics.port() == config.listen.port() && overlaps(metrics.ip(), config.listen.ip()) && metrics.port() != 0 {
            return Err(ServerError::SharedAddress(metrics));
        }
    }
    let _listen = std::net::TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
        what: "gRPC",
        addr: config.listen,
        source,
    })?;
    if let Some(metrics) = config.metrics {
        let _metrics = std::net::TcpListener::bind(metrics).map_err(|source| ServerError::Bind {
            what: "metrics",
            addr: metrics,
            source,
        })?;
    }
    Ok(())
}

/// tonic's transport errors say only "transport error" at the top; the cause (refused, bad URI, …) is below.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Wrappers often repeat their cause's message; print each once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Reads and parses the TLS files as a start would, serving nothing (`gongwen serve --check-config`).
pub fn check_tls(tls: &TlsFiles) -> Result<(), ServerError> {
    with_tls(tonic::transport::Server::builder(), tls).map(|_| ())
}

impl ServerConfig {
    /// Defaults for a data directory: 127.0.0.1:50051, 256 MiB cache, 64 MiB attachments.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: data_dir.into(),
            store: SledOptions::new(256 * 1024 * 1024),
            app: AppConfig::default(),
            operator: None,
            metrics: None,
            tls: None,
            stop_grace: STOP_GRACE,
            keepalive: KEEPALIVE,
        }
    }
}

/// The default [`ServerConfig::stop_grace`]: well within the 30 s the shipped compose file gives a stop before it
/// kills (the systemd unit gives 120 s), leaving time for the snapshot a stop writes.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Once `failed` resolves, the store cannot make writes durable until the server is restarted: health checks
/// answer NOT_SERVING from then on, so that an orchestrator restarts it (the next start recovers the store), and
/// the log says why. Ends without a word when the store closes first.
async fn report_store_failure(
    failed: impl std::future::Future<Output = Option<String>>,
    health: tonic_health::server::HealthReporter,
) {
    let Some(reason) = failed.await else { return };
    tracing::error!(
        %reason,
        "the store can no longer make writes durable; health checks answer NOT_SERVING until the server is restarted"
    );
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    health.set_not_serving::<pb::registry_service_server::RegistryServiceServer<RegistryApi>>().await;
}

/// A running server.
pub struct Running {
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The application state (for in-process tools such as the demo).
    pub app: Arc<App>,
    /// Where metrics are served, if they are.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    connections: cut::CutSwitch,
    data_dir: PathBuf,
    /// How the store was opened: the stop opens it once more, with the same options, to snapshot it.
    store: SledOptions,
    stop_grace: std::time::Duration,
}

impl Running {
    /// Stops accepting and ends the open-ended calls (`Act`, `WatchInbox`), which would otherwise keep the server
    /// waiting on their clients; requests in flight finish.
    fn signal_stop(&mut self) {
        self.app.begin_stop();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the requests in flight, within the stop's grace; then cuts off any still open, connections and
    /// all. Their connections' tasks may hold the app a moment longer, which [`Running::release`] waits for.
    async fn finish(&mut self) -> Result<(), ServerError> {
        match tokio::time::timeout(self.stop_grace, &mut self.task).await {
            Ok(ended) => ended??,
            Err(_) => {
                tracing::warn!(grace = ?self.stop_grace, "requests still open after the stop's grace: cut off");
                self.connections.cut();
                self.task.abort();
            }
        }
        Ok(())
    }

    /// Stops accepting, lets in-flight requests finish (within the stop's grace), and waits for the server to end.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        self.signal_stop();
        self.finish().await?;
        self.release().await;
        Ok(())
    }

    /// [`Running::stop`], then opens the store once more and closes it, which is when sled writes its snapshot:
    /// sled replays its log from the last snapshot at every start, so without this the next start pays for every
    /// write since this one began (seconds after a million). The cost moves to the stop. Skipped when the store
    /// could not be released.
    pub async fn stop_and_snapshot(mut self) -> Result<(), ServerError> {
        self.signal_stop();
        self.finish().await?;
        let db_dir = layout::db_dir(&self.data_dir);
        let options = SledOptions { apply_in_background: false, ..self.store.clone() };
        if self.release().await {
            tokio::task::spawn_blocking(move || SledStore::open_with(&db_dir, options).map(drop)).await??;
        }
        Ok(())
    }

    /// Connection tasks let go of the app a moment after the server has ended, and the store closes (releasing
    /// the data directory's lock) only with the app's last reference: waits for that, within a bound, so a
    /// restart in the same process finds the directory free. Returns whether the store was released.
    async fn release(self) -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while Arc::strong_count(&self.app) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let last = Arc::strong_count(&self.app) == 1;
        // Dropping the last reference joins the writer threads: not on an async worker.
        let app = self.app;
        let _ = tokio::task::spawn_blocking(move || {
            // With no request left, the token horizon may come down to the last token accepted.
            if last && let Err(e) = app.close() {
                tracing::warn!("the token horizon stays at its lease: {e}");
            }
            drop(app)
        })
        .await;
        last
    }
}

/// After a crash, tokens dated up to twice [`horizon::LEASE`] past it are refused (an earlier process may have
/// accepted them): waiting that out before listening spares clients a refusal. A floor further ahead means the
/// clock went back; that is logged, not waited for.
async fn wait_for_token_floor(floor: chrono::DateTime<chrono::Utc>) {
    // To the next whole second: clients may send token times without fractions.
    let floor = match chrono::DurationRound::duration_trunc(floor, chrono::Duration::seconds(1)) {
        Ok(second) if second < floor => second + chrono::Duration::seconds(1),
        _ => floor,
    };
    let Ok(wait) = (floor - chrono::Utc::now()).to_std() else { return };
    if wait > floor_wait_limit().to_std().unwrap_or_default() {
        tracing::warn!(%floor, "request tokens dated before {floor} are refused: the clock is behind the last start's");
        return;
    }
    tracing::info!(wait_ms = wait.as_millis() as u64, "waiting out the token horizon of the last run");
    tokio::time::sleep(wait).await;
}

/// The longest wait for the token floor: a crash can leave the shared bound [`horizon::LEASE`] past a token
/// dated `LEASE` ahead of the clock, and a second more for a quick restart.
fn floor_wait_limit() -> chrono::Duration {
    horizon::LEASE + horizon::LEASE + chrono::Duration::seconds(1)
}

/// Opens the data directory and starts serving. Returns once the socket is bound, so clients may connect at once.
pub async fn start(config: ServerConfig) -> Result<Running, ServerError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with a given clock.
pub async fn start_with_clock(config: ServerConfig, clock: Arc<dyn Clock>) -> Result<Running, ServerError> {
    // Certificates first: a start refused for a bad one leaves the store untouched (unopened, not stepped to a
    // newer record format).
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(config.keepalive.interval))
        .http2_keepalive_timeout(Some(config.keepalive.timeout));
    if let Some(tls) = &config.tls {
        builder = with_tls(builder, tls)?;
    }
    probe_addresses(&config)?;
    let db_dir = layout::db_dir(&config.data_dir);
    let blob_dir = layout::blob_dir(&config.data_dir);
    let options = config.store.clone();
    let limit = config.app.max_attachment_bytes;
    let (store, blobs) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        Ok((SledStore::open_with(&db_dir, options)?, BlobStore::open(&blob_dir, limit)?))
    })
    .await??;
    let app_config = AppConfig { registry_file: Some(RegistryFile::in_dir(&config.data_dir)), ..config.app.clone() };
    let app = App::open(Arc::new(store), Arc::new(blobs), clock, app_config, config.operator.clone())?
        .with_token_horizon(HorizonFile::in_dir(&config.data_dir))?;
    let (data_dir, operator) = (config.data_dir.clone(), app.operator().clone());
    // Only a copy, for `serve --check-config`: a failure to write it is logged, and the start goes on.
    let recorded =
        tokio::task::spawn_blocking(move || layout::record_operator(&data_dir, &operator.key_id, &operator.public_key));
    if let Err(e) = recorded.await? {
        tracing::warn!("cannot record the operator key in {}: {e}", config.data_dir.display());
    }
    wait_for_token_floor(app.token_floor()).await;
    let app = Arc::new(app);
    let listener = TcpListener::bind(config.listen).await.map_err(|source| ServerError::Bind {
        what: "gRPC",
        addr: config.listen,
        source,
    })?;
    let addr =
        listener.local_addr().map_err(|source| ServerError::Bind { what: "gRPC", addr: config.listen, source })?;
    let (tx, rx) = oneshot::channel::<()>();
    // Standard tools (grpc_health_probe, grpcurl) find their way without our token: health and reflection are public.
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<pb::registry_service_server::RegistryServiceServer<RegistryApi>>().await;
    tokio::spawn(report_store_failure(app.store_failed(), health_reporter.clone()));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_failed = |e: tonic_reflection::server::Error| ServerError::Setup(format!("reflection: {e}"));
    let reflection_v1 = reflection().build_v1().map_err(reflection_failed)?;
    // The same service under its older name, which grpcurl before 1.9, grpcui, Evans and Postman ask for.
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_failed)?;
    let metrics = Arc::new(crate::metrics::Metrics::new().map_err(|e| ServerError::Setup(format!("metrics: {e}")))?);
    let metrics_addr = match config.metrics {
        Some(a) => Some(
            crate::metrics::serve(a, metrics.clone(), Arc::downgrade(&app))
                .await
                .map_err(|source| ServerError::Bind { what: "metrics", addr: a, source })?,
        ),
        None => None,
    };
    // The message limit is enforced in front of every service by `grpc::limit` (RESOURCE_EXHAUSTED, whatever the
    // RPC); tonic's own per-service check (4 MiB by default, OUT_OF_RANGE) is raised to the same figure so the
    // configured limit is the one that applies, above 4 MiB too.
    let max_in = config.app.max_message_bytes;
    let router = builder
        .layer(crate::metrics::Measure { metrics })
        .layer(crate::grpc::auth::Authenticate { app: app.clone() })
        .add_service(health.max_decoding_message_size(max_in))
        .add_service(reflection_v1.max_decoding_message_size(max_in))
        .add_service(reflection_v1alpha.max_decoding_message_size(max_in))
        .add_service(
            pb::registry_service_server::RegistryServiceServer::new(RegistryApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        )
        .add_service(
            pb::document_service_server::DocumentServiceServer::new(DocumentApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        )
        .add_service(
            pb::delivery_service_server::DeliveryServiceServer::new(DeliveryApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        )
        .add_service(
            pb::trace_service_server::TraceServiceServer::new(TraceApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        )
        .add_service(
            pb::audit_service_server::AuditServiceServer::new(AuditApi { app: app.clone() })
                .max_decoding_message_size(max_in)
                .max_encoding_message_size(MAX_REPLY),
        )
        .add_service(
            pb::supervision_service_server::SupervisionServiceServer::new(SupervisionApi { app: app.clone() })
                .max_decoding_message_size(max_in)
                .max_encoding_message_size(MAX_REPLY),
        )
        .add_service(
            pb::public_service_server::PublicServiceServer::new(crate::grpc::public::PublicApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        )
        .add_service(
            pb::admin_service_server::AdminServiceServer::new(crate::grpc::admin::AdminApi { app: app.clone() })
                .max_decoding_message_size(max_in),
        );
    // Our own listener (for port 0) bypasses tonic's TCP_NODELAY setting; without it, Nagle's algorithm and delayed
    // ACKs add ~40 ms to every small reply.
    let connections = cut::CutSwitch::new();
    let incoming = TcpListenerStream::new(listener).map({
        let wrap = connections.wrapper();
        move |conn| {
            conn.map(|c| {
                let _ = c.set_nodelay(true);
                wrap.wrap(c)
            })
        }
    });
    let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = rx.await;
    }));
    let metrics = metrics_addr.map_or_else(|| "off".to_owned(), |m| m.to_string());
    tracing::info!(%addr, %metrics, data_dir = %config.data_dir.display(), "gongwen serving");
    Ok(Running {
        addr,
        app,
        metrics_addr,
        shutdown: Some(tx),
        task,
        connections,
        data_dir: config.data_dir.clone(),
        store: config.store.clone(),
        stop_grace: config.stop_grace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_after_a_crash_covers_the_highest_shared_bound() {
        let now = chrono::Utc::now();
        // A token dated LEASE ahead raises the shared bound to LEASE past it.
        let horizon::Cover::Shared(bound) = horizon::cover(now + horizon::LEASE, now, now, None) else {
            panic!("a token LEASE ahead raises the shared bound")
        };
        assert!(bound - now <= floor_wait_limit(), "a crash right after it leaves a floor not waited for");
    }
}
