//! The verifiable log through the real server: proofs against independently computed roots, bundles the offline
//! verifier accepts, and tampered bundles it rejects with the right message.
use crate::common;

use common::*;
use gongwen::app::log::{BUNDLE_FRAME_BYTES, MIN_ENTRY_BYTES};
use gongwen::domain::merkle;
use gongwen::pb;
use gongwen::verify::{Trust, verify_bundle};
use tonic::Code;

async fn chain(h: &mut Harness) -> (pb::Document, pb::Document) {
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "p", draft("鲁财采", "山东省财政厅关于审计的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("ack");
    let fwd =
        h.forward(ZIBO, "f", &doc.id, forward_draft("淄财采", vec![group("各区县财政局")])).await.expect("forward");
    h.ack(BOSHAN, &fwd.id).await.expect("ack");
    h.ack("370100.czj", &doc.id).await.expect("ack");
    (doc, fwd)
}

async fn all_leaves(h: &Harness) -> Vec<merkle::Hash> {
    let mut s =
        h.audit().stream_log(pb::StreamLogRequest { from_seq: 1, limit: 0 }).await.expect("stream").into_inner();
    let mut leaves = vec![];
    while let Some(rec) = s.message().await.expect("record") {
        assert_eq!(rec.event_seq, leaves.len() as u64 + 1, "records come in order");
        leaves.push(merkle::leaf_hash(&rec.entry));
    }
    leaves
}

async fn trust(h: &Harness) -> Trust {
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    Trust {
        log_public_key: Some(info.log_public_key),
        operator_public_key: Some(info.operator_public_key),
        previous_checkpoint: None,
    }
}

async fn bundle(h: &Harness, scope: pb::export_request::Scope, previous_size: u64) -> pb::AuditBundle {
    h.audit().export_bundle(pb::ExportRequest { scope: Some(scope), previous_size }).await.expect("export").into_inner()
}

fn whole() -> pb::export_request::Scope {
    pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 })
}

#[tokio::test]
async fn proofs_match_roots_computed_from_the_streamed_log() {
    let mut h = Harness::start().await;
    let (doc, _) = chain(&mut h).await;
    // A long event (its leaf hash is stored, where a short one's is read off the event) between short ones.
    let long = pb::SubmitReport {
        request_id: "long-report".into(),
        unit_id: "370100.czj".into(),
        document_id: doc.id.clone(),
        text: "项目进展情况。".repeat(1200),
        attachment_sha256: vec![],
    };
    h.deliveries().report(h.sign("370100.czj", &long)).await.expect("a long report");
    h.ack("370200.czj", &doc.id).await.expect("ack");
    // Past 32 events: the tree then has stored nodes (level 4 and up) over nodes computed from events (below).
    for city in ["370400.czj", "370500.czj", "370600.czj", "370700.czj", "370800.czj", "370900.czj", "371000.czj"] {
        h.ack(city, &doc.id).await.expect("ack");
        h.start_handling(city, &doc.id).await.expect("starts handling");
        h.report(city, &doc.id).await.expect("reports");
        h.complete(city, &doc.id).await.expect("completes");
    }
    let leaves = all_leaves(&h).await;
    let n = leaves.len() as u64;
    assert!(n > 32, "{n} events");
    let cp = h.audit().get_checkpoint(pb::GetCheckpointRequest {}).await.expect("checkpoint").into_inner();
    let info = h.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("info").into_inner();
    let opened = gongwen::app::log::open_checkpoint(&cp, &info.log_public_key).expect("signed by the log key");
    assert_eq!(opened.tree_size, n);
    assert_eq!(opened.root_hash, merkle::reference_root(&leaves).to_vec());
    assert_eq!(opened.origin, info.log_origin);

    for size in 1..=n {
        let root = merkle::reference_root(&leaves[..size as usize]);
        for seq in 1..=size {
            let p = h
                .audit()
                .get_inclusion_proof(pb::InclusionProofRequest { event_seq: seq, tree_size: size })
                .await
                .expect("proof")
                .into_inner();
            let path: Vec<merkle::Hash> = p.hashes.iter().map(|x| x.as_slice().try_into().expect("32 bytes")).collect();
            assert_eq!(merkle::leaf_hash(&p.entry), leaves[seq as usize - 1]);
            assert!(
                merkle::verify_inclusion(seq - 1, size, &leaves[seq as usize - 1], &path, &root),
                "#{seq} in {size}"
            );
        }
        for old in 1..=size {
            let p = h
                .audit()
                .get_consistency_proof(pb::ConsistencyProofRequest { old_size: old, new_size: size })
                .await
                .expect("proof")
                .into_inner();
            let path: Vec<merkle::Hash> = p.hashes.iter().map(|x| x.as_slice().try_into().expect("32 bytes")).collect();
            let old_root = merkle::reference_root(&leaves[..old as usize]);
            assert!(merkle::verify_consistency(old, size, &old_root, &root, &path), "{old} → {size}");
        }
    }
    let latest = h
        .audit()
        .get_inclusion_proof(pb::InclusionProofRequest { event_seq: 1, tree_size: 0 })
        .await
        .expect("proof")
        .into_inner();
    assert!(latest.checkpoint.is_some());
    refused(
        &h,
        Code::NotFound,
        h.audit().get_inclusion_proof(pb::InclusionProofRequest { event_seq: n + 1, tree_size: 0 }),
    )
    .await;
    refused(
        &h,
        Code::InvalidArgument,
        h.audit().get_inclusion_proof(pb::InclusionProofRequest { event_seq: 1, tree_size: n + 5 }),
    )
    .await;
    refused(
        &h,
        Code::InvalidArgument,
        h.audit().get_consistency_proof(pb::ConsistencyProofRequest { old_size: 0, new_size: 0 }),
    )
    .await;

    // The log and its proofs survive a restart unchanged.
    h.restart().await;
    assert_eq!(all_leaves(&h).await, leaves);
}

