//! The delivery queue on PostgreSQL: claims skip rows another instance is claiming,
//! outcomes are written a batch per statement, and new deliveries are announced with
//! `LISTEN`/`NOTIFY`.

use async_trait::async_trait;
use hookd_core::{AccountId, DeliveryId, EndpointId, EventId, RecoveryWindow};
use sqlx::{Postgres, Row, Transaction};

use super::events::NewDeliveries;
use super::{NEW_DELIVERIES_CHANNEL, NotifyFeed, PostgresStore, id_array, operational};
use crate::schema::EVENT_COLUMNS;
use crate::{
    AttemptOutcome, ChangeFeed, ClaimLimits, ClaimedDelivery, DeliveryRecord, DeliveryStore, Event,
    QueueDepth, StoreError, StoreResult, UnixMillis,
};
use crate::{pacing, rows};

/// Leases due deliveries, oldest first, at most `$2` leased per destination (endpoint
/// or callback URL), at most `$3` in all; deliveries to disabled endpoints wait.
/// Endpoint settings narrow a destination's room: a `fifo` endpoint has room for one,
/// and its only candidate is its oldest pending delivery (lowest `seq`), so a head
/// waiting for its retry holds the rest back; a rate-limited endpoint may have `$6`
/// leased and take at most its allowance from `$5` (a JSON object from endpoint id to
/// count, worked out by [`crate::pacing`] under the pacing row's lock).
///
/// As on SQLite it visits destinations, not rows, so a destination at its cap with a
/// deep backlog costs one index seek rather than a walk over its due rows: `targets`
/// is a loose index scan over the destinations with pending deliveries, `rooms` keeps
/// those under their cap, and each contributes at most its room of its oldest due
/// rows (`LATERAL`, on `deliveries_by_target_due`). `SKIP LOCKED` lets instances
/// claim side by side without waiting for or taking each other's rows; rows locked
/// but not chosen are free again at commit. A FIFO head locked by another instance is
/// skipped, not passed over: the candidate is the head or nothing, and a head that
/// another instance leased and committed meanwhile fails the due test when the lock
/// re-reads it.
const CLAIM: &str = "
    WITH RECURSIVE targets(target) AS (
        (SELECT target FROM deliveries WHERE state = 'pending' ORDER BY target LIMIT 1)
        UNION ALL
        SELECT (SELECT d.target FROM deliveries d
                WHERE d.state = 'pending' AND d.target > t.target ORDER BY d.target LIMIT 1)
        FROM targets t WHERE t.target IS NOT NULL
    ), leased AS (
        SELECT target, COUNT(*) AS n FROM deliveries
        WHERE state = 'pending' AND lease_until > $1
        GROUP BY target
    ), rooms AS (
        -- An endpoint's target is its id; a callback URL never equals one.
        SELECT t.target, COALESCE(p.ordering = 'fifo', false) AS fifo,
               GREATEST(LEAST(k.cap - COALESCE(l.n, 0), k.allowance), 0) AS room
        FROM targets t
        LEFT JOIN leased l ON l.target = t.target
        LEFT JOIN endpoints p ON p.endpoint_id = t.target
        CROSS JOIN LATERAL (SELECT
            CASE WHEN p.ordering = 'fifo' THEN 1 WHEN p.rate_limit_per_second IS NOT NULL THEN $6 ELSE $2 END
                AS cap,
            CASE WHEN p.rate_limit_per_second IS NULL THEN $3
                 ELSE COALESCE(($5::jsonb ->> t.target)::bigint, 0) END AS allowance) k
        WHERE t.target IS NOT NULL
          AND (p.endpoint_id IS NULL OR (p.status = 'enabled' AND p.deleted_at IS NULL))
    ), candidates AS (
        SELECT c.seq, c.next_attempt_at
        FROM rooms r CROSS JOIN LATERAL (
            SELECT d.seq, d.next_attempt_at FROM deliveries d
            WHERE d.state = 'pending' AND d.target = r.target AND d.next_attempt_at <= $1
            ORDER BY d.next_attempt_at, d.seq
            LIMIT LEAST(r.room, $3)
            FOR UPDATE SKIP LOCKED
        ) c
        WHERE r.room > 0 AND NOT r.fifo
        UNION ALL
        SELECT h.seq, h.next_attempt_at
        FROM rooms r CROSS JOIN LATERAL (
            SELECT d.seq, d.next_attempt_at FROM deliveries d
            WHERE d.seq = (SELECT MIN(m.seq) FROM deliveries m WHERE m.state = 'pending' AND m.endpoint_id = r.target)
              AND d.state = 'pending' AND d.next_attempt_at <= $1
            FOR UPDATE SKIP LOCKED
        ) h
        WHERE r.room > 0 AND r.fifo
    ), chosen AS (
        SELECT seq FROM candidates ORDER BY next_attempt_at, seq LIMIT $3
    )
    UPDATE deliveries SET lease_until = $4, next_attempt_at = $4
    FROM chosen WHERE deliveries.seq = chosen.seq
    RETURNING deliveries.delivery_id";

