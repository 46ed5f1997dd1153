//! The file that keeps the request-token horizon (`token-horizon` in the data directory; see `app::horizon`).
//!
//! It is transport state, not a record: it stays out of the sled store, so content digests, backups and the log
//! never see it, and a restored data directory starts without one (its server then refuses tokens dated before
//! its own start, as a first start does). Written whole each time, through a temp file that is fsynced and renamed
//! over the old one, then the directory fsynced: a crash leaves the old file or the new one, never a mix.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What the file holds: every request token a server on this data directory has accepted is dated before
/// `shared`, or before its caller's entry in `own`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    /// Bound for every caller.
    pub shared: Option<DateTime<Utc>>,
    /// Bounds for callers whose clocks ran ahead of the server's, by caller (a unit id, or `operator`).
    pub own: BTreeMap<String, DateTime<Utc>>,
}

/// The horizon file of one data directory.
#[derive(Debug, Clone)]
pub struct HorizonFile {
    path: PathBuf,
}

impl HorizonFile {
    /// The file `token-horizon` in `data_dir` (which must exist when saving).
    pub fn in_dir(data_dir: &Path) -> HorizonFile {
        HorizonFile { path: data_dir.join(super::layout::HORIZON_FILE) }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved horizon; `None` when there is no file yet. A file that does not parse is an error: guessing
    /// would either lock every client out or let old tokens back in.
    pub fn load(&self) -> Result<Option<Horizon>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e.to_string())),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            self.error(format!(
                "{e}; it bounds the request tokens accepted before the last stop, and deleting it makes the next \
                 start refuse only tokens dated before that start"
            ))
        })
    }

    /// Replaces the file with `h`, durably. Blocking.
    pub fn save(&self, h: &Horizon) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(h).map_err(|e| self.error(e.to_string()))?;
        super::replace_file(&self.path, &self.path.with_extension("tmp"), &[text.as_bytes()])
            .map_err(|e| self.error(e.to_string()))
    }

    fn error(&self, reason: String) -> StoreError {
        StoreError::DataDir { path: self.path.display().to_string(), reason }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn saves_and_loads_back_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = HorizonFile::in_dir(dir.path());
        assert_eq!(file.load().ok(), Some(None));
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 4, 40, 0).single().unwrap_or_default();
        let h = Horizon {
            shared: Some(at + chrono::Duration::nanoseconds(123_456_789)),
            own: BTreeMap::from([("370000.czt".to_owned(), at + chrono::Duration::seconds(90))]),
        };
        assert!(file.save(&h).is_ok());
        assert_eq!(file.load().ok(), Some(Some(h.clone())));
        let newer = Horizon { shared: Some(at + chrono::Duration::seconds(2)), ..h };
        assert!(file.save(&newer).is_ok());
        assert_eq!(file.load().ok(), Some(Some(newer)));
        assert!(!file.path().with_extension("tmp").exists());
        assert!(std::fs::write(file.path(), b"{\"shared\": 12").is_ok());
        let err = file.load().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("token-horizon") && err.contains("deleting it"), "{err}");
    }
}
