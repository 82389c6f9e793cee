//! A [`Statement`] as an ISO 20022 camt.053 document (`BankToCustomerStatementV08`, namespace
//! `urn:iso:std:iso:20022:tech:xsd:camt.053.001.08`), the bank statement accounting systems
//! import.
//!
//! Written by hand: the document is one fixed shape, and every text goes through [`Xml::text`],
//! which escapes the five XML specials, replaces characters XML 1.0 cannot carry and cuts the
//! text to the schema's length limit (counted in characters, as the schema counts them).
//! References that must be whole (a `pspReference` longer than the 35 characters of
//! `AcctSvcrRef`) are left out of the limited elements rather than cut, and always travel whole
//! in the line's free text.
//!
//! The document: the group header (message id, creation time), one statement (`Stmt`: id,
//! creation time, period, the ledger as the account with its currency, name and owner, the
//! payout account as the related account), the opening (`OPBD`) and closing (`CLBD`) balance,
//! the totals of credit and debit lines, and one entry (`Ntry`) per line: entry reference
//! (`funds-12`), amount and currency, credit or debit, status booked, booking and value date
//! (the ledger date), the `pspReference` as the servicer's reference, the bank transaction code
//! (ISO domain, family, sub-family and the proprietary `topic:entryType`), and its details: the
//! references, a payout's destination account, the order reference or the payout's bank text
//! as remittance information, and the line in words.

use crate::ParseError;
use crate::entry::wire_time;
use crate::ids::BankAccount;
use crate::statement::{Line, Statement};
use std::fmt::Write as _;

pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

/// The issuer named with the proprietary codes and the ledger's account id.
const ISSUER: &str = "Ledgerport";

/// The XML of `s`. Fails (naming `amount`) only for an amount beyond the 18 digits the schema
/// allows, which no ledger's balances reach.
pub fn document(s: &Statement) -> Result<String, ParseError> {
    let mut x = Xml::default();
    x.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(x.out, "<Document xmlns=\"{NAMESPACE}\">");
    x.open("BkToCstmrStmt");
    x.open("GrpHdr");
    x.text("MsgId", &s.message_id(), 35);
    x.raw("CreDtTm", &wire_time(s.created));
    x.close("GrpHdr");
    x.open("Stmt");
    x.text("Id", &s.id(), 35);
    x.raw("CreDtTm", &wire_time(s.created));
    x.open("FrToDt");
    x.raw("FrDtTm", &wire_time(s.from_time));
    x.raw("ToDtTm", &wire_time(s.to_time));
    x.close("FrToDt");
    x.open("Acct");
    x.open("Id");
    x.open("Othr");
    x.text("Id", s.ledger_id.as_str(), 34);
    x.open("SchmeNm");
    x.text("Prtry", "LedgerId", 35);
    x.close("SchmeNm");
    x.text("Issr", ISSUER, 35);
    x.close("Othr");
    x.close("Id");
    x.raw("Ccy", s.currency.as_str());
    x.text("Nm", &s.account_name, 70);
    if !s.owner_name.trim().is_empty() {
        x.open("Ownr");
        x.text("Nm", &s.owner_name, 140);
        x.close("Ownr");
    }
    x.close("Acct");
    x.open("RltdAcct");
    account_id(&mut x, &s.payout_account);
    x.raw("Ccy", s.currency.as_str());
    x.close("RltdAcct");
    balance(&mut x, s, "OPBD", s.opening, s.from)?;
    balance(&mut x, s, "CLBD", s.closing, s.to)?;
    let ((credits, credit_sum), (debits, debit_sum)) = s.totals();
    let net = credit_sum - debit_sum;
    x.open("TxsSummry");
    x.open("TtlNtries");
    x.raw("NbOfNtries", &s.lines.len().to_string());
    x.raw("Sum", &amount(s, credit_sum + debit_sum)?);
    x.open("TtlNetNtry");
    x.raw("Amt", &amount(s, net.abs())?);
    x.raw("CdtDbtInd", direction(net));
    x.close("TtlNetNtry");
    x.close("TtlNtries");
    x.open("TtlCdtNtries");
    x.raw("NbOfNtries", &credits.to_string());
    x.raw("Sum", &amount(s, credit_sum)?);
    x.close("TtlCdtNtries");
    x.open("TtlDbtNtries");
    x.raw("NbOfNtries", &debits.to_string());
    x.raw("Sum", &amount(s, debit_sum)?);
    x.close("TtlDbtNtries");
    x.close("TxsSummry");
    for l in &s.lines {
        entry(&mut x, s, l)?;
    }
    x.close("Stmt");
    x.close("BkToCstmrStmt");
    x.out.push_str("</Document>\n");
    Ok(x.out)
}

