//! Domain events and webhooks on SQL (migration `0014_webhooks.sql`): [`record_event`],
//! with which a change writes its event (and the event's deliveries) in its own transaction, and
//! [`WebhookStore`].
//!
//! Which endpoints get a delivery is settled when the event is written, generously: the ledger
//! owner's endpoints, the endpoints of every partner holding a grant row on the ledger and those
//! of the partner the event is about, each only if it wants the event's type and is enabled.
//! Whether the owner may see the event is the access policy's question, asked again by the
//! server at every attempt; this module knows nothing of it.
//!
//! Claims work as the mail outbox's (`sql/outbox.rs`): one `UPDATE` marks the chosen rows with
//! the holder and a lapse time, `FOR UPDATE SKIP LOCKED` on PostgreSQL.

use super::{Dialect, SqlStore, Tx, WriteTx, args, constraint};
use crate::rows::ts;
use crate::webhook::*;
use crate::{Actor, NewMail, Result, StoreError, WebhookStore};
use async_trait::async_trait;
use jiff::Timestamp;
use ledgerport_core::entry::wire_time;
use ledgerport_core::ids::{LedgerDate, LedgerId};
use ledgerport_core::world::RowId;

/// An event to write: its type, what it is about, and its data (a JSON object).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub(crate) event_type: &'static str,
    pub(crate) ledger_id: Option<LedgerId>,
    pub(crate) partner_id: Option<RowId>,
    pub(crate) ledger_date: Option<LedgerDate>,
    pub(crate) data: serde_json::Value,
}

/// Writes `event` in this transaction at `at` (the store's now, wire form), with its place
/// in its ledger's sequence and a delivery for each endpoint that may want it. The
/// ledger's row is updated first, which on PostgreSQL holds its lock until the transaction
/// ends, so a ledger's events take their numbers in commit order.
pub(crate) async fn record_event<DB: Dialect>(
    tx: &mut impl Tx<DB>,
    at: &str,
    mut event: NewEvent,
) -> Result<RowId> {
    tx.wrote_event();
    let ledger = event.ledger_id.as_ref().map(|l| l.as_str().to_owned());
    let seq: Option<i64> = match &ledger {
        Some(l) => {
            let (seq,): (i64,) = tx
                .one(
                    "UPDATE ledgers SET event_seq = event_seq + 1 WHERE ledger_id = $1 \
                     RETURNING event_seq",
                    args![l.as_str()],
                )
                .await?;
            Some(seq)
        }
        None => None,
    };
    if let (Some(seq), Some(data)) = (seq, event.data.as_object_mut()) {
        data.insert("ledgerSequence".into(), seq.into());
    }
    let (id,): (i64,) = tx
        .one(
            "INSERT INTO domain_events (event_type, ledger_id, ledger_seq, partner_id, \
             ledger_date, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            args![
                event.event_type,
                ledger.clone(),
                seq,
                event.partner_id,
                event.ledger_date.map(|d| d.to_string()),
                event.data.to_string(),
                at
            ],
        )
        .await?;
    // Merchants hear of their ledgers, partners of ledgers they hold a grant row on (whether
    // it still lets them read is decided at delivery) and of themselves.
    tx.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, created_at, \
         retry_since, next_attempt_at) \
         SELECT $1, e.id, 'pending', $2, $2, $2 FROM webhook_endpoints e \
         WHERE e.disabled_at IS NULL \
         AND (e.event_types = '*' OR (' ' || e.event_types || ' ') LIKE ('% ' || $3 || ' %')) \
         AND (e.merchant_id = (SELECT l.owner_merchant_id FROM ledgers l WHERE l.ledger_id = $4) \
              OR e.partner_id = $5 \
              OR e.partner_id IN (SELECT g.partner_id FROM grants g WHERE g.ledger_id = $4))",
        args![id, at, event.event_type, ledger, event.partner_id],
    )
    .await?;
    Ok(id)
}

