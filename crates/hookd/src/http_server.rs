//! The HTTP/1.1 server the router runs on, with limits on slow and oversized
//! clients. `axum::serve` gives hyper no timer, so a client could take forever to send
//! its headers (one byte a second holds a connection and its task open). Here hyper
//! has a deadline for the head and a bound on its buffer, the body must arrive within
//! the same deadline, and stopping lets requests in flight finish.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::Frame;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// How much of a client's slowness and size hookd puts up with.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Time to send the request head, and again the body. Beyond it the connection
    /// is closed (head) or the request answered 400 (body).
    pub timeout: Duration,
    /// hyper's read buffer, the outer bound on request line and headers together.
    pub max_head_bytes: usize,
}

/// hyper's smallest allowed read buffer, which is what bounds the head.
const MIN_HEAD_BYTES: usize = 8 * 1024;

/// Serves `router` on `listener` until `shutdown`, then waits for requests in flight.
pub async fn serve(listener: TcpListener, router: Router, limits: ClientLimits, shutdown: CancellationToken) {
    let timeout = limits.timeout;
    let router = router.layer(axum::middleware::map_request(move |request: Request| async move {
        request.map(|body| Body::new(DeadlineBody::new(body, timeout)))
    }));
    let service = TowerToHyperService::new(router);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .max_buf_size(limits.max_head_bytes.max(MIN_HEAD_BYTES));
    let connections = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = connections.watch(builder.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// A request body that fails once `deadline` passes, however steadily it trickles:
/// a per-read idle timeout would let one byte a second go on for ever. The handler
/// then answers 400 (the body could not be read) and the connection is freed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        Self { inner, deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)) }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTooSlow;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTooSlow.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
