//! The customer portal, served by hookd itself under `/portal/`.
//!
//! - `pages`: the page, its script and stylesheet, compiled in, behind a strict
//!   Content-Security-Policy. The page is a client of the customer API and nothing
//!   more: every rule it shows is enforced by the routes it calls.
//! - `sessions`: the operator mints a one-time link for an account
//!   (`POST /admin/v1/accounts/{id}/portal-sessions`); the page redeems it once
//!   (`POST /portal/api/session`) for a credential it presents as a bearer token on the
//!   customer API, which then acts for that account (read-only sessions may only read:
//!   see `extract::auth`).

pub mod pages;
pub mod sessions;
