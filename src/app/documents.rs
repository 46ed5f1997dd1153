//! Issuing and forwarding documents, reading them, and their attachment files.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

use super::statements::Draft;
use super::{App, AppError, FirstResult, Notice, Signed, Snapshot, remember, replayed, schema};
use crate::domain::model::{
    Attachment, Classification, Delivery, Disclosure, DocHead, Document, EventKind, RecipientSpec, Role, Step,
    StepKind, Unit,
};
use crate::domain::number::DocNumber;
use crate::domain::state::{Action, DeliveryState, transition};
use crate::domain::title;
use crate::pb;
use crate::store::Tx;

/// Everything about a new document that can be decided before the transaction.
pub(super) struct NewDocument {
    pub(super) doc: Document,
    recipients: Vec<(String, Role, Option<NaiveDate>)>,
    /// For a forward: the source document and the forwarder's delivery of it.
    forwarding: Option<(String, String)>,
}

fn document_id(envelope: &[u8]) -> String {
    let h = Sha256::digest(envelope);
    format!("d-{}", &hex::encode(h)[..20])
}

impl App {
    /// 发文: issues a document from a signed `IssueDocument`.
    pub async fn issue(&self, envelope: pb::SignedEnvelope) -> Result<Document, AppError> {
        let signed = self.open_envelope::<pb::IssueDocument>(&envelope)?;
        let snap = self.snapshot();
        self.verify_unit(&snap, &signed.statement.unit_id, &envelope)?;
        let (draft, disclosure) = issue_draft(&signed.statement)?;
        let issuer = snap.unit(&signed.statement.unit_id)?.clone();
        self.check_attachable(&issuer.id, &draft_files(&draft)).await?;
        let new = self.prepare(&snap, &issuer, draft, disclosure, &signed, vec![], None)?;
        Ok(self.commit_document(signed, new).await?.0)
    }

