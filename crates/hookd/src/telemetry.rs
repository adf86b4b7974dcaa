//! Logging and traces: `tracing` to stderr, text or JSON, level from `HOOKD_LOG`
//! (default `info`); and, when the OpenTelemetry variables ask for it, the same spans
//! exported over OTLP ([`crate::traces`]). Text is coloured only on a terminal, and
//! never with `NO_COLOR` set.
//!
//! Request and response bodies and headers are never logged, so secrets and keys
//! cannot reach the log through the request path.

use std::io::IsTerminal;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] sends what is buffered.
#[must_use = "dropping it without shutdown loses the last spans"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (waiting at most the SDK's export timeout).
    pub async fn shutdown(self) {
        if let Some(provider) = self.traces {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(error)) = flushed {
                eprintln!("hookd: could not export the last traces: {error}");
            }
        }
    }
}

/// Installs the global subscriber. Call inside the Tokio runtime.
pub fn init(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_env("HOOKD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let colour = colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let traces = crate::traces::provider().unwrap_or_else(|error| {
        eprintln!("hookd: traces are off: {error}");
        None
    });
    let registry =
        tracing_subscriber::registry().with(filter).with(traces.as_ref().map(crate::traces::layer));
    let text = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => registry.with(text).init(),
        LogFormat::Json => registry.with(text.json()).init(),
    }
    Telemetry { traces }
}

/// Colour codes belong on a terminal only (a file or a pipe would keep them), and
/// <https://no-color.org>: a non-empty `NO_COLOR` turns them off.
fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour_wanted;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None), "a file or a pipe gets plain text");
    }
}
