//! The SQLite store: one file under the data directory, WAL mode, `synchronous=FULL`.
//!
//! Writes go through a pool of exactly one connection, so SQLite never has two writers
//! racing for its lock (which would surface as `SQLITE_BUSY` under load); reads use
//! their own pool and, thanks to WAL, never wait for the writer.

mod accounts;
mod deliveries;
mod delivery_settings;
mod endpoints;
mod event_log;
mod events;
mod idempotency;
mod operational;
mod portal;
mod settings;
mod videos;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hookd_core::SecretSealer;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::StoreResult;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const READ_CONNECTIONS: u32 = 4;

/// hookd's data in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Seals endpoint secrets before they are written and opens them when read.
    sealer: SecretSealer,
    /// Set while the writer runs with `synchronous = NORMAL` (see [`Self::lower_sync`]);
    /// the pool puts FULL back before anyone else gets the connection.
    sync_lowered: Arc<AtomicBool>,
    availability: Arc<crate::Availability>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, applies migrations and
    /// checks that `sealer`'s master key is the one the secrets were sealed with.
    pub async fn open(path: &Path, sealer: SecretSealer) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options, sealer).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn open_url(url: &str, sealer: SecretSealer) -> StoreResult<Self> {
        Self::open_with(SqliteConnectOptions::from_str(url)?, sealer).await
    }

    async fn open_with(options: SqliteConnectOptions, sealer: SecretSealer) -> StoreResult<Self> {
        keep_private(options.get_filename()).map_err(sqlx::Error::Io)?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL syncs the WAL on every commit: an acknowledged write survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let sync_lowered = Arc::new(AtomicBool::new(false));
        let lowered = sync_lowered.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Runs whenever the connection goes back to the pool, also when the task
            // that lowered it was cancelled mid-transaction; if it fails, the pool
            // closes the connection and opens a new one at FULL.
            .after_release(move |connection, _| {
                let lowered = lowered.clone();
                Box::pin(async move {
                    if lowered.swap(false, Ordering::SeqCst) {
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await?;
        MIGRATIONS.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await?;
        let store = Self { writer, reader, sealer, sync_lowered, availability: Arc::default() };
        store.prepare_sealing().await?;
        Ok(store)
    }

    /// Sets the writer connection to `synchronous = NORMAL` until it goes back to the
    /// pool, for a transaction whose loss in a power failure costs nothing: its commit
    /// skips the WAL fsync (the next FULL commit syncs it along, so durable writes still
    /// land in order). An operating system crash can undo it; a hookd crash cannot, the
    /// WAL being in the page cache.
    async fn lower_sync(&self, writer: &mut PoolConnection<Sqlite>) -> StoreResult<()> {
        // Flag first: if this is cancelled after the pragma, the release still restores.
        self.sync_lowered.store(true, Ordering::SeqCst);
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut **writer).await?;
        Ok(())
    }

    /// Closes both pools, waiting for running statements.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`: one bound parameter
/// however many ids. Ids are hex, so nothing in them needs escaping.
fn json_array(ids: impl Iterator<Item = impl std::fmt::Display>) -> String {
    let quoted: Vec<String> = ids.map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// The database holds every payload and the sealed endpoint secrets: readable by its
/// owner only, like the key files beside it. A new file is created 0600 (SQLite gives
/// its `-wal` and `-shm` files the database's mode); an older one is tightened.
fn keep_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Ok(());
        }
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hookd_core::{MasterKey, SecretSealer};

    use super::*;
    use crate::DeliveryStore;

    /// `PRAGMA synchronous` on the writer: 2 is FULL, 1 is NORMAL.
    async fn writer_sync_level(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.writer).await.expect("pragma")
    }

    async fn store_in(dir: &tempfile::TempDir) -> SqliteStore {
        let sealer = SecretSealer::new(&MasterKey::generate());
        SqliteStore::open(&dir.path().join("hookd.db"), sealer).await.expect("open")
    }

    #[tokio::test]
    async fn the_writer_is_back_at_full_sync_after_a_claim() {
        use hookd_core::{
            ApiKey, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl, EventFilter, EventId,
        };

        use crate::{AccountStore, Endpoint, EndpointStore, Event, EventStore};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_in(&dir).await;
        let account_id = store.create_account("a", &ApiKey::generate(), 1).await.expect("account").account_id;
        let endpoint = Endpoint {
            endpoint_id: EndpointId::new_random(),
            account_id: account_id.clone(),
            url: EndpointUrl::from_stored("https://example.com/hook".into()),
            events: EventFilter::All,
            entity_id: None,
            status: EndpointStatus::Enabled,
            created_at: 1,
        };
        store.create_endpoint(&endpoint, &EndpointSecret::generate()).await.expect("endpoint");
        let event = Event {
            event_id: EventId::new_time_ordered(1),
            account_id,
            event_type: "avatar_video.success".into(),
            entity_id: None,
            event_data: "{}".into(),
            callback_url: None,
            callback_id: None,
            created_at: 1,
            traceparent: None,
        };
        store.publish_events(&[event]).await.expect("publish");
        assert_eq!(writer_sync_level(&store).await, 2);
        assert_eq!(store.claim_due(10, crate::ClaimLimits::new(10, 8), 100).await.expect("claim").len(), 1);
        assert_eq!(writer_sync_level(&store).await, 2, "what follows a claim is synced again");
    }

    #[tokio::test]
    async fn the_writer_is_back_at_full_sync_when_a_lowered_transaction_is_abandoned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_in(&dir).await;
        let mut writer = store.writer.acquire().await.expect("writer");
        store.lower_sync(&mut writer).await.expect("lowered");
        let level: i64 =
            sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *writer).await.expect("pragma");
        assert_eq!(level, 1);
        let tx = sqlx::Connection::begin(&mut *writer).await.expect("begin");
        drop(tx);
        drop(writer);
        assert_eq!(writer_sync_level(&store).await, 2);
    }
}
