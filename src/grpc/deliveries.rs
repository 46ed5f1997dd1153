//! `gongwen.v1.DeliveryService`.
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::act::{self, ActResults};
use super::auth::caller;
use super::convert::{state_from_wire, step_kind};
use super::page;
use crate::app::{App, AppError};
use crate::domain::state::DeliveryState;
use crate::pb;
use crate::pb::delivery_service_server::DeliveryService;

/// Serves deliveries and inboxes.
pub struct DeliveryApi {
    pub app: Arc<App>,
}

type NoticeStream = Pin<Box<dyn Stream<Item = Result<pb::InboxNotice, Status>> + Send>>;

/// The delivery states an inbox listing asks for.
pub(crate) fn inbox_states(wire: &[i32]) -> Result<Vec<DeliveryState>, AppError> {
    wire.iter()
        .map(|s| state_from_wire(*s).ok_or_else(|| AppError::field("states", format!("{s} is not a delivery state"))))
        .collect()
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    async fn acknowledge(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.acknowledge(req.into_inner()).await?.into()))
    }

    async fn r#return(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.return_delivery(req.into_inner()).await?.into()))
    }

    async fn start_handling(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.start_handling(req.into_inner()).await?.into()))
    }

    async fn report(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.report(req.into_inner()).await?.into()))
    }

    async fn complete(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.complete(req.into_inner()).await?.into()))
    }

    async fn remind(&self, req: Request<pb::SignedEnvelope>) -> Result<Response<pb::Delivery>, Status> {
        Ok(Response::new(self.app.remind(req.into_inner()).await?.into()))
    }

    type ActStream = ActResults;

    async fn act(&self, req: Request<Streaming<pb::SignedEnvelope>>) -> Result<Response<Self::ActStream>, Status> {
        let caller = caller(&req)?;
        Ok(Response::new(act::results(self.app.clone(), caller, req.into_inner())))
    }

    async fn get_delivery(&self, req: Request<pb::GetDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        Ok(Response::new(self.app.readable_delivery(&caller, &r.document_id, &r.recipient_unit_id).await?.into()))
    }

    async fn list_inbox(&self, req: Request<pb::ListInboxRequest>) -> Result<Response<pb::ListInboxReply>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        self.app.unit(&r.unit_id)?;
        self.app.may_see_unit(&caller, &r.unit_id)?;
        let states = inbox_states(&r.states)?;
        let (size, token) = page(r.page);
        let (rows, next) = self.app.inbox(&r.unit_id, states, &token, size).await?;
        Ok(Response::new(pb::ListInboxReply {
            deliveries: rows.into_iter().map(Into::into).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    type WatchInboxStream = NoticeStream;

    async fn watch_inbox(
        &self,
        req: Request<pb::WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        let caller = caller(&req)?;
        let unit = req.into_inner().unit_id;
        self.app.unit(&unit)?;
        self.app.may_see_unit(&caller, &unit)?;
        let mut notices = self.app.subscribe();
        let app = self.app.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            // The server's stop ends the reply (`methods::ENDS_AT_STOP`), which drops `rx` and ends this task.
            loop {
                let notice = tokio::select! {
                    n = notices.recv() => n,
                    () = tx.closed() => return,
                };
                let item = match notice {
                    Ok(n) if n.units.contains(&unit) => match app.delivery(&n.document_id, &unit).await {
                        Ok(view) => Ok(pb::InboxNotice { kind: step_kind(n.kind) as i32, delivery: Some(view.into()) }),
                        Err(e) => Err(Status::from(e)),
                    },
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => Err(Status::resource_exhausted(format!(
                        "this watcher fell {n} notices behind; list the inbox and watch again"
                    ))),
                    Err(RecvError::Closed) => return,
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
