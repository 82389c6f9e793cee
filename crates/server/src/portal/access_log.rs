//! The access log as merchants and partners read it: every Report API request on a merchant's
//! ledgers, or made with a partner's keys, each described as the reader would describe it —
//! whose credentials, which ledger, topic, date or feed page, personal data, result — with
//! filters, paging and a CSV export of the filtered rows.

use super::auth::SignedIn;
use super::merchant::Org;
use super::settlements::cell;
use super::templates::{AccessLogPage, AccessRow, Layout};
use super::{PortalError, page};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ledgerport_core::ids::LedgerId;
use ledgerport_core::world::RowId;
use ledgerport_store::{AccessLogFilter, AccessRecord};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;

/// Rows on one page of the access log.
const PAGE_ROWS: u32 = 100;
/// Rows the CSV export reads per query.
const CSV_BATCH: u32 = 1000;

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    ledger: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

/// The query's filters, checked: each bad field is a 400 naming it.
struct Filters {
    ledger: Option<LedgerId>,
    partner: Option<RowId>,
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
    before: Option<RowId>,
}

impl Filters {
    fn parse(q: &LogQuery) -> Result<Filters, PortalError> {
        let bad = |m: &str| PortalError::BadRequest(m.to_owned());
        let date = |field: &str, s: &str| match s.trim() {
            "" => Ok(None),
            s => s
                .parse::<jiff::civil::Date>()
                .map(Some)
                .map_err(|_| bad(&format!("{field}: must be a date, YYYY-MM-DD"))),
        };
        let number = |field: &str, s: &str| match s.trim() {
            "" => Ok(None),
            s => s
                .parse::<RowId>()
                .map(Some)
                .map_err(|_| bad(&format!("{field}: must be a number"))),
        };
        let ledger = match q.ledger.trim() {
            "" => None,
            s => Some(LedgerId::parse("ledger", s).map_err(|e| bad(&e.to_string()))?),
        };
        let f = Filters {
            ledger,
            partner: number("partner", &q.partner)?,
            from: date("from", &q.from)?,
            to: date("to", &q.to)?,
            before: number("before", &q.before)?,
        };
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from > to
        {
            return Err(bad("to: must not be before from"));
        }
        Ok(f)
    }

    /// The store's filter: `from` and `to` are whole UTC days, both included.
    fn store_filter(&self) -> Result<AccessLogFilter, PortalError> {
        let until = match self.to {
            Some(to) => Some(
                to.tomorrow()
                    .map_err(|_| PortalError::BadRequest("to: is too late".into()))?,
            ),
            None => None,
        };
        // The log's times are `wire_time`s, fixed-width UTC, so a day's start compares as text.
        let day_start = |d: jiff::civil::Date| format!("{d}T00:00:00.000000Z");
        Ok(AccessLogFilter {
            ledger_id: self.ledger.clone(),
            partner_id: self.partner,
            from: self.from.map(day_start),
            until: until.map(day_start),
            before_id: self.before,
            limit: PAGE_ROWS,
            ..AccessLogFilter::default()
        })
    }

    /// The filters as a query string, for the next page's and the CSV's links.
    fn query(&self) -> String {
        let mut q = vec![];
        if let Some(l) = &self.ledger {
            q.push(format!("ledger={l}"));
        }
        if let Some(p) = self.partner {
            q.push(format!("partner={p}"));
        }
        if let Some(d) = self.from {
            q.push(format!("from={d}"));
        }
        if let Some(d) = self.to {
            q.push(format!("to={d}"));
        }
        q.join("&")
    }
}

/// Whose reader the rows are described for.
enum Reader<'a> {
    Merchant {
        org: &'a Org,
        /// Every partner's name, to name the partner of a key.
        partners: HashMap<RowId, String>,
        /// The partners the page offers as a filter: those holding grants on the ledgers.
        choices: Vec<(RowId, String)>,
    },
    Partner,
}

