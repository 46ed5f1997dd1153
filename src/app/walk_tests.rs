//! Walks over a forwarding tree stop once their caller has gone: here the fold under status matrices and
//! not-acted lists, the overdue scan of a region and the audit bundle of a tree, over a tree built through the
//! app's own signed statements (the province to every city, one city on to its districts, many times). The unary
//! trace's stop is tested through the server in `tests/integration/limits.rs`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use super::lean::LeanDelivery;
use super::log::ExportScope;
use super::supervision::{OverdueOrder, OverdueScope};
use super::test_support::{Gated, app_over, app_with, operator, until};
use super::{App, AppConfig};
use crate::pb;
use crate::signing::Signer;
use crate::store::Store;

const PROVINCE: &str = "370000.czt";
const ZIBO: &str = "370300.czj";
/// Forwards of the notice by 淄博, many more than a walk has threads.
const FORWARDS: usize = 16;

fn group(name: &str) -> Vec<pb::Recipient> {
    vec![pb::Recipient { target: Some(pb::recipient::Target::Group(name.into())) }]
}

/// The bundled registry with a key for every unit, applied by the operator; the units' signers.
async fn bundled(app: &Arc<App>) -> HashMap<String, Signer> {
    let file = crate::registry_file::bundled().expect("the bundled registry parses");
    let mut keys = HashMap::new();
    let change = file.into_change("bundled".into(), |id| {
        let signer = Signer::from_secret(format!("{id}#k1"), Sha256::digest(id.as_bytes()).into());
        let seal = signer.seal_key();
        keys.insert(id.to_owned(), signer);
        Ok::<_, std::convert::Infallible>(vec![seal])
    });
    let Ok(change) = change;
    app.apply_registry_change(operator().envelope(&change)).await.expect("the registry applies");
    keys
}

/// A notice from the province to every city, forwarded [`FORWARDS`] times by 淄博 to its districts; its id.
async fn two_level_tree(app: &Arc<App>) -> String {
    let keys = bundled(app).await;
    let notice = pb::IssueDocument {
        request_id: "notice".into(),
        unit_id: PROVINCE.into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: "鲁财采".into(),
            number_year: 2022,
            title: "山东省财政厅关于采购的通知".into(),
            genre: pb::Genre::Notice as i32,
            main_recipients: group("各市财政局"),
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    };
    let doc = app.issue(keys[PROVINCE].envelope(&notice)).await.expect("issued");
    let ack = pb::Acknowledge {
        request_id: "ack".into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        registration_number: String::new(),
    };
    app.acknowledge(keys[ZIBO].envelope(&ack)).await.expect("acknowledged");
    // The bundled registry lists districts for 淄博 only: it forwards the notice again and again, each forward a
    // part of the fold of its own.
    for i in 0..FORWARDS {
        let forward = pb::ForwardDocument {
            request_id: format!("forward-{i}"),
            unit_id: ZIBO.into(),
            source_document_id: doc.id.clone(),
            draft: Some(pb::DocumentDraft {
                number_prefix: "淄财采".into(),
                number_year: 2022,
                main_recipients: group("各区县财政局"),
                dated: "2022-08-20".into(),
                ..Default::default()
            }),
        };
        app.forward(keys[ZIBO].envelope(&forward)).await.expect("forwarded");
    }
    doc.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fold_over_a_tree_whose_caller_went_away_stops_before_the_next_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with(dir.path(), AppConfig { max_tree_walks: 1, ..AppConfig::default() });
    let id = two_level_tree(&app).await;
    let count = |n: &mut usize, _: &LeanDelivery<'_>, _: u32| *n += 1;
    let (_, total) = app.fold_deliveries(&id, || 0usize, count, |a, b| *a += b).await.expect("fold");
    let cities = app.expand_group("各市财政局", PROVINCE).expect("cities").len();
    assert!(total > 4 * cities, "{total} deliveries: the districts' far outnumber the cities'");
    let per_forward = (total - cities) / FORWARDS;

    // Each thread folding a city's forward waits at the gate on its first district; the caller goes meanwhile.
    let visited = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let call = tokio::spawn({
        let (app, id, visited, held, gate) = (app.clone(), id.clone(), visited.clone(), held.clone(), gate.clone());
        async move {
            let visit = move |n: &mut usize, _: &LeanDelivery<'_>, depth: u32| {
                *n += 1;
                visited.fetch_add(1, Ordering::SeqCst);
                if depth >= 2 {
                    held.fetch_add(1, Ordering::SeqCst);
                    let (open, opened) = &*gate;
                    let shut = open.lock().expect("gate");
                    drop(opened.wait_while(shut, |open| !*open).expect("gate"));
                }
            };
            app.fold_deliveries(&id, || 0usize, visit, |a, b| *a += b).await
        }
    });
    until("the fold reaches the districts", || held.load(Ordering::SeqCst) > 0).await;
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()), "the caller went away mid-walk");
    *gate.0.lock().expect("gate") = true;
    gate.1.notify_all();
    // The one walk permit is free once the abandoned fold has ended: the next fold gets it then.
    let (_, again) = app.fold_deliveries(&id, || 0usize, count, |a, b| *a += b).await.expect("the next fold");
    assert_eq!(again, total);
    let seen = visited.load(Ordering::SeqCst);
    // Each of the walk's threads (one a core, at most 8) finishes the forward it was held in, and takes no other.
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get()).clamp(1, 8);
    assert!(threads * 2 <= FORWARDS, "the test needs more forwards than threads");
    assert!(
        seen <= cities + threads * per_forward,
        "{seen} of {total} deliveries were still folded after the caller went away"
    );
    assert_eq!(app.tree_walks_abandoned(), 1);
}

