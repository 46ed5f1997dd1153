//! A 4-level forwarding tree built through the real service: the province's 财政厅 issues to the city bureaus,
//! each city forwards to its county bureaus, each county to its township finance offices, each township office
//! to the offices of its township. Every forwarder acknowledges first (a forward needs a received, acknowledged
//! delivery); a quarter of the leaf offices acknowledge too. Then `Trace` and `StatusMatrix` over the whole tree,
//! through gRPC and, for comparison, in-process on the application layer.
use std::time::{Duration, Instant};

use futures::StreamExt;
use gongwen::app::AppConfig;
use gongwen::auth::SignRequests;
use gongwen::pb;
use gongwen::signing::Signer;
use sha2::{Digest, Sha256};
use tower::Layer;

use super::{
    Bench, bench_operator, depth_traces, load_average, median_max, process_cpu, settle, streamed_traces, summary,
    trace_and_matrix,
};

/// One unit of the tree and the units it sends to.
struct Node {
    id: String,
    prefix: String,
    children: Vec<Node>,
}

fn key_for(id: &str) -> Signer {
    Signer::from_secret(format!("{id}#k"), Sha256::digest(id.as_bytes()).into())
}

/// A unique 机关代字 for the `n`th issuing unit: 鲁 and three capital letters.
fn prefix(n: usize) -> String {
    let l = |k: usize| char::from(b'A' + u8::try_from(k % 26).unwrap_or(0));
    format!("鲁{}{}{}", l(n / 676), l(n / 26), l(n))
}

fn unit(id: &str, name: String, region: &str, level: pb::Level, kind: pb::UnitKind, prefix: &str) -> pb::Unit {
    pb::Unit {
        id: id.into(),
        full_name: name,
        region_code: region.into(),
        level: level as i32,
        kind: kind as i32,
        number_prefixes: if prefix.is_empty() { vec![] } else { vec![prefix.into()] },
        seal_keys: vec![key_for(id).seal_key()],
        ..Default::default()
    }
}

fn region(code: &str, parent: &str, level: pb::Level) -> pb::Region {
    pb::Region { code: code.into(), name: format!("区划{code}"), parent_code: parent.into(), level: level as i32 }
}

/// Registers regions and units and returns the tree, root first.
async fn register(b: &Bench, shape: [usize; 4]) -> Node {
    let [cities, counties, towns, leaves] = shape;
    let mut bureaus = pb::RegistryChange { request_id: "tree-bureaus".into(), ..Default::default() };
    let mut leaf_units = vec![];
    let mut n = 0;
    let mut next_prefix = || {
        n += 1;
        prefix(n)
    };
    bureaus.regions.push(region("370000", "", pb::Level::Province));
    bureaus.units.push(unit(
        "370000.czt",
        "山东省财政厅".into(),
        "370000",
        pb::Level::Province,
        pb::UnitKind::FinanceBureau,
        "鲁财采",
    ));
    let mut root = Node { id: "370000.czt".into(), prefix: "鲁财采".into(), children: vec![] };
    for c in 1..=cities {
        let city = format!("37{c:02}00");
        bureaus.regions.push(region(&city, "370000", pb::Level::City));
        let (id, p) = (format!("{city}.czj"), next_prefix());
        bureaus.units.push(unit(
            &id,
            format!("{city}市财政局"),
            &city,
            pb::Level::City,
            pb::UnitKind::FinanceBureau,
            &p,
        ));
        let mut city_node = Node { id, prefix: p, children: vec![] };
        for k in 1..=counties {
            let county = format!("37{c:02}{k:02}");
            bureaus.regions.push(region(&county, &city, pb::Level::County));
            let (id, p) = (format!("{county}.czj"), next_prefix());
            bureaus.units.push(unit(
                &id,
                format!("{county}县财政局"),
                &county,
                pb::Level::County,
                pb::UnitKind::FinanceBureau,
                &p,
            ));
            let mut county_node = Node { id, prefix: p, children: vec![] };
            for t in 1..=towns {
                let town = format!("{county}{t:03}");
                bureaus.regions.push(region(&town, &county, pb::Level::Township));
                let (id, p) = (format!("{town}.czs"), next_prefix());
                bureaus.units.push(unit(
                    &id,
                    format!("{town}镇财政所"),
                    &town,
                    pb::Level::Township,
                    pb::UnitKind::FinanceOffice,
                    &p,
                ));
                let mut town_node = Node { id, prefix: p, children: vec![] };
                for l in 1..=leaves {
                    let id = format!("{town}.u{l:02}");
                    leaf_units.push(unit(
                        &id,
                        format!("{town}镇第{l}办公室"),
                        &town,
                        pb::Level::Township,
                        pb::UnitKind::Office,
                        "",
                    ));
                    town_node.children.push(Node { id, prefix: String::new(), children: vec![] });
                }
                county_node.children.push(town_node);
            }
            city_node.children.push(county_node);
        }
        root.children.push(city_node);
    }
    b.apply(bureaus).await;
    for (i, chunk) in leaf_units.chunks(10_000).enumerate() {
        b.apply(pb::RegistryChange {
            request_id: format!("tree-leaves-{i}"),
            units: chunk.to_vec(),
            ..Default::default()
        })
        .await;
    }
    root
}

