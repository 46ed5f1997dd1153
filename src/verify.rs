//! The offline verifier: checks an audit bundle without trusting the server. Every unit signature against keys
//! learnt from operator-signed registry changes and from key changes signed by the operator or by the unit's
//! parent unit (with a key it held at the time), every key's validity at signing time, the Merkle root against
//! the signed checkpoint (or each inclusion proof), the order and completeness of the entries, and consistency
//! with an older checkpoint. Pure: bytes in, a report out.
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use prost::Message;

use crate::app::log::open_checkpoint;
use crate::domain::keys::parent_unit;
use crate::domain::merkle::{self, Hash};
use crate::domain::model::{KeyAlgorithm, Region, Registry, SealKey, Unit};
use crate::domain::seal;
use crate::pb;
use crate::signing::Statement;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The event concerned, if the failure is about one.
    pub event_seq: Option<u64>,
    /// Which check: checkpoint, order, missing, inclusion, root, entry, registry, keys (a key change by someone
    /// who may not make it), key, signature, actor, consistency.
    pub check: &'static str,
    /// What exactly is wrong.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event_seq {
            Some(seq) => write!(f, "event #{seq}: {} check failed: {}", self.check, self.detail),
            None => write!(f, "{} check failed: {}", self.check, self.detail),
        }
    }
}

/// What the verifier found.
#[derive(Debug, Default)]
pub struct Report {
    /// Size of the log in the checkpoint.
    pub tree_size: u64,
    /// Root hash in the checkpoint (hex).
    pub root_hash: String,
    /// Entries checked.
    pub entries: usize,
    /// Unit and operator signatures that verified.
    pub signatures_ok: usize,
    /// Everything that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    fn fail(&mut self, event_seq: Option<u64>, check: &'static str, detail: impl Into<String>) {
        self.failures.push(Failure { event_seq, check, detail: detail.into() });
    }
}

/// Keys the caller trusts, obtained out of band; `None` trusts the bundle's own copy (and the report says so).
#[derive(Debug, Default, Clone)]
pub struct Trust {
    /// The log's public key.
    pub log_public_key: Option<Vec<u8>>,
    /// The operator's public key.
    pub operator_public_key: Option<Vec<u8>>,
    /// A checkpoint kept from before, to check the log only grew since.
    pub previous_checkpoint: Option<pb::SignedCheckpoint>,
}

