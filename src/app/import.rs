//! 导入: bringing existing documents into gongwen. The operator, not the issuing unit, signs an import: it vouches
//! for a transcription, and no unit's seal is ever made to appear on something the unit did not sign here.
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::statements::{self, Draft};
use super::{App, AppError, schema};
use crate::domain::model::{Attachment, Delivery, Document, ImportSource, Step, StepKind};
use crate::domain::number::DocNumber;
use crate::domain::state::{Action, DeliveryState, transition};
use crate::pb;
use crate::store::Tx;

impl App {
    /// Imports one document from a signed `ImportDocument`. Returns the document and whether it is new.
    pub async fn import(&self, envelope: pb::SignedEnvelope) -> Result<(Document, bool), AppError> {
        let signed = self.open_envelope::<pb::ImportDocument>(&envelope)?;
        self.verify_operator(&envelope)?;
        let st = &signed.statement;
        let snap = self.snapshot();
        let number =
            DocNumber::parse(&st.number).map_err(|e| AppError::field("number", format!("{:?}: {e}", st.number)))?;
        let source_sha256 = statements::sha256("source_sha256", &st.source_sha256)?;
        if self.blobs.size_of(&source_sha256)?.is_none() {
            return Err(AppError::NotFound(format!("the source file {source_sha256} was never uploaded")));
        }
        let mut unmatched = vec![];
        let main = snap.registry.match_recipients(&st.main_written).unwrap_or_else(|m| {
            unmatched.extend(m);
            vec![]
        });
        let cc = snap.registry.match_recipients(&st.cc_written).unwrap_or_else(|m| {
            unmatched.extend(m);
            vec![]
        });
        // Every name that does not match is listed in one answer, the issuer's with the recipients', so a
        // transcription is corrected in one go.
        let issuer = snap.registry.unit_named(&st.issuer_name).cloned();
        let mut missing = vec![];
        if issuer.is_none() {
            missing.push(format!("issuer {:?} matches no unit", st.issuer_name));
        }
        if !unmatched.is_empty() {
            missing.push(format!("recipients {} match no group or unit", unmatched.join("、")));
        }
        let Some(issuer) = issuer.filter(|_| missing.is_empty()) else {
            return Err(AppError::NotFound(format!("not in the registry: {}", missing.join("; "))));
        };
        let mut wire = st.draft.clone().unwrap_or_default();
        wire.number_prefix = number.prefix.clone();
        wire.number_year = number.year;
        wire.main_recipients = vec![];
        wire.cc_recipients = vec![];
        wire.attachments = vec![];
        if wire.genre == 0 {
            wire.genre = pb::Genre::Notice as i32;
        }
        if st.dated_from_printing {
            // Dated by its printing, and recorded as such: never a 成文日期 the document does not state.
            let printed = statements::date("draft.printed_on", &wire.printed_on)?.ok_or_else(|| {
                AppError::field("draft.printed_on", "dated_from_printing needs the 印发日期 it dates the document by")
            })?;
            if statements::date("draft.dated", &wire.dated)?.is_some_and(|d| d != printed) {
                return Err(AppError::field(
                    "draft.dated",
                    format!(
                        "{:?} differs from the 印发日期 {printed} that dated_from_printing dates it by",
                        wire.dated
                    ),
                ));
            }
            wire.dated = printed.to_string();
        } else if wire.dated.trim().is_empty() {
            return Err(AppError::field(
                "draft.dated",
                "成文日期 is required; when the source prints none, set dated_from_printing to date it by its 印发日期",
            ));
        }
        let mut draft = Draft::try_from(wire)?;
        if draft.title.is_empty() {
            return Err(AppError::field("draft.title", "标题 is required"));
        }
        (draft.main, draft.cc) = (main, cc);
        let source_doc = match st.forwards_document_id.as_str() {
            "" => None,
            id => Some(self.document(id).await?),
        };
        let disclosure = match (draft.disclosure, &source_doc) {
            (Some(d), _) => d,
            (None, Some(src)) => src.disclosure,
            (None, None) => return Err(AppError::field("draft.disclosure", "信息公开选项 is required")),
        };
        let attachments = self.import_attachments(&st.attachments)?;
        let forwards = source_doc.map(|d| d.id);
        let imported = ImportSource {
            source_sha256,
            source_name: st.source_name.chars().take(256).collect(),
            position: st.position,
            operator_key_id: envelope.key_id.clone(),
            dated_from_printing: st.dated_from_printing,
            source_media_type: st.source_media_type.chars().take(128).collect(),
        };
        let mut new = self.prepare(&snap, &issuer, draft, disclosure, &signed, attachments, forwards)?;
        new.doc.number = number;
        new.doc.imported = Some(imported);
        self.commit_document(signed, new).await
    }