/// The rate-limited endpoints this claim may serve, with their limit's state, locked
/// until the claim commits. One that another instance is claiming for is skipped:
/// this claim leaves it alone rather than wait.
const SELECT_PACED: &str = "
    SELECT s.endpoint_id, p.rate_limit_per_second, s.tat_us
    FROM endpoint_pacing s JOIN endpoints p ON p.endpoint_id = s.endpoint_id
    WHERE p.rate_limit_per_second IS NOT NULL AND p.deleted_at IS NULL AND p.status = 'enabled'
    FOR UPDATE OF s SKIP LOCKED";

const SELECT_CLAIMED: &str = "
    SELECT d.delivery_id, d.event_id, d.endpoint_id, d.attempts, COALESCE(p.url, d.callback_url) AS url,
           p.secret, p.previous_secret, p.previous_secret_until, e.event_type, e.event_data, e.traceparent
    FROM deliveries d
    JOIN events e ON e.event_id = d.event_id
    LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
    WHERE d.delivery_id = ANY($1)
    ORDER BY d.next_attempt_at, d.seq";

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn claim_due(
        &self,
        now: UnixMillis,
        limits: ClaimLimits,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.pool.begin().await?;
        // The queue fills and drains faster than statistics follow: right after a burst
        // the planner believes few rows are due, bitmap-scans and sorts all of them
        // (tens of ms). An index scan in due order stops after the window whatever the
        // statistics say.
        sqlx::query(
            "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)",
        )
        .execute(&mut *tx)
        .await?;
        let paced_rows: Vec<(String, i64, i64)> = sqlx::query_as(SELECT_PACED).fetch_all(&mut *tx).await?;
        let paced = pacing::paced_endpoints(paced_rows, now, limits.per_rate_limited_target)?;
        let ids: Vec<String> = sqlx::query_scalar(CLAIM)
            .bind(now)
            .bind(i64::from(limits.per_target))
            .bind(i64::from(limits.total))
            .bind(lease_until)
            .bind(pacing::allowances_json(&paced))
            .bind(i64::from(limits.per_rate_limited_target))
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            // Ended here, not by drop: a dropped transaction's rollback waits for the
            // connection's next use, and meanwhile its pacing locks would make the
            // next claim, on another connection, skip those endpoints.
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SELECT_CLAIMED).bind(&ids).fetch_all(&mut *tx).await?;
        let claimed = rows
            .iter()
            .map(|row| rows::claimed_delivery(row, &self.sealer))
            .collect::<StoreResult<Vec<_>>>()?;
        let advanced = pacing::advanced(&paced, &claimed, now);
        if !advanced.is_empty() {
            let (ids, tats): (Vec<String>, Vec<i64>) = advanced.into_iter().unzip();
            sqlx::query(
                "UPDATE endpoint_pacing s SET tat_us = u.tat_us
                 FROM UNNEST($1::text[], $2::bigint[]) AS u (endpoint_id, tat_us) WHERE s.endpoint_id = u.endpoint_id",
            )
            .bind(ids)
            .bind(tats)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn record_outcomes(
        &self,
        outcomes: &[AttemptOutcome],
        disable_before: UnixMillis,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let watched = operational::before_outcomes(&mut tx, outcomes).await?;
        insert_attempts(&mut tx, outcomes).await?;
        update_deliveries(&mut tx, outcomes).await?;
        update_endpoint_health(&mut tx, outcomes, disable_before).await?;
        if let Some(before) = watched {
            operational::after_outcomes(&mut tx, outcomes, &before).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        let due = sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(due)
    }

    async fn release_all_leases(&self, now: UnixMillis) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, next_attempt_at = $1
             WHERE state = 'pending' AND lease_until IS NOT NULL",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn release_claims(
        &self,
        claims: &[(DeliveryId, UnixMillis)],
        due_at: UnixMillis,
    ) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE deliveries d SET lease_until = NULL, next_attempt_at = $1
             FROM UNNEST($2::text[], $3::bigint[]) AS c (delivery_id, lease_until)
             WHERE d.delivery_id = c.delivery_id AND d.lease_until = c.lease_until AND d.state = 'pending'",
        )
        .bind(due_at)
        .bind(id_array(claims.iter().map(|(id, _)| id)))
        .bind(claims.iter().map(|(_, lease_until)| *lease_until).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn watch_new_deliveries(&self) -> StoreResult<Option<Box<dyn ChangeFeed>>> {
        Ok(Some(Box::new(NotifyFeed::listen(&self.pool, NEW_DELIVERIES_CHANNEL).await?)))
    }

    async fn queue_depth(&self, now: UnixMillis) -> StoreResult<QueueDepth> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE next_attempt_at <= $1), COUNT(*) FILTER (WHERE lease_until > $1),
                    MIN(next_attempt_at) FILTER (WHERE next_attempt_at <= $1),
                    (SELECT COUNT(*) FROM endpoints
                     WHERE status = 'disabled' AND failing_since IS NOT NULL AND deleted_at IS NULL)
             FROM deliveries WHERE state = 'pending'",
        )
        .bind(now)
        .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        ensure_event_of(&mut tx, account_id, event_id).await?;
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.endpoint_id, COALESCE(p.url, d.callback_url) AS url, d.state,
                    d.next_attempt_at
             FROM deliveries d LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
             WHERE d.event_id = $1 AND d.account_id = $2 ORDER BY d.seq",
        )
        .bind(event_id.as_str())
        .bind(account_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let attempts = sqlx::query(
            "SELECT a.delivery_id, a.attempted_at, a.status_code, a.duration_ms, a.error, a.response_body
             FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id
             WHERE d.event_id = $1 ORDER BY a.seq",
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
        let live: Option<String> = sqlx::query_scalar(
            "SELECT endpoint_id FROM endpoints WHERE account_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL",
        )
        .bind(account_id.as_str())
        .bind(endpoint_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        live.ok_or(StoreError::NotFound)?;
        if dry_run {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries
                 WHERE endpoint_id = $1 AND state = 'failed' AND updated_at BETWEEN $2 AND $3",
            )
            .bind(endpoint_id.as_str())
            .bind(window.since_ms)
            .bind(window.until_ms)
            .fetch_one(&self.pool)
            .await?;
            return Ok(u64::try_from(count).unwrap_or(0));
        }
        // One statement: a concurrent recovery of the same window waits for this one's
        // row locks, then finds the rows pending and leaves them alone.
        let result = sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL,
                                   updated_at = $1
             WHERE endpoint_id = $2 AND state = 'failed' AND updated_at BETWEEN $3 AND $4",
        )
        .bind(now)
        .bind(endpoint_id.as_str())
        .bind(window.since_ms)
        .bind(window.until_ms)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn resend(
        &self,
        account_id: &AccountId,
        event_id: &EventId,
        endpoint_id: Option<&EndpointId>,
        now: UnixMillis,
    ) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await?;
        let event = ensure_event_of(&mut tx, account_id, event_id).await?;
        // FOR SHARE, as in publishing: a concurrent delete waits and then cancels these.
        let endpoints: Vec<String> = match endpoint_id {
            Some(endpoint_id) => {
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT endpoint_id FROM endpoints
                     WHERE account_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL FOR SHARE",
                )
                .bind(account_id.as_str())
                .bind(endpoint_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                vec![live.ok_or(StoreError::NotFound)?]
            }
            None => {
                sqlx::query_scalar(
                    "SELECT p.endpoint_id FROM endpoints p
                     WHERE p.deleted_at IS NULL
                       AND p.endpoint_id IN (SELECT endpoint_id FROM deliveries WHERE event_id = $1)
                     ORDER BY p.seq FOR SHARE",
                )
                .bind(event_id.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let callbacks: Vec<String> = if endpoint_id.is_some() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT DISTINCT callback_url FROM deliveries WHERE event_id = $1 AND callback_url IS NOT NULL",
            )
            .bind(event_id.as_str())
            .fetch_all(&mut *tx)
            .await?
        };
        let mut deliveries = NewDeliveries::default();
        for endpoint in &endpoints {
            deliveries.push(&event, Some(endpoint), None, now);
        }
        for callback in &callbacks {
            deliveries.push(&event, None, Some(callback), now);
        }
        let count = deliveries.len();
        deliveries.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(count)
    }
}

