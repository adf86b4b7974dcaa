//! The SQLite write engine: one thread owns a write connection and runs each unit of
//! work handed to it (a publish group, a claim, a batch of outcomes) whole, with cached
//! prepared statements. A unit costs one hand-off between threads, where a statement
//! through sqlx costs a round trip to sqlx's own SQLite thread, two wake-ups each:
//! that scheduling was 40 % of hookd's profile when it published one event per request
//! (issue 16's profile).
//!
//! Units that queue while a transaction runs share the next one (group commit across
//! kinds of work): each runs in its own savepoint, so one that fails is rolled back
//! alone, and one commit, one WAL fsync, covers all of them. Every caller is answered
//! only after that commit. If the commit itself fails, each unit runs again alone, so
//! one unit's failure is never another's.
//!
//! The cold writes (accounts, endpoints, settings) still go through sqlx's writer
//! pool of one connection. That connection is the write turn: the engine holds it for
//! each transaction, so the two writers never race for SQLite's lock (a race surfaces
//! as `SQLITE_BUSY`, or as a transaction that cannot upgrade to a writer), and the
//! pool's fair queue means neither starves the other.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// Units in one transaction at most: bounds the time its callers wait for it.
const MAX_UNITS: usize = 256;
/// Prepared statements kept per connection; the hot path uses about twenty.
const STATEMENT_CACHE: usize = 64;

/// What a unit's commit must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// A power failure: the WAL is synced at commit (`synchronous = FULL`).
    PowerLoss,
    /// A crash of hookd, not of the operating system (`synchronous = NORMAL`): for
    /// writes whose loss costs nothing, like a lease. A later synced commit syncs them
    /// along, so durable writes still land in order.
    ProcessCrash,
}

/// Work that runs inside the engine's open transaction. It must not commit or roll
/// back: the engine owns the transaction. It may run twice (see the module docs), so
/// it borrows what it writes rather than consuming it.
pub(super) type Work<R> = Box<dyn FnMut(&Connection) -> StoreResult<R> + Send>;

/// The handle the store writes through. Dropping the last one ends the thread.
#[derive(Debug)]
pub(super) struct WriteEngine {
    units: mpsc::Sender<Box<dyn Unit>>,
}

impl WriteEngine {
    /// Opens the write connection on `path` and starts the thread. `turn` is the cold
    /// writers' pool of one connection (see the module docs).
    pub(super) fn start(path: &Path, turn: SqlitePool) -> StoreResult<Self> {
        let connection = open(path)?;
        let (units, queue) = mpsc::channel();
        let turn = WriteTurn { pool: turn, runtime: Handle::current() };
        std::thread::Builder::new()
            .name("hookd-sqlite-writer".into())
            .spawn(move || run(connection, turn, queue))
            .map_err(|error| StoreError::Database(Box::new(error)))?;
        Ok(Self { units })
    }

