//! Given / when / then for the gaming wallet, against the whole state (the ledger's accounts
//! included). Player `p1` plays in EUR; `psp` is a payment provider, `games` a game aggregator.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::domain::{Answer, DomainCommand, DomainEvent, DomainState, Replay, Subject};
use crate::ids::{BonusId, DepositId};
use crate::sealed::Sealed;
use crate::wallet::command::Kyc;
use crate::wallet::state::Withdrawal;
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

fn withdrawal(state: &AnyState, n: u128) -> &Withdrawal {
    state.wallet.withdrawal(wid(n)).unwrap()
}

// --- players and providers ---

#[test]
fn a_new_player_gets_its_three_accounts_and_an_audit_entry_and_the_same_fields_replay() {
    let mut s = fresh();
    let events = run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::None, Limits::default())))).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "AccountOpened", "AccountOpened", "AuditRecorded", "PlayerUpserted"]);
    assert_eq!(audit_actions(&events), [("wallet.player.upsert".to_owned(), Level::Info)]);
    for account in [main_account("p1"), bonus_account("p1"), locked_account("p1")] {
        let a = s.ledger.account(account.0).unwrap();
        assert_eq!(
            (a.kind, a.limit, &a.code),
            (AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits, &account.1)
        );
    }
    let again = run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::None, Limits::default())))).unwrap();
    assert!(again.is_empty());
    let usd = UpsertPlayer {
        currency: CurrencyCode::parse("USD").unwrap(),
        ..player_cmd("p1", Kyc::None, Limits::default())
    };
    assert_eq!(run(&mut s, Command::UpsertPlayer(Box::new(usd))), Err(Rejection::CurrencyFixed));
    let kyc = run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Full, Limits::default())))).unwrap();
    assert_eq!(types(&kyc), ["AuditRecorded", "PlayerUpserted"]);
    assert_eq!(s.wallet.player("p1").unwrap().kyc, Kyc::Full);
    assert_eq!(s.wallet.player("p1").unwrap().version, 2);
}

#[test]
fn player_fields_are_checked() {
    let mut s = fresh();
    let bad_id = player_cmd("ldg_x", Kyc::None, Limits::default());
    assert_eq!(run(&mut s, Command::UpsertPlayer(Box::new(bad_id))), Err(Rejection::InvalidParticipantId));
    let xxx = UpsertPlayer {
        currency: CurrencyCode::parse("XXX").unwrap(),
        ..player_cmd("p1", Kyc::None, Limits::default())
    };
    assert_eq!(run(&mut s, Command::UpsertPlayer(Box::new(xxx))).unwrap_err().code(), "unknown_currency");
    for bad in ["0", "-1", "1.001"] {
        let limits = Limits { loss_day: Some(dec(bad)), ..Limits::default() };
        let c = player_cmd("p1", Kyc::None, limits);
        assert_eq!(run(&mut s, Command::UpsertPlayer(Box::new(c))), Err(Rejection::InvalidLimit), "{bad}");
    }
    assert!(s.wallet.player("p1").is_none());
    assert!(s.ledger.account(main_account("p1").0).is_none());
}

#[test]
fn a_stricter_limit_applies_at_once_and_a_looser_one_after_the_cooldown() {
    let mut s = setup();
    let set = |s: &mut AnyState, day: Option<&str>, now: Timestamp| {
        let limits = Limits { deposit_day: day.map(dec), ..Limits::default() };
        run_at(s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, limits))), now)
    };
    set(&mut s, Some("100"), T0).unwrap();
    let p = s.wallet.player("p1").unwrap();
    assert_eq!(p.limits.deposit_day.at(T0), Some(dec("100.00")));
    assert_eq!(p.limits.deposit_day.pending, None);
    // Looser: the value in force stays, the new one waits 24 hours.
    set(&mut s, Some("500"), at(1)).unwrap();
    let t = s.wallet.player("p1").unwrap().limits.deposit_day;
    assert_eq!(t.value, Some(dec("100.00")));
    assert_eq!(t.pending, Some(Pending { value: Some(dec("500.00")), from: at(25) }));
    assert_eq!(t.at(Timestamp(at(25).0 - 1)), Some(dec("100.00")));
    assert_eq!(t.at(at(25)), Some(dec("500.00")));
    // Asking for it again keeps its time, and is no change at all.
    assert!(set(&mut s, Some("500"), at(5)).unwrap().is_empty());
    assert_eq!(s.wallet.player("p1").unwrap().limits.deposit_day.pending.unwrap().from, at(25));
    // Removing it is looser too; stricter again drops the pending value.
    set(&mut s, None, at(6)).unwrap();
    assert_eq!(s.wallet.player("p1").unwrap().limits.deposit_day.pending, Some(Pending { value: None, from: at(30) }));
    set(&mut s, Some("50"), at(7)).unwrap();
    let t = s.wallet.player("p1").unwrap().limits.deposit_day;
    assert_eq!((t.value, t.pending), (Some(dec("50.00")), None));
    // Deposits see the limit in force at their time.
    assert_eq!(
        run_at(&mut s, deposit_cmd(1, "60"), at(8)),
        Err(Rejection::LimitExceeded { limit: LimitKind::DepositDay, remaining: dec("50.00") })
    );
    set(&mut s, Some("80"), at(8)).unwrap();
    run_at(&mut s, deposit_cmd(1, "40"), at(9)).unwrap();
    assert_eq!(
        run_at(&mut s, deposit_cmd(2, "20"), at(10)),
        Err(Rejection::LimitExceeded { limit: LimitKind::DepositDay, remaining: dec("10.00") })
    );
    // The next UTC day counts afresh, and the looser 80 is in force 24 hours after it was asked.
    run_at(&mut s, deposit_cmd(2, "80"), at(32)).unwrap();
}

