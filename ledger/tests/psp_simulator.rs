//! `ledger wallet-psp-simulator` against `ledger up`, both as processes on a fresh database: a
//! deposit paid through the redirect page and one settled by a control call move the money; a
//! duplicate of a webhook is deduplicated by the engine; a late one is refused (401) and writes
//! nothing; a withdrawal's payout is accepted by the simulator and settled by its webhook, at
//! once (`--payouts succeed`) or held until a control call fails it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, Running, http, key, ledger, wait_for_line};
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

const SECRETS_KEY: &str = "8a0c9e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const PSP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A child's log drained on a thread, so the child never blocks on a full pipe.
fn drain(log: impl Iterator<Item = std::io::Result<String>> + Send + 'static) {
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
}

/// `ledger up` on the database and its address.
fn up(db: &TestDatabase) -> (Running, Api) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_SECRETS_KEY", SECRETS_KEY)
            .env("LEDGER_WALLET_INTERVAL_MS", "200")
            .env("LEDGER_WALLET_PAYOUT_TIMEOUT_MS", "1000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    drain(log);
    (child, Api { addr })
}

/// The simulator as provider `provider` of the engine at `engine`; its address.
fn simulator(engine: &Api, provider: &str, payouts: &str) -> (Running, String) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["wallet-psp-simulator", "--listen", "127.0.0.1:0", "--provider", provider, "--payouts", payouts])
            .args(["--engine", &format!("http://{}", engine.addr), "--payout-delay-ms", "100"])
            .env("LEDGER_PSP_SECRET", PSP_SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "PSP simulator on http://");
    drain(log);
    (child, addr)
}

