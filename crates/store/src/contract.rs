//! The contract every [`Store`] backend must pass.
//!
//! Each `pub async fn` here is one test body: it takes a fresh, empty store, arranges a small world
//! through the [`Store`] trait only, and panics with a message naming what went wrong. A backend
//! runs all of them with [`store_contract_tests!`](crate::store_contract_tests), one
//! `#[tokio::test]` per body:
//!
//! ```ignore
//! async fn fresh() -> SqliteStore {
//!     let clock = Arc::new(ManualClock::new(ledgerport_store::contract::contract_now()));
//!     SqliteStore::open("sqlite::memory:", clock).await.expect("open an in-memory store")
//! }
//! ledgerport_store::store_contract_tests!(fresh());
//! ```
//!
//! The store must be built on a clock standing still at [`contract_now`]: the tests check the
//! times the store records (`created_at`, the logs' `at`, a signing key's `retired_at`) exactly.
//! The calling crate needs `tokio` (with `macros` and `rt`) among its dev-dependencies.

use crate::{
    AccessLogFilter, AccessRecord, Actor, LedgerView, NewAccessRecord, NewKey, NewLedger,
    NewMerchant, NewPartner, NewPortalUser, NewSalesUnit, PortalRole, PortalSession, Result,
    SignInFailures, SigningKeyRecord, Store, StoreError,
};
use jiff::Timestamp;
use ledgerport_core::access::{Decision, LedgerAccess, LedgerFacts, ListScope, Principal, decide};
use ledgerport_core::entry::{Entry, NewEntry, PayerDetails};
use ledgerport_core::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, RecipientHandle, Topic,
};
use ledgerport_core::world::{
    ApiKey, FeePlan, Grant, KeyKind, KeyOwner, Ledger, Merchant, Partner, PartnerKind,
    PartnerState, PayoutFrequency, RowId, SalesUnit, SalesUnitKind, SettlementMode,
};
use std::fmt::Debug;

/// The instant the store's clock must stand at during the contract tests.
pub const CONTRACT_NOW: &str = "2024-04-05T07:19:26.528092Z";

/// [`CONTRACT_NOW`] as a timestamp, for building the store's `ManualClock`.
pub fn contract_now() -> Timestamp {
    match CONTRACT_NOW.parse() {
        Ok(t) => t,
        Err(e) => panic!("CONTRACT_NOW is not a timestamp: {e}"),
    }
}

/// Expands to one `#[tokio::test]` per contract test; `$make` is an expression whose `.await`
/// gives a fresh, empty store (any type that coerces to `&dyn Store` when borrowed), built on a
/// clock standing at [`contract::contract_now`](crate::contract::contract_now).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            merchants_are_listed_in_creation_order_and_found_by_id_and_by_org,
            a_second_merchant_with_the_same_organisation_is_a_conflict,
            an_api_sales_unit_is_addressed_as_api_and_its_msn,
            a_vm_number_sales_unit_is_addressed_by_its_country_and_number,
            a_sales_unit_whose_number_does_not_fit_its_kind_is_invalid,
            sales_units_are_listed_per_merchant_in_msn_order,
            a_sales_unit_msn_or_handle_used_twice_is_a_conflict,
            a_sales_unit_of_an_unknown_merchant_is_not_found,
            a_ledger_with_one_sales_unit_reads_back_exactly_as_created,
            a_ledger_settling_for_several_units_lists_them_in_the_given_order,
            a_ledger_for_a_sales_unit_of_another_merchant_is_invalid_and_not_written,
            a_ledger_for_an_unknown_sales_unit_is_not_found_and_not_written,
            a_sales_unit_settles_on_one_ledger_only,
            a_ledger_id_used_twice_is_a_conflict,
            a_ledger_without_sales_units_is_invalid,
            ledger_facts_name_the_owner_the_handles_in_order_and_only_approved_grantees,
            sole_handle_scope_lists_only_ledgers_settling_for_exactly_that_handle,
            granted_to_scope_lists_the_partners_granted_ledgers_across_merchants,
            owned_by_scope_lists_only_that_merchants_ledgers,
            scope_pages_return_every_ledger_exactly_once_in_ledger_id_order,
            the_handle_filter_keeps_only_ledgers_settling_for_that_handle,
            a_created_partner_starts_applied,
            partner_states_change_only_along_the_operator_paths,
            a_sales_unit_key_is_found_by_client_id_and_by_either_subscription_key,
            partner_and_merchant_keys_keep_their_owner_and_have_no_subscription_keys,
            a_key_is_read_with_its_partners_current_state,
            replacing_a_secret_raises_the_generation_and_changes_the_hash,
            a_revoked_key_is_still_found_marked_revoked_and_its_secret_cannot_be_replaced,
            client_ids_and_subscription_keys_identify_one_key_only,
            grants_are_made_only_to_approved_accounting_partners,
            a_grant_made_twice_is_a_conflict,
            a_grant_on_an_unknown_ledger_or_for_an_unknown_partner_is_not_found,
            removing_a_grant_returns_true_once_then_false,
            grants_are_listed_by_partner_by_ledger_or_both,
            appended_entries_are_numbered_from_one_on_each_ledger_and_topic,
            appended_entries_chain_balances_across_calls,
            an_entry_in_another_currency_is_invalid_and_none_of_its_batch_is_written,
            an_entry_type_that_does_not_belong_on_the_topic_is_invalid_and_none_of_its_batch_is_written,
            appending_to_an_unknown_ledger_is_not_found,
            concurrent_appends_to_one_topic_stay_gap_free_and_chained,
            feed_pages_return_exactly_the_entries_after_the_given_seq,
            date_pages_return_only_that_dates_entries_after_the_given_seq,
            payer_details_round_trip_and_stay_absent_when_not_given,
            a_page_of_a_thousand_entries_reads_back_whole_in_seq_order,
            signing_keys_are_added_listed_oldest_first_and_retired_once,
            server_secret_keeps_the_first_value_it_stored,
            a_lease_is_held_by_one_holder_until_it_lapses,
            access_log_lists_requests_newest_first_and_filters_by_ledger_partner_and_owner,
            audit_log_records_every_state_change_with_its_actor_newest_first,
            refused_changes_leave_no_audit_record,
            ping_succeeds_on_a_working_store,
            pool_stats_count_no_more_idle_connections_than_open_ones,
            // --- portal ---
            portal_users_are_found_by_id_and_by_email_in_any_case,
            a_portal_email_used_twice_is_a_conflict,
            a_portal_user_of_an_unknown_merchant_or_partner_is_not_found,
            a_partner_application_creates_an_applied_partner_and_its_user_together,
            a_partner_application_with_a_taken_email_writes_nothing,
            a_session_is_found_by_its_token_hash_until_it_expires_or_is_deleted,
            failed_sign_ins_are_counted_per_email_until_cleared,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::contract::$name($crate::contract::AsStore::as_store(&store)).await;
            }
        )+
    };
}

/// What [`store_contract_tests!`] accepts as a fresh store: any backend, or a
/// [`TestStore`](crate::testing::TestStore) (a store with the test database it lives in).
pub trait AsStore {
    fn as_store(&self) -> &dyn Store;
}

impl<S: Store> AsStore for S {
    fn as_store(&self) -> &dyn Store {
        self
    }
}

impl AsStore for crate::testing::TestStore {
    fn as_store(&self) -> &dyn Store {
        &**self
    }
}

// --------------------------------------------------------------------------------------------
// Helpers
// --------------------------------------------------------------------------------------------

const OPERATOR: &str = "operator@ledgerport.test";

fn by() -> Actor {
    Actor::new(OPERATOR)
}

#[track_caller]
fn must<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected success, got {e:?}"),
    }
}

