//! `hookd listen`: a local receiver for developers. Prints each delivery (event type,
//! id, pretty JSON) and whether its signatures verify with `--secret`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use clap::Args;
use hookd_signature::{verify_heygen, verify_webhook};

/// Flags of `hookd listen`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, env = "HOOKD_LISTEN_PORT", default_value_t = 9000)]
    pub port: u16,

    /// The endpoint's secret (whsec_...), to verify signatures.
    #[arg(long, env = "HOOKD_LISTEN_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub secret: Option<String>,
}

/// Refuses anything but an endpoint secret, so a failed create (whose error JSON a
/// script captured instead) stops here rather than marking every delivery INVALID.
fn parse_secret(raw: &str) -> Result<String, String> {
    if hookd_signature::Signer::new(raw).is_ok() {
        return Ok(raw.to_owned());
    }
    let shown: String = raw.chars().take(60).collect();
    Err(format!(
        "an endpoint secret looks like whsec_ followed by base64, and this is not one: {shown:?}. \
         If it came from creating an endpoint, that request failed; its answer says why."
    ))
}

pub async fn run(args: ListenArgs) -> std::io::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|error| {
        std::io::Error::new(error.kind(), format!("could not listen on {address}: {error}"))
    })?;
    let address = listener.local_addr()?;
    println!("hookd listen: waiting for deliveries on http://{address}/ (any path)");
    if args.secret.is_none() {
        println!("hookd listen: no --secret given, so signatures are shown but not checked");
    }
    let secret = args.secret.clone();
    let app = axum::Router::new().fallback(any(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let secret = secret.clone();
        async move {
            println!("{}", describe(uri.path(), &headers, &body, secret.as_deref()));
            (StatusCode::OK, "{\"received\":true}")
        }
    }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// The printed report of one delivery.
pub fn describe(path: &str, headers: &HeaderMap, body: &[u8], secret: Option<&str>) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event_id = header("heygen-event-id");
    let timestamp = header("heygen-timestamp");
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let event_type =
        parsed.as_ref().and_then(|v| v["event_type"].as_str()).unwrap_or("<not a hookd delivery>");
    let pretty = parsed
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let heygen = match (header("heygen-signature"), secret) {
        ("", _) => "absent (a callback, or not from hookd)".to_owned(),
        (_, None) => "present, not checked".to_owned(),
        (signature, Some(secret)) => verdict(verify_heygen(secret, body, signature)),
    };
    let standard = match (header("webhook-signature"), secret) {
        ("", _) => "absent".to_owned(),
        (_, None) => "present, not checked".to_owned(),
        (signature, Some(secret)) => match timestamp.parse::<i64>() {
            Ok(ts) => verdict(verify_webhook(secret, header("webhook-id"), ts, body, signature)),
            Err(_) => "INVALID (no usable webhook-timestamp)".to_owned(),
        },
    };
    format!(
        "── {event_type}  event {event_id}  timestamp {timestamp}  to {path}\n   Heygen-Signature:  {heygen}\n   webhook-signature: {standard}\n{pretty}\n"
    )
}

fn verdict(result: Result<(), hookd_signature::SignatureError>) -> String {
    match result {
        Ok(()) => "valid".to_owned(),
        Err(error) => format!("INVALID ({error})"),
    }
}
