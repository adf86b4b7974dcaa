//! The records the store reads and writes. Plain data: validation happened in
//! `hookd-core` types before a value reaches here.

use hookd_core::{
    AccountId, ApiKeyId, DeliveryId, DeliveryState, EndpointId, EndpointSecret, EndpointStatus, EndpointUrl,
    EntityId, EventFilter, EventId, PortalSessionId, TokenHash, VideoId, VideoStatus,
};

/// Unix time in milliseconds.
pub type UnixMillis = i64;

/// Wall-clock now. Read at the edges (handlers, the dispatcher) and passed into the
/// store, so store behaviour can be tested at any instant.
pub fn now_millis() -> UnixMillis {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: AccountId,
    pub name: String,
    pub created_at: UnixMillis,
}

/// The stored form of an API key: its hash, never its value.
#[derive(Debug, Clone)]
pub struct StoredApiKey {
    pub key_id: ApiKeyId,
    pub account_id: AccountId,
    pub key_hash: TokenHash,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub endpoint_id: EndpointId,
    pub account_id: AccountId,
    pub url: EndpointUrl,
    pub events: EventFilter,
    pub entity_id: Option<EntityId>,
    pub status: EndpointStatus,
    pub created_at: UnixMillis,
}

/// An endpoint's signing secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSecrets {
    pub current: EndpointSecret,
    /// The secret a rotation with overlap replaced, and until when it still signs.
    pub previous: Option<(EndpointSecret, UnixMillis)>,
}

/// What changes in a PATCH; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<EndpointUrl>,
    pub events: Option<EventFilter>,
    pub status: Option<EndpointStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: EventId,
    pub account_id: AccountId,
    pub event_type: String,
    pub entity_id: Option<String>,
    /// Compact JSON of the `event_data` object.
    pub event_data: String,
    /// A one-off destination for this event (unsigned), besides the matching endpoints.
    pub callback_url: Option<String>,
    pub callback_id: Option<String>,
    pub created_at: UnixMillis,
    /// The W3C `traceparent` of the publish that stored it, when hookd exports traces:
    /// its delivery attempts join that trace. Kept, never shown to customers.
    pub traceparent: Option<String>,
}

impl Event {
    /// A checked event, accepted by hookd at `now`: the time its id is ordered by and
    /// its deliveries are first due.
    pub fn accepted(valid: hookd_core::ValidEvent, now: UnixMillis) -> Self {
        Self {
            event_id: EventId::new_time_ordered(now),
            account_id: valid.account_id,
            event_type: valid.event_type,
            entity_id: valid.entity_id,
            event_data: valid.event_data,
            callback_url: valid.callback_url,
            callback_id: valid.callback_id,
            created_at: now,
            traceparent: None,
        }
    }
}

/// Filters of the event history.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub entity_id: Option<String>,
}

/// Filters of the event log (the portal's message log): the history's filters, a time
/// range over `created_at` (both ends included) and what became of the deliveries.
#[derive(Debug, Clone, Default)]
pub struct EventLogQuery {
    pub history: EventQuery,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// `Pending`, `Failed`, `Cancelled`: at least one delivery in that state.
    /// `Delivered`: at least one delivered and none pending or failed.
    pub status: Option<DeliveryState>,
}

/// How many of an event's deliveries stand in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u32,
    pub delivered: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// One line of the event log.
#[derive(Debug, Clone)]
pub struct EventLogEntry {
    pub event: Event,
    pub deliveries: DeliveryCounts,
}

/// One endpoint's attempts over the last day, for its health panel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The 24 hours up to now, oldest first; each starts on a whole hour.
    pub hours: Vec<HealthHour>,
    pub last_success_at: Option<UnixMillis>,
    pub last_failure_at: Option<UnixMillis>,
    /// When the current run of failures began (none after a success).
    pub failing_since: Option<UnixMillis>,
}

/// Attempts to an endpoint that started within one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthHour {
    pub start: UnixMillis,
    pub succeeded: u32,
    pub failed: u32,
}

/// Which page of a newest-first list to read.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Return only items older than this position (from a verified cursor).
    pub before: Option<i64>,
    pub limit: u32,
}

/// One page, and the position to continue from if there is more.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_before: Option<i64>,
}

/// Who sent an idempotent request and to where: a repeat must match all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    /// The account id, or `admin` for the operator API.
    pub owner: String,
    pub key: String,
    pub method: String,
    pub path: String,
}

/// A stored response, replayed to repeats of the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// SHA-256 of the first request's body, to tell a repeat that differs.
    pub request_hash: String,
}

/// What to do with an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First time (or the old record expired or was abandoned): do the work.
    Started,
    /// The first request with this key is still running.
    InProgress,
    /// Done before: answer with this.
    Replay(StoredResponse),
}

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub event_data: String,
    /// The endpoint's current URL, or the callback URL.
    pub url: String,
    /// `None` for a callback, which is not signed.
    pub endpoint_id: Option<EndpointId>,
    /// The endpoint's current secret: a rotation applies to every later attempt.
    pub secret: Option<EndpointSecret>,
    /// The secret a rotation with overlap replaced, and until when it still signs
    /// (beside the current one); the sender checks the time when it signs.
    pub previous_secret: Option<(EndpointSecret, UnixMillis)>,
    /// Attempts made before this one.
    pub attempts_made: u32,
    /// The event's `traceparent`: the attempt's span is its child.
    pub traceparent: Option<String>,
}

