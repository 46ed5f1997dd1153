//! `DeliveryService.Act`: the statements of one call, applied one at a time in the order sent.
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Code, Status, Streaming};

use crate::app::App;
use crate::app::access::Caller;
use crate::app::deliveries::{DeliveryView, statement_kind};
use crate::pb;
use crate::pb::act_result::Outcome;

/// The results of one call.
pub type ActResults = Pin<Box<dyn Stream<Item = Result<pb::ActResult, Status>> + Send>>;

/// How a call ends when the server stops between two statements.
fn stopping() -> Status {
    Status::unavailable(super::auth::STOPPING)
}

/// The results of `statements`, each produced when the one before it has been taken: one at a time, in order, and
/// a client that stops reading results stops its statements too. Dropped when the client goes away.
pub(super) fn results(app: Arc<App>, caller: Caller, statements: Streaming<pb::SignedEnvelope>) -> ActResults {
    let state = (app, caller, statements, 0u64);
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let (app, caller, mut statements, index) = state?;
        let next = tokio::select! {
            next = statements.message() => next,
            () = app.stopping() => return Some((Err(stopping()), None)),
        };
        let envelope = match next {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return None,
            Err(status) => return Some((Err(status), None)),
        };
        let kind = statement_kind(&envelope.payload_type);
        let applied = match app.charge(&caller) {
            Ok(()) => app.act_on_any(envelope).await,
            Err(e) => Err(e),
        };
        let outcome = match applied {
            Ok(view) => {
                app.statements.add(kind, Code::Ok as i32);
                Outcome::Delivery(shown_to(&app, &caller, view))
            }
            Err(e) => {
                let status = Status::from(e);
                app.statements.add(kind, status.code() as i32);
                // A store failure may have left the statement applied or not: the call ends rather than go on
                // from a state its client cannot know (a retry with the same request id tells).
                if status.code() == Code::Internal {
                    return Some((Err(status), None));
                }
                Outcome::Refusal(pb::ActRefusal { code: status.code() as i32, message: status.message().to_owned() })
            }
        };
        let result = pb::ActResult { index, outcome: Some(outcome) };
        Some((Ok(result), Some((app, caller, statements, index + 1))))
    }))
}

/// The delivery as its result shows it: whole to a caller who may read the recipient's records, and to a relay
/// that may not (its statements' signers are other units) only which delivery it is and its state.
fn shown_to(app: &App, caller: &Caller, view: DeliveryView) -> pb::Delivery {
    let whole = pb::Delivery::from(view);
    if app.may_see_unit(caller, &whole.recipient_unit_id).is_ok() {
        return whole;
    }
    pb::Delivery {
        document_id: whole.document_id,
        recipient_unit_id: whole.recipient_unit_id,
        state: whole.state,
        ..Default::default()
    }
}
