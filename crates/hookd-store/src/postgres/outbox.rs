//! The transactional outbox, consumer side (docs/outbox.md): producers insert rows
//! into `hookd_outbox` in their own transactions; here each instance takes rows no
//! other instance holds (`FOR UPDATE SKIP LOCKED`) and, in one transaction, publishes
//! them as the operator API would, moves the invalid ones to `hookd_outbox_rejected`
//! and deletes them all. A crash before the commit leaves the rows for the next taker;
//! after it, they are gone: each row is published exactly once.

use std::collections::HashSet;

use async_trait::async_trait;
use hookd_core::{EventDraft, PublicationRules};
use sqlx::{Postgres, Row, Transaction};

use super::accounts::publishable_accounts;
use super::events::publish_in;
use super::{NotifyFeed, PostgresStore};
use crate::{
    ChangeFeed, Event, OutboxDepth, OutboxDrained, OutboxStore, RejectedRow, StoreError, StoreResult,
    UnixMillis, error_chain,
};

/// The channel the outbox's trigger notifies on, at a producer's commit, while a
/// consumer waits (`set_outbox_waiting`).
const OUTBOX_CHANNEL: &str = "hookd_outbox";
/// The API's `Idempotency-Key` bound, for the same idea in a column.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A row that passed validation and names an existing account.
struct Accepted {
    id: i64,
    key: Option<String>,
    event: Event,
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn watch_outbox(&self) -> StoreResult<Box<dyn ChangeFeed>> {
        Ok(Box::new(NotifyFeed::listen(&self.pool, OUTBOX_CHANNEL).await?))
    }

    async fn drain_outbox(
        &self,
        rules: &PublicationRules,
        limit: u32,
        now: UnixMillis,
    ) -> StoreResult<OutboxDrained> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, account_id, event_type, event_data::text AS event_data, entity_id, idempotency_key,
                    callback_url, callback_id
             FROM hookd_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(OutboxDrained::default());
        }
        let mut drained = OutboxDrained { taken: rows.len(), ..OutboxDrained::default() };
        let mut accepted = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            ids.push(id);
            match check(rules, row, now)? {
                Ok((key, event)) => accepted.push(Accepted { id, key, event }),
                Err(reason) => drained.rejected.push(RejectedRow { id, reason }),
            }
        }
        let accepted = keep_existing_accounts(&mut tx, accepted, &mut drained.rejected).await?;
        publish_guarded(&mut tx, accepted, &mut drained).await?;
        move_rejected(&mut tx, &drained.rejected).await?;
        sqlx::query("DELETE FROM hookd_outbox WHERE id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(drained)
    }

    async fn set_outbox_waiting(&self, waiting: bool) -> StoreResult<()> {
        // Written only when it changes: consumers call this on every wake and sleep.
        sqlx::query("UPDATE hookd_outbox_listening SET waiting = $1 WHERE waiting <> $1")
            .bind(waiting)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn vacuum_outbox(&self) -> StoreResult<()> {
        // Simple protocol: VACUUM may not run inside a transaction or be prepared.
        // SKIP_LOCKED: if another instance is vacuuming, that is enough.
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) hookd_outbox").execute(&self.pool).await?;
        Ok(())
    }

    async fn outbox_depth(&self, now: UnixMillis) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM hookd_outbox),
                    (SELECT (EXTRACT(EPOCH FROM MIN(created_at)) * 1000)::bigint FROM hookd_outbox),
                    (SELECT COUNT(*) FROM hookd_outbox_rejected)",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = row.try_get(1)?;
        Ok(OutboxDepth {
            waiting: row.try_get(0)?,
            oldest_age_ms: oldest.map_or(0, |created| now.saturating_sub(created).max(0)),
            rejected: row.try_get(2)?,
        })
    }
}

/// The row's event, or why it is rejected. The outer error is the database's.
fn check(
    rules: &PublicationRules,
    row: &sqlx::postgres::PgRow,
    now: UnixMillis,
) -> StoreResult<Result<(Option<String>, Event), String>> {
    let key: Option<String> = row.try_get("idempotency_key")?;
    if let Some(key) = &key
        && (key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS)
    {
        return Ok(Err("idempotency_key: must be 1 to 255 characters.".to_owned()));
    }
    let event_data: String = row.try_get("event_data")?;
    let draft = EventDraft {
        account_id: row.try_get("account_id")?,
        event_type: row.try_get("event_type")?,
        event_data: compact_json(&event_data),
        entity_id: row.try_get("entity_id")?,
        callback_url: row.try_get("callback_url")?,
        callback_id: row.try_get("callback_id")?,
    };
    Ok(match rules.check(draft) {
        Ok(valid) => Ok((key, Event::accepted(valid, now))),
        Err(invalid) => Err(invalid.to_string()),
    })
}

