//! The Report API access log and the audit log.

use super::{Output, find_ledger, find_merchant, find_partner, short_time, store_err, table};
use crate::config::Config;
use anyhow::anyhow;
use ledgerport_core::entry::wire_time;
use ledgerport_core::world::RowId;
use ledgerport_store::{AccessLogFilter, Store};
use serde_json::json;
use std::collections::HashMap;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AccessLogArgs {
    #[command(subcommand)]
    action: Option<AccessLogAction>,
    /// Only requests on this ledger.
    #[arg(long, value_name = "LEDGER-ID")]
    ledger: Option<String>,
    /// Only requests made with this partner's keys.
    #[arg(long, value_name = "ID")]
    partner: Option<RowId>,
    /// Only requests on ledgers this merchant owns (organisation number).
    #[arg(long, value_name = "ORG-ID")]
    merchant: Option<String>,
    /// At most this many records, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

#[derive(clap::Subcommand)]
pub enum AccessLogAction {
    /// Delete the requests older than the retention now (the server also does it hourly).
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Keep this many days instead of `server.access_log_retention_days`.
    #[arg(long, value_name = "DAYS")]
    older_than_days: Option<u32>,
}

#[derive(clap::Args)]
pub struct AuditLogArgs {
    /// At most this many records, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

fn check_limit(limit: u32) -> anyhow::Result<u32> {
    if (1..=100_000).contains(&limit) {
        Ok(limit)
    } else {
        Err(anyhow!("--limit: must be 1 to 100000"))
    }
}

pub(super) async fn access_log(
    store: &dyn Store,
    a: AccessLogArgs,
    config: &Config,
) -> anyhow::Result<Output> {
    if let Some(AccessLogAction::Prune(p)) = a.action {
        return prune(store, p, config).await;
    }
    let limit = check_limit(a.limit)?;
    let ledger_id = match &a.ledger {
        Some(l) => Some(find_ledger(store, "--ledger", l).await?.ledger.ledger_id),
        None => None,
    };
    if let Some(p) = a.partner {
        find_partner(store, "--partner", p).await?;
    }
    let owner_merchant_id = match &a.merchant {
        Some(org) => Some(find_merchant(store, "--merchant", org).await?.id),
        None => None,
    };
    let filter = AccessLogFilter {
        ledger_id,
        partner_id: a.partner,
        owner_merchant_id,
        limit,
        ..AccessLogFilter::default()
    };
    let recs = store.access_log(&filter).await.map_err(store_err)?;
    let orgs: HashMap<RowId, String> = store
        .merchants()
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|m| (m.id, m.business.id))
        .collect();
    let who = |partner: Option<RowId>, merchant: Option<RowId>, msn: Option<String>| {
        let mut parts = Vec::new();
        parts.extend(partner.map(|p| format!("partner:{p}")));
        parts.extend(merchant.map(|m| {
            format!(
                "merchant:{}",
                orgs.get(&m).map(String::as_str).unwrap_or("?")
            )
        }));
        parts.extend(msn.map(|m| format!("msn:{m}")));
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(" ")
        }
    };
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            let x = &r.rec;
            vec![
                short_time(&r.at),
                x.request_id.clone(),
                dash(x.key_kind.map(|k| k.as_str().to_owned())),
                dash(x.client_id.clone()),
                who(x.partner_id, x.merchant_id, x.msn.map(|m| m.to_string())),
                dash(x.ledger_id.clone()),
                x.status.to_string(),
                x.endpoint.clone(),
                x.result.clone(),
            ]
        })
        .collect();
    let text = table(
        &[
            "TIME",
            "REQUEST ID",
            "KEY KIND",
            "CLIENT ID",
            "WHO",
            "LEDGER",
            "STATUS",
            "ENDPOINT",
            "RESULT",
        ],
        &rows,
    );
    let json = recs
        .iter()
        .map(|r| {
            let x = &r.rec;
            json!({
                "at": r.at, "request_id": x.request_id, "key_id": x.key_id,
                "key_kind": x.key_kind.map(|k| k.as_str()), "client_id": x.client_id,
                "partner_id": x.partner_id,
                "merchant_org_id": x.merchant_id.map(|m| orgs.get(&m).cloned()),
                "msn": x.msn, "ledger_id": x.ledger_id, "endpoint": x.endpoint, "status": x.status,
                "topic": x.topic, "ledger_date": x.ledger_date, "feed_after": x.feed_after,
                "personal_data": x.personal_data, "result": x.result,
            })
        })
        .collect();
    Ok(Output::new(text, json))
}

async fn prune(store: &dyn Store, p: PruneArgs, config: &Config) -> anyhow::Result<Output> {
    let days = p
        .older_than_days
        .unwrap_or(config.server.access_log_retention_days);
    if days == 0 {
        return Err(anyhow!(
            "--older-than-days: the retention is 0 (keep forever); give a number of days to prune"
        ));
    }
    let cutoff = ledgerport_server::access_log_cutoff(jiff::Timestamp::now(), days);
    let n = store
        .prune_access_log(&wire_time(cutoff))
        .await
        .map_err(store_err)?;
    Ok(Output::new(
        format!(
            "Deleted {n} access-log records made before {} ({days} days).",
            short_time(&wire_time(cutoff))
        ),
        json!({ "deleted": n, "before": wire_time(cutoff), "retention_days": days }),
    ))
}

pub(super) async fn audit_log(store: &dyn Store, a: AuditLogArgs) -> anyhow::Result<Output> {
    let recs = store
        .audit_log(check_limit(a.limit)?)
        .await
        .map_err(store_err)?;
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            vec![
                short_time(&r.at),
                r.actor.clone(),
                r.action.clone(),
                r.subject.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    let json = recs
        .iter()
        .map(|r| json!({"at": r.at, "actor": r.actor, "action": r.action, "subject": r.subject, "detail": r.detail}))
        .collect();
    Ok(Output::new(
        table(&["TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL"], &rows),
        json,
    ))
}