#[tokio::test]
async fn honest_bundles_verify() {
    let mut h = Harness::start().await;
    let (doc, fwd) = chain(&mut h).await;
    let trust = trust(&h).await;
    let b = bundle(&h, pb::export_request::Scope::DocumentId(doc.id.clone()), 0).await;
    assert!(!b.complete);
    let report = verify_bundle(&b, &trust);
    assert!(report.ok(), "{:?}", report.failures);
    // Registry change + issue + 2 acks + forward + Boshan's ack of the forward.
    assert_eq!(report.entries, 6);
    assert_eq!(report.signatures_ok, 6);
    let docs: Vec<String> = b
        .entries
        .iter()
        .filter_map(|e| <pb::LogEntry as prost::Message>::decode(e.entry.as_slice()).ok())
        .map(|e| e.document_id)
        .collect();
    assert!(docs.contains(&fwd.id), "the forwarded document's events are in the bundle");

    let full = bundle(&h, whole(), 0).await;
    assert!(full.complete);
    let report = verify_bundle(&full, &trust);
    assert!(report.ok(), "{:?}", report.failures);

    // Keep a checkpoint, let the log grow, and check it only grew.
    let earlier = full.checkpoint.clone().expect("checkpoint");
    h.ack("370200.czj", &doc.id).await.expect("more events");
    let later = bundle(&h, whole(), full.entries.len() as u64).await;
    let with_previous = Trust { previous_checkpoint: Some(earlier), ..trust.clone() };
    let report = verify_bundle(&later, &with_previous);
    assert!(report.ok(), "{:?}", report.failures);
}

/// A document's bundle holds exactly the log's events about the documents of its tree, every kind of action on
/// their deliveries included, and the registry changes; nothing about another document.
#[tokio::test]
async fn a_document_bundle_holds_exactly_its_trees_events() {
    let mut h = Harness::start().await;
    let (doc, fwd) = chain(&mut h).await;
    h.start_handling(BOSHAN, &fwd.id).await.expect("start");
    h.report(BOSHAN, &fwd.id).await.expect("report");
    h.complete(BOSHAN, &fwd.id).await.expect("complete");
    h.return_delivery("370200.czj", &doc.id).await.expect("return");
    let other = h
        .issue(PROVINCE, "other", draft("鲁财采", "山东省财政厅关于另一事项的通知", vec![group("各市财政局")]))
        .await
        .expect("another document");
    h.ack(ZIBO, &other.id).await.expect("ack the other");

    let tree = [doc.id.clone(), fwd.id.clone()];
    let mut expected = vec![];
    for rec in bundle(&h, whole(), 0).await.entries {
        let entry = <pb::LogEntry as prost::Message>::decode(rec.entry.as_slice()).expect("entry");
        if entry.document_id.is_empty() || tree.contains(&entry.document_id) {
            expected.push(rec.event_seq);
        }
    }
    let got: Vec<u64> = bundle(&h, pb::export_request::Scope::DocumentId(doc.id.clone()), 0)
        .await
        .entries
        .iter()
        .map(|e| e.event_seq)
        .collect();
    assert_eq!(got, expected);
    // The registry change, the issue, 2 acks and a return of it, the forward, and Boshan's ack, start, report and
    // completion of that.
    assert_eq!(got.len(), 10);
    let report =
        verify_bundle(&bundle(&h, pb::export_request::Scope::DocumentId(doc.id.clone()), 0).await, &trust(&h).await);
    assert!(report.ok(), "{:?}", report.failures);
}

