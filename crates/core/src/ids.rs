//! Identifiers and small values that validate when parsed ("parse, don't validate").
//!
//! Each `parse` takes the raw text from outside and either returns a value that is known good or a
//! [`ParseError`] naming the field. `Display` gives back the wire form.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Merchant serial number: the 5–7 digit number of a sales unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Msn(u32);

impl Msn {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        // No leading zero: "012345" would be the number 12345 and print back as another text.
        if !(5..=7).contains(&s.len()) || !all_digits(s) || s.starts_with('0') {
            return Err(ParseError::new(
                field,
                "must be a merchant serial number of 5 to 7 digits, not starting with 0",
            ));
        }
        s.parse()
            .map(Msn)
            .map_err(|_| ParseError::new(field, "not a number"))
    }

    pub fn from_stored(n: i64) -> Self {
        Msn(n as u32)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Msn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A ledger's id: a string of digits, stable forever.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LedgerId(String);

impl LedgerId {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        // No leading zeros: then the numeric order of ledger ids is (length, text), which an
        // index can walk.
        if s.len() > 20 || !all_digits(s) || (s.len() > 1 && s.starts_with('0')) {
            return Err(ParseError::new(
                field,
                "must be a ledger id of 1 to 20 digits without leading zeros",
            ));
        }
        Ok(LedgerId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Country of a merchant or sales unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Country {
    NO,
    DK,
    FI,
}

impl Country {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "NO" => Ok(Country::NO),
            "DK" => Ok(Country::DK),
            "FI" => Ok(Country::FI),
            _ => Err(ParseError::new(field, "must be NO, DK or FI")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Country::NO => "NO",
            Country::DK => "DK",
            Country::FI => "FI",
        }
    }

    /// The currency a ledger of this country settles in by default.
    pub fn currency(self) -> Currency {
        match self {
            Country::NO => Currency::NOK,
            Country::DK => Currency::DKK,
            Country::FI => Currency::EUR,
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a ledger names a sales unit: `api:<msn>` for api units, `<country>:<number>` for
/// Vippsnummer / MyShop units.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipientHandle {
    Api(Msn),
    VmNumber { country: Country, number: String },
}

impl RecipientHandle {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        let bad = || {
            ParseError::new(
                field,
                "must be a recipient handle such as api:123455 or NO:57860",
            )
        };
        let (prefix, rest) = s.split_once(':').ok_or_else(bad)?;
        if prefix == "api" {
            return Msn::parse(field, rest)
                .map(RecipientHandle::Api)
                .map_err(|_| bad());
        }
        let country = Country::parse(field, prefix).map_err(|_| bad())?;
        if !(1..=10).contains(&rest.len()) || !all_digits(rest) {
            return Err(bad());
        }
        Ok(RecipientHandle::VmNumber {
            country,
            number: rest.to_owned(),
        })
    }
}

impl fmt::Display for RecipientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientHandle::Api(msn) => write!(f, "api:{msn}"),
            RecipientHandle::VmNumber { country, number } => write!(f, "{country}:{number}"),
        }
    }
}

/// The organisation-number schemes of the countries Ledgerport serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgScheme {
    NoOrg,
    DkCvr,
    FiYTunnus,
}

impl OrgScheme {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "business:NO:ORG" => Ok(OrgScheme::NoOrg),
            "business:DK:CVR" => Ok(OrgScheme::DkCvr),
            "business:FI:Y-tunnus" => Ok(OrgScheme::FiYTunnus),
            _ => Err(ParseError::new(
                field,
                "must be business:NO:ORG, business:DK:CVR or business:FI:Y-tunnus",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgScheme::NoOrg => "business:NO:ORG",
            OrgScheme::DkCvr => "business:DK:CVR",
            OrgScheme::FiYTunnus => "business:FI:Y-tunnus",
        }
    }

    /// The scheme of organisation numbers of `country`.
    pub fn of_country(country: Country) -> OrgScheme {
        match country {
            Country::NO => OrgScheme::NoOrg,
            Country::DK => OrgScheme::DkCvr,
            Country::FI => OrgScheme::FiYTunnus,
        }
    }

    pub fn country(self) -> Country {
        match self {
            OrgScheme::NoOrg => Country::NO,
            OrgScheme::DkCvr => Country::DK,
            OrgScheme::FiYTunnus => Country::FI,
        }
    }
}

/// An organisation's identity: scheme plus number (`business:NO:ORG` + `987654321`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusinessId {
    pub scheme: OrgScheme,
    pub id: String,
}

