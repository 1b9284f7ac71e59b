//! The GraphQL API end to end: a real writer and projection runners on a fresh database, queries
//! through the router (`oneshot`), subscriptions over a real WebSocket.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use ledger_core::ledger::Command;
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, TransferId,
};
use ledger_store::keys::create_key;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::Model;
use query_api::{QueryState, router};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::{TestDatabase, fresh_database};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower::ServiceExt;
use uuid::Uuid;

struct App {
    db: TestDatabase,
    /// The read models' own database, when they have one.
    read_db: Option<TestDatabase>,
    ledger: LedgerHandle,
    writer: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    runners: Vec<tokio::task::JoinHandle<()>>,
    router: Router,
    key: String,
    write_only_key: String,
}

async fn spawn_app() -> App {
    spawn_app_in(false).await
}

/// `separate`: the read models in a database of their own on the second cluster, the API
/// reading them there and the log from the first.
async fn spawn_app_in(separate: bool) -> App {
    let db = fresh_database().await;
    let read_db = if separate { Some(test_support::fresh_read_database().await) } else { None };
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (_, key) = create_key(&pool, "auditor", &["read".to_owned()]).await.unwrap();
    let (_, write_only_key) = create_key(&pool, "pos", &["transfers:write".to_owned()]).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let read_url = read_db.as_ref().map(|r| r.url.clone());
    let runners = Model::ALL
        .into_iter()
        .map(|model| {
            let (url, read_url, stopped) = (db.url.clone(), read_url.clone(), stopped.clone());
            tokio::spawn(async move {
                let follow = projections::Follow { poll: Duration::from_millis(50), linger: Duration::from_millis(5) };
                projections::run_reporting(&url, read_url.as_deref(), &[model], follow, stopped, None).await
            })
        })
        .collect();
    let read = match &read_db {
        Some(read_db) => Some(sqlx::PgPool::connect(&read_db.url).await.unwrap()),
        None => None,
    };
    let state = QueryState::with(query_api::Databases { log: pool, read });
    App { router: router(state), db, read_db, ledger, writer, stop, runners, key, write_only_key }
}

