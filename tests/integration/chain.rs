//! The corpus chain end to end: 鲁财采〔2022〕14号 → 淄财采〔2022〕20号 → 博财采〔2022〕19号, through the real server.
use crate::common;

use common::*;
use gongwen::pb;
use prost::Message;

const PROVINCE_TITLE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const CITY_TITLE: &str = "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知";
const DISTRICT_TITLE: &str =
    "关于转发淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》的通知";

fn baselines() -> pb::RegistryChange {
    let b = |prefix: &str, last| pb::NumberBaseline { prefix: prefix.into(), year: 2022, last_serial: last };
    pb::RegistryChange {
        request_id: "baselines".into(),
        number_baselines: vec![b("鲁财采", 13), b("淄财采", 19), b("博财采", 18)],
        ..Default::default()
    }
}

struct Chain {
    province: pb::Document,
    city: pb::Document,
    district: pb::Document,
    table_sha: String,
}

async fn build_chain(h: &mut Harness) -> Chain {
    h.load_bundled().await;
    let set = h.apply(baselines()).await.expect("baselines");
    assert_eq!(set.baselines_set, 3);

    let table = "山东省政府购买服务改革联系点名单\n地级市\t联系点\n济南市\t市中区\n淄博市\t张店区\n";
    let up = h.upload_as(PROVINCE, table.as_bytes()).await.expect("upload");
    let mut d = draft(
        "鲁财采",
        "山东省财政厅 关于做好政府购买 服务改革重点工作的通知",
        vec![group("各市财政局"), group("省直各部门、单位")],
    );
    d.attachments = vec![pb::AttachmentRef {
        sha256: up.sha256.clone(),
        title: "山东省政府购买服务改革联系点名单".into(),
        media_type: "text/plain".into(),
    }];
    d.printed_by = "山东省财政厅办公室".into();
    d.printed_on = "2022-08-16".into();
    d.contact = "王高文 0531-51769834".into();
    d.recipient_deadlines = vec![pb::RecipientDeadline {
        recipient: Some(group("省直重点领域主管部门")),
        due: "2022-11-30".into(),
    }];
    let province = h.issue(PROVINCE, "p-14", d).await.expect("province issues");

    h.ack(ZIBO, &province.id).await.expect("zibo acknowledges");
    let mut fd = forward_draft(
        "淄财采",
        vec![group("各区县财政局"), group("高新区、经开区、文昌湖区财政局"), group("市直各部门、单位")],
    );
    fd.body = "现将《山东省财政厅关于做好政府购买服务改革重点工作的通知》转发给你们，请贯彻执行。".into();
    let city = h.forward(ZIBO, "z-20", &province.id, fd).await.expect("zibo forwards");

    h.ack(BOSHAN, &city.id).await.expect("boshan acknowledges");
    let mut bd =
        forward_draft("博财采", vec![group("区直各部门、单位"), group("各镇(街道)财政所"), group("开发区财政审计局")]);
    bd.dated = "2022-12-22".into();
    let district = h.forward(BOSHAN, "b-19", &city.id, bd).await.expect("boshan forwards");
    Chain { province, city, district, table_sha: up.sha256 }
}

