//! The storage conformance suite: each behaviour in `behaviours.rs` is written once
//! against `&dyn Store` and run here against every backend.

mod behaviours;
mod delivery_controls;
mod delivery_settings;
mod event_log;
mod operational;
mod portal;
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
    publishes_claims_and_endpoint_changes_interleave_without_errors,
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
    settings_default_to_unordered_and_unlimited_and_read_back,
    a_fifo_endpoint_is_claimed_one_at_a_time_in_publish_order,
    a_fifo_head_waiting_for_its_retry_holds_back_the_rest,
    skipping_the_head_fails_it_and_lets_the_next_go,
    switching_fifo_off_releases_the_queue,
    a_rate_limited_endpoint_is_claimed_no_faster_than_its_limit,
    a_rate_limited_endpoint_has_no_more_leased_than_its_in_flight_cap,
    removing_a_rate_limit_lets_claims_run_ahead_again,
    settings_on_one_endpoint_do_not_slow_the_others,
    an_endpoint_disabled_for_failing_emits_endpoint_disabled,
    a_delivery_failed_for_good_emits_delivery_exhausted,
    a_success_after_an_hour_of_failures_emits_endpoint_recovered,
    an_owner_pausing_and_enabling_an_endpoint_emits_disabled_and_enabled,
    without_operational_endpoints_nothing_is_emitted,
    operational_endpoints_never_report_on_themselves_nor_are_disabled,
    the_operations_account_takes_no_keys_and_no_published_events,
    a_portal_link_is_redeemed_once_for_a_live_session,
    a_wrong_expired_or_revoked_link_is_not_redeemed,
    a_portal_session_ends_when_revoked_or_expired,
    portal_sessions_are_only_for_existing_customer_accounts,
    ended_portal_sessions_are_pruned_and_live_ones_kept,
    the_event_log_counts_deliveries_and_filters_by_their_state,
    the_event_log_filters_by_type_entity_and_time_and_pages,
    an_event_is_read_by_its_owner_only,
    endpoint_health_counts_a_days_attempts_by_hour,
    recent_outcomes_count_each_listed_endpoint_of_the_account_only,
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
        DeliverySettingsStore, DeliveryStore, EventStore, PostgresOptions, PostgresStore, ScratchDatabase,
        test_server_url,
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
                let claimed = store
                    .claim_due(now, hookd_store::ClaimLimits::new(25, 1_000), now + 60_000)
                    .await
                    .expect("claim");
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

    /// An account with one catch-all endpoint with `settings` and `n` events for it.
    async fn endpoint_with_backlog(
        store: &PostgresStore,
        settings: hookd_core::DeliverySettings,
        n: usize,
    ) -> Vec<hookd_store::Event> {
        let account = behaviours::new_account(store, "a").await;
        let endpoint = behaviours::endpoint_with(store, &account, EventFilter::All, None).await;
        store.set_delivery_settings(&account, &endpoint, settings, behaviours::NOW).await.expect("settings");
        let events: Vec<_> = (0..n).map(|_| behaviours::event_now(&account)).collect();
        store.publish_events(&events).await.expect("publish");
        events
    }

    #[tokio::test]
    async fn instances_claiming_at_once_lease_a_fifo_endpoint_one_delivery_at_a_time_in_order() {
        let Some((database, a, b)) = two_instances().await else { return };
        let fifo =
            hookd_core::DeliverySettings { ordering: hookd_core::DeliveryOrdering::Fifo, rate_limit: None };
        let events = endpoint_with_backlog(&a, fifo, 20).await;
        let now = hookd_store::now_millis();
        let limits = hookd_store::ClaimLimits::new(25, 8);
        let mut sent = Vec::new();
        while sent.len() < events.len() {
            let (from_a, from_b) =
                tokio::join!(a.claim_due(now, limits, now + 60_000), b.claim_due(now, limits, now + 60_000));
            let claimed: Vec<_> =
                from_a.expect("claim a").into_iter().chain(from_b.expect("claim b")).collect();
            assert_eq!(claimed.len(), 1, "one lease at a time, whoever claims");
            let outcome = behaviours::outcome(&claimed[0], now, Some(200), hookd_store::NextStep::Delivered);
            a.record_outcomes(&[outcome], 0).await.expect("record");
            sent.push(claimed[0].event_id.clone());
        }
        let published: Vec<_> = events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(sent, published, "in publish order");
        a.close().await;
        b.close().await;
        database.drop_database().await.expect("drop");
    }

    #[tokio::test]
    async fn instances_share_one_rate_limit() {
        let Some((database, a, b)) = two_instances().await else { return };
        let limit = hookd_core::RateLimit::new(100).expect("limit");
        let settings = hookd_core::DeliverySettings { rate_limit: Some(limit), ..Default::default() };
        endpoint_with_backlog(&a, settings, 300).await;
        let start = hookd_store::now_millis();
        let limits = hookd_store::ClaimLimits::new(1_000, 1_000);
        let mut total = 0;
        for ms in (0..=1_000).step_by(5) {
            let now = start + ms;
            let (from_a, from_b) =
                tokio::join!(a.claim_due(now, limits, now + 60_000), b.claim_due(now, limits, now + 60_000));
            total += from_a.expect("claim a").len() + from_b.expect("claim b").len();
        }
        assert!(total <= 100 + 5, "two instances took {total} in one second of a 100/s limit");
        assert!(total >= 90, "skipping a locked endpoint must not starve it: {total}");
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
