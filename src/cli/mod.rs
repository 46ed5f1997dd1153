//! The `gongwen` command line: the server, the keystore, a client subcommand for every RPC, and the demo.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod assemble;
pub mod audit;
pub mod batch;
pub mod client;
pub mod demo;
pub mod draft;
pub mod import;
pub mod keys;
pub mod keystore;
pub mod parse;
pub mod serve;
pub mod views;

/// Why a command failed; printed on stderr with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    #[error("cannot reach the server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot reach the server at {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("{}", rpc_text(.0))]
    Rpc(#[from] tonic::Status),
    /// A call whose connection failed under it, made in plaintext (see [`hint_tls`]).
    #[error(
        "{} (the connection failed; if the server is served over TLS, give --server https://… and --tls-ca)",
        rpc_text(.0)
    )]
    RpcInPlaintext(tonic::Status),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(transparent)]
    RegistryFile(#[from] crate::registry_file::RegistryFileError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Input(String),
    /// The server's store failed a flush: `serve` exits so that a supervisor restarts it.
    #[error(
        "the store can no longer make writes durable ({0}); exiting so that the server is restarted, which recovers \
         the store (fix the cause first, or it fails again)"
    )]
    StoreFailed(String),
}

/// A refusal or failure as a person reads it: the code, the message, and what caused it underneath (a transport
/// failure's message is only "transport error"; its causes say what went wrong, e.g. a TLS server spoken to in
/// plaintext).
fn rpc_text(status: &tonic::Status) -> String {
    let text = format!("{}: {}", code_name(status.code()), status.message());
    match std::error::Error::source(status) {
        Some(cause) => format!("{text}: {}", crate::server::error_chain(cause)),
        None => text,
    }
}

/// `e`, told apart when it is a call's failed connection and `server` is a plaintext (`http://`) address: a status
/// with a cause was not sent by the server, and a plaintext client talking to a server over TLS fails this way,
/// differently from run to run (closed, a broken pipe, a frame of invalid size), so the message names the likely
/// mistake rather than matching one cause.
fn hint_tls(e: CliError, server: &str) -> CliError {
    match e {
        CliError::Rpc(status) if !server.starts_with("https://") && std::error::Error::source(&status).is_some() => {
            CliError::RpcInPlaintext(status)
        }
        e => e,
    }
}

