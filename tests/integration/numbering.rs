//! Number allocation: no gaps, no duplicates, under concurrent issuing and across restarts.
use crate::common;

use std::collections::BTreeSet;

use common::*;

const ISSUERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issuers_get_serials_one_to_n_and_numbering_survives_restart() {
    let mut h = Harness::start().await;
    h.load_bundled().await;

    let mut tasks = vec![];
    for i in 0..ISSUERS {
        let docs = h.documents();
        let m = gongwen::pb::IssueDocument {
            request_id: format!("n-{i}"),
            unit_id: PROVINCE.into(),
            draft: Some(draft("鲁财采", &format!("山东省财政厅关于第{i}项工作的通知"), vec![group("各市财政局")])),
        };
        let env = h.sign(PROVINCE, &m);
        tasks.push(tokio::spawn(async move { docs.clone().issue_document(env).await }));
    }
    let mut serials = BTreeSet::new();
    for t in tasks {
        let doc = t.await.expect("task").expect("issued").into_inner();
        assert!(serials.insert(doc.number_serial), "duplicate serial {}", doc.number_serial);
    }
    let expected: BTreeSet<u32> = (1..=ISSUERS as u32).collect();
    assert_eq!(serials, expected);

    h.restart().await;
    let next = h
        .issue(
            PROVINCE,
            "after-restart",
            draft("鲁财采", "山东省财政厅关于重启后工作的通知", vec![group("各市财政局")]),
        )
        .await
        .expect("issue");
    assert_eq!(next.number, format!("鲁财采〔2022〕{}号", ISSUERS + 1));
    // Another year starts again at 1.
    let mut d = draft("鲁财采", "山东省财政厅关于下一年度工作的通知", vec![group("各市财政局")]);
    d.number_year = 2023;
    let other_year = h.issue(PROVINCE, "2023-1", d).await.expect("issue");
    assert_eq!(other_year.number, "鲁财采〔2023〕1号");
}

#[tokio::test]
async fn a_retried_request_returns_the_first_document_and_takes_no_number() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let d = draft("鲁财采", "山东省财政厅关于重试的通知", vec![group("各市财政局")]);
    let first = h.issue(PROVINCE, "same", d.clone()).await.expect("first");
    let before = h.digest().await;
    let again = h.issue(PROVINCE, "same", d).await.expect("retry");
    assert_eq!(first.id, again.id);
    assert_eq!(first.number, again.number);
    assert_eq!(before, h.digest().await, "a retry records nothing new");
    let next = h
        .issue(PROVINCE, "other", draft("鲁财采", "山东省财政厅关于另一件事的通知", vec![group("各市财政局")]))
        .await
        .expect("next");
    assert_eq!(next.number_serial, first.number_serial + 1);
}

#[tokio::test]
async fn everything_is_there_after_a_restart() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "r1", draft("鲁财采", "山东省财政厅关于持久化的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("ack");
    let before = h.digest().await;
    h.restart().await;
    assert_eq!(before, h.digest().await, "the store reopens byte for byte");
    let d = h.delivery(&doc.id, ZIBO).await;
    assert_eq!(d.state, gongwen::pb::DeliveryState::Acknowledged as i32);
    let units = h.registry().list_units(gongwen::pb::ListUnitsRequest::default()).await.expect("units").into_inner();
    assert!(!units.units.is_empty());
    // Keys registered before the restart still sign.
    let fwd = h
        .forward(ZIBO, "f1", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")]))
        .await
        .expect("forward after restart");
    assert!(fwd.number.starts_with("淄财采〔2022〕"));
}