/// How much one claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Deliveries in all.
    pub total: u32,
    /// Deliveries leased at once to one destination (endpoint or callback URL), over
    /// all instances: those in flight and those waiting in a run queue.
    pub per_target: u32,
    /// The same for an endpoint with a rate limit. Its claims should start at once, not
    /// wait in a queue and then go out together, so this is the in-flight cap.
    pub per_rate_limited_target: u32,
}

impl ClaimLimits {
    /// `total` and `per_target`, with rate-limited endpoints capped like the rest.
    pub fn new(total: u32, per_target: u32) -> Self {
        Self { total, per_target, per_rate_limited_target: per_target }
    }
}

/// A pending delivery at the head of an endpoint's queue: under `fifo` ordering, the
/// one every later delivery waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHead {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is next tried (while an attempt is in flight: when its lease lapses).
    pub next_attempt_at: UnixMillis,
}

/// What became of one attempt; written in batches (group commit).
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub delivery_id: DeliveryId,
    pub endpoint_id: Option<EndpointId>,
    pub attempt: AttemptRecord,
    pub next: NextStep,
}

/// The delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(UnixMillis),
    Failed,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempted_at: UnixMillis,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// At most the first 1 KiB of the response body.
    pub response_body: Option<String>,
}

/// A delivery as the customer sees it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub delivery_id: DeliveryId,
    pub endpoint_id: Option<EndpointId>,
    pub url: String,
    pub state: DeliveryState,
    pub next_attempt_at: Option<UnixMillis>,
    pub attempts: Vec<AttemptRecord>,
}

/// What `/metrics` reads from the database at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Pending deliveries due now (not leased).
    pub due: i64,
    /// Leased deliveries: attempts in flight on any instance.
    pub in_flight: i64,
    /// When the delivery that has waited longest since it fell due became due.
    pub oldest_due_at: Option<UnixMillis>,
    /// Live endpoints that are disabled while failing: hookd disabled them (or their
    /// owner paused them mid-failure).
    pub disabled_failing_endpoints: i64,
}

/// What one [`OutboxStore::drain_outbox`](crate::OutboxStore::drain_outbox) did.
#[derive(Debug, Clone, Default)]
pub struct OutboxDrained {
    /// Rows taken (and deleted): the sum of the rest.
    pub taken: usize,
    pub published: usize,
    /// Deliveries the published events scheduled.
    pub deliveries: usize,
    /// Rows whose idempotency key was published before.
    pub duplicates: usize,
    pub rejected: Vec<RejectedRow>,
}

/// An outbox row moved to `hookd_outbox_rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub id: i64,
    pub reason: String,
}

/// The outbox at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxDepth {
    pub waiting: i64,
    /// How long the oldest waiting row has waited; 0 if none.
    pub oldest_age_ms: i64,
    /// Rows in `hookd_outbox_rejected`.
    pub rejected: i64,
}

/// A video job.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub video_id: VideoId,
    pub account_id: AccountId,
    pub video_type: String,
    pub status: VideoStatus,
    /// The create request as given (compact JSON), for the renderer.
    pub request: String,
    pub title: Option<String>,
    pub callback_url: Option<String>,
    pub callback_id: Option<String>,
    pub output_format: String,
    pub result: VideoResult,
    pub created_at: UnixMillis,
    pub completed_at: Option<UnixMillis>,
}

/// What the renderer reported about a video's output (or its failure).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoResult {
    pub video_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub gif_url: Option<String>,
    pub captioned_video_url: Option<String>,
    pub subtitle_url: Option<String>,
    pub duration: Option<f64>,
    pub folder_id: Option<String>,
    pub output_language: Option<String>,
    pub video_page_url: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

/// A status change, applied only if the video is still in `expected`.
#[derive(Debug, Clone)]
pub struct VideoUpdate {
    pub expected: VideoStatus,
    pub status: VideoStatus,
    pub result: VideoResult,
    pub completed_at: Option<UnixMillis>,
    /// The event the change emits, published in the same transaction.
    pub event: Option<Event>,
}

/// What one retention batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

impl Pruned {
    /// Whether both parts of the batch came back short, so nothing old is left.
    pub fn is_less_than(&self, batch: u32) -> bool {
        self.events < u64::from(batch) && self.deliveries < u64::from(batch)
    }
}

/// A customer portal session (see `hookd_core::portal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub session_id: PortalSessionId,
    pub account_id: AccountId,
    /// Sees everything, changes nothing: the customer API refuses its writes.
    pub read_only: bool,
    pub created_at: UnixMillis,
    /// The link and the session it opens both end here.
    pub expires_at: UnixMillis,
}
