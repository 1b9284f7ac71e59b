//! Given / when / then for providers and fund movements, against the whole state (the ledger's
//! accounts included).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::domain::{DomainCommand, DomainEvent, DomainState};
use crate::recon::command::Terms;
use crate::recon::{MOVEMENT_KIND, PROVIDER_KIND};
use crate::{AccountId, BalanceLimit, Currencies, CurrencyCode, Event as AnyEvent, MovementId, State as AnyState};

const T0: Timestamp = Timestamp(1_000_000);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

fn fresh() -> AnyState {
    AnyState::new(Currencies::standard())
}

fn run(state: &mut AnyState, command: Command) -> Result<Vec<AnyEvent>, Rejection> {
    DomainCommand::execute(&command, state, T0)
}

fn run_at(state: &mut AnyState, command: Command, now: Timestamp) -> Result<Vec<AnyEvent>, Rejection> {
    DomainCommand::execute(&command, state, now)
}

fn types(events: &[AnyEvent]) -> Vec<&'static str> {
    events.iter().map(AnyEvent::event_type).collect()
}

fn ledger_run(state: &mut AnyState, command: ledger::Command) {
    crate::Command::from(command).execute(state, T0).unwrap();
}

fn provider(id: &str) -> SetProvider {
    SetProvider {
        id: id.into(),
        name: "Provider A".into(),
        currency: eur(),
        base_url: "http://127.0.0.1:9/providers/a".into(),
        tolerance: dec("0.50"),
    }
}

fn set(state: &mut AnyState, id: &str) {
    run(state, Command::SetProvider(provider(id))).unwrap();
}

fn account_id(n: u128) -> AccountId {
    AccountId(Uuid::from_u128(n))
}

/// Opens account `n` (a liability, with `metadata`) unless it is open.
fn open(state: &mut AnyState, n: u128, kind: AccountKind, metadata: serde_json::Value) -> AccountId {
    if state.ledger.account(account_id(n)).is_none() {
        let open = OpenAccount {
            id: account_id(n),
            code: format!("acct:{n}"),
            currency: eur(),
            kind,
            limit: BalanceLimit::None,
            metadata,
        };
        ledger_run(state, ledger::Command::OpenAccount(open));
    }
    account_id(n)
}

fn transfer(state: &mut AnyState, debit: AccountId, credit: AccountId, amount: &str) {
    let t = crate::TransferId(Uuid::new_v4());
    let simple = CreateTransfer::simple(t, AccountRef::Id(debit), AccountRef::Id(credit), dec(amount));
    ledger_run(state, ledger::Command::CreateTransfer(simple));
}

/// Player `n`'s money arrives at provider `provider`: its transactional account and the
/// player's liability (attributed to the provider) both grow by `amount`.
fn deposit(state: &mut AnyState, provider: &str, n: u128, amount: &str) -> AccountId {
    let player = open(state, n, AccountKind::Liability, serde_json::json!({"provider": provider}));
    transfer(state, transactional_account(provider).0, player, amount);
    player
}

/// The operator's own money paid in at the provider's transactional account.
fn operator_funds(state: &mut AnyState, provider: &str, amount: &str) {
    let equity = open(state, 900, AccountKind::Equity, serde_json::Value::Null);
    transfer(state, transactional_account(provider).0, equity, amount);
}

fn balance(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).unwrap().balance()
}

fn available(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).unwrap().available()
}

fn mv(n: u128) -> MovementId {
    MovementId(Uuid::from_u128(5000 + n))
}

fn move_money(n: u128, direction: Direction, amount: &str) -> Command {
    Command::MoveMoney(MoveMoney {
        id: mv(n),
        provider: "psp-a".into(),
        direction,
        amount: dec(amount),
        reason: "weekly sweep".into(),
    })
}

fn attempt(n: u128, outcome: Outcome, max_attempts: u32) -> Command {
    Command::RecordAttempt(Attempt { id: mv(n), outcome, terms: Terms { max_attempts, retry_seconds: 5 } })
}

fn error(text: &str) -> Outcome {
    Outcome::Error { error: text.into() }
}

fn audit_entries(events: &[AnyEvent]) -> Vec<(String, Level)> {
    events
        .iter()
        .filter_map(AnyEvent::audit)
        .map(|e| (e.recorded().entry.action.clone(), e.recorded().entry.level))
        .collect()
}

