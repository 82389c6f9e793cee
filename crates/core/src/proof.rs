//! Completeness proofs of closed ledger dates: for one (ledger, topic, date) the entry count,
//! the sum of the amounts, the opening and closing balance, a SHA-256 digest of the date's
//! entries in a canonical form, and a chain digest over the previous date's proof, so a change
//! to any earlier date changes every later chain digest.
//!
//! The canonical form is made of what every reader of the Report API receives, personal data
//! withheld or not: the ten non-personal fields of each entry in the order the date page returns
//! them (sequence order), each as a netstring (`<byte length in decimal>:<UTF-8 bytes>,`), so no
//! value can be mistaken for another whatever characters it holds. The date's digest is a hash
//! chain over its entries (form v2): it starts as 32 zero bytes and each entry replaces it with
//! SHA-256 of the digest so far followed by the entry's netstrings. So a digest can be carried
//! forward one entry at a time from a stored [`DateDigestState`]: the store extends it as it
//! books entries and never reads a date's entries back to prove it. API.md has a worked example;
//! the tests below hold it as a known answer computed apart from this code.
//!
//! Pure: the store feeds the entries it writes or reads, a client the entries it downloaded.

use crate::ParseError;
use crate::entry::Entry;
use crate::ids::{LedgerDate, LedgerId, Topic};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The name of this canonical form, the first field of every chain digest's input. A later form
/// would get a new name, so a proof always says how it was made.
pub const FORM: &str = "ledgerport-date-proof-v2";

/// A SHA-256 digest; shown as 64 lowercase hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn hex(&self) -> String {
        self.to_string()
    }

    /// 64 hexadecimal digits (either case).
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::new(field, "must be 64 hexadecimal digits");
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The fields of one entry a proof covers, as the wire carries them (`includeGDPRSensitiveData`
/// adds fields that are not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofEntry<'a> {
    pub psp_reference: &'a str,
    pub time: &'a str,
    pub ledger_date: LedgerDate,
    pub entry_type: &'a str,
    pub reference: &'a str,
    pub currency: &'a str,
    pub amount: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    pub recipient_handle: &'a str,
}

impl<'a> From<&'a Entry> for ProofEntry<'a> {
    fn from(e: &'a Entry) -> Self {
        ProofEntry {
            psp_reference: &e.psp_reference,
            time: &e.time,
            ledger_date: e.ledger_date,
            entry_type: &e.entry_type,
            reference: &e.reference,
            currency: e.currency.as_str(),
            amount: e.amount,
            balance_before: e.balance_before,
            balance_after: e.balance_after,
            recipient_handle: &e.recipient_handle,
        }
    }
}

/// Appends `value` as a netstring: its length in bytes in decimal, `:`, the bytes, `,`.
fn netstring(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value);
    out.push(b',');
}

/// Appends the canonical form of one entry: its ten fields as netstrings, in the order
/// pspReference, time, ledgerDate, entryType, reference, currency, amount, balanceBefore,
/// balanceAfter, recipientHandle; numbers in decimal with a leading `-` when negative.
pub fn encode_entry(out: &mut Vec<u8>, e: &ProofEntry<'_>) {
    netstring(out, e.psp_reference.as_bytes());
    netstring(out, e.time.as_bytes());
    netstring(out, e.ledger_date.to_string().as_bytes());
    netstring(out, e.entry_type.as_bytes());
    netstring(out, e.reference.as_bytes());
    netstring(out, e.currency.as_bytes());
    netstring(out, e.amount.to_string().as_bytes());
    netstring(out, e.balance_before.to_string().as_bytes());
    netstring(out, e.balance_after.to_string().as_bytes());
    netstring(out, e.recipient_handle.as_bytes());
}

/// Where a date's proof starts from: the previous date's closing balance and chain digest, or at
/// the start of a chain the balance before its first date and no digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub balance: i64,
    pub chain_digest: Option<Digest>,
}

impl Previous {
    /// The start of a chain with nothing before it.
    pub const START: Previous = Previous {
        balance: 0,
        chain_digest: None,
    };
}