impl BusinessId {
    pub fn parse(field: &'static str, scheme: &str, id: &str) -> Result<Self, ParseError> {
        let scheme = OrgScheme::parse(field, scheme)?;
        let ok = match scheme {
            OrgScheme::NoOrg => id.len() == 9 && all_digits(id),
            OrgScheme::DkCvr => id.len() == 8 && all_digits(id),
            OrgScheme::FiYTunnus => {
                // Bytes, not `&str` slices: a multi-byte character must not make this panic.
                let b = id.as_bytes();
                b.len() == 9
                    && b[..7].iter().all(u8::is_ascii_digit)
                    && b[7] == b'-'
                    && b[8].is_ascii_digit()
            }
        };
        if !ok {
            let expected = match scheme {
                OrgScheme::NoOrg => "a Norwegian organisation number of 9 digits",
                OrgScheme::DkCvr => "a Danish CVR number of 8 digits",
                OrgScheme::FiYTunnus => "a Finnish Y-tunnus such as 1234567-8",
            };
            return Err(ParseError::new(field, format!("must be {expected}")));
        }
        Ok(BusinessId {
            scheme,
            id: id.to_owned(),
        })
    }
}

impl fmt::Display for BusinessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.id)
    }
}

/// Settlement currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    NOK,
    DKK,
    EUR,
}

impl Currency {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "NOK" => Ok(Currency::NOK),
            "DKK" => Ok(Currency::DKK),
            "EUR" => Ok(Currency::EUR),
            _ => Err(ParseError::new(field, "must be NOK, DKK or EUR")),
        }
    }

    /// Digits after the decimal point of the currency's minor unit (ISO 4217): amounts travel
    /// in minor units, people and spreadsheets read them in units of the currency.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::NOK | Currency::DKK | Currency::EUR => 2,
        }
    }

    /// `minor` units as a plain decimal amount of the currency with its exponent's digits,
    /// `-1234.56` for -123456 øre (no grouping, `.` as the separator).
    pub fn decimal(self, minor: i128) -> String {
        decimal_of(minor, self.exponent())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Currency::NOK => "NOK",
            Currency::DKK => "DKK",
            Currency::EUR => "EUR",
        }
    }
}

/// `minor` with `exponent` digits after the point: `decimal_of(-5, 2)` is `-0.05`.
pub fn decimal_of(minor: i128, exponent: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u128.pow(exponent);
    let width = exponent as usize;
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two accounts of a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Funds,
    Fees,
}

impl Topic {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        match s {
            "funds" => Ok(Topic::Funds),
            "fees" => Ok(Topic::Fees),
            _ => Err(ParseError::new(field, "must be funds or fees")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Funds => "funds",
            Topic::Fees => "fees",
        }
    }

    /// Compact code used in storage and in cursors.
    pub fn code(self) -> u8 {
        match self {
            Topic::Funds => 0,
            Topic::Fees => 1,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Topic::Funds),
            1 => Some(Topic::Fees),
            _ => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ledger date, `YYYY-MM-DD`, which must be a real date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LedgerDate(jiff::civil::Date);

impl LedgerDate {
    pub fn parse(field: &'static str, s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(ParseError::new(
                field,
                "must be a date in the form YYYY-MM-DD",
            ));
        }
        let num = |r: std::ops::Range<usize>| -> i32 {
            b[r].iter().fold(0, |acc, c| acc * 10 + i32::from(c - b'0'))
        };
        let (y, m, d) = (num(0..4), num(5..7), num(8..10));
        jiff::civil::Date::new(y as i16, m as i8, d as i8)
            .map(LedgerDate)
            .map_err(|_| ParseError::new(field, format!("{s} is not a real date")))
    }

    pub fn from_date(d: jiff::civil::Date) -> Self {
        LedgerDate(d)
    }

    pub fn date(self) -> jiff::civil::Date {
        self.0
    }

    /// Days since 1970-01-01, the form cursors carry.
    pub fn to_days(self) -> i32 {
        let epoch = jiff::civil::date(1970, 1, 1);
        (self.0 - epoch).get_days()
    }

    pub fn from_days(days: i32) -> Option<Self> {
        jiff::civil::date(1970, 1, 1)
            // `try_days`: `days` panics past jiff's span range (about ±20 000 years).
            .checked_add(jiff::Span::new().try_days(i64::from(days)).ok()?)
            .ok()
            .map(LedgerDate)
    }
}

impl Serialize for LedgerDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for LedgerDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

/// A bank account a ledger pays out to, e.g. scheme `BBAN:NO`, id `86011117947`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccount {
    pub scheme: String,
    pub id: String,
}

