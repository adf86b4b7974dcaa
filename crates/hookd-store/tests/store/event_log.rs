//! Storage behaviours of the portal's reads every backend must show: the event log's
//! filters and delivery counts, one event, and an endpoint's health over a day.
//! Each takes a fresh, empty store; run by the conformance macro in `main.rs`.

use hookd_core::{DeliveryState, EventFilter, EventId};
use hookd_store::{
    DeliveryCounts, Event, EventLogQuery, EventQuery, NextStep, PageRequest, Store, StoreError,
};

use super::behaviours::{NOW, claim, endpoint_with, event_of, new_account, outcome};

const HOUR: i64 = 3_600_000;

fn first_page() -> PageRequest {
    PageRequest { before: None, limit: 50 }
}

async fn log_ids(store: &dyn Store, account: &hookd_core::AccountId, query: EventLogQuery) -> Vec<EventId> {
    let page = store.event_log(account, &query, first_page()).await.expect("event log");
    page.items.into_iter().map(|entry| entry.event.event_id).collect()
}

fn at(mut event: Event, created_at: i64) -> Event {
    event.created_at = created_at;
    event
}

pub async fn the_event_log_counts_deliveries_and_filters_by_their_state(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..3).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    let by_event =
        |i: usize| claimed.iter().find(|c| c.event_id == events[i].event_id).expect("claimed").clone();
    store
        .record_outcomes(
            &[
                outcome(&by_event(0), NOW + 1, Some(200), NextStep::Delivered),
                outcome(&by_event(1), NOW + 1, Some(500), NextStep::Failed),
                outcome(&by_event(2), NOW + 1, Some(500), NextStep::RetryAt(NOW + HOUR)),
            ],
            0,
        )
        .await
        .expect("record");

    let page = store.event_log(&account, &EventLogQuery::default(), first_page()).await.expect("log");
    let counts: Vec<DeliveryCounts> = page.items.iter().map(|entry| entry.deliveries).collect();
    assert_eq!(
        counts,
        vec![
            DeliveryCounts { pending: 1, ..Default::default() },
            DeliveryCounts { failed: 1, ..Default::default() },
            DeliveryCounts { delivered: 1, ..Default::default() },
        ],
        "newest first, each with its deliveries' states"
    );
    for (status, expected) in
        [(DeliveryState::Delivered, 0), (DeliveryState::Failed, 1), (DeliveryState::Pending, 2)]
    {
        let query = EventLogQuery { status: Some(status), ..Default::default() };
        assert_eq!(
            log_ids(store, &account, query).await,
            vec![events[expected].event_id.clone()],
            "{status:?}"
        );
    }
}

pub async fn the_event_log_filters_by_type_entity_and_time_and_pages(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let events = vec![
        at(event_of(&account, "batch.finished", Some("e1")), NOW - 3 * HOUR),
        at(event_of(&account, "batch.failed", Some("e1")), NOW - 2 * HOUR),
        at(event_of(&account, "batch.finished", Some("e2")), NOW - HOUR),
        at(event_of(&account, "batch.finished", None), NOW),
    ];
    store.publish_events(&events).await.expect("publish");
    let ids = |indexes: &[usize]| indexes.iter().map(|&i| events[i].event_id.clone()).collect::<Vec<_>>();
    let history = |event_type: Option<&str>, entity_id: Option<&str>| EventQuery {
        event_type: event_type.map(str::to_owned),
        entity_id: entity_id.map(str::to_owned),
    };

    let by_type = EventLogQuery { history: history(Some("batch.finished"), None), ..Default::default() };
    assert_eq!(log_ids(store, &account, by_type).await, ids(&[3, 2, 0]));
    let by_entity = EventLogQuery { history: history(None, Some("e1")), ..Default::default() };
    assert_eq!(log_ids(store, &account, by_entity).await, ids(&[1, 0]));
    let window = EventLogQuery { since: Some(NOW - 2 * HOUR), until: Some(NOW - HOUR), ..Default::default() };
    assert_eq!(log_ids(store, &account, window).await, ids(&[2, 1]), "both ends included");

    let all = EventLogQuery::default();
    let first =
        store.event_log(&account, &all, PageRequest { before: None, limit: 3 }).await.expect("first page");
    assert_eq!(first.items.len(), 3);
    let rest = PageRequest { before: first.next_before, limit: 3 };
    let rest = store.event_log(&account, &all, rest).await.expect("next page");
    assert_eq!(rest.items.iter().map(|e| e.event.event_id.clone()).collect::<Vec<_>>(), ids(&[0]));
    assert!(rest.next_before.is_none());

    let other = new_account(store, "b").await;
    assert!(log_ids(store, &other, EventLogQuery::default()).await.is_empty(), "another account sees none");
}

