//! Extractors that own every rejection, so bad input always gets the contract's envelope.

mod auth;
mod json;
pub(crate) mod query;

pub use auth::{Customer, require_admin, require_customer};
pub(crate) use auth::{bearer_token, portal_session};
pub use json::{JsonBody, OptionalJsonBody, RequestBody, double_option, json_integer, optional_json_integer};
pub use query::{PageParams, QueryParams};
