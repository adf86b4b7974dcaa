//! The PostgreSQL store, for several hookd instances sharing one database.
//!
//! What differs from SQLite, and why: writers run concurrently, so every
//! read-then-write that SQLite's single writer made atomic is a single statement here
//! (`INSERT .. ON CONFLICT`, conditional `UPDATE`) or takes a row lock; the dispatcher's
//! claim skips rows another instance is claiming (`FOR UPDATE SKIP LOCKED`); publishing
//! sends `NOTIFY` in its transaction so every instance's dispatcher wakes at commit;
//! and housekeeping that one instance is enough for takes a transaction-scoped advisory
//! lock, so N instances do it once.

mod accounts;
mod deliveries;
mod delivery_settings;
mod endpoints;
mod event_log;
mod events;
mod idempotency;
mod operational;
mod outbox;
mod portal;
mod settings;
mod videos;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use hookd_core::SecretSealer;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::{ChangeFeed, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel publishing notifies and dispatchers listen on.
const NEW_DELIVERIES_CHANNEL: &str = "hookd_new_deliveries";

/// Advisory lock keys (one namespace, hookd's): only one instance at a time runs each
/// housekeeping duty.
#[derive(Debug, Clone, Copy)]
#[repr(i64)]
enum Duty {
    Bootstrap = 0x686f_6f6b_6400_0001,
    PruneHistory = 0x686f_6f6b_6400_0002,
    PruneIdempotency = 0x686f_6f6b_6400_0003,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections this instance may hold (the server's `max_connections` is shared by
    /// every instance).
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(2) }
    }
}

/// hookd's data in a PostgreSQL database that other instances may share.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Seals endpoint secrets before they are written and opens them when read.
    sealer: SecretSealer,
    availability: std::sync::Arc<crate::Availability>,
}

impl PostgresStore {
    /// Connects to `url`, applies migrations (under the migrator's advisory lock, so
    /// instances starting together migrate once) and checks that `sealer`'s master key
    /// is the one the secrets were sealed with (every instance needs the same key).
    pub async fn connect(url: &str, options: &PostgresOptions, sealer: SecretSealer) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url)?.application_name("hookd");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // A connection that died with a server restart is noticed and replaced
            // before a request uses it.
            .test_before_acquire(true)
            .connect_with(connect)
            .await?;
        MIGRATIONS.run(&pool).await?;
        let store = Self { pool, sealer, availability: Default::default() };
        store.prepare_sealing().await?;
        Ok(store)
    }

    /// Closes the pool, waiting for running statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the duty's advisory lock for the rest of the transaction, if no other
/// instance holds it.
async fn try_duty(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, duty: Duty) -> StoreResult<bool> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(duty as i64)
        .fetch_one(&mut **tx)
        .await?;
    Ok(locked)
}

/// Ids as a `TEXT[]` parameter, for `= ANY($1)`: one bound value however many ids.
fn id_array(ids: impl Iterator<Item = impl ToString>) -> Vec<String> {
    ids.map(|id| id.to_string()).collect()
}

/// `LISTEN` on a connection of its own.
struct NotifyFeed {
    listener: PgListener,
}

impl NotifyFeed {
    async fn listen(pool: &PgPool, channel: &str) -> StoreResult<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Self { listener })
    }
}

#[async_trait]
impl ChangeFeed for NotifyFeed {
    async fn next(&mut self) -> StoreResult<()> {
        // `try_recv` returns `None` when the connection was lost; the next call
        // reconnects and listens again. Either way the caller should look for work.
        self.listener.try_recv().await?;
        Ok(())
    }
}
