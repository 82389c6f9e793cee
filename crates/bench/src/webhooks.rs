//! `ledgerport-bench webhooks`: webhook delivery on loopback, in-process. A merchant's
//! `--ledgers` ledgers (daily payouts, created `--days` days before the benchmark's clock) and one
//! endpoint on a receiver in this process (axum on 127.0.0.1) that checks nothing but notes when
//! each `webhook-id` arrived.
//!
//! 1. **Throughput.** With the sender stopped, every ledger's past dates are closed (one
//!    `ledger.date.closed` event and one delivery each); then the sender delivers them all at
//!    once (`webhooks::deliver_due`, up to 64 in flight): deliveries per second to one receiver.
//! 2. **Latency.** With the sender's loop running (its poll interval `--poll-ms`), the clock moves
//!    a day and one ledger's date is closed, `--samples` times: the time from the closing's
//!    commit to the receiver's receipt, p50 and p99.

use jiff::{SignedDuration, Timestamp};
use ledgerport_core::clock::{Clock, ManualClock};
use ledgerport_core::ids::{BankAccount, Currency, LedgerId, Msn};
use ledgerport_core::world::{FeePlan, PayoutFrequency, SettlementMode};
use ledgerport_server::webhooks::{self, AddressPolicy, WebhookConfig};
use ledgerport_server::{AppState, ServerConfig};
use ledgerport_store::{Actor, NewLedger, WebhookOwner};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Ledgers of the merchant.
    #[arg(long, default_value_t = 200)]
    ledgers: usize,
    /// Days each ledger has to close for the throughput phase.
    #[arg(long, default_value_t = 10)]
    days: i64,
    /// Closings timed in the latency phase.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// The sender's poll interval in the latency phase, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Latency phase: the sender finds deliveries by its poll alone, not woken when the
    /// closing commits (as before the wake existed), for comparison.
    #[arg(long)]
    poll_only: bool,
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver(arrivals: Arrivals) -> Result<u16, String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let arrivals = arrivals.clone();
            async move {
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    arrivals
                        .lock()
                        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?
                        .entry(id.to_owned())
                        .or_insert_with(Instant::now);
                }
                Ok::<_, axum::http::StatusCode>(axum::http::StatusCode::NO_CONTENT)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind the receiver: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("receiver address: {e}"))?
        .port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub async fn run(args: BenchArgs, database_url: Option<&str>) -> Result<(), String> {
    let dir =
        std::env::temp_dir().join(format!("ledgerport-bench-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(err)?;
    let url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let start: Timestamp = "2026-01-10T12:00:00Z".parse().map_err(err)?;
    let clock = Arc::new(ManualClock::new(start));
    let store = ledgerport_store::open(&url, clock.clone() as Arc<dyn Clock>)
        .await
        .map_err(err)?;
    let by = Actor::new("bench");
    let world = ledgerport_testkit::WorldBuilder::new()
        .by("bench")
        .merchant("987654321", "Bench AS")
        .build(store.as_ref())
        .await?;
    let merchant = world.merchant("987654321");
    let created = start
        .checked_sub(SignedDuration::from_hours(24 * args.days))
        .map_err(err)?;
    let mut ledgers = Vec::with_capacity(args.ledgers);
    for i in 0..args.ledgers {
        let msn = format!("{}", 200_000 + i);
        store
            .create_sales_unit(
                &by,
                ledgerport_store::NewSalesUnit {
                    msn: Msn::parse("msn", &msn).map_err(err)?,
                    merchant_id: merchant,
                    name: format!("Unit {i}"),
                    kind: ledgerport_core::world::SalesUnitKind::Api,
                    country: ledgerport_core::ids::Country::NO,
                    vm_number: None,
                },
            )
            .await
            .map_err(err)?;
        let id = LedgerId::parse("ledger", &format!("{}", 500_000 + i)).map_err(err)?;
        store
            .create_ledger(
                &by,
                NewLedger {
                    ledger_id: id.clone(),
                    currency: Currency::NOK,
                    payout_account: BankAccount::parse("account", "BBAN:NO", "86011117947")
                        .map_err(err)?,
                    owner_merchant_id: merchant,
                    settles_for: vec![Msn::parse("msn", &msn).map_err(err)?],
                    time_zone: "Europe/Oslo".into(),
                    cutoff: jiff::civil::time(0, 0, 0, 0),
                    payout_frequency: PayoutFrequency::Daily,
                    settlement_mode: SettlementMode::Net,
                    fee_plan: FeePlan {
                        basis_points: 100,
                        fixed_minor: 0,
                    },
                    page_size: 1000,
                    created_at: Some(created),
                },
            )
            .await
            .map_err(err)?;
        ledgers.push(id);
    }
    let arrivals: Arrivals = Arc::default();
    let port = receiver(arrivals.clone()).await?;
    let config = ServerConfig {
        close_interval: None,
        webhooks: WebhookConfig {
            deliver: false,
            allowed_networks: vec!["127.0.0.1/32".parse()?],
            poll_interval: Duration::from_millis(args.poll_ms),
            ..WebhookConfig::default()
        },
        ..ServerConfig::default()
    };
    let state = AppState::load(store.clone(), clock.clone() as Arc<dyn Clock>, config).await?;
    let (endpoint, _secret) = webhooks::register_endpoint(
        store.as_ref(),
        &state.config.signing_keys,
        &AddressPolicy::new(vec!["127.0.0.1/32".parse()?]),
        &by,
        WebhookOwner::Merchant(merchant),
        &format!("http://127.0.0.1:{port}/hook"),
        vec![ledgerport_store::LEDGER_DATE_CLOSED.to_owned()],
    )
    .await
    .map_err(err)?;

    // 1. Throughput.
    let closing = Instant::now();
    let mut closed = 0;
    for id in &ledgers {
        closed += store.close_due(id, start).await.map_err(err)?.len();
    }
    let closing_took = closing.elapsed();
    let sending = Instant::now();
    let pass = webhooks::deliver_due(&state, &state.webhooks, "bench")
        .await
        .map_err(err)?;
    let took = sending.elapsed();
    let delivered = arrivals.lock().map_err(err)?.len();
    println!(
        "throughput: {closed} dates closed in {:.2} s; {} deliveries ({} failed) to one receiver in {:.2} s = {:.0} deliveries/s",
        closing_took.as_secs_f64(),
        pass.delivered,
        pass.failed,
        took.as_secs_f64(),
        pass.delivered as f64 / took.as_secs_f64()
    );
    if delivered < closed {
        return Err(format!("only {delivered} of {closed} deliveries arrived"));
    }

    // 2. Latency, with the sender's loop running.
    let sender = if args.poll_only {
        tokio::spawn(webhooks::sender_loop_polling_only(
            state.clone(),
            state.webhooks.clone(),
        ))
    } else {
        tokio::spawn(webhooks::sender_loop(state.clone(), state.webhooks.clone()))
    };
    let mut latencies = Vec::with_capacity(args.samples);
    let mut now = start;
    for i in 0..args.samples {
        if i % ledgers.len() == 0 {
            now = now
                .checked_add(SignedDuration::from_hours(24))
                .map_err(err)?;
            clock.set(now);
        }
        let id = &ledgers[i % ledgers.len()];
        let before = store
            .webhook_deliveries(endpoint.id, None, 1)
            .await
            .map_err(err)?
            .first()
            .map_or(0, |d| d.id);
        store.close_due(id, now).await.map_err(err)?;
        let committed = Instant::now();
        let delivery = store
            .webhook_deliveries(endpoint.id, None, 1)
            .await
            .map_err(err)?
            .into_iter()
            .find(|d| d.id > before)
            .ok_or_else(|| format!("closing ledger {id} made no delivery"))?;
        let msg = delivery.message_id();
        let deadline = Instant::now() + Duration::from_secs(30);
        let arrived = loop {
            if let Some(t) = arrivals.lock().map_err(err)?.get(&msg) {
                break *t;
            }
            if Instant::now() > deadline {
                return Err(format!("{msg} did not arrive within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(arrived.saturating_duration_since(committed));
    }
    sender.abort();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "latency from a date's closing to its receipt ({} samples, poll interval {} ms, {}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        args.poll_ms,
        if args.poll_only {
            "poll only"
        } else {
            "woken on commit"
        },
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    if database_url.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
