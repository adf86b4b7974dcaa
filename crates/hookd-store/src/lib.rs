//! hookd's storage: the [`Store`] trait and its two implementations, [`SqliteStore`]
//! (one process, one file) and [`PostgresStore`] (any number of instances sharing one
//! database). Behaviours are specified once, by the conformance suite in `tests/store`,
//! and both implementations pass it.
//!
//! Invariants: this is the only crate that contains SQL. Customer data is reachable
//! only through methods that take the owning [`AccountId`] first, and another
//! account's id is answered exactly like a missing one ([`StoreError::NotFound`]).
//! Every write that a caller acknowledges is committed (SQLite: WAL, `synchronous=FULL`;
//! PostgreSQL: `synchronous_commit` as the server is configured, `on` by default)
//! before the method returns.

mod availability;
mod event_log;
mod model;
mod operational;
mod pacing;
mod postgres;
mod rows;
mod schema;
mod scratch;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use hookd_core::{
    AccountId, ApiKey, ApiKeyId, CursorKey, DeliveryId, DeliverySettings, EndpointId, EndpointSecret,
    EventId, PortalSessionId, PublicationRules, RecoveryWindow, SecretSealer, TokenHash, VideoId,
    VideoStatus,
};

pub use availability::{Availability, within};
pub use model::*;
pub use postgres::{PostgresOptions, PostgresStore};
pub use scratch::{ScratchDatabase, TEST_DATABASE_URL_VAR, test_server_url};
pub use sqlite::SqliteStore;

/// Errors a store method can return.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record, or it belongs to another account.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached right now (connection lost, pool exhausted);
    /// retrying later may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// The database did not answer within the caller's bound ([`within`]).
    #[error("the database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The store, or the queue in front of it, is closed: the server is stopping.
    #[error("the store is closed")]
    Closed,
    /// A write referred to something that does not exist (e.g. an unknown account).
    #[error("referenced record does not exist")]
    MissingReference,
    /// The database answered with an error.
    #[error("database error")]
    Database(#[source] BoxError),
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value no longer parses; the database was changed outside hookd.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The master key is not the one this database's endpoint secrets were sealed with.
    #[error(
        "the master key does not open this database's endpoint secrets: start hookd with the key it was first started with (--master-key, HOOKD_MASTER_KEY or DATA_DIR/master-key)"
    )]
    WrongMasterKey,
}

/// The driver's error behind [`StoreError::Unavailable`] and [`StoreError::Database`]:
/// sqlx's, or rusqlite's from the SQLite write engine.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(Box::new(error))
        } else {
            Self::Database(Box::new(error))
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let unavailable =
            error.sqlite_error().is_some_and(|failure| sqlite_code_is_unavailable(failure.extended_code));
        if unavailable { Self::Unavailable(Box::new(error)) } else { Self::Database(Box::new(error)) }
    }
}

/// Whether an error says the database cannot be reached now rather than that the
/// statement is wrong: a lost or refused connection, an exhausted pool, a server that
/// is shutting down, starting up or out of resources, or a disk that is full or
/// read-only.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            db.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(sqlite_code_is_unavailable)
        }
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
            // 57P0x (operator intervention: shutdown, cannot connect now).
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
        }),
        // A connection that died mid-protocol surfaces as a protocol error.
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Whether a SQLite result code (extended; its low byte is the primary code) says the
/// disk is full, read-only, failing or the file cannot be opened. Freeing space or
/// fixing permissions lets the next write through without a restart.
fn sqlite_code_is_unavailable(extended_code: i32) -> bool {
    use rusqlite::ffi::{SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY};
    matches!(extended_code & 0xff, SQLITE_READONLY | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN)
}

