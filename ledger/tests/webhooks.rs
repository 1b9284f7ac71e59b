//! Outbound webhooks through `ledger up` as a process: endpoints over HTTP (refused on loopback
//! until the runtime setting allows it), messages of the ledger's own events signed so the
//! Standard Webhooks verifier accepts them, the attempts log over REST and GraphQL, metrics, the
//! audit trail of every change, and a `kill -9` between commit and delivery losing nothing.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use outbound::webhooks::{Verifier, WebhookSecret};
use serde_json::{Value, json};
use support::{Api, Running, http, key, ledger, wait_for_line};
use test_support::{TestDatabase, fresh_database};

const SECRETS_KEY: &str = "5f0c9e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

fn up_on(db: &TestDatabase, listen: &str) -> (Running, Api) {
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", listen)
            .env("LEDGER_SECRETS_KEY", SECRETS_KEY)
            .env("LEDGER_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    (up, Api { addr })
}

/// The headers and body of one request.
type Request = (HeaderMap, Vec<u8>);

/// A receiver on loopback that records every request and answers 204.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    async fn start_on(listener: tokio::net::TcpListener) -> Receiver {
        let receiver = Receiver::default();
        let got = receiver.got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let got = got.clone();
                async move {
                    got.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().unwrap().iter().map(|(_, b)| serde_json::from_slice(b).unwrap()).collect()
    }

    async fn wait(&self, within: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let bodies = self.bodies();
            if done(&bodies) {
                return bodies;
            }
            assert!(Instant::now() < deadline, "the receiver got {bodies:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn send(api: &Api, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, text) = http(&api.addr, method, path, &headers, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn open_account(api: &Api, key: &str, code: &str) {
    let (status, body) = api.post(key, "/v1/accounts", json!({"code": code, "currency": "EUR", "kind": "asset"}));
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_over_http_receive_signed_messages_of_the_ledger_and_log_their_attempts() {
    let db = fresh_database().await;
    let admin = key(&db, "ops", "webhooks:write,webhooks:read,config:write,audit:read,accounts:write,read");
    let reader = key(&db, "viewer", "webhooks:read");
    let (up, api) = up_on(&db, "127.0.0.1:0");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = Receiver::start_on(listener).await;

    // The catalog names the ledger's events and the audit levels.
    let (status, _, body) = api.get(&reader, "/v1/webhooks/event-types", "application/json");
    assert_eq!(status, 200, "{body}");
    let types: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> =
        types["event_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"ledger.account_opened") && names.contains(&"audit.critical"), "{names:?}");

    // Loopback is refused until the setting allows it; unknown types always are.
    let create = json!({"url": url, "event_types": ["ledger.account_opened"], "description": "erp"});
    let (status, problem) = send(&api, &admin, "POST", "/v1/webhooks/endpoints", create.clone());
    assert_eq!((status, problem["code"].as_str()), (422, Some("endpoint_not_allowed")), "{problem}");
    let (status, body) = send(&api, &admin, "PUT", "/v1/config/webhooks.allow_private", json!({"value": true}));
    assert_eq!(status, 200, "{body}");
    let bad = json!({"url": url, "event_types": ["transfer.posted"]});
    let (status, problem) = send(&api, &admin, "POST", "/v1/webhooks/endpoints", bad);
    assert_eq!((status, problem["code"].as_str()), (422, Some("unknown_event_type")), "{problem}");
    let (status, problem) = send(&api, &reader, "POST", "/v1/webhooks/endpoints", create.clone());
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "{problem}");
    let (status, created) = send(&api, &admin, "POST", "/v1/webhooks/endpoints", create);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = WebhookSecret::parse(created["secret"].as_str().unwrap()).unwrap();
    let (status, _, listed) = api.get(&reader, "/v1/webhooks/endpoints", "application/json");
    assert_eq!(status, 200);
    assert!(listed.contains(&id) && !listed.contains("whsec_"), "{listed}");

    open_account(&api, &admin, "cash");
    let bodies = receiver.wait(Duration::from_secs(10), |b| !b.is_empty()).await;
    assert_eq!(bodies[0]["type"], "ledger.account_opened");
    assert_eq!(bodies[0]["data"]["code"], "cash");
    let (headers, raw) = receiver.got.lock().unwrap()[0].clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Verifier::new(secret).verify(&headers, &raw, now).expect("the Standard Webhooks verifier accepts it");
    let message = headers.get("webhook-id").unwrap().to_str().unwrap().to_owned();

    // The attempts log, over REST and GraphQL.
    let deadline = Instant::now() + Duration::from_secs(5);
    let attempts = loop {
        let (status, _, body) = api.get(&reader, &format!("/v1/webhooks/endpoints/{id}/attempts"), "application/json");
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        if !page["attempts"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempt = &attempts["attempts"][0];
    assert_eq!((attempt["message_id"].as_str(), attempt["attempt"].as_i64()), (Some(message.as_str()), Some(1)));
    assert_eq!(attempt["status_code"], 204);
    let (status, _, body) = api.get(&reader, &format!("/v1/webhooks/messages/{message}"), "application/json");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "delivered");
    let data = api.graphql(
        &reader,
        &format!("{{ webhookAttempts(endpointId: \"{id}\", first: 5) {{ edges {{ node {{ messageId attempt statusCode latencyMs eventType }} }} }} }}"),
    );
    let node = &data["webhookAttempts"]["edges"][0]["node"];
    assert_eq!(node["messageId"], message.as_str());
    assert_eq!(node["statusCode"], 204);
    assert_eq!(node["eventType"], "ledger.account_opened");
    let (status, problem) = send(&api, &admin, "POST", &format!("/v1/webhooks/messages/{message}/retry"), Value::Null);
    assert_eq!(status, 202, "a delivered message may be sent again: {problem}");

    // Metrics and health tell of deliveries.
    let metrics = api.get(&reader, "/metrics", "text/plain").2;
    assert!(metrics.contains("ledger_webhook_deliveries_total{outcome=\"delivered\"}"), "{metrics}");
    assert!(metrics.contains("ledger_webhook_delivering 1"), "{metrics}");

    // Rotation and deletion; both audited with the creation, never with a secret.
    let (status, rotated) =
        send(&api, &admin, "POST", &format!("/v1/webhooks/endpoints/{id}/rotate-secret"), Value::Null);
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["secret"], created["secret"]);
    let (status, _) = send(&api, &admin, "DELETE", &format!("/v1/webhooks/endpoints/{id}"), Value::Null);
    assert_eq!(status, 204);
    let (status, problem) = send(&api, &admin, "DELETE", &format!("/v1/webhooks/endpoints/{id}"), Value::Null);
    assert_eq!((status, problem["code"].as_str()), (404, Some("endpoint_not_found")));
    let (_, _, audit) = api.get(&admin, "/v1/admin/audit", "application/json");
    for action in ["webhooks.endpoint_create", "webhooks.secret_rotate", "webhooks.endpoint_delete", "webhooks.retry"] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut audit = audit.clone();
        while !audit.contains(action) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            audit = api.get(&admin, "/v1/admin/audit", "application/json").2;
        }
        assert!(audit.contains(action), "{action} in {audit}");
        assert!(!audit.contains("whsec_"), "{audit}");
    }
    let events: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM events").fetch_all(&mut db.connect().await).await.unwrap();
    assert!(events.iter().all(|e| !e.contains("whsec_")), "no secret in any event");
    drop(up);
    let out = ledger(&db, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_commit_and_delivery_loses_no_message() {
    let db = fresh_database().await;
    let admin = key(&db, "ops", "webhooks:write,config:write,accounts:write");
    // The receiver's port, taken and let go: nothing listens there until after the kill.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (up, api) = up_on(&db, "127.0.0.1:0");
    let (status, body) = send(&api, &admin, "PUT", "/v1/config/webhooks.allow_private", json!({"value": true}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &api,
        &admin,
        "PUT",
        "/v1/config/webhooks.retry_schedule",
        json!({"value": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, created) =
        send(&api, &admin, "POST", "/v1/webhooks/endpoints", json!({"url": url, "event_types": ["ledger.*"]}));
    assert_eq!(status, 201, "{created}");
    for i in 0..20 {
        open_account(&api, &admin, &format!("acc-{i}"));
    }
    // kill -9, right after the last commit was answered.
    let mut up = up;
    kill_9(&mut up);
    let positions: BTreeSet<i64> = sqlx::query_scalar("SELECT position FROM events WHERE event_type = 'AccountOpened'")
        .fetch_all(&mut db.connect().await)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(positions.len(), 20);

    let receiver = Receiver::start_on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    let (_up, _api) = up_on(&db, "127.0.0.1:0");
    let bodies = receiver
        .wait(Duration::from_secs(30), |b| {
            let got: BTreeSet<i64> = b.iter().filter_map(|m| m["position"].as_i64()).collect();
            positions.is_subset(&got)
        })
        .await;
    assert!(bodies.iter().all(|b| b["type"] == "ledger.account_opened"), "{bodies:?}");
    db.drop_database().await;
}

/// SIGKILL: no shutdown, no flush, no goodbye.
fn kill_9(running: &mut Running) {
    running.0.kill().unwrap();
    running.0.wait().unwrap();
}