/// Checks an endpoint's URL and event types before it is written; each error names its field.
fn check(e: &NewWebhookEndpoint) -> Result<()> {
    let url = e.url.as_str();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let authority = r.split(['/', '?', '#']).next().unwrap_or("");
        !authority.is_empty() && !authority.contains('@')
    });
    if url.len() > 2000 || !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "url: must be an http:// or https:// URL with a host and no user info, got {url:?}"
        )));
    }
    for t in &e.event_types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(StoreError::Invalid(format!(
                "event_types: unknown event type {t:?} (known: {})",
                EVENT_TYPES.join(", ")
            )));
        }
    }
    if !e.uid.starts_with("ep_") || e.uid.len() > 64 {
        return Err(StoreError::Invalid(format!(
            "uid: must start with ep_, got {:?}",
            e.uid
        )));
    }
    Ok(())
}

fn stored_types(types: &[String]) -> String {
    if types.is_empty() {
        "*".into()
    } else {
        types.join(" ")
    }
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: i64,
    uid: String,
    merchant_id: Option<i64>,
    partner_id: Option<i64>,
    url: String,
    event_types: String,
    secret: Vec<u8>,
    previous_secret: Option<Vec<u8>>,
    previous_secret_until: Option<String>,
    created_at: String,
    disabled_at: Option<String>,
    disabled_reason: Option<String>,
}

impl EndpointRow {
    fn into_domain(self) -> Result<WebhookEndpoint> {
        let owner = match (self.merchant_id, self.partner_id) {
            (Some(m), None) => WebhookOwner::Merchant(m),
            (None, Some(p)) => WebhookOwner::Partner(p),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "webhook endpoint {} has no single owner",
                    self.uid
                )));
            }
        };
        Ok(WebhookEndpoint {
            id: self.id,
            uid: self.uid,
            owner,
            url: self.url,
            event_types: if self.event_types == "*" {
                Vec::new()
            } else {
                self.event_types
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            },
            secret: self.secret,
            previous_secret: self.previous_secret,
            previous_secret_until: self.previous_secret_until.as_deref().map(ts).transpose()?,
            created_at: ts(&self.created_at)?,
            disabled_at: self.disabled_at.as_deref().map(ts).transpose()?,
            disabled_reason: self.disabled_reason,
        })
    }
}

const ENDPOINT_COLUMNS: &str = "id, uid, merchant_id, partner_id, url, event_types, secret, \
     previous_secret, previous_secret_until, created_at, disabled_at, disabled_reason";

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    event_type: String,
    ledger_id: Option<String>,
    ledger_seq: Option<i64>,
    partner_id: Option<i64>,
    ledger_date: Option<String>,
    data: String,
    created_at: String,
}

impl EventRow {
    fn into_domain(self) -> Result<DomainEvent> {
        Ok(DomainEvent {
            id: self.id,
            event_type: self.event_type,
            ledger_id: self
                .ledger_id
                .as_deref()
                .map(|l| LedgerId::parse("ledger_id", l))
                .transpose()?,
            ledger_seq: self.ledger_seq,
            partner_id: self.partner_id,
            ledger_date: self
                .ledger_date
                .as_deref()
                .map(|d| LedgerDate::parse("ledger_date", d))
                .transpose()?,
            data: self.data,
            created_at: ts(&self.created_at)?,
        })
    }
}

const EVENT_COLUMNS: &str =
    "id, event_type, ledger_id, ledger_seq, partner_id, ledger_date, data, created_at";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    endpoint_id: i64,
    state: String,
    created_at: String,
    retry_since: String,
    attempts: i64,
    next_attempt_at: String,
    last_attempt_at: Option<String>,
    last_status: Option<i64>,
    last_error: Option<String>,
    last_latency_ms: Option<i64>,
    finished_at: Option<String>,
    #[sqlx(flatten)]
    event: EventColumns,
}

