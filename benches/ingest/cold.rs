//! Cold start on a large store.
//!
//! `cold-build` makes (or completes) a store of `GONGWEN_BENCH_COLD_EVENTS` events (default 10 million) in
//! `GONGWEN_BENCH_COLD_DIR`: 100,000 departments, then directives to all of them, each delivery acknowledged,
//! handled, reported on and completed (4 signed statements, so 4 events, per delivery; 400,001 events per
//! directive). Registry changes and the directives go through gRPC; the 10 million delivery statements go through
//! the same application layer in-process (`App::acknowledge` and friends: signature check, state machine, Merkle
//! log append, durable group-committed write), without gRPC's transport and request tokens, which would take hours
//! at ~3,500 requests a second. Request ids are deterministic, so an interrupted build resumes where it stopped,
//! and a larger `GONGWEN_BENCH_COLD_EVENTS` extends a kept store. A complete store is marked (`complete-events`)
//! and not opened again. The build stops early when the disk holding the store has less than
//! `GONGWEN_BENCH_COLD_MIN_FREE_GIB` (default 10) free: sled needs about 1.8 GiB per million events (2 GiB in
//! record format 2, 2.7 GiB in format 1).
//!
//! `cold` starts the real `gongwen serve` binary on that store again and again and measures the time from spawning
//! the process to health SERVING and to the first answered RPC (a signed checkpoint of the whole log), and the
//! server's peak RSS; first with the store's files in the page cache, then after evicting them from it. sled 0.34
//! writes its snapshot only when it opens a store, and replays its log from that snapshot on; so the first start
//! after a process wrote to the store pays for everything written since the start before, and is reported apart.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gongwen::auth::SignRequests;
use gongwen::cli::keystore::Keystore;
use gongwen::pb;
use gongwen::signing::Signer;
use prost::Message;
use tonic::transport::Channel;
use tower::Layer;

use super::{
    Bench, Ch, issue_statement, issuer_key, load_average, median_max, ms, register_departments, status_mib, summary,
    unit_id, unit_key,
};

pub fn dir() -> PathBuf {
    match std::env::var("GONGWEN_BENCH_COLD_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!("set GONGWEN_BENCH_COLD_DIR (the driver sets a temporary one when it runs the cold scenarios)"),
    }
}

fn target_events(quick: bool) -> u64 {
    std::env::var("GONGWEN_BENCH_COLD_EVENTS").ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(if quick {
        200_000
    } else {
        10_000_000
    })
}

fn departments(quick: bool) -> usize {
    if quick { 2_000 } else { 100_000 }
}

fn operator(dir: &Path) -> Signer {
    Keystore::new(dir.join("keys")).load_or_generate("operator").expect("operator key").0
}

async fn log_size(op: &Ch) -> u64 {
    let signed = pb::audit_service_client::AuditServiceClient::new(op.clone())
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .expect("checkpoint")
        .into_inner();
    pb::Checkpoint::decode(signed.checkpoint.as_slice()).expect("checkpoint decodes").tree_size
}

/// Bytes of the files under `dir`, and the files.
fn files(dir: &Path) -> (u64, Vec<PathBuf>) {
    let (mut total, mut out) = (0, vec![]);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(p),
                Ok(m) => {
                    total += m.len();
                    out.push(p);
                }
                Err(_) => {}
            }
        }
    }
    (total, out)
}

/// Free space on the disk holding `dir`, from `df`.
fn free_gib(dir: &Path) -> f64 {
    Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1)?.trim().parse::<u64>().ok())
        .map_or(f64::INFINITY, gib)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The 4 statements of delivery `i` of directive `d`, signed by department `i`.
fn statements(key: &Signer, d: u64, doc: &str, i: usize) -> [(u8, pb::SignedEnvelope); 4] {
    let (unit, doc) = (unit_id(i), doc.to_owned());
    [
        (
            0,
            key.envelope(&pb::Acknowledge {
                request_id: format!("c{d}-a{i}"),
                unit_id: unit.clone(),
                document_id: doc.clone(),
                registration_number: format!("收{i}"),
            }),
        ),
        (
            1,
            key.envelope(&pb::StartHandling {
                request_id: format!("c{d}-h{i}"),
                unit_id: unit.clone(),
                document_id: doc.clone(),
                lead_office: "办公室".into(),
                note: String::new(),
            }),
        ),
        (
            2,
            key.envelope(&pb::SubmitReport {
                request_id: format!("c{d}-r{i}"),
                unit_id: unit.clone(),
                document_id: doc.clone(),
                text: "已按要求组织落实，现将有关情况报告如下。".into(),
                attachment_sha256: vec![],
            }),
        ),
        (
            3,
            key.envelope(&pb::Complete {
                request_id: format!("c{d}-c{i}"),
                unit_id: unit,
                document_id: doc,
                note: String::new(),
            }),
        ),
    ]
}

