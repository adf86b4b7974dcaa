//! Caps on the request head, answered in the contract's envelope: a URL over 8 KiB
//! gets 414, request headers over 16 KiB together get 431. Bodies are capped per
//! route (`DefaultBodyLimit`); the server bounds what reaches this far (hyper's read
//! buffer) and how slowly it may arrive.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::error_response;

pub const MAX_URL_BYTES: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn limit_request_head(request: Request, next: Next) -> Response {
    let url_bytes = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if url_bytes > MAX_URL_BYTES {
        return error_response(
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            format!("The URL is longer than {} KiB.", MAX_URL_BYTES / 1024),
            None,
        );
    }
    // As on the wire: name, ": ", value, CRLF.
    let header_bytes: usize =
        request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request",
            format!("The request headers are larger than {} KiB together.", MAX_HEADER_BYTES / 1024),
            None,
        );
    }
    next.run(request).await
}
