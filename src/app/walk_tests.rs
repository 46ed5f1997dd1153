//! Walks over a forwarding tree stop once their caller has gone: here the fold under status matrices and
//! not-acted lists, over a tree built through the app's own signed statements (the province to every city, one
//! city on to its districts, many times). The unary trace's stop is tested through the server in `tests/limits.rs`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use super::lean::LeanDelivery;
use super::test_support::{app_with, operator, until};
use super::{App, AppConfig};
use crate::pb;
use crate::signing::Signer;

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
