//! The startable application: `App::build` binds the listener and prepares everything;
//! `run_until_stopped` serves until the shutdown token is cancelled, then drains
//! in-flight requests and closes the database. `main` and the tests use the same path.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hookd_store::SqliteStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::{self, StartupError};
use crate::janitor;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    sqlite: SqliteStore,
    store: std::sync::Arc<dyn hookd_store::Store>,
    shutdown: CancellationToken,
}

impl App {
    pub async fn build(args: &ServeArgs) -> Result<Self, StartupError> {
        let prepared = config::prepare(args).await?;
        let state = hookd_api::ApiState::load(prepared.store.clone(), prepared.api)
            .await
            .map_err(StartupError::Database)?;
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|source| StartupError::Listen { address: args.listen.clone(), source })?;
        Ok(Self {
            listener,
            router: hookd_api::router(state),
            sqlite: prepared.sqlite,
            store: prepared.store,
            shutdown: CancellationToken::new(),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Cancel it to stop the app gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let janitor = tokio::spawn(janitor::run(self.store.clone(), self.shutdown.clone()));
        let shutdown = self.shutdown.clone();
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        self.shutdown.cancel();
        let _ = janitor.await;
        self.sqlite.close().await;
        tracing::info!("hookd stopped");
        served
    }
}

/// Wall-clock now in unix milliseconds.
pub fn now_millis() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
