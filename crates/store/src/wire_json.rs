//! The Report API's JSON of an entry, written once, when the entry is stored (columns `wire` and
//! `wire_payer` of `entries`), so that a page is its entries' stored text joined: no field is read
//! and escaped again per request ([`crate::WirePage`]).
//!
//! The stored form leaves out the field names, which would more than double what each entry
//! adds to the database: each value, JSON-encoded (strings escaped as `serde_json` escapes them,
//! integers as their digits), follows a marker byte that stands for what precedes it in the
//! object: `\x01` for `{"pspReference":`, `\x02` for `,"time":` and so on ([`NAMES`]). A JSON
//! value never holds a raw byte below `\x20` (they are escaped), so a marker is never mistaken.
//! `wire` holds the ten fields every reader gets, `wire_payer` the payer's three, only when the
//! entry has a payer. An entry's JSON for a reader is `wire`, then `wire_payer` when personal data
//! is given, with each marker replaced by its text, then `}`: [`expand`] in Rust, [`sql_expand`]
//! in SQL. The migration that added the columns wrote the same text for the entries stored before
//! it, with each database's JSON functions; a test holds both to this writer.

use ledgerport_core::entry::Entry;

/// What marker `n` (`\x01` to `\x0d`) stands for: `NAMES[n - 1]`, the Report API's name of the
/// field with what precedes it. The first ten are `wire`'s, the last three `wire_payer`'s.
const NAMES: [&str; 13] = [
    "{\"pspReference\":",
    ",\"time\":",
    ",\"ledgerDate\":",
    ",\"entryType\":",
    ",\"reference\":",
    ",\"currency\":",
    ",\"amount\":",
    ",\"balanceBefore\":",
    ",\"balanceAfter\":",
    ",\"recipientHandle\":",
    ",\"name\":",
    ",\"message\":",
    ",\"maskedPhoneNo\":",
];

/// A field's value as the JSON writer takes it.
enum Value<'a> {
    Text(&'a str),
    Int(i64),
}

/// `wire` and `wire_payer` of the entry `e`.
pub(crate) fn entry_wire(e: &Entry) -> (String, Option<String>) {
    let date = e.ledger_date.to_string();
    let head = fields(
        1,
        &[
            Value::Text(&e.psp_reference),
            Value::Text(&e.time),
            Value::Text(&date),
            Value::Text(&e.entry_type),
            Value::Text(&e.reference),
            Value::Text(e.currency.as_str()),
            Value::Int(e.amount),
            Value::Int(e.balance_before),
            Value::Int(e.balance_after),
            Value::Text(&e.recipient_handle),
        ],
    );
    let payer = e.payer.as_ref().map(|p| {
        fields(
            11,
            &[
                Value::Text(&p.name),
                Value::Text(&p.message),
                Value::Text(&p.masked_phone_no),
            ],
        )
    });
    (head, payer)
}

/// The values, each after its marker, the first's being `first`.
fn fields(first: u8, values: &[Value<'_>]) -> String {
    let mut out = String::with_capacity(160);
    for (marker, value) in (first..).zip(values) {
        out.push(char::from(marker));
        match value {
            Value::Text(t) => push_json_string(&mut out, t),
            Value::Int(v) => {
                let mut digits = [0; 20];
                for &d in format_i64(&mut digits, *v) {
                    out.push(char::from(d));
                }
            }
        }
    }
    out
}

/// Appends the JSON of a stored `wire` or `wire_payer` to `out`, each marker replaced by its
/// text; `None` when `stored` holds a byte below `\x20` that is not a marker.
pub(crate) fn expand(out: &mut Vec<u8>, stored: &[u8]) -> Option<()> {
    let mut start = 0;
    for (i, &b) in stored.iter().enumerate() {
        if b < 0x20 {
            out.extend_from_slice(&stored[start..i]);
            out.extend_from_slice(NAMES.get(usize::from(b).checked_sub(1)?)?.as_bytes());
            start = i + 1;
        }
    }
    out.extend_from_slice(&stored[start..]);
    Some(())
}

/// SQL that gives the JSON of the stored text `column`, each marker replaced by its text (one
/// `replace` per marker; SQLite and PostgreSQL both take the raw marker byte in a literal).
pub(crate) fn sql_expand(column: &str) -> String {
    let mut sql = column.to_owned();
    for (i, name) in NAMES.iter().enumerate() {
        sql = format!("replace({sql}, '{}', '{name}')", char::from(i as u8 + 1));
    }
    sql
}

/// The decimal digits of `v` (with its sign), written at the end of `buf` (room for any `i64`).
fn format_i64(buf: &mut [u8; 20], v: i64) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Appends `text` as a JSON string escaped as `serde_json` (and SQLite's `json_quote`, and
/// PostgreSQL's `to_json`) escape it: quote and backslash, `\b \f \n \r \t`, other control
/// characters as lowercase `\u00xx`, everything else as it is (DEL, U+2028 and all non-ASCII text
/// included).
fn push_json_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is an ASCII byte's position, so a character boundary.
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut text = String::new();
        for c in (0u32..0x80).chain([0x2028, 0x2029, 0xe9, 0x1f600]) {
            text.push(char::from_u32(c).expect("a char"));
        }
        text.push_str("plain \"quoted\" back\\slash");
        let mut out = String::new();
        push_json_string(&mut out, &text);
        assert_eq!(out, serde_json::to_string(&text).expect("serialise"));
    }

    #[test]
    fn integers_are_their_decimal_digits() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            1 << 53,
            (1 << 53) + 1,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = [0; 20];
            assert_eq!(format_i64(&mut buf, v), v.to_string().as_bytes());
        }
    }
}
