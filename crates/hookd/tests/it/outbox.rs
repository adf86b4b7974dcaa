//! The PostgreSQL outbox: a producer inserts rows into `hookd_outbox` in its own
//! transaction, and hookd publishes each committed row exactly once. Real `hookd
//! serve` processes, a real producer connection; skipped without
//! HOOKD_TEST_DATABASE_URL (not in CI).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support::cluster::{Instance, TestDatabase};
use crate::support::process::command;
use crate::support::receiver::{PATIENCE, TestReceiver};

/// A safety net for ten thousand rows on a busy 2-core machine, never an assertion.
const DRAIN_LIMIT: Duration = Duration::from_secs(240);

/// A service that keeps its own state in hookd's database and reports what happened
/// through the outbox, with plain SQL.
struct Producer {
    pool: PgPool,
}

impl Producer {
    async fn connect(database: &TestDatabase) -> Self {
        let pool =
            PgPoolOptions::new().max_connections(4).connect(database.url()).await.expect("producer connects");
        sqlx::query("CREATE TABLE IF NOT EXISTS renders (video_id TEXT PRIMARY KEY, status TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("the producer's own table");
        Self { pool }
    }

    /// Marks the video completed and reports it in one transaction, which commits or
    /// rolls back.
    async fn complete_video(&self, account_id: &str, video_id: &str, commit: bool) {
        let mut tx = self.pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO renders (video_id, status) VALUES ($1, 'completed')")
            .bind(video_id)
            .execute(&mut *tx)
            .await
            .expect("the producer's write");
        sqlx::query(
            "INSERT INTO hookd_outbox (account_id, event_type, event_data, entity_id)
             VALUES ($1, 'avatar_video.success',
                     jsonb_build_object('video_id', $2::text, 'url', 'https://cdn.example/' || $2), $2)",
        )
        .bind(account_id)
        .bind(video_id)
        .execute(&mut *tx)
        .await
        .expect("the outbox row");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }

    /// Inserts rows (JSON objects with the outbox's columns) in one transaction, in order.
    async fn insert(&self, rows: &[Value]) {
        sqlx::query(
            "INSERT INTO hookd_outbox (account_id, event_type, event_data, entity_id, idempotency_key, callback_url)
             SELECT account_id, event_type, event_data, entity_id, idempotency_key, callback_url
             FROM jsonb_to_recordset($1::jsonb) AS r (account_id text, event_type text, event_data jsonb,
                                                      entity_id text, idempotency_key text, callback_url text)",
        )
        .bind(Value::from(rows.to_vec()).to_string())
        .execute(&self.pool)
        .await
        .expect("insert outbox rows");
    }

    async fn count(&self, sql: &str, account_id: &str) -> i64 {
        sqlx::query_scalar(sql).bind(account_id).fetch_one(&self.pool).await.expect(sql)
    }

    async fn events_of(&self, account_id: &str) -> i64 {
        self.count("SELECT COUNT(*) FROM events WHERE account_id = $1", account_id).await
    }

    async fn waiting(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM hookd_outbox").fetch_one(&self.pool).await.expect("count")
    }

    async fn close(self) {
        self.pool.close().await;
    }
}

/// A cluster of one: an instance on a scratch database, an account with an endpoint on
/// a receiver, and a producer.
struct OneInstance {
    database: TestDatabase,
    receiver: TestReceiver,
    instance: Instance,
    account: String,
    producer: Producer,
}

impl OneInstance {
    /// `None` (the test is skipped) without a PostgreSQL server, outside CI.
    async fn start() -> Option<Self> {
        let database = TestDatabase::shared().await?;
        let receiver = TestReceiver::start().await;
        let instance = Instance::start(&database, &[]).await;
        let (account, key) = instance.new_account().await;
        instance.create_endpoint(&key, &receiver.url("/outbox")).await;
        let producer = Producer::connect(&database).await;
        Some(Self { database, receiver, instance, account, producer })
    }
}

async fn finish(producer: Producer, instance: Instance, database: TestDatabase) {
    producer.close().await;
    instance.binary.stop().await;
    database.finish().await;
}

fn row(account_id: &str, event_data: Value) -> Value {
    json!({"account_id": account_id, "event_type": "avatar_video.success", "event_data": event_data})
}

async fn next_arrival(receiver: &mut TestReceiver) -> Value {
    tokio::time::timeout(PATIENCE, receiver.next()).await.expect("a delivery arrives").json()
}

#[tokio::test]
async fn a_committed_producer_transaction_is_delivered() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };

    producer.complete_video(&account, "v1", true).await;
    let arrived = tokio::time::timeout(PATIENCE, receiver.next()).await.expect("delivered");
    let body = arrived.json();
    assert_eq!(body["event_type"], "avatar_video.success");
    assert_eq!(body["event_data"], json!({"video_id": "v1", "url": "https://cdn.example/v1"}));
    assert!(!arrived.header("heygen-signature").is_empty(), "signed like any delivery");
    // Stored and delivered as compactly as an event the API received.
    let raw = String::from_utf8_lossy(&arrived.body);
    assert!(raw.contains(r#"{"url":"https://cdn.example/v1","video_id":"v1"}"#), "{raw}");
    assert_eq!(producer.waiting().await, 0, "the row is gone once published");
    assert_eq!(instance.metric("hookd_outbox_rows_total{result=\"published\"}").await, 1.0);
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn a_rolled_back_producer_transaction_delivers_nothing() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };

    producer.complete_video(&account, "rolled-back", false).await;
    producer.complete_video(&account, "committed", true).await;
    // The committed row came after the rolled-back one: once it is delivered, a row
    // the rollback had let through would have been published too.
    assert_eq!(next_arrival(&mut receiver).await["event_data"]["video_id"], "committed");
    assert_eq!(producer.events_of(&account).await, 1, "only the committed row became an event");
    assert!(receiver.drain().is_empty());
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn invalid_rows_move_to_rejected_with_their_reason_and_do_not_hold_back_the_rest() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };
    let unknown_account = format!("{}{}", &account[..31], if account.ends_with('0') { '1' } else { '0' });

    let good = || row(&account, json!({"video_id": "fine"}));
    let with = |field: &str, value: Value| {
        let mut row = good();
        row[field] = value;
        row
    };
    let cases = [
        (with("account_id", json!("not-an-id")), "account_id: 'account_id' is not an account id."),
        (with("account_id", json!(unknown_account)), "account_id: Unknown account."),
        (
            with("account_id", json!(hookd_core::operational::OPERATIONS_ACCOUNT_ID)),
            "account_id: Unknown account.",
        ),
        (with("event_type", json!("made.up")), "event_type: Unknown event type \"made.up\"."),
        (with("event_data", json!([1, 2])), "event_data: 'event_data' must be a JSON object."),
        (with("entity_id", json!("e".repeat(300))), "entity_id: "),
        (
            with("callback_url", json!("https://10.0.0.1/hook")),
            "callback_url: 'callback_url' must be a publicly",
        ),
        (with("idempotency_key", json!("")), "idempotency_key: must be 1 to 255 characters."),
    ];
    let mut rows: Vec<Value> = cases.iter().map(|(row, _)| row.clone()).collect();
    rows.push(good());
    producer.insert(&rows).await;

    // The valid row, last in the same transaction, is published: the rejects did not
    // block it, and they were moved in the same transaction that published it.
    assert_eq!(next_arrival(&mut receiver).await["event_data"]["video_id"], "fine");
    let rejected: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT reason, account_id, event_data::text FROM hookd_outbox_rejected ORDER BY id")
            .fetch_all(&producer.pool)
            .await
            .expect("rejected rows")
            .into_iter()
            .map(|(reason, account_id, data): (String, String, String)| {
                (reason, account_id, serde_json::from_str(&data).expect("json"))
            })
            .collect();
    assert_eq!(rejected.len(), cases.len());
    for ((reason, account_id, event_data), (row, expected)) in rejected.iter().zip(&cases) {
        assert!(reason.starts_with(expected), "{reason:?} should start with {expected:?}");
        assert_eq!(account_id, &row["account_id"], "the row is kept as the producer wrote it");
        assert_eq!(event_data, &row["event_data"]);
    }
    assert_eq!(producer.waiting().await, 0);
    assert_eq!(producer.events_of(&account).await, 1);
    assert_eq!(instance.metric("hookd_outbox_rows_total{result=\"rejected\"}").await, cases.len() as f64);
    assert_eq!(instance.metric("hookd_outbox_rows_rejected").await, cases.len() as f64);
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn a_row_the_database_refuses_is_rejected_alone_and_its_batch_is_published() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };
    // A refusal no validation foresees (a constraint or trigger someone added): the
    // first insert of the batch fails as a whole.
    sqlx::query("ALTER TABLE events ADD CONSTRAINT no_poison CHECK (event_data NOT LIKE '%poison%')")
        .execute(&producer.pool)
        .await
        .expect("constraint");

    let rows = ["before", "poison", "after"].map(|word| row(&account, json!({ "word": word })));
    producer.insert(&rows).await;
    let mut words = HashSet::new();
    for _ in 0..2 {
        words.insert(
            next_arrival(&mut receiver).await["event_data"]["word"].as_str().expect("word").to_owned(),
        );
    }
    assert_eq!(words, HashSet::from(["before".to_owned(), "after".to_owned()]));
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM hookd_outbox_rejected")
        .fetch_all(&producer.pool)
        .await
        .expect("rejected");
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with("the database refused the event: "), "{}", reasons[0]);
    assert!(reasons[0].contains("no_poison"), "{}", reasons[0]);
    assert_eq!(producer.waiting().await, 0);
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn a_row_repeating_a_published_idempotency_key_is_not_published_again() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };
    let keyed = |n: u32, key: &str| {
        let mut row = row(&account, json!({ "n": n }));
        row["idempotency_key"] = json!(key);
        row
    };

    producer.insert(&[keyed(1, "render-1")]).await;
    assert_eq!(next_arrival(&mut receiver).await["event_data"]["n"], 1);
    // Again later, twice within one transaction, then a new key behind them.
    producer.insert(&[keyed(2, "render-1"), keyed(3, "render-2"), keyed(4, "render-2")]).await;
    assert_eq!(next_arrival(&mut receiver).await["event_data"]["n"], 3);
    assert_eq!(producer.events_of(&account).await, 2);
    assert!(receiver.drain().is_empty());
    assert_eq!(instance.metric("hookd_outbox_rows_total{result=\"duplicate\"}").await, 2.0);
    assert_eq!(producer.waiting().await, 0, "duplicates are removed, not left behind");
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn ten_thousand_rows_with_three_instances_and_kills_are_each_published_exactly_once() {
    let Some(database) = TestDatabase::shared().await else { return };
    let receiver = TestReceiver::start().await;
    let producer = Producer::connect(&database).await;
    let mut instances = vec![Instance::start(&database, &[]).await];
    let (account, key) = instances[0].new_account().await;
    instances[0].create_endpoint(&key, &receiver.url("/exactly-once")).await;
    // 4,000 rows wait as a backlog, so the instances drain full batches from the start.
    let batch = |from: u32| (from..from + 500).map(|n| row(&account, json!({ "n": n }))).collect::<Vec<_>>();
    for from in (0..4_000).step_by(500) {
        producer.insert(&batch(from)).await;
    }
    instances.push(Instance::start(&database, &[]).await);
    instances.push(Instance::start(&database, &[]).await);

    // Then 500 at a time, each followed at once by a SIGKILL: the instances are taking
    // those rows when one dies. A replacement starts each time.
    let mut kills_with_rows_waiting = 0;
    for (round, from) in (4_000..10_000).step_by(500).enumerate() {
        producer.insert(&batch(from)).await;
        tokio::time::sleep(Duration::from_millis(2 * round as u64)).await;
        let waiting = producer.waiting().await;
        instances.remove(round % instances.len()).binary.kill().await;
        if waiting > 0 {
            kills_with_rows_waiting += 1;
        }
        instances.push(Instance::start(&database, &[]).await);
    }
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while producer.waiting().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(
        kills_with_rows_waiting >= 3,
        "only {kills_with_rows_waiting} kills came while rows were waiting"
    );
    let published: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_data::jsonb->>'n', COUNT(*) FROM events WHERE account_id = $1 GROUP BY 1",
    )
    .bind(&account)
    .fetch_all(&producer.pool)
    .await
    .expect("published events");
    let numbers: HashSet<u32> = published.iter().map(|(n, _)| n.parse().expect("n")).collect();
    assert_eq!(numbers, (0..10_000).collect::<HashSet<u32>>(), "every row was published");
    let repeated: Vec<_> = published.iter().filter(|(_, count)| *count != 1).collect();
    assert!(
        repeated.is_empty(),
        "{} rows published more than once, e.g. {:?}",
        repeated.len(),
        repeated.first()
    );
    let deliveries = "SELECT COUNT(*) FROM deliveries WHERE account_id = $1";
    assert_eq!(producer.count(deliveries, &account).await, 10_000, "one delivery per event");
    let rejected = "SELECT COUNT(*) FROM hookd_outbox_rejected WHERE account_id = $1";
    assert_eq!(producer.count(rejected, &account).await, 0);
    producer.close().await;
    for instance in instances {
        instance.binary.stop().await;
    }
    database.finish().await;
}