impl StoreError {
    /// Whether the database could not be reached (now): retrying later may succeed,
    /// and the caller answers 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::TimedOut(_) | Self::Closed)
    }

    /// A secret the current key cannot open although the key check passed: the row
    /// was damaged. A master key rotation stops rather than carry it over.
    pub(crate) fn unopenable_secret(endpoint_id: &str) -> Self {
        Self::Corrupt(format!("endpoint {endpoint_id}'s secret does not open under the current master key"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An error and its causes on one line, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    use std::fmt::Write;
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(chain, ": {cause}");
        source = cause.source();
    }
    chain
}

/// Server-wide settings and first-start bootstrap.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether the database answered the last caller who could tell; callers report
    /// what they saw to it, so an outage is logged once.
    fn availability(&self) -> &Availability;
    /// Whether other hookd processes may be using this database at the same time.
    fn shared(&self) -> bool;
    /// Closes the connections, waiting for running statements.
    async fn close(&self);
    /// The key that signs pagination cursors, created on first use.
    async fn cursor_key(&self) -> StoreResult<CursorKey>;
    /// The stored admin token hash, if a token was generated earlier.
    async fn admin_token_hash(&self) -> StoreResult<Option<TokenHash>>;
    /// Saves the admin token hash unless one is stored; returns whether it was saved.
    async fn save_admin_token_hash(&self, hash: &TokenHash) -> StoreResult<bool>;
    /// On an empty database, creates account `default` with `key`, atomically.
    /// Returns the account if it was created, `None` if any account already existed.
    async fn bootstrap_default_account(&self, key: &ApiKey, now: UnixMillis) -> StoreResult<Option<Account>>;
    /// Master key rotation: re-seals every endpoint secret under `next` and makes
    /// `next` the key the database accepts, in one transaction. Returns how many
    /// secrets were re-sealed. This store keeps its old key: open the database again
    /// with the new one. Every other hookd on the database must be stopped first.
    async fn reseal_secrets(&self, next: &SecretSealer) -> StoreResult<u64>;
    /// The transactional outbox, on a database that has one (PostgreSQL).
    fn outbox(&self) -> Option<Arc<dyn OutboxStore>>;
}

/// Accounts and their API keys (operator API and customer auth).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_account(&self, name: &str, key: &ApiKey, now: UnixMillis) -> StoreResult<Account>;
    async fn add_api_key(&self, account_id: &AccountId, key: &ApiKey, now: UnixMillis) -> StoreResult<()>;
    async fn revoke_api_key(&self, key_id: &ApiKeyId, now: UnixMillis) -> StoreResult<()>;
    async fn find_api_key(&self, key_id: &ApiKeyId) -> StoreResult<Option<StoredApiKey>>;
    /// Which of these accounts exist.
    async fn existing_accounts(&self, account_ids: &[AccountId]) -> StoreResult<Vec<AccountId>>;
}

