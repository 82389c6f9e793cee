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
//!
//! Read-ahead: a client that follows a feed's cursors asks for the next page as soon as it has
//! this one, and that page's first reading (1,001 rows stepped and rendered) is most of what the
//! request costs. So when a final feed page is answered, the handler may start reading the next
//! one in a task of its own ([`PageCache::start_reading`]) while this answer waits for its
//! access-log row and travels to the client. The next request then finds the body kept, or
//! waits for the reading already under way instead of doing it a second time
//! ([`PageCache::get_or_wait`]). A page read ahead is only kept if it is final too, by the same
//! rule as any other; one that may still grow is dropped and read again by its request. A
//! page read ahead counts as a sign that its ledger is being read in order only until its first
//! reader: that reader reads the next one ahead, later readers of the same page do not (they
//! are going over pages already kept, and reading ahead past the last kept page would read the
//! page that may still grow once more each time round).

use axum::body::Bytes;
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

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
    /// The position the next page starts after (the last entry's, or the cursor's when empty).
    pub position: i64,
}

/// A page found kept.
#[derive(Debug, Clone)]
pub struct Hit {
    pub page: CachedPage,
    /// The page was read ahead and this is its first reader: its ledger is being read in
    /// order, so the page after it is worth reading ahead too.
    pub read_ahead: bool,
}

/// The cache: bounded by the bytes of its bodies, the oldest kept page dropped first.
#[derive(Debug)]
pub struct PageCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pages: HashMap<PageKey, Kept>,
    order: VecDeque<PageKey>,
    bytes: usize,
    /// Pages being read ahead now; the receiver sees its sender dropped when the reading ends.
    reading: HashMap<PageKey, watch::Receiver<()>>,
}

#[derive(Debug)]
struct Kept {
    page: CachedPage,
    /// Read ahead and not asked for yet.
    ahead: bool,
}

/// A page being read ahead: kept in the cache's list of readings until dropped, so that its
/// request waits for it rather than reading it too. Dropping it (kept or not) wakes those
/// waiting.
#[derive(Debug)]
pub struct Reading {
    cache: Arc<PageCache>,
    key: PageKey,
    _done: watch::Sender<()>,
}

impl Reading {
    /// Keeps the page read ahead (the caller decides it is final) and ends the reading.
    pub fn keep(self, page: CachedPage) {
        self.cache.insert(self.key.clone(), page, true);
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        // Out of the list before the sender goes (after this body), so a waiter that wakes
        // finds the page kept or not, never still being read.
        if let Ok(mut inner) = self.cache.inner.lock() {
            inner.reading.remove(&self.key);
        }
    }
}

impl PageCache {
    pub fn new(max_bytes: usize) -> PageCache {
        PageCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, key: &PageKey) -> Option<Hit> {
        // A poisoned lock only costs the cache: the page is rendered again.
        hit(&mut *self.inner.lock().ok()?, key)
    }

    /// The page if kept; if it is being read ahead, waits for that reading to end first.
    /// `None` when the page has to be read by the caller.
    pub async fn get_or_wait(&self, key: &PageKey) -> Option<Hit> {
        let mut done = {
            let mut inner = self.inner.lock().ok()?;
            if let Some(kept) = hit(&mut inner, key) {
                return Some(kept);
            }
            inner.reading.get(key)?.clone()
        };
        // Never sent on: this returns when the reading's sender is dropped.
        let _ = done.changed().await;
        self.get(key)
    }

    /// Starts reading `key` ahead: `None` when it is kept already or being read.
    pub fn start_reading(self: &Arc<Self>, key: PageKey) -> Option<Reading> {
        let mut inner = self.inner.lock().ok()?;
        if inner.pages.contains_key(&key) || inner.reading.contains_key(&key) {
            return None;
        }
        let (done, waiting) = watch::channel(());
        inner.reading.insert(key.clone(), waiting);
        Some(Reading {
            cache: self.clone(),
            key,
            _done: done,
        })
    }

    /// Keeps a final page's body; a body larger than the whole cache is not kept.
    pub fn put(&self, key: PageKey, page: CachedPage) {
        self.insert(key, page, false)
    }

    fn insert(&self, key: PageKey, page: CachedPage, ahead: bool) {
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
                inner.bytes -= p.page.body.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(key.clone());
        inner.pages.insert(key, Kept { page, ahead });
    }

    /// The bytes of the bodies kept now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

/// The page kept under `key`, telling whether this is the first reader of a page read ahead.
fn hit(inner: &mut Inner, key: &PageKey) -> Option<Hit> {
    let kept = inner.pages.get_mut(key)?;
    let read_ahead = std::mem::take(&mut kept.ahead);
    Some(Hit {
        page: kept.page.clone(),
        read_ahead,
    })
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
            position: 1,
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
    fn a_read_ahead_page_says_so_to_its_first_reader_only() {
        let c = Arc::new(PageCache::new(100));
        c.put(key(1), page(10));
        assert!(
            !c.get(&key(1)).expect("kept").read_ahead,
            "read for a request"
        );
        let reading = c
            .start_reading(key(2))
            .expect("neither kept nor being read");
        assert!(c.start_reading(key(2)).is_none(), "being read already");
        assert!(c.start_reading(key(1)).is_none(), "kept already");
        reading.keep(page(10));
        assert!(c.get(&key(2)).expect("kept").read_ahead, "its first reader");
        assert!(!c.get(&key(2)).expect("kept").read_ahead, "a later reader");
        assert!(c.start_reading(key(2)).is_none(), "kept now");
    }

    #[tokio::test]
    async fn a_request_waits_for_its_page_being_read_ahead() {
        let c = Arc::new(PageCache::new(100));
        assert!(
            c.get_or_wait(&key(1)).await.is_none(),
            "neither kept nor being read"
        );
        let reading = c.start_reading(key(1)).expect("reading");
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.get_or_wait(&key(1)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the page is read");
        reading.keep(page(10));
        let hit = waiter
            .await
            .expect("the waiter")
            .expect("the page read ahead");
        assert_eq!(hit.page.body.len(), 10);
        assert!(hit.read_ahead);
    }

    #[tokio::test]
    async fn a_page_read_ahead_and_not_kept_is_read_by_its_request() {
        let c = Arc::new(PageCache::new(100));
        let reading = c.start_reading(key(1)).expect("reading");
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.get_or_wait(&key(1)).await }
        });
        tokio::task::yield_now().await;
        // The page may still grow, or the read failed: not kept.
        drop(reading);
        assert!(
            waiter.await.expect("the waiter").is_none(),
            "the request reads it"
        );
        assert!(c.start_reading(key(1)).is_some(), "no longer being read");
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
