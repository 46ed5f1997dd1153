//! The forwarding tree under a document (督办追踪): every unit reached directly or through forwards.
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::lean::LeanDelivery;
use super::parallel::{in_parallel, in_parallel_ordered};
use super::{App, AppError, schema};
use crate::domain::model::{DocHead, Document, Role, StepKind};
use crate::domain::state::{DeliveryState, is_overdue};
use crate::store::{Store, StoreError};

/// Counts over a subtree or a whole tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub delivered: u32,
    pub acknowledged: u32,
    pub acted: u32,
    pub completed: u32,
    pub overdue: u32,
    pub returned: u32,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.delivered += o.delivered;
        self.acknowledged += o.acknowledged;
        self.acted += o.acted;
        self.completed += o.completed;
        self.overdue += o.overdue;
        self.returned += o.returned;
    }
}

/// One recipient in the tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub unit_id: String,
    pub unit_name: String,
    pub region: String,
    pub level: Option<crate::domain::model::Level>,
    pub depth: u32,
    /// Shared by every recipient of the same document: a tree has hundreds of thousands of nodes and a few
    /// thousand documents.
    pub via_document_id: Arc<str>,
    pub via_document_number: Arc<str>,
    pub delivery: Progress,
    pub overdue: bool,
    pub forwarded_as: Vec<String>,
    pub counts: Counts,
    pub children: Vec<Node>,
    /// Steps signed with a key revoked at or before their time.
    pub flags: Vec<String>,
    /// Its forwards' recipients are counted in `counts` but not listed in `children` (below the depth asked for).
    pub collapsed: bool,
    /// False for a unit with no delivery of the document on record that forwarded it all the same (an imported
    /// forward of a copy received outside the system): the node carries the chain on and counts no delivery.
    pub on_record: bool,
}

impl Node {
    /// When the first step of `kind` happened.
    pub fn at(&self, kind: StepKind) -> Option<DateTime<Utc>> {
        self.delivery.first(kind)
    }
}

/// What a trace shows of a delivery: its role, state and deadline, and when each kind of step first happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub role: Role,
    pub state: DeliveryState,
    pub deadline: Option<NaiveDate>,
    reminders: u32,
    /// Indexed by [`StepKind`] in declaration order.
    first: [Option<DateTime<Utc>>; STEP_KINDS],
}

const STEP_KINDS: usize = 8;

impl Progress {
    /// Reminders received.
    pub fn reminders(&self) -> u32 {
        self.reminders
    }

    /// When the first step of this kind happened.
    pub fn first(&self, kind: StepKind) -> Option<DateTime<Utc>> {
        self.first.get(kind as usize).copied().flatten()
    }

    /// A delivery's progress from its steps, in order (for tests of what shows it).
    #[cfg(test)]
    pub(crate) fn from_steps(
        role: Role,
        state: DeliveryState,
        deadline: Option<NaiveDate>,
        steps: &[(StepKind, DateTime<Utc>)],
    ) -> Progress {
        let mut first = [None; STEP_KINDS];
        let mut reminders = 0u32;
        for (kind, at) in steps {
            reminders += u32::from(*kind == StepKind::Reminded);
            if let Some(slot) = first.get_mut(*kind as usize) {
                slot.get_or_insert(*at);
            }
        }
        Progress { role, state, deadline, reminders, first }
    }

    fn of(d: &LeanDelivery<'_>) -> Result<Progress, StoreError> {
        let mut first = [None; STEP_KINDS];
        let mut reminders = 0u32;
        for step in &d.steps {
            if step.kind == StepKind::Reminded {
                reminders = reminders.saturating_add(1);
            }
            if let Some(slot) = first.get_mut(step.kind as usize)
                && slot.is_none()
            {
                *slot = Some(step.at()?);
            }
        }
        Ok(Progress { role: d.role, state: d.state, deadline: d.deadline(), reminders, first })
    }
}

