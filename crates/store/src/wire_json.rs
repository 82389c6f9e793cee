//! The Report API's JSON of a page of entries, written in Rust from the entries' rows into one
//! buffer, once for every backend: the rusqlite reads of a SQLite file (`sqlite::direct`) and
//! sqlx's rows (PostgreSQL, SQLite in memory) hand their rows to the same [`PageWriter`].
//! PostgreSQL used to render the objects itself (`format` and `to_json` per field,
//! `string_agg`): 7 to 11 ms for a page of 1000 entries in `psql`, against 1.4 to 2.2 ms to hand
//! over its rows (BENCHMARKS.md, "Pages rendered in Rust on PostgreSQL, and what bounds
//! ingestion").

use crate::{Result, StoreError, WIRE_HEAD_ROOM, WirePage};

/// The Report API's names of the entry's fields after `seq`, in its schema's order: ten always,
/// the payer's three when personal data is given ([`crate::WirePage`]).
const WIRE_NAMES: [&[u8]; 13] = [
    b"{\"pspReference\":",
    b",\"time\":",
    b",\"ledgerDate\":",
    b",\"entryType\":",
    b",\"reference\":",
    b",\"currency\":",
    b",\"amount\":",
    b",\"balanceBefore\":",
    b",\"balanceAfter\":",
    b",\"recipientHandle\":",
    b",\"name\":",
    b",\"message\":",
    b",\"maskedPhoneNo\":",
];

/// One value of an entry row as its backend holds it.
pub(crate) enum Cell<'a> {
    Int(i64),
    Text(&'a [u8]),
    Null,
    /// A real or a blob, which no entry column holds.
    Other,
}

/// A row of [`entry_columns`](crate::rows::entry_columns), whatever read it.
pub(crate) trait EntryCells {
    /// The value of column `i` (from 0, `seq`).
    fn cell(&self, i: usize) -> Result<Cell<'_>>;
}

/// The [`WirePage`] of up to `limit` entry rows in seq order, written as they come, and
/// whether one more follows them.
pub(crate) struct PageWriter {
    out: Vec<u8>,
    entries: usize,
    last_seq: Option<i64>,
    more: bool,
    limit: usize,
    personal: bool,
}

impl PageWriter {
    /// A page of `limit` entries, with the payer's details where `personal`; the statement
    /// that feeds it reads `limit + 1` rows, the last only to tell that more follow.
    pub(crate) fn new(limit: u32, personal: bool) -> Self {
        // About what a 1000-entry page of the benchmark's entries takes, so a page is rarely
        // moved to a larger buffer while written; the room in front is for the page's opening.
        let mut out = Vec::with_capacity(WIRE_HEAD_ROOM + limit as usize * 256);
        out.resize(WIRE_HEAD_ROOM, b' ');
        PageWriter {
            out,
            entries: 0,
            last_seq: None,
            more: false,
            limit: limit as usize,
            personal,
        }
    }

    /// Writes the entry of row `r`; `false` once the page is full (the row only told that more
    /// follow), when the caller stops reading.
    pub(crate) fn push(&mut self, r: &impl EntryCells) -> Result<bool> {
        if self.entries == self.limit {
            self.more = true;
            return Ok(false);
        }
        let seq = match r.cell(0)? {
            Cell::Int(s) => s,
            _ => {
                return Err(StoreError::Corrupt(
                    "entry page: seq is not an integer".into(),
                ));
            }
        };
        if self.entries > 0 {
            self.out.push(b',');
        }
        write_entry(&mut self.out, r, self.personal)?;
        self.entries += 1;
        self.last_seq = Some(seq);
        Ok(true)
    }

    pub(crate) fn finish(self) -> Result<WirePage> {
        let items = String::from_utf8(self.out)
            .map_err(|_| StoreError::Corrupt("entry page: text that is not UTF-8".into()))?;
        Ok(WirePage::from_text(
            items,
            self.entries,
            self.last_seq,
            self.more,
        ))
    }
}

