//! Delivery actions (签收, 退回, 承办, 报送, 办结, 催办), inboxes and live inbox notices.
use std::collections::BTreeSet;
use std::sync::Arc;

use super::documents::{RequestMeta, page_start, seq_of};
use super::statements::sha256;
use super::{App, AppError, FirstResult, Notice, remember, replayed, schema};
use crate::domain::model::{Delivery, DocHead, EventKind, Step, StepKind};
use crate::domain::state::{Action, DeliveryState, is_overdue, transition};
use crate::pb;
use crate::signing::Statement;

/// A delivery with what a reader needs to understand it.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: Delivery,
    pub document_number: String,
    pub document_title: String,
    pub issuer: String,
    pub recipient_name: String,
    pub overdue: bool,
    /// Per step, why it is suspect (empty when it is not).
    pub step_flags: Vec<String>,
}

/// The payload types of the six delivery statements.
pub const DELIVERY_STATEMENTS: [&str; 6] = [
    pb::Acknowledge::TYPE,
    pb::ReturnDelivery::TYPE,
    pb::StartHandling::TYPE,
    pb::SubmitReport::TYPE,
    pb::Complete::TYPE,
    pb::Remind::TYPE,
];

/// A payload type as a metric label: one of [`DELIVERY_STATEMENTS`], or "other".
pub fn statement_kind(payload_type: &str) -> &'static str {
    DELIVERY_STATEMENTS.iter().find(|t| **t == payload_type).copied().unwrap_or("other")
}

/// One action on one delivery, decoded from its statement.
pub(crate) struct Command {
    pub(crate) action: Action,
    pub(crate) step: StepKind,
    pub(crate) event: EventKind,
    pub(crate) document_id: String,
    pub(crate) recipient: String,
    pub(crate) text: String,
    pub(crate) attachments: Vec<String>,
}

/// A signed delivery statement and the [`Command`] it asks for, after field checks (nothing is looked up).
pub(crate) trait DeliveryStatement: Statement + RequestMeta {
    fn command(&self) -> Result<Command, AppError>;
}

impl DeliveryStatement for pb::Acknowledge {
    fn command(&self) -> Result<Command, AppError> {
        Ok(Command {
            action: Action::Acknowledge,
            step: StepKind::Acknowledged,
            event: EventKind::Acknowledged,
            document_id: self.document_id.clone(),
            recipient: self.unit_id.clone(),
            text: bounded("registration_number", &self.registration_number, 128)?,
            attachments: vec![],
        })
    }
}

impl DeliveryStatement for pb::ReturnDelivery {
    fn command(&self) -> Result<Command, AppError> {
        let reason = bounded("reason", &self.reason, 2000)?;
        if reason.trim().is_empty() {
            return Err(AppError::field("reason", "a return needs a reason"));
        }
        Ok(Command {
            action: Action::Return,
            step: StepKind::Returned,
            event: EventKind::Returned,
            document_id: self.document_id.clone(),
            recipient: self.unit_id.clone(),
            text: reason,
            attachments: vec![],
        })
    }
}

impl DeliveryStatement for pb::StartHandling {
    fn command(&self) -> Result<Command, AppError> {
        let lead = bounded("lead_office", &self.lead_office, 200)?;
        let note = bounded("note", &self.note, 2000)?;
        let text = match (lead.is_empty(), note.is_empty()) {
            (false, false) => format!("{lead}: {note}"),
            (false, true) => lead,
            _ => note,
        };
        Ok(Command {
            action: Action::StartHandling,
            step: StepKind::HandlingStarted,
            event: EventKind::HandlingStarted,
            document_id: self.document_id.clone(),
            recipient: self.unit_id.clone(),
            text,
            attachments: vec![],
        })
    }
}

impl DeliveryStatement for pb::SubmitReport {
    fn command(&self) -> Result<Command, AppError> {
        let text = bounded("text", &self.text, 1 << 20)?;
        let attachments =
            self.attachment_sha256.iter().map(|a| sha256("attachment_sha256", a)).collect::<Result<Vec<_>, _>>()?;
        if text.trim().is_empty() && attachments.is_empty() {
            return Err(AppError::field("text", "a report needs text or attachments"));
        }
        Ok(Command {
            action: Action::Report,
            step: StepKind::Reported,
            event: EventKind::Reported,
            document_id: self.document_id.clone(),
            recipient: self.unit_id.clone(),
            text,
            attachments,
        })
    }
}

impl DeliveryStatement for pb::Complete {
    fn command(&self) -> Result<Command, AppError> {
        Ok(Command {
            action: Action::Complete,
            step: StepKind::Completed,
            event: EventKind::Completed,
            document_id: self.document_id.clone(),
            recipient: self.unit_id.clone(),
            text: bounded("note", &self.note, 2000)?,
            attachments: vec![],
        })
    }
}