pub async fn an_event_is_read_by_its_owner_only(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let event = event_of(&account, "batch.finished", Some("e1"));
    store.publish_events(std::slice::from_ref(&event)).await.expect("publish");
    let read = store.get_event(&account, &event.event_id).await.expect("own event");
    assert_eq!(
        (read.event_type.as_str(), read.event_data.as_str()),
        ("batch.finished", event.event_data.as_str())
    );
    let other = new_account(store, "b").await;
    assert!(matches!(store.get_event(&other, &event.event_id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.get_event(&account, &EventId::new_random()).await, Err(StoreError::NotFound)));
}

pub async fn endpoint_health_counts_a_days_attempts_by_hour(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..4).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    store
        .record_outcomes(
            &[
                // Older than the day shown: it counts only as the last failure.
                outcome(&claimed[0], NOW - 30 * HOUR, Some(500), NextStep::RetryAt(NOW)),
                outcome(&claimed[1], NOW - 2 * HOUR, Some(200), NextStep::Delivered),
                outcome(&claimed[2], NOW - 2 * HOUR + 5, None, NextStep::RetryAt(NOW + HOUR)),
                outcome(&claimed[3], NOW - 10, Some(200), NextStep::Delivered),
            ],
            0,
        )
        .await
        .expect("record");

    let health = store.endpoint_health(&account, &endpoint, NOW).await.expect("health");
    assert_eq!(health.hours.len(), 24);
    let succeeded: u32 = health.hours.iter().map(|h| h.succeeded).sum();
    let failed: u32 = health.hours.iter().map(|h| h.failed).sum();
    assert_eq!((succeeded, failed), (2, 1), "only the last 24 hours");
    let two_hours_ago =
        health.hours.iter().find(|h| h.start <= NOW - 2 * HOUR && NOW - 2 * HOUR < h.start + HOUR);
    let two_hours_ago = two_hours_ago.expect("the hour two hours ago is shown");
    assert_eq!((two_hours_ago.succeeded, two_hours_ago.failed), (1, 1));
    assert_eq!(health.last_success_at, Some(NOW - 10));
    assert_eq!(health.last_failure_at, Some(NOW - 2 * HOUR + 5));

    let other = new_account(store, "b").await;
    assert!(matches!(store.endpoint_health(&other, &endpoint, NOW).await, Err(StoreError::NotFound)));
}

pub async fn recent_outcomes_count_each_listed_endpoint_of_the_account_only(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let quiet = endpoint_with(store, &account, EventFilter::Only(vec!["batch.failed".into()]), None).await;
    let other = new_account(store, "b").await;
    let theirs = endpoint_with(store, &other, EventFilter::All, None).await;
    let events = vec![event_of(&account, "batch.finished", None), event_of(&account, "batch.finished", None)];
    store.publish_events(&events).await.expect("publish");
    store.publish_events(&[event_of(&other, "batch.finished", None)]).await.expect("publish theirs");
    let claimed = claim(store, NOW, 10, 8).await;
    // The account's first event fails; its second and the other account's succeed.
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|c| {
            if c.event_id == events[0].event_id {
                outcome(c, NOW - 10, Some(500), NextStep::RetryAt(NOW + HOUR))
            } else {
                outcome(c, NOW - 10, Some(200), NextStep::Delivered)
            }
        })
        .collect();
    store.record_outcomes(&outcomes, 0).await.expect("record");

    let ids = [endpoint.clone(), quiet, theirs, hookd_core::EndpointId::new_random()];
    let counted = store.recent_outcomes(&account, &ids, NOW).await.expect("outcomes");
    assert_eq!(counted.len(), 1, "only the account's endpoint with attempts: {counted:?}");
    assert_eq!(counted[0], (endpoint.clone(), 1, 1), "the other account's success is not counted");
    assert!(store.recent_outcomes(&account, &[], NOW).await.expect("none").is_empty());
}
