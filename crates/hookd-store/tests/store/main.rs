//! The storage conformance suite: each behaviour in `behaviours.rs` is written once
//! against `&dyn Store` and run here against every backend.

mod behaviours;

use std::future::Future;
use std::pin::Pin;

use hookd_store::{SqliteStore, Store};

type Behaviour = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A fresh SQLite file in its own temp dir, removed when the test ends.
async fn with_sqlite(behaviour: Behaviour) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("hookd.db")).await.expect("open sqlite");
    behaviour(&store).await;
    store.close().await;
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_sqlite(|store| Box::pin(super::behaviours::$name(store))).await;
                }
            )*
        }
    };
}

conformance!(
    created_endpoint_reads_back_unchanged,
    another_accounts_endpoint_is_not_found_for_any_operation,
    endpoint_pages_are_newest_first_and_stable_under_inserts,
    patch_changes_only_the_given_fields,
    deleted_endpoint_disappears_from_get_and_list,
    rotated_secret_replaces_the_old_one,
    api_keys_are_found_by_id_and_revocable,
    adding_a_key_to_a_missing_account_is_not_found,
    default_account_is_bootstrapped_only_on_an_empty_database,
    cursor_key_is_stable_across_calls,
    admin_token_hash_is_saved_once,
    idempotency_claim_replays_completed_and_blocks_running_requests,
    idempotency_claim_takes_over_expired_and_stale_records,
    event_history_filters_by_type_and_entity_and_scopes_to_account,
    publish_fans_out_to_matching_endpoints_only,
    claims_lease_deliveries_and_cap_each_destination,
    an_expired_lease_makes_the_delivery_due_again,
    outcomes_record_attempts_and_move_the_delivery_on,
    deleting_an_endpoint_cancels_its_pending_deliveries,
    an_endpoint_failing_past_the_threshold_is_disabled,
    a_success_resets_the_failure_run,
    resend_schedules_a_new_delivery_of_the_same_event,
    videos_are_scoped_to_their_account,
    a_video_update_applies_once_and_publishes_its_event_with_it,
);

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let (account, endpoint) = behaviours::account_with_endpoint(&store).await;
    store.close().await;
    let reopened = SqliteStore::open(&path).await.expect("reopen");
    use hookd_store::EndpointStore;
    let read = reopened.get_endpoint(&account, &endpoint.endpoint_id).await.expect("endpoint after reopen");
    assert_eq!(read.url, endpoint.url);
}
