//! Given / when / then for P2P orders, against the whole state (the ledger's accounts included).
//! Rate 92.5 RUB per USDT throughout: 1000.00 RUB settle as 10.810810 USDT (10.8108108…
//! rounded down), a remainder that divides nothing evenly.

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

// ---- participants -------------------------------------------------------------------------

#[test]
fn a_store_is_created_with_its_account_and_sealed_secret_then_updated_or_replayed() {
    let mut state = fresh();
    let events = run(&mut state, store_cmd("s1", "0.035")).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "AuditRecorded", "StoreCreated"]);
    assert_eq!(events[2].subject(), Subject::Entity(store_entity("s1")));
    let account = state.ledger.account(store_acc("s1")).unwrap();
    assert_eq!((account.code.as_str(), account.kind), ("orders:store:s1:USDT", AccountKind::Liability));
    assert_eq!(account.limit, BalanceLimit::DebitsMustNotExceedCredits);
    let store = state.orders.store("s1").unwrap();
    assert_eq!((store.fee, store.secret.ciphertext.as_str(), store.version), (dec("0.035"), "sealed-s1", 1));
    // The same fields replay, even with another freshly sealed secret: the secret is kept.
    let Command::UpsertStore(mut again) = store_cmd("s1", "0.035") else { unreachable!() };
    again.secret = sealed("other");
    assert_eq!(run(&mut state, Command::UpsertStore(again.clone())).unwrap(), []);
    again.fee = dec("0.04");
    assert_eq!(
        types(&run(&mut state, Command::UpsertStore(again.clone())).unwrap()),
        ["AuditRecorded", "StoreUpdated"]
    );
    let store = state.orders.store("s1").unwrap();
    assert_eq!((store.fee, store.secret.ciphertext.as_str(), store.version), (dec("0.04"), "sealed-s1", 2));
    again.settlement_currency = CurrencyCode::parse("BTC").unwrap();
    assert_eq!(run(&mut state, Command::UpsertStore(again)).unwrap_err(), Rejection::SettlementCurrencyFixed);
    let rotated = run(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("new"))))).unwrap();
    assert_eq!(types(&rotated), ["AuditRecorded", "StoreSecretRotated"]);
    assert_eq!(state.orders.store("s1").unwrap().secret, sealed("new"));
    let unknown = run(&mut state, Command::RotateStoreSecret(Box::new(("s9".into(), sealed("x")))));
    assert_eq!(unknown.unwrap_err().code(), "store_not_found");
}

#[test]
fn participants_with_bad_fields_are_refused_and_nothing_is_kept() {
    let mut state = fresh();
    for (fee, ok) in [("0", true), ("0.999999", true), ("1", false), ("-0.01", false), ("0.0000001", false)] {
        let r = run(&mut state, store_cmd(&format!("f{}", fee.len()), fee));
        assert_eq!(r.is_ok(), ok, "{fee}");
        if !ok {
            assert_eq!(r.unwrap_err(), Rejection::InvalidFee);
        }
    }
    for id in ["", "a b", "a:b", &"x".repeat(65)] {
        assert_eq!(run(&mut state, store_cmd(id, "0.01")).unwrap_err().code(), "invalid_participant_id", "{id:?}");
    }
    let Command::UpsertStore(mut bad) = store_cmd("s2", "0.01") else { unreachable!() };
    bad.callback_url = Some("https://a b".into());
    assert_eq!(run(&mut state, Command::UpsertStore(bad.clone())).unwrap_err(), Rejection::InvalidCallbackUrl);
    bad.callback_url = None;
    bad.name = String::new();
    assert_eq!(run(&mut state, Command::UpsertStore(bad)).unwrap_err(), Rejection::InvalidReference);
    assert!(state.orders.store("s2").is_none());
    let refused = run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "1", "2", "3"))));
    assert_eq!(refused.unwrap_err(), Rejection::TraderNotFound);
    let mut many = trader_cmd("t1", "0.01", 1);
    many.currencies = vec![usdt(); MAX_CURRENCIES + 1];
    assert_eq!(run(&mut state, Command::UpsertTrader(Box::new(many))).unwrap_err(), Rejection::TooManyCurrencies);
    let mut lead = trader_cmd("t1", "0.01", 1);
    lead.team_lead = Some("lead one".into());
    assert_eq!(run(&mut state, Command::UpsertTrader(Box::new(lead))).unwrap_err(), Rejection::InvalidParticipantId);
}

#[test]
fn a_trader_gets_its_deposit_and_rewards_accounts_and_its_requisites_check_their_limits() {
    let mut state = fresh();
    let mut t = trader_cmd("t1", "0.02", 3);
    t.currencies = vec![usdt(), usdt()];
    let events = run(&mut state, Command::UpsertTrader(Box::new(t.clone()))).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "AccountOpened", "AuditRecorded", "TraderUpserted"]);
    let d = state.ledger.account(deposit("t1")).unwrap();
    assert_eq!((d.code.as_str(), d.limit), ("orders:trader:t1:deposit:USDT", BalanceLimit::DebitsMustNotExceedCredits));
    assert_eq!(state.ledger.account(rewards("t1")).unwrap().code, "orders:trader:t1:rewards:USDT");
    assert_eq!(state.orders.trader("t1").unwrap().currencies, [usdt()], "listed once");
    assert_eq!(run(&mut state, Command::UpsertTrader(Box::new(t.clone()))).unwrap(), []);
    t.traffic_enabled = false;
    assert_eq!(
        types(&run(&mut state, Command::UpsertTrader(Box::new(t))).unwrap()),
        ["AuditRecorded", "TraderUpserted"]
    );
    assert_eq!(state.orders.trader("t1").unwrap().version, 2);

    let r = requisite_cmd("t1", "r1", "100", "5000", "20000");
    let events = run(&mut state, Command::UpsertRequisite(Box::new(r.clone()))).unwrap();
    assert_eq!(types(&events), ["AuditRecorded", "RequisiteUpserted"]);
    assert_eq!(events[1].subject(), Subject::Entity(requisite_entity("t1", "r1")));
    assert_eq!(run(&mut state, Command::UpsertRequisite(Box::new(r.clone()))).unwrap(), []);
    for (min, max, daily) in [("0", "5", "5"), ("6", "5", "10"), ("1", "11", "10"), ("1.001", "5", "10")] {
        let bad = requisite_cmd("t1", "r2", min, max, daily);
        assert_eq!(run(&mut state, Command::UpsertRequisite(Box::new(bad))).unwrap_err(), Rejection::InvalidLimits);
    }
    let mut bad = r;
    bad.masked = "a\nb".into();
    assert_eq!(run(&mut state, Command::UpsertRequisite(Box::new(bad))).unwrap_err(), Rejection::InvalidReference);
}