fn direction(amount: i128) -> &'static str {
    if amount < 0 { "DBIT" } else { "CRDT" }
}

/// A non-negative amount in units of the statement's currency; the schema allows 18 digits.
fn amount(s: &Statement, minor: i128) -> Result<String, ParseError> {
    if minor.unsigned_abs() >= 10u128.pow(18) {
        return Err(ParseError::new(
            "amount",
            format!("{minor} minor units is more than camt.053's 18 digits"),
        ));
    }
    Ok(s.currency.decimal(minor))
}

fn balance(
    x: &mut Xml,
    s: &Statement,
    code: &str,
    minor: i128,
    date: crate::ids::LedgerDate,
) -> Result<(), ParseError> {
    x.open("Bal");
    x.open("Tp");
    x.open("CdOrPrtry");
    x.raw("Cd", code);
    x.close("CdOrPrtry");
    x.close("Tp");
    x.amount("Amt", s.currency.as_str(), &amount(s, minor.abs())?);
    x.raw("CdtDbtInd", direction(minor));
    x.open("Dt");
    x.raw("Dt", &date.to_string());
    x.close("Dt");
    x.close("Bal");
    Ok(())
}

/// An account's `Id`: an IBAN as the schema's IBAN when it has the IBAN's shape, otherwise (and
/// for national account numbers) the number with its scheme, as the ledger holds it.
fn account_id(x: &mut Xml, a: &BankAccount) {
    x.open("Id");
    if a.scheme == "IBAN" && is_iban_shaped(&a.id) {
        x.raw("IBAN", &a.id);
    } else {
        x.open("Othr");
        x.text("Id", &a.id, 34);
        x.open("SchmeNm");
        x.text("Prtry", &a.scheme, 35);
        x.close("SchmeNm");
        x.close("Othr");
    }
    x.close("Id");
}

/// The schema's IBAN pattern: `[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}`.
fn is_iban_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    (5..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric)
}

fn entry(x: &mut Xml, s: &Statement, l: &Line) -> Result<(), ParseError> {
    let ccy = s.currency.as_str();
    let value = amount(s, i128::from(l.amount).abs())?;
    let dir = direction(i128::from(l.amount));
    let psp = fits(&l.psp_reference, 35);
    x.open("Ntry");
    x.text("NtryRef", &l.entry_ref(), 35);
    x.amount("Amt", ccy, &value);
    x.raw("CdtDbtInd", dir);
    x.open("Sts");
    x.raw("Cd", "BOOK");
    x.close("Sts");
    for date in ["BookgDt", "ValDt"] {
        x.open(date);
        x.raw("Dt", &l.date.to_string());
        x.close(date);
    }
    if let Some(psp) = psp {
        x.text("AcctSvcrRef", psp, 35);
    }
    x.open("BkTxCd");
    x.open("Domn");
    x.raw("Cd", l.code.domain);
    x.open("Fmly");
    x.raw("Cd", l.code.family);
    x.raw("SubFmlyCd", l.code.sub_family);
    x.close("Fmly");
    x.close("Domn");
    x.open("Prtry");
    x.text("Cd", &l.proprietary_code(), 35);
    x.text("Issr", ISSUER, 35);
    x.close("Prtry");
    x.close("BkTxCd");
    x.open("NtryDtls");
    x.open("TxDtls");
    let end_to_end = fits(&l.reference, 35);
    if psp.is_some() || end_to_end.is_some() {
        x.open("Refs");
        if let Some(psp) = psp {
            x.text("AcctSvcrRef", psp, 35);
        }
        if let Some(r) = end_to_end {
            x.text("EndToEndId", r, 35);
        }
        x.close("Refs");
    }
    x.amount("Amt", ccy, &value);
    x.raw("CdtDbtInd", dir);
    if let Some(to) = &l.payout_to {
        x.open("RltdPties");
        x.open("CdtrAcct");
        account_id(x, to);
        x.raw("Ccy", ccy);
        x.close("CdtrAcct");
        x.close("RltdPties");
    }
    if !l.reference.trim().is_empty() {
        x.open("RmtInf");
        x.text("Ustrd", &l.reference, 140);
        x.close("RmtInf");
    }
    x.close("TxDtls");
    x.close("NtryDtls");
    x.text("AddtlNtryInf", &l.description(), 500);
    x.close("Ntry");
    Ok(())
}

