//! The issuer's signing keys: fetched at start, kept, and fetched again when a token
//! names a key id hookd has not seen (the issuer rotated its keys). Refetches are
//! rate-limited, so a stream of tokens with made-up key ids cannot make hookd hammer
//! the issuer.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use tokio::sync::{Mutex, RwLock};

/// Fetches at most this often (per instance): an issuer barely notices one request a
/// second, and a rotated-in key is picked up within a second.
const MIN_REFETCH: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("fetching the JWKS failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the JWKS is not a JSON object with a \"keys\" array")]
    NotAKeySet,
}

#[derive(Debug)]
pub(crate) struct KeySet {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Vec<Jwk>>,
    /// When the last fetch began; held while one runs, so concurrent misses share it.
    last_fetch: Mutex<Option<Instant>>,
}

impl KeySet {
    pub(crate) fn new(url: String) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
        Ok(Self { url, http, keys: RwLock::default(), last_fetch: Mutex::default() })
    }

    /// The key with id `kid` (or the only key, for a token without one), fetching the
    /// set again if it is not known and the last fetch is old enough.
    pub(crate) async fn find(&self, kid: Option<&str>) -> Option<Jwk> {
        if let Some(key) = self.lookup(kid).await {
            return Some(key);
        }
        if let Err(error) = self.refresh().await {
            tracing::warn!(error = %error, jwks_url = %self.url, "could not refetch the OAuth issuer's keys");
        }
        self.lookup(kid).await
    }

    async fn lookup(&self, kid: Option<&str>) -> Option<Jwk> {
        let keys = self.keys.read().await;
        match kid {
            Some(kid) => keys.iter().find(|key| key.common.key_id.as_deref() == Some(kid)).cloned(),
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        }
    }

    /// Fetches the set unless a fetch began less than [`MIN_REFETCH`] ago.
    pub(crate) async fn refresh(&self) -> Result<(), FetchError> {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return Ok(());
        }
        *last_fetch = Some(Instant::now());
        let document: serde_json::Value =
            self.http.get(&self.url).send().await?.error_for_status()?.json().await?;
        let listed =
            document.get("keys").and_then(serde_json::Value::as_array).ok_or(FetchError::NotAKeySet)?;
        // A key this library cannot read (an encryption key, a curve it lacks) is
        // skipped, not a reason to distrust the rest.
        let keys: Vec<Jwk> = listed
            .iter()
            .filter(|key| key.get("use").and_then(serde_json::Value::as_str) != Some("enc"))
            .filter_map(|key| serde_json::from_value(key.clone()).ok())
            .collect();
        tracing::info!(keys = keys.len(), jwks_url = %self.url, "fetched the OAuth issuer's keys");
        *self.keys.write().await = keys;
        Ok(())
    }
}
