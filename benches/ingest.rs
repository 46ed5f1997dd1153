//! Throughput and latency of the real service, measured through gRPC on loopback with the clients in the same
//! process (so "2 cores, clients included"). Run: `cargo bench --bench ingest` (add `-- --quick` for a short run).
//!
//! - signed acknowledgment ingest from 1, 16 and 64 concurrent clients: acks/s, p50 and p99 latency, every reply
//!   after a durable (flushed and fsynced) write;
//! - the machine's limit for this work: Ed25519 verifications per second on one core, single and batched;
//! - fan-out: issuing one directive to 10,000 and to 100,000 recipients;
//! - trace and status matrix over the 100,000-delivery tree;
//! - peak RSS at the end.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey, Verifier};
use gongwen::app::AppConfig;
use gongwen::auth::SignRequests;
use gongwen::pb;
use gongwen::pb::delivery_service_client::DeliveryServiceClient;
use gongwen::server::{self, ServerConfig};
use gongwen::signing::Signer;
use tonic::transport::Channel;
use tower::Layer;

type Ch = gongwen::auth::Signed<Channel>;

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

async fn register(ch: &Ch, operator: &Signer, from: usize, to: usize, first: bool) {
    let mut change = pb::RegistryChange { request_id: format!("units-{from}"), ..Default::default() };
    if first {
        change.regions.push(pb::Region {
            code: "370000".into(),
            name: "山东省".into(),
            parent_code: String::new(),
            level: 1,
        });
        let mut issuer = pb::Unit {
            id: "370000.czt".into(),
            full_name: "山东省财政厅".into(),
            region_code: "370000".into(),
            level: 1,
            kind: pb::UnitKind::FinanceBureau as i32,
            number_prefixes: vec!["鲁财采".into()],
            ..Default::default()
        };
        issuer.seal_keys = vec![unit_key(usize::MAX - 1).seal_key()];
        change.units.push(issuer);
        change.groups.push(pb::RecipientGroup {
            name: "省直各部门、单位".into(),
            scope: pb::GroupScope::SameRegion as i32,
            level: 1,
            kinds: vec![pb::UnitKind::Department as i32],
            ..Default::default()
        });
    }
    for i in from..to {
        change.units.push(pb::Unit {
            id: unit_id(i),
            full_name: format!("测试部门{i}"),
            region_code: "370000".into(),
            level: 1,
            kind: pb::UnitKind::Department as i32,
            seal_keys: vec![unit_key(i).seal_key()],
            ..Default::default()
        });
    }
    let env = operator.envelope(&change);
    pb::registry_service_client::RegistryServiceClient::new(ch.clone())
        .max_decoding_message_size(64 << 20)
        .apply_registry_change(env)
        .await
        .expect("registry");
}

async fn issue(ch: &Ch, n: usize) -> (pb::Document, Duration) {
    let issuer = unit_key(usize::MAX - 1);
    let m = pb::IssueDocument {
        request_id: format!("issue-{n}-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        unit_id: "370000.czt".into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: "鲁财采".into(),
            number_year: 2022,
            title: format!("山东省财政厅关于第{n}项工作的通知"),
            genre: pb::Genre::Notice as i32,
            main_recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Group("省直各部门、单位".into())),
            }],
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    };
    let env = issuer.envelope(&m);
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

/// `clients` tasks, each acknowledging its share of `units` deliveries of `doc`.
async fn ingest(raw: &Channel, doc: &str, units: &[usize], clients: usize) -> (f64, Duration, Duration) {
    let per = units.len() / clients;
    let start = Instant::now();
    let mut tasks = vec![];
    for c in 0..clients {
        let mine: Vec<usize> = units[c * per..(c + 1) * per].to_vec();
        let doc = doc.to_string();
        let raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for i in mine {
                let key = unit_key(i);
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
    all.sort();
    (all.len() as f64 / secs, percentile(&all, 0.5), percentile(&all, 0.99))
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

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = Signer::from_secret("operator#bench", [9u8; 32]);
    let mut cfg = ServerConfig::new(dir.path().join("data"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.operator = Some(gongwen::cli::serve::operator_seal(&operator));
    cfg.app = AppConfig {
        max_message_bytes: 64 << 20,
        rate_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        ..AppConfig::default()
    };
    let running = server::start(cfg).await.expect("server");
    let raw = Channel::from_shared(format!("http://{}", running.addr)).expect("uri").connect().await.expect("connect");
    let op: Ch = SignRequests::new("operator", operator.clone()).layer(raw.clone());

    let (single, batched) = tokio::task::spawn_blocking(ed25519_limit).await.expect("limit");
    println!(
        "machine: {} cores; Ed25519 verify, one core: {single:.0}/s single, {batched:.0}/s batched (64)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let units = if quick { 2_000 } else { 10_000 };
    register(&op, &operator, 0, units, true).await;
    println!("\nsigned acknowledgment ingest over gRPC, durable writes ({units} deliveries per run):");
    println!("{:>8} {:>10} {:>10} {:>10}  share of the 1-core verify limit", "clients", "acks/s", "p50", "p99");
    for clients in [1usize, 16, 64] {
        let (doc, _) = issue(&op, units).await;
        let take = if clients == 1 { units / 5 } else { units };
        let ids: Vec<usize> = (0..take).collect();
        let (rate, p50, p99) = ingest(&raw, &doc.id, &ids, clients).await;
        println!(
            "{clients:>8} {rate:>10.0} {:>9.2}ms {:>9.2}ms  {:.1}%",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            100.0 * rate / single
        );
    }

    println!("\nfan-out (one IssueDocument, expansion, all deliveries and inbox entries in one durable write):");
    let (_, t10k) = issue(&op, units).await;
    println!("{units:>8} recipients: {:.0} ms", t10k.as_secs_f64() * 1e3);
    let big = if quick { 20_000 } else { 100_000 };
    for from in (units..big).step_by(10_000) {
        register(&op, &operator, from, (from + 10_000).min(big), false).await;
    }
    let (doc, tbig) = issue(&op, big).await;
    println!("{big:>8} recipients: {:.0} ms", tbig.as_secs_f64() * 1e3);

    let mut tracer = pb::trace_service_client::TraceServiceClient::new(op.clone()).max_decoding_message_size(512 << 20);
    let t = Instant::now();
    let tree = tracer.trace(pb::TraceRequest { document_id: doc.id.clone() }).await.expect("trace").into_inner();
    let trace_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut sup =
        pb::supervision_service_client::SupervisionServiceClient::new(op.clone()).max_decoding_message_size(512 << 20);
    let t = Instant::now();
    sup.status_matrix(pb::MatrixRequest { document_id: doc.id.clone(), with_units: false }).await.expect("matrix");
    let matrix_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("\ntrace of a {}-delivery tree: {trace_ms:.0} ms; status matrix: {matrix_ms:.0} ms", tree.nodes.len());
    println!("peak RSS (server and clients in one process): {:.0} MiB", peak_rss_mib());
    running.stop().await.expect("stop");
}
