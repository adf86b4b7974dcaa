//! One signed send of one event to one URL: the body built from the stored event data
//! (the same bytes every time), signed now with the endpoint's secret as it is now (so
//! a rotation applies at once), and posted through the [`DeliveryClient`]. The
//! dispatcher sends every delivery through it, and the API's endpoint `test` route
//! its one-off sample, so the two cannot drift apart.

use hookd_core::EndpointSecret;
use hookd_signature::Signer;

use crate::client::{AttemptReport, DeliveryClient};
use crate::payload;

/// What to send, and where.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// Compact JSON of the event's `event_data` object, as stored.
    pub event_data: &'a str,
    /// The endpoint's secret; `None` for a callback, which goes unsigned.
    pub secret: Option<&'a EndpointSecret>,
    /// The secret a rotation replaced, while its overlap lasts: it signs too.
    pub previous_secret: Option<&'a EndpointSecret>,
    /// A W3C `traceparent` to send, where the operator asked for it.
    pub traceparent: Option<&'a str>,
}

impl DeliveryClient {
    /// Signs and sends `outgoing`, timestamped `now_secs` (unix seconds).
    pub async fn send(&self, outgoing: Outgoing<'_>, now_secs: i64) -> AttemptReport {
        let signer = match outgoing.secret.map(|secret| Signer::new(secret.expose())).transpose() {
            Ok(signer) => signer,
            // Never send an endpoint's delivery unsigned; hookd only stores well-formed
            // secrets, so this means the database was edited by hand.
            Err(_) => return AttemptReport::refused("the endpoint's secret is unusable; rotate it"),
        };
        // A previous secret that does not parse is left out: the current one signs.
        let previous = outgoing.previous_secret.and_then(|secret| Signer::new(secret.expose()).ok());
        let body = payload::body(outgoing.event_type, outgoing.event_data);
        let mut headers =
            payload::headers(outgoing.event_id, now_secs, &body, signer.as_ref(), previous.as_ref());
        if let Some(traceparent) = outgoing.traceparent {
            headers.push(("traceparent", traceparent.to_owned()));
        }
        self.attempt(outgoing.url, &headers, body).await
    }
}
