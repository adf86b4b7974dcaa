//! Accounts and their API keys (contract §6, first bullet). Keys are shown once and
//! stored only as hashes.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{AccountId, AccountName, ApiKey, ApiKeyId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::{Data, Deleted};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{JsonBody, RequestBody};
use crate::openapi::ResourceId;
use crate::{ApiState, now_millis};

/// Body of `POST /admin/v1/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// 1-255 characters, not all whitespace, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
}

impl RequestBody for CreateAccountRequest {
    const FIELDS: &'static [&'static str] = &["name"];
    const REQUIRED: &'static [&'static str] = &["name"];
}

/// A new account and its first API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    account_id: String,
    name: String,
    key_id: String,
    api_key: String,
}

/// A new API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    key_id: String,
    api_key: String,
}

#[utoipa::path(
    post, path = "/admin/v1/accounts", tag = "Admin", operation_id = "createAccount",
    request_body = CreateAccountRequest,
    responses(
        (status = 200, description = "The account and its first key", body = Data<AccountCreated>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn create_account(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<CreateAccountRequest>,
) -> Result<Json<Data<AccountCreated>>, ApiError> {
    let name = AccountName::parse(&request.name)
        .map_err(|error| ApiError::invalid_parameter("name", format!("{error}.")))?;
    let key = ApiKey::generate();
    let account = state.store.create_account(name.as_str(), &key, now_millis()).await?;
    tracing::info!(account_id = %account.account_id, key_id = %key.key_id(), "account created");
    Ok(Json(Data {
        data: AccountCreated {
            account_id: account.account_id.to_string(),
            name: account.name,
            key_id: key.key_id().to_string(),
            api_key: key.expose().to_owned(),
        },
    }))
}

#[utoipa::path(
    post, path = "/admin/v1/accounts/{account_id}/api-keys", tag = "Admin", operation_id = "createApiKey",
    params(("account_id" = ResourceId, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The new key", body = Data<ApiKeyCreated>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such account", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn create_api_key(
    State(state): State<ApiState>,
    Path(account_id): Path<String>,
) -> Result<Json<Data<ApiKeyCreated>>, ApiError> {
    let account_id = AccountId::parse(&account_id).map_err(|_| ApiError::NotFound)?;
    let key = ApiKey::generate();
    state.store.add_api_key(&account_id, &key, now_millis()).await?;
    tracing::info!(%account_id, key_id = %key.key_id(), "api key created");
    Ok(Json(Data {
        data: ApiKeyCreated { key_id: key.key_id().to_string(), api_key: key.expose().to_owned() },
    }))
}

#[utoipa::path(
    delete, path = "/admin/v1/api-keys/{key_id}", tag = "Admin", operation_id = "revokeApiKey",
    params(("key_id" = ResourceId, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked; it stops working at once", body = Deleted),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such key", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn revoke_api_key(
    State(state): State<ApiState>,
    Path(key_id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let key_id = ApiKeyId::parse(&key_id).map_err(|_| ApiError::NotFound)?;
    state.store.revoke_api_key(&key_id, now_millis()).await?;
    tracing::info!(%key_id, "api key revoked");
    Ok(Json(Deleted::new()))
}
