//! `ledgerport check-report`: a partner's check that what the Report API gives for each closed
//! date is complete and unchanged. It uses only the public HTTP API, as any client would: a token
//! (`/miami/v1/token` with accounting or merchant-level keys, `/accesstoken/get` with sales-unit
//! keys), the ledger listing, the date pages and the completeness proofs
//! (`/ledgerport/v1/ledgers/{ledgerId}/{topic}/dates/{ledgerDate}/proof`), and recomputes every
//! proof from the downloaded entries with [`ledgerport_core::proof`].
//!
//! Which dates: per ledger and topic, the closed dates are found from the proofs themselves.
//! From `--to` (default: tomorrow in UTC, later than any ledger's today) back, dates answering
//! 409 (not closed yet) are passed over until the latest proof; from there the proofs are
//! followed back a day at a time until the start of the chain (a proof without a previous chain
//! digest) or `--from`. Then the dates are checked oldest first, so the mismatch reported is the
//! earliest.

use anyhow::{Context, anyhow, bail};
use ledgerport_core::ids::{LedgerDate, LedgerId, Topic};
use ledgerport_core::proof::{DateProof, Digest, Mismatch, ProofEntry, check_date, check_link};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// How many open dates (409) are passed over looking for the latest closed one: a monthly
/// payout period leaves at most about 31 dates open, plus the time zones' spread.
const OPEN_DATES_AT_MOST: u32 = 40;

/// How often a request that got 429 is tried again (after its `Retry-After`).
const RETRIES: u32 = 5;

#[derive(clap::Args)]
#[command(after_help = "\
Credentials: accounting or merchant-level keys get their token from /miami/v1/token (--client-id
and --client-secret); sales-unit keys from /accesstoken/get (add --subscription-key, and
--merchant-serial-number if the keys' MSN should be sent). The secret may come from the
environment (LEDGERPORT_CLIENT_SECRET) rather than the command line.

What is checked, per ledger and topic, for every closed date found (see API.md, Completeness
proofs): the date's entries (every page of /report/v2/ledgers/{id}/{topic}/dates/{date}) give
the proof's entryCount, amountSum, openingBalance, closingBalance, digest and chainDigest, and
each proof names the previous date's chainDigest and opens with its closingBalance.

Exit status: 0 when every date checked matches its proof (a summary is printed); 1 naming the
first mismatch (ledger, topic, date and what differs), or when the server cannot be reached or
answers what the API does not say.

An https:// server's certificate is checked against the system's root certificates (or
SSL_CERT_FILE / SSL_CERT_DIR) and the certificates of --ca-file.")]
pub struct CheckReportArgs {
    /// The Ledgerport to check, e.g. https://ledgerport.example.com or http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// A PEM file of CA certificates to trust for an https:// --base-url besides the system's
    /// root certificates (a private CA, a self-signed test server).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The keys' client id.
    #[arg(long, env = "LEDGERPORT_CLIENT_ID", value_name = "ID")]
    pub client_id: String,
    /// The keys' secret.
    #[arg(
        long,
        env = "LEDGERPORT_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub client_secret: String,
    /// Sales-unit keys: one of their subscription keys (the token then comes from
    /// /accesstoken/get).
    #[arg(
        long,
        env = "LEDGERPORT_SUBSCRIPTION_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub subscription_key: Option<String>,
    /// Sales-unit keys: the Merchant-Serial-Number to send with every request.
    #[arg(long, value_name = "MSN", requires = "subscription_key")]
    pub merchant_serial_number: Option<String>,
    /// Check only this ledger (repeatable); without it, every ledger the keys list.
    #[arg(long = "ledger", value_name = "LEDGER-ID")]
    pub ledgers: Vec<String>,
    /// Check dates from this one on (YYYY-MM-DD); without it, from the start of each chain.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Check dates up to this one (YYYY-MM-DD); without it, up to the latest closed date.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
}

