//! API keys (shown once, stored as hashes) and the server's token signing keys.

use super::{
    Output, actor, fields, find_merchant, find_partner, parsed, short_time, store_err,
    store_err_on, table, time,
};
use crate::config::Config;
use anyhow::anyhow;
use clap::Subcommand;
use ledgerport_core::ids::Msn;
use ledgerport_core::world::{ApiKey, KeyKind, KeyOwner, PartnerKind, RowId};
use ledgerport_server::credentials::{IssueError, IssuedSecret, issue_keys, regenerate_secret};
use ledgerport_server::tokens::{is_sealed, new_signing_key};
use ledgerport_store::{SigningKeyRecord, Store};
use serde_json::{Value, json};
use std::collections::HashMap;

const SHOWN_ONCE: &str =
    "the client secret is shown only now: it is stored as a hash and cannot be shown again";

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Issue new keys to exactly one owner; prints the client secret once.
    Issue(IssueArgs),
    /// List keys (never secrets).
    List {
        /// Only the keys of this owner: sales-unit:MSN, partner:ID, merchant:ORG-ID or operator.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Replace a key's secret; the old secret and every token issued from it stop working at once.
    Regenerate {
        /// The key's id (see `keys list`).
        #[arg(value_name = "KEY-ID")]
        key_id: RowId,
    },
    /// Revoke a key for good.
    Revoke {
        /// The key's id (see `keys list`).
        #[arg(value_name = "KEY-ID")]
        key_id: RowId,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct IssueArgs {
    /// Sales-unit keys for this api sales unit (MSN); vm-number units have no keys.
    #[arg(long, value_name = "MSN")]
    sales_unit: Option<String>,
    /// Keys for this approved partner (id); accounting, integration or management keys after its kind.
    #[arg(long, value_name = "ID")]
    partner: Option<RowId>,
    /// Merchant-level keys for this organisation (organisation number): read every ledger it owns.
    #[arg(long, value_name = "ORG-ID")]
    merchant: Option<String>,
    /// Operator service keys: post payment events to `POST /ingest/v1/events` (Basic auth).
    #[arg(long)]
    service: bool,
}

pub(super) async fn keys(store: &dyn Store, cmd: KeysCmd) -> anyhow::Result<Output> {
    match cmd {
        KeysCmd::Issue(a) => issue(store, a).await,
        KeysCmd::List { owner } => {
            let owner = match owner {
                Some(o) => Some(parse_owner(store, &o).await?),
                None => None,
            };
            let keys: Vec<ApiKey> = store
                .keys()
                .await
                .map_err(store_err)?
                .into_iter()
                .filter(|k| owner.is_none_or(|o| k.owner == o))
                .collect();
            let orgs: HashMap<RowId, String> = store
                .merchants()
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|m| (m.id, m.business.id))
                .collect();
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.to_string(),
                        k.kind.as_str().into(),
                        owner_text(k.owner, &orgs),
                        k.client_id.clone(),
                        k.generation.to_string(),
                        key_state(k),
                        short_time(&time(k.created_at)),
                    ]
                })
                .collect();
            let text = table(
                &[
                    "KEY",
                    "KIND",
                    "OWNER",
                    "CLIENT ID",
                    "GEN",
                    "STATE",
                    "CREATED",
                ],
                &rows,
            );
            let json = keys
                .iter()
                .map(|k| {
                    let mut j = key_json(k);
                    j["owner"] = json!(owner_text(k.owner, &orgs));
                    j
                })
                .collect();
            Ok(Output::new(text, json))
        }
        KeysCmd::Regenerate { key_id } => {
            let k = find_key(store, key_id).await?;
            if k.revoked {
                return Err(anyhow!(
                    "KEY-ID: key {key_id} is revoked; issue new keys instead"
                ));
            }
            let (k, secret) = regenerate_secret(store, &actor(), key_id)
                .await
                .map_err(store_err_on("KEY-ID"))?;
            let text = format!(
                "new secret for key {} ({}); the old secret and every token issued from it stopped working\n{}",
                k.id,
                k.kind.as_str(),
                credentials_text(&k, &secret)
            );
            Ok(Output::new(text, credentials_json(&k, &secret)))
        }
        KeysCmd::Revoke { key_id } => {
            let k = find_key(store, key_id).await?;
            if k.revoked {
                return Ok(Output::new(
                    format!("key {key_id} was already revoked\n"),
                    key_json(&k),
                ));
            }
            let k = store
                .revoke_key(&actor(), key_id)
                .await
                .map_err(store_err_on("KEY-ID"))?;
            let text = format!(
                "revoked key {} ({} {}); its tokens stop working on the next request\n",
                k.id,
                k.kind.as_str(),
                k.client_id
            );
            Ok(Output::new(text, key_json(&k)))
        }
    }
}