/// A provider holding 1000 of players' money and 300 of the operator's.
fn funded() -> AnyState {
    let mut state = fresh();
    set(&mut state, "psp-a");
    deposit(&mut state, "psp-a", 10, "600");
    deposit(&mut state, "psp-a", 11, "400");
    operator_funds(&mut state, "psp-a", "300");
    state
}

#[test]
fn a_provider_opens_its_two_asset_accounts_once_and_records_what_changed() {
    let mut state = fresh();
    let events = run(&mut state, Command::SetProvider(provider("psp-a"))).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "AccountOpened", "ProviderSet", "AuditRecorded"]);
    assert_eq!(events[2].subject(), crate::Subject::Entity(provider_entity("psp-a")));
    for (id, code) in [transactional_account("psp-a"), operational_account("psp-a")] {
        let a = state.ledger.account(id).unwrap();
        assert_eq!((a.code.as_str(), a.kind, a.currency.as_str()), (code.as_str(), AccountKind::Asset, "EUR"));
        assert_eq!(a.limit, AccountKind::Asset.no_overdraft_limit(), "{code} never goes below zero");
    }
    let p = state.recon.provider("psp-a").unwrap();
    assert_eq!((p.version, p.tolerance.to_string().as_str()), (1, "0.50"));
    assert_eq!(audit_entries(&events), [("recon.provider.set".to_owned(), Level::Info)]);
    // The same again changes nothing; a new name is a change with the old one audited.
    assert_eq!(run(&mut state, Command::SetProvider(provider("psp-a"))).unwrap(), []);
    let renamed = SetProvider { name: "Provider A2".into(), tolerance: dec("0.5"), ..provider("psp-a") };
    let events = run(&mut state, Command::SetProvider(renamed)).unwrap();
    assert_eq!(types(&events), ["ProviderSet", "AuditRecorded"], "no account opens twice");
    let entry = &events[1].audit().unwrap().recorded().entry;
    assert_eq!(entry.before.as_ref().unwrap()["name"], "Provider A");
    assert_eq!(entry.after.as_ref().unwrap()["name"], "Provider A2");
    assert_eq!(state.recon.provider("psp-a").map(|p| (p.version, p.created_at)), Some((2, T0)));
    let usd = SetProvider { currency: CurrencyCode::parse("USD").unwrap(), ..provider("psp-a") };
    assert_eq!(run(&mut state, Command::SetProvider(usd)).unwrap_err(), Rejection::CurrencyFixed);
}

#[test]
fn a_provider_is_refused_whole_for_each_bad_field() {
    let cases: Vec<(SetProvider, &str)> = vec![
        (SetProvider { id: "a b".into(), ..provider("x") }, "invalid_provider_id"),
        (SetProvider { id: "whsec_x".into(), ..provider("x") }, "invalid_provider_id"),
        (SetProvider { name: String::new(), ..provider("x") }, "invalid_name"),
        (SetProvider { name: "a\u{0}".into(), ..provider("x") }, "invalid_name"),
        (SetProvider { name: "n".repeat(129), ..provider("x") }, "invalid_name"),
        (SetProvider { base_url: "ftp://h/x".into(), ..provider("x") }, "invalid_base_url"),
        (SetProvider { base_url: "http://h/a b".into(), ..provider("x") }, "invalid_base_url"),
        (SetProvider { base_url: "127.0.0.1:9".into(), ..provider("x") }, "invalid_base_url"),
        (SetProvider { currency: CurrencyCode::parse("XYZ").unwrap(), ..provider("x") }, "unknown_currency"),
        (SetProvider { tolerance: dec("-0.01"), ..provider("x") }, "invalid_tolerance"),
        (SetProvider { tolerance: dec("0.001"), ..provider("x") }, "invalid_tolerance"),
    ];
    for (c, code) in cases {
        let mut state = fresh();
        assert_eq!(run(&mut state, Command::SetProvider(c.clone())).unwrap_err().code(), code, "{c:?}");
        assert!(state.recon.provider(&c.id).is_none() && state.ledger.accounts().next().is_none(), "{c:?}");
    }
    let mut state = fresh();
    let exact = SetProvider { base_url: "https://psp.example/v1".into(), tolerance: dec("0.010"), ..provider("x") };
    run(&mut state, Command::SetProvider(exact)).unwrap();
    assert_eq!(state.recon.provider("x").unwrap().tolerance.to_string(), "0.01", "rescaled to the currency");
}

