//! The access log's group commit: one writer task takes the rows of every Report API request
//! that finished while it was writing the last batch, and writes them all in one transaction.
//! Each request still waits until its own rows are written (so an answered request is in the
//! log), but 32 concurrent readers make one write, not 32 that queue one after the other for the
//! write turn or for a commit each (a disk flush each on PostgreSQL). On a SQLite file the log
//! is a database of its own with its own writer (`ledgerport_store::sqlite::access_log`), so a
//! batch never waits for an ingestion batch holding the ledger database's one writer.

use ledgerport_store::{NewAccessRecord, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most rows in one batch: a burst larger than this is written in several transactions, so
/// that no transaction holds the write turn for long.
const MAX_BATCH_ROWS: usize = 2000;

/// One request's rows and where its result goes.
type Job = (Vec<NewAccessRecord>, oneshot::Sender<Result<(), String>>);

/// The handle requests send their rows to; cloned into every request. The writer task ends when
/// the last handle is dropped.
#[derive(Clone)]
pub struct AccessLogWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl AccessLogWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>) -> AccessLogWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store, rx));
        AccessLogWriter { jobs }
    }

    /// Writes `recs` with whatever other requests' rows are waiting, and returns once they are
    /// committed; the error says why they were not.
    pub async fn record(&self, recs: Vec<NewAccessRecord>) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send((recs, done))
            .map_err(|_| "the access-log writer has stopped".to_owned())?;
        result
            .await
            .map_err(|_| "the access-log writer stopped before writing".to_owned())?
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut rows = first.0.len();
        jobs.push(first);
        // Everything that arrived while the last batch was being written.
        while rows < MAX_BATCH_ROWS {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.0.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        write(store.as_ref(), std::mem::take(&mut jobs)).await;
    }
}

/// Writes the jobs' rows in one transaction and tells each job. When the batch fails, each job
/// is written on its own, so that one request's bad row does not lose the others'.
async fn write(store: &dyn Store, jobs: Vec<Job>) {
    let mut all = Vec::with_capacity(jobs.iter().map(|(r, _)| r.len()).sum());
    let mut waiting = Vec::with_capacity(jobs.len());
    for (recs, done) in jobs {
        waiting.push((recs.len(), done));
        all.extend(recs);
    }
    // Only a failed batch of several requests needs the rows again, one request at a time.
    let again = (waiting.len() > 1).then(|| all.clone());
    match store.record_accesses(all).await {
        Ok(()) => {
            for (_, done) in waiting {
                let _ = done.send(Ok(()));
            }
        }
        Err(e) => match again {
            None => {
                for (_, done) in waiting {
                    let _ = done.send(Err(e.to_string()));
                }
            }
            Some(rows) => {
                let mut rows = rows.into_iter();
                for (n, done) in waiting {
                    let recs: Vec<NewAccessRecord> = rows.by_ref().take(n).collect();
                    let r = store.record_accesses(recs).await.map_err(|e| e.to_string());
                    let _ = done.send(r);
                }
            }
        },
    }
}
