//! Ledgerport's HTTP server.
//!
//! `router(state)` builds the whole application; `serve(listener, state, shutdown)` runs it until
//! the shutdown future resolves, finishing requests in flight. Tests bind `127.0.0.1:0` and pass
//! their own shutdown future.
//!
//! A request flows: [`middleware::request_context`] (request id, error bodies, panics) ->
//! for the Report API [`api::report::access_log`] -> [`api::report::authenticate`] (token ->
//! `Principal`) -> handler, which asks the access policy for a `LedgerAccess` and reads with it.

pub mod access_writer;
pub mod api;
pub mod credentials;
pub mod cursor;
pub mod error;
pub mod http;
pub mod ingest;
pub mod invitation;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod page_cache;
pub mod portal;
pub mod statement;
pub mod tokens;
pub mod webhooks;

use axum::Router;
use ledgerport_core::clock::Clock;
use ledgerport_store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use error::AppError;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `iss` of issued tokens, and the only issuer accepted.
    pub issuer: String,
    /// `aud` of issued tokens, and the only audience accepted.
    pub audience: String,
    /// Lifetime of `/accesstoken/get` tokens (default 24 h).
    pub standard_token_lifetime: Duration,
    /// Lifetime of `/miami/v1/token` tokens (default 15 min).
    pub miami_token_lifetime: Duration,
    /// Page size of `GET /settlement/v1/ledgers`.
    pub ledger_list_page_size: u32,
    /// Requests taking longer are answered 500 and abandoned.
    pub request_timeout: Duration,
    /// How often the server closes due ledger dates and schedules payouts; `None`: never (another
    /// process or `admin close` does it).
    pub close_interval: Option<Duration>,
    /// Request rate limits.
    pub limits: LimitsConfig,
    /// How signing private keys are kept in the store. The default, in clear, is for tests and
    /// throwaway databases; `ledgerport serve` refuses it unless told otherwise.
    pub signing_keys: tokens::SigningKeyProtection,
    /// The SMTP server the mail outbox is delivered through; `None`: mails wait in the outbox.
    pub mail: Option<mail::SmtpConfig>,
    /// Days the access log keeps a Report API request (default 396, about 13 months); older
    /// rows are pruned hourly by [`serve`] ([`prune_access_log`]). 0 keeps them forever.
    pub access_log_retention_days: u32,
    /// Delivering webhooks ([`webhooks`]).
    pub webhooks: webhooks::WebhookConfig,
}

/// Rate limits: token buckets per client id on the token endpoints and per principal on the
/// Report API. Requests over a limit are answered 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Off switch for every limit below.
    pub enabled: bool,
    /// Sustained token requests per second allowed for one client id.
    pub token_per_second: f64,
    /// Token requests one client id may make at once before the rate applies.
    pub token_burst: u32,
    /// Sustained Report API requests per second allowed for one principal.
    pub report_per_second: f64,
    /// Report API requests one principal may make at once before the rate applies.
    pub report_burst: u32,
    /// Failed token requests for one client id after which each further attempt is slowed down
    /// (100 ms, doubling to at most 2 s, until a success); 0 turns the slow-down off.
    pub failed_token_slowdown_after: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            token_per_second: 20.0,
            token_burst: 100,
            report_per_second: 100.0,
            report_burst: 200,
            failed_token_slowdown_after: 5,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            issuer: "ledgerport".into(),
            audience: "ledgerport-report-api".into(),
            standard_token_lifetime: Duration::from_secs(24 * 3600),
            miami_token_lifetime: Duration::from_secs(15 * 60),
            ledger_list_page_size: 1000,
            request_timeout: Duration::from_secs(30),
            close_interval: Some(Duration::from_secs(10)),
            limits: LimitsConfig::default(),
            signing_keys: tokens::SigningKeyProtection::Plaintext,
            mail: None,
            access_log_retention_days: DEFAULT_ACCESS_LOG_RETENTION_DAYS,
            webhooks: webhooks::WebhookConfig::default(),
        }
    }
}

/// The access log's default retention: 13 months, rounded up to whole days (396).
pub const DEFAULT_ACCESS_LOG_RETENTION_DAYS: u32 = 396;

