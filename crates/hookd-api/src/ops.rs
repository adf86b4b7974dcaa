//! Operational routes: liveness, readiness and Prometheus metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::error::{ApiError, ErrorEnvelope};

/// The longest `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_millis(750);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorEnvelope),
    ))]
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    // Whatever the cause, a database that does not answer means "not ready"; and the
    // answer comes well within a probe's usual 1 s timeout, so the probe sees 503
    // rather than timing out.
    let pinged = hookd_store::within(READY_TIMEOUT.min(state.database_timeout), state.store.ping()).await;
    state.store.availability().observe(&pinged);
    pinged.map_err(ApiError::Unavailable)?;
    Ok(Json(Health { status: "ready" }))
}

#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<ApiState>) -> impl axum::response::IntoResponse {
    // Queue depth is read at scrape time, so it is right on whichever instance is asked.
    match hookd_store::within(state.database_timeout, state.store.queue_depth(crate::now_millis())).await {
        Ok(depth) => {
            let now = crate::now_millis();
            let oldest_due_age = depth.oldest_due_at.map_or(0, |due| now.saturating_sub(due).max(0));
            metrics::gauge!("hookd_database_up").set(1.0);
            metrics::gauge!("hookd_deliveries_due").set(depth.due as f64);
            metrics::gauge!("hookd_deliveries_in_flight").set(depth.in_flight as f64);
            metrics::gauge!("hookd_oldest_due_delivery_age_seconds").set(oldest_due_age as f64 / 1000.0);
            metrics::gauge!("hookd_endpoints_disabled_failing").set(depth.disabled_failing_endpoints as f64);
        }
        Err(error) if error.is_unavailable() => metrics::gauge!("hookd_database_up").set(0.0),
        Err(error) => tracing::warn!(error = %error, "could not read the queue depth for metrics"),
    }
    // The outbox is one table for every instance: what waits there and what was
    // rejected are read at scrape time, like the queue.
    if let Some(outbox) = state.store.outbox() {
        match hookd_store::within(state.database_timeout, outbox.outbox_depth(crate::now_millis())).await {
            Ok(depth) => {
                metrics::gauge!("hookd_outbox_rows_waiting").set(depth.waiting as f64);
                metrics::gauge!("hookd_outbox_oldest_row_age_seconds")
                    .set(depth.oldest_age_ms as f64 / 1000.0);
                metrics::gauge!("hookd_outbox_rows_rejected").set(depth.rejected as f64);
            }
            Err(error) if error.is_unavailable() => {}
            Err(error) => tracing::warn!(error = %error, "could not read the outbox depth for metrics"),
        }
    }
    // Operational events in the history (all instances' emissions; retention prunes
    // them with the rest). Every type has a series from the start, for alert rules.
    let operations = hookd_core::operations_account();
    if let Ok(counts) =
        hookd_store::within(state.database_timeout, state.store.count_events_by_type(&operations)).await
    {
        for kind in hookd_core::OperationalEventType::ALL {
            let count = counts.iter().find(|(name, _)| name == kind.as_str()).map_or(0, |(_, n)| *n);
            metrics::gauge!("hookd_operational_events", "event_type" => kind.as_str()).set(count as f64);
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
