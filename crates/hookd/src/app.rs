//! The startable application: `App::build` prepares storage, the dispatcher and the
//! API and binds the listener; `run_until_stopped` serves and delivers until the
//! shutdown token is cancelled, then drains requests and attempts in flight and closes
//! the database. `main` and the tests use the same path.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use hookd_delivery::Dispatcher;
use hookd_store::{Store, now_millis};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::{self, StartupError};
use crate::janitor;
use crate::outbox::OutboxConsumer;

/// hyper's read buffer, which bounds the request head before the router sees it;
/// the router answers smaller excesses in the contract's envelope (8 KiB URL, 16 KiB
/// of headers).
const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    client_limits: crate::http_server::ClientLimits,
    /// `None` with `--role api`: another instance delivers.
    dispatcher: Option<Dispatcher>,
    store: Arc<dyn Store>,
    janitor: janitor::Janitor,
    /// On PostgreSQL unless `--outbox false`.
    outbox: Option<OutboxConsumer>,
    /// Set with `--demo-renderer`: the admin token and the render time.
    demo_renderer: Option<(String, std::time::Duration)>,
    shutdown: CancellationToken,
}

impl App {
    pub async fn build(args: &ServeArgs) -> Result<Self, StartupError> {
        // First, so a busy port fails before anything is created or printed.
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|source| StartupError::Listen { address: args.listen.clone(), source })?;
        let prepared = config::prepare(args).await?;
        // A SQLite file belongs to one process, so at startup no lease can belong to a
        // live worker: deliveries interrupted by a crash are due again at once. On a
        // shared database the leases may be live; lapsed ones are due by themselves.
        if !prepared.store.shared() {
            let released =
                prepared.store.release_all_leases(now_millis()).await.map_err(StartupError::Database)?;
            if released > 0 {
                tracing::info!(released, "deliveries interrupted by the last stop are due again");
            }
        }
        let metrics = metrics_handle();
        hookd_delivery::register_metrics();
        let dispatcher = Dispatcher::new(prepared.store.clone(), prepared.dispatcher.clone())
            .map_err(StartupError::HttpClient)?;
        let demo_renderer = match (&prepared.admin_token, args.demo_renderer) {
            (Some(token), true) => Some((token.clone(), args.demo_render_time)),
            _ => None,
        };
        let oauth = match args.oauth.settings() {
            Some(settings) => Some(std::sync::Arc::new(
                hookd_oauth::AccessTokens::start(settings).await.map_err(StartupError::HttpClient)?,
            )),
            None => None,
        };
        let api_config = hookd_api::ApiConfig {
            oauth,
            publication: prepared.publication.clone(),
            admin_token_hash: prepared.admin_token_hash,
            delivery: hookd_api::DeliveryHooks { wake: dispatcher.waker(), client: dispatcher.client() },
            metrics,
            rate_limit: std::num::NonZeroU32::new(args.rate_limit),
            database_timeout: args.database_timeout,
            portal_frame_ancestors: args.portal_frame_ancestors.clone(),
            public_url: match &args.public_url {
                Some(url) => url.clone(),
                None => {
                    let bound = listener
                        .local_addr()
                        .map_err(|source| StartupError::Listen { address: args.listen.clone(), source })?;
                    format!("http://{bound}")
                }
            },
        };
        let state = hookd_api::ApiState::load(prepared.store.clone(), api_config)
            .await
            .map_err(StartupError::Database)?;
        let router = if args.role.serves_api() {
            hookd_api::router(state)
        } else {
            hookd_api::operations_router(state)
        };
        let janitor = janitor::Janitor { store: prepared.store.clone(), retention: args.retention };
        let outbox =
            prepared.store.outbox().filter(|_| args.outbox != Some(false)).map(|outbox| OutboxConsumer {
                store: prepared.store.clone(),
                outbox,
                rules: prepared.publication.clone(),
                wake_dispatcher: dispatcher.waker(),
            });
        Ok(Self {
            listener,
            router,
            client_limits: crate::http_server::ClientLimits {
                timeout: args.client_timeout,
                max_head_bytes: MAX_REQUEST_HEAD_BYTES,
            },
            dispatcher: args.role.delivers().then_some(dispatcher),
            store: prepared.store,
            janitor,
            outbox,
            demo_renderer,
            shutdown: CancellationToken::new(),
        })
    }

    /// Takes the dispatcher out, so the app serves without delivering and the caller
    /// drives deliveries itself with [`Dispatcher::step`] (tests about logic rather
    /// than timing). `None` if this instance does not deliver (`--role api`).
    pub fn take_dispatcher(&mut self) -> Option<Dispatcher> {
        self.dispatcher.take()
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
        let janitor = tokio::spawn(self.janitor.run(self.shutdown.clone()));
        let outbox = self.outbox.map(|outbox| tokio::spawn(outbox.run(self.shutdown.clone())));
        let dispatcher =
            self.dispatcher.map(|dispatcher| tokio::spawn(dispatcher.run(self.shutdown.clone())));
        if let (Some((token, render_time)), Ok(address)) =
            (self.demo_renderer.clone(), self.listener.local_addr())
        {
            let base_url = format!("http://{address}");
            tokio::spawn(crate::demo_renderer::run(base_url, token, render_time, self.shutdown.clone()));
        }
        crate::http_server::serve(self.listener, self.router, self.client_limits, self.shutdown.clone())
            .await;
        self.shutdown.cancel();
        let _ = janitor.await;
        if let Some(outbox) = outbox {
            let _ = outbox.await;
        }
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        self.store.close().await;
        tracing::info!("hookd stopped");
        Ok(())
    }
}

/// The process-wide Prometheus recorder, installed on first use. (A process has one
/// global recorder; the test suite builds many apps in one process.)
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("hookd_attempt_duration_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is already global (embedding); render an empty one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}
