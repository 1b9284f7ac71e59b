//! Given / when / then for the gaming wallet, against the whole state (the ledger's accounts
//! included). Player `p1` plays in EUR; `psp` is a payment provider, `games` a game aggregator.

mod bonuses;
mod games;
mod payments;
mod players;
mod rows;

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use uuid::Uuid;

use crate::audit::{self, Level};
use crate::domain::{Answer, DomainCommand, DomainEvent, DomainState, Replay, Subject, Touched};
use crate::ids::{AccountId, Timestamp, WithdrawalId};
use crate::ids::{BonusId, DepositId};
use crate::money::CurrencyCode;
use crate::sealed::Sealed;
use crate::wallet::command::{
    Command, CreateDeposit, GameAction, GameCall, GrantBonus, Kyc, Limits, OpenBonusPolicy, ProviderKind,
    RequestWithdrawal, Settle, UpsertPlayer, UpsertProvider,
};
use crate::wallet::event::{Event, GameTx, Pending, Timed, Wagering};
use crate::wallet::rejection::Rejection;
use crate::wallet::state::{BonusStatus, DepositStatus, State, Withdrawal, WithdrawalStatus};
use crate::wallet::{
    LimitKind, bonus_account, bonus_cost_account, bonus_entity, clearing_account, deposit_entity, game_revenue_account,
    game_tx_entity, locked_account, main_account, player_entity, provider_entity, round_transfer, settlement_account,
    transfer_of, withdrawal_entity,
};
use crate::{AccountKind, BalanceLimit};
use crate::{Currencies, Event as AnyEvent, State as AnyState};

const HOUR: i64 = 3600 * 1_000_000;
const DAY: i64 = 24 * HOUR;
/// Noon of a UTC day (a Wednesday, 2023-12-06).
const T0: Timestamp = Timestamp(19_697 * DAY + DAY / 2);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

fn at(hours: i64) -> Timestamp {
    Timestamp(T0.0 + hours * HOUR)
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

fn sealed(what: &str) -> Sealed {
    Sealed { key_id: "k1".into(), nonce: format!("nonce-{what}"), ciphertext: format!("sealed-{what}") }
}

fn player_cmd(id: &str, kyc: Kyc, limits: Limits) -> UpsertPlayer {
    UpsertPlayer { id: id.into(), currency: eur(), kyc, self_excluded_until: None, limits, cooldown_hours: 24 }
}

fn player(state: &mut AnyState, id: &str) {
    run(state, Command::UpsertPlayer(Box::new(player_cmd(id, Kyc::Basic, Limits::default())))).unwrap();
}

fn provider(state: &mut AnyState, id: &str, kind: ProviderKind) {
    let c =
        UpsertProvider { id: id.into(), kind, secret: sealed(id), base_url: Some(format!("http://127.0.0.1:9/{id}")) };
    run(state, Command::UpsertProvider(Box::new(c))).unwrap();
}

/// A player `p1` with both providers.
fn setup() -> AnyState {
    let mut s = fresh();
    player(&mut s, "p1");
    provider(&mut s, "psp", ProviderKind::Payments);
    provider(&mut s, "games", ProviderKind::Games);
    s
}

fn did(n: u128) -> DepositId {
    DepositId(Uuid::from_u128(100 + n))
}

fn wid(n: u128) -> WithdrawalId {
    WithdrawalId(Uuid::from_u128(200 + n))
}

fn bid(n: u128) -> BonusId {
    BonusId(Uuid::from_u128(300 + n))
}

fn tx(n: u128) -> Uuid {
    Uuid::from_u128(400 + n)
}

fn deposit_cmd(n: u128, amount: &str) -> Command {
    Command::CreateDeposit(Box::new(CreateDeposit {
        id: did(n),
        player: "p1".into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
    }))
}

fn settle<Id>(id: Id, succeeded: bool, amount: &str, event: &str) -> Box<Settle<Id>> {
    Box::new(Settle {
        id,
        provider: "psp".into(),
        succeeded,
        amount: dec(amount),
        currency: eur(),
        provider_reference: Some(format!("ref-{event}")),
        reason: (!succeeded).then(|| "declined".into()),
        event_id: event.into(),
    })
}

/// Deposits and settles `amount` to p1's main.
fn deposit(state: &mut AnyState, n: u128, amount: &str) {
    run(state, deposit_cmd(n, amount)).unwrap();
    run(state, Command::SettleDeposit(settle(did(n), true, amount, &format!("evt-{n}")))).unwrap();
}

fn balance(state: &AnyState, account: (AccountId, String)) -> Decimal {
    state.ledger.account(account.0).map_or(Decimal::ZERO, |a| a.balance())
}

fn main_of(state: &AnyState) -> Decimal {
    balance(state, main_account("p1"))
}

fn bonus_of(state: &AnyState) -> Decimal {
    balance(state, bonus_account("p1"))
}

fn withdraw_cmd(n: u128, amount: &str, policy: OpenBonusPolicy) -> Command {
    Command::RequestWithdrawal(Box::new(RequestWithdrawal {
        id: wid(n),
        player: "p1".into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
        timeout_seconds: 600,
        open_bonus: policy,
    }))
}

fn call(action: GameAction, n: u128, round: &str, amount: &str) -> GameCall {
    GameCall {
        provider: "games".into(),
        action,
        transaction: tx(n),
        player: "p1".into(),
        round: round.into(),
        amount: dec(amount),
        currency: eur(),
        reference: None,
        round_closed: false,
        bonus_first: false,
        wagering_bonus_only: false,
    }
}

fn game_run(state: &mut AnyState, c: GameCall) -> Result<Vec<AnyEvent>, Rejection> {
    run(state, Command::Game(Box::new(c)))
}

fn rollback(n: u128, of: u128, round: &str) -> GameCall {
    GameCall { reference: Some(tx(of)), ..call(GameAction::Rollback, n, round, "0") }
}

fn bonus_cmd(n: u128, amount: &str, multiplier: &str) -> Command {
    Command::GrantBonus(Box::new(GrantBonus {
        id: bid(n),
        player: "p1".into(),
        amount: dec(amount),
        wagering_multiplier: dec(multiplier),
        expires_at: at(48),
    }))
}

fn recorded(events: &[AnyEvent]) -> &GameTx {
    events
        .iter()
        .find_map(|e| match e.wallet() {
            Some(Event::BetPlaced(t) | Event::WinPaid(t) | Event::RollbackRecorded(t)) => Some(&**t),
            _ => None,
        })
        .expect("a game transaction was recorded")
}

fn audit_actions(events: &[AnyEvent]) -> Vec<(String, Level)> {
    events
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Audit(audit::Event::Recorded(r)) => Some((r.entry.action.clone(), r.entry.level)),
            _ => None,
        })
        .collect()
}

fn audit_entries(events: &[AnyEvent]) -> Vec<&audit::Entry> {
    events
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Audit(audit::Event::Recorded(r)) => Some(&r.entry),
            _ => None,
        })
        .collect()
}

fn withdrawal(state: &AnyState, n: u128) -> &Withdrawal {
    state.wallet.withdrawal(wid(n)).unwrap()
}