// ---- the exact entry ---------------------------------------------------------------------

#[test]
fn fees_round_half_to_even_at_the_settlement_scale_and_the_platform_takes_the_rest() {
    // A·fee exactly halfway at the 7th decimal: 0.5000005 → 0.500000, 1.5000015 → 1.500002.
    let s = split(dec("10.000010"), dec("0.05"), dec("0.15"), 6).unwrap();
    assert_eq!((s.store_fee, s.trader_reward, s.platform), (dec("0.500000"), dec("1.500002"), dec("-1.000002")));
    let s = split(dec("10.810810"), dec("0.035"), dec("0.02"), 6).unwrap();
    assert_eq!((s.store_fee, s.trader_reward, s.platform), (dec("0.378378"), dec("0.216216"), dec("0.162162")));
    assert_eq!(s.store_fee.to_string(), "0.378378");
    // Equal fees leave the platform nothing: its leg is left out.
    let s = split(dec("1.00"), dec("0.1"), dec("0.1"), 2).unwrap();
    let accounts = Accounts {
        store: AccountId(uuid::Uuid::from_u128(1)),
        deposit: AccountId(uuid::Uuid::from_u128(2)),
        rewards: AccountId(uuid::Uuid::from_u128(3)),
        platform: AccountId(uuid::Uuid::from_u128(4)),
    };
    let legs = legs(OrderKind::PayIn, &accounts, dec("1.00"), &s);
    let legs: Vec<_> = legs.iter().map(|l| (l.side, l.amount)).collect();
    assert_eq!(legs, [(Side::Debit, dec("1.00")), (Side::Credit, dec("0.90")), (Side::Credit, dec("0.10"))]);
    // Rounding down to the settlement scale, never up.
    assert_eq!(settlement_amount(dec("1000.00"), dec("92.5"), 6).unwrap(), dec("10.810810"));
    assert_eq!(settlement_amount(dec("2.00"), dec("3"), 2).unwrap(), dec("0.66"));
    assert_eq!(settlement_amount(dec("0.01"), dec("1000000"), 6).unwrap_err(), Rejection::AmountTooSmall);
}

#[test]
fn a_pay_in_holds_the_deposit_then_completes_with_one_exact_four_leg_entry() {
    let mut state = given("0.035", "0.02", "100");
    let events = create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    assert_eq!(
        types(&events),
        ["AccountOpened", "PendingTransferCreated", "OrderCreated"],
        "profit opened on first use"
    );
    let OrderEvent::Created(e) = events[2].orders().unwrap() else { panic!() };
    assert_eq!((e.rate, e.settlement_amount, e.status), (dec("92.5"), dec("10.810810"), Status::Pending));
    let a = e.assignment.as_ref().unwrap();
    assert_eq!((a.trader.as_str(), a.requisite.as_str(), a.masked.as_str()), ("t1", "r1", "•••• 4242"));
    assert_eq!(a.expires_at, T0.plus_seconds(900));
    // Held: the deposit's available balance, not its balance; nobody is credited yet.
    assert_eq!((balance(&state, deposit("t1")), available(&state, deposit("t1"))), (dec("100"), dec("89.189190")));
    assert_eq!(balance(&state, store_acc("s1")), Decimal::ZERO);
    let held = vec![
        (deposit("t1"), Side::Debit, dec("10.810810")),
        (store_acc("s1"), Side::Credit, dec("10.432432")),
        (rewards("t1"), Side::Credit, dec("0.216216")),
        (platform(), Side::Credit, dec("0.162162")),
    ];
    assert_eq!(entry(&state, 1), held);

    let events = run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(types(&events), ["PendingTransferPosted", "OrderCompleted"]);
    let t = state.ledger.transfer(oid(1).hold_transfer()).unwrap();
    assert_eq!(t.status, TransferStatus::Posted);
    assert_eq!(balance(&state, deposit("t1")), dec("89.189190"));
    assert_eq!(balance(&state, store_acc("s1")), dec("10.432432"));
    assert_eq!(balance(&state, rewards("t1")), dec("0.216216"));
    assert_eq!(balance(&state, platform()), dec("0.162162"));
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!((o.status, o.completed_at, o.version), (Status::Completed, Some(T0), 2));
    // Completing again replays.
    assert_eq!(run(&mut state, Command::Complete { id: oid(1) }).unwrap(), []);
}

#[test]
fn a_trader_fee_above_the_stores_is_a_platform_debit_and_the_entry_still_balances() {
    let mut state = given("0.01", "0.03", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    assert_eq!(
        entry(&state, 1),
        [
            (deposit("t1"), Side::Debit, dec("10.810810")),
            (store_acc("s1"), Side::Credit, dec("10.702702")),
            (rewards("t1"), Side::Credit, dec("0.324324")),
            (platform(), Side::Debit, dec("0.216216")),
        ]
    );
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(balance(&state, platform()), dec("-0.216216"), "a platform expense");
    assert_eq!(balance(&state, rewards("t1")), dec("0.324324"));
    assert_eq!(balance(&state, store_acc("s1")), dec("10.702702"));
}

#[test]
fn a_pay_out_holds_the_stores_amount_and_fee_and_credits_the_deposit() {
    let mut state = given("0.035", "0.02", "0");
    // An unfunded store cannot pay out: refused by the ledger, nothing recorded.
    let refused = create(&mut state, order_cmd(1, OrderKind::PayOut, "1000.00")).unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds");
    assert!(state.orders.order(oid(1)).is_none());
    assert!(state.ledger.transfer(oid(1).hold_transfer()).is_none());
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, Decimal::ZERO);
    fund(&mut state, store_acc("s1"), "20");
    create(&mut state, order_cmd(1, OrderKind::PayOut, "1000.00")).unwrap();
    assert_eq!(available(&state, store_acc("s1")), dec("8.810812"), "20 − (10.810810 + 0.378378)");
    assert_eq!(
        entry(&state, 1),
        [
            (store_acc("s1"), Side::Debit, dec("11.189188")),
            (deposit("t1"), Side::Credit, dec("10.810810")),
            (rewards("t1"), Side::Credit, dec("0.216216")),
            (platform(), Side::Credit, dec("0.162162")),
        ]
    );
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(balance(&state, store_acc("s1")), dec("8.810812"));
    assert_eq!(balance(&state, deposit("t1")), dec("10.810810"));
    assert_eq!(balance(&state, rewards("t1")), dec("0.216216"));
    assert_eq!(balance(&state, platform()), dec("0.162162"));
}

