//! The Kafka publisher against librdkafka's mock cluster (or KAFKA_BROKERS): every event once,
//! in order per key, with its headers; nothing lost over a broker outage; a subscriber's
//! balances equal the GraphQL balances.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use projections::Model;
use rust_decimal::Decimal;
use streams::subscriber::BalanceBook;
use streams::{Envelope, KafkaSettings, KafkaSink, PublisherConfig, Topics};
use tower::ServiceExt;

use crate::support::*;

fn config() -> PublisherConfig {
    PublisherConfig {
        poll: Duration::from_millis(100),
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
    }
}

fn spawn_publisher(
    url: &str,
    brokers: &str,
    prefix: &str,
    message_timeout: Duration,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let sink = KafkaSink::new(&KafkaSettings { brokers: brokers.to_owned(), message_timeout }).unwrap();
    let topics = Topics::with_defaults(prefix).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = url.to_owned();
    let task = tokio::spawn(async move { streams::publisher::run(&url, sink, topics, config(), stopped).await });
    (stop, task)
}

async fn checkpoint(db: &test_support::TestDatabase) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query_scalar("SELECT coalesce((SELECT checkpoint FROM projections WHERE name = 'kafka_publisher'), 0)")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_order_per_key_with_its_headers() {
    let broker = Broker::any();
    let prefix = prefix();
    let names = [format!("{prefix}.events"), format!("{prefix}.accounts"), format!("{prefix}.transfers")];
    broker.create_topics(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let ledger = ledger().await;
    workload(&ledger.handle, 0).await;
    let (stop, publisher) = spawn_publisher(&ledger.db.url, &broker.brokers, &prefix, Duration::from_secs(30));
    // Live: more events after the publisher caught up.
    assert!(eventually(Duration::from_secs(30), || async { checkpoint(&ledger.db).await > 0 }).await);
    workload(&ledger.handle, 1).await;

    let stored = all_events(&ledger.db).await;
    let n = stored.len();
    let events = read_until(&broker.brokers, &names[0], Duration::from_secs(60), |r| r.len() >= n).await;
    // Settle: nothing more arrives (no duplicates without failures).
    assert_eq!(events.len(), n, "every event exactly once on {}", names[0]);
    assert_eq!(distinct_ids(&events).len(), n);

    let by_position: HashMap<i64, &ledger_store::RecordedEvent> = stored.iter().map(|r| (r.position, r)).collect();
    let mut last_per_key: HashMap<String, (i32, i64, i64)> = HashMap::new();
    let mut ordered = events.clone();
    ordered.sort_by_key(|r| (r.partition, r.offset));
    for received in &ordered {
        let value: serde_json::Value = serde_json::from_slice(&received.payload).unwrap();
        streams::schemas::check(&value).unwrap_or_else(|e| panic!("{value}: {e:?}"));
        let envelope: Envelope = serde_json::from_value(value).unwrap();
        let record = by_position[&envelope.position];
        assert_eq!(envelope.id, record.event_id);
        assert_eq!(envelope.event().unwrap(), record.event().unwrap());
        assert_eq!(received.key.as_deref(), Some(record.stream_id.as_str()));
        assert_eq!(received.header("event_id"), Some(record.event_id.to_string().as_str()));
        assert_eq!(received.header("event_type"), Some(record.event_type.as_str()));
        assert_eq!(received.header("schema_version"), Some(record.schema_version.to_string().as_str()));
        assert_eq!(received.header("position"), Some(record.position.to_string().as_str()));
        // Per key, one partition, and positions rise with offsets.
        let key = received.key.clone().unwrap();
        if let Some((partition, offset, position)) = last_per_key.get(&key) {
            assert_eq!(*partition, received.partition, "key {key} moved partitions");
            assert!(received.offset > *offset && envelope.position > *position, "key {key} out of order");
        }
        last_per_key.insert(key, (received.partition, received.offset, envelope.position));
    }
    let account_events = stored.iter().filter(|r| r.event_type.starts_with("Account")).count();
    let accounts = read_until(&broker.brokers, &names[1], Duration::from_secs(30), |r| r.len() >= account_events).await;
    assert_eq!(accounts.len(), account_events);
    assert!(accounts.iter().all(|r| r.header("event_type").is_some_and(|t| t.starts_with("Account"))));
    assert!(eventually(Duration::from_secs(10), || async { checkpoint(&ledger.db).await == n as i64 }).await);

    // The subscriber example's book equals the balances the GraphQL API serves.
    let mut book = BalanceBook::default();
    for received in &events {
        book.apply(&serde_json::from_slice(&received.payload).unwrap()).unwrap();
    }
    let graphql = graphql_balances(&ledger.db).await;
    assert_eq!(book.accounts().len(), graphql.len());
    for (account, totals) in book.accounts() {
        let served = &graphql[account];
        let got = [totals.debits_posted, totals.credits_posted, totals.debits_pending, totals.credits_pending];
        assert_eq!(got, *served, "account {account}");
    }
    assert!(book.accounts().values().any(|t| t.debits_pending > Decimal::ZERO || t.credits_posted > Decimal::ZERO));

    stop.send(true).unwrap();
    publisher.await.unwrap();
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}

/// Every account's `[debits posted, credits posted, debits pending, credits pending]` as the
/// GraphQL API answers, once the balances projection caught up.
async fn graphql_balances(db: &test_support::TestDatabase) -> BTreeMap<String, [Decimal; 4]> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let follow = projections::Follow { poll: Duration::from_millis(50), linger: Duration::from_millis(5) };
    let runner = tokio::spawn(async move { projections::run(&url, Model::Balances, follow, stopped).await });
    let caught_up = eventually(Duration::from_secs(30), || async {
        let mut conn = db.connect().await;
        let status = projections::status(&mut conn).await.unwrap();
        status.iter().any(|s| s.name == Model::Balances.name() && s.lag == 0)
    })
    .await;
    assert!(caught_up, "the balances projection did not catch up");
    stop.send(true).unwrap();
    runner.await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (_, key) = create_key(&pool, "bi", &["read".to_owned()]).await.unwrap();
    let router = query_api::router(query_api::QueryState::new(pool));
    let query = "{ accounts(first: 100) { edges { node { id balance { debitsPosted creditsPosted debitsPending creditsPending } } } } }";
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(serde_json::json!({ "query": query }).to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let edges = body["data"]["accounts"]["edges"].as_array().unwrap_or_else(|| panic!("{body}"));
    let dec = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    edges
        .iter()
        .map(|e| {
            let b = &e["node"]["balance"];
            let id = e["node"]["id"].as_str().unwrap().to_owned();
            (
                id,
                [
                    dec(&b["debitsPosted"]),
                    dec(&b["creditsPosted"]),
                    dec(&b["debitsPending"]),
                    dec(&b["creditsPending"]),
                ],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_nothing_and_the_ledger_keeps_accepting() {
    // A broker this test can stop: always a private mock cluster.
    let broker = Broker::mock();
    let prefix = prefix();
    let events_topic = format!("{prefix}.events");
    broker.create_topics(&[&events_topic, &format!("{prefix}.accounts"), &format!("{prefix}.transfers")]);
    let ledger = ledger().await;
    let (stop, publisher) = spawn_publisher(&ledger.db.url, &broker.brokers, &prefix, Duration::from_millis(800));
    workload(&ledger.handle, 0).await;
    let head = all_events(&ledger.db).await.len() as i64;
    assert!(eventually(Duration::from_secs(30), || async { checkpoint(&ledger.db).await == head }).await);

    let mock = broker.mock.as_ref().unwrap();
    mock.broker_down(1).unwrap();
    // Commands go on being accepted while the broker is down.
    workload(&ledger.handle, 1).await;
    let head = all_events(&ledger.db).await.len() as i64;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stuck = checkpoint(&ledger.db).await;
    assert!(stuck < head, "the checkpoint moved past unacknowledged events ({stuck} of {head})");

    mock.broker_up(1).unwrap();
    assert!(
        eventually(Duration::from_secs(60), || async { checkpoint(&ledger.db).await == head }).await,
        "the publisher did not catch up after the broker returned"
    );
    let received =
        read_until(&broker.brokers, &events_topic, Duration::from_secs(60), |r| distinct_ids(r).len() >= head as usize)
            .await;
    let expected: std::collections::HashSet<String> =
        all_events(&ledger.db).await.iter().map(|r| r.event_id.to_string()).collect();
    assert_eq!(distinct_ids(&received), expected, "every event arrived at least once");

    stop.send(true).unwrap();
    publisher.await.unwrap();
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_failed_fatally_is_replaced() {
    use streams::{OutMessage, Sink};
    let broker = Broker::any();
    let topic = format!("{}.events", prefix());
    broker.create_topics(&[&topic]);
    let sink = KafkaSink::new(&KafkaSettings::new(&broker.brokers)).unwrap();
    let message = |n: usize| OutMessage {
        topic: topic.clone(),
        key: "k".into(),
        payload: format!("{n}"),
        headers: vec![("event_id", n.to_string())],
    };
    sink.send(vec![message(1)]).await.unwrap();
    sink.inject_fatal_error();
    assert!(sink.is_broken());
    sink.send(vec![message(2)]).await.expect("a new producer sends the next batch");
    assert!(!sink.is_broken());
    let received = read_until(&broker.brokers, &topic, Duration::from_secs(30), |r| r.len() >= 2).await;
    let payloads: Vec<&[u8]> = received.iter().map(|r| r.payload.as_slice()).collect();
    assert_eq!(payloads, [b"1".as_slice(), b"2".as_slice()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_is_sent_again_and_the_checkpoint_waits_for_it() {
    use streams::MemorySink;
    use streams::publisher::{NAME, PublishError, step};
    let ledger = ledger().await;
    workload(&ledger.handle, 0).await;
    let head = all_events(&ledger.db).await.len();
    let mut conn = ledger.db.connect().await;
    sqlx::query("INSERT INTO projections (name, version) VALUES ($1, 1)").bind(NAME).execute(&mut conn).await.unwrap();
    let (sink, topics) = (MemorySink::default(), Topics::with_defaults("ledger").unwrap());

    sink.fail_next(1);
    assert!(matches!(step(&mut conn, &sink, &topics).await, Err(PublishError::Sink(_))));
    assert_eq!(checkpoint(&ledger.db).await, 0, "nothing is checkpointed past an unacknowledged page");
    let delivered_before_failure = sink.sent().len();
    assert!(delivered_before_failure > 0);

    assert_eq!(step(&mut conn, &sink, &topics).await.unwrap(), head);
    assert_eq!(checkpoint(&ledger.db).await, head as i64);
    let sent = sink.sent();
    // Two topics per event; the part delivered before the failure arrives twice (at least once).
    assert_eq!(sent.len(), delivered_before_failure + 2 * head);
    let ids: std::collections::HashSet<&str> =
        sent.iter().filter_map(|m| m.headers.iter().find(|(k, _)| *k == "event_id")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(ids.len(), head);
    drop(conn);
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}

/// One publisher per database: a second one started beside it waits, publishes nothing, and
/// takes over where the first stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_waits_and_takes_over_where_the_first_stopped() {
    use streams::MemorySink;
    let ledger = ledger().await;
    workload(&ledger.handle, 0).await;
    let spawn = |sink: MemorySink| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (url, topics) = (ledger.db.url.clone(), Topics::with_defaults("ledger").unwrap());
        (stop, tokio::spawn(async move { streams::publisher::run(&url, sink, topics, config(), stopped).await }))
    };
    let (first_sink, second_sink) = (MemorySink::default(), MemorySink::default());
    let (stop_first, first) = spawn(first_sink.clone());
    let head = all_events(&ledger.db).await.len() as i64;
    assert!(eventually(Duration::from_secs(30), || async { checkpoint(&ledger.db).await == head }).await);
    let (stop_second, second) = spawn(second_sink.clone());
    workload(&ledger.handle, 1).await;
    let head = all_events(&ledger.db).await.len() as i64;
    assert!(eventually(Duration::from_secs(30), || async { checkpoint(&ledger.db).await == head }).await);
    assert!(second_sink.sent().is_empty(), "the standby publishes nothing while the first runs");

    stop_first.send(true).unwrap();
    first.await.unwrap();
    workload(&ledger.handle, 2).await;
    let head = all_events(&ledger.db).await.len() as i64;
    assert!(eventually(Duration::from_secs(30), || async { checkpoint(&ledger.db).await == head }).await);
    stop_second.send(true).unwrap();
    second.await.unwrap();
    // Between them, every event once on each of its two topics.
    let ids: Vec<String> = [first_sink.sent(), second_sink.sent()]
        .concat()
        .iter()
        .filter(|m| m.topic == "ledger.events")
        .filter_map(|m| m.headers.iter().find(|(k, _)| *k == "event_id").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(ids.len() as i64, head);
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len() as i64, head);
    assert!(!second_sink.sent().is_empty(), "the standby took over");
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_beside_the_writer_takes_its_pages_from_the_tail_and_publishes_every_event_once() {
    let broker = Broker::any();
    let prefix = prefix();
    let names = [format!("{prefix}.events"), format!("{prefix}.accounts"), format!("{prefix}.transfers")];
    broker.create_topics(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let db = test_support::fresh_database().await;
    let tail = ledger_store::tail::Tail::new(100_000);
    let writer = ledger_store::WriterConfig { tail: Some(tail.clone()), ..ledger_store::WriterConfig::default() };
    let (handle, task) = ledger_store::Writer::start(&db.url, writer).await.unwrap();
    let sink =
        KafkaSink::new(&KafkaSettings { brokers: broker.brokers.clone(), message_timeout: Duration::from_secs(30) })
            .unwrap();
    let topics = Topics::with_defaults(&prefix).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (url, publisher_tail) = (db.url.clone(), tail.clone());
    let publisher = tokio::spawn(async move {
        streams::publisher::run_with(&url, sink, topics, Vec::new(), config(), stopped, Some(&publisher_tail)).await
    });
    workload(&handle, 0).await;
    workload(&handle, 1).await;

    let stored = {
        let mut conn = db.connect().await;
        ledger_store::log::page(&mut conn, 0, 100_000).await.unwrap()
    };
    let n = stored.len();
    let events = read_until(&broker.brokers, &names[0], Duration::from_secs(60), |r| r.len() >= n).await;
    assert_eq!(events.len(), n, "every event exactly once");
    let by_position: HashMap<i64, &ledger_store::RecordedEvent> = stored.iter().map(|r| (r.position, r)).collect();
    for received in &events {
        let envelope: Envelope = serde_json::from_slice(&received.payload).unwrap();
        let record = by_position[&envelope.position];
        assert_eq!(envelope.id, record.event_id);
        assert_eq!(envelope.event().unwrap(), record.event().unwrap());
    }
    assert_eq!(distinct_ids(&events).len(), n);
    assert!(tail.served() > 0, "pages came from memory");
    stop.send(true).unwrap();
    publisher.await.unwrap();
    drop(handle);
    task.await.unwrap();
    db.drop_database().await;
}
