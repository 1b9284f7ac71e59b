//! The orders' part of the GraphQL schema end to end: a real writer and the read models'
//! runner on a fresh database, queries through the router (`oneshot`). Connections page by
//! the keyset without repeating or skipping an order, balances come with histories whose
//! before and after chain exactly, statistics are the read model's, and a key scoped to a
//! store or a trader is refused every other's orders, balances and statistics.

use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ledger_core::orders::Command;
use ledger_core::orders::command::{CreateOrder, Sealed, Terms, UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::{AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount};
use ledger_core::{OrderId, TransferId};
use ledger_store::keys::create_key;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::Model;
use projections::orders::{OrderFilter, StatsBy};
use query_api::{QueryState, router};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn usdt() -> CurrencyCode {
    CurrencyCode::parse("USDT").unwrap()
}

fn sealed(what: &str) -> Sealed {
    Sealed { key_id: "k1".into(), nonce: format!("nonce-{what}"), ciphertext: format!("sealed-{what}") }
}

async fn submit(ledger: &LedgerHandle, command: Command) {
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap();
}

/// Stores s1 (3%) and s2 (2%), traders t1 (1%) and t2 (2.5%) with a card and 5,000 USDT each,
/// and fifteen pay-ins: s2's every third, t2 asked for every fourth; completed, cancelled, or
/// left pending in turn; one completed order of each store reversed after a dispute.
async fn workload(ledger: &LedgerHandle) {
    let bank = AccountId(Uuid::from_u128(1));
    let open = OpenAccount {
        id: bank,
        code: "bank:usdt".into(),
        currency: usdt(),
        kind: AccountKind::Asset,
        limit: BalanceLimit::None,
        metadata: Value::Null,
    };
    let ledger_command = |c| async move { ledger.submit(c, EventMeta::default()).await.unwrap().unwrap() };
    ledger_command(ledger_core::ledger::Command::OpenAccount(open)).await;
    for (id, fee) in [("s1", "0.03"), ("s2", "0.02")] {
        let store = UpsertStore {
            id: id.into(),
            name: format!("Store {id}"),
            fee: dec(fee),
            settlement_currency: usdt(),
            callback_url: None,
            secret: sealed(id),
        };
        submit(ledger, Command::UpsertStore(Box::new(store))).await;
    }
    for (id, fee, priority) in [("t1", "0.01", 1), ("t2", "0.025", 2)] {
        let trader = UpsertTrader {
            id: id.into(),
            fee: dec(fee),
            priority,
            traffic_enabled: true,
            team_lead: None,
            currencies: vec![usdt()],
        };
        submit(ledger, Command::UpsertTrader(Box::new(trader))).await;
        let requisite = UpsertRequisite {
            trader: id.into(),
            id: "card".into(),
            method: "card".into(),
            bank: "Bank".into(),
            currency: CurrencyCode::parse("RUB").unwrap(),
            min_amount: dec("100"),
            max_amount: dec("1000000"),
            daily_limit: dec("100000000"),
            enabled: true,
            details: sealed(id),
            masked: "•••• 4242".into(),
        };
        submit(ledger, Command::UpsertRequisite(Box::new(requisite))).await;
        let deposit = ledger_core::orders::deposit_account(id, &usdt()).0;
        let fund = CreateTransfer::simple(
            TransferId(Uuid::new_v4()),
            AccountRef::Id(bank),
            AccountRef::Id(deposit),
            dec("5000"),
        );
        ledger_command(ledger_core::ledger::Command::CreateTransfer(fund)).await;
    }
    for n in 0..15u128 {
        let id = OrderId(Uuid::from_u128(0x0dd0 + n));
        let create = CreateOrder {
            id,
            store: if n % 3 == 2 { "s2" } else { "s1" }.into(),
            kind: ledger_core::orders::OrderKind::PayIn,
            external_order_id: format!("ext-{n}"),
            amount: Decimal::new(100_000 + 12_345 * n as i64, 2),
            currency: CurrencyCode::parse("RUB").unwrap(),
            method: None,
            trader: (n % 4 == 3).then(|| "t2".to_owned()),
            callback_url: None,
            terms: Terms {
                rate: Some(dec("92.5")),
                review_over: None,
                deny_over: None,
                timeout_seconds: 3600,
                dispute_window_hours: 72,
            },
        };
        submit(ledger, Command::Create(Box::new(create))).await;
        match n % 3 {
            0 => submit(ledger, Command::Complete { id }).await,
            1 => submit(ledger, Command::Cancel { id, reason: None }).await,
            _ if n == 5 || n == 8 => {
                submit(ledger, Command::Complete { id }).await;
                submit(ledger, Command::Dispute { id, reason: "not received".into() }).await;
                let reverse = ledger_core::orders::Outcome::Reverse;
                submit(ledger, Command::Resolve { id, outcome: reverse, reason: "checked".into() }).await;
            }
            _ => {}
        }
    }
}

struct App {
    router: Router,
    keys: std::collections::HashMap<&'static str, String>,
}

impl App {
    async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.keys[key]));
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The data of a query that must succeed.
    async fn data(&self, key: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(key, query, variables).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    /// The code and permission of the error a query must meet.
    async fn refused(&self, key: &str, query: &str, variables: Value) -> (String, String) {
        let body = self.gql(key, query, variables).await;
        let e = &body["errors"][0]["extensions"];
        (e["code"].as_str().unwrap_or_default().to_owned(), e["permission"].as_str().unwrap_or_default().to_owned())
    }

    /// Every page of `orders` with `args`, `first` at a time: the ids in order.
    async fn orders(&self, key: &str, args: &str, first: usize) -> Vec<String> {
        let query = format!(
            "query($after: String) {{ orders(first: {first}, after: $after{args}) {{ edges {{ cursor node {{ id }} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let mut ids = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = self.data(key, &query, json!({"after": after})).await;
            let page = &data["orders"];
            let edges = page["edges"].as_array().unwrap();
            assert!(edges.len() <= first);
            ids.extend(edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()));
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                return ids;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }
}

