//! The SQLite store: one file under the data directory, WAL mode, `synchronous=FULL`.
//!
//! The delivery path's writes (publishes, claims, outcomes) run on the write engine's
//! own thread ([`engine`]); the rest go through a sqlx pool of exactly one connection,
//! which is also the engine's turn to write, so SQLite never has two writers racing
//! for its lock. Reads use their own pool and, thanks to WAL, never wait for a writer.

mod accounts;
mod deliveries;
mod delivery_settings;
mod endpoints;
mod engine;
mod event_log;
mod events;
mod idempotency;
mod operational;
mod portal;
mod publish;
mod queue;
mod settings;
mod videos;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hookd_core::SecretSealer;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use self::engine::WriteEngine;
use crate::StoreResult;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const READ_CONNECTIONS: u32 = 4;

/// hookd's data in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    engine: Arc<WriteEngine>,
    /// Seals endpoint secrets before they are written and opens them when read.
    sealer: SecretSealer,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // The engine takes this connection for every transaction it runs: a ping
            // each time would be a round trip to sqlx's thread, what the engine avoids.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATIONS.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            // A connection to a local file does not go stale; a ping before each read
            // would double its round trips to sqlx's thread.
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await?;
        let engine = Arc::new(WriteEngine::start(options.get_filename(), writer.clone())?);
        let store = Self { writer, reader, engine, sealer, availability: Arc::default() };
        store.prepare_sealing().await?;
        Ok(store)
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