/// Starts `call` on an app over a [`Gated`] store whose scans of `prefix` are gated from now on; once a scan waits
/// at the gate, the caller goes away and the gate opens. Returns the scans of the prefix and the pairs they
/// yielded, once the walk has ended as abandoned.
async fn abandoned_at_the_gate<T: Send + 'static>(
    app: &Arc<App>,
    store: &Gated,
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> (usize, usize) {
    store.arm();
    let call = tokio::spawn(call);
    until("the walk reaching the gate", || store.reached()).await;
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()), "the caller went away mid-walk");
    store.open();
    until("the walk ending as abandoned", || app.tree_walks_abandoned() == 1).await;
    until("the walk permit coming back", || app.walks.available_permits() == 1).await;
    store.read()
}

/// An app whose one walk permit walks a [`Gated`] store (no trace cache in front of it), over [`two_level_tree`].
async fn gated_tree(dir: &std::path::Path, prefix: &[u8]) -> (Arc<App>, Arc<Gated>, String) {
    let store = Gated::new(dir, prefix);
    let config = AppConfig { max_tree_walks: 1, trace_cache_bytes: 0, ..AppConfig::default() };
    let app = app_over(dir, config, store.clone());
    let id = two_level_tree(&app).await;
    (app, store, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_scan_of_a_region_whose_caller_went_away_stops_at_its_next_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, store, _) = gated_tree(dir.path(), b"dlv/").await;
    let deliveries = store.scan(b"dlv/", None, false).count();
    assert!(deliveries > 100, "{deliveries} deliveries");
    let scan = {
        let app = app.clone();
        async move { app.overdue(OverdueScope::Region("370000".into()), OverdueOrder::DaysLateDesc).await }
    };
    let (scans, pairs) = abandoned_at_the_gate(&app, &store, scan).await;
    // The scan asks at its first delivery, and then every 1,024th: it read one, not all.
    assert_eq!((scans, pairs), (1, 1), "of {deliveries} deliveries");
    assert!(app.overdue(OverdueScope::Region("370000".into()), OverdueOrder::DaysLateDesc).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_bundle_whose_caller_went_away_stops_before_the_next_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, store, id) = gated_tree(dir.path(), b"fwd/").await;
    let export = {
        let (app, id) = (app.clone(), id.clone());
        async move { app.export_bundle(ExportScope::Document(id), 0).await }
    };
    let (scans, _) = abandoned_at_the_gate(&app, &store, export).await;
    // The root's forwards were listed at the gate; not one of its FORWARDS documents was looked into after.
    assert_eq!(scans, 1, "forward lists read of {} documents", FORWARDS + 1);
    let bundle = app.export_bundle(ExportScope::Document(id), 0).await.expect("the next bundle");
    assert!(bundle.entries.len() > FORWARDS, "{} events", bundle.entries.len());
    assert_eq!(store.read().0, 1 + FORWARDS + 1, "the next bundle read every document's forwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_trace_waits_its_turn_and_gives_it_up_while_its_reader_is_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with(dir.path(), AppConfig { max_tree_walks: 1, ..AppConfig::default() });
    let id = two_level_tree(&app).await;
    let (_, total) = app.fold_deliveries(&id, || 0usize, |n, _, _| *n += 1, |a, b| *a += b).await.expect("fold");

    // In line behind a walk that holds the one permit: nothing is walked or sent meanwhile.
    let held = app.walk_permit().await.expect("the one permit");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let stream = tokio::spawn({
        let (app, id) = (app.clone(), id.clone());
        async move { app.stream_trace(&id, 0, 1, tx, |chunk| chunk.nodes.len()).await }
    });
    until("the stream waiting for a walk permit", || app.tree_walks_waiting() == 1).await;
    assert!(rx.is_empty());
    drop(held);

    // Its reader reads nothing: with its one chunk ahead sent, the walk waits for the reader without the permit.
    until("the walk giving up its turn", || rx.len() == 1 && app.walks.available_permits() == 1).await;
    let other = app.walk_permit().await.expect("another walk goes first while the reader is behind");
    assert!(!stream.is_finished());
    drop(other);

    let mut nodes = 0;
    while let Some(chunk) = rx.recv().await {
        nodes += chunk.expect("a chunk");
    }
    stream.await.expect("joined").expect("the whole tree streamed");
    assert_eq!(nodes, total, "every delivery once");
    assert_eq!(app.walks.available_permits(), 1, "the permit is back");
    assert_eq!(app.tree_walks_abandoned(), 0);
}
