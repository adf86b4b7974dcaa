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
/// During a rotation's overlap, `previous` (the secret it replaced) signs too: its
/// signature follows the current one in `webhook-signature` (`v1,<new> v1,<old>`, as
/// Standard Webhooks allows), while `Heygen-Signature`, which holds one, is the new
/// secret's.
pub fn headers(
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    signer: Option<&Signer>,
    previous: Option<&Signer>,
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
        let mut webhook_signature = signed.webhook_signature;
        if let Some(previous) = previous {
            webhook_signature.push(' ');
            webhook_signature.push_str(&previous.sign(event_id, timestamp, body).webhook_signature);
        }
        headers.push(("webhook-signature", webhook_signature));
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
        let unsigned = headers("e", 1, b"{}", None, None);
        assert!(unsigned.iter().all(|(name, _)| !name.contains("signature")));
        let signer = Signer::new("whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=").expect("secret");
        let signed = headers("e", 1, b"{}", Some(&signer), None);
        assert!(signed.iter().any(|(name, _)| *name == "heygen-signature"));
        assert!(signed.iter().any(|(name, _)| *name == "webhook-signature"));
    }

    #[test]
    fn during_an_overlap_both_secrets_sign_the_standard_header_and_only_the_new_one_heygens() {
        use hookd_signature::{verify_heygen, verify_webhook};
        let new = "whsec_UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/yOaE=";
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"event_type":"batch.finished","event_data":{}}"#;
        let (new_signer, old_signer) = (Signer::new(new).expect("new"), Signer::new(old).expect("old"));
        let headers = headers("evt", 7, body, Some(&new_signer), Some(&old_signer));
        let header =
            |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).expect(name);
        let standard = header("webhook-signature");
        assert_eq!(standard.split(' ').count(), 2, "v1,<new> v1,<old>: {standard}");
        assert!(verify_webhook(new, "evt", 7, body, standard).is_ok());
        assert!(verify_webhook(old, "evt", 7, body, standard).is_ok());
        assert!(verify_heygen(new, body, header("heygen-signature")).is_ok());
        assert!(
            verify_heygen(old, body, header("heygen-signature")).is_err(),
            "one signature there: the new"
        );
    }
}
