//! `gongwen.v1.TraceService`.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::caller;
use crate::app::App;
use crate::pb;
use crate::pb::trace_service_server::TraceService;

/// Serves traces.
pub struct TraceApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl TraceService for TraceApi {
    async fn trace(&self, req: Request<pb::TraceRequest>) -> Result<Response<pb::TraceReply>, Status> {
        let caller = caller(&req)?;
        let req = req.into_inner();
        self.app.may_trace(&caller, &req.document_id).await?;
        Ok(Response::new(self.app.trace(&req.document_id, req.max_depth).await?.into()))
    }

    async fn list_not_acted(&self, req: Request<pb::TraceRequest>) -> Result<Response<pb::ListNotActedReply>, Status> {
        let caller = caller(&req)?;
        let id = req.into_inner().document_id;
        self.app.may_trace(&caller, &id).await?;
        let nodes = self.app.not_acted(&id).await?;
        Ok(Response::new(pb::ListNotActedReply { nodes: nodes.into_iter().map(Into::into).collect() }))
    }
}