#[test]
fn a_cooldown_of_zero_applies_a_looser_limit_at_once() {
    let mut s = setup();
    let limits = Limits { loss_day: Some(dec("10")), ..Limits::default() };
    run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, limits)))).unwrap();
    let looser = UpsertPlayer { cooldown_hours: 0, ..player_cmd("p1", Kyc::Basic, Limits::default()) };
    run_at(&mut s, Command::UpsertPlayer(Box::new(looser)), at(1)).unwrap();
    let t = s.wallet.player("p1").unwrap().limits.loss_day;
    assert_eq!((t.value, t.pending), (None, None));
}

#[test]
fn self_exclusion_refuses_deposits_and_bets_but_not_withdrawals_and_ends_only_after_the_cooldown() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let excluded = |until: Option<Timestamp>| UpsertPlayer {
        self_excluded_until: until,
        ..player_cmd("p1", Kyc::Basic, Limits::default())
    };
    run(&mut s, Command::UpsertPlayer(Box::new(excluded(Some(at(72)))))).unwrap();
    assert_eq!(run_at(&mut s, deposit_cmd(2, "10"), at(1)), Err(Rejection::SelfExcluded));
    let bet = call(GameAction::Bet, 1, "r1", "5");
    assert_eq!(run_at(&mut s, Command::Game(Box::new(bet.clone())), at(1)), Err(Rejection::SelfExcluded));
    run_at(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse), at(1)).unwrap();
    // Lifting it early is looser: it waits for the cooldown.
    run_at(&mut s, Command::UpsertPlayer(Box::new(excluded(None))), at(2)).unwrap();
    assert_eq!(run_at(&mut s, deposit_cmd(2, "10"), at(25)), Err(Rejection::SelfExcluded));
    run_at(&mut s, deposit_cmd(2, "10"), at(26)).unwrap();
    run_at(&mut s, Command::Game(Box::new(bet)), at(26)).unwrap();
    // Extending it applies at once; one that ended is none.
    run_at(&mut s, Command::UpsertPlayer(Box::new(excluded(Some(at(100))))), at(27)).unwrap();
    assert_eq!(run_at(&mut s, deposit_cmd(3, "10"), at(28)), Err(Rejection::SelfExcluded));
    run_at(&mut s, deposit_cmd(3, "10"), at(100)).unwrap();
}

#[test]
fn a_provider_keeps_its_kind_and_the_same_fields_replay() {
    let mut s = fresh();
    let c = UpsertProvider { id: "psp".into(), kind: ProviderKind::Payments, secret: sealed("a"), base_url: None };
    let events = run(&mut s, Command::UpsertProvider(Box::new(c.clone()))).unwrap();
    assert_eq!(types(&events), ["AuditRecorded", "ProviderUpserted"]);
    assert!(!format!("{events:?}").contains("http"));
    assert!(run(&mut s, Command::UpsertProvider(Box::new(c.clone()))).unwrap().is_empty());
    let games = UpsertProvider { kind: ProviderKind::Games, ..c.clone() };
    assert_eq!(run(&mut s, Command::UpsertProvider(Box::new(games))), Err(Rejection::ProviderKindFixed));
    let spaced = UpsertProvider { base_url: Some("http://a b".into()), ..c.clone() };
    assert_eq!(run(&mut s, Command::UpsertProvider(Box::new(spaced))), Err(Rejection::InvalidBaseUrl));
    let rotated = UpsertProvider { secret: sealed("b"), ..c };
    assert_eq!(
        types(&run(&mut s, Command::UpsertProvider(Box::new(rotated))).unwrap()),
        ["AuditRecorded", "ProviderUpserted"]
    );
    assert_eq!(s.wallet.provider("psp").unwrap().secret, sealed("b"));
    assert_eq!(s.wallet.provider("psp").unwrap().version, 2);
}

// --- deposits ---

#[test]
fn a_deposit_moves_nothing_until_its_webhook_succeeds_and_then_clearing_pays_main() {
    let mut s = setup();
    let events = run(&mut s, deposit_cmd(1, "25.5")).unwrap();
    assert_eq!(types(&events), ["DepositCreated"]);
    assert_eq!(main_of(&s), Decimal::ZERO);
    assert_eq!(s.wallet.deposit(did(1)).unwrap().amount.to_string(), "25.50");
    // The same body replays; another is refused.
    assert!(run(&mut s, deposit_cmd(1, "25.50")).unwrap().is_empty());
    assert_eq!(run(&mut s, deposit_cmd(1, "26")), Err(Rejection::DepositExists));
    let done = run(&mut s, Command::SettleDeposit(settle(did(1), true, "25.50", "e1"))).unwrap();
    assert_eq!(types(&done), ["AccountOpened", "TransferPosted", "DepositSucceeded"]);
    assert_eq!(main_of(&s), dec("25.50"));
    let clearing = s.ledger.account(clearing_account("psp", &eur()).0).unwrap();
    assert_eq!((clearing.kind, clearing.balance()), (AccountKind::Asset, dec("25.50")));
    let d = s.wallet.deposit(did(1)).unwrap();
    assert_eq!(
        (d.status, d.event_id.as_deref(), d.provider_reference.as_deref()),
        (DepositStatus::Succeeded, Some("e1"), Some("ref-e1"))
    );
    // A duplicate webhook (even under another event id) changes nothing; the other outcome is refused.
    assert!(run(&mut s, Command::SettleDeposit(settle(did(1), true, "25.50", "e2"))).unwrap().is_empty());
    assert_eq!(
        run(&mut s, Command::SettleDeposit(settle(did(1), false, "25.50", "e3"))),
        Err(Rejection::DepositAlreadySettled)
    );
    assert_eq!(main_of(&s), dec("25.50"));
}