fn to_hash(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

fn time_of(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

/// The acting unit a statement names, by its payload type.
pub(crate) fn statement_actor(env: &pb::SignedEnvelope) -> Result<String, String> {
    fn unit<M: Statement>(payload: &[u8], f: fn(M) -> String) -> Result<String, String> {
        M::decode(payload).map(f).map_err(|e| format!("the {} payload does not decode: {e}", M::TYPE))
    }
    let p = env.payload.as_slice();
    match env.payload_type.as_str() {
        t if t == pb::IssueDocument::TYPE => unit::<pb::IssueDocument>(p, |m| m.unit_id),
        t if t == pb::ForwardDocument::TYPE => unit::<pb::ForwardDocument>(p, |m| m.unit_id),
        t if t == pb::Acknowledge::TYPE => unit::<pb::Acknowledge>(p, |m| m.unit_id),
        t if t == pb::ReturnDelivery::TYPE => unit::<pb::ReturnDelivery>(p, |m| m.unit_id),
        t if t == pb::StartHandling::TYPE => unit::<pb::StartHandling>(p, |m| m.unit_id),
        t if t == pb::SubmitReport::TYPE => unit::<pb::SubmitReport>(p, |m| m.unit_id),
        t if t == pb::Complete::TYPE => unit::<pb::Complete>(p, |m| m.unit_id),
        t if t == pb::Remind::TYPE => unit::<pb::Remind>(p, |m| m.unit_id),
        t if t == pb::ChangeUnitKeys::TYPE => unit::<pb::ChangeUnitKeys>(p, |m| {
            if m.signer_unit_id.is_empty() { OPERATOR.to_owned() } else { m.signer_unit_id }
        }),
        other => Err(format!("unknown payload type {other:?}")),
    }
}

/// The actor name the server records for operator-signed events.
const OPERATOR: &str = "operator";

/// Registry changes and imports are the operator's; every other event is a unit's.
fn by_operator(kind: i32) -> bool {
    kind == pb::LogEventKind::RegistryChanged as i32 || kind == pb::LogEventKind::Imported as i32
}

pub(crate) fn expected_type(kind: i32) -> Option<&'static str> {
    use pb::LogEventKind as K;
    Some(match K::try_from(kind).ok()? {
        K::RegistryChanged => pb::RegistryChange::TYPE,
        K::Issued => pb::IssueDocument::TYPE,
        K::Forwarded => pb::ForwardDocument::TYPE,
        K::Acknowledged => pb::Acknowledge::TYPE,
        K::Returned => pb::ReturnDelivery::TYPE,
        K::HandlingStarted => pb::StartHandling::TYPE,
        K::Reported => pb::SubmitReport::TYPE,
        K::Completed => pb::Complete::TYPE,
        K::Reminded => pb::Remind::TYPE,
        K::Imported => pb::ImportDocument::TYPE,
        K::KeysChanged => pb::ChangeUnitKeys::TYPE,
        K::Unspecified => return None,
    })
}

/// Checks a bundle. Every failure is reported; nothing stops at the first one.
pub fn verify_bundle(bundle: &pb::AuditBundle, trust: &Trust) -> Report {
    let mut r = Report { entries: bundle.entries.len(), ..Report::default() };
    let log_key = trust.log_public_key.as_deref().unwrap_or(&bundle.log_public_key);
    if log_key != bundle.log_public_key.as_slice() {
        r.fail(None, "checkpoint", "the bundle names a different log key than the trusted one");
    }
    let Some(signed) = &bundle.checkpoint else {
        r.fail(None, "checkpoint", "the bundle has no checkpoint");
        return r;
    };
    let checkpoint = match open_checkpoint(signed, log_key) {
        Ok(c) => c,
        Err(e) => {
            r.fail(None, "checkpoint", e);
            return r;
        }
    };
    r.tree_size = checkpoint.tree_size;
    r.root_hash = hex::encode(&checkpoint.root_hash);
    let Some(root) = to_hash(&checkpoint.root_hash) else {
        r.fail(None, "checkpoint", "the root hash is not 32 bytes");
        return r;
    };
    check_log(bundle, &checkpoint, &root, &mut r);
    check_signatures(bundle, trust, &mut r);
    if let Some(previous) = &trust.previous_checkpoint {
        check_consistency(bundle, previous, log_key, &checkpoint, &root, &mut r);
    }
    r
}

/// Order, completeness, inclusion and the root.
fn check_log(bundle: &pb::AuditBundle, checkpoint: &pb::Checkpoint, root: &Hash, r: &mut Report) {
    let size = checkpoint.tree_size;
    let mut previous = 0u64;
    let mut leaves = Vec::with_capacity(bundle.entries.len());
    for (pos, e) in bundle.entries.iter().enumerate() {
        let seq = e.event_seq;
        if seq <= previous {
            r.fail(
                Some(seq),
                "order",
                format!("entry {pos} comes after event #{previous}: the entries are out of order or repeated"),
            );
        }
        // Saturating: a hostile bundle may number an entry u64::MAX, and the entry after it must not overflow.
        let next = previous.saturating_add(1);
        if bundle.complete && seq > next {
            for missing in next..seq.min(next.saturating_add(100)) {
                r.fail(Some(missing), "missing", "the bundle claims the whole log but this event is not in it");
            }
        }
        previous = previous.max(seq);
        if seq == 0 || seq > size {
            r.fail(Some(seq), "inclusion", format!("the checkpoint covers events 1 to {size} only"));
            continue;
        }
        let leaf = merkle::leaf_hash(&e.entry);
        leaves.push(leaf);
        match pb::LogEntry::decode(e.entry.as_slice()) {
            Ok(entry) if entry.event_seq != seq => r.fail(
                Some(seq),
                "entry",
                format!("the entry says it is event #{}, but stands as #{seq}", entry.event_seq),
            ),
            Ok(_) => {}
            Err(err) => r.fail(Some(seq), "entry", format!("the entry does not decode: {err}")),
        }
        if !bundle.complete {
            let proof: Option<Vec<Hash>> = e.inclusion.iter().map(|h| to_hash(h)).collect();
            let ok = proof.is_some_and(|p| merkle::verify_inclusion(seq - 1, size, &leaf, &p, root));
            if !ok {
                r.fail(
                    Some(seq),
                    "inclusion",
                    "the entry is not in the log the checkpoint signs (altered, or a wrong proof)",
                );
            }
        }
    }
    if bundle.complete {
        if previous != size {
            r.fail(
                None,
                "missing",
                format!("the bundle claims the whole log of {size} events but ends at #{previous}"),
            );
        } else if merkle::reference_root(&leaves) != *root {
            r.fail(None, "root", "the root recomputed from the entries differs from the signed checkpoint");
        }
    }
}

/// A key as the registry changes in the bundle leave it, and the event that first registered it.
struct KnownKey {
    owner: String,
    key: SealKey,
    added_at: u64,
}

/// Registry changes signed by the operator, and key changes signed by the operator or the unit's parent unit,
/// teach unit keys (first pass, so a revocation recorded later but dated earlier — a compromised key — applies to
/// everything signed after its date, key changes included); every other entry must then be signed by its actor's
/// key, registered before it and valid when the server recorded it.
fn check_signatures(bundle: &pb::AuditBundle, trust: &Trust, r: &mut Report) {
    let operator_key = trust.operator_public_key.as_deref().unwrap_or(&bundle.operator_public_key);
    if operator_key != bundle.operator_public_key.as_slice() {
        r.fail(None, "registry", "the bundle names a different operator key than the trusted one");
    }
    let operator = SealKey {
        key_id: bundle.operator_key_id.clone(),
        algorithm: KeyAlgorithm::Ed25519,
        public_key: operator_key.to_vec(),
        valid_from: None,
        revoked_at: None,
    };
    let mut entries = vec![];
    for e in &bundle.entries {
        let seq = Some(e.event_seq);
        let Ok(entry) = pb::LogEntry::decode(e.entry.as_slice()) else { continue };
        let Some(env) = entry.envelope.clone() else {
            r.fail(seq, "signature", "the entry carries no signed statement");
            continue;
        };
        if Some(env.payload_type.as_str()) != expected_type(entry.kind) {
            r.fail(seq, "entry", format!("a {:?} entry holds a {} statement", entry.kind, env.payload_type));
            continue;
        }
        let Some(at) = time_of(&entry.recorded_at) else {
            r.fail(seq, "entry", "the entry has no recording time");
            continue;
        };
        entries.push((e.event_seq, entry, env, at));
    }
    let mut keys: HashMap<String, KnownKey> = HashMap::new();
    // Regions and units as the registry changes so far describe them: who is whose parent unit.
    let mut registry = Registry::default();
    let mut by_parents = vec![];
    for (event_seq, entry, env, at) in &entries {
        if entry.kind == pb::LogEventKind::KeysChanged as i32 {
            let event = KeyEvent { seq: *event_seq, entry, env, at: *at };
            if let Some(signed_with) = learn_key_change(&event, &operator, &registry, &mut keys, r) {
                by_parents.push((event, signed_with));
            }
            continue;
        }
        if !by_operator(entry.kind) {
            continue;
        }
        let seq = Some(*event_seq);
        let (check, what) = if entry.kind == pb::LogEventKind::Imported as i32 {
            ("import", "import")
        } else {
            ("registry", "registry change")
        };
        if env.key_id != operator.key_id {
            r.fail(
                seq,
                check,
                format!("{what} signed by {:?}, not the operator key {:?}", env.key_id, operator.key_id),
            );
            continue;
        }
        if entry.actor != OPERATOR {
            r.fail(seq, "actor", format!("an operator-signed {what} is recorded for {}", entry.actor));
        }
        if let Err(err) = seal::verify(&operator, &env.payload_type, &env.payload, &env.signature, *at) {
            r.fail(seq, "signature", format!("{what}: {err}"));
            continue;
        }
        r.signatures_ok += 1;
        if entry.kind != pb::LogEventKind::RegistryChanged as i32 {
            continue;
        }
        match pb::RegistryChange::decode(env.payload.as_slice()) {
            Ok(change) => {
                learn_units(&change, &mut registry);
                learn_keys(&change, &mut keys, *event_seq, *at, r);
            }
            Err(err) => r.fail(seq, "registry", format!("the registry change does not decode: {err}")),
        }
    }
    // A parent's key revoked later but dated before its key change (a compromise) voids that change's signature.
    for (event, key_id) in &by_parents {
        let Some(known) = keys.get(key_id) else { continue };
        if let Err(err) =
            seal::verify(&known.key, &event.env.payload_type, &event.env.payload, &event.env.signature, event.at)
        {
            r.signatures_ok = r.signatures_ok.saturating_sub(1);
            r.fail(Some(event.seq), "signature", format!("key change: {err}"));
        }
    }
    for (seq, entry, env, at) in &entries {
        if by_operator(entry.kind) || entry.kind == pb::LogEventKind::KeysChanged as i32 {
            continue;
        }
        let seq = Some(*seq);
        let Some(known) = keys.get(&env.key_id).filter(|k| Some(k.added_at) < seq) else {
            r.fail(seq, "key", format!("key {:?} was never registered before this event", env.key_id));
            continue;
        };
        if known.owner != entry.actor {
            r.fail(
                seq,
                "actor",
                format!(
                    "key {:?} belongs to {}, but the event is recorded for {}",
                    env.key_id, known.owner, entry.actor
                ),
            );
        }
        match statement_actor(env) {
            Ok(unit) if unit != entry.actor => {
                r.fail(seq, "actor", format!("the statement is made for {unit}, but recorded for {}", entry.actor))
            }
            Ok(_) => {}
            Err(err) => r.fail(seq, "entry", err),
        }
        match seal::verify(&known.key, &env.payload_type, &env.payload, &env.signature, *at) {
            Ok(()) => r.signatures_ok += 1,
            Err(err) => r.fail(seq, "signature", err.to_string()),
        }
    }
}

fn seal_of(k: &pb::SealKey) -> Option<SealKey> {
    Some(SealKey {
        key_id: k.key_id.clone(),
        algorithm: KeyAlgorithm::parse(&k.algorithm)?,
        public_key: k.public_key.clone(),
        valid_from: time_of(&k.valid_from),
        revoked_at: time_of(&k.revoked_at),
    })
}

fn add_key(keys: &mut HashMap<String, KnownKey>, owner: &str, k: &pb::SealKey, seq: u64, r: &mut Report) {
    if let Some(known) = keys.get(&k.key_id)
        && known.owner != owner
    {
        r.fail(
            Some(seq),
            "registry",
            format!("key {:?} is registered again, for {owner} after {}", k.key_id, known.owner),
        );
        return;
    }
    let Some(key) = seal_of(k) else {
        r.fail(Some(seq), "registry", format!("key {:?} has an unknown algorithm {:?}", k.key_id, k.algorithm));
        return;
    };
    keys.entry(k.key_id.clone()).or_insert(KnownKey { owner: owner.to_owned(), key, added_at: seq });
}

/// Regions and units of a registry change, for finding parent units; what does not convert is left out (the
/// server would have refused it, so no key change can rest on it).
fn learn_units(change: &pb::RegistryChange, registry: &mut Registry) {
    for region in &change.regions {
        if let Ok(region) = Region::try_from(region.clone()) {
            registry.regions.insert(region.code.clone(), region);
        }
    }
    for unit in &change.units {
        if let Ok(unit) = Unit::try_from(pb::Unit { seal_keys: vec![], ..unit.clone() }) {
            registry.units.insert(unit.id.clone(), unit);
        }
    }
}

/// A `KEYS_CHANGED` entry being checked.
struct KeyEvent<'a> {
    seq: u64,
    entry: &'a pb::LogEntry,
    env: &'a pb::SignedEnvelope,
    at: DateTime<Utc>,
}