#[test]
fn the_players_balances_attributed_to_a_provider_follow_every_posting() {
    let mut state = funded();
    assert_eq!(state.ledger.attributed_to("psp-a", &eur()), dec("1000"));
    // Another provider's players, an asset naming the provider, and another currency do not count.
    set(&mut state, "psp-b");
    deposit(&mut state, "psp-b", 12, "50");
    open(&mut state, 13, AccountKind::Asset, serde_json::json!({"provider": "psp-a"}));
    assert_eq!(state.ledger.attributed_to("psp-a", &eur()), dec("1000"));
    assert_eq!(state.ledger.attributed_to("psp-b", &eur()), dec("50"));
    assert_eq!(state.ledger.attributed_to("psp-a", &CurrencyCode::parse("USD").unwrap()), Decimal::ZERO);
    // A player's loss to the operator lowers what the provider must hold for players.
    let revenue = open(&mut state, 901, AccountKind::Income, serde_json::Value::Null);
    transfer(&mut state, account_id(10), revenue, "125.50");
    assert_eq!(state.ledger.attributed_to("psp-a", &eur()), dec("874.50"));
    // A store reloading every account finds the same sums.
    let mut reloaded = crate::LedgerState::new(Currencies::standard());
    for a in state.ledger.accounts() {
        reloaded.load_account(a.clone());
    }
    assert_eq!(reloaded.attributed_to("psp-a", &eur()), dec("874.50"));
    assert_eq!(reloaded.attributed_to("psp-b", &eur()), dec("50"));
}

#[test]
fn a_move_to_operational_may_take_exactly_the_operators_money_and_no_more() {
    let mut state = funded();
    let (t, o) = (transactional_account("psp-a").0, operational_account("psp-a").0);
    let breach = run(&mut state, move_money(1, Direction::ToOperational, "300.01")).unwrap_err();
    assert_eq!(breach, Rejection::SegregationBreach);
    assert!(state.recon.movement(mv(1)).is_none());
    assert_eq!((balance(&state, t), available(&state, t)), (dec("1300"), dec("1300")), "nothing held");
    let events = run(&mut state, move_money(1, Direction::ToOperational, "300")).unwrap();
    assert_eq!(types(&events), ["PendingTransferCreated", "MovementRequested", "AuditRecorded"]);
    let m = state.recon.movement(mv(1)).unwrap();
    assert_eq!((m.status, m.transactional, m.players), (MovementStatus::Pending, dec("1300"), dec("1000")));
    assert_eq!((m.next_attempt_at, m.transfer), (Some(T0), movement_transfer(mv(1))));
    assert_eq!(available(&state, t), dec("1000"), "held until the provider answers");
    assert_eq!(balance(&state, o), Decimal::ZERO);
    // The hold counts: a second move finds nothing left to take.
    let again = run(&mut state, move_money(2, Direction::ToOperational, "0.01")).unwrap_err();
    assert_eq!(again, Rejection::SegregationBreach);
}

#[test]
fn a_move_to_transactional_needs_the_operational_money() {
    let mut state = funded();
    let short = run(&mut state, move_money(1, Direction::ToTransactional, "1")).unwrap_err();
    assert_eq!(short.code(), "insufficient_funds");
    assert!(state.recon.movement(mv(1)).is_none());
    run(&mut state, move_money(1, Direction::ToOperational, "200")).unwrap();
    run(&mut state, attempt(1, Outcome::Succeeded, 5)).unwrap();
    run(&mut state, move_money(2, Direction::ToTransactional, "200")).unwrap();
    assert_eq!(available(&state, operational_account("psp-a").0), Decimal::ZERO);
    run(&mut state, attempt(2, Outcome::Succeeded, 5)).unwrap();
    assert_eq!(balance(&state, transactional_account("psp-a").0), dec("1300"));
}

