//! Helpers shared by the read-model tests: a seeded workload, catching up, checksums.

#![allow(dead_code)]

use std::time::Duration;

use ledger_core::ledger::{Command, Event};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, Currencies, CurrencyCode, LedgerState,
    OpenAccount, TransferId,
};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::{Model, status, step};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::TestDatabase;
use uuid::Uuid;

/// A seeded workload of opens, transfers, holds, posts, voids, reversals and freezes.
pub async fn generate(db: &TestDatabase, seed: u64, commands: usize) {
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    generate_with(&ledger, seed, commands).await;
    drop(ledger);
    task.await.unwrap();
}

/// `generate` through a running writer.
pub async fn generate_with(ledger: &LedgerHandle, seed: u64, commands: usize) {
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let accounts: Vec<AccountId> = (0..8).map(|i| AccountId(Uuid::from_u128(0xacc0 + i))).collect();
    for (i, id) in accounts.iter().enumerate() {
        let (kind, limit) = if i < 4 {
            (AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits)
        } else {
            (AccountKind::Asset, BalanceLimit::None)
        };
        let open = OpenAccount {
            id: *id,
            code: format!("acc:{i}"),
            currency: CurrencyCode::parse("EUR").unwrap(),
            kind,
            limit,
            metadata: serde_json::json!({"n": i}),
        };
        ledger.submit(Command::OpenAccount(open), EventMeta::default()).await.unwrap().unwrap();
    }
    let mut transfers: Vec<TransferId> = Vec::new();
    for _ in 0..commands {
        let pick = |n: u64| accounts[n as usize];
        let command = match next(10) {
            0..=4 => {
                let (d, c) = (next(8), next(8));
                let id = TransferId(Uuid::new_v4());
                transfers.push(id);
                Command::CreateTransfer(CreateTransfer {
                    pending: next(3) == 0,
                    timeout_seconds: None,
                    external_ref: Some(format!("ref-{}", next(1000))),
                    metadata: serde_json::json!({"order": next(50)}),
                    ..CreateTransfer::simple(
                        id,
                        AccountRef::Id(pick(d)),
                        AccountRef::Id(pick(c)),
                        Decimal::new(1 + next(5000) as i64, 2),
                    )
                })
            }
            5 | 6 if !transfers.is_empty() => {
                let id = transfers[next(transfers.len() as u64) as usize];
                let amount = (next(2) == 0).then(|| Decimal::new(1 + next(100) as i64, 2));
                Command::PostPendingTransfer { pending_id: id, amount }
            }
            7 if !transfers.is_empty() => {
                Command::VoidPendingTransfer { pending_id: transfers[next(transfers.len() as u64) as usize] }
            }
            8 if !transfers.is_empty() => Command::ReverseTransfer {
                id: TransferId(Uuid::new_v4()),
                transfer_id: transfers[next(transfers.len() as u64) as usize],
                metadata: serde_json::Value::Null,
            },
            _ => {
                let id = pick(next(8));
                if next(2) == 0 {
                    Command::FreezeAccount { id, reason: Some("review".into()) }
                } else {
                    Command::UnfreezeAccount { id, reason: None }
                }
            }
        };
        // Rejections are part of the workload: they must leave no trace in any read model.
        let meta = EventMeta { channel: Some(["pos", "shop", "psp"][next(3) as usize].into()), ..EventMeta::default() };
        ledger.submit(command, meta).await.unwrap().ok();
    }
}

pub async fn catch_up(conn: &mut PgConnection) {
    for model in Model::ALL {
        // The runner creates the projection's tables, then follows the log until stopped.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let url = conn_url(conn).await;
        let handle = tokio::spawn(async move {
            projections::run(
                &url,
                model,
                projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) },
                stop_rx,
            )
            .await
        });
        loop {
            let s = status(conn).await.unwrap();
            // Tables of an older definition are rebuilt before the runner follows the log: a
            // model caught up in its old layout is not done yet.
            let definition: Option<i32> = sqlx::query_scalar("SELECT definition FROM projections WHERE name = $1")
                .bind(model.name())
                .fetch_optional(&mut *conn)
                .await
                .unwrap();
            if s.iter().any(|p| p.name == model.name() && p.lag == 0) && definition == Some(model.definition()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(step(conn, model).await.unwrap(), 0, "caught up");
    }
}

pub async fn conn_url(conn: &mut PgConnection) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut *conn).await.unwrap();
    let admin = std::env::var("DATABASE_URL").unwrap();
    let base = admin.split('?').next().unwrap().rsplit_once('/').unwrap().0.to_owned();
    format!("{base}/{db}")
}

/// The core's state from replaying the whole log.
pub async fn replay(conn: &mut PgConnection) -> (LedgerState, Vec<(i64, String, Event)>) {
    let mut state = LedgerState::new(Currencies::standard());
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = ledger_store::sql::events_page(conn, after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for record in page {
            let event = Event::try_from(record.event().unwrap()).unwrap();
            state.apply(&event);
            events.push((record.position, record.event_type.clone(), event));
        }
    }
    (state, events)
}

pub async fn checksum(conn: &mut PgConnection, view: &str, order: &str) -> String {
    let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') FROM {view} t");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await.unwrap()
}

/// Every index and constraint of version `v` of the read models' tables, with the version
/// taken out of the names.
pub async fn indexes(conn: &mut PgConnection, v: i32) -> Vec<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(i.oid) || coalesce(' ' || pg_get_constraintdef(c.oid), '') \
         FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid \
         LEFT JOIN pg_constraint c ON c.conindid = i.oid WHERE t.relname LIKE 'rm\\_%\\_v' || $1 \
         ORDER BY 1",
    )
    .bind(v.to_string())
    .fetch_all(conn)
    .await
    .unwrap();
    let mut defs: Vec<String> = defs.into_iter().map(|d| d.replace(&format!("_v{v}"), "_v")).collect();
    defs.sort();
    defs
}

pub const VIEWS: [(&str, &str); 6] = [
    ("rm_balances", "account_id"),
    ("rm_balance_history", "account_id, position"),
    ("rm_transfers", "id"),
    ("rm_legs", "transfer_id, n"),
    ("rm_account_events", "account_id, position"),
    ("rm_turnover", "account_id, day"),
];

/// The journal as a reader sees it: every transfer touching `account`, with its legs.
pub async fn journal_of(conn: &mut PgConnection, account: Uuid) -> Vec<(Uuid, Vec<(i32, Uuid, String, Decimal)>)> {
    let filter = projections::read::TransferFilter { account: Some(account), ..Default::default() };
    let rows = projections::read::transfers(conn, &filter, None, 10_000).await.unwrap();
    let legs = projections::read::legs(conn, &rows).await.unwrap();
    rows.iter()
        .map(|t| {
            let mine =
                legs.iter().filter(|l| l.transfer_id == t.id).map(|l| (l.n, l.account_id, l.side.clone(), l.amount));
            (t.id, mine.collect())
        })
        .collect()
}

/// Waits until every one of `models` reached the head of the log, its checkpoint kept in
/// `read`'s database.
pub async fn caught_up_in(log: &mut PgConnection, read: &mut PgConnection, models: &[Model]) {
    loop {
        let s = projections::status_with(log, Some(&mut *read)).await.unwrap();
        if models.iter().all(|m| s.iter().any(|p| p.name == m.name() && p.lag == 0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
