//! `GET /v1/orders` over the orders read model: a real writer, the read model's runner and
//! Postgres, the router driven with `oneshot`. Keyset pages neither repeat nor skip an order,
//! the filters select what the read model holds, a key scoped to a store or a trader is refused
//! every other's orders and the unfiltered list, bad parameters are 400 or 422 problems with a
//! stable code, and without the read model the answer is 503.
//!
//! The reader is the test's own adapter over `projections::orders`, as `ledger up` equips the
//! API with one (`ledger/src/order_reads.rs`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::orders_list::{ListCursor, Listing, OrderListItem, OrderListQuery, OrdersReader};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_core::orders::Command;
use ledger_core::orders::command::{CreateOrder, Sealed, Terms, UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::{AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount};
use ledger_core::{OrderId, TransferId};
use ledger_store::keys::create_key;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::Model;
use projections::orders::{OrderCursor, OrderFilter};
use rust_decimal::Decimal;
use serde_json::Value;
use test_support::fresh_database;
use time::OffsetDateTime;
use tower::ServiceExt;
use uuid::Uuid;

struct ReadModelOrders(sqlx::PgPool);

impl OrdersReader for ReadModelOrders {
    fn list(&self, q: OrderListQuery) -> Listing<'_> {
        Box::pin(async move {
            let after = q.after.map(|c| OrderCursor {
                created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.created_at_micros) * 1000).unwrap(),
                created_position: c.created_position,
            });
            let filter = OrderFilter {
                store_id: q.store_id,
                trader_id: q.trader_id,
                status: q.status.map(str::to_owned),
                from: q.from,
                to: q.to,
                min_amount: q.min_amount,
                max_amount: q.max_amount,
                external_order_id: q.external_order_id,
            };
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let rows =
                projections::orders::orders(&mut conn, &filter, after, q.limit).await.map_err(|e| e.to_string())?;
            let time = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
            Ok(rows
                .into_iter()
                .map(|r| {
                    let cursor = ListCursor {
                        created_at_micros: (r.created_at.unix_timestamp_nanos() / 1000) as i64,
                        created_position: r.created_position,
                    };
                    let item = OrderListItem {
                        id: r.id,
                        store_id: r.store_id,
                        kind: r.kind,
                        status: r.status,
                        external_order_id: r.external_order_id,
                        amount: r.amount,
                        currency: r.currency,
                        method: r.method,
                        requested_trader_id: r.requested_trader,
                        rate: r.rate,
                        settlement_amount: r.settlement_amount,
                        settlement_currency: r.settlement_currency,
                        store_fee_rate: r.store_fee_rate,
                        trader_id: r.trader_id,
                        requisite_id: r.requisite_id,
                        requisite_masked: r.masked,
                        trader_fee_rate: r.trader_fee_rate,
                        store_fee: r.store_fee,
                        trader_reward: r.trader_reward,
                        platform_share: r.platform_share,
                        hold_transfer_id: r.hold_transfer,
                        reversal_transfer_id: r.reversal_transfer,
                        expires_at: r.expires_at.map(time),
                        reason: r.reason,
                        dispute_upheld: r.upheld,
                        created_at: time(r.created_at),
                        updated_at: time(r.updated_at),
                        completed_at: r.completed_at.map(time),
                        created_position: r.created_position,
                        position: r.position,
                    };
                    (cursor, item)
                })
                .collect())
        })
    }
}

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

