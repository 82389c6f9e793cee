//! A running Ledgerport on `127.0.0.1:0` with a fresh store (a PostgreSQL database of its own
//! when `DATABASE_URL` names a PostgreSQL server, a SQLite file otherwise) and a clock the test
//! controls, plus a small world to read.
#![allow(dead_code)]

pub mod smtp;

use jiff::Timestamp;
use ledgerport_core::clock::{Clock, ManualClock};
use ledgerport_core::entry::{NewEntry, PayerDetails};
use ledgerport_core::ids::{BankAccount, Country, Currency, LedgerDate, LedgerId, Msn, Topic};
use ledgerport_core::world::{
    FeePlan, KeyKind, KeyOwner, PartnerKind, PayoutFrequency, RowId, SalesUnitKind, SettlementMode,
    parse_cutoff,
};
use ledgerport_server::credentials::issue_keys;
use ledgerport_server::{AppState, ServerConfig};
use ledgerport_store::{Actor, NewLedger, NewSalesUnit, Store};
pub use ledgerport_testkit::Keys;
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestStore, fresh_memory_store, fresh_store};
use std::sync::Arc;

/// The moment tests start at: noon UTC on 2024-04-05, so 2024-04-04 is closed and 2024-04-05 open.
pub const START: &str = "2024-04-05T12:00:00Z";

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The test's own database, dropped with the app (`None` for a second app on a shared store).
    _db: Option<TestStore>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn by() -> Actor {
    Actor::new("test")
}

impl TestApp {
    /// A server whose closing task is off: tests close dates explicitly with `close_due`.
    pub async fn start() -> TestApp {
        Self::start_with(ServerConfig {
            close_interval: None,
            ..ServerConfig::default()
        })
        .await
    }

    pub async fn start_with(config: ServerConfig) -> TestApp {
        let clock = Arc::new(ManualClock::new(START.parse().expect("start")));
        let db = fresh_store(clock.clone()).await;
        let mut app = Self::start_on(db.shared(), clock, config).await;
        app._db = Some(db);
        app
    }

    /// As [`TestApp::start`], on SQLite in memory whatever `DATABASE_URL` says: the store's
    /// reads through sqlx, which a database file's hot reads go around.
    pub async fn start_in_memory() -> TestApp {
        let clock = Arc::new(ManualClock::new(START.parse().expect("start")));
        let db = fresh_memory_store(clock.clone()).await;
        let config = ServerConfig {
            close_interval: None,
            ..ServerConfig::default()
        };
        let mut app = Self::start_on(db.shared(), clock, config).await;
        app._db = Some(db);
        app
    }

    /// Another server process on the same store (and clock).
    pub async fn start_on(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        config: ServerConfig,
    ) -> TestApp {
        let state = AppState::load(store.clone(), clock.clone() as Arc<dyn Clock>, config)
            .await
            .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            ledgerport_server::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestApp {
            base,
            store,
            clock,
            state,
            http: ledgerport_server::http::client().expect("an HTTP client"),
            shutdown: Some(tx),
            _db: None,
        }
    }