#[tokio::test]
async fn corpus_chain_numbers_titles_recipients_and_links() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;

    assert_eq!(c.province.number, "鲁财采〔2022〕14号");
    assert_eq!(c.city.number, "淄财采〔2022〕20号");
    assert_eq!(c.district.number, "博财采〔2022〕19号");
    assert_eq!(c.province.draft.as_ref().map(|d| d.title.as_str()), Some(PROVINCE_TITLE));
    assert_eq!(c.city.draft.as_ref().map(|d| d.title.as_str()), Some(CITY_TITLE));
    assert_eq!(c.district.draft.as_ref().map(|d| d.title.as_str()), Some(DISTRICT_TITLE));

    // Groups expand to concrete units: the 16 city bureaus and the province departments, never the issuer.
    let cities: Vec<_> = c.province.main_unit_ids.iter().filter(|u| u.ends_with(".czj")).collect();
    assert_eq!(cities.len(), 16, "{:?}", c.province.main_unit_ids);
    assert!(c.province.main_unit_ids.contains(&ZIBO.to_string()));
    assert!(!c.province.main_unit_ids.contains(&PROVINCE.to_string()));
    assert!(c.city.main_unit_ids.contains(&BOSHAN.to_string()));
    // 8 district/county bureaus + 3 functional zones + 6 city departments.
    assert_eq!(c.city.main_unit_ids.len(), 8 + 3 + 6, "{:?}", c.city.main_unit_ids);
    // 5 district departments + 10 township offices + the development-zone bureau.
    assert_eq!(c.district.main_unit_ids.len(), 5 + 10 + 1, "{:?}", c.district.main_unit_ids);

    // Forwarding links and attachments: each forward carries the forwarded document as 附件 1.
    assert_eq!(c.city.forwards_document_id, c.province.id);
    assert_eq!(c.district.forwards_document_id, c.city.id);
    assert_eq!(c.province.attachments.len(), 1);
    assert_eq!(c.province.attachments[0].sha256, c.table_sha);
    assert_eq!(c.city.attachments[0].document_id, c.province.id);
    assert_eq!(c.district.attachments[0].document_id, c.city.id);
    assert_eq!(
        c.district.attachments[0].title,
        "淄博市财政局《关于转发〈山东省财政厅关于做好政府购买服务改革重点工作的通知〉的通知》（淄财采〔2022〕20号）"
    );
    // Disclosure is inherited from the forwarded document.
    assert_eq!(c.district.draft.as_ref().map(|d| d.disclosure), Some(pb::Disclosure::Public as i32));

    // The forwarder's own delivery shows the forward, with the new number.
    let zibo = h.delivery(&c.province.id, ZIBO).await;
    assert_eq!(zibo.state, pb::DeliveryState::Forwarded as i32);
    let last = zibo.history.last().expect("history");
    assert_eq!(last.forward_document_number, "淄财采〔2022〕20号");

    // The deadline for the key departments is on their deliveries.
    let with_deadline = c.province.main_unit_ids.iter().filter(|u| !u.ends_with(".czj")).count();
    assert!(with_deadline > 0);

    // Lookup by number in any bracket form.
    let by_number = h
        .documents()
        .get_document(pb::GetDocumentRequest {
            key: Some(pb::get_document_request::Key::Number("博财采[2022]19号".into())),
        })
        .await
        .expect("by number")
        .into_inner();
    assert_eq!(by_number.id, c.district.id);
}

#[tokio::test]
async fn forwarded_attachment_is_the_signed_original_and_verifies_offline() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let sha = c.city.attachments[0].sha256.clone();
    let mut stream =
        h.documents().download_attachment(pb::DownloadRequest { sha256: sha }).await.expect("download").into_inner();
    let mut bytes = vec![];
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.chunk);
    }
    let env = pb::SignedEnvelope::decode(bytes.as_slice()).expect("an envelope");
    let stmt = pb::IssueDocument::decode(env.payload.as_slice()).expect("an IssueDocument");
    assert_eq!(stmt.unit_id, PROVINCE);
    let unit = h.registry().get_unit(pb::GetUnitRequest { id: PROVINCE.into() }).await.expect("unit").into_inner();
    let key = unit.seal_keys.iter().find(|k| k.key_id == env.key_id).expect("the province's key");
    let vk =
        ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().expect("32 bytes")).expect("key");
    let sig = ed25519_dalek::Signature::from_slice(&env.signature).expect("sig");
    use ed25519_dalek::Verifier;
    vk.verify(&gongwen::domain::seal::pae(&env.payload_type, &env.payload), &sig).expect("verifies without the server");
}

