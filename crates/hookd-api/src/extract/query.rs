//! Query strings: pagination (`limit`, `token`) and list filters.

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use hookd_core::{Cursor, CursorKey};
use hookd_store::{Page, PageRequest};

use crate::envelope::List;
use crate::error::ApiError;

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;

/// The decoded query string, in order.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// The last value given for `name`. An empty value is a value (`limit=` is not an
    /// integer, so 400), except for `token`: see [`PageParams::from_query`].
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state).await.unwrap_or(RawQuery(None));
        let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
        Ok(Self(pairs))
    }
}

/// `limit` (1–100, default 10) and the raw `token`, checked once a list's scope is known.
#[derive(Debug)]
pub struct PageParams {
    pub limit: u32,
    pub token: Option<String>,
}

impl PageParams {
    pub fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => {
                raw.parse::<u32>().ok().filter(|limit| (1..=MAX_LIMIT).contains(limit)).ok_or_else(|| {
                    ApiError::invalid_parameter("limit", "'limit' must be an integer between 1 and 100.")
                })?
            }
        };
        // `token=` is the first page: clients that always send the last next_token
        // send an empty one when it was null.
        let token = query.get("token").filter(|token| !token.is_empty()).map(str::to_owned);
        Ok(Self { limit, token })
    }

    /// Verifies the token against the list it claims to continue.
    pub fn page_request(&self, key: &CursorKey, scope: &str) -> Result<PageRequest, ApiError> {
        let before = match &self.token {
            None => None,
            Some(token) => Some(
                Cursor::decode(token, key, scope)
                    .map_err(|error| ApiError::invalid_parameter("token", format!("{error}.")))?
                    .position,
            ),
        };
        Ok(PageRequest { before, limit: self.limit })
    }
}

/// Turns a store page into the list envelope, minting the next token for `scope`.
pub fn list_envelope<T, W>(
    page: Page<T>,
    key: &CursorKey,
    scope: &str,
    to_wire: impl FnMut(T) -> W,
) -> List<W> {
    let next_token = page.next_before.map(|position| Cursor { position }.encode(key, scope));
    List { data: page.items.into_iter().map(to_wire).collect(), has_more: next_token.is_some(), next_token }
}

/// [`list_envelope`] for items whose wire form can fail to build (stored JSON that no
/// longer parses): the first failure is an internal error.
pub fn try_list_envelope<T, W, E>(
    page: Page<T>,
    key: &CursorKey,
    scope: &str,
    to_wire: impl FnMut(T) -> Result<W, E>,
) -> Result<List<W>, ApiError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let data =
        page.items.into_iter().map(to_wire).collect::<Result<Vec<_>, E>>().map_err(ApiError::internal)?;
    Ok(list_envelope(Page { items: data, next_before: page.next_before }, key, scope, |item| item))
}
