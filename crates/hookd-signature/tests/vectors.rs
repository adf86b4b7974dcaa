//! The contract's `signature-vectors.json`: valid cases sign and verify, invalid ones fail.

use hookd_signature::{SignatureError, Signer, verify_heygen, verify_webhook, verify_webhook_fresh};
use serde_json::Value;

const VECTORS: &str = include_str!("fixtures/signature-vectors.json");

fn cases(kind: &str) -> Vec<Value> {
    let vectors: Value = serde_json::from_str(VECTORS).expect("vectors are JSON");
    vectors[kind].as_array().expect("list").clone()
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap_or_else(|| panic!("{name} in {case}"))
}

#[test]
fn valid_vectors_sign_to_the_expected_values_and_verify() {
    let valid = cases("valid");
    assert_eq!(valid.len(), 5);
    for case in valid {
        let (secret, id, body) = (field(&case, "secret"), field(&case, "event_id"), field(&case, "body"));
        let timestamp = case["timestamp"].as_i64().expect("timestamp");
        let signed = Signer::new(secret).expect("secret").sign(id, timestamp, body.as_bytes());
        assert_eq!(signed.heygen_signature, field(&case, "heygen_signature"), "{id}");
        assert_eq!(signed.webhook_signature, field(&case, "webhook_signature"), "{id}");
        assert_eq!(verify_heygen(secret, body.as_bytes(), field(&case, "heygen_signature")), Ok(()));
        assert_eq!(
            verify_webhook(secret, id, timestamp, body.as_bytes(), field(&case, "webhook_signature")),
            Ok(())
        );
    }
}

#[test]
fn invalid_vectors_fail_verification() {
    let invalid = cases("invalid");
    assert_eq!(invalid.len(), 3);
    for case in invalid {
        let (secret, id, body) = (field(&case, "secret"), field(&case, "event_id"), field(&case, "body"));
        let timestamp = case["timestamp"].as_i64().expect("timestamp");
        let why = field(&case, "why");
        let webhook =
            verify_webhook(secret, id, timestamp, body.as_bytes(), field(&case, "webhook_signature"));
        assert_eq!(webhook, Err(SignatureError::Mismatch), "{why}");
        let heygen = verify_heygen(secret, body.as_bytes(), field(&case, "heygen_signature"));
        if case["heygen_signature_still_valid"] == Value::Bool(true) {
            assert_eq!(heygen, Ok(()), "{why}");
        } else {
            assert_eq!(heygen, Err(SignatureError::Mismatch), "{why}");
        }
    }
}

#[test]
fn webhook_header_with_several_signatures_verifies_if_one_matches() {
    let secret = "whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=";
    let good = Signer::new(secret).expect("secret").sign("id", 5, b"{}").webhook_signature;
    let header = format!("v1,AAAA {good}");
    assert_eq!(verify_webhook(secret, "id", 5, b"{}", &header), Ok(()));
    assert_eq!(verify_webhook(secret, "id", 5, b"{}", "v2,abc"), Err(SignatureError::MalformedSignature));
}

#[test]
fn stale_timestamps_are_refused_when_freshness_is_checked() {
    let secret = "whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=";
    let signed = Signer::new(secret).expect("secret").sign("id", 1000, b"{}");
    let check = |now| verify_webhook_fresh(secret, "id", 1000, b"{}", &signed.webhook_signature, now, 300);
    assert_eq!(check(1200), Ok(()));
    assert_eq!(check(1301), Err(SignatureError::TimestampOutOfTolerance));
}

#[test]
fn malformed_secrets_and_signatures_are_errors_not_panics() {
    assert_eq!(Signer::new("nope").err(), Some(SignatureError::MalformedSecret));
    assert_eq!(Signer::new("whsec_!!!").err(), Some(SignatureError::MalformedSecret));
    assert_eq!(verify_heygen("whsec_x", b"", "zz"), Err(SignatureError::MalformedSignature));
}