async fn issue(store: &dyn Store, a: IssueArgs) -> anyhow::Result<Output> {
    let (flag, kind, owner) = if let Some(msn) = a.sales_unit {
        let msn = parsed(Msn::parse("--sales-unit", &msn))?;
        ("--sales-unit", KeyKind::SalesUnit, KeyOwner::SalesUnit(msn))
    } else if let Some(id) = a.partner {
        let p = find_partner(store, "--partner", id).await?;
        let kind = match p.kind {
            PartnerKind::Accounting => KeyKind::Accounting,
            PartnerKind::Integration => KeyKind::Integration,
            PartnerKind::Management => KeyKind::Management,
        };
        ("--partner", kind, KeyOwner::Partner(p.id))
    } else if let Some(org) = a.merchant {
        let m = find_merchant(store, "--merchant", &org).await?;
        (
            "--merchant",
            KeyKind::MerchantLevel,
            KeyOwner::Merchant(m.id),
        )
    } else if a.service {
        ("--service", KeyKind::Service, KeyOwner::Operator)
    } else {
        return Err(anyhow!(
            "give one of --sales-unit, --partner, --merchant or --service"
        ));
    };
    let (k, secret) = issue_keys(store, &actor(), kind, owner)
        .await
        .map_err(|e| match e {
            IssueError::NotAllowed(why) => anyhow!("{flag}: {why}"),
            IssueError::Store(e) => store_err_on(flag)(e),
        })?;
    let text = format!(
        "issued {} keys (key {})\n{}",
        k.kind.as_str(),
        k.id,
        credentials_text(&k, &secret)
    );
    Ok(Output::new(text, credentials_json(&k, &secret)))
}

/// Where the keys are used: their token endpoint, or for service keys the ingestion endpoint.
fn token_endpoint(kind: KeyKind) -> &'static str {
    if kind == KeyKind::Service {
        "POST /ingest/v1/events with Basic auth"
    } else if kind.uses_standard_token_endpoint() {
        "POST /accesstoken/get"
    } else {
        "POST /miami/v1/token"
    }
}

fn credentials_text(k: &ApiKey, secret: &IssuedSecret) -> String {
    let mut pairs = vec![
        ("client_id", k.client_id.clone()),
        ("client_secret", secret.reveal().to_owned()),
    ];
    if let Some([a, b]) = &k.subscription_keys {
        pairs.push(("subscription key 1", a.clone()));
        pairs.push(("subscription key 2", b.clone()));
    }
    let label = if k.kind == KeyKind::Service {
        "ingestion endpoint"
    } else {
        "token endpoint"
    };
    pairs.push((label, token_endpoint(k.kind).into()));
    format!("{}{SHOWN_ONCE}\n", fields(&pairs))
}

fn credentials_json(k: &ApiKey, secret: &IssuedSecret) -> Value {
    let mut j = key_json(k);
    j["client_secret"] = json!(secret.reveal());
    j["subscription_keys"] = json!(k.subscription_keys);
    j["note"] = json!(SHOWN_ONCE);
    j
}

/// A key without its secret hash or subscription keys.
pub(super) fn key_json(k: &ApiKey) -> Value {
    let (kind, id) = match k.owner {
        KeyOwner::SalesUnit(msn) => ("sales-unit", json!(msn)),
        KeyOwner::Partner(p) => ("partner", json!(p)),
        KeyOwner::Merchant(m) => ("merchant", json!(m)),
        KeyOwner::Operator => ("operator", json!(null)),
    };
    json!({
        "id": k.id, "kind": k.kind.as_str(), "owner_type": kind, "owner_id": id, "client_id": k.client_id,
        "generation": k.generation, "revoked": k.revoked, "token_endpoint": token_endpoint(k.kind),
        "created_at": time(k.created_at),
    })
}

pub(super) fn key_state(k: &ApiKey) -> String {
    if k.revoked { "revoked" } else { "active" }.into()
}

fn owner_text(o: KeyOwner, orgs: &HashMap<RowId, String>) -> String {
    match o {
        KeyOwner::SalesUnit(msn) => format!("sales-unit:{msn}"),
        KeyOwner::Partner(p) => format!("partner:{p}"),
        KeyOwner::Merchant(m) => format!(
            "merchant:{}",
            orgs.get(&m).map(String::as_str).unwrap_or("?")
        ),
        KeyOwner::Operator => "operator".into(),
    }
}

