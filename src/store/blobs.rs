//! Attachment files, content-addressed by SHA-256, outside sled: large files would bloat sled's log, and a file per
//! hash is stored once however many documents attach it.
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::StoreError;

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// False when the same content was already there.
    pub newly_stored: bool,
}

/// A directory of files named by their SHA-256.
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    limit: u64,
    next_tmp: AtomicU64,
}

/// An upload in progress: a temp file and a running hash, with bounded memory.
pub struct BlobWriter {
    file: Option<File>,
    tmp_path: PathBuf,
    dir: PathBuf,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

/// A download in progress that checks the hash when it reaches the end.
pub struct BlobReader {
    file: File,
    expected: String,
    hasher: Sha256,
    chunk: usize,
    done: bool,
}

fn valid_hash(sha256: &str) -> bool {
    sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Where files being uploaded are written before they are renamed into place.
pub(super) const TMP: &str = "tmp";

impl BlobStore {
    /// Opens (creating if needed) the blob directory; files larger than `limit` bytes are refused. Temp files
    /// left by a crash are removed.
    pub fn open(dir: &Path, limit: u64) -> Result<BlobStore, StoreError> {
        let tmp = dir.join(TMP);
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(&path)?;
            }
        }
        // A random start keeps temp names of two stores on one directory (a restart race) apart.
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
        Ok(BlobStore { dir: dir.to_path_buf(), tmp, limit, next_tmp: AtomicU64::new(u64::from_le_bytes(seed)) })
    }

    /// The size limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        // Only a well-formed hash may become a path, so a caller's string can never point outside `dir`.
        valid_hash(sha256).then(|| self.dir.join(sha256))
    }

    /// Starts an upload.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp_path = self.tmp.join(format!("upload-{n:016x}"));
        let file = File::options().write(true).create_new(true).open(&tmp_path)?;
        Ok(BlobWriter {
            file: Some(file),
            tmp_path,
            dir: self.dir.clone(),
            hasher: Sha256::new(),
            size: 0,
            limit: self.limit,
        })
    }

    /// Stores bytes in one call.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobInfo, StoreError> {
        let mut w = self.writer()?;
        w.write(bytes)?;
        w.finish()
    }

    /// The size of a stored file, or `None`.
    pub fn size_of(&self, sha256: &str) -> Result<Option<u64>, StoreError> {
        let Some(path) = self.path_of(sha256) else { return Ok(None) };
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a stored file for reading in chunks of `chunk` bytes.
    pub fn reader(&self, sha256: &str, chunk: usize) -> Result<BlobReader, StoreError> {
        let path = self.path_of(sha256).ok_or_else(|| StoreError::BlobMissing(sha256.to_owned()))?;
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing(sha256.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(BlobReader { file, expected: sha256.to_owned(), hasher: Sha256::new(), chunk: chunk.max(1), done: false })
    }
}

impl BlobWriter {
    /// Appends bytes; past the limit the upload is abandoned with [`StoreError::TooLarge`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let too_large = StoreError::TooLarge { limit: self.limit };
        let new_size = self.size.saturating_add(bytes.len() as u64);
        if new_size > self.limit {
            self.abandon();
            return Err(too_large);
        }
        let Some(file) = self.file.as_mut() else { return Err(too_large) };
        file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size = new_size;
        Ok(())
    }

    /// Hex SHA-256 of what was written so far (lets a caller check an expected hash before `finish`).
    pub fn sha256_so_far(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Makes the file durable under its hash (fsync, rename, fsync the directory).
    pub fn finish(mut self) -> Result<BlobInfo, StoreError> {
        let file = self.file.take().ok_or(StoreError::TooLarge { limit: self.limit })?;
        file.sync_all()?;
        drop(file);
        let sha256 = hex::encode(self.hasher.clone().finalize());
        let target = self.dir.join(&sha256);
        if target.exists() {
            fs::remove_file(&self.tmp_path)?;
            return Ok(BlobInfo { sha256, size: self.size, newly_stored: false });
        }
        fs::rename(&self.tmp_path, &target)?;
        sync_dir(&self.dir)?;
        Ok(BlobInfo { sha256, size: self.size, newly_stored: true })
    }

    fn abandon(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl BlobReader {
    /// The next chunk, `None` at the end; at the end a hash mismatch is [`StoreError::BlobDamaged`].
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut buf = vec![0u8; self.chunk];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        self.hasher.update(&buf);
        if filled < self.chunk {
            self.done = true;
            if hex::encode(self.hasher.clone().finalize()) != self.expected {
                return Err(StoreError::BlobDamaged { sha256: self.expected.clone() });
            }
            if filled == 0 {
                return Ok(None);
            }
        }
        Ok(Some(buf))
    }
}
