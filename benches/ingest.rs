//! Throughput, latency, start-up time and memory of the real service, measured through gRPC on loopback with the
//! clients in the same process (so "2 cores, clients included"). Run: `cargo bench --bench ingest` (add
//! `-- --quick` for a short run). Each scenario runs in its own process, so each gets its own peak RSS:
//!
//! - `ingest`: the machine's Ed25519 verify limit, then signed acknowledgment ingest from 1, 16 and 64 concurrent
//!   clients (acks/s, p50, p99; every reply after a durable write), each followed by the floor run (the same calls,
//!   checks and signatures against a stand-in that stores nothing); with `GONGWEN_BENCH_PG=<url>` the same workload,
//!   client for client, against a small gRPC service that stores each acknowledgment as one PostgreSQL row;
//! - `fanout`: issuing one directive to 10,000 and to 100,000 recipients, then trace and status matrix over that
//!   1-level tree;
//! - `tree`: a 4-level forwarding tree of 200,000+ deliveries built through issue and forward, then trace and
//!   status matrix;
//! - `cold-build` and `cold`: a store of 10 million events (kept in `GONGWEN_BENCH_COLD_DIR` when set, so it is
//!   built once), then the time from starting the `gongwen serve` process to health SERVING and to a first answer.
//!
//! `GONGWEN_BENCH_SCENARIOS=tree,cold` runs only those; `-- --scenario NAME` runs one in this process.
// The same allocator as the `gongwen` binary, so in-process servers measure what `gongwen serve` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey, Verifier};
use gongwen::app::AppConfig;
use gongwen::auth::SignRequests;
use gongwen::pb;
use gongwen::pb::delivery_service_client::DeliveryServiceClient;
use gongwen::server::{self, Running, ServerConfig};
use gongwen::signing::Signer;
use tonic::transport::Channel;
use tower::Layer;

#[path = "ingest/cold.rs"]
mod cold;
#[path = "ingest/pg.rs"]
mod pg;
#[path = "ingest/tree.rs"]
mod tree;

type Ch = gongwen::auth::Signed<Channel>;

const SCENARIOS: &[&str] = &["ingest", "fanout", "tree", "cold-build", "cold"];

/// Request ids must differ, or the server rightly answers a retry with the first result.
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn unit_key(i: usize) -> Signer {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Signer::from_secret(format!("u{i}#k"), secret)
}

fn unit_id(i: usize) -> String {
    format!("370000.b{i:06}")
}

/// The issuing 财政厅's key (outside the range of department keys).
fn issuer_key() -> Signer {
    unit_key(usize::MAX - 1)
}

/// A server on a fresh or existing data directory, and an operator-signed channel to it.
pub struct Bench {
    pub running: Running,
    pub raw: Channel,
    pub op: Ch,
    pub operator: Signer,
}

impl Bench {
    pub async fn start(data: &Path, operator: Signer) -> Bench {
        Bench::start_with(data, operator, AppConfig::default().trace_cache_bytes).await
    }

    /// [`Bench::start`] with a trace cache of this many bytes (0: off).
    pub async fn start_with(data: &Path, operator: Signer, trace_cache_bytes: usize) -> Bench {
        let mut cfg = ServerConfig::new(data);
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
        // The server's own setting, so one build can measure with and without the flush's gathering wait.
        if let Some(us) = std::env::var("GONGWEN_GATHER_US").ok().and_then(|v| v.parse().ok()) {
            cfg.store.gather_wait = Duration::from_micros(us);
        }
        cfg.app = AppConfig {
            max_message_bytes: 64 << 20,
            rate_per_sec: 1_000_000,
            rate_burst: 1_000_000,
            trace_cache_bytes,
            ..AppConfig::default()
        };
        let running = server::start(cfg).await.expect("server");
        let raw =
            Channel::from_shared(format!("http://{}", running.addr)).expect("uri").connect().await.expect("connect");
        let op: Ch = SignRequests::new("operator", operator.clone()).layer(raw.clone());
        Bench { running, raw, op, operator }
    }

