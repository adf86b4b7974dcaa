//! What a receiver gets: the body `{"event_type": ..., "event_data": ...}` (compact,
//! the same bytes on every attempt) and the headers of contract section 5.

use bytes::Bytes;
use hookd_signature::Signer;

/// The delivered body. `event_data` is stored as the compact JSON it was published
/// as, so building the body from it gives the same bytes on every attempt.
pub fn body(event_type: &str, event_data: &str) -> Bytes {
    let event_type = serde_json::Value::String(event_type.to_owned()).to_string();
    Bytes::from(format!("{{\"event_type\":{event_type},\"event_data\":{event_data}}}"))
}

/// The headers of one attempt, signed with the endpoint's secret at send time.
/// Callbacks (`signer` is `None`) carry the event id and timestamp but no signature.
pub fn headers(
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    signer: Option<&Signer>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("heygen-event-id", event_id.to_owned()),
        ("heygen-timestamp", timestamp.to_string()),
    ];
    if let Some(signer) = signer {
        let signed = signer.sign(event_id, timestamp, body);
        headers.push(("heygen-signature", signed.heygen_signature));
        headers.push(("webhook-id", event_id.to_owned()));
        headers.push(("webhook-timestamp", timestamp.to_string()));
        headers.push(("webhook-signature", signed.webhook_signature));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_compact_and_has_exactly_the_two_fields() {
        let body = body("avatar_video.success", r#"{"video_id":"v1"}"#);
        assert_eq!(&body[..], br#"{"event_type":"avatar_video.success","event_data":{"video_id":"v1"}}"#);
    }

    #[test]
    fn callbacks_are_not_signed() {
        let unsigned = headers("e", 1, b"{}", None);
        assert!(unsigned.iter().all(|(name, _)| !name.contains("signature")));
        let signer = Signer::new("whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=").expect("secret");
        let signed = headers("e", 1, b"{}", Some(&signer));
        assert!(signed.iter().any(|(name, _)| *name == "heygen-signature"));
        assert!(signed.iter().any(|(name, _)| *name == "webhook-signature"));
    }
}
