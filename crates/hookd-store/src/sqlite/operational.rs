//! Operational events on SQLite: the reads around a batch of outcomes (on the write
//! engine) or an owner's status change (in its sqlx transaction) that tell
//! [`crate::operational`] what happened, and the publish of what it decides, in the
//! same transaction.

use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use rusqlite::Connection;
use sqlx::{Sqlite, Transaction};

use super::json_array;
use crate::operational::{self, EndpointState};
use crate::{AttemptOutcome, StoreResult};

const HAS_OPERATIONAL_ENDPOINTS: &str =
    "SELECT EXISTS (SELECT 1 FROM endpoints WHERE account_id = ?1 AND deleted_at IS NULL)";

const ENDPOINT_STATES: &str = "
    SELECT endpoint_id, account_id, url, status, failing_since FROM endpoints
    WHERE endpoint_id IN (SELECT value FROM json_each(?1)) ORDER BY endpoint_id";

/// The batch's deliveries that failed for good, for the `delivery.exhausted` events.
const EXHAUSTED: &str = "
    SELECT d.delivery_id, d.account_id, d.event_id, d.endpoint_id, COALESCE(p.url, d.callback_url) AS url,
           d.attempts, d.updated_at
    FROM deliveries d LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
    WHERE d.delivery_id IN (SELECT value FROM json_each(?1)) AND d.state = 'failed'";

/// The batch's endpoints as they were before it, or `None` when the operator has no
/// operational endpoint (then nothing is emitted and nothing more is read). On the
/// write engine, in the batch's transaction.
pub(super) fn before_outcomes_on(
    connection: &Connection,
    outcomes: &[AttemptOutcome],
) -> StoreResult<Option<Vec<EndpointState>>> {
    let exists: bool = connection
        .prepare_cached(HAS_OPERATIONAL_ENDPOINTS)?
        .query_row([OPERATIONS_ACCOUNT_ID], |row| row.get(0))?;
    if !exists {
        return Ok(None);
    }
    Ok(Some(endpoint_states_on(connection, &operational::endpoint_ids(outcomes))?))
}

/// Publishes what the batch caused, given the states [`before_outcomes_on`] read.
pub(super) fn after_outcomes_on(
    connection: &Connection,
    outcomes: &[AttemptOutcome],
    before: &[EndpointState],
) -> StoreResult<()> {
    let after = endpoint_states_on(connection, &operational::endpoint_ids(outcomes))?;
    let mut exhausted = Vec::new();
    let mut select = connection.prepare_cached(EXHAUSTED)?;
    let mut rows = select.query([json_array(operational::failed_ids(outcomes).iter())])?;
    while let Some(row) = rows.next()? {
        exhausted.push(crate::rows::exhausted_delivery(row)?);
    }
    let events = operational::caused_by_outcomes(outcomes, before, &after, &exhausted);
    if !events.is_empty() {
        super::publish::publish_on(connection, &events)?;
    }
    Ok(())
}

fn endpoint_states_on(connection: &Connection, endpoint_ids: &[String]) -> StoreResult<Vec<EndpointState>> {
    let mut states = Vec::new();
    let mut select = connection.prepare_cached(ENDPOINT_STATES)?;
    let mut rows = select.query([json_array(endpoint_ids.iter())])?;
    while let Some(row) = rows.next()? {
        states.push(crate::rows::endpoint_state(row)?);
    }
    Ok(states)
}

async fn has_operational_endpoints(tx: &mut Transaction<'_, Sqlite>) -> StoreResult<bool> {
    let exists: bool = sqlx::query_scalar(HAS_OPERATIONAL_ENDPOINTS)
        .bind(OPERATIONS_ACCOUNT_ID)
        .fetch_one(&mut **tx)
        .await?;
    Ok(exists)
}

pub(super) async fn endpoint_states(
    tx: &mut Transaction<'_, Sqlite>,
    endpoint_ids: &[String],
) -> StoreResult<Vec<EndpointState>> {
    let rows =
        sqlx::query(ENDPOINT_STATES).bind(json_array(endpoint_ids.iter())).fetch_all(&mut **tx).await?;
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
        super::publish::publish_in(tx, &[event]).await?;
    }
    Ok(())
}