/// The root document of a walk.
fn load_document(store: &dyn Store, id: &str) -> Result<Document, AppError> {
    schema::load::<Document>(store, &schema::document(id))?
        .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))
}

/// The tree under a document: its root's recipients, each as a [`Node`] with its subtree (or, from
/// [`App::trace_mapped`], as what that subtree was turned into).
#[derive(Debug, Clone)]
pub struct Tree<N = Node> {
    pub document: Document,
    pub nodes: Vec<N>,
    pub totals: Counts,
}

impl Tree {
    /// Every node of the tree, parents before their children, children moved out.
    pub fn flatten(self) -> Vec<Node> {
        let mut out = vec![];
        let mut stack: Vec<Node> = self.nodes.into_iter().rev().collect();
        while let Some(mut n) = stack.pop() {
            let children = std::mem::take(&mut n.children);
            stack.extend(children.into_iter().rev());
            out.push(n);
        }
        out
    }
}

/// Deep chains are rare (province → township is four levels); this bound only stops a corrupted store from
/// recursing without end.
const MAX_DEPTH: u32 = 32;

struct Walker<'a> {
    store: &'a dyn Store,
    snapshot: &'a super::Snapshot,
    now: DateTime<Utc>,
    seen: HashSet<String>,
    /// Deepest level built node by node; deeper deliveries are only counted. `u32::MAX` for the whole tree.
    max_depth: u32,
    /// Asked before each document's deliveries are read: false once nobody waits for the walk.
    wanted: &'a (dyn Fn() -> bool + Sync),
}