// ---- statuses ----------------------------------------------------------------------------

#[test]
fn cancel_fail_and_expiry_void_the_hold_and_free_the_limits() {
    let mut state = given("0.035", "0.02", "100");
    for n in 1..=4 {
        create(&mut state, order_cmd(n, OrderKind::PayIn, "1000.00")).unwrap();
    }
    assert_eq!(available(&state, deposit("t1")), dec("56.756760"));
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, dec("4000.00"));
    let cancelled = run(&mut state, Command::Cancel { id: oid(1), reason: Some("client left".into()) }).unwrap();
    assert_eq!(types(&cancelled), ["PendingTransferVoided", "OrderCancelled"]);
    let failed = run(&mut state, Command::Fail { id: oid(2), reason: None }).unwrap();
    assert_eq!(types(&failed), ["PendingTransferVoided", "OrderFailed"]);
    assert_eq!(state.orders.order(oid(1)).unwrap().reason.as_deref(), Some("client left"));
    assert_eq!((status(&state, 1), status(&state, 2)), (Status::Cancelled, Status::Failed));
    assert_eq!(available(&state, deposit("t1")), dec("78.378380"));
    // Expiry: nothing is due before the deadline; at it, every pending order expires.
    let deadline = T0.plus_seconds(900);
    assert_eq!(run_at(&mut state, Command::ExpireDue, Timestamp(deadline.0 - 1)).unwrap(), []);
    let complete_late = run_at(&mut state, Command::Complete { id: oid(3) }, deadline);
    assert_eq!(complete_late.unwrap_err(), Rejection::OrderExpired);
    let expired = run_at(&mut state, Command::ExpireDue, deadline).unwrap();
    assert_eq!(types(&expired), ["PendingTransferVoided", "OrderExpired", "PendingTransferVoided", "OrderExpired"]);
    assert_eq!((status(&state, 3), status(&state, 4)), (Status::Expired, Status::Expired));
    assert_eq!(available(&state, deposit("t1")), dec("100.000000"));
    assert_eq!(balance(&state, store_acc("s1")), Decimal::ZERO);
    let r = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((r.pending, r.completed_today), (dec("0.00"), Decimal::ZERO));
    assert_eq!(run_at(&mut state, Command::ExpireDue, deadline).unwrap(), [], "nothing left due");
    // Said again, each replays; anything else is refused.
    assert_eq!(run(&mut state, Command::Cancel { id: oid(1), reason: None }).unwrap(), []);
    assert_eq!(run(&mut state, Command::Fail { id: oid(1), reason: None }).unwrap_err(), Rejection::InvalidOrderState);
    let bad = run(&mut state, Command::Cancel { id: oid(9), reason: Some(" ".into()) });
    assert_eq!(bad.unwrap_err(), Rejection::OrderNotFound);
    assert_eq!(
        run(&mut state, Command::Cancel { id: oid(2), reason: Some(" ".into()) }).unwrap_err(),
        Rejection::InvalidReason
    );
}

/// Every command that makes a transition, with the one transition of the table it makes.
fn every_transition(n: u128) -> Vec<(Command, Status, Status)> {
    use Status::*;
    let id = oid(n);
    let why = "why".to_owned();
    vec![
        (Command::Approve { id }, ManualReview, Pending),
        (Command::Deny { id, reason: None }, ManualReview, Denied),
        (Command::Complete { id }, Pending, Completed),
        (Command::Cancel { id, reason: None }, Pending, Cancelled),
        (Command::Fail { id, reason: None }, Pending, Failed),
        (Command::Dispute { id, reason: why.clone() }, Completed, Disputed),
        (Command::Resolve { id, outcome: Outcome::Uphold, reason: why.clone() }, Disputed, Completed),
        (Command::Resolve { id, outcome: Outcome::Reverse, reason: why }, Disputed, Reversed),
    ]
}

