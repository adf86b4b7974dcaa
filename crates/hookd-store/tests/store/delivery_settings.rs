//! Storage behaviours of per-endpoint delivery settings every backend must show: FIFO
//! ordering, rate limits shared through the database, and skipping a stuck head.
//! Each takes a fresh, empty store; run by the conformance macro in `main.rs`.

use hookd_core::{DeliveryOrdering, DeliverySettings, EndpointId, EventFilter, RateLimit};
use hookd_store::{ClaimLimits, ClaimedDelivery, Event, NextStep, Store};

use super::behaviours::{LEASE, NOW, claim, endpoint_with, event_of, is_not_found, new_account, outcome};

const FIFO: DeliverySettings = DeliverySettings { ordering: DeliveryOrdering::Fifo, rate_limit: None };

fn rate_limited(per_second: i64) -> DeliverySettings {
    DeliverySettings {
        ordering: DeliveryOrdering::None,
        rate_limit: Some(RateLimit::new(per_second).expect("limit")),
    }
}

/// An account with one catch-all endpoint with `settings` and `n` events published to it.
async fn endpoint_with_backlog(
    store: &dyn Store,
    settings: DeliverySettings,
    n: usize,
) -> (hookd_core::AccountId, EndpointId, Vec<Event>) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    store.set_delivery_settings(&account, &endpoint, settings, NOW).await.expect("settings");
    let events: Vec<Event> = (0..n).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    (account, endpoint, events)
}

fn event_ids(claimed: &[ClaimedDelivery]) -> Vec<String> {
    claimed.iter().map(|c| c.event_id.as_str().to_owned()).collect()
}

pub async fn settings_default_to_unordered_and_unlimited_and_read_back(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    assert_eq!(
        store.delivery_settings(&account, &endpoint).await.expect("read"),
        DeliverySettings::default()
    );
    let settings = DeliverySettings { ordering: DeliveryOrdering::Fifo, rate_limit: RateLimit::new(25).ok() };
    store.set_delivery_settings(&account, &endpoint, settings, NOW).await.expect("write");
    assert_eq!(store.delivery_settings(&account, &endpoint).await.expect("read"), settings);

    let other = new_account(store, "b").await;
    assert!(is_not_found(store.delivery_settings(&other, &endpoint).await));
    assert!(is_not_found(store.set_delivery_settings(&other, &endpoint, FIFO, NOW).await));
    assert!(is_not_found(store.queue_head(&other, &endpoint).await));
    assert!(is_not_found(store.skip_queue_head(&other, &endpoint, NOW).await));
    store.delete_endpoint(&account, &endpoint, NOW).await.expect("delete");
    assert!(is_not_found(store.delivery_settings(&account, &endpoint).await));
}

