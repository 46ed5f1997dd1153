//! Storage behind a narrow, backend-neutral interface: ordered bytes keys and values, prefix scans, and closure
//! transactions that are atomic and durable before they return. sled is the default backend; nothing outside this
//! module names a sled type.
use thiserror::Error;

pub mod blobs;
pub mod cache;
#[cfg(test)]
mod cache_tests;
mod deferred;
mod files;
mod gather;
pub mod horizon_file;
pub mod layout;
pub mod sled_kv;
#[cfg(test)]
mod tests;

pub use blobs::BlobStore;
pub use cache::{CacheStats, ScanCache};
pub use files::replace_file;
pub use sled_kv::{SledOptions, SledStore};

/// What [`Store::flushes`] counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushes {
    /// Flushes that made at least one transaction durable.
    pub flushes: u64,
    /// Transactions they made durable.
    pub transactions: u64,
    /// Flushes that first waited for their group to gather (see `--gather-us`).
    pub waited: u64,
}

/// The storage layer's one error type.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption): the request cannot be served.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A flush failed, so no later write can be made durable while the store stays open ([`Store::failure`]).
    #[error(
        "the store can no longer make writes durable since a flush failed ({0}); the server must be restarted once \
         the cause is fixed, and a write may then be sent again with the same request id"
    )]
    Failed(String),
    /// A stored value did not decode.
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// The data directory is in use or unusable.
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    /// An attachment file is larger than allowed.
    #[error("attachment is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// An attachment file's content no longer matches its hash.
    #[error("attachment {sha256} is damaged on disk (hash mismatch)")]
    BlobDamaged { sha256: String },
    /// No attachment with that hash.
    #[error("no attachment with SHA-256 {0}")]
    BlobMissing(String),
    /// The disk (or a quota, or a file-size limit) has no room for what was being written.
    #[error("the server's disk has no room for this ({0}); retry once the operator has made space")]
    NoSpace(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
        match e.kind() {
            StorageFull | QuotaExceeded | FileTooLarge => StoreError::NoSpace(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// A key/value pair from a scan.
pub type Pair = (Vec<u8>, Vec<u8>);

/// A visitor of key/value pairs.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// Reads and stages writes inside one transaction. Reads see the transaction's own staged writes.
pub trait Tx {
    /// The value at `key`, including this transaction's staged writes.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stages a write.
    fn put(&mut self, key: &[u8], value: &[u8]);
    /// Stages a delete.
    fn delete(&mut self, key: &[u8]);
    /// Stages the write of a key that does not exist yet. Same effect as [`Tx::put`]; the promise lets a backend
    /// apply a commit of very many new keys after acknowledging it, serving them from a durable log of its own
    /// meanwhile (sled does: `store::deferred`). A key that did exist may keep its old value.
    fn put_new(&mut self, key: &[u8], value: &[u8]) {
        self.put(key, value);
    }
}

/// Names a point in the commit order: everything staged up to it, for [`Store::wait_durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Whether a transaction's staged writes are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Apply them atomically and make them durable.
    Commit,
    /// Drop them: nothing changes.
    Abort,
}

/// The storage interface every backend implements.
pub trait Store: Send + Sync + 'static {
    /// The committed value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Committed pairs whose key starts with `prefix`, in key order (descending when `reverse`), starting strictly
    /// after `after` (strictly before it when `reverse`) when given.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + Send + '_>;

    /// Calls `f` with every committed pair whose key starts with `prefix`, in key order, lending the bytes
    /// instead of copying them out: what a walk over hundreds of thousands of records wants.
    fn visit(&self, prefix: &[u8], f: &mut Visit<'_>) -> Result<(), StoreError> {
        for pair in self.scan(prefix, None, false) {
            let (k, v) = pair?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Runs `f` with exclusive write access. On [`Outcome::Commit`] its staged writes are applied as one atomic
    /// unit and are durable (flushed and fsynced) before this returns; concurrent callers share flushes
    /// (group commit). Blocking: call from a blocking thread.
    fn transact_dyn(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<Outcome, StoreError>) -> Result<(), StoreError>;

    /// Runs `n` transactions one after another, transaction `i` being `run(i, tx)`; each sees the writes of the
    /// committed ones before it, an aborted one leaves no trace, and the committed ones become durable together
    /// before this returns (one flush for the group). Blocking: call from a blocking thread.
    fn transact_many(&self, n: usize, run: &mut dyn FnMut(usize, &mut dyn Tx) -> Outcome) -> Result<(), StoreError> {
        let ticket = self.stage_many(n, run)?;
        self.wait_durable(ticket)
    }

    /// The first half of [`Store::transact_many`]: runs and commits the `n` transactions (later transactions and
    /// groups see their writes) and returns a ticket without waiting for the disk. Nothing staged may be reported
    /// as done to anyone until [`Store::wait_durable`] on its ticket returns `Ok`. Splitting the two lets one
    /// thread stage the next group while another waits for the previous group's flush.
    fn stage_many(&self, n: usize, run: &mut dyn FnMut(usize, &mut dyn Tx) -> Outcome) -> Result<Ticket, StoreError> {
        for i in 0..n {
            self.transact_dyn(&mut |tx| Ok(run(i, tx)))?;
        }
        Ok(Ticket(0))
    }

    /// Waits until everything staged up to `ticket` is on disk (flushing if nobody else is); an `Err` means it may
    /// not be, and neither may anything staged after it.
    fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let _ = ticket;
        Ok(())
    }

    /// Keys of acknowledged commits still being moved into place in the background; reads see them already.
    fn deferred_keys(&self) -> usize {
        0
    }

    /// Group-commit flushes that carried at least one transaction since the store was opened, and the
    /// transactions they made durable: their ratio is the size of a commit group. (A store's own flushes, at open
    /// or when it moves deferred keys, are not counted.)
    fn flushes(&self) -> Flushes {
        Flushes::default()
    }

    /// Why no write can be made durable any more, once a flush has failed (`None` before): the store does not know
    /// what of the failed flush reached the disk, so it acknowledges nothing until it is opened again, which
    /// recovers. The receiver sees the failure as it happens, whichever write meets it.
    fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        // A backend that cannot fail this way: a channel that never changes (its sender is gone).
        tokio::sync::watch::channel(None).1
    }

    /// Approximate bytes on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Calls `f` with every committed pair, in key order, while no write can commit: a consistent snapshot.
    /// Reads go on meanwhile; writers wait until it returns.
    fn snapshot(&self, f: &mut Visit<'_>) -> Result<(), StoreError>;
}

impl dyn Store {
    /// Typed wrapper over [`Store::transact_dyn`]: `Ok` commits, `Err` aborts and changes nothing.
    pub fn transact<T, E>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut f = Some(f);
        let mut out: Option<Result<T, E>> = None;
        self.transact_dyn(&mut |tx| {
            let Some(f) = f.take() else {
                return Ok(Outcome::Abort);
            };
            let r = f(tx);
            let outcome = if r.is_ok() { Outcome::Commit } else { Outcome::Abort };
            out = Some(r);
            Ok(outcome)
        })?;
        match out {
            Some(r) => r,
            None => Err(StoreError::Backend("transaction closure did not run".into()).into()),
        }
    }
}
