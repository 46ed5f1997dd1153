//! The version of the stored record format. postcard records carry no field names or tags, so a build that reads
//! records of another shape would misread them, or call a healthy store corrupt. Each store therefore says which
//! format it holds (`meta/format`, a u32 big-endian), and a build opens only the format it writes. A change to a
//! stored record's shape or to the key layout raises [`CURRENT`] and comes with the step that brings a store of the
//! format before it up to date ([`step`]).
//!
//! - 1: the first.
//! - 2: events are no longer indexed by document (a document's events are found through its record and its
//!   deliveries' steps) and the log's leaf hashes are stored only for long events (a leaf is the hash of its
//!   event): two keys less per event, which is what sled loads at every start. A format-1 store reads the same
//!   under format 2, so the step only records the new format; its old index keys stay behind, unread, and its
//!   stored leaves are still read. A build of format 1 must not open the store after that, since it would miss
//!   the events written without its index.
//! - 3: the log's interior nodes of the three lowest levels are no longer stored: each is computed from the
//!   leaves below it (`log::COMPUTED_UP_TO`), close to one key less per event. A store of format 1 or 2 reads the
//!   same under format 3, its stored nodes read as before, so the step again only records the new format. A build
//!   of format 2 must not open the store after that: it would find the nodes written since missing.
use super::{AppError, schema};
use crate::store::{Store, StoreError};

/// The record format this build reads and writes.
pub const CURRENT: u32 = 3;

/// The format of the records of a store written before the marker existed.
const UNMARKED: u32 = 1;

/// The oldest format this build brings up to date.
const OLDEST: u32 = 1;

/// Brings a store of format `from` (`OLDEST..CURRENT`) up to [`CURRENT`], marker included, in one transaction.
/// `App::open` reads the operator key, the log key and the registry before it steps, so a step that changes how
/// those read must come before them.
pub fn step(store: &dyn Store, from: u32) -> Result<(), AppError> {
    // 1 → 2 → 3 rewrite nothing (see above): the marker is the whole step.
    debug_assert!((OLDEST..CURRENT).contains(&from));
    mark(store, CURRENT)
}

/// Records that `store` holds format `v`.
fn mark(store: &dyn Store, v: u32) -> Result<(), AppError> {
    store.transact(|tx| -> Result<(), AppError> {
        tx.put(schema::FORMAT, &v.to_be_bytes());
        Ok(())
    })
}

/// What to do with a store, given the format it records (`None`: no marker) and whether it holds anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It holds this build's format.
    Open,
    /// Record this format, which it holds: [`CURRENT`] for a new store (and, while [`UNMARKED`] is current, for
    /// one written before the marker existed).
    Mark(u32),
    /// An older format this build brings up to date.
    Step(u32),
    /// Written by a newer build.
    Newer(u32),
    /// An older format this build has no step from.
    Older(u32),
}

/// The rule, with no I/O.
pub fn judge(found: Option<u32>, holds_records: bool) -> Verdict {
    match found {
        None if !holds_records => Verdict::Mark(CURRENT),
        // Its records are format 1 whatever this build writes: opened as a store marked 1 would be.
        None => match judge(Some(UNMARKED), true) {
            Verdict::Open => Verdict::Mark(UNMARKED),
            other => other,
        },
        Some(v) if v == CURRENT => Verdict::Open,
        Some(v) if v > CURRENT => Verdict::Newer(v),
        Some(v) if v >= OLDEST => Verdict::Step(v),
        Some(v) => Verdict::Older(v),
    }
}

/// Checks the format of `store` before anything reads it. A new store is marked at once. A store of an older
/// format this build brings up to date is left as it is and its format returned, for [`step`] once the start has
/// got as far as it can without serving: a start refused for another reason (a wrong operator key) then leaves
/// it as it was, and the build before can still open it.
pub fn inspect(store: &dyn Store) -> Result<Option<u32>, AppError> {
    let found = match store.get(schema::FORMAT)? {
        None => None,
        Some(v) => Some(u32::from_be_bytes(v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(schema::FORMAT).into_owned(),
            reason: "not a 4-byte format version".into(),
        })?)),
    };
    let holds_records = found.is_none() && store.scan(b"", None, false).next().transpose()?.is_some();
    match judge(found, holds_records) {
        Verdict::Open => Ok(None),
        Verdict::Mark(v) => mark(store, v).map(|()| None),
        Verdict::Step(v) => Ok(Some(v)),
        Verdict::Newer(v) => Err(AppError::Precondition(format!(
            "this data directory holds record format {v}, written by a newer gongwen; this build reads format \
             {CURRENT}: run the newer build (a backup made by it restores only into it as well)"
        ))),
        Verdict::Older(v) => Err(AppError::Precondition(format!(
            "this data directory holds record format {v}, which this build (format {CURRENT}) cannot convert"
        ))),
    }
}

/// [`inspect`] and [`step`] at once: for a store made for this build (a restore).
pub fn check(store: &dyn Store) -> Result<(), AppError> {
    match inspect(store)? {
        Some(from) => step(store, from),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_builds_format_opens_and_an_unmarked_store_is_marked() {
        assert_eq!(judge(Some(CURRENT), true), Verdict::Open);
        assert_eq!(judge(None, false), Verdict::Mark(CURRENT));
        assert_eq!(judge(Some(CURRENT + 1), true), Verdict::Newer(CURRENT + 1));
        assert_eq!(judge(Some(0), true), Verdict::Older(0));
        assert_eq!(judge(Some(1), true), Verdict::Step(1));
    }

    #[test]
    fn an_unmarked_store_with_records_holds_format_1_whatever_this_build_writes() {
        // Marking it CURRENT would skip the step that brings format-1 records up to date: it takes that step.
        assert_eq!(judge(None, true), judge(Some(UNMARKED), true));
        assert_eq!(judge(None, true), Verdict::Step(1));
    }
}
