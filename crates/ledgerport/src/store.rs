//! Opening the store a database URL names.

use ledgerport_core::clock::{Clock, SystemClock};
use ledgerport_store::Store;
use ledgerport_store::sqlite::SqliteStore;
use std::sync::Arc;

pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    open_with_clock(url, Arc::new(SystemClock)).await
}

/// Opens the store with a clock of the caller's (the demo replays history on a manual clock).
pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, String> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url, clock)
            .await
            .map_err(|e| format!("opening {url}: {e}: {:?}", std::error::Error::source(&e)))?;
        Ok(Arc::new(store))
    } else {
        Err(format!(
            "unsupported database URL {url:?}: use sqlite://PATH"
        ))
    }
}
