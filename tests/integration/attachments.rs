//! Attachment files: chunked upload and download, content addressing, limits, use in reports, and who may attach
//! a file (its uploader, or a reader of a document listing it; knowing its hash is not enough).
use crate::common;

use common::*;
use gongwen::pb;
use sha2::{Digest, Sha256};
use tonic::Code;

fn meta(expected: &str) -> pb::UploadChunk {
    pb::UploadChunk {
        part: Some(pb::upload_chunk::Part::Meta(pb::UploadMeta {
            file_name: "a.bin".into(),
            media_type: "application/octet-stream".into(),
            expected_sha256: expected.into(),
        })),
    }
}

fn chunk(b: &[u8]) -> pb::UploadChunk {
    pb::UploadChunk { part: Some(pb::upload_chunk::Part::Chunk(b.to_vec())) }
}

async fn download_as(h: &Harness, unit: &str, sha: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut client = pb::document_service_client::DocumentServiceClient::new(h.channel_as(unit));
    let mut s = client.download_attachment(pb::DownloadRequest { sha256: sha.into() }).await?.into_inner();
    let mut out = vec![];
    while let Some(c) = s.message().await? {
        out.extend(c.chunk);
    }
    Ok(out)
}

async fn download(h: &Harness, sha: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut s = h.documents().download_attachment(pb::DownloadRequest { sha256: sha.into() }).await?.into_inner();
    let mut out = vec![];
    while let Some(c) = s.message().await? {
        out.extend(c.chunk);
    }
    Ok(out)
}

#[tokio::test]
async fn upload_and_download_round_trip_in_chunks() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let data: Vec<u8> = (0..700 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let want = hex::encode(Sha256::digest(&data));
    let up = h.upload(&data).await.expect("upload");
    assert_eq!(up.sha256, want);
    assert_eq!(up.size, data.len() as u64);
    assert!(up.newly_stored);
    assert!(!h.upload(&data).await.expect("again").newly_stored, "stored once");
    // A unit learns only about its own uploads: not whether anyone else holds the same file.
    assert!(h.upload_as(ZIBO, &data).await.expect("zibo").newly_stored, "new to zibo, though stored");
    assert!(!h.upload_as(ZIBO, &data).await.expect("zibo again").newly_stored);
    let fresh: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
    assert!(h.upload_as(BOSHAN, &fresh).await.expect("boshan").newly_stored);
    assert!(h.upload_as(ZIBO, &fresh).await.expect("zibo").newly_stored, "boshan's upload is not disclosed to zibo");
    assert_eq!(download(&h, &want).await.expect("download"), data);

    let msgs = vec![meta(&want), chunk(&data[..1000]), chunk(&data[1000..])];
    let checked = h.documents().upload_attachment(tokio_stream::iter(msgs)).await.expect("expected hash matches");
    assert_eq!(checked.into_inner().sha256, want);
}

#[tokio::test]
async fn limits_and_malformed_uploads_are_refused() {
    let h = Harness::start_with_limit(1024).await;
    assert!(h.upload(&[7u8; 1024]).await.is_ok(), "exactly at the limit");
    refused(&h, Code::ResourceExhausted, h.upload(&[8u8; 1025])).await;
    assert!(!attachment_stored(&h, &hex::encode(Sha256::digest([8u8; 1025]))).await, "nothing kept of it");
    refused(&h, Code::InvalidArgument, h.documents().upload_attachment(tokio_stream::iter(vec![chunk(b"no meta")])))
        .await;
    refused(
        &h,
        Code::InvalidArgument,
        h.documents().upload_attachment(tokio_stream::iter(Vec::<pb::UploadChunk>::new())),
    )
    .await;
    refused(&h, Code::InvalidArgument, h.documents().upload_attachment(tokio_stream::iter(vec![meta(""), meta("")])))
        .await;
    let wrong = "0".repeat(64);
    refused(
        &h,
        Code::InvalidArgument,
        h.documents().upload_attachment(tokio_stream::iter(vec![meta(&wrong), chunk(b"abc")])),
    )
    .await;
    assert!(!attachment_stored(&h, &hex::encode(Sha256::digest(b"abc"))).await, "a mismatched upload stores nothing");
    refused(
        &h,
        Code::InvalidArgument,
        h.documents().upload_attachment(tokio_stream::iter(vec![meta("zz"), chunk(b"abc")])),
    )
    .await;
    assert_eq!(download(&h, &"1".repeat(64)).await.map_err(|s| s.code()), Err(Code::NotFound));
    assert_eq!(download(&h, "../../etc/passwd").await.map_err(|s| s.code()), Err(Code::InvalidArgument));
}

