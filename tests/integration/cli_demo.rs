//! The demo's flow, through the CLI's client against the real server: what a newcomer sees must be right.
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use gongwen::cli::client::Client;
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
    cfg.store.cache_bytes = 16 << 20;
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

    // A 一、 heading keeps its own line instead of swallowing the paragraph after it.
    assert!(body.contains("一、充分认识推进政府购买服务改革的重要性\n政府购买服务作为"), "{body}");

    // 附件 1 is the contact-point table, one row per line: the header and 15 cities.
    let sha = out.province.attachments.first().map(|a| a.sha256.clone()).unwrap_or_default();
    let client = Client::connect(&format!("http://{}", running.addr), &keys, "operator", false).await.expect("client");
    let mut stream = client
        .documents()
        .download_attachment(gongwen::pb::DownloadRequest { sha256: sha })
        .await
        .expect("download")
        .into_inner();
    let mut table = vec![];
    while let Some(chunk) = stream.message().await.expect("chunk") {
        table.extend_from_slice(&chunk.chunk);
    }
    let table = String::from_utf8(table).expect("utf-8");
    assert_eq!(table.lines().count(), 17, "{table}");
    assert!(table.lines().any(|l| l == "淄博市\t张店区"), "{table}");

    // The not-acted list, read in pages of 2 as the CLI reads it in pages of 1,000, is the same list.
    let province = Client::connect(&format!("http://{}", running.addr), &keys, demo::PROVINCE, false)
        .await
        .expect("client as the province");
    let paged = province.not_acted(&out.province.number, 2).await.expect("pages of 2");
    let whole = province.not_acted(&out.province.number, 0).await.expect("one page");
    assert!(whole.len() > 2, "more than one page of 2: {}", whole.len());
    assert_eq!(paged, whole);

    let text = out.trace.text();
    assert!(text.contains("鲁财采〔2022〕14号  山东省财政厅关于做好政府购买服务改革重点工作的通知"));
    assert!(text.contains("→ 淄财采〔2022〕20号") && text.contains("→ 博财采〔2022〕19号"));
    let depth3 = out.trace.nodes.iter().flat_map(|n| &n.children).flat_map(|n| &n.children).count();
    assert_eq!(depth3, out.district.main_unit_ids.len());
    assert_eq!(out.trace.totals.returned, 1);
    assert!(out.trace.totals.overdue > 0, "the 2022-11-30 deadline has passed");
    assert!(log.contains("山东省审计厅 returned"));
    running.stop().await.expect("stop");

    // Every key the demo generated is private to its owner, and a second keygen cannot replace one.
    for entry in std::fs::read_dir(&keys).expect("keystore") {
        let mode = entry.expect("entry").metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let before = std::fs::read(keys.join("370304.czj.key")).expect("key file");
    assert!(Keystore::new(&keys).generate("370304.czj", None).is_err());
    assert_eq!(std::fs::read(keys.join("370304.czj.key")).expect("key file"), before);
}