#[tokio::test]
async fn trace_covers_every_depth_with_counts() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let town = c
        .district
        .main_unit_ids
        .iter()
        .find(|u| u.len() > "370304.czj".len() && u.starts_with("370304") && u.contains(".czs"))
        .cloned();
    if let Some(t) = &town {
        h.ack(t, &c.district.id).await.expect("township acknowledges");
    }
    let tree = h
        .tracer()
        .trace(pb::TraceRequest { document_id: c.province.id.clone(), max_depth: 0 })
        .await
        .expect("trace")
        .into_inner();
    assert_eq!(tree.document_number, "鲁财采〔2022〕14号");
    let zibo = tree.nodes.iter().find(|n| n.unit_id == ZIBO).expect("zibo in tree");
    assert_eq!(zibo.depth, 1);
    assert_eq!(zibo.forwarded_as_numbers, vec!["淄财采〔2022〕20号".to_string()]);
    assert!(zibo.acknowledged_at.is_some() && zibo.forwarded_at.is_some());
    let boshan = zibo.children.iter().find(|n| n.unit_id == BOSHAN).expect("boshan under zibo");
    assert_eq!(boshan.depth, 2);
    assert_eq!(boshan.via_document_number, "淄财采〔2022〕20号");
    assert_eq!(boshan.children.len(), c.district.main_unit_ids.len() + c.district.cc_unit_ids.len());
    assert!(boshan.children.iter().all(|n| n.depth == 3 && n.via_document_number == "博财采〔2022〕19号"));

    // Counts add up: every delivery in the tree is counted once.
    let total = c.province.main_unit_ids.len() + c.city.main_unit_ids.len() + c.district.main_unit_ids.len();
    let totals = tree.totals.expect("totals");
    assert_eq!(totals.delivered as usize, total);
    let expected_ack = 2 + usize::from(town.is_some());
    assert_eq!(totals.acknowledged as usize, expected_ack);
    assert_eq!(totals.acted, 2, "zibo and boshan forwarded");
    let zc = zibo.counts.expect("counts");
    assert_eq!(zc.delivered as usize, 1 + c.city.main_unit_ids.len() + c.district.main_unit_ids.len());

    // Not acted, at any depth: everyone but the two forwarders.
    let waiting = h
        .tracer()
        .list_not_acted(pb::ListNotActedRequest { document_id: c.province.id.clone(), ..Default::default() })
        .await
        .expect("not acted")
        .into_inner();
    assert_eq!(waiting.nodes.len(), total - 2);
    assert!(waiting.nodes.iter().any(|n| n.depth == 3));
    assert!(!waiting.nodes.iter().any(|n| n.unit_id == ZIBO || n.unit_id == BOSHAN));
    assert!(waiting.nodes.windows(2).all(|w| w[0].depth <= w[1].depth));
}

/// Every node of a reply, parents first.
fn all_nodes(nodes: &[pb::TraceNode]) -> Vec<&pb::TraceNode> {
    let mut out = vec![];
    for n in nodes {
        out.push(n);
        out.extend(all_nodes(&n.children));
    }
    out
}

#[tokio::test]
async fn a_depth_limited_trace_lists_fewer_levels_and_counts_them_all() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let trace = |max_depth| {
        let req = pb::TraceRequest { document_id: c.province.id.clone(), max_depth };
        let mut tracer = h.tracer();
        async move { tracer.trace(req).await.expect("trace").into_inner() }
    };
    let full = trace(0).await;
    assert!(all_nodes(&full.nodes).iter().any(|n| n.depth == 3) && !all_nodes(&full.nodes).iter().any(|n| n.collapsed));
    for max_depth in [1, 2] {
        let cut = trace(max_depth).await;
        assert_eq!(cut.totals, full.totals, "every delivery is counted at depth {max_depth}");
        let listed = all_nodes(&cut.nodes);
        assert!(listed.iter().all(|n| n.depth <= max_depth));
        let collapsed: Vec<&str> = listed.iter().filter(|n| n.collapsed).map(|n| n.unit_id.as_str()).collect();
        assert_eq!(collapsed, if max_depth == 1 { vec![ZIBO] } else { vec![BOSHAN] });
        // Each listed node has the same counts and forwards as in the full tree.
        let full_nodes = all_nodes(&full.nodes);
        for n in &listed {
            let same = full_nodes
                .iter()
                .find(|f| f.unit_id == n.unit_id && f.via_document_id == n.via_document_id)
                .expect("listed in the full tree too");
            assert_eq!((&n.counts, &n.forwarded_as_numbers), (&same.counts, &same.forwarded_as_numbers));
        }
    }
    assert_eq!(all_nodes(&trace(3).await.nodes).len(), all_nodes(&full.nodes).len(), "depth 3 is the whole tree");
}

