//! The delivery queue's writes, run on the write engine: lease due deliveries (a
//! claim), record what became of attempts (a batch of outcomes), release leases.

use hookd_core::operational::OPERATIONS_ACCOUNT_ID;
use hookd_core::{DeliveryId, SecretSealer};
use rusqlite::{Connection, params};

use super::operational;
use crate::{AttemptOutcome, ClaimLimits, ClaimedDelivery, StoreResult, UnixMillis};
use crate::{pacing, rows};

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

/// Leases the due deliveries a claim may take (see [`SELECT_CLAIMABLE`]) until
/// `lease_until`. The engine holds the write lock, so nothing changes between the
/// reads and the update; a claim that finds nothing writes nothing.
pub(super) fn claim(
    connection: &Connection,
    sealer: &SecretSealer,
    now: UnixMillis,
    limits: ClaimLimits,
    lease_until: UnixMillis,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let paced_rows = connection
        .prepare_cached(SELECT_PACED)?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<Vec<(String, i64, i64)>, _>>()?;
    let paced = pacing::paced_endpoints(paced_rows, now, limits.per_rate_limited_target)?;
    let seqs = connection
        .prepare_cached(SELECT_CLAIMABLE)?
        .query_map(
            params![
                now,
                i64::from(limits.per_target),
                i64::from(limits.total),
                pacing::allowances_json(&paced),
                i64::from(limits.per_rate_limited_target),
            ],
            |row| row.get(0),
        )?
        .collect::<Result<Vec<i64>, _>>()?;
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let seq_list = serde_json::Value::from(seqs).to_string();
    // The lease also moves `next_attempt_at`, so if this process dies the row is
    // simply due again when the lease lapses.
    connection
        .prepare_cached(
            "UPDATE deliveries SET lease_until = ?1, next_attempt_at = ?1
             WHERE seq IN (SELECT value FROM json_each(?2))",
        )?
        .execute(params![lease_until, seq_list])?;
    let mut claimed = Vec::new();
    let mut select = connection.prepare_cached(SELECT_CLAIMED)?;
    let mut rows = select.query([&seq_list])?;
    while let Some(row) = rows.next()? {
        claimed.push(rows::claimed_delivery(row, sealer)?);
    }
    let mut pace =
        connection.prepare_cached("UPDATE endpoint_pacing SET tat_us = ?1 WHERE endpoint_id = ?2")?;
    for (endpoint_id, tat_us) in pacing::advanced(&paced, &claimed, now) {
        pace.execute(params![tat_us, endpoint_id])?;
    }
    Ok(claimed)
}

/// Records a batch of attempt outcomes: the attempts, each delivery's new state, each
/// endpoint's failure run (disabling it if the run began before `disable_before`),
/// and the operational events the batch caused.
pub(super) fn record_outcomes(
    connection: &Connection,
    outcomes: &[AttemptOutcome],
    disable_before: UnixMillis,
) -> StoreResult<()> {
    let watched = operational::before_outcomes_on(connection, outcomes)?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, duration_ms, error,
                                        response_body, endpoint_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    // `state = 'pending'` keeps a delivery cancelled meanwhile (endpoint deleted) cancelled.
    let mut update = connection.prepare_cached(
        "UPDATE deliveries SET attempts = attempts + 1, state = ?2, next_attempt_at = ?3,
                               lease_until = NULL, updated_at = ?4
         WHERE delivery_id = ?1 AND state = 'pending'",
    )?;
    for outcome in outcomes {
        let attempt = &outcome.attempt;
        let delivery_id = outcome.delivery_id.as_str();
        insert.execute(params![
            delivery_id,
            attempt.attempted_at,
            attempt.status_code,
            attempt.duration_ms,
            attempt.error,
            attempt.response_body,
            outcome.endpoint_id.as_ref().map(|id| id.as_str()),
        ])?;
        let (state, next_attempt_at) = rows::state_after(outcome.next);
        update.execute(params![delivery_id, state, next_attempt_at, attempt.attempted_at])?;
    }
    // The operator's operational endpoints have no failure run: they are never
    // disabled, so an alert endpoint that is down keeps its events, retried on the
    // schedule.
    let mut health_update = connection.prepare_cached(
        "UPDATE endpoints SET
             failing_since = CASE WHEN ?2 THEN ?3 ELSE COALESCE(failing_since, ?3) END,
             status = CASE WHEN (CASE WHEN ?2 THEN ?3 ELSE COALESCE(failing_since, ?3) END) <= ?4
                           THEN 'disabled' ELSE status END
         WHERE endpoint_id = ?1 AND (?3 IS NOT NULL OR failing_since IS NOT NULL)
           AND account_id <> ?5",
    )?;
    for (endpoint_id, health) in rows::endpoint_health(outcomes) {
        health_update.execute(params![
            endpoint_id,
            health.succeeded,
            health.first_failure,
            disable_before,
            OPERATIONS_ACCOUNT_ID,
        ])?;
    }
    if let Some(before) = watched {
        operational::after_outcomes_on(connection, outcomes, &before)?;
    }
    Ok(())
}

/// Releases every lease (at start: no attempt of an earlier process is running), due
/// again at `now`.
pub(super) fn release_all(connection: &Connection, now: UnixMillis) -> StoreResult<u64> {
    let released = connection
        .prepare_cached(
            "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?1
             WHERE state = 'pending' AND lease_until IS NOT NULL",
        )?
        .execute([now])?;
    Ok(released as u64)
}

/// Releases claims not attempted, each only if it still holds the lease it was given.
pub(super) fn release(
    connection: &Connection,
    claims: &[(DeliveryId, UnixMillis)],
    due_at: UnixMillis,
) -> StoreResult<u64> {
    let mut release = connection.prepare_cached(
        "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?1
         WHERE delivery_id = ?2 AND lease_until = ?3 AND state = 'pending'",
    )?;
    let mut released = 0;
    for (delivery_id, lease_until) in claims {
        released += release.execute(params![due_at, delivery_id.as_str(), lease_until])? as u64;
    }
    Ok(released)
}