pub async fn run(args: CheckReportArgs) -> anyhow::Result<()> {
    let from = args
        .from
        .as_deref()
        .map(|d| LedgerDate::parse("--from", d))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|d| LedgerDate::parse("--to", d))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        bail!("--from: {f} is after --to {t}");
    }
    let ledgers = args
        .ledgers
        .iter()
        .map(|l| LedgerId::parse("--ledger", l))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = Client::new(&args)?;
    let ledgers = if ledgers.is_empty() {
        client.ledgers().await?
    } else {
        ledgers
    };
    let to = match to {
        Some(t) => t,
        None => {
            let today = jiff::tz::TimeZone::UTC
                .to_datetime(jiff::Timestamp::now())
                .date();
            LedgerDate::from_date(today.tomorrow().context("no date after today")?)
        }
    };
    let mut out = std::io::stdout().lock();
    let (mut dates, mut entries) = (0usize, 0usize);
    for ledger in &ledgers {
        for topic in [Topic::Funds, Topic::Fees] {
            let checked = check_topic(&mut client, ledger, topic, from, to).await?;
            let line = match checked.range {
                Some((first, last)) => format!(
                    "ledger {ledger} {topic}: {} from {first} to {last}, {} entries, all as proved",
                    count(checked.dates, "date", "dates"),
                    checked.entries
                ),
                None => format!("ledger {ledger} {topic}: {}", checked.why_none),
            };
            writeln!(out, "{line}").context("writing the output")?;
            dates += checked.dates;
            entries += checked.entries;
        }
    }
    writeln!(
        out,
        "{}, {}, {} checked: every date matches its proof",
        count(ledgers.len(), "ledger", "ledgers"),
        count(dates, "date", "dates"),
        count(entries, "entry", "entries")
    )
    .context("writing the output")?;
    Ok(())
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What one topic's check found.
struct Checked {
    dates: usize,
    entries: usize,
    range: Option<(LedgerDate, LedgerDate)>,
    /// Why no date was checked.
    why_none: String,
}

/// One proof request's answer.
enum ProofAnswer {
    Proof(Box<DateProof>),
    /// 409: the date is not closed yet.
    Open,
    /// 403 (outside the grant's topics or period) or 404 naming `ledgerDate` (before the
    /// ledger's first date): the detail.
    NotForUs(String),
}

async fn check_topic(
    client: &mut Client,
    ledger: &LedgerId,
    topic: Topic,
    from: Option<LedgerDate>,
    to: LedgerDate,
) -> anyhow::Result<Checked> {
    let none = |why: String| Checked {
        dates: 0,
        entries: 0,
        range: None,
        why_none: why,
    };
    // The latest closed date on or before `to`.
    let mut date = to;
    let mut open = 0;
    let latest = loop {
        if from.is_some_and(|f| date < f) {
            return Ok(none(format!(
                "no closed date from {} to {to}",
                from.unwrap_or(date)
            )));
        }
        match client.proof(ledger, topic, date).await? {
            ProofAnswer::Proof(p) => break p,
            ProofAnswer::Open if open < OPEN_DATES_AT_MOST => open += 1,
            ProofAnswer::Open => {
                return Ok(none(format!(
                    "no closed date in the {OPEN_DATES_AT_MOST} dates up to {to}"
                )));
            }
            ProofAnswer::NotForUs(detail) if detail.starts_with("topic") => {
                return Ok(none(format!("not checked: {detail}")));
            }
            // After the grant's period: go on back to it.
            ProofAnswer::NotForUs(detail) if detail.contains("outside the grant") => {}
            ProofAnswer::NotForUs(detail) => return Ok(none(format!("no proofs: {detail}"))),
        }
        date = previous_day(date)?;
    };
    // Back along the chain.
    let mut proofs = vec![*latest];
    loop {
        let earliest = &proofs[proofs.len() - 1];
        if earliest.previous_chain_digest.is_none()
            || from.is_some_and(|f| earliest.ledger_date <= f)
        {
            break;
        }
        let date = previous_day(earliest.ledger_date)?;
        match client.proof(ledger, topic, date).await? {
            ProofAnswer::Proof(p) => proofs.push(*p),
            // The start of the grant's period: earlier dates are not this reader's.
            ProofAnswer::NotForUs(_) => break,
            ProofAnswer::Open => bail!(
                "ledger {ledger} {topic} {date}: the server says the date is not closed, yet \
                 {} after it has a proof naming a previous date",
                earliest.ledger_date
            ),
        }
    }
    proofs.reverse();
    let mut entries = 0;
    for (i, proof) in proofs.iter().enumerate() {
        let date = proof.ledger_date;
        let page = client.date_entries(ledger, topic, date).await?;
        entries += page.len();
        let parsed = page
            .iter()
            .enumerate()
            .map(|(n, e)| proof_entry(e).with_context(|| format!("entry {} of the date", n + 1)))
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("ledger {ledger} {topic} {date}"))?;
        let mut found = check_date(proof, parsed);
        if i > 0 {
            found.extend(check_link(&proofs[i - 1], proof));
        }
        if let Some(m) = found.first() {
            bail!(mismatch(ledger, topic, date, m, found.len()));
        }
    }
    Ok(Checked {
        dates: proofs.len(),
        entries,
        range: Some((proofs[0].ledger_date, proofs[proofs.len() - 1].ledger_date)),
        why_none: String::new(),
    })
}

