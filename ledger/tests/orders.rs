//! P2P orders end to end through `ledger up` as a process: a store whose callbacks go to a
//! loopback receiver, a pay-in completed and one left to expire (the expiry job voids its hold),
//! every status change received as `orders.status_changed`, signed with the store's secret so the
//! Standard Webhooks verifier accepts it; neither the secret nor the card number in any event or
//! log line; and `ledger verify`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use outbound::webhooks::{Verifier, WebhookSecret};
use serde_json::{Value, json};
use support::{Api, Running, http, key, ledger, wait_for_line};
use test_support::fresh_database;
use uuid::Uuid;

const SECRETS_KEY: &str = "8a0c9e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const CARD: &str = "4276 1111 2222 9876";

type Request = (HeaderMap, Vec<u8>);

/// Records every callback and answers 204.
async fn receiver() -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callbacks", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Request>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/callbacks",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_through_ledger_up_send_signed_callbacks_expire_on_time_and_verify() {
    let db = fresh_database().await;
    let admin = key(&db, "ops", "orders:admin,orders:read,config:write,accounts:write,transfers:write,read");
    let merchant = key(&db, "shop", "orders:create:shop-1,orders:read:shop-1");
    let trader = key(&db, "trader", "orders:complete:tr-1");
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_SECRETS_KEY", SECRETS_KEY)
            .env("LEDGER_ORDERS_EXPIRY_INTERVAL_MS", "200")
            .env("LEDGER_LOG", "debug,sqlx=warn,hyper=info,h2=info,rustls=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = lines.clone();
    std::thread::spawn(move || log.map_while(Result::ok).for_each(|l| kept.lock().unwrap().push(l)));
    let api = Api { addr };
    let (url, got) = receiver().await;

    ok(&api, &admin, "PUT", "/v1/config/webhooks.allow_private", json!({"value": true}));
    ok(&api, &admin, "PUT", "/v1/config/orders.rate.RUB%2FUSDT", json!({"value": "92.5"}));
    ok(&api, &admin, "PUT", "/v1/config/orders.timeout_seconds", json!({"value": 60}));
    let store = json!({"name": "Shop", "fee": "0.035", "settlement_currency": "USDT", "callback_url": url});
    let created = ok(&api, &admin, "PUT", "/v1/orders/stores/shop-1", store);
    let secret_text = created["callback_secret"].as_str().unwrap().to_owned();
    let secret = WebhookSecret::parse(&secret_text).unwrap();
    let trader_body = json!({"fee": "0.02", "priority": 1, "traffic_enabled": true, "currencies": ["USDT"]});
    ok(&api, &admin, "PUT", "/v1/orders/traders/tr-1", trader_body);
    let requisite = json!({"method": "card", "bank": "Bank", "currency": "RUB", "min_amount": "100.00",
        "max_amount": "10000.00", "daily_limit": "100000.00", "enabled": true, "details": CARD});
    let shown = ok(&api, &admin, "PUT", "/v1/orders/traders/tr-1/requisites/c1", requisite);
    assert_eq!(shown["masked"], "•••• 9876");
    ok(&api, &admin, "POST", "/v1/accounts", json!({"code": "bank:usdt", "currency": "USDT", "kind": "asset"}));
    let fund = json!({"id": Uuid::new_v4(), "debit": "bank:usdt", "credit": "orders:trader:tr-1:deposit:USDT",
        "amount": "100"});
    ok(&api, &admin, "POST", "/v1/transfers", fund);

    // One order left to expire, one completed.
    let order = |external: &str| {
        json!({"id": Uuid::new_v4(), "store_id": "shop-1", "type": "pay_in", "external_order_id": external,
            "amount": "1000.00", "currency": "RUB"})
    };
    let expiring = ok(&api, &merchant, "POST", "/v1/orders", order("A-1"));
    let expiring_id = expiring["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let done = ok(&api, &merchant, "POST", "/v1/orders", order("A-2"));
    let done_id = done["id"].as_str().unwrap().to_owned();
    ok(&api, &trader, "POST", &format!("/v1/orders/{done_id}/complete"), Value::Null);

    // The expiry job voids the first hold once its minute is up.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, _, body) = api.get(&merchant, &format!("/v1/orders/{expiring_id}"), "application/json");
        let status: Value = serde_json::from_str(&body).unwrap();
        if status["status"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "not expired after {:?}: {status}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(59), "expired early: {:?}", started.elapsed());
    let (_, _, deposit) =
        api.get(&admin, "/v1/accounts?code=orders%3Atrader%3Atr-1%3Adeposit%3AUSDT", "application/json");
    let deposit: Value = serde_json::from_str(&deposit).unwrap();
    assert_eq!(deposit["balance"]["available"], "89.189190", "only the completed order's amount left");

    // pending, pending, completed, expired: every status change, signed with the store's secret.
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "callbacks: {}", got.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let verifier = Verifier::new(secret);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut seen = Vec::new();
    for (headers, body) in got.lock().unwrap().iter() {
        verifier.verify(headers, body, now).expect("signed with the store's secret");
        let message: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(message["type"], "orders.status_changed");
        let data = &message["data"];
        for field in [
            "order_id",
            "external_order_id",
            "status",
            "amount",
            "currency",
            "settlement_amount",
            "settlement_currency",
            "rate",
            "timestamp",
        ] {
            assert!(!data[field].is_null(), "{field}: {data}");
        }
        seen.push((data["order_id"].as_str().unwrap().to_owned(), data["status"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    let mut expected = vec![
        (expiring_id.clone(), "expired".to_owned()),
        (expiring_id, "pending".to_owned()),
        (done_id.clone(), "completed".to_owned()),
        (done_id, "pending".to_owned()),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    // Neither the callback secret nor the card, in any event or log line.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let payloads: Vec<(String,)> = sqlx::query_as("SELECT payload::text FROM events").fetch_all(&pool).await.unwrap();
    let digits: String = CARD.chars().filter(|c| !c.is_whitespace()).collect();
    for (payload,) in &payloads {
        assert!(!payload.contains(&secret_text) && !payload.contains(CARD) && !payload.contains(&digits), "{payload}");
    }
    for line in lines.lock().unwrap().iter() {
        assert!(!line.contains(&secret_text) && !line.contains(CARD), "{line}");
    }
    drop(up);
    let verified = ledger(&db, &["verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