fn send(addr: &str, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, text) = http(addr, method, path, &headers, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ok(api: &Api, key: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = send(&api.addr, key, method, path, body);
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

/// A control call to the simulator: its status and answer.
fn control(sim: &str, path: &str, body: Value) -> (u16, Value) {
    send(sim, "", "POST", path, body)
}

fn balances(api: &Api, key: &str, player: &str) -> (String, String) {
    let p = ok(api, key, "GET", &format!("/v1/wallet/players/{player}"), Value::Null);
    let b = |name: &str| p["balances"][name].as_str().unwrap_or_default().to_owned();
    (b("main"), b("locked"))
}

async fn events_count(db: &TestDatabase) -> i64 {
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// A deposit intent through the engine: its answer.
fn deposit(api: &Api, key: &str, provider: &str, amount: &str) -> Value {
    let body =
        json!({"id": Uuid::new_v4(), "player_id": "p1", "amount": amount, "currency": "EUR", "provider": provider});
    let d = ok(api, key, "POST", "/v1/wallet/deposits", body);
    assert_eq!(d["status"], "pending", "{d}");
    d
}

/// The engine and a player `p1` (EUR, KYC basic), with a key that administers the wallet.
fn engine(db: &TestDatabase) -> (Running, Api, String) {
    let admin = key(db, "ops", "wallet:admin,wallet:read,wallet:pay");
    let (engine, api) = up(db);
    ok(&api, &admin, "PUT", "/v1/wallet/players/p1", json!({"currency": "EUR", "kyc": "basic"}));
    (engine, api, admin)
}

fn register(api: &Api, admin: &str, provider: &str, sim: &str) {
    let body = json!({"kind": "payments", "secret": PSP_SECRET, "base_url": format!("http://{sim}")});
    ok(api, admin, "PUT", &format!("/v1/wallet/providers/{provider}"), body);
}

/// The value of `attribute="…"` on the first line of `html` containing `marker`.
fn attribute(html: &str, marker: &str, attribute: &str) -> String {
    let line = html.lines().find(|l| l.contains(marker)).unwrap_or_else(|| panic!("{marker:?} in {html}"));
    let start = line.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    line[start..].split('"').next().unwrap().replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_through_the_page_and_control_calls_settle_once_and_a_late_webhook_writes_nothing() {
    let db = fresh_database().await;
    let (_engine, api, admin) = engine(&db);
    let (_sim, sim) = simulator(&api, "psp", "succeed");
    register(&api, &admin, "psp", &sim);

    // The redirect URL opens the simulator's page; its Pay button settles the deposit.
    let d1 = deposit(&api, &admin, "psp", "100");
    let redirect = d1["redirect_url"].as_str().unwrap();
    let page_path = redirect.strip_prefix(&format!("http://{sim}")).unwrap();
    assert_eq!(page_path, format!("/pay/{}?amount=100.00&currency=EUR", d1["id"].as_str().unwrap()));
    let (status, head, page) = http(&sim, "GET", page_path, &[], "");
    assert_eq!(status, 200, "{page}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    let pay = attribute(&page, "value=\"succeed\"", "action");
    assert_eq!(pay, format!("/pay/{}/succeed?amount=100.00&currency=EUR", d1["id"].as_str().unwrap()));
    let (status, _, paid) = http(&sim, "POST", &pay, &[], "");
    assert_eq!(status, 200, "{paid}");
    assert!(paid.contains(r#"<strong id="status">200</strong>"#), "{paid}");
    let d = ok(&api, &admin, "GET", &format!("/v1/wallet/deposits/{}", d1["id"].as_str().unwrap()), Value::Null);
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(balances(&api, &admin, "p1"), ("100.00".into(), "0.00".into()));

    // A control call settles another; the engine's answer comes back.
    let d2 = deposit(&api, &admin, "psp", "50.00");
    let id2 = d2["id"].as_str().unwrap();
    let (status, sent) =
        control(&sim, &format!("/control/deposits/{id2}/succeed"), json!({"amount": "50.00", "currency": "EUR"}));
    assert_eq!(status, 200, "{sent}");
    assert_eq!((sent["type"].as_str(), sent["engine"]["status"].as_u64()), (Some("deposit.succeeded"), Some(200)));
    assert_eq!(sent["engine"]["body"]["payment_status"], "succeeded", "{sent}");
    assert_eq!(balances(&api, &admin, "p1"), ("150.00".into(), "0.00".into()));

    // The same webhook again (same webhook-id, same body): accepted, nothing more written.
    let written = events_count(&db).await;
    let webhook_id = sent["webhook_id"].as_str().unwrap();
    let (status, again) = control(&sim, &format!("/control/webhooks/{webhook_id}/duplicate"), Value::Null);
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["webhook_id"].as_str(), again["duplicate"].as_bool()), (Some(webhook_id), Some(true)));
    assert_eq!(again["engine"]["status"], 200, "{again}");
    assert_eq!(again["engine"]["body"]["status"], "accepted", "{again}");
    assert_eq!(events_count(&db).await, written, "a duplicate writes nothing");
    assert_eq!(balances(&api, &admin, "p1"), ("150.00".into(), "0.00".into()));

    // A late webhook: 401, nothing written, the deposit still pending; the amount is the
    // page's when the control call leaves it out.
    let d3 = deposit(&api, &admin, "psp", "30");
    let id3 = d3["id"].as_str().unwrap();
    let path3 = d3["redirect_url"].as_str().unwrap().strip_prefix(&format!("http://{sim}")).unwrap().to_owned();
    assert_eq!(http(&sim, "GET", &path3, &[], "").0, 200);
    let written = events_count(&db).await;
    let (status, late) = control(&sim, &format!("/control/deposits/{id3}/succeed"), json!({"late": true}));
    assert_eq!(status, 200, "{late}");
    assert_eq!((late["late"].as_bool(), late["engine"]["status"].as_u64()), (Some(true), Some(401)), "{late}");
    assert_eq!(late["engine"]["body"]["code"], "invalid_signature", "{late}");
    assert_eq!(events_count(&db).await, written, "a late webhook writes nothing");
    let d = ok(&api, &admin, "GET", &format!("/v1/wallet/deposits/{id3}"), Value::Null);
    assert_eq!(d["status"], "pending", "{d}");
    // Its duplicate on time is the same message, now accepted; then a failure of a fourth.
    let (_, on_time) =
        control(&sim, &format!("/control/webhooks/{}/duplicate", late["webhook_id"].as_str().unwrap()), json!({}));
    assert_eq!(on_time["engine"]["status"], 200, "{on_time}");
    assert_eq!(balances(&api, &admin, "p1"), ("180.00".into(), "0.00".into()));
    let d4 = deposit(&api, &admin, "psp", "20");
    let id4 = d4["id"].as_str().unwrap();
    let body = json!({"amount": "20.00", "currency": "EUR", "reason": "card declined"});
    let (_, failed) = control(&sim, &format!("/control/deposits/{id4}/fail"), body);
    assert_eq!(failed["engine"]["body"]["payment_status"], "failed", "{failed}");
    assert_eq!(balances(&api, &admin, "p1"), ("180.00".into(), "0.00".into()));

    // The engine's own refusal is reported as it answered: an unknown deposit is 404.
    let body = json!({"amount": "21.00", "currency": "EUR"});
    let (_, mismatch) = control(&sim, &format!("/control/deposits/{}/succeed", Uuid::new_v4()), body);
    assert_eq!(mismatch["engine"]["status"], 404, "{mismatch}");

    // Bad input to the simulator is a problem with a stable code.
    for (path, body, expect) in [
        (
            format!("/control/deposits/{id4}/succeed"),
            json!({"amount": "x", "currency": "EUR"}),
            (422, "invalid_amount"),
        ),
        (
            format!("/control/deposits/{id4}/succeed"),
            json!({"amount": "1", "currency": "eur"}),
            (422, "invalid_currency"),
        ),
        (format!("/control/deposits/{id4}/refund"), json!({}), (404, "invalid_outcome")),
        (format!("/control/deposits/{}/succeed", Uuid::new_v4()), json!({}), (422, "amount_required")),
        ("/control/deposits/nope/succeed".to_owned(), json!({}), (400, "invalid_id")),
        (format!("/control/deposits/{id4}/succeed"), json!({"amount": "1", "colour": "red"}), (400, "invalid_body")),
        ("/control/webhooks/msg_unknown/duplicate".to_owned(), Value::Null, (404, "webhook_not_found")),
    ] {
        let (status, problem) = control(&sim, &path, body);
        assert_eq!((status, problem["code"].as_str().unwrap_or_default()), (expect.0, expect.1), "{path}: {problem}");
    }
    let (status, _, text) = http(&sim, "GET", &format!("/pay/{id4}?amount=1e9&currency=EUR"), &[], "");
    assert_eq!(status, 422, "{text}");

    // What it received and sent, in order.
    let (status, events) = send(&sim, "", "GET", "/events", Value::Null);
    assert_eq!(status, 200);
    let sent: Vec<(String, u64)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "sent")
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["engine"]["status"].as_u64().unwrap()))
        .collect();
    let expect: Vec<(String, u64)> = [
        ("deposit.succeeded", 200),
        ("deposit.succeeded", 200),
        ("deposit.succeeded", 200),
        ("deposit.succeeded", 401),
        ("deposit.succeeded", 200),
        ("deposit.failed", 200),
        ("deposit.succeeded", 404),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), *s))
    .collect();
    assert_eq!(sent, expect);
    let redirects = events.as_array().unwrap().iter().filter(|e| e["kind"] == "redirect").count();
    assert_eq!(redirects, 2, "{events}");
}