    /// Tells the server to shut down (stop accepting, finish requests in flight) and returns at
    /// once.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /accesstoken/get` with the given headers.
    pub async fn standard_token_raw(&self, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut r = self.http.post(self.url("/accesstoken/get"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.expect("request")
    }

    /// A standard token for sales-unit or integration keys; panics unless 200.
    pub async fn standard_token(&self, k: &Keys) -> String {
        let sub = k
            .subscription_key
            .as_deref()
            .expect("standard keys have subscription keys");
        let res = self
            .standard_token_raw(&[
                ("client_id", &k.client_id),
                ("client_secret", &k.secret),
                ("Ocp-Apim-Subscription-Key", sub),
            ])
            .await;
        assert_eq!(res.status(), 200, "token for {}", k.client_id);
        let body: serde_json::Value = res.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `POST /miami/v1/token` with Basic credentials and a form body.
    pub async fn miami_token_raw(
        &self,
        client_id: &str,
        secret: &str,
        form: &str,
    ) -> reqwest::Response {
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        self.http
            .post(self.url("/miami/v1/token"))
            .header("Authorization", format!("Basic {basic}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// A miami token for accounting, merchant-level or management keys; panics unless 200.
    pub async fn miami_token(&self, k: &Keys) -> String {
        let res = self
            .miami_token_raw(&k.client_id, &k.secret, "grant_type=client_credentials")
            .await;
        assert_eq!(res.status(), 200, "miami token for {}", k.client_id);
        let body: serde_json::Value = res.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// GET a Report API path with a bearer token and optional extra headers.
    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().await.expect("request")
    }

    pub async fn issue(&self, kind: KeyKind, owner: KeyOwner) -> Keys {
        let (key, secret) = issue_keys(self.store.as_ref(), &by(), kind, owner)
            .await
            .expect("issue keys");
        Keys {
            key_id: key.id,
            client_id: key.client_id,
            secret: secret.reveal().to_owned(),
            subscription_key: key.subscription_keys.map(|k| k[0].clone()),
        }
    }
}

pub fn msn(s: &str) -> Msn {
    Msn::parse("msn", s).expect("msn")
}

pub fn lid(s: &str) -> LedgerId {
    LedgerId::parse("ledger", s).expect("ledger id")
}

pub fn date(s: &str) -> LedgerDate {
    LedgerDate::parse("date", s).expect("date")
}

/// The world most tests read:
/// - merchant 1 (NO, 987654321): api unit 123455 on ledger 100 (single), api unit 654321 and
///   vm-number unit NO:57860 (MSN 223344) together on legacy ledger 200; vm-number unit
///   NO:11111 (MSN 334455) on ledger 300;
/// - merchant 2 (NO, 912345678): api unit 222222 on ledger 400;
/// - accounting partner "granted" with grants on 100 and 200;
///
/// Ledger 100 has 5 funds entries on 2024-04-04 and 2 on 2024-04-05, 3 fees entries on 2024-04-04.
pub struct World {
    pub merchant1: RowId,
    pub merchant2: RowId,
    pub granted_partner: RowId,
}

pub async fn merchant(store: &dyn Store, org: &str, name: &str) -> RowId {
    let built = WorldBuilder::new().merchant(org, name).build(store).await;
    built.expect("merchant").merchant(org)
}

pub async fn unit(store: &dyn Store, merchant: RowId, m: &str, vm_number: Option<&str>) {
    store
        .create_sales_unit(
            &by(),
            NewSalesUnit {
                msn: msn(m),
                merchant_id: merchant,
                name: format!("Unit {m}"),
                kind: if vm_number.is_some() {
                    SalesUnitKind::VmNumber
                } else {
                    SalesUnitKind::Api
                },
                country: Country::NO,
                vm_number: vm_number.map(str::to_owned),
            },
        )
        .await
        .expect("unit");
}

/// A ledger with a fee plan of 175 bp and the given page size (see [`new_ledger`]).
pub async fn ledger(store: &dyn Store, id: &str, owner: RowId, units: &[&str], page_size: u32) {
    new_ledger(
        store,
        id,
        owner,
        units,
        FeePlan {
            basis_points: 175,
            fixed_minor: 0,
        },
        page_size,
    )
    .await;
}

/// A daily net NOK ledger in Europe/Oslo with cutoff 00:00.
pub async fn new_ledger(
    store: &dyn Store,
    id: &str,
    owner: RowId,
    units: &[&str],
    fee_plan: FeePlan,
    page_size: u32,
) {
    store
        .create_ledger(
            &by(),
            NewLedger {
                ledger_id: lid(id),
                currency: Currency::NOK,
                payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("account"),
                owner_merchant_id: owner,
                settles_for: units.iter().map(|u| msn(u)).collect(),
                time_zone: "Europe/Oslo".into(),
                cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
                payout_frequency: PayoutFrequency::Daily,
                settlement_mode: SettlementMode::Net,
                fee_plan,
                page_size,
                created_at: None,
            },
        )
        .await
        .expect("ledger");
}

/// A daily net NOK ledger in Europe/Oslo (as [`ledger`]) created at `created_at`, so its dates
/// from that day on are there to close.
pub async fn ledger_created_at(
    store: &dyn Store,
    id: &str,
    owner: RowId,
    units: &[&str],
    created_at: &str,
) {
    store
        .create_ledger(
            &by(),
            NewLedger {
                ledger_id: lid(id),
                currency: Currency::NOK,
                payout_account: BankAccount::parse("a", "BBAN:NO", "86011117947").expect("account"),
                owner_merchant_id: owner,
                settles_for: units.iter().map(|u| msn(u)).collect(),
                time_zone: "Europe/Oslo".into(),
                cutoff: parse_cutoff("c", "00:00").expect("cutoff"),
                payout_frequency: PayoutFrequency::Daily,
                settlement_mode: SettlementMode::Net,
                fee_plan: FeePlan {
                    basis_points: 175,
                    fixed_minor: 0,
                },
                page_size: 1000,
                created_at: Some(created_at.parse().expect("created_at")),
            },
        )
        .await
        .expect("ledger");
}

pub async fn partner(store: &dyn Store, name: &str, kind: PartnerKind, approve: bool) -> RowId {
    let built = WorldBuilder::new().partner_of_kind(name, kind, approve);
    built.build(store).await.expect("partner").partner(name)
}

/// A new approved accounting partner granted `ledger` within `scope`, and a token of its keys.
pub async fn partner_with(
    app: &TestApp,
    name: &str,
    ledger: &str,
    scope: ledgerport_core::world::GrantScope,
) -> (RowId, String) {
    let p = partner(app.store.as_ref(), name, PartnerKind::Accounting, true).await;
    app.store
        .create_grant(&by(), p, &lid(ledger), &scope)
        .await
        .expect("grant");
    let keys = app.issue(KeyKind::Accounting, KeyOwner::Partner(p)).await;
    (p, app.miami_token(&keys).await)
}

pub fn new_entry(
    psp: &str,
    time: &str,
    entry_type: &str,
    amount: i64,
    handle: &str,
    payer: Option<PayerDetails>,
) -> NewEntry {
    let t: Timestamp = time.parse().expect("time");
    let d = jiff::tz::TimeZone::get("Europe/Oslo")
        .expect("tz")
        .to_datetime(t)
        .date();
    NewEntry {
        psp_reference: psp.into(),
        time: ledgerport_core::entry::wire_time(t),
        ledger_date: LedgerDate::from_date(d),
        entry_type: entry_type.into(),
        reference: format!("ref-{psp}"),
        currency: Currency::NOK,
        amount,
        recipient_handle: handle.into(),
        payer,
    }
}

pub async fn world(app: &TestApp) -> World {
    let e = new_entry;
    let payer = PayerDetails {
        name: "Kari Nordmann".into(),
        message: "Kaffe".into(),
        masked_phone_no: "xxxx 1234".into(),
    };
    let (u1, u2, u3) = ("api:123455", "api:654321", "api:222222");
    let built = WorldBuilder::new()
        .merchant("987654321", "ACME AS")
        .api_unit("123455")
        .api_unit("654321")
        .vm_unit("223344", "57860")
        .vm_unit("334455", "11111")
        .ledger("100", &["123455"])
        .page_size(3)
        .ledger("200", &["654321", "223344"])
        .ledger("300", &["334455"])
        .merchant("912345678", "Other AS")
        .api_unit("222222")
        .ledger("400", &["222222"])
        .partner("Granted Regnskap")
        .grant("100")
        .grant("200")
        .entries(
            "100",
            Topic::Funds,
            vec![
                e(
                    "1001",
                    "2024-04-04T08:00:00.000001Z",
                    "capture",
                    10000,
                    u1,
                    None,
                ),
                e("1002", "2024-04-04T09:00:00Z", "capture", 10000, u1, None),
                e("1003", "2024-04-04T10:00:00Z", "capture", 20000, u1, None),
                e("1003", "2024-04-04T11:00:00Z", "refund", -10000, u1, None),
                e(
                    "100-2000001",
                    "2024-04-04T21:59:59.999999Z",
                    "payout-scheduled",
                    -30000,
                    "",
                    None,
                ),
                e("1004", "2024-04-05T08:00:00Z", "capture", 5000, u1, None),
                e("1005", "2024-04-05T09:00:00Z", "capture", 7000, u1, None),
            ],
        )
        .entries(
            "100",
            Topic::Fees,
            vec![
                e(
                    "1001",
                    "2024-04-04T08:00:00.000001Z",
                    "capture-fee",
                    -175,
                    u1,
                    None,
                ),
                e(
                    "1002",
                    "2024-04-04T09:00:00Z",
                    "capture-fee",
                    -175,
                    u1,
                    None,
                ),
                e(
                    "1003",
                    "2024-04-04T10:00:00Z",
                    "capture-fee",
                    -350,
                    u1,
                    None,
                ),
            ],
        )
        .entries(
            "200",
            Topic::Funds,
            vec![
                e(
                    "2001",
                    "2024-04-04T08:00:00Z",
                    "capture",
                    4000,
                    "NO:57860",
                    Some(payer),
                ),
                e("2002", "2024-04-04T09:00:00Z", "capture", 6000, u2, None),
            ],
        )
        .entries(
            "400",
            Topic::Funds,
            vec![e("4001", "2024-04-04T08:00:00Z", "capture", 999, u3, None)],
        )
        .build(app.store.as_ref())
        .await
        .expect("world");
    World {
        merchant1: built.merchant("987654321"),
        merchant2: built.merchant("912345678"),
        granted_partner: built.partner("Granted Regnskap"),
    }
}

/// A ledger with its own fee plan (`basis_points` and a fixed part in minor units), daily net
/// payouts, NOK, Europe/Oslo, cutoff 00:00.
pub async fn ledger_with_fees(
    store: &dyn Store,
    id: &str,
    owner: RowId,
    units: &[&str],
    basis_points: i64,
    fixed_minor: i64,
) {
    new_ledger(
        store,
        id,
        owner,
        units,
        FeePlan {
            basis_points,
            fixed_minor,
        },
        1000,
    )
    .await;
}

impl TestApp {
    /// Operator service keys: what the payment systems post events with.
    pub async fn service_keys(&self) -> Keys {
        self.issue(KeyKind::Service, KeyOwner::Operator).await
    }

    /// `POST /ingest/v1/events` with Basic credentials and a JSON body.
    pub async fn post_events(&self, k: &Keys, body: &serde_json::Value) -> reqwest::Response {
        self.post_events_raw(
            Some((&k.client_id, &k.secret)),
            "application/json",
            body.to_string(),
        )
        .await
    }

    /// `POST /ingest/v1/events` with any credentials, content type and body.
    pub async fn post_events_raw(
        &self,
        basic: Option<(&str, &str)>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        use base64::Engine;
        let mut r = self
            .http
            .post(self.url("/ingest/v1/events"))
            .header("Content-Type", content_type)
            .body(body);
        if let Some((id, secret)) = basic {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            r = r.header("Authorization", format!("Basic {basic}"));
        }
        r.send().await.expect("request")
    }
}