#[tokio::test]
async fn reports_carry_uploaded_attachments() {
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let doc = h
        .issue(PROVINCE, "d", draft("鲁财采", "山东省财政厅关于报送材料的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &doc.id).await.expect("ack");
    let up = h.upload_as(ZIBO, "淄博市政府购买服务改革工作进展情况".as_bytes()).await.expect("upload");
    let report = |shas: Vec<String>, rid: &str| pb::SubmitReport {
        request_id: rid.into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        text: "见附件".into(),
        attachment_sha256: shas,
    };
    // Never uploaded: refused like a file of someone else's, so the answer says nothing of what is stored.
    refused(&h, Code::PermissionDenied, h.deliveries().report(h.sign(ZIBO, &report(vec!["2".repeat(64)], "r0")))).await;
    let d =
        h.deliveries().report(h.sign(ZIBO, &report(vec![up.sha256.clone()], "r1"))).await.expect("report").into_inner();
    assert_eq!(d.history.last().map(|s| s.attachment_sha256.clone()), Some(vec![up.sha256]));
    let empty = pb::SubmitReport { text: String::new(), ..report(vec![], "r2") };
    refused(&h, Code::InvalidArgument, h.deliveries().report(h.sign(ZIBO, &empty))).await;
}

#[tokio::test]
async fn a_file_is_attached_only_by_its_uploader_or_a_reader_of_a_document_listing_it() {
    const JINAN: &str = "370100.czj";
    let mut h = Harness::start().await;
    h.load_bundled().await;
    let secret_bytes = "济南市联系点名单（不予公开）".as_bytes();
    let secret = h.upload_as(PROVINCE, secret_bytes).await.expect("upload").sha256;
    let with = |mut d: pb::DocumentDraft, sha: &str| {
        d.attachments =
            vec![pb::AttachmentRef { sha256: sha.into(), title: "名单".into(), media_type: String::new() }];
        d
    };
    let mut to_jinan = with(draft("鲁财采", "山东省财政厅关于济南市联系点的通知", vec![unit(JINAN)]), &secret);
    to_jinan.disclosure = pb::Disclosure::NotPublic as i32;
    let listed = h.issue(PROVINCE, "p", to_jinan).await.expect("the uploader attaches its file");
    let notice = h
        .issue(PROVINCE, "q", draft("鲁财采", "山东省财政厅关于报送材料的通知", vec![group("各市财政局")]))
        .await
        .expect("issue");
    h.ack(ZIBO, &notice.id).await.expect("ack");

    // Knowing the hash: refused in an issue, a forward and a report, and nothing is stored.
    let boshan_draft = with(draft("博财采", "博山区财政局关于名单的通知", vec![group("区直各部门、单位")]), &secret);
    let s = refused(&h, Code::PermissionDenied, h.issue(BOSHAN, "steal", boshan_draft)).await;
    assert!(s.message().contains("uploaded itself"), "{}", s.message());
    let nowhere = "3".repeat(64);
    let guess = with(draft("博财采", "博山区财政局关于名单的通知", vec![group("区直各部门、单位")]), &nowhere);
    let n = refused(&h, Code::PermissionDenied, h.issue(BOSHAN, "guess", guess)).await;
    assert_eq!(n.message().replace(&nowhere, "H"), s.message().replace(&secret, "H"), "stored or not, one answer");
    let fwd = with(forward_draft("淄财采", vec![group("各区县财政局")]), &secret);
    refused(&h, Code::PermissionDenied, h.forward(ZIBO, "steal-fwd", &notice.id, fwd.clone())).await;
    let report = |unit: &str, doc: &str, rid: &str| pb::SubmitReport {
        request_id: rid.into(),
        unit_id: unit.into(),
        document_id: doc.into(),
        text: "见附件".into(),
        attachment_sha256: vec![secret.clone()],
    };
    let steal = report(ZIBO, &notice.id, "steal-report");
    refused(&h, Code::PermissionDenied, h.deliveries().report(h.sign(ZIBO, &steal))).await;
    for unit in [BOSHAN, ZIBO] {
        assert_eq!(download_as(&h, unit, &secret).await.map_err(|s| s.code()), Err(Code::PermissionDenied));
    }

    // A reader of a document listing the file may attach it (Jinan reports with it).
    h.ack(JINAN, &listed.id).await.expect("ack");
    h.deliveries().report(h.sign(JINAN, &report(JINAN, &listed.id, "r"))).await.expect("a reader attaches");
    // Holding the bytes is what counts: once Zibo uploads them itself, it may attach and download them.
    h.upload_as(ZIBO, secret_bytes).await.expect("the same content, uploaded by Zibo");
    assert_eq!(download_as(&h, ZIBO, &secret).await.expect("its own upload"), secret_bytes);
    let forwarded = h.forward(ZIBO, "fwd", &notice.id, fwd).await.expect("forward with its own upload");
    assert_eq!(forwarded.attachments.last().map(|a| a.sha256.as_str()), Some(secret.as_str()));
    assert_eq!(download_as(&h, BOSHAN, &secret).await.expect("Boshan received the forward"), secret_bytes);
}
