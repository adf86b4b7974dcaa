//! Storage behaviours every backend must show. Each takes a fresh, empty store.

use hookd_core::{
    AccountId, ApiKey, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EntityId, EventFilter,
    EventId, TokenHash, VideoId, VideoStatus,
};
use hookd_store::{
    AttemptOutcome, AttemptRecord, ClaimLimits, Endpoint, EndpointPatch, Event, EventQuery, IdempotencyClaim,
    IdempotencyScope, NextStep, PageRequest, Store, StoreError, Video, VideoResult, VideoUpdate,
};

pub(crate) const NOW: i64 = 1_764_180_000_000;
const HOUR: i64 = 3_600_000;

// This round's delivery controls and settings live in files of their own; the conformance macro finds
// every behaviour here.
pub use super::delivery_controls::*;
pub use super::delivery_settings::*;
pub use super::event_log::*;
pub use super::operational::*;
pub use super::portal::*;

pub async fn new_account(store: &dyn Store, name: &str) -> AccountId {
    store.create_account(name, &ApiKey::generate(), NOW).await.expect("account").account_id
}

/// An endpoint as a test creates it: the record the store keeps and reads back, and
/// the secret it was created with (which reads never carry).
#[derive(Debug, Clone)]
pub struct TestEndpoint {
    pub record: Endpoint,
    pub secret: EndpointSecret,
}

impl std::ops::Deref for TestEndpoint {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.record
    }
}

impl std::ops::DerefMut for TestEndpoint {
    fn deref_mut(&mut self) -> &mut Endpoint {
        &mut self.record
    }
}

pub fn endpoint_for(account_id: &AccountId, n: usize) -> TestEndpoint {
    let record = Endpoint {
        endpoint_id: EndpointId::new_random(),
        account_id: account_id.clone(),
        url: EndpointUrl::from_stored(format!("https://example.com/hook/{n}")),
        events: EventFilter::Only(vec!["avatar_video.success".into()]),
        entity_id: Some(EntityId::parse(format!("entity-{n}")).expect("entity")),
        status: EndpointStatus::Enabled,
        created_at: NOW + n as i64,
    };
    TestEndpoint { record, secret: EndpointSecret::generate() }
}

/// The secret the store holds for the endpoint, opened.
pub async fn stored_secret(store: &dyn Store, account: &AccountId, endpoint: &EndpointId) -> EndpointSecret {
    store.endpoint_secret(account, endpoint).await.expect("the endpoint's secret").current
}

pub async fn account_with_endpoint(store: &dyn Store) -> (AccountId, TestEndpoint) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_for(&account, 0);
    store.create_endpoint(&endpoint.record, &endpoint.secret).await.expect("create");
    (account, endpoint)
}

pub(crate) fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound))
}

pub async fn created_endpoint_reads_back_unchanged(store: &dyn Store) {
    let (account, endpoint) = account_with_endpoint(store).await;
    let read = store.get_endpoint(&account, &endpoint.endpoint_id).await.expect("get");
    assert_eq!(read.endpoint_id, endpoint.endpoint_id);
    assert_eq!(read.url, endpoint.url);
    assert_eq!(read.events, endpoint.events);
    assert_eq!(read.entity_id, endpoint.entity_id);
    assert_eq!(read.status, EndpointStatus::Enabled);
    assert_eq!(stored_secret(store, &account, &endpoint.endpoint_id).await, endpoint.secret);
    assert_eq!(read.created_at, endpoint.created_at);
}

pub async fn another_accounts_endpoint_is_not_found_for_any_operation(store: &dyn Store) {
    let (owner, endpoint) = account_with_endpoint(store).await;
    let other = new_account(store, "b").await;
    let id = &endpoint.endpoint_id;
    assert!(is_not_found(store.get_endpoint(&other, id).await));
    let patch = EndpointPatch { status: Some(EndpointStatus::Disabled), ..Default::default() };
    assert!(is_not_found(store.update_endpoint(&other, id, &patch, NOW).await));
    assert!(is_not_found(
        store.rotate_endpoint_secret(&other, id, &EndpointSecret::generate(), None, NOW).await
    ));
    assert!(is_not_found(store.delete_endpoint(&other, id, NOW).await));
    let page = PageRequest { before: None, limit: 100 };
    assert!(store.list_endpoints(&other, page).await.expect("list").items.is_empty());
    let unchanged = store.get_endpoint(&owner, id).await.expect("owner still sees it");
    assert_eq!(unchanged.status, EndpointStatus::Enabled);
    assert_eq!(stored_secret(store, &owner, id).await, endpoint.secret);
    assert!(is_not_found(store.endpoint_secret(&other, id).await), "nor its secret");
}

