//! hookd's dispatcher: the only place that sends HTTP requests out.
//!
//! - [`client`]: the outbound client. No redirects, the attempt timeout, a bounded read
//!   of the response, and the destination policy applied to every address a name
//!   resolves to, at connect time.
//! - [`payload`]: the exact body bytes and the headers of one attempt; `send`: one
//!   signed send ([`DeliveryClient::send`]), for the dispatcher and the API's test route.
//! - [`dispatcher`]: claims due deliveries with leases ahead of the attempts, runs them
//!   from an in-memory run queue (`queue`) within a global and a per-destination cap,
//!   and hands outcomes to `writer`, which records them in batches (group commit).
//!   `breaker` keeps a destination that fails again and again from holding the queue
//!   or being hammered, without slowing one that fails now and then.
//!
//! Invariant: a delivery is recorded as delivered only after a 2xx was seen; its
//! retry time lives in the database, never only in memory.

mod breaker;
pub mod client;
pub mod dispatcher;
pub mod payload;
mod queue;
mod send;
pub mod trace_context;
mod writer;

pub use client::{AttemptReport, DeliveryClient};
pub use dispatcher::{Dispatcher, DispatcherConfig, register_metrics};
pub use send::Outgoing;
