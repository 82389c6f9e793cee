//! Payment events as the payment systems send them: one JSON object per event, the same in a
//! `POST /ingest/v1/events` batch and on a line of an NDJSON file for `ledgerport import`.
//!
//! ```json
//! {"eventId":"e-1","type":"capture","msn":"123455","pspReference":"3343121302",
//!  "reference":"purchase-12","amount":10000,"currency":"NOK","time":"2022-10-01T14:33:00.824993Z",
//!  "topic":"funds","payer":{"name":"…","message":"…","maskedPhoneNo":"xxxx 1234"}}
//! ```
//!
//! A refund with its own pspReference names the capture it refunds in `capturePspReference`.
//!
//! [`parse_event`] checks the shape only (types, lengths, formats); whether the event fits its
//! sales unit and ledger is the engine's decision. A wrong field gives a [`Rejection`] naming it
//! by its JSON name; unknown fields are ignored. No JSON value makes it panic.

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use ledgerport_core::ParseError;
use ledgerport_core::engine::{EventKind, PaymentEvent, Rejection};
use ledgerport_core::entry::PayerDetails;
use ledgerport_core::ids::{Currency, Msn, Topic};
use serde_json::{Map, Value};

/// Longest `eventId`, in characters.
pub const MAX_EVENT_ID: usize = 128;
/// Longest `pspReference`, in characters.
pub const MAX_PSP_REFERENCE: usize = 64;
/// Longest `reference`, in characters.
pub const MAX_REFERENCE: usize = 100;
/// Longest `payer.name`, in characters.
pub const MAX_PAYER_NAME: usize = 200;
/// Longest `payer.message`, in characters.
pub const MAX_PAYER_MESSAGE: usize = 500;

/// A rejected event: its `eventId` when that could be read, and why.
pub type BadEvent = (Option<String>, Rejection);

/// Parses one event. On failure the `eventId` comes back too when it was readable, so the
/// answer can name the event.
pub fn parse_event(v: &Value) -> Result<PaymentEvent, BadEvent> {
    let Some(obj) = v.as_object() else {
        return Err((None, Rejection::new("event", "must be a JSON object")));
    };
    let event_id = text(obj, "eventId", MAX_EVENT_ID).map_err(|r| (None, r))?;
    fields(obj)
        .map(|mut ev| {
            ev.event_id = event_id.clone();
            ev
        })
        .map_err(|r| (Some(event_id), r))
}

fn fields(obj: &Map<String, Value>) -> Result<PaymentEvent, Rejection> {
    let kind = EventKind::parse("type", &text(obj, "type", 64)?).map_err(rejection)?;
    let msn = msn(obj)?;
    let psp_reference = text(obj, "pspReference", MAX_PSP_REFERENCE)?;
    let capture_psp_reference = match present(obj, "capturePspReference") {
        None => None,
        Some(_) => Some(text(obj, "capturePspReference", MAX_PSP_REFERENCE)?),
    };
    let reference = match present(obj, "reference") {
        None => String::new(),
        Some(_) => bounded_string(obj, "reference", MAX_REFERENCE, true)?,
    };
    let amount = amount(obj)?;
    let currency = Currency::parse("currency", &text(obj, "currency", 64)?).map_err(rejection)?;
    let time = time(obj)?;
    let topic = match present(obj, "topic") {
        None => None,
        Some(_) => Some(Topic::parse("topic", &text(obj, "topic", 64)?).map_err(rejection)?),
    };
    let payer = match present(obj, "payer") {
        None => None,
        Some(p) => Some(payer(p)?),
    };
    Ok(PaymentEvent {
        event_id: String::new(),
        kind,
        msn,
        psp_reference,
        capture_psp_reference,
        reference,
        amount,
        currency,
        time,
        topic,
        payer,
    })
}

fn rejection(e: ParseError) -> Rejection {
    Rejection::new(e.field, e.reason)
}

/// The field's value; `null` counts as absent.
fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required non-empty string of at most `max` characters.
fn text(obj: &Map<String, Value>, field: &'static str, max: usize) -> Result<String, Rejection> {
    bounded_string(obj, field, max, false)
}