async fn parse_owner(store: &dyn Store, s: &str) -> anyhow::Result<KeyOwner> {
    let bad =
        || anyhow!("--owner: must be sales-unit:MSN, partner:ID, merchant:ORG-ID or operator");
    if s == "operator" {
        return Ok(KeyOwner::Operator);
    }
    let (what, id) = s.split_once(':').ok_or_else(bad)?;
    match what {
        "sales-unit" => Ok(KeyOwner::SalesUnit(parsed(Msn::parse("--owner", id))?)),
        "partner" => Ok(KeyOwner::Partner(id.parse().map_err(|_| bad())?)),
        "merchant" => Ok(KeyOwner::Merchant(
            find_merchant(store, "--owner", id).await?.id,
        )),
        _ => Err(bad()),
    }
}

async fn find_key(store: &dyn Store, id: RowId) -> anyhow::Result<ApiKey> {
    store
        .key(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("KEY-ID: no key {id}"))
}

// ---------------------------------------------------------------- signing keys

#[derive(Subcommand)]
pub enum SigningKeyCmd {
    /// List the token signing keys (public information only).
    List,
    /// Make a new signing key and retire the active ones.
    Rotate,
}

pub(super) async fn signing_key(
    store: &dyn Store,
    cmd: SigningKeyCmd,
    config: &Config,
) -> anyhow::Result<Output> {
    match cmd {
        SigningKeyCmd::List => {
            let ks = store.signing_keys().await.map_err(store_err)?;
            let signer = signer(&ks);
            let state = |k: &SigningKeyRecord| match (&k.retired_at, Some(&k.kid) == signer) {
                (Some(_), _) => "retired",
                (None, true) => "signing",
                (None, false) => "active",
            };
            let rows: Vec<Vec<String>> = ks
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        state(k).into(),
                        short_time(&k.created_at),
                        k.retired_at
                            .as_deref()
                            .map(short_time)
                            .unwrap_or_else(|| "-".into()),
                        at_rest(k).into(),
                    ]
                })
                .collect();
            let json = ks
                .iter()
                .map(|k| json!({"kid": k.kid, "state": state(k), "created_at": k.created_at, "retired_at": k.retired_at, "at_rest": at_rest(k)}))
                .collect();
            Ok(Output::new(
                table(&["KID", "STATE", "CREATED", "RETIRED", "AT REST"], &rows),
                json,
            ))
        }
        SigningKeyCmd::Rotate => {
            // The new key is encrypted with the configured key-encryption key; rotating after
            // changing that key is how the key is replaced (OPERATIONS.md).
            let protection = config.required_signing_keys()?;
            let by = actor();
            let before = store.signing_keys().await.map_err(store_err)?;
            let rec = new_signing_key(jiff::Timestamp::now(), &protection)?;
            let kid = rec.kid.clone();
            store.add_signing_key(&by, rec).await.map_err(store_err)?;
            let mut retired = Vec::new();
            for k in before.iter().filter(|k| k.retired_at.is_none()) {
                store
                    .retire_signing_key(&by, &k.kid)
                    .await
                    .map_err(store_err)?;
                retired.push(k.kid.clone());
            }
            let mut text = format!("new signing key {kid} signs tokens from now on\n");
            if retired.is_empty() {
                text.push_str("there was no active key to retire\n");
            } else {
                text.push_str(&format!("retired {}\n", retired.join(", ")));
                text.push_str(
                    "tokens signed by retired keys keep verifying until they expire (at most the longest token \
                     lifetime after retirement), and their public keys stay in the JWKS until then\n",
                );
            }
            text.push_str("running servers re-read the signing keys every minute and then sign with the new key\n");
            Ok(Output::new(
                text,
                json!({"new_kid": kid, "retired": retired}),
            ))
        }
    }
}

/// How the private key is kept in the database.
fn at_rest(k: &SigningKeyRecord) -> &'static str {
    if is_sealed(&k.private_der) {
        "encrypted"
    } else {
        "in clear"
    }
}

/// The key a server loading this set signs with: the newest active one (as `TokenService` picks it).
fn signer(ks: &[SigningKeyRecord]) -> Option<&String> {
    ks.iter()
        .filter(|k| k.retired_at.is_none())
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .map(|k| &k.kid)
}
