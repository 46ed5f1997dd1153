//! `gongwen.v1.PublicService`: documents marked 主动公开, for anyone, without a token.
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::documents::DocumentApi;
use crate::app::{App, AppError, statements};
use crate::domain::model::{Disclosure, Document};
use crate::pb;
use crate::pb::public_service_server::PublicService;

/// Serves public documents.
pub struct PublicApi {
    pub app: Arc<App>,
}

/// The same answer for "does not exist" and "is not public", so nothing leaks about documents that are not.
fn not_public(what: &str) -> Status {
    Status::not_found(format!("no public document {what:?}"))
}

impl PublicApi {
    async fn public(&self, key: Option<pb::get_document_request::Key>) -> Result<Document, Status> {
        let (found, what) = match key {
            Some(pb::get_document_request::Key::Id(id)) => (self.app.document(&id).await, id),
            Some(pb::get_document_request::Key::Number(n)) => (self.app.document_by_number(&n).await, n),
            None => return Err(Status::invalid_argument("give a document id or number")),
        };
        match found {
            Ok(d) if d.disclosure == Disclosure::Public => Ok(d),
            Ok(_) | Err(AppError::NotFound(_)) => Err(not_public(&what)),
            Err(e) => Err(e.into()),
        }
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadChunk, Status>> + Send>>;

#[tonic::async_trait]
impl PublicService for PublicApi {
    async fn get_public_document(
        &self,
        req: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        Ok(Response::new(self.public(req.into_inner().key).await?.into()))
    }

    type DownloadPublicAttachmentStream = ChunkStream;

    async fn download_public_attachment(
        &self,
        req: Request<pb::PublicAttachmentRequest>,
    ) -> Result<Response<Self::DownloadPublicAttachmentStream>, Status> {
        let r = req.into_inner();
        let sha = statements::sha256("sha256", &r.sha256)?;
        let doc = self.public(Some(pb::get_document_request::Key::Id(r.document_id.clone()))).await?;
        if !doc.attachments.iter().any(|a| a.sha256 == sha) {
            return Err(Status::not_found(format!("{} has no attachment {sha}", doc.number)));
        }
        DocumentApi::stream_file(&self.app, sha).await.map(Response::new)
    }
}
