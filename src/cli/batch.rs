//! Acknowledging many deliveries at once (`gongwen ack --as UNIT DOC DOC…` or `--all-pending`): one `Act` call,
//! each acknowledgment signed on its own and answered in turn, a refusal reported without stopping the rest.
use serde::Serialize;
use tokio_stream::wrappers::ReceiverStream;

use super::client::{Client, new_request_id};
use super::views::DeliveryOut;
use super::{CliError, code_name};
use crate::pb;

/// What became of one acknowledgment.
#[derive(Serialize)]
pub struct AckOut {
    /// The document as given (id or number), or its id when taken from the inbox.
    pub document: String,
    /// The delivery as it now stands, when applied.
    pub delivery: Option<DeliveryOut>,
    /// Why it was not applied: the status name and the server's message, or why it got no answer.
    pub refused: Option<String>,
}

impl AckOut {
    fn line(&self) -> String {
        match &self.delivery {
            Some(d) => format!("签收 {}\n", d.line()),
            None => format!("refused {}: {}\n", self.document, self.refused.as_deref().unwrap_or("")),
        }
    }
}

impl Client {
    /// The ids of `unit`'s pending deliveries, oldest first.
    async fn pending(&self, unit: &str) -> Result<Vec<String>, CliError> {
        let pending = self.whole_inbox(unit, vec![pb::DeliveryState::Pending as i32]).await?;
        // The inbox lists newest first; acknowledging in arrival order keeps the log in that order too.
        Ok(pending.into_iter().rev().map(|d| d.document_id).collect())
    }

    /// Acknowledges `documents` (or every pending delivery) as `unit` on one `Act` call. Each gets its own request
    /// id, `{request_id}-{document id}` when one was given, so a retry repeats each exactly. A document that got no
    /// answer (the call ended first) is reported as such, with why.
    pub async fn ack_many(
        &self,
        unit: &str,
        request_id: Option<&str>,
        documents: Vec<String>,
        all_pending: bool,
    ) -> Result<Vec<AckOut>, CliError> {
        let documents = if all_pending { self.pending(unit).await? } else { documents };
        if documents.is_empty() {
            return Ok(vec![]);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut results = self.deliveries().act(ReceiverStream::new(rx)).await?.into_inner();
        let mut out = Vec::with_capacity(documents.len());
        let mut documents = documents.into_iter();
        let mut ended = None;
        for document in documents.by_ref() {
            // A number that names no document is that document's refusal; the rest go on.
            let document_id = match self.resolve(&document).await {
                Ok(id) => id,
                Err(e) => {
                    out.push(AckOut { document, delivery: None, refused: Some(e.to_string()) });
                    continue;
                }
            };
            let m = pb::Acknowledge {
                request_id: request_id.map_or_else(new_request_id, |r| format!("{r}-{document_id}")),
                unit_id: unit.to_owned(),
                document_id,
                registration_number: String::new(),
            };
            let sent = tx.send(self.sign(unit, &m)?).await.is_ok();
            let result = match results.message().await {
                Ok(Some(result)) if sent => Ok(result),
                Ok(_) => Err(tonic::Status::unavailable("the server ended the call")),
                Err(status) => Err(status),
            }
            .map_err(|status| CliError::Rpc(status).to_string());
            let result = match result {
                Ok(result) => result,
                Err(why) => {
                    out.push(AckOut { document, delivery: None, refused: Some(format!("no answer: {why}")) });
                    ended = Some(why);
                    break;
                }
            };
            let (delivery, refused) = match result.outcome {
                Some(pb::act_result::Outcome::Delivery(d)) => (Some(DeliveryOut::from(d)), None),
                Some(pb::act_result::Outcome::Refusal(r)) => {
                    (None, Some(format!("{}: {}", code_name(tonic::Code::from(r.code)), r.message)))
                }
                None => (None, Some("the server sent no outcome".to_owned())),
            };
            out.push(AckOut { document, delivery, refused });
        }
        if let Some(why) = ended {
            out.extend(documents.map(|document| AckOut {
                document,
                delivery: None,
                refused: Some(format!("not sent: {why}")),
            }));
        }
        Ok(out)
    }

    /// Prints what [`Client::ack_many`] did; an error when any was refused, so scripts see it in the exit status.
    pub fn print_acks(&self, acks: &[AckOut]) -> Result<(), CliError> {
        self.print(&acks, |acks| {
            let mut s: String = acks.iter().map(AckOut::line).collect();
            let refused = acks.iter().filter(|a| a.delivery.is_none()).count();
            s.push_str(&format!("{} acknowledged, {refused} refused\n", acks.len() - refused));
            s
        })?;
        match acks.iter().filter(|a| a.delivery.is_none()).count() {
            0 => Ok(()),
            n => Err(CliError::Input(format!("{n} of {} acknowledgments were refused", acks.len()))),
        }
    }
}