/// Stores s1 and s2, traders t1 and t2 with a card and a funded deposit each, and twelve
/// pay-ins: s2's every third, t2 asked for every fourth; some completed, some cancelled.
async fn workload(ledger: &LedgerHandle) -> usize {
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
    for id in ["s1", "s2"] {
        let store = UpsertStore {
            id: id.into(),
            name: format!("Store {id}"),
            fee: dec("0.03"),
            settlement_currency: usdt(),
            callback_url: None,
            secret: sealed(id),
        };
        submit(ledger, Command::UpsertStore(Box::new(store))).await;
    }
    for (id, priority) in [("t1", 1), ("t2", 2)] {
        let trader = UpsertTrader {
            id: id.into(),
            fee: dec("0.01"),
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
    let orders = 12;
    for n in 0..orders {
        let id = OrderId(Uuid::from_u128(0x0dd0 + n as u128));
        let create = CreateOrder {
            id,
            store: if n % 3 == 2 { "s2" } else { "s1" }.into(),
            kind: ledger_core::orders::OrderKind::PayIn,
            external_order_id: format!("ext-{n}"),
            amount: Decimal::new(100_000 + 10_000 * n as i64, 2),
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
            1 => submit(ledger, Command::Cancel { id, reason: Some("changed my mind".into()) }).await,
            _ => {}
        }
    }
    orders
}

struct App {
    router: Router,
    bare: Router,
    keys: std::collections::HashMap<&'static str, String>,
}

impl App {
    async fn get(&self, key: Option<&str>, path: &str) -> (StatusCode, Value) {
        self.get_from(&self.router, key, path).await
    }

    async fn get_from(&self, router: &Router, key: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = Request::get(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {}", self.keys[key]));
        }
        let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        if !status.is_success() {
            assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{path}: {status}");
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// Every page of `query`, `limit` at a time: the ids in order.
    async fn all(&self, key: &str, query: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
            let (status, page) = self.get(Some(key), &format!("/v1/orders?limit={limit}{query}{cursor}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            let orders = page["orders"].as_array().unwrap();
            assert!(orders.len() <= limit);
            ids.extend(orders.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
            match page["next_after"].as_str() {
                Some(next) => {
                    assert_eq!(orders.len(), limit, "only a full page has a next one");
                    after = Some(next.to_owned());
                }
                None => return ids,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_by_keyset_pages_within_the_key_s_scope() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let runner = tokio::spawn(async move {
        let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
        projections::run_reporting(&url, None, &[Model::Orders], follow, stopped, None).await
    });
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (name, permissions) in [
        ("operator", "orders:read"),
        ("store", "orders:read:s1"),
        ("trader", "orders:read:t2"),
        ("any-owner", "orders:read:*"),
        ("accounts", "accounts:read"),
    ] {
        keys.insert(name, create_key(&pool, name, &[permissions.to_owned()]).await.unwrap().1);
    }
    let orders = workload(&ledger).await;
    let head = ledger.view().head();
    let mut conn = pool.acquire().await.unwrap();
    while projections::read::checkpoint(&mut conn, Model::Orders).await.unwrap() < head {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = Arc::new(ReadModelOrders(pool.clone()));
    let app = App {
        router: router(ApiState::new(ledger.clone(), pool.clone()).with_orders_reader(reader)),
        bare: router(ApiState::new(ledger.clone(), pool.clone())),
        keys,
    };

    // Every order once, in keyset order, whatever the page size; as the read model holds them.
    let all = projections::orders::orders(&mut conn, &OrderFilter::default(), None, 1000).await.unwrap();
    assert_eq!(all.len(), orders);
    let ids = |rows: Vec<projections::orders::OrderRow>| rows.into_iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    let everyone = ids(all.clone());
    for limit in [1, 2, 5, 12, 1000] {
        assert_eq!(app.all("operator", "", limit).await, everyone, "by {limit}");
    }
    let (_, page) = app.get(Some("operator"), "/v1/orders?external_order_id=ext-7").await;
    assert_eq!(page["orders"].as_array().map(Vec::len), Some(1), "{page}");
    let shown = &page["orders"][0];
    let row = all.iter().find(|r| r.external_order_id == "ext-7").unwrap();
    assert_eq!(
        (shown["id"].as_str(), shown["store_id"].as_str(), shown["amount"].as_str(), shown["status"].as_str()),
        (Some(row.id.to_string().as_str()), Some("s1"), Some("1700.00"), Some("cancelled"))
    );
    assert_eq!((shown["trader_id"].as_str(), shown["reason"].as_str()), (Some("t2"), Some("changed my mind")));
    assert_eq!(shown["settlement_amount"].as_str(), Some(row.settlement_amount.to_string().as_str()));
    assert_eq!(shown["store_fee"].as_str(), row.store_fee.map(|f| f.to_string()).as_deref());

    // Each filter selects what the read model selects.
    let (t0, t1) = (all[3].created_at, all[8].created_at);
    let rfc = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let cases: Vec<(String, OrderFilter)> = vec![
        ("&store_id=s2".into(), OrderFilter { store_id: Some("s2".into()), ..Default::default() }),
        ("&trader_id=t2".into(), OrderFilter { trader_id: Some("t2".into()), ..Default::default() }),
        ("&status=completed".into(), OrderFilter { status: Some("completed".into()), ..Default::default() }),
        (
            "&min_amount=1100&max_amount=1500.00".into(),
            OrderFilter { min_amount: Some(dec("1100")), max_amount: Some(dec("1500")), ..Default::default() },
        ),
        (
            format!("&from={}&to={}", rfc(t0).replace('+', "%2B"), rfc(t1).replace('+', "%2B")),
            OrderFilter { from: Some(t0), to: Some(t1), ..Default::default() },
        ),
        (
            "&trader_id=t1&status=completed".into(),
            OrderFilter { trader_id: Some("t1".into()), status: Some("completed".into()), ..Default::default() },
        ),
    ];
    for (query, filter) in cases {
        let expected = ids(projections::orders::orders(&mut conn, &filter, None, 1000).await.unwrap());
        assert!(!expected.is_empty(), "{query} selects something");
        assert!(expected.len() < orders, "{query} leaves something out");
        assert_eq!(app.all("operator", &query, 2).await, expected, "{query}");
    }

    // Scopes: a store's key reads its own orders, with any trader's filter beside; a trader's
    // key its own, with any store's; neither the other's, nor the unfiltered list.
    let s1 = ids(projections::orders::orders(
        &mut conn,
        &OrderFilter { store_id: Some("s1".into()), ..Default::default() },
        None,
        100,
    )
    .await
    .unwrap());
    assert_eq!(app.all("store", "&store_id=s1", 3).await, s1);
    assert!(!app.all("store", "&store_id=s1&trader_id=t2", 3).await.is_empty());
    assert!(!app.all("trader", "&trader_id=t2&store_id=s1", 3).await.is_empty());
    assert!(!app.all("any-owner", "&store_id=s2", 3).await.is_empty());
    let refusals = [
        ("store", "/v1/orders?store_id=s2", "orders:read:s2"),
        ("store", "/v1/orders", "orders:read"),
        ("store", "/v1/orders?trader_id=t2", "orders:read:t2"),
        ("trader", "/v1/orders?store_id=s1", "orders:read:s1"),
        ("trader", "/v1/orders?status=pending", "orders:read"),
        ("any-owner", "/v1/orders", "orders:read"),
        ("accounts", "/v1/orders?store_id=s1", "orders:read"),
    ];
    for (key, path, permission) in refusals {
        let (status, problem) = app.get(Some(key), path).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{key} {path}");
        assert!(problem["detail"].as_str().unwrap().ends_with(permission), "{key} {path}: {problem}");
    }
    let (status, problem) = app.get(None, "/v1/orders").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    // Each refusal of a key is an audit entry naming the permission it lacked.
    let denied: Vec<String> = sqlx::query_scalar(
        "SELECT payload::jsonb -> 'entry' ->> 'subject' FROM events WHERE event_type = 'AuditRecorded' \
         AND payload::jsonb -> 'entry' ->> 'action' = 'access.denied' ORDER BY position",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(denied, refusals.map(|(_, _, permission)| permission));

    // Bad parameters: a stable code, never a 500.
    let bad = [
        ("/v1/orders?limit=0", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?limit=1001", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?limit=many", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?after=yesterday", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?after=1_-1", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?after=999999999999999999999_1", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?min_amount=lots", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?max_amount=1e5", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?status=lost", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?from=yesterday", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?colour=red", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/orders?external_order_id=%07", StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "/v1/orders?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
        ),
        ("/v1/orders?min_amount=10&max_amount=9.99", StatusCode::UNPROCESSABLE_ENTITY, "invalid_range"),
    ];
    for (path, status, code) in bad {
        let (got, problem) = app.get(Some("operator"), path).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{path}: {problem}");
    }
    // The last order's cursor, or one past everything: an empty last page.
    let (_, page) = app.get(Some("operator"), "/v1/orders?after=99999999999999999_0").await;
    assert_eq!((page["orders"].as_array().map(Vec::len), &page["next_after"]), (Some(0), &Value::Null));

    // Without the read model: 503, after the key's checks.
    let (status, problem) = app.get_from(&app.bare, Some("operator"), "/v1/orders").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("read_model_unavailable")));
    let (status, _) = app.get_from(&app.bare, Some("store"), "/v1/orders").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    drop(app);
    drop(conn);
    stop.send(true).unwrap();
    runner.await.unwrap();
    drop(ledger);
    writer.await.unwrap();
    pool.close().await;
    db.drop_database().await;
}