async fn insert_attempts(tx: &mut Transaction<'_, Postgres>, outcomes: &[AttemptOutcome]) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error, response_body, endpoint_id)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[])",
    )
    .bind(id_array(outcomes.iter().map(|o| &o.delivery_id)))
    .bind(outcomes.iter().map(|o| o.attempt.attempted_at).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.attempt.status_code.map(i64::from)).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.attempt.duration_ms).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.attempt.error.as_deref()).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.attempt.response_body.as_deref()).collect::<Vec<_>>())
    .bind(outcomes.iter().map(|o| o.endpoint_id.as_ref().map(|id| id.as_str())).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `state = 'pending'` keeps a delivery cancelled meanwhile (endpoint deleted) cancelled.
async fn update_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[AttemptOutcome],
) -> StoreResult<()> {
    let (states, due): (Vec<&str>, Vec<Option<i64>>) =
        outcomes.iter().map(|o| rows::state_after(o.next)).unzip();
    sqlx::query(
        "UPDATE deliveries d SET attempts = d.attempts + 1, state = u.state, next_attempt_at = u.next_attempt_at,
                                 lease_until = NULL, updated_at = u.attempted_at
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
              AS u (delivery_id, state, next_attempt_at, attempted_at)
         WHERE d.delivery_id = u.delivery_id AND d.state = 'pending'",
    )
    .bind(id_array(outcomes.iter().map(|o| &o.delivery_id)))
    .bind(states)
    .bind(due)
    .bind(outcomes.iter().map(|o| o.attempt.attempted_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies the batch's effect on each endpoint's failure run in endpoint-id order (the
/// operator's operational endpoints have none: they are never disabled, so an alert
/// endpoint that is down keeps its events, retried on the schedule; and a batch never
/// locks their rows, which the publish of operational events share-locks), so
/// two instances writing at once lock endpoint rows in the same order and cannot
/// deadlock. The usual all-success batch writes nothing (the WHERE clause).
async fn update_endpoint_health(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[AttemptOutcome],
    disable_before: UnixMillis,
) -> StoreResult<()> {
    let health = rows::endpoint_health(outcomes);
    for (endpoint_id, health) in health {
        sqlx::query(
            "UPDATE endpoints SET
                 failing_since = CASE WHEN $2 THEN $3 ELSE COALESCE(failing_since, $3) END,
                 status = CASE WHEN (CASE WHEN $2 THEN $3 ELSE COALESCE(failing_since, $3) END) <= $4
                               THEN 'disabled' ELSE status END
             WHERE endpoint_id = $1 AND ($3::bigint IS NOT NULL OR failing_since IS NOT NULL)
               AND account_id <> $5",
        )
        .bind(endpoint_id)
        .bind(health.succeeded)
        .bind(health.first_failure)
        .bind(disable_before)
        .bind(hookd_core::operational::OPERATIONS_ACCOUNT_ID)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The event, if it belongs to the account; otherwise `NotFound`, as for a missing one.
async fn ensure_event_of(
    tx: &mut Transaction<'_, Postgres>,
    account_id: &AccountId,
    event_id: &EventId,
) -> StoreResult<Event> {
    let row = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}
         FROM events WHERE account_id = $1 AND event_id = $2"
    ))
    .bind(account_id.as_str())
    .bind(event_id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(rows::event(&row)?.1)
}
