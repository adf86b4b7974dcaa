//! Endpoint secrets at rest, looked at below the store: the raw SQLite files and the
//! raw PostgreSQL table never hold a secret in clear, a wrong master key is refused
//! when the database opens, and secrets a hookd from before sealing wrote in clear are
//! sealed at the next open, and a master key rotation moves every secret to the new
//! key.

use hookd_core::{AccountId, EndpointSecret, MasterKey, SecretSealer};
use hookd_store::{
    ClaimLimits, EndpointStore, PostgresOptions, PostgresStore, ScratchDatabase, SqliteStore, Store,
    StoreError,
};

use super::{behaviours, sealer};

fn other_sealer() -> SecretSealer {
    SecretSealer::new(&MasterKey::from_hex(&"a1".repeat(32)).expect("a well-formed key"))
}

/// The secret without its `whsec_` prefix: what would show in clear.
fn secret_body(secret: &EndpointSecret) -> &str {
    &secret.expose()["whsec_".len()..]
}

fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn sqlite_files_never_hold_a_secret_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&path, sealer()).await.expect("open");
    let (account, endpoint) = behaviours::account_with_endpoint(&store).await;
    let rotated = EndpointSecret::generate();
    store.rotate_endpoint_secret(&account, &endpoint.endpoint_id, &rotated, None, 1).await.expect("rotate");

    let read = behaviours::stored_secret(&store, &account, &endpoint.endpoint_id).await;
    assert_eq!(read, rotated, "the store opens what it sealed");
    let files = ["hookd.db", "hookd.db-wal"].map(|name| dir.path().join(name));
    assert!(files[1].exists(), "the WAL is looked at while it still holds the writes");
    for secret in [&endpoint.secret, &rotated] {
        for file in &files {
            assert!(!file_contains(file, secret_body(secret)), "{} holds a secret in clear", file.display());
        }
    }
    // The search can find what is there: the endpoint's URL is stored in clear.
    assert!(files.iter().any(|file| file_contains(file, "https://example.com/hook/0")));
    store.close().await;
}

#[tokio::test]
async fn sqlite_refuses_a_wrong_master_key_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    SqliteStore::open(&path, sealer()).await.expect("first open").close().await;
    let refused = SqliteStore::open(&path, other_sealer()).await;
    assert!(matches!(refused, Err(StoreError::WrongMasterKey)), "{:?}", refused.err());
    SqliteStore::open(&path, sealer()).await.expect("the right key still opens it").close().await;
}

#[tokio::test]
async fn sqlite_seals_secrets_written_in_clear_before_sealing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&path, sealer()).await.expect("open");
    let (account, endpoint) = behaviours::account_with_endpoint(&store).await;
    store.close().await;
    // What a hookd from before sealing left behind.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.expect("raw");
    sqlx::query("UPDATE endpoints SET secret = ? WHERE endpoint_id = ?")
        .bind(endpoint.secret.expose())
        .bind(endpoint.endpoint_id.as_str())
        .execute(&raw)
        .await
        .expect("write in clear");

    let reopened = SqliteStore::open(&path, sealer()).await.expect("reopen");
    let stored: String =
        sqlx::query_scalar("SELECT secret FROM endpoints").fetch_one(&raw).await.expect("raw read");
    assert!(SecretSealer::is_sealed(&stored) && !stored.contains(secret_body(&endpoint.secret)));
    let read = behaviours::stored_secret(&reopened, &account, &endpoint.endpoint_id).await;
    assert_eq!(read, endpoint.secret, "the same secret, now sealed");
    raw.close().await;
    reopened.close().await;
}

#[tokio::test]
async fn postgres_never_stores_a_secret_in_clear_and_refuses_a_wrong_key() {
    let Some(server) = hookd_store::test_server_url() else { return };
    let database = ScratchDatabase::create(&server).await.expect("scratch database");
    let options = PostgresOptions::default();
    let store = PostgresStore::connect(database.url(), &options, sealer()).await.expect("open");
    let (account, endpoint) = behaviours::account_with_endpoint(&store).await;
    let rotated = EndpointSecret::generate();
    store.rotate_endpoint_secret(&account, &endpoint.endpoint_id, &rotated, None, 1).await.expect("rotate");

    let raw = sqlx::PgPool::connect(database.url()).await.expect("raw connection");
    let stored: String =
        sqlx::query_scalar("SELECT secret FROM endpoints").fetch_one(&raw).await.expect("raw read");
    assert!(SecretSealer::is_sealed(&stored));
    for secret in [&endpoint.secret, &rotated] {
        assert!(!stored.contains(secret_body(secret)));
    }
    assert_eq!(behaviours::stored_secret(&store, &account, &endpoint.endpoint_id).await, rotated);

    let refused = PostgresStore::connect(database.url(), &options, other_sealer()).await;
    assert!(matches!(refused, Err(StoreError::WrongMasterKey)), "{:?}", refused.err());
    raw.close().await;
    store.close().await;
    database.drop_database().await.expect("drop the scratch database");
}

