//! The `ledger` binary end to end: a writer killed with SIGKILL mid-load loses no acknowledged
//! transfer and leaves nothing half-written; `ledger verify` fails loudly on tampering.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use sqlx::Executor;
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

fn ledger(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledger")).args(args).env("DATABASE_URL", &db.url).output().expect("ledger runs")
}

fn acks(line: &str) -> Option<(Uuid, i64)> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[tokio::test]
async fn a_killed_writer_loses_no_acknowledged_transfer() {
    let db = fresh_database().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["bench-writer", "--transfers", "10000000", "--tasks", "32", "--accounts", "50", "--print-acks"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ledger bench-writer starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 3000 {
        let line = lines.next().expect("the load runs until killed").unwrap();
        acked.extend(acks(&line));
    }
    child.kill().expect("SIGKILL the writer mid-load");
    // Acknowledgements already printed before the kill still count.
    acked.extend(lines.map_while(Result::ok).filter_map(|l| acks(&l)));
    child.wait().unwrap();

    let verified = ledger(&db, &["verify"]);
    assert!(
        verified.status.success(),
        "the log verifies after the crash: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let mut conn = db.connect().await;
    let ids: Vec<Uuid> = acked.iter().map(|(id, _)| *id).collect();
    let streams: Vec<String> = ids.iter().map(|id| format!("transfer-{id}")).collect();
    let stored: Vec<(String, i64)> = sqlx::query_as("SELECT stream_id, position FROM events WHERE stream_id = ANY($1)")
        .bind(&streams)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), acked.len(), "every acknowledged transfer is in the log exactly once");
    let mut expected: Vec<(String, i64)> = acked.iter().map(|(id, p)| (format!("transfer-{id}"), *p)).collect();
    let mut stored = stored;
    expected.sort();
    stored.sort();
    assert_eq!(stored, expected, "at the position its acknowledgement named");
    drop(conn);

    // A restarted writer continues the same log without a hole.
    let again = ledger(&db, &["bench-writer", "--transfers", "500", "--tasks", "8", "--accounts", "50"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let verified = ledger(&db, &["verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let mut conn = db.connect().await;
    let (count, max): (i64, i64) =
        sqlx::query_as("SELECT count(*), max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, max, "positions 1..N with no hole");
    drop(conn);
    db.drop_database().await;
}

#[tokio::test]
async fn verify_exits_non_zero_and_names_the_tampered_position() {
    let db = fresh_database().await;
    let load = ledger(&db, &["bench-writer", "--transfers", "100", "--tasks", "4", "--accounts", "5"]);
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let ok = ledger(&db, &["verify"]);
    assert!(ok.status.success());
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with("ok: 106 events"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let mut conn = db.connect().await;
    // A superuser can switch the append-only triggers off; the hash chain still tells.
    conn.execute("SET session_replication_role = replica").await.unwrap();
    conn.execute("UPDATE events SET metadata = '{\"channel\": \"forged\"}' WHERE position = 42").await.unwrap();
    drop(conn);
    let bad = ledger(&db, &["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("position 42"), "{stderr}");
    db.drop_database().await;
}

/// One HTTP/1.1 request over a plain socket; returns the status code and body.
fn http(addr: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

/// Reads `ledger up`'s log until it names its address; returns it and the lines before it.
/// `ledger up` on `db` with `env` on top of the defaults (loopback on any port, info logs, no
/// Kafka unless `env` names brokers): the process, its log, its address and the lines before it.
#[allow(clippy::type_complexity)]
fn ledger_up(
    db: &TestDatabase,
    env: &[(&str, &str)],
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStderr>>, String, Vec<String>) {
    let mut up = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("up")
        .env("DATABASE_URL", &db.url)
        .env("LEDGER_LISTEN", "127.0.0.1:0")
        .env("LEDGER_LOG", "info")
        .env_remove("KAFKA_BROKERS")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(up.stderr.take().unwrap()).lines();
    let (addr, before) = address(&mut log);
    (up, log, addr, before)
}

fn address(log: &mut impl Iterator<Item = std::io::Result<String>>) -> (String, Vec<String>) {
    let mut before = Vec::new();
    loop {
        let line = log.next().expect("ledger up logs its address").unwrap();
        if let Some(rest) = line.split("command API on http://").nth(1) {
            return (rest.split('/').next().unwrap().to_owned(), before);
        }
        before.push(line);
    }
}

#[tokio::test]
async fn ledger_up_serves_the_api_and_shuts_down_gracefully() {
    let db = fresh_database().await;
    let created =
        ledger(&db, &["keys", "create", "--channel", "pos", "--scopes", "accounts:write,transfers:write,read"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("ldg_") && !key.contains(' '), "the key alone on the last line: {stdout}");
    let refused = ledger(&db, &["keys", "create", "--channel", "pos", "--scopes", "admin"]);
    assert!(!refused.status.success(), "unknown scopes are refused");
    let set = ledger(&db, &["roles", "set", "clerk", "--permissions", "events:read,accounts:read"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let listed = String::from_utf8(ledger(&db, &["roles", "list"]).stdout).unwrap();
    let listed: Vec<&str> = listed.lines().collect();
    assert_eq!(listed[1], "clerk\tevents:read,accounts:read", "by name, beside the seeded example roles");
    assert_eq!(
        listed[2],
        "merchant\torders:create:{scope},orders:cancel:{scope},orders:dispute:{scope},orders:read:{scope}"
    );
    assert_eq!(listed.len(), 6);
    let bound = ledger(&db, &["keys", "create", "--channel", "shop", "--roles", "merchant:store-17,support"]);
    assert!(bound.status.success(), "{}", String::from_utf8_lossy(&bound.stderr));
    let refused = ledger(&db, &["keys", "create", "--channel", "shop", "--roles", "merchant:*"]);
    assert!(!refused.status.success(), "a role is bound to an owner, not to every one");
    let clerk = ledger(&db, &["keys", "create", "--channel", "desk", "--roles", "clerk"]);
    let clerk = String::from_utf8(clerk.stdout).unwrap();
    let clerk_id = clerk.split(' ').nth(1).unwrap().to_owned();
    let clerk = clerk.lines().last().unwrap().to_owned();
    assert!(ledger(&db, &["keys", "create", "--channel", "ops", "--scopes", "*"]).status.success(), "* for an admin");

    let (mut up, log, addr, before) = ledger_up(&db, &[]);
    assert!(before.iter().any(|l| l.contains("Kafka publisher off: KAFKA_BROKERS is not set")), "{before:?}");
    // Another process changes the role, then revokes the key: the server sees each within a second.
    let within_a_second = |expected: u16| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let (status, _) = http(&addr, "GET", "/v1/events", &clerk, "");
            if status == expected {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "not {expected} within a second: {status}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    within_a_second(200);
    assert!(ledger(&db, &["roles", "set", "clerk", "--permissions", "accounts:read"]).status.success());
    within_a_second(403);
    assert!(ledger(&db, &["keys", "revoke", &clerk_id]).status.success());
    within_a_second(401);
    let (status, _) = http(&addr, "POST", "/v1/accounts", &key, r#"{"code":"bank","currency":"EUR","kind":"asset"}"#);
    assert_eq!(status, 201);
    let (status, _) = http(
        &addr,
        "POST",
        "/v1/accounts",
        &key,
        r#"{"code":"player","currency":"EUR","kind":"liability","no_overdraft":true}"#,
    );
    assert_eq!(status, 201);
    let transfer = format!(r#"{{"id":"{}","debit":"bank","credit":"player","amount":"25.00"}}"#, Uuid::new_v4());
    let (status, body) = http(&addr, "POST", "/v1/transfers", &key, &transfer);
    assert_eq!(status, 201, "{body}");
    let posted: serde_json::Value = serde_json::from_str(&body).unwrap();
    let position = posted["position"].as_i64().unwrap();
    let (status, body) = http(&addr, "GET", "/v1/accounts?code=player", &key, "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""balance":"25.00""#), "{body}");

    // The query API on the same port reads the projections `ledger up` runs.
    let (status, body) = http(
        &addr,
        "POST",
        "/graphql",
        &key,
        &format!(
            r#"{{"query":"{{ account(code: \"player\", minPosition: {position}) {{ balance {{ balance }} }} }}"}}"#
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""balance":{"balance":"25.00"}"#), "{body}");
    // The orders' list reads the orders read model `ledger up` runs: no order yet.
    let (status, body) = http(&addr, "GET", "/v1/orders?limit=5", &key, "");
    assert_eq!((status, body.as_str()), (200, r#"{"orders":[],"next_after":null}"#));

    // SIGTERM: in-flight requests finish, the writer commits what it holds, the process exits 0.
    let pid = up.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = up.wait().unwrap();
    assert!(status.success(), "ledger up exits cleanly on SIGTERM: {status:?}");
    let lines: Vec<String> = log.map_while(Result::ok).collect();
    assert!(lines.iter().any(|l| l.contains("writer stopped")), "{lines:?}");
    let verified = ledger(&db, &["verify"]);
    // The requests' accounts and transfer, beside the audit entries of the key's creation and
    // of the refusals above.
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success() && report.contains(" events, 2 accounts, 1 transfers,"), "{verified:?}");
    db.drop_database().await;
}

#[tokio::test]
async fn ledger_up_keeps_its_read_models_in_a_second_cluster_when_told() {
    let db = fresh_database().await;
    let read = test_support::fresh_read_database().await;
    let created =
        ledger(&db, &["keys", "create", "--channel", "pos", "--scopes", "accounts:write,transfers:write,read"]);
    let key = String::from_utf8(created.stdout).unwrap().lines().last().unwrap().to_owned();
    let (mut up, _log, addr, before) = ledger_up(&db, &[("LEDGER_READ_DATABASE_URL", &read.url)]);
    assert!(before.iter().any(|l| l.contains("read models in their own database")), "{before:?}");
    for body in [
        r#"{"code":"bank","currency":"EUR","kind":"asset"}"#,
        r#"{"code":"player","currency":"EUR","kind":"liability","no_overdraft":true}"#,
    ] {
        assert_eq!(http(&addr, "POST", "/v1/accounts", &key, body).0, 201);
    }
    let transfer = format!(r#"{{"id":"{}","debit":"bank","credit":"player","amount":"25.00"}}"#, Uuid::new_v4());
    let (status, body) = http(&addr, "POST", "/v1/transfers", &key, &transfer);
    assert_eq!(status, 201, "{body}");
    let position = serde_json::from_str::<serde_json::Value>(&body).unwrap()["position"].as_i64().unwrap();
    // Root fields resolve concurrently: wait for the position first, then look.
    let (status, body) = http(
        &addr,
        "POST",
        "/graphql",
        &key,
        &format!(
            r#"{{"query":"{{ account(code: \"player\", minPosition: {position}) {{ balance {{ balance }} }} }}"}}"#
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""balance":{"balance":"25.00"}"#), "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/graphql",
        &key,
        r#"{"query":"{ events(account: \"player\") { edges { node { type } } } projections { name lag } }"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"{"node":{"type":"TransferPosted"}}"#), "{body}");
    assert!(body.contains(r#"{"name":"balances","lag":0}"#) && body.contains(r#""name":"turnover""#), "{body}");
    // The metrics see the read models' checkpoints where they are. The journal is applied by
    // another runner than the balances the queries above waited for: it gets there too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let metrics = loop {
        let (_, metrics) = http(&addr, "GET", "/metrics", &key, "");
        if metrics.contains(r#"ledger_projection_lag{projection="journal"} 0"#) || std::time::Instant::now() > deadline
        {
            break metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(metrics.contains(r#"ledger_projection_lag{projection="journal"} 0"#), "{metrics}");
    // What the writer committed reached the read models from memory, not read back from the log.
    let from_memory: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ledger_projection_events_from_memory_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(from_memory > 0, "{metrics}");
    // Read models in the second cluster, none beside the log.
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'rm\\_%'";
    let beside: i64 = sqlx::query_scalar(tables).fetch_one(&mut db.connect().await).await.unwrap();
    let apart: i64 = sqlx::query_scalar(tables).fetch_one(&mut read.connect().await).await.unwrap();
    assert_eq!(beside, 0);
    assert!(apart >= 10, "{apart}");
    assert!(Command::new("kill").args(["-TERM", &up.id().to_string()]).status().unwrap().success());
    assert!(up.wait().unwrap().success());
    read.drop_database().await;
    db.drop_database().await;
}

/// Each read model's (name, checkpoint, head); `read`: the read models' own database.
async fn projection_lags(db: &TestDatabase, read: Option<&TestDatabase>) -> Vec<(String, i64, i64)> {
    let mut conn = db.connect().await;
    let status = match read {
        Some(read) => {
            // What `ledger projections status` does: the runner may not have created it yet.
            let mut read = read.connect().await;
            projections::prepare_read_database(&mut read).await.unwrap();
            projections::status_with(&mut conn, Some(&mut read)).await
        }
        None => projections::status(&mut conn).await,
    };
    status.unwrap().into_iter().map(|s| (s.name, s.checkpoint, s.head)).collect()
}

#[tokio::test]
async fn projections_killed_mid_batch_neither_skip_nor_double_count() {
    killed_mid_batch(false, 1).await;
}

#[tokio::test]
async fn projections_in_two_runners_killed_mid_batch_neither_skip_nor_double_count() {
    killed_mid_batch(false, 2).await;
}

#[tokio::test]
async fn projections_in_a_second_cluster_killed_mid_batch_neither_skip_nor_double_count() {
    killed_mid_batch(true, 1).await;
}

/// `separate`: the read models and their checkpoints in a database of their own, on the second
/// cluster, the log read from the first. `runners`: how many runners share the read models.
async fn killed_mid_batch(separate: bool, runners: usize) {
    let db = fresh_database().await;
    let read_db = if separate { Some(test_support::fresh_read_database().await) } else { None };
    let read = read_db.as_ref();
    let ledger = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
        command.args(args).env("DATABASE_URL", &db.url).env("LEDGER_PROJECTION_RUNNERS", runners.to_string());
        if let Some(read) = read {
            command.env("LEDGER_READ_DATABASE_URL", &read.url);
        }
        command
    };
    let load = ledger(&["bench-writer", "--transfers", "30000", "--tasks", "16", "--accounts", "40", "--hot"])
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let spawn = || ledger(&["projections", "run"]).stderr(Stdio::null()).spawn().unwrap();
    let mut runner = spawn();
    // Kill it with SIGKILL while it is part-way through the log.
    loop {
        let lags = projection_lags(&db, read).await;
        if lags.iter().any(|(_, checkpoint, head)| *checkpoint > 0 && checkpoint < head) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    let mut runner = spawn();
    while projection_lags(&db, read).await.iter().any(|(_, checkpoint, head)| checkpoint < head) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(Command::new("kill").args(["-TERM", &runner.id().to_string()]).status().unwrap().success());
    assert!(runner.wait().unwrap().success());

    let mut conn = read.unwrap_or(&db).connect().await;
    if separate {
        let here: bool = sqlx::query_scalar("SELECT to_regclass('rm_balances') IS NOT NULL")
            .fetch_one(&mut db.connect().await)
            .await
            .unwrap();
        assert!(!here, "no read model beside the log");
    }
    let sums = "SELECT (SELECT sum(debits_posted) FROM rm_balances)::text, (SELECT count(*) FROM rm_balance_history)::text, \
                (SELECT count(*) FROM rm_transfers)::text, (SELECT count(*) FROM rm_legs)::text, \
                (SELECT count(*) FROM rm_account_events)::text, (SELECT sum(debits) FROM rm_turnover)::text";
    let after_crash: (String, String, String, String, String, String) =
        sqlx::query_as(sums).fetch_one(&mut conn).await.unwrap();
    assert_eq!(after_crash.2, "30000", "every transfer once in the journal");
    for name in ["balances", "journal", "turnover"] {
        let rebuilt = ledger(&["projections", "rebuild", name]).output().unwrap();
        assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    }
    let rebuilt: (String, String, String, String, String, String) =
        sqlx::query_as(sums).fetch_one(&mut conn).await.unwrap();
    assert_eq!(after_crash, rebuilt, "the crashed-and-resumed read models equal a clean rebuild");
    let status = ledger(&["projections", "status"]).output().unwrap();
    assert!(status.status.success());
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("balances") && status.contains("turnover"), "{status}");
    drop(conn);
    if let Some(read) = read_db {
        read.drop_database().await;
    }
    db.drop_database().await;
}

/// Reads `topic` from the start until `n` messages arrived (or a minute passed).
async fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<String> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Message;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("cli-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(std::time::Duration::from_millis(500), consumer.recv()).await {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_up_publishes_to_kafka_and_consumes_transfer_requests() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let prefix = format!("t{}", Uuid::new_v4().simple());
    let requests = format!("{prefix}.transfer-requests");
    let kafka_env =
        [("LEDGER_KAFKA_TOPIC_PREFIX", prefix.as_str()), ("LEDGER_KAFKA_TRANSFER_REQUESTS_TOPIC", requests.as_str())];
    // Every domain's topics too, as `ledger kafka topics` names them for this configuration.
    let (_mock, brokers) = support::kafka_for(&kafka_env, &[]).await;
    let db = fresh_database().await;
    let created =
        ledger(&db, &["keys", "create", "--channel", "pos", "--scopes", "accounts:write,transfers:write,read"]);
    let key = String::from_utf8(created.stdout).unwrap().lines().last().unwrap().to_owned();
    let mut env = vec![("KAFKA_BROKERS", brokers.as_str())];
    env.extend(kafka_env);
    let (mut up, log, addr, before) = ledger_up(&db, &env);
    assert!(before.iter().any(|l| l.contains("Kafka publisher on")), "{before:?}");
    std::thread::spawn(move || log.map_while(Result::ok).for_each(|l| eprintln!("up: {l}"))); // keep the pipe drained

    for account in [
        r#"{"code":"bank","currency":"EUR","kind":"asset"}"#,
        r#"{"code":"player","currency":"EUR","kind":"liability"}"#,
    ] {
        assert_eq!(http(&addr, "POST", "/v1/accounts", &key, account).0, 201);
    }
    let transfer = format!(r#"{{"id":"{}","debit":"bank","credit":"player","amount":"25.00"}}"#, Uuid::new_v4());
    assert_eq!(http(&addr, "POST", "/v1/transfers", &key, &transfer).0, 201);
    let request = format!(r#"{{"id":"{}","debit":"bank","credit":"player","amount":"5.00"}}"#, Uuid::new_v4());
    let producer: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    producer
        .send(FutureRecord::to(&requests).key("request-1").payload(&request), std::time::Duration::from_secs(5))
        .await
        .unwrap();

    // The ledger's four events, and the audit entry of the key's creation (recorded by the
    // engine's job as it starts, so anywhere among them).
    let published = read_topic(&brokers, &format!("{prefix}.events"), 5).await;
    assert_eq!(published.len(), 5, "{published:?}");
    let envelopes: Vec<serde_json::Value> = published.iter().map(|p| serde_json::from_str(p).unwrap()).collect();
    assert_eq!(envelopes.iter().filter(|e| e["type"] == "AuditRecorded").count(), 1, "{envelopes:?}");
    let channels: Vec<String> = envelopes
        .iter()
        .filter(|e| e["type"] != "AuditRecorded")
        .map(|e| e["metadata"]["channel"].as_str().unwrap().into())
        .collect();
    assert_eq!(channels, ["pos", "pos", "pos", format!("kafka:{requests}").as_str()]);
    let (_, metrics) = http(&addr, "GET", "/metrics", &key, "");
    assert!(metrics.contains(r#"ledger_projection_lag{projection="kafka_publisher"}"#), "{metrics}");

    // `ledger schemas check` accepts what was published and names what breaks the contract.
    let dir = std::env::temp_dir().join(format!("ledger-schemas-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("published.jsonl");
    std::fs::write(&good, published.join("\n")).unwrap();
    let checked = ledger(&db, &["schemas", "check", good.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
    assert_eq!(String::from_utf8_lossy(&checked.stdout).matches(": ok (").count(), 5);
    let bad = dir.join("bad.json");
    let transfer = published.iter().find(|p| p.contains(r#""amount":"25.00""#)).unwrap();
    std::fs::write(&bad, transfer.replace(r#""amount":"25.00""#, r#""amount":25"#)).unwrap();
    let refused = ledger(&db, &["schemas", "check", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("payload of TransferPosted v1"), "{refused:?}");
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(Command::new("kill").args(["-TERM", &up.id().to_string()]).status().unwrap().success());
    assert!(up.wait().unwrap().success());
    db.drop_database().await;
}

/// A broker that creates no topics by itself (librdkafka's mock cluster cannot create them
/// through the admin API either): `ledger up` refuses to start and names what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_up_refuses_to_start_when_topics_are_missing_and_cannot_be_created() {
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    let prefix = format!("t{}", Uuid::new_v4().simple());
    mock.create_topic(&format!("{prefix}.events"), 1, 1).unwrap();
    let db = fresh_database().await;
    let run = |create: &str| {
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("KAFKA_BROKERS", mock.bootstrap_servers())
            .env("LEDGER_KAFKA_TOPIC_PREFIX", &prefix)
            .env("LEDGER_KAFKA_CREATE_TOPICS", create)
            .output()
            .unwrap()
    };
    for create in ["false", "true"] {
        let out = run(create);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "create={create}: {stderr}");
        assert!(stderr.contains("Kafka topics missing"), "{stderr}");
        for missing in ["accounts", "transfers"] {
            assert!(stderr.contains(&format!("{prefix}.{missing} (")), "names {missing}: {stderr}");
        }
        assert!(!stderr.contains(&format!("{prefix}.events (")), "events exists: {stderr}");
        // What it names is what `ledger kafka topics` lists as written (every domain's), and no
        // consumed topic: those may be created later.
        for (role, name) in support::used_topics(&mock.bootstrap_servers(), &[("LEDGER_KAFKA_TOPIC_PREFIX", &prefix)]) {
            let named = stderr.contains(&format!("{name} ("));
            let expected = role == "written" && name != format!("{prefix}.events");
            assert_eq!(named, expected, "{role} {name}: {stderr}");
        }
    }
    db.drop_database().await;
}

/// `ledger kafka topics` lists what `ledger up` would use: each part's topics by role, a
/// domain's gone when its Kafka is switched off, nothing at all without brokers.
#[test]
fn kafka_topics_lists_each_parts_topics_and_follows_the_switches() {
    let topics = |env: &[(&str, &str)]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["kafka", "topics"])
            .env_remove("LEDGER_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
    };
    let on = [("KAFKA_BROKERS", "127.0.0.1:1"), ("LEDGER_KAFKA_TOPIC_PREFIX", "p")];
    let all = topics(&on);
    for line in [
        "written p.events",
        "written p.accounts",
        "written p.transfers",
        "written wallet.transactions",
        "written GiftCertificateState",
        "written GiftCertificateUpload.dlq",
        "consumed GiftCertificateUpload",
    ] {
        assert!(all.iter().any(|l| l == line), "{line}: {all:#?}");
    }
    let unique: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "each topic once: {all:#?}");
    // The wallet switched off: its topic goes, the others stay.
    let without_wallet = topics(&[on[0], on[1], ("LEDGER_WALLET_KAFKA", "false")]);
    let gone: Vec<&String> = all.iter().filter(|l| !without_wallet.contains(l)).collect();
    assert_eq!(gone, ["written wallet.transactions"]);
    // Inbound transfer requests: consumed, and their dead letters written.
    let requests = topics(&[on[0], on[1], ("LEDGER_KAFKA_TRANSFER_REQUESTS_TOPIC", "r")]);
    assert!(requests.contains(&"consumed r".to_owned()) && requests.contains(&"written r.dlq".to_owned()));
    assert!(topics(&[("KAFKA_BROKERS", "")]).is_empty(), "Kafka off: no topic");
}

/// The scripts find the binary where cargo puts it, CARGO_TARGET_DIR included.
#[test]
fn the_scripts_find_the_binary_where_cargo_puts_it() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let bin = |target_dir: Option<&str>| {
        let mut command = Command::new("bash");
        command.args(["-c", "source scripts/lib/bin.sh && ledger_bin release"]).current_dir(root);
        command.env_remove("CARGO_TARGET_DIR");
        if let Some(dir) = target_dir {
            command.env("CARGO_TARGET_DIR", dir);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(bin(Some("/var/tmp/shared-target")), "/var/tmp/shared-target/release/ledger");
    assert!(bin(None).ends_with("/release/ledger"));
    for script in ["scripts/run", "scripts/bench", "scripts/test"] {
        let text = std::fs::read_to_string(format!("{root}/{script}")).unwrap();
        assert!(!text.contains("target/release") && !text.contains("target/debug"), "{script} names a fixed target/");
    }
}

#[test]
fn ledger_up_refuses_two_different_secrets_keys_naming_both_and_neither_value() {
    let (new, old) = (
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    );
    let run = |cvc_key: &str| {
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            // Settings are read before any connection: nothing listens here.
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_SECRETS_KEY", new)
            .env("LEDGER_CVC_KEY", cvc_key)
            .output()
            .unwrap()
    };
    let refused = run(old);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("LEDGER_SECRETS_KEY and LEDGER_CVC_KEY"), "{stderr}");
    assert!(!stderr.contains(new) && !stderr.contains(old), "no key in clear: {stderr}");
    // The same key under both names is one key: start-up goes on (to the missing database).
    let same = run(new);
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert!(!same.status.success());
    assert!(!stderr.contains("both set and differ"), "{stderr}");
}
