//! Document heads (id, number, title, issuer) kept in memory. Every delivery action reads the head of its
//! document, and a document never changes once issued, so a head once read stays true for the life of the
//! process. Only heads that were found are kept: a document missing now may be issued a moment later.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::model::DocHead;

/// Heads kept in two generations: when the young one is full it becomes the old one and the old one is dropped,
/// so the heads read recently stay and memory stays within twice the capacity, without bookkeeping per read.
pub(super) struct HeadCache {
    capacity: usize,
    gens: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<String, Arc<DocHead>>,
    old: HashMap<String, Arc<DocHead>>,
}

impl HeadCache {
    /// A cache of up to `2 * capacity` heads (`capacity` at least 1).
    pub(super) fn new(capacity: usize) -> HeadCache {
        HeadCache { capacity: capacity.max(1), gens: Mutex::new(Generations::default()) }
    }

    /// The head of `id`, if it was read before.
    pub(super) fn get(&self, id: &str) -> Option<Arc<DocHead>> {
        let mut gens = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(head) = gens.young.get(id) {
            return Some(head.clone());
        }
        let head = gens.old.remove(id)?;
        self.keep(&mut gens, head.clone());
        Some(head)
    }

    /// Keeps a head read from the store.
    pub(super) fn insert(&self, head: Arc<DocHead>) {
        let mut gens = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        self.keep(&mut gens, head);
    }

    fn keep(&self, gens: &mut Generations, head: Arc<DocHead>) {
        if gens.young.len() >= self.capacity {
            gens.old = std::mem::take(&mut gens.young);
        }
        gens.young.insert(head.id.clone(), head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: &str) -> Arc<DocHead> {
        Arc::new(DocHead {
            id: id.into(),
            number: format!("鲁财采〔2022〕{id}号"),
            title: "t".into(),
            issuer: "i".into(),
        })
    }

    #[test]
    fn a_head_read_is_found_again() {
        let cache = HeadCache::new(4);
        assert!(cache.get("1").is_none());
        cache.insert(head("1"));
        assert_eq!(cache.get("1").map(|h| h.number.clone()), Some("鲁财采〔2022〕1号".to_owned()));
    }

    #[test]
    fn memory_stays_within_two_generations_and_recent_reads_survive() {
        let cache = HeadCache::new(2);
        for id in ["1", "2", "3"] {
            cache.insert(head(id));
        }
        // "1" and "2" are the old generation now; reading "1" brings it back into the young one.
        assert!(cache.get("1").is_some());
        cache.insert(head("4"));
        cache.insert(head("5"));
        // The young generation {3, 1} became old when "5" arrived, and {1, 2} was dropped except what was read.
        assert!(cache.get("2").is_none(), "an old head nobody read is dropped");
        assert!(cache.get("1").is_some() && cache.get("5").is_some());
        let gens = cache.gens.lock().unwrap();
        assert!(gens.young.len() + gens.old.len() <= 4);
    }
}
