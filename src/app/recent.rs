//! A bounded map of values read recently, for facts that never change once true: a document's head (documents
//! never change once issued) and a seal key's parsed public point (a function of its bytes). Only values that were
//! found are kept: a document missing now may be issued a moment later.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Values kept in two generations: when the young one is full it becomes the old one and the old one is dropped,
/// so the values read recently stay and memory stays within twice the capacity, without bookkeeping per read.
pub(super) struct Recent<K, V> {
    capacity: usize,
    gens: Mutex<Generations<K, V>>,
}

struct Generations<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// A cache of up to `2 * capacity` values (`capacity` at least 1).
    pub(super) fn new(capacity: usize) -> Recent<K, V> {
        Recent {
            capacity: capacity.max(1),
            gens: Mutex::new(Generations { young: HashMap::new(), old: HashMap::new() }),
        }
    }

    /// The value kept for `key`, if any.
    pub(super) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut gens = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = gens.young.get(key) {
            return Some(value.clone());
        }
        let (key, value) = gens.old.remove_entry(key)?;
        self.keep(&mut gens, key, value.clone());
        Some(value)
    }

    /// Keeps a value read from its source.
    pub(super) fn insert(&self, key: K, value: V) {
        let mut gens = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        self.keep(&mut gens, key, value);
    }

    fn keep(&self, gens: &mut Generations<K, V>, key: K, value: V) {
        if gens.young.len() >= self.capacity {
            gens.old = std::mem::take(&mut gens.young);
        }
        gens.young.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_kept_is_found_again() {
        let cache = Recent::new(4);
        assert!(cache.get("1").is_none());
        cache.insert("1".to_owned(), 10);
        assert_eq!(cache.get("1"), Some(10));
    }

    #[test]
    fn memory_stays_within_two_generations_and_recent_reads_survive() {
        let cache = Recent::new(2);
        for id in ["1", "2", "3"] {
            cache.insert(id.to_owned(), id.len());
        }
        // "1" and "2" are the old generation now; reading "1" brings it back into the young one.
        assert!(cache.get("1").is_some());
        cache.insert("4".to_owned(), 1);
        cache.insert("5".to_owned(), 1);
        // The young generation {3, 1} became old when "5" arrived, and {1, 2} was dropped except what was read.
        assert!(cache.get("2").is_none(), "an old value nobody read is dropped");
        assert!(cache.get("1").is_some() && cache.get("5").is_some());
        let gens = cache.gens.lock().unwrap();
        assert!(gens.young.len() + gens.old.len() <= 4);
    }
}
