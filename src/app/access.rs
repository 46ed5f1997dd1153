//! Who may read what, decided in one place. Writes need no rules here: each is a statement signed by the acting
//! unit, checked where it is applied.
//!
//! - The operator reads everything and manages the registry.
//! - A unit reads documents it issued or received, directly or through a forward it received (a forward carries
//!   the document it forwards), and their attachments; its own inbox, deliveries and issued list.
//! - A unit reads the trace and the audit bundle of what it issued, and of everything forwarded from that (and so
//!   may read those forwards too).
//! - An auditor (a unit with a grant) reads everything whose issuer or recipient lies in its granted region
//!   subtrees, the overdue lists of those regions, and the whole log.
//! - Registry reads and checkpoints are open to every authenticated caller.
//!
//! A refused read reveals nothing: a document that does not exist and one the caller may not read give the same
//! answer.
use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{App, AppError, schema};
use crate::auth::{STREAMING_REQUESTS, TOKEN_TYPE};
use crate::domain::model::{Document, SealKey};
use crate::domain::seal;
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

/// Largest tree walked when deciding read access through forwards.
const MAX_WALK: usize = 100_000;

/// The widest clock-skew window a server accepts: a day.
pub const MAX_SKEW_SECS: u64 = 86_400;

impl App {
    /// Checks a request token for `method` whose body hashed to `body_sha256`.
    pub fn authenticate(&self, token: &pb::AuthToken, method: &str, body_sha256: &[u8]) -> Result<Caller, AppError> {
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
        // The nonces used before a restart are gone, so a token from then could be replayed: refuse tokens dated
        // before this process started. A client whose clock lags is refused only for that lag after a start.
        let started = self.started;
        if at < started {
            return Err(unauth(format!(
                "the token is dated {at}, before this server started at {started}; tokens made before a restart \
                 are refused (their nonces are not remembered across it): sign the request again, and check the \
                 client's clock if this persists"
            )));
        }
        if t.nonce.len() != 16 {
            return Err(unauth("the token's nonce must be 16 bytes".into()));
        }
        let streaming = STREAMING_REQUESTS.contains(&method);
        if (streaming && !t.body_sha256.is_empty()) || (!streaming && t.body_sha256 != body_sha256) {
            return Err(unauth("the token was made for a different request body".into()));
        }
        let key = self.token_key(&t.unit_id, &token.key_id)?;
        seal::verify(&key, TOKEN_TYPE, &token.token, &token.signature, now).map_err(|e| unauth(e.to_string()))?;
        self.remember_nonce(&t.nonce, at + skew, now)?;
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

    /// The rule for one delivery: its recipient, or a reader of its document.
    pub async fn may_see_delivery(&self, caller: &Caller, document_id: &str, recipient: &str) -> Result<(), AppError> {
        if *caller == Caller::Unit(recipient.to_owned()) {
            return Ok(());
        }
        self.readable_document(caller, document_id).await.map(|_| ())
    }

    /// The rule for attachment files: readers of any document that lists the file (or whose delivery reports do).
    pub async fn may_download(&self, caller: &Caller, sha256: &str) -> Result<(), AppError> {
        if *caller == Caller::Operator {
            return Ok(());
        }
        let prefix = schema::attachment_uses(sha256);
        let docs: Vec<String> = self
            .read(move |s| {
                s.scan(&prefix, None, false).map(|p| Ok(schema::last_part(&p?.0))).collect::<Result<_, AppError>>()
            })
            .await?;
        for d in docs {
            if let Ok(doc) = self.document(&d).await
                && self.may_read(caller, &doc).await?
            {
                return Ok(());
            }
        }
        Err(AppError::Denied(format!("no attachment {sha256} that you may read")))
    }

    /// The rule for log-wide reads (stream, ranges, proofs that reveal entries).
    pub fn may_read_log(&self, caller: &Caller) -> Result<(), AppError> {
        if self.is_operator_or_auditor(caller) {
            Ok(())
        } else {
            Err(AppError::Denied("only the operator and auditors may read the whole log".into()))
        }
    }
}
