//! Test harness: the real server on 127.0.0.1:0 over a real sled store in a temp dir, spoken to through the
//! generated gRPC clients, with signing keys held in memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use gongwen::auth::{SignRequests, Signed};
use gongwen::domain::model::{KeyAlgorithm, SealKey};
use gongwen::pb;
use gongwen::pb::delivery_service_client::DeliveryServiceClient;
use gongwen::pb::document_service_client::DocumentServiceClient;
use gongwen::pb::registry_service_client::RegistryServiceClient;
use gongwen::pb::trace_service_client::TraceServiceClient;
use gongwen::server::{self, Running, ServerConfig};
use gongwen::signing::{Signer, Statement};
use tempfile::TempDir;
use tonic::transport::Channel;
use tower::Layer;

/// A channel whose every request carries a signed token.
pub type Ch = Signed<Channel>;

pub const PROVINCE: &str = "370000.czt";
pub const ZIBO: &str = "370300.czj";
pub const BOSHAN: &str = "370304.czj";

pub struct Harness {
    pub dir: TempDir,
    pub server: Option<Running>,
    pub addr: SocketAddr,
    pub operator: Signer,
    pub keys: HashMap<String, Signer>,
    pub max_attachment_bytes: u64,
    /// Limits and settings the server starts with.
    pub config: gongwen::app::AppConfig,
    /// Commits with at least this many new keys are applied in the background (the server's `defer_at`).
    pub defer_at: usize,
    /// Whether the server moves deferred keys into the tree.
    pub apply_in_background: bool,
    /// How long a stop waits for requests in flight.
    pub stop_grace: std::time::Duration,
    pub keepalive: gongwen::server::Keepalive,
    clock: std::sync::Arc<dyn gongwen::app::Clock>,
    channel: Option<Channel>,
}

fn operator_key(s: &Signer) -> SealKey {
    SealKey {
        key_id: s.key_id.clone(),
        algorithm: KeyAlgorithm::Ed25519,
        public_key: s.public_key().to_vec(),
        valid_from: None,
        revoked_at: None,
    }
}

impl Harness {
    /// A server on a fresh temp dir with no registry.
    pub async fn start() -> Harness {
        Harness::start_with_limit(64 * 1024 * 1024).await
    }

    pub async fn start_with_limit(max_attachment_bytes: u64) -> Harness {
        Harness::start_with(max_attachment_bytes, std::sync::Arc::new(gongwen::app::SystemClock)).await
    }

    /// A server that reads the time from `clock`.
    pub async fn start_with_clock(clock: std::sync::Arc<dyn gongwen::app::Clock>) -> Harness {
        Harness::start_with(64 * 1024 * 1024, clock).await
    }

    /// A server with settings changed by `f`.
    pub async fn start_configured(f: impl FnOnce(&mut gongwen::app::AppConfig)) -> Harness {
        let mut config = gongwen::app::AppConfig::default();
        f(&mut config);
        Harness::start_full(config, std::sync::Arc::new(gongwen::app::SystemClock)).await
    }

    async fn start_with(max_attachment_bytes: u64, clock: std::sync::Arc<dyn gongwen::app::Clock>) -> Harness {
        let config = gongwen::app::AppConfig { max_attachment_bytes, ..Default::default() };
        Harness::start_full(config, clock).await
    }

    async fn start_full(config: gongwen::app::AppConfig, clock: std::sync::Arc<dyn gongwen::app::Clock>) -> Harness {
        let max_attachment_bytes = config.max_attachment_bytes;
        let dir = tempfile::tempdir().expect("temp dir");
        let operator = Signer::from_secret("operator#test", [42u8; 32]);
        let mut h = Harness {
            dir,
            server: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            operator,
            keys: HashMap::new(),
            max_attachment_bytes,
            config,
            defer_at: ServerConfig::new("").store.defer_at,
            apply_in_background: true,
            stop_grace: gongwen::server::STOP_GRACE,
            keepalive: gongwen::server::KEEPALIVE,
            clock,
            channel: None,
        };
        h.boot().await;
        h
    }