fn bounded_string(
    obj: &Map<String, Value>,
    field: &'static str,
    max: usize,
    may_be_empty: bool,
) -> Result<String, Rejection> {
    // Written only for an answer that needs it: a good event passes here six times.
    let what = || {
        if may_be_empty {
            format!("a string of at most {max} characters")
        } else {
            format!("a non-empty string of at most {max} characters")
        }
    };
    let s = match present(obj, field) {
        None => return Err(Rejection::new(field, format!("is required: {}", what()))),
        Some(Value::String(s)) => s,
        Some(v) => {
            return Err(Rejection::new(
                field,
                format!("must be {}, not {}", what(), kind_of(v)),
            ));
        }
    };
    if (s.is_empty() && !may_be_empty) || s.chars().count() > max {
        return Err(Rejection::new(field, format!("must be {}", what())));
    }
    if s.chars().any(char::is_control) {
        return Err(Rejection::new(field, "must not contain control characters"));
    }
    Ok(s.clone())
}

/// `msn`: a string of 5 to 7 digits, or the same as a JSON integer.
fn msn(obj: &Map<String, Value>) -> Result<Msn, Rejection> {
    let expected = "must be a merchant serial number of 5 to 7 digits (a string or an integer)";
    let digits = match present(obj, "msn") {
        None => return Err(Rejection::new("msn", format!("is required: {expected}"))),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => n.to_string(),
            None => return Err(Rejection::new("msn", expected)),
        },
        Some(v) => {
            return Err(Rejection::new(
                "msn",
                format!("{expected}, not {}", kind_of(v)),
            ));
        }
    };
    Msn::parse("msn", &digits).map_err(|_| Rejection::new("msn", expected))
}

/// `amount`: an integer number of minor units that fits 64 bits (no fractions, no strings).
fn amount(obj: &Map<String, Value>) -> Result<i64, Rejection> {
    let expected = "must be an integer number of minor units (a JSON number without fraction, \
                    within ±9223372036854775807)";
    match present(obj, "amount") {
        None => Err(Rejection::new("amount", format!("is required: {expected}"))),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| Rejection::new("amount", expected)),
        Some(v) => Err(Rejection::new(
            "amount",
            format!("{expected}, not {}", kind_of(v)),
        )),
    }
}

/// `time`: RFC 3339 with an offset; kept to the microsecond (the wire's precision).
fn time(obj: &Map<String, Value>) -> Result<Timestamp, Rejection> {
    let expected = "must be an RFC 3339 time with an offset, e.g. 2022-10-01T14:33:00.824993Z";
    let t: Timestamp = match present(obj, "time") {
        None => return Err(Rejection::new("time", format!("is required: {expected}"))),
        Some(Value::String(s)) if s.len() <= 64 => {
            s.parse().map_err(|_| Rejection::new("time", expected))?
        }
        Some(Value::String(_)) => return Err(Rejection::new("time", expected)),
        Some(v) => {
            return Err(Rejection::new(
                "time",
                format!("{expected}, not {}", kind_of(v)),
            ));
        }
    };
    t.round(
        TimestampRound::new()
            .smallest(Unit::Microsecond)
            .mode(RoundMode::Trunc),
    )
    .map_err(|_| Rejection::new("time", expected))
}

/// `payer`: name, message and masked phone number of a vm-number payment, all three required.
fn payer(v: &Value) -> Result<PayerDetails, Rejection> {
    let Some(p) = v.as_object() else {
        return Err(Rejection::new(
            "payer",
            format!(
                "must be an object with name, message and maskedPhoneNo, not {}",
                kind_of(v)
            ),
        ));
    };
    let name = text(p, "name", MAX_PAYER_NAME).map_err(|r| nested("payer.name", r))?;
    let message = bounded_string(p, "message", MAX_PAYER_MESSAGE, true)
        .map_err(|r| nested("payer.message", r))?;
    let masked_phone_no =
        text(p, "maskedPhoneNo", 9).map_err(|r| nested("payer.maskedPhoneNo", r))?;
    if !is_masked_phone_no(&masked_phone_no) {
        return Err(Rejection::new(
            "payer.maskedPhoneNo",
            "must look like xxxx 1234 (four x, a space, the last four digits)",
        ));
    }
    Ok(PayerDetails {
        name,
        message,
        masked_phone_no,
    })
}

fn nested(field: &'static str, r: Rejection) -> Rejection {
    Rejection::new(field, r.reason)
}

