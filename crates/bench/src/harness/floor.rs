//! The floor: the same page bytes served from memory by a bare axum server, with no database,
//! no authentication and no JSON encoding, measured with the same client and concurrency. What
//! Ledgerport takes beyond it is its own overhead; what the floor itself takes is the cost of
//! HTTP and the load generator on this machine.

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use std::net::SocketAddr;

/// A floor server on its own runtime and thread, so that it does not share the load
/// generator's runtime (the real server is a process of its own).
pub struct Floor {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Floor {
    /// Serves `page` at `/page` on 127.0.0.1 and an ephemeral port.
    pub fn start(page: Bytes) -> Result<Floor, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("floor: binding 127.0.0.1:0: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("floor: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| format!("floor: {e}"))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("floor: starting its runtime: {e}"))?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().route(
                    "/page",
                    get(move || {
                        let page = page.clone();
                        async move { ([(header::CONTENT_TYPE, "application/json")], page) }
                    }),
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(Floor {
            base: format!("http://{addr}"),
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
