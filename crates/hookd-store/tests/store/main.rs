//! The storage conformance suite: each behaviour in `behaviours.rs` is written once
//! against `&dyn Store` and run here against every backend.

mod behaviours;
mod delivery_controls;
mod sealing;

use std::future::Future;
use std::pin::Pin;

use hookd_core::{MasterKey, SecretSealer};
use hookd_store::{PostgresOptions, PostgresStore, ScratchDatabase, SqliteStore, Store, test_server_url};

/// The master key every test store seals with (a fixed one, so two handles on one
/// database agree).
fn sealer() -> SecretSealer {
    SecretSealer::new(&MasterKey::from_hex(&"5e".repeat(32)).expect("a well-formed key"))
}

type Behaviour = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A fresh SQLite file in its own temp dir, removed when the test ends.
async fn with_sqlite(behaviour: Behaviour) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("hookd.db"), sealer()).await.expect("open sqlite");
    behaviour(&store).await;
    store.close().await;
}

/// A fresh database of its own on the server of `HOOKD_TEST_DATABASE_URL`, dropped
/// when the test ends; nothing if the variable is unset (outside CI).
async fn with_postgres(behaviour: Behaviour) {
    let Some(server) = test_server_url() else { return };
    let database = ScratchDatabase::create(&server).await.expect("create a scratch PostgreSQL database");
    let store = PostgresStore::connect(database.url(), &PostgresOptions::default(), sealer())
        .await
        .expect("open postgres");
    behaviour(&store).await;
    store.close().await;
    database.drop_database().await.expect("drop the scratch database");
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
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_postgres(|store| Box::pin(super::behaviours::$name(store))).await;
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
    a_destination_at_its_cap_does_not_hold_up_others,
    claims_take_the_oldest_due_deliveries_across_destinations,
    an_expired_lease_makes_the_delivery_due_again,
    outcomes_record_attempts_and_move_the_delivery_on,
    deleting_an_endpoint_cancels_its_pending_deliveries,
    an_endpoint_failing_past_the_threshold_is_disabled,
    a_success_resets_the_failure_run,
    resend_schedules_a_new_delivery_of_the_same_event,
    videos_are_scoped_to_their_account,
    a_video_update_applies_once_and_publishes_its_event_with_it,
    retention_prunes_only_history_older_than_the_cutoff,
    retention_keeps_deliveries_in_flight_and_their_events,
    concurrent_first_claims_of_a_key_start_exactly_one,
    released_claims_are_due_at_once_unless_claimed_again,
    claims_released_until_later_are_due_only_then,
    recovery_resends_exactly_the_deliveries_that_failed_in_the_window,
    a_rotation_with_overlap_keeps_only_the_replaced_secret_until_then,
);

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&path, sealer()).await.expect("open");
    let (account, endpoint) = behaviours::account_with_endpoint(&store).await;
    store.close().await;
    let reopened = SqliteStore::open(&path, sealer()).await.expect("reopen");
    use hookd_store::EndpointStore;
    let read = reopened.get_endpoint(&account, &endpoint.endpoint_id).await.expect("endpoint after reopen");
    assert_eq!(read.url, endpoint.url);
}

/// What only a shared database has: several instances at once.
mod shared_postgres {
    use std::time::Duration;

    use hookd_core::EventFilter;
    use hookd_store::{
        DeliveryStore, EventStore, PostgresOptions, PostgresStore, ScratchDatabase, test_server_url,
    };

    use super::behaviours;

    async fn two_instances() -> Option<(ScratchDatabase, PostgresStore, PostgresStore)> {
        let server = test_server_url()?;
        let database = ScratchDatabase::create(&server).await.expect("scratch database");
        let options = PostgresOptions::default();
        let a = PostgresStore::connect(database.url(), &options, super::sealer()).await.expect("instance a");
        let b = PostgresStore::connect(database.url(), &options, super::sealer()).await.expect("instance b");
        Some((database, a, b))
    }

    /// An endpoint that takes every event.
    async fn catch_all_endpoint(store: &PostgresStore, account: &hookd_core::AccountId, n: usize) {
        let mut endpoint = behaviours::endpoint_for(account, n);
        endpoint.events = EventFilter::All;
        endpoint.entity_id = None;
        hookd_store::EndpointStore::create_endpoint(store, &endpoint.record, &endpoint.secret)
            .await
            .expect("endpoint");
    }

    #[tokio::test]
    async fn concurrent_claims_never_take_the_same_delivery() {
        let Some((database, a, b)) = two_instances().await else { return };
        let account = behaviours::new_account(&a, "a").await;
        for n in 0..4 {
            catch_all_endpoint(&a, &account, n).await;
        }
        let events: Vec<_> = (0..250).map(|_| behaviours::event_now(&account)).collect();
        a.publish_events(&events).await.expect("publish");
        let now = hookd_store::now_millis();
        let claim = |store: PostgresStore| async move {
            let mut ids = Vec::new();
            loop {
                let claimed = store.claim_due(now, 25, 1_000, now + 60_000).await.expect("claim");
                if claimed.is_empty() {
                    return ids;
                }
                ids.extend(claimed.into_iter().map(|c| c.delivery_id));
            }
        };
        let (from_a, from_b) = tokio::join!(claim(a.clone()), claim(b.clone()));
        let mut all: Vec<_> = from_a.iter().chain(&from_b).cloned().collect();
        let claimed = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), claimed, "a delivery was claimed twice");
        assert_eq!(claimed, 1_000, "every delivery was claimed once");
        a.close().await;
        b.close().await;
        database.drop_database().await.expect("drop");
    }

    #[tokio::test]
    async fn publishing_on_one_instance_signals_the_others() {
        let Some((database, a, b)) = two_instances().await else { return };
        let mut feed = b.watch_new_deliveries().await.expect("listen").expect("postgres has a feed");
        let account = behaviours::new_account(&a, "a").await;
        catch_all_endpoint(&a, &account, 0).await;
        a.publish_events(&[behaviours::event_now(&account)]).await.expect("publish");
        tokio::time::timeout(Duration::from_secs(30), feed.next())
            .await
            .expect("the other instance heard of the new delivery")
            .expect("feed");
        drop(feed);
        a.close().await;
        b.close().await;
        database.drop_database().await.expect("drop");
    }
}
