//! Inboxes: newest first, state filters, paging, and live notices.
use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use gongwen::pb;
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(10);

async fn inbox(h: &Harness, unit: &str, states: Vec<pb::DeliveryState>, size: u32, token: &str) -> pb::ListInboxReply {
    let req = pb::ListInboxRequest {
        unit_id: unit.into(),
        states: states.into_iter().map(|s| s as i32).collect(),
        page: Some(pb::PageRequest { page_size: size, page_token: token.into() }),
    };
    h.deliveries().list_inbox(req).await.expect("inbox").into_inner()
}

#[tokio::test]
async fn newest_first_filtered_and_paged() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut ids = vec![];
    for i in 0..5 {
        let d = h
            .issue(
                PROVINCE,
                &format!("d{i}"),
                draft("鲁财采", &format!("山东省财政厅关于第{i}事的通知"), vec![group("各市财政局")]),
            )
            .await
            .expect("issue");
        ids.push(d.id);
    }
    h.ack(ZIBO, &ids[1]).await.expect("ack");
    h.ack(ZIBO, &ids[3]).await.expect("ack");

    let all = inbox(&h, ZIBO, vec![], 0, "").await;
    let got: Vec<_> = all.deliveries.iter().map(|d| d.document_id.clone()).collect();
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(got, newest_first);
    assert!(all.next_page_token.is_empty());

    let acked = inbox(&h, ZIBO, vec![pb::DeliveryState::Acknowledged], 0, "").await;
    assert_eq!(
        acked.deliveries.iter().map(|d| d.document_id.clone()).collect::<Vec<_>>(),
        vec![ids[3].clone(), ids[1].clone()]
    );
    let pending = inbox(&h, ZIBO, vec![pb::DeliveryState::Pending, pb::DeliveryState::Returned], 0, "").await;
    assert_eq!(pending.deliveries.len(), 3);

    // Page by one: every delivery exactly once, in order.
    let mut seen = vec![];
    let mut token = String::new();
    loop {
        let page = inbox(&h, ZIBO, vec![], 1, &token).await;
        assert!(page.deliveries.len() <= 1);
        seen.extend(page.deliveries.into_iter().map(|d| d.document_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, newest_first);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    // Paging with a filter.
    let first = inbox(&h, ZIBO, vec![pb::DeliveryState::Pending], 2, "").await;
    assert_eq!(first.deliveries.len(), 2);
    let rest = inbox(&h, ZIBO, vec![pb::DeliveryState::Pending], 2, &first.next_page_token).await;
    assert_eq!(rest.deliveries.len(), 1);
    assert!(rest.next_page_token.is_empty());

    let req = |unit: &str, token: &str| pb::ListInboxRequest {
        unit_id: unit.into(),
        states: vec![],
        page: Some(pb::PageRequest { page_size: 1, page_token: token.into() }),
    };
    refused(&h, Code::NotFound, h.deliveries().list_inbox(req("nobody", ""))).await;
    refused(&h, Code::InvalidArgument, h.deliveries().list_inbox(req(ZIBO, "not-a-token"))).await;
    let bad_state = pb::ListInboxRequest { unit_id: ZIBO.into(), states: vec![42], page: None };
    refused(&h, Code::InvalidArgument, h.deliveries().list_inbox(bad_state)).await;
}

#[tokio::test]
async fn watchers_see_their_new_deliveries_and_reminders_live() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut stream =
        h.deliveries().watch_inbox(pb::WatchInboxRequest { unit_id: BOSHAN.into() }).await.expect("watch").into_inner();
    // Not addressed to Boshan: nothing arrives for it.
    let province_doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于监看的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &province_doc.id).await.expect("ack");
    let city_doc = h
        .forward(ZIBO, "f", &province_doc.id, forward_draft("淄财采", vec![group("各区县财政局")]))
        .await
        .expect("forward");

    let next = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a notice in time")
        .expect("stream")
        .expect("open");
    assert_eq!(next.kind, pb::EventKind::Delivered as i32);
    let d = next.delivery.expect("delivery");
    assert_eq!(d.document_id, city_doc.id, "the first notice is the document addressed to Boshan");
    assert_eq!(d.state, pb::DeliveryState::Pending as i32);

    let m = pb::Remind {
        request_id: "r".into(),
        unit_id: ZIBO.into(),
        document_id: city_doc.id.clone(),
        recipient_unit_id: BOSHAN.into(),
        message: "请签收".into(),
    };
    h.deliveries().remind(h.sign(ZIBO, &m)).await.expect("remind");
    let next = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a notice in time")
        .expect("stream")
        .expect("open");
    assert_eq!(next.kind, pb::EventKind::Reminded as i32);
    assert_eq!(next.delivery.map(|d| d.reminders), Some(1));

    let status =
        h.deliveries().watch_inbox(pb::WatchInboxRequest { unit_id: "nobody".into() }).await.err().map(|s| s.code());
    assert_eq!(status, Some(Code::NotFound));
}

/// The next notice on `stream`, within the deadline.
async fn next_notice(stream: &mut tonic::Streaming<pb::InboxNotice>) -> pb::InboxNotice {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a notice within the deadline")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

#[tokio::test]
async fn a_city_bureau_watches_province_documents() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut stream =
        h.deliveries().watch_inbox(pb::WatchInboxRequest { unit_id: ZIBO.into() }).await.expect("watch").into_inner();
    // To the province's departments, not to the cities: nothing for Zibo.
    h.issue(PROVINCE, "depts", draft("鲁财采", "山东省财政厅关于省直部门的通知", vec![group("省直各部门、单位")]))
        .await
        .expect("issue to departments");
    let to_cities = h
        .issue(PROVINCE, "cities", draft("鲁财采", "山东省财政厅关于各市的通知", vec![group("各市财政局")]))
        .await
        .expect("issue to cities");

    let notice = next_notice(&mut stream).await;
    assert_eq!(notice.kind, pb::EventKind::Delivered as i32);
    let d = notice.delivery.expect("delivery");
    assert_eq!((d.document_id.as_str(), d.recipient_unit_id.as_str()), (to_cities.id.as_str(), ZIBO));
    assert_eq!(d.state, pb::DeliveryState::Pending as i32);

    let m = pb::Remind {
        request_id: "r".into(),
        unit_id: PROVINCE.into(),
        document_id: to_cities.id.clone(),
        recipient_unit_id: ZIBO.into(),
        message: "请签收".into(),
    };
    h.deliveries().remind(h.sign(PROVINCE, &m)).await.expect("remind");
    let notice = next_notice(&mut stream).await;
    assert_eq!(notice.kind, pb::EventKind::Reminded as i32);
    let d = notice.delivery.expect("delivery");
    assert_eq!((d.document_id.as_str(), d.reminders), (to_cities.id.as_str(), 1));
}
