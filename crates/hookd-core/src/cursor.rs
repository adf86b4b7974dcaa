//! Pagination cursors: opaque to clients, tamper-evident, and bound to one list.
//!
//! A token carries only a position (the storage sequence number of the last item
//! returned) and a MAC over that position *and* the list it belongs to: the account,
//! the collection and its filters. A token edited, truncated, or taken from another
//! account's or another filter's list fails verification, so it cannot be used to read
//! anything its holder could not already list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::random::random_bytes;

const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = 8 + MAC_LEN;

/// The key that signs cursors. Kept in the database so tokens survive restarts and
/// are valid on every instance that shares it.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

impl CursorKey {
    pub fn generate() -> Self {
        Self(random_bytes::<32>())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, scope: &str, position: i64) -> [u8; MAC_LEN] {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope.as_bytes());
        mac.update(&position.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut truncated = [0u8; MAC_LEN];
        truncated.copy_from_slice(&full[..MAC_LEN]);
        truncated
    }
}

/// A verified position in one list: items strictly older than it come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: i64,
}

/// A token that is not one this server issued for this list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'token' is not a valid pagination token for this list")]
pub struct CursorError;

impl Cursor {
    /// Encodes the position, bound to `scope`.
    pub fn encode(self, key: &CursorKey, scope: &str) -> String {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[..8].copy_from_slice(&self.position.to_be_bytes());
        bytes[8..].copy_from_slice(&key.mac(scope, self.position));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Accepts only a token that `encode` produced with this key and this scope.
    pub fn decode(token: &str, key: &CursorKey, scope: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| CursorError)?;
        let bytes: [u8; TOKEN_LEN] = bytes.try_into().map_err(|_| CursorError)?;
        let mut position = [0u8; 8];
        position.copy_from_slice(&bytes[..8]);
        let position = i64::from_be_bytes(position);
        let expected = key.mac(scope, position);
        if subtle::ConstantTimeEq::ct_eq(&expected[..], &bytes[8..]).into() {
            Ok(Self { position })
        } else {
            Err(CursorError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_decodes_to_its_position_in_its_own_scope() {
        let key = CursorKey::generate();
        let token = Cursor { position: 42 }.encode(&key, "endpoints:a");
        assert_eq!(Cursor::decode(&token, &key, "endpoints:a"), Ok(Cursor { position: 42 }));
    }

    #[test]
    fn tampered_truncated_foreign_or_rekeyed_tokens_are_refused() {
        let key = CursorKey::generate();
        let token = Cursor { position: 42 }.encode(&key, "endpoints:a");
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        for (candidate, scope, key) in [
            (tampered.as_str(), "endpoints:a", &key),
            (&token[..token.len() - 2], "endpoints:a", &key),
            (token.as_str(), "endpoints:b", &key),
            (token.as_str(), "endpoints:a", &CursorKey::generate()),
            ("not base64!", "endpoints:a", &key),
            ("", "endpoints:a", &key),
        ] {
            assert_eq!(Cursor::decode(candidate, key, scope), Err(CursorError), "{candidate} in {scope}");
        }
    }
}
