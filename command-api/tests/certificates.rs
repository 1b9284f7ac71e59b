//! Gift certificates over HTTP: real router, real writer, real Postgres, each channel with its
//! own key and scope.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_core::certificates::command::SealedCvc;
use ledger_store::keys::create_key;
use ledger_store::{Writer, WriterConfig};
use secrets::LocalKeys;
use serde_json::{Value, json};
use test_support::{TestDatabase, fresh_database};
use tower::ServiceExt;

const KEY: &str = "8f2a0c3e5b7d9f1a2c4e6a8b0d2f4a6c8e0a2c4e6f8a0b2d4f6a8c0e2a4c6e8f";

struct App {
    router: Router,
    db: TestDatabase,
    _writer: tokio::task::JoinHandle<()>,
    /// Keys by channel: loader, payments, store, operator, auditor.
    keys: std::collections::HashMap<&'static str, String>,
}

async fn spawn_app() -> App {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (channel, scope) in [
        ("loader", "certificates:upload"),
        ("payments", "certificates:activate"),
        ("store", "certificates:redeem"),
        ("operator", "certificates:admin"),
        ("auditor", "read"),
    ] {
        let (_, key) = create_key(&pool, channel, &[scope.to_owned()]).await.unwrap();
        keys.insert(channel, key);
    }
    let cvc_keys = Arc::new(LocalKeys::new("test-1", KEY).unwrap());
    let state = ApiState::new(ledger, pool).with_cvc_keys(cvc_keys);
    App { router: router(state), db, _writer: writer, keys }
}