const HISTORY: &str = "query($owner: OrdersOwner!, $id: String, $after: String) { \
    ordersBalances(owner: $owner, id: $id, currency: \"USDT\") { role code balance available \
    history(first: 3, after: $after) { edges { node { position eventType orderId action balanceBefore balanceAfter \
    availableBefore availableAfter } } pageInfo { hasNextPage endCursor } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_balances_and_statistics_are_read_within_the_key_s_scope() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let runner = tokio::spawn(async move {
        let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
        projections::run_reporting(&url, None, &[Model::Balances, Model::Orders], follow, stopped, None).await
    });
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (name, permission) in [
        ("operator", "orders:read"),
        ("store", "orders:read:s1"),
        ("trader", "orders:read:t1"),
        ("accounts", "accounts:read"),
    ] {
        keys.insert(name, create_key(&pool, name, &[permission.to_owned()]).await.unwrap().1);
    }
    workload(&ledger).await;
    let head = ledger.view().head();
    // The writer's balances, by code.
    let balances: std::collections::HashMap<String, Decimal> = [
        ledger_core::orders::store_account("s1", &usdt()),
        ledger_core::orders::deposit_account("t1", &usdt()),
        ledger_core::orders::rewards_account("t1", &usdt()),
        ledger_core::orders::platform_account(&usdt()),
    ]
    .into_iter()
    .map(|(id, code)| (code, ledger.view().account(&AccountRef::Id(id)).unwrap().account.balance()))
    .collect();
    let mut conn = pool.acquire().await.unwrap();
    for model in [Model::Balances, Model::Orders] {
        while projections::read::checkpoint(&mut conn, model).await.unwrap() < head {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let app = App { router: router(QueryState::new(pool.clone())), keys };
    let ids = |rows: Vec<projections::orders::OrderRow>| rows.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    let read = async |conn: &mut sqlx::PgConnection, filter: OrderFilter| {
        ids(projections::orders::orders(conn, &filter, None, 1000).await.unwrap())
    };

    // Connections: each order once, in keyset order, whatever the page size; filters as the
    // read model's.
    let all = read(&mut conn, OrderFilter::default()).await;
    assert_eq!(all.len(), 15);
    for first in [1, 4, 100] {
        assert_eq!(app.orders("operator", "", first).await, all, "by {first}");
    }
    let s1 = read(&mut conn, OrderFilter { store_id: Some("s1".into()), ..Default::default() }).await;
    let s1_done = read(
        &mut conn,
        OrderFilter { store_id: Some("s1".into()), status: Some("completed".into()), ..Default::default() },
    )
    .await;
    let t1_big = read(
        &mut conn,
        OrderFilter { trader_id: Some("t1".into()), min_amount: Some(dec("1250")), ..Default::default() },
    )
    .await;
    assert!(!s1_done.is_empty() && s1_done.len() < s1.len() && !t1_big.is_empty());
    assert_eq!(app.orders("store", ", storeId: \"s1\"", 2).await, s1);
    assert_eq!(app.orders("store", ", storeId: \"s1\", status: completed", 2).await, s1_done);
    assert_eq!(app.orders("trader", ", traderId: \"t1\", minAmount: \"1250\"", 2).await, t1_big);
    // A store's key with a trader's filter beside its own, a trader's with a store's.
    assert!(!app.orders("store", ", storeId: \"s1\", traderId: \"t2\"", 2).await.is_empty());
    assert!(!app.orders("trader", ", storeId: \"s2\", traderId: \"t1\"", 2).await.is_empty());

    // One order: its store's key or its trader's.
    let order = "query($id: String!) { order(id: $id) { id storeId traderId status amount settlementAmount \
                 storeFee traderReward platformShare holdTransferId reversalTransferId } }";
    let reversed = projections::orders::order(&mut conn, Uuid::from_u128(0x0dd0 + 5)).await.unwrap().unwrap();
    assert_eq!((reversed.store_id.as_str(), reversed.trader_id.as_deref()), ("s2", Some("t1")));
    let data = app.data("trader", order, json!({"id": reversed.id.to_string()})).await;
    assert_eq!(data["order"]["status"], "reversed");
    assert_eq!(data["order"]["reversalTransferId"], json!(reversed.reversal_transfer.unwrap().to_string()));
    assert_eq!(data["order"]["platformShare"], json!(reversed.platform_share.unwrap().to_string()));
    let refused = app.refused("store", order, json!({"id": reversed.id.to_string()})).await;
    assert_eq!(refused, ("forbidden".to_owned(), "orders:read:s2".to_owned()));
    let nobody = app.data("store", order, json!({"id": Uuid::new_v4().to_string()})).await;
    assert_eq!(nobody["order"], Value::Null);

    // Balances and histories: every movement's before is the after of the one before (zero
    // first), the last after the account's balance; a movement of an order names it.
    for (owner, id, key, roles) in [
        ("store", Some("s1"), "store", vec!["store"]),
        ("trader", Some("t1"), "trader", vec!["deposit", "rewards"]),
        ("platform", None, "operator", vec!["profit"]),
    ] {
        let variables = json!({"owner": owner, "id": id});
        let data = app.data(key, HISTORY, variables.clone()).await;
        let accounts = data["ordersBalances"].as_array().unwrap();
        assert_eq!(accounts.iter().map(|a| a["role"].as_str().unwrap()).collect::<Vec<_>>(), roles);
        for (n, account) in accounts.iter().enumerate() {
            let mut last = ("0".to_owned(), "0".to_owned());
            let mut moves = 0;
            let mut after = Value::Null;
            let mut linked = 0;
            loop {
                let mut variables = variables.clone();
                variables["after"] = after;
                let data = app.data(key, HISTORY, variables).await;
                let history = &data["ordersBalances"][n]["history"];
                for edge in history["edges"].as_array().unwrap() {
                    let m = &edge["node"];
                    let before = (m["balanceBefore"].as_str().unwrap(), m["availableBefore"].as_str().unwrap());
                    assert_eq!(dec(before.0), dec(&last.0), "{owner} at {}", m["position"]);
                    assert_eq!(dec(before.1), dec(&last.1), "{owner} at {}", m["position"]);
                    last = (
                        m["balanceAfter"].as_str().unwrap().to_owned(),
                        m["availableAfter"].as_str().unwrap().to_owned(),
                    );
                    moves += 1;
                    linked += usize::from(m["orderId"].is_string());
                }
                if history["pageInfo"]["hasNextPage"] != json!(true) {
                    break;
                }
                after = history["pageInfo"]["endCursor"].clone();
            }
            assert!(moves > 3 && linked > 0, "{owner} {n}: {moves} movements, {linked} of orders");
            assert_eq!(dec(&last.0), dec(account["balance"].as_str().unwrap()));
            let code = account["code"].as_str().unwrap();
            assert_eq!(dec(&last.0), balances[code], "{code}");
        }
    }

    // Statistics, as the read model counts them.
    let stats = "query($by: OrderStatsBy!, $store: String, $trader: String) { orderStats(by: $by, storeId: $store, \
                 traderId: $trader) { storeId traderId currency count completed decided conversion turnover \
                 platformShare byStatus { status count } } }";
    let data = app.data("store", stats, json!({"by": "store", "store": "s1"})).await;
    let expected = projections::orders::stats(
        &mut conn,
        StatsBy::Store,
        &OrderFilter { store_id: Some("s1".into()), ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(expected.len(), 1);
    let (got, want) = (&data["orderStats"][0], &expected[0]);
    assert_eq!(
        (got["storeId"].as_str(), got["count"].as_i64(), got["completed"].as_i64(), got["decided"].as_i64()),
        (Some("s1"), Some(want.count), Some(want.completed), Some(want.decided))
    );
    assert_eq!(got["conversion"], json!(want.conversion().unwrap().to_string()));
    assert_eq!(dec(got["turnover"].as_str().unwrap()), want.turnover);
    assert_eq!(got["byStatus"].as_array().unwrap().len(), want.by_status.len());
    let data = app.data("operator", stats, json!({"by": "trader"})).await;
    let traders: Vec<&str> =
        data["orderStats"].as_array().unwrap().iter().map(|r| r["traderId"].as_str().unwrap()).collect();
    assert_eq!(traders, ["t1", "t2"]);

    // Scopes: refused, naming the permission, for everything that is not the key's own.
    let orders =
        "query($store: String, $trader: String) { orders(storeId: $store, traderId: $trader) { edges { cursor } } }";
    let balances_of = "query($owner: OrdersOwner!, $id: String) { ordersBalances(owner: $owner, id: $id, currency: \"USDT\") { code } }";
    let refusals = [
        ("store", orders, json!({"store": "s2"}), "orders:read:s2"),
        ("store", orders, json!({}), "orders:read"),
        ("store", orders, json!({"trader": "t1"}), "orders:read:t1"),
        ("trader", orders, json!({"store": "s1"}), "orders:read:s1"),
        ("store", balances_of, json!({"owner": "store", "id": "s2"}), "orders:read:s2"),
        ("store", balances_of, json!({"owner": "platform"}), "orders:read"),
        ("trader", balances_of, json!({"owner": "trader", "id": "t2"}), "orders:read:t2"),
        ("store", stats, json!({"by": "trader"}), "orders:read"),
        ("trader", stats, json!({"by": "store", "store": "s2"}), "orders:read:s2"),
        ("accounts", orders, json!({"store": "s1"}), "orders:read"),
    ];
    for (key, query, variables, permission) in refusals {
        let refused = app.refused(key, query, variables.clone()).await;
        assert_eq!(refused, ("forbidden".to_owned(), permission.to_owned()), "{key} {variables}");
    }

    // Arguments out of shape: a clear error, never an internal one.
    for (query, variables) in [
        ("{ orders(minAmount: \"lots\") { edges { cursor } } }", json!({})),
        ("{ orders(from: \"2026-02-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { edges { cursor } } }", json!({})),
        ("{ orders(minAmount: \"10\", maxAmount: \"9\") { edges { cursor } } }", json!({})),
        ("{ orders(after: \"yesterday\") { edges { cursor } } }", json!({})),
        ("{ ordersBalances(owner: store, currency: \"USDT\") { code } }", json!({})),
        ("{ ordersBalances(owner: platform, id: \"x\", currency: \"USDT\") { code } }", json!({})),
        ("{ ordersBalances(owner: platform, currency: \"dollars\") { code } }", json!({})),
    ] {
        let (code, _) = app.refused("operator", query, variables).await;
        assert_eq!(code, "invalid_argument", "{query}");
    }

    drop(app);
    drop(conn);
    stop.send(true).unwrap();
    runner.await.unwrap();
    drop(ledger);
    writer.await.unwrap();
    pool.close().await;
    db.drop_database().await;
}