/// Reads a streamed trace to its end: its chunks, and the tree rebuilt from their `parent` positions.
async fn stream(
    h: &Harness,
    req: pb::StreamTraceRequest,
) -> Result<(Vec<pb::TraceChunk>, Vec<pb::TraceNode>), tonic::Status> {
    let mut s = h.tracer().stream_trace(req).await?.into_inner();
    let mut chunks = vec![];
    while let Some(c) = s.message().await? {
        chunks.push(c);
    }
    let tree = gongwen::cli::assemble::assemble_trace(chunks.clone()).expect("the chunks make a tree");
    Ok((chunks, tree.nodes))
}

/// The server encodes trace replies itself, straight from the walk (`grpc::trace_reply`); what a client decodes
/// must be what the generated code would have encoded from the same tree.
#[tokio::test]
async fn trace_replies_are_the_trees_the_generated_code_encodes() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let app = h.server.as_ref().expect("server running").app.clone();
    for id in [&c.province.id, &c.city.id] {
        for max_depth in [0, 1, 2] {
            let got = h
                .tracer()
                .trace(pb::TraceRequest { document_id: id.clone(), max_depth })
                .await
                .expect("trace")
                .into_inner();
            let expected = pb::TraceReply::from(app.trace(id, max_depth).await.expect("in-process trace"));
            assert!(!got.nodes.is_empty());
            assert_eq!(got, expected, "document {id}, depth {max_depth}");

            let req = pb::StreamTraceRequest { document_id: id.clone(), max_depth, chunk_nodes: 3 };
            let (got, _) = stream(&h, req).await.expect("stream");
            let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
            app.stream_trace(id, max_depth, 3, tx, pb::TraceChunk::from).await.expect("in-process stream");
            let mut expected = vec![];
            while let Some(chunk) = rx.recv().await {
                expected.push(chunk.expect("a chunk"));
            }
            assert!(got.len() > 1);
            assert_eq!(got, expected, "document {id}, depth {max_depth}, streamed");
        }
    }
}

#[tokio::test]
async fn a_streamed_trace_is_the_trace_in_chunks() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    for max_depth in [0, 1, 2] {
        let whole = h
            .tracer()
            .trace(pb::TraceRequest { document_id: c.province.id.clone(), max_depth })
            .await
            .expect("trace")
            .into_inner();
        let size = all_nodes(&whole.nodes).len();
        for chunk_nodes in [1, 7, 0] {
            let req = pb::StreamTraceRequest { document_id: c.province.id.clone(), max_depth, chunk_nodes };
            let (chunks, tree) = stream(&h, req).await.expect("stream");
            assert_eq!(tree, whole.nodes, "depth {max_depth}, chunks of {chunk_nodes}");
            // The stream leaves a node's via document out exactly when the node before it was reached through
            // the same one.
            let sent: Vec<&pb::TraceNode> = chunks.iter().flat_map(|c| &c.nodes).collect();
            let listed = all_nodes(&whole.nodes);
            assert_eq!(sent.len(), listed.len());
            for (i, (s, n)) in sent.iter().zip(&listed).enumerate() {
                let repeats = i > 0 && listed[i - 1].via_document_id == n.via_document_id;
                let expected = if repeats { ("", "") } else { (&*n.via_document_id, &*n.via_document_number) };
                assert_eq!((&*s.via_document_id, &*s.via_document_number), expected, "node {i}");
            }
            assert!(sent.iter().any(|s| s.via_document_id.is_empty()), "the chain has siblings under one forward");
            let limit = if chunk_nodes == 0 { 2048 } else { chunk_nodes as usize };
            assert!(chunks.iter().all(|c| c.nodes.len() <= limit));
            assert!(chunks.len() >= size.div_ceil(limit), "{} chunks for {size} nodes", chunks.len());
            let (first, last) = (chunks.first().expect("a chunk"), chunks.last().expect("a chunk"));
            assert_eq!(
                (first.document_number.as_str(), first.document_title.as_str()),
                ("鲁财采〔2022〕14号", PROVINCE_TITLE)
            );
            assert!(chunks[1..].iter().all(|c| c.document_id.is_empty()), "the document comes once");
            assert_eq!(last.totals, whole.totals);
            assert!(chunks[..chunks.len() - 1].iter().all(|c| c.totals.is_none()), "the totals come last");
        }
    }
}