/// Webhook endpoints, always scoped to their account.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Stores a new endpoint with its signing secret (sealed at rest).
    async fn create_endpoint(&self, endpoint: &Endpoint, secret: &EndpointSecret) -> StoreResult<()>;
    /// An endpoint as customers see it: without its secret, which only create and
    /// rotate show and only a send needs.
    async fn get_endpoint(&self, account_id: &AccountId, endpoint_id: &EndpointId) -> StoreResult<Endpoint>;
    /// The endpoint's secrets, opened, for signing a one-off send (the dispatcher's
    /// claims carry theirs): the current one, and the one a rotation with overlap
    /// replaced, with the end of its overlap.
    async fn endpoint_secret(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<EndpointSecrets>;
    async fn list_endpoints(&self, account_id: &AccountId, page: PageRequest) -> StoreResult<Page<Endpoint>>;
    async fn update_endpoint(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        patch: &EndpointPatch,
        now: UnixMillis,
    ) -> StoreResult<Endpoint>;
    async fn delete_endpoint(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Replaces the endpoint's secret. With `overlap_until`, the secret it replaces
    /// keeps signing beside it until then (a rotation during an earlier overlap ends
    /// that one: only the secret just replaced is kept); without, it stops at once.
    async fn rotate_endpoint_secret(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        secret: &EndpointSecret,
        overlap_until: Option<UnixMillis>,
        now: UnixMillis,
    ) -> StoreResult<()>;
}

/// The event history.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Publishes events in one transaction: each event and one pending delivery per
    /// matching endpoint (enabled; subscribed to the type; same `entity_id` if the
    /// endpoint has one) plus one for its callback URL. All are stored or none.
    /// Returns the number of deliveries of each event, in order.
    async fn publish_events(&self, events: &[Event]) -> StoreResult<Vec<usize>>;
    async fn list_events(
        &self,
        account_id: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>>;
    /// How many events of each type the account's history holds (for `/metrics`, of
    /// the operations account's). Reads an index, not the events.
    async fn count_events_by_type(&self, account_id: &AccountId) -> StoreResult<Vec<(String, i64)>>;
    /// One retention batch: deletes up to `batch` deliveries created before `before`
    /// (with their attempts) that are not in flight at `now`, then up to `batch`
    /// events created before `before` that have no delivery left. Short transactions,
    /// so neither publishing nor the dispatcher waits long; call it until
    /// [`Pruned::is_less_than`] the batch. Safe to run on several instances at once.
    async fn prune_history(&self, before: UnixMillis, now: UnixMillis, batch: u32) -> StoreResult<Pruned>;
}

/// What the customer portal reads beside the HeyGen routes: the event log with its
/// deliveries' states, one event, and an endpoint's recent health. Scoped to the
/// account like every customer read.
#[async_trait]
pub trait EventLogStore: Send + Sync {
    /// The account's events, newest first, with how their deliveries stand. Walks the
    /// account's events by index from the page position, bounded by the time range; a
    /// status filter reads the account's deliveries in that state once.
    async fn event_log(
        &self,
        account_id: &AccountId,
        query: &EventLogQuery,
        page: PageRequest,
    ) -> StoreResult<Page<EventLogEntry>>;
    /// One of the account's events.
    async fn get_event(&self, account_id: &AccountId, event_id: &EventId) -> StoreResult<Event>;
    /// The endpoint's attempts in the 24 hours before `now`, hour by hour, and when it
    /// last succeeded and failed. A deleted or another account's endpoint is `NotFound`.
    async fn endpoint_health(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<EndpointHealth>;
    /// For a list of endpoints at once: each one's succeeded and failed attempts in the
    /// 24 hours before `now`. Endpoints without attempts, deleted or of another account
    /// are left out.
    async fn recent_outcomes(
        &self,
        account_id: &AccountId,
        endpoint_ids: &[EndpointId],
        now: UnixMillis,
    ) -> StoreResult<Vec<(EndpointId, u32, u32)>>;
}

/// The delivery queue and its history.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Leases due deliveries until `lease_until`, oldest due first, within `limits`,
    /// and within each endpoint's delivery settings: a `fifo` endpoint's only candidate
    /// is its oldest pending delivery, and only while no other of its deliveries is
    /// leased; a rate-limited endpoint gets no more than its limit admits at `now`
    /// (shared by every instance: the admission is written in the same transaction).
    async fn claim_due(
        &self,
        now: UnixMillis,
        limits: ClaimLimits,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records attempts and their deliveries' new states in one transaction, and
    /// disables endpoints whose failures began before `disable_before`.
    async fn record_outcomes(
        &self,
        outcomes: &[AttemptOutcome],
        disable_before: UnixMillis,
    ) -> StoreResult<()>;
    /// When the earliest pending delivery is due (leased ones: when the lease lapses).
    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>>;
    /// Makes every leased delivery due now. Only for a database owned by one process,
    /// at its start, when no lease can belong to a live worker (see
    /// [`SettingsStore::shared`]).
    async fn release_all_leases(&self, now: UnixMillis) -> StoreResult<u64>;
    /// Gives back claims that were never attempted (at a graceful stop, or when their
    /// destination's circuit breaker opened): each `(delivery, lease_until)` whose
    /// lease is still the one given becomes due at `due_at`, for any instance to take.
    /// A lease that lapsed and was claimed again meanwhile is left alone. Returns how
    /// many were released.
    async fn release_claims(
        &self,
        claims: &[(DeliveryId, UnixMillis)],
        due_at: UnixMillis,
    ) -> StoreResult<u64>;
    /// Signals that new deliveries were committed, by any process sharing the
    /// database; `None` where only this process writes (it wakes itself).
    async fn watch_new_deliveries(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>>;
    async fn queue_depth(&self, now: UnixMillis) -> StoreResult<QueueDepth>;
    /// The deliveries of one of the account's events, oldest first, with attempts.
    async fn list_deliveries(
        &self,
        account_id: &AccountId,
        event_id: &EventId,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Schedules a new delivery of the event now: to `endpoint_id`, or to every live
    /// endpoint (and callback) it was delivered to before. Returns how many.
    async fn resend(
        &self,
        account_id: &AccountId,
        event_id: &EventId,
        endpoint_id: Option<&EndpointId>,
        now: UnixMillis,
    ) -> StoreResult<usize>;
    /// Puts every delivery to the endpoint that ended `failed` within `window` back to
    /// pending, due now, with a fresh retry schedule (its attempts so far stay in its
    /// history); with `dry_run`, only counts them. Delivered, pending and cancelled
    /// deliveries are untouched, so running it twice sends nothing twice. Returns how
    /// many. A deleted or another account's endpoint is `NotFound`.
    async fn recover_failed(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        window: RecoveryWindow,
        dry_run: bool,
        now: UnixMillis,
    ) -> StoreResult<u64>;
}

/// Per-endpoint delivery settings (ordering, rate limit) and the queue they shape.
/// Scoped to the account like [`EndpointStore`]; a deleted or another account's
/// endpoint is `NotFound`.
#[async_trait]
pub trait DeliverySettingsStore: Send + Sync {
    async fn delivery_settings(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<DeliverySettings>;
    /// Replaces the settings. Switching `fifo` off releases the queue at once.
    async fn set_delivery_settings(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        settings: DeliverySettings,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// The endpoint's oldest pending delivery, if any.
    async fn queue_head(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
    ) -> StoreResult<Option<QueueHead>>;
    /// Marks the endpoint's oldest pending delivery failed (an attempt in flight still
    /// has its attempt recorded, but does not bring it back), so the next may go.
    /// Returns what was skipped.
    async fn skip_queue_head(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        now: UnixMillis,
    ) -> StoreResult<Option<QueueHead>>;
}

/// Customer portal sessions. Tokens are kept as hashes and compared in constant time.
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Stores a new, unredeemed session with its one-time link's hash. An unknown
    /// account (or the operations account) is `NotFound`.
    async fn create_portal_session(&self, session: &PortalSession, link_hash: &TokenHash) -> StoreResult<()>;
    /// Redeems the link once: if `link_hash` is the session's, and it is unredeemed,
    /// unrevoked and unexpired at `now`, stores `credential_hash` and returns the
    /// session; otherwise `None` (used, expired, revoked or unknown alike).
    async fn redeem_portal_link(
        &self,
        session_id: &PortalSessionId,
        link_hash: &TokenHash,
        credential_hash: &TokenHash,
        now: UnixMillis,
    ) -> StoreResult<Option<PortalSession>>;
    /// A redeemed session that is live at `now`, with its credential's hash.
    async fn find_portal_session(
        &self,
        session_id: &PortalSessionId,
        now: UnixMillis,
    ) -> StoreResult<Option<(PortalSession, TokenHash)>>;
    /// Ends a session (or an unredeemed link) at once. An unknown one is `NotFound`.
    async fn revoke_portal_session(&self, session_id: &PortalSessionId, now: UnixMillis) -> StoreResult<()>;
    /// Deletes sessions that ended (expired) before `ended_before`; returns how many.
    async fn prune_portal_sessions(&self, ended_before: UnixMillis) -> StoreResult<u64>;
}

/// A stream of "rows were committed" signals from other processes: new deliveries
/// for the dispatcher, new outbox rows for the outbox's consumer.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Waits for the next signal. After a lost connection it reconnects and returns
    /// at once, since signals sent meanwhile were missed.
    async fn next(&mut self) -> StoreResult<()>;
}

/// The transactional outbox (PostgreSQL): rows producers insert in their own
/// transactions, published by hookd once each (docs/outbox.md).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Signals the commit of a transaction that inserted rows, while some consumer
    /// said it waits ([`OutboxStore::set_outbox_waiting`]).
    async fn watch_outbox(&self) -> StoreResult<Box<dyn ChangeFeed>>;
    /// Takes up to `limit` of the oldest rows no other instance holds and, in one
    /// transaction, publishes those that pass `rules` and name an existing account
    /// (deliveries included, as [`EventStore::publish_events`] would), counts a repeat
    /// of a published idempotency key as a duplicate, moves the rest to the rejected
    /// table with the reason, and deletes them all.
    async fn drain_outbox(
        &self,
        rules: &PublicationRules,
        limit: u32,
        now: UnixMillis,
    ) -> StoreResult<OutboxDrained>;
    /// Tells producers' trigger whether a consumer waits for a notification (true) or
    /// every consumer woken is busy draining (false), so a commit notifies only when
    /// someone needs waking.
    async fn set_outbox_waiting(&self, waiting: bool) -> StoreResult<()>;
    /// Clears what taken rows leave behind (`VACUUM`), unless another instance is at
    /// it. A take walks every row deleted since the last vacuum, and autovacuum comes
    /// by only once a minute at best: on the benchmark machine, 119,000 such rows made
    /// each take read 32,000 pages (120-180 ms) where 900 pages do after a vacuum.
    async fn vacuum_outbox(&self) -> StoreResult<()>;
    /// Rows waiting and rows rejected so far, for `/metrics`.
    async fn outbox_depth(&self, now: UnixMillis) -> StoreResult<OutboxDepth>;
}

/// Video jobs.
#[async_trait]
pub trait VideoStore: Send + Sync {
    async fn create_video(&self, video: &Video) -> StoreResult<()>;
    async fn get_video(&self, account_id: &AccountId, video_id: &VideoId) -> StoreResult<Video>;
    /// For renderers (the operator API): any account's video.
    async fn find_video(&self, video_id: &VideoId) -> StoreResult<Video>;
    /// Videos in `status` (all if `None`), newest first, across accounts.
    async fn list_videos(&self, status: Option<VideoStatus>, page: PageRequest) -> StoreResult<Page<Video>>;
    /// Applies `update` if the video is still in `update.expected`, publishing its event
    /// (with deliveries) in the same transaction. Returns the number of deliveries, or
    /// `None` if the video had moved on meanwhile (read it again and re-decide).
    async fn update_video(
        &self,
        video_id: &VideoId,
        update: &VideoUpdate,
        now: UnixMillis,
    ) -> StoreResult<Option<usize>>;
}

/// Stored responses for `Idempotency-Key`.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims `scope` for a new request, or says why not. A record older than
    /// `expire_before` is treated as absent; an in-progress one locked before
    /// `stale_before` is taken over (its request died with a crash).
    async fn claim_idempotency(
        &self,
        scope: &IdempotencyScope,
        request_hash: &str,
        now: UnixMillis,
        expire_before: UnixMillis,
        stale_before: UnixMillis,
    ) -> StoreResult<IdempotencyClaim>;
    async fn complete_idempotency(
        &self,
        scope: &IdempotencyScope,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()>;
    /// Forgets a claim whose request failed on our side, so the client can retry.
    async fn abandon_idempotency(&self, scope: &IdempotencyScope) -> StoreResult<()>;
    /// Deletes records created before `expire_before`; returns how many.
    async fn prune_idempotency(&self, expire_before: UnixMillis) -> StoreResult<u64>;
}

/// Everything hookd keeps. One implementation per database.
pub trait Store:
    SettingsStore
    + AccountStore
    + EndpointStore
    + EventStore
    + EventLogStore
    + DeliveryStore
    + DeliverySettingsStore
    + PortalStore
    + VideoStore
    + IdempotencyStore
{
}

impl<T> Store for T where
    T: SettingsStore
        + AccountStore
        + EndpointStore
        + EventStore
        + EventLogStore
        + DeliveryStore
        + DeliverySettingsStore
        + PortalStore
        + VideoStore
        + IdempotencyStore
{
}
