//! Operational events every backend must emit: in the transaction that records their
//! cause, as events of the operations account, with a delivery to each of the
//! operator's operational endpoints. Run by the conformance macro in `main.rs`.

use hookd_core::{AccountId, ApiKey, EndpointStatus, EventFilter, OperationalEventType, operations_account};
use hookd_store::{
    ClaimedDelivery, EndpointPatch, Event, EventQuery, NextStep, PageRequest, Store, StoreError,
};
use serde_json::Value;

use super::behaviours::{NOW, claim, endpoint_with, event_of, new_account, outcome};

const HOUR: i64 = 3_600_000;

/// The operator's catch-all operational endpoint.
async fn operational_endpoint(store: &dyn Store) -> hookd_core::EndpointId {
    endpoint_with(store, &operations_account(), EventFilter::All, None).await
}

/// The operational events emitted so far, oldest first, as (type, data).
async fn emitted(store: &dyn Store) -> Vec<(String, Value)> {
    let page = PageRequest { before: None, limit: 100 };
    let events =
        store.list_events(&operations_account(), &EventQuery::default(), page).await.expect("events");
    let mut emitted: Vec<(String, Value)> = events
        .items
        .into_iter()
        .map(|e| (e.event_type, serde_json::from_str(&e.event_data).expect("JSON data")))
        .collect();
    emitted.reverse();
    emitted
}

/// A customer account with one catch-all endpoint and `n` events claimed for it.
async fn customer_with_claims(
    store: &dyn Store,
    n: usize,
) -> (AccountId, hookd_core::EndpointId, Vec<ClaimedDelivery>) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..n).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 100, 100).await;
    assert_eq!(claimed.len(), n);
    (account, endpoint, claimed)
}

pub async fn an_endpoint_disabled_for_failing_emits_endpoint_disabled(store: &dyn Store) {
    let operational = operational_endpoint(store).await;
    let (account, endpoint, claimed) = customer_with_claims(store, 1).await;
    let failure = outcome(&claimed[0], NOW, Some(500), NextStep::RetryAt(NOW + HOUR));
    store.record_outcomes(&[failure], NOW).await.expect("record");
    assert_eq!(store.get_endpoint(&account, &endpoint).await.expect("get").status, EndpointStatus::Disabled);
    let emitted = emitted(store).await;
    assert_eq!(emitted.len(), 1, "{emitted:?}");
    let (kind, data) = &emitted[0];
    assert_eq!(kind, OperationalEventType::EndpointDisabled.as_str());
    assert_eq!(data["account_id"], account.as_str());
    assert_eq!(data["endpoint_id"], endpoint.as_str());
    assert_eq!(data["reason"], "failing");
    assert_eq!(data["failing_since"], NOW / 1000);
    assert!(data["url"].as_str().is_some_and(|url| url.starts_with("https://")));
    let to_operator = claim(store, NOW, 100, 100).await;
    assert_eq!(to_operator.len(), 1, "a delivery to the operational endpoint, in the same transaction");
    assert_eq!(to_operator[0].endpoint_id.as_ref(), Some(&operational));
    assert_eq!(to_operator[0].event_type, "endpoint.disabled");
}

pub async fn a_delivery_failed_for_good_emits_delivery_exhausted(store: &dyn Store) {
    operational_endpoint(store).await;
    let (account, endpoint, claimed) = customer_with_claims(store, 2).await;
    let outcomes = [
        outcome(&claimed[0], NOW, None, NextStep::Failed),
        outcome(&claimed[1], NOW, Some(503), NextStep::RetryAt(NOW + HOUR)),
    ];
    store.record_outcomes(&outcomes, 0).await.expect("record");
    let emitted = emitted(store).await;
    assert_eq!(emitted.len(), 1, "only the delivery whose schedule ran out: {emitted:?}");
    let (kind, data) = &emitted[0];
    assert_eq!(kind, "delivery.exhausted");
    assert_eq!(data["account_id"], account.as_str());
    assert_eq!(data["endpoint_id"], endpoint.as_str());
    assert_eq!(data["delivery_id"], claimed[0].delivery_id.as_str());
    assert_eq!(data["event_id"], claimed[0].event_id.as_str());
    assert_eq!(data["attempts"], 1);
    assert_eq!(data["last_status_code"], Value::Null);
    assert_eq!(data["last_error"], "connection refused");
}

