//! Online backup and offline restore. A backup file is
//! `"GONGWEN-BACKUP-1\n"`, then records — `K` + len(key) + key + len(value) + value for each store pair, `B` +
//! 64-byte hex hash + len + bytes for each attachment file — then `E` and the SHA-256 of everything before it.
//! Lengths are u64 big-endian. The store part is taken while writers wait (a consistent snapshot); attachment files
//! never change once written, so they are copied after.
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};

use super::{App, AppError, schema};
use crate::domain::merkle;
use crate::domain::model::SealKey;
use crate::pb;
use crate::store::{BlobStore, SledStore, Store, StoreError, layout};

const MAGIC: &[u8] = b"GONGWEN-BACKUP-1\n";
/// Where the checkpoint taken with a backup is kept in the restored store.
const BACKUP_CHECKPOINT: &[u8] = b"meta/backup_checkpoint";

/// Hashes whatever passes through it, in either direction.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn put(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_be_bytes())?;
    w.write_all(bytes)
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub pairs: u64,
    pub files: u64,
    pub events: u64,
}

impl App {
    /// Writes a consistent backup of the store and the attachment files to `path`.
    pub async fn backup(&self, path: &Path) -> Result<BackupSummary, AppError> {
        // A checkpoint signed just before the snapshot goes in with it: the restore checks the log against it.
        let checkpoint = self.checkpoint().await?.encode_to_vec();
        let (store, blobs, path) = (self.store.clone(), self.blobs.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || write_backup(store.as_ref(), &blobs, &path, &checkpoint)).await?
    }
}

/// Where a backup is written. A regular file (or a new one) is written as a temporary file beside it, readable
/// by its owner only (a backup holds the log's signing key), and put in its place only once complete and synced:
/// a backup that fails half-way leaves an earlier file at that path as it was. Anything else at the path (a pipe,
/// `/dev/stdout`) is written straight into, its mode left alone.
pub enum Output {
    Replacing { tmp: tempfile::NamedTempFile, path: std::path::PathBuf },
    Direct(File),
}

impl Output {
    pub fn create(path: &Path) -> std::io::Result<Output> {
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Ok(Output::Direct(std::fs::OpenOptions::new().write(true).open(path)?));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new().prefix(".gongwen-backup-").tempfile_in(dir)?;
        Ok(Output::Replacing { tmp, path: path.to_path_buf() })
    }

    pub fn file(&mut self) -> &mut File {
        match self {
            Output::Replacing { tmp, .. } => tmp.as_file_mut(),
            Output::Direct(f) => f,
        }
    }

    /// Syncs the backup and puts it in place.
    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Replacing { tmp, path } => {
                tmp.as_file().sync_all()?;
                tmp.persist(&path).map_err(|e| e.error)?;
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                File::open(dir)?.sync_all()
            }
            // A pipe or a device has nothing to sync (fsync on them fails on some systems).
            Output::Direct(_) => Ok(()),
        }
    }
}

fn write_backup(
    store: &dyn Store,
    blobs: &BlobStore,
    path: &Path,
    checkpoint: &[u8],
) -> Result<BackupSummary, AppError> {
    let mut out = Output::create(path)?;
    let summary = write_records(store, blobs, out.file(), checkpoint)?;
    out.finish()?;
    Ok(summary)
}