fn code_name(code: tonic::Code) -> String {
    format!("{code:?}").chars().fold(String::new(), |mut s, c| {
        if c.is_uppercase() && !s.is_empty() {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
        s
    })
}

/// gongwen: official-document forwarding and directive tracking (公文转发与督办追踪).
#[derive(Debug, Parser)]
#[command(name = "gongwen", version, about)]
pub struct Cli {
    /// Server address for client commands.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051", env = "GONGWEN_SERVER")]
    pub server: String,
    /// Keystore directory: one `<unit>.key` file per unit, and `operator.key`.
    #[arg(long, global = true, default_value = "./keys", env = "GONGWEN_KEYS")]
    pub keys: PathBuf,
    /// CA certificate (PEM) to trust for an https:// server.
    #[arg(long, global = true, env = "GONGWEN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for servers that require them.
    #[arg(long, global = true, num_args = 2, value_names = ["CERT", "KEY"])]
    pub tls_client: Option<Vec<PathBuf>>,
    /// Who client commands read as: a unit id with a key in the keystore, or "operator".
    #[arg(long, global = true, default_value = "operator", env = "GONGWEN_READER")]
    pub reader: String,
    /// Print replies as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Server options. Each may also come from an environment variable (GONGWEN_…) or the `--config` file;
/// precedence: flag, then environment, then file, then the built-in default.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (see deploy/gongwen.toml).
    #[arg(long, env = "GONGWEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which of the transport settings came from an environment variable rather than a flag (filled in by
    /// [`Cli::from_command_line`]): where the two are weighed against each other, the flag wins.
    #[arg(skip)]
    pub from_env: FromEnv,
    /// Check the configuration (files, keys, TLS material, addresses) and exit without serving.
    #[arg(long)]
    pub check_config: bool,
    /// Address to listen on, IP:PORT (an IP address, not a host name; 0.0.0.0 for every interface)
    /// [default: 127.0.0.1:50051].
    #[arg(long, env = "GONGWEN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics over plain HTTP here, IP:PORT such as 127.0.0.1:9464, on an address of its own
    /// [default: none].
    #[arg(long, env = "GONGWEN_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Data directory [default: ./data].
    #[arg(long, env = "GONGWEN_DATA")]
    pub data: Option<PathBuf>,
    /// sled page cache in MiB [default: 256].
    #[arg(long, env = "GONGWEN_CACHE_MB")]
    pub cache_mb: Option<u64>,
    /// Memory in MiB for keeping whole documents' deliveries, which traces and status matrices walk; 0 turns the
    /// cache off [default: 256].
    #[arg(long, env = "GONGWEN_TRACE_CACHE_MB")]
    pub trace_cache_mb: Option<usize>,
    /// A commit with at least this many new keys (an issue to thousands of units) is answered once logged and
    /// moved into the store's tree in the background [default: 4096].
    #[arg(long, env = "GONGWEN_DEFER_KEYS")]
    pub defer_keys: Option<usize>,
    /// Microseconds a flush after a large commit group waits at most for the next group to gather; 0 flushes at
    /// once, at most 100000 [default: 2000].
    #[arg(long, env = "GONGWEN_GATHER_US")]
    pub gather_us: Option<u64>,
    /// Largest attachment in MiB [default: 64].
    #[arg(long, env = "GONGWEN_MAX_ATTACHMENT_MB")]
    pub max_attachment_mb: Option<u64>,
    /// Accept 机密 and 绝密 documents (only on a network cleared for them).
    #[arg(long, env = "GONGWEN_ALLOW_CONFIDENTIAL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_confidential: Option<bool>,
    /// Largest unary request in MiB [default: 4].
    #[arg(long, env = "GONGWEN_MAX_MESSAGE_MB")]
    pub max_message_mb: Option<usize>,
    /// Requests per second each caller may make on average [default: 500].
    #[arg(long, env = "GONGWEN_RATE")]
    pub rate: Option<u32>,
    /// Requests a caller may make in a burst [default: 1000].
    #[arg(long, env = "GONGWEN_BURST")]
    pub burst: Option<u32>,
    /// Streaming calls (watches, log streams, streamed traces, downloads, uploads, backups, Act calls, health watches
    /// and reflection) open at once, over all callers [default: 256].
    #[arg(long, env = "GONGWEN_MAX_STREAMS")]
    pub max_streams: Option<usize>,
    /// Streaming calls one caller (a unit, the operator, or an address without a token) may have open at once
    /// [default: 64].
    #[arg(long, env = "GONGWEN_MAX_STREAMS_PER_CALLER")]
    pub max_streams_per_caller: Option<usize>,
    /// Traces, status matrices, not-acted and overdue lists and audit bundles built at once; more wait their turn
    /// (each walk uses every core and holds its tree in memory) [default: the number of cores].
    #[arg(long, env = "GONGWEN_MAX_TREE_WALKS")]
    pub max_tree_walks: Option<usize>,
    /// TLS certificate chain (PEM); with a key the server speaks TLS only.
    #[arg(long, env = "GONGWEN_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "GONGWEN_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, env = "GONGWEN_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve without TLS, on purpose (without TLS material the server refuses to start unless this is given).
    #[arg(long, env = "GONGWEN_PLAINTEXT", num_args = 0..=1, default_missing_value = "true")]
    pub plaintext: Option<bool>,
    /// How far a request token's time may be from the server's clock, in seconds (1 to 86400) [default: 300].
    #[arg(long, env = "GONGWEN_AUTH_SKEW_SECS")]
    pub auth_skew_secs: Option<u64>,
    /// How often the server pings each connection, in seconds; one that has not answered within 20 s is closed, so a
    /// dead client's watches and Act calls give back their streams [default: 30].
    #[arg(long, env = "GONGWEN_KEEPALIVE_SECS")]
    pub keepalive_secs: Option<u64>,
}

/// The acting unit.
#[derive(Debug, Args)]
pub struct Actor {
    /// Act as this unit (its key is loaded from the keystore).
    #[arg(long = "as", value_name = "UNIT")]
    pub unit: String,
    /// Request id, to retry a request exactly (default: a new one).
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the demo: a server on a fresh data dir with the corpus chain issued, forwarded and traced.
    Demo {
        /// Data directory (a previous demo there is replaced).
        #[arg(long, default_value = "./demo-data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Stop after the demo instead of serving on.
        #[arg(long)]
        exit: bool,
    },
    /// Generate a seal key into the keystore.
    Keygen {
        /// Unit id, or "operator".
        name: String,
        /// Key id (default: NAME#<8 hex digits of the public key>).
        #[arg(long)]
        key_id: Option<String>,
        /// Signature algorithm: ed25519, or sm2 (SM2 with SM3, GB/T 32918).
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
    },
    /// Registry: load, list and inspect regions, units and groups.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Seal keys: a parent unit (or the operator) adds, rotates and revokes a unit's keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Upload an attachment file; prints its SHA-256.
    Upload {
        file: PathBuf,
        /// Media type (default: guessed from the extension).
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Download an attachment by SHA-256.
    Download {
        sha256: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// 发文: issue a document from a draft file (TOML).
    #[command(after_long_help = draft::FORMAT)]
    Issue {
        #[command(flatten)]
        actor: Actor,
        /// The draft file (its fields: `gongwen issue --help`).
        #[arg(long)]
        draft: PathBuf,
    },
    /// 转发: forward a received document (id or number) with a draft file (title may be left out).
    #[command(after_long_help = draft::FORMAT)]
    Forward {
        #[command(flatten)]
        actor: Actor,
        /// The received document: id or number such as 淄财采〔2022〕20号.
        source: String,
        #[arg(long)]
        draft: PathBuf,
    },
    /// Show a document (id or number).
    Show { document: String },
    /// Documents a unit issued.
    Issued {
        #[arg(long = "as", value_name = "UNIT")]
        unit: String,
    },
    /// A unit's inbox.
    Inbox {
        #[arg(long = "as", value_name = "UNIT")]
        unit: String,
        /// Only these states (pending, acknowledged, handling, reported, forwarded, completed, returned).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
    },
    /// One delivery with its history.
    Delivery {
        /// The document (id or number).
        document: String,
        /// The receiving unit's id.
        unit: String,
    },
    /// 签收.
    Ack {
        #[command(flatten)]
        actor: Actor,
        /// The document (id or number). Several are acknowledged on one call, each answered in turn.
        #[arg(required_unless_present = "all_pending")]
        documents: Vec<String>,
        /// Acknowledge every pending delivery in the unit's inbox, on one call.
        #[arg(long, conflicts_with = "documents")]
        all_pending: bool,
        /// 登记号 (one document only).
        #[arg(long, default_value = "")]
        registration: String,
    },
    /// 退回.
    Return {
        #[command(flatten)]
        actor: Actor,
        document: String,
        #[arg(long)]
        reason: String,
    },
    /// 承办.
    Handle {
        #[command(flatten)]
        actor: Actor,
        document: String,
        #[arg(long, default_value = "")]
        lead_office: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 报送.
    Report {
        #[command(flatten)]
        actor: Actor,
        document: String,
        #[arg(long, default_value = "")]
        text: String,
        /// Files to attach (uploaded first).
        #[arg(long)]
        attach: Vec<PathBuf>,
    },
    /// 办结.
    Complete {
        #[command(flatten)]
        actor: Actor,
        document: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 催办.
    Remind {
        #[command(flatten)]
        actor: Actor,
        document: String,
        recipient: String,
        #[arg(long, default_value = "")]
        message: String,
    },
    /// The forwarding tree under a document.
    Trace {
        document: String,
        /// List levels down to this depth only (1 = the document's own recipients); deeper ones are counted.
        /// 0 lists them all.
        #[arg(long, default_value_t = 0)]
        depth: u32,
    },
    /// Who has not acted on a document, at any depth.
    NotActed { document: String },
    /// Overdue deliveries under a document's forwarding tree or in a region, most days late first.
    Overdue {
        /// A document (id or number).
        #[arg(long, conflicts_with = "region")]
        document: Option<String>,
        /// A region code (its whole subtree).
        #[arg(long)]
        region: Option<String>,
    },
    /// Status matrix of a document's forwarding tree, per level and per region.
    Matrix {
        /// The document (id or number).
        document: String,
        /// Also list the units behind each number.
        #[arg(long)]
        units: bool,
    },
    /// What a unit has received and not finished, and what it issued with who has not acted.
    UnitView { unit: String },
    /// Write a report file (trace, matrix or overdue) as CSV or xlsx.
    ExportReport {
        /// trace, matrix or overdue.
        #[arg(long)]
        kind: String,
        /// A document (id or number).
        #[arg(long)]
        document: Option<String>,
        /// For an overdue report instead of a document: a region code.
        #[arg(long)]
        region: Option<String>,
        /// Output file; .xlsx makes a spreadsheet, anything else CSV.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Take a consistent online backup of the server (operator) into a file.
    Backup {
        /// The backup file to write (made readable by its owner only: it holds the log's signing key).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Build a new data directory from a backup file, checking the file and the restored log before anything serves it.
    Restore {
        /// The backup file, as `gongwen backup` wrote it.
        backup: PathBuf,
        /// The new data directory (must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
    },
    /// Ask the server's gRPC health service; exit 0 when serving (for container health checks).
    Health,
    /// The server's version, limits, and the operator and log public keys (hex, for `verify --log-key`).
    Info,
    /// Save the server's current signed checkpoint (keep it to check later that the log only grew).
    Checkpoint {
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Export an audit bundle: a document's whole forwarding tree, or a stretch of the log.
    Export {
        /// A document (id or number); its forwards are included.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        document: Option<String>,
        /// First event of a stretch of the log (default 1).
        #[arg(long)]
        from: Option<u64>,
        /// Last event (default: the end).
        #[arg(long)]
        to: Option<u64>,
        /// A checkpoint file saved earlier: the bundle then proves the log only grew since.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import document files (text, .docx, PDF), or directories of them, into the server as the operator: whole forwarding chains,
    /// original numbers and dates kept. Importing a file again creates nothing new. Exits 1 if any file failed.
    Import {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Verify an audit bundle offline, or the server's whole log (--live). Exits 1 on any failure.
    Verify {
        /// The bundle file (from `gongwen export`).
        bundle: Option<PathBuf>,
        /// Fetch and verify the whole log from --server instead.
        #[arg(long, conflicts_with = "bundle")]
        live: bool,
        /// The log public key (hex) obtained out of band; default: trust the bundle's.
        #[arg(long)]
        log_key: Option<String>,
        /// The operator public key (hex) obtained out of band; default: trust the bundle's.
        #[arg(long)]
        operator_key: Option<String>,
        /// A checkpoint file saved earlier, to check the log only grew since.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Read official documents from text (UTF-8 or GB18030), .docx or PDF files and print their structure: the
    /// elements of each document with their lines, the forwarding chain, and warnings (--json for JSON). Local:
    /// no server is asked.
    Parse {
        /// Files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a unit's new deliveries and reminders as they arrive.
    Watch {
        #[arg(long = "as", value_name = "UNIT")]
        unit: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Load a registry file (or the bundled Shandong one), signed with the operator key.
    Load {
        /// Registry file (TOML).
        file: Option<PathBuf>,
        /// Load the bundled registry/shandong.toml.
        #[arg(long, conflicts_with = "file")]
        bundled: bool,
        /// Create a key in the keystore for every unit without one.
        #[arg(long)]
        generate_keys: bool,
        /// Continue paper numbering: PREFIX:YEAR:LAST_SERIAL, e.g. 鲁财采:2022:13.
        #[arg(long)]
        baseline: Vec<String>,
    },
    /// List units.
    Units {
        #[arg(long, default_value = "")]
        region: String,
        /// province, city, county or township.
        #[arg(long)]
        level: Option<String>,
        /// finance_bureau, department, institution, finance_office, audit_bureau or office.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value = "")]
        tag: String,
    },
    /// Show a unit.
    Unit { id: String },
    /// List regions.
    Regions {
        #[arg(long, default_value = "")]
        subtree: String,
    },
    /// List recipient groups.
    Groups,
    /// What a group means for an issuer.
    Expand {
        group: String,
        #[arg(long)]
        issuer: String,
    },
}

/// Parses the command line and runs it.
/// Which transport settings of `serve` came from an environment variable rather than a flag.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromEnv {
    pub tls_cert: bool,
    pub tls_key: bool,
    pub tls_client_ca: bool,
    pub plaintext: bool,
}

impl Cli {
    /// The command line and environment, parsed, with [`ServeArgs::from_env`] filled in (clap's derive merges a
    /// flag and its variable into one value; the transport choice needs to know which one spoke). Exits with
    /// clap's usage message on a bad command line, as `Cli::parse` does.
    pub fn from_command_line() -> Cli {
        let matches = <Cli as clap::CommandFactory>::command().get_matches();
        let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Serve(args), Some(("serve", serve))) = (&mut cli.command, matches.subcommand()) {
            let env = |id: &str| serve.value_source(id) == Some(clap::parser::ValueSource::EnvVariable);
            args.from_env = FromEnv {
                tls_cert: env("tls_cert"),
                tls_key: env("tls_key"),
                tls_client_ca: env("tls_client_ca"),
                plaintext: env("plaintext"),
            };
        }
        cli
    }
}

/// Whether logs are JSON (`GONGWEN_LOG_FORMAT=json`): then everything `serve` says goes through the log, so a
/// collector reads one JSON object a line.
pub fn json_logs() -> bool {
    std::env::var("GONGWEN_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let server = cli.server.clone();
    run_command(cli).await.map_err(|e| hint_tls(e, &server))
}

async fn run_command(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::serve(args, &cli.keys).await,
        Command::Demo { data, listen, exit } => demo::run(&data, listen, exit).await,
        Command::Health => {
            let tls = client::Tls { ca: cli.tls_ca.clone(), client: cli.tls_client.clone() };
            client::health(&cli.server, &tls).await
        }
        Command::Parse { files } => parse::run(&files, cli.json),
        Command::Import { paths } => {
            let tls = client::Tls { ca: cli.tls_ca.clone(), client: cli.tls_client.clone() };
            let client = client::Client::connect_with(&cli.server, &cli.keys, "operator", cli.json, &tls).await?;
            let outcomes = import::import(&client, &paths, !cli.json).await?;
            if cli.json {
                let text = serde_json::to_string_pretty(&outcomes).map_err(|e| CliError::Input(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", import::summary(&outcomes));
            }
            match outcomes.iter().filter(|o| o.failed.is_some()).count() {
                0 => Ok(()),
                n => Err(CliError::Input(format!("{n} file(s) failed to import"))),
            }
        }
        Command::Restore { backup, data } => {
            let s = tokio::task::spawn_blocking(move || crate::app::backup::restore(&backup, &data))
                .await
                .map_err(|e| CliError::Input(e.to_string()))?
                .map_err(|e| CliError::Input(e.to_string()))?;
            println!(
                "restored {} records, {} attachment files; the log of {} events verifies",
                s.pairs, s.files, s.events
            );
            Ok(())
        }
        Command::Verify { bundle: Some(path), live: false, log_key, operator_key, previous } => {
            audit::verify_file(&path, log_key, operator_key, previous, cli.json)
        }
        Command::Keygen { name, key_id, algorithm } => {
            let ks = keystore::Keystore::new(&cli.keys);
            let algorithm = crate::domain::model::KeyAlgorithm::parse(&algorithm)
                .ok_or_else(|| CliError::Input(format!("unknown algorithm {algorithm:?}: use ed25519 or sm2")))?;
            let signer = ks.generate_with(&name, key_id.as_deref(), algorithm)?;
            println!("key id:     {}", signer.key_id);
            println!("algorithm:  {}", algorithm.name());
            println!("public key: {}", hex::encode(signer.public_key()));
            println!("stored in:  {}", ks.dir().join(format!("{name}.key")).display());
            Ok(())
        }
        command => {
            let tls = client::Tls { ca: cli.tls_ca.clone(), client: cli.tls_client.clone() };
            let client = client::Client::connect_with(&cli.server, &cli.keys, &cli.reader, cli.json, &tls).await?;
            client.run(command).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_under_a_plaintext_call_suggests_tls_and_nothing_else_does() {
        let failed = || {
            let cause = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
            CliError::Rpc(tonic::Status::from_error(Box::new(cause)))
        };
        let hinted = hint_tls(failed(), "http://127.0.0.1:50051").to_string();
        assert!(hinted.contains("connection reset by peer") && hinted.contains("give --server https://"), "{hinted}");
        let over_tls = hint_tls(failed(), "https://gongwen.example:50051").to_string();
        assert!(over_tls.contains("connection reset by peer") && !over_tls.contains("https://…"), "{over_tls}");
        // A refusal the server sent has no cause underneath: it is shown as it is.
        let refused = CliError::Rpc(tonic::Status::not_found("no document \"x\""));
        let shown = hint_tls(refused, "http://127.0.0.1:50051").to_string();
        assert_eq!(shown, "NOT_FOUND: no document \"x\"");
    }
}