/// Rejects the rows whose account does not exist (a foreign key would fail the batch)
/// or is the reserved operations account, as the API does.
async fn keep_existing_accounts(
    tx: &mut Transaction<'_, Postgres>,
    accepted: Vec<Accepted>,
    rejected: &mut Vec<RejectedRow>,
) -> StoreResult<Vec<Accepted>> {
    if accepted.is_empty() {
        return Ok(accepted);
    }
    let wanted = accepted.iter().map(|row| row.event.account_id.to_string()).collect();
    let existing: HashSet<String> = publishable_accounts(&mut **tx, wanted).await?.into_iter().collect();
    let (known, unknown): (Vec<_>, Vec<_>) =
        accepted.into_iter().partition(|row| existing.contains(row.event.account_id.as_str()));
    rejected.extend(
        unknown
            .into_iter()
            .map(|row| RejectedRow { id: row.id, reason: "account_id: Unknown account.".into() }),
    );
    Ok(known)
}

/// Publishes the rows together; if the database refuses the batch, publishes them one
/// at a time, so a row it refuses is rejected with the database's reason instead of
/// holding back the rows behind it. Savepoints keep the taken rows locked throughout.
async fn publish_guarded(
    tx: &mut Transaction<'_, Postgres>,
    accepted: Vec<Accepted>,
    drained: &mut OutboxDrained,
) -> StoreResult<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    sqlx::query("SAVEPOINT outbox_batch").execute(&mut **tx).await?;
    match publish_rows(tx, &accepted, drained).await {
        Err(StoreError::Database(_)) => {
            sqlx::query("ROLLBACK TO SAVEPOINT outbox_batch").execute(&mut **tx).await?;
        }
        other => return other,
    }
    for row in accepted {
        sqlx::query("SAVEPOINT outbox_row").execute(&mut **tx).await?;
        let one = std::slice::from_ref(&row);
        match publish_rows(tx, one, drained).await {
            // Released, so a batch of 500 does not pile up subtransactions.
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT outbox_row").execute(&mut **tx).await?;
            }
            Err(StoreError::Database(cause)) => {
                sqlx::query("ROLLBACK TO SAVEPOINT outbox_row").execute(&mut **tx).await?;
                let reason = format!("the database refused the event: {}", error_chain(cause.as_ref()));
                drained.rejected.push(RejectedRow { id: row.id, reason });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Publishes the rows whose idempotency key is new; counts the rest as duplicates.
async fn publish_rows(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[Accepted],
    drained: &mut OutboxDrained,
) -> StoreResult<()> {
    // A key published before (or by another instance's transaction that commits first:
    // the insert waits for it) is not inserted again, nor is a repeat within the batch:
    // the insert skips it too, and the row first in the batch keeps the key. Keys go in
    // in one order on every instance, so two batches sharing keys wait for each other
    // instead of deadlocking. What comes back are the events whose key was new.
    let keyed: Vec<&Accepted> = rows.iter().filter(|row| row.key.is_some()).collect();
    let claimed: HashSet<String> = if keyed.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar(
            "INSERT INTO hookd_outbox_keys (account_id, idempotency_key, event_id, published_at)
             SELECT a, key, e, at
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS k (a, key, e, at, n)
             ORDER BY a, key, n
             ON CONFLICT DO NOTHING
             RETURNING event_id",
        )
        .bind(keyed.iter().map(|row| row.event.account_id.as_str()).collect::<Vec<_>>())
        .bind(keyed.iter().map(|row| row.key.as_deref()).collect::<Vec<_>>())
        .bind(keyed.iter().map(|row| row.event.event_id.to_string()).collect::<Vec<_>>())
        .bind(keyed.iter().map(|row| row.event.created_at).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    let fresh: Vec<Event> = rows
        .iter()
        .filter(|row| row.key.is_none() || claimed.contains(row.event.event_id.as_str()))
        .map(|row| row.event.clone())
        .collect();
    let counts = publish_in(tx, &fresh).await?;
    drained.published += fresh.len();
    drained.deliveries += counts.iter().sum::<usize>();
    drained.duplicates += rows.len() - fresh.len();
    Ok(())
}

async fn move_rejected(tx: &mut Transaction<'_, Postgres>, rejected: &[RejectedRow]) -> StoreResult<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO hookd_outbox_rejected (id, account_id, event_type, event_data, entity_id, idempotency_key,
                                            callback_url, callback_id, created_at, reason)
         SELECT o.id, o.account_id, o.event_type, o.event_data, o.entity_id, o.idempotency_key,
                o.callback_url, o.callback_id, o.created_at, r.reason
         FROM hookd_outbox o JOIN UNNEST($1::bigint[], $2::text[]) AS r (id, reason) ON r.id = o.id",
    )
    .bind(rejected.iter().map(|row| row.id).collect::<Vec<_>>())
    .bind(rejected.iter().map(|row| row.reason.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `jsonb`'s text form with the spaces it puts after `:` and `,` removed, so an
/// outbox event is stored and delivered as compactly as one the API received. Only
/// whitespace outside strings goes; numbers and strings keep their exact text.
fn compact_json(text: &str) -> String {
    let mut compact = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        compact.push(c);
    }
    compact
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn compacting_keeps_whitespace_inside_strings_and_escaped_quotes() {
        let jsonb = r#"{"a": [1, 2.50, {"b": "x, y: \"z\" \\"}], "c": null}"#;
        assert_eq!(compact_json(jsonb), r#"{"a":[1,2.50,{"b":"x, y: \"z\" \\"}],"c":null}"#);
    }
}
