//! The data directory's layout, in one place: the start, `gongwen restore` and `serve --check-config` must agree on
//! where the database, the attachments and the files beside them are, and on everything a running server writes.
use std::path::{Path, PathBuf};

/// sled's directory.
pub const DB: &str = "db";
/// Attachment files ([`super::BlobStore`]).
pub const BLOBS: &str = "blobs";
/// The registry kept between runs (`app::registry_cache`).
pub const REGISTRY_FILE: &str = "registry.cache";
/// The token horizon ([`super::horizon_file`]).
pub const HORIZON_FILE: &str = "token-horizon";
/// Which operator key the data directory belongs to ([`record_operator`]).
pub const OPERATOR_FILE: &str = "operator";

/// sled's directory in `data`.
pub fn db_dir(data: &Path) -> PathBuf {
    data.join(DB)
}

/// The attachments' directory in `data`.
pub fn blob_dir(data: &Path) -> PathBuf {
    data.join(BLOBS)
}

/// How a running server uses a path of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A directory it makes, renames and removes files in.
    Dir,
    /// A file it reads, and replaces whole by renaming a new one over it (which needs only its directory).
    Replaced,
    /// A file it reads and writes in place.
    ReadWrite,
}

/// A path a running server uses under its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub path: PathBuf,
    pub by: Use,
}

/// Every path a running server uses under `data` (the directory itself not included), parents before their
/// children. A path missing now is made by the server, in its parent, which is listed before it (or is `data`).
pub fn used(data: &Path) -> Vec<Used> {
    let at = |path: PathBuf, by: Use| Used { path, by };
    let (db, blobs) = (db_dir(data), blob_dir(data));
    vec![
        at(data.join(REGISTRY_FILE), Use::Replaced),
        at(data.join(HORIZON_FILE), Use::Replaced),
        at(data.join(OPERATOR_FILE), Use::Replaced),
        at(db.clone(), Use::Dir),
        // sled's data file, its settings (read at each start, written once), its directory of large values, and
        // the deferred batches.
        at(db.join("db"), Use::ReadWrite),
        at(db.join("conf"), Use::Replaced),
        at(db.join("blobs"), Use::Dir),
        at(db.join(super::deferred::DIR), Use::Dir),
        at(blobs.clone(), Use::Dir),
        at(blobs.join(super::blobs::TMP), Use::Dir),
    ]
}

/// Records that `data` belongs to the operator key `key_id` with `public_key`, as one line `<key id> <hex public
/// key>` (a key id may hold spaces; the hex never does), unless that is recorded already: a copy of the store's own
/// record, which `serve --check-config` reads without opening the store (that would take its lock, and a running
/// server holds it). An unreadable record is replaced.
pub fn record_operator(data: &Path, key_id: &str, public_key: &[u8]) -> std::io::Result<()> {
    if matches!(recorded_operator(data), Ok(Some((id, public))) if id == key_id && public == public_key) {
        return Ok(());
    }
    let line = format!("{key_id} {}\n", hex::encode(public_key));
    let path = data.join(OPERATOR_FILE);
    super::replace_file(&path, &data.join(format!("{OPERATOR_FILE}.tmp")), &[line.as_bytes()])
}

/// The operator key recorded in `data` by [`record_operator`]: its key id and public key; `None` when nothing is
/// recorded (a new data directory, or one last served by a version without the record).
pub fn recorded_operator(data: &Path) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let text = match std::fs::read_to_string(data.join(OPERATOR_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a key id and a hex public key");
    let (key_id, public) = text.trim_end().rsplit_once(' ').ok_or_else(damaged)?;
    let public = hex::decode(public).map_err(|_| damaged())?;
    Ok(Some((key_id.to_owned(), public)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_record_reads_back_and_its_absence_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(recorded_operator(dir.path()).expect("read"), None);
        record_operator(dir.path(), "operator#ab12", &[1, 2, 255]).expect("record");
        assert_eq!(recorded_operator(dir.path()).expect("read"), Some(("operator#ab12".into(), vec![1, 2, 255])));
        record_operator(dir.path(), "ops key 2024", &[7]).expect("record a key id with spaces");
        assert_eq!(recorded_operator(dir.path()).expect("read"), Some(("ops key 2024".into(), vec![7])));
        std::fs::write(dir.path().join(OPERATOR_FILE), "junk").expect("damage it");
        assert!(recorded_operator(dir.path()).is_err(), "a damaged record is an error, not a missing one");
    }

    #[test]
    fn parents_come_before_their_children() {
        let data = Path::new("/srv/gongwen");
        let list = used(data);
        for (i, u) in list.iter().enumerate() {
            if let Some(parent) = u.path.parent().filter(|p| *p != data) {
                let at = list.iter().position(|p| p.path == parent).expect("the parent is listed");
                assert!(at < i && list[at].by == Use::Dir, "{} before {}", parent.display(), u.path.display());
            }
        }
    }
}
