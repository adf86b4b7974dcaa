//! The `hookd` binary's library half: command line, startup and wiring. `main.rs`
//! parses and runs; the integration tests build the same [`App`].

pub mod app;
pub mod cli;
pub mod config;
mod demo_renderer;
mod http_server;
mod janitor;
pub mod listen;
pub mod master_key;
mod outbox;
pub mod telemetry;
mod traces;

pub use app::App;
pub use cli::{Cli, Command, ServeArgs};