#[tokio::test]
async fn a_producer_role_granted_only_insert_on_the_outbox_can_publish() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };
    // Roles belong to the server, not the scratch database: one name per run.
    let role = format!("renderer_{}", &account[..12]);
    // docs/outbox.md's grant, and nothing else.
    sqlx::query(&format!("CREATE ROLE {role}")).execute(&producer.pool).await.expect("role");
    sqlx::query(&format!("GRANT INSERT ON hookd_outbox TO {role}"))
        .execute(&producer.pool)
        .await
        .expect("grant");

    let mut tx = producer.pool.begin().await.expect("begin");
    sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await.expect("become the producer");
    let insert = "INSERT INTO hookd_outbox (account_id, event_type, event_data) VALUES ($1, 'avatar_video.success', '{\"by\": \"role\"}')";
    sqlx::query(insert).bind(&account).execute(&mut *tx).await.expect("insert with only the grant");
    let read = sqlx::query("SELECT 1 FROM hookd_outbox").execute(&mut *tx).await;
    assert!(read.is_err(), "the producer cannot read the outbox, so it cannot see other producers' rows");
    tx.rollback().await.expect("rollback");

    let mut tx = producer.pool.begin().await.expect("begin");
    sqlx::query(&format!("SET LOCAL ROLE {role}")).execute(&mut *tx).await.expect("become the producer");
    sqlx::query(insert).bind(&account).execute(&mut *tx).await.expect("insert with only the grant");
    tx.commit().await.expect("commit");
    assert_eq!(next_arrival(&mut receiver).await["event_data"]["by"], "role");
    finish(producer, instance, database).await;
    let server =
        PgPoolOptions::new().connect(&hookd_store::test_server_url().expect("url")).await.expect("server");
    sqlx::query(&format!("DROP ROLE {role}")).execute(&server).await.expect("drop role");
}

