//! The version of the stored record format. postcard records carry no field names or tags, so a build that reads
//! records of another shape would misread them, or call a healthy store corrupt. Each store therefore says which
//! format it holds (`meta/format`, a u32 big-endian), and a build opens only the format it writes. A change to a
//! stored record's shape or to the key layout raises [`CURRENT`] and comes with the step that rewrites the
//! format before it; until the first such change there is none.
use super::{AppError, schema};
use crate::store::{Store, StoreError};

/// The record format this build reads and writes.
pub const CURRENT: u32 = 1;

/// What to do with a store, given the format it records (`None`: no marker) and whether it holds anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It holds this build's format.
    Open,
    /// Record [`CURRENT`]: a new store, or one written before the marker existed (whose records are format 1).
    Mark,
    /// Written by a newer build.
    Newer(u32),
    /// An older format this build has no step from.
    Older(u32),
}

/// The rule, with no I/O.
pub fn judge(found: Option<u32>) -> Verdict {
    match found {
        None => Verdict::Mark,
        Some(v) if v == CURRENT => Verdict::Open,
        Some(v) if v > CURRENT => Verdict::Newer(v),
        Some(v) => Verdict::Older(v),
    }
}

/// Checks the format of `store` before anything reads it, marking a store that has no marker.
pub fn check(store: &dyn Store) -> Result<(), AppError> {
    let found = match store.get(schema::FORMAT)? {
        None => None,
        Some(v) => Some(u32::from_be_bytes(v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(schema::FORMAT).into_owned(),
            reason: "not a 4-byte format version".into(),
        })?)),
    };
    match judge(found) {
        Verdict::Open => Ok(()),
        Verdict::Mark => store.transact(|tx| -> Result<(), AppError> {
            tx.put(schema::FORMAT, &CURRENT.to_be_bytes());
            Ok(())
        }),
        Verdict::Newer(v) => Err(AppError::Precondition(format!(
            "this data directory holds record format {v}, written by a newer gongwen; this build reads format \
             {CURRENT}: run the newer build (a backup made by it restores only into it as well)"
        ))),
        Verdict::Older(v) => Err(AppError::Precondition(format!(
            "this data directory holds record format {v}, which this build (format {CURRENT}) cannot convert"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_builds_format_opens_and_an_unmarked_store_is_marked() {
        assert_eq!(judge(Some(CURRENT)), Verdict::Open);
        assert_eq!(judge(None), Verdict::Mark);
        assert_eq!(judge(Some(CURRENT + 1)), Verdict::Newer(CURRENT + 1));
        assert_eq!(judge(Some(0)), Verdict::Older(0));
    }
}
