//! OAuth access tokens for hookd's customer API: the second way HeyGen's
//! documentation names to authenticate (`Authorization: Bearer <access token>`).
//!
//! An operator points hookd at its identity provider (Keycloak, Auth0, Entra ID, Dex
//! ...). A bearer token that is a JWT is checked here: its signature against the
//! issuer's JWKS, then `iss`, `aud`, `exp` and `nbf` (60 s of clock skew at most). The
//! algorithm is the key's, never the token's choice: a token whose header names
//! another (`none`, or HS256 "signed" with the public key) is refused. The account it
//! acts for is one claim (`--oauth-account-claim`), and what it may do is its
//! `scope`. The one door is [`AccessTokens::verify`]; whether the account exists and
//! which scope a route needs are the API's business.

mod jwks;

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::jwks::KeySet;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(60);

/// Where the tokens come from and what they must say.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must name.
    pub audience: String,
    /// The issuer's JSON Web Key Set.
    pub jwks_url: String,
    /// The claim holding the hookd account id.
    pub account_claim: String,
}

/// What a customer token may do, by the `scope` names an issuer grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    WebhooksRead,
    WebhooksWrite,
    VideosRead,
    VideosWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhooksRead => "webhooks:read",
            Self::WebhooksWrite => "webhooks:write",
            Self::VideosRead => "videos:read",
            Self::VideosWrite => "videos:write",
        }
    }
}

/// A checked access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The account claim's value, as the token says it (the API parses and checks it).
    pub account: String,
    scopes: HashSet<String>,
}

impl AccessToken {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(scope.as_str())
    }
}

/// Why a token was refused. Each answers 401, as a bad API key does; the reason is
/// for hookd's log (it never contains the token).
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("not a JWT, or its header does not parse")]
    Malformed,
    #[error("no key of the issuer's JWKS has id {0:?}")]
    UnknownKey(Option<String>),
    #[error("the token's algorithm {token:?} is not its key's ({key:?})")]
    WrongAlgorithm { token: Algorithm, key: Option<Algorithm> },
    #[error("{0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token has no string claim {0:?}")]
    NoAccount(String),
}

/// Whether a bearer credential is a JWT at all: anything else is an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok()
}

/// Checks access tokens against the issuer's keys, which it keeps current.
#[derive(Debug)]
pub struct AccessTokens {
    settings: OAuthSettings,
    keys: KeySet,
}

impl AccessTokens {
    /// Fetches the issuer's keys once. If that fails hookd starts all the same (API
    /// keys still work) and every token is refused until a fetch succeeds.
    pub async fn start(settings: OAuthSettings) -> Result<Self, reqwest::Error> {
        let keys = KeySet::new(settings.jwks_url.clone())?;
        if let Err(error) = keys.refresh().await {
            tracing::warn!(error = %error, jwks_url = %settings.jwks_url, "could not fetch the OAuth issuer's keys; access tokens are refused until they can be fetched");
        }
        Ok(Self { settings, keys })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The account and scopes a valid token grants.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
        let jwk = self.keys.find(header.kid.as_deref()).await.ok_or(Rejected::UnknownKey(header.kid))?;
        let key_algorithm = algorithm_of(&jwk);
        if key_algorithm != Some(header.alg) {
            return Err(Rejected::WrongAlgorithm { token: header.alg, key: key_algorithm });
        }
        let key = DecodingKey::from_jwk(&jwk)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        let claims =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)?
                .claims;
        let account = claims
            .get(&self.settings.account_claim)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Rejected::NoAccount(self.settings.account_claim.clone()))?
            .to_owned();
        Ok(AccessToken { account, scopes: scopes(&claims) })
    }
}

/// The one algorithm a key verifies: what its type implies (RSA: RS256, P-256:
/// ES256, Ed25519: EdDSA), provided its `alg`, if it names one, agrees. Keys for
/// anything else (encryption, HMAC, other curves) verify nothing.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    (named == by_type).then_some(by_type)
}

/// The scopes granted: `scope` (RFC 8693 §4.2, space-separated), or `scp` as Entra ID
/// and Okta send it (a string or an array).
fn scopes(claims: &serde_json::Map<String, serde_json::Value>) -> HashSet<String> {
    let claim = claims.get("scope").or_else(|| claims.get("scp"));
    match claim {
        Some(serde_json::Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).collect()
        }
        _ => HashSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |json: serde_json::Value| json.as_object().cloned().unwrap_or_default();
        let spaced = scopes(&claims(serde_json::json!({"scope": "webhooks:read  videos:write"})));
        assert!(spaced.contains("webhooks:read") && spaced.contains("videos:write"));
        let listed = scopes(&claims(serde_json::json!({"scp": ["webhooks:write"]})));
        assert!(listed.contains("webhooks:write"));
        assert!(scopes(&claims(serde_json::json!({"scope": 3}))).is_empty());
    }

    #[test]
    fn only_three_part_tokens_with_a_header_are_jwts() {
        assert!(!looks_like_jwt("hk_live_abc"));
        assert!(!looks_like_jwt("a.b.c"));
        // {"alg":"ES256","typ":"JWT"} . {} . (no signature check here)
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln"));
        // {"alg":"none"}: not an algorithm hookd knows, so not a token it would check.
        assert!(!looks_like_jwt("eyJhbGciOiJub25lIn0.e30."));
    }
}
