//! Large commits whose new keys are applied to sled's tree in the background.
//!
//! sled spends about 10 µs per key applying a batch, under our write lock (measured on the project's machine:
//! 2.1 s for the 200,000 keys of a 100,000-recipient fan-out). So a commit group that brings many keys declared
//! new ([`Tx::put_new`](super::Tx::put_new)) writes them to a file of its own, fsyncs it, and only then applies the
//! group's other writes to sled in one atomic batch together with a marker naming the file (its length and
//! SHA-256): the marker commits the file. Once that batch is flushed the commit is durable, and a background thread
//! moves the keys into the tree, drops the marker, and deletes the file after the next flush. Until then reads see
//! the keys through this overlay, and a restart loads it back from the marked files.
//!
//! The file is ours rather than a large sled value because sled writes large values to blob files that it never
//! fsyncs and, at recovery, skips a missing one and goes on: a commit would come back half applied after a power
//! loss.
//!
//! The rule that keeps this simple: **a key in the tree wins over the overlay.** Overlay keys were new when
//! committed, so a value for one in the tree is either the overlay's own copy or a later write.
use std::collections::BTreeMap;
use std::fs::File;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Pair, StoreError};

/// First byte of the store's private key space: the application's keys are ASCII, so they sort below it, and
/// scans stop before it.
pub(super) const PRIVATE: u8 = 0xff;
/// Markers of committed batches: `PREFIX ‖ id (u64 BE)` → [`Marker`].
const PREFIX: &[u8] = b"\xffdeferred/";
/// First bytes of a batch file: its format.
const MAGIC: &[u8] = b"gongwen-deferred-1\n";

/// New keys of one commit group, in key order.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) id: u64,
    pub(super) entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Entries<'a> {
    #[serde(borrow)]
    entries: Vec<(&'a [u8], &'a [u8])>,
}

/// What the marker of a batch says of its file.
#[derive(Serialize, Deserialize)]
struct Marker {
    len: u64,
    sha256: [u8; 32],
}

/// The directory of batch files in sled's.
pub(super) const DIR: &str = "deferred";

/// The directory of batch files, next to sled's own files.
pub(super) struct Files {
    dir: PathBuf,
}