fn mismatch(ledger: &LedgerId, topic: Topic, date: LedgerDate, m: &Mismatch, n: usize) -> String {
    let more = match n {
        1 => String::new(),
        n => format!(" ({} more on this date)", n - 1),
    };
    format!("mismatch: ledger {ledger} {topic} {date}: {m}{more}")
}

fn previous_day(d: LedgerDate) -> anyhow::Result<LedgerDate> {
    d.date()
        .yesterday()
        .map(LedgerDate::from_date)
        .map_err(|_| anyhow!("no date before {d}"))
}

/// An entry of a date page as a proof reads it; an error names the field that is missing or
/// not what the API says.
fn proof_entry(e: &Value) -> anyhow::Result<ProofEntry<'_>> {
    let text = |name: &'static str| {
        e.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{name}: missing or not a string"))
    };
    let int = |name: &'static str| {
        e.get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("{name}: missing or not an integer"))
    };
    Ok(ProofEntry {
        psp_reference: text("pspReference")?,
        time: text("time")?,
        ledger_date: LedgerDate::parse("ledgerDate", text("ledgerDate")?)?,
        entry_type: text("entryType")?,
        reference: text("reference")?,
        currency: text("currency")?,
        amount: int("amount")?,
        balance_before: int("balanceBefore")?,
        balance_after: int("balanceAfter")?,
        recipient_handle: text("recipientHandle")?,
    })
}

/// A proof as the server sent it, checked to be the one asked for.
fn parse_proof(
    v: &Value,
    ledger: &LedgerId,
    topic: Topic,
    date: LedgerDate,
) -> anyhow::Result<DateProof> {
    let text = |name: &'static str| {
        v.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{name}: missing or not a string"))
    };
    let int = |name: &'static str| {
        v.get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("{name}: missing or not an integer"))
    };
    let form = text("form")?;
    if form != ledgerport_core::proof::FORM {
        bail!(
            "form: {form} is not a form this checker knows ({})",
            ledgerport_core::proof::FORM
        );
    }
    let proof = DateProof {
        ledger_id: LedgerId::parse("ledgerId", text("ledgerId")?)?,
        topic: Topic::parse("topic", text("topic")?)?,
        ledger_date: LedgerDate::parse("ledgerDate", text("ledgerDate")?)?,
        entry_count: u64::try_from(int("entryCount")?)
            .map_err(|_| anyhow!("entryCount: negative"))?,
        amount_sum: int("amountSum")?,
        opening_balance: int("openingBalance")?,
        closing_balance: int("closingBalance")?,
        digest: Digest::parse("digest", text("digest")?)?,
        previous_chain_digest: match v.get("previousChainDigest") {
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Digest::parse("previousChainDigest", s)?),
            _ => bail!("previousChainDigest: missing or neither null nor a string"),
        },
        chain_digest: Digest::parse("chainDigest", text("chainDigest")?)?,
    };
    if (&proof.ledger_id, proof.topic, proof.ledger_date) != (ledger, topic, date) {
        bail!(
            "the proof is of ledger {} {} {}, not the one asked for",
            proof.ledger_id,
            proof.topic,
            proof.ledger_date
        );
    }
    Ok(proof)
}

/// The Report API as a client sees it: a token, renewed when it is refused, and GETs that wait
/// out a 429.
struct Client {
    http: reqwest::Client,
    base: Url,
    client_id: String,
    secret: String,
    subscription_key: Option<String>,
    msn: Option<String>,
    token: Option<String>,
}