#[test]
fn a_deposit_webhook_must_match_its_intent() {
    let mut s = setup();
    provider(&mut s, "psp2", ProviderKind::Payments);
    run(&mut s, deposit_cmd(1, "10")).unwrap();
    assert_eq!(run(&mut s, Command::SettleDeposit(settle(did(2), true, "10", "e"))), Err(Rejection::DepositNotFound));
    let other = Settle { provider: "psp2".into(), ..*settle(did(1), true, "10", "e") };
    assert_eq!(run(&mut s, Command::SettleDeposit(Box::new(other))), Err(Rejection::DepositNotFound));
    assert_eq!(run(&mut s, Command::SettleDeposit(settle(did(1), true, "10.01", "e"))), Err(Rejection::AmountMismatch));
    let usd = Settle { currency: CurrencyCode::parse("USD").unwrap(), ..*settle(did(1), true, "10", "e") };
    assert_eq!(run(&mut s, Command::SettleDeposit(Box::new(usd))), Err(Rejection::AmountMismatch));
    let blank = Settle { event_id: String::new(), ..*settle(did(1), true, "10", "e") };
    assert_eq!(run(&mut s, Command::SettleDeposit(Box::new(blank))), Err(Rejection::InvalidReference));
    let reason = Settle { reason: Some(" ".into()), ..*settle(did(1), false, "10", "e") };
    assert_eq!(run(&mut s, Command::SettleDeposit(Box::new(reason))), Err(Rejection::InvalidReason));
    assert_eq!(s.wallet.deposit(did(1)).unwrap().status, DepositStatus::Pending);
}

#[test]
fn a_deposit_is_refused_up_front_for_unknown_parties_and_bad_amounts() {
    let mut s = setup();
    let with = |player: &str, provider: &str, amount: &str, currency: &str| {
        Command::CreateDeposit(Box::new(CreateDeposit {
            id: did(9),
            player: player.into(),
            amount: dec(amount),
            currency: CurrencyCode::parse(currency).unwrap(),
            provider: provider.into(),
        }))
    };
    assert_eq!(run(&mut s, with("p2", "psp", "1", "EUR")), Err(Rejection::PlayerNotFound));
    assert_eq!(run(&mut s, with("p1", "games", "1", "EUR")), Err(Rejection::ProviderNotFound));
    assert_eq!(run(&mut s, with("p1", "nope", "1", "EUR")), Err(Rejection::ProviderNotFound));
    assert_eq!(run(&mut s, with("p1", "psp", "1", "USD")), Err(Rejection::CurrencyMismatch));
    assert_eq!(run(&mut s, with("p1", "psp", "0", "EUR")).unwrap_err().code(), "amount_must_be_positive");
    assert_eq!(run(&mut s, with("p1", "psp", "1.001", "EUR")).unwrap_err().code(), "amount_scale");
    assert_eq!(run(&mut s, with("p 1", "psp", "1", "EUR")), Err(Rejection::InvalidParticipantId));
    assert_eq!(run(&mut s, with("p1", "whsec_x", "1", "EUR")), Err(Rejection::InvalidParticipantId));
}

#[test]
fn deposit_limits_count_pending_and_succeeded_intents_per_day_week_and_month_and_a_failure_gives_back() {
    let mut s = setup();
    let limits = Limits {
        deposit_day: Some(dec("100")),
        deposit_week: Some(dec("150")),
        deposit_month: Some(dec("170")),
        ..Limits::default()
    };
    run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, limits)))).unwrap();
    run(&mut s, deposit_cmd(1, "60")).unwrap();
    assert_eq!(
        run(&mut s, deposit_cmd(2, "41")),
        Err(Rejection::LimitExceeded { limit: LimitKind::DepositDay, remaining: dec("40.00") })
    );
    // A failed intent gives its amount back to the day.
    run(&mut s, Command::SettleDeposit(settle(did(1), false, "60", "e1"))).unwrap();
    run(&mut s, deposit_cmd(2, "100")).unwrap();
    // The next day (Thursday) the week has 50 left.
    assert_eq!(
        run_at(&mut s, deposit_cmd(3, "60"), at(24)),
        Err(Rejection::LimitExceeded { limit: LimitKind::DepositWeek, remaining: dec("50.00") })
    );
    run_at(&mut s, deposit_cmd(3, "50"), at(24)).unwrap();
    // The next Monday (2023-12-11) starts a new week; the month has 20 left.
    assert_eq!(
        run_at(&mut s, deposit_cmd(4, "21"), at(5 * 24)),
        Err(Rejection::LimitExceeded { limit: LimitKind::DepositMonth, remaining: dec("20.00") })
    );
    run_at(&mut s, deposit_cmd(4, "20"), at(5 * 24)).unwrap();
    // January is a new month, a new week's limit and a new day.
    run_at(&mut s, deposit_cmd(5, "100"), at(26 * 24)).unwrap();
}

// --- withdrawals ---