    /// 转发: forwards a received document from a signed `ForwardDocument`.
    pub async fn forward(&self, envelope: pb::SignedEnvelope) -> Result<Document, AppError> {
        let signed = self.open_envelope::<pb::ForwardDocument>(&envelope)?;
        let snap = self.snapshot();
        let st = &signed.statement;
        self.verify_unit(&snap, &st.unit_id, &envelope)?;
        let source_id = forward_source(st)?;
        let source = self.document(&source_id).await?;
        let mut draft = forward_draft(st)?;
        if draft.title.is_empty() {
            draft.title = title::forwarding_title(&source.title, &source.issuer_name);
        }
        let disclosure = draft.disclosure.unwrap_or(source.disclosure);
        let forwarder = snap.unit(&st.unit_id)?.clone();
        self.check_attachable(&forwarder.id, &draft_files(&draft)).await?;
        let (unit_id, source_for_read, source_seq) = (forwarder.id.clone(), source_id.clone(), source.event_seq);
        let (held, event) = self
            .read(move |s| {
                let held = schema::load::<Delivery>(s, &schema::delivery(&source_for_read, &unit_id))?;
                let event = super::log::entry(s, source_seq)?;
                Ok((held, event))
            })
            .await?;
        let held = held.ok_or_else(|| {
            AppError::Precondition(format!(
                "{} has not received {}, so it cannot forward it",
                forwarder.full_name, source_id
            ))
        })?;
        transition(held.state, Action::Forward).map_err(AppError::from)?;
        // The forwarded document travels as 附件 1: its signed issue record, verifiable by anyone. The file is
        // stored only once every check has passed, so a refused forward leaves nothing behind.
        let record = event.envelope.map(|e| e.encode_to_vec()).unwrap_or_default();
        let first = Attachment {
            ordinal: 1,
            title: format!("{}（{}）", title::quoted_title(&source.title, &source.issuer_name), source.number),
            media_type: "application/vnd.gongwen.signed-envelope+protobuf".into(),
            size: record.len() as u64,
            sha256: hex::encode(Sha256::digest(&record)),
            document_id: Some(source_id.clone()),
        };
        let new = self.prepare(&snap, &forwarder, draft, disclosure, &signed, vec![first], Some(source_id))?;
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || blobs.put(&record)).await??;
        Ok(self.commit_document(signed, new).await?.0)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare<M>(
        &self,
        snap: &Snapshot,
        issuer: &Unit,
        draft: Draft,
        disclosure: Disclosure,
        signed: &Signed<M>,
        mut attachments: Vec<Attachment>,
        forwards: Option<String>,
    ) -> Result<NewDocument, AppError> {
        if !issuer.prefixes.contains(&draft.prefix) {
            return Err(AppError::Denied(format!(
                "{} may not issue under the prefix {} (its prefixes: {})",
                issuer.full_name,
                draft.prefix,
                issuer.prefixes.join("、")
            )));
        }
        if matches!(draft.classification, Classification::Confidential | Classification::TopSecret)
            && !self.config.allow_confidential
        {
            return Err(AppError::Denied(
                "机密 and 绝密 documents may not travel over an ordinary network; this server refuses them".into(),
            ));
        }
        let expansion = snap.registry.resolve_recipients(issuer, &draft.main, &draft.cc)?;
        for a in &draft.attachments {
            // `check_attachable` (before `prepare`) refused files never uploaded; one removed since is missing.
            let size = self.blobs.size_of(&a.sha256)?.ok_or_else(|| {
                AppError::NotFound(format!("attachment {} ({}) was never uploaded", a.sha256, a.title))
            })?;
            let ordinal = u32::try_from(attachments.len() + 1).unwrap_or(u32::MAX);
            attachments.push(Attachment {
                ordinal,
                title: a.title.clone(),
                media_type: a.media_type.clone(),
                size,
                sha256: a.sha256.clone(),
                document_id: None,
            });
        }
        let mut due: BTreeMap<&str, NaiveDate> = BTreeMap::new();
        if let Some(d) = draft.deadline {
            for u in &expansion.main {
                due.insert(u, d);
            }
        }
        let all_recipients: std::collections::HashSet<&str> =
            expansion.main.iter().chain(&expansion.cc).map(String::as_str).collect();
        for rd in &draft.recipient_deadlines {
            let units: Vec<&str> = match &rd.recipient {
                RecipientSpec::Unit(u) => vec![u.as_str()],
                RecipientSpec::Group(g) => {
                    let group = snap
                        .registry
                        .groups
                        .get(g)
                        .ok_or_else(|| AppError::NotFound(format!("unknown recipient group {g:?}")))?;
                    snap.registry.expand_group(group, issuer).into_iter().map(|u| u.id.as_str()).collect()
                }
            };
            for u in units {
                if !all_recipients.contains(u) {
                    return Err(AppError::Invalid(format!("a deadline names {u}, which is not a recipient")));
                }
                due.insert(u, rd.due);
            }
        }
        let recipients = expansion
            .main
            .iter()
            .map(|u| (u.clone(), Role::Main, due.get(u.as_str()).copied()))
            .chain(expansion.cc.iter().map(|u| (u.clone(), Role::Cc, due.get(u.as_str()).copied())))
            .collect();
        let forwarding = forwards.clone().map(|s| (s, issuer.id.clone()));
        let doc = Document {
            id: document_id(&signed.envelope.encode_to_vec()),
            number: DocNumber { prefix: draft.prefix, year: draft.year, serial: 0 },
            title: draft.title,
            genre: draft.genre,
            issuer: issuer.id.clone(),
            issuer_name: issuer.full_name.clone(),
            signer: draft.signer,
            main_written: draft.main,
            cc_written: draft.cc,
            expansion,
            body: draft.body,
            attachments,
            forwards,
            dated: draft.dated,
            printed_by: draft.printed_by,
            printed_on: draft.printed_on,
            deadline: draft.deadline,
            recipient_deadlines: draft.recipient_deadlines,
            urgency: draft.urgency,
            classification: draft.classification,
            classification_term: draft.classification_term,
            copy_number: draft.copy_number,
            disclosure,
            contact: draft.contact,
            note: draft.note,
            issued_at: self.now(),
            event_seq: 0,
            imported: None,
        };
        Ok(NewDocument { doc, recipients, forwarding })
    }