#[track_caller]
fn some<T>(o: Option<T>, what: &str) -> T {
    match o {
        Some(v) => v,
        None => panic!("{what}: expected a value, got None"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    NotFound,
    Conflict,
    Invalid,
}

#[track_caller]
fn assert_error<T: Debug>(r: Result<T>, expected: Expect, what: &str) {
    let got = match r {
        Ok(v) => panic!("{what}: expected {expected:?}, got Ok({v:?})"),
        Err(e) => e,
    };
    let matches = matches!(
        (&got, expected),
        (StoreError::NotFound(_), Expect::NotFound)
            | (StoreError::Conflict(_), Expect::Conflict)
            | (StoreError::Invalid(_), Expect::Invalid)
    );
    assert!(matches, "{what}: expected {expected:?}, got {got:?}");
}

#[track_caller]
fn org(id: &str) -> BusinessId {
    match BusinessId::parse("org", "business:NO:ORG", id) {
        Ok(b) => b,
        Err(e) => panic!("test org {id}: {e}"),
    }
}

#[track_caller]
fn msn(s: &str) -> Msn {
    match Msn::parse("msn", s) {
        Ok(m) => m,
        Err(e) => panic!("test msn {s}: {e}"),
    }
}

#[track_caller]
fn lid(s: &str) -> LedgerId {
    match LedgerId::parse("ledgerId", s) {
        Ok(l) => l,
        Err(e) => panic!("test ledger id {s}: {e}"),
    }
}

#[track_caller]
fn handle(s: &str) -> RecipientHandle {
    match RecipientHandle::parse("handle", s) {
        Ok(h) => h,
        Err(e) => panic!("test handle {s}: {e}"),
    }
}

#[track_caller]
fn day(s: &str) -> LedgerDate {
    match LedgerDate::parse("ledgerDate", s) {
        Ok(d) => d,
        Err(e) => panic!("test date {s}: {e}"),
    }
}

fn account() -> BankAccount {
    BankAccount {
        scheme: "BBAN:NO".into(),
        id: "86011117947".into(),
    }
}

async fn add_merchant(s: &dyn Store, org_id: &str, name: &str) -> Merchant {
    let m = NewMerchant {
        business: org(org_id),
        name: name.into(),
    };
    must(s.create_merchant(&by(), m).await, "create merchant")
}

async fn add_api_unit(s: &dyn Store, merchant: RowId, number: &str, name: &str) -> SalesUnit {
    let u = NewSalesUnit {
        msn: msn(number),
        merchant_id: merchant,
        name: name.into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        vm_number: None,
    };
    must(s.create_sales_unit(&by(), u).await, "create api sales unit")
}

async fn add_vm_unit(
    s: &dyn Store,
    merchant: RowId,
    number: &str,
    country: Country,
    vm: &str,
) -> SalesUnit {
    let u = NewSalesUnit {
        msn: msn(number),
        merchant_id: merchant,
        name: format!("Vippsnummer {vm}"),
        kind: SalesUnitKind::VmNumber,
        country,
        vm_number: Some(vm.into()),
    };
    must(
        s.create_sales_unit(&by(), u).await,
        "create vm-number sales unit",
    )
}

fn ledger_spec(id: &str, owner: RowId, units: &[&str]) -> NewLedger {
    NewLedger {
        ledger_id: lid(id),
        currency: Currency::NOK,
        payout_account: account(),
        owner_merchant_id: owner,
        settles_for: units.iter().map(|u| msn(u)).collect(),
        time_zone: "Europe/Oslo".into(),
        cutoff: jiff::civil::time(0, 0, 0, 0),
        payout_frequency: PayoutFrequency::Daily,
        settlement_mode: SettlementMode::Net,
        fee_plan: FeePlan {
            basis_points: 175,
            fixed_minor: 100,
        },
        page_size: 1000,
    }
}

async fn add_ledger(s: &dyn Store, id: &str, owner: RowId, units: &[&str]) -> LedgerView {
    must(
        s.create_ledger(&by(), ledger_spec(id, owner, units)).await,
        "create ledger",
    )
}

async fn add_partner(s: &dyn Store, name: &str, kind: PartnerKind) -> Partner {
    let p = NewPartner {
        name: name.into(),
        kind,
        business: None,
        contact_email: format!("{}@partner.test", name.to_lowercase().replace(' ', "-")),
    };
    must(s.create_partner(&by(), p).await, "create partner")
}

async fn add_approved(s: &dyn Store, name: &str, kind: PartnerKind) -> Partner {
    let p = add_partner(s, name, kind).await;
    must(
        s.set_partner_state(&by(), p.id, PartnerState::Approved)
            .await,
        "approve partner",
    )
}

async fn grant(s: &dyn Store, partner: RowId, ledger: &str) -> Grant {
    must(
        s.create_grant(&by(), partner, &lid(ledger)).await,
        "create grant",
    )
}

/// A ledger's description as the operator reads it (every read goes through the policy).
async fn operator_view(s: &dyn Store, id: &LedgerId) -> crate::Result<Option<LedgerView>> {
    Ok(s.ledger(id).await?.map(|g| {
        let (_, view) = g
            .open(&Principal::Operator { user_id: None })
            .expect("the operator reads every ledger");
        view
    }))
}

/// What the policy learns about a ledger from the store, read together with its description.
async fn operator_facts(s: &dyn Store, id: &LedgerId) -> crate::Result<Option<LedgerFacts>> {
    Ok(s.ledger(id).await?.map(|g| g.facts().clone()))
}

async fn facts_of(s: &dyn Store, ledger: &str) -> LedgerFacts {
    let f = some(
        must(operator_facts(s, &lid(ledger)).await, "ledger facts"),
        "facts of an existing ledger",
    );
    sorted(f)
}

/// Grants come back in no promised order; compare them sorted.
fn sorted(mut f: LedgerFacts) -> LedgerFacts {
    f.granted_partners.sort_unstable();
    f
}

/// The access a merchant-level key of the ledger's owner gets from the policy.
async fn owner_access(s: &dyn Store, ledger: &str) -> LedgerAccess {
    let facts = facts_of(s, ledger).await;
    let owner = Principal::MerchantLevel {
        key_id: 1,
        merchant_id: facts.owner_merchant_id,
    };
    match decide(&owner, Some(&facts)) {
        Decision::Allow(a) => a,
        other => panic!("the owner of ledger {ledger} must be allowed to read it, got {other:?}"),
    }
}

async fn scope_ids(
    s: &dyn Store,
    scope: &ListScope,
    filter: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Vec<String> {
    let filter = filter.map(handle);
    let after = after.map(lid);
    let page = must(
        s.ledgers_in_scope(scope, filter.as_ref(), after.as_ref(), limit)
            .await,
        "ledgers in scope",
    );
    page.iter()
        .map(|g| g.facts().ledger_id.to_string())
        .collect()
}

/// Every view a scope returns must be the ledger as `ledger` reads it, and its facts the ledger's
/// facts; returns the ledger ids.
async fn checked_scope(s: &dyn Store, scope: &ListScope, filter: Option<&str>) -> Vec<String> {
    let filter = filter.map(handle);
    let page = must(
        s.ledgers_in_scope(scope, filter.as_ref(), None, 100).await,
        "ledgers in scope",
    );
    let mut ids = Vec::new();
    for g in page {
        let facts = g.facts().clone();
        let (_, view) = g
            .open(&Principal::Operator { user_id: None })
            .expect("the operator reads every ledger");
        let id = view.ledger.ledger_id.to_string();
        let alone = some(
            must(
                operator_view(s, &view.ledger.ledger_id).await,
                "read ledger",
            ),
            "listed ledger exists",
        );
        assert_eq!(
            view, alone,
            "{scope:?}: the listed view of ledger {id} differs from reading it alone"
        );
        assert_eq!(
            sorted(facts),
            facts_of(s, &id).await,
            "{scope:?}: the listed facts of ledger {id} differ from reading it alone"
        );
        ids.push(id);
    }
    ids
}

/// An entry of `entry_type` on `date`; `n` makes its references and time unique.
fn entry(entry_type: &str, amount: i64, date: &str, n: u32) -> NewEntry {
    let handle = match entry_type {
        "capture" | "refund" | "capture-fee" => "api:123455",
        _ => "",
    };
    NewEntry {
        psp_reference: format!("33431213{n:02}"),
        time: format!("{date}T10:{:02}:{:02}.824993Z", n / 60 % 60, n % 60),
        ledger_date: day(date),
        entry_type: entry_type.into(),
        reference: format!("purchase-{n}"),
        currency: Currency::NOK,
        amount,
        recipient_handle: handle.into(),
        payer: None,
    }
}

/// What `e` must look like once written at `seq` on a balance of `before`.
fn placed(e: &NewEntry, seq: i64, before: i64) -> Entry {
    Entry {
        seq,
        psp_reference: e.psp_reference.clone(),
        time: e.time.clone(),
        ledger_date: e.ledger_date,
        entry_type: e.entry_type.clone(),
        reference: e.reference.clone(),
        currency: e.currency,
        amount: e.amount,
        balance_before: before,
        balance_after: before + e.amount,
        recipient_handle: e.recipient_handle.clone(),
        payer: e.payer.clone(),
    }
}

/// `entries` placed one after another from `first_seq` on a balance of `before`.
fn placed_all(entries: &[NewEntry], first_seq: i64, before: i64) -> Vec<Entry> {
    let mut balance = before;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        out.push(placed(e, first_seq + i as i64, balance));
        balance += e.amount;
    }
    out
}

async fn append(s: &dyn Store, ledger: &str, topic: Topic, entries: &[NewEntry]) -> Vec<Entry> {
    must(
        s.append_entries(&lid(ledger), topic, entries.to_vec())
            .await,
        "append entries",
    )
}

async fn whole_feed(s: &dyn Store, ledger: &str, topic: Topic) -> Vec<Entry> {
    let access = owner_access(s, ledger).await;
    must(
        s.feed_page(&access, topic, 0, 10_000).await,
        "read the whole feed",
    )
}

/// A ledger "100001" of a merchant with api unit 123455, for the entry tests.
async fn one_ledger(s: &dyn Store, id: &str) -> Merchant {
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    add_ledger(s, id, m.id, &["123455"]).await;
    m
}

// --------------------------------------------------------------------------------------------
// Merchants and sales units
// --------------------------------------------------------------------------------------------

pub async fn merchants_are_listed_in_creation_order_and_found_by_id_and_by_org(s: &dyn Store) {
    // Arrange
    let dk = match BusinessId::parse("org", "business:DK:CVR", "12345678") {
        Ok(b) => b,
        Err(e) => panic!("test CVR: {e}"),
    };

    // Act
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = must(
        s.create_merchant(
            &by(),
            NewMerchant {
                business: dk.clone(),
                name: "Bageriet ApS".into(),
            },
        )
        .await,
        "create DK merchant",
    );

    // Assert
    assert_eq!(
        a,
        Merchant {
            id: a.id,
            business: org("987654321"),
            name: "ACME Fitness AS".into(),
            created_at: contract_now()
        }
    );
    assert_eq!(
        b,
        Merchant {
            id: b.id,
            business: dk,
            name: "Bageriet ApS".into(),
            created_at: contract_now()
        }
    );
    assert_ne!(a.id, b.id, "two merchants got the same id");
    assert_eq!(
        must(s.merchants().await, "list merchants"),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        must(s.merchant(a.id).await, "merchant by id"),
        Some(a.clone())
    );
    assert_eq!(
        must(s.merchant(b.id).await, "merchant by id"),
        Some(b.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("987654321").await, "merchant by org"),
        Some(a.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("12345678").await, "merchant by org"),
        Some(b.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("999999999").await, "unknown org"),
        None
    );
    assert_eq!(
        must(
            s.merchant(a.id.max(b.id) + 1000).await,
            "unknown merchant id"
        ),
        None
    );
}

pub async fn a_second_merchant_with_the_same_organisation_is_a_conflict(s: &dyn Store) {
    // Arrange
    let first = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let again = s
        .create_merchant(
            &by(),
            NewMerchant {
                business: org("987654321"),
                name: "Impostor AS".into(),
            },
        )
        .await;

    // Assert
    assert_error(
        again,
        Expect::Conflict,
        "a second merchant with organisation 987654321",
    );
    assert_eq!(
        must(s.merchants().await, "list merchants"),
        vec![first.clone()]
    );
    assert_eq!(
        must(s.merchant_by_org("987654321").await, "merchant by org"),
        Some(first)
    );
}

pub async fn an_api_sales_unit_is_addressed_as_api_and_its_msn(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let u = add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;

    // Assert
    let expected = SalesUnit {
        msn: msn("123455"),
        merchant_id: m.id,
        name: "ACME Fitness Oslo".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        handle: RecipientHandle::Api(msn("123455")),
        created_at: contract_now(),
    };
    assert_eq!(u, expected);
    assert_eq!(u.handle.to_string(), "api:123455");
    assert_eq!(
        must(s.sales_unit(msn("123455")).await, "sales unit by msn"),
        Some(expected)
    );
    assert_eq!(must(s.sales_unit(msn("654321")).await, "unknown msn"), None);
}

pub async fn a_vm_number_sales_unit_is_addressed_by_its_country_and_number(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let no = add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    let dk = add_vm_unit(s, m.id, "334455", Country::DK, "90601").await;

    // Assert
    let expected_no = SalesUnit {
        msn: msn("223344"),
        merchant_id: m.id,
        name: "Vippsnummer 57860".into(),
        kind: SalesUnitKind::VmNumber,
        country: Country::NO,
        handle: RecipientHandle::VmNumber {
            country: Country::NO,
            number: "57860".into(),
        },
        created_at: contract_now(),
    };
    assert_eq!(no, expected_no);
    assert_eq!(no.handle.to_string(), "NO:57860");
    assert_eq!(
        dk.handle,
        RecipientHandle::VmNumber {
            country: Country::DK,
            number: "90601".into()
        }
    );
    assert_eq!(dk.handle.to_string(), "DK:90601");
    assert_eq!(dk.country, Country::DK);
    assert_eq!(
        must(s.sales_unit(msn("223344")).await, "vm unit by msn"),
        Some(expected_no)
    );
    assert_eq!(
        must(s.sales_unit(msn("334455")).await, "vm unit by msn"),
        Some(dk)
    );
}

pub async fn a_sales_unit_whose_number_does_not_fit_its_kind_is_invalid(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let unit = |kind, vm_number: Option<&str>| NewSalesUnit {
        msn: msn("223344"),
        merchant_id: m.id,
        name: "Kiosken".into(),
        kind,
        country: Country::NO,
        vm_number: vm_number.map(str::to_owned),
    };

    // Act
    let vm_without_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::VmNumber, None))
        .await;
    let vm_with_bad_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::VmNumber, Some("57a60")))
        .await;
    let api_with_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::Api, Some("57860")))
        .await;

    // Assert
    assert_error(
        vm_without_number,
        Expect::Invalid,
        "a vm-number unit without its number",
    );
    assert_error(
        vm_with_bad_number,
        Expect::Invalid,
        "a vm-number unit with number 57a60",
    );
    assert_error(
        api_with_number,
        Expect::Invalid,
        "an api unit with a Vippsnummer",
    );
    assert_eq!(
        must(s.sales_unit(msn("223344")).await, "refused unit"),
        None
    );
    assert_eq!(must(s.sales_units(None).await, "list units"), vec![]);
}

pub async fn sales_units_are_listed_per_merchant_in_msn_order(s: &dyn Store) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let a2 = add_vm_unit(s, a.id, "223344", Country::NO, "57860").await;
    let a3 = add_api_unit(s, a.id, "1234567", "ACME Bergen").await;
    let a1 = add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    let b1 = add_api_unit(s, b.id, "54321", "Bakeriet").await;

    // Act
    let of_a = must(s.sales_units(Some(a.id)).await, "units of A");
    let of_b = must(s.sales_units(Some(b.id)).await, "units of B");
    let all = must(s.sales_units(None).await, "all units");
    let of_nobody = must(
        s.sales_units(Some(a.id.max(b.id) + 1000)).await,
        "units of an unknown merchant",
    );

    // Assert
    assert_eq!(of_a, vec![a1.clone(), a2.clone(), a3.clone()]);
    assert_eq!(of_b, vec![b1.clone()]);
    assert_eq!(all, vec![b1, a1, a2, a3]);
    assert_eq!(of_nobody, vec![]);
}

pub async fn a_sales_unit_msn_or_handle_used_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let api = add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    let vm = add_vm_unit(s, a.id, "223344", Country::NO, "57860").await;
    let vm_unit = |number: &str, country, vm: &str| NewSalesUnit {
        msn: msn(number),
        merchant_id: b.id,
        name: "Bakeriet".into(),
        kind: SalesUnitKind::VmNumber,
        country,
        vm_number: Some(vm.into()),
    };

    // Act
    let same_msn = s
        .create_sales_unit(
            &by(),
            NewSalesUnit {
                msn: msn("123455"),
                merchant_id: b.id,
                name: "Bakeriet".into(),
                kind: SalesUnitKind::Api,
                country: Country::NO,
                vm_number: None,
            },
        )
        .await;
    let same_handle = s
        .create_sales_unit(&by(), vm_unit("334455", Country::NO, "57860"))
        .await;
    let same_number_other_country = s
        .create_sales_unit(&by(), vm_unit("334456", Country::DK, "57860"))
        .await;

    // Assert
    assert_error(same_msn, Expect::Conflict, "a second unit with msn 123455");
    assert_error(
        same_handle,
        Expect::Conflict,
        "a second unit with handle NO:57860",
    );
    let dk = must(
        same_number_other_country,
        "DK:57860 is another handle than NO:57860",
    );
    assert_eq!(dk.handle.to_string(), "DK:57860");
    assert_eq!(
        must(s.sales_units(Some(a.id)).await, "units of A"),
        vec![api, vm]
    );
    assert_eq!(
        must(s.sales_units(Some(b.id)).await, "units of B"),
        vec![dk]
    );
}

