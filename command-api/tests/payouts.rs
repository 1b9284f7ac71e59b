//! Payouts over HTTP: intake, the gates run through their endpoint (as `ledger payouts
//! req-gate` and `oebs-gate` do when run apart), and a request as it stands. Real router, real
//! writer, real Postgres.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use ledger_store::{Writer, WriterConfig};
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

struct App {
    router: Router,
    keys: std::collections::HashMap<&'static str, String>,
}

impl App {
    async fn send(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[channel]));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn post(&self, channel: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(channel, "POST", path, Some(body)).await
    }

    /// A client's account of a type, credited from the bank.
    async fn account(&self, code: &str, client: &str, account_type: &str, amount: &str) -> String {
        let body = json!({"code": code, "currency": "EUR", "kind": "liability", "no_overdraft": true,
            "metadata": {"client_id": client, "account_type": account_type}});
        let (status, account) = self.post("ledger", "/v1/accounts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        if amount != "0.00" {
            let transfer = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": code, "amount": amount});
            let (status, body) = self.post("ledger", "/v1/transfers", transfer).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        account["id"].as_str().unwrap().to_owned()
    }

    async fn balance(&self, code: &str) -> String {
        let (status, body) = self.send("ledger", "GET", &format!("/v1/accounts?code={code}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["balance"]["balance"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_request_becomes_one_payout_per_positive_payout_account_and_is_sent() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (channel, scopes) in [
        ("ledger", &["accounts:write", "transfers:write", "read"][..]),
        ("client", &["payouts:request"][..]),
        ("gate", &["payouts:gate"][..]),
        ("c1-office", &["payouts:request:c1"][..]),
    ] {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        keys.insert(channel, create_key(&pool, channel, &scopes).await.unwrap().1);
    }
    let app = App { router: router(ApiState::new(ledger, pool)), keys };
    let (status, _) =
        app.post("ledger", "/v1/accounts", json!({"code": "bank", "currency": "EUR", "kind": "asset"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let main = app.account("c1:payout:main", "c1", "payout", "120.00").await;
    app.account("c1:payout:empty", "c1", "payout", "0.00").await;
    app.account("c1:wallet", "c1", "wallet", "50.00").await;

    // Intake: 202, nothing else; a retry answers the same; another client under the id is refused.
    let id = Uuid::new_v4();
    let (status, accepted) = app.post("client", "/v1/payouts/requests", json!({"id": id, "client_id": "c1"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!((accepted["id"].as_str(), accepted["status"].as_str()), (Some(id.to_string().as_str()), Some("new")));
    let (status, again) = app.post("client", "/v1/payouts/requests", json!({"id": id, "client_id": "c1"})).await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &accepted));
    let (status, other) = app.post("client", "/v1/payouts/requests", json!({"id": id, "client_id": "c2"})).await;
    assert_eq!((status, other["code"].as_str()), (StatusCode::CONFLICT, Some("exists_with_different_fields")));
    let (status, bad) =
        app.post("client", "/v1/payouts/requests", json!({"id": Uuid::new_v4(), "client_id": ""})).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_client_id")));
    // Each channel to its own: a client cannot run a gate, a gate cannot take requests.
    let (status, _) = app.post("client", "/v1/payouts/gates/plan", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post("gate", "/v1/payouts/requests", json!({"id": Uuid::new_v4(), "client_id": "c1"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A key scoped to one client submits that client's requests only, and the 403 names the
    // permission it lacks.
    let (status, body) = app.post("c1-office", "/v1/payouts/requests", json!({"id": id, "client_id": "c1"})).await;
    assert_eq!((status, &body), (StatusCode::ACCEPTED, &accepted));
    let (status, body) =
        app.post("c1-office", "/v1/payouts/requests", json!({"id": Uuid::new_v4(), "client_id": "c2"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    assert_eq!(body["detail"].as_str(), Some("this key lacks the permission payouts:request:c2"));
    let path = format!("/v1/payouts/requests/{id}");
    let (status, view) = app.send("ledger", "GET", &path, None).await;
    assert_eq!(
        (status, view["status"].as_str(), view["payouts"].as_array().map(Vec::len)),
        (StatusCode::OK, Some("new"), Some(0))
    );
    assert_eq!(app.balance("c1:payout:main").await, "120.00", "intake moves nothing");

    // The request gate: one payout, of the account's whole balance.
    // A JSON integer may be written 10 or 10.0.
    let (status, run) = app.post("gate", "/v1/payouts/gates/plan", json!({"limit": 10.0})).await;
    assert_eq!((status, run["changed"].as_bool()), (StatusCode::OK, Some(true)), "{run}");
    let (_, view) = app.send("ledger", "GET", &path, None).await;
    assert_eq!(view["status"], "done");
    let payouts = view["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "{view}");
    assert_eq!((payouts[0]["account"].as_str(), payouts[0]["amount"].as_str()), (Some(main.as_str()), Some("120.00")));
    assert_eq!(payouts[0]["status"], "new");
    let (_, idle) = app.post("gate", "/v1/payouts/gates/plan", json!({})).await;
    assert_eq!(idle["changed"], false);

    // The ERP gate: the amount moves to payout_sent.
    let (status, run) = app.post("gate", "/v1/payouts/gates/send", json!({})).await;
    assert_eq!((status, run["changed"].as_bool()), (StatusCode::OK, Some(true)));
    let (_, view) = app.send("ledger", "GET", &path, None).await;
    assert_eq!(view["payouts"][0]["status"], "sent");
    assert_eq!(app.balance("c1:payout:main").await, "0.00");
    assert_eq!(app.balance("payout_sent:c1:EUR").await, "120.00");
    assert_eq!(app.balance("c1:wallet").await, "50.00", "other account types are not paid out");

    // Bad gate runs and unknown requests.
    let (status, bad) = app.post("gate", "/v1/payouts/gates/send", json!({"limit": 0})).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_limit")));
    let (status, bad) = app.post("gate", "/v1/payouts/gates/send", json!({"limit": 1.5})).await;
    assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    // A body is an object: an array is refused, not read as the fields in order.
    for body in [json!([]), json!([5])] {
        let (status, bad) = app.post("gate", "/v1/payouts/gates/plan", body).await;
        assert_eq!((status, bad["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    }
    let (status, _) = app.post("gate", "/v1/payouts/gates/pay", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for missing in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = app.send("ledger", "GET", &format!("/v1/payouts/requests/{missing}"), None).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("payout_request_not_found")));
    }
    drop(app);
    writer.await.unwrap();
    db.drop_database().await;
}

/// A payout request under a UUID another kind of entity's row already holds (here a
/// certificate's, UUIDv5 of its code) is refused `409 id_taken`, and the certificate keeps its
/// row; the same request under a fresh id is taken.
#[tokio::test]
async fn a_request_under_another_kinds_row_id_is_refused_with_409_id_taken() {
    use ledger_core::certificates::{Command, command::Issue};
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let issue = Command::Issue(Box::new(Issue {
        code: "GC-1".into(),
        nominal: "100.00".parse().unwrap(),
        currency: ledger_core::CurrencyCode::parse("EUR").unwrap(),
        expires_at: None,
        campaign: None,
        phone: None,
    }));
    ledger.submit(issue, ledger_store::EventMeta::default()).await.unwrap().unwrap();
    let scopes = vec!["payouts:request".to_owned(), "payouts:read".to_owned()];
    let keys = std::collections::HashMap::from([("client", create_key(&pool, "client", &scopes).await.unwrap().1)]);
    let app = App { router: router(ApiState::new(ledger.clone(), pool.clone())), keys };

    let taken = ledger_core::CertificateId::of("GC-1").0;
    let (status, body) = app.post("client", "/v1/payouts/requests", json!({"id": taken, "client_id": "c1"})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("id_taken")), "{body}");
    let (status, _) = app.send("client", "GET", &format!("/v1/payouts/requests/{taken}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let fresh = Uuid::new_v4();
    let (status, body) = app.post("client", "/v1/payouts/requests", json!({"id": fresh, "client_id": "c1"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let kinds: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, kind FROM entities ORDER BY first_position").fetch_all(&pool).await.unwrap();
    assert_eq!(kinds, [(taken, "certificate".to_owned()), (fresh, "payout_request".to_owned())]);
    drop((app, ledger));
    writer.await.unwrap();
    db.drop_database().await;
}
