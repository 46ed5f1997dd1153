//! Importing existing documents (issue 5) through the real server: original numbers and dates kept and reserved,
//! names matched to the registry, chains linked, operator-signed, idempotent, and refusals that change nothing.
use crate::common;

use common::*;
use gongwen::pb;
use gongwen::verify::{Trust, verify_bundle};
use tonic::Code;

const SOURCE: &[u8] = include_bytes!("../fixtures/forwarding-chain-lu-zi-bo-2022.txt");
const PROVINCE_TITLE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const CITY_TITLE: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";

struct Item<'a> {
    issuer: &'a str,
    number: &'a str,
    title: &'a str,
    main: &'a [&'a str],
    dated: &'a str,
    forwards: String,
    position: u32,
}

fn import(sha: &str, item: Item) -> pb::ImportDocument {
    pb::ImportDocument {
        request_id: format!("import-{}-{}", &sha[..12], item.position),
        issuer_name: item.issuer.into(),
        number: item.number.into(),
        draft: Some(pb::DocumentDraft {
            title: item.title.into(),
            dated: item.dated.into(),
            body: "（正文）".into(),
            disclosure: if item.forwards.is_empty() { pb::Disclosure::Public as i32 } else { 0 },
            contact: "王高文 0531-51769834".into(),
            ..Default::default()
        }),
        main_written: item.main.iter().map(|s| s.to_string()).collect(),
        cc_written: vec![],
        attachments: if item.forwards.is_empty() {
            vec![pb::ImportedAttachment {
                title: "山东省政府购买服务改革联系点名单".into(), ..Default::default()
            }]
        } else {
            vec![pb::ImportedAttachment {
                title: "被转发的文件".into(),
                document_id: item.forwards.clone(),
                ..Default::default()
            }]
        },
        forwards_document_id: item.forwards,
        source_sha256: sha.into(),
        source_name: "forwarding-chain-lu-zi-bo-2022.txt".into(),
        position: item.position,
        dated_from_printing: false,
        source_media_type: "text/plain; charset=utf-8".into(),
    }
}

fn province(sha: &str) -> pb::ImportDocument {
    import(
        sha,
        Item {
            issuer: "山东省财政厅",
            number: "鲁财采[2022]14号",
            title: PROVINCE_TITLE,
            main: &["各市财政局，省直各部门、单位"],
            dated: "2022-08-16",
            forwards: String::new(),
            position: 2,
        },
    )
}

/// The district's 博财采〔2022〕19号 under `title`, forwarding `forwards`.
fn district(sha: &str, title: &str, forwards: &str) -> pb::ImportDocument {
    import(
        sha,
        Item {
            issuer: "博山区财政局",
            number: "博财采（2022）19号",
            title,
            main: &["区直各部门、单位，各镇（街道）财政所，开发区财政审计局"],
            dated: "2022-12-22",
            forwards: forwards.to_owned(),
            position: 0,
        },
    )
}

/// The trace of `document_id` down to `max_depth`.
async fn trace(h: &Harness, document_id: &str, max_depth: u32) -> pb::TraceReply {
    h.tracer().trace(pb::TraceRequest { document_id: document_id.into(), max_depth }).await.expect("trace").into_inner()
}