/// The proof of one closed (ledger, topic, date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateProof {
    pub ledger_id: LedgerId,
    pub topic: Topic,
    pub ledger_date: LedgerDate,
    pub entry_count: u64,
    pub amount_sum: i64,
    /// The first entry's `balanceBefore`; without entries the previous date's closing balance.
    pub opening_balance: i64,
    /// The last entry's `balanceAfter`; without entries the opening balance.
    pub closing_balance: i64,
    /// The hash chain over the date's entries in the canonical form ([`DateDigest`]): 32 zero
    /// bytes for a date without entries.
    pub digest: Digest,
    /// The previous date's chain digest; `None` at the start of the chain.
    pub previous_chain_digest: Option<Digest>,
    /// SHA-256 of [`FORM`] and the fields above as netstrings ([`chain_digest`]).
    pub chain_digest: Digest,
}

impl DateProof {
    /// What the next date's proof starts from.
    pub fn as_previous(&self) -> Previous {
        Previous {
            balance: self.closing_balance,
            chain_digest: Some(self.chain_digest),
        }
    }
}

/// The chain digest of a date: SHA-256 over netstrings of [`FORM`], ledgerId, topic, ledgerDate,
/// entryCount, amountSum, openingBalance, closingBalance, digest (hex), previousChainDigest (hex;
/// empty at the start of a chain).
#[allow(clippy::too_many_arguments)]
pub fn chain_digest(
    ledger_id: &str,
    topic: Topic,
    ledger_date: LedgerDate,
    entry_count: u64,
    amount_sum: i64,
    opening_balance: i64,
    closing_balance: i64,
    digest: &Digest,
    previous: Option<&Digest>,
) -> Digest {
    let mut buf = Vec::with_capacity(256);
    netstring(&mut buf, FORM.as_bytes());
    netstring(&mut buf, ledger_id.as_bytes());
    netstring(&mut buf, topic.as_str().as_bytes());
    netstring(&mut buf, ledger_date.to_string().as_bytes());
    netstring(&mut buf, entry_count.to_string().as_bytes());
    netstring(&mut buf, amount_sum.to_string().as_bytes());
    netstring(&mut buf, opening_balance.to_string().as_bytes());
    netstring(&mut buf, closing_balance.to_string().as_bytes());
    netstring(&mut buf, digest.hex().as_bytes());
    netstring(
        &mut buf,
        previous.map(Digest::hex).unwrap_or_default().as_bytes(),
    );
    Digest(Sha256::digest(&buf).into())
}

/// The sum of a date's amounts does not fit in 64 bits (balances are checked when written, so
/// only entries changed behind the store's back can get here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the amounts of ledger date {0} add up beyond the range of an amount")]
pub struct SumOutOfRange(pub LedgerDate);

/// Where a date's digest starts: 32 zero bytes (also the digest of a date without entries).
pub const START_DIGEST: Digest = Digest([0; 32]);

/// What a date's entries give so far, as a store keeps it between transactions: the hash chain
/// over them ([`DateDigest`]), how many, their sum, the first one's `balanceBefore` and the last
/// one's `balanceAfter` (both `None` without entries). Pure data; [`DateDigest::resume`] goes on
/// from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateDigestState {
    pub digest: Digest,
    pub count: u64,
    pub sum: i128,
    pub first_before: Option<i64>,
    pub last_after: Option<i64>,
}

impl DateDigestState {
    /// A date without entries.
    pub const EMPTY: DateDigestState = DateDigestState {
        digest: START_DIGEST,
        count: 0,
        sum: 0,
        first_before: None,
        last_after: None,
    };
}

impl Default for DateDigestState {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// A date's proof, built one entry at a time (in sequence order) so neither the store nor a
/// client needs the date's entries in memory at once, and resumable from a stored
/// [`DateDigestState`]: the digest is `d_n` where `d_0` is [`START_DIGEST`] and
/// `d_i = SHA-256(d_{i-1} || canonical form of entry i)`.
#[derive(Debug, Clone, Default)]
pub struct DateDigest {
    state: DateDigestState,
    buf: Vec<u8>,
}

impl DateDigest {
    pub fn new() -> Self {
        Self::resume(DateDigestState::EMPTY)
    }

