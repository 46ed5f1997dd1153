//! `gongwen serve`.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::keystore::Keystore;
use super::{CliError, ServeArgs};
use crate::domain::model::{KeyAlgorithm, SealKey};
use crate::server::{self, ServerConfig};
use crate::signing::Signer;
use crate::store::layout;

/// The operator's public key as the registry records it.
pub fn operator_seal(signer: &Signer) -> SealKey {
    SealKey {
        key_id: signer.key_id.clone(),
        algorithm: KeyAlgorithm::Ed25519,
        public_key: signer.public_key().to_vec(),
        valid_from: None,
        revoked_at: None,
    }
}

/// The `--config` file: the same settings as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub cache_mb: Option<u64>,
    pub defer_keys: Option<usize>,
    pub gather_us: Option<u64>,
    pub trace_cache_mb: Option<usize>,
    pub max_attachment_mb: Option<u64>,
    pub allow_confidential: Option<bool>,
    pub max_message_mb: Option<usize>,
    pub rate: Option<u32>,
    pub burst: Option<u32>,
    pub max_streams: Option<usize>,
    pub max_streams_per_caller: Option<usize>,
    pub max_tree_walks: Option<usize>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub plaintext: Option<bool>,
    pub auth_skew_secs: Option<u64>,
    pub keepalive_secs: Option<u64>,
}

/// `value` of setting `key`, refused at 0, which would mean `at_zero`.
fn at_least_one<T: PartialEq + From<u8>>(key: &str, value: T, at_zero: &str) -> Result<T, CliError> {
    if value == T::from(0) {
        return Err(CliError::Input(format!("{key} must be at least 1: with 0, {at_zero}")));
    }
    Ok(value)
}

/// The most `gather_us` accepts.
const MAX_GATHER_US: u64 = 100_000;

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn read_settings(path: &Path) -> Result<FileSettings, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })?;
    toml::from_str(&text).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