/// The event's columns as the delivery queries name them (`ev_*`).
#[derive(sqlx::FromRow)]
struct EventColumns {
    ev_id: i64,
    ev_event_type: String,
    ev_ledger_id: Option<String>,
    ev_ledger_seq: Option<i64>,
    ev_partner_id: Option<i64>,
    ev_ledger_date: Option<String>,
    ev_data: String,
    ev_created_at: String,
}

impl DeliveryRow {
    fn into_domain(self) -> Result<WebhookDelivery> {
        let e = self.event;
        let event = EventRow {
            id: e.ev_id,
            event_type: e.ev_event_type,
            ledger_id: e.ev_ledger_id,
            ledger_seq: e.ev_ledger_seq,
            partner_id: e.ev_partner_id,
            ledger_date: e.ev_ledger_date,
            data: e.ev_data,
            created_at: e.ev_created_at,
        }
        .into_domain()?;
        Ok(WebhookDelivery {
            id: self.id,
            event,
            endpoint_id: self.endpoint_id,
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery state {}", self.state)))?,
            created_at: ts(&self.created_at)?,
            retry_since: ts(&self.retry_since)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: ts(&self.next_attempt_at)?,
            last_attempt_at: self.last_attempt_at.as_deref().map(ts).transpose()?,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            last_latency_ms: self.last_latency_ms.and_then(|l| u64::try_from(l).ok()),
            finished_at: self.finished_at.as_deref().map(ts).transpose()?,
        })
    }
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.endpoint_id, d.state, d.created_at, d.retry_since, d.attempts, \
     d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.last_latency_ms, \
     d.finished_at, ev.id AS ev_id, ev.event_type AS ev_event_type, ev.ledger_id AS ev_ledger_id, \
     ev.ledger_seq AS ev_ledger_seq, ev.partner_id AS ev_partner_id, \
     ev.ledger_date AS ev_ledger_date, ev.data AS ev_data, ev.created_at AS ev_created_at \
     FROM webhook_deliveries d JOIN domain_events ev ON ev.id = d.event_id";

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    delivery_id: i64,
    at: String,
    status: Option<i64>,
    error: Option<String>,
    latency_ms: i64,
}

impl<DB: Dialect> SqlStore<DB> {
    async fn endpoint_by(
        &self,
        column: &str,
        key: crate::sql::Arg,
    ) -> Result<Option<WebhookEndpoint>> {
        let row: Option<EndpointRow> = self
            .opt(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE {column} = $1"
                )),
                vec![key],
            )
            .await?;
        row.map(EndpointRow::into_domain).transpose()
    }

    async fn require_endpoint(&self, uid: &str) -> Result<WebhookEndpoint> {
        self.endpoint_by("uid", uid.into())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook endpoint {uid}")))
    }
}

/// Records one attempt in `tx` (see [`WebhookStore::record_webhook_attempt`]); false, writing
/// nothing, when `holder` no longer holds the delivery.
async fn record_attempt<DB: Dialect>(
    tx: &mut WriteTx<DB>,
    now: &str,
    id: RowId,
    holder: &str,
    rec: &AttemptRecord,
) -> Result<bool> {
    let at = wire_time(rec.at);
    let (state, next, finished) = match &rec.outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, at.clone(), Some(at.clone())),
        AttemptOutcome::RetryAt(t) => (DeliveryState::Pending, wire_time(*t), None),
        AttemptOutcome::GiveUp => (DeliveryState::Failed, at.clone(), Some(at.clone())),
        AttemptOutcome::Withheld => (DeliveryState::Withheld, at.clone(), Some(at.clone())),
    };
    let latency = i64::try_from(rec.latency_ms).unwrap_or(i64::MAX);
    let status = rec.status.map(i64::from);
    let n = if rec.outcome == AttemptOutcome::Withheld {
        tx.execute(
            "UPDATE webhook_deliveries SET state = $3, finished_at = $4, claimed_by = NULL, \
             claimed_until = NULL WHERE id = $1 AND claimed_by = $2 AND state = 'pending'",
            args![id, holder, state.as_str(), finished],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, finished_at = $5, \
             last_attempt_at = $6, last_status = $7, last_error = $8, last_latency_ms = $9, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2 AND state = 'pending'",
            args![
                id,
                holder,
                state.as_str(),
                next,
                finished,
                at.as_str(),
                status,
                rec.error.clone(),
                latency
            ],
        )
        .await?
    };
    if n != 1 {
        return Ok(false);
    }
    if rec.outcome != AttemptOutcome::Withheld {
        tx.execute(
            "INSERT INTO webhook_attempts (delivery_id, at, status, error, latency_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            args![id, at.as_str(), status, rec.error.clone(), latency],
        )
        .await?;
    }
    if rec.outcome == AttemptOutcome::GiveUp {
        disable_failing_endpoint(tx, now, id).await?;
    }
    Ok(true)
}

