//! `gongwen ack` with several documents or `--all-pending`: the binary against the real server, on one Act call.
use crate::common;

use std::process::Output;

use common::{PROVINCE, ZIBO, cli_server};
use gongwen::cli::client::Client;
use gongwen::pb;

fn gongwen(addr: &str, keys: &std::path::Path, args: &[&str]) -> Output {
    let keys = keys.to_string_lossy();
    let mut all = vec!["--server", addr, "--keys", &keys];
    all.extend_from_slice(args);
    common::gongwen().args(all).output().expect("run gongwen")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The province issues a notice to 淄博市财政局; its id.
async fn notice(c: &Client, n: usize) -> String {
    let m = pb::IssueDocument {
        request_id: format!("notice-{n}"),
        unit_id: PROVINCE.into(),
        draft: Some(pb::DocumentDraft {
            number_prefix: "鲁财采".into(),
            number_year: 2022,
            title: format!("山东省财政厅关于第{n}批采购事项的通知"),
            genre: pb::Genre::Notice as i32,
            main_recipients: vec![pb::Recipient { target: Some(pb::recipient::Target::UnitId(ZIBO.into())) }],
            dated: "2022-08-16".into(),
            disclosure: pb::Disclosure::Public as i32,
            ..Default::default()
        }),
    };
    c.documents().issue_document(c.sign(PROVINCE, &m).expect("sign")).await.expect("issue").into_inner().id
}

async fn state(c: &Client, doc: &str) -> i32 {
    let req = pb::GetDeliveryRequest { document_id: doc.into(), recipient_unit_id: ZIBO.into() };
    c.deliveries().get_delivery(req).await.expect("delivery").into_inner().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_pending_and_several_documents_are_acknowledged_on_one_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (running, addr, c) = cli_server(dir.path()).await;
    let keys = dir.path().join("keys");
    let (first, second) = (notice(&c, 1).await, notice(&c, 2).await);

    let out = tokio::task::spawn_blocking({
        let (addr, keys) = (addr.clone(), keys.clone());
        move || gongwen(&addr, &keys, &["ack", "--as", ZIBO, "--all-pending"])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 acknowledged, 0 refused"), "{}", text(&out));
    assert!(text(&out).contains("鲁财采〔2022〕1号"), "{}", text(&out));
    for doc in [&first, &second] {
        assert_eq!(state(&c, doc).await, pb::DeliveryState::Acknowledged as i32);
    }

    // Nothing pending is nothing to do.
    let out = tokio::task::spawn_blocking({
        let (addr, keys) = (addr.clone(), keys.clone());
        move || gongwen(&addr, &keys, &["ack", "--as", ZIBO, "--all-pending"])
    })
    .await
    .expect("join");
    assert!(out.status.success() && text(&out).contains("0 acknowledged, 0 refused"), "{}", text(&out));

    // Named documents: one applies, an unknown id and an unknown number are refused, and the exit status says so.
    let third = notice(&c, 3).await;
    let out = tokio::task::spawn_blocking({
        let (addr, keys, third) = (addr.clone(), keys.clone(), third.clone());
        move || gongwen(&addr, &keys, &["ack", "--as", ZIBO, "d-nothing", &third, "鲁财采〔2099〕1号"])
    })
    .await
    .expect("join");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("1 acknowledged, 2 refused") && said.contains("NOT_FOUND"), "{said}");
    assert_eq!(state(&c, &third).await, pb::DeliveryState::Acknowledged as i32);

    // A registration number belongs to one document.
    let out = tokio::task::spawn_blocking({
        let (addr, keys) = (addr.clone(), keys.clone());
        move || gongwen(&addr, &keys, &["ack", "--as", ZIBO, "a", "b", "--registration", "7"])
    })
    .await
    .expect("join");
    assert!(!out.status.success() && text(&out).contains("one document"), "{}", text(&out));
    running.stop().await.expect("stop");
}