pub async fn a_sales_unit_of_an_unknown_merchant_is_not_found(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let unit = NewSalesUnit {
        msn: msn("123455"),
        merchant_id: m.id + 1000,
        name: "Nobody's".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        vm_number: None,
    };

    // Act
    let r = s.create_sales_unit(&by(), unit).await;

    // Assert
    assert_error(r, Expect::NotFound, "a unit of an unknown merchant");
    assert_eq!(
        must(s.sales_unit(msn("123455")).await, "refused unit"),
        None
    );
}

// --------------------------------------------------------------------------------------------
// Ledgers
// --------------------------------------------------------------------------------------------

pub async fn a_ledger_with_one_sales_unit_reads_back_exactly_as_created(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let u = add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    let spec = NewLedger {
        ledger_id: lid("302321"),
        currency: Currency::NOK,
        payout_account: account(),
        owner_merchant_id: m.id,
        settles_for: vec![msn("123455")],
        time_zone: "Europe/Oslo".into(),
        cutoff: jiff::civil::time(4, 0, 0, 0),
        payout_frequency: PayoutFrequency::Weekly,
        settlement_mode: SettlementMode::Gross,
        fee_plan: FeePlan {
            basis_points: 150,
            fixed_minor: 100,
        },
        page_size: 500,
    };

    // Act
    let created = must(s.create_ledger(&by(), spec).await, "create ledger");

    // Assert
    let expected = LedgerView {
        ledger: Ledger {
            ledger_id: lid("302321"),
            currency: Currency::NOK,
            payout_account: account(),
            owner_merchant_id: m.id,
            time_zone: "Europe/Oslo".into(),
            cutoff: jiff::civil::time(4, 0, 0, 0),
            payout_frequency: PayoutFrequency::Weekly,
            settlement_mode: SettlementMode::Gross,
            fee_plan: FeePlan {
                basis_points: 150,
                fixed_minor: 100,
            },
            page_size: 500,
            created_at: contract_now(),
            // The ledger's first date is the one it was created on (cutoff 04:00 Oslo).
            closed_through: ledgerport_core::world::ledger_date_at(
                "Europe/Oslo",
                jiff::civil::time(4, 0, 0, 0),
                contract_now(),
            )
            .date()
            .yesterday()
            .map(ledgerport_core::ids::LedgerDate::from_date)
            .expect("a date"),
            next_payout_number: 2_000_001,
        },
        units: vec![u],
        owner: org("987654321"),
    };
    assert_eq!(created, expected);
    assert_eq!(
        must(operator_view(s, &lid("302321")).await, "read ledger"),
        Some(expected.clone())
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![expected]);
    assert_eq!(
        must(operator_view(s, &lid("302322")).await, "unknown ledger"),
        None
    );
}

pub async fn a_ledger_settling_for_several_units_lists_them_in_the_given_order(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let api = add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    let vm = add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    let api2 = add_api_unit(s, m.id, "123456", "ACME Bergen").await;

    // Act
    let created = add_ledger(s, "100001", m.id, &["223344", "123456", "123455"]).await;

    // Assert
    assert_eq!(created.units, vec![vm.clone(), api2.clone(), api.clone()]);
    let read = some(
        must(operator_view(s, &lid("100001")).await, "read ledger"),
        "created ledger",
    );
    assert_eq!(read.units, vec![vm, api2, api]);
    assert_eq!(read, created);
    assert_eq!(
        facts_of(s, "100001").await.settles_for,
        vec![
            handle("NO:57860"),
            handle("api:123456"),
            handle("api:123455")
        ]
    );
}

pub async fn a_ledger_for_a_sales_unit_of_another_merchant_is_invalid_and_not_written(
    s: &dyn Store,
) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    add_api_unit(s, b.id, "54321", "Bakeriet").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", a.id, &["123455", "54321"]))
        .await;

    // Assert
    assert_error(
        r,
        Expect::Invalid,
        "a ledger of A settling for B's unit 54321",
    );
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![]);
    // Neither unit was tied to the refused ledger.
    add_ledger(s, "100002", a.id, &["123455"]).await;
    add_ledger(s, "200001", b.id, &["54321"]).await;
}

pub async fn a_ledger_for_an_unknown_sales_unit_is_not_found_and_not_written(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &["123455", "999999"]))
        .await;

    // Assert
    assert_error(
        r,
        Expect::NotFound,
        "a ledger settling for unknown unit 999999",
    );
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
    let later = add_ledger(s, "100002", m.id, &["123455"]).await;
    assert_eq!(
        later.units.len(),
        1,
        "unit 123455 must be free after the refused ledger"
    );
}

pub async fn a_sales_unit_settles_on_one_ledger_only(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    let first = add_ledger(s, "100001", m.id, &["123455"]).await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100002", m.id, &["123456", "123455"]))
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "a second ledger for unit 123455");
    assert_eq!(
        must(operator_view(s, &lid("100002")).await, "refused ledger"),
        None
    );
    assert_eq!(must(s.ledgers().await, "list ledgers"), vec![first]);
    // 123456 was not left behind on the refused ledger.
    let third = add_ledger(s, "100003", m.id, &["123456"]).await;
    assert_eq!(
        third.units.iter().map(|u| u.msn).collect::<Vec<_>>(),
        vec![msn("123456")]
    );
}

pub async fn a_ledger_id_used_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    let first = add_ledger(s, "100001", m.id, &["123455"]).await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &["123456"]))
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "a second ledger 100001");
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "first ledger"),
        Some(first)
    );
    add_ledger(s, "100002", m.id, &["123456"]).await;
}

pub async fn a_ledger_without_sales_units_is_invalid(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let r = s
        .create_ledger(&by(), ledger_spec("100001", m.id, &[]))
        .await;

    // Assert
    assert_error(r, Expect::Invalid, "a ledger settling for no unit");
    assert_eq!(
        must(operator_view(s, &lid("100001")).await, "refused ledger"),
        None
    );
}

pub async fn ledger_facts_name_the_owner_the_handles_in_order_and_only_approved_grantees(
    s: &dyn Store,
) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344", "123455"]).await;
    let p1 = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let p2 = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let p3 = add_approved(s, "Regnskap Three", PartnerKind::Accounting).await;
    for p in [&p1, &p2, &p3] {
        grant(s, p.id, "100001").await;
    }

    // Act
    must(
        s.set_partner_state(&by(), p2.id, PartnerState::Suspended)
            .await,
        "suspend p2",
    );
    let while_suspended = facts_of(s, "100001").await;
    must(
        s.set_partner_state(&by(), p2.id, PartnerState::Approved)
            .await,
        "reinstate p2",
    );
    let reinstated = facts_of(s, "100001").await;
    assert!(must(
        s.remove_grant(&by(), p1.id, &lid("100001")).await,
        "remove p1's grant"
    ));
    let after_removal = facts_of(s, "100001").await;

    // Assert
    let mut expected = LedgerFacts {
        ledger_id: lid("100001"),
        owner_merchant_id: m.id,
        settles_for: vec![handle("NO:57860"), handle("api:123455")],
        granted_partners: sorted_ids(&[p1.id, p3.id]),
    };
    assert_eq!(
        while_suspended, expected,
        "a suspended partner's grant must not count"
    );
    expected.granted_partners = sorted_ids(&[p1.id, p2.id, p3.id]);
    assert_eq!(
        reinstated, expected,
        "a reinstated partner's standing grant counts again"
    );
    expected.granted_partners = sorted_ids(&[p2.id, p3.id]);
    assert_eq!(after_removal, expected, "a removed grant must not count");
    assert_eq!(
        must(
            operator_facts(s, &lid("100002")).await,
            "facts of an unknown ledger"
        ),
        None
    );
}

fn sorted_ids(ids: &[RowId]) -> Vec<RowId> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

/// Merchant A: "100001" [api:123455], "100002" [api:123456, NO:57860], "100003" [NO:57861].
/// Merchant B: "200001" [api:222222]. Returns (A, B).
async fn listing_world(s: &dyn Store) -> (Merchant, Merchant) {
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    add_api_unit(s, a.id, "123456", "ACME Bergen").await;
    add_vm_unit(s, a.id, "223344", Country::NO, "57860").await;
    add_vm_unit(s, a.id, "223345", Country::NO, "57861").await;
    add_api_unit(s, b.id, "222222", "Bakeriet").await;
    add_ledger(s, "200001", b.id, &["222222"]).await;
    add_ledger(s, "100002", a.id, &["123456", "223344"]).await;
    add_ledger(s, "100001", a.id, &["123455"]).await;
    add_ledger(s, "100003", a.id, &["223345"]).await;
    (a, b)
}

pub async fn sole_handle_scope_lists_only_ledgers_settling_for_exactly_that_handle(s: &dyn Store) {
    // Arrange
    listing_world(s).await;
    let sole = |h: &str| ListScope::SoleHandle(handle(h));

    // Act
    let single_api = checked_scope(s, &sole("api:123455"), None).await;
    let api_on_multi = checked_scope(s, &sole("api:123456"), None).await;
    let vm_on_multi = checked_scope(s, &sole("NO:57860"), None).await;
    let single_vm = checked_scope(s, &sole("NO:57861"), None).await;
    let other_merchant = checked_scope(s, &sole("api:222222"), None).await;
    let unknown = checked_scope(s, &sole("api:765432"), None).await;

    // Assert
    assert_eq!(single_api, vec!["100001"]);
    assert_eq!(
        api_on_multi,
        Vec::<String>::new(),
        "a multi-unit ledger is not visible through one handle"
    );
    assert_eq!(
        vm_on_multi,
        Vec::<String>::new(),
        "a multi-unit ledger is not visible through one handle"
    );
    assert_eq!(single_vm, vec!["100003"]);
    assert_eq!(other_merchant, vec!["200001"]);
    assert_eq!(unknown, Vec::<String>::new());
}

pub async fn granted_to_scope_lists_the_partners_granted_ledgers_across_merchants(s: &dyn Store) {
    // Arrange
    listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let idle = add_approved(s, "Regnskap Idle", PartnerKind::Accounting).await;
    grant(s, p.id, "200001").await;
    grant(s, p.id, "100002").await;
    grant(s, q.id, "100001").await;
    grant(s, q.id, "100002").await;

    // Act
    let of_p = checked_scope(s, &ListScope::GrantedTo(p.id), None).await;
    let of_q = checked_scope(s, &ListScope::GrantedTo(q.id), None).await;
    let of_idle = checked_scope(s, &ListScope::GrantedTo(idle.id), None).await;
    // Filtered by a handle: the one ledger settling for it, if granted; either of a
    // multi-unit ledger's handles finds it.
    let p_by_vm = checked_scope(s, &ListScope::GrantedTo(p.id), Some("NO:57860")).await;
    let p_by_api = checked_scope(s, &ListScope::GrantedTo(p.id), Some("api:123456")).await;
    let p_by_other = checked_scope(s, &ListScope::GrantedTo(p.id), Some("api:123455")).await;
    let q_by_api = checked_scope(s, &ListScope::GrantedTo(q.id), Some("api:123455")).await;
    assert!(must(
        s.remove_grant(&by(), p.id, &lid("200001")).await,
        "remove p's grant on 200001"
    ));
    let of_p_after_removal = checked_scope(s, &ListScope::GrantedTo(p.id), None).await;

    // Assert
    assert_eq!(of_p, vec!["100002", "200001"]);
    assert_eq!(of_q, vec!["100001", "100002"]);
    assert_eq!(of_idle, Vec::<String>::new());
    assert_eq!(of_p_after_removal, vec!["100002"]);
    assert_eq!(p_by_vm, vec!["100002"]);
    assert_eq!(p_by_api, vec!["100002"]);
    assert_eq!(
        p_by_other,
        Vec::<String>::new(),
        "100001 is not granted to p"
    );
    assert_eq!(q_by_api, vec!["100001"]);
}

pub async fn owned_by_scope_lists_only_that_merchants_ledgers(s: &dyn Store) {
    // Arrange
    let (a, b) = listing_world(s).await;

    // Act
    let of_a = checked_scope(s, &ListScope::OwnedBy(a.id), None).await;
    let of_b = checked_scope(s, &ListScope::OwnedBy(b.id), None).await;
    let of_nobody = checked_scope(s, &ListScope::OwnedBy(a.id.max(b.id) + 1000), None).await;

    // Assert
    assert_eq!(
        of_a,
        vec!["100001", "100002", "100003"],
        "owned ledgers include multi-unit ones"
    );
    assert_eq!(of_b, vec!["200001"]);
    assert_eq!(of_nobody, Vec::<String>::new());
}

