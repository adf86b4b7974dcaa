//! Storage behaviours of the delivery controls every backend must show: claims handed
//! back until later, recovering failed deliveries, and secret rotation with overlap.
//! Each takes a fresh, empty store; run by the conformance macro in `main.rs`.

use hookd_core::{AccountId, EndpointSecret, EventFilter};
use hookd_store::{Event, NextStep, Store};

use super::behaviours::{
    LEASE, NOW, account_with_endpoint, claim, endpoint_with, event_of, is_not_found, new_account, outcome,
};

pub async fn released_claims_are_due_at_once_unless_claimed_again(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..2).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    assert_eq!(claimed.len(), 2);
    let (kept, given_back) = (&claimed[0], &claimed[1]);
    let released = store
        .release_claims(
            &[(given_back.delivery_id.clone(), NOW + LEASE), (kept.delivery_id.clone(), NOW + LEASE + 1)],
            NOW + 5,
        )
        .await
        .expect("release");
    assert_eq!(released, 1, "a lease that is not the one given (claimed again meanwhile) stays");
    let again = claim(store, NOW + 5, 10, 8).await;
    let ids: Vec<_> = again.iter().map(|c| c.delivery_id.clone()).collect();
    assert_eq!(ids, vec![given_back.delivery_id.clone()], "due at once, long before its lease would lapse");
}

pub async fn claims_released_until_later_are_due_only_then(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    store.publish_events(&[event_of(&account, "batch.finished", None)]).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    assert_eq!(claimed.len(), 1);
    let cooldown_ends = NOW + 1_000;
    let released = store
        .release_claims(&[(claimed[0].delivery_id.clone(), NOW + LEASE)], cooldown_ends)
        .await
        .expect("release");
    assert_eq!(released, 1);
    assert!(claim(store, NOW + 999, 10, 8).await.is_empty(), "not due before the cooldown ends");
    assert_eq!(store.next_due_at().await.expect("next due"), Some(cooldown_ends));
    let again = claim(store, cooldown_ends, 10, 8).await;
    assert_eq!(again.len(), 1, "due when the cooldown ends, long before its lease would lapse");
    assert_eq!(again[0].attempts_made, 0, "handing a claim back is not an attempt");
}

pub async fn recovery_resends_exactly_the_deliveries_that_failed_in_the_window(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..4).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    assert_eq!(claimed.len(), 4);
    let outcomes = [
        outcome(&claimed[0], NOW + 1_000, Some(500), NextStep::Failed),
        outcome(&claimed[1], NOW + 50_000, Some(500), NextStep::Failed),
        outcome(&claimed[2], NOW + 1_000, Some(200), NextStep::Delivered),
        outcome(&claimed[3], NOW + 1_000, Some(500), NextStep::RetryAt(NOW + 100_000)),
    ];
    store.record_outcomes(&outcomes, 0).await.expect("record");
    let window = hookd_core::RecoveryWindow { since_ms: NOW, until_ms: NOW + 10_000 };
    let recover = |dry_run| store.recover_failed(&account, &endpoint, window, dry_run, NOW + 60_000);

    assert_eq!(recover(true).await.expect("dry run"), 1, "only the delivery that failed in the window");
    assert!(claim(store, NOW + 60_000, 10, 8).await.is_empty(), "a dry run changes nothing");
    assert_eq!(recover(false).await.expect("recover"), 1);
    let again = claim(store, NOW + 60_000, 10, 8).await;
    assert_eq!(again.len(), 1, "due at once");
    assert_eq!(again[0].delivery_id, claimed[0].delivery_id);
    assert_eq!(again[0].attempts_made, 0, "with a fresh retry schedule");
    assert_eq!(recover(false).await.expect("again"), 0, "running it twice sends nothing twice");
    let history = store.list_deliveries(&account, &events[0].event_id).await.expect("history");
    assert_eq!(history[0].attempts.len(), 1, "its earlier attempt stays in its history");

    let other = new_account(store, "b").await;
    assert!(is_not_found(store.recover_failed(&other, &endpoint, window, false, NOW).await));
    store.delete_endpoint(&account, &endpoint, NOW).await.expect("delete");
    assert!(is_not_found(store.recover_failed(&account, &endpoint, window, true, NOW).await));
}

/// Publishes one event to the endpoint made by `account_with_endpoint`, claims its
/// delivery, sets it aside for good and returns the secrets the claim carried.
async fn secrets_a_claim_carries(
    store: &dyn Store,
    account: &AccountId,
) -> (Option<EndpointSecret>, Option<(EndpointSecret, i64)>) {
    let event = event_of(account, "avatar_video.success", Some("entity-0"));
    store.publish_events(&[event]).await.expect("publish");
    let claimed = claim(store, NOW + 1, 10, 8).await;
    assert_eq!(claimed.len(), 1);
    let lease = (claimed[0].delivery_id.clone(), NOW + 1 + LEASE);
    store.release_claims(&[lease], i64::MAX).await.expect("set aside");
    (claimed[0].secret.clone(), claimed[0].previous_secret.clone())
}

pub async fn a_rotation_with_overlap_keeps_only_the_replaced_secret_until_then(store: &dyn Store) {
    let (account, endpoint) = account_with_endpoint(store).await;
    let id = &endpoint.endpoint_id;
    let second = EndpointSecret::generate();
    store.rotate_endpoint_secret(&account, id, &second, Some(NOW + 5_000), NOW).await.expect("rotate");
    let (current, previous) = secrets_a_claim_carries(store, &account).await;
    assert_eq!(current, Some(second.clone()));
    assert_eq!(previous, Some((endpoint.secret.clone(), NOW + 5_000)), "the replaced secret, until then");
    let read = store.endpoint_secret(&account, id).await.expect("secrets");
    assert_eq!((read.current, read.previous), (second.clone(), Some((endpoint.secret.clone(), NOW + 5_000))));

    let third = EndpointSecret::generate();
    store.rotate_endpoint_secret(&account, id, &third, Some(NOW + 9_000), NOW).await.expect("rotate");
    let (current, previous) = secrets_a_claim_carries(store, &account).await;
    assert_eq!(current, Some(third));
    assert_eq!(previous, Some((second, NOW + 9_000)), "a second rotation ends the first overlap");

    store.rotate_endpoint_secret(&account, id, &EndpointSecret::generate(), None, NOW).await.expect("rotate");
    let (_, previous) = secrets_a_claim_carries(store, &account).await;
    assert_eq!(previous, None, "without an overlap the old secret stops at once");
}