fn is_masked_phone_no(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9 && b.starts_with(b"xxxx ") && b[5..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "eventId": "e-1", "type": "capture", "msn": "123455", "pspReference": "3343121302",
            "reference": "purchase-12", "amount": 10000, "currency": "NOK",
            "time": "2022-10-01T14:33:00.824993Z"
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = good();
        v[field] = value;
        v
    }

    fn without(field: &str) -> Value {
        let mut v = good();
        v.as_object_mut().expect("object").remove(field);
        v
    }

    /// The field a bad event is rejected for, and whether its id was readable.
    fn field_of(v: &Value) -> (Option<String>, &'static str) {
        let (id, r) = parse_event(v).expect_err("rejected");
        (id, r.field)
    }

    #[test]
    fn a_complete_capture_parses_into_the_engines_event() {
        let ev = parse_event(&good()).expect("parses");
        assert_eq!(
            ev,
            PaymentEvent {
                event_id: "e-1".into(),
                kind: EventKind::Capture,
                msn: Msn::parse("m", "123455").expect("msn"),
                psp_reference: "3343121302".into(),
                capture_psp_reference: None,
                reference: "purchase-12".into(),
                amount: 10000,
                currency: Currency::NOK,
                time: "2022-10-01T14:33:00.824993Z".parse().expect("ts"),
                topic: None,
                payer: None,
            }
        );
    }

    #[test]
    fn optional_fields_default_and_unknown_fields_are_ignored() {
        let mut v = without("reference");
        v["somethingNew"] = json!({"nested": [1, 2]});
        v["topic"] = Value::Null;
        let ev = parse_event(&v).expect("parses");
        assert_eq!(ev.reference, "");
        assert_eq!(ev.topic, None);
        assert_eq!(ev.payer, None);
    }

    #[test]
    fn a_refund_may_name_the_capture_it_refunds() {
        let mut v = with("type", json!("refund"));
        v["pspReference"] = json!("refund-7");
        v["capturePspReference"] = json!("3343121302");
        let ev = parse_event(&v).expect("parses");
        assert_eq!(ev.psp_reference, "refund-7");
        assert_eq!(ev.capture_psp_reference.as_deref(), Some("3343121302"));
        v["capturePspReference"] = Value::Null;
        assert_eq!(parse_event(&v).expect("parses").capture_psp_reference, None);
    }

    #[test]
    fn msn_may_be_a_number_and_topic_and_payer_are_read() {
        let mut v = with("msn", json!(123455));
        v["type"] = json!("correction");
        v["amount"] = json!(-250);
        v["topic"] = json!("fees");
        v["payer"] = json!({"name": "Kari Nordmann", "message": "", "maskedPhoneNo": "xxxx 1234"});
        let ev = parse_event(&v).expect("parses");
        assert_eq!(ev.msn.get(), 123455);
        assert_eq!(ev.kind, EventKind::Correction);
        assert_eq!(ev.amount, -250);
        assert_eq!(ev.topic, Some(Topic::Fees));
        assert_eq!(
            ev.payer,
            Some(PayerDetails {
                name: "Kari Nordmann".into(),
                message: "".into(),
                masked_phone_no: "xxxx 1234".into()
            })
        );
    }

    #[test]
    fn times_keep_microseconds_and_drop_anything_finer() {
        let ev = parse_event(&with("time", json!("2022-10-01T16:33:00.824993999+02:00")))
            .expect("parses");
        assert_eq!(
            ev.time,
            "2022-10-01T14:33:00.824993Z"
                .parse::<Timestamp>()
                .expect("ts")
        );
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for field in ["type", "msn", "pspReference", "amount", "currency", "time"] {
            let (id, f) = field_of(&without(field));
            assert_eq!((id.as_deref(), f), (Some("e-1"), field), "without {field}");
            let (_, f) = field_of(&with(field, Value::Null));
            assert_eq!(f, field, "{field}: null");
        }
        let (id, f) = field_of(&without("eventId"));
        assert_eq!((id, f), (None, "eventId"));
    }

    #[test]
    fn wrongly_typed_or_shaped_fields_are_named_with_what_is_expected() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("eventId", json!(""), "eventId"),
            ("eventId", json!(17), "eventId"),
            ("eventId", json!("x".repeat(129)), "eventId"),
            ("eventId", json!("a\nb"), "eventId"),
            ("type", json!("sale"), "type"),
            ("msn", json!("1234"), "msn"),
            ("msn", json!(12345678), "msn"),
            ("msn", json!(-12345), "msn"),
            ("msn", json!(123455.0), "msn"),
            ("msn", json!(["123455"]), "msn"),
            ("pspReference", json!(""), "pspReference"),
            ("pspReference", json!("p".repeat(65)), "pspReference"),
            ("capturePspReference", json!(""), "capturePspReference"),
            ("capturePspReference", json!(17), "capturePspReference"),
            (
                "capturePspReference",
                json!("p".repeat(65)),
                "capturePspReference",
            ),
            ("reference", json!("r".repeat(101)), "reference"),
            ("reference", json!(12), "reference"),
            ("amount", json!("10000"), "amount"),
            ("amount", json!(100.5), "amount"),
            ("amount", json!(1e3), "amount"),
            ("amount", json!(u64::MAX), "amount"),
            ("currency", json!("SEK"), "currency"),
            ("currency", json!("nok"), "currency"),
            ("time", json!("2022-10-01T14:33:00"), "time"),
            ("time", json!("yesterday"), "time"),
            ("time", json!(1664634780), "time"),
            ("topic", json!("bank"), "topic"),
            ("payer", json!("Kari"), "payer"),
            (
                "payer",
                json!({"message": "", "maskedPhoneNo": "xxxx 1234"}),
                "payer.name",
            ),
            (
                "payer",
                json!({"name": "K", "maskedPhoneNo": "xxxx 1234"}),
                "payer.message",
            ),
            (
                "payer",
                json!({"name": "K", "message": ""}),
                "payer.maskedPhoneNo",
            ),
            (
                "payer",
                json!({"name": "K", "message": "", "maskedPhoneNo": "+47 12345678"}),
                "payer.maskedPhoneNo",
            ),
            (
                "payer",
                json!({"name": "K", "message": "", "maskedPhoneNo": "xxxx 12a4"}),
                "payer.maskedPhoneNo",
            ),
        ];
        for (field, value, named) in cases {
            let (_, r) = parse_event(&with(field, value.clone())).expect_err("rejected");
            assert_eq!(r.field, named, "{field} = {value}");
            assert!(!r.reason.is_empty());
            assert!(
                Rejection::FIELDS.contains(&r.field),
                "{} is a known field",
                r.field
            );
        }
        let (_, r) = parse_event(&with("amount", json!("10000"))).expect_err("rejected");
        assert_eq!(
            r.reason,
            "must be an integer number of minor units (a JSON number without fraction, within \
             ±9223372036854775807), not a string"
        );
    }

    #[test]
    fn amounts_at_the_ends_of_64_bits_parse() {
        assert_eq!(
            parse_event(&with("amount", json!(i64::MAX)))
                .expect("max")
                .amount,
            i64::MAX
        );
        assert_eq!(
            parse_event(&with("amount", json!(i64::MIN)))
                .expect("min")
                .amount,
            i64::MIN
        );
    }

    #[test]
    fn odd_json_values_never_panic_and_are_rejected() {
        let huge: Value = serde_json::from_str("123456789012345678901234567890").expect("huge");
        let odd = vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5e308),
            huge,
            json!(""),
            json!("capture"),
            json!([]),
            json!([good()]),
            json!({}),
            json!({"eventId": null}),
        ];
        for whole in &odd {
            assert!(parse_event(whole).is_err(), "{whole}");
        }
        // Every odd value in every field (and in every payer field).
        let fields = [
            "eventId",
            "type",
            "msn",
            "pspReference",
            "capturePspReference",
            "reference",
            "amount",
            "currency",
            "time",
            "topic",
            "payer",
        ];
        for value in &odd {
            for field in fields {
                let _ = parse_event(&with(field, value.clone()));
            }
            for inner in ["name", "message", "maskedPhoneNo"] {
                let mut payer = json!({"name": "K", "message": "m", "maskedPhoneNo": "xxxx 1234"});
                payer[inner] = value.clone();
                let parsed = parse_event(&with("payer", payer));
                if !value.is_string() {
                    let (_, r) = parsed.expect_err("a payer field that is no string");
                    assert!(r.field.starts_with("payer."), "{inner} = {value}");
                }
            }
        }
        // Deep nesting and long strings are rejected or ignored, not a crash.
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert!(parse_event(&with("amount", deep.clone())).is_err());
        assert!(parse_event(&with("extra", deep)).is_ok());
        assert!(parse_event(&with("type", json!("c".repeat(1_000_000)))).is_err());
        assert!(parse_event(&with("time", json!("9".repeat(10_000)))).is_err());
    }
}
