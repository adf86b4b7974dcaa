//! The delivery queue: insert at publish, lease due rows, record outcomes in batches,
//! and the delivery history customers read.

use async_trait::async_trait;
use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use hookd_core::{AccountId, DeliveryId, EndpointId, EventId, RecoveryWindow};
use sqlx::{Row, Sqlite, Transaction};

use super::{SqliteStore, operational};
use crate::{
    AttemptOutcome, ClaimLimits, ClaimedDelivery, DeliveryFeed, DeliveryRecord, DeliveryStore, Event,
    QueueDepth, StoreError, StoreResult, UnixMillis,
};
use crate::{pacing, rows};

/// Inserts one pending delivery, due at `due_at`.
pub(super) async fn insert_delivery(
    tx: &mut Transaction<'_, Sqlite>,
    event: &Event,
    endpoint_id: Option<&str>,
    callback_url: Option<&str>,
    due_at: UnixMillis,
) -> StoreResult<()> {
    let target = endpoint_id.or(callback_url).unwrap_or_default();
    sqlx::query(
        "INSERT INTO deliveries (delivery_id, event_id, account_id, endpoint_id, callback_url, target, state,
                                 next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
    )
    .bind(DeliveryId::new_time_ordered(due_at).as_str())
    .bind(event.event_id.as_str())
    .bind(event.account_id.as_str())
    .bind(endpoint_id)
    .bind(callback_url)
    .bind(target)
    .bind(due_at)
    .bind(due_at)
    .bind(due_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Due deliveries, oldest first, at most `?2` leased per destination (endpoint or
/// callback URL), at most `?3` in all. Deliveries to disabled endpoints wait (they
/// resume if the endpoint is re-enabled). Endpoint settings narrow a destination's
/// room: a `fifo` endpoint has room for one, and its only candidate is its oldest
/// pending delivery (lowest `seq`), so a head waiting for its retry holds the rest
/// back; a rate-limited endpoint may have `?5` leased and take at most its allowance,
/// `?4` (a JSON object from endpoint id to count, worked out by [`crate::pacing`]).
///
/// It visits destinations, not rows, so its cost does not grow with a destination's
/// backlog: `targets` walks the distinct destinations with pending deliveries (a skip
/// scan, one index seek each, over `deliveries_by_target_due`); `heads` keeps those
/// under their cap with their oldest due row; `queue` is a k-way merge of the
/// destinations' due rows in due order (a recursive CTE ordered by due time is a
/// priority queue in SQLite), each destination contributing at most its room. A
/// destination at its cap with 100,000 due rows costs one seek, not 100,000 steps.
/// The price is one seek per destination with pending deliveries, due or not.
///
/// The subqueries are scalar on purpose: as joins, SQLite builds a Bloom filter by
/// scanning the whole table. The indexes are named (`INDEXED BY`) because without
/// statistics, as in a fresh database, SQLite counted leases by scanning every pending
/// row (100 ms per claim at 200,000); the plan must not depend on `ANALYZE`.
const SELECT_CLAIMABLE: &str = "
    WITH RECURSIVE
    targets(target) AS (
        SELECT (SELECT target FROM deliveries INDEXED BY deliveries_by_target_due
                WHERE state = 'pending' ORDER BY target LIMIT 1)
        UNION ALL
        SELECT (SELECT d.target FROM deliveries d INDEXED BY deliveries_by_target_due
                WHERE d.state = 'pending' AND d.target > t.target ORDER BY d.target LIMIT 1)
        FROM targets t WHERE t.target IS NOT NULL
    ),
    leased(target, n) AS (
        SELECT target, COUNT(*) FROM deliveries INDEXED BY deliveries_in_flight
        WHERE state = 'pending' AND lease_until > ?1
        GROUP BY target
    ),
    -- An endpoint's target is its id; a callback URL never equals one.
    limits(target, fifo, cap, allowance) AS (
        SELECT t.target, p.ordering IS 'fifo',
               CASE WHEN p.ordering IS 'fifo' THEN 1
                    WHEN p.rate_limit_per_second IS NOT NULL THEN ?5 ELSE ?2 END,
               CASE WHEN p.rate_limit_per_second IS NULL THEN ?3
                    ELSE COALESCE(json_extract(?4, '$.\"' || t.target || '\"'), 0) END
        FROM targets t LEFT JOIN endpoints p ON p.endpoint_id = t.target
        WHERE t.target IS NOT NULL
          AND (p.endpoint_id IS NULL OR (p.status = 'enabled' AND p.deleted_at IS NULL))
    ),
    heads(target, seq, room) AS (
        SELECT l.target,
               CASE WHEN l.fifo THEN
                   (SELECT d.seq FROM deliveries d
                    WHERE d.seq = (SELECT MIN(h.seq) FROM deliveries h INDEXED BY deliveries_by_endpoint
                                   WHERE h.state = 'pending' AND h.endpoint_id = l.target)
                      AND d.next_attempt_at <= ?1)
               ELSE
                   (SELECT d.seq FROM deliveries d INDEXED BY deliveries_by_target_due
                    WHERE d.state = 'pending' AND d.target = l.target AND d.next_attempt_at <= ?1
                    ORDER BY d.next_attempt_at, d.seq LIMIT 1)
               END,
               MIN(l.cap - COALESCE(n.n, 0), l.allowance)
        FROM limits l LEFT JOIN leased n ON n.target = l.target
        WHERE COALESCE(n.n, 0) < l.cap AND l.allowance > 0
    ),
    queue(seq, target, due, taken, room) AS (
        SELECT h.seq, h.target, (SELECT d.next_attempt_at FROM deliveries d WHERE d.seq = h.seq), 1, h.room
        FROM heads h WHERE h.seq IS NOT NULL
        UNION ALL
        SELECT n.seq, q.target, n.next_attempt_at, q.taken + 1, q.room
        FROM queue q JOIN deliveries n ON n.seq = (
            SELECT d.seq FROM deliveries d INDEXED BY deliveries_by_target_due
            WHERE d.state = 'pending' AND d.target = q.target AND d.next_attempt_at <= ?1
              AND (d.next_attempt_at, d.seq) > (q.due, q.seq)
            ORDER BY d.next_attempt_at, d.seq LIMIT 1)
        WHERE q.taken < q.room
        ORDER BY 3
        LIMIT ?3
    )
    SELECT seq FROM queue";

/// The rate-limited endpoints a claim may serve, with their limit's state.
const SELECT_PACED: &str = "
    SELECT s.endpoint_id, p.rate_limit_per_second, s.tat_us
    FROM endpoint_pacing s JOIN endpoints p ON p.endpoint_id = s.endpoint_id
    WHERE p.rate_limit_per_second IS NOT NULL AND p.deleted_at IS NULL AND p.status = 'enabled'";

const SELECT_CLAIMED: &str = "
    SELECT d.delivery_id, d.event_id, d.endpoint_id, d.attempts, COALESCE(p.url, d.callback_url) AS url,
           p.secret, p.previous_secret, p.previous_secret_until, e.event_type, e.event_data, e.traceparent
    FROM json_each(?) AS claimed
    JOIN deliveries d ON d.seq = claimed.value
    JOIN events e ON e.event_id = d.event_id
    LEFT JOIN endpoints p ON p.endpoint_id = d.endpoint_id
    ORDER BY claimed.key";

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_due(
        &self,
        now: UnixMillis,
        limits: ClaimLimits,
        lease_until: UnixMillis,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // Holding the only writer connection, nothing can change between these reads
        // and the update below; a claim that finds nothing costs two statements.
        let mut writer = self.writer.acquire().await?;
        let paced_rows: Vec<(String, i64, i64)> =
            sqlx::query_as(SELECT_PACED).fetch_all(&mut *writer).await?;
        let paced = pacing::paced_endpoints(paced_rows, now, limits.per_rate_limited_target)?;
        let seqs: Vec<i64> = sqlx::query_scalar(SELECT_CLAIMABLE)
            .bind(now)
            .bind(i64::from(limits.per_target))
            .bind(i64::from(limits.total))
            .bind(pacing::allowances_json(&paced))
            .bind(i64::from(limits.per_rate_limited_target))
            .fetch_all(&mut *writer)
            .await?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        // A claim need not survive a power failure: SQLite is one instance, and it
        // releases every lease when it starts. (Nor need a rate limit's state: lost,
        // it allows one burst more.)
        self.lower_sync(&mut writer).await?;
        let mut tx = sqlx::Connection::begin(&mut *writer).await?;
        let seq_list = serde_json::Value::from(seqs).to_string();
        // The lease also moves `next_attempt_at`, so if this process dies the row is
        // simply due again when the lease lapses.
        sqlx::query(
            "UPDATE deliveries SET lease_until = ?1, next_attempt_at = ?1
             WHERE seq IN (SELECT value FROM json_each(?2))",
        )
        .bind(lease_until)
        .bind(&seq_list)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(SELECT_CLAIMED).bind(&seq_list).fetch_all(&mut *tx).await?;
        let claimed = rows
            .iter()
            .map(|row| rows::claimed_delivery(row, &self.sealer))
            .collect::<StoreResult<Vec<_>>>()?;
        for (endpoint_id, tat_us) in pacing::advanced(&paced, &claimed, now) {
            sqlx::query("UPDATE endpoint_pacing SET tat_us = ? WHERE endpoint_id = ?")
                .bind(tat_us)
                .bind(endpoint_id)
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
        let rows = outcome_rows(outcomes);
        let mut tx = self.writer.begin().await?;
        let watched = operational::before_outcomes(&mut tx, outcomes).await?;
        // Two statements for the whole batch (one row per outcome via json_each), not
        // two per outcome: each statement is a round trip to SQLite's thread.
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error, response_body, endpoint_id)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 8
             FROM json_each(?)",
        )
        .bind(&rows)
        .execute(&mut *tx)
        .await?;
        // `state = 'pending'` keeps a delivery cancelled meanwhile (endpoint deleted) cancelled.
        sqlx::query(
            "UPDATE deliveries SET attempts = attempts + 1, state = u.state, next_attempt_at = u.next_attempt_at,
                                   lease_until = NULL, updated_at = u.attempted_at
             FROM (SELECT value ->> 0 AS delivery_id, value ->> 1 AS attempted_at, value ->> 6 AS state,
                          value ->> 7 AS next_attempt_at
                   FROM json_each(?)) AS u
             WHERE deliveries.delivery_id = u.delivery_id AND deliveries.state = 'pending'",
        )
        .bind(&rows)
        .execute(&mut *tx)
        .await?;
        // The operator's operational endpoints have no failure run: they are never
        // disabled, so an alert endpoint that is down keeps its events, retried on
        // the schedule (and on PostgreSQL a batch never locks their rows).
        for (endpoint_id, health) in rows::endpoint_health(outcomes) {
            sqlx::query(
                "UPDATE endpoints SET
                     failing_since = CASE WHEN ?2 THEN ?3 ELSE COALESCE(failing_since, ?3) END,
                     status = CASE WHEN (CASE WHEN ?2 THEN ?3 ELSE COALESCE(failing_since, ?3) END) <= ?4
                                   THEN 'disabled' ELSE status END
                 WHERE endpoint_id = ?1 AND (?3 IS NOT NULL OR failing_since IS NOT NULL)
                   AND account_id <> ?5",
            )
            .bind(endpoint_id)
            .bind(health.succeeded)
            .bind(health.first_failure)
            .bind(disable_before)
            .bind(OPERATIONS_ACCOUNT_ID)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(before) = watched {
            operational::after_outcomes(&mut tx, outcomes, &before).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<UnixMillis>> {
        let due = sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.reader)
            .await?;
        Ok(due)
    }

    async fn release_all_leases(&self, now: UnixMillis) -> StoreResult<u64> {
        let result = sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?
             WHERE state = 'pending' AND lease_until IS NOT NULL",
        )
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    async fn release_claims(
        &self,
        claims: &[(DeliveryId, UnixMillis)],
        due_at: UnixMillis,
    ) -> StoreResult<u64> {
        let rows: Vec<serde_json::Value> =
            claims.iter().map(|(id, lease_until)| serde_json::json!([id.as_str(), lease_until])).collect();
        let result = sqlx::query(
            "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?1
             FROM (SELECT value ->> 0 AS delivery_id, value ->> 1 AS lease_until FROM json_each(?2)) AS c
             WHERE deliveries.delivery_id = c.delivery_id AND deliveries.lease_until = c.lease_until
               AND deliveries.state = 'pending'",
        )
        .bind(due_at)
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    async fn watch_new_deliveries(&self) -> StoreResult<Option<Box<dyn DeliveryFeed>>> {
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
            due: row.get(0),
            in_flight: row.get(1),
            oldest_due_at: row.get(2),
            disabled_failing_endpoints: row.get(3),
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
            insert_delivery(&mut tx, &event, Some(endpoint), None, now).await?;
        }
        for callback in &callbacks {
            insert_delivery(&mut tx, &event, None, Some(callback), now).await?;
        }
        tx.commit().await?;
        Ok(endpoints.len() + callbacks.len())
    }
}

/// The batch as one JSON array of rows: `[delivery_id, attempted_at, status_code,
/// duration_ms, error, response_body, state, next_attempt_at]`.
fn outcome_rows(outcomes: &[AttemptOutcome]) -> String {
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|outcome| {
            let attempt = &outcome.attempt;
            let (state, next_attempt_at) = rows::state_after(outcome.next);
            serde_json::json!([
                outcome.delivery_id.as_str(),
                attempt.attempted_at,
                attempt.status_code,
                attempt.duration_ms,
                attempt.error,
                attempt.response_body,
                state,
                next_attempt_at,
                outcome.endpoint_id.as_ref().map(|id| id.as_str()),
            ])
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

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
    let row = sqlx::query(
        "SELECT seq, event_id, account_id, event_type, entity_id, event_data, callback_url, callback_id, created_at
         FROM events WHERE account_id = ? AND event_id = ?",
    )
    .bind(account_id.as_str())
    .bind(event_id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(rows::event(&row)?.1)
}