    pub async fn apply(&self, change: pb::RegistryChange) {
        let env = self.operator.envelope(&change);
        pb::registry_service_client::RegistryServiceClient::new(self.op.clone())
            .max_decoding_message_size(64 << 20)
            .apply_registry_change(env)
            .await
            .expect("registry");
    }
}

fn bench_operator() -> Signer {
    Signer::from_secret("operator#bench", [9u8; 32])
}

/// Registers departments `from..to` of the province (and, the first time, the province, its 财政厅 and the group
/// 省直各部门、单位).
async fn register(b: &Bench, from: usize, to: usize, first: bool) {
    let mut change = pb::RegistryChange { request_id: format!("units-{from}"), ..Default::default() };
    if first {
        change.regions.push(pb::Region {
            code: "370000".into(),
            name: "山东省".into(),
            parent_code: String::new(),
            level: pb::Level::Province as i32,
        });
        change.units.push(pb::Unit {
            id: "370000.czt".into(),
            full_name: "山东省财政厅".into(),
            region_code: "370000".into(),
            level: pb::Level::Province as i32,
            kind: pb::UnitKind::FinanceBureau as i32,
            number_prefixes: vec!["鲁财采".into()],
            seal_keys: vec![issuer_key().seal_key()],
            ..Default::default()
        });
        change.groups.push(pb::RecipientGroup {
            name: "省直各部门、单位".into(),
            scope: pb::GroupScope::SameRegion as i32,
            level: pb::Level::Province as i32,
            kinds: vec![pb::UnitKind::Department as i32],
            ..Default::default()
        });
    }
    for i in from..to {
        change.units.push(pb::Unit {
            id: unit_id(i),
            full_name: format!("测试部门{i}"),
            region_code: "370000".into(),
            level: pb::Level::Province as i32,
            kind: pb::UnitKind::Department as i32,
            seal_keys: vec![unit_key(i).seal_key()],
            ..Default::default()
        });
    }
    b.apply(change).await;
}

/// Registers `n` departments in changes of 10,000.
async fn register_departments(b: &Bench, n: usize) {
    for from in (0..n).step_by(10_000) {
        register(b, from, (from + 10_000).min(n), from == 0).await;
    }
}

fn issue_statement(tag: &str) -> pb::IssueDocument {
    pb::IssueDocument {
        request_id: format!("issue-{tag}"),
        unit_id: "370000.czt".into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: "鲁财采".into(),
            number_year: 2022,
            title: format!("山东省财政厅关于第{tag}项工作的通知"),
            genre: pb::Genre::Notice as i32,
            main_recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Group("省直各部门、单位".into())),
            }],
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    }
}

