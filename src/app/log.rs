//! The tamper-evident event log: checkpoints signed with the server's log key, inclusion and consistency proofs,
//! the log stream, and audit bundles for the offline verifier.
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

use super::access::{Caller, LogView};
use super::lean::LeanDelivery;
use super::{App, AppError, schema};
use crate::domain::merkle::{self, Hash, NodeSource};
use crate::domain::model::Document;
use crate::domain::seal;
use crate::pb;
use crate::signing::Signer;
use crate::store::{Store, StoreError, Tx};

/// Payload type of a signed checkpoint.
pub const CHECKPOINT_TYPE: &str = "gongwen.v1.Checkpoint";

/// Merkle nodes read inside a write transaction (they see nodes and events staged by the same append).
pub struct TxNodes<'a>(pub &'a dyn Tx);

impl NodeSource for TxNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        node_from(&|k| self.0.get(k), level, index)
    }
}

/// Merkle nodes read from the committed store.
pub struct StoreNodes<'a>(pub &'a dyn Store);

impl NodeSource for StoreNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        node_from(&|k| self.0.get(k), level, index)
    }
}

/// Nodes computed from events ([`COMPUTED_UP_TO`]) kept for one request: the entries of an audit bundle, each with
/// its own inclusion proof, share most of their proofs' lowest siblings, which would otherwise be computed again
/// from up to 8 events each time.
struct Memo<'a> {
    nodes: StoreNodes<'a>,
    kept: std::cell::RefCell<std::collections::HashMap<(u32, u64), Hash>>,
}

impl<'a> Memo<'a> {
    fn new(nodes: StoreNodes<'a>) -> Memo<'a> {
        Memo { nodes, kept: Default::default() }
    }
}

impl NodeSource for Memo<'_> {
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        if level > COMPUTED_UP_TO {
            return self.nodes.node(level, index);
        }
        if let Some(hash) = self.kept.borrow().get(&(level, index)) {
            return Ok(*hash);
        }
        let hash = self.nodes.node(level, index)?;
        self.kept.borrow_mut().insert((level, index), hash);
        Ok(hash)
    }
}

/// Interior nodes up to this level are not stored since record format 3: one is the hash of the (at most 8)
/// leaves below it, computed when asked for. Storing them cost seven keys in eight of those the log's tree has,
/// close to one more key per event, which every commit writes and every start loads.
pub const COMPUTED_UP_TO: u32 = 3;

/// Events longer than this have their leaf hash stored: reading a leaf otherwise means hashing its event again,
/// and a report can carry megabytes of text.
pub const LEAF_STORED_ABOVE: usize = 4096;

/// Reads one key, from a transaction or from the store.
type Get<'a> = dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError> + 'a;

/// A node of the log's tree, stored or computed. Interior nodes above [`COMPUTED_UP_TO`] are stored as each append
/// completes them (formats 1 and 2 stored every level). Leaves are, since record format 2, stored only for long
/// events ([`LEAF_STORED_ABOVE`]; format 1 stored them all): otherwise a leaf is the hash of its event's bytes,
/// which are stored anyway, and every key is one more entry sled loads at each start.
fn node_from(get: &Get<'_>, level: u32, index: u64) -> Result<Hash, StoreError> {
    let corrupt = |what: String, reason: &str| StoreError::Corrupt { key: what, reason: reason.into() };
    let stored = get(&schema::merkle_node(level, index))?;
    let node = match (stored, level) {
        (Some(node), _) => node,
        (None, 0) => {
            let seq = index.checked_add(1).ok_or_else(|| corrupt(format!("merkle leaf {index}"), "out of range"))?;
            let entry = get(&schema::event(seq))?.ok_or_else(|| corrupt(format!("event #{seq}"), "missing"))?;
            return Ok(merkle::leaf_hash(&entry));
        }
        (None, level) if level <= COMPUTED_UP_TO => {
            let left =
                index.checked_mul(2).ok_or_else(|| corrupt(format!("merkle node {level}/{index}"), "out of range"))?;
            let l = node_from(get, level - 1, left)?;
            let r = node_from(get, level - 1, left + 1)?;
            return Ok(merkle::node_hash(&l, &r));
        }
        (None, _) => return Err(corrupt(format!("merkle node {level}/{index}"), "missing")),
    };
    node.try_into().map_err(|_| corrupt(format!("merkle node {level}/{index}"), "not 32 bytes"))
}

