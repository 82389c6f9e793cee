//! The contract every [`Store`](ledgerport_store::Store) backend must pass.
//!
//! Each `pub async fn` in the section modules is one test body: it takes a fresh, empty store,
//! arranges a small world through the `Store` trait only, and panics with a message naming what
//! went wrong. A backend runs all of them with [`store_contract_tests!`](crate::store_contract_tests),
//! one `#[tokio::test]` per body, grouped in one module per section:
//!
//! ```text
//! async fn fresh() -> SqliteStore {
//!     let clock = Arc::new(ManualClock::new(ledgerport_testkit::contract::contract_now()));
//!     SqliteStore::open("sqlite::memory:", clock).await.expect("open an in-memory store")
//! }
//! ledgerport_testkit::store_contract_tests!(fresh());
//! ```
//!
//! Attributes after the expression go on every generated test (the PostgreSQL suite is
//! `#[ignore]`d unless a database is there: `store_contract_tests!(fresh(), #[ignore = "..."])`). The list of tests lives in the macro only; the test
//! `every_contract_test_is_listed` below compares it with the `pub async fn`s of the section files,
//! so a test written but not listed fails the build's tests instead of silently never running.
//!
//! The store must be built on a clock standing still at [`contract_now`]: the tests check the
//! times the store records (`created_at`, the logs' `at`, a signing key's `retired_at`) exactly.
//! The calling crate needs `tokio` (with `macros` and `rt`) among its dev-dependencies.

mod helpers;

pub mod entries;
pub mod grants;
pub mod keys;
pub mod ledgers;
pub mod logs;
pub mod merchants;
pub mod notifications;
pub mod outbox;
pub mod partners;
pub mod portal;
pub mod proofs;
pub mod requests;
pub mod server_keys;
pub mod webhooks;

use jiff::Timestamp;
use ledgerport_store::Store;

/// The instant the store's clock must stand at during the contract tests.
pub const CONTRACT_NOW: &str = "2024-04-05T07:19:26.528092Z";

/// [`CONTRACT_NOW`] as a timestamp, for building the store's `ManualClock`.
pub fn contract_now() -> Timestamp {
    match CONTRACT_NOW.parse() {
        Ok(t) => t,
        Err(e) => panic!("CONTRACT_NOW is not a timestamp: {e}"),
    }
}

