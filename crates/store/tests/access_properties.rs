//! Property tests of the access policy through the store: random grants with random scopes and
//! expiry instants, changes of scope, removals, suspensions and clock moves. After every step,
//! for every principal, the ledgers a listing returns (the store's keyset query for the
//! principal's listing scope, each ledger opened by `decide`, paged) are exactly the ledgers it
//! can read one by one, with the same scope, and exactly what a model of the grants says: a
//! grant counts while its partner is approved and until its expiry. On PostgreSQL when
//! `DATABASE_URL` names it, on SQLite otherwise.

use jiff::{SignedDuration, Timestamp};
use ledgerport_core::access::{self, LedgerAccess, Principal};
use ledgerport_core::clock::ManualClock;
use ledgerport_core::ids::{LedgerDate, LedgerId, Msn};
use ledgerport_core::world::{GrantScope, PartnerState, RowId, Topics};
use ledgerport_store::{Actor, Store};
use ledgerport_testkit::WorldBuilder;
use ledgerport_testkit::testing::{TestStore, fresh_store};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const START: &str = "2024-06-01T12:00:00Z";
/// Merchant 1 owns the first three (one a vm-number unit's, one of two units), merchant 2 the
/// last.
const LEDGERS: [&str; 4] = ["100001", "100002", "100003", "200001"];
const PARTNERS: usize = 3;

#[derive(Debug, Clone)]
struct ScopeSpec {
    /// Minutes from the clock's reading at the step (negative: already expired); None: never.
    expires_in: Option<i64>,
    from: Option<u8>,
    to: Option<u8>,
    funds: bool,
    fees: bool,
    personal_data: bool,
}

#[derive(Debug, Clone)]
enum Step {
    /// Move the clock on by minutes (possibly 0, possibly across expiries).
    Clock(i64),
    /// Grant (or change the scope of) the partner's grant on a ledger.
    Grant {
        partner: usize,
        ledger: usize,
        scope: ScopeSpec,
    },
    Remove {
        partner: usize,
        ledger: usize,
    },
    /// Suspend the partner, or reinstate it when suspended.
    Toggle(usize),
}

fn scope_spec() -> impl Strategy<Value = ScopeSpec> {
    (
        prop::option::weighted(0.7, -30i64..240),
        prop::option::of(0u8..20),
        prop::option::of(0u8..20),
        0u8..3,
        any::<bool>(),
    )
        .prop_map(|(expires_in, from, to, topics, personal_data)| {
            // A period that runs backwards would be refused; order it.
            let (from, to) = match (from, to) {
                (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                other => other,
            };
            ScopeSpec {
                expires_in,
                from,
                to,
                funds: topics != 1,
                fees: topics != 0,
                personal_data,
            }
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0i64..120).prop_map(Step::Clock),
        4 => (0..PARTNERS, 0..LEDGERS.len(), scope_spec())
            .prop_map(|(partner, ledger, scope)| Step::Grant { partner, ledger, scope }),
        1 => (0..PARTNERS, 0..LEDGERS.len()).prop_map(|(partner, ledger)| Step::Remove { partner, ledger }),
        1 => (0..PARTNERS).prop_map(Step::Toggle),
    ]
}

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn lid(s: &str) -> LedgerId {
    LedgerId::parse("l", s).expect("ledger id")
}

/// Whole microseconds, as the store keeps times.
fn micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).expect("in range")
}

fn scope_at(spec: &ScopeSpec, now: Timestamp) -> GrantScope {
    let day = |d: u8| {
        LedgerDate::from_date(
            jiff::civil::date(2024, 6, 1)
                .checked_add(jiff::Span::new().days(i64::from(d)))
                .expect("date"),
        )
    };
    GrantScope {
        expires_at: spec
            .expires_in
            .map(|m| micros(now + SignedDuration::from_mins(m))),
        from: spec.from.map(day),
        to: spec.to.map(day),
        topics: Topics {
            funds: spec.funds,
            fees: spec.fees,
        },
        personal_data: spec.personal_data,
    }
}

