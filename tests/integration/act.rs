//! `DeliveryService.Act`: many delivery statements on one call, through the real server; and how a stopping
//! server ends the calls that stay open for as long as their clients like (Act, WatchInbox, health watches).
use crate::common;

use std::time::Duration;

use common::*;
use gongwen::pb;
use gongwen::pb::act_result::Outcome;
use gongwen::pb::delivery_service_client::DeliveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

const DEADLINE: Duration = Duration::from_secs(10);

/// An open `Act` call: statements go in one at a time, results come back.
struct Call {
    tx: mpsc::Sender<pb::SignedEnvelope>,
    results: Streaming<pb::ActResult>,
}

impl Call {
    async fn open(h: &Harness, caller: &str) -> Result<Call, tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        let mut client = DeliveryServiceClient::new(h.channel_as(caller));
        let results = client.act(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Call { tx, results })
    }

    /// Sends one statement and waits for its result.
    async fn send(&mut self, envelope: pb::SignedEnvelope) -> Result<pb::ActResult, tonic::Status> {
        self.tx.send(envelope).await.expect("the call is open");
        let next = tokio::time::timeout(DEADLINE, self.results.message()).await.expect("a result in time");
        next.map(|r| r.expect("a result, not the end of the call"))
    }

    /// Sends one statement that must be refused with `code`, and checks the store did not change.
    async fn refused(&mut self, h: &Harness, envelope: pb::SignedEnvelope, code: Code) -> String {
        let before = h.digest().await;
        let result = self.send(envelope).await.expect("a result");
        let Some(Outcome::Refusal(r)) = result.outcome else { panic!("expected a refusal, got {result:?}") };
        assert_eq!(r.code, code as i32, "{}", r.message);
        assert!(!r.message.is_empty());
        assert_eq!(before, h.digest().await, "a refused statement changed the store: {}", r.message);
        r.message
    }
}