/// The backup's records, written to `file`.
fn write_records(
    store: &dyn Store,
    blobs: &BlobStore,
    file: &mut File,
    checkpoint: &[u8],
) -> Result<BackupSummary, AppError> {
    let mut w = Hashing { inner: BufWriter::new(file), hash: Sha256::new() };
    w.write_all(MAGIC)?;
    w.write_all(b"K")?;
    put(&mut w, BACKUP_CHECKPOINT)?;
    put(&mut w, checkpoint)?;
    let mut summary = BackupSummary { pairs: 0, files: 0, events: 0 };
    let mut shas = std::collections::BTreeSet::new();
    store.snapshot(&mut |k, v| {
        // A restored store keeps the checkpoint its backup carried; this backup carries its own, written above.
        if k == BACKUP_CHECKPOINT {
            return Ok(());
        }
        w.write_all(b"K")?;
        put(&mut w, k)?;
        put(&mut w, v)?;
        summary.pairs += 1;
        if k.starts_with(b"att/") {
            shas.insert(String::from_utf8_lossy(&k[4..k.len().min(68)]).into_owned());
        }
        if k == schema::EVENT_SEQ {
            summary.events = v.try_into().map(u64::from_be_bytes).unwrap_or(0);
        }
        Ok(())
    })?;
    for sha in shas {
        let mut reader = match blobs.reader(&sha, 1 << 20) {
            Ok(r) => r,
            Err(StoreError::BlobMissing(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut bytes = vec![];
        while let Some(chunk) = reader.next_chunk()? {
            bytes.extend_from_slice(&chunk);
        }
        w.write_all(b"B")?;
        w.write_all(sha.as_bytes())?;
        put(&mut w, &bytes)?;
        summary.files += 1;
    }
    w.write_all(b"E")?;
    let digest = w.hash.clone().finalize();
    w.inner.write_all(&digest)?;
    w.inner.into_inner().map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(summary)
}

fn read_exact_vec(r: &mut impl Read, n: usize) -> Result<Vec<u8>, AppError> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).map_err(|e| AppError::Invalid(format!("the backup is truncated: {e}")))?;
    Ok(v)
}

fn take(r: &mut Hashing<impl Read>, n: usize) -> Result<Vec<u8>, AppError> {
    read_exact_vec(r, n)
}

fn take_len(r: &mut Hashing<impl Read>) -> Result<usize, AppError> {
    let b = take(r, 8)?;
    let n = u64::from_be_bytes(b.as_slice().try_into().map_err(|_| AppError::Invalid("bad length".into()))?);
    usize::try_from(n)
        .ok()
        .filter(|n| *n < (1 << 34))
        .ok_or_else(|| AppError::Invalid("a record length is absurd".into()))
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Builds a new data directory from a backup file; the directory must not exist or be empty. Checks the file's
/// hash, the record format (`format::check`), then the restored log (`verify_log`) before returning. A restore
/// that fails leaves the directory as it found it (absent, or empty), or says that it could not.
pub fn restore(backup: &Path, data_dir: &Path) -> Result<BackupSummary, AppError> {
    let existed = data_dir.exists();
    if existed && std::fs::read_dir(data_dir)?.next().is_some() {
        return Err(AppError::Precondition(format!(
            "{} is not empty; restore into a new directory",
            data_dir.display()
        )));
    }
    let err = match restore_into(backup, data_dir) {
        Ok(summary) => return Ok(summary),
        Err(e) => e,
    };
    // The directory was absent or empty: whatever is in it now is this restore's.
    let removed = if existed {
        std::fs::read_dir(data_dir).is_ok_and(|entries| entries.flatten().all(|e| remove_all(&e.path())))
    } else {
        remove_all(data_dir)
    };
    if removed {
        return Err(err);
    }
    Err(AppError::Precondition(format!(
        "{err}; {} holds the part restored so far and could not be removed: delete it before trying again",
        data_dir.display()
    )))
}

/// Removes `path` and all below it, waiting a little for sled's threads, which finish a moment after the store
/// that used them was dropped.
fn remove_all(path: &Path) -> bool {
    for _ in 0..50 {
        let gone = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        match gone {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    false
}

fn restore_into(backup: &Path, data_dir: &Path) -> Result<BackupSummary, AppError> {
    let file = File::open(backup)
        .map_err(|e| AppError::Invalid(format!("cannot read the backup {}: {e}", backup.display())))?;
    let mut r = Hashing { inner: BufReader::new(file), hash: Sha256::new() };
    if take(&mut r, MAGIC.len())? != MAGIC {
        return Err(AppError::Invalid(format!("{} is not a gongwen backup", backup.display())));
    }
    let store = SledStore::open(&layout::db_dir(data_dir), 64 << 20)?;
    let blobs = BlobStore::open(&layout::blob_dir(data_dir), u64::MAX)?;
    let mut summary = BackupSummary { pairs: 0, files: 0, events: 0 };
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = vec![];
    let flush = |batch: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<(), AppError> {
        let items = std::mem::take(batch);
        let s: &dyn Store = &store;
        s.transact(|tx| -> Result<(), AppError> {
            for (k, v) in &items {
                tx.put(k, v);
            }
            Ok(())
        })
    };
    loop {
        let tag = take(&mut r, 1)?;
        match tag.as_slice() {
            b"K" => {
                let n = take_len(&mut r)?;
                let k = take(&mut r, n)?;
                let n = take_len(&mut r)?;
                let v = take(&mut r, n)?;
                // Counted as the backup counted them: its checkpoint is not one of the store's records.
                if k != BACKUP_CHECKPOINT {
                    summary.pairs += 1;
                }
                batch.push((k, v));
                if batch.len() >= 10_000 {
                    flush(&mut batch)?;
                }
            }
            b"B" => {
                let sha = String::from_utf8_lossy(&take(&mut r, 64)?).into_owned();
                let n = take_len(&mut r)?;
                let info = blobs.put(&take(&mut r, n)?)?;
                if info.sha256 != sha {
                    return Err(AppError::Invalid(format!("attachment {sha} in the backup is damaged")));
                }
                summary.files += 1;
            }
            b"E" => break,
            _ => return Err(AppError::Invalid("the backup is damaged (unknown record)".into())),
        }
    }
    let expected = r.hash.clone().finalize();
    let trailer = read_exact_vec(&mut r.inner, 32)?;
    if trailer.as_slice() != expected.as_slice() {
        return Err(AppError::Invalid("the backup's checksum does not match: it is damaged or truncated".into()));
    }
    flush(&mut batch)?;
    super::format::check(&store)?;
    summary.events = verify_log(&store)?;
    // So that `serve --check-config` can tell, before the first start, whose directory this is.
    let operator = schema::load::<SealKey>(&store as &dyn Store, schema::OPERATOR)?
        .ok_or_else(|| AppError::Invalid("the backup names no operator key".into()))?;
    layout::record_operator(data_dir, &operator.key_id, &operator.public_key).map_err(StoreError::from)?;
    Ok(summary)
}

/// The checkpoint stored with a backup, checked against the log key in the same store.
fn backup_checkpoint(store: &dyn Store) -> Result<Option<pb::Checkpoint>, AppError> {
    let Some(bytes) = store.get(BACKUP_CHECKPOINT)? else { return Ok(None) };
    let signed = pb::SignedCheckpoint::decode(bytes.as_slice())
        .map_err(|e| AppError::Invalid(format!("the backup's checkpoint does not decode: {e}")))?;
    let (key_id, secret) = schema::load::<(String, [u8; 32])>(store, schema::LOG_KEY)?
        .ok_or_else(|| AppError::Invalid("the backup has no log key".into()))?;
    let public = crate::signing::Signer::from_secret(key_id, secret).public_key();
    super::log::open_checkpoint(&signed, &public).map(Some).map_err(AppError::Invalid)
}

/// Recomputes the Merkle root from every stored log entry and compares it with the stored tree: the restored log is
/// exactly the one that was backed up. Returns the number of events.
pub fn verify_log(store: &dyn Store) -> Result<u64, AppError> {
    let size = super::log::size(store)?;
    let checkpoint = backup_checkpoint(store)?;
    let fold = |frontier: &[(u32, merkle::Hash)]| {
        let mut it = frontier.iter().rev();
        let mut acc = it.next().map(|(_, h)| *h).unwrap_or_else(merkle::empty_root);
        for (_, left) in it {
            acc = merkle::node_hash(left, &acc);
        }
        acc
    };
    let mut at_checkpoint = None;
    // The frontier of complete subtrees, left to right: O(log n) memory however long the log.
    let mut frontier: Vec<(u32, merkle::Hash)> = vec![];
    for seq in 1..=size {
        let mut node = (0u32, merkle::leaf_hash(&super::log::entry_bytes(store, seq)?));
        while let Some(&(level, left)) = frontier.last() {
            if level != node.0 {
                break;
            }
            frontier.pop();
            node = (level + 1, merkle::node_hash(&left, &node.1));
        }
        frontier.push(node);
        if checkpoint.as_ref().is_some_and(|c| c.tree_size == seq) {
            at_checkpoint = Some(fold(&frontier));
        }
    }
    let root = fold(&frontier);
    if let Some(c) = &checkpoint {
        let matches = at_checkpoint.is_some_and(|r| r.as_slice() == c.root_hash.as_slice())
            || (c.tree_size == 0 && c.root_hash.as_slice() == merkle::empty_root().as_slice());
        if !matches {
            return Err(AppError::Store(StoreError::Corrupt {
                key: "event log".into(),
                reason: format!(
                    "the log does not match the checkpoint of {} events signed at backup time",
                    c.tree_size
                ),
            }));
        }
    }
    let stored = merkle::root(&super::log::StoreNodes(store), size)?;
    if stored != root {
        return Err(AppError::Store(StoreError::Corrupt {
            key: "event log".into(),
            reason: "the Merkle tree does not match the events it should hash".into(),
        }));
    }
    Ok(size)
}