/// The 财政厅 issues a directive to every department; returns it and the time the RPC took.
async fn issue(ch: &Ch, n: usize) -> (pb::Document, Duration) {
    let tag = format!("{n}-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let env = issuer_key().envelope(&issue_statement(&tag));
    let start = Instant::now();
    let doc = pb::document_service_client::DocumentServiceClient::new(ch.clone())
        .max_decoding_message_size(256 << 20)
        .issue_document(env)
        .await
        .expect("issue")
        .into_inner();
    (doc, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Throughput and latency of one ingest run.
#[derive(Clone, Copy)]
pub struct Rate {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time this process (server and clients) spent per acknowledgment: steadier than the rate on a shared
    /// machine, where other work takes cores away.
    pub cpu_per_ack: Duration,
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every platform this runs on.
    Duration::from_millis(ticks.unwrap_or(0) * 10)
}

/// How the clients send their acknowledgments.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Calls {
    /// One `Acknowledge` call per acknowledgment, each with its own request token.
    Unary,
    /// One `Act` call per client, its acknowledgments sent on it one after another, each awaited.
    Act,
}

impl Calls {
    /// Signatures the server verifies per acknowledgment: the request token's (once per call) and the statement's.
    fn verifies(self) -> f64 {
        match self {
            Calls::Unary => 2.0,
            Calls::Act => 1.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Calls::Unary => "Acknowledge",
            Calls::Act => "Act",
        }
    }
}

/// `clients` tasks, each acknowledging its share of `units` deliveries of `doc` through `raw` (gongwen, or the
/// PostgreSQL stand-in: the client side is the same code).
async fn ingest(raw: &Channel, doc: &str, units: &[usize], clients: usize, calls: Calls) -> Rate {
    let per = units.len() / clients;
    // Each unit holds its key, as a real client does: deriving it is not part of an acknowledgment.
    let keys: Vec<Vec<(usize, Signer)>> =
        (0..clients).map(|c| units[c * per..(c + 1) * per].iter().map(|&i| (i, unit_key(i))).collect()).collect();
    let (start, cpu) = (Instant::now(), process_cpu());
    let mut tasks = vec![];
    for mine in keys {
        let doc = doc.to_string();
        let raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            if calls == Calls::Act {
                return act_client(raw, &doc, mine).await;
            }
            let mut lat = Vec::with_capacity(mine.len());
            for (i, key) in mine {
                let ch = SignRequests::new(unit_id(i), key.clone()).layer(raw.clone());
                let m = pb::Acknowledge {
                    request_id: format!("ack-{doc}-{i}"),
                    unit_id: unit_id(i),
                    document_id: doc.clone(),
                    registration_number: String::new(),
                };
                let env = key.envelope(&m);
                let t = Instant::now();
                DeliveryServiceClient::new(ch).acknowledge(env).await.expect("ack");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_per_ack = (process_cpu() - cpu) / u32::try_from(all.len().max(1)).unwrap_or(u32::MAX);
    all.sort();
    Rate { per_sec: all.len() as f64 / secs, p50: percentile(&all, 0.5), p99: percentile(&all, 0.99), cpu_per_ack }
}

/// One client's acknowledgments on one `Act` call, authenticated as its first unit: each is signed by its own unit
/// and sent when the one before it has its result. The latencies are from sending to the result.
async fn act_client(raw: Channel, doc: &str, mine: Vec<(usize, Signer)>) -> Vec<Duration> {
    let Some((first, key)) = mine.first() else { return vec![] };
    let ch = SignRequests::new(unit_id(*first), key.clone()).layer(raw);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut results = DeliveryServiceClient::new(ch)
        .act(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("act")
        .into_inner();
    let mut lat = Vec::with_capacity(mine.len());
    for (i, key) in mine {
        let m = pb::Acknowledge {
            request_id: format!("ack-{doc}-{i}"),
            unit_id: unit_id(i),
            document_id: doc.to_owned(),
            registration_number: String::new(),
        };
        let env = key.envelope(&m);
        let t = Instant::now();
        tx.send(env).await.expect("send");
        let result = results.message().await.expect("result").expect("a result for each statement");
        match result.outcome {
            Some(pb::act_result::Outcome::Delivery(_)) => {}
            other => panic!("acknowledgment {i} refused: {other:?}"),
        }
        lat.push(t.elapsed());
    }
    lat
}

fn ed25519_limit() -> (f64, f64) {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let msg = gongwen::domain::seal::pae("gongwen.v1.Acknowledge", &[1u8; 120]);
    let sig = key.sign(&msg);
    let vk = key.verifying_key();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        vk.verify(&msg, &sig).expect("verify");
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    let msgs: Vec<&[u8]> = (0..64).map(|_| msg.as_slice()).collect();
    let sigs = vec![sig; 64];
    let vks = vec![vk; 64];
    let t = Instant::now();
    let rounds = n / 64;
    for _ in 0..rounds {
        ed25519_dalek::verify_batch(&msgs, &sigs, &vks).expect("batch");
    }
    let batched = (rounds * 64) as f64 / t.elapsed().as_secs_f64();
    (single, batched)
}

/// A `VmHWM`/`VmRSS`-style field of a process's status file, in MiB.
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mib() -> f64 {
    status_mib("self", "VmHWM:")
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A line for the driver's closing summary (and the scenario's own output).
fn summary(line: impl AsRef<str>) {
    println!("summary: {}", line.as_ref());
}

/// Median and max of some timings, in ms.
fn median_max(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (ms(percentile(&v, 0.5)), ms(*v.last().unwrap_or(&Duration::ZERO)))
}

/// One run's line of the ingest table; `single` is one core's single-verify rate.
fn row(clients: usize, r: &Rate, single: f64, calls: Calls) -> String {
    format!(
        "{clients:>8} {:>10.0} {:>9.2}ms {:>9.2}ms {:>10.0}µs  {:.1}%",
        r.per_sec,
        ms(r.p50),
        ms(r.p99),
        r.cpu_per_ack.as_secs_f64() * 1e6,
        100.0 * calls.verifies() * r.per_sec / single
    )
}

/// What one ingest run went against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Gongwen,
    /// The stand-in with no database: the same calls and checks, nothing stored.
    Floor,
    /// The PostgreSQL stand-in, when asked for.
    Postgres,
}

impl Target {
    fn describe(self) -> &'static str {
        match self {
            Target::Gongwen => "gongwen",
            Target::Floor => "floor: same calls and checks, nothing stored",
            Target::Postgres => "PostgreSQL stand-in",
        }
    }
}

/// Every run of the scenario: target, call kind, client count and its rate.
type Runs = Vec<(Target, Calls, usize, Rate)>;

/// The client counts to measure: `GONGWEN_BENCH_CLIENTS=64` or `1,16,64` (the default).
fn client_counts() -> Vec<usize> {
    let chosen: Vec<usize> = std::env::var("GONGWEN_BENCH_CLIENTS")
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).filter(|&c| c > 0).collect())
        .unwrap_or_default();
    if chosen.is_empty() { vec![1, 16, 64] } else { chosen }
}

/// The call kinds to measure: `GONGWEN_BENCH_CALLS=unary`, `act` or both (the default).
fn call_kinds() -> Vec<Calls> {
    match std::env::var("GONGWEN_BENCH_CALLS").as_deref() {
        Ok("unary") => vec![Calls::Unary],
        Ok("act") => vec![Calls::Act],
        _ => vec![Calls::Unary, Calls::Act],
    }
}

fn median(rates: &[Rate]) -> Rate {
    let pick = |f: fn(&Rate) -> f64| {
        let mut v: Vec<f64> = rates.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    Rate {
        per_sec: pick(|r| r.per_sec),
        p50: Duration::from_secs_f64(pick(|r| r.p50.as_secs_f64())),
        p99: Duration::from_secs_f64(pick(|r| r.p99.as_secs_f64())),
        cpu_per_ack: Duration::from_secs_f64(pick(|r| r.cpu_per_ack.as_secs_f64())),
    }
}

async fn scenario_ingest(quick: bool) {
    let (single, batched) = tokio::task::spawn_blocking(ed25519_limit).await.expect("limit");
    println!(
        "machine: {} cores; Ed25519 verify, one core: {single:.0}/s single, {batched:.0}/s batched (64)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    summary(format!("Ed25519 verify, one core: {single:.0}/s single, {batched:.0}/s batched (64)"));
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Bench::start(&dir.path().join("data"), bench_operator()).await;
    let units = if quick { 2_000 } else { 10_000 };
    register_departments(&b, units).await;
    let pg = match std::env::var("GONGWEN_BENCH_PG") {
        Ok(url) if !url.is_empty() => Some(pg::Postgres::connect(&url, units).await),
        _ => None,
    };
    let kinds = call_kinds();
    println!("\nsigned acknowledgment ingest over gRPC, durable writes ({units} deliveries per run):");
    println!(
        "calls: {} (GONGWEN_BENCH_CALLS); Acknowledge: one call and request token per ack; Act: one call per \
         client, a token for the call, each ack's statement still signed and verified",
        kinds.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    );
    if pg.is_some() {
        println!("(each client count runs against gongwen, then against the PostgreSQL stand-in, back to back)");
    }
    // The shared machine's load moves a lot from one minute to the next: several rounds, each client count
    // against every target back to back, and the medians over the rounds.
    let rounds: usize = std::env::var("GONGWEN_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    println!("{rounds} rounds (GONGWEN_BENCH_ROUNDS)");
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>12}  one core's single-verify rate spent on the verifications an ack costs \
         (2 by Acknowledge, 1 by Act)",
        "clients", "acks/s", "p50", "p99", "CPU/ack"
    );
    let client_counts = client_counts();
    let floor = std::env::var("GONGWEN_BENCH_FLOOR").as_deref() != Ok("0");
    let mut runs: Runs = vec![];
    for round in 1..=rounds {
        println!("round {round}:");
        for &clients in &client_counts {
            let take = if clients == 1 { units / 5 } else { units };
            let ids: Vec<usize> = (0..take).collect();
            for &calls in &kinds {
                let (doc, _) = issue(&b.op, units).await;
                let g = ingest(&b.raw, &doc.id, &ids, clients, calls).await;
                println!("{}  gongwen {} (load {})", row(clients, &g, single, calls), calls.name(), load_average());
                runs.push((Target::Gongwen, calls, clients, g));
                if floor {
                    let f = pg::floor(&doc.id, &ids, clients, units, calls).await;
                    println!("{}  {} {}", row(clients, &f, single, calls), Target::Floor.describe(), calls.name());
                    runs.push((Target::Floor, calls, clients, f));
                }
                if let Some(pg) = &pg {
                    let p = pg.run(&doc.id, &ids, clients, calls).await;
                    println!(
                        "{}  PostgreSQL stand-in {} (load {}); gongwen/PostgreSQL throughput {:.2}",
                        row(clients, &p, single, calls),
                        calls.name(),
                        load_average(),
                        g.per_sec / p.per_sec
                    );
                    runs.push((Target::Postgres, calls, clients, p));
                }
            }
        }
    }
    let rates = |target: Target, calls: Calls, clients: usize| -> Vec<Rate> {
        runs.iter().filter(|r| (r.0, r.1, r.2) == (target, calls, clients)).map(|r| r.3).collect()
    };
    let per_round = |rates: &[Rate]| rates.iter().map(|r| format!("{:.0}", r.per_sec)).collect::<Vec<_>>().join(", ");
    for &clients in &client_counts {
        for &calls in &kinds {
            for target in [Target::Floor, Target::Gongwen, Target::Postgres] {
                let rs = rates(target, calls, clients);
                if rs.is_empty() {
                    continue;
                }
                let m = median(&rs);
                summary(format!(
                    "{} ack ingest by {}, {clients} clients, median of {rounds}: {:.0} acks/s, p50 {:.2} ms, p99 \
                     {:.2} ms, CPU {:.0} µs/ack (acks/s per round: {})",
                    target.describe(),
                    calls.name(),
                    m.per_sec,
                    ms(m.p50),
                    ms(m.p99),
                    m.cpu_per_ack.as_secs_f64() * 1e6,
                    per_round(&rs)
                ));
            }
            let (gs, ps) = (rates(Target::Gongwen, calls, clients), rates(Target::Postgres, calls, clients));
            if !ps.is_empty() {
                let ratios: Vec<String> =
                    gs.iter().zip(&ps).map(|(g, p)| format!("{:.2}", g.per_sec / p.per_sec)).collect();
                summary(format!(
                    "gongwen/PostgreSQL throughput by {}, {clients} clients: {:.2} (per round: {})",
                    calls.name(),
                    median(&gs).per_sec / median(&ps).per_sec,
                    ratios.join(", ")
                ));
            }
        }
    }
    if pg.is_none() {
        println!("(GONGWEN_BENCH_PG not set: no PostgreSQL side-by-side run; see benches/pg/start-postgres.sh)");
    }
    b.running.stop().await.expect("stop");
}

async fn trace_and_matrix(b: &Bench, doc: &str, runs: usize) -> (usize, Vec<Duration>, Vec<Duration>) {
    let mut tracer =
        pb::trace_service_client::TraceServiceClient::new(b.op.clone()).max_decoding_message_size(512 << 20);
    let mut sup = pb::supervision_service_client::SupervisionServiceClient::new(b.op.clone())
        .max_decoding_message_size(512 << 20);
    let (mut traces, mut matrices, mut delivered) = (vec![], vec![], 0);
    for _ in 0..runs {
        let t = Instant::now();
        let tree =
            tracer.trace(pb::TraceRequest { document_id: doc.into(), max_depth: 0 }).await.expect("trace").into_inner();
        traces.push(t.elapsed());
        delivered = tree.totals.map_or(0, |c| c.delivered as usize);
        drop(tree);
        let t = Instant::now();
        sup.status_matrix(pb::MatrixRequest { document_id: doc.into(), with_units: false }).await.expect("matrix");
        matrices.push(t.elapsed());
    }
    (delivered, traces, matrices)
}

/// `runs` traces of `doc` listed down to `max_depth` over gRPC: their times, and the reply's nodes and encoded bytes.
async fn depth_traces(b: &Bench, doc: &str, max_depth: u32, runs: usize) -> (Vec<Duration>, usize, usize) {
    use prost::Message;
    let mut tracer =
        pb::trace_service_client::TraceServiceClient::new(b.op.clone()).max_decoding_message_size(512 << 20);
    let (mut times, mut nodes, mut bytes) = (vec![], 0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let tree = tracer.trace(pb::TraceRequest { document_id: doc.into(), max_depth }).await.expect("trace");
        times.push(t.elapsed());
        let tree = tree.into_inner();
        fn count(ns: &[pb::TraceNode]) -> usize {
            ns.iter().map(|n| 1 + count(&n.children)).sum()
        }
        (nodes, bytes) = (count(&tree.nodes), tree.encoded_len());
    }
    (times, nodes, bytes)
}

/// `StreamTrace` of the whole tree `runs` times, each read to its end: times to the first chunk and to the last,
/// and the nodes read.
async fn streamed_traces(b: &Bench, doc: &str, runs: usize) -> (Vec<Duration>, Vec<Duration>, usize) {
    let mut tracer = pb::trace_service_client::TraceServiceClient::new(b.op.clone());
    let (mut firsts, mut lasts, mut nodes) = (vec![], vec![], 0);
    let chunk_nodes = std::env::var("GONGWEN_BENCH_CHUNK_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for _ in 0..runs {
        let t = Instant::now();
        let req = pb::StreamTraceRequest { document_id: doc.into(), max_depth: 0, chunk_nodes };
        let mut s = tracer.stream_trace(req).await.expect("stream").into_inner();
        let mut first = None;
        nodes = 0;
        while let Some(c) = s.message().await.expect("a chunk") {
            first.get_or_insert_with(|| t.elapsed());
            nodes += c.nodes.len();
        }
        lasts.push(t.elapsed());
        firsts.push(first.unwrap_or_default());
    }
    (firsts, lasts, nodes)
}

/// Waits (polling, with a deadline) until the store has moved every deferred key into its tree; returns when.
async fn settle(b: &Bench) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(600);
    while b.running.app.deferred_keys() > 0 {
        assert!(Instant::now() < deadline, "the background applier did not finish in 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Instant::now()
}

async fn scenario_fanout(quick: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Bench::start(&dir.path().join("data"), bench_operator()).await;
    let small = if quick { 2_000 } else { 10_000 };
    let big = if quick { 20_000 } else { 100_000 };
    register_departments(&b, small).await;
    println!("fan-out (one IssueDocument, expansion, all deliveries and inbox entries in one durable write):");
    let (_, t_small) = issue(&b.op, small).await;
    println!("{small:>8} recipients: {:.0} ms (load {})", ms(t_small), load_average());
    summary(format!("fan-out to {small}: {:.0} ms", ms(t_small)));
    settle(&b).await;
    for from in (small..big).step_by(10_000) {
        register(&b, from, (from + 10_000).min(big), false).await;
    }
    let (doc, t_big) = issue(&b.op, big).await;
    let replied = Instant::now();
    println!("{big:>8} recipients: {:.0} ms (load {})", ms(t_big), load_average());
    summary(format!("fan-out to {big}: {:.0} ms", ms(t_big)));
    let waiting = b.running.app.deferred_keys();
    let settled = settle(&b).await;
    println!(
        "{big:>8} recipients: {waiting} keys were left to the background applier at the reply; it finished {:.0} ms \
         after the reply",
        ms(settled - replied)
    );
    summary(format!(
        "fan-out to {big}: background apply of {waiting} keys done {:.0} ms after the reply",
        ms(settled - replied)
    ));
    let runs = if quick { 3 } else { 5 };
    let (n, traces, matrices) = trace_and_matrix(&b, &doc.id, runs).await;
    let ((tm, tx), (mm, mx)) = (median_max(traces), median_max(matrices));
    println!(
        "1-level tree of {n} deliveries, {runs} runs: trace median {tm:.0} ms, max {tx:.0} ms; status matrix median \
         {mm:.0} ms, max {mx:.0} ms (load {})",
        load_average()
    );
    summary(format!(
        "1-level {n}-delivery tree: trace median {tm:.0} ms / max {tx:.0} ms; matrix {mm:.0} / {mx:.0} ms"
    ));
    b.running.stop().await.expect("stop");
}

async fn run_scenario(name: &str, quick: bool) {
    match name {
        "ingest" => scenario_ingest(quick).await,
        "fanout" => scenario_fanout(quick).await,
        "tree" => tree::scenario(quick).await,
        "cold-build" => cold::build(quick).await,
        "cold" => cold::measure(quick).await,
        other => panic!("unknown scenario {other:?} (known: {})", SCENARIOS.join(", ")),
    }
    let rss = peak_rss_mib();
    println!("peak RSS of this scenario's process: {rss:.0} MiB");
    summary(format!("{name}: peak RSS {rss:.0} MiB (this process: server and clients)"));
}

/// Runs each scenario as a child process of this binary, passing its output through, and prints every summary
/// line at the end with the load average around each scenario.
fn drive(quick: bool) {
    let exe = std::env::current_exe().expect("current exe");
    let chosen: Vec<String> = match std::env::var("GONGWEN_BENCH_SCENARIOS") {
        Ok(s) if !s.is_empty() => s.split(',').map(|x| x.trim().to_owned()).collect(),
        _ => SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
    };
    // The cold scenarios share a store between two processes: a temporary one unless the caller keeps one.
    let cold_tmp = (chosen.iter().any(|s| s.starts_with("cold"))
        && std::env::var_os("GONGWEN_BENCH_COLD_DIR").is_none())
    .then(|| tempfile::tempdir().expect("tempdir"));
    let mut summaries = vec![];
    for name in &chosen {
        let before = load_average();
        println!("\n=== scenario {name} (load average {before}) ===");
        let started = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.arg("--scenario").arg(name).stdout(Stdio::piped());
        if quick {
            cmd.arg("--quick");
        }
        if let Some(tmp) = &cold_tmp {
            cmd.env("GONGWEN_BENCH_COLD_DIR", tmp.path());
        }
        let mut child = cmd.spawn().expect("spawn scenario");
        let out = child.stdout.take().expect("stdout");
        let mut mine = vec![];
        for line in BufReader::new(out).lines() {
            let line = line.expect("read");
            println!("{line}");
            if let Some(s) = line.strip_prefix("summary: ") {
                mine.push(s.to_owned());
            }
        }
        let status = child.wait().expect("wait");
        let after = load_average();
        let secs = started.elapsed().as_secs_f64();
        summaries.push(format!("[{name}] load average before {before}, after {after}; {secs:.0} s; {status}"));
        summaries.extend(mine.into_iter().map(|s| format!("  {s}")));
        assert!(status.success(), "scenario {name} failed: {status}");
    }
    println!("\n=== summary ===");
    for s in summaries {
        println!("{s}");
    }
}

fn main() {
    // As `gongwen serve` runs.
    gongwen::alloc::tune();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let scenario = args.iter().position(|a| a == "--scenario").and_then(|i| args.get(i + 1)).cloned();
    match scenario {
        None => drive(quick),
        Some(name) => {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(run_scenario(&name, quick));
        }
    }
}
