//! The registry kept in a file of its own between runs, so that a start reads it in one go.
//!
//! Loading the registry from the store reads every unit record, and a store's units end up scattered over its
//! file: a start of the 10-million-event bench store (100,000 units) made some 15,000 random reads for them, which
//! took 9.7 s with nothing of the disk cached (BENCHMARKS.md, 12-03e). The file holds the whole registry and is
//! stamped with the store's last registry event: its sequence number and the root of the event log's Merkle tree
//! up to it, which covers that event and every one before it. Every change to the registry appends such an event
//! in the same transaction (`registry.rs`), so a file whose stamp is not the store's is stale and is ignored, as is
//! a file that is damaged or of another format; the store is then read as before. Two copies of one store that
//! went separate ways have different roots even when their last registry events are the same bytes. The file is
//! written when the registry was read from the store, and at a clean stop.
//!
//! Someone who may write the data directory can put any registry in this file, as they can already put any
//! record in sled's; the file is as trusted as the directory it is in.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::log::StoreNodes;
use super::{AppError, schema};
use crate::domain::merkle::{self, Hash};
use crate::domain::model::{Group, Region, Registry, Unit};
use crate::store::{Store, StoreError};

/// First bytes of the file: its own format, then the store's record format (`format::CURRENT`), whose records it
/// holds: postcard carries no field names, so a file from a build with other records is not read.
const MAGIC: &[u8] = b"gongwen-registry-2\n";

/// Which state of the store a registry is: its last registry event, and the log's root up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    seq: u64,
    root: Hash,
}

impl Stamp {
    /// The store's: its last registry event and the root of the log's tree of that many events (none: 0 and the
    /// empty tree's root).
    pub fn of(store: &dyn Store) -> Result<Stamp, StoreError> {
        let last = store.scan(schema::REGISTRY_EVENTS, None, true).next().transpose()?;
        let Some((key, _)) = last else {
            return Ok(Stamp { seq: 0, root: merkle::empty_root() });
        };
        let seq_bytes = key.get(schema::REGISTRY_EVENTS.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok());
        let seq = seq_bytes.map(u64::from_be_bytes).ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: "not a registry event key".into(),
        })?;
        // Events are numbered from 1, so the tree that ends with event `seq` has `seq` leaves.
        Ok(Stamp { seq, root: merkle::root(&StoreNodes(store), seq)? })
    }
}

#[derive(Serialize, Deserialize)]
struct Contents {
    stamp: Stamp,
    regions: Vec<Region>,
    units: Vec<Unit>,
    groups: Vec<Group>,
    auditors: Vec<(String, Vec<String>)>,
}

/// Where the registry is kept between runs.
#[derive(Debug, Clone)]
pub struct RegistryFile {
    path: PathBuf,
}

impl RegistryFile {
    /// The file in a data directory.
    pub fn in_dir(dir: &Path) -> RegistryFile {
        RegistryFile { path: dir.join(crate::store::layout::REGISTRY_FILE) }
    }

    /// The registry kept, if the file holds the state `stamp` names; `None` when it is missing, stale, damaged or
    /// of another format.
    pub fn read(&self, stamp: Stamp) -> Option<Registry> {
        let bytes = std::fs::read(&self.path).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?.strip_prefix(&super::format::CURRENT.to_be_bytes()[..])?;
        let (sum, payload) = rest.split_at_checked(32)?;
        if Sha256::digest(payload).as_slice() != sum {
            return None;
        }
        let c: Contents = postcard::from_bytes(payload).ok()?;
        if c.stamp != stamp {
            return None;
        }
        Some(Registry {
            regions: c.regions.into_iter().map(|r| (r.code.clone(), r)).collect(),
            units: c.units.into_iter().map(|u| (u.id.clone(), u)).collect(),
            groups: c.groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
            auditors: c.auditors.into_iter().collect(),
        })
    }

    /// Keeps `registry` as the state `stamp` names, replacing the file whole and durably.
    pub fn write(&self, registry: &Registry, stamp: Stamp) -> Result<(), AppError> {
        let contents = Contents {
            stamp,
            regions: registry.regions.values().cloned().collect(),
            units: registry.units.values().cloned().collect(),
            groups: registry.groups.values().cloned().collect(),
            auditors: registry.auditors.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let payload = schema::encode(&contents)?;
        let (format, sum) = (super::format::CURRENT.to_be_bytes(), Sha256::digest(&payload));
        let parts: [&[u8]; 4] = [MAGIC, &format, &sum, &payload];
        crate::store::replace_file(&self.path, &self.path.with_extension("cache.new"), &parts)
            .map_err(StoreError::from)?;
        Ok(())
    }
}

/// What a start found of the registry file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The file holds the store's state, under this stamp.
    Current(Stamp),
    /// The file is missing, stale, damaged or of another format: the registry was read from the store, and the
    /// file is to be written again under this stamp.
    Stale(Stamp),
    /// No file, or no stamp to keep one under (a damaged log, which still starts, as it did before the file
    /// existed): the file is neither read nor written.
    Unused,
}