    async fn boot(&mut self) {
        let mut cfg = ServerConfig::new(self.dir.path().join("data"));
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        cfg.store.cache_bytes = 16 * 1024 * 1024;
        cfg.store.defer_at = self.defer_at;
        cfg.store.apply_in_background = self.apply_in_background;
        cfg.stop_grace = self.stop_grace;
        cfg.keepalive = self.keepalive;
        cfg.app = self.config.clone();
        cfg.app.max_attachment_bytes = self.max_attachment_bytes;
        cfg.operator = Some(operator_key(&self.operator));
        let running = server::start_with_clock(cfg, self.clock.clone()).await.expect("server starts");
        self.addr = running.addr;
        // The socket is bound before `start` returns, so connecting now cannot race the server.
        let channel =
            Channel::from_shared(format!("http://{}", running.addr)).expect("uri").connect().await.expect("connect");
        self.channel = Some(channel);
        self.server = Some(running);
    }

    /// The running server's metrics, as Prometheus scrapes them.
    pub async fn metrics(&self) -> String {
        let running = self.server.as_ref().expect("a running server");
        scrape(&running.metrics_addr.expect("a metrics address").to_string()).await
    }

    /// Waits, polling with a deadline, until the server's metrics hold `line` (a call is counted when the server
    /// lets go of it, a moment after its client has seen its end); panics with `what` and the metrics otherwise.
    pub async fn metrics_until(&self, line: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = self.metrics().await;
            if text.contains(line) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {text}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stops the server and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub async fn stop(&mut self) {
        self.channel = None;
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
    }

    /// Stops the server as `gongwen serve` does on SIGTERM: leaving the store's snapshot written.
    pub async fn stop_and_snapshot(&mut self) {
        self.channel = None;
        if let Some(s) = self.server.take() {
            s.stop_and_snapshot().await.expect("clean stop with a snapshot");
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The unsigned channel, for requests that must carry no token.
    pub fn raw_channel(&self) -> Channel {
        self.channel.clone().expect("server running")
    }

    /// A channel signing as the operator (what most tests use).
    fn channel(&self) -> Ch {
        SignRequests::new("operator", self.operator.clone()).layer(self.raw_channel())
    }

    /// A channel signing as the operator.
    pub fn channel_as_operator(&self) -> Ch {
        self.channel()
    }

    /// A channel signing as `unit`.
    pub fn channel_as(&self, unit: &str) -> Ch {
        SignRequests::new(unit, self.signer(unit).clone()).layer(self.raw_channel())
    }

    pub fn registry(&self) -> RegistryServiceClient<Ch> {
        RegistryServiceClient::new(self.channel())
    }
    pub fn documents(&self) -> DocumentServiceClient<Ch> {
        DocumentServiceClient::new(self.channel()).max_decoding_message_size(64 * 1024 * 1024)
    }
    pub fn deliveries(&self) -> DeliveryServiceClient<Ch> {
        DeliveryServiceClient::new(self.channel()).max_decoding_message_size(64 * 1024 * 1024)
    }
    pub fn audit(&self) -> gongwen::pb::audit_service_client::AuditServiceClient<Ch> {
        gongwen::pb::audit_service_client::AuditServiceClient::new(self.channel())
            .max_decoding_message_size(256 * 1024 * 1024)
    }
    pub fn supervision(&self) -> gongwen::pb::supervision_service_client::SupervisionServiceClient<Ch> {
        gongwen::pb::supervision_service_client::SupervisionServiceClient::new(self.channel())
            .max_decoding_message_size(256 * 1024 * 1024)
    }
    pub fn tracer(&self) -> TraceServiceClient<Ch> {
        TraceServiceClient::new(self.channel()).max_decoding_message_size(64 * 1024 * 1024)
    }

    /// An online backup through `AdminService.Backup`, as the operator, read to its end.
    pub async fn backup(&self) -> Vec<u8> {
        let mut stream = gongwen::pb::admin_service_client::AdminServiceClient::new(self.channel_as_operator())
            .backup(gongwen::pb::BackupRequest {})
            .await
            .expect("backup")
            .into_inner();
        let mut bytes = vec![];
        while let Some(c) = stream.message().await.expect("chunk") {
            bytes.extend(c.chunk);
        }
        bytes
    }

    /// SHA-256 of the whole store.
    pub async fn digest(&self) -> [u8; 32] {
        self.server.as_ref().expect("server running").app.content_digest().await.expect("digest")
    }

    /// Loads the bundled Shandong registry, with a fresh key per unit.
    pub async fn load_bundled(&mut self) {
        let file = gongwen::registry_file::bundled().expect("bundled registry parses");
        let change = file.into_change("load-bundled".into(), |id| {
            let signer = Signer::from_secret(format!("{id}#k1"), unit_secret(id));
            let seal = signer.seal_key();
            self.keys.insert(id.to_owned(), signer);
            Ok::<_, std::convert::Infallible>(vec![seal])
        });
        let Ok(change) = change;
        self.apply(change).await.expect("bundled registry applies");
    }

    /// Applies a registry change signed by the operator.
    pub async fn apply(&self, change: pb::RegistryChange) -> Result<pb::RegistryChangeReply, tonic::Status> {
        let env = self.operator.envelope(&change);
        self.registry().apply_registry_change(env).await.map(|r| r.into_inner())
    }

    pub fn signer(&self, unit: &str) -> &Signer {
        self.keys.get(unit).unwrap_or_else(|| panic!("no key for {unit}"))
    }

    /// The unit ids a group reaches for an issuer.
    pub async fn expand(&self, group: &str, issuer: &str) -> Vec<String> {
        let req = pb::ExpandGroupRequest { group: group.into(), issuer_unit_id: issuer.into() };
        let units = self.registry().expand_group(req).await.expect("expand").into_inner().units;
        units.into_iter().map(|u| u.id).collect()
    }

    /// Signs a statement as `unit`.
    pub fn sign<M: Statement>(&self, unit: &str, m: &M) -> pb::SignedEnvelope {
        self.signer(unit).envelope(m)
    }

    pub async fn issue(
        &self,
        unit: &str,
        request_id: &str,
        draft: pb::DocumentDraft,
    ) -> Result<pb::Document, tonic::Status> {
        let m = pb::IssueDocument { request_id: request_id.into(), unit_id: unit.into(), draft: Some(draft) };
        self.documents().issue_document(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    pub async fn forward(
        &self,
        unit: &str,
        request_id: &str,
        source: &str,
        draft: pb::DocumentDraft,
    ) -> Result<pb::Document, tonic::Status> {
        let m = pb::ForwardDocument {
            request_id: request_id.into(),
            unit_id: unit.into(),
            source_document_id: source.into(),
            draft: Some(draft),
        };
        self.documents().forward_document(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    pub async fn ack(&self, unit: &str, doc: &str) -> Result<pb::Delivery, tonic::Status> {
        let m = pb::Acknowledge {
            request_id: format!("ack-{doc}-{unit}"),
            unit_id: unit.into(),
            document_id: doc.into(),
            registration_number: String::new(),
        };
        self.deliveries().acknowledge(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    /// `unit` reports on its delivery of `doc`.
    pub async fn report(&self, unit: &str, doc: &str) -> Result<pb::Delivery, tonic::Status> {
        let m = pb::SubmitReport {
            request_id: format!("report-{doc}-{unit}"),
            unit_id: unit.into(),
            document_id: doc.into(),
            text: "进展情况".into(),
            attachment_sha256: vec![],
        };
        self.deliveries().report(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    /// `unit` completes its delivery of `doc`.
    pub async fn complete(&self, unit: &str, doc: &str) -> Result<pb::Delivery, tonic::Status> {
        let m = pb::Complete {
            request_id: format!("complete-{doc}-{unit}"),
            unit_id: unit.into(),
            document_id: doc.into(),
            note: String::new(),
        };
        self.deliveries().complete(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    /// `unit` returns its delivery of `doc` as not its business.
    pub async fn return_delivery(&self, unit: &str, doc: &str) -> Result<pb::Delivery, tonic::Status> {
        let m = pb::ReturnDelivery {
            request_id: format!("return-{doc}-{unit}"),
            unit_id: unit.into(),
            document_id: doc.into(),
            reason: "非本单位职责".into(),
        };
        self.deliveries().r#return(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    /// `unit` starts handling `doc` in its 采购科.
    pub async fn start_handling(&self, unit: &str, doc: &str) -> Result<pb::Delivery, tonic::Status> {
        let m = pb::StartHandling {
            request_id: format!("handle-{doc}-{unit}"),
            unit_id: unit.into(),
            document_id: doc.into(),
            lead_office: "采购科".into(),
            note: String::new(),
        };
        self.deliveries().start_handling(self.sign(unit, &m)).await.map(|r| r.into_inner())
    }

    pub async fn delivery(&self, doc: &str, unit: &str) -> pb::Delivery {
        self.deliveries()
            .get_delivery(pb::GetDeliveryRequest { document_id: doc.into(), recipient_unit_id: unit.into() })
            .await
            .expect("delivery")
            .into_inner()
    }

    /// Uploads as the operator.
    pub async fn upload(&self, bytes: &[u8]) -> Result<pb::UploadReply, tonic::Status> {
        self.upload_with(self.documents(), bytes).await
    }

    /// Uploads with a token of `unit`, so the file counts as that unit's and it may attach it.
    pub async fn upload_as(&self, unit: &str, bytes: &[u8]) -> Result<pb::UploadReply, tonic::Status> {
        self.upload_with(DocumentServiceClient::new(self.channel_as(unit)), bytes).await
    }

    async fn upload_with(
        &self,
        mut client: DocumentServiceClient<Ch>,
        bytes: &[u8],
    ) -> Result<pb::UploadReply, tonic::Status> {
        let mut msgs = vec![pb::UploadChunk {
            part: Some(pb::upload_chunk::Part::Meta(pb::UploadMeta {
                file_name: "f".into(),
                media_type: "text/plain".into(),
                expected_sha256: String::new(),
            })),
        }];
        for c in bytes.chunks(64 * 1024) {
            msgs.push(pb::UploadChunk { part: Some(pb::upload_chunk::Part::Chunk(c.to_vec())) });
        }
        client.upload_attachment(tokio_stream::iter(msgs)).await.map(|r| r.into_inner())
    }
}

/// A deterministic secret per unit, so keys survive a harness restart.
fn unit_secret(unit: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("test-key:{unit}").as_bytes()).into()
}

pub fn group(name: &str) -> pb::Recipient {
    pb::Recipient { target: Some(pb::recipient::Target::Group(name.into())) }
}

pub fn unit(id: &str) -> pb::Recipient {
    pb::Recipient { target: Some(pb::recipient::Target::UnitId(id.into())) }
}

/// A minimal valid draft: a notice, public, dated 2022-08-16.
pub fn draft(prefix: &str, title: &str, main: Vec<pb::Recipient>) -> pb::DocumentDraft {
    pb::DocumentDraft {
        number_prefix: prefix.into(),
        number_year: 2022,
        title: title.into(),
        genre: pb::Genre::Notice as i32,
        main_recipients: main,
        dated: "2022-08-16".into(),
        disclosure: pb::Disclosure::Public as i32,
        ..Default::default()
    }
}

/// A forward draft: everything derived or inherited.
pub fn forward_draft(prefix: &str, main: Vec<pb::Recipient>) -> pb::DocumentDraft {
    pb::DocumentDraft {
        number_prefix: prefix.into(),
        number_year: 2022,
        main_recipients: main,
        dated: "2022-12-20".into(),
        ..Default::default()
    }
}

/// Runs `call`, expects `code`, and checks that the store is byte for byte what it was before.
pub async fn refused<T: std::fmt::Debug>(
    h: &Harness,
    code: tonic::Code,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> tonic::Status {
    let before = h.digest().await;
    let status = match call.await {
        Ok(v) => panic!("expected {code:?}, got success: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "message: {}", status.message());
    assert!(!status.message().is_empty());
    assert_eq!(before, h.digest().await, "a refused request changed the store: {}", status.message());
    status
}

/// Whether the server holds an attachment file with this hash, asked through DownloadAttachment (the store digest
/// does not cover attachment files, which live outside sled).
pub async fn attachment_stored(h: &Harness, sha256: &str) -> bool {
    let first = match h.documents().download_attachment(pb::DownloadRequest { sha256: sha256.into() }).await {
        Ok(stream) => stream.into_inner().message().await,
        Err(s) => Err(s),
    };
    match first {
        Ok(_) => true,
        Err(s) if s.code() == tonic::Code::NotFound => false,
        Err(s) => panic!("download {sha256}: {s}"),
    }
}

/// The gRPC body of a unary request: a 5-byte prefix and the message.
pub fn body_digest<M: prost::Message>(m: &M) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let bytes = m.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(bytes.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&bytes);
    Sha256::digest(&framed).to_vec()
}

/// A token of `caller`, signed by `signer`, for `method` and `m`, dated `at`.
pub fn token_as<M: prost::Message + Clone>(
    signer: &gongwen::signing::Signer,
    caller: &str,
    method: &str,
    m: &M,
    at: chrono::DateTime<chrono::Utc>,
) -> tonic::Request<M> {
    use prost::Message;
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).expect("nonce");
    let token = pb::RequestToken {
        unit_id: caller.into(),
        method: method.into(),
        time: Some(prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: i32::try_from(at.timestamp_subsec_nanos()).expect("nanos"),
        }),
        nonce: nonce.to_vec(),
        body_sha256: body_digest(m),
    }
    .encode_to_vec();
    let auth = pb::AuthToken {
        signature: signer.sign_raw(gongwen::auth::TOKEN_TYPE, &token),
        token,
        key_id: signer.key_id.clone(),
    };
    let mut req = tonic::Request::new(m.clone());
    req.metadata_mut()
        .insert_bin(gongwen::auth::HEADER, tonic::metadata::MetadataValue::from_bytes(&auth.encode_to_vec()));
    req
}

/// For tests of the command line: a server on a fresh data directory under `dir` with the bundled registry and a
/// keystore in `dir/keys` holding every unit's key; the server's URL and the operator's client.
pub async fn cli_server(dir: &std::path::Path) -> (Running, String, gongwen::cli::client::Client) {
    cli_server_configured(dir, |_| {}).await
}

/// [`cli_server`] with settings changed by `f` before the start.
pub async fn cli_server_configured(
    dir: &std::path::Path,
    f: impl FnOnce(&mut ServerConfig),
) -> (Running, String, gongwen::cli::client::Client) {
    let keys = dir.join("keys");
    let operator = gongwen::cli::keystore::Keystore::new(&keys).generate("operator", None).expect("operator key");
    let mut cfg = ServerConfig::new(dir.join("data"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.store.cache_bytes = 16 << 20;
    cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
    f(&mut cfg);
    let running = server::start(cfg).await.expect("server");
    let addr = format!("http://{}", running.addr);
    let client = gongwen::cli::client::Client::connect(&addr, &keys, "operator", false).await.expect("client");
    client.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    (running, addr, client)
}

/// Calls `open` until it is no longer refused with RESOURCE_EXHAUSTED saying `refusal` (a permit or share given
/// back is noticed asynchronously), for at most ten seconds; any other refusal fails the test, so a loop waiting for
/// a stream cannot outlast its meaning (the rate limit answers with the same code).
pub async fn once_admitted<T, F, Fut>(refusal: &str, mut open: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let waiting = async {
        loop {
            match open().await {
                Ok(admitted) => return admitted,
                Err(s) if s.code() == tonic::Code::ResourceExhausted && s.message().contains(refusal) => {
                    tokio::task::yield_now().await
                }
                Err(s) => panic!("unexpected {s:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("still refused with {refusal:?} after ten seconds"))
}

/// The `GONGWEN_*` variables set where the tests run (a developer's `GONGWEN_SERVER`, `GONGWEN_KEYS`,
/// `GONGWEN_PLAINTEXT`...), which a spawned `gongwen` must not inherit: each would change what it was told.
pub fn inherited_gongwen_vars() -> Vec<std::ffi::OsString> {
    std::env::vars_os().map(|(name, _)| name).filter(|n| n.to_string_lossy().starts_with("GONGWEN_")).collect()
}

/// The `gongwen` binary as a command that inherits none of [`inherited_gongwen_vars`]; a test sets what it means.
pub fn gongwen() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gongwen"));
    for name in inherited_gongwen_vars() {
        cmd.env_remove(name);
    }
    cmd
}

/// [`gongwen`] for a tokio child.
pub fn gongwen_async() -> tokio::process::Command {
    tokio::process::Command::from(gongwen())
}

/// Runs `gongwen serve --plaintext --listen 127.0.0.1:0`, then `extra`, `--data data --keys keys` with `cmd`: the
/// binary itself, or a wrapper given the binary as its argument, with none of [`inherited_gongwen_vars`] (text
/// logs among them: at "warn" a JSON log would not say the address). It logs warnings only, is killed when
/// dropped, and has said where it serves when this returns.
pub async fn spawn_serve(
    mut cmd: tokio::process::Command,
    data: &std::path::Path,
    keys: &std::path::Path,
    extra: &[&str],
) -> (tokio::process::Child, String) {
    for name in inherited_gongwen_vars() {
        cmd.env_remove(name);
    }
    let (child, url, _) = spawn_serve_logging(cmd, data, keys, extra, "warn").await;
    (child, url)
}

/// [`spawn_serve`] with the log filter `log` (`RUST_LOG`), and the lines the server wrote to stderr up to and
/// including the one that says where it serves.
pub async fn spawn_serve_logging(
    mut cmd: tokio::process::Command,
    data: &std::path::Path,
    keys: &std::path::Path,
    extra: &[&str],
    log: &str,
) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    cmd.args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(keys)
        .env("RUST_LOG", log)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn the server");
    let stderr = child.stderr.take().expect("the child's stderr is piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let (addr, said) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut said = vec![];
        while let Ok(Some(line)) = lines.next_line().await {
            // Text logs: the line for a person; JSON logs: the start-up event.
            let addr = line
                .strip_prefix("gongwen serving on ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
                .or_else(|| {
                    let event: serde_json::Value = serde_json::from_str(&line).ok()?;
                    let fields = event.get("fields").filter(|f| f["message"] == "gongwen serving")?;
                    Some(fields.get("addr")?.as_str()?.to_owned())
                });
            said.push(line);
            if let Some(addr) = addr {
                return Some((addr, said));
            }
        }
        None
    })
    .await
    .expect("the server reports its address in time")
    .expect("a serving line");
    // Drained in the background, so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"), said)
}

/// Issues a notice from the province to every city, signed with the province's key in `c`'s keystore.
pub async fn issue_notice(c: &gongwen::cli::client::Client, request_id: &str) -> Result<pb::Document, tonic::Status> {
    let d = pb::IssueDocument {
        request_id: request_id.into(),
        unit_id: PROVINCE.into(),
        draft: Some(draft("鲁财采", &format!("山东省财政厅关于{request_id}的通知"), vec![group("各市财政局")])),
    };
    let env = c.sign(PROVINCE, &d).expect("sign");
    c.documents().issue_document(env).await.map(|r| r.into_inner())
}

/// The server's metrics page (`GET /metrics` on `addr`, `host:port`), status line and all.
pub async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect to the metrics port");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let mut text = String::new();
    conn.read_to_string(&mut text).await.expect("response");
    text
}

/// Sets this test process's soft file-size limit (`prlimit` from util-linux), which it may raise again: a write
/// past it fails with EFBIG, as on a full disk. Only for a test file of one test, since the limit is the whole
/// process's, and only once SIGXFSZ is listened for, since its default action ends the process.
pub fn set_file_size_limit(limit: &str) {
    let pid = std::process::id().to_string();
    let set = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--fsize={limit}:")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(set.success(), "prlimit set this process's file-size limit to {limit}");
}

/// Checks that the example alerting rules and Grafana dashboard in `deploy/` name only metrics in `exported`, a
/// scrape of the metrics port taken once every metric family has a value (an Act statement made, the trace cache
/// on: a labelled family without values is not in a scrape at all).
pub fn assert_deploy_files_name_only_exported_metrics(exported: &str) {
    let file = |name: &str| {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name))
            .unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
    };
    let dashboard: serde_json::Value = serde_json::from_str(&file("grafana-dashboard.json")).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let queries: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().expect("each target has a query"))
        .collect();
    assert!(panels.len() >= 10 && queries.len() >= panels.len(), "{} panels, {} queries", panels.len(), queries.len());
    for (what, text, at_least) in
        [("alerts.yml", file("alerts.yml"), 6), ("grafana-dashboard.json", queries.join("\n"), 12)]
    {
        let named: std::collections::BTreeSet<String> = text
            .match_indices("gongwen_")
            .map(|(at, _)| text[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect())
            .collect();
        assert!(named.len() >= at_least, "deploy/{what}: {named:?}");
        for name in named {
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            assert!(exported.contains(&format!("# TYPE {base} ")), "deploy/{what} names {name}, which is not exported");
        }
    }
}
