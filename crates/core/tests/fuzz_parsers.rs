//! Property-based fuzzing of the identifier parsers that read hostile input (path segments,
//! query parameters, headers, ingested events): no input makes them panic, and every accepted
//! value prints back as exactly the text it was parsed from.
//!
//! Cases per property: `PROPTEST_CASES` (default 256). A longer run:
//! `PROPTEST_CASES=100000 cargo test --release --workspace --test fuzz_parsers`.

use ledgerport_core::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, RecipientHandle, Topic,
};
use ledgerport_core::world::parse_cutoff;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    // `default()` reads PROPTEST_CASES. Failures are not written to files: a failure found
    // becomes a named regression test below.
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that is sometimes close to valid: digits, separators, letters of the schemes, and
/// multi-byte characters (to catch slicing at a byte that is not a char boundary).
fn near_text(max: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        8 => proptest::char::range('0', '9'),
        2 => Just('-'),
        2 => Just(':'),
        1 => Just('+'),
        1 => Just(' '),
        1 => prop::sample::select(vec!['a', 'p', 'i', 'N', 'O', 'D', 'K', 'F', 'I']),
        2 => prop::sample::select(vec!['é', '€', '２', '\u{10348}', '\u{0}', '\u{7f}']),
        1 => any::<char>(),
    ];
    prop::collection::vec(ch, 0..=max).prop_map(|v| v.into_iter().collect())
}

/// Any text, near-valid text, or valid text with a twist.
fn hostile(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => near_text(max),
        1 => any::<String>(),
        1 => "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ledger_dates(s in prop_oneof![
        2 => hostile(12),
        2 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "[0-9+-]{10}",
    ]) {
        if let Ok(d) = LedgerDate::parse("ledgerDate", &s) {
            prop_assert_eq!(d.to_string(), s);
            prop_assert_eq!(LedgerDate::from_days(d.to_days()), Some(d));
        }
    }

    #[test]
    fn ledger_days_never_panic(days in any::<i32>()) {
        if let Some(d) = LedgerDate::from_days(days) {
            prop_assert_eq!(d.to_days(), days);
        }
    }

    #[test]
    fn merchant_serial_numbers(s in prop_oneof![2 => hostile(9), 2 => "[0-9]{4,8}"]) {
        if let Ok(m) = Msn::parse("msn", &s) {
            prop_assert_eq!(m.to_string(), s.clone());
            prop_assert_eq!(Msn::parse("msn", &m.to_string()).ok(), Some(m));
        }
    }

    #[test]
    fn recipient_handles(s in prop_oneof![
        2 => hostile(16),
        2 => "(api|NO|DK|FI|SE|no|Api):[0-9]{0,12}",
        1 => "(api|NO):[0-9é]{0,8}",
    ]) {
        if let Ok(h) = RecipientHandle::parse("recipientHandle", &s) {
            prop_assert_eq!(h.to_string(), s);
        }
    }

    #[test]
    fn ledger_ids(s in prop_oneof![2 => hostile(24), 2 => "[0-9]{0,22}"]) {
        if let Ok(id) = LedgerId::parse("ledgerId", &s) {
            prop_assert_eq!(id.to_string(), s.clone());
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }

    #[test]
    fn business_ids(
        scheme in prop_oneof![
            3 => prop::sample::select(vec![
                "business:NO:ORG".to_owned(),
                "business:DK:CVR".to_owned(),
                "business:FI:Y-tunnus".to_owned(),
            ]),
            1 => hostile(24),
        ],
        id in prop_oneof![
            2 => hostile(11),
            2 => "[0-9]{7,9}",
            1 => "[0-9]{7}-[0-9]",
            1 => "[0-9é-]{6,8}",
            1 => "[0-9]{5,7}[é€-][0-9-]{0,2}",
        ],
    ) {
        if let Ok(b) = BusinessId::parse("businessIdentifier", &scheme, &id) {
            prop_assert_eq!(b.to_string(), format!("{scheme}:{id}"));
            prop_assert_eq!(b.id, id);
        }
    }

    #[test]
    fn small_enumerations(s in hostile(12)) {
        if let Ok(c) = Country::parse("country", &s) {
            prop_assert_eq!(c.to_string(), s.clone());
        }
        if let Ok(c) = Currency::parse("currency", &s) {
            prop_assert_eq!(c.to_string(), s.clone());
        }
        if let Ok(t) = Topic::parse("topic", &s) {
            prop_assert_eq!(t.to_string(), s.clone());
        }
    }

    #[test]
    fn bank_accounts(scheme in prop_oneof![Just("BBAN:NO".to_owned()), Just("IBAN".to_owned()), hostile(10)],
                     id in prop_oneof![hostile(36), "[A-Za-z0-9]{0,36}"]) {
        if let Ok(a) = BankAccount::parse("payoutBankAccount", &scheme, &id) {
            prop_assert_eq!(a.scheme, scheme);
            prop_assert_eq!(a.id, id);
        }
    }

    #[test]
    fn cutoffs(s in prop_oneof![hostile(6), "[0-9]{2}:[0-9]{2}"]) {
        if let Ok(t) = parse_cutoff("cutoff", &s) {
            prop_assert_eq!(format!("{:02}:{:02}", t.hour(), t.minute()), s);
        }
    }
}

// Regression tests: what the fuzzing above found.

/// `BusinessId::parse` sliced a Finnish Y-tunnus as `&id[..7]`, which panicked when byte 7 fell
/// inside a multi-byte character.
#[test]
fn a_finnish_business_id_with_a_multi_byte_character_is_refused_not_a_panic() {
    for id in ["123456é1", "1234567é", "€123456", "１234567-8"] {
        assert!(
            BusinessId::parse("b", "business:FI:Y-tunnus", id).is_err(),
            "{id}"
        );
    }
    assert!(BusinessId::parse("b", "business:FI:Y-tunnus", "1234567-8").is_ok());
}

/// `LedgerDate::from_days` panicked (inside jiff's `Span::days`) for day counts past jiff's span
/// range, e.g. 7304485.
#[test]
fn ledger_dates_from_days_out_of_range_are_none_not_a_panic() {
    for days in [7_304_485, -7_304_485, i32::MAX, i32::MIN] {
        assert_eq!(LedgerDate::from_days(days), None, "{days}");
    }
}

/// `Msn::parse` took "00000" (and "012345") as a number that prints back as other text ("0",
/// "12345"), so `api:012345` and `api:12345` were the same handle. Leading zeros are refused.
#[test]
fn merchant_serial_numbers_with_a_leading_zero_are_refused() {
    for s in ["00000", "012345", "0123456"] {
        assert!(Msn::parse("msn", s).is_err(), "{s}");
        assert!(
            RecipientHandle::parse("h", &format!("api:{s}")).is_err(),
            "{s}"
        );
    }
    assert!(Msn::parse("msn", "10000").is_ok());
}
