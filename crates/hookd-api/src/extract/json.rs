//! `JsonBody<T>`: a JSON request body checked the way the contract says.
//!
//! In order: the `Content-Type` must be JSON (400 `invalid_request`, never 415); the
//! body at most 1 MiB (413); valid JSON (400 `invalid_request`); an object (400
//! `invalid_request`); only documented fields (400 `invalid_parameter` naming the
//! first unknown one); required fields present; then each field of the right type
//! (400 naming the field).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use crate::error::ApiError;

/// A request DTO: which top-level fields it accepts and which it requires.
pub trait RequestBody: DeserializeOwned {
    const FIELDS: &'static [&'static str];
    const REQUIRED: &'static [&'static str] = &[];
    /// Whether fields beyond `FIELDS` are accepted (only `POST /v3/videos`, whose
    /// renderer options are stored as given).
    const ACCEPTS_ANY_FIELD: bool = false;
}

/// A parsed request body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: RequestBody,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_body(&read_json(request, state).await?).map(JsonBody)
    }
}

/// The body's bytes, once its `Content-Type` says JSON and it fits the route's limit.
async fn read_json<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if !has_json_content_type(&request) {
        return Err(ApiError::InvalidRequest(
            "The request body must be JSON (Content-Type: application/json).".into(),
        ));
    }
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::InvalidRequest("The request body could not be read.".into())
        }
    })
}

/// Like [`JsonBody`], but an empty body, or JSON `null`, means `T::default()` (for
/// routes whose body is optional; the OpenAPI document says `null` for "no body").
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: RequestBody + Default,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = request.headers().get(header::CONTENT_LENGTH).is_some_and(|length| length == "0")
            || (!request.headers().contains_key(header::CONTENT_LENGTH)
                && !request.headers().contains_key(header::TRANSFER_ENCODING));
        if empty {
            return Ok(Self(T::default()));
        }
        let bytes = read_json(request, state).await?;
        if bytes.trim_ascii() == b"null" {
            return Ok(Self(T::default()));
        }
        parse_body(&bytes).map(Self)
    }
}

/// Parses bytes as the DTO `T`, with the contract's errors.
pub fn parse_body<T: RequestBody>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::InvalidRequest("The request body is not valid JSON.".into()))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::InvalidRequest("The request body must be a JSON object.".into()));
    };
    if let Some(unknown) =
        object.keys().find(|key| !T::ACCEPTS_ANY_FIELD && !T::FIELDS.contains(&key.as_str()))
    {
        return Err(ApiError::invalid_parameter(
            unknown.clone(),
            format!("'{unknown}' is not a recognised field."),
        ));
    }
    if let Some(missing) = T::REQUIRED.iter().find(|field| !object.contains_key(**field)) {
        return Err(ApiError::invalid_parameter(*missing, format!("'{missing}' is required.")));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let param = error.path().iter().next().map(|segment| segment.to_string()).unwrap_or_default();
        let param = param.trim_matches('.').to_owned();
        let inner = error.into_inner();
        ApiError::invalid_parameter(param.clone(), format!("'{param}' is invalid: {inner}."))
    })
}

fn has_json_content_type(request: &Request) -> bool {
    let Some(value) = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// For PATCH fields where a missing key and `null` mean different things:
/// missing → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// JSON Schema's `integer`, which the published document promises, is any number
/// with no fractional part, `5.0` included; serde's integers refuse `5.0`. This
/// takes both (within `i64`) and refuses `5.5`, `"5"` and `null`.
/// Use with `#[serde(deserialize_with = "json_integer")]` on an `i64`.
pub fn json_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    whole(serde_json::Number::deserialize(deserializer)?)
}

/// [`json_integer`] for an optional field (`null` or missing is `None`).
/// Use with `#[serde(default, deserialize_with = "optional_json_integer")]`.
pub fn optional_json_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<serde_json::Number>::deserialize(deserializer)?.map(whole).transpose()
}

fn whole<E: serde::de::Error>(number: serde_json::Number) -> Result<i64, E> {
    // 2^63 as f64: every whole f64 below it in size converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    number
        .as_i64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < LIMIT).map(|f| f as i64))
        .ok_or_else(|| E::custom(format!("expected a whole number, got {number}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Window {
        #[serde(deserialize_with = "super::json_integer")]
        since: i64,
        #[serde(default, deserialize_with = "super::optional_json_integer")]
        until: Option<i64>,
    }

    #[test]
    fn whole_numbers_written_with_a_fraction_part_are_integers() {
        let parse = |json: &str| serde_json::from_str::<Window>(json).map(|w| (w.since, w.until));
        assert_eq!(parse(r#"{"since": 5}"#).ok(), Some((5, None)));
        assert_eq!(parse(r#"{"since": 5.0, "until": -7.0}"#).ok(), Some((5, Some(-7))));
        assert_eq!(parse(r#"{"since": 5, "until": null}"#).ok(), Some((5, None)));
        for refused in [r#"{"since": 5.5}"#, r#"{"since": "5"}"#, r#"{"since": null}"#, r#"{"since": 1e300}"#]
        {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }
}