pub async fn scope_pages_return_every_ledger_exactly_once_in_ledger_id_order(s: &dyn Store) {
    // Arrange: seven ledgers of A created out of order, interleaved with ledgers of B.
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let order = [
        "300005", "300001", "300007", "300003", "300002", "300006", "300004",
    ];
    for (i, id) in order.iter().enumerate() {
        let unit = format!("1{}", &id[1..]);
        add_api_unit(s, a.id, &unit, "ACME").await;
        add_ledger(s, id, a.id, &[unit.as_str()]).await;
        let other = format!("4{i}0000");
        add_api_unit(s, b.id, &other, "Bakeriet").await;
        add_ledger(s, &format!("30000{i}5"), b.id, &[other.as_str()]).await;
        if i % 2 == 0 {
            grant(s, p.id, id).await;
            grant(s, p.id, &format!("30000{i}5")).await;
        }
    }
    let owned = ListScope::OwnedBy(a.id);

    // Act
    let page1 = scope_ids(s, &owned, None, None, 3).await;
    let page2 = scope_ids(s, &owned, None, Some("300003"), 3).await;
    let page3 = scope_ids(s, &owned, None, Some("300006"), 3).await;
    let page4 = scope_ids(s, &owned, None, Some("300007"), 3).await;
    let granted_walk = walk(s, &ListScope::GrantedTo(p.id), 2).await;

    // Assert
    assert_eq!(page1, vec!["300001", "300002", "300003"]);
    assert_eq!(page2, vec!["300004", "300005", "300006"]);
    assert_eq!(page3, vec!["300007"]);
    assert_eq!(page4, Vec::<String>::new());
    // Granted: A's 300005, 300007, 300002, 300004 (i = 0, 2, 4, 6) and B's 3000005 .. 3000065,
    // in numeric order (the 6-digit ids before the 7-digit ones), each once.
    assert_eq!(
        granted_walk,
        vec![
            "300002", "300004", "300005", "300007", "3000005", "3000025", "3000045", "3000065"
        ],
        "walking the granted ledgers two at a time"
    );
}

/// Walks a scope `limit` at a time until a short page; checks no ledger comes twice and the walk
/// is the same sequence as one big page.
async fn walk(s: &dyn Store, scope: &ListScope, limit: u32) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    loop {
        let after = seen.last().cloned();
        let page = scope_ids(s, scope, None, after.as_deref(), limit).await;
        assert!(
            page.len() <= limit as usize,
            "{scope:?}: a page of {} exceeds the limit {limit}",
            page.len()
        );
        for id in &page {
            assert!(
                !seen.contains(id),
                "{scope:?}: ledger {id} came back on a later page"
            );
        }
        let short = page.len() < limit as usize;
        seen.extend(page);
        if short || seen.len() > 1000 {
            break;
        }
    }
    let all_at_once = scope_ids(s, scope, None, None, 1000).await;
    assert_eq!(
        seen, all_at_once,
        "{scope:?}: paging must give the same sequence as one big page"
    );
    seen
}

pub async fn the_handle_filter_keeps_only_ledgers_settling_for_that_handle(s: &dyn Store) {
    // Arrange
    let (a, _b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    for l in ["100001", "100002", "200001"] {
        grant(s, p.id, l).await;
    }
    let owned = ListScope::OwnedBy(a.id);
    let granted = ListScope::GrantedTo(p.id);

    // Act & Assert
    assert_eq!(
        checked_scope(s, &owned, Some("api:123456")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("NO:57860")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:123455")).await,
        vec!["100001"]
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:222222")).await,
        Vec::<String>::new(),
        "B's handle under A"
    );
    assert_eq!(
        checked_scope(s, &owned, Some("api:765432")).await,
        Vec::<String>::new(),
        "unknown handle"
    );
    assert_eq!(
        checked_scope(s, &granted, Some("api:222222")).await,
        vec!["200001"]
    );
    assert_eq!(
        checked_scope(s, &granted, Some("NO:57860")).await,
        vec!["100002"]
    );
    assert_eq!(
        checked_scope(s, &granted, Some("NO:57861")).await,
        Vec::<String>::new(),
        "ungranted 100003"
    );
    let sole = ListScope::SoleHandle(handle("api:123455"));
    assert_eq!(
        checked_scope(s, &sole, Some("api:123455")).await,
        vec!["100001"]
    );
    assert_eq!(
        checked_scope(s, &sole, Some("api:123456")).await,
        Vec::<String>::new()
    );
}

// --------------------------------------------------------------------------------------------
// Partners
// --------------------------------------------------------------------------------------------

pub async fn a_created_partner_starts_applied(s: &dyn Store) {
    // Arrange
    let accounting = NewPartner {
        name: "Regnskap AS".into(),
        kind: PartnerKind::Accounting,
        business: Some(org("923456789")),
        contact_email: "ops@regnskap.test".into(),
    };
    let integration = NewPartner {
        name: "Kasse Integrasjon".into(),
        kind: PartnerKind::Integration,
        business: None,
        contact_email: "dev@kasse.test".into(),
    };

    // Act
    let p = must(
        s.create_partner(&by(), accounting).await,
        "create accounting partner",
    );
    let q = must(
        s.create_partner(&by(), integration).await,
        "create integration partner",
    );

    // Assert
    assert_eq!(
        p,
        Partner {
            id: p.id,
            name: "Regnskap AS".into(),
            kind: PartnerKind::Accounting,
            state: PartnerState::Applied,
            business: Some(org("923456789")),
            contact_email: "ops@regnskap.test".into(),
            created_at: contract_now(),
        }
    );
    assert_eq!(
        q,
        Partner {
            id: q.id,
            name: "Kasse Integrasjon".into(),
            kind: PartnerKind::Integration,
            state: PartnerState::Applied,
            business: None,
            contact_email: "dev@kasse.test".into(),
            created_at: contract_now(),
        }
    );
    assert_ne!(p.id, q.id);
    assert_eq!(
        must(s.partners().await, "list partners"),
        vec![p.clone(), q]
    );
    assert_eq!(
        must(s.partner(p.id).await, "partner by id"),
        Some(p.clone())
    );
    assert_eq!(must(s.partner(p.id + 1000).await, "unknown partner"), None);
}

pub async fn partner_states_change_only_along_the_operator_paths(s: &dyn Store) {
    use PartnerState::*;
    let allowed = [
        (Applied, Approved),
        (Applied, Rejected),
        (Approved, Suspended),
        (Suspended, Approved),
    ];
    // How to reach each starting state from `applied`.
    let path = |from: PartnerState| -> Vec<PartnerState> {
        match from {
            Applied => vec![],
            Approved => vec![Approved],
            Rejected => vec![Rejected],
            Suspended => vec![Approved, Suspended],
        }
    };
    for from in [Applied, Approved, Rejected, Suspended] {
        for to in [Applied, Approved, Rejected, Suspended] {
            // Arrange
            let p = add_partner(
                s,
                &format!("P {} {}", from.as_str(), to.as_str()),
                PartnerKind::Accounting,
            )
            .await;
            for step in path(from) {
                must(
                    s.set_partner_state(&by(), p.id, step).await,
                    "bring partner to its starting state",
                );
            }

            // Act
            let r = s.set_partner_state(&by(), p.id, to).await;

            // Assert
            let now = some(
                must(s.partner(p.id).await, "read partner"),
                "partner exists",
            );
            if allowed.contains(&(from, to)) {
                let changed = must(
                    r,
                    &format!("{} -> {} is allowed", from.as_str(), to.as_str()),
                );
                assert_eq!(
                    changed,
                    Partner {
                        state: to,
                        ..p.clone()
                    }
                );
                assert_eq!(now.state, to);
            } else {
                assert_error(
                    r,
                    Expect::Invalid,
                    &format!("{} -> {}", from.as_str(), to.as_str()),
                );
                assert_eq!(
                    now.state, from,
                    "a refused change must leave the state as it was"
                );
            }
        }
    }
    let unknown = s.set_partner_state(&by(), 1_000_000, Approved).await;
    assert_error(
        unknown,
        Expect::NotFound,
        "a state change of an unknown partner",
    );
}

// --------------------------------------------------------------------------------------------
// Keys
// --------------------------------------------------------------------------------------------

fn unit_key(unit: &str, n: u8) -> NewKey {
    NewKey {
        kind: KeyKind::SalesUnit,
        owner: KeyOwner::SalesUnit(msn(unit)),
        client_id: format!("client-{unit}"),
        secret_hash: [n; 32],
        subscription_keys: Some([
            format!("sub-primary-{unit}"),
            format!("sub-secondary-{unit}"),
        ]),
    }
}

async fn two_units(s: &dyn Store) -> Merchant {
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    m
}

pub async fn a_sales_unit_key_is_found_by_client_id_and_by_either_subscription_key(s: &dyn Store) {
    // Arrange
    two_units(s).await;

    // Act
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Assert
    assert_eq!(
        k,
        ApiKey {
            id: k.id,
            kind: KeyKind::SalesUnit,
            owner: KeyOwner::SalesUnit(msn("123455")),
            client_id: "client-123455".into(),
            secret_hash: [7; 32],
            generation: 1,
            subscription_keys: Some(["sub-primary-123455".into(), "sub-secondary-123455".into()]),
            revoked: false,
            created_at: contract_now(),
        }
    );
    assert_ne!(k.id, other.id);
    assert_eq!(must(s.key(k.id).await, "key by id"), Some(k.clone()));
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(k.clone())
    );
    assert_eq!(
        must(s.key_by_client_id("client-123456").await, "by client id"),
        Some(other.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-primary-123455").await,
            "by 1st sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by 2nd sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123456").await,
            "by 2nd sub key"
        ),
        Some(other.clone())
    );
    assert_eq!(
        must(
            s.key_by_client_id("client-999999").await,
            "unknown client id"
        ),
        None
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-unknown").await,
            "unknown sub key"
        ),
        None
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("client-123455").await,
            "a client id is no sub key"
        ),
        None
    );
    assert_eq!(
        must(s.key(k.id.max(other.id) + 1000).await, "unknown key id"),
        None
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![k, other]);
}

pub async fn partner_and_merchant_keys_keep_their_owner_and_have_no_subscription_keys(
    s: &dyn Store,
) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;

    // Act
    let acc = must(
        s.create_key(
            &by(),
            NewKey {
                kind: KeyKind::Accounting,
                owner: KeyOwner::Partner(p.id),
                client_id: "acc-1".into(),
                secret_hash: [1; 32],
                subscription_keys: None,
            },
        )
        .await,
        "create accounting key",
    );
    let ml = must(
        s.create_key(
            &by(),
            NewKey {
                kind: KeyKind::MerchantLevel,
                owner: KeyOwner::Merchant(m.id),
                client_id: "ml-1".into(),
                secret_hash: [2; 32],
                subscription_keys: None,
            },
        )
        .await,
        "create merchant-level key",
    );

    // Assert
    assert_eq!(
        (acc.kind, acc.owner, acc.subscription_keys.clone()),
        (KeyKind::Accounting, KeyOwner::Partner(p.id), None)
    );
    assert_eq!(
        (ml.kind, ml.owner, ml.subscription_keys.clone()),
        (KeyKind::MerchantLevel, KeyOwner::Merchant(m.id), None)
    );
    assert_eq!(
        (acc.generation, acc.revoked, acc.secret_hash),
        (1, false, [1; 32])
    );
    assert_eq!(
        must(s.key_by_client_id("acc-1").await, "by client id"),
        Some(acc.clone())
    );
    assert_eq!(
        must(s.key_by_client_id("ml-1").await, "by client id"),
        Some(ml.clone())
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![acc, ml]);
}