async fn send(h: &Harness, m: &pb::ImportDocument) -> Result<pb::ImportReply, tonic::Status> {
    h.documents().import_document(h.operator.envelope(m)).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn the_corpus_chain_imports_with_its_numbers_links_and_trace() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let sha = h.upload(SOURCE).await.expect("upload the source").sha256;

    let p = send(&h, &province(&sha)).await.expect("province").document.expect("doc");
    assert_eq!(p.number, "鲁财采〔2022〕14号");
    assert_eq!(p.issuer_unit_id, PROVINCE);
    let src = p.imported.clone().expect("marked as imported");
    assert_eq!((src.source_sha256.as_str(), src.position), (sha.as_str(), 2));
    assert_eq!(src.operator_key_id, h.operator.key_id);
    assert!(p.main_unit_ids.contains(&ZIBO.to_string()));
    let city = import(
        &sha,
        Item {
            issuer: "淄博市财政局",
            number: "淄财采〔2022〕20号",
            title: CITY_TITLE,
            main: &["各区县财政局，高新区、经开区、文昌湖区财政局，市直各部门、单位"],
            dated: "2022-12-20",
            forwards: p.id.clone(),
            position: 1,
        },
    );
    let c = send(&h, &city).await.expect("city").document.expect("doc");
    assert_eq!(c.forwards_document_id, p.id);
    assert_eq!(c.attachments[0].document_id, p.id);
    let boshan = district(
        &sha,
        "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知",
        &c.id,
    );
    let b = send(&h, &boshan).await.expect("district").document.expect("doc");
    assert_eq!(b.number, "博财采〔2022〕19号");
    assert_eq!(b.draft.as_ref().map(|d| d.disclosure), Some(pb::Disclosure::Public as i32), "inherited");

    // The forward shows Zibo received the province's notice: acknowledged by the import, then forwarded.
    let d = h.delivery(&p.id, ZIBO).await;
    assert_eq!(d.state, pb::DeliveryState::Forwarded as i32);
    let kinds: Vec<i32> = d.history.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![pb::EventKind::Delivered as i32, pb::EventKind::Acknowledged as i32, pb::EventKind::Forwarded as i32]
    );
    assert!(d.history[0].text.contains("imported from"), "{:?}", d.history[0].text);

    let tree = trace(&h, &p.id, 0).await;
    let zibo = tree.nodes.iter().find(|n| n.unit_id == ZIBO).expect("zibo in the tree");
    assert_eq!(zibo.forwarded_as_numbers, vec!["淄财采〔2022〕20号".to_string()]);
    let bs = zibo.children.iter().find(|n| n.unit_id == BOSHAN).expect("boshan under zibo");
    assert_eq!(bs.forwarded_as_numbers, vec!["博财采〔2022〕19号".to_string()]);

    // Imported numbers are reserved: with 13 as the baseline, 鲁财采 2022 continues at 15, never 14 again.
    let baseline = pb::NumberBaseline { prefix: "鲁财采".into(), year: 2022, last_serial: 13 };
    h.apply(pb::RegistryChange { request_id: "b".into(), number_baselines: vec![baseline], ..Default::default() })
        .await
        .expect("baseline");
    let next = h
        .issue(PROVINCE, "n", draft("鲁财采", "山东省财政厅关于下一件的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    assert_eq!(next.number, "鲁财采〔2022〕15号");

    // Everything, imports included, verifies offline.
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    let trust = Trust {
        log_public_key: Some(info.log_public_key),
        operator_public_key: Some(info.operator_public_key),
        previous_checkpoint: None,
    };
    let scope = pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 });
    let bundle = h
        .audit()
        .export_bundle(pb::ExportRequest { scope: Some(scope), previous_size: 0 })
        .await
        .expect("export")
        .into_inner();
    let report = verify_bundle(&bundle, &trust);
    assert!(report.ok(), "{:?}", report.failures);
}