/// Expands to one `#[tokio::test]` per contract test, in one module per section; `$make` is an
/// expression whose `.await` gives a fresh, empty store (any type that coerces to `&dyn Store`
/// when borrowed, or a [`TestStore`](crate::testing::TestStore)), built on a clock standing at
/// [`contract_now`](crate::contract::contract_now). Attributes written after `$make` (each after
/// a comma) are put on every test. `store_contract_tests!(@names)` is the list itself, as `(section, test)` pairs.
#[macro_export]
macro_rules! store_contract_tests {
    (@names) => {
        $crate::store_contract_tests! {@list names}
    };
    // The one list of contract tests, by section.
    (@list $($how:tt)+) => {
        $crate::store_contract_tests! {@expand $($how)+ ;
            merchants: [
                merchants_are_listed_in_creation_order_and_found_by_id_and_by_org,
                a_second_merchant_with_the_same_organisation_is_a_conflict,
                an_api_sales_unit_is_addressed_as_api_and_its_msn,
                a_vm_number_sales_unit_is_addressed_by_its_country_and_number,
                a_sales_unit_whose_number_does_not_fit_its_kind_is_invalid,
                sales_units_are_listed_per_merchant_in_msn_order,
                a_sales_unit_msn_or_handle_used_twice_is_a_conflict,
                a_sales_unit_of_an_unknown_merchant_is_not_found,
            ],
            ledgers: [
                a_ledger_with_one_sales_unit_reads_back_exactly_as_created,
                a_ledger_settling_for_several_units_lists_them_in_the_given_order,
                a_ledger_for_a_sales_unit_of_another_merchant_is_invalid_and_not_written,
                a_ledger_for_an_unknown_sales_unit_is_not_found_and_not_written,
                a_sales_unit_settles_on_one_ledger_only,
                a_ledger_id_used_twice_is_a_conflict,
                a_ledger_without_sales_units_is_invalid,
                a_ledger_created_in_the_past_opens_on_that_date_and_never_in_the_future,
                ledger_facts_name_the_owner_the_handles_in_order_and_only_approved_grantees,
                sole_handle_scope_lists_only_ledgers_settling_for_exactly_that_handle,
                granted_to_scope_lists_the_partners_granted_ledgers_across_merchants,
                owned_by_scope_lists_only_that_merchants_ledgers,
                scope_pages_return_every_ledger_exactly_once_in_ledger_id_order,
                the_handle_filter_keeps_only_ledgers_settling_for_that_handle,
            ],
            partners: [
                a_created_partner_starts_applied,
                partner_states_change_only_along_the_operator_paths,
            ],
            keys: [
                a_sales_unit_key_is_found_by_client_id_and_by_either_subscription_key,
                partner_and_merchant_keys_keep_their_owner_and_have_no_subscription_keys,
                a_key_is_read_with_its_partners_current_state,
                replacing_a_secret_raises_the_generation_and_changes_the_hash,
                a_revoked_key_is_still_found_marked_revoked_and_its_secret_cannot_be_replaced,
                client_ids_and_subscription_keys_identify_one_key_only,
            ],
            grants: [
                grants_are_made_only_to_approved_accounting_partners,
                a_grant_made_twice_is_a_conflict,
                a_grant_on_an_unknown_ledger_or_for_an_unknown_partner_is_not_found,
                removing_a_grant_returns_true_once_then_false,
                grants_are_listed_by_partner_by_ledger_or_both,
                a_grants_scope_is_stored_read_back_and_changed,
                a_scope_that_breaks_a_rule_is_invalid_naming_the_field_and_not_written,
                an_expired_grant_is_left_out_of_listings_and_reads_alike,
                a_partners_feed_holds_only_the_dates_of_its_grants_period,
            ],
            entries: [
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
                wire_pages_hold_the_entry_pages_entries_and_say_whether_more_follow,
                refunded_captures_link_each_refund_with_its_own_psp_reference_to_its_capture,
                the_balance_before_a_date_is_the_last_earlier_dates_closing_balance,
            ],
            server_keys: [
                signing_keys_are_added_listed_oldest_first_and_retired_once,
                a_lease_is_held_by_one_holder_until_it_lapses,
                server_secret_keeps_the_first_value_it_stored,
            ],
            logs: [
                access_log_lists_requests_newest_first_and_filters_by_ledger_partner_and_owner,
                access_log_filters_by_credentials_and_time_pages_by_id_and_counts,
                pruning_the_access_log_deletes_exactly_the_records_made_before_the_cutoff,
                audit_log_records_every_state_change_with_its_actor_newest_first,
                refused_changes_leave_no_audit_record,
                ping_succeeds_on_a_working_store,
                pool_stats_count_no_more_idle_connections_than_open_ones,
            ],
            portal: [
                portal_users_are_found_by_id_and_by_email_in_any_case,
                a_portal_email_used_twice_is_a_conflict,
                a_portal_user_of_an_unknown_merchant_or_partner_is_not_found,
                a_partner_application_creates_an_applied_partner_and_its_user_together,
                a_partner_application_with_a_taken_email_writes_nothing,
                a_session_is_found_by_its_token_hash_until_it_expires_or_is_deleted,
                failed_sign_ins_are_counted_per_email_until_cleared,
            ],
            outbox: [
                an_enqueued_mail_is_pending_and_due_at_once,
                a_mail_to_no_single_address_or_with_a_broken_subject_is_invalid,
                a_claimed_mail_goes_to_no_other_sender_until_its_claim_lapses,
                a_failed_mail_waits_for_its_retry_time_and_shows_its_error,
                retrying_makes_waiting_mails_due_now_but_leaves_claims_alone,
                a_mail_given_up_on_is_failed_visibly_and_sent_again_only_when_retried,
            ],
            requests: [
                an_access_request_is_stored_pending_and_listed_for_its_partner_and_merchant,
                a_request_naming_no_merchant_is_kept_for_the_partner_and_seen_by_no_merchant,
                only_approved_accounting_partners_may_ask_with_a_valid_scope_and_message,
                an_approval_grants_the_requested_ledgers_within_the_narrowed_scope_at_once,
                a_declined_or_withdrawn_request_grants_nothing_and_stays_decided,
                every_request_and_answer_tells_the_other_side_in_portal_and_mail,
                an_invitation_is_answered_once_per_merchant_granting_within_it_and_telling_the_partner,
            ],
            proofs: [
                closing_proves_every_date_it_closes_on_both_topics_chained_from_the_first,
                a_reader_gets_only_the_proofs_of_its_grants_topics_and_period,
                appending_to_a_closed_date_proves_it_and_every_later_date_anew,
                digest_states_follow_every_batch_that_books_on_a_date,
            ],
            notifications: [
                a_grant_created_changed_and_removed_tells_every_user_of_both_sides,
                a_refused_grant_change_tells_nobody,
                notifications_come_newest_first_in_pages_and_only_their_user_marks_them_read,
                expiry_notices_are_written_once_each_however_often_asked,
            ],
            webhooks: [
                grant_and_partner_changes_write_events_numbered_per_ledger,
                a_refused_change_writes_no_event,
                closing_a_date_writes_its_event_and_a_delivery_for_each_endpoint_that_wants_it,
                a_claimed_delivery_goes_to_no_other_sender_until_its_claim_lapses,
                a_failed_delivery_waits_and_giving_up_disables_the_endpoint_and_tells_its_owner,
                endpoints_are_checked_rotated_and_deleted_with_their_log,
            ],
        }
    };
    (@expand names ; $($section:ident : [$($name:ident),* $(,)?]),* $(,)?) => {
        &[$($((stringify!($section), stringify!($name)),)*)*]
    };
    (@expand tests $attrs:tt $make:expr ; $($section:ident : [$($name:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $section {
                #[allow(unused_imports)]
                use super::*;
                $($crate::store_contract_tests!(@one $attrs $make; $section::$name);)*
            }
        )*
    };
    (@one [$(#[$attr:meta])*] $make:expr; $section:ident :: $name:ident) => {
        #[::tokio::test]
        $(#[$attr])*
        async fn $name() {
            let store = $make.await;
            $crate::contract::$section::$name($crate::contract::AsStore::as_store(&store)).await;
        }
    };
    // Last: an `expr` fragment that fails to parse ends the matching, so the `@` rules go first.
    ($make:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::store_contract_tests! {@list tests [$(#[$attr])*] $make}
    };
}

/// What [`store_contract_tests!`](crate::store_contract_tests) accepts as a fresh store: any
/// backend, or a [`TestStore`](crate::testing::TestStore) (a store with the test database it
/// lives in).
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every section file, with its source as compiled.
    const SECTIONS: &[(&str, &str)] = &[
        ("merchants", include_str!("merchants.rs")),
        ("ledgers", include_str!("ledgers.rs")),
        ("partners", include_str!("partners.rs")),
        ("keys", include_str!("keys.rs")),
        ("grants", include_str!("grants.rs")),
        ("entries", include_str!("entries.rs")),
        ("server_keys", include_str!("server_keys.rs")),
        ("logs", include_str!("logs.rs")),
        ("portal", include_str!("portal.rs")),
        ("outbox", include_str!("outbox.rs")),
        ("requests", include_str!("requests.rs")),
        ("notifications", include_str!("notifications.rs")),
        ("proofs", include_str!("proofs.rs")),
        ("webhooks", include_str!("webhooks.rs")),
    ];

    /// The `pub async fn` names in a section's source.
    fn test_bodies(source: &str) -> BTreeSet<String> {
        source
            .split("pub async fn")
            .skip(1)
            .filter_map(|rest| {
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect()
    }

    #[test]
    fn every_contract_test_is_listed() {
        let listed: &[(&str, &str)] = crate::store_contract_tests!(@names);
        for (section, source) in SECTIONS {
            let written = test_bodies(source);
            let run: BTreeSet<String> = listed
                .iter()
                .filter(|(s, _)| s == section)
                .map(|(_, n)| (*n).to_owned())
                .collect();
            let missing: Vec<_> = written.difference(&run).collect();
            assert!(
                missing.is_empty(),
                "contract tests in contract/{section}.rs that store_contract_tests! does not run (add them to its list): {missing:?}"
            );
            let unwritten: Vec<_> = run.difference(&written).collect();
            assert!(
                unwritten.is_empty(),
                "store_contract_tests! lists tests contract/{section}.rs does not define: {unwritten:?}"
            );
        }
        let sections: BTreeSet<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
        for (section, name) in listed {
            assert!(
                sections.contains(section),
                "{section}::{name}: no such section file"
            );
        }
    }

    /// A section file added to the directory must be checked too.
    #[test]
    fn every_section_file_is_checked() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/contract");
        let checked: BTreeSet<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
        for file in std::fs::read_dir(&dir).expect("read src/contract") {
            let path = file.expect("directory entry").path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|e| e == "rs") && !["mod", "helpers"].contains(&stem) {
                assert!(
                    checked.contains(stem),
                    "src/contract/{stem}.rs is not in SECTIONS of contract/mod.rs, so its tests are not checked"
                );
            }
        }
    }

    #[test]
    fn an_unlisted_test_body_is_found() {
        let source =
            "pub async fn listed(s: &dyn Store) {}\npub async fn\n    forgotten(s: &dyn Store) {}";
        let found = test_bodies(source);
        assert!(
            found.contains("forgotten") && found.contains("listed"),
            "{found:?}"
        );
    }
}