impl Client {
    fn new(args: &CheckReportArgs) -> anyhow::Result<Self> {
        let base = Url::parse(args.base_url.trim_end_matches('/'))
            .map_err(|e| anyhow!("--base-url: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("--base-url: must be an https:// or http:// URL");
        }
        let extra = match &args.ca_file {
            Some(path) => ledgerport_server::http::read_ca_file(path)
                .map_err(|e| anyhow!("--ca-file: {e}"))?,
            None => Vec::new(),
        };
        let http = ledgerport_server::http::client_builder_with(&extra)
            .map_err(|e| anyhow!("starting the HTTP client: {e}"))?
            .timeout(Duration::from_secs(60))
            .user_agent(concat!(
                "ledgerport-check-report/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .context("starting the HTTP client")?;
        Ok(Client {
            http,
            base,
            client_id: args.client_id.clone(),
            secret: args.client_secret.clone(),
            subscription_key: args.subscription_key.clone(),
            msn: args.merchant_serial_number.clone(),
            token: None,
        })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", self.base.path().trim_end_matches('/'));
        url.set_path(&joined);
        Ok(url)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let mut tries = 0;
        loop {
            let attempt = req
                .try_clone()
                .ok_or_else(|| anyhow!("a request that cannot be repeated"))?;
            let res = attempt
                .send()
                .await
                .map_err(|e| anyhow!("cannot reach {}: {}", self.base, error_chain(&e)))?;
            if res.status() != StatusCode::TOO_MANY_REQUESTS || tries == RETRIES {
                return Ok(res);
            }
            tries += 1;
            let wait = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait.min(60))).await;
        }
    }

    async fn fetch_token(&mut self) -> anyhow::Result<String> {
        let req = match &self.subscription_key {
            Some(sub) => {
                let mut r = self
                    .http
                    .post(self.url("/accesstoken/get")?)
                    .header("client_id", &self.client_id)
                    .header("client_secret", &self.secret)
                    .header("Ocp-Apim-Subscription-Key", sub);
                if let Some(msn) = &self.msn {
                    r = r.header("Merchant-Serial-Number", msn);
                }
                r
            }
            None => self
                .http
                .post(self.url("/miami/v1/token")?)
                .basic_auth(&self.client_id, Some(&self.secret))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        };
        let res = self.send(req).await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body
                .get("error_description")
                .or_else(|| body.get("message"))
                .or_else(|| body.get("detail"))
                .and_then(Value::as_str)
                .unwrap_or("");
            bail!("the keys got no token ({status}): {why}");
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the token answer has no access_token"))?
            .to_owned();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// A GET of the Report API with the token (fetched, or renewed once when refused).
    async fn get(&mut self, url: Url) -> anyhow::Result<(StatusCode, Value)> {
        let mut renewed = false;
        loop {
            let token = match &self.token {
                Some(t) => t.clone(),
                None => self.fetch_token().await?,
            };
            let mut req = self.http.get(url.clone()).bearer_auth(token);
            if let Some(sub) = &self.subscription_key {
                req = req.header("Ocp-Apim-Subscription-Key", sub);
            }
            if let Some(msn) = &self.msn {
                req = req.header("Merchant-Serial-Number", msn);
            }
            let res = self.send(req).await?;
            let status = res.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // Miami tokens last 15 minutes: a long check outlives them.
                self.token = None;
                renewed = true;
                continue;
            }
            let body: Value = res.json().await.unwrap_or(Value::Null);
            return Ok((status, body));
        }
    }

    async fn ledgers(&mut self) -> anyhow::Result<Vec<LedgerId>> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut url = self.url("/settlement/v1/ledgers")?;
            if !cursor.is_empty() {
                url.query_pairs_mut().append_pair("cursor", &cursor);
            }
            let (status, body) = self.get(url).await?;
            if !status.is_success() {
                bail!("listing the ledgers: {}", problem(status, &body));
            }
            let items = body
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("listing the ledgers: the answer has no items"))?;
            for item in items {
                let id = item
                    .get("ledgerId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("listing the ledgers: an item without ledgerId"))?;
                out.push(LedgerId::parse("ledgerId", id)?);
            }
            cursor = body
                .get("cursor")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if cursor.is_empty() {
                return Ok(out);
            }
        }
    }

    async fn proof(
        &mut self,
        ledger: &LedgerId,
        topic: Topic,
        date: LedgerDate,
    ) -> anyhow::Result<ProofAnswer> {
        let url = self.url(&format!(
            "/ledgerport/v1/ledgers/{ledger}/{topic}/dates/{date}/proof"
        ))?;
        let (status, body) = self.get(url).await?;
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match status {
            StatusCode::OK => Ok(ProofAnswer::Proof(Box::new(
                parse_proof(&body, ledger, topic, date)
                    .with_context(|| format!("ledger {ledger} {topic} {date}: the proof"))?,
            ))),
            StatusCode::CONFLICT => Ok(ProofAnswer::Open),
            StatusCode::FORBIDDEN
                if detail.starts_with("topic") || detail.starts_with("ledgerDate") =>
            {
                Ok(ProofAnswer::NotForUs(detail))
            }
            StatusCode::NOT_FOUND if detail.starts_with("ledgerDate") => {
                Ok(ProofAnswer::NotForUs(detail))
            }
            StatusCode::NOT_FOUND => bail!("ledger {ledger}: no such ledger for these keys"),
            _ => bail!(
                "ledger {ledger} {topic} {date}: the proof: {}",
                problem(status, &body)
            ),
        }
    }

    /// Every entry of a closed date, following the pages' cursors.
    async fn date_entries(
        &mut self,
        ledger: &LedgerId,
        topic: Topic,
        date: LedgerDate,
    ) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(&format!("/report/v2/ledgers/{ledger}/{topic}/dates/{date}"))?;
            if let Some(c) = &cursor {
                url.query_pairs_mut().append_pair("cursor", c);
            }
            let (status, mut body) = self.get(url).await?;
            if !status.is_success() {
                bail!(
                    "ledger {ledger} {topic} {date}: the date page: {}",
                    problem(status, &body)
                );
            }
            if body.get("tryLater").and_then(Value::as_bool) == Some(true) {
                bail!(
                    "mismatch: ledger {ledger} {topic} {date}: the date page says tryLater \
                     (not closed), yet the date has a proof"
                );
            }
            match body.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => out.extend(items),
                _ => bail!("ledger {ledger} {topic} {date}: a date page without items"),
            }
            if body.get("hasMore").and_then(Value::as_bool) != Some(true) {
                return Ok(out);
            }
            cursor = Some(
                body.get("cursor")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        anyhow!("ledger {ledger} {topic} {date}: hasMore without a cursor")
                    })?
                    .to_owned(),
            );
        }
    }
}