impl Files {
    pub(super) fn open(sled_dir: &Path) -> Result<Files, StoreError> {
        let dir = sled_dir.join(DIR);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            File::open(sled_dir)?.sync_all()?;
        }
        Ok(Files { dir })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.batch"))
    }

    /// Writes `batch` to its file and makes it durable (file and directory); returns the marker that commits it.
    pub(super) fn write(&self, batch: &Batch) -> Result<Pair, StoreError> {
        let entries = Entries { entries: batch.entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect() };
        let mut bytes = MAGIC.to_vec();
        postcard::to_io(&entries, &mut bytes)
            .map_err(|e| StoreError::Backend(format!("cannot encode a deferred batch: {e}")))?;
        let (path, temp) = (self.path(batch.id), self.dir.join(format!("{:016x}.tmp", batch.id)));
        super::replace_file(&path, &temp, &[&bytes])?;
        let marker = Marker { len: bytes.len() as u64, sha256: Sha256::digest(&bytes).into() };
        let value = postcard::to_stdvec(&marker)
            .map_err(|e| StoreError::Backend(format!("cannot encode a deferred marker: {e}")))?;
        Ok((marker_key(batch.id), value))
    }

    /// Deletes the file of a batch whose marker is gone from disk.
    pub(super) fn remove(&self, id: u64) {
        // A file left behind is deleted at the next open; nothing depends on this succeeding.
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Loads the batches whose markers are given (in key order, as a scan of [`marker_prefix`] returns them).
    pub(super) fn load(
        &self,
        markers: impl Iterator<Item = Result<Pair, StoreError>>,
    ) -> Result<Vec<Batch>, StoreError> {
        let mut batches = vec![];
        for marker in markers {
            let (key, value) = marker?;
            let corrupt =
                |reason: String| StoreError::Corrupt { key: String::from_utf8_lossy(&key).into_owned(), reason };
            let id = batch_id(&key).ok_or_else(|| corrupt("not a deferred marker key".into()))?;
            let marker: Marker = postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?;
            let path = self.path(id);
            let bytes = std::fs::read(&path)
                .map_err(|e| corrupt(format!("its committed batch file {} cannot be read: {e}", path.display())))?;
            if bytes.len() as u64 != marker.len || <[u8; 32]>::from(Sha256::digest(&bytes)) != marker.sha256 {
                return Err(corrupt(format!("its committed batch file {} is damaged", path.display())));
            }
            let decoded: Entries = bytes
                .strip_prefix(MAGIC)
                .and_then(|body| postcard::from_bytes(body).ok())
                .ok_or_else(|| corrupt(format!("{} is not a deferred batch file", path.display())))?;
            let entries = decoded.entries.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            batches.push(Batch { id, entries });
        }
        Ok(batches)
    }

    /// The files of batches other than `kept`: their commit never landed, or they were applied.
    pub(super) fn others(&self, kept: &[u64]) -> Result<Vec<PathBuf>, StoreError> {
        let named: std::collections::HashSet<PathBuf> = kept.iter().map(|id| self.path(*id)).collect();
        let mut out = vec![];
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if !named.contains(&path) {
                out.push(path);
            }
        }
        Ok(out)
    }

    /// Deletes `files` (from [`Files::others`]). Call it only once the markers they were judged by are on disk, or
    /// a crash could bring back a marker without its file.
    pub(super) fn remove_all(&self, files: &[PathBuf]) -> Result<(), StoreError> {
        for path in files {
            std::fs::remove_file(path)?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

/// The prefix of every batch marker.
pub(super) fn marker_prefix() -> &'static [u8] {
    PREFIX
}

/// The marker key of batch `id`.
pub(super) fn marker_key(id: u64) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn batch_id(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(PREFIX)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The batches not yet fully in the tree, oldest first.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    batches: RwLock<Vec<Arc<Batch>>>,
}

impl Overlay {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Batch>>> {
        self.batches.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Batch>>> {
        self.batches.write().unwrap_or_else(|p| p.into_inner())
    }

    /// No batch is waiting: reads need not look here.
    pub(super) fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub(super) fn push(&self, batch: Arc<Batch>) {
        self.write().push(batch);
    }

    /// Runs `apply` (a group's sled batch) and, if it succeeds, adds `added` and drops the batches `drained` (which
    /// that sled batch applied), while no reader can look: readers see the whole group or none of it.
    pub(super) fn change_with(
        &self,
        added: Option<Arc<Batch>>,
        drained: &[u64],
        apply: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut batches = self.write();
        apply()?;
        batches.retain(|b| !drained.contains(&b.id));
        batches.extend(added);
        Ok(())
    }

    /// The overlay, locked for reading: while it is held no group lands and no batch leaves.
    pub(super) fn guard(&self) -> Guard<'_> {
        Guard(self.read())
    }

    pub(super) fn remove(&self, id: u64) {
        self.write().retain(|b| b.id != id);
    }

    /// Whether batch `id` is still waiting.
    pub(super) fn holds(&self, id: u64) -> bool {
        self.read().iter().any(|b| b.id == id)
    }

    /// The oldest batch still waiting.
    pub(super) fn oldest(&self) -> Option<Arc<Batch>> {
        self.read().first().cloned()
    }

    /// The batches waiting now. Take it before reading the tree: a batch leaves the overlay only once all its
    /// keys are in the tree, so a key is then found in one place or the other.
    pub(super) fn view(&self) -> View {
        View(self.read().clone())
    }

    /// Keys still waiting, over all batches.
    pub(super) fn waiting(&self) -> usize {
        self.read().iter().map(|b| b.entries.len()).sum()
    }
}

/// See [`Overlay::guard`].
pub(super) struct Guard<'a>(std::sync::RwLockReadGuard<'a, Vec<Arc<Batch>>>);

impl Guard<'_> {
    pub(super) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        newest(&self.0, key)
    }
}

/// The value of `key` in the newest of `batches` that holds it.
fn newest(batches: &[Arc<Batch>], key: &[u8]) -> Option<Vec<u8>> {
    batches.iter().rev().find_map(|b| b.entries.get(key).cloned())
}

/// The overlay as of one moment.
pub(super) struct View(Vec<Arc<Batch>>);

impl View {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn batches(&self) -> &[Arc<Batch>] {
        &self.0
    }

    pub(super) fn contains(&self, key: &[u8]) -> bool {
        self.0.iter().any(|b| b.entries.contains_key(key))
    }

    /// Waiting pairs under `prefix`, after `after` (before it when `reverse`), in scan order.
    pub(super) fn range(&self, prefix: &[u8], after: Option<&[u8]>, reverse: bool) -> Vec<Pair> {
        let mut merged: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
        for b in &self.0 {
            for (k, v) in b.entries.range::<[u8], _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded)) {
                if !k.starts_with(prefix) {
                    break;
                }
                let inside = match (after, reverse) {
                    (None, _) => true,
                    (Some(a), false) => k.as_slice() > a,
                    (Some(a), true) => k.as_slice() < a,
                };
                if inside {
                    merged.insert(k, v);
                }
            }
        }
        let pairs = merged.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec()));
        if reverse { pairs.rev().collect() } else { pairs.collect() }
    }
}