impl<'a> Walker<'a> {
    fn new(
        store: &'a dyn Store,
        snapshot: &'a super::Snapshot,
        now: DateTime<Utc>,
        seen: HashSet<String>,
        max_depth: u32,
        wanted: &'a (dyn Fn() -> bool + Sync),
    ) -> Walker<'a> {
        Walker { store, snapshot, now, seen, max_depth, wanted }
    }

    /// [`AppError::Cancelled`] once nobody waits for the walk.
    fn still_wanted(&self) -> Result<(), AppError> {
        if (self.wanted)() { Ok(()) } else { Err(AppError::Cancelled) }
    }

    /// The small header of a forward: a walk needs only its id and number, and its full record carries every
    /// recipient id.
    fn head(&self, id: &str) -> Result<DocHead, AppError> {
        schema::load::<DocHead>(self.store, &schema::document_head(id))?
            .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))
    }

    /// Recipients of `doc` at `depth`, each with the subtree reached through its forwards of `doc`.
    fn nodes(&mut self, doc: &DocHead, depth: u32) -> Result<Vec<Node>, AppError> {
        let mut out = self.shallow_nodes(doc, depth)?;
        for node in &mut out {
            self.grow(node)?;
        }
        Ok(out)
    }

    /// Recipients of `doc` at `depth` with the ids of their forwards of `doc` in `forwarded_as`, not yet grown.
    fn shallow_nodes(&mut self, doc: &DocHead, depth: u32) -> Result<Vec<Node>, AppError> {
        if depth > MAX_DEPTH || !self.seen.insert(doc.id.clone()) {
            return Ok(vec![]);
        }
        self.still_wanted()?;
        let mut forwards = self.forwarders(&doc.id)?;
        let (via_id, via_number): (Arc<str>, Arc<str>) = (doc.id.as_str().into(), doc.number.as_str().into());
        let mut out = vec![];
        let via = (&via_id, &via_number);
        // Deliveries come in recipient order: each unit's brief is looked for from the last one's.
        let mut hint = 0;
        self.store.visit(&schema::deliveries_of(&doc.id), &mut |k, v| {
            let d: LeanDelivery = schema::decode_borrowed(k, v)?;
            let unit = self.snapshot.briefs.find_from(d.recipient, &mut hint);
            let forwarded_as = forwards.remove(d.recipient).unwrap_or_default();
            out.push(self.node(&d, unit, depth, via, forwarded_as)?);
            Ok(())
        })?;
        // Forwards left over are by units that were not recipients on record (imports): the chain goes on
        // through them as well, as the status matrix's and the not-acted list's walks go on.
        let mut unrecorded: Vec<(String, Vec<String>)> = forwards.into_iter().collect();
        unrecorded.sort_unstable();
        for (forwarder, forwarded_as) in unrecorded {
            out.push(self.unrecorded_forwarder(forwarder, depth, via, forwarded_as));
        }
        Ok(out)
    }

    /// The node of `unit_id`, which forwarded the document `via` at `depth` without a delivery of it on record.
    fn unrecorded_forwarder(
        &self,
        unit_id: String,
        depth: u32,
        (via_id, via_number): (&Arc<str>, &Arc<str>),
        forwarded_as: Vec<String>,
    ) -> Node {
        let unit = self.snapshot.briefs.get(&unit_id);
        Node {
            unit_name: unit.map(|u| u.full_name.clone()).unwrap_or_default(),
            region: unit.map(|u| u.region.clone()).unwrap_or_default(),
            level: unit.map(|u| u.level),
            unit_id,
            depth,
            via_document_id: via_id.clone(),
            via_document_number: via_number.clone(),
            delivery: Progress {
                role: Role::Main,
                state: DeliveryState::Forwarded,
                deadline: None,
                reminders: 0,
                first: [None; STEP_KINDS],
            },
            overdue: false,
            forwarded_as,
            counts: Counts::default(),
            children: vec![],
            flags: vec![],
            collapsed: false,
            on_record: false,
        }
    }

    /// Forwarder → the documents it forwarded document `id` as.
    fn forwarders(&self, id: &str) -> Result<HashMap<String, Vec<String>>, AppError> {
        let mut forwards: HashMap<String, Vec<String>> = HashMap::new();
        self.store.visit(&schema::forwards_of(id), &mut |k, v| {
            forwards.entry(String::from_utf8_lossy(v).into_owned()).or_default().push(schema::last_part(k));
            Ok(())
        })?;
        Ok(forwards)
    }

    /// The node of delivery `d` to `unit` at `depth`, not yet grown.
    fn node(
        &self,
        d: &LeanDelivery<'_>,
        unit: Option<&super::briefs::UnitBrief>,
        depth: u32,
        (via_id, via_number): (&Arc<str>, &Arc<str>),
        forwarded_as: Vec<String>,
    ) -> Result<Node, StoreError> {
        let progress = Progress::of(d)?;
        let overdue = is_overdue(progress.deadline, progress.state, self.now);
        let mut flags = vec![];
        for step in &d.steps {
            if let Some(flag) = self.snapshot.suspect_key(step.key_id, || step.at())? {
                flags.push(flag);
            }
        }
        Ok(Node {
            unit_id: d.recipient.to_owned(),
            unit_name: unit.map(|u| u.full_name.clone()).unwrap_or_default(),
            region: unit.map(|u| u.region.clone()).unwrap_or_default(),
            level: unit.map(|u| u.level),
            depth,
            via_document_id: via_id.clone(),
            via_document_number: via_number.clone(),
            overdue,
            forwarded_as,
            counts: own_counts(progress.state, overdue),
            children: vec![],
            flags,
            collapsed: false,
            on_record: true,
            delivery: progress,
        })
    }

    /// Replaces the forward ids in `node.forwarded_as` by their numbers and hangs their recipients below it, or,
    /// below `max_depth`, adds them to its counts only.
    fn grow(&mut self, node: &mut Node) -> Result<(), AppError> {
        for fwd_id in std::mem::take(&mut node.forwarded_as) {
            let fwd = self.head(&fwd_id)?;
            node.forwarded_as.push(fwd.number.clone());
            if node.depth >= self.max_depth {
                let now = self.now;
                let counts = &mut node.counts;
                self.each_delivery(&fwd.id, node.depth + 1, &mut |d, _| {
                    counts.add(&own_counts(d.state, is_overdue(d.deadline(), d.state, now)));
                })?;
                node.collapsed = true;
                continue;
            }
            let children = self.nodes(&fwd, node.depth + 1)?;
            for c in &children {
                node.counts.add(&c.counts);
            }
            // Nodes are a few hundred bytes and a tree has hundreds of thousands: most forward once, and their
            // children are kept where they were built instead of moved.
            if node.children.is_empty() {
                node.children = children;
            } else {
                node.children.extend(children);
            }
        }
        Ok(())
    }
}

