//! `ledgerport verify`: reads every ledger's two topics and checks the invariants of
//! [`ledgerport_core::verify`], printing one line per violation and a summary. Exits non-zero when
//! anything is wrong, so it can gate a deployment or a backup.

use anyhow::anyhow;
use ledgerport_core::access::{self, LedgerAccess, Principal};
use ledgerport_core::entry::Entry;
use ledgerport_core::ids::{LedgerId, Topic};
use ledgerport_core::verify::{Violation, check_date_states, check_ledger, check_proofs};
use ledgerport_store::{LedgerView, Store, StoreError};
use serde_json::json;
use std::io::Write;

/// Entries read per query.
const PAGE: u32 = 10_000;

#[derive(clap::Args)]
#[command(after_help = "\
Rules (each violation names one):
  chain                 seq runs 1, 2, 3... on each topic; balanceBefore is the previous balanceAfter
                        (0 for the first entry); balanceAfter = balanceBefore + amount
  date-order            along each topic the ledgerDate never goes back: feed order is date order
  amount-sign           each entry type has the sign of its effect on the account (API.md);
                        correction and credit-note are not zero
  closed-date           no entry on a date that a closing entry (fees-retained, payout-scheduled,
                        fees-invoiced) already closed comes after that closing entry
  payout-last           payout-scheduled is the last funds entry of its date and leaves a balance of 0
  fees-retained-mirror  every fees-retained of -X on funds has one of +X on fees (same pspReference
                        and ledgerDate), and the other way round
  capture-fee           every capture with a fee under the ledger's fee plan has one capture-fee of
                        minus that fee (same pspReference and reference), and every capture-fee has
                        its capture
  refund-limit          the refunds of a pspReference never add up to more than its captures
  proof                 every date the engine closed (from the ledger's first date) has a
                        completeness proof per topic that its entries still give: entryCount,
                        amountSum, openingBalance, closingBalance, digest, chainDigest, chained to
                        the date before (the detail names the ledgerDate)

Exit status: 0 when every ledger is clean, 1 when a rule is broken or the database cannot be read.")]
pub struct VerifyArgs {
    /// Check only this ledger.
    #[arg(long, value_name = "LEDGER-ID")]
    pub ledger: Option<String>,
    /// Print one JSON document (ledgers, entries, violations) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a run found.
#[derive(Debug, Default)]
struct Summary {
    ledgers: usize,
    entries: usize,
    violations: Vec<Violation>,
}

pub async fn run(store: &dyn Store, args: VerifyArgs) -> anyhow::Result<()> {
    let ids = match &args.ledger {
        Some(id) => vec![LedgerId::parse("--ledger", id)?],
        None => store
            .ledgers()
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|v| v.ledger.ledger_id)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    let mut summary = Summary::default();
    // The command line on the operator's machine reads as the operator, through the policy.
    let operator = Principal::Operator { user_id: None };
    for id in &ids {
        let ledger = store.ledger(id).await.map_err(store_err)?;
        let (access, view) =
            access::open(&operator, ledger).map_err(|_| anyhow!("--ledger: no ledger {id}"))?;
        let found = verify_ledger(store, &access, &view, &mut summary).await?;
        if !args.json {
            for v in &found {
                line(&mut out, &v.to_string())?;
            }
        }
        summary.violations.extend(found);
    }
    if args.json {
        let report = json!({
            "ledgers": summary.ledgers,
            "entries": summary.entries,
            "violations": summary.violations.iter().map(|v| json!({
                "ledgerId": v.ledger_id,
                "topic": v.topic.map(Topic::as_str),
                "seq": v.seq,
                "rule": v.rule,
                "detail": v.detail,
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&report)?;
        line(&mut out, &text)?;
    } else {
        line(&mut out, &summary_line(&summary))?;
    }
    match summary.violations.len() {
        0 => Ok(()),
        1 => Err(anyhow!("1 violation found")),
        n => Err(anyhow!("{n} violations found")),
    }
}

/// Reads one ledger's topics and checks them; counts what it read into `summary`.
async fn verify_ledger(
    store: &dyn Store,
    access: &LedgerAccess,
    view: &LedgerView,
    summary: &mut Summary,
) -> anyhow::Result<Vec<Violation>> {
    let id = &view.ledger.ledger_id;
    let funds = whole_topic(store, access, Topic::Funds)
        .await
        .map_err(|e| anyhow!("reading ledger {id} funds: {}", store_err(e)))?;
    let fees = whole_topic(store, access, Topic::Fees)
        .await
        .map_err(|e| anyhow!("reading ledger {id} fees: {}", store_err(e)))?;
    let refunds = store
        .refunded_captures(access)
        .await
        .map_err(|e| anyhow!("reading ledger {id} refunds: {}", store_err(e)))?;
    let mut found = check_ledger(&view.ledger, &funds, &fees, &refunds);
    for (topic, entries) in [(Topic::Funds, &funds), (Topic::Fees, &fees)] {
        let proofs = store
            .date_proofs(access, topic)
            .await
            .map_err(|e| anyhow!("reading ledger {id} {topic} proofs: {}", store_err(e)))?;
        found.extend(check_proofs(&view.ledger, topic, entries, &proofs));
        let states = store.date_digest_states(access, topic).await.map_err(|e| {
            anyhow!(
                "reading ledger {id} {topic} digest states: {}",
                store_err(e)
            )
        })?;
        found.extend(check_date_states(&view.ledger, topic, entries, &states));
    }
    summary.ledgers += 1;
    summary.entries += funds.len() + fees.len();
    Ok(found)
}

/// Every entry of one topic in feed order, read in pages of [`PAGE`].
async fn whole_topic(
    store: &dyn Store,
    access: &LedgerAccess,
    topic: Topic,
) -> Result<Vec<Entry>, StoreError> {
    let mut all: Vec<Entry> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e.seq);
        let page = store.feed_page(access, topic, after, PAGE).await?;
        let last = page.len() < PAGE as usize;
        all.extend(page);
        if last {
            return Ok(all);
        }
    }
}

fn summary_line(s: &Summary) -> String {
    format!(
        "{}, {} checked, {}",
        count(s.ledgers, "ledger", "ledgers"),
        count(s.entries, "entry", "entries"),
        count(s.violations.len(), "violation", "violations")
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn line(out: &mut impl Write, text: &str) -> anyhow::Result<()> {
    match writeln!(out, "{text}") {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("writing the output: {e}"))
        }
        _ => Ok(()),
    }
}

fn store_err(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Database(db) => anyhow!("database error: {db}"),
        e => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_in_words() {
        let one = Summary {
            ledgers: 1,
            entries: 1,
            violations: vec![],
        };
        let many = Summary {
            ledgers: 3,
            entries: 20,
            violations: vec![],
        };

        assert_eq!(
            summary_line(&one),
            "1 ledger, 1 entry checked, 0 violations"
        );
        assert_eq!(
            summary_line(&many),
            "3 ledgers, 20 entries checked, 0 violations"
        );
    }
}
