//! The trace cache keeps documents' deliveries in memory. Reads between and during every kind of action (issue,
//! acknowledge, forward, report, complete, return, start handling) must end where a server with the cache off
//! starts: the same trace, matrix and not-acted list, byte for byte.
use crate::common;

use common::*;
use gongwen::pb;

/// What a supervisor reads of `doc`, as text to compare.
async fn readings(h: &Harness, doc: &str) -> Vec<String> {
    let mut out = vec![];
    for max_depth in [0, 1] {
        let trace = h.tracer().trace(pb::TraceRequest { document_id: doc.into(), max_depth }).await.expect("trace");
        out.push(format!("{:?}", trace.into_inner()));
    }
    let req = pb::ListNotActedRequest { document_id: doc.into(), ..Default::default() };
    out.push(format!("{:?}", h.tracer().list_not_acted(req).await.expect("not acted").into_inner()));
    let req = pb::MatrixRequest { document_id: doc.into(), with_units: true };
    out.push(format!("{:?}", h.supervision().status_matrix(req).await.expect("matrix").into_inner()));
    out
}

#[tokio::test]
async fn reads_through_the_trace_cache_match_a_server_without_it() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let province = h
        .issue(
            PROVINCE,
            "p",
            draft(
                "鲁财采",
                "山东省财政厅关于做好政府采购工作的通知",
                vec![group("各市财政局"), group("省直各部门、单位")],
            ),
        )
        .await
        .expect("issue");
    let doc = province.id.clone();
    let mut seen = vec![readings(&h, &doc).await];

    // Each action after a read: the groups it changes are in memory and must follow it.
    h.ack(ZIBO, &doc).await.expect("ack");
    seen.push(readings(&h, &doc).await);
    let city = h.forward(ZIBO, "z", &doc, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    seen.push(readings(&h, &doc).await);
    h.ack(BOSHAN, &city.id).await.expect("ack");
    h.forward(BOSHAN, "b", &city.id, forward_draft("博财采", vec![group("各镇(街道)财政所")])).await.expect("forward");
    seen.push(readings(&h, &doc).await);

    // Actions while reads are in flight: a group a reader holds is dropped and loaded again.
    let units = ["370000.mzt", "370000.jyt", "370100.czj", "370303.czj", "370000.sjt"];
    let acks = async {
        for u in &units[..3] {
            h.ack(u, &doc).await.expect("ack");
        }
        h.ack("370303.czj", &city.id).await.expect("ack");
    };
    let reads = async {
        for _ in 0..4 {
            readings(&h, &doc).await;
        }
    };
    tokio::join!(acks, reads);
    h.report("370000.mzt", &doc).await.expect("report");
    seen.push(readings(&h, &doc).await);
    h.complete("370000.mzt", &doc).await.expect("complete");
    h.return_delivery("370000.sjt", &doc).await.expect("return");
    h.start_handling("370303.czj", &city.id).await.expect("start handling");
    let last = readings(&h, &doc).await;
    for (i, earlier) in seen.iter().enumerate() {
        assert_ne!(earlier, &last, "reading {i} was taken before later actions and must differ from the last");
    }
    let stats = h.server.as_ref().expect("running").app.trace_cache().expect("the cache is on by default");
    assert!(stats.hits > 0 && stats.groups > 0 && stats.bytes > 0, "reads were answered from memory: {stats:?}");

    // The same store read without the cache.
    h.config.trace_cache_bytes = 0;
    h.restart().await;
    assert!(h.server.as_ref().expect("running").app.trace_cache().is_none());
    assert_eq!(readings(&h, &doc).await, last);
}
