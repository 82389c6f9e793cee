//! What every section of the contract builds its worlds and checks with.

pub(super) use super::{CONTRACT_NOW, contract_now};
pub(super) use jiff::Timestamp;
pub(super) use ledgerport_core::access::{
    Decision, LedgerAccess, LedgerFacts, ListScope, Principal, StandingGrant, decide,
};
pub(super) use ledgerport_core::entry::{Entry, NewEntry, PayerDetails};
pub(super) use ledgerport_core::ids::{
    BankAccount, BusinessId, Country, Currency, LedgerDate, LedgerId, Msn, RecipientHandle, Topic,
};
pub(super) use ledgerport_core::world::{
    ApiKey, FeePlan, Grant, GrantScope, KeyKind, KeyOwner, Ledger, Merchant, Partner, PartnerKind,
    PartnerState, PayoutFrequency, RowId, SalesUnit, SalesUnitKind, SettlementMode, Topics,
};
pub(super) use ledgerport_store::{
    AccessLogFilter, AccessRecord, Actor, LedgerView, NewAccessRecord, NewKey, NewLedger, NewMail,
    NewMerchant, NewPartner, NewPortalUser, NewSalesUnit, OutboxMail, OutboxSummary, PortalRole,
    PortalSession, Result, SignInFailures, SigningKeyRecord, Store, StoreError,
};
pub(super) use std::fmt::Debug;

pub(super) const OPERATOR: &str = "operator@ledgerport.test";

pub(super) fn by() -> Actor {
    Actor::new(OPERATOR)
}

#[track_caller]
pub(super) fn must<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected success, got {e:?}"),
    }
}