#[test]
fn a_withdrawal_locks_then_the_provider_succeeds_and_clearing_pays_out() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let events = run(&mut s, withdraw_cmd(1, "40", OpenBonusPolicy::Refuse)).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "WithdrawalRequested"]);
    assert_eq!((main_of(&s), balance(&s, locked_account("p1"))), (dec("60.00"), dec("40.00")));
    assert_eq!(withdrawal(&s, 1).deadline, T0.plus_seconds(600));
    assert_eq!(s.wallet.unsent_withdrawals().map(|w| w.id).collect::<Vec<_>>(), [wid(1)]);
    assert!(run(&mut s, withdraw_cmd(1, "40", OpenBonusPolicy::Refuse)).unwrap().is_empty());
    assert_eq!(run(&mut s, withdraw_cmd(1, "41", OpenBonusPolicy::Refuse)), Err(Rejection::WithdrawalExists));
    let sent = run(&mut s, Command::MarkWithdrawalSent { id: wid(1) }).unwrap();
    assert_eq!(types(&sent), ["WithdrawalSent"]);
    assert!(run(&mut s, Command::MarkWithdrawalSent { id: wid(1) }).unwrap().is_empty());
    assert_eq!(s.wallet.unsent_withdrawals().count(), 0);
    let done = run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "40", "w1"))).unwrap();
    assert_eq!(types(&done), ["TransferPosted", "WithdrawalSucceeded"]);
    assert_eq!(balance(&s, locked_account("p1")), Decimal::ZERO);
    assert_eq!(balance(&s, clearing_account("psp", &eur())), dec("60.00"));
    let steps: Vec<WithdrawalStatus> = withdrawal(&s, 1).steps.iter().map(|s| s.status).collect();
    assert_eq!(steps, [WithdrawalStatus::Locked, WithdrawalStatus::Sent, WithdrawalStatus::Succeeded]);
    assert!(run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "40", "w2"))).unwrap().is_empty());
    assert_eq!(
        run(&mut s, Command::SettleWithdrawal(settle(wid(1), false, "40", "w3"))),
        Err(Rejection::WithdrawalAlreadySettled)
    );
    assert!(run(&mut s, Command::MarkWithdrawalSent { id: wid(1) }).unwrap().is_empty());
    assert_eq!(run(&mut s, Command::MarkWithdrawalSent { id: wid(9) }), Err(Rejection::WithdrawalNotFound));
}

#[test]
fn a_failed_or_timed_out_withdrawal_returns_the_money_to_main_once() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    run(&mut s, withdraw_cmd(1, "30", OpenBonusPolicy::Refuse)).unwrap();
    run(&mut s, withdraw_cmd(2, "20", OpenBonusPolicy::Refuse)).unwrap();
    run(&mut s, Command::SettleWithdrawal(settle(wid(1), false, "30", "w1"))).unwrap();
    assert_eq!((main_of(&s), withdrawal(&s, 1).reason.as_deref()), (dec("80.00"), Some("declined")));
    // Nothing is due before the deadline; at it, the other returns.
    assert!(run_at(&mut s, Command::ExpireWithdrawals, T0.plus_seconds(599)).unwrap().is_empty());
    let expired = run_at(&mut s, Command::ExpireWithdrawals, T0.plus_seconds(600)).unwrap();
    assert_eq!(types(&expired), ["TransferPosted", "WithdrawalTimedOut"]);
    assert_eq!((main_of(&s), balance(&s, locked_account("p1"))), (dec("100.00"), Decimal::ZERO));
    assert_eq!(withdrawal(&s, 2).status, WithdrawalStatus::TimedOut);
    assert!(run_at(&mut s, Command::ExpireWithdrawals, at(5)).unwrap().is_empty());
    // A late outcome of a returned withdrawal is refused, whichever it is.
    for ok in [true, false] {
        assert_eq!(
            run(&mut s, Command::SettleWithdrawal(settle(wid(2), ok, "20", "late"))),
            Err(Rejection::WithdrawalAlreadySettled)
        );
    }
    assert_eq!(
        run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "30", "x"))),
        Err(Rejection::WithdrawalAlreadySettled)
    );
    assert_eq!(
        run(&mut s, Command::SettleWithdrawal(settle(wid(1), false, "31", "x"))),
        Err(Rejection::AmountMismatch)
    );
}

#[test]
fn a_withdrawal_needs_kyc_funds_and_room_under_its_limit() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let none = player_cmd("p1", Kyc::None, Limits::default());
    run(&mut s, Command::UpsertPlayer(Box::new(none))).unwrap();
    assert_eq!(run(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse)), Err(Rejection::KycRequired));
    let limited = player_cmd("p1", Kyc::Basic, Limits { withdraw_day: Some(dec("50")), ..Limits::default() });
    run(&mut s, Command::UpsertPlayer(Box::new(limited))).unwrap();
    run(&mut s, withdraw_cmd(1, "30", OpenBonusPolicy::Refuse)).unwrap();
    assert_eq!(
        run(&mut s, withdraw_cmd(2, "30", OpenBonusPolicy::Refuse)),
        Err(Rejection::LimitExceeded { limit: LimitKind::WithdrawDay, remaining: dec("20.00") })
    );
    // A failed withdrawal gives its amount back to the day.
    run(&mut s, Command::SettleWithdrawal(settle(wid(1), false, "30", "w1"))).unwrap();
    let unlimited = UpsertPlayer { cooldown_hours: 0, ..player_cmd("p1", Kyc::Basic, Limits::default()) };
    run(&mut s, Command::UpsertPlayer(Box::new(unlimited))).unwrap();
    run(&mut s, withdraw_cmd(2, "50", OpenBonusPolicy::Refuse)).unwrap();
    assert_eq!(
        run(&mut s, withdraw_cmd(3, "50.01", OpenBonusPolicy::Refuse)).unwrap_err().code(),
        "insufficient_funds"
    );
    assert!(s.wallet.withdrawal(wid(3)).is_none());
}