/// Checks a key change — signed by the operator, or by the changed unit's parent unit with a key registered
/// before and valid at the time — and applies it. Returns the parent's key id, to be checked again once every
/// revocation in the bundle is known.
fn learn_key_change(
    e: &KeyEvent<'_>,
    operator: &SealKey,
    registry: &Registry,
    keys: &mut HashMap<String, KnownKey>,
    r: &mut Report,
) -> Option<String> {
    let seq = Some(e.seq);
    let change = match pb::ChangeUnitKeys::decode(e.env.payload.as_slice()) {
        Ok(c) => c,
        Err(err) => {
            r.fail(seq, "keys", format!("the key change does not decode: {err}"));
            return None;
        }
    };
    let target = &change.unit_id;
    let signer = if change.signer_unit_id.is_empty() { OPERATOR } else { change.signer_unit_id.as_str() };
    if e.entry.actor != signer {
        r.fail(seq, "actor", format!("a key change signed for {signer} is recorded for {}", e.entry.actor));
    }
    let mut parent_key = None;
    let key = if signer == OPERATOR {
        if e.env.key_id != operator.key_id {
            r.fail(
                seq,
                "keys",
                format!("the key change for {target} is signed by {:?}, not the operator key", e.env.key_id),
            );
            return None;
        }
        operator
    } else {
        let Some(known) = keys.get(&e.env.key_id).filter(|k| k.added_at < e.seq) else {
            r.fail(seq, "keys", format!("key {:?} was never registered before this key change", e.env.key_id));
            return None;
        };
        if known.owner != signer {
            r.fail(
                seq,
                "keys",
                format!("key {:?} belongs to {}, not to the signer {signer}", e.env.key_id, known.owner),
            );
            return None;
        }
        let parent = registry.units.get(target).ok_or(None).and_then(|u| parent_unit(registry, u).map_err(Some));
        match parent {
            Ok(p) if p.id == signer => {}
            Ok(p) => {
                r.fail(
                    seq,
                    "keys",
                    format!(
                        "{signer} changed the keys of {target}, whose parent unit is {}: only it or the operator may",
                        p.id
                    ),
                );
                return None;
            }
            Err(_) => {
                r.fail(
                    seq,
                    "keys",
                    format!("{signer} changed the keys of {target}, which has no parent unit: only the operator may"),
                );
                return None;
            }
        }
        parent_key = Some(e.env.key_id.clone());
        &known.key
    };
    if let Err(err) = seal::verify(key, &e.env.payload_type, &e.env.payload, &e.env.signature, e.at) {
        r.fail(seq, "signature", format!("key change: {err}"));
        return None;
    }
    r.signatures_ok += 1;
    for k in &change.add_keys {
        add_key(keys, target, k, e.seq, r);
    }
    for rv in &change.revoke {
        revoke_known(keys, target, rv, e.seq, e.at, r);
    }
    parent_key
}

