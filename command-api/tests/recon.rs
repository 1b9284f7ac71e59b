//! Reconciliation over HTTP (seed 000): providers with their balances beside the players'
//! balances attributed to them, fund movements held and checked against the segregation rule,
//! scope refusals, idempotency, and nothing written by a refusal. Real router, real writer,
//! real Postgres.

use std::collections::HashMap;

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

    async fn ok(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(channel, method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await.unwrap()
    }

    async fn transfer(&self, debit: &str, credit: &str, amount: &str) {
        let body = json!({"id": Uuid::new_v4(), "debit": debit, "credit": credit, "amount": amount});
        self.ok("ledger", "POST", "/v1/transfers", Some(body)).await;
    }

    async fn provider(&self, id: &str) -> Value {
        self.ok("reader", "GET", &format!("/v1/recon/providers/{id}"), None).await
    }

    async fn movement(&self, amount: &str, direction: &str) -> (StatusCode, Value) {
        let body = json!({"id": Uuid::new_v4(), "provider": "psp-a", "direction": direction, "amount": amount,
            "reason": "monthly revenue sweep"});
        self.send("treasury", "POST", "/v1/recon/movements", Some(body)).await
    }
}

/// A provider `psp-a` holding two players' 1000.00 and the operator's 300.00 on its
/// transactional account, and a key per role.
async fn app() -> App {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    std::mem::forget(writer);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = HashMap::new();
    for (channel, scopes) in [
        ("admin", &["recon:admin"][..]),
        ("operator", &["recon:run", "recon:read"][..]),
        ("resolver", &["recon:resolve", "recon:read"][..]),
        ("treasury", &["recon:move", "recon:read"][..]),
        ("reader", &["recon:read"][..]),
        ("ledger", &["accounts:write", "transfers:write"][..]),
    ] {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        keys.insert(channel, create_key(&pool, channel, &scopes).await.unwrap().1);
    }
    let app = App { router: router(ApiState::new(ledger, pool.clone())), keys, pool, _db: db };
    let body = json!({"name": "Provider A", "currency": "EUR", "base_url": "http://127.0.0.1:9/providers/psp-a",
        "tolerance": "0.50"});
    let provider = app.ok("admin", "PUT", "/v1/recon/providers/psp-a", Some(body)).await;
    assert_eq!(provider["balances"]["transactional"], "0.00", "{provider}");
    for (code, kind, metadata) in [
        ("player-1", "liability", json!({"provider": "psp-a"})),
        ("player-2", "liability", json!({"provider": "psp-a"})),
        ("player-3", "liability", json!({"provider": "psp-b"})),
        ("equity", "equity", Value::Null),
    ] {
        let body = json!({"code": code, "currency": "EUR", "kind": kind, "metadata": metadata});
        app.ok("ledger", "POST", "/v1/accounts", Some(body)).await;
    }
    app.transfer("recon:psp-a:transactional", "player-1", "600.00").await;
    app.transfer("recon:psp-a:transactional", "player-2", "400.00").await;
    app.transfer("recon:psp-a:transactional", "equity", "300.00").await;
    app
}

#[tokio::test]
async fn a_provider_shows_its_balances_beside_the_players_it_must_cover() {
    let app = app().await;
    let p = app.provider("psp-a").await;
    assert_eq!(
        (p["name"].as_str(), p["currency"].as_str(), p["tolerance"].as_str()),
        (Some("Provider A"), Some("EUR"), Some("0.50"))
    );
    let b = &p["balances"];
    assert_eq!(
        (b["transactional"].as_str(), b["operational"].as_str(), b["players"].as_str(), b["difference"].as_str()),
        (Some("1300.00"), Some("0.00"), Some("1000.00"), Some("300.00")),
        "{p}"
    );
    let list = app.ok("reader", "GET", "/v1/recon/providers", None).await;
    assert_eq!(list["providers"].as_array().map(Vec::len), Some(1));
    // The same body again is no change; a new currency is refused.
    let before = app.events().await;
    let body = json!({"name": "Provider A", "currency": "EUR", "base_url": "http://127.0.0.1:9/providers/psp-a",
        "tolerance": "0.5"});
    let again = app.ok("admin", "PUT", "/v1/recon/providers/psp-a", Some(body)).await;
    assert_eq!((again["version"].as_i64(), app.events().await), (Some(1), before));
    let usd = json!({"name": "A", "currency": "USD", "base_url": "http://h", "tolerance": "0"});
    let (status, problem) = app.send("admin", "PUT", "/v1/recon/providers/psp-a", Some(usd)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("currency_fixed")));
    for (body, code) in [
        (json!({"name": "A", "currency": "EUR", "base_url": "h", "tolerance": "0"}), "invalid_base_url"),
        (json!({"name": "A", "currency": "EUR", "base_url": "http://h", "tolerance": "-1"}), "invalid_tolerance"),
        (json!({"name": "A", "currency": "EUR", "base_url": "http://h", "tolerance": "1e3"}), "invalid_tolerance"),
        (json!({"name": "A", "currency": "EUR", "base_url": "http://h", "tolerance": "0.001"}), "invalid_tolerance"),
        (json!({"name": "", "currency": "EUR", "base_url": "http://h", "tolerance": "0"}), "invalid_name"),
        (json!({"name": "A", "currency": "EURO", "base_url": "http://h", "tolerance": "0"}), "unknown_currency"),
    ] {
        let (status, problem) = app.send("admin", "PUT", "/v1/recon/providers/psp-new", Some(body.clone())).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{body}");
    }
    assert_eq!(app.events().await, before, "a refusal writes nothing");
    let (status, problem) = app.send("reader", "GET", "/v1/recon/providers/nobody", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("provider_not_found")));
}