/// Appends the Report API's JSON object of the entry row `r`: an integer as its digits, text as
/// a JSON string escaped as `serde_json` escapes it, NULL as `null`. With `personal`, the payer's
/// details when the payment has all three, as the domain's `Entry` has a payer.
fn write_entry(out: &mut Vec<u8>, r: &impl EntryCells, personal: bool) -> Result<()> {
    let mut payer = personal;
    if payer {
        for i in 11..14 {
            if matches!(r.cell(i)?, Cell::Null) {
                payer = false;
            }
        }
    }
    let fields = if payer { 13 } else { 10 };
    for (i, name) in WIRE_NAMES.iter().take(fields).enumerate() {
        out.extend_from_slice(name);
        match r.cell(i + 1)? {
            Cell::Int(v) => {
                let mut digits = [0; 20];
                out.extend_from_slice(format_i64(&mut digits, v));
            }
            Cell::Text(t) => push_json_string(out, t),
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Other => {
                return Err(StoreError::Corrupt(format!(
                    "entry page: {} is neither text nor an integer",
                    String::from_utf8_lossy(&name[2..name.len() - 2])
                )));
            }
        }
    }
    out.push(b'}');
    Ok(())
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

/// Appends `text` as a JSON string escaped as `serde_json` escapes it: quote and backslash,
/// `\b \f \n \r \t`, other control characters as lowercase `\u00xx`, every other byte as it is
/// (DEL, U+2028 and all non-ASCII text included).
pub(crate) fn push_json_string(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// An entry row read by sqlx (PostgreSQL, SQLite in memory): its integers, and its texts in
/// one buffer, so that a row costs one allocation rather than a `String` per column.
pub(crate) struct SqlxEntryRow {
    slots: [Slot; COLUMNS],
    text: Vec<u8>,
}

/// How many columns [`entry_columns`](crate::rows::entry_columns) names.
const COLUMNS: usize = 14;

#[derive(Clone, Copy)]
enum Slot {
    Int(i64),
    /// Where the text is in the row's buffer.
    Text(u32, u32),
    Null,
}

/// Whether column `i` of [`entry_columns`](crate::rows::entry_columns) is an integer column
/// (`seq`, `amount`, the two balances); the others are text. Both schemas declare them so
/// (BIGINT and TEXT on PostgreSQL); sqlx refuses a value of another type, which the store
/// reports as a database error.
fn integer_column(i: usize) -> bool {
    matches!(i, 0 | 7 | 8 | 9)
}

/// `FromRow` for each sqlx row type: the same code, for two types sqlx gives no common trait
/// to decode through.
macro_rules! entry_row_from {
    ($row:ty) => {
        impl<'r> sqlx::FromRow<'r, $row> for SqlxEntryRow {
            fn from_row(r: &'r $row) -> sqlx::Result<Self> {
                use sqlx::Row;
                let mut row = SqlxEntryRow {
                    slots: [Slot::Null; COLUMNS],
                    text: Vec::with_capacity(192),
                };
                for (i, slot) in row.slots.iter_mut().enumerate() {
                    if integer_column(i) {
                        if let Some(v) = r.try_get::<Option<i64>, _>(i)? {
                            *slot = Slot::Int(v);
                        }
                    } else if let Some(t) = r.try_get::<Option<&str>, _>(i)? {
                        let start = row.text.len();
                        row.text.extend_from_slice(t.as_bytes());
                        let bounds = (u32::try_from(start), u32::try_from(row.text.len()));
                        let (Ok(start), Ok(end)) = bounds else {
                            return Err(sqlx::Error::Decode("an entry's text over 4 GiB".into()));
                        };
                        *slot = Slot::Text(start, end);
                    }
                }
                Ok(row)
            }
        }
    };
}
entry_row_from!(sqlx::sqlite::SqliteRow);
entry_row_from!(sqlx::postgres::PgRow);

impl EntryCells for SqlxEntryRow {
    fn cell(&self, i: usize) -> Result<Cell<'_>> {
        Ok(match self.slots.get(i) {
            Some(Slot::Int(v)) => Cell::Int(*v),
            Some(Slot::Text(start, end)) => Cell::Text(&self.text[*start as usize..*end as usize]),
            Some(Slot::Null) => Cell::Null,
            None => return Err(StoreError::Corrupt(format!("entry page: no column {i}"))),
        })
    }
}

/// The [`WirePage`] of sqlx's rows (`limit + 1` at most; see [`PageWriter::new`]).
pub(crate) fn page_of_rows(rows: &[SqlxEntryRow], limit: u32, personal: bool) -> Result<WirePage> {
    let mut page = PageWriter::new(limit, personal);
    for r in rows {
        if !page.push(r)? {
            break;
        }
    }
    page.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of two entries as the writer leaves it, without rows.
    fn two_entries() -> WirePage {
        let mut text = " ".repeat(WIRE_HEAD_ROOM);
        text.push_str("{\"a\":1},{\"b\":2}");
        WirePage::from_text(text, 2, Some(2), true)
    }

    #[test]
    fn a_body_is_written_around_the_entries_in_their_buffer() {
        let page = two_entries();
        assert_eq!(page.items(), "{\"a\":1},{\"b\":2}");
        let (buf, start) = page.into_body(b"{\"items\":[", b"]}");
        assert_eq!(&buf[start..], b"{\"items\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(start, WIRE_HEAD_ROOM - 10, "in the room, not copied");
        let (buf, start) = WirePage::empty().into_body(b"[", b"]");
        assert_eq!(&buf[start..], b"[]");
    }

    #[test]
    fn an_opening_longer_than_the_room_is_written_before_a_copy() {
        let open = format!(
            "{{\"cursor\":\"{}\",\"items\":[",
            "c".repeat(WIRE_HEAD_ROOM)
        );
        let (buf, start) = two_entries().into_body(open.as_bytes(), b"]}");
        assert_eq!(start, 0);
        assert_eq!(
            buf,
            format!("{open}{{\"a\":1}},{{\"b\":2}}]}}").into_bytes()
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut text = String::new();
        for c in (0u32..0x80).chain([0x2028, 0x2029, 0xe9, 0x1f600]) {
            text.push(char::from_u32(c).expect("a char"));
        }
        text.push_str("plain \"quoted\" back\\slash");
        let mut out = Vec::new();
        push_json_string(&mut out, text.as_bytes());
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            serde_json::to_string(&text).expect("serialise")
        );
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