#[test]
fn a_movement_is_idempotent_by_id_and_its_fields_are_checked() {
    let mut state = funded();
    run(&mut state, move_money(1, Direction::ToOperational, "100")).unwrap();
    assert_eq!(run(&mut state, move_money(1, Direction::ToOperational, "100.00")).unwrap(), []);
    let other = run(&mut state, move_money(1, Direction::ToOperational, "99")).unwrap_err();
    assert_eq!(other, Rejection::MovementExists);
    let mut c = MoveMoney {
        id: mv(3),
        provider: "nobody".into(),
        ..match move_money(3, Direction::ToOperational, "1") {
            Command::MoveMoney(c) => c,
            _ => unreachable!(),
        }
    };
    assert_eq!(run(&mut state, Command::MoveMoney(c.clone())).unwrap_err(), Rejection::ProviderNotFound);
    c.provider = "psp-a".into();
    for (amount, reason, code) in [
        ("1", " ", "invalid_reason"),
        ("1", "a\u{7}", "invalid_reason"),
        ("0", "r", "amount_must_be_positive"),
        ("-1", "r", "amount_must_be_positive"),
        ("0.001", "r", "amount_scale"),
    ] {
        let bad = MoveMoney { amount: dec(amount), reason: reason.into(), ..c.clone() };
        assert_eq!(run(&mut state, Command::MoveMoney(bad)).unwrap_err().code(), code, "{amount} {reason:?}");
    }
    assert!(state.recon.movement(mv(3)).is_none());
}

#[test]
fn a_successful_call_posts_the_hold_and_a_refusal_voids_it_with_the_providers_reason() {
    let mut state = funded();
    let (t, o) = (transactional_account("psp-a").0, operational_account("psp-a").0);
    run(&mut state, move_money(1, Direction::ToOperational, "100")).unwrap();
    let events = run(&mut state, attempt(1, Outcome::Succeeded, 5)).unwrap();
    assert_eq!(types(&events), ["PendingTransferPosted", "MovementSucceeded", "AuditRecorded"]);
    let m = state.recon.movement(mv(1)).unwrap();
    assert_eq!((m.status, m.attempts.len(), m.next_attempt_at, m.version), (MovementStatus::Succeeded, 1, None, 2));
    assert_eq!((balance(&state, t), balance(&state, o)), (dec("1200"), dec("100")));
    let settled = run(&mut state, attempt(1, Outcome::Succeeded, 5)).unwrap_err();
    assert_eq!(settled, Rejection::MovementSettled, "a repeated answer moves nothing twice");

    run(&mut state, move_money(2, Direction::ToOperational, "50")).unwrap();
    let refused = Outcome::Refused { reason: "daily limit reached".into() };
    let events = run(&mut state, attempt(2, refused, 5)).unwrap();
    assert_eq!(types(&events), ["PendingTransferVoided", "MovementRefused", "AuditRecorded"]);
    assert_eq!(audit_entries(&events), [("recon.movement.refused".to_owned(), Level::Warning)]);
    let m = state.recon.movement(mv(2)).unwrap();
    assert_eq!((m.status, m.status_reason.as_deref()), (MovementStatus::Refused, Some("daily limit reached")));
    assert_eq!((available(&state, t), balance(&state, o)), (dec("1200"), dec("100")), "the hold is released");
    let bad = Outcome::Refused { reason: "\u{0}".into() };
    run(&mut state, move_money(3, Direction::ToOperational, "1")).unwrap();
    assert_eq!(run(&mut state, attempt(3, bad, 5)).unwrap_err(), Rejection::InvalidReason);
    let missing = Command::RecordAttempt(Attempt { id: mv(9), outcome: Outcome::Succeeded, terms: Terms::default() });
    assert_eq!(run(&mut state, missing).unwrap_err(), Rejection::MovementNotFound);
}

#[test]
fn errors_retry_with_doubling_waits_and_the_last_one_voids_with_a_critical_entry() {
    let mut state = funded();
    run(&mut state, move_money(1, Direction::ToOperational, "100")).unwrap();
    let mut now = T0;
    for (n, wait) in [(1u32, 5u32), (2, 10)] {
        let events = run_at(&mut state, attempt(1, error("connection refused"), 3), now).unwrap();
        assert_eq!(types(&events), ["MovementAttemptFailed"], "attempt {n}");
        let m = state.recon.movement(mv(1)).unwrap();
        assert_eq!((m.status, m.attempts.len()), (MovementStatus::Pending, n as usize));
        assert_eq!(m.next_attempt_at, Some(now.plus_seconds(wait)), "attempt {n}");
        assert_eq!(m.attempts.last().map(|a| (a.attempt, a.outcome.as_str())), Some((n, "error")));
        now = now.plus_seconds(wait);
    }
    let events = run_at(&mut state, attempt(1, error("timed out after 10 s"), 3), now).unwrap();
    assert_eq!(types(&events), ["PendingTransferVoided", "MovementFailed", "AuditRecorded"]);
    assert_eq!(audit_entries(&events), [("recon.movement.failed".to_owned(), Level::Critical)]);
    let m = state.recon.movement(mv(1)).unwrap();
    assert_eq!((m.status, m.status_reason.as_deref()), (MovementStatus::Failed, Some("timed out after 10 s")));
    assert_eq!((m.attempts.len(), m.next_attempt_at), (3, None));
    assert_eq!(available(&state, transactional_account("psp-a").0), dec("1300"));
}

