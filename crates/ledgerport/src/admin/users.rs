//! `admin users`: the portal's first users (merchant, partner and operator users).

use super::{Output, actor, store_err, store_err_on, table, time};
use anyhow::anyhow;
use clap::Subcommand;
use ledgerport_core::world::RowId;
use ledgerport_server::portal::auth::{MIN_PASSWORD_LEN, hash_password};
use ledgerport_store::{NewPortalUser, PortalRole, Store};
use serde_json::json;

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Create a portal user. The password is read from the first line of standard input
    /// (e.g. `printf '%s\n' "$PW" | ledgerport admin users create ... --password-stdin`), never
    /// from the command line, and never printed.
    Create {
        /// merchant (one organisation's pages), partner (one partner's) or operator.
        #[arg(long)]
        kind: String,
        /// The merchant's organisation number (for --kind merchant).
        #[arg(long)]
        org: Option<String>,
        /// The partner's id (for --kind partner).
        #[arg(long)]
        partner: Option<RowId>,
        /// The e-mail address the user signs in with.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (the only way to give one).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List portal users.
    List,
}

pub async fn users(store: &dyn Store, c: UsersCmd) -> anyhow::Result<Output> {
    match c {
        UsersCmd::Create {
            kind,
            org,
            partner,
            email,
            password_stdin: _,
        } => {
            let role = match (kind.as_str(), org, partner) {
                ("merchant", Some(org), None) => {
                    let m = store
                        .merchant_by_org(org.trim())
                        .await
                        .map_err(store_err)?
                        .ok_or_else(|| {
                            anyhow!("--org: no merchant with organisation number {org}")
                        })?;
                    PortalRole::Merchant(m.id)
                }
                ("partner", None, Some(p)) => {
                    store
                        .partner(p)
                        .await
                        .map_err(store_err)?
                        .ok_or_else(|| anyhow!("--partner: no partner {p}"))?;
                    PortalRole::Partner(p)
                }
                ("operator", None, None) => PortalRole::Operator,
                ("merchant", _, _) => {
                    return Err(anyhow!("--kind merchant needs --org and no --partner"));
                }
                ("partner", _, _) => {
                    return Err(anyhow!("--kind partner needs --partner and no --org"));
                }
                ("operator", _, _) => {
                    return Err(anyhow!("--kind operator takes neither --org nor --partner"));
                }
                _ => return Err(anyhow!("--kind: must be merchant, partner or operator")),
            };
            let email = email.trim().to_lowercase();
            if !email.contains('@') {
                return Err(anyhow!("--email: must be an e-mail address"));
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| anyhow!("reading the password from standard input: {e}"))?;
            let password = line.trim_end_matches(['\n', '\r']).to_owned();
            if password.chars().count() < MIN_PASSWORD_LEN {
                return Err(anyhow!(
                    "password (standard input): must be at least {MIN_PASSWORD_LEN} characters"
                ));
            }
            let password_hash = hash_password(password).await.map_err(anyhow::Error::msg)?;
            let u = store
                .create_portal_user(
                    &actor(),
                    NewPortalUser {
                        email,
                        role,
                        password_hash,
                    },
                )
                .await
                .map_err(store_err_on("--email"))?;
            Ok(Output::new(
                format!("created {} user {} ({})\n", u.role.as_str(), u.id, u.email),
                json!({"id": u.id, "email": u.email, "kind": u.role.as_str()}),
            ))
        }
        UsersCmd::List => {
            let users = store.portal_users().await.map_err(store_err)?;
            let of = |r: PortalRole| match r {
                PortalRole::Merchant(m) => format!("merchant {m}"),
                PortalRole::Partner(p) => format!("partner {p}"),
                PortalRole::Operator => String::new(),
            };
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.id.to_string(),
                        u.email.clone(),
                        u.role.as_str().to_owned(),
                        of(u.role),
                    ]
                })
                .collect();
            let json = users
                .iter()
                .map(|u| json!({"id": u.id, "email": u.email, "kind": u.role.as_str(), "of": of(u.role), "created_at": time(u.created_at)}))
                .collect();
            Ok(Output::new(
                table(&["ID", "EMAIL", "KIND", "OF"], &rows),
                serde_json::Value::Array(json),
            ))
        }
    }
}
