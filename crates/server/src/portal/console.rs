//! The operator console's forms for the world (merchants, sales units, ledgers) and its view of
//! ingestion and closing.
//!
//! Each form checks its fields the way `ledgerport admin` does and refuses with 400 naming the
//! field (by its label on the form) before anything is written; the change goes through the
//! store with the operator as the audited actor.

use super::PostedForm;
use super::auth::SignedIn;
use super::templates::{Layout, OperatorStatusPage, StatusLedger};
use super::{PortalError, field, id_field, page, redirect_flash};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use ledgerport_core::error::ParseError;
use ledgerport_core::ids::{BankAccount, BusinessId, Country, Currency, LedgerId, Msn, OrgScheme};
use ledgerport_core::world::{
    DEFAULT_PAGE_SIZE, FeePlan, MAX_PAGE_SIZE, Merchant, PayoutFrequency, SalesUnitKind,
    SettlementMode, parse_cutoff, parse_time_zone,
};
use ledgerport_store::{NewLedger, NewMerchant, NewSalesUnit};

const WORLD: &str = "/portal/operator/world";

fn parsed<T>(r: Result<T, ParseError>) -> Result<T, PortalError> {
    r.map_err(|e| PortalError::BadRequest(format!("{e}.")))
}

fn bad(text: String) -> PortalError {
    PortalError::BadRequest(text)
}

/// A field's value, trimmed; `default` when absent or empty.
fn value<'a>(pairs: &'a [(String, String)], name: &str, default: &'a str) -> &'a str {
    match field(pairs, name).map(str::trim) {
        Some(v) if !v.is_empty() => v,
        _ => default,
    }
}

/// A name of 1 to 200 characters.
fn name_field(pairs: &[(String, String)], name: &str, label: &str) -> Result<String, PortalError> {
    let v = value(pairs, name, "");
    if v.is_empty() || v.chars().count() > 200 {
        return Err(bad(format!("{label}: must be 1 to 200 characters.")));
    }
    Ok(v.to_owned())
}

/// The merchant a form names by row id.
async fn merchant_of(
    state: &AppState,
    pairs: &[(String, String)],
) -> Result<Merchant, PortalError> {
    let id = id_field(pairs, "merchant").map_err(|_| bad("Merchant: choose a merchant.".into()))?;
    state
        .store
        .merchant(id)
        .await?
        .ok_or_else(|| bad("Merchant: no such merchant.".into()))
}

/// The time zone a new ledger of a merchant of `country` gets unless another is chosen.
pub fn default_time_zone(country: Country) -> &'static str {
    match country {
        Country::NO => "Europe/Oslo",
        Country::DK => "Europe/Copenhagen",
        Country::FI => "Europe/Helsinki",
    }
}

pub async fn create_merchant(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    who.operator()?;
    let country = parsed(Country::parse("Country", value(&pairs, "country", "")))?;
    // Spaces as people write them (`987 654 321`) are not part of the number.
    let number: String = value(&pairs, "org_number", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let business = parsed(BusinessId::parse(
        "Organisation number",
        OrgScheme::of_country(country).as_str(),
        &number,
    ))?;
    let name = name_field(&pairs, "name", "Name")?;
    if let Some(m) = state.store.merchant_by_org(&business.id).await? {
        return Err(bad(format!(
            "Organisation number: merchant {} ({}) already has it.",
            m.name, m.business.id
        )));
    }
    let m = state
        .store
        .create_merchant(&who.actor(), NewMerchant { business, name })
        .await?;
    Ok(redirect_flash(
        WORLD,
        "ok",
        &format!("Created merchant {} ({}).", m.name, m.business.id),
    ))
}

pub async fn create_sales_unit(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    who.operator()?;
    let m = merchant_of(&state, &pairs).await?;
    let msn = parsed(Msn::parse("MSN", value(&pairs, "msn", "")))?;
    let name = name_field(&pairs, "name", "Name")?;
    let kind = parsed(SalesUnitKind::parse("Kind", value(&pairs, "kind", "")))?;
    let country = m.business.scheme.country();
    let vm_number = match (kind, value(&pairs, "vm_number", "")) {
        (SalesUnitKind::Api, "") => None,
        (SalesUnitKind::Api, _) => {
            return Err(bad(
                "Vippsnummer: an api sales unit has none; leave it empty.".into(),
            ));
        }
        (SalesUnitKind::VmNumber, "") => {
            return Err(bad(
                "Vippsnummer: a vm-number sales unit needs its Vippsnummer.".into(),
            ));
        }
        (SalesUnitKind::VmNumber, n) if n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(bad("Vippsnummer: must be 1 to 10 digits.".into()));
        }
        (SalesUnitKind::VmNumber, n) => Some(n.to_owned()),
    };
    if let Some(u) = state.store.sales_unit(msn).await? {
        return Err(bad(format!(
            "MSN: sales unit {msn} already exists ({}).",
            u.name
        )));
    }
    if let Some(n) = &vm_number {
        let handle = format!("{country}:{n}");
        if let Some(u) = state
            .store
            .sales_units(None)
            .await?
            .iter()
            .find(|u| u.handle.to_string() == handle)
        {
            return Err(bad(format!(
                "Vippsnummer: {handle} already belongs to sales unit {}.",
                u.msn
            )));
        }
    }
    let u = state
        .store
        .create_sales_unit(
            &who.actor(),
            NewSalesUnit {
                msn,
                merchant_id: m.id,
                name,
                kind,
                country,
                vm_number,
            },
        )
        .await?;
    Ok(redirect_flash(
        WORLD,
        "ok",
        &format!(
            "Created sales unit {} (MSN {}, {}) for {}.",
            u.name, u.msn, u.handle, m.name
        ),
    ))
}