    /// Stores a prepared document with its deliveries and event. Returns the document and whether it is new (false
    /// for a retried request, or an import of a source document imported before).
    pub(super) async fn commit_document<M: RequestMeta>(
        &self,
        signed: Signed<M>,
        new: NewDocument,
    ) -> Result<(Document, bool), AppError> {
        let (actor, request_id) = (signed.statement.actor().to_owned(), signed.statement.request_id().to_owned());
        let (digest, envelope) = (signed.digest, signed.envelope);
        let key_id = envelope.key_id.clone();
        let NewDocument { mut doc, recipients, forwarding } = new;
        let at = doc.issued_at;
        let result = self
            .write(move |tx| {
                if let Some(first) = replayed(tx, &actor, &request_id, &digest)? {
                    let FirstResult::Document(id) = first else {
                        return Err(AppError::AlreadyExists(format!(
                            "request id {request_id:?} was used for another request"
                        )));
                    };
                    let doc = schema::load_tx::<Document>(tx, &schema::document(&id))?
                        .ok_or_else(|| AppError::NotFound(format!("document {id} is missing")))?;
                    return Ok((doc, false));
                }
                if schema::load_tx::<Document>(tx, &schema::document(&doc.id))?.is_some() {
                    return Err(AppError::AlreadyExists(format!("document {} exists already", doc.id)));
                }
                if doc.imported.is_some()
                    && let Some(earlier) = super::import::number_taken(tx, &doc)?
                {
                    return Ok((earlier, false));
                }
                let kind = match (&doc.imported, &forwarding) {
                    (Some(_), _) => EventKind::Imported,
                    (None, Some(_)) => EventKind::Forwarded,
                    (None, None) => EventKind::Issued,
                };
                let seq = super::append_event(tx, kind, &actor, Some(&doc.id), &envelope, at)?;
                if doc.imported.is_none() {
                    doc.number.serial = allocate_serial(tx, &doc.number.prefix, doc.number.year)?;
                }
                doc.event_seq = seq;
                if let Some((source, forwarder)) = &forwarding {
                    if doc.imported.is_some() {
                        super::import::record_imported_forward(tx, source, forwarder, &doc, seq, at, &key_id)?;
                    } else {
                        record_forward(tx, source, forwarder, &doc, seq, at, &key_id)?;
                    }
                }
                schema::save(tx, &schema::document(&doc.id), &doc)?;
                schema::save(tx, &schema::document_head(&doc.id), &DocHead::from(&doc))?;
                tx.put(&schema::numbered(&doc.number.prefix, doc.number.year, doc.number.serial), doc.id.as_bytes());
                tx.put(&schema::issued(&doc.issuer, seq), doc.id.as_bytes());
                for a in &doc.attachments {
                    tx.put(&schema::attachment_use(&a.sha256, &doc.id), &[]);
                }
                let delivered_note = doc
                    .imported
                    .as_ref()
                    .map(|i| format!("imported from {} (sha256 {})", i.source_name, i.source_sha256))
                    .unwrap_or_default();
                for (unit, role, deadline) in &recipients {
                    let delivery = Delivery {
                        document_id: doc.id.clone(),
                        recipient: unit.clone(),
                        role: *role,
                        state: DeliveryState::Pending,
                        deadline: *deadline,
                        steps: vec![Step {
                            event_seq: seq,
                            kind: StepKind::Delivered,
                            at,
                            actor: doc.issuer.clone(),
                            text: delivered_note.clone(),
                            attachments: vec![],
                            forward: None,
                            key_id: key_id.clone(),
                        }],
                    };
                    // New keys (the document id is new, and so is the event), which lets a fan-out to a whole
                    // province be acknowledged before sled has sorted its 200,000 keys in.
                    tx.put_new(&schema::delivery(&doc.id, unit), &schema::encode(&delivery)?);
                    tx.put_new(&schema::inbox(unit, seq), doc.id.as_bytes());
                }
                remember(tx, &actor, &request_id, digest, FirstResult::Document(doc.id.clone()))?;
                Ok((doc, true))
            })
            .await;
        let (doc, new) = result?;
        if new {
            let units: BTreeSet<String> = doc.expansion.main.iter().chain(&doc.expansion.cc).cloned().collect();
            self.publish(Notice { kind: StepKind::Delivered, document_id: doc.id.clone(), units: Arc::new(units) });
        }
        Ok((doc, new))
    }

