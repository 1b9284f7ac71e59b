//! Helpers shared by the event store's tests: a writer on a test database, accounts, transfers.

#![allow(dead_code)]

use std::str::FromStr;

use ledger_core::ledger::{Command, Rejection};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, TransferId,
};
use ledger_store::{Committed, Entity, EventMeta, LedgerHandle, Writer, WriterConfig};
use rust_decimal::Decimal;
use serde_json::json;
use test_support::TestDatabase;
use uuid::Uuid;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub async fn start(db: &TestDatabase) -> (LedgerHandle, tokio::task::JoinHandle<()>) {
    Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts")
}

pub async fn submit(ledger: &LedgerHandle, command: Command) -> Result<Committed, Rejection> {
    ledger
        .submit(command, EventMeta { channel: Some("test".into()), ..EventMeta::default() })
        .await
        .expect("writer answers")
}

pub async fn open(ledger: &LedgerHandle, code: &str, kind: AccountKind, no_overdraft: bool) -> AccountId {
    let id = AccountId(Uuid::new_v4());
    let limit = if no_overdraft { kind.no_overdraft_limit() } else { BalanceLimit::None };
    let command = Command::OpenAccount(OpenAccount {
        id,
        code: code.into(),
        currency: CurrencyCode::parse("EUR").unwrap(),
        kind,
        limit,
        metadata: json!({}),
    });
    submit(ledger, command).await.expect("account opens");
    id
}

pub fn transfer(debit: AccountId, credit: AccountId, amount: &str) -> CreateTransfer {
    CreateTransfer::simple(TransferId(Uuid::new_v4()), AccountRef::Id(debit), AccountRef::Id(credit), dec(amount))
}

pub async fn balance(ledger: &LedgerHandle, id: AccountId) -> Decimal {
    // Unfreezing an open account changes nothing and answers with its current state.
    let Ok(Committed { entity: Some(Entity::Account(a)), .. }) =
        submit(ledger, Command::UnfreezeAccount { id, reason: None }).await
    else {
        panic!("account {id} not found")
    };
    a.balance()
}

pub async fn scalar(db: &TestDatabase, sql: &'static str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}

pub async fn stop(ledger: LedgerHandle, task: tokio::task::JoinHandle<()>) {
    drop(ledger);
    task.await.unwrap();
}