#[test]
fn an_open_bonus_refuses_a_withdrawal_or_is_forfeited_by_it_as_the_policy_says() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    run(&mut s, bonus_cmd(1, "20", "10")).unwrap();
    assert_eq!(run(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse)), Err(Rejection::BonusWageringOpen));
    let events = run(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Forfeit)).unwrap();
    assert_eq!(
        types(&events),
        ["TransferPosted", "AuditRecorded", "BonusForfeited", "TransferPosted", "WithdrawalRequested"]
    );
    assert_eq!(audit_actions(&events), [("wallet.bonus.forfeit".to_owned(), Level::Warning)]);
    assert_eq!(bonus_of(&s), Decimal::ZERO);
    assert_eq!(balance(&s, bonus_cost_account(&eur())), Decimal::ZERO);
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().status, BonusStatus::Forfeited);
    assert_eq!(s.wallet.player("p1").unwrap().bonus, None);
    // Refused for want of funds: the bonus is not forfeited either.
    run(&mut s, bonus_cmd(2, "5", "10")).unwrap();
    assert_eq!(
        run(&mut s, withdraw_cmd(2, "1000", OpenBonusPolicy::Forfeit)).unwrap_err().code(),
        "insufficient_funds"
    );
    assert_eq!(s.wallet.bonus(bid(2)).unwrap().status, BonusStatus::Active);
}

// --- game callbacks ---

#[test]
fn a_bet_takes_main_first_then_bonus_and_answers_the_balances() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    run(&mut s, bonus_cmd(1, "20", "30")).unwrap();
    let events = game_run(&mut s, call(GameAction::Bet, 1, "r1", "15")).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "TransferPosted", "BetPlaced"]);
    let t = recorded(&events);
    assert_eq!((t.main, t.bonus), (dec("10.00"), dec("5.00")));
    assert_eq!((t.balance, t.bonus_balance), (dec("0.00"), dec("15.00")));
    assert_eq!(t.wagering, Some(Wagering { bonus: bid(1), amount: dec("15.00") }));
    assert_eq!(balance(&s, settlement_account("games", &eur())), dec("15.00"));
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().wagered, dec("15.00"));
    // Bonus first, counting the bonus part only.
    deposit(&mut s, 2, "10");
    let c = GameCall { bonus_first: true, wagering_bonus_only: true, ..call(GameAction::Bet, 2, "r2", "20") };
    let t = recorded(&game_run(&mut s, c).unwrap()).clone();
    assert_eq!((t.main, t.bonus, t.wagering.map(|w| w.amount)), (dec("5.00"), dec("15.00"), Some(dec("15.00"))));
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("5.00"), dec("0.00")));
    // Not enough in both: refused, nothing moves.
    let refused = game_run(&mut s, call(GameAction::Bet, 3, "r3", "5.01")).unwrap_err();
    assert_eq!((refused.code(), refused.game_status()), ("insufficient_funds", "INSUFFICIENT_FUNDS"));
    assert!(s.wallet.transaction("games", tx(3)).is_none());
    assert_eq!(main_of(&s), dec("5.00"));
}

#[test]
fn a_win_credits_main_and_bonus_in_the_proportion_the_rounds_bets_took_them() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    run(&mut s, bonus_cmd(1, "20", "100")).unwrap();
    // The round takes 10 from main and 20 from bonus: a third and two thirds.
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "30")).unwrap();
    let events = game_run(&mut s, call(GameAction::Win, 2, "r1", "10")).unwrap();
    let t = recorded(&events);
    // 10 × 20/30 = 6.666… rounds half-even to 6.67; main takes the remainder, 3.33.
    assert_eq!((t.main, t.bonus), (dec("3.33"), dec("6.67")));
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("3.33"), dec("6.67")));
    assert_eq!(balance(&s, settlement_account("games", &eur())), dec("20.00"));
    assert_eq!((t.balance, t.bonus_balance), (dec("3.33"), dec("6.67")));
    // A win in a round with no bet goes to main.
    let t = recorded(&game_run(&mut s, call(GameAction::Win, 3, "free", "1")).unwrap()).clone();
    assert_eq!((t.main, t.bonus), (dec("1.00"), dec("0.00")));
    // A win of zero moves nothing and is still recorded.
    let zero = game_run(&mut s, call(GameAction::Win, 4, "r1", "0")).unwrap();
    assert_eq!(types(&zero), ["WinPaid"]);
    assert_eq!(recorded(&zero).transfer, None);
}

#[test]
fn the_same_transaction_again_replays_its_answer_and_a_different_body_is_a_duplicate() {
    let mut s = setup();
    deposit(&mut s, 1, "50");
    let bet = call(GameAction::Bet, 1, "r1", "10");
    game_run(&mut s, bet.clone()).unwrap();
    deposit(&mut s, 2, "50");
    assert!(game_run(&mut s, bet.clone()).unwrap().is_empty());
    let row = s.wallet.transaction("games", tx(1)).unwrap();
    assert_eq!(row.balance, dec("40.00"));
    assert_eq!(main_of(&s), dec("90.00"));
    for other in [
        GameCall { amount: dec("11"), ..bet.clone() },
        GameCall { round: "r2".into(), ..bet.clone() },
        GameCall { action: GameAction::Win, ..bet.clone() },
        GameCall { round_closed: true, ..bet.clone() },
    ] {
        let refused = game_run(&mut s, other).unwrap_err();
        assert_eq!((refused, refused.game_status()), (Rejection::DuplicateTransaction, "DUPLICATE_TRANSACTION"));
    }
}

