//! Operational events on SQLite: the reads around a batch of outcomes that tell
//! [`crate::operational`] what happened, and the publish of what it decides, in the
//! batch's transaction.

use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use sqlx::{Sqlite, Transaction};

use super::json_array;
use crate::operational::{self, EndpointState};
use crate::{AttemptOutcome, StoreResult};

/// The batch's endpoints as they were before it, or `None` when the operator has no
/// operational endpoint (then nothing is emitted and nothing more is read).
pub(super) async fn before_outcomes(
    tx: &mut Transaction<'_, Sqlite>,
    outcomes: &[AttemptOutcome],
) -> StoreResult<Option<Vec<EndpointState>>> {
    if !has_operational_endpoints(tx).await? {
        return Ok(None);
    }
    Ok(Some(endpoint_states(tx, &operational::endpoint_ids(outcomes)).await?))
}

/// Publishes what the batch caused, given the states [`before_outcomes`] read.
pub(super) async fn after_outcomes(
    tx: &mut Transaction<'_, Sqlite>,
    outcomes: &[AttemptOutcome],
    before: &[EndpointState],
) -> StoreResult<()> {
    let after = endpoint_states(tx, &operational::endpoint_ids(outcomes)).await?;
    let rows = sqlx::query(
        "SELECT d.delivery_id, d.account_id, d.event_id, d.endpoint_id, COALESCE(p.url, d.callback_url) AS url,
                d.attempts, d.updated_at
         FROM deliveries d LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
         WHERE d.delivery_id IN (SELECT value FROM json_each(?)) AND d.state = 'failed'",
    )
    .bind(json_array(operational::failed_ids(outcomes).iter()))
    .fetch_all(&mut **tx)
    .await?;
    let exhausted = rows.iter().map(crate::rows::exhausted_delivery).collect::<StoreResult<Vec<_>>>()?;
    let events = operational::caused_by_outcomes(outcomes, before, &after, &exhausted);
    if !events.is_empty() {
        super::events::publish_in(tx, &events).await?;
    }
    Ok(())
}

pub(super) async fn has_operational_endpoints(tx: &mut Transaction<'_, Sqlite>) -> StoreResult<bool> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM endpoints WHERE account_id = ? AND deleted_at IS NULL)",
    )
    .bind(OPERATIONS_ACCOUNT_ID)
    .fetch_one(&mut **tx)
    .await?;
    Ok(exists)
}

pub(super) async fn endpoint_states(
    tx: &mut Transaction<'_, Sqlite>,
    endpoint_ids: &[String],
) -> StoreResult<Vec<EndpointState>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, account_id, url, status, failing_since FROM endpoints
         WHERE endpoint_id IN (SELECT value FROM json_each(?)) ORDER BY endpoint_id",
    )
    .bind(json_array(endpoint_ids.iter()))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(crate::rows::endpoint_state).collect()
}

/// Publishes what an owner's change of the endpoint's status caused, in the change's
/// transaction; `before` is the endpoint as it was.
pub(super) async fn after_status_change(
    tx: &mut Transaction<'_, Sqlite>,
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