#[tokio::test]
async fn a_commit_notifies_only_while_a_consumer_waits_for_it() {
    let Some(database) = TestDatabase::shared().await else { return };
    // hookd migrates the database and stops: nobody but this test touches the flag.
    let instance = Instance::start(&database, &[]).await;
    let (account, _) = instance.new_account().await;
    instance.binary.stop().await;
    let producer = Producer::connect(&database).await;
    let mut listener = sqlx::postgres::PgListener::connect(database.url()).await.expect("listen");
    listener.listen("hookd_outbox").await.expect("listen");
    let set_waiting = |waiting: bool| {
        sqlx::query("UPDATE hookd_outbox_listening SET waiting = $1").bind(waiting).execute(&producer.pool)
    };
    let next_payload = async |listener: &mut sqlx::postgres::PgListener| {
        let notification = tokio::time::timeout(PATIENCE, listener.recv()).await.expect("a notification");
        notification.expect("notification").payload().to_owned()
    };

    set_waiting(true).await.expect("waiting");
    producer.insert(&[row(&account, json!({"n": 1}))]).await;
    assert_eq!(next_payload(&mut listener).await, "", "a waiting consumer is woken");
    set_waiting(false).await.expect("busy");
    producer.insert(&[row(&account, json!({"n": 2}))]).await;
    set_waiting(true).await.expect("waiting");
    producer.insert(&[row(&account, json!({"n": 3}))]).await;
    sqlx::query("SELECT pg_notify('hookd_outbox', 'marker')").execute(&producer.pool).await.expect("marker");
    // Notifications arrive in commit order: the third insert's, then the marker. Had
    // the second insert notified, its notification would come before the marker too.
    assert_eq!(next_payload(&mut listener).await, "");
    assert_eq!(next_payload(&mut listener).await, "marker", "no notification while consumers were busy");
    producer.close().await;
    database.finish().await;
}