/// What token issuance reads: the key and, for a partner's key, the partner's state as it is
/// now (a suspended partner's keys stop getting tokens at once).
pub async fn a_key_is_read_with_its_partners_current_state(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let new_key = |kind, owner, client_id: &str| NewKey {
        kind,
        owner,
        client_id: client_id.into(),
        secret_hash: [7; 32],
        subscription_keys: None,
    };
    let acc = must(
        s.create_key(
            &by(),
            new_key(KeyKind::Accounting, KeyOwner::Partner(p.id), "acc-1"),
        )
        .await,
        "create accounting key",
    );
    let ml = must(
        s.create_key(
            &by(),
            new_key(KeyKind::MerchantLevel, KeyOwner::Merchant(m.id), "ml-1"),
        )
        .await,
        "create merchant-level key",
    );

    // Act / Assert
    assert_eq!(
        must(s.key_with_partner_state("acc-1").await, "partner key"),
        Some((acc.clone(), Some(PartnerState::Approved)))
    );
    assert_eq!(
        must(s.key_with_partner_state("ml-1").await, "merchant key"),
        Some((ml, None))
    );
    assert_eq!(
        must(s.key_with_partner_state("nobody").await, "unknown"),
        None
    );
    must(
        s.set_partner_state(&by(), p.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    let revoked = must(s.revoke_key(&by(), acc.id).await, "revoke");
    assert_eq!(
        must(s.key_with_partner_state("acc-1").await, "after suspension"),
        Some((revoked, Some(PartnerState::Suspended)))
    );
}

pub async fn replacing_a_secret_raises_the_generation_and_changes_the_hash(s: &dyn Store) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Act
    let once = must(
        s.replace_secret(&by(), k.id, [9; 32]).await,
        "replace secret",
    );
    let twice = must(
        s.replace_secret(&by(), k.id, [10; 32]).await,
        "replace secret again",
    );
    let unknown = s
        .replace_secret(&by(), k.id.max(other.id) + 1000, [11; 32])
        .await;

    // Assert
    assert_eq!(
        once,
        ApiKey {
            secret_hash: [9; 32],
            generation: 2,
            ..k.clone()
        }
    );
    assert_eq!(
        twice,
        ApiKey {
            secret_hash: [10; 32],
            generation: 3,
            ..k.clone()
        }
    );
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(twice)
    );
    assert_eq!(
        must(s.key(other.id).await, "the other key"),
        Some(other),
        "only the one key changes"
    );
    assert_error(
        unknown,
        Expect::NotFound,
        "replacing the secret of an unknown key",
    );
}

pub async fn a_revoked_key_is_still_found_marked_revoked_and_its_secret_cannot_be_replaced(
    s: &dyn Store,
) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let other = must(
        s.create_key(&by(), unit_key("123456", 8)).await,
        "create other key",
    );

    // Act
    let revoked = must(s.revoke_key(&by(), k.id).await, "revoke");
    let replace = s.replace_secret(&by(), k.id, [9; 32]).await;
    let unknown = s.revoke_key(&by(), k.id.max(other.id) + 1000).await;

    // Assert
    let expected = ApiKey {
        revoked: true,
        ..k.clone()
    };
    assert_eq!(revoked, expected);
    assert_eq!(must(s.key(k.id).await, "by id"), Some(expected.clone()));
    assert_eq!(
        must(s.key_by_client_id("client-123455").await, "by client id"),
        Some(expected.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by sub key"
        ),
        Some(expected.clone())
    );
    assert_error(
        replace,
        Expect::NotFound,
        "replacing the secret of a revoked key",
    );
    assert_eq!(
        must(s.key(k.id).await, "by id"),
        Some(expected),
        "the refused replacement changed nothing"
    );
    assert_eq!(must(s.key(other.id).await, "the other key"), Some(other));
    assert_error(unknown, Expect::NotFound, "revoking an unknown key");
}

pub async fn client_ids_and_subscription_keys_identify_one_key_only(s: &dyn Store) {
    // Arrange
    two_units(s).await;
    let k = must(
        s.create_key(&by(), unit_key("123455", 7)).await,
        "create key",
    );
    let with = |client: &str, a: &str, b: &str| NewKey {
        client_id: client.into(),
        subscription_keys: Some([a.into(), b.into()]),
        ..unit_key("123456", 8)
    };

    // Act
    let same_client = s
        .create_key(&by(), with("client-123455", "sub-x1", "sub-x2"))
        .await;
    let same_first = s
        .create_key(&by(), with("client-b", "sub-primary-123455", "sub-x2"))
        .await;
    let same_second = s
        .create_key(&by(), with("client-c", "sub-x1", "sub-secondary-123455"))
        .await;
    let crossed = s
        .create_key(&by(), with("client-d", "sub-secondary-123455", "sub-x2"))
        .await;
    let crossed_back = s
        .create_key(&by(), with("client-e", "sub-x1", "sub-primary-123455"))
        .await;

    // Assert
    assert_error(
        same_client,
        Expect::Conflict,
        "a second key with client id client-123455",
    );
    assert_error(
        same_first,
        Expect::Conflict,
        "a second key with the same first subscription key",
    );
    assert_error(
        same_second,
        Expect::Conflict,
        "a second key with the same second subscription key",
    );
    assert_error(
        crossed,
        Expect::Conflict,
        "a new first subscription key equal to another key's second",
    );
    assert_error(
        crossed_back,
        Expect::Conflict,
        "a new second subscription key equal to another key's first",
    );
    assert_eq!(must(s.keys().await, "list keys"), vec![k.clone()]);
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-primary-123455").await,
            "by sub key"
        ),
        Some(k.clone())
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-secondary-123455").await,
            "by sub key"
        ),
        Some(k)
    );
    assert_eq!(
        must(
            s.key_by_subscription_key("sub-x1").await,
            "refused keys' sub key"
        ),
        None
    );
}

// --------------------------------------------------------------------------------------------
// Grants
// --------------------------------------------------------------------------------------------

pub async fn grants_are_made_only_to_approved_accounting_partners(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let applied = add_partner(s, "Applied Accounting", PartnerKind::Accounting).await;
    let rejected = add_partner(s, "Rejected Accounting", PartnerKind::Accounting).await;
    must(
        s.set_partner_state(&by(), rejected.id, PartnerState::Rejected)
            .await,
        "reject",
    );
    let suspended = add_approved(s, "Suspended Accounting", PartnerKind::Accounting).await;
    must(
        s.set_partner_state(&by(), suspended.id, PartnerState::Suspended)
            .await,
        "suspend",
    );
    let integration = add_approved(s, "Approved Integration", PartnerKind::Integration).await;
    let management = add_approved(s, "Approved Management", PartnerKind::Management).await;
    let approved = add_approved(s, "Approved Accounting", PartnerKind::Accounting).await;

    // Act
    let refused = [
        (
            "an applied accounting partner",
            s.create_grant(&by(), applied.id, &lid("100001")).await,
        ),
        (
            "a rejected accounting partner",
            s.create_grant(&by(), rejected.id, &lid("100001")).await,
        ),
        (
            "a suspended accounting partner",
            s.create_grant(&by(), suspended.id, &lid("100001")).await,
        ),
        (
            "an approved integration partner",
            s.create_grant(&by(), integration.id, &lid("100001")).await,
        ),
        (
            "an approved management partner",
            s.create_grant(&by(), management.id, &lid("100001")).await,
        ),
    ];
    let made = must(
        s.create_grant(
            &Actor::new("merchant-user@acme.test"),
            approved.id,
            &lid("100001"),
        )
        .await,
        "grant",
    );

    // Assert
    for (who, r) in refused {
        assert_error(r, Expect::Invalid, &format!("a grant to {who}"));
    }
    let expected = Grant {
        partner_id: approved.id,
        ledger_id: lid("100001"),
        created_at: contract_now(),
        created_by: "merchant-user@acme.test".into(),
    };
    assert_eq!(made, expected);
    assert_eq!(
        must(s.grants(None, None).await, "all grants"),
        vec![expected]
    );
}

pub async fn a_grant_made_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let first = grant(s, p.id, "100001").await;

    // Act
    let again = s
        .create_grant(&Actor::new("someone-else"), p.id, &lid("100001"))
        .await;

    // Assert
    assert_error(again, Expect::Conflict, "the same grant twice");
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![first]);
}

pub async fn a_grant_on_an_unknown_ledger_or_for_an_unknown_partner_is_not_found(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;

    // Act
    let unknown_ledger = s.create_grant(&by(), p.id, &lid("100002")).await;
    let unknown_partner = s.create_grant(&by(), p.id + 1000, &lid("100001")).await;

    // Assert
    assert_error(
        unknown_ledger,
        Expect::NotFound,
        "a grant on unknown ledger 100002",
    );
    assert_error(
        unknown_partner,
        Expect::NotFound,
        "a grant to an unknown partner",
    );
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![]);
}

pub async fn removing_a_grant_returns_true_once_then_false(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    grant(s, p.id, "100001").await;
    let kept = grant(s, q.id, "100001").await;

    // Act
    let first = must(
        s.remove_grant(&by(), p.id, &lid("100001")).await,
        "remove grant",
    );
    let second = must(
        s.remove_grant(&by(), p.id, &lid("100001")).await,
        "remove it again",
    );
    let never = must(
        s.remove_grant(&by(), p.id, &lid("100002")).await,
        "remove a grant never made",
    );

    // Assert
    assert!(
        first,
        "removing a standing grant must report that it was there"
    );
    assert!(
        !second,
        "removing a removed grant must report that nothing was there"
    );
    assert!(
        !never,
        "removing a grant on an unknown ledger must report that nothing was there"
    );
    assert_eq!(must(s.grants(None, None).await, "all grants"), vec![kept]);
    assert_eq!(facts_of(s, "100001").await.granted_partners, vec![q.id]);
}

