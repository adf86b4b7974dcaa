//! Signing and verification of webhook deliveries, for hookd and for receivers.
//!
//! Every delivery carries two signatures computed with the endpoint's secret
//! (`whsec_` + base64 of 32 bytes):
//!
//! - `Heygen-Signature`: lowercase hex HMAC-SHA256 keyed with the UTF-8 bytes of the
//!   whole secret string, over the raw body. HeyGen-compatible; it does not cover the
//!   timestamp, so it cannot stop replays.
//! - `webhook-signature` (Standard Webhooks): `v1,` + base64 HMAC-SHA256 keyed with
//!   the base64-decoded part after `whsec_`, over `<id>.<timestamp>.<body>`.
//!
//! This crate depends on no other hookd crate, so a receiver written in Rust can use it
//! alone:
//!
//! ```
//! use hookd_signature::{Signer, verify_heygen, verify_webhook};
//! let secret = "whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=";
//! let signed = Signer::new(secret).unwrap().sign("e0f1", 1764180000, b"{}");
//! verify_heygen(secret, b"{}", &signed.heygen_signature).unwrap();
//! verify_webhook(secret, "e0f1", 1764180000, b"{}", &signed.webhook_signature).unwrap();
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

/// Why a secret or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret is not whsec_ followed by standard base64")]
    MalformedSecret,
    #[error("the signature header is malformed")]
    MalformedSignature,
    #[error("no signature matches")]
    Mismatch,
    #[error("the timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
}

/// Both signature header values for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// `Heygen-Signature`.
    pub heygen_signature: String,
    /// `webhook-signature`.
    pub webhook_signature: String,
}

/// An endpoint secret with both HMAC keys prepared once, for signing many deliveries.
#[derive(Clone)]
pub struct Signer {
    heygen_key: HmacSha256,
    webhook_key: HmacSha256,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Result<Self, SignatureError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(SignatureError::MalformedSecret)?;
        let webhook_bytes = STANDARD.decode(encoded).map_err(|_| SignatureError::MalformedSecret)?;
        Ok(Self { heygen_key: hmac_key(secret.as_bytes()), webhook_key: hmac_key(&webhook_bytes) })
    }

    /// Signs one attempt of a delivery.
    pub fn sign(&self, event_id: &str, timestamp: i64, body: &[u8]) -> Signatures {
        let mut heygen = self.heygen_key.clone();
        heygen.update(body);
        Signatures {
            heygen_signature: hex::encode(heygen.finalize().into_bytes()),
            webhook_signature: format!("v1,{}", STANDARD.encode(self.webhook_mac(event_id, timestamp, body))),
        }
    }

    fn webhook_mac(&self, event_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.webhook_key.clone();
        mac.update(event_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

fn hmac_key(key: &[u8]) -> HmacSha256 {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// Checks a `Heygen-Signature` value against the body, in constant time.
pub fn verify_heygen(secret: &str, body: &[u8], signature: &str) -> Result<(), SignatureError> {
    let presented = hex::decode(signature.trim()).map_err(|_| SignatureError::MalformedSignature)?;
    let mut mac = hmac_key(secret.as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    if expected.as_slice().ct_eq(&presented).into() { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// Checks a `webhook-signature` header, which may list several space-separated
/// `v1,<base64>` signatures (during a secret rotation); one match is enough.
pub fn verify_webhook(
    secret: &str,
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let expected = Signer::new(secret)?.webhook_mac(event_id, timestamp, body);
    let mut any_v1 = false;
    for candidate in header.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else { continue };
        any_v1 = true;
        if let Ok(presented) = STANDARD.decode(encoded)
            && bool::from(expected.as_slice().ct_eq(&presented))
        {
            return Ok(());
        }
    }
    if any_v1 { Err(SignatureError::Mismatch) } else { Err(SignatureError::MalformedSignature) }
}

/// [`verify_webhook`], and refuses a timestamp more than `tolerance_seconds` away from
/// `now` (unix seconds), so a captured request cannot be replayed later.
pub fn verify_webhook_fresh(
    secret: &str,
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    // Both come from outside (a header, a clock): subtracting could overflow.
    if now.abs_diff(timestamp) > u64::try_from(tolerance_seconds).unwrap_or(0) {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    verify_webhook(secret, event_id, timestamp, body, header)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// Found by the `signature_verify` fuzz target: a timestamp header far from now
    /// overflowed the subtraction (a panic in debug builds, a wrapped answer in release).
    #[test]
    fn timestamps_at_the_ends_of_the_range_are_refused_not_a_panic() {
        for (timestamp, now) in [
            (7_161_784_181_843_034_308, -4_268_286_544_562_567_996),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN, 1_795_731_250),
        ] {
            let signed = Signer::new(SECRET).map(|signer| signer.sign("evt", timestamp, b"{}"));
            let header = signed.map(|s| s.webhook_signature).unwrap_or_default();
            let verdict = verify_webhook_fresh(SECRET, "evt", timestamp, b"{}", &header, now, 300);
            assert_eq!(verdict, Err(SignatureError::TimestampOutOfTolerance), "{timestamp} at {now}");
        }
    }

    #[test]
    fn a_negative_tolerance_accepts_only_the_same_second() {
        let header =
            Signer::new(SECRET).map(|s| s.sign("evt", 100, b"{}").webhook_signature).unwrap_or_default();
        assert_eq!(verify_webhook_fresh(SECRET, "evt", 100, b"{}", &header, 100, -5), Ok(()));
        assert_eq!(
            verify_webhook_fresh(SECRET, "evt", 100, b"{}", &header, 101, -5),
            Err(SignatureError::TimestampOutOfTolerance)
        );
    }
}
