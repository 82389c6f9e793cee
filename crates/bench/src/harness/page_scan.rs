//! What the load generator reads of a feed page: its cursor, `tryLater` and how many entries it
//! holds, found by scanning the bytes rather than parsing the JSON.
//!
//! Parsing every 250 KB page with serde_json (even into `IgnoredAny`) took about 70 % of the load
//! generator's CPU in the readers phase, half of the two cores the server shares with it, so the
//! server's figures said as much about the client as about the server. A page is
//! `{"cursor":"…","tryLater":…,"items":[{"pspReference":…},…]}` with the keys in this order;
//! `{"pspReference":` can only appear where an entry starts, since a quote inside a JSON string
//! is escaped. The floors are scanned the same way. The first page of the full download is also
//! parsed in full and the two readings compared (`phases`), so a page the scan misreads stops
//! the run.

use memchr::memmem;

/// What the harness needs of a feed page.
#[derive(Debug, PartialEq, Eq)]
pub struct PageSummary {
    pub cursor: String,
    pub try_later: bool,
    pub entries: usize,
}

const CURSOR: &[u8] = b"{\"cursor\":\"";
const ENTRY: &[u8] = b"{\"pspReference\":";

pub fn scan(body: &[u8]) -> Result<PageSummary, String> {
    let rest = body
        .strip_prefix(CURSOR)
        .ok_or("feed page: does not start with its cursor")?;
    let end = memchr::memchr(b'"', rest).ok_or("feed page: the cursor does not end")?;
    let cursor = std::str::from_utf8(&rest[..end])
        .map_err(|_| "feed page: the cursor is not UTF-8")?
        .to_owned();
    let rest = &rest[end..];
    let try_later = if rest.starts_with(b"\",\"tryLater\":true,\"items\":[") {
        true
    } else if rest.starts_with(b"\",\"tryLater\":false,\"items\":[") {
        false
    } else {
        return Err("feed page: no tryLater and items after the cursor".into());
    };
    if !body.ends_with(b"]}") {
        return Err("feed page: does not end with its items".into());
    }
    let entries = memmem::find_iter(rest, ENTRY).count();
    Ok(PageSummary {
        cursor,
        try_later,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cursor_try_later_and_every_entry_even_with_quotes_in_references() {
        // The wire's key order (a `json!` map would sort the keys).
        let entry = |r: &str| {
            format!(
                r#"{{"pspReference":"p1","time":"2026-01-01T00:00:00Z","reference":{},"amount":1}}"#,
                serde_json::to_string(r).expect("json")
            )
        };
        let items = [
            entry("plain"),
            entry("{\"pspReference\": tricky"),
            entry("x"),
        ];
        let bytes = format!(
            r#"{{"cursor":"abc-_1","tryLater":false,"items":[{}]}}"#,
            items.join(",")
        )
        .into_bytes();
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
        assert_eq!(parsed["items"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            scan(&bytes),
            Ok(PageSummary {
                cursor: "abc-_1".into(),
                try_later: false,
                entries: 3
            })
        );
        let empty = br#"{"cursor":"c","tryLater":true,"items":[]}"#;
        assert_eq!(
            scan(empty),
            Ok(PageSummary {
                cursor: "c".into(),
                try_later: true,
                entries: 0
            })
        );
        assert!(scan(br#"{"items":[],"cursor":"c"}"#).is_err());
        assert!(scan(br#"{"cursor":"c","tryLater":true,"items":["#).is_err());
    }
}