struct Fixture {
    store: Arc<TestStore>,
    clock: Arc<ManualClock>,
    merchants: [RowId; 2],
    partners: Vec<RowId>,
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(t(START)));
    let store = Arc::new(fresh_store(clock.clone()).await);
    let world = WorldBuilder::new()
        .merchant("987654321", "ACME")
        .api_unit("123455")
        .ledger("100001", &["123455"])
        .vm_unit("223344", "57860")
        .ledger("100002", &["223344"])
        .api_unit("123456")
        .api_unit("123457")
        .ledger("100003", &["123456", "123457"])
        .merchant("912345678", "Bakeriet")
        .api_unit("222222")
        .ledger("200001", &["222222"])
        .partner("Regnskap One")
        .partner("Regnskap Two")
        .partner("Regnskap Three")
        .build(&**store)
        .await
        .expect("world");
    Fixture {
        merchants: [world.merchant("987654321"), world.merchant("912345678")],
        partners: world.partners.iter().map(|p| p.id).collect(),
        store,
        clock,
    }
}

/// What the store's listing query returns for `p`'s listing scope, before the policy.
async fn raw_listing(s: &dyn Store, p: &Principal) -> Vec<String> {
    let Some(scope) = access::list_scope(p) else {
        return vec![];
    };
    s.ledgers_in_scope(&scope, None, None, 100)
        .await
        .expect("listing")
        .iter()
        .map(|g| g.facts().ledger_id.to_string())
        .collect()
}

/// What `p` reads by listing: the keyset pages of its listing scope (two ledgers a page, so
/// paging is exercised), each ledger opened by the policy.
async fn listed(s: &dyn Store, p: &Principal) -> BTreeMap<String, GrantScope> {
    let mut out = BTreeMap::new();
    let Some(scope) = access::list_scope(p) else {
        return out;
    };
    let mut after: Option<LedgerId> = None;
    loop {
        let page = s
            .ledgers_in_scope(&scope, None, after.as_ref(), 2)
            .await
            .expect("listing");
        let full = page.len() == 2;
        for g in page {
            after = Some(g.facts().ledger_id.clone());
            if let Ok((a, _)) = g.open(p) {
                out.insert(a.ledger_id().to_string(), *a.scope());
            }
        }
        if !full {
            return out;
        }
    }
}

