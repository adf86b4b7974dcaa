//! Real receivers on loopback: an axum server that records every request and answers
//! as scripted; raw TCP ones that reset, trickle, or answer with broken or endless
//! HTTP; and an HTTPS one whose certificate nobody vouches for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// A safety net so a broken test fails instead of hanging; never the assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    StatusWith(u16, Vec<(&'static str, String)>),
    /// Answer after a pause.
    Slow(Duration, u16),
    /// Never answer.
    Hang,
}

#[derive(Default)]
struct Script {
    queued: VecDeque<Answer>,
    otherwise: Option<Answer>,
    /// Every n-th request (counting all) gets this answer.
    every: Option<(usize, Answer)>,
    seen: usize,
}

/// An HTTP receiver on 127.0.0.1:0.
pub struct TestReceiver {
    pub base_url: String,
    received: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<Script>>,
}

impl TestReceiver {
    /// Answers 200 to everything unless scripted otherwise.
    pub async fn start() -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(Script::default()));
        let handler_script = script.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let script = handler_script.clone();
            let sender = sender.clone();
            async move {
                let at = Instant::now();
                let _ = sender.send(Received { path: uri.path().to_owned(), headers, body, at });
                let answer = {
                    let mut script = script.lock().expect("script lock");
                    script.seen += 1;
                    let nth = match &script.every {
                        Some((n, answer)) if script.seen % n == 0 => Some(answer.clone()),
                        _ => None,
                    };
                    script
                        .queued
                        .pop_front()
                        .or(nth)
                        .or_else(|| script.otherwise.clone())
                        .unwrap_or(Answer::Status(200))
                };
                respond(answer).await
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, received, script }
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().expect("script lock").queued.extend(answers);
    }

    /// Every request not otherwise scripted gets this answer.
    pub fn always(&self, answer: Answer) {
        self.script.lock().expect("script lock").otherwise = Some(answer);
    }

    /// Every `n`-th request gets `answer` (unless a scripted answer is queued).
    pub fn every(&self, n: usize, answer: Answer) {
        self.script.lock().expect("script lock").every = Some((n.max(1), answer));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The next request, waiting as long as needed (within the safety net).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("a delivery arrived")
            .expect("receiver running")
    }

    /// Requests that have arrived so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(received) = self.received.try_recv() {
            all.push(received);
        }
        all
    }
}

async fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Status(code) => status(code).into_response(),
        Answer::StatusWith(code, headers) => {
            let mut response = (status(code), "scripted").into_response();
            for (name, value) in headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Answer::Slow(pause, code) => {
            tokio::time::sleep(pause).await;
            status(code).into_response()
        }
        Answer::Hang => std::future::pending().await,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("a valid status")
}

/// Accepts connections, reads the start of the request, then resets (RST) the connection.
pub async fn resetting_receiver() -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/reset", listener.local_addr().expect("address"));
    let accepted = Arc::new(Mutex::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            *counter.lock().expect("lock") += 1;
            let mut start = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut start).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    });
    (url, accepted)
}

/// What a misbehaving receiver sends back, byte for byte.
#[derive(Debug, Clone)]
pub enum RawAnswer {
    /// These bytes at once, then close.
    Bytes(Vec<u8>),
    /// These bytes one every 100 ms, then close.
    Trickle(Vec<u8>),
    /// A 200 head, then this many body bytes in 64 KiB chunks.
    HugeBody(usize),
    /// A chunked 200 whose body never ends; counts the body bytes the client took
    /// before it hung up.
    EndlessBody(Arc<AtomicUsize>),
    /// A 200 head promising 100 bytes, 10 of them, then a reset (RST).
    ResetMidBody,
}

/// A raw TCP receiver that reads the request head and answers `answer` to every
/// connection; returns its URL for `path`.
pub async fn raw_receiver(path: &str, answer: RawAnswer) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 16 * 1024];
                let _ = stream.read(&mut request).await;
                match answer {
                    RawAnswer::Bytes(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                    }
                    RawAnswer::Trickle(bytes) => {
                        for byte in bytes {
                            if stream.write_all(&[byte]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    RawAnswer::EndlessBody(taken) => {
                        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                        while stream.write_all(chunk.as_bytes()).await.is_ok() {
                            taken.fetch_add(0x10000, Ordering::Relaxed);
                        }
                        return;
                    }
                    RawAnswer::ResetMidBody => {
                        let partial = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
                        let _ = stream.write_all(partial).await;
                        let _ = stream.flush().await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = stream.set_zero_linger();
                        return;
                    }
                    RawAnswer::HugeBody(size) => {
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b'x'; 64 * 1024];
                        let mut sent = 0;
                        while sent < size {
                            let n = chunk.len().min(size - sent);
                            if stream.write_all(&chunk[..n]).await.is_err() {
                                return;
                            }
                            sent += n;
                        }
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// An HTTPS receiver whose certificate no public authority signed (a self-signed one
/// for 127.0.0.1, from tests/fixtures); returns its URL for `path`. It completes the
/// handshake with anyone who accepts the certificate and counts requests that got
/// through, which must stay 0 for hookd.
pub async fn untrusted_tls_receiver(path: &str) -> (String, Arc<AtomicUsize>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixtures.join("untrusted-receiver.pem"))
            .expect("certificate file")
            .collect::<Result<_, _>>()
            .expect("certificate");
    let key = PrivateKeyDer::from_pem_file(fixtures.join("untrusted-receiver.key")).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}{path}", listener.local_addr().expect("address"));
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut request = [0u8; 16 * 1024];
                if tls.read(&mut request).await.is_ok_and(|n| n > 0) {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                }
            });
        }
    });
    (url, served)
}
