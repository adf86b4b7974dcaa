//! The SQLite store: one file under the data directory, WAL mode, `synchronous=FULL`.
//!
//! Writes go through a pool of exactly one connection, so SQLite never has two writers
//! racing for its lock (which would surface as `SQLITE_BUSY` under load); reads use
//! their own pool and, thanks to WAL, never wait for the writer.

mod accounts;
mod deliveries;
mod endpoints;
mod events;
mod idempotency;
mod settings;
mod videos;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use hookd_core::SecretSealer;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

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
            .connect_with(options.clone())
            .await?;
        MIGRATIONS.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await?;
        let store = Self { writer, reader, sealer };
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
