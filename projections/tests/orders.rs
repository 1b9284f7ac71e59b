//! The orders read model against a real Postgres, fed by a real writer: for a workload of
//! pay-ins and pay-outs completed, cancelled, failed, left pending, in review, denied, disputed,
//! upheld and reversed, every row equals the writer's own state of its order, every movement of
//! an order's money is linked to it as the log says, each account's history chains its balances
//! before and after exactly up to the writer's balance, the filters and keyset pages hold (no
//! order twice, none missing), the statistics equal a simple count of the writer's orders, and a
//! rebuild (its holds and settlements in one page) equals the live build (each in pages of their
//! own).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use ledger_core::orders::command::{CreateOrder, Sealed, Terms, UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::orders::state::Order;
use ledger_core::orders::{Command, ORDER_KIND, OrderKind, Outcome, Status};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, OrderId, TransferId,
};
use ledger_store::sql::to_time;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::orders::{self as rm, OrderFilter, OrderRow, Owner, StatsBy};
use projections::{Model, rebuild};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::fresh_database;
use uuid::Uuid;

use common::{caught_up_in, checksum, indexes};

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
    let what = format!("{command:?}");
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap_or_else(|r| panic!("{what}: {r:?}"));
}

async fn ledger_command(ledger: &LedgerHandle, command: ledger_core::ledger::Command) {
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap();
}

/// What becomes of an order of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Complete,
    Cancel,
    Fail,
    Pending,
    Reverse,
    Uphold,
    Disputed,
    Review,
    Deny,
}

struct Planned {
    id: OrderId,
    store: &'static str,
    kind: OrderKind,
    fate: Fate,
}

fn terms(fate: Fate) -> Terms {
    Terms {
        rate: Some(dec("92.5")),
        review_over: (fate == Fate::Review).then(|| dec("10")),
        deny_over: (fate == Fate::Deny).then(|| dec("10")),
        timeout_seconds: 3600,
        dispute_window_hours: 72,
    }
}