fn checks(report: &gongwen::verify::Report) -> Vec<(Option<u64>, &'static str)> {
    report.failures.iter().map(|f| (f.event_seq, f.check)).collect()
}

#[tokio::test]
async fn tampered_bundles_are_rejected_precisely() {
    let mut h = Harness::start().await;
    let (doc, _) = chain(&mut h).await;
    let trust = trust(&h).await;
    let honest = bundle(&h, pb::export_request::Scope::DocumentId(doc.id.clone()), 0).await;
    let full = bundle(&h, whole(), 0).await;

    // One flipped byte anywhere in any entry is caught and pinned to that entry.
    for (i, e) in honest.entries.iter().enumerate() {
        for at in [0, e.entry.len() / 2, e.entry.len() - 1] {
            let mut b = honest.clone();
            b.entries[i].entry[at] ^= 0x01;
            let report = verify_bundle(&b, &trust);
            assert!(!report.ok(), "flip at {at} of entry {i}");
            assert!(
                report.failures.iter().any(|f| f.event_seq == Some(e.event_seq) && f.check == "inclusion"),
                "{:?}",
                report.failures
            );
        }
    }
    // The same in a complete bundle: the recomputed root no longer matches.
    let mut b = full.clone();
    let last = b.entries.len() - 1;
    b.entries[last].entry[3] ^= 0x80;
    assert!(checks(&verify_bundle(&b, &trust)).contains(&(None, "root")));

    // A removed event.
    let mut b = full.clone();
    let removed = b.entries.remove(2).event_seq;
    let report = verify_bundle(&b, &trust);
    assert!(checks(&report).contains(&(Some(removed), "missing")), "{:?}", report.failures);

    // A reordered pair.
    let mut b = full.clone();
    b.entries.swap(3, 4);
    let report = verify_bundle(&b, &trust);
    assert!(report.failures.iter().any(|f| f.check == "order"), "{:?}", report.failures);

    // A checkpoint signed by someone else, or for another log key than the trusted one.
    let mut b = honest.clone();
    if let Some(cp) = b.checkpoint.as_mut() {
        cp.signature[5] ^= 1;
    }
    assert_eq!(checks(&verify_bundle(&b, &trust)), vec![(None, "checkpoint")]);
    let mut b = honest.clone();
    b.log_public_key = vec![7u8; 32];
    assert!(checks(&verify_bundle(&b, &trust)).contains(&(None, "checkpoint")));

    // An older checkpoint from a different history (a fork).
    let mut h2 = Harness::start().await;
    chain(&mut h2).await;
    let other = bundle(&h2, whole(), 0).await;
    let forked = Trust { previous_checkpoint: other.checkpoint.clone(), ..trust.clone() };
    let report = verify_bundle(&full, &forked);
    assert!(report.failures.iter().any(|f| f.check == "consistency"), "{:?}", report.failures);
}

#[tokio::test]
async fn an_auditor_reads_only_the_log_entries_of_its_region_with_the_gaps_showing() {
    const AUDITOR: &str = "370300.sjj";
    let mut h = Harness::start().await;
    let (doc, fwd) = chain(&mut h).await;
    let grant = pb::RegistryChange {
        request_id: "grant".into(),
        auditor_grants: vec![pb::AuditorGrant { unit_id: AUDITOR.into(), region_code: "370300".into() }],
        ..Default::default()
    };
    h.apply(grant).await.expect("grant");
    // Issuer and recipients all at the province: nothing of it lies in Zibo.
    let outside = h
        .issue(PROVINCE, "o", draft("鲁财采", "山东省财政厅关于省直单位的通知", vec![group("省直各部门、单位")]))
        .await
        .expect("issue");
    let mut auditor = gongwen::pb::audit_service_client::AuditServiceClient::new(h.channel_as(AUDITOR));

    let n = all_leaves(&h).await.len() as u64;
    let mut s = auditor.stream_log(pb::StreamLogRequest { from_seq: 1, limit: 0 }).await.expect("stream").into_inner();
    let mut seen = vec![];
    while let Some(rec) = s.message().await.expect("record") {
        let entry = <pb::LogEntry as prost::Message>::decode(rec.entry.as_slice()).expect("entry");
        assert_eq!(entry.event_seq, rec.event_seq, "each entry keeps its own number");
        seen.push((rec.event_seq, entry.document_id));
    }
    let seqs: Vec<u64> = seen.iter().map(|(q, _)| *q).collect();
    assert!(seqs.contains(&doc.event_seq) && seqs.contains(&fwd.event_seq), "{seqs:?}");
    assert!(!seqs.contains(&outside.event_seq), "the province-only notice is not the auditor's");
    assert!(seen.iter().all(|(_, d)| d.is_empty() || *d == doc.id || *d == fwd.id), "{seen:?}");
    assert_eq!(seen.iter().filter(|(_, d)| d.is_empty()).count(), 2, "both registry changes");
    assert!((seqs.len() as u64) < n);

    // Its proofs: the same refusal for an entry outside and for one past the end.
    let proof = |seq: u64| pb::InclusionProofRequest { event_seq: seq, tree_size: 0 };
    let refused = auditor.get_inclusion_proof(proof(outside.event_seq)).await.expect_err("outside");
    let missing = auditor.get_inclusion_proof(proof(n + 5)).await.expect_err("past the end");
    assert_eq!((refused.code(), missing.code()), (Code::PermissionDenied, Code::PermissionDenied));
    assert_eq!(refused.message(), format!("no event #{} that you may read", outside.event_seq));
    assert_eq!(missing.message(), format!("no event #{} that you may read", n + 5));
    auditor.get_inclusion_proof(proof(fwd.event_seq)).await.expect("an event of its region");

    // A range export holds the same events, each proved, and the offline verifier accepts it.
    let req = pb::ExportRequest { scope: Some(whole()), previous_size: 0 };
    let b = auditor.export_bundle(req).await.expect("export").into_inner();
    assert!(!b.complete);
    assert_eq!(b.entries.iter().map(|e| e.event_seq).collect::<Vec<_>>(), seqs);
    let report = verify_bundle(&b, &trust(&h).await);
    assert!(report.ok(), "{:?}", report.failures);
    assert!(bundle(&h, whole(), 0).await.complete, "the operator's is the whole log");
}