#[test]
fn every_transition_outside_the_table_is_refused_and_changes_nothing() {
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    // One order in each status, n = the status's place.
    let mut state = given("0.035", "0.02", "1000");
    let make = |state: &mut AnyState, n: u128, steps: &[Command]| {
        create(state, CreateOrder { terms: review.clone(), ..order_cmd(n, OrderKind::PayIn, "1000.00") }).unwrap();
        for step in steps {
            run(state, step.clone()).unwrap();
        }
    };
    let why = || "why".to_owned();
    make(&mut state, 1, &[]);
    make(&mut state, 2, &[Command::Approve { id: oid(2) }]);
    make(&mut state, 3, &[Command::Approve { id: oid(3) }, Command::Complete { id: oid(3) }]);
    let dispute = |n| Command::Dispute { id: oid(n), reason: why() };
    make(&mut state, 4, &[Command::Approve { id: oid(4) }, Command::Complete { id: oid(4) }, dispute(4)]);
    let reverse = |n| Command::Resolve { id: oid(n), outcome: Outcome::Reverse, reason: why() };
    make(&mut state, 5, &[Command::Approve { id: oid(5) }, Command::Complete { id: oid(5) }, dispute(5), reverse(5)]);
    make(&mut state, 6, &[Command::Approve { id: oid(6) }, Command::Cancel { id: oid(6), reason: None }]);
    make(&mut state, 7, &[Command::Approve { id: oid(7) }, Command::Fail { id: oid(7), reason: None }]);
    make(&mut state, 9, &[Command::Deny { id: oid(9), reason: Some("fraud".into()) }]);
    create(
        &mut state,
        CreateOrder { terms: Terms { timeout_seconds: 60, ..terms() }, ..order_cmd(8, OrderKind::PayIn, "100") },
    )
    .unwrap();
    run_at(&mut state, Command::ExpireDue, T0.plus_seconds(60)).unwrap();
    let statuses = [
        (1, Status::ManualReview),
        (2, Status::Pending),
        (3, Status::Completed),
        (4, Status::Disputed),
        (5, Status::Reversed),
        (6, Status::Cancelled),
        (7, Status::Failed),
        (8, Status::Expired),
        (9, Status::Denied),
    ];
    let mut refused = 0;
    for (n, from) in statuses {
        assert_eq!(status(&state, n), from);
        for (command, own, to) in every_transition(n) {
            assert!(own.may_become(to), "{own:?} → {to:?} is in the table");
            if from == own || from == to {
                continue;
            }
            let before = state.clone();
            let r = run(&mut state, command.clone());
            assert_eq!(r.unwrap_err(), Rejection::InvalidOrderState, "{from:?} → {to:?} by {command:?}");
            assert_eq!(state, before, "a refusal changes nothing");
            refused += 1;
        }
    }
    // A completed order never upheld is not replayed by an uphold.
    let uphold = Command::Resolve { id: oid(3), outcome: Outcome::Uphold, reason: why() };
    assert_eq!(run(&mut state, uphold).unwrap_err(), Rejection::InvalidOrderState);
    assert_eq!(refused, 9 * 8 - 8 - 8, "every pair but each command's own transition and its replay");
    // Completing is from pending only: a disputed order is not completed behind support's back.
    assert_eq!(run(&mut state, Command::Complete { id: oid(4) }).unwrap_err(), Rejection::InvalidOrderState);
}

// ---- review and fraud ---------------------------------------------------------------------

#[test]
fn an_order_over_the_review_limit_waits_unheld_until_approved_or_denied() {
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("999.99")), deny_over: Some(dec("5000")), ..terms() };
    let events =
        create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    assert_eq!(types(&events), ["OrderCreated"], "nothing held");
    assert_eq!(status(&state, 1), Status::ManualReview);
    assert_eq!(available(&state, deposit("t1")), dec("100"));
    assert!(state.ledger.transfer(oid(1).hold_transfer()).is_none());
    // At the limit exactly: no review.
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(2, OrderKind::PayIn, "999.99") }).unwrap();
    assert_eq!(status(&state, 2), Status::Pending);
    let approved = run_at(&mut state, Command::Approve { id: oid(1) }, T0.plus_seconds(30)).unwrap();
    assert_eq!(types(&approved), ["PendingTransferCreated", "AuditRecorded", "OrderApproved"]);
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!(o.assignment.as_ref().unwrap().expires_at, T0.plus_seconds(930), "the timeout runs from approval");
    assert_eq!(available(&state, deposit("t1")), dec("100") - dec("10.810810") - dec("10.810702"));
    assert_eq!(run(&mut state, Command::Approve { id: oid(1) }).unwrap(), [], "approving again replays");
    // Denied from review: nothing was ever held.
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(3, OrderKind::PayIn, "2000") }).unwrap();
    let denied = run(&mut state, Command::Deny { id: oid(3), reason: Some("stolen card".into()) }).unwrap();
    assert_eq!(types(&denied), ["AuditRecorded", "OrderDenied"]);
    assert_eq!(run(&mut state, Command::Approve { id: oid(3) }).unwrap_err(), Rejection::InvalidOrderState);
    // Over the deny limit: recorded denied at once, nothing held, and a retry answers the same.
    let over = CreateOrder { terms: review, ..order_cmd(4, OrderKind::PayIn, "5000.01") };
    assert_eq!(types(&create(&mut state, over.clone()).unwrap()), ["AuditRecorded", "OrderCreated"]);
    assert_eq!(status(&state, 4), Status::Denied);
    assert_eq!(create(&mut state, over).unwrap(), []);
    assert_eq!(FRAUD_DENIED, "fraud_denied");
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, dec("1999.99"));
}

#[test]
fn approving_finds_no_requisite_then_the_order_stays_in_review() {
    let mut state = given("0.035", "0.02", "5");
    let review = Terms { review_over: Some(dec("1")), ..terms() };
    create(&mut state, CreateOrder { terms: review, ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    assert_eq!(run(&mut state, Command::Approve { id: oid(1) }).unwrap_err(), Rejection::NoRequisiteAvailable);
    assert_eq!(status(&state, 1), Status::ManualReview);
    fund(&mut state, deposit("t1"), "6");
    let approved = run(&mut state, Command::Approve { id: oid(1) }).unwrap();
    assert_eq!(types(&approved), ["AccountOpened", "PendingTransferCreated", "AuditRecorded", "OrderApproved"]);
    assert_eq!(approved[0].subject(), Subject::Account(platform()), "the refused approval opened nothing");
}

// ---- idempotency and terms ------------------------------------------------------------------

#[test]
fn an_order_is_idempotent_by_id_and_by_the_stores_external_id() {
    let mut state = given("0.035", "0.02", "100");
    let c = order_cmd(1, OrderKind::PayIn, "1000.00");
    create(&mut state, c.clone()).unwrap();
    // The same body replays, whatever the rate is now.
    let later = CreateOrder { terms: Terms { rate: Some(dec("80")), ..terms() }, amount: dec("1000"), ..c.clone() };
    assert_eq!(create(&mut state, later).unwrap(), []);
    assert_eq!(state.orders.order(oid(1)).unwrap().settlement_amount, dec("10.810810"));
    let different = CreateOrder { amount: dec("1000.01"), ..c.clone() };
    assert_eq!(create(&mut state, different).unwrap_err(), Rejection::OrderExists);
    let other_id = CreateOrder { id: oid(2), ..c.clone() };
    assert_eq!(create(&mut state, other_id).unwrap_err().code(), "order_exists");
    assert!(state.orders.order(oid(2)).is_none());
    // Another store may use the same external id.
    run(&mut state, store_cmd("s2", "0.01")).unwrap();
    create(&mut state, CreateOrder { id: oid(3), store: "s2".into(), ..c }).unwrap();
    assert_eq!(state.orders.by_external("s2", "ext-1").unwrap().id, oid(3));
    assert_eq!(available(&state, deposit("t1")), dec("78.378380"), "two holds, not three");
}

#[test]
fn an_order_without_a_rate_or_a_requisite_is_refused_and_a_retry_decides_afresh() {
    let mut state = given("0.035", "0.02", "100");
    let no_rate = CreateOrder { terms: Terms { rate: None, ..terms() }, ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, no_rate).unwrap_err().code(), "no_exchange_rate");
    let zero =
        CreateOrder { terms: Terms { rate: Some(Decimal::ZERO), ..terms() }, ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, zero).unwrap_err(), Rejection::NoExchangeRate);
    let by_sbp = CreateOrder { method: Some("sbp".into()), ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, by_sbp.clone()).unwrap_err().code(), "no_requisite_available");
    assert!(state.orders.order(oid(1)).is_none());
    let mut sbp = requisite_cmd("t1", "r2", "100", "10000", "50000");
    sbp.method = "sbp".into();
    run(&mut state, Command::UpsertRequisite(Box::new(sbp))).unwrap();
    create(&mut state, by_sbp).unwrap();
    assert_eq!(assigned(&state, 1), ("t1".into(), "r2".into()));
    for (amount, code) in [("0", "amount_must_be_positive"), ("10.001", "amount_scale")] {
        assert_eq!(create(&mut state, order_cmd(5, OrderKind::PayIn, amount)).unwrap_err().code(), code);
    }
    let unknown = CreateOrder { store: "nobody".into(), ..order_cmd(5, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, unknown).unwrap_err(), Rejection::StoreNotFound);
    let trader = CreateOrder { trader: Some("t9".into()), ..order_cmd(5, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, trader).unwrap_err(), Rejection::TraderNotFound);
}

