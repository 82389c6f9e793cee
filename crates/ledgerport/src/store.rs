//! Opening the store a database URL names.

use ledgerport_core::clock::SystemClock;
use ledgerport_store::Store;
use ledgerport_store::sqlite::SqliteStore;
use std::sync::Arc;

pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url, Arc::new(SystemClock))
            .await
            .map_err(|e| format!("opening {url}: {e}: {:?}", std::error::Error::source(&e)))?;
        Ok(Arc::new(store))
    } else {
        Err(format!(
            "unsupported database URL {url:?}: use sqlite://PATH"
        ))
    }
}