impl Reader<'_> {
    /// The credentials of a request in the reader's words. Only authenticated requests come
    /// here: the key is known, because its token verified.
    fn credentials(&self, r: &AccessRecord) -> String {
        let x = &r.rec;
        let client = x.client_id.as_deref().unwrap_or("?");
        let Reader::Merchant { org, partners, .. } = self else {
            return format!("key {client}");
        };
        if let Some(p) = x.partner_id {
            // A partner is named even when it was refused: its token proved whose key it is,
            // partners are registered and approved parties the merchant can deal with, and a
            // merchant who sees an unexpected partner probing its ledgers should know whom to ask.
            let name = partners
                .get(&p)
                .map(String::as_str)
                .unwrap_or("a partner no longer registered");
            return format!("{name}, key {client}");
        }
        if x.merchant_id == Some(org.id) {
            return format!("your organisation's keys (key {client})");
        }
        if let Some(msn) = x.msn
            && let Some(u) = org.units.iter().find(|u| u.msn == msn)
        {
            return format!("your sales unit's keys (MSN {msn}, {})", u.name);
        }
        if x.merchant_id.is_some() || x.msn.is_some() {
            // Another merchant's keys are not named: that merchant is no party to this one's
            // data sharing, and its name would tell one customer of the operator about another.
            return "another organisation's keys".into();
        }
        format!("the operator's service keys (key {client})")
    }

    /// The result in the reader's words. On a merchant's own ledger a 404 is a refusal (the
    /// ledger exists; these credentials may not read it); a partner learns no more than its
    /// answer said.
    fn result(&self, r: &AccessRecord) -> String {
        let x = &r.rec;
        match self {
            Reader::Merchant { .. } if x.status == 404 => {
                "refused: no access to this ledger".into()
            }
            _ if x.result.is_empty() => format!("status {}", x.status),
            _ => x.result.clone(),
        }
    }

    fn row(&self, r: &AccessRecord) -> AccessRow {
        let x = &r.rec;
        let asked = match (&x.ledger_date, x.feed_after) {
            (Some(d), _) => d.clone(),
            (None, Some(0)) => "feed, first page".into(),
            (None, Some(n)) => format!("feed, after entry {n}"),
            (None, None) if x.endpoint.ends_with("/ledgers") => "ledger listing".into(),
            (None, None) if x.endpoint.ends_with("/grants") => "grant listing".into(),
            (None, None) => String::new(),
        };
        let personal_data = match x.personal_data.as_deref() {
            Some("given") => "asked, given",
            Some("withheld") => "asked, withheld",
            _ => "",
        };
        AccessRow {
            id: r.id,
            at: r.at.get(..19).unwrap_or(&r.at).replace('T', " "),
            credentials: self.credentials(r),
            ledger: x.ledger_id.clone().unwrap_or_default(),
            topic: x.topic.clone().unwrap_or_default(),
            asked,
            personal_data: personal_data.into(),
            result: self.result(r),
        }
    }
}

/// The merchant's reader: every partner's name, and those holding grants on its ledgers.
async fn merchant_reader<'a>(state: &AppState, org: &'a Org) -> Result<Reader<'a>, PortalError> {
    let partners: HashMap<RowId, String> = state
        .store
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let mut choices = std::collections::BTreeSet::new();
    for v in &org.ledgers {
        for g in state.store.grants(None, Some(&v.ledger.ledger_id)).await? {
            if let Some(n) = partners.get(&g.partner_id) {
                choices.insert((n.clone(), g.partner_id));
            }
        }
    }
    Ok(Reader::Merchant {
        org,
        partners,
        choices: choices.into_iter().map(|(n, id)| (id, n)).collect(),
    })
}

/// The merchant's filter: authenticated requests on its own ledgers.
fn merchant_filter(org: &Org, f: &Filters) -> Result<AccessLogFilter, PortalError> {
    if let Some(l) = &f.ledger
        && !org.ledgers.iter().any(|v| &v.ledger.ledger_id == l)
    {
        return Err(PortalError::BadRequest(
            "ledger: is not one of your ledgers".into(),
        ));
    }
    Ok(AccessLogFilter {
        owner_merchant_id: Some(org.id),
        authenticated: Some(true),
        ..f.store_filter()?
    })
}

/// The partner's filter: its own keys' requests, whichever ledger they named.
fn partner_filter(pid: RowId, f: &Filters) -> Result<AccessLogFilter, PortalError> {
    Ok(AccessLogFilter {
        partner_id: Some(pid),
        ..f.store_filter()?
    })
}

