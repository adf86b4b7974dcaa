//! Endpoint secrets at rest: sealed with XChaCha20-Poly1305 under the operator's
//! master key before they reach the database, opened only to sign an attempt or to
//! show a new secret once.
//!
//! The endpoint id is the associated data, so a sealed secret copied onto another
//! endpoint's row does not open there: someone who can write the database but not
//! read the key cannot make one endpoint sign with another's secret. Nonces are 192
//! random bits, safe to draw at random for as many seals as hookd will ever make.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::random::random_bytes;
use crate::secret::EndpointSecret;

/// What a sealed value starts with; the version leaves room for another scheme.
const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 24;
/// Sealed and opened at startup to tell a wrong master key from the right one.
const KEY_CHECK_PLAINTEXT: &str = "hookd master key check";
const KEY_CHECK_CONTEXT: &str = "hookd:key-check";

/// The 32-byte key that seals endpoint secrets. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

/// Why a master key or a sealed value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a master key is 64 hexadecimal characters (32 bytes)")]
    MalformedKey,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open with this master key")]
    WrongKey,
}

impl MasterKey {
    pub fn generate() -> Self {
        Self(random_bytes::<32>())
    }

    /// Parses 64 hex characters (surrounding whitespace ignored, as in a key file).
    pub fn from_hex(raw: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(raw.trim()).map_err(|_| SealError::MalformedKey)?;
        Ok(Self(bytes.try_into().map_err(|_| SealError::MalformedKey)?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Seals and opens endpoint secrets under one master key.
#[derive(Clone)]
pub struct SecretSealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSealer(<key redacted>)")
    }
}

impl SecretSealer {
    pub fn new(key: &MasterKey) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&key.0.into()) }
    }

    /// `sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag), bound to `context` (the
    /// endpoint id).
    pub fn seal(&self, secret: &EndpointSecret, context: &str) -> String {
        self.seal_str(secret.expose(), context)
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<EndpointSecret, SealError> {
        self.open_str(sealed, context).map(EndpointSecret::from_stored)
    }

    /// Whether a stored value is sealed (rather than a secret written in clear by a
    /// hookd from before sealing, which startup seals).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// The stored value of one secret, sealed under `next` instead (for a master key
    /// rotation). A value still in clear is sealed as it is.
    pub fn reseal(&self, stored: &str, context: &str, next: &SecretSealer) -> Result<String, SealError> {
        if !Self::is_sealed(stored) {
            return Ok(next.seal_str(stored, context));
        }
        Ok(next.seal_str(&self.open_str(stored, context)?, context))
    }

    /// A value to keep beside the data: [`Self::verify_key_check`] fails on it under
    /// any other key, so a wrong key is refused at startup, not at the first delivery.
    pub fn key_check(&self) -> String {
        self.seal_str(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT)
    }

    pub fn verify_key_check(&self, stored: &str) -> Result<(), SealError> {
        match self.open_str(stored, KEY_CHECK_CONTEXT)?.as_str() {
            KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(SealError::WrongKey),
        }
    }

    fn seal_str(&self, plaintext: &str, context: &str) -> String {
        let nonce = random_bytes::<NONCE_LEN>();
        let payload = Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() };
        // Encryption fails only for messages beyond the cipher's limit (256 GiB).
        #[allow(clippy::expect_used)]
        let ciphertext =
            self.cipher.encrypt(XNonce::from_slice(&nonce), payload).expect("a short secret seals");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed))
    }

    fn open_str(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let encoded = stored.strip_prefix(SEALED_PREFIX).ok_or(SealError::Malformed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload { msg: ciphertext, aad: context.as_bytes() };
        let plaintext =
            self.cipher.decrypt(XNonce::from_slice(nonce), payload).map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plaintext).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SecretSealer {
        SecretSealer::new(&MasterKey::generate())
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_does_not_contain_it() {
        let sealer = sealer();
        let secret = EndpointSecret::generate();
        let sealed = sealer.seal(&secret, "endpoint-a");
        assert!(SecretSealer::is_sealed(&sealed));
        assert!(!sealed.contains(secret.expose()));
        assert!(!sealed.contains(&secret.expose()["whsec_".len()..]));
        assert_eq!(sealer.open(&sealed, "endpoint-a"), Ok(secret));
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        let sealer = sealer();
        let secret = EndpointSecret::generate();
        assert_ne!(sealer.seal(&secret, "e"), sealer.seal(&secret, "e"));
    }

    #[test]
    fn a_sealed_secret_does_not_open_for_another_endpoint() {
        let sealer = sealer();
        let sealed = sealer.seal(&EndpointSecret::generate(), "endpoint-a");
        assert_eq!(sealer.open(&sealed, "endpoint-b"), Err(SealError::WrongKey));
    }

    #[test]
    fn a_sealed_secret_does_not_open_under_another_key() {
        let sealed = sealer().seal(&EndpointSecret::generate(), "e");
        assert_eq!(sealer().open(&sealed, "e"), Err(SealError::WrongKey));
    }

    #[test]
    fn tampered_and_malformed_values_are_refused() {
        let sealer = sealer();
        let sealed = sealer.seal(&EndpointSecret::generate(), "e");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap_or_default();
        assert_eq!(sealer.open(&tampered, "e"), Err(SealError::WrongKey));
        for bad in ["", "whsec_abc", "sealed:v1:", "sealed:v1:!!!", "sealed:v1:AAAA"] {
            assert_eq!(sealer.open(bad, "e"), Err(SealError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_key_check_passes_only_under_the_same_key() {
        let key = MasterKey::generate();
        let check = SecretSealer::new(&key).key_check();
        let same =
            SecretSealer::new(&MasterKey::from_hex(&key.to_hex()).unwrap_or_else(|_| MasterKey::generate()));
        assert_eq!(same.verify_key_check(&check), Ok(()));
        assert_eq!(sealer().verify_key_check(&check), Err(SealError::WrongKey));
    }

    #[test]
    fn master_keys_parse_from_64_hex_characters_only() {
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::from_hex(&format!("{}\n", "ab".repeat(32))).is_ok());
        for bad in ["", "abc", &"ab".repeat(31), &"zz".repeat(32), &"ab".repeat(33)] {
            assert_eq!(MasterKey::from_hex(bad).map(|_| ()), Err(SealError::MalformedKey), "{bad:?}");
        }
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey(<redacted>)");
    }

    #[test]
    fn resealing_moves_a_secret_to_the_next_key_only() {
        let (old, next) =
            (SecretSealer::new(&MasterKey::generate()), SecretSealer::new(&MasterKey::generate()));
        let secret = EndpointSecret::generate();
        let sealed = old.seal(&secret, "endpoint-a");
        let resealed = old.reseal(&sealed, "endpoint-a", &next).expect("reseal");
        assert_eq!(next.open(&resealed, "endpoint-a").expect("opens under the next key"), secret);
        assert!(old.open(&resealed, "endpoint-a").is_err(), "the old key no longer opens it");
        let from_clear = old.reseal(secret.expose(), "endpoint-a", &next).expect("reseal a clear value");
        assert_eq!(next.open(&from_clear, "endpoint-a").expect("opens"), secret);
        assert!(old.reseal(&sealed, "endpoint-b", &next).is_err(), "bound to its endpoint");
    }
}