pub async fn endpoint_pages_are_newest_first_and_stable_under_inserts(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let mut created = Vec::new();
    for n in 0..25 {
        let endpoint = endpoint_for(&account, n);
        store.create_endpoint(&endpoint.record, &endpoint.secret).await.expect("create");
        created.push(endpoint.record.endpoint_id);
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_endpoints(&account, PageRequest { before, limit: 10 }).await.expect("page");
        seen.extend(page.items.into_iter().map(|e| e.endpoint_id));
        // An insert between pages must not show up later in this walk.
        let inserted = endpoint_for(&account, 100 + seen.len());
        store.create_endpoint(&inserted.record, &inserted.secret).await.expect("concurrent insert");
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

pub async fn patch_changes_only_the_given_fields(store: &dyn Store) {
    let (account, endpoint) = account_with_endpoint(store).await;
    let id = &endpoint.endpoint_id;
    let new_url = EndpointUrl::from_stored("https://example.org/new".into());
    let patch = EndpointPatch { url: Some(new_url.clone()), ..Default::default() };
    let updated = store.update_endpoint(&account, id, &patch, NOW).await.expect("patch url");
    assert_eq!(updated.url, new_url);
    assert_eq!(updated.events, endpoint.events);
    let patch = EndpointPatch { events: Some(EventFilter::All), ..Default::default() };
    let updated = store.update_endpoint(&account, id, &patch, NOW).await.expect("patch events");
    assert_eq!(updated.events, EventFilter::All);
    assert_eq!(updated.url, new_url);
    let patch = EndpointPatch { status: Some(EndpointStatus::Disabled), ..Default::default() };
    let updated = store.update_endpoint(&account, id, &patch, NOW).await.expect("patch status");
    assert_eq!(updated.status, EndpointStatus::Disabled);
    assert_eq!(updated.events, EventFilter::All);
}

pub async fn deleted_endpoint_disappears_from_get_and_list(store: &dyn Store) {
    let (account, endpoint) = account_with_endpoint(store).await;
    store.delete_endpoint(&account, &endpoint.endpoint_id, NOW).await.expect("delete");
    assert!(is_not_found(store.get_endpoint(&account, &endpoint.endpoint_id).await));
    assert!(is_not_found(store.delete_endpoint(&account, &endpoint.endpoint_id, NOW).await));
    let page = store.list_endpoints(&account, PageRequest { before: None, limit: 10 }).await.expect("list");
    assert!(page.items.is_empty());
}

pub async fn rotated_secret_replaces_the_old_one(store: &dyn Store) {
    let (account, endpoint) = account_with_endpoint(store).await;
    let secret = EndpointSecret::generate();
    store.rotate_endpoint_secret(&account, &endpoint.endpoint_id, &secret, None, NOW).await.expect("rotate");
    let read = stored_secret(store, &account, &endpoint.endpoint_id).await;
    assert_eq!(read, secret);
    assert_ne!(read, endpoint.secret);
}

pub async fn api_keys_are_found_by_id_and_revocable(store: &dyn Store) {
    let key = ApiKey::generate();
    let account = store.create_account("a", &key, NOW).await.expect("account");
    let second = ApiKey::generate();
    store.add_api_key(&account.account_id, &second, NOW).await.expect("second key");
    for k in [&key, &second] {
        let stored = store.find_api_key(k.key_id()).await.expect("find").expect("present");
        assert_eq!(stored.account_id, account.account_id);
        assert!(stored.key_hash.matches(&k.hash()));
        assert!(!stored.revoked);
    }
    store.revoke_api_key(key.key_id(), NOW).await.expect("revoke");
    assert!(store.find_api_key(key.key_id()).await.expect("find").expect("present").revoked);
    assert!(!store.find_api_key(second.key_id()).await.expect("find").expect("present").revoked);
    assert!(is_not_found(store.revoke_api_key(ApiKey::generate().key_id(), NOW).await));
}

pub async fn adding_a_key_to_a_missing_account_is_not_found(store: &dyn Store) {
    let result = store.add_api_key(&AccountId::new_random(), &ApiKey::generate(), NOW).await;
    assert!(is_not_found(result));
}

pub async fn default_account_is_bootstrapped_only_on_an_empty_database(store: &dyn Store) {
    let key = ApiKey::generate();
    let account = store.bootstrap_default_account(&key, NOW).await.expect("bootstrap").expect("created");
    assert_eq!(account.name, "default");
    let stored = store.find_api_key(key.key_id()).await.expect("find").expect("present");
    assert_eq!(stored.account_id, account.account_id);
    assert!(store.bootstrap_default_account(&ApiKey::generate(), NOW).await.expect("second").is_none());
}

pub async fn cursor_key_is_stable_across_calls(store: &dyn Store) {
    let first = store.cursor_key().await.expect("key");
    let second = store.cursor_key().await.expect("key again");
    assert_eq!(first.as_bytes(), second.as_bytes());
}

pub async fn admin_token_hash_is_saved_once(store: &dyn Store) {
    assert!(store.admin_token_hash().await.expect("read").is_none());
    let hash = TokenHash::of("first");
    assert!(store.save_admin_token_hash(&hash).await.expect("save"));
    assert!(!store.save_admin_token_hash(&TokenHash::of("second")).await.expect("save again"));
    assert!(store.admin_token_hash().await.expect("read").expect("present").matches(&hash));
}

fn scope(key: &str) -> IdempotencyScope {
    IdempotencyScope { owner: "acct".into(), key: key.into(), method: "POST".into(), path: "/v3/x".into() }
}

pub async fn idempotency_claim_replays_completed_and_blocks_running_requests(store: &dyn Store) {
    let s = scope("k1");
    let claim = |now| store.claim_idempotency(&s, "h1", now, now - 24 * HOUR, now - 60_000);
    assert_eq!(claim(NOW).await.expect("first"), IdempotencyClaim::Started);
    assert_eq!(claim(NOW + 1).await.expect("while running"), IdempotencyClaim::InProgress);
    store.complete_idempotency(&s, 200, b"{\"data\":1}").await.expect("complete");
    match claim(NOW + 2).await.expect("after completion") {
        IdempotencyClaim::Replay(response) => {
            assert_eq!(response.status, 200);
            assert_eq!(response.body, b"{\"data\":1}");
            assert_eq!(response.request_hash, "h1");
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    let other_path = IdempotencyScope { path: "/v3/y".into(), ..s.clone() };
    let claimed = store.claim_idempotency(&other_path, "h1", NOW, NOW - 24 * HOUR, NOW).await;
    assert_eq!(claimed.expect("other path"), IdempotencyClaim::Started);
    let abandoned = scope("k2");
    store.claim_idempotency(&abandoned, "h", NOW, 0, 0).await.expect("claim");
    store.abandon_idempotency(&abandoned).await.expect("abandon");
    let again = store.claim_idempotency(&abandoned, "h", NOW, 0, NOW - 60_000).await;
    assert_eq!(again.expect("reclaim"), IdempotencyClaim::Started);
}

pub async fn idempotency_claim_takes_over_expired_and_stale_records(store: &dyn Store) {
    let s = scope("k");
    store.claim_idempotency(&s, "h", NOW, 0, 0).await.expect("claim");
    store.complete_idempotency(&s, 200, b"old").await.expect("complete");
    let later = NOW + 25 * HOUR;
    let claimed = store.claim_idempotency(&s, "h", later, later - 24 * HOUR, later - 60_000).await;
    assert_eq!(claimed.expect("expired"), IdempotencyClaim::Started);
    let stale = later + 61_000;
    let claimed = store.claim_idempotency(&s, "h", stale, stale - 24 * HOUR, stale - 60_000).await;
    assert_eq!(claimed.expect("stale in-progress"), IdempotencyClaim::Started);
    assert_eq!(store.prune_idempotency(stale + 1).await.expect("prune"), 1);
}

pub async fn event_history_filters_by_type_and_entity_and_scopes_to_account(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let other = new_account(store, "b").await;
    let event = |account_id: &AccountId, event_type: &str, entity: Option<&str>, n: i64| Event {
        event_id: EventId::new_random(),
        account_id: account_id.clone(),
        event_type: event_type.into(),
        entity_id: entity.map(str::to_owned),
        event_data: "{}".into(),
        callback_url: None,
        callback_id: None,
        created_at: NOW + n,
        traceparent: None,
    };
    let events = vec![
        event(&account, "avatar_video.success", Some("p1"), 1),
        event(&account, "avatar_video.fail", Some("p1"), 2),
        event(&account, "avatar_video.success", None, 3),
        event(&other, "avatar_video.success", Some("p1"), 4),
    ];
    store.publish_events(&events).await.expect("insert");
    let all = listed_ids(store, &account, EventQuery::default()).await;
    assert_eq!(all, vec![events[2].event_id.clone(), events[1].event_id.clone(), events[0].event_id.clone()]);
    let by_type = listed_ids(
        store,
        &account,
        EventQuery { event_type: Some("avatar_video.success".into()), entity_id: None },
    )
    .await;
    assert_eq!(by_type, vec![events[2].event_id.clone(), events[0].event_id.clone()]);
    let by_entity =
        listed_ids(store, &account, EventQuery { event_type: None, entity_id: Some("p1".into()) }).await;
    assert_eq!(by_entity, vec![events[1].event_id.clone(), events[0].event_id.clone()]);
    let duplicate = vec![event(&account, "batch.finished", None, 5), events[0].clone()];
    assert!(store.publish_events(&duplicate).await.is_err(), "a failing batch stores nothing");
    assert_eq!(listed_ids(store, &account, EventQuery::default()).await.len(), 3);
}

async fn listed_ids(store: &dyn Store, account: &AccountId, query: EventQuery) -> Vec<EventId> {
    let page = PageRequest { before: None, limit: 100 };
    let listed = store.list_events(account, &query, page).await.expect("list");
    listed.items.into_iter().map(|e| e.event_id).collect()
}

// ---- the delivery queue ----

pub fn event_of(account_id: &AccountId, event_type: &str, entity_id: Option<&str>) -> Event {
    Event {
        event_id: EventId::new_random(),
        account_id: account_id.clone(),
        event_type: event_type.into(),
        entity_id: entity_id.map(str::to_owned),
        event_data: r#"{"video_id":"v"}"#.into(),
        callback_url: None,
        callback_id: None,
        created_at: NOW,
        traceparent: None,
    }
}

pub(crate) async fn endpoint_with(
    store: &dyn Store,
    account_id: &AccountId,
    events: EventFilter,
    entity: Option<&str>,
) -> EndpointId {
    let mut endpoint = endpoint_for(account_id, 1);
    endpoint.events = events;
    endpoint.entity_id = entity.map(|e| EntityId::parse(e.to_owned()).expect("entity"));
    store.create_endpoint(&endpoint.record, &endpoint.secret).await.expect("create");
    endpoint.record.endpoint_id
}

pub(crate) const LEASE: i64 = 30_000;

pub(crate) async fn claim(
    store: &dyn Store,
    now: i64,
    limit: u32,
    cap: u32,
) -> Vec<hookd_store::ClaimedDelivery> {
    store.claim_due(now, ClaimLimits::new(limit, cap), now + LEASE).await.expect("claim")
}

pub(crate) fn outcome(
    claimed: &hookd_store::ClaimedDelivery,
    at: i64,
    status: Option<u16>,
    next: NextStep,
) -> AttemptOutcome {
    AttemptOutcome {
        delivery_id: claimed.delivery_id.clone(),
        endpoint_id: claimed.endpoint_id.clone(),
        attempt: AttemptRecord {
            attempted_at: at,
            status_code: status,
            duration_ms: 5,
            error: status.is_none().then(|| "connection refused".to_owned()),
            response_body: status.map(|_| "ok".to_owned()),
        },
        next,
    }
}

pub async fn publish_fans_out_to_matching_endpoints_only(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let other = new_account(store, "b").await;
    let all = endpoint_with(store, &account, EventFilter::All, None).await;
    let listed =
        endpoint_with(store, &account, EventFilter::Only(vec!["avatar_video.success".into()]), None).await;
    let _other_type =
        endpoint_with(store, &account, EventFilter::Only(vec!["avatar_video.fail".into()]), None).await;
    let scoped = endpoint_with(store, &account, EventFilter::All, Some("p1")).await;
    let _scoped_elsewhere = endpoint_with(store, &account, EventFilter::All, Some("p2")).await;
    let disabled = endpoint_with(store, &account, EventFilter::All, None).await;
    let patch = EndpointPatch { status: Some(EndpointStatus::Disabled), ..Default::default() };
    store.update_endpoint(&account, &disabled, &patch, NOW).await.expect("disable");
    let deleted = endpoint_with(store, &account, EventFilter::All, None).await;
    store.delete_endpoint(&account, &deleted, NOW).await.expect("delete");
    let _foreign = endpoint_with(store, &other, EventFilter::All, None).await;

    let mut event = event_of(&account, "avatar_video.success", Some("p1"));
    event.callback_url = Some("https://example.com/callback".into());
    let counts = store.publish_events(std::slice::from_ref(&event)).await.expect("publish");
    assert_eq!(counts, vec![4], "all, listed, scoped and the callback");
    let claimed = claim(store, NOW, 100, 8).await;
    let mut targets: Vec<Option<EndpointId>> = claimed.iter().map(|c| c.endpoint_id.clone()).collect();
    targets.sort();
    let mut expected = vec![Some(all), Some(listed), Some(scoped), None];
    expected.sort();
    assert_eq!(targets, expected);
    let callback = claimed.iter().find(|c| c.endpoint_id.is_none()).expect("callback delivery");
    assert_eq!(callback.url, "https://example.com/callback");
    assert!(callback.secret.is_none(), "callbacks are not signed");
    assert!(claimed.iter().filter(|c| c.endpoint_id.is_some()).all(|c| c.secret.is_some()));
    assert!(claimed.iter().all(|c| c.event_id == event.event_id && c.event_data == event.event_data));

    let unscoped = event_of(&account, "avatar_video.success", None);
    assert_eq!(
        store.publish_events(&[unscoped]).await.expect("publish"),
        vec![2],
        "scoped endpoints skip it"
    );
}

/// The delivery path's writes (publishes, claims) and the cold writes (new endpoints)
/// run side by side without an error or a lost or doubled row. On SQLite they are two
/// writers, the write engine and sqlx's connection, taking turns.
pub async fn publishes_claims_and_endpoint_changes_interleave_without_errors(store: &dyn Store) {
    let (account, _) = account_with_endpoint(store).await;
    let publishing = async {
        for _ in 0..100 {
            let event = event_of(&account, "avatar_video.success", Some("entity-0"));
            assert_eq!(store.publish_events(&[event]).await.expect("publish"), vec![1]);
        }
    };
    let changing = async {
        for n in 1..=20 {
            let endpoint = endpoint_for(&account, n);
            store.create_endpoint(&endpoint.record, &endpoint.secret).await.expect("create");
        }
    };
    let claiming = async {
        let mut claimed = 0;
        for _ in 0..20 {
            claimed += claim(store, NOW, 1000, 1000).await.len();
            tokio::task::yield_now().await;
        }
        claimed
    };
    let ((), (), claimed_meanwhile) = tokio::join!(publishing, changing, claiming);
    let claimed_after = claim(store, NOW, 1000, 1000).await.len();
    assert_eq!(claimed_meanwhile + claimed_after, 100, "each delivery leased exactly once");
    let page = PageRequest { before: None, limit: 100 };
    assert_eq!(store.list_endpoints(&account, page).await.expect("list").items.len(), 21);
    let counts = store.count_events_by_type(&account).await.expect("counts");
    assert_eq!(counts, vec![("avatar_video.success".to_owned(), 100)]);
}

pub async fn claims_lease_deliveries_and_cap_each_destination(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let busy = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..5).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let first = claim(store, NOW, 100, 2).await;
    assert_eq!(first.len(), 2, "no more than the cap in flight for one endpoint");
    assert!(first.iter().all(|c| c.endpoint_id.as_ref() == Some(&busy) && c.attempts_made == 0));
    assert!(claim(store, NOW + 1, 100, 2).await.is_empty(), "the cap holds while the leases do");
    assert_eq!(store.queue_depth(NOW + 1).await.expect("depth").in_flight, 2);

    store
        .record_outcomes(&[outcome(&first[0], NOW + 2, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("record");
    let next = claim(store, NOW + 3, 100, 2).await;
    assert_eq!(next.len(), 1, "a finished attempt frees one slot");
    assert!(!first.iter().any(|c| c.delivery_id == next[0].delivery_id));
}

pub async fn a_destination_at_its_cap_does_not_hold_up_others(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let hot = endpoint_with(store, &account, EventFilter::Only(vec!["batch.finished".into()]), None).await;
    let quiet = endpoint_with(store, &account, EventFilter::Only(vec!["batch.failed".into()]), None).await;
    let backlog: Vec<Event> = (0..200).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&backlog).await.expect("publish the backlog");
    assert_eq!(claim(store, NOW, 100, 5).await.len(), 5, "the hot endpoint fills its cap");

    let mut later = event_of(&account, "batch.failed", None);
    later.created_at = NOW + 1;
    store.publish_events(&[later]).await.expect("publish");
    let claimed = claim(store, NOW + 2, 100, 5).await;
    let targets: Vec<_> = claimed.iter().map(|c| c.endpoint_id.clone()).collect();
    assert_eq!(targets, vec![Some(quiet)], "195 older due deliveries behind a full cap do not block it");
    assert!(claim(store, NOW + 3, 100, 5).await.is_empty());
    let _ = hot;
}

pub async fn claims_take_the_oldest_due_deliveries_across_destinations(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::Only(vec!["batch.finished".into()]), None).await;
    endpoint_with(store, &account, EventFilter::Only(vec!["batch.failed".into()]), None).await;
    // Due times interleave the two destinations; publish order does not follow them.
    let mut events = Vec::new();
    for (offset, event_type) in [
        (5, "batch.finished"),
        (1, "batch.failed"),
        (4, "batch.failed"),
        (2, "batch.finished"),
        (3, "batch.finished"),
    ] {
        let mut event = event_of(&account, event_type, None);
        event.created_at = NOW + offset;
        events.push(event);
    }
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW + 10, 3, 8).await;
    let mut got: Vec<_> = claimed.iter().map(|c| c.event_id.clone()).collect();
    got.sort();
    let mut oldest = vec![events[1].event_id.clone(), events[3].event_id.clone(), events[4].event_id.clone()];
    oldest.sort();
    assert_eq!(got, oldest, "the three earliest due, whichever destination they go to");
    let rest: Vec<_> = claim(store, NOW + 10, 3, 8).await.into_iter().map(|c| c.event_id).collect();
    assert_eq!(rest.len(), 2);
    assert!(rest.contains(&events[0].event_id) && rest.contains(&events[2].event_id));
}

pub async fn an_expired_lease_makes_the_delivery_due_again(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    store.publish_events(&[event_of(&account, "batch.finished", None)]).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    assert_eq!(claimed.len(), 1);
    assert!(claim(store, NOW + LEASE - 1, 10, 8).await.is_empty());
    assert_eq!(store.next_due_at().await.expect("next"), Some(NOW + LEASE));
    let again = claim(store, NOW + LEASE, 10, 8).await;
    assert_eq!(again.len(), 1, "a crashed worker's delivery is retried");
    assert_eq!(again[0].delivery_id, claimed[0].delivery_id);
    assert_eq!(store.release_all_leases(NOW + LEASE).await.expect("release"), 1);
    assert_eq!(claim(store, NOW + LEASE, 10, 8).await.len(), 1, "released at startup: due at once");
}

pub async fn outcomes_record_attempts_and_move_the_delivery_on(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let event = event_of(&account, "batch.finished", None);
    store.publish_events(std::slice::from_ref(&event)).await.expect("publish");
    let first = claim(store, NOW, 10, 8).await.remove(0);
    store
        .record_outcomes(&[outcome(&first, NOW + 1, Some(500), NextStep::RetryAt(NOW + 5_000))], 0)
        .await
        .expect("record");
    assert!(claim(store, NOW + 4_999, 10, 8).await.is_empty(), "not due before its retry time");
    let second = claim(store, NOW + 5_000, 10, 8).await.remove(0);
    assert_eq!(second.attempts_made, 1);
    store.record_outcomes(&[outcome(&second, NOW + 5_001, None, NextStep::Failed)], 0).await.expect("record");
    assert!(
        claim(store, NOW + 10_000_000, 10, 8).await.is_empty(),
        "a failed delivery is never attempted again"
    );

    let records = store.list_deliveries(&account, &event.event_id).await.expect("list");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, hookd_core::DeliveryState::Failed);
    assert_eq!(records[0].next_attempt_at, None);
    let codes: Vec<Option<u16>> = records[0].attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), None]);
    assert_eq!(records[0].attempts[1].error.as_deref(), Some("connection refused"));
    let other = new_account(store, "b").await;
    assert!(is_not_found(store.list_deliveries(&other, &event.event_id).await));
}

