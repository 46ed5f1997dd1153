//! Attachment files, content-addressed by SHA-256, outside sled.
use std::path::Path;

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
    _private: (),
}

/// An upload in progress: a temp file and a running hash, with bounded memory.
pub struct BlobWriter {
    _private: (),
}

/// A download in progress that checks the hash when it reaches the end.
pub struct BlobReader {
    _private: (),
}

impl BlobStore {
    /// Opens (creating if needed) the blob directory; files larger than `limit` bytes are refused.
    pub fn open(dir: &Path, limit: u64) -> Result<BlobStore, StoreError> {
        let _ = (dir, limit);
        unimplemented!()
    }
    /// The size limit in bytes.
    pub fn limit(&self) -> u64 {
        unimplemented!()
    }
    /// Starts an upload.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        unimplemented!()
    }
    /// Stores bytes in one call.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobInfo, StoreError> {
        let _ = bytes;
        unimplemented!()
    }
    /// The size of a stored file, or `None`.
    pub fn size_of(&self, sha256: &str) -> Result<Option<u64>, StoreError> {
        let _ = sha256;
        unimplemented!()
    }
    /// Opens a stored file for reading in chunks of `chunk` bytes.
    pub fn reader(&self, sha256: &str, chunk: usize) -> Result<BlobReader, StoreError> {
        let _ = (sha256, chunk);
        unimplemented!()
    }
}

impl BlobWriter {
    /// Appends bytes; past the limit the upload is abandoned with [`StoreError::TooLarge`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let _ = bytes;
        unimplemented!()
    }
    /// Hex SHA-256 of what was written so far (lets a caller check an expected hash before `finish`).
    pub fn sha256_so_far(&self) -> String {
        unimplemented!()
    }
    /// Makes the file durable under its hash (fsync, rename, fsync the directory).
    pub fn finish(self) -> Result<BlobInfo, StoreError> {
        unimplemented!()
    }
}

impl BlobReader {
    /// The next chunk, `None` at the end; at the end a hash mismatch is [`StoreError::BlobDamaged`].
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        unimplemented!()
    }
}