#[test]
fn a_rollback_reverses_its_bet_exactly_once() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    run(&mut s, bonus_cmd(1, "20", "100")).unwrap();
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "25")).unwrap();
    let events = game_run(&mut s, rollback(2, 1, "r1")).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "BetRolledBack", "RollbackRecorded"]);
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("10.00"), dec("20.00")));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().wagered, Decimal::ZERO);
    assert_eq!(s.wallet.transaction("games", tx(1)).unwrap().rolled_back_by, Some(tx(2)));
    let round = s.wallet.round("games", "r1").unwrap();
    assert_eq!((round.main, round.bonus), (Decimal::ZERO, Decimal::ZERO));
    // The same rollback replays; another rollback of the same bet moves nothing more.
    assert!(game_run(&mut s, rollback(2, 1, "r1")).unwrap().is_empty());
    let again = game_run(&mut s, rollback(3, 1, "r1")).unwrap();
    assert_eq!(types(&again), ["RollbackRecorded"]);
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("10.00"), dec("20.00")));
    // A rollback names a bet of the player, not a win and not another's.
    game_run(&mut s, call(GameAction::Win, 4, "r9", "1")).unwrap();
    assert_eq!(game_run(&mut s, rollback(5, 4, "r9")), Err(Rejection::TransactionNotFound));
    let none = GameCall { reference: None, ..rollback(5, 4, "r9") };
    assert_eq!(game_run(&mut s, none), Err(Rejection::InvalidReference));
}

#[test]
fn a_rollback_before_its_bet_leaves_a_tombstone_that_refuses_the_bet() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    let events = game_run(&mut s, rollback(2, 1, "r1")).unwrap();
    assert_eq!(types(&events), ["BetTombstoned", "RollbackRecorded"]);
    let refused = game_run(&mut s, call(GameAction::Bet, 1, "r1", "5")).unwrap_err();
    assert_eq!((refused, refused.game_status()), (Rejection::TransactionRolledBack, "TRANSACTION_ROLLED_BACK"));
    assert_eq!(main_of(&s), dec("10.00"));
    // Another rollback of the tombstone is fine and moves nothing.
    assert_eq!(types(&game_run(&mut s, rollback(3, 1, "r1")).unwrap()), ["RollbackRecorded"]);
}

#[test]
fn a_rollback_after_a_win_is_refused() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "5")).unwrap();
    game_run(&mut s, call(GameAction::Win, 2, "r1", "7")).unwrap();
    let refused = game_run(&mut s, rollback(3, 1, "r1")).unwrap_err();
    assert_eq!((refused, refused.game_status()), (Rejection::RollbackAfterWin, "ROLLBACK_AFTER_WIN"));
    assert_eq!(main_of(&s), dec("12.00"));
}

#[test]
fn closing_a_round_moves_its_net_to_game_revenue_and_a_closed_round_takes_no_more_calls() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "30")).unwrap();
    let close = GameCall { round_closed: true, ..call(GameAction::Win, 2, "r1", "12") };
    let t = recorded(&game_run(&mut s, close).unwrap()).clone();
    assert_eq!(t.round_transfer, Some(round_transfer("games", "r1")));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    assert_eq!(balance(&s, game_revenue_account(&eur())), dec("18.00"));
    assert!(s.wallet.round("games", "r1").unwrap().closed);
    assert_eq!(game_run(&mut s, call(GameAction::Bet, 3, "r1", "1")), Err(Rejection::RoundClosed));
    assert_eq!(game_run(&mut s, rollback(3, 1, "r1")), Err(Rejection::RoundClosed));
    // A round the player won closes with revenue paying settlement back.
    game_run(&mut s, call(GameAction::Bet, 4, "r2", "10")).unwrap();
    game_run(&mut s, GameCall { round_closed: true, ..call(GameAction::Win, 5, "r2", "25") }).unwrap();
    assert_eq!(balance(&s, game_revenue_account(&eur())), dec("3.00"));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    // A round is one player's.
    player(&mut s, "p2");
    game_run(&mut s, call(GameAction::Bet, 6, "r3", "1")).unwrap();
    let theirs = GameCall { player: "p2".into(), ..call(GameAction::Win, 7, "r3", "1") };
    assert_eq!(game_run(&mut s, theirs), Err(Rejection::RoundClosed));
}

#[test]
fn the_loss_limit_counts_bets_less_wins_and_rollbacks_of_the_day() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let limits = Limits { loss_day: Some(dec("20")), ..Limits::default() };
    run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, limits)))).unwrap();
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "15")).unwrap();
    let refused = game_run(&mut s, call(GameAction::Bet, 2, "r1", "6")).unwrap_err();
    assert_eq!(refused, Rejection::LimitExceeded { limit: LimitKind::LossDay, remaining: dec("5.00") });
    assert_eq!(refused.game_status(), "LIMIT_EXCEEDED");
    game_run(&mut s, call(GameAction::Bet, 2, "r2", "5")).unwrap();
    game_run(&mut s, rollback(3, 2, "r2")).unwrap();
    game_run(&mut s, call(GameAction::Win, 4, "r1", "10")).unwrap();
    // Net loss 15 − 10 = 5: 15 more fit.
    game_run(&mut s, call(GameAction::Bet, 5, "r4", "15")).unwrap();
    assert!(game_run(&mut s, call(GameAction::Bet, 6, "r4", "0.01")).is_err());
    // A new day starts from zero.
    run_at(&mut s, Command::Game(Box::new(call(GameAction::Bet, 6, "r5", "20"))), at(24)).unwrap();
}

