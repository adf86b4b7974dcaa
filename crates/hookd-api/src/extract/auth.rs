//! Authentication: customer API keys, OAuth access tokens (JWTs from the operator's
//! identity provider, checked by `hookd-oauth`), customer portal sessions (a bearer
//! credential that acts for one account, read-only or not) and the operator's admin
//! token.
//!
//! Both are middleware so that the idempotency layer, which runs after them, knows
//! whose request it is. Keys are compared as SHA-256 hashes in constant time.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookd_core::{AccountId, ApiKey, PortalToken, PortalTokenKind, TokenHash};
use hookd_store::PortalSession;

use crate::ApiState;
use crate::error::ApiError;

/// The authenticated customer's account; every customer handler scopes by it.
#[derive(Debug, Clone)]
pub struct Customer(pub AccountId);

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only present when `require_customer` ran; a route without it is a wiring bug,
        // which must fail closed.
        parts.extensions.get::<Customer>().cloned().ok_or(ApiError::AuthenticationFailed)
    }
}

/// Resolves `X-Api-Key` or `Authorization: Bearer` to an account, or answers 401; an
/// OAuth access token must also hold the scope the request needs, or it is 403.
pub async fn require_customer(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let authenticated = match access_token(&state, request.headers()).await {
        Some(token) => token.and_then(|(account_id, token)| {
            let needed = needed_scope(request.method(), request.uri().path());
            if token.allows(needed) { Ok(account_id) } else { Err(ApiError::InsufficientScope(needed)) }
        }),
        None => authenticate_customer(&state, request.method(), request.headers()).await,
    };
    match authenticated {
        Ok(account_id) => {
            tracing::Span::current().record("account_id", tracing::field::display(&account_id));
            if let Some(Err(wait)) = state.rate_limit.as_ref().map(|limit| limit.check(&account_id)) {
                return ApiError::RateLimited(wait).into_response();
            }
            request.extensions_mut().insert(Customer(account_id));
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

async fn authenticate_customer(
    state: &ApiState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<AccountId, ApiError> {
    let presented = header_value(headers, "x-api-key")
        .or_else(|| bearer_token(headers))
        .ok_or(ApiError::AuthenticationFailed)?;
    if let Some(session) = portal_session(state, presented).await? {
        // Read-only is enforced here, for every route, not by hiding buttons.
        let reads = matches!(*method, Method::GET | Method::HEAD);
        if session.read_only && !reads {
            return Err(ApiError::ReadOnlySession);
        }
        return Ok(session.account_id);
    }
    let key_id = ApiKey::key_id_of(presented).ok_or(ApiError::AuthenticationFailed)?;
    let stored = state.store.find_api_key(&key_id).await?.ok_or(ApiError::AuthenticationFailed)?;
    if stored.revoked || !stored.key_hash.matches(&TokenHash::of(presented)) {
        return Err(ApiError::AuthenticationFailed);
    }
    Ok(stored.account_id)
}

/// The account an OAuth access token acts for, with the token; `None` when the
/// request carries no access token (OAuth off, an `X-Api-Key`, or a bearer credential
/// that is not a JWT: those are API keys and portal sessions, checked as before).
async fn access_token(
    state: &ApiState,
    headers: &HeaderMap,
) -> Option<Result<(AccountId, hookd_oauth::AccessToken), ApiError>> {
    let tokens = state.oauth.as_ref()?;
    if header_value(headers, "x-api-key").is_some() {
        return None;
    }
    let bearer = bearer_token(headers).filter(|bearer| hookd_oauth::looks_like_jwt(bearer))?;
    let token = match tokens.verify(bearer).await {
        Ok(token) => token,
        Err(rejected) => {
            // The reason, never the token.
            tracing::info!(reason = %rejected, "access token refused");
            return Some(Err(ApiError::AuthenticationFailed));
        }
    };
    let Ok(account_id) = AccountId::parse(&token.account) else {
        tracing::info!(claim = %tokens.settings().account_claim, "access token refused: its account claim is not an account id");
        return Some(Err(ApiError::AuthenticationFailed));
    };
    Some(match crate::known_accounts::ensure_exist(state, std::slice::from_ref(&account_id)).await {
        Ok(missing) if missing.is_empty() => Ok((account_id, token)),
        Ok(_) => {
            tracing::info!(account_id = %account_id, "access token refused: no such account");
            Err(ApiError::AuthenticationFailed)
        }
        Err(error) => Err(error.into()),
    })
}

/// The scope a customer route needs: videos or webhooks (everything else under
/// `/v3`), to read or to change.
fn needed_scope(method: &Method, path: &str) -> hookd_oauth::Scope {
    use hookd_oauth::Scope;
    let reads = matches!(*method, Method::GET | Method::HEAD);
    match (path.starts_with("/v3/videos"), reads) {
        (true, true) => Scope::VideosRead,
        (true, false) => Scope::VideosWrite,
        (false, true) => Scope::WebhooksRead,
        (false, false) => Scope::WebhooksWrite,
    }
}

/// The live portal session a presented credential (`ps_...`) opens, `None` if it is
/// not a portal credential at all, and 401 if it is one that opens nothing.
pub(crate) async fn portal_session(
    state: &ApiState,
    presented: &str,
) -> Result<Option<PortalSession>, ApiError> {
    let Some(session_id) = PortalToken::session_of(PortalTokenKind::Session, presented) else {
        return Ok(None);
    };
    let (session, credential) = state
        .store
        .find_portal_session(&session_id, crate::now_millis())
        .await?
        .ok_or(ApiError::AuthenticationFailed)?;
    if !credential.matches(&TokenHash::of(presented)) {
        return Err(ApiError::AuthenticationFailed);
    }
    Ok(Some(session))
}

/// Checks `Authorization: Bearer <admin token>`, or answers 401.
pub async fn require_admin(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let authorised = bearer_token(request.headers())
        .is_some_and(|token| state.admin_token_hash.matches(&TokenHash::of(token)));
    if authorised { next.run(request).await } else { ApiError::AuthenticationFailed.into_response() }
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_value(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}