#[tokio::test]
async fn a_streamed_trace_is_refused_like_a_trace() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let req = |document_id: &str, chunk_nodes| pb::StreamTraceRequest {
        document_id: document_id.into(),
        max_depth: 0,
        chunk_nodes,
    };
    let code = |r: Result<(Vec<pb::TraceChunk>, Vec<pb::TraceNode>), tonic::Status>| r.expect_err("refused").code();
    let too_big = stream(&h, req(&c.province.id, 2049)).await.expect_err("refused");
    assert_eq!(too_big.code(), tonic::Code::InvalidArgument);
    assert!(too_big.message().contains("chunk_nodes: at most 2048"), "{}", too_big.message());
    let whole = |document_id: &str| pb::TraceRequest { document_id: document_id.into(), max_depth: 0 };
    let unary = h.tracer().trace(whole("no-such-document")).await.expect_err("refused").code();
    assert_eq!(
        (code(stream(&h, req("no-such-document", 0)).await), unary),
        (tonic::Code::NotFound, tonic::Code::NotFound)
    );
    // Boshan received the province's notice only through Zibo's forward: not its issuer, so not its trace.
    let mut as_boshan = pb::trace_service_client::TraceServiceClient::new(h.channel_as(BOSHAN));
    let refused = as_boshan.stream_trace(req(&c.province.id, 0)).await.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{}", refused.message());
    let unary = as_boshan.trace(whole(&c.province.id)).await.expect_err("refused");
    assert_eq!(unary.message(), refused.message());
}

#[tokio::test]
async fn a_streamed_trace_whose_reader_goes_away_ends_its_walk_and_frees_its_stream() {
    let mut h = Harness::start_configured(|c| c.max_streams = 1).await;
    let c = build_chain(&mut h).await;
    // In the app, with room for one chunk: once the reader is gone, the walk stops at its next chunk, and ends.
    let app = h.server.as_ref().expect("server running").app.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let id = c.province.id.clone();
    let walk = tokio::spawn(async move { app.stream_trace(&id, 0, 1, tx, |c| c).await });
    assert!(rx.recv().await.expect("a chunk").is_ok());
    drop(rx);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), walk).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the walk did not end quietly: {ended:?}");
    // Over gRPC, with one stream allowed: a reader that reads one chunk and goes away leaves it free again.
    let req = pb::StreamTraceRequest { document_id: c.province.id.clone(), max_depth: 0, chunk_nodes: 1 };
    let mut first = h.tracer().stream_trace(req.clone()).await.expect("stream").into_inner();
    assert!(first.message().await.expect("a chunk").is_some());
    drop(first);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match stream(&h, req.clone()).await {
            Ok((_, tree)) => {
                assert!(!tree.is_empty());
                break;
            }
            Err(s) if s.code() == tonic::Code::ResourceExhausted && tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(s) => panic!("the stream was not freed: {s}"),
        }
    }
}

/// One page of ListNotActed for the province's notice.
async fn not_acted(
    h: &Harness,
    c: &Chain,
    page_size: u32,
    page_token: &str,
) -> Result<pb::ListNotActedReply, tonic::Status> {
    let request =
        pb::ListNotActedRequest { document_id: c.province.id.clone(), page_size, page_token: page_token.into() };
    h.tracer().list_not_acted(request).await.map(tonic::Response::into_inner)
}

/// Every page from `first` on, through the tokens, as a client reads them.
async fn all_pages(h: &Harness, c: &Chain, page_size: u32) -> Vec<pb::ListNotActedReply> {
    let mut pages = vec![not_acted(h, c, page_size, "").await.expect("first page")];
    while let Some(token) = pages.last().map(|p| p.next_page_token.clone()).filter(|t| !t.is_empty()) {
        pages.push(not_acted(h, c, page_size, &token).await.expect("next page"));
    }
    pages
}

