//! What the app's unit tests share: an app over a new store, its operator, and polling with a deadline.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{App, AppConfig, SystemClock};
use crate::signing::Signer;
use crate::store::{BlobStore, SledStore};

/// The operator of [`app_with`]'s apps.
pub(crate) fn operator() -> Signer {
    Signer::from_secret("operator", [1; 32])
}

/// An app over a new store in `dir`, with `config` and [`operator`].
pub(crate) fn app_with(dir: &Path, config: AppConfig) -> Arc<App> {
    let store = SledStore::open(&dir.join("db"), 8 << 20).expect("store");
    let blobs = BlobStore::open(&dir.join("blobs"), 1 << 20).expect("blobs");
    let key = crate::cli::serve::operator_seal(&operator());
    Arc::new(App::open(Arc::new(store), Arc::new(blobs), Arc::new(SystemClock), config, Some(key)).expect("app"))
}

/// Polls `done` until it holds, for at most ten seconds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::task::yield_now().await;
    }
}
