//! `gongwen.v1.AdminService`.
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::caller;
use crate::app::App;
use crate::app::access::Caller;
use crate::pb;
use crate::pb::admin_service_server::AdminService;

/// Serves operator operations.
pub struct AdminApi {
    pub app: Arc<App>,
}

type Chunks = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

#[tonic::async_trait]
impl AdminService for AdminApi {
    type BackupStream = Chunks;

    async fn backup(&self, req: Request<pb::BackupRequest>) -> Result<Response<Chunks>, Status> {
        if caller(&req)? != Caller::Operator {
            return Err(Status::permission_denied("only the operator may take backups"));
        }
        let tmp = tempfile::NamedTempFile::new().map_err(|e| Status::internal(format!("no room for a backup: {e}")))?;
        let summary = self.app.backup(tmp.path()).await?;
        tracing::info!(pairs = summary.pairs, files = summary.files, events = summary.events, "backup taken");
        let mut file = tokio::fs::File::open(tmp.path()).await.map_err(|e| Status::internal(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            // The temp file lives until the whole backup is sent.
            let _tmp = tmp;
            loop {
                let mut buf = vec![0u8; 1 << 20];
                match file.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(pb::BackupChunk { chunk: buf })).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
