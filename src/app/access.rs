//! Who may read what, decided in one place. Writes need no rules here: each is a statement signed by the acting
//! unit, checked where it is applied.
//!
//! - The operator reads everything and manages the registry.
//! - A unit reads documents it issued or received, directly or through a forward it received (a forward carries
//!   the document it forwards), and their attachments; its own inbox, deliveries and issued list.
//! - A unit reads the trace and the audit bundle of what it issued, and of everything forwarded from that (and so
//!   may read those forwards too).
//! - An auditor (a unit with a grant) reads everything whose issuer or recipient lies in its granted region
//!   subtrees, the overdue lists of those regions, and of the log the entries about documents it may read, with
//!   every registry change (the registry is open to every caller anyway, and the offline verifier learns unit keys
//!   only from those entries). Only the operator reads the whole log: each entry carries a full signed statement.
//! - Registry reads, checkpoints and consistency proofs (hashes only) are open to every authenticated caller.
//! - A unit attaches (to what it issues, forwards or reports) only a file it uploaded itself or one listed in a
//!   document it may read: knowing a file's SHA-256 is not a right to it.
//!
//! A refused read reveals nothing: a document that does not exist and one the caller may not read give the same
//! answer, by id and by number; so do a log event that does not exist and one the caller may not read.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{App, AppError, schema};
use crate::auth::{STREAMING_REQUESTS, TOKEN_TYPE};
use crate::domain::model::{Document, SealKey};
use crate::domain::number::DocNumber;
use crate::pb;

/// Who is calling, as established by the request token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The registry operator.
    Operator,
    /// A unit.
    Unit(String),
}

/// The answer to every refused or impossible document read, whichever it was.
fn no_document(id: &str) -> AppError {
    AppError::Denied(format!("no document {id:?} that you may read"))
}

/// The same answer for a number that is not allocated and for one whose document the caller may not read.
fn no_document_numbered(shown: &str) -> AppError {
    AppError::Denied(format!("no document numbered {shown} that you may read"))
}

/// The same answer for an event past the end of the log and for one the caller may not read.
fn no_event(seq: u64) -> AppError {
    AppError::Denied(format!("no event #{seq} that you may read"))
}

/// Which log entries one caller may read, remembering the answer per document over a stream or an export.
pub struct LogView {
    caller: Caller,
    auditor: bool,
    documents: HashMap<String, bool>,
}

impl LogView {
    /// True when the view lets every entry through (the operator's).
    pub fn whole(&self) -> bool {
        self.caller == Caller::Operator
    }
}

/// Largest tree walked when deciding read access through forwards.
const MAX_WALK: usize = 100_000;

/// The widest clock-skew window a server accepts: a day.
pub const MAX_SKEW_SECS: u64 = 86_400;