    /// Reads a document by id.
    pub async fn document(&self, id: &str) -> Result<Document, AppError> {
        let id = id.to_owned();
        self.read(move |s| {
            schema::load::<Document>(s, &schema::document(&id))?
                .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))
        })
        .await
    }

    /// Reads a document's header (number, title, issuer).
    pub async fn document_head(&self, id: &str) -> Result<Arc<DocHead>, AppError> {
        if let Some(head) = self.heads.get(id) {
            return Ok(head);
        }
        let id = id.to_owned();
        let head = self
            .read(move |s| {
                schema::load::<DocHead>(s, &schema::document_head(&id))?
                    .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))
            })
            .await?;
        let head = Arc::new(head);
        self.heads.insert(head.id.clone(), head.clone());
        Ok(head)
    }

    /// Reads a document by its number (any accepted bracket form).
    pub async fn document_by_number(&self, number: &str) -> Result<Document, AppError> {
        let n = DocNumber::parse(number)?;
        let shown = n.to_string();
        let id = self
            .read(move |s| Ok(s.get(&schema::numbered(&n.prefix, n.year, n.serial))?))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no document numbered {shown}")))?;
        self.document(&String::from_utf8_lossy(&id)).await
    }

    /// Documents a unit issued, newest first; `after` is a page token from the previous page.
    pub async fn issued_by(
        &self,
        unit: &str,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<Document>, Option<String>), AppError> {
        self.snapshot().unit(unit)?;
        let start = page_start(unit, after, schema::issued)?;
        let unit = unit.to_owned();
        self.read(move |s| {
            let prefix = schema::issued_by(&unit);
            let mut docs = vec![];
            let mut last_seq = None;
            for pair in s.scan(&prefix, start.as_deref(), true) {
                let (k, v) = pair?;
                if docs.len() == limit {
                    return Ok((docs, last_seq.map(|q: u64| q.to_string())));
                }
                let id = String::from_utf8_lossy(&v).into_owned();
                if let Some(d) = schema::load::<Document>(s, &schema::document(&id))? {
                    last_seq = Some(seq_of(&k));
                    docs.push(d);
                }
            }
            Ok((docs, None))
        })
        .await
    }

    /// Largest attachment accepted, in bytes.
    pub fn max_attachment_bytes(&self) -> u64 {
        self.config.max_attachment_bytes
    }
}

/// The files a draft attaches, with their titles.
fn draft_files(draft: &Draft) -> Vec<(&str, &str)> {
    draft.attachments.iter().map(|a| (a.sha256.as_str(), a.title.as_str())).collect()
}

/// The checked draft of an `IssueDocument` statement and its disclosure option (both title and disclosure are
/// required when issuing).
pub(crate) fn issue_draft(st: &pb::IssueDocument) -> Result<(Draft, Disclosure), AppError> {
    let draft = Draft::try_from(st.draft.clone().unwrap_or_default())?;
    if draft.title.is_empty() {
        return Err(AppError::field("draft.title", "标题 is required"));
    }
    let disclosure = draft.disclosure.ok_or_else(|| AppError::field("draft.disclosure", "信息公开选项 is required"))?;
    Ok((draft, disclosure))
}