#[tokio::test]
async fn the_outbox_alerts_query_metrics_hookd_exports() {
    let Some(OneInstance { database, mut receiver, instance, account, producer }) =
        OneInstance::start().await
    else {
        return;
    };
    producer.insert(&[row(&account, json!({"n": 1}))]).await;
    next_arrival(&mut receiver).await;
    let text = reqwest::get(instance.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let queried = crate::operations::metrics_queried_in("deploy/prometheus/hookd-rules.yml");
    let outbox: Vec<&String> = queried.iter().filter(|name| name.starts_with("hookd_outbox_")).collect();
    assert!(outbox.len() >= 2, "the rules query the outbox: {queried:?}");
    for name in outbox {
        assert!(text.lines().any(|line| line.starts_with(name.as_str())), "{name} is not exported:\n{text}");
    }
    finish(producer, instance, database).await;
}

#[tokio::test]
async fn asking_for_the_outbox_on_sqlite_stops_startup_and_says_why() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let data_dir = data_dir.path().to_str().expect("utf-8");
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
    let by_flag = command(&[&serve[..], &["--outbox"]].concat(), &[]).output().await.expect("run hookd");
    let by_env = command(&serve, &[("HOOKD_OUTBOX", "true")]).output().await.expect("run hookd");
    for output in [by_flag, by_env] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("--outbox needs PostgreSQL (--database-url postgres://...)"), "{stderr}");
    }
}
