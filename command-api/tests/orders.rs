//! P2P orders over HTTP (seed 003): participants, pay-in and pay-out with their exact splits,
//! every manual decision, scope refusals, concurrency against limits and deposits, and the
//! problems bad input gets. Real router, real writer, real Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::{ApiState, router};
use futures_util::future::join_all;
use http_body_util::BodyExt;
use ledger_store::keys::{create_key, create_key_with_roles};
use ledger_store::{Writer, WriterConfig};
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

struct App {
    router: Router,
    keys: HashMap<&'static str, String>,
    pool: sqlx::PgPool,
    _db: test_support::TestDatabase,
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

    async fn put(&self, channel: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(channel, "PUT", path, Some(body)).await
    }

    async fn ok(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(channel, method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    async fn balance(&self, code: &str) -> String {
        let path = format!("/v1/accounts?code={}", code.replace(':', "%3A"));
        self.ok("ledger", "GET", &path, None).await["balance"]["balance"].as_str().unwrap().to_owned()
    }

    async fn available(&self, code: &str) -> String {
        let path = format!("/v1/accounts?code={}", code.replace(':', "%3A"));
        self.ok("ledger", "GET", &path, None).await["balance"]["available"].as_str().unwrap().to_owned()
    }

    async fn config(&self, key: &str, value: Value) {
        let path = format!("/v1/config/{}", key.replace('/', "%2F"));
        self.ok("config", "PUT", &path, Some(json!({ "value": value }))).await;
    }

    async fn fund(&self, trader: &str, amount: &str) {
        let code = format!("orders:trader:{trader}:deposit:USDT");
        let transfer = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": code, "amount": amount});
        let (status, body) = self.post("ledger", "/v1/transfers", transfer).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn trader(&self, id: &str, fee: &str, priority: u32) {
        let body = json!({"fee": fee, "priority": priority, "traffic_enabled": true, "currencies": ["USDT"]});
        self.ok("admin", "PUT", &format!("/v1/orders/traders/{id}"), Some(body)).await;
    }

    async fn requisite(&self, trader: &str, id: &str, max: &str, daily: &str) -> Value {
        let body = json!({"method": "card", "bank": "Bank", "currency": "RUB", "min_amount": "100.00",
            "max_amount": max, "daily_limit": daily, "enabled": true, "details": "4276 0000 0000 4242"});
        self.ok("admin", "PUT", &format!("/v1/orders/traders/{trader}/requisites/{id}"), Some(body)).await
    }

    async fn order(&self, kind: &str, amount: &str) -> (StatusCode, Value) {
        let id = Uuid::new_v4();
        let body = json!({"id": id, "store_id": "s1", "type": kind, "external_order_id": format!("ext-{id}"),
            "amount": amount, "currency": "RUB"});
        self.post("merchant", "/v1/orders", body).await
    }

    /// The audit entries of an action, from the log.
    async fn audited(&self, action: &str) -> Vec<Value> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT payload::text FROM events WHERE event_type = 'AuditRecorded' \
             AND payload->'entry'->>'action' = $1 ORDER BY position",
        )
        .bind(action)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter().map(|(p,)| serde_json::from_str(&p).unwrap()).collect()
    }
}

/// A store `s1` (fee 3.5%, settled in USDT), a trader `t1` (fee 2%) with a card requisite in RUB
/// and a funded deposit, the rate RUB/USDT 92.5, and a key per role: the seeded example roles
/// bound to their owners where they fit (`merchant:s1` is `orders:create:s1`, `orders:cancel:s1`,
/// `orders:dispute:s1` and `orders:read:s1`), permissions of their own elsewhere.
async fn app(deposit: &str) -> App {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    std::mem::forget(writer);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = HashMap::new();
    let none: &[&str] = &[];
    for (channel, roles, scopes) in [
        ("ledger", none, &["accounts:write", "transfers:write", "read"][..]),
        ("config", none, &["config:write"][..]),
        ("admin", none, &["orders:admin", "orders:read"][..]),
        ("merchant", &["merchant:s1"][..], none),
        ("other-store", none, &["orders:create:s2", "orders:read:s2", "orders:cancel:s2"][..]),
        ("trader", &["trader:t1"][..], none),
        ("trader6", none, &["orders:complete:t6", "orders:fail:t6"][..]),
        ("support", &["support"][..], &["orders:resolve"][..]),
        ("lead", &["teamlead:lead-1"][..], none),
    ] {
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (_, key) = create_key_with_roles(&pool, channel, &strings(roles), &strings(scopes)).await.unwrap();
        keys.insert(channel, key);
    }
    let secrets: Arc<dyn secrets::KeyProvider> = Arc::new(secrets::LocalKeys::random("k1").unwrap());
    let state = ApiState::new(ledger, pool.clone()).with_secrets(secrets);
    let app = App { router: router(state), keys, pool, _db: db };
    let (status, body) =
        app.post("ledger", "/v1/accounts", json!({"code": "bank", "currency": "USDT", "kind": "asset"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.config("orders.rate.RUB/USDT", json!("92.5")).await;
    let store = json!({"name": "Coffee", "fee": "0.035", "settlement_currency": "USDT"});
    let (status, created) = app.put("admin", "/v1/orders/stores/s1", store.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["callback_secret"].as_str().unwrap().starts_with("whsec_"), "{created}");
    let (status, again) = app.put("admin", "/v1/orders/stores/s1", store).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.get("callback_secret").is_none(), "the secret is shown once: {again}");
    app.trader("t1", "0.02", 1).await;
    app.requisite("t1", "r1", "10000.00", "50000.00").await;
    if deposit != "0" {
        app.fund("t1", deposit).await;
    }
    app
}

#[tokio::test]
async fn a_pay_in_completes_with_the_exact_split_then_a_dispute_reverses_it_to_the_cent() {
    let app = app("100.000000").await;
    let id = Uuid::new_v4();
    let body = json!({"id": id, "store_id": "s1", "type": "pay_in", "external_order_id": "A-1",
        "amount": "1000.00", "currency": "RUB"});
    let (status, order) = app.post("merchant", "/v1/orders", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "pending");
    assert_eq!((order["rate"].as_str(), order["settlement_amount"].as_str()), (Some("92.5"), Some("10.810810")));
    let a = &order["assignment"];
    assert_eq!((a["trader_id"].as_str(), a["requisite_id"].as_str()), (Some("t1"), Some("r1")));
    assert_eq!(a["masked"], "•••• 4242");
    assert_eq!((a["store_fee_amount"].as_str(), a["trader_reward"].as_str()), (Some("0.378378"), Some("0.216216")));
    assert_eq!(a["platform_amount"], "0.162162");
    assert!(!order.to_string().contains("4276"), "the card is never shown: {order}");
    assert_eq!(app.available("orders:trader:t1:deposit:USDT").await, "89.189190", "the deposit is held");
    // The same body answers the original; another under the id, or the external id, is refused.
    let (status, again) = app.post("merchant", "/v1/orders", body.clone()).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &order["id"]));
    let mut other = body.clone();
    other["amount"] = json!("1000.01");
    let (status, problem) = app.post("merchant", "/v1/orders", other).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("order_exists")));
    let mut same_external = body.clone();
    same_external["id"] = json!(Uuid::new_v4());
    let (status, _) = app.post("merchant", "/v1/orders", same_external).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Trader-6's key on trader-1's order: 403 naming the missing permission.
    let (status, problem) = app.post("trader6", &format!("/v1/orders/{id}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("orders:complete:t1"), "{problem}");
    let (status, _) = app.send("other-store", "GET", &format!("/v1/orders/{id}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.send("other-store", "POST", &format!("/v1/orders/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let completed = app.ok("trader", "POST", &format!("/v1/orders/{id}/complete"), None).await;
    assert_eq!(completed["status"], "completed");
    assert!(completed["completed_at"].is_string());
    assert_eq!(app.balance("orders:trader:t1:deposit:USDT").await, "89.189190");
    assert_eq!(app.balance("orders:store:s1:USDT").await, "10.432432");
    assert_eq!(app.balance("orders:trader:t1:rewards:USDT").await, "0.216216");
    assert_eq!(app.balance("orders:platform:profit:USDT").await, "0.162162");
    // Completing again answers the same; cancelling a completed order is not in the table.
    let (status, _) = app.post("trader", &format!("/v1/orders/{id}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = app.post("merchant", &format!("/v1/orders/{id}/cancel"), json!({"reason": "late"})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_order_state")));
    // Both the store and the trader read it.
    app.ok("merchant", "GET", &format!("/v1/orders/{id}"), None).await;
    app.ok("trader", "GET", &format!("/v1/orders/{id}"), None).await;

    let disputed =
        app.ok("merchant", "POST", &format!("/v1/orders/{id}/dispute"), Some(json!({"reason": "not paid"}))).await;
    assert_eq!(disputed["status"], "disputed");
    let resolve = json!({"outcome": "reverse", "reason": "chargeback"});
    let (status, _) = app.post("merchant", &format!("/v1/orders/{id}/resolve"), resolve.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only support resolves");
    let reversed = app.ok("support", "POST", &format!("/v1/orders/{id}/resolve"), Some(resolve)).await;
    assert_eq!(reversed["status"], "reversed");
    assert!(reversed["reversal_transfer"].is_string());
    assert_eq!(app.balance("orders:trader:t1:deposit:USDT").await, "100.000000");
    for code in ["orders:store:s1:USDT", "orders:trader:t1:rewards:USDT", "orders:platform:profit:USDT"] {
        assert_eq!(app.balance(code).await, "0.000000", "{code}");
    }
    let entries = app.audited("orders.reverse").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["entry"]["level"], "warning");
}

#[tokio::test]
async fn a_pay_out_takes_the_store_amount_and_fee_and_a_trader_fee_above_the_stores_costs_the_platform() {
    let app = app("0").await;
    app.trader("t1", "0.05", 1).await;
    // The store has nothing yet: its pay-out cannot be held.
    let (status, problem) = app.order("pay_out", "1000.00").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_funds")));
    let transfer = json!({"id": Uuid::new_v4(), "debit": "bank", "credit": "orders:store:s1:USDT", "amount": "20"});
    app.ok("ledger", "POST", "/v1/transfers", Some(transfer)).await;
    let (status, order) = app.order("pay_out", "1000.00").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    // 10.810810 + fee 0.378378 held on the store.
    assert_eq!(app.available("orders:store:s1:USDT").await, "8.810812");
    app.ok("trader", "POST", &format!("/v1/orders/{id}/complete"), None).await;
    assert_eq!(app.balance("orders:store:s1:USDT").await, "8.810812");
    assert_eq!(app.balance("orders:trader:t1:deposit:USDT").await, "10.810810");
    assert_eq!(
        app.balance("orders:trader:t1:rewards:USDT").await,
        "0.540540",
        "5% of 10.810810 is 0.5405405: half to even"
    );
    // The platform pays the difference: 0.378378 - 0.540540.
    assert_eq!(app.balance("orders:platform:profit:USDT").await, "-0.162162");
}

#[tokio::test]
async fn review_deny_cancel_and_fail_each_follow_the_table_and_manual_decisions_are_audited() {
    let app = app("100.000000").await;
    app.config("orders.fraud.review_over.RUB", json!("5000")).await;
    app.config("orders.fraud.deny_over.RUB", json!("9000")).await;
    let (status, problem) = app.order("pay_in", "9000.01").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fraud_denied")));
    assert_eq!(app.available("orders:trader:t1:deposit:USDT").await, "100.000000", "nothing held");
    assert_eq!(app.audited("orders.fraud_deny").await.len(), 1);

    let (status, review) = app.order("pay_in", "6000.00").await;
    assert_eq!((status, review["status"].as_str()), (StatusCode::CREATED, Some("manual_review")));
    assert!(review["assignment"].is_null());
    let id = review["id"].as_str().unwrap().to_owned();
    let (status, _) = app.post("trader", &format!("/v1/orders/{id}/complete"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "unassigned: only an unscoped completion key may try");
    let (status, _) = app.post("merchant", &format!("/v1/orders/{id}/approve"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let approved = app.ok("support", "POST", &format!("/v1/orders/{id}/approve"), None).await;
    assert_eq!(
        (approved["status"].as_str(), approved["assignment"]["trader_id"].as_str()),
        (Some("pending"), Some("t1"))
    );
    let failed =
        app.ok("trader", "POST", &format!("/v1/orders/{id}/fail"), Some(json!({"reason": "no money came"}))).await;
    assert_eq!((failed["status"].as_str(), failed["reason"].as_str()), (Some("failed"), Some("no money came")));
    assert_eq!(app.available("orders:trader:t1:deposit:USDT").await, "100.000000", "the hold is voided");

    let (_, review) = app.order("pay_in", "6000.00").await;
    let id = review["id"].as_str().unwrap().to_owned();
    let denied =
        app.ok("support", "POST", &format!("/v1/orders/{id}/deny"), Some(json!({"reason": "stolen card"}))).await;
    assert_eq!(denied["status"], "denied");
    let (status, problem) = app.post("support", &format!("/v1/orders/{id}/approve"), json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_order_state")));
    let entry = &app.audited("orders.deny").await[0]["entry"];
    assert_eq!((entry["level"].as_str(), entry["reason"].as_str()), (Some("warning"), Some("stolen card")));
    assert_eq!(app.audited("orders.approve").await[0]["entry"]["level"], "info");

    let (_, pending) = app.order("pay_in", "1000.00").await;
    let id = pending["id"].as_str().unwrap().to_owned();
    let cancelled = app.ok("merchant", "POST", &format!("/v1/orders/{id}/cancel"), None).await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, problem) = app.post("merchant", &format!("/v1/orders/{id}/dispute"), json!({"reason": "x"})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_order_state")));
    let (status, problem) = app.post("support", &format!("/v1/orders/{}/approve", Uuid::new_v4()), json!({})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("order_not_found")));
}

#[tokio::test]
async fn sixty_four_concurrent_creates_never_overrun_the_deposit_or_the_daily_limit() {
    // Each order settles 10.810810: a deposit of 100 takes nine (97.297290), the tenth does not fit.
    let app = app("100.000000").await;
    let results = join_all((0..64).map(|_| app.order("pay_in", "1000.00"))).await;
    let taken = results.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    assert_eq!(taken, 9, "{:?}", results.iter().map(|(s, b)| (s, b["code"].clone())).collect::<Vec<_>>());
    for (status, body) in &results {
        if *status != StatusCode::CREATED {
            assert_eq!(
                (*status, body["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("no_requisite_available"))
            );
        }
    }
    assert_eq!(app.available("orders:trader:t1:deposit:USDT").await, "2.702710");
    // A daily limit of 5000 RUB: a second requisite of its own trader takes five of 1000.
    app.trader("t2", "0.02", 2).await;
    app.requisite("t2", "r1", "5000.00", "5000.00").await;
    app.fund("t2", "1000.000000").await;
    let results = join_all((0..64).map(|_| app.order("pay_in", "1000.00"))).await;
    let taken = results.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
    assert_eq!(taken, 5);
}

#[tokio::test]
async fn traders_of_one_priority_take_orders_in_turn_and_a_team_lead_turns_its_traders_traffic() {
    let app = app("100.000000").await;
    let body =
        json!({"fee": "0.02", "priority": 1, "traffic_enabled": true, "team_lead": "lead-1", "currencies": ["USDT"]});
    app.ok("admin", "PUT", "/v1/orders/traders/t2", Some(body)).await;
    app.requisite("t2", "r1", "10000.00", "50000.00").await;
    app.fund("t2", "100.000000").await;
    let mut traders = Vec::new();
    for _ in 0..4 {
        let (status, order) = app.order("pay_in", "1000.00").await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        traders.push(order["assignment"]["trader_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(traders, ["t1", "t2", "t1", "t2"], "the requisite used longest ago first (never used first)");
    // The team lead of t2 turns it off; it may not touch t1.
    let (status, _) = app.post("lead", "/v1/orders/traders/t1/traffic", json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let off = app.ok("lead", "POST", "/v1/orders/traders/t2/traffic", Some(json!({"enabled": false}))).await;
    assert_eq!(off["traffic_enabled"], false);
    for _ in 0..2 {
        let (_, order) = app.order("pay_in", "1000.00").await;
        assert_eq!(order["assignment"]["trader_id"], "t1");
    }
    assert_eq!(app.audited("orders.trader.traffic").await.len(), 1);
    let trader = app.ok("admin", "GET", "/v1/orders/traders/t2", None).await;
    assert_eq!(trader["accounts"][0]["deposit_balance"], "100.000000");
}

#[tokio::test]
async fn a_trader_answers_with_its_requisites_and_their_counters_never_their_details() {
    let app = app("100.000000").await;
    let body = json!({"method": "sbp", "bank": "Other", "currency": "RUB", "min_amount": "10.00",
        "max_amount": "800.00", "daily_limit": "1000.00", "enabled": false, "details": "+7 900 000 98 76"});
    app.ok("admin", "PUT", "/v1/orders/traders/t1/requisites/r2", Some(body)).await;
    // A trader whose id starts with t1's: its requisite is its own, never t1's.
    app.trader("t10", "0.02", 1).await;
    app.requisite("t10", "r1", "10000.00", "50000.00").await;
    let trader = app.ok("admin", "GET", "/v1/orders/traders/t10", None).await;
    let ids: Vec<&str> = trader["requisites"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1"]);
    assert_eq!(trader["requisites"][0]["trader_id"], "t10");

    // One order completed and one pending on r1 (the only enabled one t1 has, and t10 has no deposit).
    let (status, order) = app.order("pay_in", "1000.00").await;
    assert_eq!((status, order["assignment"]["requisite_id"].as_str()), (StatusCode::CREATED, Some("r1")), "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    app.ok("trader", "POST", &format!("/v1/orders/{id}/complete"), None).await;
    let (status, order) = app.order("pay_in", "500.00").await;
    assert_eq!((status, order["assignment"]["trader_id"].as_str()), (StatusCode::CREATED, Some("t1")), "{order}");

    let trader = app.ok("trader", "GET", "/v1/orders/traders/t1", None).await;
    let requisites = trader["requisites"].as_array().unwrap();
    let ids: Vec<&str> = requisites.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1", "r2"], "by id: {trader}");
    let r1 = &requisites[0];
    let shown = |r: &Value, fields: &[&str]| fields.iter().map(|f| r[*f].clone()).collect::<Vec<_>>();
    assert_eq!(
        shown(r1, &["trader_id", "method", "bank", "currency", "masked", "min_amount", "max_amount", "daily_limit"]),
        ["t1", "card", "Bank", "RUB", "•••• 4242", "100.00", "10000.00", "50000.00"]
    );
    assert_eq!(
        shown(r1, &["enabled", "completed_today", "pending", "turnover_today"]),
        [json!(true), json!("1000.00"), json!("500.00"), json!("1500.00")]
    );
    assert!(r1["last_used_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{r1}");
    assert_eq!(
        shown(&requisites[1], &["method", "masked", "enabled", "completed_today", "pending", "last_used_at"]),
        [json!("sbp"), json!("•••• 9876"), json!(false), json!("0.00"), json!("0.00"), Value::Null]
    );
    // Neither the details in clear nor their sealed form.
    let sealed: Vec<(String,)> =
        sqlx::query_as("SELECT state->'details'->>'ciphertext' FROM entities WHERE kind = 'order_requisite'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let text = trader.to_string();
    for clear in ["4276 0000", "0000 4242", "+7 900", "000 98 76"] {
        assert!(!text.contains(clear), "{clear} in {text}");
    }
    for (ciphertext,) in &sealed {
        assert!(!text.contains(ciphertext.as_str()), "the sealed details in {text}");
    }
    for field in ["details", "ciphertext", "nonce", "key_id"] {
        assert!(requisites.iter().all(|r| r.get(field).is_none()), "{field} in {text}");
    }
    // The answers that set the trader carry the same list; another owner's key reads none of it.
    let again = json!({"fee": "0.02", "priority": 1, "traffic_enabled": true, "currencies": ["USDT"]});
    let put = app.ok("admin", "PUT", "/v1/orders/traders/t1", Some(again)).await;
    assert_eq!(put["requisites"], trader["requisites"]);
    let (status, problem) = app.send("merchant", "GET", "/v1/orders/traders/t1", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
}

#[tokio::test]
async fn bad_input_gets_a_typed_problem_and_leaves_nothing_behind() {
    let app = app("100.000000").await;
    let heads: (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    let store = |fee: Value| json!({"name": "Bad", "fee": fee, "settlement_currency": "USDT"});
    let cases = [
        ("PUT", "/v1/orders/stores/s9", store(json!("1")), StatusCode::UNPROCESSABLE_ENTITY, "invalid_fee"),
        ("PUT", "/v1/orders/stores/s9", store(json!("abc")), StatusCode::UNPROCESSABLE_ENTITY, "invalid_fee"),
        ("PUT", "/v1/orders/stores/s9", store(json!(0.1)), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            "PUT",
            "/v1/orders/stores/a:b",
            store(json!("0.1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_participant_id",
        ),
        (
            "PUT",
            "/v1/orders/stores/s9",
            json!({"name": "Bad", "fee": "0.1", "settlement_currency": "USDT", "callback_url": "http://127.0.0.1/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_callback_url",
        ),
        (
            "PUT",
            "/v1/orders/stores/s1",
            json!({"name": "Coffee", "fee": "0.035", "settlement_currency": "EUR"}),
            StatusCode::CONFLICT,
            "settlement_currency_fixed",
        ),
        (
            "PUT",
            "/v1/orders/traders/t1/requisites/r2",
            json!({"method": "card", "bank": "B", "currency": "RUB", "min_amount": "100.00", "max_amount": "50.00",
                "daily_limit": "500.00", "enabled": true, "details": "4242 4242"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limits",
        ),
        (
            "PUT",
            "/v1/orders/traders/t9/requisites/r2",
            json!({"method": "card", "bank": "B", "currency": "RUB", "min_amount": "1.00", "max_amount": "50.00",
                "daily_limit": "500.00", "enabled": true, "details": "4242 4242"}),
            StatusCode::NOT_FOUND,
            "trader_not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, problem) = app.send("admin", method, path, Some(body.clone())).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{method} {path} {body}: {problem}");
    }
    let order = |amount: Value, currency: &str| {
        json!({"id": Uuid::new_v4(), "store_id": "s1", "type": "pay_in", "external_order_id": Uuid::new_v4().to_string(),
            "amount": amount, "currency": currency})
    };
    let cases = [
        (order(json!("1000.001"), "RUB"), StatusCode::UNPROCESSABLE_ENTITY, "amount_scale"),
        (order(json!("-5"), "RUB"), StatusCode::UNPROCESSABLE_ENTITY, "amount_must_be_positive"),
        (order(json!(1000), "RUB"), StatusCode::BAD_REQUEST, "invalid_body"),
        (order(json!("1000.00"), "EUR"), StatusCode::UNPROCESSABLE_ENTITY, "no_exchange_rate"),
        (order(json!("1000.00"), "XXXX1"), StatusCode::UNPROCESSABLE_ENTITY, "unknown_currency"),
        (order(json!("50.00"), "RUB"), StatusCode::UNPROCESSABLE_ENTITY, "no_requisite_available"),
    ];
    for (body, status, code) in cases {
        let (got, problem) = app.post("merchant", "/v1/orders", body.clone()).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{body}: {problem}");
    }
    let mut unknown = order(json!("1000.00"), "RUB");
    unknown["store_id"] = json!("s2");
    let (status, problem) = app.post("other-store", "/v1/orders", unknown).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("store_not_found")));
    let after: (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    // The refused commands left nothing; the 403s and nothing else were audited.
    let audited: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE event_type = 'AuditRecorded' AND payload->'entry'->>'action' = 'access.denied'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(after.0 - heads.0, audited.0);
}

#[tokio::test]
async fn without_a_secrets_key_stores_and_requisites_are_not_written() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    std::mem::forget(writer);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let key = create_key(&pool, "admin", &["orders:admin".to_owned()]).await.unwrap().1;
    let keys = HashMap::from([("admin", key)]);
    let app = App { router: router(ApiState::new(ledger, pool.clone())), keys, pool, _db: db };
    let body = json!({"name": "Coffee", "fee": "0.035", "settlement_currency": "USDT"});
    let (status, problem) = app.put("admin", "/v1/orders/stores/s1", body).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("secrets_key_missing")));
}
