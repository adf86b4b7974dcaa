//! Minting, redeeming and ending customer portal sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use hookd_core::{AccountId, PortalSessionId, PortalToken, PortalTokenKind, PortalTtl};
use hookd_store::PortalSession;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::{Data, Deleted};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{
    JsonBody, OptionalJsonBody, RequestBody, bearer_token, optional_json_integer, portal_session,
};
use crate::openapi::ResourceId;
use crate::{ApiState, now_millis};

/// Body of `POST /admin/v1/accounts/{account_id}/portal-sessions` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintPortalSessionRequest {
    /// Seconds the link, and the session it opens, stay valid: 60 to 86,400 (default 3,600).
    #[serde(default, deserialize_with = "optional_json_integer")]
    #[schema(minimum = 60, maximum = 86_400)]
    ttl_seconds: Option<i64>,
    /// A read-only session sees everything and changes nothing (default false).
    #[serde(default)]
    read_only: Option<bool>,
}

impl RequestBody for MintPortalSessionRequest {
    const FIELDS: &'static [&'static str] = &["ttl_seconds", "read_only"];
}

/// A minted portal link. Its token is in the fragment (`#...`), which browsers never
/// send to a server, so it stays out of server and proxy logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintedPortalSession {
    /// Revokes the session (`DELETE /admin/v1/portal-sessions/{session_id}`).
    #[schema(value_type = ResourceId)]
    session_id: String,
    /// Open it in a browser, once.
    url: String,
    /// Unix seconds: when the link, and the session it opens, end.
    expires_at: i64,
}

/// Body of `POST /portal/api/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemPortalLinkRequest {
    /// The token from the link's fragment.
    token: String,
}

impl RequestBody for RedeemPortalLinkRequest {
    const FIELDS: &'static [&'static str] = &["token"];
    const REQUIRED: &'static [&'static str] = &["token"];
}

/// A portal session's credential: present it as `Authorization: Bearer` on the
/// customer API. Keep it in page memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemedPortalSession {
    session_token: String,
    #[schema(value_type = ResourceId)]
    account_id: String,
    read_only: bool,
    /// Unix seconds.
    expires_at: i64,
}

#[utoipa::path(
    post, path = "/admin/v1/accounts/{account_id}/portal-sessions", tag = "Admin",
    operation_id = "mintPortalSession",
    params(("account_id" = ResourceId, Path, description = "The account's id")),
    request_body(content = Option<MintPortalSessionRequest>, description = "Optional: the link's lifetime and whether it is read-only"),
    responses(
        (status = 200, description = "A one-time link to the account's portal", body = Data<MintedPortalSession>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such account", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn mint_portal_session(
    State(state): State<ApiState>,
    Path(account_id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<MintPortalSessionRequest>,
) -> Result<Json<Data<MintedPortalSession>>, ApiError> {
    let account_id = AccountId::parse(&account_id).map_err(|_| ApiError::NotFound)?;
    let ttl = PortalTtl::new(request.ttl_seconds)
        .map_err(|error| ApiError::invalid_parameter("ttl_seconds", format!("{error}.")))?;
    let now = now_millis();
    let session = PortalSession {
        session_id: PortalSessionId::new_random(),
        account_id,
        read_only: request.read_only.unwrap_or(false),
        created_at: now,
        expires_at: now + ttl.millis(),
    };
    let link = PortalToken::generate(PortalTokenKind::Link, &session.session_id);
    state.store.create_portal_session(&session, &link.hash()).await?;
    tracing::info!(session_id = %session.session_id, account_id = %session.account_id, read_only = session.read_only, "portal session minted");
    let url = format!("{}/portal/#{}", state.public_url, link.expose());
    Ok(Json(Data {
        data: MintedPortalSession {
            session_id: session.session_id.to_string(),
            url,
            expires_at: session.expires_at.div_euclid(1000),
        },
    }))
}

#[utoipa::path(
    delete, path = "/admin/v1/portal-sessions/{session_id}", tag = "Admin", operation_id = "revokePortalSession",
    params(("session_id" = ResourceId, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Revoked: its link and credential stop working at once", body = Deleted),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such session", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn revoke_portal_session(
    State(state): State<ApiState>,
    Path(session_id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let session_id = PortalSessionId::parse(&session_id).map_err(|_| ApiError::NotFound)?;
    state.store.revoke_portal_session(&session_id, now_millis()).await?;
    tracing::info!(%session_id, "portal session revoked");
    Ok(Json(Deleted::new()))
}

#[utoipa::path(
    post, path = "/portal/api/session", tag = "Portal", operation_id = "redeemPortalLink",
    request_body = RedeemPortalLinkRequest,
    responses(
        (status = 200, description = "The session's credential", body = Data<RedeemedPortalSession>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "The link was used, has expired, was revoked or is not valid", body = ErrorEnvelope),
    )
)]
pub async fn redeem_portal_link(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<RedeemPortalLinkRequest>,
) -> Result<Json<Data<RedeemedPortalSession>>, ApiError> {
    let session_id =
        PortalToken::session_of(PortalTokenKind::Link, &request.token).ok_or(ApiError::PortalLinkInvalid)?;
    let credential = PortalToken::generate(PortalTokenKind::Session, &session_id);
    let link_hash = hookd_core::TokenHash::of(&request.token);
    let session = state
        .store
        .redeem_portal_link(&session_id, &link_hash, &credential.hash(), now_millis())
        .await?
        .ok_or(ApiError::PortalLinkInvalid)?;
    Ok(Json(Data {
        data: RedeemedPortalSession {
            session_token: credential.expose().to_owned(),
            account_id: session.account_id.to_string(),
            read_only: session.read_only,
            expires_at: session.expires_at.div_euclid(1000),
        },
    }))
}

#[utoipa::path(
    delete, path = "/portal/api/session", tag = "Portal", operation_id = "endPortalSession",
    responses(
        (status = 200, description = "Signed out: the credential stops working at once", body = Deleted),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("BearerAuth" = []))
)]
pub async fn end_portal_session(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Deleted>, ApiError> {
    let presented = bearer_token(&headers).ok_or(ApiError::AuthenticationFailed)?;
    let session = portal_session(&state, presented).await?.ok_or(ApiError::AuthenticationFailed)?;
    state.store.revoke_portal_session(&session.session_id, now_millis()).await?;
    Ok(Json(Deleted::new()))
}
