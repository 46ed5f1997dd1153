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

/// A directory a running server makes files in, or a file it opens for writing or replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// Everything a running server writes in or under `data`, parents before their children. A path missing now is
/// made by the server, in its parent, which is listed before it.
pub fn written(data: &Path) -> Vec<Written> {
    let dir = |path: PathBuf| Written { path, is_dir: true };
    let file = |path: PathBuf| Written { path, is_dir: false };
    let (db, blobs) = (db_dir(data), blob_dir(data));
    vec![
        // The two files are replaced whole: a temporary file is made beside them.
        dir(data.to_path_buf()),
        file(data.join(REGISTRY_FILE)),
        file(data.join(HORIZON_FILE)),
        file(data.join(OPERATOR_FILE)),
        dir(db.clone()),
        // sled's data file and its settings, its directory of large values, and the deferred batches.
        file(db.join("db")),
        file(db.join("conf")),
        dir(db.join("blobs")),
        dir(db.join(super::deferred::DIR)),
        dir(blobs.clone()),
        dir(blobs.join(super::blobs::TMP)),
    ]
}

/// Records that `data` belongs to the operator key `key_id` with `public_key`, as one line `<key id> <hex public
/// key>`: a copy of the store's own record, which `serve --check-config` reads without opening the store (that
/// would take its lock, and a running server holds it).
pub fn record_operator(data: &Path, key_id: &str, public_key: &[u8]) -> std::io::Result<()> {
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
    let (key_id, public) = text.trim_end().split_once(' ').ok_or_else(damaged)?;
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
        std::fs::write(dir.path().join(OPERATOR_FILE), "junk").expect("damage it");
        assert!(recorded_operator(dir.path()).is_err(), "a damaged record is an error, not a missing one");
    }

    #[test]
    fn parents_come_before_their_children() {
        let list = written(Path::new("/srv/gongwen"));
        for (i, w) in list.iter().enumerate() {
            if let Some(parent) = w.path.parent().filter(|p| *p != Path::new("/srv")) {
                let at = list.iter().position(|p| p.path == parent).expect("the parent is listed");
                assert!(at < i && list[at].is_dir, "{} before {}", parent.display(), w.path.display());
            }
        }
    }
}
