//! The customer API, wire-compatible with HeyGen's v3 webhook routes.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod videos;
