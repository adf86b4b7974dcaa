//! `Idempotency-Key` on POST, PATCH and DELETE: the first successful response (status
//! and body) is stored and replayed to any repeat with the same key, owner, method and
//! path for 24 hours; a repeat while the first still runs gets 409 `request_in_progress`.
//!
//! An error response is not stored: the request changed nothing, so the key is released
//! and a corrected retry with the same key goes through (as Stripe does for requests
//! that fail validation).
//!
//! The first request runs in its own task, so a client that disconnects cannot leave
//! its work half-recorded; only a crash can, and then the claim goes stale after
//! [`STALE_AFTER_MS`] and the next repeat does the work again.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookd_store::{IdempotencyClaim, IdempotencyScope};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::Customer;
use crate::{ApiState, MAX_BODY_BYTES, MAX_OPERATOR_BODY_BYTES, now_millis};

const HEADER: &str = "idempotency-key";
const RETENTION_MS: i64 = 24 * 3_600_000;
/// An in-progress claim older than this belongs to a request that died with its process.
pub const STALE_AFTER_MS: i64 = 60_000;

/// Stored responses are replayed with this header so clients can tell.
const REPLAYED_HEADER: &str = "idempotent-replayed";

pub async fn customer_idempotency(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    run(state, request, next, MAX_BODY_BYTES).await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn operator_idempotency(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    run(state, request, next, MAX_OPERATOR_BODY_BYTES).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run(state: ApiState, request: Request, next: Next, body_limit: usize) -> Result<Response, ApiError> {
    if !matches!(*request.method(), Method::POST | Method::PATCH | Method::DELETE) {
        return Ok(next.run(request).await);
    }
    let Some(raw_key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = raw_key.to_str().ok().filter(|key| is_valid_key(key)).ok_or_else(|| {
        ApiError::invalid_parameter(
            "Idempotency-Key",
            "'Idempotency-Key' must be 1-255 characters of A-Z, a-z, 0-9, '_', ':', '.' and '-'.",
        )
    })?;
    let owner = match request.extensions().get::<Customer>() {
        Some(Customer(account_id)) => account_id.to_string(),
        None => "admin".to_owned(),
    };
    let scope = IdempotencyScope {
        owner,
        key: key.to_owned(),
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    };

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, body_limit).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let request_hash = hex::encode(Sha256::digest(&body));

    let now = now_millis();
    let claim = state
        .store
        .claim_idempotency(&scope, &request_hash, now, now - RETENTION_MS, now - STALE_AFTER_MS)
        .await?;
    match claim {
        IdempotencyClaim::InProgress => Err(ApiError::RequestInProgress),
        IdempotencyClaim::Replay(stored) => {
            if stored.request_hash != request_hash {
                tracing::warn!(
                    idempotency_key = %scope.key,
                    "replaying a stored response to a request whose body differs from the first"
                );
            }
            Ok(replay(stored.status, stored.body))
        }
        IdempotencyClaim::Started => {
            let request = Request::from_parts(parts, Body::from(body));
            // The first request finishes and records its outcome even if the client goes away.
            let task = tokio::spawn(first_request(state, scope, request, next));
            task.await.map_err(ApiError::internal)?
        }
    }
}

async fn first_request(
    state: ApiState,
    scope: IdempotencyScope,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_success() {
        if let Err(error) = state.store.abandon_idempotency(&scope).await {
            tracing::warn!(error = %error, "could not release an idempotency claim");
        }
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(ApiError::internal)?;
    if let Err(error) = state.store.complete_idempotency(&scope, status.as_u16(), &body).await {
        // The work is committed; answering with its result is right even though a
        // repeat will now redo it once the claim goes stale.
        tracing::error!(error = %error, "could not store the response for an idempotency key");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn is_valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
}