#[tokio::test]
async fn importing_again_creates_nothing_and_bad_imports_change_nothing() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let sha = h.upload(SOURCE).await.expect("upload").sha256;
    let first = send(&h, &province(&sha)).await.expect("first import");
    assert!(first.created);

    let before = h.digest().await;
    // The same source document again, even under a new request id: the first result, nothing recorded.
    let mut again = province(&sha);
    again.request_id = "another-run".into();
    let second = send(&h, &again).await.expect("second import");
    assert!(!second.created);
    assert_eq!(second.document.map(|d| d.id), first.document.map(|d| d.id));
    assert_eq!(h.digest().await, before);

    // The same number from a different source is a clash, not a duplicate.
    let other_sha = h.upload(b"another scan of the same notice").await.expect("upload").sha256;
    let after_upload = h.digest().await;
    let s = refused(&h, Code::AlreadyExists, send(&h, &province(&other_sha))).await;
    assert!(s.message().contains("鲁财采〔2022〕14号"), "{}", s.message());

    // Every unmatched name is listed in one answer.
    let mut unknown = province(&sha);
    unknown.number = "鲁财采〔2022〕30号".into();
    unknown.main_written = vec!["各市财政局、月球财政局，火星各部门".into()];
    let s = refused(&h, Code::NotFound, send(&h, &unknown)).await;
    assert!(s.message().contains("月球财政局") && s.message().contains("火星各部门"), "{}", s.message());

    let mut bad_number = province(&sha);
    bad_number.number = "鲁财采2022年14号".into();
    refused(&h, Code::InvalidArgument, send(&h, &bad_number)).await;

    let mut no_issuer = province(&sha);
    no_issuer.issuer_name = "不存在的厅".into();
    refused(&h, Code::NotFound, send(&h, &no_issuer)).await;

    // An unknown issuer does not hide unknown recipients: all of them in one answer.
    let mut nothing_matches = province(&sha);
    nothing_matches.issuer_name = "不存在的厅".into();
    nothing_matches.main_written = vec!["各市财政局、月球财政局".into()];
    nothing_matches.cc_written = vec!["火星各部门".into()];
    let s = refused(&h, Code::NotFound, send(&h, &nothing_matches)).await;
    for name in ["不存在的厅", "月球财政局", "火星各部门"] {
        assert!(s.message().contains(name), "{name} missing from: {}", s.message());
    }
    assert!(!s.message().contains("各市财政局"), "a matching group is not listed: {}", s.message());

    // No 成文日期 and no word that it is the printing date: refused, and the answer says what to do.
    let mut undated = province(&sha);
    if let Some(d) = undated.draft.as_mut() {
        d.dated.clear();
    }
    let s = refused(&h, Code::InvalidArgument, send(&h, &undated)).await;
    assert!(s.message().contains("dated_from_printing"), "{}", s.message());
    // Dated by printing, but with no printing date, or with a 成文日期 that is another day: refused too.
    undated.dated_from_printing = true;
    refused(&h, Code::InvalidArgument, send(&h, &undated)).await;
    let mut other_day = province(&sha);
    other_day.dated_from_printing = true;
    if let Some(d) = other_day.draft.as_mut() {
        d.printed_on = "2022-08-17".into();
    }
    refused(&h, Code::InvalidArgument, send(&h, &other_day)).await;

    let mut not_uploaded = province(&sha);
    not_uploaded.source_sha256 = "0".repeat(64);
    refused(&h, Code::NotFound, send(&h, &not_uploaded)).await;

    // A unit's seal cannot import: imports are the operator's word, never a unit's.
    let by_unit = h.sign(PROVINCE, &province(&sha));
    refused(&h, Code::Unauthenticated, h.documents().import_document(by_unit)).await;

    assert_eq!(h.digest().await, after_upload);
}

/// A source that prints no 成文日期 is dated by its 印发日期, and the record says so, so nobody takes that day for
/// the date the document states.
#[tokio::test]
async fn a_document_without_its_date_is_dated_by_its_printing_and_marked_so() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let sha = h.upload(SOURCE).await.expect("upload").sha256;
    let mut m = province(&sha);
    m.dated_from_printing = true;
    m.source_media_type = "application/pdf".into();
    if let Some(d) = m.draft.as_mut() {
        d.dated.clear();
        d.printed_by = "山东省财政厅办公室".into();
        d.printed_on = "2022-08-16".into();
    }
    let doc = send(&h, &m).await.expect("import").document.expect("doc");
    let key = pb::get_document_request::Key::Number("鲁财采〔2022〕14号".into());
    let request = pb::GetDocumentRequest { key: Some(key) };
    let again = h.documents().get_document(request).await.expect("get").into_inner();
    for d in [&doc, &again] {
        assert_eq!(d.draft.as_ref().map(|d| d.dated.as_str()), Some("2022-08-16"));
        let src = d.imported.as_ref().expect("imported");
        assert!(src.dated_from_printing);
        assert_eq!(src.source_media_type, "application/pdf");
    }
    // A document that states its date is not marked.
    let mut dated = province(&sha);
    dated.number = "鲁财采〔2022〕15号".into();
    dated.position = 3;
    dated.request_id = "import-dated".into();
    let d = send(&h, &dated).await.expect("import").document.expect("doc");
    assert_eq!(d.imported.map(|i| i.dated_from_printing), Some(false));
}

