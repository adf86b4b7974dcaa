//! hookd's HTTP layer: the customer API (HeyGen v3 compatible), the operator API, and
//! operational routes.
//!
//! Invariant: this is the only crate that knows HTTP status codes and JSON shapes.
//! Handlers parse input into `hookd-core` types, call the store, and map the result;
//! they hold no business rules of their own.

mod admin;
mod envelope;
mod error;
mod extract;
mod idempotency;
mod known_accounts;
mod openapi;
mod ops;
mod portal;
mod publish_queue;
mod rate_limit;
mod request_limits;
mod v3;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use hookd_core::{CursorKey, PublicationRules, TokenHash};
use hookd_store::{Store, StoreError};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub(crate) use hookd_store::now_millis;

/// Customer request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Operator request bodies may be larger: a batch holds up to 1000 events.
pub const MAX_OPERATOR_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What the API needs of the delivery engine.
#[derive(Debug, Clone)]
pub struct DeliveryHooks {
    /// Notified after new deliveries are committed, so they are sent at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// For the endpoint `test` route's one-off attempt.
    pub client: hookd_delivery::DeliveryClient,
}

/// What the API was configured with at startup.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The event catalog and what a URL may be.
    pub publication: PublicationRules,
    pub admin_token_hash: TokenHash,
    pub delivery: DeliveryHooks,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Requests per second each account may make on the customer API; `None`: no limit.
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// How long a publish waits for the database before it is answered 503.
    pub database_timeout: std::time::Duration,
    /// Where customers reach this server, for the portal links the operator mints.
    pub public_url: String,
    /// The sites that may show the portal in a frame.
    pub portal_frame_ancestors: hookd_core::FrameAncestors,
    /// OAuth access tokens, when the operator turned them on.
    pub oauth: Option<Arc<hookd_oauth::AccessTokens>>,
}

/// Shared by every handler. Every middleware layer and extractor clones it, so a
/// clone is one reference count, not one per field.
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

impl std::ops::Deref for ApiState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`ApiState`] shares.
pub struct Shared {
    store: Arc<dyn Store>,
    publication: PublicationRules,
    cursor_key: CursorKey,
    admin_token_hash: TokenHash,
    delivery: DeliveryHooks,
    metrics: PrometheusHandle,
    publishing: publish_queue::PublishQueue,
    known_accounts: known_accounts::KnownAccounts,
    oauth: Option<Arc<hookd_oauth::AccessTokens>>,
    rate_limit: Option<rate_limit::AccountRateLimit>,
    database_timeout: std::time::Duration,
    public_url: String,
    portal_csp: axum::http::HeaderValue,
    portal_frame_ancestors_none: bool,
}

impl ApiState {
    /// Loads what the API needs from the store (the cursor key).
    pub async fn load(store: Arc<dyn Store>, config: ApiConfig) -> Result<Self, StoreError> {
        let cursor_key = store.cursor_key().await?;
        Ok(Self(Arc::new(Shared {
            publishing: publish_queue::PublishQueue::start(store.clone()),
            store,
            publication: config.publication,
            cursor_key,
            admin_token_hash: config.admin_token_hash,
            delivery: config.delivery,
            metrics: config.metrics,
            known_accounts: known_accounts::KnownAccounts::default(),
            oauth: config.oauth,
            rate_limit: config.rate_limit.map(rate_limit::AccountRateLimit::per_second),
            database_timeout: config.database_timeout,
            public_url: config.public_url,
            portal_csp: portal::pages::content_security_policy(&config.portal_frame_ancestors),
            portal_frame_ancestors_none: config.portal_frame_ancestors.is_empty(),
        })))
    }
}

/// The whole HTTP application, routes and middleware.
pub fn router(state: ApiState) -> Router {
    let (routes, document) = api_routes(&state).split_for_parts();
    // Serialised once; each request gets a cheap clone of the bytes.
    let document = served_openapi(&document, &state);
    let routes = routes
        .route(
            "/openapi.json",
            get(move || std::future::ready(([(header::CONTENT_TYPE, "application/json")], document.clone()))),
        )
        .merge(portal::pages::routes());
    with_middleware(routes, state)
}

/// Only `/healthz`, `/readyz` and `/metrics`: what a delivery-only instance
/// (`--role worker`) serves, so it can be probed and scraped.
pub fn operations_router(state: ApiState) -> Router {
    let (routes, _) = operations_routes().split_for_parts();
    with_middleware(routes, state)
}