// ---- assignment ----------------------------------------------------------------------------

#[test]
fn assignment_takes_the_lowest_priority_then_the_requisite_used_longest_ago() {
    let mut state = given("0.035", "0.02", "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r2", "100", "10000", "50000")))).unwrap();
    run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t2", "0.02", 1)))).unwrap();
    fund(&mut state, deposit("t2"), "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t2", "q1", "100", "10000", "50000")))).unwrap();
    run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t3", "0.02", 5)))).unwrap();
    fund(&mut state, deposit("t3"), "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t3", "z1", "100", "10000", "50000")))).unwrap();
    let mut got = Vec::new();
    for n in 1..=6 {
        create_at(&mut state, order_cmd(n, OrderKind::PayIn, "1000"), T0.plus_seconds(n as u32)).unwrap();
        got.push(assigned(&state, n));
    }
    let pair = |t: &str, r: &str| (t.to_owned(), r.to_owned());
    // Never used first (by trader and id), then the one used longest ago: round robin over
    // the three requisites of priority 1; t3 (priority 5) gets nothing.
    assert_eq!(
        got,
        [pair("t1", "r1"), pair("t1", "r2"), pair("t2", "q1"), pair("t1", "r1"), pair("t1", "r2"), pair("t2", "q1")]
    );
    // Traffic off, a disabled requisite, an amount outside its range: skipped.
    let mut off = trader_cmd("t2", "0.02", 1);
    off.traffic_enabled = false;
    run(&mut state, Command::UpsertTrader(Box::new(off))).unwrap();
    let mut disabled = requisite_cmd("t1", "r1", "100", "10000", "50000");
    disabled.enabled = false;
    run(&mut state, Command::UpsertRequisite(Box::new(disabled))).unwrap();
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r2", "100", "500", "50000")))).unwrap();
    create_at(&mut state, order_cmd(7, OrderKind::PayIn, "1000"), T0.plus_seconds(7)).unwrap();
    assert_eq!(assigned(&state, 7), pair("t3", "z1"));
    // A named trader takes it only through its own requisites.
    let named = CreateOrder { trader: Some("t1".into()), ..order_cmd(8, OrderKind::PayIn, "400") };
    create(&mut state, named).unwrap();
    assert_eq!(assigned(&state, 8), pair("t1", "r2"));
    let named = CreateOrder { trader: Some("t2".into()), ..order_cmd(9, OrderKind::PayIn, "400") };
    assert_eq!(create(&mut state, named).unwrap_err(), Rejection::NoRequisiteAvailable);
}

#[test]
fn a_pay_in_passes_over_the_best_traders_whose_deposits_fall_short() {
    // t1 (priority 1) holds 5 USDT, t2 (priority 2) 8, t3 (priority 3) 1000: a pay-in of
    // 10.810810 USDT goes to t3; one of 4.324324 (400 RUB) to t1, the best that holds it.
    let mut state = given("0.035", "0.02", "5");
    for (t, priority, funded) in [("t2", 2, "8"), ("t3", 3, "1000")] {
        run(&mut state, Command::UpsertTrader(Box::new(trader_cmd(t, "0.02", priority)))).unwrap();
        fund(&mut state, deposit(t), funded);
        run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd(t, "r1", "100", "10000", "50000")))).unwrap();
    }
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(assigned(&state, 1), ("t3".to_owned(), "r1".to_owned()));
    create(&mut state, order_cmd(2, OrderKind::PayIn, "400")).unwrap();
    assert_eq!(assigned(&state, 2), ("t1".to_owned(), "r1".to_owned()));
    // t1 now holds 0.675676 and t2 8: 700 RUB (7.567567) goes to t2, then none is left for it.
    create(&mut state, order_cmd(3, OrderKind::PayIn, "700")).unwrap();
    assert_eq!(assigned(&state, 3), ("t2".to_owned(), "r1".to_owned()));
    assert_eq!(available(&state, deposit("t3")), dec("989.189190"));
}

fn create_at(state: &mut AnyState, c: CreateOrder, now: Timestamp) -> Result<Vec<AnyEvent>, Rejection> {
    run_at(state, Command::Create(Box::new(c)), now)
}

