//! Attachment files: chunked upload and download, content addressing, limits, and use in reports.
mod common;

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
    let h = Harness::start().await;
    let data: Vec<u8> = (0..700 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let want = hex::encode(Sha256::digest(&data));
    let up = h.upload(&data).await.expect("upload");
    assert_eq!(up.sha256, want);
    assert_eq!(up.size, data.len() as u64);
    assert!(up.newly_stored);
    assert!(!h.upload(&data).await.expect("again").newly_stored, "stored once");
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
    let up = h.upload("淄博市政府购买服务改革工作进展情况".as_bytes()).await.expect("upload");
    let report = |shas: Vec<String>, rid: &str| pb::SubmitReport {
        request_id: rid.into(),
        unit_id: ZIBO.into(),
        document_id: doc.id.clone(),
        text: "见附件".into(),
        attachment_sha256: shas,
    };
    refused(&h, Code::NotFound, h.deliveries().report(h.sign(ZIBO, &report(vec!["2".repeat(64)], "r0")))).await;
    let d =
        h.deliveries().report(h.sign(ZIBO, &report(vec![up.sha256.clone()], "r1"))).await.expect("report").into_inner();
    assert_eq!(d.history.last().map(|s| s.attachment_sha256.clone()), Some(vec![up.sha256]));
    let empty = pb::SubmitReport { text: String::new(), ..report(vec![], "r2") };
    refused(&h, Code::InvalidArgument, h.deliveries().report(h.sign(ZIBO, &empty))).await;
}