#[tokio::test]
async fn a_bundle_over_the_size_limit_is_refused_and_a_stretch_of_the_log_still_exports() {
    let mut h = Harness::start().await;
    let (doc, _) = chain(&mut h).await;
    let by_doc = || pb::export_request::Scope::DocumentId(doc.id.clone());
    let size = bundle(&h, whole(), 0).await.entries.len() as u64;
    let last = || pb::export_request::Scope::Range(pb::SeqRange { from_seq: size, to_seq: size });
    let doc_len = prost::Message::encoded_len(&bundle(&h, by_doc(), 0).await);
    let last_len = prost::Message::encoded_len(&bundle(&h, last(), 0).await);
    assert!(
        doc_len > last_len + 1000,
        "the document's bundle ({doc_len} bytes) is well over the stretch's ({last_len})"
    );

    h.config.max_bundle_bytes = BUNDLE_FRAME_BYTES + (doc_len + last_len) / 2;
    h.restart().await;
    let before = h.digest().await;
    let s = h
        .audit()
        .export_bundle(pb::ExportRequest { scope: Some(by_doc()), previous_size: 0 })
        .await
        .expect_err("over the limit");
    assert_eq!(s.code(), Code::ResourceExhausted, "{}", s.message());
    assert!(s.message().contains("it has 6 events") && s.message().contains("stretches"), "{}", s.message());
    // The stretch comes with the registry change, in the log's order, and verifies.
    let b = bundle(&h, last(), 0).await;
    assert_eq!(b.entries.iter().map(|e| e.event_seq).collect::<Vec<_>>(), vec![1, size]);
    let report = verify_bundle(&b, &trust(&h).await);
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(before, h.digest().await, "a refused export changed the store");
}

#[tokio::test]
async fn an_auditor_s_export_stops_once_the_events_it_may_read_are_more_than_a_bundle_holds() {
    const AUDITOR: &str = "370300.sjj";
    let mut h = Harness::start().await;
    chain(&mut h).await;
    let grant = pb::RegistryChange {
        request_id: "grant".into(),
        auditor_grants: vec![pb::AuditorGrant { unit_id: AUDITOR.into(), region_code: "370300".into() }],
        ..Default::default()
    };
    h.apply(grant).await.expect("grant");
    let export = |h: &Harness| {
        let mut auditor = pb::audit_service_client::AuditServiceClient::new(h.channel_as(AUDITOR));
        async move { auditor.export_bundle(pb::ExportRequest { scope: Some(whole()), previous_size: 0 }).await }
    };
    let readable = export(&h).await.expect("the auditor's events").into_inner().entries.len();
    assert!(readable > 3, "{readable} events");

    // Room for two entries at the least: the auditor's events are more, and it is told so before any is read whole.
    h.config.max_bundle_bytes = 2 * MIN_ENTRY_BYTES + MIN_ENTRY_BYTES / 2;
    h.restart().await;
    let s = refused(&h, Code::ResourceExhausted, export(&h)).await;
    assert!(s.message().contains("the events you may read from #1"), "{}", s.message());
}
