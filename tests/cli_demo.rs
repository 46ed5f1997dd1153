//! The demo's flow, through the CLI's client against the real server: what a newcomer sees must be right.
use std::net::SocketAddr;

use gongwen::cli::demo;
use gongwen::cli::keystore::Keystore;
use gongwen::cli::serve::operator_seal;
use gongwen::server::{self, ServerConfig};

#[tokio::test]
async fn the_demo_issues_the_corpus_chain_with_real_numbers_and_titles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let operator = Keystore::new(&keys).generate("operator", None).expect("operator key");
    let mut cfg = ServerConfig::new(dir.path().join("data"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.cache_bytes = 16 << 20;
    cfg.operator = Some(operator_seal(&operator));
    let running = server::start(cfg).await.expect("server");
    let mut log = String::new();
    let out = demo::flow(&format!("http://{}", running.addr), &keys, &mut log).await.expect("demo flow");

    assert_eq!(out.province.number, "鲁财采〔2022〕14号");
    assert_eq!(out.city.number, "淄财采〔2022〕20号");
    assert_eq!(out.district.number, "博财采〔2022〕19号");
    let title = |d: &gongwen::pb::Document| d.draft.as_ref().map(|d| d.title.clone()).unwrap_or_default();
    assert_eq!(title(&out.city), "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知");
    assert_eq!(
        title(&out.district),
        "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知"
    );
    // The province body is the corpus text, with the PDF's page breaks mended.
    let body = out.province.draft.as_ref().map(|d| d.body.clone()).unwrap_or_default();
    assert!(body.starts_with("为推进我省政府购买服务改革"));
    assert!(body.contains("将适合市场化方式提供的服务事项交由基层群众性自治组织等社会力量承担"), "{body}");

    let text = out.trace.text();
    assert!(text.contains("鲁财采〔2022〕14号  山东省财政厅关于做好政府购买服务改革重点工作的通知"));
    assert!(text.contains("→ 淄财采〔2022〕20号") && text.contains("→ 博财采〔2022〕19号"));
    let depth3 = out.trace.nodes.iter().flat_map(|n| &n.children).flat_map(|n| &n.children).count();
    assert_eq!(depth3, out.district.main_unit_ids.len());
    assert_eq!(out.trace.totals.returned, 1);
    assert!(out.trace.totals.overdue > 0, "the 2022-11-30 deadline has passed");
    assert!(log.contains("山东省审计厅 returned"));
    running.stop().await.expect("stop");
}