/// Waits until the withdrawal's status is `status`; answers it.
async fn until(api: &Api, key: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let w = ok(api, key, "GET", &format!("/v1/wallet/withdrawals/{id}"), Value::Null);
        if w["status"] == status {
            return w;
        }
        assert!(Instant::now() < deadline, "not {status}: {w}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn steps(w: &Value) -> Vec<String> {
    w["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect()
}

fn withdraw(api: &Api, key: &str, provider: &str, amount: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let body = json!({"id": id, "player_id": "p1", "amount": amount, "currency": "EUR", "provider": provider});
    let w = ok(api, key, "POST", "/v1/wallet/withdrawals", body);
    assert_eq!(w["status"], "locked", "{w}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawals_payout_is_answered_and_settled_by_the_simulator_at_once_or_when_told() {
    let db = fresh_database().await;
    let (_engine, api, admin) = engine(&db);
    let (_auto, auto) = simulator(&api, "psp", "succeed");
    let (_held, held) = simulator(&api, "psp-hold", "hold");
    register(&api, &admin, "psp", &auto);
    register(&api, &admin, "psp-hold", &held);
    let d = deposit(&api, &admin, "psp", "100");
    let body = json!({"amount": "100.00", "currency": "EUR"});
    let (_, sent) = control(&auto, &format!("/control/deposits/{}/succeed", d["id"].as_str().unwrap()), body);
    assert_eq!(sent["engine"]["status"], 200, "{sent}");

    // `--payouts succeed`: the saga's payout is accepted, its outcome follows by webhook.
    let w1 = withdraw(&api, &admin, "psp", "40");
    let w = until(&api, &admin, &w1, "succeeded").await;
    let s = steps(&w);
    assert!(s.first().is_some_and(|s| s == "locked") && s.contains(&"succeeded".to_owned()), "{w}");
    assert_eq!(balances(&api, &admin, "p1"), ("60.00".into(), "0.00".into()));
    let (_, events) = send(&auto, "", "GET", "/events", Value::Null);
    let payouts: Vec<&Value> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "payout").collect();
    assert_eq!(
        payouts[0]["body"],
        json!({"id": w1, "player_id": "p1", "amount": "40.00", "currency": "EUR"}),
        "{events}"
    );
    let settled = events.as_array().unwrap().iter().find(|e| e["type"] == "withdrawal.succeeded").unwrap();
    assert_eq!((settled["body"]["data"]["id"].as_str(), settled["engine"]["status"].as_u64()), (Some(&*w1), Some(200)));

    // `--payouts hold`: accepted (the `sent` step), then nothing until a control call fails it.
    let w2 = withdraw(&api, &admin, "psp-hold", "25");
    assert_eq!(balances(&api, &admin, "p1"), ("35.00".into(), "25.00".into()));
    let w = until(&api, &admin, &w2, "sent").await;
    assert_eq!(steps(&w), ["locked", "sent"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, events) = send(&held, "", "GET", "/events", Value::Null);
    assert!(events.as_array().unwrap().iter().all(|e| e["direction"] == "received"), "held: nothing sent: {events}");
    let (status, failed) =
        control(&held, &format!("/control/withdrawals/{w2}/fail"), json!({"reason": "account closed"}));
    assert_eq!(status, 200, "{failed}");
    assert_eq!((failed["type"].as_str(), failed["engine"]["status"].as_u64()), (Some("withdrawal.failed"), Some(200)));
    let w = until(&api, &admin, &w2, "failed").await;
    assert_eq!(steps(&w), ["locked", "sent", "failed"]);
    assert_eq!(balances(&api, &admin, "p1"), ("60.00".into(), "0.00".into()));

    // `--payouts fail`: the payout is accepted, then failed; the money returns to main.
    let (_failing, failing) = simulator(&api, "psp-fail", "fail");
    register(&api, &admin, "psp-fail", &failing);
    let w3 = withdraw(&api, &admin, "psp-fail", "10");
    let w = until(&api, &admin, &w3, "failed").await;
    assert!(steps(&w).first().is_some_and(|s| s == "locked"), "{w}");
    assert_eq!(balances(&api, &admin, "p1"), ("60.00".into(), "0.00".into()));

    // The payout's body is checked: a malformed one is a problem, not an acceptance.
    let (status, problem) = control(&held, "/payouts", json!({"id": "x"}));
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_body")), "{problem}");

    let verified = ledger(&db, &["verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
