//! Storage behaviours every backend must show. Each takes a fresh, empty store.

use hookd_core::{
    AccountId, ApiKey, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EntityId, EventFilter,
    EventId, TokenHash,
};
use hookd_store::{
    Endpoint, EndpointPatch, Event, EventQuery, IdempotencyClaim, IdempotencyScope, PageRequest, Store,
    StoreError,
};

const NOW: i64 = 1_764_180_000_000;
const HOUR: i64 = 3_600_000;

pub async fn new_account(store: &dyn Store, name: &str) -> AccountId {
    store.create_account(name, &ApiKey::generate(), NOW).await.expect("account").account_id
}

pub fn endpoint_for(account_id: &AccountId, n: usize) -> Endpoint {
    Endpoint {
        endpoint_id: EndpointId::new_random(),
        account_id: account_id.clone(),
        url: EndpointUrl::from_stored(format!("https://example.com/hook/{n}")),
        events: EventFilter::Only(vec!["avatar_video.success".into()]),
        entity_id: Some(EntityId::parse(format!("entity-{n}")).expect("entity")),
        status: EndpointStatus::Enabled,
        secret: EndpointSecret::generate(),
        created_at: NOW + n as i64,
    }
}

pub async fn account_with_endpoint(store: &dyn Store) -> (AccountId, Endpoint) {
    let account = new_account(store, "a").await;
    let endpoint = endpoint_for(&account, 0);
    store.create_endpoint(&endpoint).await.expect("create");
    (account, endpoint)
}

fn is_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
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
    assert_eq!(read.secret, endpoint.secret);
    assert_eq!(read.created_at, endpoint.created_at);
}

pub async fn another_accounts_endpoint_is_not_found_for_any_operation(store: &dyn Store) {
    let (owner, endpoint) = account_with_endpoint(store).await;
    let other = new_account(store, "b").await;
    let id = &endpoint.endpoint_id;
    assert!(is_not_found(store.get_endpoint(&other, id).await));
    let patch = EndpointPatch { status: Some(EndpointStatus::Disabled), ..Default::default() };
    assert!(is_not_found(store.update_endpoint(&other, id, &patch, NOW).await));
    assert!(is_not_found(store.rotate_endpoint_secret(&other, id, &EndpointSecret::generate(), NOW).await));
    assert!(is_not_found(store.delete_endpoint(&other, id, NOW).await));
    let page = PageRequest { before: None, limit: 100 };
    assert!(store.list_endpoints(&other, page).await.expect("list").items.is_empty());
    let unchanged = store.get_endpoint(&owner, id).await.expect("owner still sees it");
    assert_eq!(unchanged.status, EndpointStatus::Enabled);
    assert_eq!(unchanged.secret, endpoint.secret);
}

pub async fn endpoint_pages_are_newest_first_and_stable_under_inserts(store: &dyn Store) {
    let account = new_account(store, "a").await;
    let mut created = Vec::new();
    for n in 0..25 {
        let endpoint = endpoint_for(&account, n);
        store.create_endpoint(&endpoint).await.expect("create");
        created.push(endpoint.endpoint_id);
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_endpoints(&account, PageRequest { before, limit: 10 }).await.expect("page");
        seen.extend(page.items.into_iter().map(|e| e.endpoint_id));
        // An insert between pages must not show up later in this walk.
        store.create_endpoint(&endpoint_for(&account, 100 + seen.len())).await.expect("concurrent insert");
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
    store.rotate_endpoint_secret(&account, &endpoint.endpoint_id, &secret, NOW).await.expect("rotate");
    let read = store.get_endpoint(&account, &endpoint.endpoint_id).await.expect("get");
    assert_eq!(read.secret, secret);
    assert_ne!(read.secret, endpoint.secret);
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
        created_at: NOW + n,
    };
    let events = vec![
        event(&account, "avatar_video.success", Some("p1"), 1),
        event(&account, "avatar_video.fail", Some("p1"), 2),
        event(&account, "avatar_video.success", None, 3),
        event(&other, "avatar_video.success", Some("p1"), 4),
    ];
    store.insert_events(&events).await.expect("insert");
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
    assert!(store.insert_events(&duplicate).await.is_err(), "a failing batch stores nothing");
    assert_eq!(listed_ids(store, &account, EventQuery::default()).await.len(), 3);
}

async fn listed_ids(store: &dyn Store, account: &AccountId, query: EventQuery) -> Vec<EventId> {
    let page = PageRequest { before: None, limit: 100 };
    let listed = store.list_events(account, &query, page).await.expect("list");
    listed.items.into_iter().map(|e| e.event_id).collect()
}