impl App {
    /// Checks a request token for `method` whose body hashed to `body_sha256`; on success a later process on
    /// this data directory refuses the token too (`horizon`).
    pub async fn authenticate(
        &self,
        token: &pb::AuthToken,
        method: &str,
        body_sha256: &[u8],
    ) -> Result<Caller, AppError> {
        let unauth = |m: String| AppError::Unauthenticated(m);
        let t = pb::RequestToken::decode(token.token.as_slice())
            .map_err(|e| unauth(format!("the request token does not decode: {e}")))?;
        if t.method != method {
            return Err(unauth(format!("the token is for {:?}, not {method:?}", t.method)));
        }
        let at = t
            .time
            .as_ref()
            .and_then(|ts| DateTime::<Utc>::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?))
            .ok_or_else(|| unauth("the token has no valid time".into()))?;
        // Freshness is a transport matter, judged by the machine's clock, not the service clock that deadlines
        // and records use (which tests and replays may set to another date).
        let now = Utc::now();
        // Capped so the arithmetic below cannot overflow whatever a config says (the command line refuses more).
        let skew = chrono::Duration::seconds(i64::try_from(self.config.auth_skew_secs.min(MAX_SKEW_SECS)).unwrap_or(0));
        if at < now - skew || at > now + skew {
            return Err(unauth(format!(
                "the token's time {at} is outside the accepted clock skew of {} s of the server's clock {now}",
                skew.num_seconds()
            )));
        }
        // Used nonces are remembered in memory only: what an earlier process may have accepted is refused here.
        self.horizons.check_floor(&t.unit_id, at)?;
        if t.nonce.len() != 16 {
            return Err(unauth("the token's nonce must be 16 bytes".into()));
        }
        let streaming = STREAMING_REQUESTS.contains(&method);
        if (streaming && !t.body_sha256.is_empty()) || (!streaming && t.body_sha256 != body_sha256) {
            return Err(unauth("the token was made for a different request body".into()));
        }
        let key = self.token_key(&t.unit_id, &token.key_id)?;
        self.verify_seal(&key, TOKEN_TYPE, &token.token, &token.signature, now)?;
        self.remember_nonce(&t.nonce, at + skew, now)?;
        self.horizons.admit(&t.unit_id, at, now).await?;
        Ok(if t.unit_id == "operator" { Caller::Operator } else { Caller::Unit(t.unit_id) })
    }

    fn token_key(&self, unit: &str, key_id: &str) -> Result<SealKey, AppError> {
        if unit == "operator" {
            if key_id != self.operator.key_id {
                return Err(AppError::Unauthenticated(format!("{key_id:?} is not the operator key")));
            }
            return Ok(self.operator.clone());
        }
        let snap = self.snapshot();
        match snap.key_owner.get(key_id) {
            Some(owner) if owner == unit => {}
            Some(owner) => {
                return Err(AppError::Unauthenticated(format!("key {key_id:?} belongs to {owner}, not {unit}")));
            }
            None => return Err(AppError::Unauthenticated(format!("unknown key {key_id:?}"))),
        }
        snap.registry
            .units
            .get(unit)
            .and_then(|u| u.keys.iter().find(|k| k.key_id == key_id))
            .cloned()
            .ok_or_else(|| AppError::Unauthenticated(format!("unknown key {key_id:?}")))
    }

    fn remember_nonce(&self, nonce: &[u8], keep_until: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AppError> {
        let mut h = Sha256::new();
        h.update(nonce);
        let key: [u8; 32] = h.finalize().into();
        let mut seen = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 100_000 {
            seen.retain(|_, until| *until > now);
        }
        if seen.get(&key).is_some_and(|until| *until > now) {
            return Err(AppError::Unauthenticated("this request token was used before (replayed nonce)".into()));
        }
        seen.insert(key, keep_until);
        Ok(())
    }

    /// True when `caller` is an auditor whose grants cover `region`.
    fn audits(&self, caller: &Caller, region: &str) -> bool {
        let Caller::Unit(u) = caller else { return false };
        let snap = self.snapshot();
        snap.registry.auditors.get(u).is_some_and(|rs| rs.iter().any(|r| snap.registry.region_within(region, r)))
    }

    /// True for the operator and for units with any auditor grant.
    pub fn is_operator_or_auditor(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Operator => true,
            Caller::Unit(u) => self.snapshot().registry.auditors.contains_key(u),
        }
    }

    fn region_of(&self, unit: &str) -> Option<String> {
        self.snapshot().registry.units.get(unit).map(|u| u.region.clone())
    }

    /// A document the caller may read, or PERMISSION_DENIED (also for one that does not exist).
    pub async fn readable_document(&self, caller: &Caller, id: &str) -> Result<Document, AppError> {
        let doc = match self.document(id).await {
            Ok(d) => d,
            Err(AppError::NotFound(m)) if *caller == Caller::Operator => return Err(AppError::NotFound(m)),
            Err(AppError::NotFound(_)) => return Err(no_document(id)),
            Err(e) => return Err(e),
        };
        if self.may_read(caller, &doc).await? { Ok(doc) } else { Err(no_document(id)) }
    }

    /// The read rule for one document.
    pub async fn may_read(&self, caller: &Caller, doc: &Document) -> Result<bool, AppError> {
        let Caller::Unit(unit) = caller else { return Ok(true) };
        if doc.issuer == *unit {
            return Ok(true);
        }
        let regions: Vec<String> = doc
            .expansion
            .main
            .iter()
            .chain(&doc.expansion.cc)
            .chain(std::iter::once(&doc.issuer))
            .filter_map(|u| self.region_of(u))
            .collect();
        if regions.iter().any(|r| self.audits(caller, r)) {
            return Ok(true);
        }
        // Issued something this document forwards (at any height): supervisors follow their directives down.
        let mut up = doc.forwards.clone();
        for _ in 0..64 {
            let Some(id) = up else { break };
            let parent = self.document(&id).await?;
            if parent.issuer == *unit {
                return Ok(true);
            }
            up = parent.forwards;
        }
        // Received directly, or received a forward of it (at any depth below).
        let (root, unit) = (doc.id.clone(), unit.clone());
        self.read(move |s| {
            let mut todo = vec![root];
            let mut walked = 0;
            while let Some(d) = todo.pop() {
                walked += 1;
                if walked > MAX_WALK {
                    break;
                }
                if s.get(&schema::delivery(&d, &unit))?.is_some() {
                    return Ok(true);
                }
                for pair in s.scan(&schema::forwards_of(&d), None, false) {
                    todo.push(schema::last_part(&pair?.0));
                }
            }
            Ok(false)
        })
        .await
    }

    /// The trace rule: the issuer of the document or of any document it forwards (up the chain), an auditor of the
    /// issuer's region, or the operator.
    pub async fn may_trace(&self, caller: &Caller, id: &str) -> Result<Document, AppError> {
        let doc = self.readable_document(caller, id).await?;
        let Caller::Unit(unit) = caller else { return Ok(doc) };
        // `may_read` already let in issuers up the chain; recipients may read but not trace.
        if self.region_of(&doc.issuer).is_some_and(|r| self.audits(caller, &r)) {
            return Ok(doc);
        }
        let mut current = Some(doc.clone());
        let mut steps = 0;
        while let Some(d) = current {
            if d.issuer == *unit {
                return Ok(doc);
            }
            steps += 1;
            current = match (&d.forwards, steps < 64) {
                (Some(up), true) => Some(self.document(up).await?),
                _ => None,
            };
        }
        Err(AppError::Denied(format!("only the issuers up the chain and auditors may trace {id:?}")))
    }

    /// The rule for a unit's own views (inbox, issued list, unit view, watch).
    pub fn may_see_unit(&self, caller: &Caller, unit: &str) -> Result<(), AppError> {
        let allowed = match caller {
            Caller::Operator => true,
            Caller::Unit(u) if u == unit => true,
            c => self.region_of(unit).is_some_and(|r| self.audits(c, &r)),
        };
        if allowed { Ok(()) } else { Err(AppError::Denied(format!("you may not read the records of {unit:?}"))) }
    }

    /// The rule for region-wide views (overdue by region).
    pub fn may_see_region(&self, caller: &Caller, region: &str) -> Result<(), AppError> {
        if *caller == Caller::Operator || self.audits(caller, region) {
            Ok(())
        } else {
            Err(AppError::Denied(format!("only the operator and auditors of {region:?} may read it whole")))
        }
    }

    /// A document by number that the caller may read. A unit gets one answer for a number not allocated and for a
    /// document it may not read, so the number does not tell it the document exists (nor its id).
    pub async fn readable_by_number(&self, caller: &Caller, number: &str) -> Result<Document, AppError> {
        let shown = DocNumber::parse(number)?.to_string();
        let doc = match self.document_by_number(number).await {
            Ok(d) => d,
            Err(AppError::NotFound(_)) if *caller != Caller::Operator => return Err(no_document_numbered(&shown)),
            Err(e) => return Err(e),
        };
        if self.may_read(caller, &doc).await? { Ok(doc) } else { Err(no_document_numbered(&shown)) }
    }

    /// One delivery, for its recipient or a reader of its document. Asking for a delivery to yourself of a
    /// document that does not exist and of one you neither received nor may read gives the same answer.
    pub async fn readable_delivery(
        &self,
        caller: &Caller,
        document_id: &str,
        recipient: &str,
    ) -> Result<super::deliveries::DeliveryView, AppError> {
        if *caller == Caller::Operator {
            return self.delivery(document_id, recipient).await;
        }
        if *caller == Caller::Unit(recipient.to_owned()) {
            match self.delivery(document_id, recipient).await {
                Err(AppError::NotFound(_)) => {}
                other => return other,
            }
        }
        // Readers of the document see who it went to anyway, so "not delivered to" tells them nothing new.
        self.readable_document(caller, document_id).await?;
        self.delivery(document_id, recipient).await
    }

    /// The rule for attachment files: the operator, the unit that uploaded the file, and readers of any document
    /// that lists the file (or whose delivery reports do).
    pub async fn may_download(&self, caller: &Caller, sha256: &str) -> Result<(), AppError> {
        match caller {
            Caller::Operator => Ok(()),
            Caller::Unit(unit) if self.may_attach(unit, sha256).await? => Ok(()),
            Caller::Unit(_) => Err(AppError::Denied(format!("no attachment {sha256} that you may read"))),
        }
    }

    /// Whether `unit` may name the file `sha256` in a statement: it uploaded the file itself, or may read a
    /// document that lists it.
    pub async fn may_attach(&self, unit: &str, sha256: &str) -> Result<bool, AppError> {
        let (key, prefix) = (schema::uploaded(sha256, unit), schema::attachment_uses(sha256));
        let (mine, docs) = self
            .read(move |s| {
                if s.get(&key)?.is_some() {
                    return Ok((true, vec![]));
                }
                let docs = s
                    .scan(&prefix, None, false)
                    .map(|p| Ok(schema::last_part(&p?.0)))
                    .collect::<Result<Vec<String>, AppError>>()?;
                Ok((false, docs))
            })
            .await?;
        if mine {
            return Ok(true);
        }
        let caller = Caller::Unit(unit.to_owned());
        for d in docs {
            if let Ok(doc) = self.document(&d).await
                && self.may_read(&caller, &doc).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Refuses a statement by `unit` that names files it may not attach. The permission is checked first, so a
    /// file never uploaded gets the same answer as someone else's: the refusal tells nothing of what is stored.
    pub async fn check_attachable(&self, unit: &str, files: &[(&str, &str)]) -> Result<(), AppError> {
        for &(sha256, title) in files {
            if !self.may_attach(unit, sha256).await? {
                return Err(AppError::Denied(format!(
                    "attachment {sha256} ({title}): {unit} may attach only a file it uploaded itself or one listed \
                     in a document it may read"
                )));
            }
            if self.blobs.size_of(sha256)?.is_none() {
                return Err(AppError::NotFound(format!("attachment {sha256} ({title}) is missing from the store")));
            }
        }
        Ok(())
    }

    /// Records who uploaded a file, once the file is durable: what lets a unit attach it later. Returns whether
    /// it is new to the caller: for a unit, whether that unit had not uploaded it before (never whether another
    /// unit had, which would tell it what others hold); for the operator, `newly_stored` as the file store says.
    pub async fn record_upload(&self, caller: &Caller, sha256: &str, newly_stored: bool) -> Result<bool, AppError> {
        // The operator attaches nothing (imports vouch for files by their own rule), so nothing is recorded for it.
        let Caller::Unit(unit) = caller else { return Ok(newly_stored) };
        let key = schema::uploaded(sha256, unit);
        self.write(move |tx| {
            let first = tx.get(&key)?.is_none();
            if first {
                tx.put(&key, &[]);
            }
            Ok(first)
        })
        .await
    }

    /// The rule for streaming the log and exporting stretches of it: the operator and auditors, who then get only
    /// the entries a [`LogView`] lets through.
    pub fn may_read_log(&self, caller: &Caller) -> Result<(), AppError> {
        if self.is_operator_or_auditor(caller) {
            Ok(())
        } else {
            Err(AppError::Denied("only the operator and auditors may read the log".into()))
        }
    }

    /// A fresh view of the log for `caller`.
    pub fn log_view(&self, caller: &Caller) -> LogView {
        LogView { caller: caller.clone(), auditor: self.is_operator_or_auditor(caller), documents: HashMap::new() }
    }

    /// Whether the view's caller may read a log entry: the operator every one; an auditor (and, for inclusion
    /// proofs, any unit) the events of documents it may read; registry changes the operator and auditors.
    pub async fn entry_visible(&self, view: &mut LogView, entry: &pb::LogEntry) -> Result<bool, AppError> {
        if view.caller == Caller::Operator {
            return Ok(true);
        }
        if entry.document_id.is_empty() {
            return Ok(view.auditor);
        }
        if let Some(known) = view.documents.get(&entry.document_id) {
            return Ok(*known);
        }
        let visible = match self.document(&entry.document_id).await {
            Ok(doc) => self.may_read(&view.caller, &doc).await?,
            Err(AppError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        view.documents.insert(entry.document_id.clone(), visible);
        Ok(visible)
    }

    /// An inclusion proof, for a caller that may read the event it proves (its entry travels with the proof).
    pub async fn readable_inclusion_proof(
        &self,
        caller: &Caller,
        seq: u64,
        tree_size: u64,
    ) -> Result<pb::InclusionProof, AppError> {
        let proof = match self.inclusion_proof(seq, tree_size).await {
            Err(AppError::NotFound(_)) if *caller != Caller::Operator => return Err(no_event(seq)),
            other => other?,
        };
        let entry = pb::LogEntry::decode(proof.entry.as_slice()).map_err(|e| {
            AppError::Store(crate::store::StoreError::Corrupt { key: format!("event #{seq}"), reason: e.to_string() })
        })?;
        if self.entry_visible(&mut self.log_view(caller), &entry).await? { Ok(proof) } else { Err(no_event(seq)) }
    }
}