/// Three endpoints, their secrets re-sealed under `other_sealer()`; the first one in a
/// secret rotation's overlap, so its previous secret is re-sealed too.
async fn rotate(store: &dyn Store) -> (AccountId, Vec<behaviours::TestEndpoint>) {
    let (account, first) = behaviours::account_with_endpoint(store).await;
    let mut endpoints = vec![first];
    for n in 1..3 {
        let mut endpoint = endpoints[0].clone();
        endpoint.endpoint_id = hookd_core::EndpointId::new_random();
        endpoint.secret = EndpointSecret::generate();
        endpoint.url = hookd_core::EndpointUrl::from_stored(format!("https://example.com/hook/{n}"));
        store.create_endpoint(&endpoint.record, &endpoint.secret).await.expect("create");
        endpoints.push(endpoint);
    }
    let rotated = EndpointSecret::generate();
    let first = &endpoints[0].endpoint_id;
    store.rotate_endpoint_secret(&account, first, &rotated, Some(i64::MAX), 1).await.expect("overlap");
    endpoints.push(behaviours::TestEndpoint { record: endpoints[0].record.clone(), secret: rotated });
    assert_eq!(store.reseal_secrets(&other_sealer()).await.expect("reseal"), 3);
    (account, endpoints)
}

/// After a rotation the new key opens every secret unchanged, the first endpoint's
/// previous one (still in its overlap) included. `endpoints` ends with the first
/// endpoint again, holding its current secret.
async fn assert_rotated(store: &dyn Store, account: &AccountId, endpoints: &[behaviours::TestEndpoint]) {
    let (first, others, current) = (&endpoints[0], &endpoints[1..3], &endpoints[3]);
    for endpoint in others.iter().chain([current]) {
        let read = behaviours::stored_secret(store, account, &endpoint.endpoint_id).await;
        assert_eq!(read, endpoint.secret, "the same secret under the new key");
    }
    let event = behaviours::event_of(account, "avatar_video.success", Some("entity-0"));
    store.publish_events(&[event]).await.expect("publish");
    let claimed = store.claim_due(i64::MAX - 1, ClaimLimits::new(10, 8), i64::MAX).await.expect("claim");
    let to_first =
        claimed.iter().find(|c| c.endpoint_id.as_ref() == Some(&first.endpoint_id)).expect("first");
    assert_eq!(to_first.previous_secret, Some((first.secret.clone(), i64::MAX)), "the overlap's secret too");
}

#[tokio::test]
async fn sqlite_rotation_moves_every_secret_to_the_new_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&path, sealer()).await.expect("open");
    let (account, endpoints) = rotate(&store).await;
    store.close().await;

    let refused = SqliteStore::open(&path, sealer()).await;
    assert!(matches!(refused, Err(StoreError::WrongMasterKey)), "the old key is refused now");
    let reopened = SqliteStore::open(&path, other_sealer()).await.expect("the new key opens it");
    assert_rotated(&reopened, &account, &endpoints).await;
    reopened.close().await;
}

#[tokio::test]
async fn postgres_rotation_moves_every_secret_to_the_new_key() {
    let Some(server) = hookd_store::test_server_url() else { return };
    let database = ScratchDatabase::create(&server).await.expect("scratch database");
    let options = PostgresOptions::default();
    let store = PostgresStore::connect(database.url(), &options, sealer()).await.expect("open");
    let (account, endpoints) = rotate(&store).await;
    store.close().await;

    let refused = PostgresStore::connect(database.url(), &options, sealer()).await;
    assert!(matches!(refused, Err(StoreError::WrongMasterKey)), "the old key is refused now");
    let reopened = PostgresStore::connect(database.url(), &options, other_sealer()).await.expect("new key");
    assert_rotated(&reopened, &account, &endpoints).await;
    reopened.close().await;
    database.drop_database().await.expect("drop the scratch database");
}