/// A whole number field between `min` and `max`, `default` when empty.
fn number<T>(
    pairs: &[(String, String)],
    name: &str,
    label: &str,
    default: T,
    min: T,
    max: T,
) -> Result<T, PortalError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let raw = value(pairs, name, "");
    let v = if raw.is_empty() {
        default
    } else {
        raw.parse()
            .map_err(|_| bad(format!("{label}: must be a whole number.")))?
    };
    if v < min || v > max {
        return Err(bad(format!("{label}: must be {min} to {max}.")));
    }
    Ok(v)
}

pub async fn create_ledger(
    State(state): State<AppState>,
    PostedForm { who, pairs }: PostedForm,
) -> Result<Response, PortalError> {
    who.operator()?;
    let ledger_id = parsed(LedgerId::parse("Ledger id", value(&pairs, "ledger_id", "")))?;
    let m = merchant_of(&state, &pairs).await?;
    let country = m.business.scheme.country();
    let mut settles_for: Vec<Msn> = vec![];
    for s in value(&pairs, "units", "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let msn = parsed(Msn::parse("Sales units", s))?;
        if settles_for.contains(&msn) {
            return Err(bad(format!("Sales units: {msn} is listed twice.")));
        }
        settles_for.push(msn);
    }
    if settles_for.is_empty() {
        return Err(bad(
            "Sales units: name at least one MSN of the merchant's units.".into(),
        ));
    }
    let currency = match value(&pairs, "currency", "") {
        "" => country.currency(),
        c => parsed(Currency::parse("Currency", c))?,
    };
    let scheme = value(&pairs, "account_scheme", "");
    // The scheme first, so a bad scheme is blamed on its own field.
    parsed(BankAccount::parse("Account scheme", scheme, "0000"))?;
    let payout_account = parsed(BankAccount::parse(
        "Bank account",
        scheme,
        value(&pairs, "account", ""),
    ))?;
    let time_zone = parsed(parse_time_zone(
        "Time zone",
        value(&pairs, "time_zone", default_time_zone(country)),
    ))?;
    let cutoff = parsed(parse_cutoff("Cutoff", value(&pairs, "cutoff", "00:00")))?;
    let payout_frequency = parsed(PayoutFrequency::parse(
        "Payout frequency",
        value(&pairs, "payout", "daily"),
    ))?;
    let settlement_mode = parsed(SettlementMode::parse(
        "Settlement",
        value(&pairs, "settlement", "net"),
    ))?;
    let basis_points = number(&pairs, "fee_bp", "Fee (basis points)", 0i64, 0, 10_000)?;
    let fixed_minor = number(&pairs, "fee_fixed", "Fixed fee", 0i64, 0, i64::MAX)?;
    let page_size = number(
        &pairs,
        "page_size",
        "Page size",
        DEFAULT_PAGE_SIZE,
        1,
        MAX_PAGE_SIZE,
    )?;
    if state.store.ledger(&ledger_id).await?.is_some() {
        return Err(bad(format!(
            "Ledger id: ledger {ledger_id} already exists."
        )));
    }
    let ledgers = state.store.ledgers().await?;
    for msn in &settles_for {
        let u = state
            .store
            .sales_unit(*msn)
            .await?
            .ok_or_else(|| bad(format!("Sales units: no sales unit {msn}.")))?;
        if u.merchant_id != m.id {
            return Err(bad(format!(
                "Sales units: sales unit {msn} belongs to another merchant than {}.",
                m.name
            )));
        }
        if let Some(l) = ledgers
            .iter()
            .find(|v| v.units.iter().any(|x| x.msn == *msn))
        {
            return Err(bad(format!(
                "Sales units: sales unit {msn} is already settled by ledger {}.",
                l.ledger.ledger_id
            )));
        }
    }
    let l = state
        .store
        .create_ledger(
            &who.actor(),
            NewLedger {
                ledger_id,
                currency,
                payout_account,
                owner_merchant_id: m.id,
                settles_for,
                time_zone,
                cutoff,
                payout_frequency,
                settlement_mode,
                fee_plan: FeePlan {
                    basis_points,
                    fixed_minor,
                },
                page_size,
                created_at: None,
            },
        )
        .await?;
    Ok(redirect_flash(
        WORLD,
        "ok",
        &format!(
            "Created ledger {} ({}) for {}.",
            l.ledger.ledger_id,
            l.ledger.currency.as_str(),
            m.name
        ),
    ))
}

