//! The one error type of the HTTP layer and its mapping onto the contract's envelope:
//! `{"error": {"code", "message", "param", "doc_url"}}`.
//!
//! `IntoResponse` has no side effects: an internal error's cause chain travels in the
//! response extensions to [`log_internal_errors`], which logs it inside the request span.

use std::error::Error as StdError;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookd_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;

/// Everything a request can fail with, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field or value is wrong; `param` names it, except where the fault lies in no
    /// one field (HeyGen's "At least one of 'url' or 'events' must be provided.").
    #[error("{message}")]
    InvalidParameter { param: Option<String>, message: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A portal link that was used, has expired, was revoked or never existed.
    #[error("portal link not valid")]
    PortalLinkInvalid,
    /// A read-only portal session tried to change something.
    #[error("read-only session")]
    ReadOnlySession,
    /// A valid OAuth access token without the scope the request needs.
    #[error("insufficient scope")]
    InsufficientScope(hookd_oauth::Scope),
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("request in progress")]
    RequestInProgress,
    /// The account made more requests than `--rate-limit` allows; it may try again
    /// after this long.
    #[error("rate limit exceeded")]
    RateLimited(std::time::Duration),
    /// The request contradicts the resource's current state.
    #[error("{0}")]
    Conflict(String),
    #[error("service unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    pub fn invalid_parameter(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidParameter { param: Some(param.into()), message: message.into() }
    }

    pub fn internal(source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(source))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            unavailable if unavailable.is_unavailable() => Self::Unavailable(unavailable),
            other => Self::internal(other),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// HeyGen's `StandardAPIError`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable error code, e.g. `invalid_parameter`.
    pub code: &'static str,
    /// Human-readable message; never carries internal detail.
    pub message: String,
    /// The request field or query parameter that caused the error.
    pub param: Option<String>,
    pub doc_url: Option<String>,
}

/// An internal error's cause chain, for the logging middleware only.
#[derive(Debug, Clone)]
enum InternalErrorReport {
    /// A fault (500): logged with each request.
    Fault(String),
    /// The database is unavailable (503): logged once per outage.
    Unavailable(String),
}

pub(crate) fn error_response(
    status: StatusCode,
    code: &'static str,
    message: String,
    param: Option<String>,
) -> Response {
    let envelope = ErrorEnvelope { error: ErrorBody { code, message, param, doc_url: None } };
    (status, Json(envelope)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, param) = match &self {
            Self::InvalidParameter { param, message } => {
                (StatusCode::BAD_REQUEST, "invalid_parameter", message.clone(), param.clone())
            }
            Self::InvalidRequest(message) => {
                (StatusCode::BAD_REQUEST, "invalid_request", message.clone(), None)
            }
            Self::AuthenticationFailed => (
                StatusCode::UNAUTHORIZED,
                "authentication_failed",
                "Invalid, revoked or missing API key. Send it in the X-Api-Key header or as a Bearer token."
                    .into(),
                None,
            ),
            Self::PortalLinkInvalid => (
                StatusCode::UNAUTHORIZED,
                "authentication_failed",
                "This portal link was already used, has expired, or is not valid. Ask for a new one.".into(),
                None,
            ),
            Self::ReadOnlySession => (
                StatusCode::FORBIDDEN,
                "read_only_session",
                "This portal session is read-only: it can see everything and change nothing.".into(),
                None,
            ),
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("This access token lacks the scope '{}' that this request needs.", scope.as_str()),
                None,
            ),
            Self::NotFound => {
                (StatusCode::NOT_FOUND, "not_found", "The requested resource was not found.".into(), None)
            }
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is larger than 1 MiB.".into(),
                None,
            ),
            Self::RequestInProgress => (
                StatusCode::CONFLICT,
                "request_in_progress",
                "A request with this Idempotency-Key is still being processed; retry later.".into(),
                None,
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Too many requests for this account; retry after the number of seconds in Retry-After."
                    .into(),
                None,
            ),
            Self::Conflict(message) => (StatusCode::CONFLICT, "conflict", message.clone(), None),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable; retry later.".into(),
                None,
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred.".into(),
                None,
            ),
        };
        let mut response = error_response(status, code, message, param);
        if matches!(self, Self::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::RateLimited(wait) = &self {
            // Whole seconds, rounded up: retrying after it is never early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        match &self {
            Self::Internal(_) => {
                response.extensions_mut().insert(InternalErrorReport::Fault(cause_chain(&self)));
            }
            Self::Unavailable(_) => {
                response.extensions_mut().insert(InternalErrorReport::Unavailable(cause_chain(&self)));
            }
            _ => {}
        }
        response
    }
}

fn cause_chain(error: &dyn StdError) -> String {
    hookd_store::error_chain(error)
}

/// Logs the cause chain of internal errors, inside the request's span. An unavailable
/// database is the outage's business, not each request's: it is logged once when the
/// outage begins (and the request line says 503).
pub async fn log_internal_errors(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match response.extensions().get::<InternalErrorReport>() {
        Some(InternalErrorReport::Fault(chain)) => tracing::error!(error = %chain, "request failed"),
        Some(InternalErrorReport::Unavailable(chain)) => {
            state.store.availability().unavailable(&std::io::Error::other(chain.clone()));
        }
        None => {}
    }
    response
}

/// Gives axum's bare 405 the contract's envelope. Axum adds the `Allow` header
/// outside this layer, so it reaches the client unchanged.
pub async fn envelope_for_method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let enveloped = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("This route does not support {method}; the Allow header lists the methods it does."),
        None,
    );
    let (enveloped_parts, body) = enveloped.into_parts();
    parts.headers.extend(enveloped_parts.headers);
    Response::from_parts(parts, body)
}

/// The router's fallback: an unknown route is a 404 in the envelope.
pub async fn route_not_found() -> ApiError {
    ApiError::NotFound
}