/// The registry as `store` holds it, from `file` when that holds the store's state, else from the store's records;
/// and what was found of the file.
pub fn load(store: &dyn Store, file: Option<&RegistryFile>) -> Result<(Registry, Kept), AppError> {
    let Some(file) = file else {
        return Ok((super::registry::load(store)?, Kept::Unused));
    };
    let stamp = match Stamp::of(store) {
        Ok(stamp) => stamp,
        Err(e) => {
            tracing::warn!("the registry file is not used: the store's stamp for it cannot be worked out: {e}");
            return Ok((super::registry::load(store)?, Kept::Unused));
        }
    };
    match file.read(stamp) {
        Some(registry) => Ok((registry, Kept::Current(stamp))),
        None => Ok((super::registry::load(store)?, Kept::Stale(stamp))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::EventKind;
    use crate::pb;
    use crate::store::SledStore;

    /// A store holding these events, each `(document, payload)`: a registry event when there is no document.
    fn store_of(dir: &Path, events: &[(Option<&str>, &[u8])]) -> Box<dyn Store> {
        let store: Box<dyn Store> = Box::new(SledStore::open(&dir.join("db"), 8 << 20).expect("store"));
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time");
        for (document, payload) in events {
            let kind = if document.is_some() { EventKind::Issued } else { EventKind::RegistryChanged };
            let envelope = pb::SignedEnvelope { payload: payload.to_vec(), ..Default::default() };
            store
                .transact(|tx| super::super::append_event(tx, kind, "operator", *document, &envelope, at))
                .expect("append");
        }
        store
    }

    #[test]
    fn a_stamp_covers_the_whole_history_before_the_last_registry_event() {
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
        let one = store_of(dirs[0].path(), &[(None, b"regions"), (Some("d1"), b"issue one"), (None, b"units")]);
        let same = store_of(dirs[1].path(), &[(None, b"regions"), (Some("d1"), b"issue one"), (None, b"units")]);
        let parted = store_of(dirs[2].path(), &[(None, b"regions"), (Some("d1"), b"issue two"), (None, b"units")]);
        let (stamp, parted_stamp) =
            (Stamp::of(one.as_ref()).expect("stamp"), Stamp::of(parted.as_ref()).expect("stamp"));
        assert_eq!(Stamp::of(same.as_ref()).expect("stamp"), stamp, "the same history, the same stamp");
        assert_eq!(stamp.seq, 3);
        assert_eq!(parted_stamp.seq, 3);
        let last = |s: &dyn Store| s.get(&schema::event(3)).expect("read").expect("event 3");
        assert_eq!(last(one.as_ref()), last(parted.as_ref()), "the last registry events are alike");
        assert_ne!(parted_stamp, stamp, "an earlier event differs, and so does the stamp");

        // Events after the last registry event leave the stamp alone.
        let later = store_of(dirs[3].path(), &[(None, b"regions"), (Some("d1"), b"issue one"), (None, b"units")]);
        let envelope = pb::SignedEnvelope { payload: b"issue three".to_vec(), ..Default::default() };
        later
            .transact(|tx| {
                super::super::append_event(tx, EventKind::Issued, "u", Some("d3"), &envelope, chrono::Utc::now())
            })
            .expect("append");
        assert_eq!(Stamp::of(later.as_ref()).expect("stamp"), stamp);

        let file = RegistryFile::in_dir(dirs[0].path());
        let registry = Registry::default();
        file.write(&registry, stamp).expect("write");
        assert_eq!(file.read(stamp), Some(registry));
        assert_eq!(file.read(parted_stamp), None, "a file of one copy is not read for the other");
    }

    #[test]
    fn a_store_whose_stamp_cannot_be_worked_out_starts_from_its_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_of(dir.path(), &[(None, b"regions")]);
        let file = RegistryFile::in_dir(dir.path());
        let (_, kept) = load(store.as_ref(), Some(&file)).expect("load");
        assert!(matches!(kept, Kept::Stale(Stamp { seq: 1, .. })), "{kept:?}");
        // An index entry for an event the log does not hold: no root for 9 events.
        store
            .transact(|tx| -> Result<(), StoreError> {
                tx.put(&schema::registry_event(9), &[]);
                Ok(())
            })
            .expect("put");
        assert!(Stamp::of(store.as_ref()).is_err());
        let (registry, kept) = load(store.as_ref(), Some(&file)).expect("a start all the same");
        assert_eq!((registry, kept), (super::super::registry::load(store.as_ref()).expect("records"), Kept::Unused));
    }
}