/// `s` when it is not blank and fits `max` characters: for references, which are never cut.
fn fits(s: &str, max: usize) -> Option<&str> {
    (!s.trim().is_empty() && s.chars().count() <= max).then_some(s)
}

/// The document as it is written.
#[derive(Default)]
struct Xml {
    out: String,
}

impl Xml {
    fn open(&mut self, name: &str) {
        let _ = write!(self.out, "<{name}>");
    }

    fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
    }

    /// An element holding a value made here (codes, numbers, dates): nothing to escape.
    fn raw(&mut self, name: &str, value: &str) {
        let _ = write!(self.out, "<{name}>{value}</{name}>");
    }

    fn amount(&mut self, name: &str, currency: &str, value: &str) {
        let _ = write!(self.out, "<{name} Ccy=\"{currency}\">{value}</{name}>");
    }

    /// An element holding text from outside: at most `max` characters, escaped. The schema's
    /// texts have at least one character, so a blank text is written as `-`.
    fn text(&mut self, name: &str, value: &str, max: usize) {
        let _ = write!(self.out, "<{name}>");
        let mut n = 0;
        for c in value.chars() {
            if n == max {
                break;
            }
            n += 1;
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&apos;"),
                // Carriage returns would be read back as line feeds; written as a reference
                // they survive.
                '\r' => self.out.push_str("&#13;"),
                c if allowed_in_xml(c) => self.out.push(c),
                _ => self.out.push('\u{FFFD}'),
            }
        }
        if n == 0 {
            self.out.push('-');
        }
        let _ = write!(self.out, "</{name}>");
    }
}

/// XML 1.0's `Char`: tab, line feed, carriage return and everything from space up, except
/// U+FFFE and U+FFFF (surrogates cannot occur in a `char`).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_escaped_cut_to_their_limit_and_never_empty() {
        let mut x = Xml::default();
        x.text("T", "a&b<c>\"d'e\u{1}\r", 100);
        assert_eq!(x.out, "<T>a&amp;b&lt;c&gt;&quot;d&apos;e\u{FFFD}&#13;</T>");
        let mut x = Xml::default();
        x.text("T", "æøå&", 3);
        assert_eq!(x.out, "<T>æøå</T>");
        let mut x = Xml::default();
        x.text("T", "", 3);
        assert_eq!(x.out, "<T>-</T>");
    }

    #[test]
    fn only_iban_shaped_numbers_are_written_as_ibans() {
        assert!(is_iban_shaped("NO9386011117947"));
        assert!(!is_iban_shaped("no9386011117947"));
        assert!(!is_iban_shaped("12345678903"));
        assert_eq!(fits("abc", 3), Some("abc"));
        assert_eq!(fits("abcd", 3), None);
        assert_eq!(fits("  ", 3), None);
    }
}
