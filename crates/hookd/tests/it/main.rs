//! Integration tests: the real server on port 0, real HTTP, a real SQLite file each
//! (and, in `scale_out`, several real processes on one PostgreSQL database).

mod admin;
mod binary;
mod compatibility;
mod database_outage;
mod deliveries;
mod delivery_controls;
mod delivery_settings;
mod durability;
mod endpoints;
mod errors;
mod event_log;
mod events;
mod flaky_receivers;
mod idempotency;
mod isolation;
mod limits;
mod oauth;
mod operational;
mod operations;
mod outbox;
mod pagination;
mod portal_browser;
mod portal_examples;
mod portal_sessions;
mod publishing;
mod scale_out;
mod storage_faults;
mod support;
mod tidy;
mod traces;
mod videos;
