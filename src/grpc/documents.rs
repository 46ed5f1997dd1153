//! `gongwen.v1.DocumentService`.
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::auth::caller;
use super::page;
use crate::app::{App, AppError, statements};
use crate::pb;
use crate::pb::document_service_server::DocumentService;

/// Download chunk size: small enough for default gRPC message limits, large enough to stream quickly.
const CHUNK: usize = 256 * 1024;

/// Serves documents and attachment files.
pub struct DocumentApi {
    pub app: Arc<App>,
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadChunk, Status>> + Send>>;

impl DocumentApi {
    /// Streams a stored file in chunks, checking its hash as it goes.
    pub async fn stream_file(app: &App, sha: String) -> Result<DownloadStream, Status> {
        let blobs = app.blobs().clone();
        let mut reader = tokio::task::spawn_blocking(move || blobs.reader(&sha, CHUNK))
            .await
            .map_err(AppError::from)?
            .map_err(AppError::from)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            loop {
                let item = match reader.next_chunk() {
                    Ok(Some(chunk)) => Ok(pb::DownloadChunk { chunk }),
                    Ok(None) => return,
                    Err(e) => Err(Status::from(AppError::from(e))),
                };
                let last = item.is_err();
                if tx.blocking_send(item).is_err() || last {
                    return;
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

/// The expected hash an upload's first message (its meta) announces, if any.
pub(crate) fn upload_meta(first: pb::UploadChunk) -> Result<Option<String>, Status> {
    let Some(pb::upload_chunk::Part::Meta(meta)) = first.part else {
        return Err(Status::invalid_argument("the first upload message must carry meta"));
    };
    match meta.expected_sha256.as_str() {
        "" => Ok(None),
        s => Ok(Some(statements::sha256("expected_sha256", s)?)),
    }
}

/// A later upload message: only file bytes may follow the meta.
pub(crate) fn upload_chunk(msg: pb::UploadChunk) -> Result<Vec<u8>, Status> {
    let Some(pb::upload_chunk::Part::Chunk(bytes)) = msg.part else {
        return Err(Status::invalid_argument("only the first upload message may carry meta"));
    };
    Ok(bytes)
}

#[tonic::async_trait]
impl DocumentService for DocumentApi {
    async fn upload_attachment(
        &self,
        req: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::UploadReply>, Status> {
        let caller = caller(&req)?;
        let mut stream = req.into_inner();
        let first = stream.message().await?.ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let expected = upload_meta(first)?;
        let blobs = self.app.blobs().clone();
        let mut writer = tokio::task::spawn_blocking(move || blobs.writer())
            .await
            .map_err(AppError::from)?
            .map_err(AppError::from)?;
        while let Some(msg) = stream.message().await? {
            let bytes = upload_chunk(msg)?;
            writer = tokio::task::spawn_blocking(move || writer.write(&bytes).map(|()| writer))
                .await
                .map_err(AppError::from)?
                .map_err(AppError::from)?;
        }
        if let Some(expected) = &expected {
            // Checked before the file is made durable under its name, so a mismatch stores nothing.
            if writer.sha256_so_far() != *expected {
                return Err(Status::invalid_argument(format!("upload does not match expected_sha256 {expected}")));
            }
        }
        let info = tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(AppError::from)?
            .map_err(AppError::from)?;
        let newly_stored = self.app.record_upload(&caller, &info.sha256, info.newly_stored).await?;
        Ok(Response::new(pb::UploadReply { sha256: info.sha256, size: info.size, newly_stored }))
    }

    type DownloadAttachmentStream = DownloadStream;

    async fn download_attachment(
        &self,
        req: Request<pb::DownloadRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        let caller = caller(&req)?;
        let sha = statements::sha256("sha256", &req.into_inner().sha256)?;
        self.app.may_download(&caller, &sha).await?;
        Ok(Response::new(Self::stream_file(&self.app, sha).await?))
    }

    async fn issue_document(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Document>, Status> {
        Ok(Response::new(self.app.issue(req.into_inner()).await?.into()))
    }

    async fn forward_document(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Document>, Status> {
        Ok(Response::new(self.app.forward(req.into_inner()).await?.into()))
    }

    async fn import_document(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::ImportReply>, Status> {
        let (doc, created) = self.app.import(req.into_inner()).await?;
        Ok(Response::new(pb::ImportReply { document: Some(doc.into()), created }))
    }

    async fn get_document(&self, req: Request<pb::GetDocumentRequest>) -> Result<Response<pb::Document>, Status> {
        let caller = caller(&req)?;
        let doc = match req.into_inner().key {
            Some(pb::get_document_request::Key::Id(id)) => self.app.readable_document(&caller, &id).await?,
            Some(pb::get_document_request::Key::Number(n)) => self.app.readable_by_number(&caller, &n).await?,
            None => return Err(Status::invalid_argument("give a document id or number")),
        };
        Ok(Response::new(doc.into()))
    }

    async fn list_issued(&self, req: Request<pb::ListIssuedRequest>) -> Result<Response<pb::ListIssuedReply>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        self.app.may_see_unit(&caller, &r.unit_id)?;
        let (size, token) = page(r.page);
        let (docs, next) = self.app.issued_by(&r.unit_id, &token, size).await?;
        Ok(Response::new(pb::ListIssuedReply {
            documents: docs.into_iter().map(Into::into).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }
}
