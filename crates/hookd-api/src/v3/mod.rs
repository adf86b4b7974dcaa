//! The customer API, wire-compatible with HeyGen's v3 webhook routes, and hookd's
//! extensions beside them on routes of their own (`deliveries`, `recovery`).

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod recovery;
pub mod videos;
