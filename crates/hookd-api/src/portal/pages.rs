//! The portal's pages under `/portal/`: one HTML shell, its scripts and its stylesheet,
//! compiled into the binary (`include_str!`), so `cargo build` alone makes everything
//! and nothing is fetched from elsewhere at run time.
//!
//! Every answer carries a strict Content-Security-Policy: only this origin's script and
//! style (no inline script, no third-party origin), requests only to this origin, and
//! framing only by the operator's `--portal-frame-ancestors` (none by default).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::ApiState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const PORTAL_JS: &str = include_str!("assets/portal.js");
const EXAMPLES_JS: &str = include_str!("assets/examples.js");
const PORTAL_CSS: &str = include_str!("assets/portal.css");

/// The pages' routes; they need no credential (the page signs in through the API).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal", get(|| async { Redirect::permanent("/portal/") }))
        .route("/portal/", get(index))
        .route("/portal/portal.js", get(script))
        .route("/portal/examples.js", get(examples))
        .route("/portal/portal.css", get(stylesheet))
}

async fn index(State(state): State<ApiState>) -> Response {
    page(&state, "text/html; charset=utf-8", INDEX_HTML)
}

async fn script(State(state): State<ApiState>) -> Response {
    page(&state, "text/javascript; charset=utf-8", PORTAL_JS)
}

async fn examples(State(state): State<ApiState>) -> Response {
    page(&state, "text/javascript; charset=utf-8", EXAMPLES_JS)
}

async fn stylesheet(State(state): State<ApiState>) -> Response {
    page(&state, "text/css; charset=utf-8", PORTAL_CSS)
}

fn page(state: &ApiState, content_type: &'static str, body: &'static str) -> Response {
    let mut response =
        ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.portal_csp.clone());
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Revalidated on each visit, so an upgraded binary's pages are used at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.portal_frame_ancestors_none {
        // For browsers that predate CSP's frame-ancestors.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// The policy for the portal's answers, given who may frame it.
pub(crate) fn content_security_policy(frame_ancestors: &hookd_core::FrameAncestors) -> HeaderValue {
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {}",
        frame_ancestors.directive_value()
    );
    // FrameAncestors holds checked origins (letters, digits, '.', '-', ':', '/', '*').
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
}
