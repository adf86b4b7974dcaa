//! Integration tests: the real server on port 0, real HTTP, a real SQLite file each.

mod admin;
mod binary;
mod compatibility;
mod deliveries;
mod durability;
mod endpoints;
mod errors;
mod events;
mod idempotency;
mod isolation;
mod operations;
mod pagination;
mod publishing;
mod support;
mod tidy;
mod videos;