#[async_trait]
impl<DB: Dialect> WebhookStore for SqlStore<DB> {
    fn webhook_events_written(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(self.events_written.clone())
    }

    async fn create_webhook_endpoint(
        &self,
        by: &Actor,
        e: NewWebhookEndpoint,
    ) -> Result<WebhookEndpoint> {
        check(&e)?;
        let now = self.now();
        let (merchant, partner) = match e.owner {
            WebhookOwner::Merchant(m) => (Some(m), None),
            WebhookOwner::Partner(p) => (None, Some(p)),
        };
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO webhook_endpoints (uid, merchant_id, partner_id, url, event_types, \
             secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![
                &e.uid,
                merchant,
                partner,
                &e.url,
                stored_types(&e.event_types),
                e.secret.as_slice(),
                now.as_str()
            ],
        )
        .await
        .map_err(|err| constraint(err, || format!("webhook endpoint {}", e.uid)))?;
        tx.audit(
            &now,
            by,
            "webhook.create",
            &e.uid,
            &format!("{:?} {} [{}]", e.owner, e.url, stored_types(&e.event_types)),
        )
        .await?;
        tx.commit().await?;
        self.require_endpoint(&e.uid).await
    }

    async fn webhook_endpoints(&self, owner: Option<WebhookOwner>) -> Result<Vec<WebhookEndpoint>> {
        let (merchant, partner, all) = match owner {
            None => (None, None, 1),
            Some(WebhookOwner::Merchant(m)) => (Some(m), None, 0),
            Some(WebhookOwner::Partner(p)) => (None, Some(p), 0),
        };
        let rows: Vec<EndpointRow> = self
            .all(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                     WHERE $3 = 1 OR merchant_id = $1 OR partner_id = $2 ORDER BY id"
                )),
                args![merchant, partner, all],
            )
            .await?;
        rows.into_iter().map(EndpointRow::into_domain).collect()
    }

    async fn webhook_endpoint(&self, uid: &str) -> Result<Option<WebhookEndpoint>> {
        self.endpoint_by("uid", uid.into()).await
    }

    async fn webhook_endpoint_by_id(&self, id: RowId) -> Result<Option<WebhookEndpoint>> {
        self.endpoint_by("id", id.into()).await
    }

    async fn delete_webhook_endpoint(&self, by: &Actor, uid: &str) -> Result<bool> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let found: Option<(i64,)> = tx
            .opt(
                "SELECT id FROM webhook_endpoints WHERE uid = $1",
                args![uid],
            )
            .await?;
        let Some((id,)) = found else {
            return Ok(false);
        };
        // Its log goes with it; a delivery being attempted right now finds nothing to record.
        tx.execute(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)",
            args![id],
        )
        .await?;
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
            args![id],
        )
        .await?;
        tx.execute("DELETE FROM webhook_endpoints WHERE id = $1", args![id])
            .await?;
        tx.audit(&now, by, "webhook.delete", uid, "").await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_webhook_secret(
        &self,
        by: &Actor,
        uid: &str,
        secret: Vec<u8>,
        previous_until: Timestamp,
    ) -> Result<WebhookEndpoint> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, \
                 previous_secret_until = $2, secret = $3 WHERE uid = $1",
                args![uid, wire_time(previous_until), secret.as_slice()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("webhook endpoint {uid}")));
        }
        tx.audit(
            &now,
            by,
            "webhook.rotate",
            uid,
            &format!("previous secret signs until {}", wire_time(previous_until)),
        )
        .await?;
        tx.commit().await?;
        self.require_endpoint(uid).await
    }

    async fn enable_webhook_endpoint(&self, by: &Actor, uid: &str) -> Result<WebhookEndpoint> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL \
                 WHERE uid = $1",
                args![uid],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("webhook endpoint {uid}")));
        }
        // What waited while it was disabled gets a fresh retry period.
        tx.execute(
            "UPDATE webhook_deliveries SET retry_since = $2, next_attempt_at = $2 \
             WHERE state = 'pending' AND endpoint_id = (SELECT id FROM webhook_endpoints WHERE uid = $1)",
            args![uid, now.as_str()],
        )
        .await?;
        tx.audit(&now, by, "webhook.enable", uid, "").await?;
        tx.commit().await?;
        self.require_endpoint(uid).await
    }

    async fn domain_events(
        &self,
        ledger: Option<&LedgerId>,
        after: RowId,
        limit: u32,
    ) -> Result<Vec<DomainEvent>> {
        let rows: Vec<EventRow> = self
            .all(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM domain_events \
                     WHERE ($1 IS NULL OR ledger_id = $1) AND id > $2 ORDER BY id LIMIT $3"
                )),
                args![ledger.map(|l| l.as_str()), after, i64::from(limit)],
            )
            .await?;
        rows.into_iter().map(EventRow::into_domain).collect()
    }

    async fn claim_webhook_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let claimable = "state = 'pending' AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until <= $3) \
             AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL)";
        let sql = format!(
            "WITH chosen AS (SELECT id FROM webhook_deliveries WHERE {claimable} \
             ORDER BY next_attempt_at, id LIMIT $4{}) \
             UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM chosen) AND {claimable} RETURNING id",
            DB::SKIP_LOCKED
        );
        let mut tx = self.begin().await?;
        let ids: Vec<(i64,)> = tx
            .all(
                sqlx::AssertSqlSafe(sql),
                args![holder, wire_time(until), wire_time(now), i64::from(limit)],
            )
            .await?;
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
        let rows: Vec<DeliveryRow> = self
            .all(
                sqlx::AssertSqlSafe(format!(
                    "{DELIVERY_SELECT} WHERE {} AND d.claimed_by = $2 \
                     ORDER BY d.next_attempt_at, d.id",
                    DB::in_list("d.id", "$1")
                )),
                vec![
                    crate::sql::Arg::List(crate::sql::List::Ints(ids)),
                    holder.into(),
                ],
            )
            .await?;
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    async fn record_webhook_attempt(
        &self,
        id: RowId,
        holder: &str,
        rec: AttemptRecord,
    ) -> Result<bool> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let held = record_attempt(&mut tx, &now, id, holder, &rec).await?;
        tx.commit().await?;
        Ok(held)
    }

    async fn record_webhook_attempts(
        &self,
        holder: &str,
        attempts: &[(RowId, AttemptRecord)],
    ) -> Result<Vec<bool>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut held = Vec::with_capacity(attempts.len());
        for (id, rec) in attempts {
            held.push(record_attempt(&mut tx, &now, *id, holder, rec).await?);
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn webhook_deliveries(
        &self,
        endpoint: RowId,
        before: Option<RowId>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let rows: Vec<DeliveryRow> = self
            .all(
                sqlx::AssertSqlSafe(format!(
                    "{DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.id < $2) \
                     ORDER BY d.id DESC LIMIT $3"
                )),
                args![endpoint, before, i64::from(limit)],
            )
            .await?;
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    async fn webhook_delivery(&self, id: RowId) -> Result<Option<WebhookDelivery>> {
        let row: Option<DeliveryRow> = self
            .opt(
                sqlx::AssertSqlSafe(format!("{DELIVERY_SELECT} WHERE d.id = $1")),
                args![id],
            )
            .await?;
        row.map(DeliveryRow::into_domain).transpose()
    }

    async fn webhook_attempts(&self, delivery: RowId) -> Result<Vec<WebhookAttempt>> {
        let rows: Vec<AttemptRow> = self
            .all(
                "SELECT id, delivery_id, at, status, error, latency_ms FROM webhook_attempts \
                 WHERE delivery_id = $1 ORDER BY id",
                args![delivery],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(WebhookAttempt {
                    id: r.id,
                    delivery_id: r.delivery_id,
                    at: ts(&r.at)?,
                    status: r.status.and_then(|s| u16::try_from(s).ok()),
                    error: r.error,
                    latency_ms: u64::try_from(r.latency_ms).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn redeliver_webhook(&self, by: &Actor, delivery: RowId) -> Result<bool> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // A delivery being attempted keeps its claim; it is due again at once either way.
        let n = tx
            .execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $2, \
                 retry_since = CASE WHEN state = 'pending' THEN retry_since ELSE $2 END, \
                 finished_at = NULL WHERE id = $1",
                args![delivery, now.as_str()],
            )
            .await?;
        if n == 1 {
            tx.audit(
                &now,
                by,
                "webhook.redeliver",
                &format!("delivery {delivery}"),
                "",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }
}

/// Disables the endpoint of `delivery`, which has failed for the whole retry period, and tells
/// every portal user of its owner (a notification and a mail), once.
async fn disable_failing_endpoint<DB: Dialect>(
    tx: &mut WriteTx<DB>,
    now: &str,
    delivery: RowId,
) -> Result<()> {
    let endpoint: Option<EndpointRow> = tx
        .opt(
            sqlx::AssertSqlSafe(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                 WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = $1)"
            )),
            args![delivery],
        )
        .await?;
    let Some(endpoint) = endpoint else {
        return Ok(());
    };
    let reason = format!(
        "every attempt of a delivery failed for {} hours",
        RETRY_PERIOD.as_hours()
    );
    let n = tx
        .execute(
            "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 \
             WHERE id = $1 AND disabled_at IS NULL",
            args![endpoint.id, now, reason.as_str()],
        )
        .await?;
    if n != 1 {
        return Ok(());
    }
    let (column, owner, link) = match (endpoint.merchant_id, endpoint.partner_id) {
        (Some(m), _) => ("merchant_id", m, "/portal/merchant/webhooks"),
        (_, Some(p)) => ("partner_id", p, "/portal/partner/webhooks"),
        _ => return Ok(()),
    };
    let users: Vec<(i64, String)> = tx
        .all(
            sqlx::AssertSqlSafe(format!(
                "SELECT id, email FROM portal_users WHERE {column} = $1 ORDER BY id"
            )),
            args![owner],
        )
        .await?;
    let text = format!(
        "Webhook endpoint {} ({}) was disabled: {reason}. Fix the receiver, then enable it again \
         on the webhooks page; the deliveries still pending are then tried again.",
        endpoint.uid, endpoint.url
    );
    for (user, email) in users {
        tx.execute(
            "INSERT INTO notifications (user_id, kind, text, link, created_at) \
             VALUES ($1, 'webhook.disabled', $2, $3, $4)",
            args![user, text.as_str(), link, now],
        )
        .await?;
        tx.enqueue(
            now,
            &NewMail {
                recipient: email,
                subject: "Ledgerport: a webhook endpoint was disabled".into(),
                body: text.clone(),
            },
        )
        .await?;
    }
    Ok(())
}
