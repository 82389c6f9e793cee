//! Opening the store a database URL names (`sqlite://PATH` or `postgres://...`).

use anyhow::anyhow;
use ledgerport_core::clock::{Clock, SystemClock};
use ledgerport_store::Store;
use std::sync::Arc;

pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_with_clock(url, Arc::new(SystemClock)).await
}

/// Opens the store with a clock of the caller's (the demo replays history on a manual clock).
pub async fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Store>> {
    ledgerport_store::open(url, clock).await.map_err(|e| {
        // The URL may carry a password: name the backend, not the URL.
        let backend = url.split(':').next().unwrap_or("database");
        match std::error::Error::source(&e) {
            Some(cause) => anyhow!("opening the {backend} store: {e}: {cause}"),
            None => anyhow!("opening the {backend} store: {e}"),
        }
    })
}