/// The document a `ForwardDocument` statement forwards.
pub(crate) fn forward_source(st: &pb::ForwardDocument) -> Result<String, AppError> {
    if st.source_document_id.is_empty() {
        return Err(AppError::field("source_document_id", "the document to forward is required"));
    }
    Ok(st.source_document_id.clone())
}

/// The checked draft of a `ForwardDocument` statement: the genre defaults to 通知; an empty title is derived from
/// the source by the caller.
pub(crate) fn forward_draft(st: &pb::ForwardDocument) -> Result<Draft, AppError> {
    let mut wire_draft = st.draft.clone().unwrap_or_default();
    if wire_draft.genre == 0 {
        wire_draft.genre = pb::Genre::Notice as i32;
    }
    Draft::try_from(wire_draft)
}

/// The next serial for (prefix, year): one more than the last, skipping numbers already taken (imports).
fn allocate_serial(tx: &mut dyn Tx, prefix: &str, year: u32) -> Result<u32, AppError> {
    let key = schema::serial(prefix, year);
    let mut serial = schema::load_u32(tx, &key)?;
    loop {
        serial = serial
            .checked_add(1)
            .ok_or_else(|| AppError::Exhausted(format!("no serials left for {prefix} in {year}")))?;
        if tx.get(&schema::numbered(prefix, year, serial))?.is_none() {
            break;
        }
    }
    tx.put(&key, &serial.to_be_bytes());
    Ok(serial)
}

/// Marks the forwarder's delivery of `source` as forwarded, inside the forward's transaction.
pub(super) fn record_forward(
    tx: &mut dyn Tx,
    source: &str,
    forwarder: &str,
    doc: &Document,
    seq: u64,
    at: DateTime<Utc>,
    key_id: &str,
) -> Result<(), AppError> {
    let key = schema::delivery(source, forwarder);
    let mut held = schema::load_tx::<Delivery>(tx, &key)?.ok_or_else(|| {
        AppError::Precondition(format!("{forwarder} has not received {source}, so it cannot forward it"))
    })?;
    held.state = transition(held.state, Action::Forward)?;
    held.steps.push(Step {
        event_seq: seq,
        kind: StepKind::Forwarded,
        at,
        actor: forwarder.to_owned(),
        text: String::new(),
        attachments: vec![],
        forward: Some((doc.id.clone(), doc.number.to_string())),
        key_id: key_id.to_owned(),
    });
    schema::save(tx, &key, &held)?;
    tx.put(&schema::forward(source, &doc.id), forwarder.as_bytes());
    Ok(())
}

/// The sequence number at the end of an index key.
pub(crate) fn seq_of(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|i| key.get(i..))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The scan start for a page token (a decimal sequence number) in a per-unit index.
pub(crate) fn page_start(unit: &str, token: &str, key: fn(&str, u64) -> Vec<u8>) -> Result<Option<Vec<u8>>, AppError> {
    if token.is_empty() {
        return Ok(None);
    }
    let seq: u64 = token.parse().map_err(|_| AppError::field("page_token", "not a token from a previous page"))?;
    Ok(Some(key(unit, seq)))
}

/// Request id and acting unit of a statement.
pub trait RequestMeta {
    /// The acting unit.
    fn actor(&self) -> &str;
    /// The request id.
    fn request_id(&self) -> &str;
}

macro_rules! request_meta {
    ($($t:ty),*) => {$(
        impl RequestMeta for $t {
            fn actor(&self) -> &str { &self.unit_id }
            fn request_id(&self) -> &str { &self.request_id }
        }
    )*};
}
request_meta!(
    pb::IssueDocument,
    pb::ForwardDocument,
    pb::Acknowledge,
    pb::ReturnDelivery,
    pb::StartHandling,
    pb::SubmitReport,
    pb::Complete,
    pb::Remind
);

impl RequestMeta for pb::ImportDocument {
    fn actor(&self) -> &str {
        super::registry::OPERATOR_ACTOR
    }
    fn request_id(&self) -> &str {
        &self.request_id
    }
}
