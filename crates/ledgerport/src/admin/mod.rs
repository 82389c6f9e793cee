//! Operator commands: `ledgerport admin …`.
//!
//! One clap enum per object; each command returns an [`Output`] (text for people and a JSON value
//! for machines) and [`run`] prints the one `--json` asks for. Errors name the flag that was wrong.
//! Every change is made as the actor `admin:$USER` and lands in the audit log.
//!
//! - [`world`]: merchants, sales units, ledgers, partners, grants
//! - [`keys`]: API keys and the server's token signing keys
//! - [`logs`]: the Report API access log and the audit log
//! - [`close`]: closing the payout periods that have passed
//! - [`users`]: the portal's users
//! - [`requests`]: partners' access requests and the merchant's answers
//! - [`statement`]: a ledger's camt.053 bank statement for a period
//! - [`webhooks`]: webhook endpoints, their delivery log, the domain events

use crate::config::Config;
use anyhow::anyhow;
mod close;
mod keys;
mod logs;
mod outbox;
mod requests;
mod statement;
mod users;
mod webhooks;
mod world;

use clap::Subcommand;
use ledgerport_core::ParseError;
use ledgerport_core::ids::{BusinessId, LedgerId, OrgScheme};
use ledgerport_core::world::{Merchant, Partner, RowId};
use ledgerport_store::{Actor, LedgerView, Store, StoreError};
use serde_json::Value;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Merchants: the organisations that sell.
    #[command(subcommand)]
    Merchant(world::MerchantCmd),
    /// Sales units: a merchant's points of sale (api or vm-number).
    #[command(subcommand)]
    SalesUnit(world::SalesUnitCmd),
    /// Ledgers: the accounts that settle one or more sales units.
    #[command(subcommand)]
    Ledger(world::LedgerCmd),
    /// Partners: accounting, integration and management partners, and their approval.
    #[command(subcommand)]
    Partner(world::PartnerCmd),
    /// API keys of sales units, partners and merchants.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Grants: which accounting partner may read which ledger.
    #[command(subcommand)]
    Grant(world::GrantCmd),
    /// Access requests: partners asking merchants for access, approved or declined on the
    /// merchant's instruction.
    #[command(subcommand)]
    Request(requests::RequestCmd),
    /// Who read which ledger through the Report API, newest first; `prune` deletes old records.
    AccessLog(logs::AccessLogArgs),
    /// Every state change and who made it, newest first.
    AuditLog(logs::AuditLogArgs),
    /// The keys the server signs access tokens with.
    #[command(subcommand)]
    SigningKey(keys::SigningKeyCmd),
    /// Close every payout period that has passed: retain or invoice fees, schedule payouts.
    Close(close::CloseArgs),
    /// Portal users: who signs in to the merchant, partner and operator pages.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// The mail outbox: mails waiting to be sent over SMTP, and sending them again now.
    #[command(subcommand)]
    Outbox(outbox::OutboxCmd),
    /// A ledger's bank statement for a period (ISO 20022 camt.053), for accounting systems.
    Statement(statement::StatementArgs),
    /// Webhook endpoints of merchants and partners, their delivery log and redelivery, and the
    /// domain events they are sent.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCmd),
}

pub async fn run(store: &dyn Store, args: AdminArgs, config: &Config) -> anyhow::Result<()> {
    let out = execute(store, args.command, config).await?;
    print(args.json, &out)
}

async fn execute(
    store: &dyn Store,
    command: AdminCommand,
    config: &Config,
) -> anyhow::Result<Output> {
    match command {
        AdminCommand::Merchant(c) => world::merchant(store, c).await,
        AdminCommand::SalesUnit(c) => world::sales_unit(store, c).await,
        AdminCommand::Ledger(c) => world::ledger(store, c).await,
        AdminCommand::Partner(c) => world::partner(store, c).await,
        AdminCommand::Keys(c) => keys::keys(store, c).await,
        AdminCommand::Grant(c) => world::grant(store, c).await,
        AdminCommand::Request(c) => requests::request(store, c).await,
        AdminCommand::AccessLog(a) => logs::access_log(store, a, config).await,
        AdminCommand::AuditLog(a) => logs::audit_log(store, a).await,
        AdminCommand::SigningKey(c) => keys::signing_key(store, c, config).await,
        AdminCommand::Close(a) => close::close(store, a).await,
        AdminCommand::Users(c) => users::users(store, c).await,
        AdminCommand::Outbox(c) => outbox::outbox(store, c).await,
        AdminCommand::Statement(a) => statement::statement(store, a).await,
        AdminCommand::Webhooks(c) => webhooks::webhooks(store, c, config).await,
    }
}