    /// Goes on from what a date's earlier entries gave.
    pub fn resume(state: DateDigestState) -> Self {
        DateDigest {
            state,
            buf: Vec::with_capacity(256),
        }
    }

    /// What the entries added so far give.
    pub fn state(&self) -> DateDigestState {
        self.state
    }

    pub fn add(&mut self, e: &ProofEntry<'_>) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.state.digest.0);
        encode_entry(&mut self.buf, e);
        let s = &mut self.state;
        s.digest = Digest(Sha256::digest(&self.buf).into());
        s.count += 1;
        s.sum += i128::from(e.amount);
        s.first_before.get_or_insert(e.balance_before);
        s.last_after = Some(e.balance_after);
    }

    /// The proof of the date the entries added were of, following `previous`.
    pub fn finish(
        self,
        ledger_id: &LedgerId,
        topic: Topic,
        ledger_date: LedgerDate,
        previous: Previous,
    ) -> Result<DateProof, SumOutOfRange> {
        prove_state(ledger_id, topic, ledger_date, &self.state, previous)
    }
}

/// The proof of a date whose entries give `state`, following `previous`.
pub fn prove_state(
    ledger_id: &LedgerId,
    topic: Topic,
    ledger_date: LedgerDate,
    state: &DateDigestState,
    previous: Previous,
) -> Result<DateProof, SumOutOfRange> {
    let amount_sum = i64::try_from(state.sum).map_err(|_| SumOutOfRange(ledger_date))?;
    let opening_balance = state.first_before.unwrap_or(previous.balance);
    let closing_balance = state.last_after.unwrap_or(opening_balance);
    let chain = chain_digest(
        ledger_id.as_str(),
        topic,
        ledger_date,
        state.count,
        amount_sum,
        opening_balance,
        closing_balance,
        &state.digest,
        previous.chain_digest.as_ref(),
    );
    Ok(DateProof {
        ledger_id: ledger_id.clone(),
        topic,
        ledger_date,
        entry_count: state.count,
        amount_sum,
        opening_balance,
        closing_balance,
        digest: state.digest,
        previous_chain_digest: previous.chain_digest,
        chain_digest: chain,
    })
}

/// Proves one date from its entries in sequence order.
pub fn prove_date<'a>(
    ledger_id: &LedgerId,
    topic: Topic,
    ledger_date: LedgerDate,
    entries: impl IntoIterator<Item = ProofEntry<'a>>,
    previous: Previous,
) -> Result<DateProof, SumOutOfRange> {
    let mut d = DateDigest::new();
    for e in entries {
        d.add(&e);
    }
    d.finish(ledger_id, topic, ledger_date, previous)
}

/// One way a proof and the entries (or two neighbouring proofs) disagree: the field, what the
/// proof says and what the entries give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The wire name of the proof's field (`entryCount`, `digest`, ...).
    pub field: &'static str,
    pub proof: String,
    pub found: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the proof says {}, the entries give {}",
            self.field, self.proof, self.found
        )
    }
}