fn recipients(node: &Node) -> Vec<pb::Recipient> {
    node.children.iter().map(|c| pb::Recipient { target: Some(pb::recipient::Target::UnitId(c.id.clone())) }).collect()
}

async fn acknowledge(b: &Bench, id: &str, doc: &str) {
    let key = key_for(id);
    let ch = SignRequests::new(id, key.clone()).layer(b.raw.clone());
    let m = pb::Acknowledge {
        request_id: format!("ack-{doc}"),
        unit_id: id.into(),
        document_id: doc.into(),
        registration_number: String::new(),
    };
    pb::delivery_service_client::DeliveryServiceClient::new(ch).acknowledge(key.envelope(&m)).await.expect("ack");
}

/// Each node acknowledges its document, 16 at a time.
async fn acknowledge_all(b: &Bench, nodes: Vec<(&Node, String)>) {
    futures::stream::iter(nodes)
        .map(|(n, doc)| async move { acknowledge(b, &n.id, &doc).await })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// `node` acknowledges `doc` and forwards it to its children; returns the new document's id.
async fn forward(b: &Bench, node: &Node, doc: &str) -> String {
    acknowledge(b, &node.id, doc).await;
    let key = key_for(&node.id);
    let ch = SignRequests::new(node.id.clone(), key.clone()).layer(b.raw.clone());
    let m = pb::ForwardDocument {
        request_id: format!("fwd-{doc}"),
        unit_id: node.id.clone(),
        source_document_id: doc.into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: node.prefix.clone(),
            number_year: 2022,
            genre: pb::Genre::Notice as i32,
            main_recipients: recipients(node),
            dated: "2022-08-20".into(),
            ..Default::default()
        }),
    };
    pb::document_service_client::DocumentServiceClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .forward_document(key.envelope(&m))
        .await
        .expect("forward")
        .into_inner()
        .id
}