/// A lag in seconds as people read it.
fn show_lag(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0 => "up to date".into(),
        1..=119 => format!("{s} s behind"),
        120..=7199 => format!("{} min behind", s / 60),
        _ => format!("{} h behind", s / 3600),
    }
}

/// Ingestion, closing and mail: the events this process took since it started, every ledger's
/// progress (closed through which date, how far its closing lags behind the clock) and the mail
/// outbox's queue.
pub async fn status(State(state): State<AppState>, who: SignedIn) -> Result<Response, PortalError> {
    who.operator()?;
    let now = state.clock.now();
    let merchants: std::collections::HashMap<_, _> = state
        .store
        .merchants()
        .await?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    let mut ledgers: Vec<StatusLedger> = vec![];
    let mut behind = 0;
    for v in state.store.ledgers().await? {
        let lag = crate::metrics::closing_lag(&v.ledger, now);
        if lag > 0.0 {
            behind += 1;
        }
        ledgers.push(StatusLedger {
            ledger: v.ledger.ledger_id.to_string(),
            merchant: merchants
                .get(&v.ledger.owner_merchant_id)
                .cloned()
                .unwrap_or_default(),
            payout: v.ledger.payout_frequency.as_str(),
            today: v.ledger.ledger_date_of(now).to_string(),
            closed_through: v.ledger.closed_through.to_string(),
            lag: show_lag(lag),
            behind: lag > 0.0,
        });
    }
    let (accepted, rejected) = state.metrics.events_counted();
    let closing = match state.config.close_interval {
        Some(every) => format!(
            "This server closes due dates every {} s (one server at a time, by the closing lease).",
            every.as_secs().max(1)
        ),
        None => {
            "This server does not close dates: another server or `ledgerport admin close` does."
                .into()
        }
    };
    let outbox = state.store.outbox_summary().await?;
    let mail_sender = match &state.config.mail {
        Some(smtp) => format!(
            "This server sends mails through {}:{} every {} s.",
            smtp.host,
            smtp.port,
            crate::mail::SEND_INTERVAL.as_secs()
        ),
        None => "This server has no SMTP server configured (`mail.smtp_host`): mails wait here \
                 until a server that has one sends them."
            .into(),
    };
    Ok(page(
        who.flash.is_some(),
        &OperatorStatusPage {
            l: Layout::of(&who, "/portal/operator/status"),
            accepted,
            rejected,
            closing,
            behind,
            ledgers,
            mail_sender,
            mail_pending: outbox.pending,
            mail_failed: outbox.failed,
            mail_oldest: outbox
                .oldest
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            mail_last_error: outbox.last_error.unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_read_as_people_say_them() {
        assert_eq!(show_lag(0.0), "up to date");
        assert_eq!(show_lag(42.5), "42 s behind");
        assert_eq!(show_lag(600.0), "10 min behind");
        assert_eq!(show_lag(90_000.0), "25 h behind");
    }
}