pub async fn build(quick: bool) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("cold dir");
    let units = departments(quick);
    let target = target_events(quick);
    // A complete store is not opened again: opening it would replay and snapshot sled's log, which is exactly
    // what the first measured start should do after a build.
    let marker = dir.join("complete-events");
    if let Some(n) = std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<u64>().ok())
        && n >= target
    {
        println!("store in {} is complete ({n} events, from {}): not opened", dir.display(), marker.display());
        summary(format!("cold store: {n} events, {:.2} GiB on disk (built earlier)", gib(files(&dir.join("data")).0)));
        return;
    }
    let opening = Instant::now();
    let b = Bench::start(&dir.join("data"), operator(&dir)).await;
    println!(
        "opened the store in-process in {:.0} ms (server::start: sled recovery, App::open)",
        ms(opening.elapsed())
    );
    let registry_events = units.div_ceil(10_000) as u64;
    if log_size(&b.op).await < registry_events {
        register_departments(&b, units).await;
    }
    let per_doc = 4 * units as u64 + 1;
    let size = log_size(&b.op).await;
    // Directive d holds events reg + d·per_doc + 1 ..; the last one gets only the deliveries the target needs.
    let done = (size - registry_events) / per_doc;
    let deliveries = |d: u64| -> usize {
        let before = registry_events + d * per_doc + 1;
        usize::try_from(target.saturating_sub(before).div_ceil(4)).unwrap_or(usize::MAX).min(units)
    };
    let docs = (0..).take_while(|d| registry_events + d * per_doc < target).count();
    println!(
        "store in {}: {size} events now; target {target}: {docs} directives to {units} departments, 4 statements per \
         delivery ({per_doc} events per full directive), {done} complete",
        dir.display()
    );
    let min_free = std::env::var("GONGWEN_BENCH_COLD_MIN_FREE_GIB").ok().and_then(|v| v.parse().ok()).unwrap_or(10.0);
    let keys: Arc<Vec<Signer>> = Arc::new((0..units).map(unit_key).collect());
    let app = b.running.app.clone();
    let started = Instant::now();
    let first = size;
    for d in done..docs as u64 {
        let free = free_gib(&dir);
        if free < min_free {
            println!(
                "  stopping: {free:.1} GiB free on the store's disk, below GONGWEN_BENCH_COLD_MIN_FREE_GIB={min_free}"
            );
            summary(format!("cold store build stopped early: only {free:.1} GiB free on disk"));
            break;
        }
        let doc = app.issue(issuer_key().envelope(&issue_statement(&format!("cold-{d}")))).await.expect("issue").id;
        let (workers, k) = (256, deliveries(d));
        let mut tasks = vec![];
        for w in 0..workers {
            let (app, keys, doc) = (app.clone(), keys.clone(), doc.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..k).step_by(workers) {
                    for (kind, env) in statements(&keys[i], d, &doc, i) {
                        let r = match kind {
                            0 => app.acknowledge(env).await,
                            1 => app.start_handling(env).await,
                            2 => app.report(env).await,
                            _ => app.complete(env).await,
                        };
                        r.expect("statement");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("worker");
        }
        let size = log_size(&b.op).await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  directive {}/{docs} ({k} deliveries): {size} events, {:.0} events/s since this run began, store {:.2} \
             GiB, load {}",
            d + 1,
            (size - first) as f64 / secs,
            gib(files(&dir.join("data")).0),
            load_average()
        );
    }
    let size = log_size(&b.op).await;
    let secs = started.elapsed().as_secs_f64();
    drop(app);
    // As `gongwen serve` stops on SIGTERM (writing sled's snapshot), unless GONGWEN_BENCH_COLD_SNAPSHOT=0 asks for
    // the plain stop a crash amounts to, which leaves the next start to replay the build's writes.
    let stopping = Instant::now();
    if std::env::var("GONGWEN_BENCH_COLD_SNAPSHOT").is_ok_and(|v| v == "0") {
        b.running.stop().await.expect("stop");
        println!("  plain stop (no snapshot) in {:.0} ms", stopping.elapsed().as_secs_f64() * 1e3);
    } else {
        b.running.stop_and_snapshot().await.expect("stop");
        println!("  graceful stop with sled's snapshot in {:.0} ms", stopping.elapsed().as_secs_f64() * 1e3);
    }
    let (bytes, _) = files(&dir.join("data"));
    if size >= target {
        std::fs::write(&marker, size.to_string()).expect("marker");
    }
    println!(
        "store ready: {size} events, {:.2} GiB on disk; {} events written in {secs:.0} s by this run",
        gib(bytes),
        size - first
    );
    summary(format!(
        "cold store: {size} events, {:.2} GiB on disk (built {} events in {secs:.0} s this run)",
        gib(bytes),
        size - first
    ));
}