#[track_caller]
pub(super) fn some<T>(o: Option<T>, what: &str) -> T {
    match o {
        Some(v) => v,
        None => panic!("{what}: expected a value, got None"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    NotFound,
    Conflict,
    Invalid,
}

#[track_caller]
pub(super) fn assert_error<T: Debug>(r: Result<T>, expected: Expect, what: &str) {
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
pub(super) fn org(id: &str) -> BusinessId {
    match BusinessId::parse("org", "business:NO:ORG", id) {
        Ok(b) => b,
        Err(e) => panic!("test org {id}: {e}"),
    }
}

#[track_caller]
pub(super) fn msn(s: &str) -> Msn {
    match Msn::parse("msn", s) {
        Ok(m) => m,
        Err(e) => panic!("test msn {s}: {e}"),
    }
}

#[track_caller]
pub(super) fn lid(s: &str) -> LedgerId {
    match LedgerId::parse("ledgerId", s) {
        Ok(l) => l,
        Err(e) => panic!("test ledger id {s}: {e}"),
    }
}

#[track_caller]
pub(super) fn handle(s: &str) -> RecipientHandle {
    match RecipientHandle::parse("handle", s) {
        Ok(h) => h,
        Err(e) => panic!("test handle {s}: {e}"),
    }
}

#[track_caller]
pub(super) fn day(s: &str) -> LedgerDate {
    match LedgerDate::parse("ledgerDate", s) {
        Ok(d) => d,
        Err(e) => panic!("test date {s}: {e}"),
    }
}

pub(super) fn account() -> BankAccount {
    BankAccount {
        scheme: "BBAN:NO".into(),
        id: "86011117947".into(),
    }
}

pub(super) async fn add_merchant(s: &dyn Store, org_id: &str, name: &str) -> Merchant {
    let m = NewMerchant {
        business: org(org_id),
        name: name.into(),
    };
    must(s.create_merchant(&by(), m).await, "create merchant")
}

pub(super) async fn add_api_unit(
    s: &dyn Store,
    merchant: RowId,
    number: &str,
    name: &str,
) -> SalesUnit {
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

pub(super) async fn add_vm_unit(
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

pub(super) fn ledger_spec(id: &str, owner: RowId, units: &[&str]) -> NewLedger {
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
        created_at: None,
    }
}

pub(super) async fn add_ledger(
    s: &dyn Store,
    id: &str,
    owner: RowId,
    units: &[&str],
) -> LedgerView {
    must(
        s.create_ledger(&by(), ledger_spec(id, owner, units)).await,
        "create ledger",
    )
}

pub(super) async fn add_partner(s: &dyn Store, name: &str, kind: PartnerKind) -> Partner {
    let p = NewPartner {
        name: name.into(),
        kind,
        business: None,
        contact_email: format!("{}@partner.test", name.to_lowercase().replace(' ', "-")),
    };
    must(s.create_partner(&by(), p).await, "create partner")
}

pub(super) async fn add_approved(s: &dyn Store, name: &str, kind: PartnerKind) -> Partner {
    let p = add_partner(s, name, kind).await;
    must(
        s.set_partner_state(&by(), p.id, PartnerState::Approved)
            .await,
        "approve partner",
    )
}

pub(super) async fn grant(s: &dyn Store, partner: RowId, ledger: &str) -> Grant {
    must(
        s.create_grant(&by(), partner, &lid(ledger), &GrantScope::EVERYTHING)
            .await,
        "create grant",
    )
}

/// A ledger's description as the operator reads it (every read goes through the policy).
pub(super) async fn operator_view(s: &dyn Store, id: &LedgerId) -> Result<Option<LedgerView>> {
    Ok(s.ledger(id).await?.map(|g| {
        let (_, view) = g
            .open(&Principal::Operator { user_id: None })
            .expect("the operator reads every ledger");
        view
    }))
}

/// What the policy learns about a ledger from the store, read together with its description.
pub(super) async fn operator_facts(s: &dyn Store, id: &LedgerId) -> Result<Option<LedgerFacts>> {
    Ok(s.ledger(id).await?.map(|g| g.facts().clone()))
}

pub(super) async fn facts_of(s: &dyn Store, ledger: &str) -> LedgerFacts {
    let f = some(
        must(operator_facts(s, &lid(ledger)).await, "ledger facts"),
        "facts of an existing ledger",
    );
    sorted(f)
}

/// Grants come back in no promised order; compare them sorted.
pub(super) fn sorted(mut f: LedgerFacts) -> LedgerFacts {
    f.grants.sort_unstable_by_key(|g| g.partner_id);
    f
}

/// The partners holding a grant in the facts, in id order.
pub(super) fn granted_ids(f: &LedgerFacts) -> Vec<RowId> {
    let mut ids: Vec<RowId> = f.grants.iter().map(|g| g.partner_id).collect();
    ids.sort_unstable();
    ids
}

/// The access a merchant-level key of the ledger's owner gets from the policy.
pub(super) async fn owner_access(s: &dyn Store, ledger: &str) -> LedgerAccess {
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

pub(super) async fn scope_ids(
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
pub(super) async fn checked_scope(
    s: &dyn Store,
    scope: &ListScope,
    filter: Option<&str>,
) -> Vec<String> {
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
pub(super) fn entry(entry_type: &str, amount: i64, date: &str, n: u32) -> NewEntry {
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
pub(super) fn placed(e: &NewEntry, seq: i64, before: i64) -> Entry {
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
pub(super) fn placed_all(entries: &[NewEntry], first_seq: i64, before: i64) -> Vec<Entry> {
    let mut balance = before;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        out.push(placed(e, first_seq + i as i64, balance));
        balance += e.amount;
    }
    out
}

pub(super) async fn append(
    s: &dyn Store,
    ledger: &str,
    topic: Topic,
    entries: &[NewEntry],
) -> Vec<Entry> {
    must(
        s.append_entries(&lid(ledger), topic, entries.to_vec())
            .await,
        "append entries",
    )
}

pub(super) async fn whole_feed(s: &dyn Store, ledger: &str, topic: Topic) -> Vec<Entry> {
    let access = owner_access(s, ledger).await;
    must(
        s.feed_page(&access, topic, 0, 10_000).await,
        "read the whole feed",
    )
}

/// A ledger "100001" of a merchant with api unit 123455, for the entry tests.
pub(super) async fn one_ledger(s: &dyn Store, id: &str) -> Merchant {
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;
    add_ledger(s, id, m.id, &["123455"]).await;
    m
}

/// Merchant A: "100001" [api:123455], "100002" [api:123456, NO:57860], "100003" [NO:57861].
/// Merchant B: "200001" [api:222222]. Returns (A, B).
pub(super) async fn listing_world(s: &dyn Store) -> (Merchant, Merchant) {
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

pub(super) fn unit_key(unit: &str, n: u8) -> NewKey {
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

pub(super) fn signing_key(kid: &str, created_at: &str, seed: u8) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        private_der: vec![0x30, seed, 0x00, 0xff, seed],
        public_raw: vec![seed; 32],
        created_at: created_at.into(),
        retired_at: None,
    }
}
