//! The recipients who have not acted on a directive, at any depth of its forwarding tree, a page at a time.
//!
//! A page is chosen from the keys of the tree's deliveries alone ([`pages::Select`]), and only its own nodes are
//! built: building all 200,000 nodes of a large tree, and sorting them, for each page of 1,000 made reading every
//! page take 33 s.
use foldhash::{HashMap, HashMapExt};

use super::pages::{self, Cursor, Select};
use super::trace::{self, Node};
use super::{App, AppError};
use crate::domain::model::Role;
use crate::domain::state::DeliveryState;

/// One page of [`App::not_acted`].
pub struct NotActedPage {
    pub nodes: Vec<Node>,
    /// Where the next page starts, when one follows.
    pub next: Option<Cursor>,
    /// Recipients not acted in the whole tree.
    pub total: u32,
}

/// A main recipient that has not acted: pending, or only acknowledged. A copy recipient (抄送) is not asked to act.
fn waiting(role: Role, state: DeliveryState) -> bool {
    role == Role::Main && matches!(state, DeliveryState::Pending | DeliveryState::Acknowledged)
}

impl App {
    /// A page of the main recipients at any depth that have not acted, by depth, unit id and via document; with
    /// the cursor of the next page and the count over the whole tree.
    pub async fn not_acted(
        &self,
        document_id: &str,
        page_size: usize,
        after: Option<&Cursor>,
    ) -> Result<NotActedPage, AppError> {
        let (snap, now, id) = (self.snapshot(), self.now(), document_id.to_owned());
        let after = after.cloned();
        self.walk(move |store, wanted| {
            let (_, select) = trace::fold_tree(
                store,
                &snap,
                now,
                &id,
                wanted,
                || Select::new(page_size, after.as_ref()),
                |s, d, depth| {
                    if waiting(d.role, d.state) {
                        s.offer((depth, d.recipient, &String::from_utf8_lossy(d.document_id)));
                    }
                },
                Select::merge,
            )?;
            let total = u32::try_from(select.total()).unwrap_or(u32::MAX);
            let (keys, next) = select.finish(&id);
            // The page's recipients by the document they came through, each document's nodes built at once.
            let mut by_via: HashMap<&str, (u32, Vec<&str>)> = HashMap::new();
            for (depth, unit, via) in &keys {
                by_via.entry(via).or_insert_with(|| (*depth, vec![])).1.push(unit);
            }
            let mut nodes = Vec::with_capacity(keys.len());
            for (via, (depth, units)) in by_via {
                nodes.extend(trace::recipient_nodes(store, &snap, now, via, depth, &units, wanted)?);
            }
            // Someone who acted since the keys were read drops out, as they would from a later page.
            nodes.retain(|n| waiting(n.delivery.role, n.delivery.state));
            nodes.sort_by(|a, b| key(a).cmp(&key(b)));
            Ok(NotActedPage { nodes, next, total })
        })
        .await
    }
}

fn key(n: &Node) -> pages::Key<'_> {
    (n.depth, &n.unit_id, &n.via_document_id)
}