pub async fn grants_are_listed_by_partner_by_ledger_or_both(s: &dyn Store) {
    // Arrange
    let (_a, _b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let idle = add_approved(s, "Regnskap Idle", PartnerKind::Accounting).await;
    grant(s, p.id, "100002").await;
    grant(s, q.id, "100001").await;
    grant(s, p.id, "100001").await;
    grant(s, p.id, "200001").await;
    let pairs = |gs: Vec<Grant>| -> Vec<(RowId, String)> {
        let mut v: Vec<(RowId, String)> = gs
            .into_iter()
            .map(|g| (g.partner_id, g.ledger_id.to_string()))
            .collect();
        v.sort();
        v
    };
    let pair = |p: RowId, l: &str| (p, l.to_owned());

    // Act
    let all = pairs(must(s.grants(None, None).await, "all grants"));
    let of_p = pairs(must(s.grants(Some(p.id), None).await, "grants of p"));
    let on_100001 = pairs(must(
        s.grants(None, Some(&lid("100001"))).await,
        "grants on 100001",
    ));
    let both = pairs(must(
        s.grants(Some(q.id), Some(&lid("100001"))).await,
        "q on 100001",
    ));
    let none_both = pairs(must(
        s.grants(Some(q.id), Some(&lid("100002"))).await,
        "q on 100002",
    ));
    let of_idle = pairs(must(s.grants(Some(idle.id), None).await, "grants of idle"));
    let on_100003 = pairs(must(
        s.grants(None, Some(&lid("100003"))).await,
        "grants on 100003",
    ));

    // Assert
    let mut expected_all = vec![
        pair(p.id, "100001"),
        pair(p.id, "100002"),
        pair(p.id, "200001"),
        pair(q.id, "100001"),
    ];
    expected_all.sort();
    assert_eq!(all, expected_all);
    assert_eq!(
        of_p,
        vec![
            pair(p.id, "100001"),
            pair(p.id, "100002"),
            pair(p.id, "200001")
        ]
    );
    let mut expected_on = vec![pair(p.id, "100001"), pair(q.id, "100001")];
    expected_on.sort();
    assert_eq!(on_100001, expected_on);
    assert_eq!(both, vec![pair(q.id, "100001")]);
    assert_eq!(none_both, vec![]);
    assert_eq!(of_idle, vec![]);
    assert_eq!(on_100003, vec![]);
}

// --------------------------------------------------------------------------------------------
// Entries
// --------------------------------------------------------------------------------------------

pub async fn appended_entries_are_numbered_from_one_on_each_ledger_and_topic(s: &dyn Store) {
    // Arrange
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let funds1 = [
        entry("capture", 10_000, "2024-04-05", 1),
        entry("capture", 2_500, "2024-04-05", 2),
    ];
    let fees1 = [entry("capture-fee", -275, "2024-04-05", 1)];
    let funds2 = [entry("capture", 500, "2024-04-05", 3)];
    let funds1_more = [entry("refund", -2_500, "2024-04-05", 4)];
    let fees1_more = [
        entry("service-fee", -4_900, "2024-04-05", 5),
        entry("correction", 100, "2024-04-05", 6),
    ];

    // Act
    let a = append(s, "100001", Topic::Funds, &funds1).await;
    let b = append(s, "100001", Topic::Fees, &fees1).await;
    let c = append(s, "100002", Topic::Funds, &funds2).await;
    let empty = append(s, "100001", Topic::Funds, &[]).await;
    let d = append(s, "100001", Topic::Funds, &funds1_more).await;
    let e = append(s, "100001", Topic::Fees, &fees1_more).await;

    // Assert
    assert_eq!(a, placed_all(&funds1, 1, 0));
    assert_eq!(
        b,
        placed_all(&fees1, 1, 0),
        "fees count from 1 on their own"
    );
    assert_eq!(
        c,
        placed_all(&funds2, 1, 0),
        "another ledger counts from 1 on its own"
    );
    assert_eq!(empty, vec![], "an empty batch writes nothing");
    assert_eq!(
        d,
        placed_all(&funds1_more, 3, 12_500),
        "the empty batch used no number"
    );
    assert_eq!(e, placed_all(&fees1_more, 2, -275));
    let funds_feed: Vec<i64> = whole_feed(s, "100001", Topic::Funds)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    let fees_feed: Vec<i64> = whole_feed(s, "100001", Topic::Fees)
        .await
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(funds_feed, vec![1, 2, 3]);
    assert_eq!(fees_feed, vec![1, 2, 3]);
}

pub async fn appended_entries_chain_balances_across_calls(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let calls: Vec<Vec<NewEntry>> = vec![
        vec![
            entry("capture", 10_000, "2024-04-01", 1),
            entry("capture", 2_500, "2024-04-01", 2),
        ],
        vec![entry("refund", -2_500, "2024-04-01", 3)],
        vec![
            entry("fees-retained", -150, "2024-04-01", 4),
            entry("payout-scheduled", -9_850, "2024-04-01", 5),
        ],
        vec![entry("refund", -700, "2024-04-02", 6)],
        vec![
            entry("capture", 300, "2024-04-03", 7),
            entry("top-up", 400, "2024-04-03", 8),
        ],
    ];

    // Act
    let mut written = Vec::new();
    for call in &calls {
        written.push(append(s, "100001", Topic::Funds, call).await);
    }

    // Assert
    let expected_after: Vec<Vec<i64>> = vec![
        vec![10_000, 12_500],
        vec![10_000],
        vec![9_850, 0],
        vec![-700],
        vec![-400, 0],
    ];
    let got_after: Vec<Vec<i64>> = written
        .iter()
        .map(|w| w.iter().map(|e| e.balance_after).collect())
        .collect();
    assert_eq!(
        got_after, expected_after,
        "balances after each entry, call by call"
    );
    let expected: Vec<Entry> = {
        let all: Vec<NewEntry> = calls.concat();
        placed_all(&all, 1, 0)
    };
    assert_eq!(written.concat(), expected);
    let feed = whole_feed(s, "100001", Topic::Funds).await;
    assert_eq!(
        feed, expected,
        "the feed reads back what the appends returned"
    );
    for pair in feed.windows(2) {
        assert_eq!(
            pair[1].balance_before, pair[0].balance_after,
            "seq {} must start where seq {} ended",
            pair[1].seq, pair[0].seq
        );
    }
}

pub async fn an_entry_in_another_currency_is_invalid_and_none_of_its_batch_is_written(
    s: &dyn Store,
) {
    // Arrange
    one_ledger(s, "100001").await;
    let first = append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 1_000, "2024-04-05", 1)],
    )
    .await;
    let mut danish = entry("capture", 3_000, "2024-04-05", 3);
    danish.currency = Currency::DKK;
    let mut danish_fee = entry("capture-fee", -30, "2024-04-05", 4);
    danish_fee.currency = Currency::DKK;

    // Act
    let mixed = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![entry("capture", 2_000, "2024-04-05", 2), danish],
        )
        .await;
    let fee = s
        .append_entries(&lid("100001"), Topic::Fees, vec![danish_fee])
        .await;
    let next = append(
        s,
        "100001",
        Topic::Funds,
        &[entry("capture", 500, "2024-04-05", 5)],
    )
    .await;

    // Assert
    assert_error(mixed, Expect::Invalid, "a NOK ledger given a DKK entry");
    assert_error(fee, Expect::Invalid, "a NOK ledger given a DKK fee");
    assert_eq!(
        next,
        placed_all(&[entry("capture", 500, "2024-04-05", 5)], 2, 1_000),
        "the refused batch left no trace"
    );
    let mut expected = first;
    expected.extend(next);
    assert_eq!(whole_feed(s, "100001", Topic::Funds).await, expected);
    assert_eq!(whole_feed(s, "100001", Topic::Fees).await, vec![]);
}

pub async fn an_entry_type_that_does_not_belong_on_the_topic_is_invalid_and_none_of_its_batch_is_written(
    s: &dyn Store,
) {
    // Arrange
    one_ledger(s, "100001").await;

    // Act
    let fee_on_funds = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![
                entry("capture", 1_000, "2024-04-05", 1),
                entry("capture-fee", -25, "2024-04-05", 2),
            ],
        )
        .await;
    let capture_on_fees = s
        .append_entries(
            &lid("100001"),
            Topic::Fees,
            vec![
                entry("capture-fee", -25, "2024-04-05", 2),
                entry("capture", 1_000, "2024-04-05", 1),
            ],
        )
        .await;
    let unknown_type = s
        .append_entries(
            &lid("100001"),
            Topic::Funds,
            vec![
                entry("capture", 1_000, "2024-04-05", 1),
                entry("surprise", 5, "2024-04-05", 3),
            ],
        )
        .await;

    // Assert
    assert_error(fee_on_funds, Expect::Invalid, "capture-fee on funds");
    assert_error(capture_on_fees, Expect::Invalid, "capture on fees");
    assert_error(unknown_type, Expect::Invalid, "an unknown entry type");
    assert_eq!(
        whole_feed(s, "100001", Topic::Funds).await,
        vec![],
        "no funds entry of a refused batch"
    );
    assert_eq!(
        whole_feed(s, "100001", Topic::Fees).await,
        vec![],
        "no fees entry of a refused batch"
    );
    let ok = [entry("capture", 1_000, "2024-04-05", 1)];
    assert_eq!(
        append(s, "100001", Topic::Funds, &ok).await,
        placed_all(&ok, 1, 0)
    );
    let both_topics = [entry("fees-retained", 25, "2024-04-05", 4)];
    assert_eq!(
        append(s, "100001", Topic::Fees, &both_topics).await,
        placed_all(&both_topics, 1, 0)
    );
}

pub async fn appending_to_an_unknown_ledger_is_not_found(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;

    // Act
    let r = s
        .append_entries(
            &lid("100002"),
            Topic::Funds,
            vec![entry("capture", 1_000, "2024-04-05", 1)],
        )
        .await;

    // Assert
    assert_error(r, Expect::NotFound, "appending to unknown ledger 100002");
    assert_eq!(
        whole_feed(s, "100001", Topic::Funds).await,
        vec![],
        "nothing landed on another ledger"
    );
}

pub async fn concurrent_appends_to_one_topic_stay_gap_free_and_chained(s: &dyn Store) {
    // Arrange
    one_ledger(s, "100001").await;
    let batch = |k: u32| -> Vec<NewEntry> {
        (0..3)
            .map(|j| {
                entry(
                    "capture",
                    i64::from(k * 100 + j + 1),
                    "2024-04-05",
                    k * 3 + j,
                )
            })
            .collect()
    };
    let id = lid("100001");

    // Act
    let (r0, r1, r2, r3) = tokio::join!(
        s.append_entries(&id, Topic::Funds, batch(0)),
        s.append_entries(&id, Topic::Funds, batch(1)),
        s.append_entries(&id, Topic::Funds, batch(2)),
        s.append_entries(&id, Topic::Funds, batch(3)),
    );

    // Assert
    let results = [r0, r1, r2, r3].map(|r| must(r, "a concurrent append"));
    for (k, written) in results.iter().enumerate() {
        let seqs: Vec<i64> = written.iter().map(|e| e.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "batch {k} must get consecutive numbers, got {seqs:?}"
        );
    }
    let feed = whole_feed(s, "100001", Topic::Funds).await;
    assert_eq!(
        feed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<i64>>()
    );
    let mut balance = 0;
    for e in &feed {
        assert_eq!(
            e.balance_before, balance,
            "seq {} must start at the previous balance",
            e.seq
        );
        assert_eq!(
            e.balance_after,
            e.balance_before + e.amount,
            "seq {}",
            e.seq
        );
        balance = e.balance_after;
    }
    // Batch k holds k*100 + 1, + 2, + 3: 300k + 6 each, 1 824 in all.
    assert_eq!(balance, 1_824);
    let mut from_results: Vec<Entry> = results.concat();
    from_results.sort_by_key(|e| e.seq);
    assert_eq!(
        feed, from_results,
        "the feed holds exactly what the appends returned"
    );
}

pub async fn feed_pages_return_exactly_the_entries_after_the_given_seq(s: &dyn Store) {
    // Arrange
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let funds: Vec<NewEntry> = (1..=7)
        .map(|n| entry("capture", i64::from(n) * 100, "2024-04-05", n))
        .collect();
    let written = append(s, "100001", Topic::Funds, &funds).await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -3, "2024-04-05", 1)],
    )
    .await;
    append(
        s,
        "100002",
        Topic::Funds,
        &[entry("capture", 999, "2024-04-05", 8)],
    )
    .await;
    let access = owner_access(s, "100001").await;
    let page = |after: i64, limit: u32| s.feed_page(&access, Topic::Funds, after, limit);

    // Act
    let p1 = must(page(0, 3).await, "feed page");
    let p2 = must(page(3, 3).await, "feed page");
    let p3 = must(page(6, 3).await, "feed page");
    let end = must(page(7, 3).await, "feed page at the end");
    let beyond = must(page(100, 3).await, "feed page beyond the end");
    let middle = must(page(2, 100).await, "feed page");
    let one = must(page(0, 1).await, "feed page");
    let fees = must(s.feed_page(&access, Topic::Fees, 0, 100).await, "fees feed");

    // Assert
    assert_eq!(p1, written[0..3].to_vec());
    assert_eq!(p2, written[3..6].to_vec());
    assert_eq!(p3, written[6..7].to_vec());
    assert_eq!(end, vec![]);
    assert_eq!(beyond, vec![]);
    assert_eq!(middle, written[2..7].to_vec());
    assert_eq!(one, written[0..1].to_vec());
    assert_eq!(fees.len(), 1, "the fees topic has its own feed");
    assert_eq!(
        (fees[0].entry_type.as_str(), fees[0].amount),
        ("capture-fee", -3)
    );
}

pub async fn date_pages_return_only_that_dates_entries_after_the_given_seq(s: &dyn Store) {
    // Arrange: seq 1-2 on 04-01, 3-5 on 04-02, 6 on 04-03, 7 on 04-02 again (a late entry).
    let m = one_ledger(s, "100001").await;
    add_api_unit(s, m.id, "123456", "ACME Bergen").await;
    add_ledger(s, "100002", m.id, &["123456"]).await;
    let dates = [
        "2024-04-01",
        "2024-04-01",
        "2024-04-02",
        "2024-04-02",
        "2024-04-02",
        "2024-04-03",
        "2024-04-02",
    ];
    let funds: Vec<NewEntry> = dates
        .iter()
        .zip(1..)
        .map(|(d, n)| entry("capture", i64::from(n) * 100, d, n))
        .collect();
    let w = append(s, "100001", Topic::Funds, &funds).await;
    append(
        s,
        "100001",
        Topic::Fees,
        &[entry("capture-fee", -3, "2024-04-02", 1)],
    )
    .await;
    append(
        s,
        "100002",
        Topic::Funds,
        &[entry("capture", 999, "2024-04-02", 8)],
    )
    .await;
    let access = owner_access(s, "100001").await;
    let page = |date: &str, after: i64, limit: u32| {
        s.date_page(&access, Topic::Funds, day(date), after, limit)
    };

    // Act
    let apr2_first = must(page("2024-04-02", 0, 2).await, "date page");
    let apr2_second = must(page("2024-04-02", 4, 2).await, "date page");
    let apr2_end = must(page("2024-04-02", 7, 2).await, "date page");
    let apr2_after_5 = must(page("2024-04-02", 5, 10).await, "date page");
    let apr1 = must(page("2024-04-01", 0, 10).await, "date page");
    let apr3 = must(page("2024-04-03", 0, 10).await, "date page");
    let apr4 = must(
        page("2024-04-04", 0, 10).await,
        "date page of a date without entries",
    );
    let fees_apr2 = must(
        s.date_page(&access, Topic::Fees, day("2024-04-02"), 0, 10)
            .await,
        "fees date page",
    );

    // Assert
    assert_eq!(apr2_first, vec![w[2].clone(), w[3].clone()]);
    assert_eq!(apr2_second, vec![w[4].clone(), w[6].clone()]);
    assert_eq!(apr2_end, vec![]);
    assert_eq!(apr2_after_5, vec![w[6].clone()]);
    assert_eq!(apr1, vec![w[0].clone(), w[1].clone()]);
    assert_eq!(apr3, vec![w[5].clone()]);
    assert_eq!(apr4, vec![]);
    assert_eq!(
        fees_apr2
            .iter()
            .map(|e| (e.seq, e.amount))
            .collect::<Vec<_>>(),
        vec![(1, -3)]
    );
}