impl App {
    async fn send(&self, channel: &str, path: &str, content_type: &str, body: Option<String>) -> (StatusCode, Value) {
        let method = if body.is_some() { "POST" } else { "GET" };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[channel]));
        if body.is_some() {
            request = request.header("content-type", content_type);
        }
        let request = request.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(!text.contains("\"cvc\""), "an answer carries a CVC field: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, channel: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(channel, path, "application/json", Some(body.to_string())).await
    }

    async fn events(&self) -> Vec<(String, String)> {
        let mut conn = self.db.connect().await;
        sqlx::query_as("SELECT event_type, payload::text FROM events ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }

    /// The CVC of an activated certificate, opened the way only the key holder can.
    async fn cvc(&self, code: &str) -> String {
        let events = self.events().await;
        let (_, payload) = events
            .iter()
            .rev()
            .find(|(t, p)| t == "CertificateActivated" && p.contains(&format!("\"order_id\":\"order-{code}\"")))
            .expect("activated");
        let payload: Value = serde_json::from_str(payload).unwrap();
        let sealed: SealedCvc = serde_json::from_value(payload["cvc"].clone()).unwrap();
        let keys = LocalKeys::new("test-1", KEY).unwrap();
        secrets::open_cvc(&keys, code, &sealed).unwrap().reveal().to_owned()
    }
}

fn code_of(problem: &Value) -> &str {
    problem["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_certificate_is_uploaded_activated_spent_voided_and_refunded() {
    let logs = test_support::CapturedLogs::start();
    let app = spawn_app().await;
    // JSON upload: a bad row rejects only itself.
    let rows = json!({"certificates": [
        {"code": "GC-1", "nominal": "100.00", "currency": "EUR", "expires_at": "2099-12-31T23:59:59Z",
         "campaign": "spring", "phone": "+79990001122"},
        {"code": "GC-2", "nominal": "50", "currency": "EUR"},
        {"code": "GC-9", "nominal": "1.001", "currency": "EUR"},
    ]});
    let (status, body) = app.post("loader", "/v1/certificates/upload/batch", rows.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results: Vec<(&str, &str)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["code"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(results, [("GC-1", "issued"), ("GC-2", "issued"), ("GC-9", "rejected")]);
    assert_eq!(body["results"][2]["problem"]["code"], "amount_scale");
    let (_, again) = app.post("loader", "/v1/certificates/upload/batch", rows).await;
    assert_eq!(again["results"][0]["result"], "exists");
    // CSV upload, same shape.
    let csv = "code,nominal,currency,expires_at,campaign,phone\nGC-3,25.00,EUR,,,+4912345678\nGC-4,abc,EUR,,,\n";
    let (status, body) = app.send("loader", "/v1/certificates/upload/batch", "text/csv", Some(csv.into())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["result"], "issued");
    assert_eq!(
        (body["results"][1]["result"].as_str(), code_of(&body["results"][1]["problem"])),
        (Some("rejected"), "invalid_amount")
    );
    let bad_header = "code,amount\nGC-5,1\n".to_owned();
    let (status, body) = app.send("loader", "/v1/certificates/upload/batch", "text/csv", Some(bad_header)).await;
    assert_eq!((status, code_of(&body)), (StatusCode::BAD_REQUEST, "invalid_body"));

    let (status, body) = app.send("auditor", "/v1/certificates/GC-1/balance", "", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["state"].as_str(), body["balance"].as_str()), (Some("issued"), Some("0.00")));

    // Activation: the payments channel only; the CVC never comes back.
    let activation = json!({"order_id": "order-GC-1", "payment_id": "pay-1"});
    let (status, _) = app.post("store", "/v1/certificates/GC-1/activate", activation.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.post("payments", "/v1/certificates/GC-1/activate", activation.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["state"].as_str(), body["balance"].as_str()), (Some("active"), Some("100.00")));
    let (status, _) = app.post("payments", "/v1/certificates/GC-1/activate", activation).await;
    assert_eq!(status, StatusCode::OK, "a retried activation replays");
    let no_phone = json!({"order_id": "order-GC-2", "payment_id": "pay-2"});
    let (status, body) = app.post("payments", "/v1/certificates/GC-2/activate", no_phone).await;
    assert_eq!((status, code_of(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "phone_required"));

    // A wrong CVC is counted and refused; the right one holds the amount.
    let cvc = app.cvc("GC-1").await;
    let wrong = format!("{:03}", (cvc.parse::<u32>().unwrap() + 1) % 1000);
    let before = app.events().await.len();
    let attempt = json!({"operation_id": "a1", "amount": "30.00", "cvc": wrong});
    let (status, body) = app.post("store", "/v1/certificates/GC-1/authorize", attempt).await;
    assert_eq!((status, code_of(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cvc"));
    let events = app.events().await;
    assert_eq!(events.len(), before + 1);
    assert_eq!(events.last().unwrap().0, "CertificateCvcRefused");
    let authorization = json!({"operation_id": "a1", "amount": "30.00", "cvc": cvc});
    let (status, _) = app.post("payments", "/v1/certificates/GC-1/authorize", authorization.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a payments key cannot redeem");
    let (status, body) = app.post("store", "/v1/certificates/GC-1/authorize", authorization.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((body["balance"].as_str(), body["available"].as_str()), (Some("100.00"), Some("70.00")));
    let (status, _) = app.post("store", "/v1/certificates/GC-1/authorize", authorization).await;
    assert_eq!(status, StatusCode::OK, "a retried authorization replays");
    // The document says a CVC is three digits: a retry presenting anything else is a CVC that
    // does not match, not a replay.
    let malformed = json!({"operation_id": "a1", "amount": "30.00", "cvc": "not a cvc"});
    let (status, body) = app.post("store", "/v1/certificates/GC-1/authorize", malformed).await;
    assert_eq!((status, code_of(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cvc"));
    assert_eq!(app.events().await.last().unwrap().0, "CertificateCvcRefused");

    // Bad input: each refused with its code, and nothing written.
    let before = app.events().await.len();
    let cases = [
        (
            "/v1/certificates/NOPE/capture",
            json!({"operation_id": "a1"}),
            StatusCode::NOT_FOUND,
            "certificate_not_found",
        ),
        (
            "/v1/certificates/GC-1/capture",
            json!({"operation_id": "a1", "amount": "30.01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "capture_exceeds_authorization",
        ),
        (
            "/v1/certificates/GC-1/capture",
            json!({"operation_id": "a1", "amount": "1.001"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_scale",
        ),
        ("/v1/certificates/GC-1/void", json!({"operation_id": "zz"}), StatusCode::NOT_FOUND, "operation_not_found"),
        (
            "/v1/certificates/GC-1/authorize",
            json!({"operation_id": "a2", "amount": "80.00", "cvc": cvc}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        ),
        (
            "/v1/certificates/GC-1/authorize",
            json!({"operation_id": "a1", "amount": 5, "cvc": cvc}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, problem) = app.post("store", path, body.clone()).await;
        assert_eq!((got, code_of(&problem)), (status, code), "{path} {body}");
    }
    let (status, body) = app.post("payments", "/v1/certificates/GC-1/refund", json!({"operation_id": "r0"})).await;
    assert_eq!((status, code_of(&body)), (StatusCode::CONFLICT, "authorization_open"));
    assert_eq!(app.events().await.len(), before, "a refused command leaves no event");

    // Partial capture, then its void returns the amount.
    let (status, body) =
        app.post("store", "/v1/certificates/GC-1/capture", json!({"operation_id": "a1", "amount": "20.00"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["balance"].as_str(), body["available"].as_str()),
        (Some("partially_redeemed"), Some("80.00"), Some("80.00"))
    );
    let (status, body) = app.post("store", "/v1/certificates/GC-1/void", json!({"operation_id": "a1"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["state"].as_str(), body["balance"].as_str()), (Some("active"), Some("100.00")));

    // Refund: the balance goes back to sales clearing and the certificate is final.
    let (status, body) =
        app.post("payments", "/v1/certificates/GC-1/refund", json!({"operation_id": "r1", "reason": "returned"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["state"].as_str(), body["balance"].as_str()), (Some("refunded"), Some("0.00")));
    let (status, body) =
        app.post("operator", "/v1/certificates/GC-1/cancel", json!({"operation_id": "c1", "reason": "x"})).await;
    assert_eq!((status, code_of(&body)), (StatusCode::CONFLICT, "certificate_refunded"));
    let (status, body) = app.send("auditor", "/v1/certificates/GC-1/balance", "", None).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("refunded")));
    let (status, body) = app.send("auditor", "/v1/certificates/NOPE/balance", "", None).await;
    assert_eq!((status, code_of(&body)), (StatusCode::NOT_FOUND, "certificate_not_found"));

    // The CVC is in no log line (every level, the writer's included) ...
    let logged = logs.text();
    assert!(logged.contains("writer"), "the logs were captured: {logged}");
    assert!(!logged.contains(&format!("\"cvc\":\"{cvc}\"")) && !logged.contains(&format!("cvc={cvc}")), "{logged}");
    // ... and in no event in clear: only its sealed form, under a key id.
    for (event_type, payload) in app.events().await {
        let payload: Value = serde_json::from_str(&payload).unwrap();
        if let Some(cvc_field) = payload.get("cvc") {
            assert_eq!(event_type, "CertificateActivated");
            assert!(cvc_field.is_object() && cvc_field["key_id"] == "test-1", "{cvc_field}");
        }
    }
}

#[tokio::test]
async fn two_channels_racing_for_the_same_balance_never_overspend_it() {
    let app = spawn_app().await;
    let rows =
        json!({"certificates": [{"code": "GC-R", "nominal": "100.00", "currency": "EUR", "phone": "+79990001122"}]});
    app.post("loader", "/v1/certificates/upload/batch", rows).await;
    let activation = json!({"order_id": "order-GC-R", "payment_id": "pay-r"});
    app.post("payments", "/v1/certificates/GC-R/activate", activation).await;
    let cvc = app.cvc("GC-R").await;
    let (online, pos) = tokio::join!(
        app.post(
            "store",
            "/v1/certificates/GC-R/authorize",
            json!({"operation_id": "online", "amount": "60.00", "cvc": cvc})
        ),
        app.post(
            "store",
            "/v1/certificates/GC-R/authorize",
            json!({"operation_id": "pos", "amount": "60.00", "cvc": cvc})
        ),
    );
    let mut statuses = [online.0, pos.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY], "{online:?} {pos:?}");
    let loser = if online.0 == StatusCode::CREATED { &pos.1 } else { &online.1 };
    assert_eq!(code_of(loser), "insufficient_funds");
    let (_, body) = app.send("auditor", "/v1/certificates/GC-R/balance", "", None).await;
    assert_eq!(body["available"], "40.00");
}