/// The server config for `args` (flags and environment first, then the file, then defaults), with the operator
/// key from (or generated into) the keystore.
pub fn config(args: &ServeArgs, keys: &Path) -> Result<ServerConfig, CliError> {
    let file = match &args.config {
        Some(p) => read_settings(p)?,
        None => FileSettings::default(),
    };
    let data = args.data.clone().or(file.data).unwrap_or_else(|| PathBuf::from("./data"));
    let mut cfg = ServerConfig::new(&data);
    cfg.listen = args.listen.or(file.listen).unwrap_or(cfg.listen);
    cfg.metrics = args.metrics.or(file.metrics);
    cfg.store.cache_bytes = args.cache_mb.or(file.cache_mb).unwrap_or(256).saturating_mul(1024 * 1024);
    cfg.store.defer_at = at_least_one(
        "defer_keys",
        args.defer_keys.or(file.defer_keys).unwrap_or(cfg.store.defer_at),
        "a commit of no new keys would be deferred",
    )?;
    let gather_us = args.gather_us.or(file.gather_us).unwrap_or(micros(cfg.store.gather_wait));
    if gather_us > MAX_GATHER_US {
        return Err(CliError::Input(format!(
            "gather_us must be at most {MAX_GATHER_US} (100 ms): every write's reply can wait that long"
        )));
    }
    cfg.store.gather_wait = std::time::Duration::from_micros(gather_us);
    cfg.app.trace_cache_bytes =
        args.trace_cache_mb.or(file.trace_cache_mb).unwrap_or(cfg.app.trace_cache_bytes >> 20).saturating_mul(1 << 20);
    cfg.app.max_attachment_bytes =
        args.max_attachment_mb.or(file.max_attachment_mb).unwrap_or(64).saturating_mul(1024 * 1024);
    cfg.app.allow_confidential = args.allow_confidential.or(file.allow_confidential).unwrap_or(false);
    let max_message_mb = args.max_message_mb.or(file.max_message_mb).unwrap_or(4);
    cfg.app.max_message_bytes =
        at_least_one("max_message_mb", max_message_mb, "every request with a body would be refused")?
            .saturating_mul(1024 * 1024);
    let rate = args.rate.or(file.rate).unwrap_or(cfg.app.rate_per_sec);
    cfg.app.rate_per_sec = at_least_one("rate", rate, "a caller's requests would stop for good after its burst")?;
    let burst = args.burst.or(file.burst).unwrap_or(cfg.app.rate_burst);
    cfg.app.rate_burst = at_least_one("burst", burst, "every request would be refused")?;
    let max_streams = args.max_streams.or(file.max_streams).unwrap_or(cfg.app.max_streams);
    cfg.app.max_streams =
        at_least_one("max_streams", max_streams, "no watch, upload, download or Act call could open")?;
    cfg.app.max_streams_per_caller = at_least_one(
        "max_streams_per_caller",
        args.max_streams_per_caller.or(file.max_streams_per_caller).unwrap_or(cfg.app.max_streams_per_caller),
        "no watch, upload, download or Act call could open",
    )?;
    cfg.app.max_tree_walks = at_least_one(
        "max_tree_walks",
        args.max_tree_walks.or(file.max_tree_walks).unwrap_or(cfg.app.max_tree_walks),
        "no trace could ever be built",
    )?;
    cfg.app.auth_skew_secs = args.auth_skew_secs.or(file.auth_skew_secs).unwrap_or(cfg.app.auth_skew_secs);
    if !(1..=crate::app::access::MAX_SKEW_SECS).contains(&cfg.app.auth_skew_secs) {
        return Err(CliError::Input(format!(
            "auth_skew_secs must be between 1 and {} (a day), not {}",
            crate::app::access::MAX_SKEW_SECS,
            cfg.app.auth_skew_secs
        )));
    }
    cfg.keepalive.interval = std::time::Duration::from_secs(at_least_one(
        "keepalive_secs",
        args.keepalive_secs.or(file.keepalive_secs).unwrap_or(cfg.keepalive.interval.as_secs()),
        "no pings would be sent, and a dead client's streams would be held for ever",
    )?);
    let (flags, env) = transport_args(args);
    let file_transport =
        Transport { cert: file.tls_cert, key: file.tls_key, client_ca: file.tls_client_ca, plaintext: file.plaintext };
    cfg.tls = transport([(flags, "the flags"), (env, "the environment"), (file_transport, "the config file")])?;
    let ks = Keystore::new(keys);
    let operator = if args.check_config {
        ks.load("operator")?
    } else {
        let (operator, created) = ks.load_or_generate("operator")?;
        if created {
            tracing::info!(key_id = %operator.key_id, keys = %keys.display(), "generated the operator key");
        }
        operator
    };
    cfg.operator = Some(operator_seal(&operator));
    Ok(cfg)
}

/// How the server is to talk to its clients, as one source of settings asks.
#[derive(Default)]
struct Transport {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    plaintext: Option<bool>,
}

impl Transport {
    fn asks_tls(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || self.client_ca.is_some()
    }

    fn asks_plaintext(&self) -> bool {
        self.plaintext == Some(true)
    }
}

/// The transport settings of `args`, split by where each came from: (flags, environment).
fn transport_args(args: &ServeArgs) -> (Transport, Transport) {
    fn split<T: Clone>(from_env: bool, value: &Option<T>) -> (Option<T>, Option<T>) {
        if from_env { (None, value.clone()) } else { (value.clone(), None) }
    }
    let from_env = args.from_env;
    let (cert, env_cert) = split(from_env.tls_cert, &args.tls_cert);
    let (key, env_key) = split(from_env.tls_key, &args.tls_key);
    let (client_ca, env_client_ca) = split(from_env.tls_client_ca, &args.tls_client_ca);
    let (plaintext, env_plaintext) = split(from_env.plaintext, &args.plaintext);
    (
        Transport { cert, key, client_ca, plaintext },
        Transport { cert: env_cert, key: env_key, client_ca: env_client_ca, plaintext: env_plaintext },
    )
}

