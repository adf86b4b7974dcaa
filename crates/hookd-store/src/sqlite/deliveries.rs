//! Deliveries: the queue's trait methods (their work runs on the write engine, in
//! [`super::queue`]), the delivery history customers read, recovery and resends.

use async_trait::async_trait;
use hookd_core::{AccountId, DeliveryId, EndpointId, EventId, RecoveryWindow};
use sqlx::{Row, Sqlite, Transaction};

use super::engine::Durability;
use super::{SqliteStore, publish, queue};
use crate::rows;
use crate::schema::EVENT_COLUMNS;
use crate::{
    AttemptOutcome, ChangeFeed, ClaimLimits, ClaimedDelivery, DeliveryRecord, DeliveryStore, Event,
    QueueDepth, StoreError, StoreResult, UnixMillis,
};

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_due(
        &self,
        now: UnixMillis,
        limits: ClaimLimits,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // A claim need not survive a power failure: SQLite is one instance, and it
        // releases every lease when it starts. (Nor need a rate limit's state: lost,
        // it allows one burst more.)
        let sealer = self.sealer.clone();
        self.engine
            .write(Durability::ProcessCrash, move |connection| {
                queue::claim(connection, &sealer, now, limits, lease_until)
            })
            .await
    }

    async fn record_outcomes(
        &self,
        outcomes: &[AttemptOutcome],
        disable_before: UnixMillis,
    ) -> StoreResult<()> {
        let outcomes = outcomes.to_vec();
        self.engine
            .write(Durability::PowerLoss, move |connection| {
                queue::record_outcomes(connection, &outcomes, disable_before)
            })
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        let due = sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.reader)
            .await?;
        Ok(due)
    }

    async fn release_all_leases(&self, now: UnixMillis) -> StoreResult<u64> {
        self.engine.write(Durability::PowerLoss, move |connection| queue::release_all(connection, now)).await
    }

    async fn release_claims(
        &self,
        claims: &[(DeliveryId, UnixMillis)],
        due_at: UnixMillis,
    ) -> StoreResult<u64> {
        let claims = claims.to_vec();
        self.engine
            .write(Durability::ProcessCrash, move |connection| queue::release(connection, &claims, due_at))
            .await
    }

    async fn watch_new_deliveries(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>> {
        // Only this process writes the file, and it wakes its own dispatcher.
        Ok(None)
    }

    async fn queue_depth(&self, now: UnixMillis) -> StoreResult<QueueDepth> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(next_attempt_at <= ?1), 0), COALESCE(SUM(lease_until > ?1), 0),
                    MIN(CASE WHEN next_attempt_at <= ?1 THEN next_attempt_at END),
                    (SELECT COUNT(*) FROM endpoints
                     WHERE status = 'disabled' AND failing_since IS NOT NULL AND deleted_at IS NULL)
             FROM deliveries WHERE state = 'pending'",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        Ok(QueueDepth {
            due: row.try_get(0)?,
            in_flight: row.try_get(1)?,
            oldest_due_at: row.try_get(2)?,
            disabled_failing_endpoints: row.try_get(3)?,
        })
    }

    async fn list_deliveries(
        &self,
        account_id: &AccountId,
        event_id: &EventId,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let mut tx = self.reader.begin().await?;
        ensure_event_of(&mut tx, account_id, event_id).await?;
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.endpoint_id, COALESCE(p.url, d.callback_url) AS url, d.state,
                    d.next_attempt_at
             FROM deliveries d LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
             WHERE d.event_id = ? AND d.account_id = ? ORDER BY d.seq",
        )
        .bind(event_id.as_str())
        .bind(account_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let attempts = sqlx::query(
            "SELECT a.delivery_id, a.attempted_at, a.status_code, a.duration_ms, a.error, a.response_body
             FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id
             WHERE d.event_id = ? ORDER BY a.seq",
        )
        .bind(event_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let records = rows.iter().map(rows::delivery).collect::<StoreResult<Vec<_>>>()?;
        rows::with_attempts(records, &attempts)
    }

    async fn recover_failed(
        &self,
        account_id: &AccountId,
        endpoint_id: &EndpointId,
        window: RecoveryWindow,
        dry_run: bool,
        now: UnixMillis,
    ) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        ensure_live_endpoint_of(&mut tx, account_id, endpoint_id).await?;
        let recovered = if dry_run {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries
                 WHERE endpoint_id = ? AND state = 'failed' AND updated_at BETWEEN ? AND ?",
            )
            .bind(endpoint_id.as_str())
            .bind(window.since_ms)
            .bind(window.until_ms)
            .fetch_one(&mut *tx)
            .await?;
            u64::try_from(count).unwrap_or(0)
        } else {
            sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL,
                                       updated_at = ?
                 WHERE endpoint_id = ? AND state = 'failed' AND updated_at BETWEEN ? AND ?",
            )
            .bind(now)
            .bind(now)
            .bind(endpoint_id.as_str())
            .bind(window.since_ms)
            .bind(window.until_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        Ok(recovered)
    }

    async fn resend(
        &self,
        account_id: &AccountId,
        event_id: &EventId,
        endpoint_id: Option<&EndpointId>,
        now: UnixMillis,
    ) -> StoreResult<usize> {
        let mut tx = self.writer.begin().await?;
        let event = ensure_event_of(&mut tx, account_id, event_id).await?;
        let (endpoints, callbacks): (Vec<String>, Vec<String>) = match endpoint_id {
            Some(endpoint_id) => {
                (vec![ensure_live_endpoint_of(&mut tx, account_id, endpoint_id).await?], Vec::new())
            }
            None => {
                let endpoints = sqlx::query_scalar(
                    "SELECT DISTINCT d.endpoint_id FROM deliveries d JOIN endpoints p ON p.endpoint_id = d.endpoint_id
                     WHERE d.event_id = ? AND p.deleted_at IS NULL",
                )
                .bind(event_id.as_str())
                .fetch_all(&mut *tx)
                .await?;
                let callbacks = sqlx::query_scalar(
                    "SELECT DISTINCT callback_url FROM deliveries WHERE event_id = ? AND callback_url IS NOT NULL",
                )
                .bind(event_id.as_str())
                .fetch_all(&mut *tx)
                .await?;
                (endpoints, callbacks)
            }
        };
        for endpoint in &endpoints {
            publish::insert_delivery(&mut tx, &event, Some(endpoint), None, now).await?;
        }
        for callback in &callbacks {
            publish::insert_delivery(&mut tx, &event, None, Some(callback), now).await?;
        }
        tx.commit().await?;
        Ok(endpoints.len() + callbacks.len())
    }
}

/// The batch as one JSON array of rows: `[delivery_id, attempted_at, status_code,
/// duration_ms, error, response_body, state, next_attempt_at]`.
/// The event, if it belongs to the account; otherwise `NotFound`, as for a missing one.
/// The endpoint's id if it is the account's and not deleted; else `NotFound`.
async fn ensure_live_endpoint_of(
    tx: &mut Transaction<'_, Sqlite>,
    account_id: &AccountId,
    endpoint_id: &EndpointId,
) -> StoreResult<String> {
    let live: Option<String> = sqlx::query_scalar(
        "SELECT endpoint_id FROM endpoints WHERE account_id = ? AND endpoint_id = ? AND deleted_at IS NULL",
    )
    .bind(account_id.as_str())
    .bind(endpoint_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    live.ok_or(StoreError::NotFound)
}

async fn ensure_event_of(
    tx: &mut Transaction<'_, Sqlite>,
    account_id: &AccountId,
    event_id: &EventId,
) -> StoreResult<Event> {
    let row = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}
         FROM events WHERE account_id = ? AND event_id = ?"
    ))
    .bind(account_id.as_str())
    .bind(event_id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(rows::event(&row)?.1)
}