#[test]
fn waits_double_from_the_configured_first_and_stop_at_an_hour() {
    let terms = Terms { max_attempts: 50, retry_seconds: 5 };
    let waits: Vec<u32> = (1..=6).map(|n| terms.backoff(n)).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160]);
    assert_eq!(terms.backoff(11), 3600);
    assert_eq!(terms.backoff(40), 3600);
    assert_eq!(Terms { max_attempts: 1, retry_seconds: 3600 }.backoff(1), 3600);
    let resolved = Terms::resolve(|k| match k {
        crate::recon::MAX_ATTEMPTS_KEY => serde_json::json!(7),
        _ => serde_json::Value::Null,
    });
    assert_eq!((resolved.max_attempts, resolved.retry_seconds), (7, crate::recon::DEFAULT_RETRY_SECONDS));
    assert_eq!(Terms::default().max_attempts, crate::recon::DEFAULT_MAX_ATTEMPTS);
}

#[test]
fn rows_give_back_the_state_and_name_their_entities() {
    let mut state = funded();
    run(&mut state, move_money(1, Direction::ToOperational, "100")).unwrap();
    run(&mut state, attempt(1, error("503"), 5)).unwrap();
    let rows = state.recon.rows();
    assert_eq!(rows.len(), 2);
    let movement = rows.iter().find(|r| r.kind == MOVEMENT_KIND).unwrap();
    assert_eq!((movement.id, movement.key.clone()), (movement_entity(mv(1)).id, format!("psp-a/{}", mv(1))));
    assert_eq!(movement.version, 2);
    let provider = rows.iter().find(|r| r.kind == PROVIDER_KIND).unwrap();
    assert_eq!((provider.id, provider.key.as_str()), (provider_entity("psp-a").id, "psp-a"));
    assert_eq!(state.recon.row(movement_entity(mv(1))).map(|r| r.version), Some(2));
    let mut loaded = State::new(&Currencies::standard());
    for row in rows {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.recon);
    let mut wrong = state.recon.rows().into_iter().find(|r| r.kind == MOVEMENT_KIND).unwrap();
    wrong.version = 9;
    assert!(State::new(&Currencies::standard()).load(wrong).is_err());
}

#[test]
fn every_event_reads_back_as_itself() {
    let mut state = funded();
    let mut events = run(&mut state, move_money(1, Direction::ToOperational, "100")).unwrap();
    events.extend(run(&mut state, attempt(1, error("503"), 5)).unwrap());
    events.extend(run(&mut state, attempt(1, Outcome::Succeeded, 5)).unwrap());
    run(&mut state, move_money(2, Direction::ToOperational, "1")).unwrap();
    events.extend(run(&mut state, attempt(2, Outcome::Refused { reason: "no".into() }, 5)).unwrap());
    run(&mut state, move_money(3, Direction::ToOperational, "1")).unwrap();
    events.extend(run(&mut state, attempt(3, error("x"), 1)).unwrap());
    events.extend(run(&mut state, Command::SetProvider(provider("psp-b"))).unwrap());
    let ours: Vec<&crate::recon::Event> = events.iter().filter_map(AnyEvent::recon).collect();
    let kinds: std::collections::BTreeSet<&str> = ours.iter().map(|e| e.event_type()).collect();
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    for e in ours {
        let back = crate::recon::Event::decode(e.event_type(), 1, &e.payload()).unwrap();
        assert_eq!(&back, e);
        assert!(crate::recon::Event::decode(e.event_type(), 2, &e.payload()).is_err());
    }
}

mod runs;
mod schedules;