pub async fn payer_details_round_trip_and_stay_absent_when_not_given(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344"]).await;
    let with_payer = |n: u32, name: &str, message: &str, phone: &str| NewEntry {
        recipient_handle: "NO:57860".into(),
        payer: Some(PayerDetails {
            name: name.into(),
            message: message.into(),
            masked_phone_no: phone.into(),
        }),
        ..entry("capture", 10_000, "2024-04-05", n)
    };
    let entries = vec![
        with_payer(1, "Kari Nordmann", "Takk for maten 🍕 «ære»", "xxxx 1234"),
        NewEntry {
            recipient_handle: "NO:57860".into(),
            ..entry("capture", 5_000, "2024-04-05", 2)
        },
        with_payer(3, "Ola", "", "xxxx 5678"),
    ];

    // Act
    let written = append(s, "100001", Topic::Funds, &entries).await;
    let access = owner_access(s, "100001").await;
    let feed = must(s.feed_page(&access, Topic::Funds, 0, 10).await, "feed");
    let date = must(
        s.date_page(&access, Topic::Funds, day("2024-04-05"), 0, 10)
            .await,
        "date page",
    );

    // Assert
    let expected = placed_all(&entries, 1, 0);
    assert_eq!(written, expected);
    assert_eq!(feed, expected);
    assert_eq!(date, expected);
    assert_eq!(
        feed[1].payer, None,
        "an entry without payer details reads back without them"
    );
    assert_eq!(
        feed[2].payer,
        Some(PayerDetails {
            name: "Ola".into(),
            message: String::new(),
            masked_phone_no: "xxxx 5678".into()
        }),
        "an empty message is still a message"
    );
}

pub async fn a_page_of_a_thousand_entries_reads_back_whole_in_seq_order(s: &dyn Store) {
    // Arrange: 1,500 entries whose dates alternate in runs (so a date page joins several runs),
    // every third with payer details full of characters that need escaping, amounts beyond
    // what a double holds exactly.
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    add_ledger(s, "100001", m.id, &["223344"]).await;
    let entries: Vec<NewEntry> = (1..=1500u32)
        .map(|n| {
            let date = if n / 100 % 2 == 0 {
                "2024-04-05"
            } else {
                "2024-04-06"
            };
            let amount = if n % 2 == 1 {
                9_007_199_254_740_993
            } else {
                -9_007_199_254_740_992
            };
            NewEntry {
                recipient_handle: "NO:57860".into(),
                payer: (n % 3 == 0).then(|| PayerDetails {
                    name: format!("Kari \"K\" Nordmann {n}"),
                    message: format!("back\\slash\nline\ttab\u{1} «ære» 🍕 {n}"),
                    masked_phone_no: "xxxx 1234".into(),
                }),
                ..entry("capture", amount, date, n)
            }
        })
        .collect();
    let written = append(s, "100001", Topic::Funds, &entries).await;
    let access = owner_access(s, "100001").await;
    let on_the_5th: Vec<Entry> = written
        .iter()
        .filter(|e| e.ledger_date == day("2024-04-05"))
        .cloned()
        .collect();

    // Act
    let first = must(s.feed_page(&access, Topic::Funds, 0, 1000).await, "feed");
    let rest = must(s.feed_page(&access, Topic::Funds, 1000, 1000).await, "feed");
    let date_first = must(
        s.date_page(&access, Topic::Funds, day("2024-04-05"), 0, 500)
            .await,
        "date page",
    );
    let date_rest = must(
        s.date_page(
            &access,
            Topic::Funds,
            day("2024-04-05"),
            date_first[499].seq,
            1000,
        )
        .await,
        "date page",
    );

    // Assert
    assert_eq!(written, placed_all(&entries, 1, 0));
    assert_eq!(first, written[..1000].to_vec());
    assert_eq!(rest, written[1000..].to_vec());
    assert_eq!(date_first, on_the_5th[..500].to_vec());
    assert_eq!(date_rest, on_the_5th[500..].to_vec());
}

// --------------------------------------------------------------------------------------------
// The server's own keys
// --------------------------------------------------------------------------------------------

fn signing_key(kid: &str, created_at: &str, seed: u8) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        private_der: vec![0x30, seed, 0x00, 0xff, seed],
        public_raw: vec![seed; 32],
        created_at: created_at.into(),
        retired_at: None,
    }
}

pub async fn signing_keys_are_added_listed_oldest_first_and_retired_once(s: &dyn Store) {
    // Arrange
    let newer = signing_key("kid-newer", "2024-03-01T00:00:00.000000Z", 2);
    let older = signing_key("kid-older", "2024-01-01T00:00:00.000000Z", 1);

    // Act
    must(
        s.add_signing_key(&by(), newer.clone()).await,
        "add newer key",
    );
    must(
        s.add_signing_key(&by(), older.clone()).await,
        "add older key",
    );
    let listed = must(s.signing_keys().await, "list signing keys");
    let duplicate = s
        .add_signing_key(
            &by(),
            signing_key("kid-older", "2024-05-01T00:00:00.000000Z", 3),
        )
        .await;
    must(
        s.retire_signing_key(&by(), "kid-older").await,
        "retire older key",
    );
    let after_retire = must(s.signing_keys().await, "list signing keys");
    let again = s.retire_signing_key(&by(), "kid-older").await;
    let unknown = s.retire_signing_key(&by(), "kid-unknown").await;

    // Assert
    assert_eq!(listed, vec![older.clone(), newer.clone()]);
    assert_error(
        duplicate,
        Expect::Conflict,
        "a second signing key kid-older",
    );
    assert_eq!(
        after_retire,
        vec![
            SigningKeyRecord {
                retired_at: Some(CONTRACT_NOW.into()),
                ..older
            },
            newer.clone()
        ]
    );
    assert_error(again, Expect::NotFound, "retiring a retired key");
    assert_error(unknown, Expect::NotFound, "retiring an unknown key");
    assert_eq!(
        must(s.signing_keys().await, "list signing keys")[1],
        newer,
        "the other key stays active"
    );
}

pub async fn a_lease_is_held_by_one_holder_until_it_lapses(s: &dyn Store) {
    // Arrange
    let t = |secs: i64| Timestamp::from_second(1_700_000_000 + secs).expect("a valid time");

    // Act
    let a_takes = must(s.take_lease("closing", "a", t(0), t(30)).await, "a takes");
    let b_while_held = must(s.take_lease("closing", "b", t(10), t(40)).await, "b tries");
    let a_renews = must(s.take_lease("closing", "a", t(20), t(50)).await, "a renews");
    let b_before_lapse = must(s.take_lease("closing", "b", t(49), t(79)).await, "b tries");
    let other_name = must(s.take_lease("other", "b", t(49), t(79)).await, "b, other");
    let b_after_lapse = must(s.take_lease("closing", "b", t(50), t(80)).await, "b takes");
    let a_after_losing = must(s.take_lease("closing", "a", t(51), t(81)).await, "a tries");

    // Assert
    assert!(a_takes, "a free lease is taken");
    assert!(!b_while_held, "a held lease is refused to another holder");
    assert!(a_renews, "the holder renews its own lease");
    assert!(!b_before_lapse, "the renewal counts, not the first expiry");
    assert!(other_name, "leases of other names are separate");
    assert!(b_after_lapse, "a lapsed lease is taken by another holder");
    assert!(
        !a_after_losing,
        "the former holder is refused once another holds it"
    );
}

pub async fn server_secret_keeps_the_first_value_it_stored(s: &dyn Store) {
    // Arrange
    let first = [0u8, 255, 1, 0, 42];

    // Act
    let stored = must(s.server_secret("cursor-mac", &first).await, "first call");
    let again = must(
        s.server_secret("cursor-mac", b"a different candidate")
            .await,
        "second call",
    );
    let other = must(
        s.server_secret("other-secret", b"other").await,
        "another name",
    );
    let third = must(
        s.server_secret("cursor-mac", b"yet another").await,
        "third call",
    );

    // Assert
    assert_eq!(stored, first.to_vec());
    assert_eq!(
        again,
        first.to_vec(),
        "the second caller must get the first stored value"
    );
    assert_eq!(other, b"other".to_vec());
    assert_eq!(third, first.to_vec());
}

// --------------------------------------------------------------------------------------------
// Logs
// --------------------------------------------------------------------------------------------

pub async fn access_log_lists_requests_newest_first_and_filters_by_ledger_partner_and_owner(
    s: &dyn Store,
) {
    // Arrange
    let (a, b) = listing_world(s).await;
    let p = add_approved(s, "Regnskap One", PartnerKind::Accounting).await;
    let q = add_approved(s, "Regnskap Two", PartnerKind::Accounting).await;
    let rec = |n: u32, ledger: Option<&str>, partner: Option<RowId>, kind: KeyKind, status: u16| {
        NewAccessRecord {
            request_id: format!("req-{n}"),
            key_id: Some(i64::from(n) + 10),
            key_kind: Some(kind),
            client_id: Some(format!("client-{n}")),
            partner_id: partner,
            merchant_id: if kind == KeyKind::MerchantLevel {
                Some(a.id)
            } else {
                None
            },
            msn: if kind == KeyKind::SalesUnit {
                Some(msn("123455"))
            } else {
                None
            },
            ledger_id: ledger.map(str::to_owned),
            endpoint: match ledger {
                Some(l) => format!("/report/v2/ledgers/{l}/funds/feed"),
                None => "/settlement/v1/ledgers".into(),
            },
            status,
        }
    };
    let records = vec![
        rec(1, Some("100001"), Some(p.id), KeyKind::Accounting, 200),
        rec(2, Some("200001"), Some(p.id), KeyKind::Accounting, 200),
        rec(3, Some("100002"), None, KeyKind::MerchantLevel, 200),
        rec(4, None, Some(p.id), KeyKind::Accounting, 200),
        rec(5, Some("999999"), Some(p.id), KeyKind::Accounting, 404),
        rec(6, Some("100001"), None, KeyKind::SalesUnit, 200),
        rec(7, Some("100003"), Some(q.id), KeyKind::Accounting, 200),
        NewAccessRecord {
            request_id: "req-8".into(),
            endpoint: "/settlement/v1/ledgers".into(),
            status: 401,
            ..Default::default()
        },
    ];
    for r in &records {
        must(s.record_access(r.clone()).await, "record access");
    }
    let log = |ledger: Option<&str>, partner: Option<RowId>, owner: Option<RowId>, limit: u32| {
        let f = AccessLogFilter {
            ledger_id: ledger.map(lid),
            partner_id: partner,
            owner_merchant_id: owner,
            limit,
        };
        async move { must(s.access_log(&f).await, "access log") }
    };
    let numbers = |rs: &[AccessRecord]| -> Vec<String> {
        rs.iter().map(|r| r.rec.request_id.clone()).collect()
    };

    // Act
    let all = log(None, None, None, 100).await;
    let on_100001 = log(Some("100001"), None, None, 100).await;
    let of_p = log(None, Some(p.id), None, 100).await;
    let owned_by_a = log(None, None, Some(a.id), 100).await;
    let owned_by_b = log(None, None, Some(b.id), 100).await;
    let p_on_a = log(None, Some(p.id), Some(a.id), 100).await;
    let newest_two = log(None, None, None, 2).await;

    // Assert
    let mut expected_all: Vec<NewAccessRecord> = records.clone();
    expected_all.reverse();
    assert_eq!(
        all.iter().map(|r| r.rec.clone()).collect::<Vec<_>>(),
        expected_all,
        "every field, newest first"
    );
    assert!(
        all.iter().all(|r| r.at == CONTRACT_NOW),
        "each record carries the store's time"
    );
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "ids fall from newest to oldest"
    );
    assert_eq!(numbers(&on_100001), vec!["req-6", "req-1"]);
    assert_eq!(numbers(&of_p), vec!["req-5", "req-4", "req-2", "req-1"]);
    assert_eq!(
        numbers(&owned_by_a),
        vec!["req-7", "req-6", "req-3", "req-1"]
    );
    assert_eq!(numbers(&owned_by_b), vec!["req-2"]);
    assert_eq!(numbers(&p_on_a), vec!["req-1"]);
    assert_eq!(numbers(&newest_two), vec!["req-8", "req-7"]);
}