/// Merges the tree's pairs with the overlay's, both in scan order; on equal keys the tree's pair wins.
pub(super) struct Merge<I: Iterator<Item = Result<Pair, StoreError>>> {
    tree: Peekable<I>,
    overlay: Peekable<std::vec::IntoIter<Pair>>,
    reverse: bool,
}

impl<I: Iterator<Item = Result<Pair, StoreError>>> Merge<I> {
    pub(super) fn new(tree: I, overlay: Vec<Pair>, reverse: bool) -> Self {
        Merge { tree: tree.peekable(), overlay: overlay.into_iter().peekable(), reverse }
    }
}

impl<I: Iterator<Item = Result<Pair, StoreError>>> Iterator for Merge<I> {
    type Item = Result<Pair, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering;
        let order = match (self.tree.peek(), self.overlay.peek()) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(Ok((t, _))), Some((o, _))) => {
                let o = t.as_slice().cmp(o.as_slice());
                if self.reverse { o.reverse() } else { o }
            }
        };
        match order {
            Ordering::Less => self.tree.next(),
            Ordering::Greater => self.overlay.next().map(Ok),
            Ordering::Equal => {
                self.overlay.next();
                self.tree.next()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u64, keys: &[&str]) -> Batch {
        Batch { id, entries: keys.iter().map(|k| (k.as_bytes().to_vec(), format!("o:{k}").into_bytes())).collect() }
    }

    fn tree(keys: &[&str]) -> Vec<Result<Pair, StoreError>> {
        keys.iter().map(|k| Ok((k.as_bytes().to_vec(), format!("t:{k}").into_bytes()))).collect()
    }

    fn shown(pairs: impl Iterator<Item = Result<Pair, StoreError>>) -> Vec<String> {
        pairs
            .map(|p| {
                let (k, v) = p.expect("pair");
                format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v))
            })
            .collect()
    }

    #[test]
    fn files_round_trip_and_only_marked_ones_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Files::open(dir.path()).expect("open");
        let mut big = Batch { id: 7, entries: BTreeMap::new() };
        for i in 0..3000u32 {
            big.entries.insert(format!("dlv/{i:05}").into_bytes(), vec![b'x'; 200]);
        }
        let marker = files.write(&big).expect("write");
        let unmarked = files.write(&batch(8, &["a"])).expect("write");
        assert_eq!(batch_id(&marker.0), Some(7));
        let loaded = files.load(std::iter::once(Ok(marker.clone()))).expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!((loaded[0].id, &loaded[0].entries), (7, &big.entries));
        let others = files.others(&[7]).expect("list");
        assert_eq!(others, [files.path(8)]);
        files.remove_all(&others).expect("clean up");
        assert!(files.path(7).exists());
        assert!(!files.path(8).exists(), "a file no marker names is deleted: {unmarked:?}");
        // A committed file that is damaged, or gone, is an error, not an empty batch.
        std::fs::write(files.path(7), b"gongwen-deferred-1\n").expect("damage");
        assert!(matches!(files.load(std::iter::once(Ok(marker.clone()))), Err(StoreError::Corrupt { .. })));
        files.remove(7);
        assert!(matches!(files.load(std::iter::once(Ok(marker))), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn merge_interleaves_and_the_tree_wins() {
        let overlay = Overlay::default();
        overlay.push(Arc::new(batch(1, &["p/b", "p/d", "q/a"])));
        let view = overlay.view();
        let forward = Merge::new(tree(&["p/a", "p/d", "p/e"]).into_iter(), view.range(b"p/", None, false), false);
        assert_eq!(shown(forward), ["p/a=t:p/a", "p/b=o:p/b", "p/d=t:p/d", "p/e=t:p/e"]);
        let back = Merge::new(tree(&["p/d", "p/a"]).into_iter(), view.range(b"p/", Some(b"p/e"), true), true);
        assert_eq!(shown(back), ["p/d=t:p/d", "p/b=o:p/b", "p/a=t:p/a"]);
        assert_eq!(view.range(b"p/", Some(b"p/b"), false).len(), 1, "strictly after");
        assert_eq!(overlay.waiting(), 3);
        assert!(view.contains(b"q/a") && !view.contains(b"q/b"));
        overlay.remove(1);
        assert!(overlay.is_empty() && overlay.guard().get(b"p/b").is_none());
        assert_eq!(view.range(b"p/b", None, false), [(b"p/b".to_vec(), b"o:p/b".to_vec())], "a view keeps what it saw");
    }
}