impl Walker<'_> {
    /// Every delivery in the tree under document `id`, with its depth, without building nodes: what counts over
    /// a tree need. Visits each document once, so it ends on a corrupted store too.
    fn each_delivery(
        &mut self,
        id: &str,
        depth: u32,
        f: &mut dyn FnMut(&LeanDelivery<'_>, u32),
    ) -> Result<(), AppError> {
        if depth > MAX_DEPTH || !self.seen.insert(id.to_owned()) {
            return Ok(());
        }
        self.still_wanted()?;
        self.own_deliveries(id, depth, f)?;
        for fwd in self.forwards(id)? {
            self.each_delivery(&fwd, depth + 1, f)?;
        }
        Ok(())
    }

    /// The deliveries of document `id` alone.
    fn own_deliveries(&self, id: &str, depth: u32, f: &mut dyn FnMut(&LeanDelivery<'_>, u32)) -> Result<(), AppError> {
        self.store.visit(&schema::deliveries_of(id), &mut |k, v| {
            f(&schema::decode_borrowed::<LeanDelivery>(k, v)?, depth);
            Ok(())
        })?;
        Ok(())
    }

    /// The ids of the documents that forward document `id`.
    fn forwards(&self, id: &str) -> Result<Vec<String>, AppError> {
        let mut out = vec![];
        self.store.visit(&schema::forwards_of(id), &mut |k, _| {
            out.push(schema::last_part(k));
            Ok(())
        })?;
        Ok(out)
    }
}

fn own_counts(state: DeliveryState, overdue: bool) -> Counts {
    let flag = |b: bool| u32::from(b);
    Counts {
        delivered: 1,
        acknowledged: flag(state.is_acknowledged()),
        acted: flag(state.is_acted()),
        completed: flag(state == DeliveryState::Completed),
        overdue: flag(overdue),
        returned: flag(state == DeliveryState::Returned),
    }
}

/// Walks the tree under `document`: `emit` gets each subtree under its recipients, in unit id order (then those
/// under units that forwarded it with no delivery on record), each complete with its counts and passed through
/// `map` on the thread that grew it. Returns the counts over the whole tree. Once `wanted` turns false (nobody
/// waits for the tree any more), no further subtree is grown and the walk ends with [`AppError::Cancelled`].
#[allow(clippy::too_many_arguments)] // the walk's inputs, then its three hooks; a struct would only rename them
fn walk_tree<R: Send>(
    store: &dyn Store,
    snap: &super::Snapshot,
    now: DateTime<Utc>,
    document: &Document,
    max_depth: u32,
    wanted: impl Fn() -> bool + Sync,
    map: impl Fn(Node) -> R + Sync,
    emit: impl FnMut(R) -> Result<(), AppError> + Send,
) -> Result<Counts, AppError> {
    let max_depth = if max_depth == 0 { u32::MAX } else { max_depth };
    let wanted: &(dyn Fn() -> bool + Sync) = &wanted;
    let mut w = Walker::new(store, snap, now, HashSet::new(), max_depth, wanted);
    // The subtrees under the root's recipients share nothing (a document forwards exactly one other), so they are
    // grown on all cores; each walker keeps its own guard against a corrupted, cyclic store.
    let top = w.shallow_nodes(&DocHead::from(document), 1)?;
    let seen = w.seen.clone();
    let totals = Mutex::new(Counts::default());
    in_parallel_ordered(
        top,
        |mut node| {
            let mut w = Walker::new(store, snap, now, seen.clone(), max_depth, wanted);
            // Asked where a thread takes its next subtree, even one with nothing to grow: results are emitted in
            // order, so an ask at `emit` would come only after the other threads had grown everything behind a
            // slow first subtree.
            w.still_wanted()?;
            w.grow(&mut node)?;
            totals.lock().unwrap_or_else(|p| p.into_inner()).add(&node.counts);
            Ok(map(node))
        },
        emit,
    )?;
    Ok(totals.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// A piece of a streamed trace.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The root document: in the first chunk only.
    pub document: Option<DocHead>,
    /// Nodes, each before the nodes reached through it, with `children` empty.
    pub nodes: Vec<FlatNode>,
    /// Counts over the whole tree: in the last chunk only.
    pub totals: Option<Counts>,
}

/// A node of a streamed trace.
#[derive(Debug)]
pub struct FlatNode {
    /// 1 + the position in the stream (over all chunks, from 0) of the node it was reached through; 0 for the
    /// root's recipients.
    pub parent: u32,
    /// Reached through the same document as the node before it in the stream: a streamed trace leaves that
    /// document out, and a client carries the last one over.
    pub same_via: bool,
    pub node: Node,
}

/// A streamed walk's turn among the tree walks (a walk permit), given up while its reader is slow: the walk holds
/// at most its chunks ahead and the subtrees its threads finished, and a client that reads slowly, or not at all,
/// keeps nobody else from walking.
struct Turn {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    walks: Arc<tokio::sync::Semaphore>,
    runtime: tokio::runtime::Handle,
}

impl Turn {
    /// Sends `item` to `out`, waiting without the turn if the reader is behind, and taking the turn again before
    /// the walk goes on. `Err` once nobody listens.
    fn send<T>(&mut self, out: &tokio::sync::mpsc::Sender<T>, item: T) -> Result<(), AppError> {
        use tokio::sync::mpsc::error::TrySendError;
        let item = match out.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(AppError::Cancelled),
            Err(TrySendError::Full(item)) => item,
        };
        self.permit = None;
        out.blocking_send(item).map_err(|_| AppError::Cancelled)?;
        let walks = self.walks.clone();
        let permit = self.runtime.block_on(async move {
            tokio::select! {
                permit = walks.acquire_owned() => permit.ok(),
                () = out.closed() => None,
            }
        });
        self.permit = Some(permit.ok_or(AppError::Cancelled)?);
        Ok(())
    }
}

/// Cuts a tree into chunks and sends them, each passed through `finish` on the way.
struct Chunker<C, F> {
    out: tokio::sync::mpsc::Sender<Result<C, AppError>>,
    turn: Turn,
    finish: F,
    chunk_nodes: usize,
    pending: Chunk,
    /// Nodes sent or pending so far: the position of the next one.
    sent: u32,
    /// The document the node before the next one was reached through.
    last_via: Option<Arc<str>>,
}

impl<C, F: Fn(Chunk) -> C> Chunker<C, F> {
    /// Adds a subtree, depth first, sending every chunk it fills. Recurses as deep as the tree, which the walk
    /// bounds by [`MAX_DEPTH`].
    fn subtree(&mut self, top: Node) -> Result<(), AppError> {
        self.add(top, 0)
    }

    fn add(&mut self, mut node: Node, parent: u32) -> Result<(), AppError> {
        let children = std::mem::take(&mut node.children);
        let here = self.sent;
        self.sent = self.sent.saturating_add(1);
        let same_via = self.last_via.as_ref().is_some_and(|v| *v == node.via_document_id);
        if !same_via {
            self.last_via = Some(node.via_document_id.clone());
        }
        self.pending.nodes.push(FlatNode { parent, same_via, node });
        if self.pending.nodes.len() >= self.chunk_nodes {
            self.send()?;
        }
        for child in children {
            self.add(child, here + 1)?;
        }
        Ok(())
    }

    /// Sends what is pending; [`AppError::Cancelled`] once nobody listens.
    fn send(&mut self) -> Result<(), AppError> {
        // `finish` runs under the walk's emit lock, where a walker that finished a subtree waits for its turn; a
        // reader gone already costs it nothing more.
        if self.out.is_closed() {
            return Err(AppError::Cancelled);
        }
        // Sized up front: grown by doubling, a chunk's nodes would be copied once more on the way.
        // (Bounded: an in-process caller may ask for chunks of any size.)
        let next = Chunk { nodes: Vec::with_capacity(self.chunk_nodes.min(4096)), ..Chunk::default() };
        let chunk = (self.finish)(std::mem::replace(&mut self.pending, next));
        self.turn.send(&self.out, Ok(chunk))
    }
}

impl App {
    /// The forwarding tree under a document, listed down to `max_depth` (0 for every level) and counted in full.
    pub async fn trace(&self, document_id: &str, max_depth: u32) -> Result<Tree, AppError> {
        self.trace_mapped(document_id, max_depth, |node| node).await
    }

    /// [`App::trace`] with each subtree under the root's recipients passed through `map` as soon as it is grown,
    /// on the thread that grew it: a reply is encoded on all cores, while the walk goes on. Once this call is
    /// dropped (its client gave up, or its deadline passed), the walk stops after the subtrees it is growing: a
    /// large tree nobody waits for costs nothing more.
    pub async fn trace_mapped<N: Send + 'static>(
        &self,
        document_id: &str,
        max_depth: u32,
        map: impl Fn(Node) -> N + Send + Sync + 'static,
    ) -> Result<Tree<N>, AppError> {
        let (snap, now, id) = (self.snapshot(), self.now(), document_id.to_owned());
        self.walk(move |store, wanted| {
            let document = load_document(store, &id)?;
            let mut nodes = vec![];
            let totals = walk_tree(
                store,
                &snap,
                now,
                &document,
                max_depth,
                || wanted.still(),
                map,
                |n| {
                    nodes.push(n);
                    Ok(())
                },
            )?;
            Ok(Tree { document, nodes, totals })
        })
        .await
    }

    /// The tree of [`App::trace`], flattened (parents before their children) and sent to `out` in chunks of at
    /// most `chunk_nodes` nodes as the walk finishes each subtree under the root's recipients. The first chunk
    /// carries the document, the last the totals. Each chunk is passed through `finish` on the walk's thread before
    /// it is sent (a reply is encoded there). Ends early, without an error, when `out` is closed. The walk waits
    /// for a walk permit as the other tree walks do, and lets it go while `out` is full (see [`Turn`]).
    pub async fn stream_trace<C: Send + 'static>(
        &self,
        document_id: &str,
        max_depth: u32,
        chunk_nodes: usize,
        out: tokio::sync::mpsc::Sender<Result<C, AppError>>,
        finish: impl Fn(Chunk) -> C + Send + 'static,
    ) -> Result<(), AppError> {
        let (snap, now, id) = (self.snapshot(), self.now(), document_id.to_owned());
        // A stream whose reader went away is an abandoned walk too (see `App::tree_walks_abandoned`).
        let abandoned = self.walks_abandoned.clone();
        let permit = tokio::select! {
            biased;
            () = out.closed() => {
                abandoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            permit = self.walk_permit() => permit?,
        };
        let turn = Turn { permit: Some(permit), walks: self.walks.clone(), runtime: tokio::runtime::Handle::current() };
        self.read(move |store| {
            let document = load_document(store, &id)?;
            let head = Chunk { document: Some(DocHead::from(&document)), ..Chunk::default() };
            let chunk_nodes = chunk_nodes.max(1);
            let listened = out.clone();
            let wanted = || !listened.is_closed();
            let mut chunks = Chunker { out, turn, finish, chunk_nodes, pending: head, sent: 0, last_via: None };
            let walked =
                walk_tree(store, &snap, now, &document, max_depth, wanted, |node| node, |node| chunks.subtree(node));
            let finished = walked.and_then(|totals| {
                chunks.pending.totals = Some(totals);
                chunks.send()
            });
            match finished {
                Ok(()) => Ok(()),
                Err(AppError::Cancelled) => {
                    abandoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Folds every delivery in the tree under a document (any order) into an accumulator: `f` adds one
    /// delivery, `merge` adds an accumulator made by `init` for another part of the tree. The subtrees under the
    /// root's forwards are folded on all cores.
    pub(crate) async fn fold_deliveries<T, I, F, M>(
        &self,
        document_id: &str,
        init: I,
        f: F,
        merge: M,
    ) -> Result<(Document, T), AppError>
    where
        T: Send + 'static,
        I: Fn() -> T + Send + Sync + 'static,
        F: Fn(&mut T, &LeanDelivery<'_>, u32) + Send + Sync + 'static,
        M: Fn(&mut T, T) + Send + 'static,
    {
        let (snap, now, id) = (self.snapshot(), self.now(), document_id.to_owned());
        self.walk(move |store, wanted| fold_tree(store, &snap, now, &id, wanted, init, f, merge)).await
    }
}

/// [`App::fold_deliveries`] within a walk: stops with [`AppError::Cancelled`] before the next document's
/// deliveries once it is no longer `wanted`.
#[allow(clippy::too_many_arguments)] // the walk's inputs, then the fold's three hooks
pub(super) fn fold_tree<T: Send>(
    store: &dyn Store,
    snap: &super::Snapshot,
    now: DateTime<Utc>,
    id: &str,
    wanted: &super::limits::Wanted,
    init: impl Fn() -> T + Sync,
    f: impl Fn(&mut T, &LeanDelivery<'_>, u32) + Sync,
    merge: impl Fn(&mut T, T),
) -> Result<(Document, T), AppError> {
    let still = || wanted.still();
    let mut w = Walker::new(store, snap, now, HashSet::new(), u32::MAX, &still);
    let document = load_document(store, id)?;
    let mut acc = init();
    w.seen.insert(id.to_owned());
    w.own_deliveries(id, 1, &mut |d, depth| f(&mut acc, d, depth))?;
    let seen = w.seen.clone();
    let parts = in_parallel(w.forwards(id)?, |fwd| {
        let mut w = Walker::new(store, snap, now, seen.clone(), u32::MAX, &still);
        let mut part = init();
        w.each_delivery(&fwd, 2, &mut |d, depth| f(&mut part, d, depth))?;
        Ok(part)
    })?;
    for part in parts {
        merge(&mut acc, part);
    }
    Ok((document, acc))
}

/// The nodes, as a trace shows them, of the deliveries of document `via` (at `depth`) to `recipients`, each
/// grown with what it forwarded; a recipient with no delivery of `via` is left out.
pub(super) fn recipient_nodes(
    store: &dyn Store,
    snap: &super::Snapshot,
    now: DateTime<Utc>,
    via: &str,
    depth: u32,
    recipients: &[&str],
    wanted: &super::limits::Wanted,
) -> Result<Vec<Node>, AppError> {
    let still = || wanted.still();
    let mut w = Walker::new(store, snap, now, HashSet::new(), u32::MAX, &still);
    let doc = w.head(via)?;
    w.seen.insert(doc.id.clone());
    let (via_id, via_number): (Arc<str>, Arc<str>) = (doc.id.as_str().into(), doc.number.as_str().into());
    let mut forwards = w.forwarders(&doc.id)?;
    let mut out = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let key = schema::delivery(&doc.id, recipient);
        let Some(bytes) = store.get(&key)? else { continue };
        let d: LeanDelivery = schema::decode_borrowed(&key, &bytes)?;
        let forwarded_as = forwards.remove(*recipient).unwrap_or_default();
        let mut node = w.node(&d, snap.briefs.get(recipient), depth, (&via_id, &via_number), forwarded_as)?;
        w.grow(&mut node)?;
        out.push(node);
    }
    Ok(out)
}
