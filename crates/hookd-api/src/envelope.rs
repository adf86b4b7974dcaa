//! The success envelopes: `{"data": ...}` and `{"data": [...], "has_more", "next_token"}`.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"data": T}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    /// Whether more pages are available.
    pub has_more: bool,
    /// Opaque cursor for the next page; null on the last page.
    pub next_token: Option<String>,
}

/// The body of a successful DELETE: `{"data": {}, "error": null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub data: Empty,
    pub error: Option<()>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

impl Deleted {
    pub fn new() -> Self {
        Self { data: Empty {}, error: None }
    }
}

/// Unix milliseconds as ISO 8601 UTC with a `Z`, to the second.
pub fn iso8601(unix_millis: i64) -> String {
    let since_epoch = std::time::Duration::from_millis(u64::try_from(unix_millis).unwrap_or(0));
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since_epoch).to_string()
}