#[tokio::test]
async fn a_forward_imported_from_a_unit_that_was_not_a_recipient_is_followed_by_trace_and_not_acted_list() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let sha = h.upload(SOURCE).await.expect("upload the source").sha256;
    let p = send(&h, &province(&sha)).await.expect("province").document.expect("doc");
    assert!(!p.main_unit_ids.contains(&BOSHAN.to_string()) && !p.cc_unit_ids.contains(&BOSHAN.to_string()));
    // The district forwarded the province's notice, received outside the system: the link is recorded all the same.
    let direct = district(&sha, CITY_TITLE, &p.id);
    let b = send(&h, &direct).await.expect("district").document.expect("doc");
    assert_eq!(b.forwards_document_id, p.id);

    let request = pb::ListNotActedRequest { document_id: p.id.clone(), page_size: 10_000, page_token: String::new() };
    let list = h.tracer().list_not_acted(request).await.expect("list").into_inner();
    let mut via_district: Vec<&str> =
        list.nodes.iter().filter(|n| n.via_document_id == b.id).map(|n| n.unit_id.as_str()).collect();
    via_district.sort_unstable();
    let mut expected: Vec<&str> = b.main_unit_ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert!(!expected.is_empty());
    assert_eq!(via_district, expected, "the district's recipients are listed, one level below the notice's");
    assert!(list.nodes.iter().filter(|n| n.via_document_id == b.id).all(|n| n.depth == 2));
    assert_eq!(list.total as usize, p.main_unit_ids.len() + expected.len(), "nobody has acted yet");

    // The trace shows the district under the notice, as no recipient on record, with what it forwarded below it.
    let tree = trace(&h, &p.id, 0).await;
    let district = tree.nodes.iter().find(|n| n.unit_id == BOSHAN).expect("the district in the trace");
    assert_eq!(district.role, pb::RecipientRole::Unspecified as i32, "not a recipient on record");
    assert_eq!(district.state, pb::DeliveryState::Forwarded as i32);
    assert_eq!(district.forwarded_as_numbers, vec![b.number.clone()]);
    assert!(district.delivered_at.is_none() && district.depth == 1);
    let mut children: Vec<&str> = district.children.iter().map(|n| n.unit_id.as_str()).collect();
    children.sort_unstable();
    assert_eq!(children, expected);
    let counts = district.counts.expect("counts");
    assert_eq!(counts.delivered as usize, expected.len(), "it counts its forward's deliveries, none of its own");
    let recipients = p.main_unit_ids.len() + p.cc_unit_ids.len();
    let totals = tree.totals.expect("totals");
    assert_eq!(totals.delivered as usize, recipients + expected.len());

    // The status matrix walks the same tree.
    let matrix = h
        .supervision()
        .status_matrix(pb::MatrixRequest { document_id: p.id.clone(), with_units: false })
        .await
        .expect("matrix")
        .into_inner()
        .total
        .expect("total row");
    let row = (matrix.delivered, matrix.acknowledged, matrix.completed, matrix.returned, matrix.overdue);
    assert_eq!(row, (totals.delivered, totals.acknowledged, totals.completed, totals.returned, totals.overdue));

    // Listed down to depth 1, the district's node is collapsed with the same counts.
    let shallow = trace(&h, &p.id, 1).await;
    let collapsed = shallow.nodes.iter().find(|n| n.unit_id == BOSHAN).expect("the district");
    assert!(collapsed.collapsed && collapsed.children.is_empty());
    assert_eq!(collapsed.counts, district.counts);
    assert_eq!(shallow.totals, tree.totals);

    // The streamed trace, put back together, is the same tree.
    let request = pb::StreamTraceRequest { document_id: p.id.clone(), max_depth: 0, chunk_nodes: 3 };
    let mut stream = h.tracer().stream_trace(request).await.expect("stream").into_inner();
    let mut chunks = vec![];
    while let Some(c) = stream.message().await.expect("chunk") {
        chunks.push(c);
    }
    let streamed = gongwen::cli::assemble::assemble_trace(chunks).expect("the chunks make a tree");
    assert_eq!(streamed.nodes, tree.nodes);
}
