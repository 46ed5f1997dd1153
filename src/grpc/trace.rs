//! `gongwen.v1.TraceService`.
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use tonic::{Request, Response, Status};

use super::auth::caller;
use super::trace_reply::{Encoded, reply_node};
use crate::app::pages::{self, Cursor};
use crate::app::{App, AppError};
use crate::pb;
use crate::pb::trace_service_server::TraceService;

/// Most nodes in one chunk of a streamed trace.
const MAX_CHUNK_NODES: usize = 2048;

/// Most nodes a streamed trace walks ahead of its reader.
const AHEAD_NODES: usize = 64 * 1024;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Encoded, Status>> + Send>>;

/// Serves traces.
pub struct TraceApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl TraceService for TraceApi {
    async fn trace(&self, req: Request<pb::TraceRequest>) -> Result<Response<Encoded>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        self.app.may_trace(&caller, &req.document_id).await?;
        Ok(Response::new(self.app.trace_mapped(&req.document_id, req.max_depth, reply_node).await?.into()))
    }

    type StreamTraceStream = ChunkStream;

    async fn stream_trace(
        &self,
        req: Request<pb::StreamTraceRequest>,
    ) -> Result<Response<Self::StreamTraceStream>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let chunk_nodes = match req.chunk_nodes {
            0 => MAX_CHUNK_NODES,
            n if n as usize > MAX_CHUNK_NODES => {
                let why = format!("at most {MAX_CHUNK_NODES} nodes a chunk, not {n}");
                return Err(AppError::field("chunk_nodes", why).into());
            }
            n => n as usize,
        };
        self.app.may_trace(&caller, &req.document_id).await?;
        // Up to 64Ki nodes (some 10 MB) ahead of the reader, however they are cut into chunks: the walk runs on
        // while the first chunks are encoded and sent, and waits for a slow reader rather than piling up the whole
        // tree.
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD_NODES.div_ceil(chunk_nodes));
        let app = self.app.clone();
        tokio::spawn(async move {
            let walk = app.stream_trace(&req.document_id, req.max_depth, chunk_nodes, tx.clone(), Encoded::from);
            if let Err(e) = walk.await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let chunks = ReceiverStream::new(rx).map(|c| c.map_err(Status::from));
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn list_not_acted(
        &self,
        req: Request<pb::ListNotActedRequest>,
    ) -> Result<Response<pb::ListNotActedReply>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        let size = pages::page_size(req.page_size);
        let after = Cursor::read(&req.page_token, &req.document_id)?;
        self.app.may_trace(&caller, &req.document_id).await?;
        let page = self.app.not_acted(&req.document_id, size, after.as_ref()).await?;
        Ok(Response::new(pb::ListNotActedReply {
            nodes: page.nodes.into_iter().map(Into::into).collect(),
            next_page_token: page.next.map(|c| c.token()).unwrap_or_default(),
            total: page.total,
        }))
    }
}