async fn render(
    state: &AppState,
    who: &SignedIn,
    here: &'static str,
    reader: &Reader<'_>,
    f: &Filters,
    filter: AccessLogFilter,
) -> Result<Response, PortalError> {
    let records = state.store.access_log(&filter).await?;
    let older = (records.len() == PAGE_ROWS as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    // Requests without valid credentials are noise to a merchant (anyone can send them, naming
    // any ledger id): counted for the period, never shown as rows.
    let unauthenticated = match reader {
        Reader::Merchant { .. } => Some(
            state
                .store
                .count_access(&AccessLogFilter {
                    authenticated: Some(false),
                    before_id: None,
                    ..filter.clone()
                })
                .await?,
        ),
        Reader::Partner => None,
    };
    let (ledgers, partners) = match reader {
        Reader::Merchant { org, choices, .. } => (
            org.ledgers
                .iter()
                .map(|v| v.ledger.ledger_id.to_string())
                .collect(),
            choices.clone(),
        ),
        Reader::Partner => (vec![], vec![]),
    };
    let query = f.query();
    Ok(page(
        who.flash.is_some(),
        &AccessLogPage {
            l: Layout::of(who, here),
            action: here,
            merchant: matches!(reader, Reader::Merchant { .. }),
            ledgers,
            ledger: f.ledger.as_ref().map(|l| l.to_string()).unwrap_or_default(),
            partners,
            partner: f.partner.unwrap_or(0),
            from: f.from.map(|d| d.to_string()).unwrap_or_default(),
            to: f.to.map(|d| d.to_string()).unwrap_or_default(),
            rows: records.iter().map(|r| reader.row(r)).collect(),
            unauthenticated,
            older: older.map(|id| {
                if query.is_empty() {
                    format!("{here}?before={id}")
                } else {
                    format!("{here}?{query}&before={id}")
                }
            }),
            csv: if query.is_empty() {
                format!("{here}.csv")
            } else {
                format!("{here}.csv?{query}")
            },
        },
    ))
}

/// Every row the filter selects (paging aside), as CSV with a header row (RFC 4180: CRLF line
/// ends, cells quoted when they hold a comma, quote or line break).
async fn csv(
    state: &AppState,
    reader: &Reader<'_>,
    mut filter: AccessLogFilter,
    file: &str,
) -> Result<Response, PortalError> {
    let mut out = String::from(
        "time,credentials,ledgerId,topic,dateOrPage,personalData,result,status,endpoint,requestId\r\n",
    );
    filter.before_id = None;
    filter.limit = CSV_BATCH;
    loop {
        let batch = state.store.access_log(&filter).await?;
        for r in &batch {
            let row = reader.row(r);
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{},{},{}\r\n",
                cell(&r.at, true),
                cell(&row.credentials, true),
                cell(&row.ledger, true),
                cell(&row.topic, true),
                cell(&row.asked, true),
                cell(&row.personal_data, true),
                cell(&row.result, true),
                r.rec.status,
                cell(&r.rec.endpoint, true),
                cell(&r.rec.request_id, true),
            );
        }
        match batch.last() {
            Some(last) if batch.len() == CSV_BATCH as usize => filter.before_id = Some(last.id),
            _ => break,
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        out,
    )
        .into_response())
}

const MERCHANT_PAGE: &str = "/portal/merchant/access-log";
const PARTNER_PAGE: &str = "/portal/partner/access-log";

pub async fn merchant_page(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<LogQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let f = Filters::parse(&q)?;
    let filter = merchant_filter(&org, &f)?;
    let reader = merchant_reader(&state, &org).await?;
    render(&state, &who, MERCHANT_PAGE, &reader, &f, filter).await
}

pub async fn merchant_csv(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<LogQuery>,
) -> Result<Response, PortalError> {
    let org = Org::load(&state, &who).await?;
    let f = Filters::parse(&q)?;
    let filter = merchant_filter(&org, &f)?;
    let reader = merchant_reader(&state, &org).await?;
    csv(&state, &reader, filter, "access-log.csv").await
}

pub async fn partner_page(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<LogQuery>,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let f = Filters::parse(&q)?;
    let filter = partner_filter(pid, &f)?;
    render(&state, &who, PARTNER_PAGE, &Reader::Partner, &f, filter).await
}

pub async fn partner_csv(
    State(state): State<AppState>,
    who: SignedIn,
    Query(q): Query<LogQuery>,
) -> Result<Response, PortalError> {
    let pid = who.partner()?;
    let f = Filters::parse(&q)?;
    let filter = partner_filter(pid, &f)?;
    csv(&state, &Reader::Partner, filter, "access-log.csv").await
}