impl App {
    async fn gql_with(&self, key: Option<&str>, query: &str, variables: Value) -> (StatusCode, Value) {
        let mut request = Request::post("/graphql").header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_with(Some(&self.key), query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn open(&self, code: &str, kind: AccountKind, no_overdraft: bool) -> AccountId {
        let id = AccountId(Uuid::new_v4());
        let limit = if no_overdraft { kind.no_overdraft_limit() } else { BalanceLimit::None };
        let open = OpenAccount {
            id,
            code: code.into(),
            currency: CurrencyCode::parse("EUR").unwrap(),
            kind,
            limit,
            metadata: json!({}),
        };
        self.ledger.submit(Command::OpenAccount(open), EventMeta::default()).await.unwrap().unwrap();
        id
    }

    /// Submits a transfer and returns its id and position.
    async fn transfer(
        &self,
        debit: &str,
        credit: &str,
        amount: &str,
        channel: &str,
        metadata: Value,
    ) -> (TransferId, i64) {
        let id = TransferId(Uuid::new_v4());
        let t = CreateTransfer {
            metadata,
            external_ref: Some(format!("ext-{}", id.0.simple())),
            ..CreateTransfer::simple(
                id,
                AccountRef::Code(debit.into()),
                AccountRef::Code(credit.into()),
                amount.parse::<Decimal>().unwrap(),
            )
        };
        let meta = EventMeta { channel: Some(channel.into()), ..EventMeta::default() };
        let c = self.ledger.submit(Command::CreateTransfer(t), meta).await.unwrap().unwrap();
        (id, c.position)
    }

    /// Waits until every projection has applied the whole log.
    async fn caught_up(&self) {
        for _ in 0..500 {
            let status = self.gql("{ projections { lag } }", json!({})).await;
            let lags = status["data"]["projections"].as_array().cloned().unwrap_or_default();
            if lags.len() == Model::ALL.len() && lags.iter().all(|p| p["lag"] == json!(0)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("projections did not catch up");
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for r in self.runners {
            r.await.unwrap();
        }
        drop(self.router);
        drop(self.ledger);
        self.writer.await.unwrap();
        if let Some(read_db) = self.read_db {
            read_db.drop_database().await;
        }
        self.db.drop_database().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_what_commands_wrote_at_least_as_fresh_as_asked() {
    reads_what_commands_wrote(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_read_models_in_a_second_cluster_queries_read_the_same() {
    let app = spawn_app_in(true).await;
    let mut log = app.db.connect().await;
    reads_what_commands_wrote_checked(app, move |app| {
        Box::pin(async move {
            // Nothing of the read models beside the log: every answer came from the second cluster.
            let beside: bool =
                sqlx::query_scalar("SELECT to_regclass('rm_balances') IS NOT NULL").fetch_one(&mut log).await.unwrap();
            assert!(!beside);
            assert!(app.read_db.is_some());
        })
    })
    .await;
}

async fn reads_what_commands_wrote(app: App) {
    reads_what_commands_wrote_checked(app, |_| Box::pin(async {})).await;
}

async fn reads_what_commands_wrote_checked(
    app: App,
    check: impl FnOnce(&App) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>,
) {
    app.open("bank", AccountKind::Asset, false).await;
    app.open("player:1", AccountKind::Liability, true).await;
    app.open("player:2", AccountKind::Liability, true).await;
    app.open("fees", AccountKind::Income, false).await;
    app.transfer("bank", "player:1", "100.00", "psp", json!({"order": "A-1"})).await;
    let (_, middle) = app.transfer("bank", "player:2", "50.00", "shop", json!({"order": "A-2", "promo": true})).await;
    let (spend, last) = app.transfer("player:1", "fees", "30.00", "pos", json!({"order": "A-3"})).await;

    // Read-your-writes: minPosition waits until the read model has the command's position.
    let body = app
        .gql(
            "query($p: Int) { account(code: \"player:1\", minPosition: $p) { code currency balance { balance available debitsPosted } position } }",
            json!({"p": last}),
        )
        .await;
    assert_eq!(
        body["data"]["account"]["balance"],
        json!({"balance": "70.00", "available": "70.00", "debitsPosted": "30.00"}),
        "{body}"
    );
    assert!(body["extensions"]["position"].as_i64().unwrap() >= 0, "every response carries its position");
    app.caught_up().await;

    let page = app
        .gql("{ accounts(first: 2) { edges { cursor node { code } } pageInfo { hasNextPage endCursor } } }", json!({}))
        .await;
    let codes: Vec<&str> = page["data"]["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["bank", "fees"]);
    assert_eq!(page["data"]["accounts"]["pageInfo"]["hasNextPage"], json!(true));
    let next = app
        .gql(
            "query($c: String) { accounts(first: 5, after: $c) { edges { node { code } } pageInfo { hasNextPage } } }",
            json!({"c": page["data"]["accounts"]["pageInfo"]["endCursor"]}),
        )
        .await;
    let codes: Vec<&str> = next["data"]["accounts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["player:1", "player:2"]);

    let filtered = |filter: &str| {
        format!(
            "{{ transfers({filter}) {{ edges {{ node {{ id channel status legs {{ side amount }} metadata }} }} }} }}"
        )
    };
    let by_account = app.gql(&filtered("account: \"player:1\", minPosition: 7"), json!({})).await;
    assert_eq!(by_account["data"]["transfers"]["edges"].as_array().unwrap().len(), 2, "{by_account}");
    let by_channel = app.gql(&filtered("channel: \"pos\""), json!({})).await;
    assert_eq!(by_channel["data"]["transfers"]["edges"][0]["node"]["id"], json!(spend.0.to_string()));
    assert_eq!(
        by_channel["data"]["transfers"]["edges"][0]["node"]["legs"][0],
        json!({"side": "debit", "amount": "30.00"})
    );
    let by_metadata = app.gql(&filtered("metadata: {promo: true}"), json!({})).await;
    assert_eq!(by_metadata["data"]["transfers"]["edges"][0]["node"]["metadata"]["order"], json!("A-2"));
    let none = app.gql(&filtered("status: \"pending\""), json!({})).await;
    assert_eq!(none["data"]["transfers"]["edges"], json!([]));
    let future = app.gql(&filtered("from: \"2999-01-01T00:00:00Z\""), json!({})).await;
    assert_eq!(future["data"]["transfers"]["edges"], json!([]));

    // As of a position before the spend, and as of now.
    let before = app
        .gql(
            "query($p: Int) { balanceAt(account: \"player:1\", position: $p) { balance { balance } position } }",
            json!({"p": middle}),
        )
        .await;
    assert_eq!(before["data"]["balanceAt"]["balance"]["balance"], json!("100.00"), "{before}");
    let now = app
        .gql("{ balanceAt(account: \"player:1\", at: \"2999-01-01T00:00:00Z\") { balance { balance } } }", json!({}))
        .await;
    assert_eq!(now["data"]["balanceAt"]["balance"]["balance"], json!("70.00"));

    let events = app.gql("{ events(first: 10, account: \"player:1\", type: \"TransferPosted\") { edges { node { position type payload } } } }", json!({})).await;
    assert_eq!(events["data"]["events"]["edges"].as_array().unwrap().len(), 2, "{events}");
    // One stream: the spend's own events (one), found through the account-events read model.
    let stream = format!("transfer-{}", spend.0);
    let one = app
        .gql(
            "query($s: String) { events(first: 10, stream: $s) { edges { node { position streamId } } } }",
            json!({"s": stream}),
        )
        .await;
    assert_eq!(one["data"]["events"]["edges"], json!([{"node": {"position": last, "streamId": stream}}]), "{one}");
    let opened =
        app.gql("{ events(first: 10, stream: \"account-nobody\") { edges { node { position } } } }", json!({})).await;
    assert_eq!(opened["data"]["events"]["edges"], json!([]));
    let turnover = app.gql("{ turnover(account: \"player:1\") { day debits credits } }", json!({})).await;
    assert_eq!(turnover["data"]["turnover"][0]["debits"], json!("30.00"));
    assert_eq!(turnover["data"]["turnover"][0]["credits"], json!("100.00"));
    let status = app.gql("{ projections { name lag checkpoint } }", json!({})).await;
    assert_eq!(status["data"]["projections"].as_array().unwrap().len(), Model::ALL.len());
    check(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_keys_are_enforced_with_clear_errors() {
    let app = spawn_app().await;
    let big = app.gql("{ accounts(first: 500) { edges { cursor } } }", json!({})).await;
    assert!(big["errors"][0]["message"].as_str().unwrap().contains("first must be 1 to 100"), "{big}");
    // Beside data, introspection counts every level, ofType included.
    let deep = app.gql("{ projections { name } __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }", json!({})).await;
    assert!(deep["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("nested too deep"), "{deep}");
    // Alone, introspection is measured without ofType (a chain), but a fan-out is still bounded.
    let fan_out = app.gql("{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }", json!({})).await;
    assert!(fan_out["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("nested too deep"), "{fan_out}");
    assert!(fan_out["data"].is_null(), "{fan_out}");
    let bad_time = app.gql("{ transfers(from: \"yesterday\") { edges { cursor } } }", json!({})).await;
    assert_eq!(bad_time["errors"][0]["extensions"]["code"], json!("invalid_argument"));

    let (status, body) = app.gql_with(None, "{ projections { name } }", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (status, body) = app.gql_with(Some("ldg_wrong"), "{ projections { name } }", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (status, body) = app.gql_with(Some(&app.write_only_key.clone()), "{ projections { name } }", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    // A key that reads one resource passes the endpoint; each root field asks for its own.
    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let (_, accounts_only) =
        create_key(&pool, "desk", &["accounts:read".to_owned(), "transfers:write".to_owned()]).await.unwrap();
    // The balances' runner creates its tables as it starts: wait for them before reading.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.gql("{ accounts(first: 1) { edges { cursor } } }", json!({})).await["errors"].is_array()
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let query = "{ accounts(first: 1) { edges { cursor } } projections { name } }";
    let (status, body) = app.gql_with(Some(&accounts_only), query, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"]["accounts"]["edges"].is_array(), "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["projections"]), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], json!("forbidden"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["permission"], json!("projections:read"), "{body}");
    pool.close().await;

    // A position the read models never reach: a bounded wait, then a clear error.
    let started = std::time::Instant::now();
    let late = app.gql("{ account(code: \"nobody\", minPosition: 1000000) { code } }", json!({})).await;
    assert_eq!(late["errors"][0]["extensions"]["code"], json!("min_position_timeout"), "{late}");
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_stream_new_events_over_a_websocket() {
    let app = spawn_app().await;
    app.open("bank", AccountKind::Asset, false).await;
    app.open("player", AccountKind::Liability, true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app.router.clone()).into_future());

    let mut request = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.key)}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], json!("connection_ack"));
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { events(after: 2) { position type } }"}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let (_, position) = app.transfer("bank", "player", "5.00", "pos", json!({})).await;
    let message = next_json(&mut ws).await;
    assert_eq!(message["type"], json!("next"), "{message}");
    assert_eq!(message["payload"]["data"]["events"], json!({"position": position, "type": "TransferPosted"}));

    // balanceChanges resolves the account in the read model: wait until it has it.
    let ready =
        app.gql("query($p: Int) { account(code: \"player\", minPosition: $p) { code } }", json!({"p": position})).await;
    assert_eq!(ready["data"]["account"]["code"], json!("player"), "{ready}");
    let balance = json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { balanceChanges(account: \"player\", after: 0) { position balance { balance } } }"}});
    ws.send(Message::text(balance.to_string())).await.unwrap();
    let (_, second) = app.transfer("bank", "player", "2.50", "pos", json!({})).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = next_json(&mut ws).await;
        if m["id"] == json!("2") {
            assert_eq!(m["type"], json!("next"), "{m}");
            seen.push(m["payload"]["data"]["balanceChanges"].clone());
        }
    }
    assert_eq!(
        seen,
        [
            json!({"position": position, "balance": {"balance": "5.00"}}),
            json!({"position": second, "balance": {"balance": "7.50"}})
        ]
    );
    ws.close(None).await.ok();
    server.abort();
    app.stop().await;
}

/// The next text message of a WebSocket, as JSON.
async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message =
            tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message").unwrap().unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[test]
fn the_committed_sdl_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/schema.graphql")).unwrap_or_default();
    assert!(
        committed == query_api::sdl(),
        "schemas/schema.graphql is out of date: regenerate it with `cargo run -p ledger -- sdl > schemas/schema.graphql`"
    );
}

impl App {
    /// Posts a raw body to `/graphql` with the read key.
    async fn post_raw(&self, body: &'static str) -> (StatusCode, Option<String>, Value) {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.key))
            .body(Body::from(body))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_introspection_query_loads_the_whole_schema() {
    let app = spawn_app().await;
    // What GraphiQL, Apollo and gql send on connect: graphql-js's getIntrospectionQuery.
    let query = include_str!("introspection.graphql");
    let (status, body) = app.gql_with(Some(&app.key.clone()), query, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], json!("Query"));
    assert_eq!(schema["subscriptionType"]["name"], json!("SubscriptionRoot"));
    let types = schema["types"].as_array().unwrap();
    let connection = types.iter().find(|t| t["name"] == json!("AccountConnection")).expect("AccountConnection");
    let edges = connection["fields"].as_array().unwrap().iter().find(|f| f["name"] == json!("edges")).unwrap();
    // [AccountEdge!]! unwrapped to the bottom.
    let t = &edges["type"];
    assert_eq!(
        (t["kind"].as_str(), t["ofType"]["kind"].as_str(), t["ofType"]["ofType"]["kind"].as_str()),
        (Some("NON_NULL"), Some("LIST"), Some("NON_NULL"))
    );
    assert_eq!(t["ofType"]["ofType"]["ofType"]["name"], json!("AccountEdge"));
    // Introspection answers introspection only: data beside it takes the ordinary path.
    app.caught_up().await;
    let mixed = app.gql("{ __typename projections { name } }", json!({})).await;
    assert_eq!(mixed["data"]["projections"].as_array().map(Vec::len), Some(Model::ALL.len()), "{mixed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_graphql_request_gets_a_graphql_error() {
    let app = spawn_app().await;
    // A raw newline inside a JSON string: JSON forbids it.
    let (status, content_type, body) = app.post_raw("{\"query\": \"{ projections\n { name } }\"}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("control character"), "{body}");
    assert!(!message.contains("InvalidRequest("), "no Rust debug text: {body}");
    for bad in ["", "not json", "[1, 2]", "{\"variables\": {}}"] {
        let (status, _, body) = app.post_raw(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(body["errors"][0]["message"].is_string(), "{bad:?}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    let (status, headers, page) = app.get("/graphql").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(!page.contains("//"), "the page names no other origin:\n{page}");
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    let assets: Vec<&str> = page.split(['"', '\'']).filter(|s| s.starts_with("/graphql/assets/")).collect();
    assert_eq!(assets.len(), 5, "{page}");
    for path in assets {
        let (status, headers, bytes) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let content_type = headers.get("content-type").unwrap().to_str().unwrap();
        let expected = if path.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
        assert!(bytes.len() > 500, "{path}");
    }
    let (status, _, _) = app.get("/graphql/assets/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_callbacks_are_read_with_its_stores_orders_read_permission() {
    use ledger_core::orders::command::{CreateOrder, Sealed, UpsertStore};
    use ledger_core::orders::{Command as Orders, OrderKind, Terms};
    use ledger_store::follow::Follow;
    let app = spawn_app().await;
    let usdt = CurrencyCode::parse("USDT").unwrap();
    let store = UpsertStore {
        id: "s1".into(),
        name: "Store".into(),
        fee: Decimal::new(2, 2),
        settlement_currency: usdt,
        callback_url: Some("https://shop.example/cb".into()),
        secret: Sealed { key_id: "k".into(), nonce: "n".into(), ciphertext: "c".into() },
    };
    app.ledger.submit(Orders::UpsertStore(Box::new(store)), EventMeta::default()).await.unwrap().unwrap();
    // Over the review limit: recorded in manual review, with nothing to hold (no trader needed).
    let id = ledger_core::OrderId(Uuid::new_v4());
    let order = CreateOrder {
        id,
        store: "s1".into(),
        kind: OrderKind::PayIn,
        external_order_id: "ext-1".into(),
        amount: Decimal::new(100_000, 2),
        currency: CurrencyCode::parse("RUB").unwrap(),
        method: None,
        trader: None,
        callback_url: None,
        terms: Terms {
            rate: Some(Decimal::new(925, 1)),
            review_over: Some(Decimal::new(500, 0)),
            deny_over: None,
            timeout_seconds: 900,
            dispute_window_hours: 72,
        },
    };
    let created = app.ledger.submit(Orders::Create(Box::new(order)), EventMeta::default()).await.unwrap().unwrap();
    // One step of the webhooks' follower makes the store's endpoint and the order's callback.
    let config = ledger_store::config::RuntimeConfig::detached(Default::default()).unwrap();
    let mut fanout = webhooks::Fanout::new(config);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    assert!(fanout.prepare(&mut conn).await.unwrap());
    let progress = fanout.step(&mut conn).await.unwrap();
    assert_eq!(progress.checkpoint, Some(created.position));
    drop(conn);

    let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let key = |permission: &'static str| {
        let pool = pool.clone();
        async move { create_key(&pool, "k", &[permission.to_owned()]).await.unwrap().1 }
    };
    let (own_store, other_store, accounts) =
        (key("orders:read:s1").await, key("orders:read:s2").await, key("accounts:read").await);
    let query = "query($id: String!, $after: String) { orderCallbacks(orderId: $id, after: $after) { \
                 edges { cursor node { messageId eventType position status url attemptCount lastStatusCode \
                 nextAttempt created finished attempts { attempt statusCode } } } pageInfo { hasNextPage } } }";
    let vars = |id: &str| json!({"id": id});
    for reader in [app.key.clone(), own_store.clone()] {
        let (status, body) = app.gql_with(Some(&reader), query, vars(&id.to_string())).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["errors"].is_null(), "{body}");
        let edges = body["data"]["orderCallbacks"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{body}");
        let node = &edges[0]["node"];
        assert_eq!(node["eventType"], "orders.status_changed");
        assert_eq!(node["position"], json!(created.position));
        assert_eq!(edges[0]["cursor"], json!(created.position.to_string()));
        assert_eq!(node["status"], "pending");
        assert_eq!(node["url"], "https://shop.example/cb");
        assert_eq!((node["attemptCount"].clone(), node["lastStatusCode"].clone()), (json!(0), Value::Null));
        assert_eq!(node["attempts"], json!([]));
        assert!(node["nextAttempt"].is_string() && node["finished"].is_null(), "{node}");
        assert_eq!(body["data"]["orderCallbacks"]["pageInfo"]["hasNextPage"], json!(false));
    }
    // Past the last one: nothing.
    let after = json!({"id": id.to_string(), "after": created.position.to_string()});
    let body = app.gql(query, after).await;
    assert_eq!(body["data"]["orderCallbacks"]["edges"], json!([]), "{body}");
    // Another store's key is refused with the permission it lacks, naming the order's store.
    let forbidden = |body: &Value| body["errors"][0]["extensions"].clone();
    let (_, body) = app.gql_with(Some(&other_store), query, vars(&id.to_string())).await;
    assert_eq!(forbidden(&body), json!({"code": "forbidden", "permission": "orders:read:s1"}), "{body}");
    let (_, body) = app.gql_with(Some(&accounts), query, vars(&id.to_string())).await;
    assert_eq!(forbidden(&body), json!({"code": "forbidden", "permission": "orders:read"}), "{body}");
    // An unknown order: an empty log for a key that reads every store's, refused for the others.
    let unknown = Uuid::new_v4().to_string();
    let body = app.gql(query, vars(&unknown)).await;
    assert_eq!(body["data"]["orderCallbacks"]["edges"], json!([]), "{body}");
    let (_, body) = app.gql_with(Some(&own_store), query, vars(&unknown)).await;
    assert_eq!(forbidden(&body), json!({"code": "forbidden", "permission": "orders:read"}), "{body}");
    let body = app.gql(query, vars("not-a-uuid")).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], json!("invalid_argument"), "{body}");
    pool.close().await;
    app.stop().await;
}
