//! Traces over OTLP from the real binary, received by a real OTLP/HTTP receiver written
//! here (protobuf decoded with the OpenTelemetry proto types): a publish that carries a
//! `traceparent` and its delivery attempt land in the producer's trace, linked parent to
//! child; with no OTEL variable set, nothing is exported.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::process::RunningBinary;
use crate::support::receiver::TestReceiver;
use crate::support::send;

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct ExportedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An OTLP/HTTP receiver on `address`: `POST /v1/traces` with a protobuf body.
async fn otlp_receiver_on(address: &str) -> Option<(String, mpsc::UnboundedReceiver<ExportedSpan>)> {
    let (sender, spans) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sender = sender.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|resource| &resource.attributes)
                        .find(|attribute| attribute.key == "service.name")
                        .map(|attribute| text(attribute.value.as_ref()))
                        .unwrap_or_default();
                    for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                        let _ = sender.send(ExportedSpan {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            attributes: span
                                .attributes
                                .iter()
                                .map(|attribute| (attribute.key.clone(), text(attribute.value.as_ref())))
                                .collect(),
                        });
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(address).await.ok()?;
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Some((url, spans))
}

async fn otlp_receiver() -> (String, mpsc::UnboundedReceiver<ExportedSpan>) {
    otlp_receiver_on("127.0.0.1:0").await.expect("bind")
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(AnyValue::StringValue(text)) => text.clone(),
        Some(AnyValue::IntValue(number)) => number.to_string(),
        Some(AnyValue::BoolValue(flag)) => flag.to_string(),
        Some(AnyValue::DoubleValue(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// Starts the binary with `envs`, an endpoint to `receiver`, and publishes one event
/// with `traceparent`; returns the binary and the delivery's request.
async fn publish_one(
    dir: &std::path::Path,
    flags: &[&str],
    envs: &[(&str, &str)],
    receiver: &mut TestReceiver,
    traceparent: &str,
) -> (RunningBinary, crate::support::receiver::Received) {
    let mut all_flags = vec!["--allow-http", "--allow-destination", "127.0.0.0/8"];
    all_flags.extend_from_slice(flags);
    let running = RunningBinary::start(dir, &all_flags, envs).await;
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect(file).trim().to_owned();
    let (key, token, account) = (read("default-api-key"), read("admin-token"), read("default-account-id"));
    let http = reqwest::Client::new();
    let create = http.post(format!("{}/v3/webhooks/endpoints", running.base_url)).header("X-Api-Key", &key);
    send(create.json(&json!({"url": receiver.url("/traced")}))).await.assert_ok();
    let publish = http
        .post(format!("{}/admin/v1/events", running.base_url))
        .bearer_auth(&token)
        .header("traceparent", traceparent)
        .json(&json!({"account_id": account, "event_type": "batch.finished", "event_data": {"n": 1}}));
    assert_eq!(send(publish).await.status.as_u16(), 202);
    (running, receiver.next().await)
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_publish_with_a_traceparent_and_its_delivery_attempt_join_the_producers_trace() {
    let (otlp, mut spans) = otlp_receiver().await;
    let mut receiver = TestReceiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_SERVICE_NAME", "hookd-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let (running, delivery) = publish_one(dir.path(), &[], &envs, &mut receiver, &traceparent).await;
    assert_eq!(delivery.header("traceparent"), "", "receivers are not sent hookd's trace ids");

    // Spans are exported as they end, in batches: the attempt can be sent before the
    // request span that carried the publish has closed, so wait for all three.
    let mut in_trace: Vec<ExportedSpan> = Vec::new();
    let expected = ["request", "publish", "delivery attempt"];
    while !expected.iter().all(|name| in_trace.iter().any(|span| span.name == *name)) {
        let span = tokio::time::timeout(crate::support::receiver::PATIENCE, spans.recv())
            .await
            .expect("spans arrive at the OTLP receiver")
            .expect("receiver running");
        if span.trace_id == TRACE_ID {
            in_trace.push(span);
        }
    }
    running.stop().await;
    let named = |name: &str| {
        in_trace
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("a {name} span: {in_trace:#?}"))
    };
    let (request, publish, attempt) = (named("request"), named("publish"), named("delivery attempt"));
    assert_eq!(request.parent_span_id, PRODUCER_SPAN, "the request continues the producer's span");
    assert_eq!(request.attributes["path"], "/admin/v1/events");
    assert_eq!(publish.parent_span_id, request.span_id);
    assert_eq!(publish.attributes["deliveries"], "1");
    assert_eq!(publish.attributes["event_id"], delivery.header("heygen-event-id"));
    assert_eq!(attempt.parent_span_id, publish.span_id, "the attempt is the publish's child");
    assert_eq!(attempt.attributes["attempt"], "1");
    assert_eq!(attempt.attributes["status_code"], "200");
    assert!(attempt.attributes.contains_key("endpoint_id") && attempt.attributes.contains_key("duration_ms"));
    assert!(in_trace.iter().all(|span| span.service == "hookd-under-test"), "OTEL_SERVICE_NAME is read");
    let values: Vec<&String> = in_trace.iter().flat_map(|span| span.attributes.values()).collect();
    assert!(
        values.iter().all(|value| !value.contains("whsec_") && !value.contains("hk_")),
        "no secret: {values:?}"
    );
}

#[tokio::test]
async fn without_an_otlp_endpoint_nothing_is_exported() {
    // OTLP's default address: an exporter set up without an endpoint would send here.
    let Some((_, mut spans)) = otlp_receiver_on("127.0.0.1:4318").await else {
        eprintln!("note: 127.0.0.1:4318 is taken; without_an_otlp_endpoint_nothing_is_exported skipped");
        return;
    };
    let mut receiver = TestReceiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Other OTEL variables alone do not turn export on.
    let envs = [("OTEL_SERVICE_NAME", "hookd-under-test"), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let (running, _) = publish_one(dir.path(), &[], &envs, &mut receiver, &traceparent).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    assert!(spans.try_recv().is_err(), "no span was exported");
}

#[tokio::test]
async fn with_send_traceparent_a_receiver_gets_its_attempts_span() {
    let (otlp, _spans) = otlp_receiver().await;
    let mut receiver = TestReceiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let envs = [("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let (running, delivery) =
        publish_one(dir.path(), &["--send-traceparent"], &envs, &mut receiver, &traceparent).await;
    running.stop().await;
    let sent = delivery.header("traceparent");
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "the producer's trace: {sent:?}");
    assert!(!sent.contains(PRODUCER_SPAN), "the attempt's own span, not the producer's: {sent:?}");
}

#[tokio::test]
async fn an_attempt_made_by_another_instance_joins_the_publishs_trace() {
    use crate::support::cluster::{Instance, TestDatabase};
    let Some(database) = TestDatabase::shared().await else { return };
    let (otlp, mut spans) = otlp_receiver().await;
    let mut receiver = TestReceiver::start().await;
    let envs = [("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    // One instance only serves the API, the other only delivers.
    let api = Instance::start_with_env(&database, &["--role", "api"], &envs).await;
    let worker = Instance::start_with_env(&database, &["--role", "worker"], &envs).await;
    let (account, key) = api.new_account().await;
    api.create_endpoint(&key, &receiver.url("/elsewhere")).await;
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let publish = reqwest::Client::new()
        .post(api.url("/admin/v1/events"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .header("traceparent", &traceparent)
        .json(&json!({"account_id": account, "event_type": "batch.finished", "event_data": {}}));
    assert_eq!(send(publish).await.status.as_u16(), 202);
    receiver.next().await;

    let mut in_trace: Vec<ExportedSpan> = Vec::new();
    while !(in_trace.iter().any(|s| s.name == "delivery attempt")
        && in_trace.iter().any(|s| s.name == "publish"))
    {
        let span = tokio::time::timeout(crate::support::receiver::PATIENCE, spans.recv())
            .await
            .expect("spans arrive")
            .expect("receiver running");
        if span.trace_id == TRACE_ID {
            in_trace.push(span);
        }
    }
    api.binary.stop().await;
    worker.binary.stop().await;
    database.finish().await;
    let publish = in_trace.iter().find(|s| s.name == "publish").expect("publish");
    let attempt = in_trace.iter().find(|s| s.name == "delivery attempt").expect("attempt");
    assert_eq!(attempt.parent_span_id, publish.span_id, "linked through the database: {in_trace:#?}");
}
