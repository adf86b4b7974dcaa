//! Traces over OTLP (HTTP/protobuf), configured by the standard OpenTelemetry variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns export
//! on; `OTEL_SERVICE_NAME` (default `hookd`), `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`, `OTEL_EXPORTER_OTLP_HEADERS` and the `OTEL_BSP_*`
//! batch settings are read by the SDK. With no endpoint set nothing is installed: no
//! exporter, no OpenTelemetry layer, no cost.
//!
//! What is exported is the `tracing` spans hookd already has: each API request, each
//! publish (event id, deliveries) and each delivery attempt (endpoint, attempt number,
//! status or error, duration). No span field holds a secret, a key or a body.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];

/// Whether the environment asks for trace export.
pub fn wanted() -> bool {
    ENDPOINT_VARS.iter().any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The exporter's provider, when export is wanted and can be set up. Needs a Tokio
/// runtime: batches are sent from a task of it.
pub fn provider() -> Result<Option<SdkTracerProvider>, String> {
    if !wanted() {
        return Ok(None);
    }
    for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
        if let Ok(protocol) = std::env::var(name)
            && protocol != "http/protobuf"
        {
            return Err(format!("{name}={protocol:?}: hookd exports traces over http/protobuf only"));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|error| format!("could not set up the OTLP trace exporter: {error}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("hookd");
    }
    let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Ok(Some(
        SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource.build()).build(),
    ))
}

/// The `tracing` layer that turns spans into OpenTelemetry spans for `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("hookd"))
}