/// What `p` reads asking for each ledger (and one that does not exist) by id.
async fn read(s: &dyn Store, p: &Principal) -> BTreeMap<String, GrantScope> {
    let mut out = BTreeMap::new();
    for id in LEDGERS.iter().chain(&["300001"]) {
        let ledger = s.ledger(&lid(id)).await.expect("read");
        let opened: Result<(LedgerAccess, _), _> = access::open(p, ledger);
        if let Ok((a, _)) = opened {
            out.insert(a.ledger_id().to_string(), *a.scope());
        }
    }
    out
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let f = fixture().await;
    let s: &dyn Store = &**f.store;
    let by = Actor::new("merchant-user@acme.test");
    // The model: (partner index, ledger index) -> scope; which partners are suspended.
    let mut grants: BTreeMap<(usize, usize), GrantScope> = BTreeMap::new();
    let mut suspended = [false; PARTNERS];
    let unit = Msn::parse("msn", "123455").expect("msn");
    let mut principals = vec![
        Principal::MerchantLevel {
            key_id: 1,
            merchant_id: f.merchants[0],
        },
        Principal::PortalMerchant {
            user_id: 2,
            merchant_id: f.merchants[1],
        },
        Principal::SalesUnit {
            key_id: 3,
            msn: unit,
        },
    ];
    for (i, &partner_id) in f.partners.iter().enumerate() {
        principals.push(Principal::Accounting {
            key_id: 10 + i as RowId,
            partner_id,
        });
        principals.push(Principal::PortalPartner {
            user_id: 20 + i as RowId,
            partner_id,
        });
    }
    for (n, step) in steps.iter().enumerate() {
        let now = f.clock_now();
        match step {
            Step::Clock(m) => f.clock.advance(SignedDuration::from_mins(*m)),
            Step::Grant {
                partner,
                ledger,
                scope,
            } => {
                let scope = scope_at(scope, now);
                let (p, l) = (f.partners[*partner], lid(LEDGERS[*ledger]));
                let done = if grants.contains_key(&(*partner, *ledger)) {
                    s.set_grant_scope(&by, p, &l, &scope).await.map(|_| ())
                } else {
                    s.create_grant(&by, p, &l, &scope).await.map(|_| ())
                };
                // Only an approved partner may be granted; a change of scope needs no approval.
                if suspended[*partner] && !grants.contains_key(&(*partner, *ledger)) {
                    prop_assert!(done.is_err(), "step {n}: a grant to a suspended partner");
                } else {
                    prop_assert!(done.is_ok(), "step {n}: {done:?}");
                    grants.insert((*partner, *ledger), scope);
                }
            }
            Step::Remove { partner, ledger } => {
                let removed = s
                    .remove_grant(&by, f.partners[*partner], &lid(LEDGERS[*ledger]))
                    .await
                    .expect("remove");
                prop_assert_eq!(
                    removed,
                    grants.remove(&(*partner, *ledger)).is_some(),
                    "step {}",
                    n
                );
            }
            Step::Toggle(partner) => {
                let to = if suspended[*partner] {
                    PartnerState::Approved
                } else {
                    PartnerState::Suspended
                };
                s.set_partner_state(&by, f.partners[*partner], to)
                    .await
                    .expect("partner state");
                suspended[*partner] = !suspended[*partner];
            }
        }
        let now = f.clock_now();
        for p in &principals {
            let listed = listed(s, p).await;
            let read = read(s, p).await;
            prop_assert_eq!(&listed, &read, "step {}: {:?} lists what it reads", n, p);
            let expected: BTreeMap<String, GrantScope> = match p {
                Principal::Accounting { partner_id, .. }
                | Principal::PortalPartner { partner_id, .. } => {
                    let i = f
                        .partners
                        .iter()
                        .position(|q| q == partner_id)
                        .expect("partner");
                    grants
                        .iter()
                        .filter(|((pi, _), scope)| {
                            *pi == i && !suspended[i] && scope.expires_at.is_none_or(|e| e > now)
                        })
                        .map(|((_, li), scope)| (LEDGERS[*li].to_owned(), *scope))
                        .collect()
                }
                Principal::MerchantLevel { .. } => ["100001", "100002", "100003"]
                    .into_iter()
                    .map(|l| (l.to_owned(), GrantScope::EVERYTHING))
                    .collect(),
                Principal::PortalMerchant { .. } => {
                    BTreeMap::from([("200001".to_owned(), GrantScope::EVERYTHING)])
                }
                _ => BTreeMap::from([("100001".to_owned(), GrantScope::EVERYTHING)]),
            };
            prop_assert_eq!(
                &read,
                &expected,
                "step {}: {:?} reads as the model says",
                n,
                p
            );
            // The store's query itself leaves expired grants out, as the policy does (grants of
            // a suspended partner it leaves to the policy).
            let partner_suspended = match p {
                Principal::Accounting { partner_id, .. }
                | Principal::PortalPartner { partner_id, .. } => f
                    .partners
                    .iter()
                    .position(|q| q == partner_id)
                    .is_some_and(|i| suspended[i]),
                _ => false,
            };
            if !partner_suspended {
                let raw = raw_listing(s, p).await;
                let keys: Vec<String> = listed.keys().cloned().collect();
                let mut raw_sorted = raw.clone();
                raw_sorted.sort();
                prop_assert_eq!(raw_sorted, keys, "step {}: {:?}'s listing query", n, p);
            }
        }
    }
    Ok(())
}

impl Fixture {
    fn clock_now(&self) -> Timestamp {
        use ledgerport_core::clock::Clock;
        self.clock.now()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn listings_are_exactly_what_each_principal_reads_through_scopes_expiries_and_clock_moves(
        steps in prop::collection::vec(step(), 1..24)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(steps))?;
    }
}

/// The instant a grant expires decides, to the microsecond, on the listing and the read alike.
#[tokio::test]
async fn a_grant_expires_at_its_instant_for_listing_and_reading_alike() {
    let f = fixture().await;
    let s: &dyn Store = &**f.store;
    let p = Principal::Accounting {
        key_id: 1,
        partner_id: f.partners[0],
    };
    let expiry = t(START) + SignedDuration::from_mins(10);
    s.create_grant(
        &Actor::new("m"),
        f.partners[0],
        &lid("100002"),
        &GrantScope {
            expires_at: Some(expiry),
            ..GrantScope::EVERYTHING
        },
    )
    .await
    .expect("grant");
    for (at, expected) in [
        (expiry - SignedDuration::from_micros(1), 1),
        (expiry, 0),
        (expiry + SignedDuration::from_mins(1), 0),
    ] {
        f.clock.set(at);
        assert_eq!(listed(s, &p).await.len(), expected, "listing at {at}");
        assert_eq!(
            raw_listing(s, &p).await.len(),
            expected,
            "the listing query at {at}"
        );
        assert_eq!(read(s, &p).await.len(), expected, "reading at {at}");
    }
}