/// TLS (`Some`) or plaintext (`None`), chosen whole by the source of highest precedence that chooses (flags, then
/// environment, then the file) rather than setting by setting: `GONGWEN_PLAINTEXT=true` overrides a file's TLS
/// files (a container behind a TLS-terminating proxy, with the image's file), `--tls-cert`/`--tls-key` a file's
/// `plaintext = true` or a `GONGWEN_PLAINTEXT=true`. Once TLS is chosen, lower sources may supply the files the
/// chooser left out. One source asking for both is refused; so is no choice at all.
fn transport(sources: [(Transport, &str); 3]) -> Result<Option<crate::server::TlsFiles>, CliError> {
    for (asked, source) in &sources {
        if asked.asks_tls() && asked.asks_plaintext() {
            return Err(CliError::Input(format!("plaintext and TLS were both asked for in {source}; choose one")));
        }
    }
    let (mut tls_chosen, mut files) = (false, Transport::default());
    for (asked, _) in sources {
        if !tls_chosen {
            if asked.asks_plaintext() {
                return Ok(None);
            }
            // `plaintext = false` chooses TLS too, though it names no file.
            tls_chosen = asked.asks_tls() || asked.plaintext == Some(false);
        }
        files.cert = files.cert.or(asked.cert);
        files.key = files.key.or(asked.key);
        files.client_ca = files.client_ca.or(asked.client_ca);
    }
    let Transport { cert, key, client_ca, .. } = files;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(crate::server::TlsFiles { cert, key, client_ca })),
        (None, None) if client_ca.is_none() => Err(CliError::Input(
            "no TLS certificate and key were given: serve TLS with --tls-cert and --tls-key (tls_cert, tls_key in \
             the config file; GONGWEN_TLS_CERT, GONGWEN_TLS_KEY), or serve unencrypted on purpose with --plaintext \
             (plaintext = true; GONGWEN_PLAINTEXT=true)"
                .into(),
        )),
        _ => Err(CliError::Input(
            "TLS needs both a certificate and a key: --tls-cert and --tls-key (tls_cert, tls_key in the config file; \
             GONGWEN_TLS_CERT, GONGWEN_TLS_KEY)"
                .into(),
        )),
    }
}