/// Stores s1 (fee 3%) and s2 (2%), traders t1 (1%, first by priority) and t2 (4%: above s2's
/// fee, so the platform's share of s2's orders through t2 is negative), each with a RUB card
/// and 5,000 USDT on its deposit; then the orders, each created, then moved to its fate.
async fn workload(ledger: &LedgerHandle, catch_up: impl AsyncFnOnce()) -> Vec<Planned> {
    let bank = AccountId(Uuid::from_u128(1));
    let open = OpenAccount {
        id: bank,
        code: "bank:usdt".into(),
        currency: usdt(),
        kind: AccountKind::Asset,
        limit: BalanceLimit::None,
        metadata: serde_json::Value::Null,
    };
    ledger_command(ledger, ledger_core::ledger::Command::OpenAccount(open)).await;
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
    for (id, fee, priority) in [("t1", "0.01", 1), ("t2", "0.04", 2)] {
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
            id: format!("{id}-card"),
            method: "card".into(),
            bank: "Bank".into(),
            currency: CurrencyCode::parse("RUB").unwrap(),
            min_amount: dec("100"),
            max_amount: dec("1000000"),
            daily_limit: dec("100000000"),
            enabled: true,
            details: sealed(id),
            masked: format!("•••• {id}"),
        };
        submit(ledger, Command::UpsertRequisite(Box::new(requisite))).await;
        let deposit = ledger_core::orders::deposit_account(id, &usdt()).0;
        let fund = CreateTransfer::simple(
            TransferId(Uuid::new_v4()),
            AccountRef::Id(bank),
            AccountRef::Id(deposit),
            dec("5000"),
        );
        ledger_command(ledger, ledger_core::ledger::Command::CreateTransfer(fund)).await;
    }
    let fates = [Fate::Complete, Fate::Cancel, Fate::Reverse, Fate::Fail, Fate::Uphold, Fate::Pending];
    let mut planned: Vec<Planned> = (0..24u128)
        .map(|n| Planned {
            id: OrderId(Uuid::from_u128(0x0dd0_0000 + n)),
            store: if n % 3 == 2 { "s2" } else { "s1" },
            kind: OrderKind::PayIn,
            fate: fates[n as usize % fates.len()],
        })
        .collect();
    for (n, fate) in [(100, Fate::Review), (101, Fate::Deny), (102, Fate::Disputed)] {
        planned.push(Planned {
            id: OrderId(Uuid::from_u128(0x0dd0_0000 + n)),
            store: "s1",
            kind: OrderKind::PayIn,
            fate,
        });
    }
    let create = |p: &Planned, n: usize| {
        // Cents that divide nothing evenly; every fourth order asks for t2.
        let amount = Decimal::new(100_000 + 13_757 * n as i64, 2);
        Command::Create(Box::new(CreateOrder {
            id: p.id,
            store: p.store.into(),
            kind: p.kind,
            external_order_id: format!("ext-{n}"),
            amount,
            currency: CurrencyCode::parse("RUB").unwrap(),
            method: Some("card".into()),
            trader: (n % 4 == 2).then(|| "t2".to_owned()),
            callback_url: None,
            terms: terms(p.fate),
        }))
    };
    for (n, p) in planned.iter().enumerate() {
        submit(ledger, create(p, n)).await;
    }
    // Every hold is applied before any settles it: the live build meets each settlement in a
    // page after its hold's.
    catch_up().await;
    for p in &planned {
        let id = p.id;
        let reason = |r: &str| Some(r.to_owned());
        let steps: Vec<Command> = match p.fate {
            Fate::Complete => vec![Command::Complete { id }],
            Fate::Cancel => vec![Command::Cancel { id, reason: reason("the client left") }],
            Fate::Fail => vec![Command::Fail { id, reason: None }],
            Fate::Pending | Fate::Deny => vec![],
            Fate::Review => vec![Command::Approve { id }, Command::Complete { id }],
            Fate::Disputed => vec![Command::Complete { id }, Command::Dispute { id, reason: "not received".into() }],
            Fate::Reverse | Fate::Uphold => vec![
                Command::Complete { id },
                Command::Dispute { id, reason: "not received".into() },
                Command::Resolve {
                    id,
                    outcome: if p.fate == Fate::Reverse { Outcome::Reverse } else { Outcome::Uphold },
                    reason: "checked with the bank".into(),
                },
            ],
        };
        for command in steps {
            submit(ledger, command).await;
        }
    }
    // Pay-outs, now that s1 has a balance: one completed, one cancelled.
    for (n, fate) in [(200, Fate::Complete), (201, Fate::Cancel)] {
        let p = Planned { id: OrderId(Uuid::from_u128(0x0dd0_0000 + n)), store: "s1", kind: OrderKind::PayOut, fate };
        submit(ledger, create(&p, planned.len())).await;
        let command = match fate {
            Fate::Complete => Command::Complete { id: p.id },
            _ => Command::Cancel { id: p.id, reason: None },
        };
        submit(ledger, command).await;
        planned.push(p);
    }
    planned
}

const VIEWS: [(&str, &str); 2] = [("rm_orders", "id"), ("rm_order_movements", "position")];

fn same_time(row: Option<time::OffsetDateTime>, writer: Option<ledger_core::Timestamp>) -> bool {
    row == writer.map(to_time)
}

/// The row equals the writer's order, field by field.
fn check_row(row: &OrderRow, o: &Order) {
    let a = o.assignment.as_ref();
    assert_eq!(row.status, o.status.as_str(), "{}", o.id);
    assert_eq!(
        (&row.store_id, row.kind.as_str(), &row.external_order_id, row.amount, row.currency.as_str()),
        (&o.store, ledger_store::sql::text(&o.kind).as_str(), &o.external_order_id, o.amount, o.currency.as_str())
    );
    assert_eq!((&row.method, &row.requested_trader, row.rate), (&o.method, &o.requested_trader, o.rate));
    assert_eq!(
        (row.settlement_amount, row.settlement_currency.as_str(), row.store_fee_rate),
        (o.settlement_amount, o.settlement_currency.as_str(), o.store_fee)
    );
    assert_eq!(row.trader_id.as_ref(), a.map(|a| &a.trader));
    assert_eq!(row.requisite_id.as_ref(), a.map(|a| &a.requisite));
    assert_eq!(row.masked.as_ref(), a.map(|a| &a.masked));
    assert_eq!(row.trader_fee_rate, a.map(|a| a.trader_fee));
    assert_eq!(
        (row.store_fee, row.trader_reward, row.platform_share),
        (a.map(|a| a.split.store_fee), a.map(|a| a.split.trader_reward), a.map(|a| a.split.platform))
    );
    assert_eq!(row.hold_transfer, a.map(|a| a.hold.0));
    assert!(same_time(row.expires_at, a.map(|a| a.expires_at)));
    assert_eq!((row.reversal_transfer, &row.reason, row.upheld), (o.reversal.map(|r| r.0), &o.reason, o.upheld));
    assert_eq!((row.created_at, row.updated_at), (to_time(o.created_at), to_time(o.at)));
    assert!(same_time(row.completed_at, o.completed_at));
}

