//! The forwarding tree under a document (督办追踪): every unit reached directly or through forwards.
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::{App, AppError, schema};
use crate::domain::model::{Delivery, Document, Registry, Role, StepKind};
use crate::domain::state::{DeliveryState, is_overdue};
use crate::store::Store;

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
    pub via_document_id: String,
    pub via_document_number: String,
    pub delivery: Delivery,
    pub overdue: bool,
    pub forwarded_as: Vec<String>,
    pub counts: Counts,
    pub children: Vec<Node>,
    /// Steps signed with a key revoked at or before their time.
    pub flags: Vec<String>,
}

impl Node {
    /// When the first step of `kind` happened.
    pub fn at(&self, kind: StepKind) -> Option<DateTime<Utc>> {
        self.delivery.first(kind)
    }
}

/// The tree under a document.
#[derive(Debug, Clone)]
pub struct Tree {
    pub document: Document,
    pub nodes: Vec<Node>,
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
    registry: &'a Registry,
    snapshot: &'a super::Snapshot,
    now: DateTime<Utc>,
    seen: HashSet<String>,
}

impl Walker<'_> {
    fn document(&self, id: &str) -> Result<Document, AppError> {
        schema::load::<Document>(self.store, &schema::document(id))?
            .ok_or_else(|| AppError::NotFound(format!("no document {id:?}")))
    }

    /// Recipients of `doc` at `depth`, each with the subtree reached through its forwards of `doc`.
    fn nodes(&mut self, doc: &Document, depth: u32) -> Result<Vec<Node>, AppError> {
        if depth > MAX_DEPTH || !self.seen.insert(doc.id.clone()) {
            return Ok(vec![]);
        }
        // forwarder → the documents it forwarded `doc` as
        let mut forwards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in self.store.scan(&schema::forwards_of(&doc.id), None, false) {
            let (k, v) = pair?;
            forwards.entry(String::from_utf8_lossy(&v).into_owned()).or_default().push(schema::last_part(&k));
        }
        let mut out = vec![];
        for pair in self.store.scan(&schema::deliveries_of(&doc.id), None, false) {
            let (k, v) = pair?;
            let delivery: Delivery = schema::decode(&k, &v)?;
            let unit = self.registry.units.get(&delivery.recipient);
            let overdue = is_overdue(delivery.deadline, delivery.state, self.now);
            let mut node = Node {
                unit_id: delivery.recipient.clone(),
                unit_name: unit.map(|u| u.full_name.clone()).unwrap_or_default(),
                region: unit.map(|u| u.region.clone()).unwrap_or_default(),
                level: unit.map(|u| u.level),
                depth,
                via_document_id: doc.id.clone(),
                via_document_number: doc.number.to_string(),
                overdue,
                forwarded_as: vec![],
                counts: own_counts(&delivery, overdue),
                children: vec![],
                flags: delivery.steps.iter().filter_map(|s| self.snapshot.suspect(s)).collect(),
                delivery,
            };
            for fwd_id in forwards.get(&node.unit_id).map(Vec::as_slice).unwrap_or_default() {
                let fwd = self.document(fwd_id)?;
                node.forwarded_as.push(fwd.number.to_string());
                let children = self.nodes(&fwd, depth + 1)?;
                for c in &children {
                    node.counts.add(&c.counts);
                }
                node.children.extend(children);
            }
            out.push(node);
        }
        Ok(out)
    }
}

fn own_counts(d: &Delivery, overdue: bool) -> Counts {
    let flag = |b: bool| u32::from(b);
    Counts {
        delivered: 1,
        acknowledged: flag(d.state.is_acknowledged()),
        acted: flag(d.state.is_acted()),
        completed: flag(d.state == DeliveryState::Completed),
        overdue: flag(overdue),
        returned: flag(d.state == DeliveryState::Returned),
    }
}

impl App {
    /// The whole forwarding tree under a document.
    pub async fn trace(&self, document_id: &str) -> Result<Tree, AppError> {
        let snap = self.snapshot();
        let now = self.now();
        let id = document_id.to_owned();
        self.read(move |store| {
            let mut w = Walker { store, registry: &snap.registry, snapshot: &snap, now, seen: HashSet::new() };
            let document = w.document(&id)?;
            let nodes = w.nodes(&document, 1)?;
            let mut totals = Counts::default();
            for n in &nodes {
                totals.add(&n.counts);
            }
            Ok(Tree { document, nodes, totals })
        })
        .await
    }

    /// Main recipients at any depth that have not acted (pending or only acknowledged), by depth then unit id.
    pub async fn not_acted(&self, document_id: &str) -> Result<Vec<Node>, AppError> {
        let mut flat: Vec<Node> = self
            .trace(document_id)
            .await?
            .flatten()
            .into_iter()
            .filter(|n| {
                n.delivery.role == Role::Main
                    && matches!(n.delivery.state, DeliveryState::Pending | DeliveryState::Acknowledged)
            })
            .collect();
        flat.sort_by(|a, b| (a.depth, &a.unit_id, &a.via_document_id).cmp(&(b.depth, &b.unit_id, &b.via_document_id)));
        Ok(flat)
    }
}