    fn import_attachments(&self, list: &[pb::ImportedAttachment]) -> Result<Vec<Attachment>, AppError> {
        let mut out = vec![];
        for (i, a) in list.iter().enumerate() {
            let field = format!("attachments[{i}]");
            let (sha256, size) = match a.sha256.as_str() {
                "" => (String::new(), 0),
                sha => {
                    let sha = statements::sha256(&field, sha)?;
                    let size = self.blobs.size_of(&sha)?.ok_or_else(|| {
                        AppError::NotFound(format!("attachment {sha} ({}) was never uploaded", a.title))
                    })?;
                    (sha, size)
                }
            };
            out.push(Attachment {
                ordinal: u32::try_from(i + 1).unwrap_or(u32::MAX),
                title: a.title.chars().take(512).collect(),
                media_type: a.media_type.chars().take(128).collect(),
                size,
                sha256,
                document_id: (!a.document_id.is_empty()).then(|| a.document_id.clone()),
            });
        }
        Ok(out)
    }
}

/// An imported number that is taken already: the earlier document when it came from the same source and position
/// (so importing a file twice creates nothing), ALREADY_EXISTS otherwise.
pub(super) fn number_taken(tx: &mut dyn Tx, doc: &Document) -> Result<Option<Document>, AppError> {
    let n = &doc.number;
    let Some(id) = tx.get(&schema::numbered(&n.prefix, n.year, n.serial))? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    let earlier = schema::load_tx::<Document>(tx, &schema::document(&id))?
        .ok_or_else(|| AppError::NotFound(format!("document {id} is missing")))?;
    let same_source = match (&earlier.imported, &doc.imported) {
        (Some(a), Some(b)) => a.source_sha256 == b.source_sha256 && a.position == b.position,
        _ => false,
    };
    if same_source {
        Ok(Some(earlier))
    } else {
        Err(AppError::AlreadyExists(format!("{n} is taken already, by {} ({})", earlier.id, earlier.title)))
    }
}

/// The forward link of an imported forwarding document. A forward shows that the forwarder received the source:
/// a pending delivery is marked acknowledged first (by the import, not by the unit's seal). A forwarder that was not
/// a recipient on record still gets the link, so the trace can follow the chain.
pub(super) fn record_imported_forward(
    tx: &mut dyn Tx,
    source: &str,
    forwarder: &str,
    doc: &Document,
    seq: u64,
    at: DateTime<Utc>,
    key_id: &str,
) -> Result<(), AppError> {
    let key = schema::delivery(source, forwarder);
    if let Some(mut held) = schema::load_tx::<Delivery>(tx, &key)? {
        let step = |kind, text: String, forward| Step {
            event_seq: seq,
            kind,
            at,
            actor: forwarder.to_owned(),
            text,
            attachments: vec![],
            forward,
            key_id: key_id.to_owned(),
        };
        if held.state == DeliveryState::Pending {
            held.state = transition(held.state, Action::Acknowledge)?;
            held.steps.push(step(StepKind::Acknowledged, format!("imported: received, as {} shows", doc.number), None));
        }
        held.state = transition(held.state, Action::Forward)?;
        held.steps.push(step(StepKind::Forwarded, "imported".into(), Some((doc.id.clone(), doc.number.to_string()))));
        schema::save(tx, &key, &held)?;
    }
    tx.put(&schema::forward(source, &doc.id), forwarder.as_bytes());
    Ok(())
}

/// SHA-256 of a source file, as the importer and the server both name it.
pub fn source_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