fn revoke_known(
    keys: &mut HashMap<String, KnownKey>,
    unit: &str,
    rv: &pb::KeyRevocation,
    seq: u64,
    at: DateTime<Utc>,
    r: &mut Report,
) {
    match keys.get_mut(&rv.key_id) {
        Some(known) if known.owner == unit => {
            let when = time_of(&rv.revoked_at).unwrap_or(at);
            known.key.revoked_at = Some(known.key.revoked_at.map_or(when, |old| old.min(when)));
        }
        _ => r.fail(Some(seq), "registry", format!("{unit} revokes key {:?}, which is not its own", rv.key_id)),
    }
}

/// Applies one registry change recorded at `at` (the server's time for a revocation that names none).
fn learn_keys(
    change: &pb::RegistryChange,
    keys: &mut HashMap<String, KnownKey>,
    seq: u64,
    at: DateTime<Utc>,
    r: &mut Report,
) {
    for unit in &change.units {
        for k in &unit.seal_keys {
            add_key(keys, &unit.id, k, seq, r);
        }
    }
    for kc in &change.key_changes {
        match &kc.change {
            Some(pb::key_change::Change::Add(k)) => add_key(keys, &kc.unit_id, k, seq, r),
            Some(pb::key_change::Change::Revoke(rv)) => revoke_known(keys, &kc.unit_id, rv, seq, at, r),
            None => {}
        }
    }
}

