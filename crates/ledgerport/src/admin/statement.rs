//! `admin statement`: a ledger's bank statement for a period of ledger dates as an ISO 20022
//! camt.053 document, as the merchant downloads it from the portal's Settlements page. The
//! command line is the operator, who reads every ledger through the access policy.

use super::{Output, open_ledger, store_err, store_err_on};
use anyhow::anyhow;
use ledgerport_core::ids::LedgerDate;
use ledgerport_core::statement::{MAX_STATEMENT_DAYS, check_period};
use ledgerport_store::Store;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "\
The statement (ISO 20022 camt.053.001.08, BankToCustomerStatementV08) covers the ledger dates FROM
to TO, at most 366 days: the opening balance (OPBD) at the start of FROM and the closing balance
(CLBD) at the end of TO, each what the merchant is owed (funds plus fees owed), and one entry per
sale, refund, fee, payout and other movement, with its pspReference, booking and value date (the
ledger date), bank transaction code and, for a payout, its bank text and the account it goes to.
Amounts are in units of the ledger's currency (123.45). Without --output the XML goes to standard
output; with --json the summary (and without --output the XML) is printed as JSON.

Example:
  ledgerport admin statement --ledger 100 --from 2024-06-01 --to 2024-06-30 --output june.xml")]
pub struct StatementArgs {
    /// The ledger.
    #[arg(long, value_name = "LEDGER-ID")]
    pub ledger: String,
    /// The first ledger date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// The last ledger date, YYYY-MM-DD (not before --from).
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Write the XML to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub(super) async fn statement(store: &dyn Store, a: StatementArgs) -> anyhow::Result<Output> {
    let from = LedgerDate::parse("--from", a.from.trim())?;
    let to = LedgerDate::parse("--to", a.to.trim())?;
    check_period("--from", from, to, MAX_STATEMENT_DAYS)?;
    let (access, view) = open_ledger(store, "--ledger", &a.ledger).await?;
    let owner = store
        .merchant(view.ledger.owner_merchant_id)
        .await
        .map_err(store_err)?
        .map(|m| m.name)
        .unwrap_or_default();
    let doc = ledgerport_server::statement::camt053(
        store,
        &access,
        &view,
        &owner,
        from,
        to,
        jiff::Timestamp::now(),
    )
    .await
    .map_err(store_err_on("--ledger"))?;
    let s = &doc.statement;
    let currency = s.currency;
    let mut summary = json!({
        "ledgerId": s.ledger_id.as_str(),
        "statementId": s.id(),
        "messageId": s.message_id(),
        "from": s.from.to_string(),
        "to": s.to.to_string(),
        "currency": currency.as_str(),
        "opening": currency.decimal(s.opening),
        "closing": currency.decimal(s.closing),
        "entries": s.lines.len(),
    });
    match a.output {
        Some(path) => {
            std::fs::write(&path, &doc.xml)
                .map_err(|e| anyhow!("--output: writing {}: {e}", path.display()))?;
            summary["file"] = json!(path.display().to_string());
            Ok(Output::new(
                format!(
                    "{}: statement {} of ledger {} for {} to {}: opening {} {cur}, {} entries, closing {} {cur}",
                    path.display(),
                    s.id(),
                    s.ledger_id,
                    s.from,
                    s.to,
                    currency.decimal(s.opening),
                    s.lines.len(),
                    currency.decimal(s.closing),
                    cur = currency.as_str(),
                ),
                summary,
            ))
        }
        None => {
            summary["xml"] = json!(doc.xml);
            Ok(Output::new(doc.xml, summary))
        }
    }
}