pub async fn a_success_after_an_hour_of_failures_emits_endpoint_recovered(store: &dyn Store) {
    operational_endpoint(store).await;
    let (_, endpoint, claimed) = customer_with_claims(store, 3).await;
    let retry = NextStep::RetryAt(NOW + 2 * HOUR);
    store.record_outcomes(&[outcome(&claimed[0], NOW, Some(500), retry)], 0).await.expect("fail");
    let soon = NOW + HOUR - 1;
    store
        .record_outcomes(&[outcome(&claimed[1], soon, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("ok");
    assert!(emitted(store).await.is_empty(), "a run shorter than an hour is not news");
    store.record_outcomes(&[outcome(&claimed[2], soon + 1, Some(500), retry)], 0).await.expect("fail");
    let back = soon + 1 + HOUR;
    store
        .record_outcomes(&[outcome(&claimed[0], back, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("ok");
    let emitted = emitted(store).await;
    assert_eq!(emitted.len(), 1, "{emitted:?}");
    assert_eq!(emitted[0].0, "endpoint.recovered");
    assert_eq!(emitted[0].1["endpoint_id"], endpoint.as_str());
    assert_eq!(emitted[0].1["failing_since"], (soon + 1) / 1000);
    assert_eq!(emitted[0].1["recovered_at"], back / 1000);
}

pub async fn an_owner_pausing_and_enabling_an_endpoint_emits_disabled_and_enabled(store: &dyn Store) {
    operational_endpoint(store).await;
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let set = |status| EndpointPatch { status: Some(status), ..Default::default() };
    store.update_endpoint(&account, &endpoint, &set(EndpointStatus::Disabled), NOW).await.expect("pause");
    store.update_endpoint(&account, &endpoint, &set(EndpointStatus::Disabled), NOW).await.expect("again");
    let other = new_account(store, "b").await;
    let refused = store.update_endpoint(&other, &endpoint, &set(EndpointStatus::Enabled), NOW).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
    store.update_endpoint(&account, &endpoint, &set(EndpointStatus::Enabled), NOW + 1).await.expect("enable");
    let kinds: Vec<String> = emitted(store)
        .await
        .into_iter()
        .map(|(kind, data)| {
            assert_eq!(data["endpoint_id"], endpoint.as_str());
            if kind == "endpoint.disabled" {
                assert_eq!(data["reason"], "owner");
            }
            kind
        })
        .collect();
    assert_eq!(kinds, ["endpoint.disabled", "endpoint.enabled"], "one event per change, none for no change");
}

pub async fn without_operational_endpoints_nothing_is_emitted(store: &dyn Store) {
    let (_, _, claimed) = customer_with_claims(store, 1).await;
    store.record_outcomes(&[outcome(&claimed[0], NOW, None, NextStep::Failed)], NOW).await.expect("record");
    assert!(emitted(store).await.is_empty());
}

pub async fn operational_endpoints_never_report_on_themselves_nor_are_disabled(store: &dyn Store) {
    let operational = operational_endpoint(store).await;
    let (_, _, claimed) = customer_with_claims(store, 1).await;
    store.record_outcomes(&[outcome(&claimed[0], NOW, None, NextStep::Failed)], 0).await.expect("record");
    let to_operator = claim(store, NOW, 100, 100).await;
    assert_eq!(to_operator.len(), 1);
    // The operational endpoint fails for good, past the disable threshold.
    store
        .record_outcomes(&[outcome(&to_operator[0], NOW, None, NextStep::Failed)], NOW)
        .await
        .expect("record");
    assert_eq!(emitted(store).await.len(), 1, "no event about the operational endpoint itself");
    let read = store.get_endpoint(&operations_account(), &operational).await.expect("get");
    assert_eq!(read.status, EndpointStatus::Enabled);
}

pub async fn the_operations_account_takes_no_keys_and_no_published_events(store: &dyn Store) {
    let refused = store.add_api_key(&operations_account(), &ApiKey::generate(), NOW).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
    let existing = store.existing_accounts(&[operations_account()]).await.expect("existing");
    assert!(existing.is_empty(), "the operator API cannot publish into it");
    let bootstrapped = store.bootstrap_default_account(&ApiKey::generate(), NOW).await.expect("bootstrap");
    assert!(bootstrapped.is_some(), "a database holding only the operations account is empty");
}
