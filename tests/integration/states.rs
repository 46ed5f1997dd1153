//! Every delivery transition of domain.md §4, allowed and refused, through the real server.
use crate::common;

use common::*;
use gongwen::pb;
use gongwen::pb::DeliveryState as S;
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    Acknowledge,
    Return,
    StartHandling,
    Report,
    Complete,
    Remind,
    Forward,
}

const ACTS: [Act; 7] =
    [Act::Acknowledge, Act::Return, Act::StartHandling, Act::Report, Act::Complete, Act::Remind, Act::Forward];
const STATES: [S; 7] = [S::Pending, S::Acknowledged, S::Handling, S::Reported, S::Forwarded, S::Completed, S::Returned];

/// The table of domain.md §4: the state after `act`, or `None` when refused.
fn expected(state: S, act: Act) -> Option<S> {
    let acting = matches!(state, S::Acknowledged | S::Handling | S::Reported | S::Forwarded);
    match act {
        Act::Acknowledge => (state == S::Pending).then_some(S::Acknowledged),
        Act::Return => (state == S::Pending).then_some(S::Returned),
        Act::StartHandling => (state == S::Acknowledged).then_some(S::Handling),
        Act::Report => acting.then_some(S::Reported),
        Act::Forward => acting.then_some(S::Forwarded),
        Act::Complete => matches!(state, S::Handling | S::Reported | S::Forwarded).then_some(S::Completed),
        Act::Remind => (!matches!(state, S::Completed | S::Returned)).then_some(state),
    }
}

/// Does `act` as city bureau `unit` (remind: as the province) on `doc`; returns the delivery's new state.
async fn perform(h: &Harness, unit: &str, doc: &str, act: Act, tag: &str) -> Result<i32, tonic::Status> {
    let rid = format!("{tag}-{act:?}-{unit}-{doc}");
    let (u, d) = (unit.to_string(), doc.to_string());
    let reply = match act {
        Act::Acknowledge => {
            let m =
                pb::Acknowledge { request_id: rid, unit_id: u, document_id: d, registration_number: "登记-1".into() };
            h.deliveries().acknowledge(h.sign(unit, &m)).await
        }
        Act::Return => {
            let m =
                pb::ReturnDelivery { request_id: rid, unit_id: u, document_id: d, reason: "非本单位职责".into() };
            h.deliveries().r#return(h.sign(unit, &m)).await
        }
        Act::StartHandling => {
            let m = pb::StartHandling {
                request_id: rid,
                unit_id: u,
                document_id: d,
                lead_office: "采购科".into(),
                note: String::new(),
            };
            h.deliveries().start_handling(h.sign(unit, &m)).await
        }
        Act::Report => {
            let m = pb::SubmitReport {
                request_id: rid,
                unit_id: u,
                document_id: d,
                text: "进展情况".into(),
                attachment_sha256: vec![],
            };
            h.deliveries().report(h.sign(unit, &m)).await
        }
        Act::Complete => {
            let m = pb::Complete { request_id: rid, unit_id: u, document_id: d, note: String::new() };
            h.deliveries().complete(h.sign(unit, &m)).await
        }
        Act::Remind => {
            let m = pb::Remind {
                request_id: rid,
                unit_id: PROVINCE.into(),
                document_id: d,
                recipient_unit_id: u,
                message: "请尽快办理".into(),
            };
            h.deliveries().remind(h.sign(PROVINCE, &m)).await
        }
        Act::Forward => {
            // Each city forwards under its own prefix to its own districts.
            let prefix =
                h.registry().get_unit(pb::GetUnitRequest { id: unit.into() }).await?.into_inner().number_prefixes[0]
                    .clone();
            let m = pb::ForwardDocument {
                request_id: rid,
                unit_id: u,
                source_document_id: d.clone(),
                draft: Some(forward_draft(&prefix, vec![group("各区县财政局")])),
            };
            h.documents().forward_document(h.sign(unit, &m)).await?;
            return Ok(h.delivery(doc, unit).await.state);
        }
    };
    reply.map(|r| r.into_inner().state)
}

/// Steps that take a fresh delivery to `state`.
fn path_to(state: S) -> &'static [Act] {
    match state {
        S::Pending => &[],
        S::Acknowledged => &[Act::Acknowledge],
        S::Handling => &[Act::Acknowledge, Act::StartHandling],
        S::Reported => &[Act::Acknowledge, Act::Report],
        S::Forwarded => &[Act::Acknowledge, Act::Forward],
        S::Completed => &[Act::Acknowledge, Act::StartHandling, Act::Complete],
        S::Returned => &[Act::Return],
        S::Unspecified => &[],
    }
}

