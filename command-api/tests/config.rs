//! Runtime configuration and rate limits over HTTP: settings listed, read, changed and reset
//! (unknown keys and invalid values refused with their codes, each change audited with its
//! values), and a key's own quota enforced at once: a burst answered 429 with the headers and
//! audited once, then the rate recovering. Real router, real writer, real Postgres.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use ledger_store::{Writer, WriterConfig};
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;

struct App {
    router: Router,
    keys: HashMap<&'static str, String>,
}

impl App {
    async fn send(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, HeaderMap, Value) {
        let mut request =
            Request::builder().method(method).uri(path).header("authorization", format!("Bearer {}", self.keys[who]));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// The audit entries with `action`, in the log's order, each with its event's metadata.
async fn audited(pool: &sqlx::PgPool, action: &str) -> Vec<(Value, Value)> {
    let rows: Vec<(sqlx::types::Json<Value>, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT payload, metadata FROM events WHERE event_type = 'AuditRecorded' \
         AND payload->'entry'->>'action' = $1 ORDER BY position",
    )
    .bind(action)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(entry, meta)| (entry.0["entry"].clone(), meta.0)).collect()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn settings_change_through_the_api_and_a_keys_quota_limits_it_at_once_then_recovers() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = HashMap::new();
    let mut ids = HashMap::new();
    for (who, scopes) in [("admin", &["config:write", "read"][..]), ("client", &["read"][..])] {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let (id, key) = create_key(&pool, who, &scopes).await.unwrap();
        keys.insert(who, key);
        ids.insert(who, id);
    }
    let app = App { router: router(ApiState::new(ledger, pool.clone())), keys };

    let (status, headers, list) = app.send("client", "GET", "/v1/config", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let default = list["settings"].as_array().unwrap().iter().find(|s| s["key"] == "rate_limit.default").unwrap();
    assert_eq!(default["source"], "default");
    assert_eq!(default["value"], json!({"per_second": 100_000, "burst": 200_000}));
    assert_eq!(default["permission"], "config:write");
    assert_eq!(header(&headers, "x-ratelimit-limit"), Some("200000"));
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("199999"));
    assert_eq!(header(&headers, "x-ratelimit-reset"), Some("1"));

    // Refusals, in order: the scope, the key, the value.
    let key = format!("/v1/config/rate_limit.key.{}", ids["client"]);
    let quota = json!({"value": {"per_second": 1, "burst": 3}});
    let (status, _, problem) = app.send("client", "PUT", &key, Some(quota.clone())).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (status, _, problem) = app.send("admin", "PUT", "/v1/config/rate_limit.nothing", Some(quota.clone())).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_config_key")));
    let (status, _, problem) = app.send("admin", "GET", "/v1/config/rate_limit.key.x", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_config_key")));
    let zero = json!({"value": {"per_second": 0, "burst": 3}});
    let (status, _, problem) = app.send("admin", "PUT", &key, Some(zero)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_config_value")));
    assert!(problem["detail"].as_str().unwrap().contains("per_second: expected an integer from 1"), "{problem}");
    let (status, _, problem) = app.send("admin", "PUT", &key, Some(json!({"valu": 1}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));

    let (status, _, set) = app.send("admin", "PUT", &key, Some(quota.clone())).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!((set["source"].as_str(), set["setting"].as_str()), (Some("database"), Some("rate_limit.key.{key_id}")));
    assert!(set["position"].as_i64().unwrap() > 0);
    let (_, _, again) = app.send("admin", "PUT", &key, Some(quota)).await;
    assert_eq!(again["position"], set["position"], "the same value again changes nothing");
    let (_, _, list) = app.send("admin", "GET", "/v1/config", None).await;
    assert!(
        list["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| format!("/v1/config/{}", s["key"].as_str().unwrap()) == key)
    );

    // The client's burst of 3, then 429 with the wait; the admin's key is not touched.
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = app.send("client", "GET", "/v1/config", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "x-ratelimit-limit"), Some("3"));
        remaining.push(header(&headers, "x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (status, headers, problem) = app.send("client", "GET", "/v1/config", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")), "{problem}");
    assert_eq!(header(&headers, "content-type"), Some("application/problem+json"));
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&headers, "x-ratelimit-reset"), Some("3"));
    assert!(header(&headers, "x-request-id").is_some());
    for _ in 0..5 {
        let (status, _, _) = app.send("client", "GET", "/v1/config", None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let (status, _, _) = app.send("admin", "GET", "/v1/config", None).await;
    assert_eq!(status, StatusCode::OK);

    // One token a second comes back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, headers, _) = app.send("client", "GET", "/v1/config", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), Some("0"));
    let (status, _, _) = app.send("client", "GET", "/v1/config", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A reset gives the key the default quota again.
    let (status, _, reset) = app.send("admin", "DELETE", &key, None).await;
    assert_eq!((status, reset["source"].as_str()), (StatusCode::OK, Some("default")), "{reset}");
    let (status, headers, _) = app.send("client", "GET", "/v1/config", None).await;
    assert_eq!((status, header(&headers, "x-ratelimit-limit")), (StatusCode::OK, Some("200000")));

    // Audited: the burst of refusals once in the minute (recorded beside the answers: wait for
    // it), with the key's quota; the two changes (the same value again is none) with their values.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while audited(&pool, "rate_limit.exceeded").await.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bursts = audited(&pool, "rate_limit.exceeded").await;
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    let (entry, meta) = &bursts[0];
    assert_eq!(entry["level"], "warning");
    assert_eq!(entry["subject"], ids["client"].to_string());
    assert_eq!(entry["after"], json!({"limit_per_second": 1, "burst": 3}));
    assert_eq!((&meta["key_id"], &meta["channel"]), (&json!(ids["client"]), &json!("client")));
    let setting = key.trim_start_matches("/v1/config/");
    let changes: Vec<(Value, Value)> =
        [audited(&pool, "config.set").await, audited(&pool, "config.reset").await].concat();
    assert_eq!(changes.len(), 2, "{changes:?}");
    for ((entry, meta), (before, after)) in changes
        .iter()
        .zip([(Value::Null, json!({"per_second": 1, "burst": 3})), (json!({"per_second": 1, "burst": 3}), Value::Null)])
    {
        assert_eq!((entry["level"].as_str(), entry["subject"].as_str()), (Some("info"), Some(setting)), "{entry}");
        assert_eq!((&entry["before"], &entry["after"]), (&before, &after), "{entry}");
        assert_eq!((&meta["key_id"], &meta["channel"]), (&json!(ids["admin"]), &json!("admin")));
    }

    drop(app);
    writer.await.unwrap();
    db.drop_database().await;
}
