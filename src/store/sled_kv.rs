//! The sled backend of [`Store`](super::Store).
use std::path::Path;

use super::{Outcome, Pair, Store, StoreError, Tx};

/// sled-backed store: one `Db`, one tree, prefixed key spaces, group-committed durable writes.
pub struct SledStore {
    _private: (),
}

impl SledStore {
    /// Opens (or creates) the database under `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        let _ = (dir, cache_bytes);
        unimplemented!("filled in by the store work")
    }
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        unimplemented!()
    }
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + '_> {
        let _ = (prefix, after, reverse);
        unimplemented!()
    }
    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>) -> Result<(), StoreError> {
        let _ = f;
        unimplemented!()
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        unimplemented!()
    }
}
