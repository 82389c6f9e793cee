//! Webhook endpoints of merchants and partners, their delivery log, and the domain events.

use super::{
    Output, actor, fields, find_merchant, find_partner, short_time, store_err, table, time,
};
use crate::config::Config;
use anyhow::anyhow;
use clap::Subcommand;
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::RowId;
use ledgerport_server::webhooks::{self, AddressPolicy, ManageError};
use ledgerport_store::{Store, WebhookDelivery, WebhookEndpoint, WebhookOwner};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// Every endpoint, or one organisation's.
    List {
        /// Only this merchant's (organisation number).
        #[arg(long, value_name = "ORG_ID", conflicts_with = "partner")]
        merchant: Option<String>,
        /// Only this partner's.
        #[arg(long, value_name = "ID")]
        partner: Option<RowId>,
    },
    /// Register an endpoint for a merchant (events of its ledgers) or a partner (events of the
    /// ledgers it may read, and its own). Prints the signing secret, shown this once.
    Create {
        #[arg(
            long,
            value_name = "ORG_ID",
            conflicts_with = "partner",
            required_unless_present = "partner"
        )]
        merchant: Option<String>,
        #[arg(long, value_name = "ID")]
        partner: Option<RowId>,
        /// Where deliveries are posted (http://...). Loopback, private and link-local addresses
        /// only within `webhooks.allowed_networks`.
        #[arg(long)]
        url: String,
        /// The event types wanted, comma separated; every type when not given.
        #[arg(long, value_name = "TYPES", default_value = "")]
        events: String,
    },
    /// Delete an endpoint with its delivery log.
    Delete {
        /// The endpoint's id (ep_...).
        #[arg(long)]
        id: String,
    },
    /// Give an endpoint a new secret (printed once); the old one keeps signing for the overlap.
    Rotate {
        #[arg(long)]
        id: String,
        /// Hours the previous secret keeps signing (0 to 168).
        #[arg(long, default_value_t = 24)]
        overlap_hours: i64,
    },
    /// Enable an endpoint that was disabled after failing for 3 days; what it still had pending
    /// is delivered again.
    Enable {
        #[arg(long)]
        id: String,
    },
    /// An endpoint's deliveries, newest first, with each attempt.
    Deliveries {
        #[arg(long)]
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Deliver one delivery again now (same webhook-id).
    Redeliver {
        /// The delivery's id (from `deliveries`).
        #[arg(long, value_name = "ID")]
        delivery: RowId,
    },
    /// The domain events, oldest first (of one ledger).
    Events {
        #[arg(long)]
        ledger: Option<String>,
        /// Events after this id.
        #[arg(long, default_value_t = 0)]
        after: RowId,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

fn owner_text(o: WebhookOwner) -> String {
    match o {
        WebhookOwner::Merchant(m) => format!("merchant {m}"),
        WebhookOwner::Partner(p) => format!("partner {p}"),
    }
}

fn endpoint_json(e: &WebhookEndpoint) -> Value {
    json!({
        "id": e.uid,
        "owner": owner_text(e.owner),
        "url": e.url,
        "eventTypes": e.event_types,
        "createdAt": time(e.created_at),
        "disabledAt": e.disabled_at.map(time),
        "disabledReason": e.disabled_reason,
        "previousSecretExpiresAt": e.previous_secret_until.map(time),
    })
}

fn delivery_json(d: &WebhookDelivery) -> Value {
    json!({
        "id": d.id,
        "webhookId": d.message_id(),
        "eventType": d.event.event_type,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "lastStatus": d.last_status,
        "lastError": d.last_error,
        "lastLatencyMs": d.last_latency_ms,
        "nextAttemptAt": time(d.next_attempt_at),
    })
}

fn manage(flag: &'static str) -> impl Fn(ManageError) -> anyhow::Error {
    move |e| match e {
        ManageError::Invalid(why) => anyhow!("{flag}: {why}"),
        ManageError::Store(s) => store_err(s),
    }
}

async fn endpoint(store: &dyn Store, id: &str) -> anyhow::Result<WebhookEndpoint> {
    store
        .webhook_endpoint(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("--id: no webhook endpoint {id}"))
}

pub(super) async fn webhooks(
    store: &dyn Store,
    c: WebhooksCmd,
    config: &Config,
) -> anyhow::Result<Output> {
    match c {
        WebhooksCmd::List { merchant, partner } => {
            let owner = match (merchant, partner) {
                (Some(org), _) => Some(WebhookOwner::Merchant(
                    find_merchant(store, "--merchant", &org).await?.id,
                )),
                (_, Some(p)) => Some(WebhookOwner::Partner(
                    find_partner(store, "--partner", p).await?.id,
                )),
                _ => None,
            };
            let list = store.webhook_endpoints(owner).await.map_err(store_err)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|e| {
                    vec![
                        e.uid.clone(),
                        owner_text(e.owner),
                        e.url.clone(),
                        if e.event_types.is_empty() {
                            "*".into()
                        } else {
                            e.event_types.join(",")
                        },
                        e.disabled_at.map_or("enabled".into(), |t| {
                            format!("disabled {}", short_time(&time(t)))
                        }),
                    ]
                })
                .collect();
            Ok(Output::new(
                table(&["ID", "OWNER", "URL", "EVENTS", "STATE"], &rows),
                Value::from(list.iter().map(endpoint_json).collect::<Vec<_>>()),
            ))
        }
        WebhooksCmd::Create {
            merchant,
            partner,
            url,
            events,
        } => {
            let owner = match (merchant, partner) {
                (Some(org), _) => {
                    WebhookOwner::Merchant(find_merchant(store, "--merchant", &org).await?.id)
                }
                (_, Some(p)) => {
                    WebhookOwner::Partner(find_partner(store, "--partner", p).await?.id)
                }
                _ => return Err(anyhow!("--merchant or --partner: one is required")),
            };
            let types =
                webhooks::parse_event_types("--events", &events).map_err(anyhow::Error::msg)?;
            let protection = config.required_signing_keys()?;
            let policy = AddressPolicy::new(config.webhooks()?.allowed_networks);
            let (e, secret) = webhooks::register_endpoint(
                store,
                &protection,
                &policy,
                &actor(),
                owner,
                &url,
                types,
            )
            .await
            .map_err(manage("--url"))?;
            let mut json = endpoint_json(&e);
            json["secret"] = Value::from(secret.clone());
            Ok(Output::new(
                fields(&[
                    ("id", e.uid.clone()),
                    ("owner", owner_text(e.owner)),
                    ("url", e.url.clone()),
                    (
                        "secret",
                        format!("{secret}  (shown once: give it to the receiver now)"),
                    ),
                ]),
                json,
            ))
        }
        WebhooksCmd::Delete { id } => {
            let e = endpoint(store, &id).await?;
            store
                .delete_webhook_endpoint(&actor(), &e.uid)
                .await
                .map_err(store_err)?;
            Ok(Output::new(
                format!("deleted webhook endpoint {}\n", e.uid),
                json!({ "deleted": e.uid }),
            ))
        }
        WebhooksCmd::Rotate { id, overlap_hours } => {
            let e = endpoint(store, &id).await?;
            let protection = config.required_signing_keys()?;
            let (e, secret) = webhooks::rotate_secret(
                store,
                &protection,
                &actor(),
                &e.uid,
                jiff::Timestamp::now(),
                jiff::SignedDuration::from_hours(overlap_hours),
            )
            .await
            .map_err(manage("--overlap-hours"))?;
            let mut json = endpoint_json(&e);
            json["secret"] = Value::from(secret.clone());
            Ok(Output::new(
                fields(&[
                    ("id", e.uid.clone()),
                    ("secret", format!("{secret}  (shown once)")),
                    (
                        "previous secret signs until",
                        e.previous_secret_until.map(time).unwrap_or_default(),
                    ),
                ]),
                json,
            ))
        }
        WebhooksCmd::Enable { id } => {
            let e = endpoint(store, &id).await?;
            let e = store
                .enable_webhook_endpoint(&actor(), &e.uid)
                .await
                .map_err(store_err)?;
            Ok(Output::new(
                format!("enabled webhook endpoint {}\n", e.uid),
                endpoint_json(&e),
            ))
        }
        WebhooksCmd::Deliveries { id, limit } => {
            if !(1..=1000).contains(&limit) {
                return Err(anyhow!("--limit: must be 1 to 1000"));
            }
            let e = endpoint(store, &id).await?;
            let list = store
                .webhook_deliveries(e.id, None, limit)
                .await
                .map_err(store_err)?;
            let mut rows = Vec::new();
            let mut json = Vec::new();
            for d in &list {
                let attempts = store.webhook_attempts(d.id).await.map_err(store_err)?;
                rows.push(vec![
                    d.id.to_string(),
                    d.message_id(),
                    d.event.event_type.clone(),
                    d.state.as_str().to_owned(),
                    d.attempts.to_string(),
                    d.last_status.map(|s| s.to_string()).unwrap_or_default(),
                    d.last_latency_ms
                        .map(|l| format!("{l} ms"))
                        .unwrap_or_default(),
                    d.last_error.clone().unwrap_or_default(),
                ]);
                let mut j = delivery_json(d);
                j["attemptLog"] = Value::from(
                    attempts
                        .iter()
                        .map(|a| {
                            json!({"at": time(a.at), "status": a.status, "error": a.error, "latencyMs": a.latency_ms})
                        })
                        .collect::<Vec<_>>(),
                );
                json.push(j);
            }
            Ok(Output::new(
                table(
                    &[
                        "ID",
                        "WEBHOOK-ID",
                        "TYPE",
                        "STATE",
                        "ATTEMPTS",
                        "STATUS",
                        "LATENCY",
                        "ERROR",
                    ],
                    &rows,
                ),
                Value::from(json),
            ))
        }
        WebhooksCmd::Redeliver { delivery } => {
            if !store
                .redeliver_webhook(&actor(), delivery)
                .await
                .map_err(store_err)?
            {
                return Err(anyhow!("--delivery: no delivery {delivery}"));
            }
            Ok(Output::new(
                format!("delivery {delivery} is due again now\n"),
                json!({ "redelivered": delivery }),
            ))
        }
        WebhooksCmd::Events {
            ledger,
            after,
            limit,
        } => {
            let ledger = ledger
                .map(|l| LedgerId::parse("--ledger", &l))
                .transpose()?;
            let events = store
                .domain_events(ledger.as_ref(), after, limit.clamp(1, 10_000))
                .await
                .map_err(store_err)?;
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        short_time(&time(e.created_at)),
                        e.event_type.clone(),
                        e.ledger_id
                            .as_ref()
                            .map(|l| l.to_string())
                            .unwrap_or_default(),
                        e.ledger_seq.map(|s| s.to_string()).unwrap_or_default(),
                        e.data.clone(),
                    ]
                })
                .collect();
            let json: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "type": e.event_type,
                        "ledgerId": e.ledger_id.as_ref().map(|l| l.to_string()),
                        "ledgerSequence": e.ledger_seq,
                        "createdAt": time(e.created_at),
                        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
                    })
                })
                .collect();
            Ok(Output::new(
                table(&["ID", "AT", "TYPE", "LEDGER", "SEQ", "DATA"], &rows),
                Value::from(json),
            ))
        }
    }
}