/// Bytes of `files` in the page cache, from util-linux `fincore` (None when it is missing).
fn cached(files: &[PathBuf]) -> Option<u64> {
    let out = Command::new("fincore").args(["--bytes", "--noheadings", "--output", "RES"]).args(files).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse::<u64>().ok()).sum())
}

/// Writes back and drops the store's pages from the page cache (only these files: other work keeps its cache).
fn evict(files: &[PathBuf]) {
    let _ = Command::new("sync").status();
    for f in files {
        let _ = Command::new("dd")
            .arg(format!("if={}", f.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status();
    }
}

struct Start {
    serving: Duration,
    answered: Duration,
    events: u64,
    peak_rss_mib: f64,
}

async fn start_once(dir: &Path, operator: &Signer) -> Start {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let log = std::fs::File::options().append(true).create(true).open(dir.join("serve.log")).expect("log");
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gongwen"))
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("serve")
        .arg("--plaintext")
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn gongwen serve");
    let url = format!("http://127.0.0.1:{port}");
    let (serving, ch) = loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("gongwen serve exited with {status}; see {}", dir.join("serve.log").display());
        }
        if let Ok(ch) = Channel::from_shared(url.clone()).expect("uri").connect().await {
            let reply = tonic_health::pb::health_client::HealthClient::new(ch.clone())
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await;
            if reply.is_ok_and(|r| {
                r.into_inner().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }) {
                break (t0.elapsed(), ch);
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "not serving after 15 minutes");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let op: Ch = SignRequests::new("operator", operator.clone()).layer(ch);
    let events = log_size(&op).await;
    let answered = t0.elapsed();
    let peak_rss_mib = status_mib(&child.id().to_string(), "VmHWM:");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert!(status.success(), "gongwen serve stopped with {status}");
    Start { serving, answered, events, peak_rss_mib }
}

const FIRST: &str = "first start after the build (which stopped with a snapshot unless GONGWEN_BENCH_COLD_SNAPSHOT=0; \
                     without one sled replays every write since the build opened the store)";

pub async fn measure(quick: bool) {
    let dir = dir();
    let operator = operator(&dir);
    let (bytes, store_files) = files(&dir.join("data"));
    let (warm, cold) = if quick { (2, 1) } else { (5, 2) };
    println!(
        "cold start of `gongwen serve` on {} ({:.2} GiB, {} files): {warm} runs with the store in the page cache, \
         then {cold} after evicting its files",
        dir.display(),
        gib(bytes),
        store_files.len()
    );
    // Run 1 is reported apart: right after `cold-build` wrote to the store, it replays sled's log written since the
    // build opened it (the same replay any restart after a long uptime pays).
    let mut results: Vec<(&str, Start)> = vec![];
    for run in 0..warm + cold {
        let evicted = run >= warm;
        let mut note = String::new();
        if evicted {
            let (_, now_files) = files(&dir.join("data"));
            evict(&now_files);
            if let Some(c) = cached(&now_files) {
                note = format!(", page cache evicted ({:.0} MiB of the store left in it)", c as f64 / (1 << 20) as f64);
            }
        }
        let s = start_once(&dir, &operator).await;
        println!(
            "  run {}: SERVING after {:.0} ms, first answer (checkpoint of {} events) after {:.0} ms, server peak RSS \
             {:.0} MiB{note} (load {})",
            run + 1,
            ms(s.serving),
            s.events,
            ms(s.answered),
            s.peak_rss_mib,
            load_average()
        );
        let kind = match (run, evicted) {
            (0, _) => FIRST,
            (_, false) => "later starts, store in page cache",
            (_, true) => "store evicted from page cache",
        };
        results.push((kind, s));
    }
    let events = results.first().map_or(0, |(_, s)| s.events);
    for kind in [FIRST, "later starts, store in page cache", "store evicted from page cache"] {
        let mine: Vec<&Start> = results.iter().filter(|(k, _)| *k == kind).map(|(_, s)| s).collect();
        if mine.is_empty() {
            continue;
        }
        let (sm, sx) = median_max(mine.iter().map(|s| s.serving).collect());
        let (am, ax) = median_max(mine.iter().map(|s| s.answered).collect());
        let rss = mine.iter().map(|s| s.peak_rss_mib).fold(0.0, f64::max);
        summary(format!(
            "cold start, {events} events, {kind} ({} runs): SERVING median {sm:.0} ms / max {sx:.0} ms; first answer \
             median {am:.0} ms / max {ax:.0} ms; server peak RSS {rss:.0} MiB (target < 2 s)",
            mine.len()
        ));
    }
}