#[test]
fn consecutive_orders_never_overrun_a_daily_limit_or_a_deposit() {
    // Daily limit 2500 RUB: two orders of 1000 fit, a third does not (pending counts).
    let mut state = given("0.035", "0.02", "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "100", "2500", "2500")))).unwrap();
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    create(&mut state, order_cmd(2, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(
        create(&mut state, order_cmd(3, OrderKind::PayIn, "1000")).unwrap_err(),
        Rejection::NoRequisiteAvailable
    );
    create(&mut state, order_cmd(3, OrderKind::PayIn, "500")).unwrap();
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().turnover(T0), dec("2500"), "exactly the limit");
    // Completed counts too, for the rest of the UTC day; the next day starts afresh.
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Cancel { id: oid(2), reason: None }).unwrap();
    run(&mut state, Command::Cancel { id: oid(3), reason: None }).unwrap();
    let r = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((r.completed_today, r.pending, r.turnover(T0)), (dec("1000"), dec("0"), dec("1000")));
    create(&mut state, order_cmd(4, OrderKind::PayIn, "1500")).unwrap();
    assert_eq!(create(&mut state, order_cmd(5, OrderKind::PayIn, "100")).unwrap_err(), Rejection::NoRequisiteAvailable);
    let tomorrow = Timestamp(T0.0 + DAY / 2);
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().turnover(tomorrow), dec("1500"), "only the pending one");
    create_at(&mut state, order_cmd(5, OrderKind::PayIn, "1000"), tomorrow).unwrap();

    // A deposit of 25 USDT: two pay-ins of 10.810810 fit, a third does not.
    let mut state = given("0.035", "0.02", "25");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    create(&mut state, order_cmd(2, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(
        create(&mut state, order_cmd(3, OrderKind::PayIn, "1000")).unwrap_err(),
        Rejection::NoRequisiteAvailable
    );
    assert_eq!(available(&state, deposit("t1")), dec("3.378380"));
    // A pay-out needs no deposit: it credits it.
    fund(&mut state, store_acc("s1"), "50");
    create(&mut state, order_cmd(3, OrderKind::PayOut, "1000")).unwrap();
    assert_eq!(available(&state, deposit("t1")), dec("3.378380"));
}

// ---- disputes ------------------------------------------------------------------------------

#[test]
fn a_reversed_dispute_posts_the_exact_compensating_entry() {
    let mut state = given("0.01", "0.03", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    let late = Timestamp(T0.0 + 72 * 3600 * 1_000_000 + 1);
    let window = run_at(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }, late);
    assert_eq!(window.unwrap_err(), Rejection::DisputeWindowClosed);
    let blank = run(&mut state, Command::Dispute { id: oid(1), reason: "".into() });
    assert_eq!(blank.unwrap_err(), Rejection::InvalidReason);
    let at_edge = Timestamp(T0.0 + 72 * 3600 * 1_000_000);
    let disputed = run_at(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }, at_edge).unwrap();
    assert_eq!(types(&disputed), ["OrderDisputed"]);
    let resolve = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "chargeback".into() };
    let events = run(&mut state, resolve.clone()).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "AuditRecorded", "OrderReversed"]);
    let reversal = state.ledger.transfer(oid(1).reversal_transfer()).unwrap();
    let legs: Vec<_> = reversal.postings.iter().map(|p| (p.account, p.side, p.amount)).collect();
    let opposite: Vec<_> = entry(&state, 1).into_iter().map(|(a, side, amount)| (a, side.opposite(), amount)).collect();
    assert_eq!(legs, opposite, "every leg, the other way");
    assert_eq!(balance(&state, deposit("t1")), dec("100.000000"));
    for account in [store_acc("s1"), rewards("t1"), platform()] {
        assert_eq!(balance(&state, account), Decimal::ZERO);
    }
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!((o.status, o.reversal), (Status::Reversed, Some(oid(1).reversal_transfer())));
    assert_eq!(run(&mut state, resolve).unwrap(), [], "reversing again replays");
}

#[test]
fn a_reversal_the_store_cannot_pay_keeps_the_dispute_open_and_uphold_restores_completed() {
    let mut state = given("0.035", "0.02", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }).unwrap();
    withdraw(&mut state, store_acc("s1"), "10");
    let reverse = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "chargeback".into() };
    assert_eq!(run(&mut state, reverse).unwrap_err().code(), "insufficient_funds");
    assert_eq!(status(&state, 1), Status::Disputed);
    assert!(state.ledger.transfer(oid(1).reversal_transfer()).is_none());
    let uphold = Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: "paid after all".into() };
    assert_eq!(types(&run(&mut state, uphold.clone()).unwrap()), ["AuditRecorded", "DisputeUpheld"]);
    assert_eq!(status(&state, 1), Status::Completed);
    assert_eq!(run(&mut state, uphold).unwrap(), [], "upholding again replays");
    assert_eq!(balance(&state, store_acc("s1")), dec("0.432432"), "no money moved");
}

// ---- audit ---------------------------------------------------------------------------------

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