#[tokio::test]
async fn a_movement_that_would_breach_segregation_is_refused_and_one_within_it_is_held() {
    let app = app().await;
    let before = app.events().await;
    let (status, problem) = app.movement("300.01", "to_operational").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("segregation_breach")));
    assert_eq!(app.events().await, before, "nothing moves, nothing is written");
    let id = Uuid::new_v4();
    let body = json!({"id": id, "provider": "psp-a", "direction": "to_operational", "amount": "300",
        "reason": "monthly revenue sweep"});
    let (status, m) = app.send("treasury", "POST", "/v1/recon/movements", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(
        (m["status"].as_str(), m["amount"].as_str(), m["currency"].as_str()),
        (Some("pending"), Some("300.00"), Some("EUR"))
    );
    assert_eq!((m["transactional_before"].as_str(), m["players"].as_str()), (Some("1300.00"), Some("1000.00")));
    let b = &app.provider("psp-a").await["balances"];
    assert_eq!(
        (b["transactional"].as_str(), b["transactional_available"].as_str()),
        (Some("1300.00"), Some("1000.00"))
    );
    // The same body answers the movement as it stands; another body under its id is refused.
    let (status, again) = app.send("treasury", "POST", "/v1/recon/movements", Some(body.clone())).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &m["id"]));
    let other = json!({"id": id, "provider": "psp-a", "direction": "to_operational", "amount": "1", "reason": "x"});
    let (status, problem) = app.send("treasury", "POST", "/v1/recon/movements", Some(other)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("movement_exists")));
    let got = app.ok("reader", "GET", &format!("/v1/recon/movements/{id}"), None).await;
    assert_eq!(
        (got["id"].as_str(), got["attempts"].as_array().map(Vec::len)),
        (Some(id.to_string().as_str()), Some(0))
    );
    let list = app.ok("reader", "GET", "/v1/recon/movements?provider=psp-a", None).await;
    assert_eq!(list["movements"].as_array().map(Vec::len), Some(1));
    let (status, short) = app.movement("0.01", "to_operational").await;
    assert_eq!((status, short["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("segregation_breach")));
    let (status, short) = app.movement("1", "to_transactional").await;
    assert_eq!((status, short["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("insufficient_funds")));
    let (status, missing) = app.send("reader", "GET", "/v1/recon/movements/not-a-uuid", None).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("movement_not_found")));
    let (status, missing) = app.send("reader", "GET", "/v1/recon/movements?provider=nobody", None).await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("provider_not_found")));
}

#[tokio::test]
async fn each_route_asks_for_its_own_permission() {
    let app = app().await;
    let body = json!({"name": "B", "currency": "EUR", "base_url": "http://h", "tolerance": "0"});
    let (status, _) = app.send("treasury", "PUT", "/v1/recon/providers/psp-b", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let move_body = json!({"id": Uuid::new_v4(), "provider": "psp-a", "direction": "to_operational", "amount": "1",
        "reason": "r"});
    let (status, _) = app.send("reader", "POST", "/v1/recon/movements", Some(move_body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.send("ledger", "GET", "/v1/recon/providers", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = app.send("treasury", "POST", "/v1/recon/movements", Some(json!({"id": 1}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    // A list without its provider: the key first (401 without one), then the query (400).
    for path in ["/v1/recon/movements", "/v1/recon/runs"] {
        let (status, problem) = app.send("reader", "GET", path, None).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{path}");
        let anonymous = Request::builder().uri(path).body(Body::empty()).unwrap();
        assert_eq!(app.router.clone().oneshot(anonymous).await.unwrap().status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn rules_are_checked_whole_and_a_run_starts_once_per_provider() {
    let app = app().await;
    let bad = json!({"strategy": "one_to_one", "criteria": [{"field": "amount", "operator": "near"}]});
    let (status, problem) = app.send("admin", "PUT", "/v1/recon/rules/by-ref", Some(bad)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule")));
    assert!(problem["detail"].as_str().unwrap().contains("near"), "{problem}");
    let float =
        json!({"strategy": "one_to_one", "criteria": [{"field": "amount", "operator": "within", "tolerance": 0.01}]});
    let (status, _) = app.send("admin", "PUT", "/v1/recon/rules/by-ref", Some(float)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a float tolerance is refused");
    let rule = json!({"strategy": "one_to_one", "criteria": [{"field": "reference", "operator": "equals"},
        {"field": "amount", "operator": "within", "tolerance": "0.01"}]});
    let (status, problem) = app.send("admin", "PUT", "/v1/recon/rules/By-Ref", Some(rule.clone())).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule_name")));
    let stored = app.ok("admin", "PUT", "/v1/recon/rules/by-ref", Some(rule)).await;
    assert_eq!((stored["name"].as_str(), stored["version"].as_i64()), (Some("by-ref"), Some(1)));
    assert_eq!(stored["rule"]["criteria"][1]["tolerance"], "0.01");
    let rules = app.ok("reader", "GET", "/v1/recon/rules", None).await;
    assert_eq!(rules["rules"].as_array().map(Vec::len), Some(1));

    let id = Uuid::new_v4();
    let body = json!({"id": id, "provider": "psp-a", "rules": ["by-ref"]});
    let (status, started) = app.send("operator", "POST", "/v1/recon/runs", Some(body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!((started["status"].as_str(), started["trigger"].as_str()), (Some("running"), Some("manual")));
    assert_eq!((started["from"].clone(), started["rules"].clone()), (Value::Null, json!(["by-ref"])));
    let (status, again) = app.send("operator", "POST", "/v1/recon/runs", Some(body)).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &started["id"]));
    let (status, problem) = app.send("operator", "POST", "/v1/recon/runs", Some(json!({"provider": "psp-a"}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("run_in_progress")));
    let got = app.ok("reader", "GET", &format!("/v1/recon/runs/{id}"), None).await;
    assert_eq!(got["status"], "running");
    let list = app.ok("reader", "GET", "/v1/recon/runs?provider=psp-a", None).await;
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(1));
    for (body, status, code) in [
        (json!({"provider": "nobody"}), StatusCode::NOT_FOUND, "provider_not_found"),
        (json!({"provider": "psp-b", "rules": ["nope"]}), StatusCode::NOT_FOUND, "provider_not_found"),
        (json!({"provider": "psp-a", "rules": []}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_rules"),
        (json!({"provider": "psp-a", "rules": ["nope"]}), StatusCode::NOT_FOUND, "rule_not_found"),
        (
            json!({"provider": "psp-a", "as_of": "2999-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_as_of",
        ),
        (json!({"provider": "psp-a", "as_of": "yesterday"}), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let (got, problem) = app.send("operator", "POST", "/v1/recon/runs", Some(body.clone())).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{body}");
    }
    let (status, _) = app.send("treasury", "POST", "/v1/recon/runs", Some(json!({"provider": "psp-a"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn schedules_are_checked_and_items_are_listed_as_csv_and_resolved_once() {
    let app = app().await;
    let rule = json!({"strategy": "one_to_one", "criteria": [{"field": "reference", "operator": "equals"}]});
    app.ok("admin", "PUT", "/v1/recon/rules/by-ref", Some(rule)).await;
    let schedule = |cron: &str| json!({"provider": "psp-a", "cron": cron, "rules": ["by-ref"], "enabled": true});
    let (status, problem) = app.send("admin", "PUT", "/v1/recon/schedules/nightly", Some(schedule("0 25 * * *"))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cron")));
    assert!(problem["detail"].as_str().unwrap().contains("hour"), "{problem}");
    let s = app.ok("admin", "PUT", "/v1/recon/schedules/nightly", Some(schedule("0 2 * * *"))).await;
    assert!(s["next_due"].as_str().unwrap().ends_with("T02:00:00Z"), "{s}");
    let list = app.ok("reader", "GET", "/v1/recon/schedules", None).await;
    assert_eq!(list["schedules"][0]["cron"], "0 2 * * *");

    // A run's result as the runtime stores it: one match, one line missing in the ledger.
    let id = Uuid::new_v4();
    app.ok("operator", "POST", "/v1/recon/runs", Some(json!({"id": id, "provider": "psp-a"}))).await;
    use ledger_core::recon::matching::{Entry, Line};
    let line = |id: &str, reference: &str| Line {
        id: id.into(),
        amount: "10.00".parse().unwrap(),
        currency: "EUR".into(),
        reference: reference.into(),
        date: ledger_core::Timestamp(1),
        metadata: Default::default(),
    };
    let lines = [line("l1", "r1"), line("l2", "=cmd|' /C calc'!A0")];
    let entries = [Entry {
        id: Uuid::from_u128(1),
        amount: "10.00".parse().unwrap(),
        currency: "EUR".into(),
        reference: "r1".into(),
        date: ledger_core::Timestamp(1),
        metadata: Default::default(),
    }];
    let spec: ledger_core::recon::rule::RuleSpec = serde_json::from_value(
        json!({"strategy": "one_to_one", "criteria": [{"field": "reference", "operator": "equals"}]}),
    )
    .unwrap();
    let rules = [("by-ref".to_owned(), ledger_core::recon::rule::Rule::check(&spec).unwrap())];
    let run = ledger_core::RunId(id);
    let result = ledger_core::recon::items::assemble(run, &lines, &entries, &[], &rules);
    ledger_store::recon::store_result(&app.pool, run, "psp-a", &lines, &result).await.unwrap();
    // A retry of the same run replaces its rows.
    ledger_store::recon::store_result(&app.pool, run, "psp-a", &lines, &result).await.unwrap();

    let page = app.ok("reader", "GET", &format!("/v1/recon/runs/{id}/items?limit=1"), None).await;
    assert_eq!((page["items"].as_array().map(Vec::len), page["next"].as_i64()), (Some(1), Some(0)));
    let rest = app.ok("reader", "GET", &format!("/v1/recon/runs/{id}/items?after=0"), None).await;
    let open = &rest["items"][0];
    assert_eq!(
        (open["kind"].as_str(), open["status"].as_str(), &rest["next"]),
        (Some("missing_in_ledger"), Some("open"), &Value::Null)
    );
    let only_open = app.ok("reader", "GET", &format!("/v1/recon/runs/{id}/items?status=open"), None).await;
    assert_eq!(only_open["items"].as_array().map(Vec::len), Some(1));
    for query in ["kind=lost", "status=closed", "limit=0", "format=xml"] {
        let (status, _) = app.send("reader", "GET", &format!("/v1/recon/runs/{id}/items?{query}"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
    }
    let request = Request::builder()
        .uri(format!("/v1/recon/runs/{id}/items?format=csv"))
        .header("authorization", format!("Bearer {}", app.keys["reader"]))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("'=cmd"), "a formula is defused: {csv}");

    let item = open["id"].as_str().unwrap();
    let path = format!("/v1/recon/items/{item}/resolve");
    let (status, problem) =
        app.send("operator", "POST", &path, Some(json!({"action": "dismiss", "reason": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, problem) =
        app.send("resolver", "POST", &path, Some(json!({"action": "dismiss", "reason": " "}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_reason")));
    let body = json!({"action": "dismiss", "reason": "a test line the provider withdrew"});
    let resolved = app.ok("resolver", "POST", &path, Some(body.clone())).await;
    assert_eq!(
        (resolved["status"].as_str(), resolved["resolution"]["reason"].as_str()),
        (Some("dismissed"), Some("a test line the provider withdrew"))
    );
    assert_eq!(app.ok("resolver", "POST", &path, Some(body)).await["status"], "dismissed", "the same again");
    let (status, problem) = app.send("resolver", "POST", &path, Some(json!({"action": "match", "reason": "no"}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("item_closed")));
    let matched = page["items"][0]["id"].as_str().unwrap();
    let (status, problem) = app
        .send(
            "resolver",
            "POST",
            &format!("/v1/recon/items/{matched}/resolve"),
            Some(json!({"action": "dismiss", "reason": "r"})),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("item_closed")));
    let (status, problem) = app
        .send(
            "resolver",
            "POST",
            &format!("/v1/recon/items/{}/resolve", Uuid::new_v4()),
            Some(json!({"action": "dismiss", "reason": "r"})),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("item_not_found")));
}