fn check_consistency(
    bundle: &pb::AuditBundle,
    previous: &pb::SignedCheckpoint,
    log_key: &[u8],
    checkpoint: &pb::Checkpoint,
    root: &Hash,
    r: &mut Report,
) {
    let old = match open_checkpoint(previous, log_key) {
        Ok(c) => c,
        Err(e) => return r.fail(None, "consistency", format!("the previous checkpoint: {e}")),
    };
    if old.origin != checkpoint.origin {
        return r.fail(None, "consistency", format!("the previous checkpoint is of another log ({})", old.origin));
    }
    let Some(old_root) = to_hash(&old.root_hash) else {
        return r.fail(None, "consistency", "the previous root is not 32 bytes");
    };
    if old.tree_size > checkpoint.tree_size {
        return r.fail(
            None,
            "consistency",
            format!("the log shrank from {} to {} events", old.tree_size, checkpoint.tree_size),
        );
    }
    let hashes: Option<Vec<Hash>> = match &bundle.consistency {
        Some(p) if p.old_size == old.tree_size && p.new_size == checkpoint.tree_size => {
            p.hashes.iter().map(|h| to_hash(h)).collect()
        }
        _ if old.tree_size == checkpoint.tree_size => Some(vec![]),
        _ => {
            return r.fail(
                None,
                "consistency",
                format!("the bundle has no consistency proof from size {}", old.tree_size),
            );
        }
    };
    let ok =
        hashes.is_some_and(|h| merkle::verify_consistency(old.tree_size, checkpoint.tree_size, &old_root, root, &h));
    if !ok {
        r.fail(
            None,
            "consistency",
            format!(
                "the log of {} events is not an extension of the earlier checkpoint of {} events: the log was rewritten or forked",
                checkpoint.tree_size, old.tree_size
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::log::sign_checkpoint;
    use crate::signing::Signer;
    use chrono::TimeZone;

    /// A log built by hand, as a server (honest or not) would: operator and log keys of our own.
    struct Synthetic {
        operator: Signer,
        log: Signer,
        entries: Vec<Vec<u8>>,
    }

    fn ts(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds: secs, nanos: 0 })
    }

    impl Synthetic {
        fn new() -> Synthetic {
            Synthetic {
                operator: Signer::from_secret("op", [1; 32]),
                log: Signer::from_secret("log", [2; 32]),
                entries: vec![],
            }
        }

        fn push(&mut self, kind: pb::LogEventKind, actor: &str, at: i64, env: pb::SignedEnvelope) {
            let entry = pb::LogEntry {
                event_seq: self.entries.len() as u64 + 1,
                kind: kind as i32,
                recorded_at: ts(at),
                actor: actor.into(),
                document_id: String::new(),
                envelope: Some(env),
            };
            self.entries.push(entry.encode_to_vec());
        }

        fn register(&mut self, unit: &str, key: &Signer, revoked_at: Option<i64>, at: i64) {
            let mut seal = key.seal_key();
            seal.revoked_at = revoked_at.and_then(ts);
            let change = pb::RegistryChange {
                request_id: format!("reg-{unit}-{at}"),
                units: vec![pb::Unit { id: unit.into(), seal_keys: vec![seal], ..Default::default() }],
                ..Default::default()
            };
            let env = self.operator.envelope(&change);
            self.push(pb::LogEventKind::RegistryChanged, "operator", at, env);
        }

        fn ack(&mut self, unit: &str, key: &Signer, at: i64) {
            let m = pb::Acknowledge {
                request_id: format!("a{at}"),
                unit_id: unit.into(),
                document_id: "d-1".into(),
                registration_number: String::new(),
            };
            let env = key.envelope(&m);
            self.push(pb::LogEventKind::Acknowledged, unit, at, env);
        }

        fn leaves(&self, n: usize) -> Vec<Hash> {
            self.entries[..n].iter().map(|e| merkle::leaf_hash(e)).collect()
        }

        fn checkpoint(&self, n: usize) -> pb::SignedCheckpoint {
            let at = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap_or_default();
            sign_checkpoint(&self.log, n as u64, merkle::reference_root(&self.leaves(n)), at)
        }

        fn bundle(&self) -> pb::AuditBundle {
            pb::AuditBundle {
                log_public_key: self.log.public_key().to_vec(),
                operator_public_key: self.operator.public_key().to_vec(),
                operator_key_id: self.operator.key_id.clone(),
                checkpoint: Some(self.checkpoint(self.entries.len())),
                entries: self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| pb::BundleEntry { event_seq: i as u64 + 1, entry: e.clone(), inclusion: vec![] })
                    .collect(),
                complete: true,
                consistency: None,
            }
        }
    }

    #[test]
    fn an_honest_synthetic_log_verifies() {
        let mut s = Synthetic::new();
        let k = Signer::from_secret("u#1", [3; 32]);
        s.register("u", &k, None, 100);
        s.ack("u", &k, 200);
        let report = verify_bundle(&s.bundle(), &Trust::default());
        assert!(report.ok(), "{:?}", report.failures);
        assert_eq!(report.signatures_ok, 2);
    }

    #[test]
    fn a_signature_after_revocation_is_flagged_and_earlier_ones_stay_valid() {
        let mut s = Synthetic::new();
        let k = Signer::from_secret("u#1", [3; 32]);
        s.register("u", &k, Some(300), 100);
        s.ack("u", &k, 200);
        s.ack("u", &k, 400);
        let report = verify_bundle(&s.bundle(), &Trust::default());
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        let f = &report.failures[0];
        assert_eq!((f.event_seq, f.check), (Some(3), "signature"));
        assert!(f.detail.contains("revoked"), "{}", f.detail);
    }

    #[test]
    fn unknown_keys_impostors_and_forged_registry_changes_are_named() {
        let mut s = Synthetic::new();
        let k = Signer::from_secret("u#1", [3; 32]);
        let stranger = Signer::from_secret("x#1", [4; 32]);
        s.ack("u", &k, 50); // before the key was registered
        s.register("u", &k, None, 100);
        s.register("v", &Signer::from_secret("v#1", [5; 32]), None, 110);
        s.ack("v", &k, 200); // u's key, recorded for v
        let forged = stranger.envelope(&pb::RegistryChange { request_id: "evil".into(), ..Default::default() });
        s.push(pb::LogEventKind::RegistryChanged, "operator", 300, forged);
        let report = verify_bundle(&s.bundle(), &Trust::default());
        let found: Vec<(Option<u64>, &str)> = report.failures.iter().map(|f| (f.event_seq, f.check)).collect();
        assert!(found.contains(&(Some(1), "key")), "{found:?}");
        assert!(found.contains(&(Some(4), "actor")), "{found:?}");
        assert!(found.contains(&(Some(5), "registry")), "{found:?}");
    }

    /// A province, a city and two of its districts, with finance bureaus keyed `p`, `c`, `d`, `e`.
    fn tree(s: &mut Synthetic, keys: &[&Signer; 4]) {
        let region = |code: &str, parent: &str, level: pb::Level| pb::Region {
            code: code.into(),
            name: code.into(),
            parent_code: parent.into(),
            level: level as i32,
        };
        let ids = ["370000.czt", "370300.czj", "370304.czj", "370302.czj"];
        let places = [
            ("370000", pb::Level::Province),
            ("370300", pb::Level::City),
            ("370304", pb::Level::County),
            ("370302", pb::Level::County),
        ];
        let units = ids
            .iter()
            .zip(places)
            .zip(keys)
            .map(|((id, (code, level)), key)| pb::Unit {
                id: (*id).into(),
                full_name: format!("{id} 财政局"),
                region_code: code.into(),
                level: level as i32,
                kind: pb::UnitKind::FinanceBureau as i32,
                seal_keys: vec![key.seal_key()],
                ..Default::default()
            })
            .collect();
        let change = pb::RegistryChange {
            request_id: "tree".into(),
            regions: vec![
                region("370000", "", pb::Level::Province),
                region("370300", "370000", pb::Level::City),
                region("370304", "370300", pb::Level::County),
                region("370302", "370300", pb::Level::County),
            ],
            units,
            ..Default::default()
        };
        let env = s.operator.envelope(&change);
        s.push(pb::LogEventKind::RegistryChanged, "operator", 100, env);
    }

    fn key_change(
        s: &mut Synthetic,
        by: &Signer,
        signer: &str,
        unit: &str,
        add: &Signer,
        revoke: Option<(&str, i64)>,
        at: i64,
    ) {
        let m = pb::ChangeUnitKeys {
            request_id: format!("k{at}"),
            signer_unit_id: signer.into(),
            unit_id: unit.into(),
            add_keys: vec![add.seal_key()],
            revoke: revoke
                .map(|(k, t)| pb::KeyRevocation { key_id: k.into(), revoked_at: ts(t), reason: String::new() })
                .into_iter()
                .collect(),
        };
        let env = by.envelope(&m);
        let actor = if signer.is_empty() { "operator" } else { signer };
        s.push(pb::LogEventKind::KeysChanged, actor, at, env);
    }

    fn checks(r: &Report) -> Vec<(Option<u64>, &'static str)> {
        r.failures.iter().map(|f| (f.event_seq, f.check)).collect()
    }

    #[test]
    fn a_parent_signed_rotation_teaches_the_new_key_and_retires_the_old() {
        let (p, c, d, e) = (
            Signer::from_secret("p", [10; 32]),
            Signer::from_secret("c", [11; 32]),
            Signer::from_secret("d", [12; 32]),
            Signer::from_secret("e", [13; 32]),
        );
        let d2 = Signer::from_secret("d2", [14; 32]);
        let mut s = Synthetic::new();
        tree(&mut s, &[&p, &c, &d, &e]);
        s.ack("370304.czj", &d, 150);
        key_change(&mut s, &c, "370300.czj", "370304.czj", &d2, Some(("d", 200)), 200);
        s.ack("370304.czj", &d2, 300);
        let report = verify_bundle(&s.bundle(), &Trust::default());
        assert!(report.ok(), "{:?}", report.failures);
        assert_eq!(report.signatures_ok, 4);
        // The old key after its revocation is flagged; the operator may rekey anyone.
        s.ack("370304.czj", &d, 400);
        let op = s.operator.clone();
        key_change(&mut s, &op, "", "370000.czt", &Signer::from_secret("p2", [15; 32]), None, 500);
        assert_eq!(checks(&verify_bundle(&s.bundle(), &Trust::default())), vec![(Some(5), "signature")]);
    }

    #[test]
    fn key_changes_by_others_than_the_parent_are_named() {
        let (p, c, d, e) = (
            Signer::from_secret("p", [10; 32]),
            Signer::from_secret("c", [11; 32]),
            Signer::from_secret("d", [12; 32]),
            Signer::from_secret("e", [13; 32]),
        );
        let x = Signer::from_secret("x", [16; 32]);
        let mut s = Synthetic::new();
        tree(&mut s, &[&p, &c, &d, &e]);
        key_change(&mut s, &e, "370302.czj", "370304.czj", &x, None, 200); // a sibling
        key_change(&mut s, &p, "370000.czt", "370304.czj", &x, None, 210); // the grandparent
        key_change(&mut s, &d, "370304.czj", "370304.czj", &x, None, 220); // itself
        key_change(&mut s, &d, "370300.czj", "370304.czj", &x, None, 230); // the child's key, claiming the parent
        key_change(&mut s, &x, "", "370304.czj", &x, None, 240); // not the operator key
        s.ack("370304.czj", &x, 300); // a key no valid change registered
        let report = verify_bundle(&s.bundle(), &Trust::default());
        let found = checks(&report);
        for seq in 2..=6 {
            assert!(found.contains(&(Some(seq), "keys")), "event #{seq}: {:?}", report.failures);
        }
        assert!(found.contains(&(Some(7), "key")), "{:?}", report.failures);
        assert!(report.failures[0].detail.contains("370300.czj"), "{}", report.failures[0].detail);
    }

    #[test]
    fn a_key_change_signed_with_a_key_compromised_before_it_is_flagged() {
        let (p, c, d, e) = (
            Signer::from_secret("p", [10; 32]),
            Signer::from_secret("c", [11; 32]),
            Signer::from_secret("d", [12; 32]),
            Signer::from_secret("e", [13; 32]),
        );
        let mut s = Synthetic::new();
        tree(&mut s, &[&p, &c, &d, &e]);
        key_change(&mut s, &c, "370300.czj", "370304.czj", &Signer::from_secret("d2", [14; 32]), None, 300);
        // Later the province finds the city's key was stolen at 250, before it signed that change.
        key_change(&mut s, &p, "370000.czt", "370300.czj", &Signer::from_secret("c2", [17; 32]), Some(("c", 250)), 400);
        assert_eq!(checks(&verify_bundle(&s.bundle(), &Trust::default())), vec![(Some(2), "signature")]);
    }

    #[test]
    fn a_forked_checkpoint_is_rejected() {
        let mut s = Synthetic::new();
        let k = Signer::from_secret("u#1", [3; 32]);
        s.register("u", &k, None, 100);
        s.ack("u", &k, 200);
        s.ack("u", &k, 300);
        // The same log key signed a 2-event checkpoint of a different history.
        let mut other = Synthetic::new();
        other.register("u", &k, None, 100);
        other.ack("u", &k, 250);
        let forked = other.checkpoint(2);
        let mut b = s.bundle();
        b.consistency = Some(pb::ConsistencyProof {
            old_size: 2,
            new_size: 3,
            hashes: merkle::consistency_proof(&merkle::Leaves(&s.leaves(3)), 2, 3)
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.to_vec())
                .collect(),
        });
        let honest_previous = Trust { previous_checkpoint: Some(s.checkpoint(2)), ..Trust::default() };
        assert!(verify_bundle(&b, &honest_previous).ok());
        let report = verify_bundle(&b, &Trust { previous_checkpoint: Some(forked), ..Trust::default() });
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        assert_eq!(report.failures[0].check, "consistency");
        assert!(report.failures[0].detail.contains("forked"));
    }
}
