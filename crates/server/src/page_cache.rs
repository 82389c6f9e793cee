//! Bodies of Report API pages that can never change, kept in memory (bounded) so that a page
//! read again is sent without a database query and without rendering its entries again.
//!
//! Entries are never updated or deleted, and each is appended after the last of its ledger and
//! topic; cursors are deterministic (a MAC of the position). So a feed page that is followed by
//! more entries (`tryLater: false`) holds the same entries, the same cursor and the same bytes
//! forever, and so does every page of a closed date (a late event is booked on an open date,
//! never a closed one). Pages that may still grow (the feed's last page, an open date's pages)
//! are never kept. What a page holds also depends on who reads it: whether personal data is
//! given, and on the feed the grant's period; both are part of the key, so a body is only ever
//! sent to a reader the same rendering would have been made for. Access is still decided per
//! request before the cache is asked.
//!
//! Each server process has its own cache; since a kept body never becomes wrong, there is
//! nothing to invalidate between processes.

use axum::body::Bytes;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The bytes of page bodies a server keeps at most (about 130 full pages of 1000 entries).
pub const PAGE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What identifies a page's body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PageKey {
    Feed {
        ledger: LedgerId,
        topic: Topic,
        after: i64,
        limit: u32,
        personal_data: bool,
        /// The grant's period, which limits the feed's entries.
        from: Option<LedgerDate>,
        to: Option<LedgerDate>,
    },
    Date {
        ledger: LedgerId,
        topic: Topic,
        date: LedgerDate,
        after: i64,
        limit: u32,
        personal_data: bool,
    },
}

/// A kept body and the number of entries it holds (for the served-entries metric).
#[derive(Debug, Clone)]
pub struct CachedPage {
    pub body: Bytes,
    pub entries: usize,
}

/// The cache: bounded by the bytes of its bodies, the oldest kept page dropped first.
#[derive(Debug)]
pub struct PageCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pages: HashMap<PageKey, CachedPage>,
    order: VecDeque<PageKey>,
    bytes: usize,
}

impl PageCache {
    pub fn new(max_bytes: usize) -> PageCache {
        PageCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, key: &PageKey) -> Option<CachedPage> {
        // A poisoned lock only costs the cache: the page is rendered again.
        self.inner.lock().ok()?.pages.get(key).cloned()
    }

    /// Keeps a final page's body; a body larger than the whole cache is not kept.
    pub fn put(&self, key: PageKey, page: CachedPage) {
        let size = page.body.len();
        if size > self.max_bytes {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.pages.contains_key(&key) {
            return;
        }
        while inner.bytes + size > self.max_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(p) = inner.pages.remove(&old) {
                inner.bytes -= p.body.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(key.clone());
        inner.pages.insert(key, page);
    }

    /// The bytes of the bodies kept now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(after: i64) -> PageKey {
        PageKey::Date {
            ledger: LedgerId::parse("l", "100").expect("id"),
            topic: Topic::Funds,
            date: LedgerDate::parse("d", "2024-04-04").expect("date"),
            after,
            limit: 10,
            personal_data: false,
        }
    }

    fn page(n: usize) -> CachedPage {
        CachedPage {
            body: Bytes::from(vec![b'x'; n]),
            entries: 1,
        }
    }

    #[test]
    fn keeps_pages_within_its_bytes_dropping_the_oldest_first() {
        let c = PageCache::new(100);
        c.put(key(1), page(40));
        c.put(key(2), page(40));
        assert_eq!(c.bytes(), 80);
        c.put(key(3), page(40));
        assert!(c.get(&key(1)).is_none(), "the oldest went");
        assert!(c.get(&key(2)).is_some() && c.get(&key(3)).is_some());
        assert_eq!(c.bytes(), 80);
        c.put(key(4), page(101));
        assert!(c.get(&key(4)).is_none(), "larger than the cache: not kept");
        assert_eq!(c.bytes(), 80);
    }

    #[test]
    fn a_key_differs_by_personal_data() {
        let c = PageCache::new(100);
        c.put(key(1), page(10));
        let PageKey::Date {
            ledger,
            topic,
            date,
            after,
            limit,
            ..
        } = key(1)
        else {
            unreachable!("a date key")
        };
        let personal = PageKey::Date {
            ledger,
            topic,
            date,
            after,
            limit,
            personal_data: true,
        };
        assert!(c.get(&personal).is_none());
    }
}