impl DeliveryStatement for pb::Remind {
    fn command(&self) -> Result<Command, AppError> {
        if self.recipient_unit_id.is_empty() {
            return Err(AppError::field("recipient_unit_id", "the late recipient is required"));
        }
        Ok(Command {
            action: Action::Remind,
            step: StepKind::Reminded,
            event: EventKind::Reminded,
            document_id: self.document_id.clone(),
            recipient: self.recipient_unit_id.clone(),
            text: bounded("message", &self.message, 2000)?,
            attachments: vec![],
        })
    }
}

impl App {
    /// 签收.
    pub async fn acknowledge(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::Acknowledge>(envelope).await
    }

    /// 退回.
    pub async fn return_delivery(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::ReturnDelivery>(envelope).await
    }

    /// 承办.
    pub async fn start_handling(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::StartHandling>(envelope).await
    }

    /// 报送.
    pub async fn report(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::SubmitReport>(envelope).await
    }

    /// 办结.
    pub async fn complete(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::Complete>(envelope).await
    }

    /// 催办: by the issuer or a unit above it.
    pub async fn remind(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        self.act_on::<pb::Remind>(envelope).await
    }

    /// Any one of the six delivery statements, told apart by its payload type (the `Act` stream's statements).
    pub async fn act_on_any(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        match envelope.payload_type.as_str() {
            pb::Acknowledge::TYPE => self.act_on::<pb::Acknowledge>(envelope).await,
            pb::ReturnDelivery::TYPE => self.act_on::<pb::ReturnDelivery>(envelope).await,
            pb::StartHandling::TYPE => self.act_on::<pb::StartHandling>(envelope).await,
            pb::SubmitReport::TYPE => self.act_on::<pb::SubmitReport>(envelope).await,
            pb::Complete::TYPE => self.act_on::<pb::Complete>(envelope).await,
            pb::Remind::TYPE => self.act_on::<pb::Remind>(envelope).await,
            other => Err(AppError::field(
                "payload_type",
                format!("{other:?} is not a delivery statement; one of {} is", DELIVERY_STATEMENTS.join(", ")),
            )),
        }
    }

    /// Opens a delivery statement, checks its fields, and acts on it.
    async fn act_on<M: DeliveryStatement>(&self, envelope: pb::SignedEnvelope) -> Result<DeliveryView, AppError> {
        let signed = self.open_envelope::<M>(&envelope)?;
        let cmd = signed.statement.command()?;
        self.act(&envelope, signed, cmd).await
    }

    async fn act<M: RequestMeta>(
        &self,
        envelope: &pb::SignedEnvelope,
        signed: super::Signed<M>,
        cmd: Command,
    ) -> Result<DeliveryView, AppError> {
        let snap = self.snapshot();
        let actor = signed.statement.actor().to_owned();
        self.verify_unit(&snap, &actor, envelope)?;
        let files: Vec<(&str, &str)> = cmd.attachments.iter().map(|a| (a.as_str(), "a report file")).collect();
        self.check_attachable(&actor, &files).await?;
        if cmd.document_id.is_empty() {
            return Err(AppError::field("document_id", "the document is required"));
        }
        let doc = self.document_head(&cmd.document_id).await?;
        snap.unit(&cmd.recipient)?;
        if cmd.action == Action::Remind {
            let reminder = snap.unit(&actor)?;
            let issuer = snap.unit(&doc.issuer)?;
            let above_issuer = reminder.level.depth() < issuer.level.depth()
                && snap.registry.region_within(&issuer.region, &reminder.region);
            if reminder.id != issuer.id && !above_issuer {
                return Err(AppError::Denied(format!(
                    "only the issuer {} or a unit above it may remind; {} may not",
                    issuer.full_name, reminder.full_name
                )));
            }
        }
        let request_id = signed.statement.request_id().to_owned();
        let (digest, envelope_bytes) = (signed.digest, signed.envelope);
        let at = self.now();
        let doc_id = doc.id.clone();
        let recipient = cmd.recipient.clone();
        let (delivery, fresh) = self
            .write(move |tx| {
                if let Some(first) = replayed(tx, &actor, &request_id, &digest)? {
                    let FirstResult::Delivery { document_id, recipient } = first else {
                        return Err(AppError::AlreadyExists(format!(
                            "request id {request_id:?} was used for another request"
                        )));
                    };
                    let d = schema::load_tx::<Delivery>(tx, &schema::delivery(&document_id, &recipient))?.ok_or_else(
                        || AppError::NotFound(format!("delivery of {document_id} to {recipient} is missing")),
                    )?;
                    return Ok((d, false));
                }
                let key = schema::delivery(&cmd.document_id, &cmd.recipient);
                let mut d = schema::load_tx::<Delivery>(tx, &key)?.ok_or_else(|| {
                    AppError::NotFound(format!("{} was not delivered to {}", cmd.document_id, cmd.recipient))
                })?;
                d.state = transition(d.state, cmd.action)?;
                let seq = super::append_event(tx, cmd.event, &actor, Some(&cmd.document_id), &envelope_bytes, at)?;
                d.steps.push(Step {
                    event_seq: seq,
                    kind: cmd.step,
                    at,
                    actor: actor.clone(),
                    text: cmd.text,
                    attachments: cmd.attachments,
                    forward: None,
                    key_id: envelope_bytes.key_id.clone(),
                });
                for a in &d.steps.last().map(|s| s.attachments.clone()).unwrap_or_default() {
                    tx.put(&schema::attachment_use(a, &cmd.document_id), &[]);
                }
                schema::save(tx, &key, &d)?;
                let first = FirstResult::Delivery { document_id: cmd.document_id.clone(), recipient: cmd.recipient };
                remember(tx, &actor, &request_id, digest, first)?;
                Ok((d, true))
            })
            .await?;
        if fresh && delivery.steps.last().is_some_and(|s| s.kind == StepKind::Reminded) {
            self.publish(Notice {
                kind: StepKind::Reminded,
                document_id: doc_id,
                units: Arc::new(BTreeSet::from([recipient])),
            });
        }
        Ok(self.view(delivery, &doc))
    }