#[test]
fn every_manual_decision_and_admin_change_is_an_audit_entry_of_its_own_with_the_right_level() {
    use crate::audit::Level;
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("500")), deny_over: Some(dec("5000")), ..terms() };
    fn decided(state: &mut AnyState, c: Command, all: &mut Vec<crate::audit::Entry>) -> crate::audit::Entry {
        let events = run(state, c).unwrap();
        let found = entries(&events);
        assert_eq!(found.len(), 1, "one entry: {:?}", types(&events));
        all.push(found[0].clone());
        found[0].clone()
    }
    let mut all = Vec::new();
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(2, OrderKind::PayIn, "1000") }).unwrap();
    let approved = decided(&mut state, Command::Approve { id: oid(1) }, &mut all);
    assert_eq!((approved.level, approved.action.as_str()), (Level::Info, "orders.approve"));
    assert_eq!(approved.subject, format!("order:{}", oid(1)));
    assert_eq!(approved.before, Some(serde_json::json!({"status": "manual_review"})));
    assert_eq!(approved.after, Some(serde_json::json!({"status": "pending", "trader": "t1"})));
    let denied = decided(&mut state, Command::Deny { id: oid(2), reason: Some("stolen card".into()) }, &mut all);
    assert_eq!((denied.level, denied.action.as_str()), (Level::Warning, "orders.deny"));
    assert_eq!(denied.reason.as_deref(), Some("stolen card"));
    assert_eq!(denied.after, Some(serde_json::json!({"status": "denied"})));
    // Denied by the fraud rule at creation: audited too, once, whatever the retries.
    let over = CreateOrder { terms: review, ..order_cmd(3, OrderKind::PayIn, "6000") };
    let fraud = entries(&create(&mut state, over.clone()).unwrap());
    assert_eq!(fraud.len(), 1);
    assert_eq!((fraud[0].level, fraud[0].action.as_str()), (Level::Warning, "orders.fraud_deny"));
    assert_eq!(fraud[0].after.as_ref().unwrap()["deny_over"], "5000");
    assert_eq!(create(&mut state, over).unwrap(), []);
    all.push(fraud[0].clone());
    // Disputes, upheld then (a second order) reversed.
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }).unwrap();
    let uphold = Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: "paid".into() };
    let upheld = decided(&mut state, uphold.clone(), &mut all);
    assert_eq!((upheld.level, upheld.action.as_str()), (Level::Info, "orders.uphold"));
    assert_eq!(upheld.before, Some(serde_json::json!({"status": "disputed"})));
    assert_eq!(run(&mut state, uphold).unwrap(), [], "a retry records nothing");
    create(&mut state, order_cmd(4, OrderKind::PayIn, "1000")).unwrap();
    run(&mut state, Command::Complete { id: oid(4) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(4), reason: "not paid".into() }).unwrap();
    let reversed = decided(
        &mut state,
        Command::Resolve { id: oid(4), outcome: Outcome::Reverse, reason: "chargeback".into() },
        &mut all,
    );
    assert_eq!((reversed.level, reversed.action.as_str()), (Level::Warning, "orders.reverse"));
    assert_eq!(reversed.after.as_ref().unwrap()["reversal"], oid(4).reversal_transfer().to_string());
    // Admin changes: a store's fee, a trader's traffic, a requisite's limits.
    let updated = decided(&mut state, store_cmd("s1", "0.04"), &mut all);
    assert_eq!((updated.action.as_str(), updated.subject.as_str()), ("orders.store.update", "store:s1"));
    assert_eq!(updated.before.as_ref().unwrap()["fee"], "0.035");
    assert_eq!(updated.after.as_ref().unwrap()["fee"], "0.04");
    let traffic =
        decided(&mut state, Command::SetTraffic { trader: "t1".into(), enabled: false, team_lead: None }, &mut all);
    assert_eq!((traffic.action.as_str(), traffic.subject.as_str()), ("orders.trader.traffic", "trader:t1"));
    assert_eq!(traffic.after, Some(serde_json::json!({"traffic_enabled": false})));
    let limits =
        decided(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "1", "9", "90"))), &mut all);
    assert_eq!((limits.action.as_str(), limits.subject.as_str()), ("orders.requisite.upsert", "requisite:t1/r1"));
    assert_eq!(limits.after.as_ref().unwrap()["max_amount"], "9.00");
    let rotated = decided(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("new")))), &mut all);
    assert_eq!(
        (rotated.action.as_str(), rotated.before.clone(), rotated.after.clone()),
        ("orders.store.rotate_secret", None, None)
    );
    for e in &all {
        assert_eq!(
            e.level != Level::Info,
            ["orders.deny", "orders.reverse", "orders.fraud_deny"].contains(&e.action.as_str())
        );
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains("sealed") && !text.contains("4242"), "no secret, sealed or not: {text}");
    }
    let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "every entry has an id of its own");
}