#[tokio::test]
async fn not_acted_comes_in_pages_that_cover_the_list_once() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    let whole = not_acted(&h, &c, 0, "").await.expect("one page");
    let n = whole.nodes.len();
    assert!(n > 6 && n < 1_000, "the chain's waiting recipients fit the default page: {n}");
    assert!(whole.next_page_token.is_empty());
    assert_eq!(whole.total as usize, n);

    let pages = all_pages(&h, &c, 3).await;
    assert_eq!(pages.len(), n.div_ceil(3));
    assert!(pages.iter().all(|p| p.nodes.len() <= 3 && p.total as usize == n));
    let paged: Vec<pb::TraceNode> = pages.into_iter().flat_map(|p| p.nodes).collect();
    assert_eq!(paged, whole.nodes, "the pages are the whole list, in order, once");

    // Recipients that act between two pages drop out of later pages, and nobody else is skipped: one from the
    // page already read (an offset would then skip the first of the next page) and one from a later page.
    let first = not_acted(&h, &c, 3, "").await.expect("first page");
    assert_eq!(first.total as usize, n);
    let acting = [whole.nodes[1].clone(), whole.nodes[4].clone()];
    for node in &acting {
        if node.state == pb::DeliveryState::Pending as i32 {
            h.ack(&node.unit_id, &node.via_document_id).await.expect("acknowledges");
        }
        h.start_handling(&node.unit_id, &node.via_document_id).await.expect("starts handling");
    }
    let mut rest = vec![];
    let mut token = first.next_page_token.clone();
    while !token.is_empty() {
        let page = not_acted(&h, &c, 3, &token).await.expect("next page");
        assert_eq!(page.total as usize, n - 2);
        rest.extend(page.nodes);
        token = page.next_page_token;
    }
    let gone = |node: &pb::TraceNode| {
        acting.iter().any(|a| (&a.unit_id, &a.via_document_id) == (&node.unit_id, &node.via_document_id))
    };
    let expected: Vec<&pb::TraceNode> = whole.nodes[3..].iter().filter(|node| !gone(node)).collect();
    assert_eq!(rest.len(), expected.len());
    assert!(rest.iter().zip(&expected).all(|(a, b)| (&a.unit_id, a.depth) == (&b.unit_id, b.depth)));
}

#[tokio::test]
async fn a_directive_everyone_acted_on_has_an_empty_not_acted_list() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    // The district's notice is the chain's last: its recipients start handling it, and nobody waits.
    let leaf = c.district.id.clone();
    let request = pb::ListNotActedRequest { document_id: leaf.clone(), page_size: 0, page_token: String::new() };
    let waiting = h.tracer().list_not_acted(request.clone()).await.expect("list").into_inner();
    assert!(!waiting.nodes.is_empty());
    for node in &waiting.nodes {
        if node.state == pb::DeliveryState::Pending as i32 {
            h.ack(&node.unit_id, &node.via_document_id).await.expect("acknowledges");
        }
        h.start_handling(&node.unit_id, &node.via_document_id).await.expect("starts handling");
    }
    let none = h.tracer().list_not_acted(request).await.expect("list").into_inner();
    assert!(none.nodes.is_empty() && none.next_page_token.is_empty() && none.total == 0, "{none:?}");
}

#[tokio::test]
async fn not_acted_pages_are_refused_for_a_foreign_token() {
    let mut h = Harness::start().await;
    let c = build_chain(&mut h).await;
    // Too large a page is read as the largest, as every list RPC reads it.
    let whole = not_acted(&h, &c, u32::MAX, "").await.expect("the largest page");
    assert_eq!(whole.nodes.len(), whole.total as usize);
    let garbage = refused(&h, tonic::Code::InvalidArgument, not_acted(&h, &c, 3, "not a token!")).await;
    assert!(garbage.message().contains("page_token"), "{}", garbage.message());
    // A token from the city's list is not one of the province's.
    let city = pb::ListNotActedRequest { document_id: c.city.id.clone(), page_size: 1, page_token: String::new() };
    let token = h.tracer().list_not_acted(city).await.expect("city's first page").into_inner().next_page_token;
    assert!(!token.is_empty());
    let foreign = refused(&h, tonic::Code::InvalidArgument, not_acted(&h, &c, 3, &token)).await;
    assert!(foreign.message().contains("not a next_page_token of this list"), "{}", foreign.message());
    // Paging changes nothing about who may read the list.
    let request =
        pb::ListNotActedRequest { document_id: c.province.id.clone(), page_size: 1, page_token: String::new() };
    let mut as_boshan = pb::trace_service_client::TraceServiceClient::new(h.channel_as(BOSHAN));
    let denied = refused(&h, tonic::Code::PermissionDenied, as_boshan.list_not_acted(request)).await;
    assert!(!denied.message().is_empty());
}