#[test]
fn game_calls_are_checked() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    let bet = call(GameAction::Bet, 1, "r1", "1");
    assert_eq!(game_run(&mut s, GameCall { provider: "psp".into(), ..bet.clone() }), Err(Rejection::ProviderNotFound));
    assert_eq!(game_run(&mut s, GameCall { player: "p9".into(), ..bet.clone() }), Err(Rejection::PlayerNotFound));
    let usd = GameCall { currency: CurrencyCode::parse("USD").unwrap(), ..bet.clone() };
    assert_eq!(game_run(&mut s, usd), Err(Rejection::CurrencyMismatch));
    assert_eq!(game_run(&mut s, GameCall { round: String::new(), ..bet.clone() }), Err(Rejection::InvalidReference));
    assert_eq!(
        game_run(&mut s, GameCall { amount: dec("-1"), ..bet.clone() }).unwrap_err().code(),
        "amount_must_be_positive"
    );
    assert_eq!(game_run(&mut s, GameCall { amount: dec("0.001"), ..bet.clone() }).unwrap_err().code(), "amount_scale");
    for r in [Rejection::PlayerNotFound, Rejection::CurrencyMismatch, Rejection::RoundClosed] {
        assert_eq!(r.game_status(), "INVALID_REQUEST");
    }
    assert_eq!(Rejection::TransactionNotFound.game_status(), "TRANSACTION_NOT_FOUND");
    assert_eq!(Rejection::SelfExcluded.game_status(), "SELF_EXCLUDED");
}

#[test]
fn sixty_four_bets_on_one_player_never_overdraw() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let mut accepted = 0;
    for n in 0..64 {
        if game_run(&mut s, call(GameAction::Bet, 10 + n, &format!("r{n}"), "3")).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 33);
    assert_eq!(main_of(&s), dec("1.00"));
    assert_eq!(balance(&s, settlement_account("games", &eur())), dec("99.00"));
}

// --- bonuses ---

#[test]
fn a_bonus_converts_to_main_once_its_wagering_is_met() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    let events = run(&mut s, bonus_cmd(1, "10", "2.5")).unwrap();
    assert_eq!(types(&events), ["AccountOpened", "TransferPosted", "AuditRecorded", "BonusGranted"]);
    assert_eq!(audit_actions(&events), [("wallet.bonus.grant".to_owned(), Level::Info)]);
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().required, dec("25.00"));
    assert_eq!(balance(&s, bonus_cost_account(&eur())), dec("10.00"));
    assert!(run(&mut s, bonus_cmd(1, "10", "2.5")).unwrap().is_empty());
    assert_eq!(run(&mut s, bonus_cmd(1, "11", "2.5")), Err(Rejection::BonusExists));
    assert_eq!(run(&mut s, bonus_cmd(2, "10", "1")), Err(Rejection::BonusOpen));
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "20")).unwrap();
    game_run(&mut s, call(GameAction::Win, 2, "r1", "4")).unwrap();
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().status, BonusStatus::Active);
    let events = game_run(&mut s, call(GameAction::Bet, 3, "r2", "5")).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "TransferPosted", "BetPlaced", "BonusConverted"]);
    let b = s.wallet.bonus(bid(1)).unwrap();
    assert_eq!((b.status, b.closed_amount, b.wagered), (BonusStatus::Converted, Some(dec("10.00")), dec("25.00")));
    // 100 − 20 + 4 − 5 + 10 converted.
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("89.00"), Decimal::ZERO));
    assert_eq!(recorded(&events).balance, dec("89.00"));
    assert_eq!(s.wallet.player("p1").unwrap().bonus, None);
    run(&mut s, bonus_cmd(2, "10", "0")).map(|e| assert_eq!(types(&e).last(), Some(&"BonusConverted"))).unwrap();
    assert_eq!(main_of(&s), dec("99.00"));
}

#[test]
fn a_bonus_expires_or_is_forfeited_back_to_bonus_cost() {
    let mut s = setup();
    run(&mut s, bonus_cmd(1, "10", "5")).unwrap();
    assert!(run_at(&mut s, Command::ExpireBonuses, at(47)).unwrap().is_empty());
    let expired = run_at(&mut s, Command::ExpireBonuses, at(48)).unwrap();
    assert_eq!(types(&expired), ["TransferPosted", "BonusExpired"]);
    assert_eq!((bonus_of(&s), balance(&s, bonus_cost_account(&eur()))), (Decimal::ZERO, Decimal::ZERO));
    assert_eq!(run(&mut s, Command::ForfeitBonus { id: bid(1), reason: None }), Err(Rejection::BonusClosed));
    run(&mut s, bonus_cmd(2, "10", "5")).unwrap();
    let forfeited = run(&mut s, Command::ForfeitBonus { id: bid(2), reason: Some("abuse".into()) }).unwrap();
    assert_eq!(types(&forfeited), ["TransferPosted", "AuditRecorded", "BonusForfeited"]);
    assert!(run(&mut s, Command::ForfeitBonus { id: bid(2), reason: None }).unwrap().is_empty());
    assert_eq!(run(&mut s, Command::ForfeitBonus { id: bid(9), reason: None }), Err(Rejection::BonusNotFound));
    assert_eq!(
        run(&mut s, Command::ForfeitBonus { id: bid(2), reason: Some("\u{7}".into()) }),
        Err(Rejection::InvalidReason)
    );
}

#[test]
fn a_bonus_is_checked() {
    let mut s = setup();
    let with = |multiplier: &str, expires_at: Timestamp| {
        Command::GrantBonus(Box::new(GrantBonus {
            id: bid(1),
            player: "p1".into(),
            amount: dec("10"),
            wagering_multiplier: dec(multiplier),
            expires_at,
        }))
    };
    for (m, e) in [("-1", at(1)), ("1000.01", at(1)), ("1.005", at(1)), ("1", T0)] {
        assert_eq!(run(&mut s, with(m, e)), Err(Rejection::InvalidBonus), "{m}");
    }
    assert!(run(&mut s, with("1000", at(1))).is_ok());
    let nobody = GrantBonus {
        id: bid(2),
        player: "p9".into(),
        amount: dec("1"),
        wagering_multiplier: dec("1"),
        expires_at: at(1),
    };
    assert_eq!(run(&mut s, Command::GrantBonus(Box::new(nobody))), Err(Rejection::PlayerNotFound));
}