/// Checks a stored or downloaded proof against its date's entries (in sequence order): every
/// field recomputed, the chain digest from the proof's own previous digest (the link to the
/// previous date is [`check_link`]'s). Mismatches come in the proof's field order.
pub fn check_date<'a>(
    proof: &DateProof,
    entries: impl IntoIterator<Item = ProofEntry<'a>>,
) -> Vec<Mismatch> {
    let previous = Previous {
        balance: proof.opening_balance,
        chain_digest: proof.previous_chain_digest,
    };
    let found = match prove_date(
        &proof.ledger_id,
        proof.topic,
        proof.ledger_date,
        entries,
        previous,
    ) {
        Ok(p) => p,
        Err(e) => {
            return vec![Mismatch {
                field: "amountSum",
                proof: proof.amount_sum.to_string(),
                found: e.to_string(),
            }];
        }
    };
    let mut out = Vec::new();
    let mut cmp = |field, proof: String, found: String| {
        if proof != found {
            out.push(Mismatch {
                field,
                proof,
                found,
            });
        }
    };
    cmp(
        "entryCount",
        proof.entry_count.to_string(),
        found.entry_count.to_string(),
    );
    cmp(
        "amountSum",
        proof.amount_sum.to_string(),
        found.amount_sum.to_string(),
    );
    cmp(
        "openingBalance",
        proof.opening_balance.to_string(),
        found.opening_balance.to_string(),
    );
    cmp(
        "closingBalance",
        proof.closing_balance.to_string(),
        found.closing_balance.to_string(),
    );
    cmp("digest", proof.digest.hex(), found.digest.hex());
    cmp(
        "chainDigest",
        proof.chain_digest.hex(),
        found.chain_digest.hex(),
    );
    out
}