impl BankAccount {
    pub fn parse(field: &'static str, scheme: &str, id: &str) -> Result<Self, ParseError> {
        let scheme_ok = matches!(scheme, "BBAN:NO" | "BBAN:DK" | "BBAN:FI" | "IBAN");
        if !scheme_ok {
            return Err(ParseError::new(
                field,
                "scheme must be BBAN:NO, BBAN:DK, BBAN:FI or IBAN",
            ));
        }
        let id_ok = (4..=34).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok {
            return Err(ParseError::new(
                field,
                "account number must be 4 to 34 letters or digits",
            ));
        }
        Ok(BankAccount {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_in_units_of_the_currency() {
        for c in [Currency::NOK, Currency::DKK, Currency::EUR] {
            assert_eq!(c.exponent(), 2);
            assert_eq!(c.decimal(12345), "123.45");
        }
        assert_eq!(Currency::NOK.decimal(-175), "-1.75");
        assert_eq!(Currency::DKK.decimal(5), "0.05");
        assert_eq!(Currency::EUR.decimal(0), "0.00");
        assert_eq!(
            Currency::NOK.decimal(i128::from(i64::MIN)),
            "-92233720368547758.08"
        );
        assert_eq!(decimal_of(12345, 0), "12345");
        assert_eq!(decimal_of(-12345, 3), "-12.345");
    }

    #[test]
    fn ledger_dates_must_be_real_dates() {
        assert!(LedgerDate::parse("ledgerDate", "2024-02-29").is_ok());
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "24-01-01",
            "2024-1-01",
            "2024-01-01x",
            "",
            "2024/01/01",
            "+024-01-01",
            "２０２４-01-01",
        ] {
            let err = LedgerDate::parse("ledgerDate", bad).expect_err(bad);
            assert_eq!(err.field, "ledgerDate");
        }
    }

    #[test]
    fn ledger_dates_round_trip_through_days() {
        for s in [
            "1970-01-01",
            "2022-10-01",
            "2024-02-29",
            "1969-12-31",
            "2099-12-31",
        ] {
            let d = LedgerDate::parse("d", s).expect("valid");
            assert_eq!(LedgerDate::from_days(d.to_days()), Some(d));
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn recipient_handles_parse_and_print_back() {
        for s in ["api:123455", "NO:57860", "DK:90601", "FI:1234"] {
            assert_eq!(RecipientHandle::parse("h", s).expect(s).to_string(), s);
        }
        for bad in [
            "api:12",
            "api:12345678",
            "SE:1234",
            "NO:",
            "NO:12a",
            "57860",
            "api:",
            ":1",
        ] {
            assert!(RecipientHandle::parse("h", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn business_ids_follow_their_country_format() {
        assert!(BusinessId::parse("o", "business:NO:ORG", "987654321").is_ok());
        assert!(BusinessId::parse("o", "business:DK:CVR", "12345678").is_ok());
        assert!(BusinessId::parse("o", "business:FI:Y-tunnus", "1234567-8").is_ok());
        assert!(BusinessId::parse("o", "business:NO:ORG", "98765432").is_err());
        assert!(BusinessId::parse("o", "business:FI:Y-tunnus", "12345678").is_err());
        assert!(BusinessId::parse("o", "business:SE:ORG", "987654321").is_err());
    }

    #[test]
    fn each_country_has_its_scheme_and_a_wrong_number_names_the_field_and_the_format() {
        for c in [Country::NO, Country::DK, Country::FI] {
            assert_eq!(OrgScheme::of_country(c).country(), c);
        }
        let cases = [
            (Country::NO, "987654321", "12345678", "9 digits"),
            (
                Country::DK,
                "12345678",
                "987654321",
                "CVR number of 8 digits",
            ),
            (
                Country::FI,
                "1234567-8",
                "12345678",
                "Y-tunnus such as 1234567-8",
            ),
        ];
        for (country, good, bad, expected) in cases {
            let scheme = OrgScheme::of_country(country).as_str();
            assert!(
                BusinessId::parse("org_number", scheme, good).is_ok(),
                "{good}"
            );
            let e = BusinessId::parse("org_number", scheme, bad).expect_err(bad);
            let text = e.to_string();
            assert!(text.starts_with("org_number"), "{text}");
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn ledger_ids_are_digits_without_leading_zeros() {
        assert!(LedgerId::parse("l", "302321").is_ok());
        assert!(LedgerId::parse("l", "0").is_ok());
        for bad in ["", "0302321", "30a", "123456789012345678901", "-1"] {
            assert!(LedgerId::parse("l", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn msn_is_five_to_seven_digits() {
        assert!(Msn::parse("m", "12345").is_ok());
        assert!(Msn::parse("m", "1234567").is_ok());
        assert!(Msn::parse("m", "1234").is_err());
        assert!(Msn::parse("m", "12345678").is_err());
        assert!(Msn::parse("m", "12a45").is_err());
    }
}
