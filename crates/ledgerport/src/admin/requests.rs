//! Access requests: partners' requests for access to a merchant's ledgers, and answering them
//! on the merchant's instruction (the portal's Access requests page does the same).

use super::world::{ScopeArgs, scope_text};
use super::{Output, actor, find_merchant, short_time, store_err, store_err_on, table, time};
use anyhow::anyhow;
use clap::Subcommand;
use ledgerport_core::world::{AccessRequest, RowId};
use ledgerport_store::{Actor, RequestFilter, Store};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum RequestCmd {
    /// List access requests, newest first.
    List {
        /// Only this partner's requests.
        #[arg(long, value_name = "ID")]
        partner: Option<RowId>,
        /// Only requests to the merchant with this organisation number.
        #[arg(long, value_name = "ORG-ID")]
        merchant: Option<String>,
        /// Only pending requests.
        #[arg(long)]
        pending: bool,
    },
    /// Approve a pending request on the merchant's instruction: grants the requested ledgers
    /// to the partner. The scope is the one the partner proposed, narrowed by the options given
    /// (an option that would widen it is refused, naming it).
    Approve {
        /// The request's id (see `request list`).
        id: RowId,
        /// Organisation number of the merchant the request was made to.
        #[arg(long, value_name = "ORG-ID")]
        for_merchant: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Decline a pending request on the merchant's instruction; nothing is granted.
    Decline {
        /// The request's id (see `request list`).
        id: RowId,
        /// Organisation number of the merchant the request was made to.
        #[arg(long, value_name = "ORG-ID")]
        for_merchant: String,
    },
}

/// The request `id` to the merchant `org_id`, and the actor answering it for that merchant.
async fn for_merchant(
    store: &dyn Store,
    id: RowId,
    org_id: &str,
) -> anyhow::Result<(AccessRequest, Actor)> {
    let m = find_merchant(store, "--for-merchant", org_id).await?;
    let r = store
        .access_request(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("request {id}: no such access request"))?;
    if r.merchant_id != Some(m.id) {
        return Err(anyhow!(
            "--for-merchant: access request {id} was not made to {}",
            m.business.id
        ));
    }
    let by = Actor::new(format!("{} for merchant {}", actor().0, m.business));
    Ok((r, by))
}

pub(super) async fn request(store: &dyn Store, cmd: RequestCmd) -> anyhow::Result<Output> {
    match cmd {
        RequestCmd::List {
            partner,
            merchant,
            pending,
        } => {
            let merchant = match merchant {
                Some(org) => Some(find_merchant(store, "--merchant", &org).await?.id),
                None => None,
            };
            let rs: Vec<AccessRequest> = store
                .access_requests(&RequestFilter { partner, merchant })
                .await
                .map_err(store_err)?
                .into_iter()
                .filter(|r| !pending || r.state.as_str() == "pending")
                .collect();
            let rows: Vec<Vec<String>> = rs
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.partner_id.to_string(),
                        r.org_id.clone(),
                        units(r),
                        scope_text(&r.scope),
                        r.state.as_str().to_owned(),
                        short_time(&time(r.created_at)),
                    ]
                })
                .collect();
            Ok(Output::new(
                table(
                    &["ID", "PARTNER", "ORG", "UNITS", "SCOPE", "STATE", "CREATED"],
                    &rows,
                ),
                rs.iter().map(request_json).collect(),
            ))
        }
        RequestCmd::Approve {
            id,
            for_merchant: org,
            scope,
        } => {
            let (r, by) = for_merchant(store, id, &org).await?;
            let scope = scope.apply(r.scope)?;
            let (r, granted) = store
                .approve_access_request(&by, id, &scope)
                .await
                .map_err(|e| match e {
                    ledgerport_store::StoreError::Invalid(m) => {
                        let flag = m.split(':').next().unwrap_or_default();
                        let flag = match flag {
                            "expires_at" => "--expires-at",
                            "from" => "--from",
                            "to" => "--to",
                            "topics" => "--topics",
                            "personal_data" => "--no-personal-data",
                            _ => return anyhow!("request {id}: {m}"),
                        };
                        let why = m.split_once(':').map(|(_, w)| w.trim()).unwrap_or("");
                        anyhow!("{flag}: {why}")
                    }
                    e => store_err_on("request")(e),
                })?;
            let ledgers: Vec<String> = granted.iter().map(|l| l.to_string()).collect();
            let text = format!(
                "approved access request {id}: partner {} may now read ledger(s) {}: {}\n",
                r.partner_id,
                if ledgers.is_empty() {
                    "(none new)".to_owned()
                } else {
                    ledgers.join(", ")
                },
                scope_text(&scope)
            );
            let mut j = request_json(&r);
            j["granted_ledgers"] = json!(ledgers);
            Ok(Output::new(text, j))
        }
        RequestCmd::Decline {
            id,
            for_merchant: org,
        } => {
            let (_, by) = for_merchant(store, id, &org).await?;
            let r = store
                .decline_access_request(&by, id)
                .await
                .map_err(store_err_on("request"))?;
            Ok(Output::new(
                format!("declined access request {id}; nothing was granted\n"),
                request_json(&r),
            ))
        }
    }
}

fn units(r: &AccessRequest) -> String {
    if r.units.is_empty() {
        "all".to_owned()
    } else {
        r.units
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn request_json(r: &AccessRequest) -> Value {
    let s = &r.scope;
    json!({
        "id": r.id, "partner_id": r.partner_id, "org_id": r.org_id,
        "merchant_known": r.merchant_id.is_some(),
        "units": r.units.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "expires_at": s.expires_at.map(time),
        "from": s.from.map(|d| d.to_string()), "to": s.to.map(|d| d.to_string()),
        "topics": s.topics.list().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "personal_data": s.personal_data,
        "message": r.message, "state": r.state.as_str(),
        "created_at": time(r.created_at), "decided_at": r.decided_at.map(time),
        "decided_by": r.decided_by,
    })
}