/// What a command has to say, in both forms.
struct Output {
    text: String,
    json: Value,
}

impl Output {
    fn new(text: impl Into<String>, json: Value) -> Self {
        Output {
            text: text.into(),
            json,
        }
    }
}

fn print(json: bool, out: &Output) -> anyhow::Result<()> {
    use std::io::Write;
    let mut text = if json {
        serde_json::to_string_pretty(&out.json)?
    } else {
        out.text.clone()
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("writing the output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Rows under a header, each column as wide as its widest cell; `(none)` when there are no rows.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `name: value` lines with the values aligned.
fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:")))
        .collect()
}

/// Who the audit log records for changes made here: `admin:$USER`.
fn actor() -> Actor {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "operator".into());
    Actor::new(format!("admin:{user}"))
}

/// A time in text output: `2024-04-05 07:19:26Z`.
fn short_time(t: &str) -> String {
    match t.get(..19) {
        Some(s) if t.len() > 19 => format!("{}Z", s.replace('T', " ")),
        _ => t.to_owned(),
    }
}

fn time(t: jiff::Timestamp) -> String {
    ledgerport_core::entry::wire_time(t)
}

fn store_err(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Database(db) => anyhow!("database error: {db}"),
        e => anyhow::Error::new(e),
    }
}

/// A refusal of the store about what `flag` named, e.g. `--units: sales unit 1234 belongs to another merchant`.
fn store_err_on(flag: &'static str) -> impl Fn(StoreError) -> anyhow::Error {
    move |e| match e {
        StoreError::Database(_) | StoreError::Corrupt(_) => store_err(e),
        e => anyhow!("{flag}: {e}"),
    }
}

fn parsed<T>(r: Result<T, ParseError>) -> anyhow::Result<T> {
    Ok(r?)
}

fn non_empty(flag: &str, s: &str) -> anyhow::Result<String> {
    let s = s.trim();
    if s.is_empty() {
        Err(anyhow!("{flag}: must not be empty"))
    } else {
        Ok(s.to_owned())
    }
}

fn parse_business(
    scheme_flag: &'static str,
    id_flag: &'static str,
    scheme: &str,
    id: &str,
) -> anyhow::Result<BusinessId> {
    parsed(OrgScheme::parse(scheme_flag, scheme))?;
    parsed(BusinessId::parse(id_flag, scheme, id))
}

async fn find_merchant(store: &dyn Store, flag: &str, org_id: &str) -> anyhow::Result<Merchant> {
    store
        .merchant_by_org(org_id.trim())
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("{flag}: no merchant with organisation number {org_id}"))
}

async fn find_partner(store: &dyn Store, flag: &str, id: RowId) -> anyhow::Result<Partner> {
    store
        .partner(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| anyhow!("{flag}: no partner {id}"))
}

async fn find_ledger(
    store: &dyn Store,
    flag: &'static str,
    id: &str,
) -> anyhow::Result<LedgerView> {
    open_ledger(store, flag, id).await.map(|(_, view)| view)
}