pub async fn audit_log_records_every_state_change_with_its_actor_newest_first(s: &dyn Store) {
    // Arrange & Act: each change by its own actor.
    let a = |who: &str| Actor::new(who);
    let m = must(
        s.create_merchant(
            &a("u1"),
            NewMerchant {
                business: org("987654321"),
                name: "ACME".into(),
            },
        )
        .await,
        "merchant",
    );
    let unit = NewSalesUnit {
        msn: msn("123455"),
        merchant_id: m.id,
        name: "ACME Oslo".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        vm_number: None,
    };
    must(s.create_sales_unit(&a("u2"), unit).await, "sales unit");
    must(
        s.create_ledger(&a("u3"), ledger_spec("100001", m.id, &["123455"]))
            .await,
        "ledger",
    );
    let p = must(
        s.create_partner(
            &a("u4"),
            NewPartner {
                name: "Regnskap".into(),
                kind: PartnerKind::Accounting,
                business: None,
                contact_email: "r@r.test".into(),
            },
        )
        .await,
        "partner",
    );
    must(
        s.set_partner_state(&a("u5"), p.id, PartnerState::Approved)
            .await,
        "approve",
    );
    let k = must(s.create_key(&a("u6"), unit_key("123455", 1)).await, "key");
    must(
        s.replace_secret(&a("u7"), k.id, [2; 32]).await,
        "regenerate",
    );
    must(s.revoke_key(&a("u8"), k.id).await, "revoke");
    must(
        s.create_grant(&a("u9"), p.id, &lid("100001")).await,
        "grant",
    );
    must(
        s.remove_grant(&a("u10"), p.id, &lid("100001")).await,
        "remove grant",
    );
    must(
        s.add_signing_key(
            &a("u11"),
            signing_key("kid-1", "2024-01-01T00:00:00.000000Z", 1),
        )
        .await,
        "signing key",
    );
    must(
        s.retire_signing_key(&a("u12"), "kid-1").await,
        "retire signing key",
    );
    let log = must(s.audit_log(100).await, "audit log");
    let newest_three = must(s.audit_log(3).await, "audit log");

    // Assert
    let got: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str(), r.subject.as_str()))
        .collect();
    let (pid, kid, lid_) = (
        format!("partner {}", p.id),
        format!("key {}", k.id),
        "ledger 100001".to_owned(),
    );
    let expected: Vec<(&str, &str, &str)> = vec![
        ("u12", "signing-key.retire", "kid-1"),
        ("u11", "signing-key.add", "kid-1"),
        ("u10", "grant.remove", lid_.as_str()),
        ("u9", "grant.create", lid_.as_str()),
        ("u8", "key.revoke", kid.as_str()),
        ("u7", "key.regenerate", kid.as_str()),
        ("u6", "key.issue", kid.as_str()),
        ("u5", "partner.state", pid.as_str()),
        ("u4", "partner.create", pid.as_str()),
        ("u3", "ledger.create", "100001"),
        ("u2", "sales-unit.create", "123455"),
        ("u1", "merchant.create", "business:NO:ORG:987654321"),
    ];
    assert_eq!(got, expected, "(actor, action, subject), newest first");
    let partner_ref = format!("partner {}", p.id);
    assert_eq!(
        log[2].detail, partner_ref,
        "a grant's record names the partner"
    );
    assert_eq!(
        log[3].detail, partner_ref,
        "a grant's record names the partner"
    );
    assert_eq!(log[7].detail, "applied -> approved");
    assert!(
        log.iter().all(|r| r.at == CONTRACT_NOW),
        "each record carries the store's time"
    );
    assert!(
        log.windows(2).all(|w| w[0].id > w[1].id),
        "ids fall from newest to oldest"
    );
    assert_eq!(newest_three, log[..3].to_vec());
}

pub async fn refused_changes_leave_no_audit_record(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Oslo").await;
    add_ledger(s, "100001", m.id, &["123455"]).await;
    let p = add_partner(s, "Regnskap", PartnerKind::Accounting).await;
    let before = must(s.audit_log(100).await, "audit log");
    let x = Actor::new("refused");

    // Act
    let merchant = s
        .create_merchant(
            &x,
            NewMerchant {
                business: org("987654321"),
                name: "Again".into(),
            },
        )
        .await;
    let ledger = s
        .create_ledger(&x, ledger_spec("100002", m.id, &["123455"]))
        .await;
    let state = s.set_partner_state(&x, p.id, PartnerState::Suspended).await;
    let grant_ = s.create_grant(&x, p.id, &lid("100001")).await;
    let removed = must(
        s.remove_grant(&x, p.id, &lid("100001")).await,
        "remove a grant never made",
    );
    let retire = s.retire_signing_key(&x, "kid-unknown").await;
    let revoke = s.revoke_key(&x, 1_000_000).await;

    // Assert
    assert_error(merchant, Expect::Conflict, "a duplicate merchant");
    assert_error(
        ledger,
        Expect::Conflict,
        "a ledger for a unit already settling elsewhere",
    );
    assert_error(state, Expect::Invalid, "applied -> suspended");
    assert_error(grant_, Expect::Invalid, "a grant to an applied partner");
    assert!(!removed, "there was no grant to remove");
    assert_error(retire, Expect::NotFound, "retiring an unknown signing key");
    assert_error(revoke, Expect::NotFound, "revoking an unknown key");
    let after = must(s.audit_log(100).await, "audit log");
    assert_eq!(
        after, before,
        "a refused or empty change must not be audited"
    );
    assert!(after.iter().all(|r| r.actor != "refused"));
}

pub async fn ping_succeeds_on_a_working_store(s: &dyn Store) {
    // Act
    let r = s.ping().await;

    // Assert
    must(r, "ping");
}

pub async fn pool_stats_count_no_more_idle_connections_than_open_ones(s: &dyn Store) {
    // Arrange: a query, so a pooled backend has opened a connection.
    must(s.ping().await, "ping");

    // Act
    let stats = s.pool_stats();

    // Assert
    assert!(
        stats.idle <= stats.size,
        "more idle connections than open ones: {stats:?}"
    );
}

// --------------------------------------------------------------------------------------------
// --- portal ---: users, sessions and failed sign-ins
// --------------------------------------------------------------------------------------------

fn new_user(email: &str, role: PortalRole) -> NewPortalUser {
    NewPortalUser {
        email: email.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

pub async fn portal_users_are_found_by_id_and_by_email_in_any_case(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME AS").await;
    let p = add_approved(s, "Regnskap AS", PartnerKind::Accounting).await;

    // Act
    let mu = must(
        s.create_portal_user(
            &by(),
            new_user(" Kari@Example.COM ", PortalRole::Merchant(m.id)),
        )
        .await,
        "merchant user",
    );
    let pu = must(
        s.create_portal_user(
            &by(),
            new_user("ola@example.com", PortalRole::Partner(p.id)),
        )
        .await,
        "partner user",
    );
    let ou = must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "operator user",
    );

    // Assert
    assert_eq!(
        mu.email, "kari@example.com",
        "emails are kept trimmed and lowercased"
    );
    assert_eq!(mu.role, PortalRole::Merchant(m.id));
    assert_eq!(pu.role, PortalRole::Partner(p.id));
    assert_eq!(ou.role, PortalRole::Operator);
    assert_eq!(mu.created_at, contract_now());
    assert_eq!(
        mu.password_hash,
        new_user("x", PortalRole::Operator).password_hash
    );
    assert_eq!(must(s.portal_user(pu.id).await, "by id"), Some(pu.clone()));
    assert_eq!(
        must(s.portal_user_by_email("KARI@example.com").await, "by email"),
        Some(mu.clone())
    );
    assert_eq!(
        must(
            s.portal_user_by_email("nobody@example.com").await,
            "unknown"
        ),
        None
    );
    assert_eq!(must(s.portal_user(9999).await, "unknown id"), None);
    assert_eq!(
        must(s.portal_users().await, "all"),
        vec![mu, pu, ou.clone()]
    );
    let audit = must(s.audit_log(1).await, "audit");
    assert_eq!(audit[0].action, "portal-user.create");
    assert_eq!(audit[0].subject, format!("portal user {}", ou.id));
}

pub async fn a_portal_email_used_twice_is_a_conflict(s: &dyn Store) {
    must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "first",
    );
    assert_error(
        s.create_portal_user(&by(), new_user("OPS@example.com", PortalRole::Operator))
            .await,
        Expect::Conflict,
        "same email in another case",
    );
}

pub async fn a_portal_user_of_an_unknown_merchant_or_partner_is_not_found(s: &dyn Store) {
    assert_error(
        s.create_portal_user(&by(), new_user("a@example.com", PortalRole::Merchant(4242)))
            .await,
        Expect::NotFound,
        "unknown merchant",
    );
    assert_error(
        s.create_portal_user(&by(), new_user("b@example.com", PortalRole::Partner(4242)))
            .await,
        Expect::NotFound,
        "unknown partner",
    );
    assert_eq!(must(s.portal_users().await, "all"), vec![]);
}

fn application() -> NewPartner {
    NewPartner {
        name: "Tall og Tekst AS".into(),
        kind: PartnerKind::Accounting,
        business: Some(must(
            BusinessId::parse("org", "business:NO:ORG", "923456789").map_err(StoreError::from),
            "org",
        )),
        contact_email: "post@tallogtekst.no".into(),
    }
}

pub async fn a_partner_application_creates_an_applied_partner_and_its_user_together(s: &dyn Store) {
    // Act
    let (p, u) = must(
        s.apply_as_partner(&by(), application(), "Post@TallOgTekst.no", "$argon2id$x")
            .await,
        "apply",
    );

    // Assert
    assert_eq!(p.state, PartnerState::Applied);
    assert_eq!(p.name, "Tall og Tekst AS");
    assert_eq!(u.role, PortalRole::Partner(p.id));
    assert_eq!(u.email, "post@tallogtekst.no");
    assert_eq!(u.password_hash, "$argon2id$x");
    assert_eq!(must(s.partners().await, "partners"), vec![p]);
    assert_eq!(must(s.portal_users().await, "users"), vec![u]);
}

pub async fn a_partner_application_with_a_taken_email_writes_nothing(s: &dyn Store) {
    // Arrange
    must(
        s.create_portal_user(&by(), new_user("post@tallogtekst.no", PortalRole::Operator))
            .await,
        "existing user",
    );
    let audit_before = must(s.audit_log(100).await, "audit");

    // Act
    let r = s
        .apply_as_partner(&by(), application(), "post@tallogtekst.no", "$argon2id$x")
        .await;

    // Assert
    assert_error(r, Expect::Conflict, "email taken");
    assert_eq!(
        must(s.partners().await, "partners"),
        vec![],
        "no partner left behind"
    );
    assert_eq!(must(s.audit_log(100).await, "audit"), audit_before);
}

pub async fn a_session_is_found_by_its_token_hash_until_it_expires_or_is_deleted(s: &dyn Store) {
    // Arrange
    let u = must(
        s.create_portal_user(&by(), new_user("ops@example.com", PortalRole::Operator))
            .await,
        "user",
    );
    let later = must(
        contract_now()
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .map_err(|e| StoreError::Invalid(e.to_string())),
        "later",
    );
    let earlier = must(
        contract_now()
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .map_err(|e| StoreError::Invalid(e.to_string())),
        "earlier",
    );

    // Act
    must(
        s.create_session(u.id, [1; 32], "csrf-1", later).await,
        "live session",
    );
    must(
        s.create_session(u.id, [2; 32], "csrf-2", earlier).await,
        "expired session",
    );

    // Assert
    let live = some(must(s.session([1; 32]).await, "live"), "live session");
    assert_eq!(
        live,
        PortalSession {
            user_id: u.id,
            csrf_token: "csrf-1".into(),
            created_at: contract_now(),
            expires_at: later,
        }
    );
    assert_eq!(
        must(s.session([2; 32]).await, "expired"),
        None,
        "expired sessions are gone"
    );
    assert_eq!(must(s.session([3; 32]).await, "unknown"), None);
    assert!(must(s.delete_session([1; 32]).await, "sign out"));
    assert_eq!(must(s.session([1; 32]).await, "after sign-out"), None);
    assert!(!must(s.delete_session([1; 32]).await, "twice"));
    assert_error(
        s.create_session(4242, [4; 32], "csrf", later).await,
        Expect::NotFound,
        "session of an unknown user",
    );
}

pub async fn failed_sign_ins_are_counted_per_email_until_cleared(s: &dyn Store) {
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "none yet"),
        SignInFailures::default()
    );
    must(s.record_sign_in_failure("a@example.com").await, "first");
    let second = must(s.record_sign_in_failure("A@Example.com").await, "second");
    must(
        s.record_sign_in_failure("b@example.com").await,
        "other email",
    );
    assert_eq!(
        second,
        SignInFailures {
            count: 2,
            last_at: Some(contract_now())
        }
    );
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "read").count,
        2
    );
    must(s.clear_sign_in_failures("a@example.com").await, "clear");
    assert_eq!(
        must(s.sign_in_failures("a@example.com").await, "cleared").count,
        0
    );
    assert_eq!(
        must(s.sign_in_failures("b@example.com").await, "untouched").count,
        1
    );
}
