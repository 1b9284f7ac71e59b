//! Given / when / then for P2P orders, against the whole state (the ledger's accounts included).
//! Rate 92.5 RUB per USDT throughout: 1000.00 RUB settle as 10.810810 USDT (10.8108108…
//! rounded down), a remainder that divides nothing evenly. The helpers are here, the tests in one
//! module per topic.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::domain::{DomainCommand, DomainEvent, DomainState};
use crate::orders::command::{Sealed, Terms};
use crate::orders::event::Event as OrderEvent;
use crate::orders::rejection::FRAUD_DENIED;
use crate::orders::{ORDER_KIND, REQUISITE_KIND, requisite_entity, store_entity};
use crate::{Currencies, EntityRef, Event as AnyEvent, State as AnyState, Subject, TransferStatus};

const DAY: i64 = 86_400 * 1_000_000;
/// Noon of a UTC day.
const T0: Timestamp = Timestamp(19_700 * DAY + DAY / 2);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn usdt() -> CurrencyCode {
    CurrencyCode::parse("USDT").unwrap()
}

fn rub() -> CurrencyCode {
    CurrencyCode::parse("RUB").unwrap()
}

fn oid(n: u128) -> OrderId {
    OrderId(uuid::Uuid::from_u128(5000 + n))
}

fn sealed(what: &str) -> Sealed {
    Sealed { key_id: "k1".into(), nonce: format!("nonce-{what}"), ciphertext: format!("sealed-{what}") }
}

fn fresh() -> AnyState {
    AnyState::new(Currencies::standard())
}

fn run_at(state: &mut AnyState, command: Command, now: Timestamp) -> Result<Vec<AnyEvent>, Rejection> {
    DomainCommand::execute(&command, state, now)
}

fn run(state: &mut AnyState, command: Command) -> Result<Vec<AnyEvent>, Rejection> {
    run_at(state, command, T0)
}

fn types(events: &[AnyEvent]) -> Vec<&'static str> {
    events.iter().map(AnyEvent::event_type).collect()
}

fn store_cmd(id: &str, fee: &str) -> Command {
    Command::UpsertStore(Box::new(UpsertStore {
        id: id.into(),
        name: format!("Store {id}"),
        fee: dec(fee),
        settlement_currency: usdt(),
        callback_url: Some("https://shop.example/cb".into()),
        secret: sealed(id),
    }))
}

fn trader_cmd(id: &str, fee: &str, priority: u32) -> UpsertTrader {
    UpsertTrader {
        id: id.into(),
        fee: dec(fee),
        priority,
        traffic_enabled: true,
        team_lead: None,
        currencies: vec![usdt()],
    }
}

fn requisite_cmd(trader: &str, id: &str, min: &str, max: &str, daily: &str) -> UpsertRequisite {
    UpsertRequisite {
        trader: trader.into(),
        id: id.into(),
        method: "card".into(),
        bank: "Bank".into(),
        currency: rub(),
        min_amount: dec(min),
        max_amount: dec(max),
        daily_limit: dec(daily),
        enabled: true,
        details: sealed(id),
        masked: "•••• 4242".into(),
    }
}

/// Credits `amount` USDT to an account from a bank account.
fn fund(state: &mut AnyState, account: AccountId, amount: &str) {
    let bank = AccountId(uuid::Uuid::from_u128(1));
    if state.ledger.account(bank).is_none() {
        let open = OpenAccount {
            id: bank,
            code: "bank:usdt".into(),
            currency: usdt(),
            kind: AccountKind::Asset,
            limit: BalanceLimit::None,
            metadata: serde_json::Value::Null,
        };
        crate::Command::from(ledger::Command::OpenAccount(open)).execute(state, T0).unwrap();
    }
    let t = CreateTransfer::simple(
        TransferId(uuid::Uuid::new_v4()),
        AccountRef::Id(bank),
        AccountRef::Id(account),
        dec(amount),
    );
    crate::Command::from(ledger::Command::CreateTransfer(t)).execute(state, T0).unwrap();
}

/// Moves `amount` USDT off an account to the bank (a store withdrawing its balance).
fn withdraw(state: &mut AnyState, account: AccountId, amount: &str) {
    let bank = AccountId(uuid::Uuid::from_u128(1));
    let t = CreateTransfer::simple(
        TransferId(uuid::Uuid::new_v4()),
        AccountRef::Id(account),
        AccountRef::Id(bank),
        dec(amount),
    );
    crate::Command::from(ledger::Command::CreateTransfer(t)).execute(state, T0).unwrap();
}

fn terms() -> Terms {
    Terms {
        rate: Some(dec("92.5")),
        review_over: None,
        deny_over: None,
        timeout_seconds: 900,
        dispute_window_hours: 72,
    }
}

fn order_cmd(n: u128, kind: OrderKind, amount: &str) -> CreateOrder {
    CreateOrder {
        id: oid(n),
        store: "s1".into(),
        kind,
        external_order_id: format!("ext-{n}"),
        amount: dec(amount),
        currency: rub(),
        method: Some("card".into()),
        trader: None,
        callback_url: None,
        terms: terms(),
    }
}

fn create(state: &mut AnyState, c: CreateOrder) -> Result<Vec<AnyEvent>, Rejection> {
    run(state, Command::Create(Box::new(c)))
}

fn deposit(trader: &str) -> AccountId {
    deposit_account(trader, &usdt()).0
}

fn rewards(trader: &str) -> AccountId {
    rewards_account(trader, &usdt()).0
}

fn store_acc(store: &str) -> AccountId {
    store_account(store, &usdt()).0
}

fn platform() -> AccountId {
    platform_account(&usdt()).0
}

fn balance(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).map_or(Decimal::ZERO, |a| a.balance())
}

fn available(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).map_or(Decimal::ZERO, |a| a.available())
}

fn status(state: &AnyState, n: u128) -> Status {
    state.orders.order(oid(n)).unwrap().status
}

fn assigned(state: &AnyState, n: u128) -> (String, String) {
    let a = state.orders.order(oid(n)).unwrap().assignment.clone().unwrap();
    (a.trader, a.requisite)
}

/// Store s1 (fee `store_fee`), trader t1 (fee `trader_fee`) with a requisite r1 taking 100 to
/// 50,000 RUB a day, and `funded` USDT on t1's deposit.
fn given(store_fee: &str, trader_fee: &str, funded: &str) -> AnyState {
    let mut state = fresh();
    run(&mut state, store_cmd("s1", store_fee)).unwrap();
    run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t1", trader_fee, 1)))).unwrap();
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "100", "10000", "50000")))).unwrap();
    if dec(funded) > Decimal::ZERO {
        fund(&mut state, deposit("t1"), funded);
    }
    state
}

/// The held or posted entry of an order, as (account, side, amount) legs.
fn entry(state: &AnyState, n: u128) -> Vec<(AccountId, Side, Decimal)> {
    let t = state.ledger.transfer(oid(n).hold_transfer()).unwrap();
    t.postings.iter().map(|p| (p.account, p.side, p.amount)).collect()
}

fn create_at(state: &mut AnyState, c: CreateOrder, now: Timestamp) -> Result<Vec<AnyEvent>, Rejection> {
    run_at(state, Command::Create(Box::new(c)), now)
}

/// The audit entries among events.
fn entries(events: &[AnyEvent]) -> Vec<crate::audit::Entry> {
    events
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Audit(crate::audit::Event::Recorded(r)) => Some(r.entry.clone()),
            _ => None,
        })
        .collect()
}

mod assignment;
mod audit_log;
mod completion_entry;
mod creation;
mod disputes;
mod participants;
mod review;
mod seam;
mod statuses;