pub async fn deleting_an_endpoint_cancels_its_pending_deliveries(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let event = event_of(&account, "batch.finished", None);
    store.publish_events(std::slice::from_ref(&event)).await.expect("publish");
    let in_flight = claim(store, NOW, 10, 8).await.remove(0);
    store.delete_endpoint(&account, &endpoint, NOW + 1).await.expect("delete");
    store
        .record_outcomes(&[outcome(&in_flight, NOW + 2, None, NextStep::RetryAt(NOW + 3))], 0)
        .await
        .expect("record");
    assert!(claim(store, NOW + 1_000_000, 10, 8).await.is_empty());
    let records = store.list_deliveries(&account, &event.event_id).await.expect("list");
    assert_eq!(records[0].state, hookd_core::DeliveryState::Cancelled, "the late outcome does not revive it");
}

pub async fn an_endpoint_failing_past_the_threshold_is_disabled(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..2).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    let day = 24 * HOUR;
    let failure = outcome(&claimed[0], NOW, None, NextStep::RetryAt(NOW + day));
    store.record_outcomes(&[failure], NOW - 5 * day).await.expect("first failure");
    let read = store.get_endpoint(&account, &endpoint).await.expect("get");
    assert_eq!(read.status, EndpointStatus::Enabled, "failing for less than the threshold");
    let later = NOW + 5 * day;
    let failure = outcome(&claimed[1], later, Some(500), NextStep::RetryAt(later + day));
    store.record_outcomes(&[failure], later - 5 * day).await.expect("still failing");
    let read = store.get_endpoint(&account, &endpoint).await.expect("get");
    assert_eq!(read.status, EndpointStatus::Disabled, "no success for 5 days while attempts failed");
    let more = event_of(&account, "batch.finished", None);
    assert_eq!(store.publish_events(&[more]).await.expect("publish"), vec![0], "no new deliveries");
}