/// Every page of a list, `limit` at a time, following the cursor.
async fn all_pages(conn: &mut PgConnection, filter: &OrderFilter, limit: i64) -> Vec<OrderRow> {
    let mut rows: Vec<OrderRow> = Vec::new();
    let mut after = None;
    loop {
        let page = rm::orders(conn, filter, after, limit).await.unwrap();
        assert!(page.len() as i64 <= limit);
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        // The cursor's text form reads back as itself.
        assert_eq!(rm::OrderCursor::parse(&last.cursor().to_string()), Some(last.cursor()));
        rows.extend(page);
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_read_model_equals_the_writer_chains_balances_and_rebuilds_identically() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    // The live build: a runner following the log as the workload goes on.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let runner = tokio::spawn(async move {
        let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
        projections::run_reporting(&url, None, &[Model::Balances, Model::Orders], follow, stopped, None).await
    });
    let (mut conn, mut other) = (db.connect().await, db.connect().await);
    let planned = workload(&ledger, async || caught_up_in(&mut conn, &mut other, &[Model::Orders]).await).await;
    let view = ledger.view();
    let writer: HashMap<Uuid, Order> = planned
        .iter()
        .map(|p| {
            let (row, _) = view.entity(p.id.0).unwrap();
            assert_eq!(row.kind, ORDER_KIND);
            (p.id.0, row.parse().unwrap())
        })
        .collect();
    let accounts: Vec<(&str, AccountId)> = [
        ("s1", rm::accounts_of(Owner::Store("s1"), &usdt())),
        ("s2", rm::accounts_of(Owner::Store("s2"), &usdt())),
        ("t1", rm::accounts_of(Owner::Trader("t1"), &usdt())),
        ("t2", rm::accounts_of(Owner::Trader("t2"), &usdt())),
        ("platform", rm::accounts_of(Owner::Platform, &usdt())),
    ]
    .into_iter()
    .flat_map(|(who, accounts)| accounts.into_iter().map(move |(_, id, _)| (who, id)))
    .collect();
    let balances: HashMap<AccountId, (Decimal, Decimal)> = accounts
        .iter()
        .map(|(_, id)| {
            let a = view.account(&AccountRef::Id(*id)).unwrap().account;
            (*id, (a.balance(), a.available()))
        })
        .collect();
    drop(ledger);
    task.await.unwrap();
    caught_up_in(&mut conn, &mut other, &[Model::Balances, Model::Orders]).await;
    stop.send(true).unwrap();
    runner.await.unwrap();

    // Every status of the table is there.
    let statuses: BTreeSet<&str> = writer.values().map(|o| o.status.as_str()).collect();
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["cancelled", "completed", "denied", "disputed", "failed", "pending", "reversed"]
    );
    assert!(writer.values().any(|o| o.upheld) && writer.values().any(|o| o.kind == OrderKind::PayOut));
    assert!(writer.values().any(|o| o.assignment.as_ref().is_some_and(|a| a.split.platform.is_sign_negative())));

    // Rows equal the writer's orders.
    let all = all_pages(&mut conn, &OrderFilter::default(), 4).await;
    assert_eq!(all.len(), writer.len());
    for row in &all {
        check_row(row, &writer[&row.id]);
        assert_eq!(rm::order(&mut conn, row.id).await.unwrap().as_ref(), Some(row));
    }
    // In keyset order, each once.
    let keys: Vec<(time::OffsetDateTime, i64)> = all.iter().map(|r| (r.created_at, r.created_position)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");

    // Every movement of an order's money, as the log says.
    let hold_of: HashMap<TransferId, Uuid> = writer.keys().map(|id| (OrderId(*id).hold_transfer(), *id)).collect();
    let reversal_of: HashMap<TransferId, Uuid> =
        writer.keys().map(|id| (OrderId(*id).reversal_transfer(), *id)).collect();
    let mut expected: Vec<(i64, Uuid, Uuid, String)> = Vec::new();
    let mut after = 0;
    loop {
        let page = ledger_store::sql::events_page(&mut conn, after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for record in &page {
            use ledger_core::ledger::Event as E;
            let event = record.event().unwrap();
            let Some(event) = event.ledger() else { continue };
            let (id, action) = match event {
                E::PendingTransferCreated(e) => (e.id, "hold"),
                E::PendingTransferPosted(e) => (e.id, "completion"),
                E::PendingTransferVoided(e) | E::PendingTransferExpired(e) => (e.id, "release"),
                E::TransferPosted(e) => (e.id, "reversal"),
                _ => continue,
            };
            let order = if action == "reversal" { reversal_of.get(&id) } else { hold_of.get(&id) };
            if let Some(order) = order {
                expected.push((record.position, *order, id.0, action.to_owned()));
            }
        }
    }
    let links: Vec<(i64, Uuid, Uuid, String)> =
        sqlx::query_as("SELECT position, order_id, transfer_id, action FROM rm_order_movements ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(links, expected);
    let actions: BTreeSet<&str> = links.iter().map(|l| l.3.as_str()).collect();
    assert_eq!(actions.into_iter().collect::<Vec<_>>(), ["completion", "hold", "release", "reversal"]);

    // Each account's history chains: before is the after of the movement before (zero first),
    // and the last after is the writer's balance.
    for (who, account) in &accounts {
        let mut moves = Vec::new();
        let mut after = None;
        loop {
            let page = rm::movements(&mut conn, account.0, after, 3).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            moves.extend(page);
        }
        assert!(moves.len() >= 2, "{who}: {moves:?}");
        let mut last = (Decimal::ZERO, Decimal::ZERO);
        for m in &moves {
            assert_eq!((m.balance_before, m.available_before), last, "{who} at {}", m.position);
            last = (m.balance_after, m.available_after);
            if let Some(order) = m.order_id {
                let link = links.iter().find(|l| l.0 == m.position).unwrap();
                assert_eq!((order, m.action.as_deref()), (link.1, Some(link.3.as_str())));
            }
        }
        assert_eq!(last, balances[account], "{who}");
        // A deposit is funded by an ordinary transfer: a movement of no order.
        if account.0 == ledger_core::orders::deposit_account("t1", &usdt()).0.0 {
            assert_eq!(moves[0].order_id, None);
            assert_eq!(moves[0].balance_after, dec("5000"));
        }
    }

    // Filters, each paged: exactly the writer's orders that match, in keyset order.
    let order_of = |rows: &[OrderRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    let mut by_time: Vec<&Order> = writer.values().collect();
    by_time.sort_by_key(|o| (o.created_at, all.iter().position(|r| r.id == o.id.0)));
    let expect = |keep: &dyn Fn(&Order) -> bool| by_time.iter().filter(|o| keep(o)).map(|o| o.id.0).collect::<Vec<_>>();
    let trader = |o: &Order| o.assignment.as_ref().map(|a| a.trader.clone());
    let (t0, t1) = (all[5].created_at, all[12].created_at);
    let cases: Vec<(OrderFilter, Vec<Uuid>)> = vec![
        (OrderFilter { store_id: Some("s2".into()), ..Default::default() }, expect(&|o| o.store == "s2")),
        (
            OrderFilter { trader_id: Some("t2".into()), ..Default::default() },
            expect(&|o| trader(o).as_deref() == Some("t2")),
        ),
        (
            OrderFilter { status: Some("completed".into()), store_id: Some("s1".into()), ..Default::default() },
            expect(&|o| o.status == Status::Completed && o.store == "s1"),
        ),
        (
            OrderFilter { min_amount: Some(dec("1412.14")), max_amount: Some(dec("2500")), ..Default::default() },
            expect(&|o| o.amount >= dec("1412.14") && o.amount <= dec("2500")),
        ),
        (
            OrderFilter { external_order_id: Some("ext-7".into()), ..Default::default() },
            expect(&|o| o.external_order_id == "ext-7"),
        ),
        (
            OrderFilter { from: Some(t0), to: Some(t1), ..Default::default() },
            expect(&|o| to_time(o.created_at) >= t0 && to_time(o.created_at) < t1),
        ),
        (OrderFilter { store_id: Some("s9".into()), ..Default::default() }, vec![]),
    ];
    for (filter, expected) in cases {
        for limit in [1, 2, 5, 100] {
            let rows = all_pages(&mut conn, &filter, limit).await;
            assert_eq!(order_of(&rows), expected, "{filter:?} by {limit}");
        }
        assert!(!expected.is_empty() || filter.store_id.as_deref() == Some("s9"), "{filter:?} selects something");
    }

    // Statistics: a plain count of the writer's orders, per store and per trader.
    let mut reference: BTreeMap<(Option<String>, bool), rm::StatsRow> = BTreeMap::new();
    for o in writer.values() {
        for (owner, by_store) in [(Some(o.store.clone()), true), (trader(o), false)] {
            let r = reference.entry((owner.clone(), by_store)).or_insert_with(|| rm::StatsRow {
                owner,
                currency: "RUB".into(),
                settlement_currency: "USDT".into(),
                ..Default::default()
            });
            r.count += 1;
            *r.by_status.entry(o.status.as_str().to_owned()).or_default() += 1;
            let decided = !matches!(o.status, Status::Pending | Status::ManualReview | Status::Disputed);
            r.decided += i64::from(decided);
            if o.status == Status::Completed {
                let split = o.assignment.as_ref().unwrap().split;
                r.completed += 1;
                r.turnover += o.amount;
                r.settlement_turnover += o.settlement_amount;
                r.store_fees += split.store_fee;
                r.trader_rewards += split.trader_reward;
                r.platform_share += split.platform;
            }
        }
    }
    for (by, by_store) in [(StatsBy::Store, true), (StatsBy::Trader, false)] {
        let rows = rm::stats(&mut conn, by, &OrderFilter::default()).await.unwrap();
        let wanted: Vec<&rm::StatsRow> =
            reference.iter().filter(|((_, s), _)| *s == by_store).map(|(_, r)| r).collect();
        assert_eq!(rows.iter().collect::<Vec<_>>(), wanted, "{by:?}");
    }
    let s1 = OrderFilter { store_id: Some("s1".into()), ..Default::default() };
    let stats = rm::stats(&mut conn, StatsBy::Store, &s1).await.unwrap();
    assert_eq!(stats.len(), 1);
    let s1_stats = &reference[&(Some("s1".into()), true)];
    assert_eq!(&stats[0], s1_stats);
    assert!(s1_stats.completed > 0 && s1_stats.decided > s1_stats.completed);
    let conversion = Decimal::from(s1_stats.completed) / Decimal::from(s1_stats.decided);
    assert_eq!(stats[0].conversion(), Some(conversion.round_dp(4)));
    // A period with no order: no group.
    let later = OrderFilter { from: Some(t1 + time::Duration::days(1)), ..Default::default() };
    assert!(rm::stats(&mut conn, StatsBy::Trader, &later).await.unwrap().is_empty());

    // A rebuild, every hold and its settlement in one page, equals the live build.
    let mut before = Vec::new();
    for (view, order) in VIEWS {
        before.push(checksum(&mut conn, view, order).await);
    }
    let indexes_before = indexes(&mut conn, 1).await;
    rebuild(&db.url, Model::Orders, &mut std::io::sink()).await.unwrap();
    for ((view, order), before) in VIEWS.into_iter().zip(before) {
        assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
    }
    let orders_indexes = |all: Vec<String>| all.into_iter().filter(|i| i.contains("rm_order")).collect::<Vec<_>>();
    assert_eq!(orders_indexes(indexes(&mut conn, 2).await), orders_indexes(indexes_before));
    drop((conn, other));
    db.drop_database().await;
}