/// Adds the events about document `id` to `seqs`: its own (issued, forwarded or imported) and every action on its
/// deliveries, read off their steps ([`super::lean::LeanDelivery::own_events`]). Each delivery's first step
/// carries the document's own event, so the document's record, which lists every recipient, is read only when it
/// has no delivery.
pub fn document_events(store: &dyn Store, id: &str, seqs: &mut BTreeSet<u64>) -> Result<(), AppError> {
    let mut delivered = false;
    store.visit(&schema::deliveries_of(id), &mut |k, v| {
        seqs.extend(schema::decode_borrowed::<LeanDelivery>(k, v)?.own_events());
        delivered = true;
        Ok(())
    })?;
    if !delivered {
        let doc = schema::load::<Document>(store, &schema::document(id))?
            .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))?;
        seqs.insert(doc.event_seq);
    }
    Ok(())
}

/// The stored bytes of event `seq`.
pub fn entry_bytes(store: &dyn Store, seq: u64) -> Result<Vec<u8>, AppError> {
    store.get(&schema::event(seq))?.ok_or_else(|| AppError::NotFound(format!("no event #{seq}")))
}

/// Event `seq`, decoded.
pub fn entry(store: &dyn Store, seq: u64) -> Result<pb::LogEntry, AppError> {
    let bytes = entry_bytes(store, seq)?;
    pb::LogEntry::decode(bytes.as_slice())
        .map_err(|e| AppError::Store(StoreError::Corrupt { key: format!("event #{seq}"), reason: e.to_string() }))
}

/// Number of events in the log.
pub fn size(store: &dyn Store) -> Result<u64, AppError> {
    match store.get(schema::EVENT_SEQ)? {
        None => Ok(0),
        Some(v) => Ok(u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt { key: "meta/event_seq".into(), reason: "not 8 bytes".into() })?,
        )),
    }
}

