//! Secrets: endpoint signing secrets, API keys and tokens, and the hashes kept of them.
//!
//! None of these types print their value in `Debug`, so a stray `{:?}` in a log line
//! cannot leak one.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::ApiKeyId;
use crate::random::random_bytes;

const SECRET_PREFIX: &str = "whsec_";
const API_KEY_PREFIX: &str = "hk_";

/// An endpoint's signing secret: `whsec_` + standard base64 of 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret(String);

impl EndpointSecret {
    pub fn generate() -> Self {
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(random_bytes::<32>())))
    }

    /// Wraps a secret read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The whole `whsec_...` string, as shown to the customer once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// SHA-256 of a bearer credential (API key or admin token); the only form stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(plaintext: &str) -> Self {
        Self(Sha256::digest(plaintext.as_bytes()).into())
    }

    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let bytes = hex::decode(hex_digest).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time equality, so response timing says nothing about how much matched.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// A customer API key: `hk_<key id>_<43 chars of base64url>`.
///
/// The key id is embedded so that lookup is by id and the secret part is only ever
/// compared as a hash, in constant time.
#[derive(Clone)]
pub struct ApiKey {
    key_id: ApiKeyId,
    plaintext: String,
}

impl ApiKey {
    pub fn generate() -> Self {
        let key_id = ApiKeyId::new_random();
        let plaintext = format!("{API_KEY_PREFIX}{key_id}_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()));
        Self { key_id, plaintext }
    }

    /// Splits a presented key into its id, or `None` if it cannot be one of ours.
    pub fn key_id_of(presented: &str) -> Option<ApiKeyId> {
        let rest = presented.strip_prefix(API_KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if secret.is_empty() {
            return None;
        }
        ApiKeyId::parse(id).ok()
    }

    pub fn key_id(&self) -> &ApiKeyId {
        &self.key_id
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.plaintext)
    }

    pub fn expose(&self) -> &str {
        &self.plaintext
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}, <redacted>)", self.key_id)
    }
}

/// A new random admin token (base64url of 32 bytes).
pub fn generate_admin_token() -> String {
    format!("hka_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_secret_is_whsec_and_base64_of_32_bytes() {
        let secret = EndpointSecret::generate();
        let encoded = secret.expose().strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), 32);
        assert_ne!(secret, EndpointSecret::generate());
    }

    #[test]
    fn debug_output_never_contains_secret_values() {
        let secret = EndpointSecret::generate();
        let key = ApiKey::generate();
        assert!(!format!("{secret:?}").contains(secret.expose()));
        // After `hk_<32 hex>_`; the secret's base64url alphabet includes '_' itself.
        let secret_part = &key.expose()["hk_".len() + 32 + 1..];
        assert_eq!(secret_part.len(), 43);
        assert!(!format!("{key:?}").contains(secret_part));
    }

    #[test]
    fn api_key_id_is_recovered_from_the_presented_key() {
        let key = ApiKey::generate();
        assert_eq!(ApiKey::key_id_of(key.expose()).as_ref(), Some(key.key_id()));
        assert_eq!(ApiKey::key_id_of("hk_nothex_abc"), None);
        assert_eq!(ApiKey::key_id_of("Bearer"), None);
    }

    #[test]
    fn token_hash_matches_only_the_same_plaintext() {
        let hash = TokenHash::of("a");
        assert!(hash.matches(&TokenHash::of("a")));
        assert!(!hash.matches(&TokenHash::of("b")));
        assert!(hash.matches(&TokenHash::from_hex(&hash.to_hex()).expect("hex")));
    }
}