pub async fn scenario(quick: bool) {
    let shape = if quick { [4, 4, 8, 20] } else { [10, 10, 40, 50] };
    let [c, k, t, l] = shape;
    let expected = c + c * k + c * k * t + c * k * t * l;
    println!(
        "4-level forwarding tree: {c} cities × {k} counties × {t} townships × {l} offices = {expected} deliveries"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b = Bench::start(&dir.path().join("data"), bench_operator()).await;
    let started = Instant::now();
    let root = register(&b, shape).await;
    println!("  registry of {} units: {:.1} s", expected + 1, started.elapsed().as_secs_f64());

    let started = Instant::now();
    let issue = pb::IssueDocument {
        request_id: "tree-root".into(),
        unit_id: root.id.clone(),
        draft: Some(pb::DocumentDraft {
            number_prefix: root.prefix.clone(),
            number_year: 2022,
            title: "山东省财政厅关于做好政府采购工作的通知".into(),
            genre: pb::Genre::Notice as i32,
            main_recipients: recipients(&root),
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    };
    let root_doc = pb::document_service_client::DocumentServiceClient::new(b.op.clone())
        .issue_document(key_for(&root.id).envelope(&issue))
        .await
        .expect("issue")
        .into_inner()
        .id;
    // Level by level: everyone who received a document and has recipients of its own acknowledges and forwards.
    let mut level: Vec<(&Node, String)> = root.children.iter().map(|n| (n, root_doc.clone())).collect();
    let mut forwards = 0;
    while level.iter().any(|(n, _)| !n.children.is_empty()) {
        let next: Vec<Vec<(&Node, String)>> = futures::stream::iter(level)
            .map(|(n, doc)| {
                let b = &b;
                async move {
                    let new = forward(b, n, &doc).await;
                    n.children.iter().map(|c| (c, new.clone())).collect::<Vec<_>>()
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        forwards += next.len();
        level = next.into_iter().flatten().collect();
    }
    let acked: Vec<(&Node, String)> = level.iter().step_by(4).cloned().collect();
    let leaf_acks = acked.len();
    acknowledge_all(&b, acked).await;
    println!(
        "  built through the service: 1 issue, {forwards} acknowledge+forward pairs, {leaf_acks} leaf acknowledgments \
         in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // More runs (GONGWEN_BENCH_TREE_RUNS) make a profile of the reads stand out from the build.
    let runs =
        std::env::var("GONGWEN_BENCH_TREE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick { 3 } else { 5 });
    if std::env::var("GONGWEN_BENCH_TREE_READ").is_ok_and(|v| v == "stream") {
        // Only the streamed trace, for a profile of it alone: `perf record` this, then report the last part.
        // Nothing left in the background, and the trace cache loaded by one untimed run; then CPU time is the
        // steadier figure: on two shared cores the wall time of the same runs varies by a third.
        settle(&b).await;
        streamed_traces(&b, &root_doc, 1).await;
        let cpu = process_cpu();
        let (firsts, lasts, nodes) = streamed_traces(&b, &root_doc, runs).await;
        let cpu = (process_cpu() - cpu).as_secs_f64() * 1e3 / runs as f64;
        let ((fm, fx), (lm, lx)) = (median_max(firsts), median_max(lasts));
        println!(
            "  StreamTrace only, {runs} runs ({nodes} nodes): first chunk median {fm:.0} / max {fx:.0} ms; whole tree \
             median {lm:.0} / max {lx:.0} ms; {cpu:.0} ms CPU a run (server and client)"
        );
        return;
    }
    if std::env::var("GONGWEN_BENCH_TREE_READ").is_ok_and(|v| v == "bundle") {
        // The audit bundle of the whole tree: every event about the root and each document forwarded from it, with
        // its inclusion proof, as `gongwen export --document` fetches it.
        settle(&b).await;
        let mut audit =
            pb::audit_service_client::AuditServiceClient::new(b.op.clone()).max_decoding_message_size(512 << 20);
        let (mut times, mut shape) = (vec![], (0, 0));
        let cpu = process_cpu();
        for _ in 0..runs {
            let t = Instant::now();
            let req = pb::ExportRequest {
                scope: Some(pb::export_request::Scope::DocumentId(root_doc.clone())),
                previous_size: 0,
            };
            let bundle = audit.export_bundle(req).await.expect("export").into_inner();
            times.push(t.elapsed());
            shape = (bundle.entries.len(), prost::Message::encoded_len(&bundle));
        }
        let cpu = (process_cpu() - cpu).as_secs_f64() * 1e3 / runs as f64;
        let (m, x) = median_max(times);
        let (events, bytes) = shape;
        println!(
            "  ExportBundle of the whole tree, {runs} runs: {events} events, {:.1} MB; median {m:.0} / max {x:.0} ms; \
             {cpu:.0} ms CPU a run (server and client)",
            bytes as f64 / 1e6
        );
        summary(format!(
            "  ExportBundle of the whole tree: {events} events, {:.1} MB, median {m:.0} ms",
            bytes as f64 / 1e6
        ));
        return;
    }
    if std::env::var("GONGWEN_BENCH_TREE_READ").is_ok_and(|v| v == "stages") {
        // The unary Trace's stages one after another in this process, without gRPC, each timed alone: the server's
        // walk with each subtree encoded on the walk's threads, the reply put into one buffer, and a client's
        // decoding; then the generated code's path for comparison: the walk, the conversion to protobuf, the
        // encoding.
        use gongwen::grpc::trace_reply::{Encoded, reply_node};
        use prost::Message;
        settle(&b).await;
        let app = b.running.app.clone();
        let mut t: [Vec<Duration>; 6] = Default::default();
        for _ in 0..runs {
            let s = Instant::now();
            let tree = app.trace_mapped(&root_doc, 0, reply_node).await.expect("trace");
            t[0].push(s.elapsed());
            let s = Instant::now();
            let bytes = Encoded::from(tree).encode_to_vec();
            t[1].push(s.elapsed());
            let s = Instant::now();
            let back = pb::TraceReply::decode(bytes.as_slice()).expect("decode");
            t[2].push(s.elapsed());
            drop((back, bytes));
            let s = Instant::now();
            let tree = app.trace(&root_doc, 0).await.expect("trace");
            t[3].push(s.elapsed());
            let s = Instant::now();
            let reply = pb::TraceReply::from(tree);
            t[4].push(s.elapsed());
            let s = Instant::now();
            drop(reply.encode_to_vec());
            t[5].push(s.elapsed());
        }
        let [we, one, d, w, c, e] = t.map(|v| median_max(v).0);
        println!(
            "  Trace stages, median of {runs}: walk and encode {we:.0} ms, one buffer {one:.0} ms, a client's decoding \
             {d:.0} ms; the generated code's path: walk {w:.0} ms, to protobuf {c:.0} ms, encode {e:.0} ms"
        );
        return;
    }
    if std::env::var("GONGWEN_BENCH_TREE_READ").is_ok_and(|v| v == "unary") {
        // Only the unary Trace of every level, for a profile of it alone, as above.
        settle(&b).await;
        depth_traces(&b, &root_doc, 0, 1).await;
        let cpu = process_cpu();
        let (times, nodes, _) = depth_traces(&b, &root_doc, 0, runs).await;
        let cpu = (process_cpu() - cpu).as_secs_f64() * 1e3 / runs as f64;
        let (m, x) = median_max(times);
        println!(
            "  Trace only, every level, {runs} runs ({nodes} nodes): median {m:.0} / max {x:.0} ms; {cpu:.0} ms CPU a \
             run (server and client)"
        );
        return;
    }
    let (n, traces, matrices) = trace_and_matrix(&b, &root_doc, runs).await;
    assert_eq!(n, expected, "the trace counts every delivery of the tree");
    let first = traces.first().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!("  the first Trace after the build (trace cache empty): {first:.0} ms");
    summary(format!("  first Trace after the build, trace cache empty: {first:.0} ms"));
    let ((tm, tx), (mm, mx)) = (median_max(traces), median_max(matrices));
    let load = load_average();
    println!(
        "  over gRPC, {runs} runs: Trace median {tm:.0} ms, max {tx:.0} ms; StatusMatrix median {mm:.0} ms, max \
         {mx:.0} ms (load {load})"
    );
    summary(format!(
        "4-level {n}-delivery tree over gRPC: Trace median {tm:.0} ms / max {tx:.0} ms; StatusMatrix median {mm:.0} \
         ms / max {mx:.0} ms (target < 200 ms)"
    ));
    for depth in [0, 3, 2] {
        let (times, nodes, bytes) = depth_traces(&b, &root_doc, depth, runs).await;
        let (m, x) = median_max(times);
        let shown = if depth == 0 { "every level".to_owned() } else { format!("max_depth {depth}") };
        println!(
            "  Trace listing {shown}: {nodes} nodes, reply {:.1} MB, median {m:.0} ms, max {x:.0} ms",
            bytes as f64 / 1e6
        );
        summary(format!(
            "  Trace, {shown}: {nodes} nodes listed, {:.1} MB reply: median {m:.0} ms / max {x:.0} ms",
            bytes as f64 / 1e6
        ));
    }
    let (firsts, lasts, nodes) = streamed_traces(&b, &root_doc, runs).await;
    let ((fm, fx), (lm, lx)) = (median_max(firsts), median_max(lasts));
    println!(
        "  StreamTrace of every level ({nodes} nodes, chunks of 2,048): first chunk median {fm:.0} ms, max {fx:.0} ms; \
         last chunk median {lm:.0} ms, max {lx:.0} ms"
    );
    summary(format!(
        "  StreamTrace, every level ({nodes} nodes): first chunk median {fm:.0} ms / max {fx:.0} ms; whole tree \
         median {lm:.0} ms / max {lx:.0} ms"
    ));
    for page_size in [1_000, 10_000] {
        let (first, all, pages, listed, total) = not_acted_pages(&b, &root_doc, runs, page_size).await;
        let ((pm, px), (am, ax)) = (median_max(first), median_max(all));
        println!(
            "  ListNotActed ({total} not acted), pages of {page_size}: first page median {pm:.0} ms, max {px:.0} ms; \
             all {pages} pages ({listed} nodes) median {am:.0} ms, max {ax:.0} ms"
        );
        summary(format!(
            "  ListNotActed, {total} not acted, pages of {page_size}: first page median {pm:.0} / max {px:.0} ms; all \
             {pages} pages median {am:.0} / max {ax:.0} ms"
        ));
    }
    let app = b.running.app.clone();
    let (mut t_app, mut m_app): (Vec<Duration>, Vec<Duration>) = (vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        drop(app.trace(&root_doc, 0).await.expect("trace"));
        t_app.push(t.elapsed());
        let t = Instant::now();
        drop(app.matrix(&root_doc, false).await.expect("matrix"));
        m_app.push(t.elapsed());
    }
    let ((tm, tx), (mm, mx)) = (median_max(t_app), median_max(m_app));
    println!(
        "  in-process App::trace median {tm:.0} ms, max {tx:.0} ms; App::matrix median {mm:.0} ms, max {mx:.0} ms \
         (no gRPC encoding or transport)"
    );
    summary(format!(
        "  of which the application layer (in-process): trace {tm:.0} / {tx:.0} ms, matrix {mm:.0} / {mx:.0} ms"
    ));
    if let Some(c) = app.trace_cache() {
        println!(
            "  trace cache: {} documents, {:.1} MiB, {} hits, {} misses",
            c.groups,
            c.bytes as f64 / (1 << 20) as f64,
            c.hits,
            c.misses
        );
        summary(format!("  trace cache after the runs: {} documents, {:.1} MiB", c.groups, c.bytes as f64 / 1048576.0));
    }
    drop(app);
    // Traces while leaf offices acknowledge: every acknowledgment changes a document's deliveries, so its group
    // is brought up to date in the cache, or loaded again when a trace was reading it.
    let unacked: Vec<(&Node, String)> = level.iter().skip(1).step_by(16).cloned().collect();
    let acks = unacked.len();
    let writing = std::sync::atomic::AtomicBool::new(true);
    let load = async {
        acknowledge_all(&b, unacked).await;
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let reads = async {
        let (mut t, mut m) = (vec![], vec![]);
        while writing.load(std::sync::atomic::Ordering::Relaxed) {
            let (_, tr, ma) = trace_and_matrix(&b, &root_doc, 1).await;
            t.extend(tr);
            m.extend(ma);
        }
        (t, m)
    };
    let started = Instant::now();
    let ((), (t_busy, m_busy)) = tokio::join!(load, reads);
    let secs = started.elapsed().as_secs_f64();
    let rounds = t_busy.len();
    let ((tm, tx), (mm, mx)) = (median_max(t_busy), median_max(m_busy));
    println!(
        "  while {acks} leaf acknowledgments arrive ({:.0}/s): {rounds} Trace median {tm:.0} ms, max {tx:.0} ms; \
         StatusMatrix median {mm:.0} ms, max {mx:.0} ms",
        acks as f64 / secs
    );
    summary(format!(
        "  under writes ({:.0} acks/s): Trace median {tm:.0} / max {tx:.0} ms, StatusMatrix median {mm:.0} / max \
         {mx:.0} ms ({rounds} rounds)",
        acks as f64 / secs
    ));

    // The first trace and matrix after a restart, with the cache on (loading every document) and off.
    let data = dir.path().join("data");
    for cache in [AppConfig::default().trace_cache_bytes, 0] {
        b.running.stop().await.expect("stop");
        b = Bench::start_with(&data, bench_operator(), cache).await;
        let (_, t, m) = trace_and_matrix(&b, &root_doc, 1).await;
        let ms = |d: &[Duration]| d.first().map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let state = if cache > 0 { "on, empty" } else { "off" };
        println!(
            "  first Trace after a restart, trace cache {state}: {:.0} ms; then StatusMatrix {:.0} ms",
            ms(&t),
            ms(&m)
        );
        summary(format!(
            "  first Trace after a restart, cache {state}: {:.0} ms; then StatusMatrix {:.0} ms",
            ms(&t),
            ms(&m)
        ));
    }

    // The same reads with the trace cache off, on the same store (the server started last).
    let (_, traces, matrices) = trace_and_matrix(&b, &root_doc, runs).await;
    let ((tm, tx), (mm, mx)) = (median_max(traces), median_max(matrices));
    println!(
        "  trace cache off, over gRPC, {runs} runs: Trace median {tm:.0} ms, max {tx:.0} ms; StatusMatrix median \
         {mm:.0} ms, max {mx:.0} ms"
    );
    summary(format!(
        "  trace cache off: Trace median {tm:.0} / max {tx:.0} ms, StatusMatrix median {mm:.0} / max {mx:.0} ms"
    ));
    b.running.stop().await.expect("stop");
}

/// `runs` reads of the first ListNotActed page of `doc`, timed, and `runs.min(2)` reads of every page, as the
/// CLI makes them: the times, the pages and nodes of the last full read, and the total.
async fn not_acted_pages(
    b: &Bench,
    doc: &str,
    runs: usize,
    page_size: u32,
) -> (Vec<Duration>, Vec<Duration>, usize, usize, u32) {
    let mut tracer = pb::trace_service_client::TraceServiceClient::new(b.op.clone());
    let ask = |page_token: String| pb::ListNotActedRequest { document_id: doc.into(), page_size, page_token };
    let mut firsts = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        tracer.list_not_acted(ask(String::new())).await.expect("first page");
        firsts.push(t.elapsed());
    }
    let (mut alls, mut pages, mut listed, mut total) = (vec![], 0, 0, 0);
    for _ in 0..runs.min(2) {
        let t = Instant::now();
        let (mut token, mut read, mut nodes) = (String::new(), 0, 0);
        loop {
            let page = tracer.list_not_acted(ask(token)).await.expect("page").into_inner();
            read += 1;
            nodes += page.nodes.len();
            total = page.total;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        alls.push(t.elapsed());
        (pages, listed) = (read, nodes);
    }
    assert_eq!(listed, total as usize, "the pages list every recipient not acted once");
    (firsts, alls, pages, listed, total)
}
