//! Large fan-outs are acknowledged once logged and moved into sled's tree in the background. With the threshold
//! at one key and the background move switched off, every issue and forward of the seed chain takes that path:
//! reads, actions, forwards, traces and matrices must see exactly what they would see after the move, a refused
//! request must change nothing, and a restart must find it all again.
use crate::common;

use std::time::{Duration, Instant};

use common::*;
use gongwen::pb;
use gongwen::store::{SledOptions, SledStore, Store};
use tonic::Code;

type Pair = (Vec<u8>, Vec<u8>);

/// Every pair of the store in `dir`, as readers see it, opened without moving deferred keys.
fn pairs(dir: &std::path::Path) -> Vec<Pair> {
    let options = SledOptions { defer_at: 1, apply_in_background: false, ..SledOptions::new(8 << 20) };
    let store = SledStore::open_with(dir, options).expect("open the store");
    let store: &dyn Store = &store;
    store.scan(b"", None, false).map(|r| r.expect("pair")).collect()
}

async fn waiting(h: &Harness) -> usize {
    h.server.as_ref().expect("server running").app.deferred_keys()
}

/// What the readers see: the trace, the matrix, two inboxes and one delivery, as bytes to compare.
async fn readings(h: &Harness, root: &str, city: &str) -> Vec<String> {
    let trace = h
        .tracer()
        .trace(pb::TraceRequest { document_id: root.into(), max_depth: 0 })
        .await
        .expect("trace")
        .into_inner();
    let matrix = h
        .supervision()
        .status_matrix(pb::MatrixRequest { document_id: root.into(), with_units: true })
        .await
        .expect("matrix")
        .into_inner();
    let mut out = vec![format!("{trace:?}"), format!("{matrix:?}")];
    for unit in [ZIBO, BOSHAN] {
        let req = pb::ListInboxRequest { unit_id: unit.into(), states: vec![], page: None };
        let inbox = h.deliveries().list_inbox(req).await.expect("inbox").into_inner();
        out.push(format!("{inbox:?}"));
    }
    out.push(format!("{:?}", h.delivery(city, BOSHAN).await));
    out
}

#[tokio::test]
async fn a_deferred_fan_out_reads_acts_and_survives_restarts_as_if_applied() {
    let mut h = Harness::start().await;
    h.defer_at = 1;
    h.apply_in_background = false;
    h.restart().await;
    h.load_bundled().await;

    let province = h
        .issue(PROVINCE, "p-1", draft("鲁财采", "山东省财政厅关于做好政府采购工作的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    let after_issue = waiting(&h).await;
    assert_eq!(after_issue, 2 * province.main_unit_ids.len(), "a delivery and an inbox entry per recipient wait");

    // Acting on a waiting delivery, and forwarding from it.
    h.ack(ZIBO, &province.id).await.expect("zibo acknowledges a waiting delivery");
    let city = h
        .forward(ZIBO, "z-1", &province.id, forward_draft("淄财采", vec![group("各区县财政局")]))
        .await
        .expect("zibo forwards");
    h.ack(BOSHAN, &city.id).await.expect("boshan acknowledges");
    assert!(waiting(&h).await > after_issue, "the forward's deliveries wait too");
    let zibo = h.delivery(&province.id, ZIBO).await;
    assert_eq!(zibo.state, pb::DeliveryState::Forwarded as i32);

    // A refused request changes nothing, deferred keys included.
    let before = h.digest().await;
    let jinan = h.forward("370100.czj", "j-1", &city.id, forward_draft("济财采", vec![group("各区县财政局")])).await;
    assert_eq!(jinan.expect_err("jinan did not receive the city's forward").code(), Code::FailedPrecondition);
    let stranger = h.ack("370100.czj", &city.id).await;
    assert_eq!(stranger.expect_err("nor may it acknowledge it").code(), Code::NotFound);
    assert_eq!(h.digest().await, before);

    let seen = readings(&h, &province.id, &city.id).await;
    let trace = &seen[0];
    assert!(trace.contains(BOSHAN) && trace.contains("淄财采"), "the trace reaches the city's recipients");

    // A backup taken while they wait holds them: the restored store has every pair of this one (and the
    // checkpoint a restore keeps).
    let file = h.dir.path().join("waiting.gw");
    let taken = h.server.as_ref().expect("server running").app.backup(&file).await.expect("backup");
    let restored_dir = h.dir.path().join("restored");
    let put_back = gongwen::app::backup::restore(&file, &restored_dir).expect("restore");
    assert_eq!(taken, put_back, "the restore counts what the backup counted");
    h.stop().await;
    let live = pairs(&h.data_dir().join("db"));
    let restored: Vec<Pair> =
        pairs(&restored_dir.join("db")).into_iter().filter(|(k, _)| k != b"meta/backup_checkpoint").collect();
    assert!(live.iter().any(|(k, _)| k.starts_with(b"inbox/")), "the waiting keys are in the live store's view");
    assert!(live == restored, "{} pairs live, {} restored", live.len(), restored.len());

    // Restart with the keys still waiting: loaded back from their batch files.
    h.restart().await;
    assert!(waiting(&h).await > after_issue);
    assert_eq!(h.digest().await, before);
    assert_eq!(readings(&h, &province.id, &city.id).await, seen);

    // Now let the server move them into the tree: nothing changes for anyone.
    h.apply_in_background = true;
    h.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting(&h).await > 0 {
        assert!(Instant::now() < deadline, "the background move did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.digest().await, before);
    assert_eq!(readings(&h, &province.id, &city.id).await, seen);
    h.restart().await;
    assert_eq!(waiting(&h).await, 0, "no log chunk is left behind");
    assert_eq!(readings(&h, &province.id, &city.id).await, seen);
}
