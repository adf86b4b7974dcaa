//! The operator API (`/admin/v1`), authenticated with the admin token.

pub mod accounts;
pub mod events;
pub mod operational;
pub mod videos;