/// A refusal in words: the problem's detail, or the status alone.
fn problem(status: StatusCode, body: &Value) -> String {
    match body
        .get("detail")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
    {
        Some(d) => format!("{status}: {d}"),
        None => status.to_string(),
    }
}

/// An error with its causes (reqwest's own message alone says little: "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_missing_a_field_is_named() {
        let e = json!({"pspReference":"1","time":"t","ledgerDate":"2024-01-01","entryType":"capture",
            "reference":"r","currency":"NOK","amount":1,"balanceBefore":0,"recipientHandle":""});
        let err = proof_entry(&e).expect_err("balanceAfter is missing");
        assert!(err.to_string().starts_with("balanceAfter:"), "{err}");
    }

    #[test]
    fn a_proof_of_another_date_than_asked_is_refused() {
        let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let v = json!({"ledgerId":"302321","topic":"funds","ledgerDate":"2024-01-02",
            "form":ledgerport_core::proof::FORM,"entryCount":0,"amountSum":0,"openingBalance":0,
            "closingBalance":0,"digest":digest,"previousChainDigest":null,"chainDigest":digest});
        let ledger = LedgerId::parse("l", "302321").expect("id");
        let asked = LedgerDate::parse("d", "2024-01-01").expect("date");
        let err = parse_proof(&v, &ledger, Topic::Funds, asked).expect_err("another date");
        assert!(err.to_string().contains("not the one asked for"), "{err}");
        let right = LedgerDate::parse("d", "2024-01-02").expect("date");
        assert!(parse_proof(&v, &ledger, Topic::Funds, right).is_ok());
    }
}