/// Checks that `next` follows `previous` (the proof of the date before, same ledger and topic):
/// it names `previous`'s chain digest and opens with its closing balance.
pub fn check_link(previous: &DateProof, next: &DateProof) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let named = next
        .previous_chain_digest
        .map(|d| d.hex())
        .unwrap_or_else(|| "none".into());
    if next.previous_chain_digest != Some(previous.chain_digest) {
        out.push(Mismatch {
            field: "previousChainDigest",
            proof: named,
            found: format!(
                "{} (the chain digest of {})",
                previous.chain_digest, previous.ledger_date
            ),
        });
    }
    if next.opening_balance != previous.closing_balance {
        out.push(Mismatch {
            field: "openingBalance",
            proof: next.opening_balance.to_string(),
            found: format!(
                "{} (the closing balance of {})",
                previous.closing_balance, previous.ledger_date
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> LedgerDate {
        LedgerDate::parse("d", s).expect("date")
    }

    fn lid(s: &str) -> LedgerId {
        LedgerId::parse("l", s).expect("ledger")
    }

    /// The worked example of API.md: a capture and its payout on 2022-10-01.
    fn example() -> [ProofEntry<'static>; 2] {
        [
            ProofEntry {
                psp_reference: "3343121302",
                time: "2022-10-01T14:33:00.824993Z",
                ledger_date: d("2022-10-01"),
                entry_type: "capture",
                reference: "purchase-12",
                currency: "NOK",
                amount: 10000,
                balance_before: 0,
                balance_after: 10000,
                recipient_handle: "NO:57860",
            },
            ProofEntry {
                psp_reference: "302321-2000001",
                time: "2022-10-01T21:59:59.999999Z",
                ledger_date: d("2022-10-01"),
                entry_type: "payout-scheduled",
                reference: "Utb. 2000001 Vippsnr 57860",
                currency: "NOK",
                amount: -10000,
                balance_before: 10000,
                balance_after: 0,
                recipient_handle: "",
            },
        ]
    }

    #[test]
    fn an_entry_is_ten_netstrings_in_wire_order() {
        let mut out = Vec::new();
        encode_entry(&mut out, &example()[0]);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "10:3343121302,27:2022-10-01T14:33:00.824993Z,10:2022-10-01,7:capture,\
             11:purchase-12,3:NOK,5:10000,1:0,5:10000,8:NO:57860,"
        );
    }

    #[test]
    fn lengths_count_bytes_not_characters() {
        let mut e = example()[1];
        e.reference = "Kåre";
        let mut out = Vec::new();
        encode_entry(&mut out, &e);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains(",5:Kåre,"), "{text}");
        assert!(text.contains(",6:-10000,"), "{text}");
        assert!(text.ends_with(",0:,"), "{text}");
    }

    /// Known answers computed apart from this code, with Python's hashlib (the commands are in
    /// API.md, "Completeness proofs"):
    ///
    /// ```text
    /// e1 = b"10:3343121302,27:2022-10-01T14:33:00.824993Z,10:2022-10-01,7:capture,11:purchase-12,3:NOK,5:10000,1:0,5:10000,8:NO:57860,"
    /// e2 = b"14:302321-2000001,27:2022-10-01T21:59:59.999999Z,10:2022-10-01,16:payout-scheduled,26:Utb. 2000001 Vippsnr 57860,3:NOK,6:-10000,5:10000,1:0,0:,"
    /// d1 = hashlib.sha256(bytes(32) + e1).digest()
    /// digest = hashlib.sha256(d1 + e2).hexdigest()
    /// chain  = hashlib.sha256(b"24:ledgerport-date-proof-v2,6:302321,5:funds,10:2022-10-01,1:2,1:0,1:0,1:0,64:" + digest.encode() + b",0:,").hexdigest()
    /// ```
    #[test]
    fn the_worked_example_has_the_known_digests() {
        let p = prove_date(
            &lid("302321"),
            Topic::Funds,
            d("2022-10-01"),
            example(),
            Previous::START,
        )
        .expect("proof");
        assert_eq!((p.entry_count, p.amount_sum), (2, 0));
        assert_eq!((p.opening_balance, p.closing_balance), (0, 0));
        assert_eq!(
            p.digest.hex(),
            "22a1241a73889a54c272d90a3535ad225689d259e198f92149404344228d7d9a"
        );
        assert_eq!(
            p.chain_digest.hex(),
            "57c50c6dccabfee540071a75bcdb2fefd060afb473670a5f51eef791ab80d833"
        );
        assert_eq!(p.previous_chain_digest, None);
    }

    #[test]
    fn the_first_link_of_the_worked_example_has_the_known_digest() {
        // d1 = hashlib.sha256(bytes(32) + e1).hexdigest(), e1 as above.
        let mut d = DateDigest::new();
        d.add(&example()[0]);
        assert_eq!(
            d.state().digest.hex(),
            "f71c41347fc63a534da713bf9dcbf3917fa74735955842f5c495f1d9440e2b38"
        );
    }

    #[test]
    fn a_digest_resumed_from_a_state_equals_one_made_in_one_go() {
        let one_go = prove_date(
            &lid("302321"),
            Topic::Funds,
            d("2022-10-01"),
            example(),
            Previous::START,
        )
        .expect("one go");
        let mut first = DateDigest::new();
        first.add(&example()[0]);
        let stored = first.state();
        assert_eq!(
            (
                stored.count,
                stored.sum,
                stored.first_before,
                stored.last_after
            ),
            (1, 10000, Some(0), Some(10000))
        );
        let mut resumed = DateDigest::resume(stored);
        resumed.add(&example()[1]);
        let state = resumed.state();
        assert_eq!((state.count, state.sum, state.last_after), (2, 0, Some(0)));
        let proof = resumed
            .finish(
                &lid("302321"),
                Topic::Funds,
                d("2022-10-01"),
                Previous::START,
            )
            .expect("resumed");
        assert_eq!(proof, one_go);
        assert_eq!(DateDigest::new().state(), DateDigestState::EMPTY);
    }

    #[test]
    fn entries_in_another_order_give_another_digest() {
        let [a, b] = example();
        let p = |entries: [ProofEntry<'static>; 2]| {
            prove_date(
                &lid("1"),
                Topic::Funds,
                d("2022-10-01"),
                entries,
                Previous::START,
            )
            .expect("proof")
            .digest
        };
        assert_ne!(p([a, b]), p([b, a]));
    }

    #[test]
    fn an_empty_date_digests_nothing_and_carries_the_balance() {
        let p = prove_date(
            &lid("302321"),
            Topic::Fees,
            d("2022-10-02"),
            [],
            Previous {
                balance: -700,
                chain_digest: Some(Digest([7; 32])),
            },
        )
        .expect("proof");
        assert_eq!((p.entry_count, p.amount_sum), (0, 0));
        assert_eq!((p.opening_balance, p.closing_balance), (-700, -700));
        // The hash chain's start: 32 zero bytes.
        assert_eq!(p.digest.hex(), "0".repeat(64));
        assert_eq!(p.previous_chain_digest, Some(Digest([7; 32])));
    }

    #[test]
    fn changing_any_field_of_any_entry_changes_the_digest_and_check_names_it() {
        let id = lid("302321");
        let proof = prove_date(
            &id,
            Topic::Funds,
            d("2022-10-01"),
            example(),
            Previous::START,
        )
        .expect("proof");
        assert!(check_date(&proof, example()).is_empty());
        let mut altered = example();
        altered[0].reference = "purchase-13";
        let found = check_date(&proof, altered);
        assert_eq!(
            found.iter().map(|m| m.field).collect::<Vec<_>>(),
            ["digest", "chainDigest"]
        );
        let mut altered = example();
        altered[0].amount = 10001;
        altered[0].balance_after = 10001;
        let fields: Vec<_> = check_date(&proof, altered)
            .iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, ["amountSum", "digest", "chainDigest"]);
        let fewer = check_date(&proof, example().into_iter().take(1));
        assert_eq!(fewer[0].field, "entryCount");
        assert_eq!(
            fewer[0].to_string(),
            "entryCount: the proof says 2, the entries give 1"
        );
    }

    #[test]
    fn a_field_moved_between_neighbours_changes_the_digest() {
        // Netstrings keep "ab" + "c" apart from "a" + "bc".
        let mut one = example()[0];
        let mut two = one;
        one.psp_reference = "ab";
        one.time = "c";
        two.psp_reference = "a";
        two.time = "bc";
        let p1 = prove_date(
            &lid("1"),
            Topic::Funds,
            d("2022-10-01"),
            [one],
            Previous::START,
        );
        let p2 = prove_date(
            &lid("1"),
            Topic::Funds,
            d("2022-10-01"),
            [two],
            Previous::START,
        );
        assert_ne!(p1.expect("p1").digest, p2.expect("p2").digest);
    }

    #[test]
    fn each_chain_digest_depends_on_all_before_it() {
        let id = lid("302321");
        let first = prove_date(
            &id,
            Topic::Funds,
            d("2022-10-01"),
            example(),
            Previous::START,
        )
        .expect("first");
        let second = prove_date(&id, Topic::Funds, d("2022-10-02"), [], first.as_previous())
            .expect("second");
        assert!(check_link(&first, &second).is_empty());
        let mut changed = example();
        changed[1].time = "2022-10-01T21:59:59.999998Z";
        let first_changed =
            prove_date(&id, Topic::Funds, d("2022-10-01"), changed, Previous::START)
                .expect("changed");
        let second_changed = prove_date(
            &id,
            Topic::Funds,
            d("2022-10-02"),
            [],
            first_changed.as_previous(),
        )
        .expect("second");
        assert_ne!(second.chain_digest, second_changed.chain_digest);
        let broken = check_link(&first_changed, &second);
        assert_eq!(broken[0].field, "previousChainDigest");
    }

    #[test]
    fn a_link_names_a_balance_that_does_not_carry_over() {
        let id = lid("1");
        let first =
            prove_date(&id, Topic::Fees, d("2022-10-01"), [], Previous::START).expect("first");
        let second = prove_date(
            &id,
            Topic::Fees,
            d("2022-10-02"),
            [],
            Previous {
                balance: 5,
                chain_digest: Some(first.chain_digest),
            },
        )
        .expect("second");
        let found = check_link(&first, &second);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "openingBalance");
    }

    #[test]
    fn digests_parse_from_hex_and_refuse_anything_else() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::parse("digest", hex).expect("hex").hex(), hex);
        assert_eq!(
            Digest::parse("digest", &hex.to_uppercase())
                .expect("upper")
                .hex(),
            hex
        );
        assert!(Digest::parse("digest", &hex[1..]).is_err());
        assert_eq!(
            Digest::parse("digest", &format!("{}g", &hex[1..]))
                .expect_err("g")
                .field,
            "digest"
        );
    }
}