/// Everything a handler may use, behind one shared pointer: axum clones the state for every
/// layer a request passes, and cloning (and dropping) each field's own pointer was about 3 % of
/// the server's CPU under load. Its fields are read through `Deref` (`state.store`).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<tokens::TokenService>,
    pub cursors: cursor::CursorCodec,
    /// Signs and checks partners' invitation links ([`invitation`]).
    pub invitations: invitation::InvitationCodec,
    pub config: Arc<ServerConfig>,
    /// Rate limits and failed-request counts of this process.
    pub limits: Arc<limits::Limits>,
    /// Counters and histograms served by [`serve_metrics`].
    pub metrics: Arc<metrics::Metrics>,
    /// What delivers the mail outbox, when SMTP is configured ([`mail`]).
    pub mailer: Option<mail::Mailer>,
    /// The access log's one writer, which writes the rows of concurrent requests together.
    pub access_log: access_writer::AccessLogWriter,
    /// Bodies of pages that can never change ([`page_cache`]).
    pub pages: Arc<page_cache::PageCache>,
    /// What delivers webhooks and checks where endpoints point ([`webhooks`]).
    pub webhooks: webhooks::Sender,
}

/// Name under which the cursor MAC key is kept in the store.
const CURSOR_KEY_NAME: &str = "cursor-mac-key";
/// Name under which the invitation links' MAC key is kept in the store (a key of its own: a
/// cursor can never pass for an invitation or the other way round).
const INVITATION_KEY_NAME: &str = "invitation-mac-key";

impl AppState {
    /// Loads (or on first start creates) the signing keys and the cursor key from the store.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> Result<Self, String> {
        let max_lifetime = config
            .standard_token_lifetime
            .max(config.miami_token_lifetime)
            .as_secs() as i64;
        let tokens = tokens::TokenService::load(
            store.clone(),
            clock.clone(),
            config.signing_keys.clone(),
            config.issuer.clone(),
            config.audience.clone(),
            max_lifetime,
        )
        .await
        .map_err(|e| format!("loading signing keys: {e}"))?;
        let mut candidate = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut candidate);
        let cursor_key = store
            .server_secret(CURSOR_KEY_NAME, &candidate)
            .await
            .map_err(|e| format!("loading the cursor key: {e}"))?;
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut candidate);
        let invitation_key = store
            .server_secret(INVITATION_KEY_NAME, &candidate)
            .await
            .map_err(|e| format!("loading the invitation key: {e}"))?;
        let limits = Arc::new(limits::Limits::new(config.limits.clone(), clock.clone()));
        let mailer = config.mail.as_ref().map(mail::Mailer::new).transpose()?;
        let webhooks = webhooks::Sender::new(&config.webhooks)?;
        Ok(AppState(Arc::new(AppParts {
            mailer,
            access_log: access_writer::AccessLogWriter::start(store.clone()),
            pages: Arc::new(page_cache::PageCache::new(page_cache::PAGE_CACHE_BYTES)),
            webhooks,
            limits,
            store,
            clock,
            tokens: Arc::new(tokens),
            cursors: cursor::CursorCodec::new(cursor_key),
            invitations: invitation::InvitationCodec::new(invitation_key),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::default()),
        })))
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let app = api::routes(state.clone())
        .merge(portal::routes().with_state(state.clone()))
        .layer(axum::middleware::from_fn(limits::header_size_limit));
    middleware::apply(app, state)
}

/// Serves until `shutdown` resolves, then stops accepting and finishes requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Signing keys rotated by `admin signing-key rotate` (or another process) are picked up
    // within a minute: the new key starts signing, the retired one only verifies.
    let tokens = state.tokens.clone();
    let reloader = tokio::spawn(async move {
        let mut every = tokio::time::interval(KEY_RELOAD_INTERVAL);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = tokens.reload().await {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the current set");
            }
        }
    });
    let closer = state
        .config
        .close_interval
        .map(|every| tokio::spawn(closing_loop(state.clone(), every)));
    let notifier = tokio::spawn(expiry_notice_loop(state.clone()));
    let pruner = (state.config.access_log_retention_days > 0)
        .then(|| tokio::spawn(pruning_loop(state.clone())));
    let sender = state
        .mailer
        .clone()
        .map(|mailer| tokio::spawn(mail::sender_loop(state.clone(), mailer)));
    let webhook_sender = state
        .config
        .webhooks
        .deliver
        .then(|| tokio::spawn(webhooks::sender_loop(state.clone(), state.webhooks.clone())));
    // With each connection's peer address, which the limits of unauthenticated requests key by
    // ([`limits::ClientAddr`]).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    reloader.abort();
    if let Some(c) = closer {
        // A closing period is one transaction: stopping between awaits loses nothing.
        c.abort();
    }
    // Each expiry notice is recorded in the transaction that writes it: stopping loses nothing.
    notifier.abort();
    if let Some(p) = pruner {
        // A prune is one statement: stopping between awaits loses nothing.
        p.abort();
    }
    if let Some(s) = sender {
        // A mail not yet marked sent is claimed again once its claim lapses (`mail`).
        s.abort();
    }
    if let Some(w) = webhook_sender {
        // A delivery not yet recorded is claimed again once its claim lapses, with the same
        // webhook-id (`webhooks`).
        w.abort();
    }
    result
}