#[tokio::test]
async fn every_state_and_action_pair() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let cities = h.expand("各市财政局", PROVINCE).await;
    assert!(cities.len() >= STATES.len());
    // Give every city a district bureau, so any of them can forward to 各区县财政局.
    let mut change = pb::RegistryChange { request_id: "districts".into(), ..Default::default() };
    for city in &cities {
        let code = format!("{}99", &city[..4]);
        change.regions.push(pb::Region {
            code: code.clone(),
            name: format!("测试区{code}"),
            parent_code: city[..6].into(),
            level: pb::Level::County as i32,
        });
        change.units.push(pb::Unit {
            id: format!("{code}.czj"),
            full_name: format!("测试区{code}财政局"),
            region_code: code,
            level: pb::Level::County as i32,
            kind: pb::UnitKind::FinanceBureau as i32,
            ..Default::default()
        });
    }
    h.apply(change).await.expect("test districts");
    let mut allowed = 0;
    for act in ACTS {
        // One document per action; city i is driven to state i, then tries the action.
        let doc = h
            .issue(
                PROVINCE,
                &format!("doc-{act:?}"),
                draft("鲁财采", &format!("山东省财政厅关于{act:?}的通知"), vec![group("各市财政局")]),
            )
            .await
            .expect("issue");
        for (state, city) in STATES.iter().zip(&cities) {
            for step in path_to(*state) {
                perform(&h, city, &doc.id, *step, "setup")
                    .await
                    .unwrap_or_else(|e| panic!("driving {city} to {state:?}: {e}"));
            }
            assert_eq!(h.delivery(&doc.id, city).await.state, *state as i32, "{city} reached {state:?}");
            let before_steps = h.delivery(&doc.id, city).await.history.len();
            match expected(*state, act) {
                Some(next) => {
                    let got = perform(&h, city, &doc.id, act, "try")
                        .await
                        .unwrap_or_else(|e| panic!("{act:?} from {state:?}: {e}"));
                    assert_eq!(got, next as i32, "{act:?} from {state:?}");
                    let d = h.delivery(&doc.id, city).await;
                    assert_eq!(d.history.len(), before_steps + 1, "one step per action");
                    if act == Act::Remind {
                        assert_eq!(d.reminders, 1);
                        assert_eq!(d.history.last().map(|s| s.actor_unit_id.as_str()), Some(PROVINCE));
                    } else {
                        assert_eq!(d.history.last().map(|s| s.actor_unit_id.as_str()), Some(city.as_str()));
                    }
                    allowed += 1;
                }
                None => {
                    let s = refused(&h, Code::FailedPrecondition, perform(&h, city, &doc.id, act, "try")).await;
                    assert!(s.message().contains("cannot"), "{}", s.message());
                }
            }
        }
    }
    assert_eq!(allowed, 19, "19 of the 49 pairs are allowed");
}

#[tokio::test]
async fn retries_are_idempotent_and_reminders_need_standing() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "d", draft("鲁财采", "山东省财政厅关于重试的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    let first = h.ack(ZIBO, &doc.id).await.expect("ack");
    let before = h.digest().await;
    let again = h.ack(ZIBO, &doc.id).await.expect("the same request again");
    assert_eq!(first, again, "the retry returns the first result");
    assert_eq!(before, h.digest().await, "a retry records nothing new");
    // A new request id for the same action is a new request, and the state refuses it.
    let m = pb::Acknowledge {
        request_id: "ack-2".into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        registration_number: String::new(),
    };
    refused(&h, Code::FailedPrecondition, h.deliveries().acknowledge(h.sign(ZIBO, &m))).await;

    // A district bureau stands below the province: it may not chase a province document's recipients.
    let zibo_doc =
        h.forward(ZIBO, "f", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    let m = pb::Remind {
        request_id: "r1".into(),
        unit_id: BOSHAN.into(),
        document_id: doc.id.clone(),
        recipient_unit_id: "370100.czj".into(),
        message: String::new(),
    };
    refused(&h, Code::PermissionDenied, h.deliveries().remind(h.sign(BOSHAN, &m))).await;
    // The province stands above Zibo, so it may chase recipients of Zibo's forward.
    let m = pb::Remind {
        request_id: "r2".into(),
        unit_id: PROVINCE.into(),
        document_id: zibo_doc.id.clone(),
        recipient_unit_id: BOSHAN.into(),
        message: "请报送".into(),
    };
    let d = h.deliveries().remind(h.sign(PROVINCE, &m)).await.expect("a unit above the issuer reminds").into_inner();
    assert_eq!(d.reminders, 1);
    // Retried reminders and issues are answered from the first result, too.
    let before = h.digest().await;
    let again = h.deliveries().remind(h.sign(PROVINCE, &m)).await.expect("remind again").into_inner();
    assert_eq!(again, d, "a retried reminder is not a second reminder");
    let reissued = h
        .issue(PROVINCE, "d", draft("鲁财采", "山东省财政厅关于重试的通知", vec![group("各市财政局")]))
        .await
        .expect("issue again");
    assert_eq!((reissued.id, reissued.number), (doc.id.clone(), doc.number.clone()), "no second number is taken");
    assert_eq!(before, h.digest().await, "retries record nothing new");
}

#[tokio::test]
async fn cc_recipients_acknowledge_too() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let mut d = draft("鲁财采", "山东省财政厅关于抄送的通知", vec![group("各市财政局")]);
    d.cc_recipients = vec![unit("370000.sjt")];
    let doc = h.issue(PROVINCE, "cc", d).await.expect("issue");
    assert_eq!(doc.cc_unit_ids, vec!["370000.sjt".to_string()]);
    let got = h.ack("370000.sjt", &doc.id).await.expect("cc acknowledges");
    assert_eq!(got.role, pb::RecipientRole::Cc as i32);
    assert_eq!(got.state, S::Acknowledged as i32);
    // Cc recipients are informed, not asked to act: they never show as "not acted".
    let waiting = h
        .tracer()
        .list_not_acted(pb::ListNotActedRequest { document_id: doc.id.clone(), ..Default::default() })
        .await
        .expect("not acted")
        .into_inner();
    assert!(waiting.nodes.iter().all(|n| n.unit_id != "370000.sjt"));
}
