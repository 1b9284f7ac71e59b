//! The gaming wallet end to end through `ledger up` as a process: a deposit settled by the
//! payment provider's signed webhook; a withdrawal whose payout the provider refuses, the engine
//! killed with SIGKILL mid-saga, restarted, the payout sent again and accepted, its `sent` step
//! recorded once, then settled by webhook; a withdrawal the provider never answers, returned to
//! main at its deadline; the provider's secret in no event or log line; and `ledger verify`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use outbound::webhooks::{WebhookSecret, headers};
use serde_json::{Value, json};
use support::{Api, Running, http, key, ledger, wait_for_line};
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

const SECRETS_KEY: &str = "8a0c9e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const PSP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A payment provider's payout endpoint: records every payout and answers `status`.
struct Psp {
    url: String,
    status: Arc<AtomicU16>,
    payouts: Arc<Mutex<Vec<Value>>>,
}

async fn psp() -> Psp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(503));
    let payouts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (answer, seen) = (status.clone(), payouts.clone());
    let app = axum::Router::new().route(
        "/payouts",
        axum::routing::post(move |body: axum::Json<Value>| {
            let (answer, seen) = (answer.clone(), seen.clone());
            async move {
                seen.lock().unwrap().push(body.0);
                StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Psp { url, status, payouts }
}

/// `ledger up` on the database, its address, and its log lines as they come.
fn up(db: &TestDatabase, lines: &Arc<Mutex<Vec<String>>>) -> (Running, Api) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_SECRETS_KEY", SECRETS_KEY)
            .env("LEDGER_WALLET_INTERVAL_MS", "200")
            .env("LEDGER_WALLET_PAYOUT_TIMEOUT_MS", "1000")
            .env("LEDGER_LOG", "debug,sqlx=warn,hyper=info,h2=info,rustls=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let (addr, before) = wait_for_line(&mut log, "command API on http://");
    lines.lock().unwrap().extend(before);
    let kept = lines.clone();
    std::thread::spawn(move || log.map_while(Result::ok).for_each(|l| kept.lock().unwrap().push(l)));
    (child, Api { addr })
}

fn send(api: &Api, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, text) = http(&api.addr, method, path, &headers, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ok(api: &Api, key: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = send(api, key, method, path, body);
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

/// The provider's signed webhook about a payment.
fn webhook(api: &Api, kind: &str, id: &str, amount: &str) -> (u16, Value) {
    let body = json!({"type": kind, "timestamp": "2026-12-07T10:00:00Z",
        "data": {"id": id, "amount": amount, "currency": "EUR", "provider_reference": format!("psp-{id}")}})
    .to_string();
    let secret = WebhookSecret::parse(PSP_SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = headers(&secret, &format!("msg_{}", Uuid::new_v4()), now, body.as_bytes());
    let mut all: Vec<(&str, &str)> = signed.iter().map(|(n, v)| (*n, v.as_str())).collect();
    all.push(("Content-Type", "application/json"));
    let (status, _, text) = http(&api.addr, "POST", "/v1/wallet/webhooks/payments/psp", &all, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Waits until the withdrawal's status is `status`; answers it.
async fn until(api: &Api, key: &str, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let w = ok(api, key, "GET", &format!("/v1/wallet/withdrawals/{id}"), Value::Null);
        if w["status"] == status {
            return w;
        }
        assert!(Instant::now() < deadline, "not {status}: {w}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn steps(w: &Value) -> Vec<String> {
    w["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_saga_survives_a_kill_and_resumes_from_the_log_and_a_silent_provider_returns_the_money() {
    let db = fresh_database().await;
    let admin = key(&db, "ops", "wallet:admin,wallet:read,wallet:pay,config:write");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let psp = psp().await;
    let (mut engine, api) = up(&db, &lines);

    ok(&api, &admin, "PUT", "/v1/wallet/players/p1", json!({"currency": "EUR", "kyc": "basic"}));
    let provider = json!({"kind": "payments", "secret": PSP_SECRET, "base_url": psp.url});
    ok(&api, &admin, "PUT", "/v1/wallet/providers/psp", provider);
    let deposit = Uuid::new_v4().to_string();
    let body = json!({"id": deposit, "player_id": "p1", "amount": "100", "currency": "EUR", "provider": "psp"});
    let intent = ok(&api, &admin, "POST", "/v1/wallet/deposits", body);
    assert_eq!(intent["status"], "pending");
    let (status, answer) = webhook(&api, "deposit.succeeded", &deposit, "100.00");
    assert_eq!(status, 200, "{answer}");

    // The provider refuses the payout (503): the runner retries it, the withdrawal stays locked.
    let withdrawal = Uuid::new_v4().to_string();
    let body = json!({"id": withdrawal, "player_id": "p1", "amount": "40", "currency": "EUR", "provider": "psp"});
    let w = ok(&api, &admin, "POST", "/v1/wallet/withdrawals", body);
    assert_eq!(w["status"], "locked");
    let deadline = Instant::now() + Duration::from_secs(20);
    while psp.payouts.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the payout is retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Killed mid-saga; restarted on the same log, the provider now accepting.
    engine.0.kill().unwrap();
    engine.0.wait().unwrap();
    psp.status.store(202, Ordering::SeqCst);
    let (restarted, api) = up(&db, &lines);
    let w = until(&api, &admin, &withdrawal, "sent", Duration::from_secs(20)).await;
    assert_eq!(steps(&w), ["locked", "sent"]);
    let sent_to_psp = psp.payouts.lock().unwrap().clone();
    assert!(sent_to_psp.len() >= 3, "{sent_to_psp:?}");
    assert!(
        sent_to_psp
            .iter()
            .all(|p| p == &json!({"id": withdrawal, "player_id": "p1", "amount": "40.00", "currency": "EUR"}))
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let accepted = psp.payouts.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(psp.payouts.lock().unwrap().len(), accepted, "an accepted payout is not sent again");
    let (status, answer) = webhook(&api, "withdrawal.succeeded", &withdrawal, "40.00");
    assert_eq!(status, 200, "{answer}");
    let w = ok(&api, &admin, "GET", &format!("/v1/wallet/withdrawals/{withdrawal}"), Value::Null);
    assert_eq!(steps(&w), ["locked", "sent", "succeeded"]);

    // A provider that never accepts: the money returns to main at the deadline.
    ok(&api, &admin, "PUT", "/v1/config/wallet.withdrawal_timeout_seconds", json!({"value": 10}));
    psp.status.store(500, Ordering::SeqCst);
    let silent = Uuid::new_v4().to_string();
    let body = json!({"id": silent, "player_id": "p1", "amount": "25", "currency": "EUR", "provider": "psp"});
    ok(&api, &admin, "POST", "/v1/wallet/withdrawals", body);
    let player = ok(&api, &admin, "GET", "/v1/wallet/players/p1", Value::Null);
    assert_eq!(
        (player["balances"]["main"].as_str(), player["balances"]["locked"].as_str()),
        (Some("35.00"), Some("25.00"))
    );
    let w = until(&api, &admin, &silent, "timed_out", Duration::from_secs(30)).await;
    assert_eq!(steps(&w), ["locked", "timed_out"]);
    let player = ok(&api, &admin, "GET", "/v1/wallet/players/p1", Value::Null);
    assert_eq!(
        (player["balances"]["main"].as_str(), player["balances"]["locked"].as_str()),
        (Some("60.00"), Some("0.00"))
    );
    let (status, answer) = webhook(&api, "withdrawal.succeeded", &silent, "25.00");
    assert_eq!((status, answer["code"].as_str()), (409, Some("withdrawal_already_settled")));

    // The wallet read model `ledger up` runs (through the kill too) answers in GraphQL: the
    // balances the command API gave, each withdrawal with its saga's steps once.
    let query = json!({"query": "{ walletPlayer(id: \"p1\") { balances { main locked } \
        withdrawals(first: 10) { edges { node { id steps { status } } } } \
        movements(kind: withdrawal_returned) { edges { node { account amount balanceAfter } } } } }"});
    let deadline = Instant::now() + Duration::from_secs(10);
    let player = loop {
        let answer = ok(&api, &admin, "POST", "/graphql", query.clone());
        let player = answer["data"]["walletPlayer"].clone();
        if player["balances"]["locked"] == "0.00" || Instant::now() > deadline {
            break player;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(player["balances"], json!({"main": "60.00", "locked": "0.00"}), "{player}");
    let sagas: Vec<(String, Vec<String>)> = player["withdrawals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["id"].as_str().unwrap().to_owned(), steps(&e["node"])))
        .collect();
    assert_eq!(
        sagas,
        [
            (withdrawal.clone(), vec!["locked".to_owned(), "sent".into(), "succeeded".into()]),
            (silent.clone(), vec!["locked".to_owned(), "timed_out".into()])
        ]
    );
    assert_eq!(
        player["movements"]["edges"],
        json!([{"node": {"account": "locked", "amount": "-25.00", "balanceAfter": "0.00"}},
            {"node": {"account": "main", "amount": "25.00", "balanceAfter": "60.00"}}])
    );

    // The provider's secret is in no event, row or log line.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let encoded = PSP_SECRET.trim_start_matches("whsec_");
    let payloads: Vec<(String,)> = sqlx::query_as("SELECT payload::text FROM events").fetch_all(&pool).await.unwrap();
    assert!(payloads.iter().all(|(p,)| !p.contains(encoded)));
    let rows: Vec<(String,)> = sqlx::query_as("SELECT state::text FROM entities").fetch_all(&pool).await.unwrap();
    assert!(rows.iter().all(|(r,)| !r.contains(encoded)));
    drop(restarted);
    assert!(lines.lock().unwrap().iter().all(|l| !l.contains(encoded)));
    let verified = ledger(&db, &["verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
