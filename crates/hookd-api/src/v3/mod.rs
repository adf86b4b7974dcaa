//! The customer API, wire-compatible with HeyGen's v3 webhook routes, and hookd's
//! extensions beside them on routes of their own (`deliveries`, `recovery`,
//! `delivery_settings`, `event_log`).

pub mod deliveries;
pub mod delivery_settings;
pub mod endpoints;
pub mod event_log;
pub mod events;
pub mod recovery;
pub mod videos;
