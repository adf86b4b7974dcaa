//! Operational events on PostgreSQL: the reads around a batch of outcomes that tell
//! [`crate::operational`] what happened, and the publish of what it decides, in the
//! batch's transaction.
//!
//! The endpoints a batch can change are read `FOR UPDATE`, in endpoint-id order (the
//! order the health update locks them in), so two instances recording outcomes for
//! one endpoint at once see each other's change and only one reports it.

use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use sqlx::{Postgres, Transaction};

use super::id_array;
use crate::operational::{self, EndpointState};
use crate::{AttemptOutcome, StoreResult};

/// The batch's endpoints whose state it may change (a failure in the batch, or a
/// failure run it may end), as they were before it; `None` when the operator has no
/// operational endpoint (then nothing is emitted and nothing more is read or locked).
pub(super) async fn before_outcomes(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[AttemptOutcome],
) -> StoreResult<Option<Vec<EndpointState>>> {
    if !has_operational_endpoints(tx).await? {
        return Ok(None);
    }
    let failing: Vec<String> = crate::rows::endpoint_health(outcomes)
        .into_iter()
        .filter(|(_, health)| health.first_failure.is_some())
        .map(|(id, _)| id.to_owned())
        .collect();
    let rows = sqlx::query(
        "SELECT endpoint_id, account_id, url, status, failing_since FROM endpoints
         WHERE endpoint_id = ANY($1) AND (endpoint_id = ANY($2) OR failing_since IS NOT NULL)
           AND account_id <> $3
         ORDER BY endpoint_id FOR UPDATE",
    )
    .bind(operational::endpoint_ids(outcomes))
    .bind(failing)
    .bind(OPERATIONS_ACCOUNT_ID)
    .fetch_all(&mut **tx)
    .await?;
    Ok(Some(rows.iter().map(crate::rows::endpoint_state).collect::<StoreResult<_>>()?))
}

/// Publishes what the batch caused, given the states [`before_outcomes`] read.
pub(super) async fn after_outcomes(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[AttemptOutcome],
    before: &[EndpointState],
) -> StoreResult<()> {
    let after = endpoint_states(tx, &id_array(before.iter().map(|b| &b.endpoint_id))).await?;
    let rows = sqlx::query(
        "SELECT d.delivery_id, d.account_id, d.event_id, d.endpoint_id, COALESCE(p.url, d.callback_url) AS url,
                d.attempts, d.updated_at
         FROM deliveries d LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
         WHERE d.delivery_id = ANY($1) AND d.state = 'failed'",
    )
    .bind(operational::failed_ids(outcomes))
    .fetch_all(&mut **tx)
    .await?;
    let exhausted = rows.iter().map(crate::rows::exhausted_delivery).collect::<StoreResult<Vec<_>>>()?;
    let events = operational::caused_by_outcomes(outcomes, before, &after, &exhausted);
    if !events.is_empty() {
        super::events::publish_in(tx, &events).await?;
    }
    Ok(())
}

/// Publishes what an owner's change of the endpoint's status caused, in the change's
/// transaction; `before` is the endpoint as it was.
pub(super) async fn after_status_change(
    tx: &mut Transaction<'_, Postgres>,
    before: &EndpointState,
    now: i64,
) -> StoreResult<()> {
    if !has_operational_endpoints(tx).await? {
        return Ok(());
    }
    let after = endpoint_states(tx, std::slice::from_ref(&before.endpoint_id)).await?;
    if let Some(event) = after.first().and_then(|after| operational::caused_by_owner(before, after, now)) {
        super::events::publish_in(tx, &[event]).await?;
    }
    Ok(())
}

async fn has_operational_endpoints(tx: &mut Transaction<'_, Postgres>) -> StoreResult<bool> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM endpoints WHERE account_id = $1 AND deleted_at IS NULL)",
    )
    .bind(OPERATIONS_ACCOUNT_ID)
    .fetch_one(&mut **tx)
    .await?;
    Ok(exists)
}

/// The endpoints' states, locked (the caller is about to change them, or did).
pub(super) async fn endpoint_states(
    tx: &mut Transaction<'_, Postgres>,
    endpoint_ids: &[String],
) -> StoreResult<Vec<EndpointState>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, account_id, url, status, failing_since FROM endpoints
         WHERE endpoint_id = ANY($1) ORDER BY endpoint_id FOR UPDATE",
    )
    .bind(endpoint_ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(crate::rows::endpoint_state).collect()
}