// --- the state as the store keeps it ---

#[test]
fn every_event_reads_back_and_the_rows_rebuild_the_same_state() {
    let mut s = fresh();
    let mut log = Vec::new();
    let mut keep = |events: Vec<AnyEvent>| log.extend(events);
    keep(run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, Limits::default())))).unwrap());
    let psp = UpsertProvider { id: "psp".into(), kind: ProviderKind::Payments, secret: sealed("psp"), base_url: None };
    keep(run(&mut s, Command::UpsertProvider(Box::new(psp))).unwrap());
    provider(&mut s, "games", ProviderKind::Games);
    keep(run(&mut s, deposit_cmd(1, "100")).unwrap());
    keep(run(&mut s, Command::SettleDeposit(settle(did(1), true, "100", "e1"))).unwrap());
    keep(run(&mut s, deposit_cmd(2, "5")).unwrap());
    keep(run(&mut s, Command::SettleDeposit(settle(did(2), false, "5", "e2"))).unwrap());
    keep(run(&mut s, bonus_cmd(1, "10", "3")).unwrap());
    keep(game_run(&mut s, call(GameAction::Bet, 1, "r1", "12")).unwrap());
    keep(game_run(&mut s, call(GameAction::Bet, 2, "r1", "3")).unwrap());
    keep(game_run(&mut s, rollback(3, 2, "r1")).unwrap());
    keep(game_run(&mut s, rollback(4, 9, "r1")).unwrap());
    keep(game_run(&mut s, GameCall { round_closed: true, ..call(GameAction::Win, 5, "r1", "6") }).unwrap());
    keep(run(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Forfeit)).unwrap());
    keep(run(&mut s, Command::MarkWithdrawalSent { id: wid(1) }).unwrap());
    keep(run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "10", "w1"))).unwrap());
    keep(run(&mut s, withdraw_cmd(2, "1", OpenBonusPolicy::Refuse)).unwrap());
    keep(run(&mut s, Command::SettleWithdrawal(settle(wid(2), false, "1", "w2"))).unwrap());
    keep(run(&mut s, withdraw_cmd(3, "1", OpenBonusPolicy::Refuse)).unwrap());
    keep(run_at(&mut s, Command::ExpireWithdrawals, at(1)).unwrap());
    keep(run(&mut s, bonus_cmd(2, "4", "1")).unwrap());
    keep(run_at(&mut s, Command::ExpireBonuses, at(49)).unwrap());
    let instant = GrantBonus {
        id: bid(3),
        player: "p1".into(),
        amount: dec("4"),
        wagering_multiplier: Decimal::ZERO,
        expires_at: at(100),
    };
    keep(run_at(&mut s, Command::GrantBonus(Box::new(instant)), at(50)).unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for event in &log {
        let back = AnyEvent::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(&back, event);
        if event.wallet().is_some() {
            seen.insert(event.event_type());
        }
    }
    let all: std::collections::BTreeSet<&str> = super::super::event::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
    assert_eq!(seen, all);
    let mut rebuilt = State::default();
    for row in s.wallet.rows() {
        rebuilt.load(row).unwrap();
    }
    assert_eq!(rebuilt, s.wallet);
    assert_eq!(<Event as DomainEvent>::schemas().len(), super::super::event::EVENT_TYPES.len());
}

#[test]
fn a_row_that_is_not_what_it_claims_is_refused_at_load() {
    let s = setup();
    let mut row = s.wallet.row(player_entity("p1")).unwrap();
    row.key = "p2".into();
    assert!(State::default().load(row).unwrap_err().contains("does not match"));
}

#[test]
fn commands_name_what_they_answer_with_and_the_transfers_they_make() {
    let bet = call(GameAction::Bet, 1, "r1", "1");
    let posting = transfer_of(game_tx_entity("games", tx(1)), "posting");
    let c = Command::Game(Box::new(bet.clone()));
    assert_eq!(c.transfer_ids(), [posting, round_transfer("games", "r1")]);
    assert_eq!(
        c.answer(),
        Some(Answer { subject: Subject::Entity(game_tx_entity("games", tx(1))), replay: Replay::First })
    );
    let back = Command::Game(Box::new(rollback(2, 1, "r1")));
    let bet_entity = game_tx_entity("games", tx(1));
    assert_eq!(back.transfer_ids()[2..], [transfer_of(bet_entity, "posting"), transfer_of(bet_entity, "reversal")]);
    let settle_w = Command::SettleWithdrawal(settle(wid(1), true, "1", "e"));
    assert_eq!(
        settle_w.transfer_ids(),
        [transfer_of(withdrawal_entity(wid(1)), "lock"), transfer_of(withdrawal_entity(wid(1)), "settle")]
    );
    assert_eq!(settle_w.answer().map(|a| a.replay), Some(Replay::Last));
    assert_eq!(deposit_cmd(1, "1").answer().map(|a| a.replay), Some(Replay::First));
    assert_eq!(Command::ExpireBonuses.answer(), None);
    assert!(Command::ExpireWithdrawals.transfer_ids().is_empty());
    // The transfers a real run makes are the ones named.
    let mut s = setup();
    deposit(&mut s, 1, "10");
    assert!(s.ledger.transfer(transfer_of(deposit_entity(did(1)), "deposit")).is_some());
    game_run(&mut s, GameCall { round_closed: true, ..bet }).unwrap();
    assert!(s.ledger.transfer(posting).is_some());
    assert!(s.ledger.transfer(round_transfer("games", "r1")).is_some());
}