pub async fn a_fifo_endpoint_is_claimed_one_at_a_time_in_publish_order(store: &dyn Store) {
    let (_, _, events) = endpoint_with_backlog(store, FIFO, 3).await;
    let first = claim(store, NOW, 10, 8).await;
    assert_eq!(event_ids(&first), vec![events[0].event_id.as_str()], "only the head");
    assert!(claim(store, NOW, 10, 8).await.is_empty(), "nothing while the head is in flight");
    store
        .record_outcomes(&[outcome(&first[0], NOW, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("record");
    let second = claim(store, NOW, 10, 8).await;
    assert_eq!(event_ids(&second), vec![events[1].event_id.as_str()], "then the next, in publish order");
}

pub async fn a_fifo_head_waiting_for_its_retry_holds_back_the_rest(store: &dyn Store) {
    let (account, endpoint, events) = endpoint_with_backlog(store, FIFO, 2).await;
    let head = claim(store, NOW, 10, 8).await;
    let retry_at = NOW + 60_000;
    store
        .record_outcomes(&[outcome(&head[0], NOW, Some(500), NextStep::RetryAt(retry_at))], 0)
        .await
        .expect("record");
    assert!(claim(store, NOW + 1, 10, 8).await.is_empty(), "the next waits although it is due");
    let visible = store.queue_head(&account, &endpoint).await.expect("head").expect("a head");
    assert_eq!((visible.event_id.as_str(), visible.attempts), (events[0].event_id.as_str(), 1));
    assert_eq!(visible.next_attempt_at, retry_at, "the stuck head shows when it is tried next");
    let retried = claim(store, retry_at, 10, 8).await;
    assert_eq!(event_ids(&retried), vec![events[0].event_id.as_str()], "the head again, at its retry time");
    store
        .record_outcomes(&[outcome(&retried[0], retry_at, None, NextStep::Failed)], 0)
        .await
        .expect("record");
    let next = claim(store, retry_at, 10, 8).await;
    assert_eq!(
        event_ids(&next),
        vec![events[1].event_id.as_str()],
        "a head failed for good lets the next go"
    );
}

pub async fn skipping_the_head_fails_it_and_lets_the_next_go(store: &dyn Store) {
    let (account, endpoint, events) = endpoint_with_backlog(store, FIFO, 2).await;
    let head = claim(store, NOW, 10, 8).await;
    let skipped = store.skip_queue_head(&account, &endpoint, NOW + 1).await.expect("skip").expect("skipped");
    assert_eq!(skipped.delivery_id, head[0].delivery_id, "the head in flight is the one skipped");
    let next = claim(store, NOW + 1, 10, 8).await;
    assert_eq!(event_ids(&next), vec![events[1].event_id.as_str()]);
    // The attempt that was in flight reports back: recorded, but the head stays failed.
    store
        .record_outcomes(&[outcome(&head[0], NOW + 2, Some(500), NextStep::RetryAt(NOW + 3))], 0)
        .await
        .expect("record");
    let history = store.list_deliveries(&account, &events[0].event_id).await.expect("history");
    assert_eq!((history[0].state, history[0].attempts.len()), (hookd_core::DeliveryState::Failed, 1));
    assert!(claim(store, NOW + 10, 10, 8).await.is_empty(), "the skipped head does not come back");
    store
        .record_outcomes(&[outcome(&next[0], NOW + 10, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("record");
    assert_eq!(
        store.skip_queue_head(&account, &endpoint, NOW + 11).await.expect("skip"),
        None,
        "nothing pending"
    );
}

pub async fn switching_fifo_off_releases_the_queue(store: &dyn Store) {
    let (account, endpoint, _) = endpoint_with_backlog(store, FIFO, 4).await;
    assert_eq!(claim(store, NOW, 10, 8).await.len(), 1);
    store.set_delivery_settings(&account, &endpoint, DeliverySettings::default(), NOW).await.expect("none");
    assert_eq!(claim(store, NOW, 10, 8).await.len(), 3, "the rest go at once, beside the one in flight");
}

pub async fn a_rate_limited_endpoint_is_claimed_no_faster_than_its_limit(store: &dyn Store) {
    // 100 a second: one every 10 ms, five (50 ms' worth) at once after a quiet spell.
    endpoint_with_backlog(store, rate_limited(100), 150).await;
    let limits = ClaimLimits { total: 100, per_target: 100, per_rate_limited_target: 100 };
    let take =
        |now: i64| async move { store.claim_due(now, limits, now + LEASE).await.expect("claim").len() };
    assert_eq!(take(NOW).await, 5, "the burst");
    assert_eq!(take(NOW).await, 0, "then nothing at the same instant");
    assert_eq!(take(NOW + 9).await, 0);
    assert_eq!(take(NOW + 10).await, 1, "one per 10 ms");
    assert_eq!(take(NOW + 40).await, 3);
    // Over a second from the start: at most the limit plus the burst, whoever claims.
    let mut total = 5 + 1 + 3;
    for ms in (50..=1_000).step_by(25) {
        total += take(NOW + ms).await;
    }
    assert!(total <= 100 + 5, "{total} in one second");
    assert!(total >= 100, "the limit is reached when claims keep coming: {total}");
}

pub async fn a_rate_limited_endpoint_has_no_more_leased_than_its_in_flight_cap(store: &dyn Store) {
    endpoint_with_backlog(store, rate_limited(10_000), 20).await;
    let limits = ClaimLimits { total: 100, per_target: 100, per_rate_limited_target: 2 };
    assert_eq!(store.claim_due(NOW, limits, NOW + LEASE).await.expect("claim").len(), 2);
    assert_eq!(store.claim_due(NOW + 1_000, limits, NOW + LEASE).await.expect("claim").len(), 0);
}

pub async fn removing_a_rate_limit_lets_claims_run_ahead_again(store: &dyn Store) {
    let (account, endpoint, _) = endpoint_with_backlog(store, rate_limited(1), 10).await;
    assert_eq!(claim(store, NOW, 100, 100).await.len(), 1);
    assert_eq!(claim(store, NOW, 100, 100).await.len(), 0);
    store
        .set_delivery_settings(&account, &endpoint, DeliverySettings::default(), NOW)
        .await
        .expect("unlimited");
    assert_eq!(claim(store, NOW, 100, 100).await.len(), 9);
}

pub async fn settings_on_one_endpoint_do_not_slow_the_others(store: &dyn Store) {
    let (account, _, _) = endpoint_with_backlog(store, FIFO, 5).await;
    let limited = endpoint_with(store, &account, EventFilter::Only(vec!["batch.failed".into()]), None).await;
    store.set_delivery_settings(&account, &limited, rate_limited(1), NOW).await.expect("settings");
    endpoint_with(store, &account, EventFilter::Only(vec!["batch.failed".into()]), None).await;
    let events: Vec<Event> = (0..5).map(|_| event_of(&account, "batch.failed", None)).collect();
    store.publish_events(&events).await.expect("publish");
    // FIFO: 1 of 5; rate-limited: 1 of 5; the plain endpoint: all 5.
    assert_eq!(claim(store, NOW, 100, 100).await.len(), 1 + 1 + 5);
}