/// The ledger `id` as the operator reads it: the access policy's decision and the ledger.
async fn open_ledger(
    store: &dyn Store,
    flag: &'static str,
    id: &str,
) -> anyhow::Result<(ledgerport_core::access::LedgerAccess, LedgerView)> {
    let id = parsed(LedgerId::parse(flag, id.trim()))?;
    let ledger = store.ledger(&id).await.map_err(store_err)?;
    // The command line on the operator's machine is the operator.
    let operator = ledgerport_core::access::Principal::Operator { user_id: None };
    ledgerport_core::access::open(&operator, ledger).map_err(|_| anyhow!("{flag}: no ledger {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(no_binary_name = true)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    /// Runs one admin command line (words split on spaces) against `store`.
    async fn admin(store: &dyn Store, line: &str) -> anyhow::Result<Output> {
        let cli = Cli::try_parse_from(line.split_whitespace())?;
        let config = Config {
            insecure_plaintext_signing_keys: true,
            ..Config::default()
        };
        execute(store, cli.admin.command, &config).await
    }

    #[test]
    fn tables_align_columns_and_say_none_when_empty() {
        let rows = vec![
            vec!["1".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec!["22".into(), "v".into(), "".into()],
        ];
        assert_eq!(
            table(&["ID", "VALUE", "LAST"], &rows),
            "ID  VALUE       LAST\n1   long value  x\n22  v\n"
        );
        assert_eq!(table(&["ID"], &[]), "(none)\n");
    }

    #[tokio::test]
    async fn the_outbox_lists_waiting_mails_and_retries_them() {
        let store = crate::store::open("sqlite::memory:").await.expect("store");
        let s = store.as_ref();
        let m = s
            .enqueue_mail(ledgerport_store::NewMail {
                recipient: "kari@example.com".into(),
                subject: "Hello".into(),
                body: "Text.\n".into(),
            })
            .await
            .expect("enqueue");
        let gone = s
            .enqueue_mail(ledgerport_store::NewMail {
                recipient: "gone@example.com".into(),
                subject: "Bounced".into(),
                body: "Text.\n".into(),
            })
            .await
            .expect("enqueue");
        let now = jiff::Timestamp::now();
        let claimed = s
            .claim_mails("test", now, now + jiff::SignedDuration::from_mins(10), 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 2);
        s.mark_mail_failed(m.id, "test", "timeout", now)
            .await
            .expect("fail");
        s.give_up_mail(gone.id, "test", "refused for good: 550 no such user", now)
            .await
            .expect("give up");
        let listed = admin(s, "outbox list").await.expect("list");
        assert!(
            listed.text.starts_with("pending:    1\nfailed:     1\n"),
            "{}",
            listed.text
        );
        assert!(listed.text.contains("kari@example.com"), "{}", listed.text);
        let gone_row = listed
            .text
            .lines()
            .find(|l| l.contains("gone@example.com"))
            .expect("the failed mail is listed");
        assert!(
            gone_row.contains(" failed ") && gone_row.contains("550 no such user"),
            "{gone_row}"
        );
        assert_eq!(listed.json["failed"], 1);
        let failed_at: Vec<bool> = listed.json["mails"]
            .as_array()
            .expect("mails")
            .iter()
            .map(|m| m["failedAt"].is_string())
            .collect();
        assert_eq!(
            failed_at.iter().filter(|f| **f).count(),
            1,
            "{}",
            listed.json
        );
        let retried = admin(s, &format!("outbox retry --id {}", m.id))
            .await
            .expect("retry");
        assert_eq!(retried.json["due"], 1);
        let all = admin(s, "outbox retry").await.expect("retry all");
        assert_eq!(all.json["due"], 2, "the failed mail too");
        let after = admin(s, "outbox list").await.expect("list");
        assert_eq!(after.json["failed"], 0, "{}", after.json);
        let unknown = admin(s, "outbox retry --id 999")
            .await
            .err()
            .expect("refused");
        assert!(unknown.to_string().starts_with("--id: "), "{unknown}");
    }

    #[tokio::test]
    async fn requests_are_listed_approved_narrowed_or_declined_for_their_merchant() {
        use ledgerport_core::world::{GrantScope, Topics};
        use ledgerport_store::NewAccessRequest;
        let store = crate::store::open("sqlite::memory:").await.expect("store");
        let s = store.as_ref();
        let err = |r: anyhow::Result<Output>| r.err().expect("an error").to_string();
        for line in [
            "merchant create --scheme business:NO:ORG --org-id 987654321 --name ACME",
            "merchant create --scheme business:NO:ORG --org-id 912345678 --name Other",
            "sales-unit create --msn 123455 --merchant 987654321 --name Oslo --kind api",
            "ledger create --ledger-id 302321 --merchant 987654321 --units 123455 --account-scheme BBAN:NO --account 86011117947",
            "partner create --name Regnskap --kind accounting --email a@b.no",
            "partner approve 1",
        ] {
            admin(s, line).await.expect(line);
        }
        let ask = || NewAccessRequest {
            partner: 1,
            org_id: "987654321".into(),
            units: vec![],
            scope: GrantScope {
                topics: Topics {
                    funds: true,
                    fees: false,
                },
                ..GrantScope::EVERYTHING
            },
            message: "Hei".into(),
        };
        let r1 = s.create_access_request(&actor(), ask()).await.expect("r1");
        let r2 = s.create_access_request(&actor(), ask()).await.expect("r2");

        let listed = admin(s, "request list --pending --merchant 987654321")
            .await
            .expect("list");
        assert_eq!(listed.json.as_array().map(Vec::len), Some(2));
        assert!(listed.text.contains("pending"), "{}", listed.text);
        assert!(
            err(admin(
                s,
                &format!("request approve {} --for-merchant 912345678", r1.id)
            )
            .await)
            .starts_with("--for-merchant: ")
        );
        assert_eq!(
            err(admin(
                s,
                &format!(
                    "request approve {} --for-merchant 987654321 --topics funds,fees",
                    r1.id
                )
            )
            .await),
            "--topics: the partner asked for funds only; an approval cannot add a topic"
        );
        let approved = admin(
            s,
            &format!(
                "request approve {} --for-merchant 987654321 --from 2024-01-01 --no-personal-data",
                r1.id
            ),
        )
        .await
        .expect("approve");
        assert_eq!(approved.json["state"], "approved");
        assert_eq!(approved.json["granted_ledgers"][0], "302321");
        let grants = s.grants(Some(1), None).await.expect("grants");
        assert_eq!(grants.len(), 1);
        assert!(!grants[0].scope.personal_data);
        assert_eq!(grants[0].scope.topics.as_str(), "funds");
        assert_eq!(
            grants[0].scope.from.map(|d| d.to_string()).as_deref(),
            Some("2024-01-01")
        );
        let declined = admin(
            s,
            &format!("request decline {} --for-merchant 987654321", r2.id),
        )
        .await
        .expect("decline");
        assert_eq!(declined.json["state"], "declined");
        assert!(
            err(admin(
                s,
                &format!("request decline {} --for-merchant 987654321", r2.id)
            )
            .await)
            .contains("is declined and cannot become declined")
        );
        assert_eq!(s.grants(Some(1), None).await.expect("grants").len(), 1);
    }

    #[tokio::test]
    async fn a_world_is_built_and_bad_input_names_its_flag() {
        let store = crate::store::open("sqlite::memory:").await.expect("store");
        let s = store.as_ref();
        let err = |r: anyhow::Result<Output>| r.err().expect("an error").to_string();
        admin(
            s,
            "merchant create --scheme business:NO:ORG --org-id 987654321 --name ACME",
        )
        .await
        .expect("merchant");
        assert!(
            err(admin(
                s,
                "merchant create --scheme business:NO:ORG --org-id 987654321 --name Again"
            )
            .await)
            .starts_with("--org-id: ")
        );
        assert!(
            err(admin(
                s,
                "sales-unit create --msn 12 --merchant 987654321 --name X --kind api"
            )
            .await)
            .starts_with("--msn: ")
        );
        assert!(
            err(admin(
                s,
                "sales-unit create --msn 12345 --merchant 111111111 --name X --kind api"
            )
            .await)
            .starts_with("--merchant: ")
        );
        admin(
            s,
            "sales-unit create --msn 123455 --merchant 987654321 --name Oslo --kind api",
        )
        .await
        .expect("api unit");
        admin(s, "sales-unit create --msn 223344 --merchant 987654321 --name Kiosk --kind vm-number --vm-number 57860")
            .await
            .expect("vm unit");
        let l = admin(s, "ledger create --ledger-id 302321 --merchant 987654321 --units 123455 --account-scheme BBAN:NO --account 86011117947")
            .await
            .expect("ledger");
        assert_eq!(l.json["currency"], "NOK");
        assert_eq!(
            l.json["page_size"],
            ledgerport_core::world::DEFAULT_PAGE_SIZE
        );
        assert!(err(admin(s, "ledger create --ledger-id 1 --merchant 987654321 --units 123455 --account-scheme BBAN:NO --account 86011117947").await)
            .starts_with("--units: "));
        assert!(
            err(admin(s, "keys issue --sales-unit 223344").await).starts_with("--sales-unit: ")
        );

        let issued = admin(s, "keys issue --sales-unit 123455")
            .await
            .expect("keys");
        let secret = issued.json["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned();
        assert!(issued.text.contains(&secret) && issued.text.contains("shown only now"));
        let listed = admin(s, "keys list").await.expect("list");
        assert!(!listed.text.contains(&secret) && !listed.json.to_string().contains(&secret));
        assert!(listed.json[0].get("secret_hash").is_none());

        admin(
            s,
            "partner create --name Regnskap --kind accounting --email a@b.no",
        )
        .await
        .expect("partner");
        assert!(
            err(admin(
                s,
                "grant create --partner 1 --ledger 302321 --for-merchant 987654321"
            )
            .await)
            .starts_with("--partner: ")
        );
        admin(s, "partner approve 1").await.expect("approve");
        assert_eq!(
            err(admin(s, "partner approve 1").await),
            "partner 1 is approved and cannot become approved"
        );
        assert!(err(admin(s, "partner reinstate 1").await).contains("not suspended"));
        assert!(
            err(admin(
                s,
                "grant create --partner 1 --ledger 302321 --for-merchant 912345678"
            )
            .await)
            .starts_with("--for-merchant: ")
        );
        // Scope options: each bad one is named; a good one is stored and shown.
        for (line, flag) in [
            ("--topics payouts", "--topics: "),
            ("--from 2024-02-30", "--from: "),
            ("--from 2024-03-01 --to 2024-02-01", "--from: "),
            ("--expires-at tomorrow", "--expires-at: "),
            ("--personal-data --no-personal-data", ""),
        ] {
            let e = err(admin(
                s,
                &format!(
                    "grant create --partner 1 --ledger 302321 --for-merchant 987654321 {line}"
                ),
            )
            .await);
            assert!(e.starts_with(flag), "{line}: {e}");
        }
        let made = admin(
            s,
            "grant create --partner 1 --ledger 302321 --for-merchant 987654321 \
             --expires-at 2030-01-01T00:00:00Z --from 2024-01-01 --topics funds --no-personal-data",
        )
        .await
        .expect("grant");
        assert_eq!(made.json["expires_at"], "2030-01-01T00:00:00.000000Z");
        assert_eq!(made.json["from"], "2024-01-01");
        assert_eq!(made.json["to"], serde_json::Value::Null);
        assert_eq!(made.json["topics"], serde_json::json!(["funds"]));
        assert_eq!(made.json["personal_data"], false);
        // A change of scope changes only the options given.
        let changed = admin(
            s,
            "grant scope --partner 1 --ledger 302321 --for-merchant 987654321 --topics funds,fees --expires-at never",
        )
        .await
        .expect("scope");
        assert_eq!(changed.json["expires_at"], serde_json::Value::Null);
        assert_eq!(changed.json["from"], "2024-01-01");
        assert_eq!(changed.json["topics"], serde_json::json!(["funds", "fees"]));
        assert_eq!(changed.json["personal_data"], false);
        assert!(
            err(admin(
                s,
                "grant scope --partner 2 --ledger 302321 --for-merchant 987654321 --topics fees"
            )
            .await)
            .starts_with("--partner: ")
        );
        let listed = admin(s, "grant list").await.expect("list");
        assert!(
            listed
                .text
                .contains("funds,fees; 2024-01-01 on; personal data no; no expiry"),
            "{}",
            listed.text
        );
        assert_eq!(
            admin(
                s,
                "grant remove --partner 1 --ledger 302321 --for-merchant 987654321"
            )
            .await
            .expect("remove")
            .json["removed"],
            true
        );
        assert_eq!(
            admin(
                s,
                "grant remove --partner 1 --ledger 302321 --for-merchant 987654321"
            )
            .await
            .expect("remove")
            .json["removed"],
            false
        );

        let rotated = admin(s, "signing-key rotate").await.expect("rotate");
        assert_eq!(rotated.json["retired"], serde_json::json!([]));
        let again = admin(s, "signing-key rotate").await.expect("rotate again");
        assert_eq!(
            again.json["retired"],
            serde_json::json!([rotated.json["new_kid"]])
        );
        let audit = admin(s, "audit-log --limit 3").await.expect("audit");
        assert_eq!(audit.json.as_array().map(Vec::len), Some(3));
    }
}