/// That the server could make its data directory and use everything it uses there: in the data directory (or its
/// nearest existing parent) and in each directory of the layout that exists, making and removing files must be
/// allowed (asked of the system with the effective ids, without a probe file appearing in a directory a running
/// server lists); a file the server replaces whole must be readable, and
/// sled's data file readable and writable. The commonest deployment mistake, a directory or file owned by someone
/// else (a data directory restored as root, say), would otherwise pass the check and fail the start.
fn check_writable(data: &Path) -> Result<(), CliError> {
    let mut at = data;
    while !at.exists() {
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let shown = |source| CliError::Io {
        path: format!("data directory {} (checked in {})", data.display(), at.display()),
        source,
    };
    if !at.is_dir() {
        return Err(shown(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")));
    }
    may_write_in(at).map_err(shown)?;
    for used in layout::used(data) {
        let refused = |source| CliError::Io { path: format!("{} in the data directory", used.path.display()), source };
        let not = |kind: &str| refused(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not a {kind}")));
        let meta = match std::fs::metadata(&used.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(refused(e)),
            Ok(m) => m,
        };
        match used.by {
            layout::Use::Dir if !meta.is_dir() => return Err(not("directory")),
            layout::Use::Dir => may_write_in(&used.path).map_err(refused)?,
            _ if !meta.is_file() => return Err(not("regular file")),
            layout::Use::Replaced => std::fs::File::open(&used.path).map(drop).map_err(refused)?,
            layout::Use::ReadWrite => {
                std::fs::OpenOptions::new().read(true).write(true).open(&used.path).map(drop).map_err(refused)?
            }
        }
    }
    Ok(())
}

/// Whether this process may make, rename and remove files in `dir` (write and search permission, with its
/// effective ids; a read-only file system or an immutable directory says no too).
fn may_write_in(dir: &Path) -> std::io::Result<()> {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    accessat(CWD, dir, Access::WRITE_OK | Access::EXEC_OK, AtFlags::EACCESS).map_err(std::io::Error::from)
}

/// `--check-config`: everything `serve` would need, checked without serving or changing anything.
fn check(cfg: &ServerConfig) -> Result<(), CliError> {
    if let Some(tls) = &cfg.tls {
        server::check_tls(tls)?;
    }
    server::probe_addresses(cfg)?;
    check_writable(&cfg.data_dir)?;
    let owner = check_owner(cfg)?;
    let metrics = cfg.metrics.map_or_else(|| "off".to_owned(), |a| a.to_string());
    println!(
        "configuration OK: listen {} ({}), metrics {metrics}, data {}, cache {} MiB, trace cache {} MiB, attachments ≤ {} MiB, messages ≤ {} MiB, {} req/s (burst {}), {} streams ({} per caller), {} tree walks at once, token clock skew {} s, keepalive pings every {} s, commits of {} new keys or more deferred, flushes wait ≤ {} µs for their group",
        cfg.listen,
        if cfg.tls.is_some() { "TLS" } else { "plaintext" },
        cfg.data_dir.display(),
        cfg.store.cache_bytes >> 20,
        cfg.app.trace_cache_bytes >> 20,
        cfg.app.max_attachment_bytes >> 20,
        cfg.app.max_message_bytes >> 20,
        cfg.app.rate_per_sec,
        cfg.app.rate_burst,
        cfg.app.max_streams,
        cfg.app.max_streams_per_caller,
        cfg.app.max_tree_walks,
        cfg.app.auth_skew_secs,
        cfg.keepalive.interval.as_secs(),
        cfg.store.defer_at,
        micros(cfg.store.gather_wait)
    );
    if let Some(owner) = owner {
        println!("{owner}");
    }
    Ok(())
}

/// That the data directory, if it holds a store, belongs to the operator key the start would be given (the start
/// refuses another), as far as the directory's record of its key tells ([`layout::recorded_operator`]); says what
/// it found. The record is a copy, rewritten by each start: one that cannot be read is said so, not refused.
fn check_owner(cfg: &ServerConfig) -> Result<Option<String>, CliError> {
    let Some(given) = &cfg.operator else { return Ok(None) };
    let data = cfg.data_dir.display();
    if !layout::db_dir(&cfg.data_dir).exists() {
        // A record without a store says nothing: the start makes a new store for the key it is given.
        return Ok(Some(format!(
            "data directory {data} holds no store yet: it will belong to operator key {}",
            given.key_id
        )));
    }
    let record = cfg.data_dir.join(layout::OPERATOR_FILE);
    let said = match layout::recorded_operator(&cfg.data_dir) {
        Ok(Some((_, public))) if public == given.public_key => {
            format!("data directory {data} belongs to operator key {}", given.key_id)
        }
        Ok(Some((key_id, _))) => {
            return Err(CliError::Input(format!(
                "data directory {data} belongs to operator key {key_id} (as {} records); the keys directory holds \
                 {}, and the start would be refused",
                record.display(),
                given.key_id
            )));
        }
        Ok(None) => format!(
            "data directory {data}: its operator key is not recorded yet (the next start records it; a restore or a \
             directory last served by an older version has no record), so it is not checked"
        ),
        Err(e) => format!(
            "data directory {data}: its record of its operator key, {}, cannot be read ({e}), so the key is not \
             checked; the next start writes it again",
            record.display()
        ),
    };
    Ok(Some(said))
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the server until SIGINT or SIGTERM, then stops gracefully. Exits with an error once its store can no
/// longer make writes durable: only a restart recovers it, and systemd, Docker and Kubernetes all restart a
/// process that exits, while only Kubernetes acts on a failing health check (PostgreSQL stops for the same reason
/// when an fsync fails).
pub async fn serve(args: ServeArgs, keys: &Path) -> Result<(), CliError> {
    let cfg = config(&args, keys)?;
    if args.check_config {
        return check(&cfg);
    }
    let data = cfg.data_dir.clone();
    let running = server::start(cfg).await?;
    // For a person at a terminal (and scripts that read the address); the log has the same as one event.
    if !super::json_logs() {
        eprintln!("gongwen serving on {} (data in {}); Ctrl-C stops it", running.addr, data.display());
        if let Some(m) = running.metrics_addr {
            eprintln!("metrics on http://{m}/metrics");
        }
    }
    let failed = running.app.store_failed();
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("stopping: finishing requests in flight, then writing the store's snapshot for a quick next start");
            running.stop_and_snapshot().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Some(reason) = failed => {
            // No snapshot: the store cannot write one, and the next start recovers from the log anyway.
            if let Err(e) = running.stop().await {
                tracing::warn!(error = %e, "the stop after the store's failure did not finish cleanly");
            }
            Err(CliError::StoreFailed(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `body` as `gongwen.toml` in `dir`; returns its path.
    fn config_file(dir: &std::path::Path, body: &str) -> String {
        let file = dir.join("gongwen.toml");
        std::fs::write(&file, body).expect("write");
        file.to_string_lossy().into_owned()
    }

    /// `gongwen serve` with these flags, and only these: every argument's environment variable is taken off first,
    /// so a `GONGWEN_*` variable set where the tests run (a developer's `GONGWEN_PLAINTEXT=true`) changes nothing.
    /// The binary tests cover the environment as a source.
    fn args(extra: &[&str]) -> ServeArgs {
        use clap::{CommandFactory, FromArgMatches};
        let mut argv = vec!["gongwen", "serve"];
        argv.extend_from_slice(extra);
        let flags_only = crate::cli::Cli::command()
            .mut_args(|a| a.env(None))
            .mut_subcommand("serve", |serve| serve.mut_args(|a| a.env(None)));
        let matches = flags_only.try_get_matches_from(argv).unwrap_or_else(|e| panic!("{e}"));
        match crate::cli::Cli::from_arg_matches(&matches).map(|cli| cli.command) {
            Ok(crate::cli::Command::Serve(a)) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn plaintext_must_be_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(config(&args(&[]), dir.path()).is_err() && !dir.path().join("operator.key").exists(), "no key made");
        for listen in ["127.0.0.1:50051", "0.0.0.0:50051"] {
            let refused = config(&args(&["--listen", listen]), dir.path());
            assert!(matches!(refused, Err(CliError::Input(m)) if m.contains("--plaintext")), "{listen}");
            assert!(config(&args(&["--listen", listen, "--plaintext"]), dir.path()).is_ok_and(|c| c.tls.is_none()));
        }
        let tls = args(&["--listen", "0.0.0.0:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert!(config(&tls, dir.path()).is_ok_and(|c| c.tls.is_some()));
        assert!(config(&args(&["--tls-cert", "c.pem"]), dir.path()).is_err(), "a certificate without a key");
        let both = args(&["--tls-cert", "c.pem", "--tls-key", "k.pem", "--plaintext"]);
        assert!(config(&both, dir.path()).is_err(), "TLS and plaintext at once");
    }

    #[test]
    fn the_higher_source_chooses_tls_or_plaintext_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls_file = config_file(dir.path(), "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
        let chosen = |a: &[&str]| config(&args(a), dir.path()).map(|c| c.tls.map(|t| (t.cert, t.key)));
        let tls = |cert: &str, key: &str| Some((PathBuf::from(cert), PathBuf::from(key)));
        assert_eq!(chosen(&["--config", &tls_file]).expect("the file's TLS"), tls("c.pem", "k.pem"));
        // A container's GONGWEN_PLAINTEXT=true behind a TLS-terminating proxy, with the image's file.
        assert_eq!(chosen(&["--config", &tls_file, "--plaintext"]).expect("plaintext over the file's TLS"), None);
        let other = chosen(&["--config", &tls_file, "--tls-key", "other.key"]).expect("one file set by a flag");
        assert_eq!(other, tls("c.pem", "other.key"), "TLS from both sources, setting by setting");

        let plain_file = config_file(dir.path(), "plaintext = true\n");
        assert_eq!(chosen(&["--config", &plain_file]).expect("the file's plaintext"), None);
        let flags = chosen(&["--config", &plain_file, "--tls-cert", "f.pem", "--tls-key", "f.key"]);
        assert_eq!(flags.expect("TLS over the file's plaintext"), tls("f.pem", "f.key"));
        let off = chosen(&["--config", &plain_file, "--plaintext", "false"]).expect_err("plaintext turned off");
        assert!(off.to_string().contains("no TLS certificate and key"), "{off}");

        let both_file = config_file(dir.path(), "plaintext = true\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
        let refused = chosen(&["--config", &both_file]).expect_err("both in one file");
        assert!(refused.to_string().contains("both asked for in the config file"), "{refused}");
        let refused = chosen(&["--config", &both_file, "--plaintext"]).expect_err("the file is still wrong");
        assert!(refused.to_string().contains("choose one"), "{refused}");
    }

    #[test]
    fn the_token_clock_skew_is_configurable_within_a_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), "plaintext = true\nauth_skew_secs = 30\n");
        assert_eq!(config(&args(&["--config", &f]), dir.path()).expect("config").app.auth_skew_secs, 30);
        let flag = config(&args(&["--config", &f, "--auth-skew-secs", "60"]), dir.path()).expect("config");
        assert_eq!(flag.app.auth_skew_secs, 60, "the flag wins");
        assert_eq!(config(&args(&["--plaintext"]), dir.path()).expect("config").app.auth_skew_secs, 300);
        for bad in ["0", "86401"] {
            let refused = config(&args(&["--plaintext", "--auth-skew-secs", bad]), dir.path());
            assert!(matches!(refused, Err(CliError::Input(m)) if m.contains("auth_skew_secs")), "{bad}");
        }
    }

    #[test]
    fn the_deferral_threshold_comes_from_flag_or_file_and_is_at_least_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), "plaintext = true\ndefer_keys = 100\n");
        assert_eq!(config(&args(&["--config", &f]), dir.path()).expect("config").store.defer_at, 100);
        let flag = config(&args(&["--config", &f, "--defer-keys", "7"]), dir.path()).expect("config");
        assert_eq!(flag.store.defer_at, 7, "the flag wins");
        let default = config(&args(&["--plaintext"]), dir.path()).expect("config");
        assert_eq!(default.store.defer_at, crate::store::sled_kv::DEFER_AT);
        let refused = config(&args(&["--plaintext", "--defer-keys", "0"]), dir.path());
        assert!(matches!(refused, Err(CliError::Input(m)) if m.contains("defer_keys")));
    }

    #[test]
    fn the_gathering_wait_comes_from_flag_or_file_and_is_bounded() {
        use std::time::Duration;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), "plaintext = true\ngather_us = 500\n");
        assert_eq!(
            config(&args(&["--config", &f]), dir.path()).expect("config").store.gather_wait,
            Duration::from_micros(500)
        );
        let off = config(&args(&["--config", &f, "--gather-us", "0"]), dir.path()).expect("config");
        assert_eq!(off.store.gather_wait, Duration::ZERO, "the flag wins, and 0 turns the wait off");
        let default = config(&args(&["--plaintext"]), dir.path()).expect("config");
        assert_eq!(default.store.gather_wait, crate::store::sled_kv::GATHER_WAIT);
        assert!(config(&args(&["--plaintext", "--gather-us", "100000"]), dir.path()).is_ok());
        let refused = config(&args(&["--plaintext", "--gather-us", "100001"]), dir.path());
        assert!(matches!(refused, Err(CliError::Input(m)) if m.contains("gather_us")));
    }

    #[test]
    fn the_trace_cache_size_comes_from_flag_or_file_and_zero_turns_it_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), "plaintext = true\ntrace_cache_mb = 64\n");
        assert_eq!(config(&args(&["--config", &f]), dir.path()).expect("config").app.trace_cache_bytes, 64 << 20);
        let off = config(&args(&["--config", &f, "--trace-cache-mb", "0"]), dir.path()).expect("config");
        assert_eq!(off.app.trace_cache_bytes, 0, "the flag wins");
        let default = config(&args(&["--plaintext"]), dir.path()).expect("config");
        assert_eq!(default.app.trace_cache_bytes, crate::app::AppConfig::default().trace_cache_bytes);
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), "listen = \"127.0.0.1:6000\"\nplaintext = true\nrate = 7\nmax_streams = 3\n");
        let cfg = config(&args(&["--config", &f, "--rate", "9"]), dir.path()).expect("config");
        assert_eq!(cfg.listen.port(), 6000, "from the file");
        assert_eq!(cfg.app.rate_per_sec, 9, "the flag wins");
        assert_eq!(cfg.app.max_streams, 3, "from the file");
        assert_eq!(cfg.app.rate_burst, 1000, "the default");
        let f = config_file(dir.path(), "colour = \"red\"\n");
        assert!(config(&args(&["--config", &f]), dir.path()).is_err(), "unknown settings are refused");
    }

    /// A count that comes from the file, is overridden by its flag, is refused at 0 and has a default of at least 1.
    fn check_count_setting(key: &str, flag: &str, get: impl Fn(&ServerConfig) -> usize, default: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = config_file(dir.path(), &format!("plaintext = true\n{key} = 3\n"));
        assert_eq!(get(&config(&args(&["--config", &f]), dir.path()).expect("config")), 3, "from the file");
        let flagged = config(&args(&["--config", &f, flag, "5"]), dir.path()).expect("config");
        assert_eq!(get(&flagged), 5, "the flag wins");
        let zero = config(&args(&["--config", &f, flag, "0"]), dir.path()).expect_err("refused");
        assert!(zero.to_string().contains(&format!("{key} must be at least 1")), "{zero}");
        let none = config_file(dir.path(), "plaintext = true\n");
        let unset = get(&config(&args(&["--config", &none]), dir.path()).expect("config"));
        assert!(unset == default && unset >= 1, "the default, {unset}");
    }

    #[test]
    fn streams_per_caller_come_from_flag_or_file_and_zero_is_refused() {
        let default = crate::app::AppConfig::default().max_streams_per_caller;
        check_count_setting(
            "max_streams_per_caller",
            "--max-streams-per-caller",
            |c| c.app.max_streams_per_caller,
            default,
        );
    }

    #[test]
    fn keepalive_comes_from_flag_or_file_and_zero_is_refused() {
        let default = crate::server::KEEPALIVE.interval.as_secs() as usize;
        check_count_setting("keepalive_secs", "--keepalive-secs", |c| c.keepalive.interval.as_secs() as usize, default);
    }

    #[test]
    fn tree_walks_come_from_flag_or_file_and_zero_is_refused() {
        let default = crate::app::AppConfig::default().max_tree_walks;
        check_count_setting("max_tree_walks", "--max-tree-walks", |c| c.app.max_tree_walks, default);
    }
}
