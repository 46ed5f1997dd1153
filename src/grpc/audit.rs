//! `gongwen.v1.AuditService`.
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::caller;
use crate::app::App;
use crate::app::log::ExportScope;
use crate::pb;
use crate::pb::audit_service_server::AuditService;

/// Records read per store pass while streaming the log.
const STREAM_BATCH: u64 = 1000;

/// Serves the log and its proofs.
pub struct AuditApi {
    pub app: Arc<App>,
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogRecord, Status>> + Send>>;

/// What an audit bundle covers.
pub(crate) fn export_scope(scope: Option<pb::export_request::Scope>) -> Result<ExportScope, Status> {
    match scope {
        Some(pb::export_request::Scope::DocumentId(id)) => Ok(ExportScope::Document(id)),
        Some(pb::export_request::Scope::Range(r)) => Ok(ExportScope::Range { from: r.from_seq, to: r.to_seq }),
        None => Err(Status::invalid_argument("give a document id or a range of events")),
    }
}

/// The first event and the number of events a log stream sends (limit 0: all).
pub(crate) fn log_window(r: &pb::StreamLogRequest) -> (u64, u64) {
    (r.from_seq.max(1), if r.limit == 0 { u64::MAX } else { r.limit })
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_checkpoint(
        &self,
        _: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        Ok(Response::new(self.app.checkpoint().await?))
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        Ok(Response::new(self.app.readable_inclusion_proof(&caller, r.event_seq, r.tree_size).await?))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let r = req.into_inner();
        Ok(Response::new(self.app.consistency_proof(r.old_size, r.new_size).await?))
    }

    type StreamLogStream = LogStream;

    async fn stream_log(&self, req: Request<pb::StreamLogRequest>) -> Result<Response<Self::StreamLogStream>, Status> {
        let caller = caller(&req)?;
        self.app.may_read_log(&caller)?;
        let r = req.into_inner();
        let app = self.app.clone();
        let (from, limit) = log_window(&r);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            // An auditor gets the entries it may read, each under its own number, so the gaps show.
            let mut view = app.log_view(&caller);
            let (mut next, mut sent) = (from, 0u64);
            while sent < limit {
                let batch = match app.log_records(next, STREAM_BATCH).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let Some(last) = batch.last().map(|r| r.event_seq) else { return };
                for rec in batch {
                    if sent == limit {
                        return;
                    }
                    match app.record_visible(&mut view, &rec).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(e))).await;
                            return;
                        }
                    }
                    if tx.send(Ok(rec)).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                next = last + 1;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn export_bundle(&self, req: Request<pb::ExportRequest>) -> Result<Response<pb::AuditBundle>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        let scope = export_scope(r.scope)?;
        let scope = match scope {
            ExportScope::Document(id) => {
                self.app.may_trace(&caller, &id).await?;
                ExportScope::Document(id)
            }
            ExportScope::Range { from, to } => {
                self.app.may_read_log(&caller)?;
                // Only the operator gets the stretch whole; an auditor gets the events it may read in it.
                return Ok(Response::new(self.app.export_range(&caller, from, to, r.previous_size).await?));
            }
            events @ ExportScope::Events(_) => events,
        };
        Ok(Response::new(self.app.export_bundle(scope, r.previous_size).await?))
    }
}