pub async fn a_success_resets_the_failure_run(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let events: Vec<Event> = (0..3).map(|_| event_of(&account, "batch.finished", None)).collect();
    store.publish_events(&events).await.expect("publish");
    let claimed = claim(store, NOW, 10, 8).await;
    let day = 24 * HOUR;
    store.record_outcomes(&[outcome(&claimed[0], NOW, None, NextStep::Failed)], 0).await.expect("fail");
    store
        .record_outcomes(&[outcome(&claimed[1], NOW + day, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("ok");
    let later = NOW + 6 * day;
    store
        .record_outcomes(&[outcome(&claimed[2], later, None, NextStep::Failed)], later - 5 * day)
        .await
        .expect("fail");
    let read = store.get_endpoint(&account, &endpoint).await.expect("get");
    assert_eq!(read.status, EndpointStatus::Enabled, "the failure run restarted after the success");
}

pub async fn resend_schedules_a_new_delivery_of_the_same_event(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_with(store, &account, EventFilter::All, None).await;
    let event = event_of(&account, "batch.finished", None);
    store.publish_events(std::slice::from_ref(&event)).await.expect("publish");
    let first = claim(store, NOW, 10, 8).await.remove(0);
    store.record_outcomes(&[outcome(&first, NOW, Some(200), NextStep::Delivered)], 0).await.expect("record");
    assert_eq!(store.resend(&account, &event.event_id, None, NOW + 10).await.expect("resend"), 1);
    assert_eq!(
        store.resend(&account, &event.event_id, Some(&endpoint), NOW + 10).await.expect("resend one"),
        1
    );
    let again = claim(store, NOW + 10, 10, 8).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.event_id == event.event_id && c.delivery_id != first.delivery_id));
    let other = new_account(store, "b").await;
    assert!(is_not_found(store.resend(&other, &event.event_id, None, NOW).await));
    let foreign_endpoint = endpoint_with(store, &other, EventFilter::All, None).await;
    assert!(is_not_found(store.resend(&account, &event.event_id, Some(&foreign_endpoint), NOW).await));
}

// ---- videos ----

fn video_of(account_id: &AccountId) -> Video {
    Video {
        video_id: VideoId::new_random(),
        account_id: account_id.clone(),
        video_type: "avatar".into(),
        status: VideoStatus::Pending,
        request: r#"{"type":"avatar","avatar_id":"a1"}"#.into(),
        title: Some("t".into()),
        callback_url: Some("https://example.com/cb".into()),
        callback_id: Some("order-1".into()),
        output_format: "mp4".into(),
        result: VideoResult::default(),
        created_at: NOW,
        completed_at: None,
    }
}

pub async fn videos_are_scoped_to_their_account(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let other = new_account(store, "b").await;
    let video = video_of(&account);
    store.create_video(&video).await.expect("create");
    assert_eq!(store.get_video(&account, &video.video_id).await.expect("get"), video);
    assert!(is_not_found(store.get_video(&other, &video.video_id).await));
    assert_eq!(store.find_video(&video.video_id).await.expect("find").account_id, account);
    let pending =
        store.list_videos(Some(VideoStatus::Pending), PageRequest { before: None, limit: 10 }).await;
    assert_eq!(pending.expect("list").items.len(), 1);
}

pub async fn a_video_update_applies_once_and_publishes_its_event_with_it(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let video = video_of(&account);
    store.create_video(&video).await.expect("create");
    let mut event = event_of(&account, "avatar_video.success", None);
    event.callback_url = video.callback_url.clone();
    let update = VideoUpdate {
        expected: VideoStatus::Pending,
        status: VideoStatus::Completed,
        result: VideoResult { video_url: Some("https://cdn/v.mp4".into()), ..VideoResult::default() },
        completed_at: Some(NOW + 5),
        event: Some(event.clone()),
    };
    assert_eq!(store.update_video(&video.video_id, &update, NOW + 5).await.expect("update"), Some(2));
    assert_eq!(store.update_video(&video.video_id, &update, NOW + 6).await.expect("stale"), None, "moved on");
    let read = store.get_video(&account, &video.video_id).await.expect("get");
    assert_eq!(read.status, VideoStatus::Completed);
    assert_eq!(read.result.video_url.as_deref(), Some("https://cdn/v.mp4"));
    assert_eq!(read.completed_at, Some(NOW + 5));
    assert_eq!(claim(store, NOW + 10, 10, 8).await.len(), 2, "endpoint and callback deliveries");
}

fn event_at(account_id: &AccountId, created_at: i64) -> Event {
    Event { created_at, ..event_of(account_id, "batch.finished", None) }
}

pub async fn retention_prunes_only_history_older_than_the_cutoff(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let old: Vec<Event> = (0..5).map(|i| event_at(&account, NOW - 40 * 24 * HOUR + i)).collect();
    let young: Vec<Event> = (0..3).map(|i| event_at(&account, NOW - HOUR + i)).collect();
    store.publish_events(&old).await.expect("publish old");
    store.publish_events(&young).await.expect("publish young");
    // Every old delivery was attempted once and delivered.
    let claimed = claim(store, NOW - 40 * 24 * HOUR + 10, 100, 100).await;
    assert_eq!(claimed.len(), 5);
    let outcomes: Vec<AttemptOutcome> = claimed
        .iter()
        .map(|c| outcome(c, NOW - 40 * 24 * HOUR + 20, Some(200), NextStep::Delivered))
        .collect();
    store.record_outcomes(&outcomes, 0).await.expect("record");

    let cutoff = NOW - 30 * 24 * HOUR;
    let first = store.prune_history(cutoff, NOW, 2).await.expect("prune");
    assert_eq!((first.deliveries, first.attempts), (2, 2), "one small batch at a time");
    let mut total = first;
    loop {
        let pruned = store.prune_history(cutoff, NOW, 2).await.expect("prune");
        total.events += pruned.events;
        total.deliveries += pruned.deliveries;
        total.attempts += pruned.attempts;
        if pruned.is_less_than(2) {
            break;
        }
    }
    assert_eq!((total.events, total.deliveries, total.attempts), (5, 5, 5));
    let left = listed_ids(store, &account, EventQuery::default()).await;
    let mut expected: Vec<EventId> = young.iter().rev().map(|e| e.event_id.clone()).collect();
    expected.sort();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    assert_eq!(left_sorted, expected, "only the young events remain");
    for event in &young {
        assert_eq!(store.list_deliveries(&account, &event.event_id).await.expect("deliveries").len(), 1);
    }
    assert_eq!(store.prune_history(cutoff, NOW, 2).await.expect("prune"), hookd_store::Pruned::default());
}

pub async fn retention_keeps_deliveries_in_flight_and_their_events(store: &dyn Store) {
    let account = new_account(store, "a").await;
    endpoint_with(store, &account, EventFilter::All, None).await;
    let old = event_at(&account, NOW - 40 * 24 * HOUR);
    store.publish_events(std::slice::from_ref(&old)).await.expect("publish");
    let leased = store.claim_due(NOW, ClaimLimits::new(10, 8), NOW + LEASE).await.expect("claim");
    assert_eq!(leased.len(), 1);
    let cutoff = NOW - 30 * 24 * HOUR;
    let pruned = store.prune_history(cutoff, NOW + 1, 100).await.expect("prune");
    assert_eq!(pruned, hookd_store::Pruned::default(), "an attempt in flight keeps its delivery and event");
    // The attempt reports back after the pruning pass: nothing it needs is gone.
    store
        .record_outcomes(&[outcome(&leased[0], NOW + 2, Some(200), NextStep::Delivered)], 0)
        .await
        .expect("record after prune");
    let pruned = store.prune_history(cutoff, NOW + 3, 100).await.expect("prune");
    assert_eq!((pruned.events, pruned.deliveries, pruned.attempts), (1, 1, 1));
    assert!(is_not_found(store.list_deliveries(&account, &old.event_id).await));
}

/// An event of `account` created now, for tests that claim at wall-clock time.
pub fn event_now(account_id: &AccountId) -> Event {
    event_at(account_id, hookd_store::now_millis())
}

pub async fn concurrent_first_claims_of_a_key_start_exactly_one(store: &dyn Store) {
    let s = scope("race");
    let claim = || store.claim_idempotency(&s, "h", NOW, NOW - 24 * HOUR, NOW - 60_000);
    // Joined, not sequenced: on PostgreSQL each runs on its own connection at once.
    let results = tokio::join!(claim(), claim(), claim(), claim(), claim(), claim());
    let claims = [results.0, results.1, results.2, results.3, results.4, results.5];
    let started = claims.iter().filter(|c| matches!(c, Ok(IdempotencyClaim::Started))).count();
    let waiting = claims.iter().filter(|c| matches!(c, Ok(IdempotencyClaim::InProgress))).count();
    assert_eq!((started, waiting), (1, 5), "{claims:?}");
}