#[test]
fn a_reason_or_an_id_that_looks_like_a_secret_is_refused_and_nothing_is_recorded() {
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    create(&mut state, CreateOrder { terms: review, ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    let leaked = Command::Deny { id: oid(1), reason: Some("key ldg_abc".into()) };
    assert_eq!(run(&mut state, leaked).unwrap_err(), Rejection::InvalidReason);
    assert_eq!(status(&state, 1), Status::ManualReview);
    for id in ["ldg_1", "a-whsec_b"] {
        assert_eq!(run(&mut state, store_cmd(id, "0.01")).unwrap_err(), Rejection::InvalidParticipantId, "{id}");
    }
}

#[test]
fn a_team_lead_turns_traffic_of_its_own_traders_only_and_the_same_value_replays() {
    let mut state = given("0.035", "0.02", "100");
    let mut t = trader_cmd("t1", "0.02", 1);
    t.team_lead = Some("lead-1".into());
    run(&mut state, Command::UpsertTrader(Box::new(t))).unwrap();
    let as_lead =
        |lead: &str, enabled: bool| Command::SetTraffic { trader: "t1".into(), enabled, team_lead: Some(lead.into()) };
    assert_eq!(run(&mut state, as_lead("lead-2", false)).unwrap_err(), Rejection::NotTheTeamLead);
    assert!(state.orders.trader("t1").unwrap().traffic_enabled);
    let off = run(&mut state, as_lead("lead-1", false)).unwrap();
    assert_eq!(types(&off), ["AuditRecorded", "TraderUpserted"]);
    let trader = state.orders.trader("t1").unwrap();
    assert_eq!((trader.traffic_enabled, trader.fee, trader.team_lead.as_deref()), (false, dec("0.02"), Some("lead-1")));
    assert_eq!(run(&mut state, as_lead("lead-1", false)).unwrap(), []);
    // Traffic off: no order goes to it.
    assert_eq!(
        create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap_err(),
        Rejection::NoRequisiteAvailable
    );
    let unknown = Command::SetTraffic { trader: "t9".into(), enabled: true, team_lead: None };
    assert_eq!(run(&mut state, unknown).unwrap_err(), Rejection::TraderNotFound);
    let bad = Command::SetTraffic { trader: "t 9".into(), enabled: true, team_lead: None };
    assert_eq!(run(&mut state, bad).unwrap_err(), Rejection::InvalidParticipantId);
    run(&mut state, Command::SetTraffic { trader: "t1".into(), enabled: true, team_lead: None }).unwrap();
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
}

// ---- the seam ------------------------------------------------------------------------------

#[test]
fn commands_name_what_they_answer_with_and_the_transfers_to_load() {
    let c = Command::Create(Box::new(order_cmd(1, OrderKind::PayIn, "1")));
    let answer = c.answer().unwrap();
    assert_eq!(
        (answer.subject, answer.replay),
        (Subject::Entity(EntityRef { kind: ORDER_KIND, id: oid(1).0 }), crate::Replay::First)
    );
    assert_eq!(c.transfer_ids(), [oid(1).hold_transfer()]);
    let resolve = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "r".into() };
    assert_eq!(resolve.transfer_ids(), [oid(1).hold_transfer(), oid(1).reversal_transfer()]);
    assert_eq!(resolve.answer().unwrap().replay, crate::Replay::Last);
    assert_eq!(Command::ExpireDue.answer(), None);
    assert!(Command::ExpireDue.transfer_ids().is_empty());
    assert_eq!(store_cmd("s1", "0").answer().unwrap().subject, Subject::Entity(store_entity("s1")));
    assert_ne!(oid(1).hold_transfer(), oid(1).reversal_transfer());
    assert_ne!(oid(1).hold_transfer(), oid(2).hold_transfer());
    assert_ne!(requisite_entity("t1", "r1"), requisite_entity("t2", "r1"));
    assert_eq!(platform_account(&usdt()).1, "orders:platform:profit:USDT");
    for r in [Rejection::OrderExists, Rejection::Ledger(ledger::Rejection::InsufficientFunds)] {
        assert_eq!(crate::domain::DomainRejection::code(r), r.code());
        assert_eq!(crate::Rejection::from(r).code(), r.code());
    }
    // Terms come from the runtime configuration's values, with the declared defaults.
    let lookup = |key: &str| match key {
        "orders.rate.RUB/USDT" => serde_json::json!("92.5"),
        "orders.fraud.review_over.RUB" => serde_json::json!("50000"),
        "orders.timeout_seconds" => serde_json::json!(600),
        _ => serde_json::Value::Null,
    };
    let t = Terms::resolve(lookup, &rub(), &usdt());
    assert_eq!(t, Terms { review_over: Some(dec("50000")), timeout_seconds: 600, ..terms() });
    assert_eq!(Terms::resolve(|_| serde_json::Value::Null, &rub(), &usdt()).rate, None);
    let rate = crate::settings::check("orders.rate.RUB/USDT", &serde_json::json!("92.5")).unwrap();
    assert_eq!(rate.name, "orders.rate.{pair}");
    assert!(crate::settings::check("orders.rate.RUB/USDT", &serde_json::json!("0")).is_err());
    assert_eq!((crate::settings::find("orders.timeout_seconds").unwrap().default)(), serde_json::json!(900));
}

#[test]
fn stored_rows_load_back_into_the_same_state_and_every_event_reads_back() {
    let mut state = given("0.035", "0.02", "1000");
    let review = Terms { review_over: Some(dec("5000")), ..terms() };
    let mut events = Vec::new();
    events.extend(run(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("r"))))).unwrap());
    events.extend(run(&mut state, store_cmd("s1", "0.04")).unwrap());
    for n in 1..=5 {
        events.extend(create(&mut state, order_cmd(n, OrderKind::PayIn, "1000")).unwrap());
    }
    events.extend(
        create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(6, OrderKind::PayIn, "6000") }).unwrap(),
    );
    events.extend(create(&mut state, CreateOrder { terms: review, ..order_cmd(7, OrderKind::PayIn, "6000") }).unwrap());
    let why = || "why".to_owned();
    for c in [
        Command::Approve { id: oid(6) },
        Command::Deny { id: oid(7), reason: None },
        Command::Complete { id: oid(1) },
        Command::Complete { id: oid(2) },
        Command::Cancel { id: oid(3), reason: None },
        Command::Fail { id: oid(4), reason: None },
        Command::Dispute { id: oid(1), reason: why() },
        Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: why() },
        Command::Dispute { id: oid(2), reason: why() },
        Command::Resolve { id: oid(2), outcome: Outcome::Reverse, reason: why() },
    ] {
        events.extend(run(&mut state, c).unwrap());
    }
    events.extend(run_at(&mut state, Command::ExpireDue, T0.plus_seconds(900)).unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for event in events.iter().filter(|e| e.orders().is_some()) {
        seen.insert(event.event_type());
        let back = AnyEvent::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(&back, event);
        let o = event.orders().unwrap();
        assert!(OrderEvent::decode(o.event_type(), 2, &o.payload()).is_err());
    }
    seen.insert("StoreCreated");
    seen.insert("TraderUpserted");
    seen.insert("RequisiteUpserted");
    assert_eq!(seen.len(), crate::orders::event::EVENT_TYPES.len(), "{seen:?}");
    assert_eq!(OrderEvent::schemas().len(), crate::orders::event::EVENT_TYPES.len());
    // An order's leaving pending touches its requisite's row, which moves its counters.
    let completed = AnyEvent::from(OrderEvent::Completed(Box::new(OrderTransition {
        id: oid(1),
        reason: None,
        transfer: None,
        at: T0,
    })));
    let r = requisite_entity("t1", "r1");
    assert_eq!(state.touched(&completed)[1], crate::Touched { subject: Subject::Entity(r), moves: false });
    let requisite = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((requisite.completed_today, requisite.pending), (dec("2000"), dec("0")));
    assert_eq!(requisite.last_used_at, Some(T0));
    assert_eq!(state.version(Subject::Entity(r)), Some(1 + 5 + 1 + 5 + 1), "created, 6 assigned, 6 released");

    let rows = state.orders.rows();
    assert_eq!(rows.len(), 1 + 1 + 1 + 7);
    let mut loaded = crate::orders::State::default();
    for row in rows.clone() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.orders);
    assert!(rows.iter().any(|r| r.kind == REQUISITE_KIND && r.key == "t1/r1"));
    for mut wrong in rows {
        wrong.version += 1;
        assert!(crate::orders::State::default().load(wrong).is_err());
    }
    let names: Vec<&str> = [Status::ManualReview, Status::Pending, Status::Denied].map(Status::as_str).to_vec();
    assert_eq!(names, ["manual_review", "pending", "denied"]);
}
