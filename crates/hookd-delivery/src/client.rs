//! The outbound HTTP client. Every request hookd sends to a receiver goes through
//! [`DeliveryClient::attempt`].
//!
//! Server-side request forgery is stopped at connect time: literal addresses are
//! checked before anything is sent, and names go through [`PolicyResolver`], which
//! refuses a name if any address it resolves to is refused, so a DNS answer that
//! changes between create time and send time (rebinding) cannot reach inside.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookd_core::{DestinationPolicy, RefusedDestination};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{LOCATION, RETRY_AFTER};
use url::{Host, Url};

/// How much of a response body is kept in the attempt record.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The HTTP status, if a response arrived.
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    /// Why the attempt failed; `None` for a 2xx.
    pub error: Option<String>,
    /// The first [`RESPONSE_BODY_LIMIT`] bytes of the response, lossily as UTF-8.
    pub response_body: Option<String>,
    pub duration: Duration,
}

impl AttemptReport {
    /// An attempt that was not sent, for this reason.
    pub fn refused(reason: impl Into<String>) -> Self {
        Self {
            status: None,
            retry_after: None,
            error: Some(reason.into()),
            response_body: None,
            duration: Duration::ZERO,
        }
    }

    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// A reqwest client configured for webhook delivery.
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    timeout: Duration,
}

impl DeliveryClient {
    pub fn new(policy: DestinationPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_lookup(policy, timeout, Arc::new(system_lookup))
    }

    fn with_lookup(
        policy: DestinationPolicy,
        timeout: Duration,
        lookup: Lookup,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .dns_resolver(Arc::new(PolicyResolver { policy: policy.clone(), lookup }))
            .build()?;
        Ok(Self { http, policy, timeout })
    }

    /// Sends one POST and reports what happened; never returns an error, because
    /// every failure is something to record.
    pub async fn attempt(&self, url: &str, headers: &[(&'static str, String)], body: Bytes) -> AttemptReport {
        let started = Instant::now();
        // Parsed once: reqwest takes the parsed URL as it is.
        let url = match self.checked_url(url) {
            Ok(url) => url,
            Err(reason) => return failure(reason, started),
        };
        let mut request = self.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return failure(self.describe(&error), started),
        };
        let status = response.status();
        let retry_after = header_text(&response, RETRY_AFTER);
        let location = header_text(&response, LOCATION);
        let (response_body, read_error) = read_limited(response).await;
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            Some(format!(
                "redirect not followed: HTTP {} to {}",
                status.as_u16(),
                location.as_deref().unwrap_or("?")
            ))
        } else {
            Some(format!("HTTP {}", status.as_u16()))
        };
        // A 2xx whose body broke off is still a 2xx: the receiver accepted the event.
        let error = error.map(|e| match &read_error {
            Some(read) => format!("{e}; reading the response failed: {read}"),
            None => e,
        });
        AttemptReport {
            status: Some(status.as_u16()),
            retry_after,
            error,
            response_body: Some(response_body),
            duration: started.elapsed(),
        }
    }

    /// The URL, if it parses and a literal IP host in it is allowed (a host name is
    /// checked when it resolves).
    fn checked_url(&self, url: &str) -> Result<Url, String> {
        let url = Url::parse(url).map_err(|_| "the URL does not parse".to_owned())?;
        let address = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(url),
        };
        self.policy.check(address).map_err(|refused| refused.to_string())?;
        Ok(url)
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        let chain = cause_chain(error);
        if let Some(refused) = find_refusal(error) {
            return refused.to_string();
        }
        if error.is_timeout() {
            return format!("timed out after {}", humanize(self.timeout));
        }
        if error.is_connect() {
            return format!("connection failed: {chain}");
        }
        format!("request failed: {chain}")
    }
}

fn failure(error: String, started: Instant) -> AttemptReport {
    AttemptReport {
        status: None,
        retry_after: None,
        error: Some(error),
        response_body: None,
        duration: started.elapsed(),
    }
}

fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// Reads at most [`RESPONSE_BODY_LIMIT`] bytes and drops the rest unread, so a huge
/// or endless body costs neither memory nor time beyond the attempt timeout.
async fn read_limited(mut response: reqwest::Response) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut error = None;
    while kept.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_LIMIT - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(read_error) => {
                error = Some(cause_chain(&read_error));
                break;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), error)
}

fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.contains(&text) {
            let _ = write!(chain, ": {text}");
        }
        source = cause.source();
    }
    chain
}

fn find_refusal(error: &(dyn StdError + 'static)) -> Option<RefusedDestination> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(refused) = cause.downcast_ref::<RefusedDestination>() {
            return Some(*refused);
        }
        current = cause.source();
    }
    None
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Turns a host name into addresses: the system resolver, or a fixed table in tests.
type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync,
>;

fn system_lookup(host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> {
    Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
}

/// Resolves a name, then applies the destination policy to every address. One
/// refused address refuses the name.
struct PolicyResolver {
    policy: Arc<DestinationPolicy>,
    lookup: Lookup,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let addresses = lookup(name.as_str().to_owned()).await?;
            for address in &addresses {
                policy.check(address.ip())?;
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A resolver that answers from a table, so the test needs no DNS.
    fn table(entries: &[(&str, &[&str])]) -> Lookup {
        let table: HashMap<String, Vec<SocketAddr>> = entries
            .iter()
            .map(|(name, addresses)| {
                let addresses = addresses
                    .iter()
                    .map(|a| SocketAddr::new(a.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), 0))
                    .collect();
                ((*name).to_owned(), addresses)
            })
            .collect();
        let table = Arc::new(table);
        Arc::new(move |host: String| {
            let table = table.clone();
            Box::pin(async move {
                table
                    .get(&host)
                    .cloned()
                    .ok_or_else(|| std::io::Error::other(format!("no such name: {host}")))
            })
        })
    }

    #[tokio::test]
    async fn names_that_resolve_to_blocked_addresses_are_refused_at_connect_time() {
        let lookup = table(&[
            ("metadata.test", &["169.254.169.254"]),
            ("private.test", &["10.0.0.5"]),
            ("cgnat.test", &["100.64.1.1"]),
            ("loopback6.test", &["::1"]),
            ("mapped.test", &["::ffff:127.0.0.1"]),
            ("nat64.test", &["64:ff9b::a9fe:a9fe"]),
            ("unique-local.test", &["fd12::1"]),
            // One public and one internal answer: the name is refused, not raced.
            ("mixed.test", &["93.184.216.34", "192.168.0.10"]),
        ]);
        let client =
            DeliveryClient::with_lookup(DestinationPolicy::default(), Duration::from_secs(5), lookup)
                .expect("client");
        for host in [
            "metadata.test",
            "private.test",
            "cgnat.test",
            "loopback6.test",
            "mapped.test",
            "nat64.test",
            "unique-local.test",
            "mixed.test",
        ] {
            let report = client.attempt(&format!("http://{host}/hook"), &[], Bytes::new()).await;
            assert_eq!(report.status, None, "{host}");
            let error = report.error.unwrap_or_default();
            assert!(error.starts_with("destination ") && error.contains("is refused"), "{host}: {error}");
        }
    }
}
