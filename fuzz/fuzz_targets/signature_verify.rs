//! Receivers (and `hookd listen`) verify signatures over bytes an attacker controls:
//! the body, the headers, the timestamp. Verification must never panic, must accept
//! what hookd signed, and must refuse a signature over anything else.
#![no_main]

use hookd_signature::{Signer, verify_heygen, verify_webhook, verify_webhook_fresh};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fuzz_target!(|input: (&str, &str, i64, &[u8], &str, i64, i64)| {
    let (event_id, header, timestamp, body, heygen, now, tolerance) = input;
    // Whatever is presented, verifying returns an answer.
    let _ = verify_heygen(SECRET, body, heygen);
    let _ = verify_webhook(SECRET, event_id, timestamp, body, header);
    let _ = verify_webhook_fresh(SECRET, event_id, timestamp, body, header, now, tolerance);

    let Ok(signer) = Signer::new(SECRET) else { return };
    let signatures = signer.sign(event_id, timestamp, body);
    assert!(verify_heygen(SECRET, body, &signatures.heygen_signature).is_ok());
    assert!(verify_webhook(SECRET, event_id, timestamp, body, &signatures.webhook_signature).is_ok());
    let mut other = body.to_vec();
    other.push(0);
    assert!(verify_heygen(SECRET, &other, &signatures.heygen_signature).is_err());
    assert!(verify_webhook(SECRET, event_id, timestamp, &other, &signatures.webhook_signature).is_err());
});