/// The log's name in checkpoints, derived from its public key so two logs never share one.
pub fn origin(public_key: &[u8]) -> String {
    format!("gongwen/{}", &hex::encode(Sha256::digest(public_key))[..16])
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// Signs a checkpoint of `size` events with root `root`.
pub fn sign_checkpoint(key: &Signer, size: u64, root: Hash, at: DateTime<Utc>) -> pb::SignedCheckpoint {
    let checkpoint = pb::Checkpoint {
        origin: origin(&key.public_key()),
        tree_size: size,
        root_hash: root.to_vec(),
        time: Some(timestamp(at)),
    }
    .encode_to_vec();
    let env = key.sign_raw(CHECKPOINT_TYPE, &checkpoint);
    pb::SignedCheckpoint { checkpoint, key_id: key.key_id.clone(), signature: env }
}

fn hashes(v: Vec<Hash>) -> Vec<Vec<u8>> {
    v.into_iter().map(|h| h.to_vec()).collect()
}

impl App {
    /// The log key's public half.
    pub fn log_public_key(&self) -> Vec<u8> {
        self.log_key.public_key()
    }

    /// A checkpoint of the log as it is now.
    pub async fn checkpoint(&self) -> Result<pb::SignedCheckpoint, AppError> {
        let (size, root) = self
            .read(|s| {
                let size = size(s)?;
                Ok((size, merkle::root(&StoreNodes(s), size)?))
            })
            .await?;
        Ok(sign_checkpoint(&self.log_key, size, root, self.now()))
    }

    /// Proof that event `seq` is in the log of `tree_size` events (0: now, with a checkpoint).
    pub async fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<pb::InclusionProof, AppError> {
        let (proof, entry, size, root) = self
            .read(move |s| {
                let size = inclusion_size(seq, tree_size, size(s)?)?;
                let nodes = StoreNodes(s);
                let proof = merkle::inclusion_proof(&nodes, seq - 1, size)?;
                Ok((proof, entry_bytes(s, seq)?, size, merkle::root(&nodes, size)?))
            })
            .await?;
        let checkpoint = (tree_size == 0).then(|| sign_checkpoint(&self.log_key, size, root, self.now()));
        Ok(pb::InclusionProof { event_seq: seq, tree_size: size, hashes: hashes(proof), entry, checkpoint })
    }

    /// Proof that the log of `new` events extends the log of `old` events (new 0: now).
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<pb::ConsistencyProof, AppError> {
        self.read(move |s| {
            let new = consistency_size(old, new, size(s)?)?;
            let proof = merkle::consistency_proof(&StoreNodes(s), old, new)?;
            Ok(pb::ConsistencyProof { old_size: old, new_size: new, hashes: hashes(proof) })
        })
        .await
    }

    /// Up to `limit` log records from `from` on (read in one go; callers page with `from`).
    pub async fn log_records(&self, from: u64, limit: u64) -> Result<Vec<pb::LogRecord>, AppError> {
        self.read(move |s| {
            let mut out = vec![];
            for pair in s.scan(b"ev/", Some(&schema::event(from.max(1) - 1)), false) {
                let (k, v) = pair?;
                if out.len() as u64 >= limit {
                    break;
                }
                let seq = super::documents::seq_of(&k);
                out.push(pb::LogRecord { event_seq: seq, entry: v });
            }
            Ok(out)
        })
        .await
    }

    /// A bundle of the events about a document's whole forwarding tree, or of a stretch of the log, each with
    /// its inclusion proof against one fresh checkpoint; registry changes are always in it.
    pub async fn export_bundle(&self, scope: ExportScope, previous_size: u64) -> Result<pb::AuditBundle, AppError> {
        // Built whole in memory, as a trace is (and a tree's documents are found first): it waits its turn among
        // the tree walks.
        let permit = self.walk_permit().await?;
        self.bundle(scope, previous_size, permit).await
    }

    /// The bundle of events `from..=to` (to 0: the end) that `caller` may read: the whole stretch for the
    /// operator. For anyone else, finding those events reads the whole stretch, as many events as the log holds,
    /// so the search waits its turn among the tree walks, and its permit then builds the bundle: one turn in the
    /// line, not two.
    pub async fn export_range(
        &self,
        caller: &Caller,
        from: u64,
        to: u64,
        previous_size: u64,
    ) -> Result<pb::AuditBundle, AppError> {
        if *caller == Caller::Operator {
            return self.export_bundle(ExportScope::Range { from, to }, previous_size).await;
        }
        let permit = self.walk_permit().await?;
        let events = self.visible_events(caller, from, to).await?;
        self.bundle(events, previous_size, permit).await
    }

    /// [`App::export_bundle`] under a walk permit the caller holds.
    async fn bundle(
        &self,
        scope: ExportScope,
        previous_size: u64,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<pb::AuditBundle, AppError> {
        // The tree's documents are found within the walk, under its permit: a caller gone meanwhile does not
        // free the permit while they are still being read.
        let root = match &scope {
            ExportScope::Document(id) => Some(self.document(id).await?.id),
            ExportScope::Range { .. } | ExportScope::Events(_) => None,
        };
        let log_key = self.log_key.clone();
        let now = self.now();
        let operator = self.operator.clone();
        let hint = match scope {
            ExportScope::Document(_) => {
                "A tree this large cannot be exported as one bundle; the operator can export the log in stretches \
                 (a SeqRange; `gongwen export --from --to`)"
            }
            ExportScope::Range { .. } | ExportScope::Events(_) => {
                "Export the log in shorter stretches (a SeqRange; `gongwen export --from --to`), or mirror it with \
                 StreamLog"
            }
        };
        // The keys, checkpoint and consistency proof around the entries take far less than this.
        let budget = Budget { max_bytes: self.config.max_bundle_bytes, used: BUNDLE_FRAME_BYTES, hint };
        self.walk_with(permit, move |s, wanted| {
            let docs = root.map(|root| tree_documents(s, root, wanted)).transpose()?;
            let size = size(s)?;
            let mut seqs: BTreeSet<u64> = BTreeSet::new();
            for pair in s.scan(schema::REGISTRY_EVENTS, None, false) {
                seqs.insert(super::documents::seq_of(&pair?.0));
            }
            // A stretch is read in order rather than listed first: the whole of a large log would not fit. Other
            // scopes have none, an empty range.
            let (mut stretch, mut complete) = (std::ops::RangeInclusive::new(1, 0), false);
            match (&scope, &docs) {
                (ExportScope::Document(_), Some(docs)) => {
                    for d in docs {
                        wanted.check()?;
                        document_events(s, d, &mut seqs)?;
                    }
                }
                (ExportScope::Range { from, to }, _) => {
                    let to = if *to == 0 { size } else { (*to).min(size) };
                    stretch = (*from).max(1)..=to;
                    complete = *stretch.start() == 1 && to == size;
                }
                (ExportScope::Events(events), _) => seqs.extend(events),
                _ => {}
            }
            let in_stretch = (stretch.end().saturating_add(1)).saturating_sub(*stretch.start());
            let total = usize::try_from(in_stretch)
                .unwrap_or(usize::MAX)
                .saturating_add(seqs.iter().filter(|q| !stretch.contains(q)).count());
            let below = seqs.range(..*stretch.start()).copied();
            let above = seqs.range(stretch.end().saturating_add(1).max(*stretch.start())..).copied();
            let in_order = below.chain(stretch.clone()).chain(above);
            let nodes = Memo::new(StoreNodes(s));
            let root = merkle::root(&nodes, size)?;
            let (mut entries, mut budget) = (Vec::new(), budget);
            for seq in in_order.filter(|q| *q >= 1 && *q <= size) {
                wanted.check_every(entries.len())?;
                let inclusion = if complete { vec![] } else { hashes(merkle::inclusion_proof(&nodes, seq - 1, size)?) };
                let entry = pb::BundleEntry { event_seq: seq, entry: entry_bytes(s, seq)?, inclusion };
                budget.spend(&entry, entries.len(), total)?;
                entries.push(entry);
            }
            Ok(pb::AuditBundle {
                log_public_key: log_key.public_key().to_vec(),
                operator_public_key: operator.public_key,
                operator_key_id: operator.key_id,
                checkpoint: Some(sign_checkpoint(&log_key, size, root, now)),
                entries,
                complete,
                consistency: match previous_size {
                    0 => None,
                    old if old <= size => Some(pb::ConsistencyProof {
                        old_size: old,
                        new_size: size,
                        hashes: hashes(merkle::consistency_proof(&nodes, old, size)?),
                    }),
                    old => {
                        return Err(AppError::field(
                            "previous_size",
                            format!("the log has only {size} events, not {old}"),
                        ));
                    }
                },
            })
        })
        .await
    }

    /// Whether a stored log record is one the view's caller may read.
    pub async fn record_visible(&self, view: &mut LogView, record: &pb::LogRecord) -> Result<bool, AppError> {
        if view.whole() {
            return Ok(true);
        }
        let entry = pb::LogEntry::decode(record.entry.as_slice()).map_err(|e| {
            AppError::Store(StoreError::Corrupt { key: format!("event #{}", record.event_seq), reason: e.to_string() })
        })?;
        self.entry_visible(view, &entry).await
    }

    /// The events of `from..=to` (to 0: the end) that `caller`, not the operator, may read. Refused as soon as
    /// those are more than a bundle could hold, rather than listed to the end of a long log first.
    async fn visible_events(&self, caller: &Caller, from: u64, to: u64) -> Result<ExportScope, AppError> {
        let end = if to == 0 { u64::MAX } else { to };
        let most = self.config.max_bundle_bytes / MIN_ENTRY_BYTES;
        let mut view = self.log_view(caller);
        let (mut events, mut next) = (BTreeSet::new(), from.max(1));
        while next <= end {
            let batch = self.log_records(next, 1000).await?;
            let Some(last) = batch.last().map(|r| r.event_seq) else { break };
            for rec in batch.iter().filter(|r| r.event_seq <= end) {
                if self.record_visible(&mut view, rec).await? {
                    events.insert(rec.event_seq);
                }
            }
            if events.len() > most {
                return Err(AppError::Exhausted(format!(
                    "the events you may read from #{} to #{last} alone are more than a bundle of {} holds; export \
                     shorter stretches of the log",
                    from.max(1),
                    shown(self.config.max_bundle_bytes)
                )));
            }
            next = last.saturating_add(1);
        }
        Ok(ExportScope::Events(events))
    }
}

/// The document `root` and every document reached from it by forwarding.
fn tree_documents(s: &dyn Store, root: String, wanted: &super::limits::Wanted) -> Result<Vec<String>, AppError> {
    let mut seen = BTreeSet::from([root.clone()]);
    let mut todo = vec![root];
    while let Some(d) = todo.pop() {
        wanted.check()?;
        for pair in s.scan(&schema::forwards_of(&d), None, false) {
            let child = schema::last_part(&pair?.0);
            if seen.insert(child.clone()) {
                todo.push(child);
            }
        }
    }
    Ok(seen.into_iter().collect())
}

/// The tree size an inclusion proof of event `seq` is made for (`tree_size` 0: the log's `current` size).
pub(crate) fn inclusion_size(seq: u64, tree_size: u64, current: u64) -> Result<u64, AppError> {
    let size = if tree_size == 0 { current } else { tree_size };
    if size > current {
        return Err(AppError::field("tree_size", format!("the log has only {current} events")));
    }
    if seq == 0 || seq > size {
        return Err(AppError::NotFound(format!("no event #{seq} in a log of {size} events")));
    }
    Ok(size)
}

/// The new size a consistency proof from `old` is made for (`new` 0: the log's `current` size).
pub(crate) fn consistency_size(old: u64, new: u64, current: u64) -> Result<u64, AppError> {
    let new = if new == 0 { current } else { new };
    if old == 0 || old > new || new > current {
        return Err(AppError::field(
            "old_size",
            format!("need 1 ≤ old_size ≤ new_size ≤ {current}, got {old} and {new}"),
        ));
    }
    Ok(new)
}

/// What an export covers.
#[derive(Debug, Clone)]
pub enum ExportScope {
    /// A document and everything forwarded from it.
    Document(String),
    /// Events `from..=to` (to 0: the end).
    Range { from: u64, to: u64 },
    /// These events (with every registry change, as always): what a caller may read of a stretch.
    Events(BTreeSet<u64>),
}

/// What a bundle may take in memory and on the wire ([`super::AppConfig::max_bundle_bytes`]): a bundle is built
/// whole before it is sent, and one of a large log or tree would otherwise hold gigabytes.
struct Budget {
    max_bytes: usize,
    used: usize,
    /// What to do instead, for this scope.
    hint: &'static str,
}

/// Room left in a bundle's budget for what is not an entry: the keys, the checkpoint, a consistency proof.
pub const BUNDLE_FRAME_BYTES: usize = 4096;

/// No bundle entry is smaller: a log entry carries at least a signature (64 bytes) and the event's ids.
pub const MIN_ENTRY_BYTES: usize = 100;

/// The bundle limit as a person reads it.
fn shown(bytes: usize) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{bytes} bytes") }
}

impl Budget {
    /// Counts `entry`, which follows `done` others of `total`; refuses the bundle once it is over.
    fn spend(&mut self, entry: &pb::BundleEntry, done: usize, total: usize) -> Result<(), AppError> {
        // Its bytes in the reply, with the field's tag and length.
        self.used = self.used.saturating_add(entry.encoded_len() + 8);
        if self.used <= self.max_bytes {
            return Ok(());
        }
        Err(AppError::Exhausted(format!(
            "the bundle would be larger than the {} this server sends at once: it has {total} events, and its \
             first {} are over already. {}",
            shown(self.max_bytes),
            done + 1,
            self.hint,
        )))
    }
}

/// Checks a signed checkpoint against a log public key and decodes it.
pub fn open_checkpoint(signed: &pb::SignedCheckpoint, log_public_key: &[u8]) -> Result<pb::Checkpoint, String> {
    let key = crate::domain::model::SealKey {
        key_id: signed.key_id.clone(),
        algorithm: crate::domain::model::KeyAlgorithm::Ed25519,
        public_key: log_public_key.to_vec(),
        valid_from: None,
        revoked_at: None,
    };
    seal::verify(&key, CHECKPOINT_TYPE, &signed.checkpoint, &signed.signature, Utc::now())
        .map_err(|e| format!("the checkpoint's signature is not the log key's: {e}"))?;
    pb::Checkpoint::decode(signed.checkpoint.as_slice()).map_err(|e| format!("the checkpoint does not decode: {e}"))
}