fn with_middleware(routes: Router<ApiState>, state: ApiState) -> Router {
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
        .layer(
            // No failure hook: the response line carries the status, and
            // `log_internal_errors` logs what a 5xx means, once.
            TraceLayer::new_for_http().make_span_with(request_span).on_response(log_response).on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(from_fn_with_state(state.clone(), error::log_internal_errors))
        .layer(from_fn(request_limits::limit_request_head))
        .layer(from_fn(error::envelope_for_method_not_allowed));
    routes.fallback(error::route_not_found).layer(middleware).with_state(state)
}

/// The OpenAPI document, as served at `/openapi.json`: it describes this server as
/// started (its catalog, whether it accepts http URLs).
fn served_openapi(document: &utoipa::openapi::OpenApi, state: &ApiState) -> bytes::Bytes {
    let served = openapi::served_document(
        document,
        &state.publication.catalog,
        state.publication.url_rules.allow_http,
        state.oauth.is_some(),
    )
    .and_then(|value| serde_json::to_vec(&value));
    // Serialising utoipa's model and JSON values cannot fail; the unit tests and the
    // OpenAPI integration test serialise and read this document.
    #[allow(clippy::expect_used)]
    bytes::Bytes::from(served.expect("the OpenAPI document serialises"))
}

fn api_routes(state: &ApiState) -> OpenApiRouter<ApiState> {
    use admin::{accounts, events as publishing, operational, videos as rendering};
    use portal::sessions as portal_sessions;
    use v3::{deliveries, delivery_settings, endpoints, event_log, events, recovery, videos};
    // Layers run bottom-up: authentication first, so idempotency knows the owner.
    let customer = OpenApiRouter::new()
        .routes(routes!(endpoints::create_endpoint, endpoints::list_endpoints))
        .routes(routes!(endpoints::update_endpoint, endpoints::delete_endpoint))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(events::list_event_types))
        .routes(routes!(events::list_events))
        .routes(routes!(event_log::event_log))
        .routes(routes!(event_log::get_event))
        .routes(routes!(event_log::endpoint_health))
        .routes(routes!(event_log::endpoints_health))
        .routes(routes!(event_log::event_type_example))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::resend))
        .routes(routes!(deliveries::test_endpoint))
        .routes(routes!(recovery::recover))
        .routes(routes!(delivery_settings::get_settings, delivery_settings::put_settings))
        .routes(routes!(delivery_settings::get_head))
        .routes(routes!(delivery_settings::skip_head))
        .routes(routes!(videos::create_video))
        .routes(routes!(videos::get_video))
        .route_layer(from_fn_with_state(state.clone(), idempotency::customer_idempotency))
        .route_layer(from_fn_with_state(state.clone(), extract::require_customer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let operator = OpenApiRouter::new()
        .routes(routes!(accounts::create_account))
        .routes(routes!(accounts::create_api_key))
        .routes(routes!(accounts::revoke_api_key))
        .routes(routes!(publishing::publish_event))
        .routes(routes!(publishing::publish_batch))
        .routes(routes!(rendering::report_status))
        .routes(routes!(rendering::list_videos))
        .routes(routes!(operational::create_operational_endpoint, operational::list_operational_endpoints))
        .routes(routes!(operational::delete_operational_endpoint))
        .routes(routes!(portal_sessions::mint_portal_session))
        .routes(routes!(portal_sessions::revoke_portal_session))
        .route_layer(from_fn_with_state(state.clone(), idempotency::operator_idempotency))
        .route_layer(from_fn_with_state(state.clone(), extract::require_admin))
        .layer(DefaultBodyLimit::max(MAX_OPERATOR_BODY_BYTES));
    // The portal's own routes authenticate themselves: redeeming takes a link token,
    // signing out the session's credential.
    let portal = OpenApiRouter::new()
        .routes(routes!(portal_sessions::redeem_portal_link, portal_sessions::end_portal_session))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(customer)
        .merge(operator)
        .merge(portal)
        .merge(operations_routes())
}

fn operations_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The `User-Agent` of hookd's own callers of its API (the demo renderer, which polls):
/// their requests are logged at debug, not info.
pub const INTERNAL_USER_AGENT: &str = concat!("hookd-internal/", env!("CARGO_PKG_VERSION"));

/// Every request's span carries its id, so each log line of the request can be found.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id =
        request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or("");
    let internal = request.headers().get(header::USER_AGENT).is_some_and(|ua| ua == INTERNAL_USER_AGENT);
    macro_rules! span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id,
                account_id = tracing::field::Empty,
            )
        };
    }
    let span = if internal { span!(tracing::Level::DEBUG) } else { span!(tracing::Level::INFO) };
    // A producer's trace continues here (and, through the stored event, in the
    // deliveries), when hookd exports traces.
    let traceparent = request.headers().get("traceparent").and_then(|value| value.to_str().ok());
    hookd_delivery::trace_context::set_parent(&span, traceparent);
    span
}

/// The response line, in the request's span; none for a span the filter turned off
/// (an internal caller's, below debug).
fn log_response<B>(response: &axum::http::Response<B>, latency: std::time::Duration, span: &tracing::Span) {
    if !span.is_disabled() {
        tower_http::trace::OnResponse::on_response(
            DefaultOnResponse::new().level(tracing::Level::INFO),
            response,
            latency,
            span,
        );
    }
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = hookd_core::random::random_bytes::<16>();
        hex::encode(id).parse().ok().map(RequestId::new)
    }
}
