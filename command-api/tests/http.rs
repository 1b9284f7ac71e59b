//! The command API end to end: real router, real writer, real Postgres (a fresh database per
//! test), requests sent with `oneshot` (no socket).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use ledger_store::{Writer, WriterConfig};
use serde_json::{Value, json};
use test_support::{TestDatabase, fresh_database};
use tower::ServiceExt;
use uuid::Uuid;

struct App {
    router: Router,
    db: TestDatabase,
    writer: tokio::task::JoinHandle<()>,
    key: String,
    read_key: String,
}

async fn spawn_app_on(db: TestDatabase) -> App {
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let all = ["accounts:write", "transfers:write", "read"].map(String::from);
    let (_, key) = create_key(&pool, "pos", &all).await.unwrap();
    let (_, read_key) = create_key(&pool, "auditor", &["read".to_owned()]).await.unwrap();
    App { router: router(ApiState::new(ledger, pool)), db, writer, key, read_key }
}

async fn spawn_app() -> App {
    spawn_app_on(fresh_database().await).await
}

impl App {
    async fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {path}: {status}");
        }
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send("POST", path, Some(&self.key), Some(&body.to_string())).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send("GET", path, Some(&self.key), None).await
    }

    async fn open(&self, code: &str, kind: &str, no_overdraft: bool) -> Value {
        let (status, body) = self
            .post("/v1/accounts", json!({"code": code, "currency": "EUR", "kind": kind, "no_overdraft": no_overdraft}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn event_count(&self) -> i64 {
        let mut conn = self.db.connect().await;
        // A refusal of a key is audited (an AuditRecorded event); nothing else a refusal writes.
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type <> 'AuditRecorded'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    async fn stop(self) -> TestDatabase {
        drop(self.router);
        self.writer.await.unwrap();
        self.db
    }
}

#[tokio::test]
async fn accounts_open_once_and_read_back_by_id_and_code() {
    let app = spawn_app().await;
    let id = Uuid::new_v4();
    let request = json!({"id": id, "code": "player:42:main", "currency": "EUR", "kind": "liability", "no_overdraft": true, "metadata": {"brand": "x"}});
    let (status, created) = app.post("/v1/accounts", request.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        created["balance"],
        json!({"debits_posted": "0.00", "credits_posted": "0.00", "debits_pending": "0.00", "credits_pending": "0.00", "balance": "0.00", "available": "0.00"})
    );
    assert_eq!(
        (created["code"].as_str(), created["status"].as_str(), created["no_overdraft"].as_bool()),
        (Some("player:42:main"), Some("open"), Some(true))
    );
    let (status, again) = app.post("/v1/accounts", request).await;
    assert_eq!(
        (status, again["position"].clone()),
        (StatusCode::OK, created["position"].clone()),
        "a retry answers 200 with the original"
    );
    let (status, clash) =
        app.post("/v1/accounts", json!({"code": "player:42:main", "currency": "EUR", "kind": "liability"})).await;
    assert_eq!((status, clash["code"].as_str()), (StatusCode::CONFLICT, Some("account_code_exists")));
    assert!(clash["request_id"].is_string() && clash["detail"].is_string() && clash["type"].is_string());

    let (status, by_id) = app.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!((status, by_id["id"].as_str()), (StatusCode::OK, Some(id.to_string().as_str())));
    let (status, by_code) = app.get("/v1/accounts?code=player:42:main").await;
    assert_eq!((status, by_code["id"].clone()), (StatusCode::OK, by_id["id"].clone()));
    let (status, missing) = app.get("/v1/accounts/nobody").await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("account_not_found")));
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn accounts_freeze_with_a_reason_unfreeze_and_close() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    let deposit = || json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "5.00"});
    assert_eq!(app.post("/v1/transfers", deposit()).await.0, StatusCode::CREATED);

    let (status, frozen) = app.post("/v1/accounts/player/freeze", json!({"reason": "chargeback dispute 7731"})).await;
    assert_eq!((status, frozen["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let (status, refused) = app.post("/v1/transfers", deposit()).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("account_frozen")));
    // Freezing again changes nothing and writes nothing.
    let before = app.event_count().await;
    let (status, again) = app.send("POST", "/v1/accounts/player/freeze", Some(&app.key), None).await;
    assert_eq!((status, again["position"].clone()), (StatusCode::OK, frozen["position"].clone()));
    assert_eq!(app.event_count().await, before);
    // The document says the body is optional and may be null: null is no body.
    let (status, again) = app.send("POST", "/v1/accounts/player/freeze", Some(&app.key), Some("null")).await;
    assert_eq!((status, again["position"].clone()), (StatusCode::OK, frozen["position"].clone()));
    let (_, page) = app.send("GET", "/v1/events?after=3&limit=1", Some(&app.read_key), None).await;
    let event = &page["events"][0];
    assert_eq!((event["type"].as_str(), event["schema_version"].as_i64()), (Some("AccountFrozen"), Some(2)));
    assert_eq!(event["payload"]["reason"].as_str(), Some("chargeback dispute 7731"));

    // A reason by the shared rule the document states: at most 500 characters (not bytes), not
    // blank, no control characters.
    for reason in ["x".repeat(501), "a\u{1b}[31m".to_owned(), "\u{a0}\u{3000}".to_owned()] {
        let (status, bad) = app.post("/v1/accounts/player/unfreeze", json!({"reason": reason})).await;
        assert_eq!(
            (status, bad["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_reason")),
            "{reason:?}"
        );
    }
    let (status, open) = app.post("/v1/accounts/player/unfreeze", json!({"reason": "é".repeat(500)})).await;
    assert_eq!((status, open["status"].as_str()), (StatusCode::OK, Some("open")));
    assert_eq!(app.post("/v1/transfers", deposit()).await.0, StatusCode::CREATED);

    let (status, not_zero) = app.post("/v1/accounts/player/close", json!({"reason": "player left"})).await;
    assert_eq!(
        (status, not_zero["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("account_balance_not_zero"))
    );
    let (status, _) = app.post("/v1/accounts/player/delete", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only freeze, unfreeze and close");
    let (status, missing) = app.post("/v1/accounts/nobody/freeze", json!({})).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("account_not_found")));
    let (status, unknown) = app.post("/v1/accounts/player/freeze", json!({"why": "x"})).await;
    assert_eq!((status, unknown["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    let (status, _) = app.send("POST", "/v1/accounts/player/freeze", Some(&app.read_key), Some("{}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn money_moves_holds_are_captured_in_part_and_reversals_compensate() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    let deposit = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "100.00", "metadata": {"psp": "x"}});
    let (status, t) = app.post("/v1/transfers", deposit.clone()).await;
    assert_eq!((status, t["status"].as_str()), (StatusCode::CREATED, Some("posted")), "{t}");
    let (status, replay) = app.post("/v1/transfers", deposit.clone()).await;
    assert_eq!((status, replay["position"].clone()), (StatusCode::OK, t["position"].clone()));
    let mut changed = deposit.clone();
    changed["amount"] = json!("100.01");
    let (status, conflict) = app.post("/v1/transfers", changed).await;
    assert_eq!((status, conflict["code"].as_str()), (StatusCode::CONFLICT, Some("exists_with_different_fields")));

    let hold_id = Uuid::new_v4();
    let (status, hold) = app
        .post("/v1/transfers", json!({"id": hold_id, "debit": "player", "credit": "bank", "amount": "30", "pending": true, "timeout_seconds": 600}))
        .await;
    assert_eq!((status, hold["status"].as_str()), (StatusCode::CREATED, Some("pending")));
    let (_, player) = app.get("/v1/accounts/player").await;
    assert_eq!(
        (player["balance"]["balance"].as_str(), player["balance"]["available"].as_str()),
        (Some("100.00"), Some("70.00"))
    );

    let (status, posted) = app.post(&format!("/v1/transfers/{hold_id}/post"), json!({"amount": "12.50"})).await;
    assert_eq!((status, posted["status"].as_str()), (StatusCode::OK, Some("posted")), "{posted}");
    assert!(posted["position"].as_i64() > hold["position"].as_i64());
    let (status, void) = app.send("POST", &format!("/v1/transfers/{hold_id}/void"), Some(&app.key), None).await;
    assert_eq!((status, void["code"].as_str()), (StatusCode::CONFLICT, Some("pending_transfer_already_posted")));
    let (_, player) = app.get("/v1/accounts/player").await;
    assert_eq!(
        (player["balance"]["balance"].as_str(), player["balance"]["available"].as_str()),
        (Some("87.50"), Some("87.50"))
    );

    let hold2 = Uuid::new_v4();
    app.post(
        "/v1/transfers",
        json!({"id": hold2, "debit": "player", "credit": "bank", "amount": "5", "pending": true}),
    )
    .await;
    let (status, voided) = app.send("POST", &format!("/v1/transfers/{hold2}/void"), Some(&app.key), None).await;
    assert_eq!((status, voided["status"].as_str()), (StatusCode::OK, Some("voided")));

    let reversal = Uuid::new_v4();
    let deposit_id = deposit["id"].as_str().unwrap();
    let (status, reversed) = app.post(&format!("/v1/transfers/{deposit_id}/reverse"), json!({"id": reversal})).await;
    // The player spent 12.50 of the 100 deposited: reversing the deposit would overdraw.
    assert_eq!((status, reversed["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_funds")));
    let (status, reversed) = app.post(&format!("/v1/transfers/{hold_id}/reverse"), json!({"id": reversal})).await;
    assert_eq!(
        (status, reversed["reverses"].as_str()),
        (StatusCode::CREATED, Some(hold_id.to_string().as_str())),
        "{reversed}"
    );
    let (status, original) = app.get(&format!("/v1/transfers/{hold_id}")).await;
    assert_eq!((status, original["reversed_by"].as_str()), (StatusCode::OK, Some(reversal.to_string().as_str())));
    assert_eq!(original["posted"][0]["amount"].as_str(), Some("12.50"));
    let (_, player) = app.get("/v1/accounts/player").await;
    assert_eq!(player["balance"]["balance"].as_str(), Some("100.00"));
    let (status, missing) = app.get(&format!("/v1/transfers/{}", Uuid::new_v4())).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("transfer_not_found")));
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn batches_are_linked_or_independent() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    app.open("fees", "income", false).await;
    let order = |amount: &str| {
        json!({"id": Uuid::new_v4(), "postings": [
            {"account": "bank", "side": "debit", "amount": amount},
            {"account": "player", "side": "credit", "amount": "9.90"},
            {"account": "fees", "side": "credit", "amount": "0.10"}]})
    };
    let before = app.event_count().await;
    let (status, linked) =
        app.post("/v1/transfers/batch", json!({"linked": true, "transfers": [order("10.00"), order("10.01")]})).await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<_> = linked["results"].as_array().unwrap().iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(codes, [json!("linked_event_failed"), json!("unbalanced")]);
    assert_eq!(app.event_count().await, before, "a failed linked batch writes nothing");

    let (_, independent) =
        app.post("/v1/transfers/batch", json!({"transfers": [order("10.00"), order("10.01"), order("10.00")]})).await;
    let statuses: Vec<_> =
        independent["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 201]);
    let (_, fees) = app.get("/v1/accounts/fees").await;
    assert_eq!(fees["balance"]["balance"].as_str(), Some("0.20"));
    let (status, empty) = app.post("/v1/transfers/batch", json!({"transfers": []})).await;
    assert_eq!((status, empty["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("batch_size")));
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn the_log_pages_in_order_for_auditors() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    for _ in 0..5 {
        app.post("/v1/transfers", json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "1"}))
            .await;
    }
    let (status, page) = app.send("GET", "/v1/events?after=2&limit=3", Some(&app.read_key), None).await;
    assert_eq!(status, StatusCode::OK);
    let positions: Vec<_> =
        page["events"].as_array().unwrap().iter().map(|e| e["position"].as_i64().unwrap()).collect();
    assert_eq!((positions, page["next_after"].as_i64()), (vec![3, 4, 5], Some(5)));
    assert_eq!(page["events"][0]["type"].as_str(), Some("TransferPosted"));
    assert_eq!(page["events"][0]["metadata"]["channel"].as_str(), Some("pos"), "the channel is in every event");
    assert!(page["events"][0]["metadata"]["key_id"].is_string());
    let (status, bad) = app.get("/v1/events?limit=5000").await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn bad_input_gets_a_typed_problem_and_writes_nothing() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    let (status, _) = app.post("/v1/accounts", json!({"code": "usd", "currency": "USD", "kind": "asset"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let transfer = |patch: Value| {
        let mut t = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "10.00"});
        for (k, v) in patch.as_object().unwrap() {
            t[k] = v.clone();
        }
        t.to_string()
    };
    let huge = format!(
        "{{\"id\": \"{}\", \"debit\": \"bank\", \"credit\": \"player\", \"amount\": \"1\", \"metadata\": {{\"x\": \"{}\"}}}}",
        Uuid::new_v4(),
        "a".repeat(70_000)
    );
    let key = app.key.clone();
    let k = Some(key.as_str());
    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        ("malformed json", k, "{\"id\": ".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("an array", k, "[]".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown field", k, transfer(json!({"colour": "red"})), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            "missing id",
            k,
            json!({"debit": "bank", "credit": "player", "amount": "1"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        ("both forms", k, transfer(json!({"postings": []})), StatusCode::BAD_REQUEST, "invalid_body"),
        ("float amount", k, transfer(json!({"amount": 10.5})), StatusCode::BAD_REQUEST, "invalid_body"),
        ("not a number", k, transfer(json!({"amount": "ten"})), StatusCode::BAD_REQUEST, "invalid_amount"),
        ("exponent", k, transfer(json!({"amount": "1e3"})), StatusCode::BAD_REQUEST, "invalid_amount"),
        ("zero", k, transfer(json!({"amount": "0"})), StatusCode::UNPROCESSABLE_ENTITY, "amount_must_be_positive"),
        (
            "negative",
            k,
            transfer(json!({"amount": "-5.00"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_must_be_positive",
        ),
        ("too precise", k, transfer(json!({"amount": "10.001"})), StatusCode::UNPROCESSABLE_ENTITY, "amount_scale"),
        (
            "huge",
            k,
            transfer(json!({"amount": "99999999999999999999999999999999"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "overflow",
        ),
        (
            "beyond the posting cap",
            k,
            transfer(json!({"amount": "1000000000000000000000001"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "overflow",
        ),
        (
            "unknown account",
            k,
            transfer(json!({"credit": "nobody"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "account_not_found",
        ),
        (
            "currency mismatch",
            k,
            transfer(json!({"credit": "usd"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
        ),
        (
            "same account",
            k,
            transfer(json!({"credit": "bank"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "same_account_on_both_sides",
        ),
        (
            "overdraft",
            k,
            transfer(json!({"debit": "player", "credit": "bank"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        ),
        (
            "unbalanced legs",
            k,
            transfer(json!({"debit": null, "credit": null, "amount": null, "postings": [
            {"account": "bank", "side": "debit", "amount": "10"}, {"account": "player", "side": "credit", "amount": "9"}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unbalanced",
        ),
        (
            "bad side",
            k,
            transfer(json!({"debit": null, "credit": null, "amount": null, "postings": [
            {"account": "bank", "side": "left", "amount": "10"}, {"account": "player", "side": "credit", "amount": "10"}]})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "nul in metadata",
            k,
            transfer(json!({"metadata": {"note": "a\u{0000}b"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_metadata",
        ),
        ("oversized body", k, huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("missing key", None, transfer(json!({})), StatusCode::UNAUTHORIZED, "unauthorized"),
        ("invalid key", Some("ldg_nope"), transfer(json!({})), StatusCode::UNAUTHORIZED, "unauthorized"),
        ("missing scope", Some(app.read_key.as_str()), transfer(json!({})), StatusCode::FORBIDDEN, "forbidden"),
    ];
    let before = app.event_count().await;
    for (name, key, body, status, code) in cases {
        let (got, problem) = app.send("POST", "/v1/transfers", key, Some(&body)).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{name}: {problem}");
        assert_eq!(problem["status"].as_u64(), Some(u64::from(status.as_u16())), "{name}");
    }
    let account_cases = [
        (
            json!({"code": "x", "currency": "XXX", "kind": "asset"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            json!({"code": "x", "currency": "eur", "kind": "asset"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
        ),
        (
            json!({"code": "has space", "currency": "EUR", "kind": "asset"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_account_code",
        ),
        (json!({"code": "x", "currency": "EUR", "kind": "cash"}), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            json!({"code": "x", "currency": "EUR", "kind": "asset", "metadata": [1]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_metadata",
        ),
    ];
    for (body, status, code) in account_cases {
        let (got, problem) = app.post("/v1/accounts", body.clone()).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{body}: {problem}");
    }
    let (status, problem) = app.send("POST", "/v1/transfers", Some(&app.key), None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "no content type");
    let (status, problem) = app.send("DELETE", "/v1/transfers", Some(&app.key), None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    assert_eq!(app.event_count().await, before, "no rejected request wrote an event");
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn retries_are_idempotent_across_a_restart() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", true).await;
    let transfer = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "7.00"});
    let (status, first) = app.post("/v1/transfers", transfer.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let db = app.stop().await;
    let app = spawn_app_on(db).await;
    let (status, again) = app.post("/v1/transfers", transfer.clone()).await;
    assert_eq!(
        (status, again["position"].clone(), again["status"].clone()),
        (StatusCode::OK, first["position"].clone(), json!("posted"))
    );
    let (_, player) = app.get("/v1/accounts/player").await;
    assert_eq!(player["balance"]["balance"].as_str(), Some("7.00"), "applied exactly once");
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    let (status, _) = app.send("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ready) = app.send("GET", "/readyz", None, None).await;
    assert_eq!((status, ready), (StatusCode::OK, json!({"database": true, "writer": true})));
    let (status, metrics) = app.send("GET", "/metrics", None, None).await;
    let text = metrics.as_str().unwrap().to_owned();
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("ledger_http_requests_total{route=\"/v1/accounts\",status=\"201\"} 1"), "{text}");
    assert!(
        text.contains("ledger_writer_commit_seconds_count 1") && text.contains("ledger_writer_queue_depth"),
        "{text}"
    );
    let (status, doc) = app.send("GET", "/v1/openapi.json", None, None).await;
    assert_eq!((status, doc["openapi"].as_str()), (StatusCode::OK, Some("3.1.0")));
    app.stop().await.drop_database().await;
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap_or_default();
    assert!(
        committed == command_api::openapi::json(),
        "schemas/openapi.json is out of date: regenerate it with `cargo run -p ledger -- openapi > schemas/openapi.json`"
    );
}

/// What the OpenAPI document states about every operation, checked on the document itself:
/// every error is a problem document, and every operation lists the statuses its shape can
/// answer (schemathesis, run by scripts/test against `ledger up`, checks the server keeps to it).
#[test]
fn every_operation_lists_its_errors_as_problem_documents() {
    let doc: Value = serde_json::from_str(&command_api::openapi::json()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            let listed: Vec<&str> = responses.keys().map(String::as_str).collect();
            // What providers send is signed with their secret, not a key: 401 is its refusal.
            let signed = path.starts_with("/v1/wallet/webhooks/") || path.starts_with("/v1/wallet/games/");
            let refusals: &[&str] = if signed { &["401", "500"] } else { &["401", "403", "429", "500"] };
            for status in refusals {
                assert!(listed.contains(status), "{method} {path} lists {status}: {listed:?}");
            }
            // Every write with a body lists a bad body and a large one; those that record events
            // the writer too (the platform's keys, roles and webhook endpoints record none).
            let platform = path.starts_with("/v1/admin/") || path.starts_with("/v1/webhooks/");
            let writer = if platform { &[][..] } else { &["503"][..] };
            if (method == "post" || method == "put") && op.get("requestBody").is_some() {
                for status in ["400", "413"].iter().chain(writer) {
                    assert!(listed.contains(status), "{method} {path} lists {status}: {listed:?}");
                }
            }
            if platform {
                assert!(op["parameters"].as_array().is_none_or(|p| p.iter().all(|p| p["in"] != "header")), "{path}");
            }
            if path.contains('{') {
                assert!(listed.contains(&"404"), "{method} {path} lists 404");
            }
            for (status, response) in responses {
                assert!(response["headers"]["x-request-id"].is_object(), "{method} {path} {status}");
                // A revocation answers 204 with no body.
                if status == "204" {
                    assert!(response.get("content").is_none(), "{method} {path} {status}");
                    continue;
                }
                let content: Vec<&str> = response["content"].as_object().unwrap().keys().map(String::as_str).collect();
                let expected = if status.starts_with('2') { "application/json" } else { "application/problem+json" };
                // The audit trail is also served as CSV, the form auditors load.
                let csv_too = ["/v1/certificates/audit", "/v1/admin/audit", "/v1/recon/runs/{id}/items"];
                if csv_too.contains(&path.as_str()) && status == "200" {
                    assert_eq!(content, [expected, "text/csv"], "{method} {path} {status}");
                    continue;
                }
                // A player's statement is also a spreadsheet, CSV or XLSX.
                if path == "/v1/wallet/players/{id}/statement" && status == "200" {
                    let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
                    assert_eq!(content, [expected, xlsx, "text/csv"], "{method} {path} {status}");
                    continue;
                }
                assert_eq!(content, [expected], "{method} {path} {status}");
            }
        }
    }
    assert_eq!(
        operations, 88,
        "the ledger's 11, the certificates' 9, the payouts' 3, the orders' 17, the wallet's 13, the \
         reconciliation's 15, the admin's 5, the audit log's 1, the config's 4 and the webhooks' 10"
    );
    let batch = &doc["components"]["schemas"]["BatchRequest"]["properties"]["transfers"];
    assert_eq!((batch["minItems"].as_u64(), batch["maxItems"].as_u64()), (Some(1), Some(8190)));
    let transfer = &doc["components"]["schemas"]["TransferRequest"]["oneOf"];
    assert_eq!(transfer.as_array().map(Vec::len), Some(2));
}

/// Every string a request carries (a body's property at any depth, a path or query parameter)
/// says what the server takes: a pattern, an enum or a format. The upload's rows alone hold
/// only their types, since a row out of its rules rejects itself, not the upload.
#[test]
fn every_text_a_request_takes_is_constrained() {
    let doc: Value = serde_json::from_str(&command_api::openapi::json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    fn walk<'a>(
        schemas: &'a Value,
        schema: &'a Value,
        at: String,
        seen: &mut Vec<String>,
        out: &mut Vec<(String, &'a Value)>,
    ) {
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            if name == "UploadRow" || seen.iter().any(|s| s == name) {
                return;
            }
            seen.push(name.to_owned());
            return walk(schemas, &schemas[name], name.to_owned(), seen, out);
        }
        let is_string =
            schema["type"] == "string" || schema["type"].as_array().is_some_and(|t| t.contains(&json!("string")));
        if is_string {
            out.push((at.clone(), schema));
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for item in schema[key].as_array().into_iter().flatten() {
                walk(schemas, item, at.clone(), seen, out);
            }
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            walk(schemas, property, format!("{at}.{name}"), seen, out);
        }
        if schema["items"].is_object() {
            walk(schemas, &schema["items"], format!("{at}[]"), seen, out);
        }
    }
    let mut texts = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for content in op["requestBody"]["content"].as_object().into_iter().flatten().map(|(_, c)| c) {
                walk(schemas, &content["schema"], format!("{method} {path}"), &mut Vec::new(), &mut texts);
            }
            for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] != "header") {
                walk(schemas, &p["schema"], format!("{method} {path} {}", p["name"]), &mut Vec::new(), &mut texts);
            }
        }
    }
    assert!(texts.len() > 40, "{}", texts.len());
    for (at, schema) in &texts {
        assert!(
            schema["pattern"].is_string() || schema["enum"].is_array() || schema["format"].is_string(),
            "{at}: {schema}"
        );
    }
    // The patterns are the core's own.
    let property = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    assert_eq!(property("ActivateRequest", "order_id")["pattern"], ledger_core::text::NO_CONTROLS_PATTERN);
    assert_eq!(property("ActivateRequest", "order_id")["maxLength"], ledger_core::text::TEXT_MAX_CHARS);
    assert_eq!(property("CancelRequest", "reason")["pattern"], ledger_core::text::REASON_PATTERN);
    assert_eq!(property("AccountStatusRequest", "reason")["maxLength"], ledger_core::text::REASON_MAX_CHARS);
    assert_eq!(property("SimpleTransfer", "debit")["pattern"], ledger_core::ledger::account::ACCOUNT_CODE_PATTERN);
}

/// Stateful clients reach every operation that acts on something from where it is made.
#[test]
fn every_operation_on_something_is_linked_from_where_it_is_made() {
    let doc: Value = serde_json::from_str(&command_api::openapi::json()).unwrap();
    let mut targets = std::collections::BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"].as_object().into_iter().flatten().map(|(_, l)| l) {
                    targets.insert(link["operationId"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            // The gates and the audit name no one thing; a setting's key, a requisite's id and
            // the provider a provider's own call names are the operator's to name, not
            // something an answer makes.
            let named =
                path.starts_with("/v1/config/") || path.contains("{requisite_id}") || path.contains("{provider}");
            if path.contains('{') && !path.contains("{gate}") && !named {
                assert!(targets.contains(id), "{method} {path} ({id}) is no link's target");
            }
        }
    }
}

#[tokio::test]
async fn the_server_keeps_to_the_documented_shapes() {
    let app = spawn_app().await;
    app.open("bank", "asset", false).await;
    app.open("player", "liability", false).await;
    let transfer = |extra: Value| {
        let mut t = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "player", "amount": "1.00"});
        t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        t
    };
    // JSON Schema integers may be written with a zero fraction.
    let (status, body) = app.post("/v1/transfers", transfer(json!({"pending": true, "timeout_seconds": 78.0}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post("/v1/transfers", transfer(json!({"pending": true, "timeout_seconds": 7.5}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "{body}");

    // A batch item the document forbids refuses the whole batch, with the code the same transfer
    // gets alone, and writes nothing.
    let before = app.event_count().await;
    let cases = [
        (json!({"timeout_seconds": 2_592_001, "pending": true}), "timeout_too_long"),
        (json!({"credit": "has space"}), "account_not_found"),
        (json!({"amount": "-1.00"}), "amount_must_be_positive"),
        (json!({"external_ref": ""}), "invalid_external_ref"),
        (json!({"metadata": [1]}), "invalid_metadata"),
    ];
    for (extra, code) in cases {
        let (status, alone) = app.post("/v1/transfers", transfer(extra.clone())).await;
        assert_eq!((status, alone["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{extra}");
        let batch = json!({"transfers": [transfer(json!({})), transfer(extra.clone())]});
        let (status, refused) = app.post("/v1/transfers/batch", batch).await;
        assert_eq!((status, refused["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{extra}");
        assert!(refused["detail"].as_str().unwrap().starts_with("transfers[1]: "), "{refused}");
    }
    let legs = |n: usize| {
        let mut postings = vec![json!({"account": "bank", "side": "debit", "amount": "1"})];
        postings.extend((1..n).map(|_| json!({"account": "player", "side": "credit", "amount": "1"})));
        json!({"transfers": [{"id": Uuid::new_v4(), "postings": postings}]})
    };
    let (status, one) = app.post("/v1/transfers/batch", legs(1)).await;
    assert_eq!((status, one["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_few_postings")));
    let (status, many) = app.post("/v1/transfers/batch", legs(129)).await;
    assert_eq!((status, many["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many_postings")));
    assert_eq!(app.event_count().await, before, "no refused batch wrote an event");

    // A method a path does not take: 405 with the methods it does take.
    let request = Request::builder().method("DELETE").uri("/v1/accounts").body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");

    // The optional headers a write reads: what the document's pattern refuses, the server refuses.
    for (name, value, ok) in [
        ("x-initiator", "ops:anna", true),
        ("x-initiator", "two words", true),
        ("x-initiator", "tab\there", false),
        ("x-correlation-id", "not-a-uuid", false),
    ] {
        let request = Request::post("/v1/transfers")
            .header("authorization", format!("Bearer {}", app.key))
            .header("content-type", "application/json")
            .header(name, value)
            .body(Body::from(transfer(json!({})).to_string()))
            .unwrap();
        let status = app.router.clone().oneshot(request).await.unwrap().status();
        let expected = if ok { StatusCode::CREATED } else { StatusCode::BAD_REQUEST };
        assert_eq!(status, expected, "{name}: {value:?}");
    }
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn keys_and_roles_are_managed_over_http_with_keys_write() {
    let app = spawn_app().await;
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let (_, admin) = create_key(&pool, "ops", &["keys:write".to_owned()]).await.unwrap();
    let send = |method: &'static str, path: String, key: String, body: Option<Value>| {
        let app = &app;
        async move { app.send(method, &path, Some(&key), body.map(|b| b.to_string()).as_deref()).await }
    };
    // Without keys:write: 403 naming the permission.
    let (status, body) = send("GET", "/v1/admin/keys".into(), app.key.clone(), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("keys:write"), "{body}");
    // A role, then a key holding it and a permission of its own.
    let (status, role) =
        send("PUT", "/v1/admin/roles/auditor".into(), admin.clone(), Some(json!({"permissions": ["accounts:read"]})))
            .await;
    assert_eq!((status, role["name"].as_str()), (StatusCode::CREATED, Some("auditor")), "{role}");
    let (status, body) =
        send("PUT", "/v1/admin/roles/auditor".into(), admin.clone(), Some(json!({"permissions": ["orders:fly"]})))
            .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_permission")));
    let (status, created) = send(
        "POST",
        "/v1/admin/keys".into(),
        admin.clone(),
        Some(json!({"channel": "desk", "roles": ["auditor"], "permissions": ["transfers:read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (id, key) = (created["id"].as_str().unwrap().to_owned(), created["key"].as_str().unwrap().to_owned());
    let account = app.open("cash", "asset", false).await;
    let account_path = format!("/v1/accounts/{}", account["id"].as_str().unwrap());
    assert_eq!(send("GET", account_path.clone(), key.clone(), None).await.0, StatusCode::OK, "the role's permission");
    let open = json!({"code": "other", "currency": "EUR", "kind": "asset"});
    let (status, body) = send("POST", "/v1/accounts".into(), key.clone(), Some(open)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["detail"].as_str(), Some("this key lacks the permission accounts:write"));
    for (body, code) in [
        (json!({"channel": "desk", "permissions": ["accounts:fly"]}), "unknown_permission"),
        (json!({"channel": "desk", "permissions": ["no such"]}), "invalid_permission"),
        (json!({"channel": "desk", "roles": ["nobody"]}), "unknown_role"),
        (json!({"channel": "no such"}), "invalid_channel"),
    ] {
        let (status, answer) = send("POST", "/v1/admin/keys".into(), admin.clone(), Some(body.clone())).await;
        assert_eq!((status, answer["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{body}");
    }
    let (status, body) =
        send("POST", "/v1/admin/keys".into(), admin.clone(), Some(json!({"channel": "x", "k": 1}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    // Listed without the key or its hash.
    let (status, list) = send("GET", "/v1/admin/keys".into(), admin.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = list["keys"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert_eq!(listed["roles"], json!(["auditor"]));
    assert_eq!(listed["permissions"], json!(["transfers:read"]));
    assert!(listed["revoked"].is_null() && listed["created"].is_string(), "{listed}");
    assert!(!list.to_string().contains(&key), "the key is never listed");
    // The role changes: its keys have the new permissions at once.
    let (status, _) =
        send("PUT", "/v1/admin/roles/auditor".into(), admin.clone(), Some(json!({"permissions": ["events:read"]})))
            .await;
    assert_eq!(status, StatusCode::OK);
    let mut attempts = 0;
    while send("GET", account_path.clone(), key.clone(), None).await.0 != StatusCode::FORBIDDEN {
        attempts += 1;
        assert!(attempts < 50, "the role change is seen within a second");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Revoked: refused at once; revoking again is 404.
    let (status, _) = send("DELETE", format!("/v1/admin/keys/{id}"), admin.clone(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut attempts = 0;
    while send("GET", "/v1/events".into(), key.clone(), None).await.0 != StatusCode::UNAUTHORIZED {
        attempts += 1;
        assert!(attempts < 50, "the revocation is seen within a second");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = send("DELETE", format!("/v1/admin/keys/{id}"), admin.clone(), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("key_not_found")));
    let (status, roles) = send("GET", "/v1/admin/roles".into(), admin.clone(), None).await;
    let auditor = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "auditor").unwrap();
    assert_eq!((status, &auditor["permissions"]), (StatusCode::OK, &json!(["events:read"])));
    pool.close().await;
    app.stop().await.drop_database().await;
}

#[tokio::test]
async fn a_key_holds_a_role_bound_to_an_owner_and_the_roles_templates_are_that_owners() {
    let app = spawn_app().await;
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let (_, admin) = create_key(&pool, "ops", &["keys:write".to_owned()]).await.unwrap();
    let send = |method: &'static str, path: &str, key: &str, body: Option<Value>| {
        let (app, path, key) = (&app, path.to_owned(), key.to_owned());
        async move { app.send(method, &path, Some(&key), body.map(|b| b.to_string()).as_deref()).await }
    };
    // The example roles are there from the migrations, their templates shown as stored.
    let (status, roles) = send("GET", "/v1/admin/roles", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = roles["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "merchant", "support", "teamlead", "trader"]);
    assert_eq!(
        roles["roles"][1]["permissions"],
        json!(["orders:create:{scope}", "orders:cancel:{scope}", "orders:dispute:{scope}", "orders:read:{scope}"])
    );
    // A role may have a template, a key's own permission may not.
    let (status, role) =
        send("PUT", "/v1/admin/roles/cashier", &admin, Some(json!({"permissions": ["orders:read:{scope}"]}))).await;
    assert_eq!((status, &role["permissions"]), (StatusCode::CREATED, &json!(["orders:read:{scope}"])), "{role}");
    let (status, body) =
        send("PUT", "/v1/admin/roles/cashier", &admin, Some(json!({"permissions": ["orders:read:x{scope}"]}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_permission")));
    let own = json!({"channel": "shop", "permissions": ["orders:create:{scope}"]});
    let (status, body) = send("POST", "/v1/admin/keys", &admin, Some(own)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_permission")));
    assert!(body["detail"].as_str().unwrap().contains("role:scope"), "{body}");
    // Bindings the ledger refuses, with nothing written.
    let keys = || async { send("GET", "/v1/admin/keys", &admin, None).await.1["keys"].as_array().unwrap().len() };
    let before = keys().await;
    for (roles, code) in [
        (json!(["merchant:*"]), "invalid_role_scope"),
        (json!(["support", "merchant:a b"]), "invalid_role_scope"),
        (json!(["merchant:"]), "invalid_role_scope"),
        (json!(["nobody:store-17"]), "unknown_role"),
        (json!(["a\u{0}b"]), "unknown_role"),
        (json!(["Support"]), "unknown_role"),
        (json!(["\u{0}:store-17"]), "unknown_role"),
    ] {
        let body = json!({"channel": "shop", "roles": roles});
        let (status, answer) = send("POST", "/v1/admin/keys", &admin, Some(body)).await;
        assert_eq!((status, answer["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{roles}");
    }
    assert_eq!(keys().await, before, "no key written");

    // merchant:store-17 creates store-17's orders and no other store's; plain merchant none.
    let key = |roles: Value| {
        let send = &send;
        let admin = &admin;
        async move {
            let (status, created) =
                send("POST", "/v1/admin/keys", admin, Some(json!({"channel": "shop", "roles": roles}))).await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            created["key"].as_str().unwrap().to_owned()
        }
    };
    let bound = key(json!(["merchant:store-17"])).await;
    let plain = key(json!(["merchant"])).await;
    let (_, list) = send("GET", "/v1/admin/keys", &admin, None).await;
    let listed: Vec<&Value> = list["keys"].as_array().unwrap().iter().map(|k| &k["roles"]).collect();
    assert!(listed.contains(&&json!(["merchant:store-17"])) && listed.contains(&&json!(["merchant"])), "{list}");
    let order = |store: &str| {
        json!({"id": Uuid::new_v4(), "store_id": store, "type": "pay_in", "external_order_id": "A-1",
            "amount": "1000.00", "currency": "RUB"})
    };
    // Past the permission, the order meets a store that does not exist.
    let (status, body) = send("POST", "/v1/orders", &bound, Some(order("store-17"))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("store_not_found")), "{body}");
    for (key, store) in [(&bound, "store-18"), (&plain, "store-17")] {
        let (status, body) = send("POST", "/v1/orders", key, Some(order(store))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["detail"], format!("this key lacks the permission orders:create:{store}"));
    }
    // The role changes: its bound keys lose what it no longer grants at once.
    let (status, _) =
        send("PUT", "/v1/admin/roles/merchant", &admin, Some(json!({"permissions": ["orders:read:{scope}"]}))).await;
    assert_eq!(status, StatusCode::OK);
    let mut attempts = 0;
    while send("POST", "/v1/orders", &bound, Some(order("store-17"))).await.0 != StatusCode::FORBIDDEN {
        attempts += 1;
        assert!(attempts < 50, "the role change is seen within a second");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pool.close().await;
    app.stop().await.drop_database().await;
}
