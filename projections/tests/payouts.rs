//! The payouts read model against a real Postgres: for a seeded workload (requests, both gates,
//! a payout that fails, statuses paid and rejected), every request and payout row equals the
//! writer's own state, each sent payout has its cash-payment-fact, each client's history chains
//! the payout account's balance, the filters hold, and a rebuild is identical.

use std::collections::HashMap;

use ledger_core::payouts::state::{Payout, Request};
use ledger_core::payouts::{Command, ErpStatus, PAYOUT_KIND, REQUEST_KIND};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, PayoutId,
    PayoutRequestId, TransferId,
};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::payouts::{self as rm, PayoutFilter};
use projections::{Model, rebuild};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::fresh_database;
use uuid::Uuid;

async fn checksum(conn: &mut PgConnection, view: &str, order: &str) -> String {
    let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') FROM {view} t");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await.unwrap()
}

const VIEWS: [(&str, &str); 4] = [
    ("rm_payout_requests", "id"),
    ("rm_payouts", "id"),
    ("rm_cash_payment_facts", "id"),
    ("rm_payout_history", "position"),
];

async fn ledger_command(ledger: &LedgerHandle, command: ledger_core::ledger::Command) {
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap();
}

fn transfer(debit: AccountId, credit: AccountId, cents: i64) -> ledger_core::ledger::Command {
    let t = CreateTransfer::simple(
        TransferId(Uuid::new_v4()),
        AccountRef::Id(debit),
        AccountRef::Id(credit),
        Decimal::new(cents, 2),
    );
    ledger_core::ledger::Command::CreateTransfer(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payouts_read_model_equals_the_writer_and_rebuilds_identically() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let open = |n: u128, code: String, kind: AccountKind, metadata: serde_json::Value| OpenAccount {
        id: AccountId(Uuid::from_u128(n)),
        code,
        currency: CurrencyCode::parse("EUR").unwrap(),
        kind,
        limit: BalanceLimit::None,
        metadata,
    };
    let bank = AccountId(Uuid::from_u128(1));
    ledger_command(
        &ledger,
        ledger_core::ledger::Command::OpenAccount(open(1, "bank".into(), AccountKind::Asset, serde_json::Value::Null)),
    )
    .await;
    let clients = 6u128;
    let mut requests = Vec::new();
    for c in 0..clients {
        let client = format!("c{c}");
        for a in 0..2u128 {
            let n = 100 + c * 10 + a;
            let meta = serde_json::json!({"client_id": client, "account_type": "payout"});
            ledger_command(
                &ledger,
                ledger_core::ledger::Command::OpenAccount(open(
                    n,
                    format!("{client}:{a}"),
                    AccountKind::Liability,
                    meta,
                )),
            )
            .await;
            if (c + a) % 3 != 0 {
                ledger_command(&ledger, transfer(bank, AccountId(Uuid::from_u128(n)), 1000 + (c * 100 + a) as i64))
                    .await;
            }
        }
        for r in 0..2u128 {
            let id = PayoutRequestId(Uuid::from_u128(10_000 + c * 10 + r));
            ledger
                .submit(Command::Request { id, client_id: client.clone() }, EventMeta::default())
                .await
                .unwrap()
                .unwrap();
            requests.push(id);
        }
    }
    ledger.submit(Command::PlanNew { limit: 5 }, EventMeta::default()).await.unwrap().unwrap();
    ledger.submit(Command::PlanNew { limit: 100 }, EventMeta::default()).await.unwrap().unwrap();
    // One payout's account loses a cent before the ERP gate: that payout fails.
    ledger_command(&ledger, transfer(AccountId(Uuid::from_u128(111)), bank, 1)).await;
    ledger.submit(Command::SendNew { limit: 100 }, EventMeta::default()).await.unwrap().unwrap();
    let view = ledger.view();
    let payout_of =
        |request: PayoutRequestId, account: u128| PayoutId::of(request, AccountId(Uuid::from_u128(account)));
    let paid = payout_of(requests[0], 101);
    let rejected = payout_of(requests[4], 120);
    let status = |payout, status| Command::Status { payout, status, reason: Some("from the ERP".into()) };
    ledger.submit(status(paid, ErpStatus::Paid), EventMeta::default()).await.unwrap().unwrap();
    ledger.submit(status(rejected, ErpStatus::Rejected), EventMeta::default()).await.unwrap().unwrap();

    // The writer's state, from its committed view.
    let writer_requests: HashMap<Uuid, Request> = requests
        .iter()
        .map(|id| {
            let (row, _) = view.entity(id.0).unwrap();
            assert_eq!(row.kind, REQUEST_KIND);
            (id.0, row.parse().unwrap())
        })
        .collect();
    let writer_payouts: HashMap<Uuid, Payout> = writer_requests
        .values()
        .flat_map(|r| r.payouts.iter())
        .map(|id| {
            let (row, _) = view.entity(id.0).unwrap();
            assert_eq!(row.kind, PAYOUT_KIND);
            (id.0, row.parse().unwrap())
        })
        .collect();
    let balances: HashMap<Uuid, Decimal> = writer_payouts
        .values()
        .map(|p| (p.account.0, view.account(&AccountRef::Id(p.account)).unwrap().account.balance()))
        .collect();
    drop(ledger);
    task.await.unwrap();

    rebuild(&db.url, Model::Payouts, &mut std::io::sink()).await.unwrap();
    let mut conn = db.connect().await;
    let all = PayoutFilter::default();
    let rows = rm::requests(&mut conn, &all, None, 1000).await.unwrap();
    assert_eq!(rows.len(), requests.len());
    for row in &rows {
        let r = &writer_requests[&row.id];
        let status = match r.status {
            ledger_core::payouts::state::RequestStatus::New => "new",
            ledger_core::payouts::state::RequestStatus::Done => "done",
            ledger_core::payouts::state::RequestStatus::Error => "error",
        };
        assert_eq!((row.client_id.as_str(), row.status.as_str(), &row.error), (r.client_id.as_str(), status, &r.error));
        assert_eq!(row.payouts as usize, r.payouts.len());
    }
    let rows = rm::payouts(&mut conn, &all, None, 1000).await.unwrap();
    assert_eq!(rows.len(), writer_payouts.len());
    assert!(rows.len() >= 6, "the workload makes payouts: {}", rows.len());
    let mut statuses = std::collections::BTreeSet::new();
    for row in &rows {
        let p = &writer_payouts[&row.id];
        statuses.insert(row.status.clone());
        assert_eq!(
            (row.status.as_str(), row.amount, row.account_id),
            (p.status.as_str(), p.amount, p.account.0),
            "{}",
            row.id
        );
        assert_eq!((row.cash_payment_fact, &row.reason), (p.cash_payment_fact, &p.reason));
    }
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), ["failed", "paid", "rejected", "sent"]);
    let facts = rm::cash_payment_facts(&mut conn, &all, None, 1000).await.unwrap();
    let sent = writer_payouts.values().filter(|p| p.cash_payment_fact.is_some()).count();
    assert_eq!(facts.len(), sent);
    for f in &facts {
        assert_eq!(Some(f.id), writer_payouts[&f.payout_id].cash_payment_fact);
    }
    // Each client's history chains the payout accounts' balances to what the writer holds.
    for c in 0..clients {
        let history = rm::history(&mut conn, &format!("c{c}"), None, 1000).await.unwrap();
        let mut last: HashMap<Uuid, Decimal> = HashMap::new();
        for h in &history {
            if let Some(before) = last.get(&h.account_id) {
                assert_eq!(*before, h.balance_before, "c{c} at {}", h.position);
            }
            let moved = if h.action == "sent" { -h.amount } else { h.amount };
            assert_eq!(h.balance_before + moved, h.balance_after);
            last.insert(h.account_id, h.balance_after);
        }
        for (account, after) in last {
            assert_eq!(balances[&account], after, "c{c}");
        }
    }
    let returned = rm::history(&mut conn, "c2", None, 10).await.unwrap();
    assert_eq!(returned.iter().map(|h| h.action.as_str()).collect::<Vec<_>>(), ["sent", "returned"]);
    // Filters and paging.
    let c1 = PayoutFilter { client_id: Some("c1".into()), ..PayoutFilter::default() };
    assert_eq!(rm::requests(&mut conn, &c1, None, 100).await.unwrap().len(), 2);
    let failed = PayoutFilter { status: Some("failed".into()), ..PayoutFilter::default() };
    assert_eq!(rm::payouts(&mut conn, &failed, None, 100).await.unwrap().len(), 1);
    let first = rm::requests(&mut conn, &all, None, 3).await.unwrap();
    let next = rm::requests(&mut conn, &all, Some(first[2].created_position), 100).await.unwrap();
    assert_eq!(first.len() + next.len(), requests.len());
    let later = PayoutFilter {
        from: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        ..PayoutFilter::default()
    };
    assert!(rm::payouts(&mut conn, &later, None, 100).await.unwrap().is_empty());
    assert!(rm::cash_payment_facts(&mut conn, &later, None, 100).await.unwrap().is_empty());

    let mut before = Vec::new();
    for (view, order) in VIEWS {
        before.push(checksum(&mut conn, view, order).await);
    }
    rebuild(&db.url, Model::Payouts, &mut std::io::sink()).await.unwrap();
    for ((view, order), before) in VIEWS.into_iter().zip(before) {
        assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
    }
    drop(conn);
    db.drop_database().await;
}