fn delivered(result: &pb::ActResult) -> &pb::Delivery {
    match &result.outcome {
        Some(Outcome::Delivery(d)) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn ack(h: &Harness, unit: &str, doc: &str) -> pb::SignedEnvelope {
    let m = pb::Acknowledge {
        request_id: format!("act-ack-{doc}-{unit}"),
        unit_id: unit.into(),
        document_id: doc.into(),
        registration_number: "收文-7".into(),
    };
    h.sign(unit, &m)
}

fn start_handling(h: &Harness, unit: &str, doc: &str) -> pb::SignedEnvelope {
    let m = pb::StartHandling {
        request_id: format!("act-handle-{doc}-{unit}"),
        unit_id: unit.into(),
        document_id: doc.into(),
        lead_office: "政府采购监督管理科".into(),
        note: String::new(),
    };
    h.sign(unit, &m)
}

/// A harness with the bundled registry and a notice from the province to every city bureau; its id and cities.
async fn with_notice(h: &mut Harness) -> (String, Vec<String>) {
    h.load_bundled().await;
    let d = draft("鲁财采", "山东省财政厅关于做好政府采购工作的通知", vec![group("各市财政局")]);
    let doc = h.issue(PROVINCE, "notice", d).await.expect("issue").id;
    let cities = h.expand("各市财政局", PROVINCE).await;
    (doc, cities)
}

#[tokio::test]
async fn statements_apply_in_order_and_refusals_change_nothing() {
    let mut h = Harness::start().await;
    let (doc, cities) = with_notice(&mut h).await;
    let rest: Vec<&String> = cities.iter().filter(|c| c.as_str() != ZIBO).collect();
    let (other, idle, late) = (rest[0].clone(), rest[1].as_str(), rest[2].as_str());
    let mut call = Call::open(&h, ZIBO).await.expect("open");

    // 签收 then 承办 on one call: the second depends on the first.
    let first = call.send(ack(&h, ZIBO, &doc)).await.expect("result");
    assert_eq!(first.index, 0);
    assert_eq!(delivered(&first).state, pb::DeliveryState::Acknowledged as i32);
    assert_eq!(delivered(&first).history.len(), 2, "the caller's own delivery, whole");
    let second = call.send(start_handling(&h, ZIBO, &doc)).await.expect("result");
    assert_eq!(second.index, 1);
    assert_eq!(delivered(&second).state, pb::DeliveryState::Handling as i32);
    // The results are what the server holds.
    assert_eq!(h.delivery(&doc, ZIBO).await.state, pb::DeliveryState::Handling as i32);

    // Statements of another unit are checked against that unit's key, whoever holds the call.
    // A relay that may not read that unit's records learns which delivery it is and its state, no more.
    let third = call.send(ack(&h, &other, &doc)).await.expect("result");
    assert_eq!(delivered(&third).recipient_unit_id, other);
    assert_eq!(delivered(&third).state, pb::DeliveryState::Acknowledged as i32);
    assert!(delivered(&third).history.is_empty() && delivered(&third).document_number.is_empty());
    assert_eq!(h.delivery(&doc, &other).await.state, pb::DeliveryState::Acknowledged as i32);

    // Refused, each with its single RPC's status, and the call goes on.
    let why = call.refused(&h, start_handling(&h, idle, &doc), Code::FailedPrecondition).await;
    assert!(why.contains("pending") || why.contains("Pending") || why.contains("签收"), "{why}");
    let mut not_a_delivery = ack(&h, BOSHAN, &doc);
    not_a_delivery.payload_type = "gongwen.v1.IssueDocument".into();
    let why = call.refused(&h, not_a_delivery, Code::InvalidArgument).await;
    assert!(why.contains("gongwen.v1.IssueDocument") && why.contains("gongwen.v1.Acknowledge"), "{why}");
    let mut forged = ack(&h, late, &doc);
    forged.signature[0] ^= 1;
    call.refused(&h, forged, Code::Unauthenticated).await;
    let m = pb::Acknowledge {
        request_id: "act-someone-else".into(),
        unit_id: late.into(),
        document_id: doc.clone(),
        registration_number: String::new(),
    };
    call.refused(&h, h.sign(ZIBO, &m), Code::PermissionDenied).await;
    call.refused(&h, ack(&h, late, "no-such-document"), Code::NotFound).await;

    // A repeated request id records nothing, and is answered as Acknowledge answers it.
    let before = h.digest().await;
    let again = call.send(ack(&h, ZIBO, &doc)).await.expect("result");
    assert_eq!(again.index, 8);
    assert_eq!(before, h.digest().await);
    let single = h.deliveries().acknowledge(ack(&h, ZIBO, &doc)).await.expect("the single RPC").into_inner();
    assert_eq!(delivered(&again), &single);

    // Each statement is in the metrics, by type and result; the call itself is one request there.
    let app = h.server.as_ref().expect("running").app.clone();
    let text = gongwen::metrics::Metrics::new().expect("metrics").render(&app).await;
    for line in [
        r#"gongwen_act_statements_total{code="0",type="gongwen.v1.Acknowledge"} 3"#,
        r#"gongwen_act_statements_total{code="0",type="gongwen.v1.StartHandling"} 1"#,
        r#"gongwen_act_statements_total{code="9",type="gongwen.v1.StartHandling"} 1"#,
        r#"gongwen_act_statements_total{code="3",type="other"} 1"#,
        r#"gongwen_act_statements_total{code="16",type="gongwen.v1.Acknowledge"} 1"#,
        r#"gongwen_act_statements_total{code="7",type="gongwen.v1.Acknowledge"} 1"#,
        r#"gongwen_act_statements_total{code="5",type="gongwen.v1.Acknowledge"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }

    // Closing the request side ends the results.
    drop(call.tx);
    let end = tokio::time::timeout(DEADLINE, call.results.message()).await.expect("the end in time");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn a_statement_too_large_ends_the_call_after_the_earlier_ones_applied() {
    let mut h = Harness::start_configured(|c| c.max_message_bytes = 64 * 1024).await;
    let (doc, _) = with_notice(&mut h).await;
    let mut call = Call::open(&h, ZIBO).await.expect("open");
    call.send(ack(&h, ZIBO, &doc)).await.expect("the first applies");
    let before = h.digest().await;
    let mut big = start_handling(&h, ZIBO, &doc);
    big.payload.resize(65 * 1024, 0);
    let s = call.send(big).await.expect_err("the call ends");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert_eq!(before, h.digest().await);
    assert_eq!(h.delivery(&doc, ZIBO).await.state, pb::DeliveryState::Acknowledged as i32);
    // The call opened fine and ended in its trailers: the operator's metrics count it with the status it ended
    // with, which the alert on server errors and refusals reads.
    let text = h.metrics().await;
    assert!(text.contains(r#"gongwen_requests_total{code="8",method="/gongwen.v1.DeliveryService/Act"} 1"#), "{text}");
    assert!(!text.contains(r#"gongwen_requests_total{code="0",method="/gongwen.v1.DeliveryService/Act"}"#), "{text}");
    // With an Act statement made, every metric family has a value: what the operator's files in deploy/ name.
    assert_deploy_files_name_only_exported_metrics(&text);
}

/// A call whose client went away (its connection cut mid-call, with no end to its statements and no status) is
/// counted when the server lets go of it, as CANCELLED.
#[tokio::test]
async fn an_abandoned_call_is_counted_as_cancelled() {
    use tower::Layer;
    let mut h = Harness::start().await;
    let (doc, _) = with_notice(&mut h).await;
    // A connection of the call's own, whose socket the test can cut.
    let socket = std::sync::Arc::new(std::sync::Mutex::new(None::<std::net::TcpStream>));
    let addr = h.addr;
    let kept = socket.clone();
    let raw = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_with_connector(tower::service_fn(move |_| {
            let kept = kept.clone();
            async move {
                let s = std::net::TcpStream::connect(addr)?;
                s.set_nonblocking(true)?;
                *kept.lock().expect("socket") = Some(s.try_clone()?);
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::TcpStream::from_std(s)?))
            }
        }))
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(4);
    let channel = gongwen::auth::SignRequests::new(ZIBO, h.signer(ZIBO).clone()).layer(raw);
    let results = DeliveryServiceClient::new(channel).act(ReceiverStream::new(rx)).await.expect("open").into_inner();
    let mut call = Call { tx, results };
    call.send(ack(&h, ZIBO, &doc)).await.expect("applied");
    let act_counted = |text: &str| {
        text.lines().any(|l| l.starts_with("gongwen_requests_total{") && l.contains("DeliveryService/Act\""))
    };
    let open = h.metrics().await;
    assert!(!act_counted(&open), "an open call is not counted yet: {open}");
    let cut = socket.lock().expect("socket").take().expect("the call's connection");
    cut.shutdown(std::net::Shutdown::Both).expect("cut");
    let counted = r#"gongwen_requests_total{code="1",method="/gongwen.v1.DeliveryService/Act"} 1"#;
    h.metrics_until(counted, "the abandoned call was not counted").await;
    drop(call);
}

#[tokio::test]
async fn each_statement_counts_against_the_request_rate() {
    let mut h = Harness::start().await;
    let (doc, cities) = with_notice(&mut h).await;
    // A burst of 5 that never refills: the call takes one, its statements the rest.
    h.config.rate_per_sec = 0;
    h.config.rate_burst = 5;
    h.restart().await;
    let mut call = Call::open(&h, ZIBO).await.expect("open");
    let (mut applied, mut refused) = (0, 0);
    for city in cities.iter().take(12) {
        let before = h.digest().await;
        let result = call.send(ack(&h, city, &doc)).await.expect("a result, the call goes on");
        match result.outcome {
            Some(Outcome::Delivery(_)) => applied += 1,
            Some(Outcome::Refusal(r)) => {
                assert_eq!(r.code, Code::ResourceExhausted as i32, "{}", r.message);
                assert!(r.message.contains("rate"), "{}", r.message);
                assert_eq!(before, h.digest().await, "a refused statement changed the store");
                refused += 1;
            }
            None => panic!("a result without an outcome"),
        }
    }
    assert_eq!((applied, refused), (4, 8));
}

#[tokio::test]
async fn a_call_holds_a_stream_permit_until_it_ends_and_needs_a_token() {
    let mut h = Harness::start_configured(|c| c.max_streams = 1).await;
    let (doc, _) = with_notice(&mut h).await;
    let mut first = Call::open(&h, ZIBO).await.expect("open");
    first.send(ack(&h, ZIBO, &doc)).await.expect("applies");
    let s = Call::open(&h, BOSHAN).await.err().expect("a second call is over the cap");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    drop(first);
    // The server notices the hang-up asynchronously: poll with a deadline.
    // The permit comes back once the call ends.
    once_admitted("streams are open", || Call::open(&h, BOSHAN)).await;

    let (tx, rx) = mpsc::channel::<pb::SignedEnvelope>(1);
    drop(tx);
    let s = DeliveryServiceClient::new(h.raw_channel()).act(ReceiverStream::new(rx)).await.expect_err("no token");
    assert_eq!(s.code(), Code::Unauthenticated, "{}", s.message());
}

#[tokio::test]
async fn every_statement_type_it_names_is_one_it_takes() {
    let mut h = Harness::start().await;
    let (doc, _) = with_notice(&mut h).await;
    let mut call = Call::open(&h, ZIBO).await.expect("open");
    // Read as its type and refused for its bytes, not turned away as another kind of statement; nothing stored.
    for t in gongwen::app::deliveries::DELIVERY_STATEMENTS {
        let mut garbled = ack(&h, ZIBO, &doc);
        (garbled.payload_type, garbled.payload) = (t.to_owned(), vec![0xff; 3]);
        let why = call.refused(&h, garbled, Code::InvalidArgument).await;
        assert!(!why.contains("is not a delivery statement"), "{t}: {why}");
    }
}

#[tokio::test]
async fn one_caller_may_not_take_every_stream() {
    let mut h = Harness::start_configured(|c| {
        c.max_streams = 8;
        c.max_streams_per_caller = 2;
    })
    .await;
    let (doc, cities) = with_notice(&mut h).await;
    let other = cities.iter().find(|c| c.as_str() != ZIBO).expect("another city").clone();
    let watch = |unit: &str| {
        let mut c = DeliveryServiceClient::new(h.channel_as(unit));
        let req = pb::WatchInboxRequest { unit_id: unit.into() };
        async move { c.watch_inbox(req).await }
    };
    let watching = watch(ZIBO).await.expect("a first stream");
    let mut call = Call::open(&h, ZIBO).await.expect("a second");
    call.send(ack(&h, ZIBO, &doc)).await.expect("applies");

    // A third of ZIBO's, whatever its kind, is over its share; a statement sent on a refused call changes nothing.
    let before = h.digest().await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(start_handling(&h, ZIBO, &doc)).await.expect("queued");
    let s = DeliveryServiceClient::new(h.channel_as(ZIBO)).act(ReceiverStream::new(rx)).await.expect_err("third");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("the most one caller may"), "{}", s.message());
    let s = watch(ZIBO).await.expect_err("a third watch");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert_eq!(before, h.digest().await, "a refused call changed the store");
    assert_eq!(h.delivery(&doc, ZIBO).await.state, pb::DeliveryState::Acknowledged as i32);

    // Other callers still have the server's other streams.
    let mut theirs = Call::open(&h, &other).await.expect("another caller's call");
    let result = theirs.send(ack(&h, &other, &doc)).await.expect("result");
    assert_eq!(delivered(&result).state, pb::DeliveryState::Acknowledged as i32);

    // The share comes back when one of ZIBO's streams ends (noticed asynchronously: poll with a deadline).
    drop(watching);
    once_admitted("the most one caller may", || watch(ZIBO)).await;
    call.send(start_handling(&h, ZIBO, &doc)).await.expect("its open call goes on");
}

#[tokio::test]
async fn stopping_the_server_ends_open_ended_calls_and_keeps_what_they_answered() {
    let mut h = Harness::start().await;
    let (doc, cities) = with_notice(&mut h).await;
    let mut call = Call::open(&h, ZIBO).await.expect("open");
    call.send(ack(&h, ZIBO, &doc)).await.expect("applies");
    let mut watch = DeliveryServiceClient::new(h.channel_as(BOSHAN))
        .watch_inbox(pb::WatchInboxRequest { unit_id: BOSHAN.into() })
        .await
        .expect("watch")
        .into_inner();
    let mut health = tonic_health::pb::health_client::HealthClient::new(h.raw_channel())
        .watch(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health watch")
        .into_inner();
    health.message().await.expect("a status").expect("one message");
    // Without the stop reaching them, these calls would hold the server open for as long as their clients like.
    tokio::time::timeout(DEADLINE, h.stop()).await.expect("the stop does not wait on open calls");
    let end = tokio::time::timeout(DEADLINE, health.message()).await.expect("the health watch ends");
    assert_eq!(end.expect_err("ended by the stop").code(), Code::Unavailable);
    let end = tokio::time::timeout(DEADLINE, call.results.message()).await.expect("the call ends");
    assert_eq!(end.expect_err("ended by the stop").code(), Code::Unavailable);
    let end = tokio::time::timeout(DEADLINE, watch.message()).await.expect("the watch ends");
    assert_eq!(end.expect_err("ended by the stop").code(), Code::Unavailable);
    h.restart().await;
    assert_eq!(h.delivery(&doc, ZIBO).await.state, pb::DeliveryState::Acknowledged as i32);
    let other = cities.iter().find(|c| c.as_str() != ZIBO).expect("another city");
    assert_eq!(h.delivery(&doc, other).await.state, pb::DeliveryState::Pending as i32);
}