/// Serves the metrics ([`metrics::router`]: `GET /metrics` only) on their own listener until
/// `shutdown` resolves. Kept off the public router: see [`metrics`].
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, metrics::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// How often [`serve`] prunes the access log.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes the access log every [`PRUNE_INTERVAL`], from the start. Every process may do it: the
/// delete is one statement and deleting what another process already deleted changes nothing.
async fn pruning_loop(state: AppState) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match prune_access_log(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned the access log"),
            Err(e) => tracing::error!(error = %e, "pruning the access log failed; will retry"),
        }
    }
}

/// The instant before which access-log rows are past a retention of `days` at `now`.
pub fn access_log_cutoff(now: jiff::Timestamp, days: u32) -> jiff::Timestamp {
    now.checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(days)))
        .unwrap_or(jiff::Timestamp::MIN)
}

/// Deletes the access-log rows older than the configured retention at the clock's now; returns
/// how many. Retention 0 keeps everything.
pub async fn prune_access_log(state: &AppState) -> Result<u64, ledgerport_store::StoreError> {
    let days = state.config.access_log_retention_days;
    if days == 0 {
        return Ok(0);
    }
    let cutoff = access_log_cutoff(state.clock.now(), days);
    state
        .store
        .prune_access_log(&ledgerport_core::entry::wire_time(cutoff))
        .await
}

/// Name of the lease a process holds while it runs the closing task.
const CLOSING_LEASE: &str = "closing";

/// Closes due ledger dates as time passes: every `every`, each ledger's passed payout periods.
///
/// Several processes on one database take turns through the store's `closing` lease: only its
/// holder closes, renewing the lease at every tick; when the holder stops (or dies), the lease
/// lapses after three ticks and another process takes over. Closing would be correct without
/// the lease (each period is closed under the ledger's lock, exactly once), but every process
/// would repeat the same scan of every ledger.
async fn closing_loop(state: AppState, every: Duration) {
    let holder = uuid::Uuid::new_v4().to_string();
    let lease = every.saturating_mul(3).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !holds_closing_lease(&state, &holder, lease).await {
            continue;
        }
        match close_all_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(periods = n, "closed ledger periods"),
            Err(e) => tracing::error!(error = %e, "closing ledger periods failed; will retry"),
        }
    }
}

/// Takes or renews the closing lease for `holder`; a database error counts as not holding it.
async fn holds_closing_lease(state: &AppState, holder: &str, lease: Duration) -> bool {
    let now = state.clock.now();
    let until = now
        .checked_add(jiff::SignedDuration::try_from(lease).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX);
    match state
        .store
        .take_lease(CLOSING_LEASE, holder, now, until)
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(error = %e, "taking the closing lease failed; will retry");
            false
        }
    }
}

/// Closes every ledger's periods that the clock has passed; returns how many were closed.
pub async fn close_all_due(state: &AppState) -> Result<usize, ledgerport_store::StoreError> {
    let now = state.clock.now();
    let mut closed = 0;
    for view in state.store.ledgers().await? {
        closed += state
            .store
            .close_due(&view.ledger.ledger_id, now)
            .await?
            .len();
    }
    Ok(closed)
}

/// How often a running server looks for grants to tell of their expiry: a notice is at most
/// this late, which for a warning seven days ahead and an expiry the policy enforces on its own
/// is soon enough.
const EXPIRY_NOTICE_INTERVAL: Duration = Duration::from_secs(60);

/// Tells both sides of grants about to expire or expired ([`notify_expiries`]), every
/// [`EXPIRY_NOTICE_INTERVAL`]. Every process runs it: each notice is written once whoever
/// looks (the store records it in the notice's own transaction), and the query is small.
async fn expiry_notice_loop(state: AppState) {
    let mut tick = tokio::time::interval(EXPIRY_NOTICE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match notify_expiries(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(notifications = n, "told of grant expiries"),
            Err(e) => tracing::error!(error = %e, "telling of grant expiries failed; will retry"),
        }
    }
}

/// Writes the expiry notices due at the clock's now (a grant expiring within seven days, or
/// expired), each once; returns how many notifications were written.
pub async fn notify_expiries(state: &AppState) -> Result<u64, ledgerport_store::StoreError> {
    state.store.notify_grant_expiries(state.clock.now()).await
}

/// How often a running server re-reads the signing keys from the store.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Resolves on Ctrl-C or SIGTERM: the shutdown future of `serve` for the binaries, and the
/// benchmark's signal to stop and kill its server child.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
