//! What the end-to-end tests share: `ledger` as a child process, its keys, plain HTTP/1.1 to it,
//! and Kafka (librdkafka's mock cluster, or the brokers in `KAFKA_BROKERS`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use test_support::TestDatabase;
use uuid::Uuid;

/// A child process killed when the test ends, passed or panicked.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn ledger(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ledger")).args(args).env("DATABASE_URL", &db.url).output().expect("ledger runs")
}

pub fn key(db: &TestDatabase, channel: &str, scopes: &str) -> String {
    let out = ledger(db, &["keys", "create", "--channel", channel, "--scopes", scopes]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned()
}

/// One HTTP/1.1 request; returns the status, the headers and the body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    // Bodies come whole or chunked; a chunked body is stitched back together.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

pub struct Api {
    pub addr: String,
}

impl Api {
    pub fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let auth = format!("Bearer {key}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let (status, _, body) = http(&self.addr, "POST", path, &headers, &body.to_string());
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    pub fn get(&self, key: &str, path: &str, accept: &str) -> (u16, String, String) {
        let auth = format!("Bearer {key}");
        http(&self.addr, "GET", path, &[("Authorization", auth.as_str()), ("Accept", accept)], "")
    }

    pub fn graphql(&self, key: &str, query: &str) -> Value {
        let auth = format!("Bearer {key}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let (status, _, body) = http(&self.addr, "POST", "/graphql", &headers, &json!({ "query": query }).to_string());
        assert_eq!(status, 200, "{body}");
        let value: Value = serde_json::from_str(&body).unwrap();
        assert!(value["errors"].is_null(), "{value}");
        value["data"].clone()
    }
}

/// Reads `topic` from the start until `n` messages arrived (or a minute passed): payload and
/// headers of each.
pub async fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<(Value, Vec<(String, String)>)> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null), headers));
        }
    }
    out
}

pub async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: Value) {
    producer
        .send(FutureRecord::to(topic).key(key).payload(&payload.to_string()), Duration::from_secs(5))
        .await
        .unwrap();
}

/// Reads a child's log until a line contains `marker`; returns the text after it and the lines
/// before.
pub fn wait_for_line(log: &mut impl Iterator<Item = std::io::Result<String>>, marker: &str) -> (String, Vec<String>) {
    let mut before = Vec::new();
    loop {
        let Some(line) = log.next() else { panic!("the process logs its address: {before:#?}") };
        let line = line.unwrap();
        if let Some(rest) = line.split(marker).nth(1) {
            return (rest.split('/').next().unwrap().to_owned(), before);
        }
        before.push(line);
    }
}

/// Kafka for one test: the brokers in `KAFKA_BROKERS`, else a mock cluster (kept alive by the
/// returned handle), with `names` created.
pub async fn kafka(
    names: &[String],
) -> (Option<rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>>, String) {
    let real = std::env::var("KAFKA_BROKERS").ok().filter(|b| !b.trim().is_empty());
    let mock = real.is_none().then(|| rdkafka::mocking::MockCluster::new(1).unwrap());
    let brokers = real.clone().unwrap_or_else(|| mock.as_ref().unwrap().bootstrap_servers());
    create_topics(mock.as_ref(), &brokers, names).await;
    (mock, brokers)
}

/// Kafka for one `ledger up` run with `env` (the variables the test hands it, without
/// `KAFKA_BROKERS`): every topic `ledger kafka topics` lists for that configuration, every
/// domain's, is created, except those in `absent` (a test of a missing topic). The test then
/// starts `ledger up` with the same `env` and the returned brokers.
pub async fn kafka_for(
    env: &[(&str, &str)],
    absent: &[&str],
) -> (Option<rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>>, String) {
    let (mock, brokers) = kafka(&[]).await;
    let names: Vec<String> = used_topics(&brokers, env)
        .into_iter()
        .map(|(_, name)| name)
        .filter(|n| !absent.contains(&n.as_str()))
        .collect();
    create_topics(mock.as_ref(), &brokers, &names).await;
    (mock, brokers)
}

/// What `ledger kafka topics` prints for `env` with `brokers`: (`written` or `consumed`, name).
pub fn used_topics(brokers: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["kafka", "topics"])
        .env("KAFKA_BROKERS", brokers)
        .envs(env.iter().copied())
        .output()
        .expect("ledger runs");
    assert!(out.status.success(), "ledger kafka topics: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (role, name) = line.split_once(' ').unwrap_or_else(|| panic!("`ROLE NAME`: {line:?}"));
            (role.to_owned(), name.to_owned())
        })
        .collect()
}

async fn create_topics(
    mock: Option<&rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
    brokers: &str,
    names: &[String],
) {
    match mock {
        // The mock cluster has no admin API: its topics are made directly.
        Some(mock) => names.iter().for_each(|n| mock.create_topic(n, 1, 1).unwrap()),
        None if names.is_empty() => {}
        None => {
            let admin: rdkafka::admin::AdminClient<_> =
                rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
            let new: Vec<rdkafka::admin::NewTopic<'_>> = names
                .iter()
                .map(|n| rdkafka::admin::NewTopic::new(n, 1, rdkafka::admin::TopicReplication::Fixed(1)))
                .collect();
            admin.create_topics(&new, &rdkafka::admin::AdminOptions::new()).await.unwrap();
        }
    }
}