    fn view(&self, delivery: Delivery, doc: &DocHead) -> DeliveryView {
        let snap = self.snapshot();
        let recipient_name =
            snap.registry.units.get(&delivery.recipient).map(|u| u.full_name.clone()).unwrap_or_default();
        let overdue = is_overdue(delivery.deadline, delivery.state, self.now());
        let step_flags = delivery.steps.iter().map(|s| snap.suspect(s).unwrap_or_default()).collect();
        DeliveryView {
            step_flags,
            delivery,
            document_number: doc.number.clone(),
            document_title: doc.title.clone(),
            issuer: doc.issuer.clone(),
            recipient_name,
            overdue,
        }
    }

    /// One delivery with its history.
    pub async fn delivery(&self, document_id: &str, recipient: &str) -> Result<DeliveryView, AppError> {
        let doc = self.document_head(document_id).await?;
        let (d, r) = (document_id.to_owned(), recipient.to_owned());
        let delivery = self
            .read(move |s| {
                schema::load::<Delivery>(s, &schema::delivery(&d, &r))?
                    .ok_or_else(|| AppError::NotFound(format!("{d} was not delivered to {r}")))
            })
            .await?;
        Ok(self.view(delivery, &doc))
    }

    /// A unit's inbox, newest first, filtered by state; `after` is a page token.
    pub async fn inbox(
        &self,
        unit: &str,
        states: Vec<DeliveryState>,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<DeliveryView>, Option<String>), AppError> {
        self.snapshot().unit(unit)?;
        let start = page_start(unit, after, schema::inbox)?;
        let unit_owned = unit.to_owned();
        let (rows, next) = self
            .read(move |s| {
                let mut rows = vec![];
                for pair in s.scan(&schema::inbox_of(&unit_owned), start.as_deref(), true) {
                    let (k, v) = pair?;
                    let doc_id = String::from_utf8_lossy(&v).into_owned();
                    let Some(d) = schema::load::<Delivery>(s, &schema::delivery(&doc_id, &unit_owned))? else {
                        continue;
                    };
                    if !states.is_empty() && !states.contains(&d.state) {
                        continue;
                    }
                    if rows.len() == limit {
                        return Ok((rows, true));
                    }
                    let doc = schema::load::<DocHead>(s, &schema::document_head(&doc_id))?
                        .ok_or_else(|| AppError::NotFound(format!("document {doc_id} is missing")))?;
                    rows.push((seq_of(&k), d, doc));
                }
                Ok((rows, false))
            })
            .await?;
        let token = if next { rows.last().map(|(seq, _, _)| seq.to_string()) } else { None };
        Ok((rows.into_iter().map(|(_, d, doc)| self.view(d, &doc)).collect(), token))
    }
}

fn bounded(field: &str, value: &str, max_chars: usize) -> Result<String, AppError> {
    if value.chars().count() > max_chars {
        return Err(AppError::field(field, format!("at most {max_chars} characters")));
    }
    Ok(value.trim().to_owned())
}