    /// Runs `work` in the next transaction and answers after its commit.
    pub(super) async fn write<R: Send + 'static>(
        &self,
        durability: Durability,
        work: impl FnMut(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (reply, answer) = oneshot::channel();
        let unit = Pending { work: Box::new(work) as Work<R>, durability, result: None, reply };
        self.units.send(Box::new(unit)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The file is already in WAL mode (sqlx opened and migrated it); these are per
    // connection.
    // temp_store: the claim's recursive queue is an ephemeral table; on the default
    // (a file) each claim created and unlinked one.
    connection
        .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    Ok(connection)
}

/// One queued unit of work with its caller's reply, its result type erased.
trait Unit: Send {
    fn durability(&self) -> Durability;
    /// The caller stopped waiting (a request answered 503 at its timeout): what it
    /// was told failed must not be written behind its back.
    fn abandoned(&self) -> bool;
    /// Runs the work; whether it succeeded (else its changes must be undone).
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller: the work's result if `committed`, else the commit's error.
    fn answer(self: Box<Self>, committed: StoreResult<()>);
}

struct Pending<R> {
    work: Work<R>,
    durability: Durability,
    result: Option<StoreResult<R>>,
    reply: oneshot::Sender<StoreResult<R>>,
}

impl<R: Send> Unit for Pending<R> {
    fn durability(&self) -> Durability {
        self.durability
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(&mut self, connection: &Connection) -> bool {
        // A unit that panics is rolled back and answered with an error; the thread
        // lives on, so one bad row cannot stop every later write.
        let work = std::panic::AssertUnwindSafe(|| (self.work)(connection));
        let result = std::panic::catch_unwind(work).unwrap_or_else(|_| {
            Err(StoreError::Database("a unit of the SQLite write engine panicked".into()))
        });
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, committed: StoreResult<()>) {
        let Self { result, reply, .. } = *self;
        let _ = reply.send(committed.and_then(|()| result.unwrap_or(Err(StoreError::Closed))));
    }
}

/// The cold writers' pool connection, held by the engine while it writes.
struct WriteTurn {
    pool: SqlitePool,
    runtime: Handle,
}

impl WriteTurn {
    fn take(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
        self.runtime.block_on(self.pool.acquire())
    }
}

fn run(connection: Connection, turn: WriteTurn, queue: mpsc::Receiver<Box<dyn Unit>>) {
    // A pool connection returns to its pool from a task: dropping one needs the runtime.
    let _runtime = turn.runtime.enter();
    let mut session = Session { connection, durability: Durability::PowerLoss };
    while let Ok(first) = queue.recv() {
        let mut units = vec![first];
        units.extend(queue.try_iter().take(MAX_UNITS - 1));
        match turn.take() {
            Ok(_turn) => {
                // Checked once the turn is ours: waiting for it is when callers give up.
                units.retain(|unit| !unit.abandoned());
                if !units.is_empty() {
                    session.commit_group(units);
                }
            }
            Err(error) => {
                for unit in units {
                    unit.answer(Err(match &error {
                        sqlx::Error::PoolClosed => StoreError::Closed,
                        // A cold writer held the turn past the pool's acquire timeout.
                        _ => StoreError::Unavailable(Box::new(sqlx::Error::PoolTimedOut)),
                    }));
                }
            }
        }
    }
}

struct Session {
    connection: Connection,
    /// The connection's `synchronous` level now.
    durability: Durability,
}

impl Session {
    fn commit_group(&mut self, mut units: Vec<Box<dyn Unit>>) {
        if units.len() == 1 {
            if let Some(unit) = units.pop() {
                self.commit_alone(unit);
            }
            return;
        }
        let durability = if units.iter().any(|unit| unit.durability() == Durability::PowerLoss) {
            Durability::PowerLoss
        } else {
            Durability::ProcessCrash
        };
        let group = self.transaction(durability, |connection| {
            for unit in &mut units {
                connection.prepare_cached("SAVEPOINT unit")?.execute([])?;
                if !unit.run(connection) {
                    connection.prepare_cached("ROLLBACK TO unit")?.execute([])?;
                }
                connection.prepare_cached("RELEASE unit")?.execute([])?;
            }
            Ok(())
        });
        if group.is_ok() {
            for unit in units {
                unit.answer(Ok(()));
            }
        } else {
            // The group could not commit: alone, each unit meets its own fate.
            for unit in units {
                self.commit_alone(unit);
            }
        }
    }

    fn commit_alone(&mut self, mut unit: Box<dyn Unit>) {
        let committed = self.transaction(unit.durability(), |connection| {
            if unit.run(connection) { Ok(()) } else { Err(Failure::Undone) }
        });
        unit.answer(committed.or_else(Failure::into_answer));
    }

    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT`, rolling back if it fails.
    fn transaction(
        &mut self,
        durability: Durability,
        body: impl FnOnce(&Connection) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if durability != self.durability {
            let level = match durability {
                Durability::PowerLoss => "PRAGMA synchronous = FULL",
                Durability::ProcessCrash => "PRAGMA synchronous = NORMAL",
            };
            self.connection.execute_batch(level)?;
            self.durability = durability;
        }
        self.connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let outcome = body(&self.connection).and_then(|()| {
            self.connection.prepare_cached("COMMIT")?.execute([])?;
            Ok(())
        });
        if outcome.is_err() && !self.connection.is_autocommit() {
            // If even ROLLBACK fails, the next BEGIN reports why.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        outcome
    }
}

/// Why a transaction did not commit.
enum Failure {
    /// The unit's work failed; its own result carries the error.
    Undone,
    /// SQLite refused one of the engine's own statements (BEGIN, SAVEPOINT, COMMIT).
    Engine(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Engine(error)
    }
}

impl Failure {
    /// What [`Unit::answer`] is given: `Ok` when the unit's own result holds the error.
    fn into_answer(self) -> StoreResult<()> {
        match self {
            Self::Undone => Ok(()),
            Self::Engine(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::*;

    /// An engine on a fresh file with one table `t (n INTEGER UNIQUE)`, and its turn.
    async fn engine_in(dir: &tempfile::TempDir) -> (WriteEngine, SqlitePool) {
        let path = dir.path().join("engine.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let turn = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("pool");
        sqlx::query("CREATE TABLE t (n INTEGER UNIQUE)").execute(&turn).await.expect("table");
        (WriteEngine::start(&path, turn.clone()).expect("engine"), turn)
    }

    fn insert(n: i64) -> impl FnMut(&Connection) -> StoreResult<()> + Send + 'static {
        move |connection| {
            connection.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
            Ok(())
        }
    }

    async fn stored(turn: &SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(turn).await.expect("select")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_that_fails_is_undone_alone_and_the_rest_of_its_group_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, turn) = engine_in(&dir).await;
        // While the test holds the turn the engine waits, so these queue up together.
        let held = turn.acquire().await.expect("turn");
        let writes = async {
            tokio::join!(
                engine.write(Durability::PowerLoss, insert(1)),
                engine.write(Durability::PowerLoss, |connection: &Connection| {
                    connection.execute("INSERT INTO t (n) VALUES (2)", [])?;
                    // Breaks the UNIQUE constraint after a write of its own.
                    connection.execute("INSERT INTO t (n) VALUES (2)", [])?;
                    Ok(())
                }),
                engine.write(Durability::ProcessCrash, insert(3)),
            )
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        };
        let ((first, failed, third), ()) = tokio::join!(writes, release);
        assert!(first.is_ok() && third.is_ok(), "the others commit: {first:?} {third:?}");
        assert!(matches!(failed, Err(StoreError::Database(_))), "the failure is its own: {failed:?}");
        assert_eq!(stored(&turn).await, vec![1, 3], "none of the failed unit's writes is kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_whose_caller_stopped_waiting_is_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, turn) = engine_in(&dir).await;
        let held = turn.acquire().await.expect("turn");
        // The first unit keeps the engine waiting for the turn; the second is given up
        // while it waits in the queue.
        let first = engine.write(Durability::PowerLoss, insert(1));
        let given_up =
            tokio::time::timeout(Duration::from_millis(20), engine.write(Durability::PowerLoss, insert(2)));
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        };
        let (first, given_up, ()) = tokio::join!(first, given_up, release);
        assert!(first.is_ok());
        assert!(given_up.is_err(), "the caller stopped waiting");
        engine.write(Durability::PowerLoss, insert(3)).await.expect("a later write");
        assert_eq!(stored(&turn).await, vec![1, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_that_panics_is_undone_and_the_engine_writes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, turn) = engine_in(&dir).await;
        let panicked = engine
            .write(Durability::PowerLoss, |connection: &Connection| -> StoreResult<()> {
                connection.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("a bug in a unit of work");
            })
            .await;
        assert!(matches!(panicked, Err(StoreError::Database(_))), "{panicked:?}");
        engine.write(Durability::PowerLoss, insert(2)).await.expect("the next unit");
        assert_eq!(stored(&turn).await, vec![2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_work_that_may_be_lost_to_a_power_failure_skips_the_wal_sync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, _turn) = engine_in(&dir).await;
        let level = |durability| {
            engine.write(durability, |connection: &Connection| {
                Ok(connection.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))?)
            })
        };
        // `PRAGMA synchronous`: 2 is FULL (sync at every commit), 1 is NORMAL.
        assert_eq!(level(Durability::ProcessCrash).await.expect("lax"), 1);
        assert_eq!(level(Durability::PowerLoss).await.expect("durable"), 2);
        assert_eq!(level(Durability::ProcessCrash).await.expect("lax again"), 1);
    }
}
