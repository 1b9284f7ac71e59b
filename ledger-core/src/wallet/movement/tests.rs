//! A scripted life of two players through `decide`: after every command, each player account's
//! movements add up to its ledger balance, and each command's movements are the ones expected.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::domain::{DomainCommand, DomainState};
use crate::sealed::Sealed;
use crate::wallet::command::{
    Command, CreateDeposit, GameAction, GameCall, GrantBonus, Kyc, Limits, OpenBonusPolicy, ProviderKind,
    RequestWithdrawal, Settle, UpsertPlayer, UpsertProvider,
};
use crate::wallet::{bonus_account, locked_account, main_account};
use crate::{Currencies, Event as AnyEvent, State as AnyState};

const HOUR: i64 = 3600 * 1_000_000;
const T0: Timestamp = Timestamp(19_697 * 24 * HOUR + 12 * HOUR);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

fn at(hours: i64) -> Timestamp {
    Timestamp(T0.0 + hours * HOUR)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A movement as the script checks it: player, account, kind, amount.
type Moved = (String, &'static str, &'static str, String);

/// No movement.
const NONE: [Moved; 0] = [];

/// The whole state, a copy of the wallet's state as it stood before each event, and every
/// movement so far.
struct World {
    state: AnyState,
    before: State,
    all: Vec<Movement>,
}

impl World {
    fn new() -> World {
        let mut w = World { state: AnyState::new(Currencies::standard()), before: State::default(), all: Vec::new() };
        for p in ["p1", "p2"] {
            let c = UpsertPlayer {
                id: p.into(),
                currency: eur(),
                kyc: Kyc::Full,
                self_excluded_until: None,
                limits: Limits::default(),
                cooldown_hours: 0,
            };
            assert_eq!(w.run(Command::UpsertPlayer(Box::new(c)), T0), NONE);
        }
        for (p, kind) in [("psp", ProviderKind::Payments), ("games", ProviderKind::Games)] {
            let secret = Sealed { key_id: "k1".into(), nonce: format!("n-{p}"), ciphertext: format!("c-{p}") };
            let c = UpsertProvider { id: p.into(), kind, secret, base_url: None };
            assert_eq!(w.run(Command::UpsertProvider(Box::new(c)), T0), NONE);
        }
        w
    }

    /// Runs a command (it must succeed) and answers its movements as `(player, account, kind,
    /// amount)`, after checking every player account's movements against its ledger balance.
    fn run(&mut self, command: Command, now: Timestamp) -> Vec<Moved> {
        let events: Vec<AnyEvent> =
            DomainCommand::execute(&command, &mut self.state, now).expect("the command succeeds");
        let mut made = Vec::new();
        for event in events.iter().filter_map(AnyEvent::wallet) {
            let moved = movements(event, &self.before).expect("the entities an event names are known");
            assert!(moved.iter().all(|m| !m.amount.is_zero() && m.at == now));
            made.extend(moved);
            self.before.apply(event);
        }
        assert_eq!(self.before, self.state.wallet, "the copy keeps up with the writer");
        self.all.extend(made.iter().cloned());
        self.check_balances();
        made.into_iter().map(|m| (m.player, m.account.as_str(), m.kind.as_str(), m.amount.to_string())).collect()
    }

    fn check_balances(&self) {
        let mut sums: BTreeMap<(String, Account), Decimal> = BTreeMap::new();
        for m in &self.all {
            *sums.entry((m.player.clone(), m.account)).or_default() += m.amount;
        }
        for player in ["p1", "p2"] {
            for account in Account::ALL {
                let code = match account {
                    Account::Main => main_account(player),
                    Account::Bonus => bonus_account(player),
                    Account::Locked => locked_account(player),
                };
                let ledger = self.state.ledger.account(code.0).map_or(Decimal::ZERO, |a| a.balance());
                let sum = sums.get(&(player.to_owned(), account)).copied().unwrap_or_default();
                assert_eq!(sum, ledger, "{player}'s {} account", account.as_str());
            }
        }
    }
}

fn m(player: &str, account: &'static str, kind: &'static str, amount: &str) -> Moved {
    (player.to_owned(), account, kind, amount.to_owned())
}

fn deposit(n: u128, player: &str, amount: &str) -> Command {
    Command::CreateDeposit(Box::new(CreateDeposit {
        id: DepositId(id(100 + n)),
        player: player.into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
    }))
}

fn settle<I>(id: I, succeeded: bool, amount: &str, event: &str) -> Box<Settle<I>> {
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

fn withdraw(n: u128, player: &str, amount: &str, open_bonus: OpenBonusPolicy) -> Command {
    Command::RequestWithdrawal(Box::new(RequestWithdrawal {
        id: WithdrawalId(id(200 + n)),
        player: player.into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
        timeout_seconds: 600,
        open_bonus,
    }))
}

fn bonus(n: u128, player: &str, amount: &str, multiplier: &str, expires_at: Timestamp) -> Command {
    Command::GrantBonus(Box::new(GrantBonus {
        id: BonusId(id(300 + n)),
        player: player.into(),
        amount: dec(amount),
        wagering_multiplier: dec(multiplier),
        expires_at,
    }))
}

fn game(action: GameAction, n: u128, player: &str, round: &str, amount: &str) -> GameCall {
    GameCall {
        provider: "games".into(),
        action,
        transaction: id(400 + n),
        player: player.into(),
        round: round.into(),
        amount: dec(amount),
        currency: eur(),
        reference: None,
        round_closed: false,
        bonus_first: false,
        wagering_bonus_only: false,
    }
}

fn play(c: GameCall) -> Command {
    Command::Game(Box::new(c))
}

#[test]
fn every_movement_adds_up_to_the_ledger_balance_of_its_account() {
    let mut w = World::new();
    // Deposits move nothing until they succeed; a failed one never moves.
    assert_eq!(w.run(deposit(1, "p1", "100"), T0), NONE);
    assert_eq!(
        w.run(Command::SettleDeposit(settle(DepositId(id(101)), true, "100", "e1")), T0),
        [m("p1", "main", "deposit", "100.00")]
    );
    assert_eq!(w.run(deposit(2, "p1", "5"), T0), NONE);
    assert_eq!(w.run(Command::SettleDeposit(settle(DepositId(id(102)), false, "5", "e2")), T0), NONE);
    w.run(deposit(3, "p2", "40"), T0);
    w.run(Command::SettleDeposit(settle(DepositId(id(103)), true, "40", "e3")), T0);

    // A bonus of 10 to wager 100×: p1's bets take main first, then bonus.
    assert_eq!(w.run(bonus(1, "p1", "10", "100", at(48)), T0), [m("p1", "bonus", "bonus_granted", "10.00")]);
    assert_eq!(w.run(play(game(GameAction::Bet, 1, "p1", "r1", "95")), T0), [m("p1", "main", "bet", "-95.00")]);
    assert_eq!(
        w.run(play(game(GameAction::Bet, 2, "p1", "r1", "8")), T0),
        [m("p1", "main", "bet", "-5.00"), m("p1", "bonus", "bet", "-3.00"),]
    );
    // The second bet is rolled back: its stake returns to both.
    let rollback = GameCall { reference: Some(id(402)), ..game(GameAction::Rollback, 3, "p1", "r1", "0") };
    assert_eq!(w.run(play(rollback), T0), [m("p1", "main", "rollback", "5.00"), m("p1", "bonus", "rollback", "3.00")]);
    // A rollback of a bet never seen moves nothing.
    let early = GameCall { reference: Some(id(499)), ..game(GameAction::Rollback, 4, "p1", "r1", "0") };
    assert_eq!(w.run(play(early), T0), NONE);
    // A win closing the round credits main (the round's stakes were all main); the close itself
    // moves nothing of the player's.
    let win = GameCall { round_closed: true, ..game(GameAction::Win, 5, "p1", "r1", "20") };
    assert_eq!(w.run(play(win), T0), [m("p1", "main", "win", "20.00")]);
    // Bonus first: a bet taking bonus then main, a win split in the same proportion.
    let bet = GameCall { bonus_first: true, ..game(GameAction::Bet, 6, "p1", "r2", "12") };
    assert_eq!(w.run(play(bet), T0), [m("p1", "main", "bet", "-2.00"), m("p1", "bonus", "bet", "-10.00")]);
    let win = GameCall { round_closed: true, ..game(GameAction::Win, 7, "p1", "r2", "6") };
    assert_eq!(w.run(play(win), T0), [m("p1", "main", "win", "1.00"), m("p1", "bonus", "win", "5.00")]);
    // A zero win moves nothing.
    w.run(play(game(GameAction::Bet, 8, "p2", "r3", "10")), T0);
    let lost = GameCall { round_closed: true, ..game(GameAction::Win, 9, "p2", "r3", "0") };
    assert_eq!(w.run(play(lost), T0), NONE);

    // A withdrawal forfeiting the open bonus: what is left of it goes back, then main is locked.
    assert_eq!(
        w.run(withdraw(1, "p1", "10", OpenBonusPolicy::Forfeit), T0),
        [
            m("p1", "bonus", "bonus_returned", "-5.00"),
            m("p1", "main", "withdrawal_lock", "-10.00"),
            m("p1", "locked", "withdrawal_lock", "10.00"),
        ]
    );
    assert_eq!(w.run(Command::MarkWithdrawalSent { id: WithdrawalId(id(201)) }, T0), NONE);
    assert_eq!(
        w.run(Command::SettleWithdrawal(settle(WithdrawalId(id(201)), true, "10", "w1")), T0),
        [m("p1", "locked", "withdrawal_paid", "-10.00")]
    );
    // A failed one and a timed-out one return to main.
    w.run(withdraw(2, "p1", "1", OpenBonusPolicy::Refuse), T0);
    assert_eq!(
        w.run(Command::SettleWithdrawal(settle(WithdrawalId(id(202)), false, "1", "w2")), T0),
        [m("p1", "locked", "withdrawal_returned", "-1.00"), m("p1", "main", "withdrawal_returned", "1.00"),]
    );
    w.run(withdraw(3, "p2", "7", OpenBonusPolicy::Refuse), T0);
    assert_eq!(
        w.run(Command::ExpireWithdrawals, at(1)),
        [m("p2", "locked", "withdrawal_returned", "-7.00"), m("p2", "main", "withdrawal_returned", "7.00"),]
    );

    // A bonus wagered to its requirement converts to main in the bet's own command.
    w.run(bonus(2, "p2", "4", "2", at(48)), at(1));
    assert_eq!(
        w.run(play(game(GameAction::Bet, 10, "p2", "r4", "8")), at(1)),
        [
            m("p2", "main", "bet", "-8.00"),
            m("p2", "bonus", "bonus_converted", "-4.00"),
            m("p2", "main", "bonus_converted", "4.00"),
        ]
    );
    // One granted with no wagering converts at once; one left open expires back to the operator.
    assert_eq!(
        w.run(bonus(3, "p1", "2", "0", at(100)), at(2)),
        [
            m("p1", "bonus", "bonus_granted", "2.00"),
            m("p1", "bonus", "bonus_converted", "-2.00"),
            m("p1", "main", "bonus_converted", "2.00"),
        ]
    );
    w.run(bonus(4, "p1", "3", "5", at(10)), at(2));
    assert_eq!(w.run(Command::ExpireBonuses, at(11)), [m("p1", "bonus", "bonus_returned", "-3.00")]);
    // An operator's forfeit of a bonus returns it too.
    w.run(bonus(5, "p2", "6", "5", at(100)), at(11));
    let forfeit = Command::ForfeitBonus { id: BonusId(id(305)), reason: Some("abuse".into()) };
    assert_eq!(w.run(forfeit, at(12)), [m("p2", "bonus", "bonus_returned", "-6.00")]);

    let kinds: std::collections::BTreeSet<Kind> = w.all.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, Kind::ALL.into_iter().collect());
}

#[test]
fn movements_name_what_they_belong_to_and_their_transfer() {
    let mut w = World::new();
    w.run(deposit(1, "p1", "50"), T0);
    w.run(Command::SettleDeposit(settle(DepositId(id(101)), true, "50", "e1")), T0);
    w.run(play(game(GameAction::Bet, 1, "p1", "r1", "5")), T0);
    let rollback = GameCall { reference: Some(id(401)), ..game(GameAction::Rollback, 2, "p1", "r1", "0") };
    w.run(play(rollback), T0);
    let deposit_id = DepositId(id(101));
    let refs: Vec<(Reference, TransferId)> = w.all.iter().map(|m| (m.reference.clone(), m.transfer)).collect();
    let bet = crate::wallet::game_tx_entity("games", id(401));
    assert_eq!(
        refs,
        [
            (
                Reference::Deposit(deposit_id),
                crate::wallet::transfer_of(crate::wallet::deposit_entity(deposit_id), "deposit")
            ),
            (
                Reference::Game { provider: "games".into(), transaction: id(401), round: "r1".into() },
                crate::wallet::transfer_of(bet, "posting")
            ),
            (
                Reference::Game { provider: "games".into(), transaction: id(402), round: "r1".into() },
                crate::wallet::transfer_of(bet, "reversal")
            ),
        ]
    );
    assert_eq!(w.all[0].reference.kind(), "deposit");
    assert_eq!(w.all[2].reference.id(), id(402));
}

#[test]
fn an_event_naming_an_entity_its_lookup_lacks_is_an_error() {
    let mut w = World::new();
    w.run(deposit(1, "p1", "50"), T0);
    let events =
        DomainCommand::execute(&Command::SettleDeposit(settle(DepositId(id(101)), true, "50", "e1")), &mut w.state, T0)
            .unwrap();
    let succeeded = events.iter().find_map(AnyEvent::wallet).unwrap();
    let err = movements(succeeded, &State::default()).unwrap_err();
    assert_eq!((err.event, err.kind), ("DepositSucceeded", "deposit"));
}

#[test]
fn names_read_back() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
    }
    for a in Account::ALL {
        assert_eq!(Account::parse(a.as_str()), Some(a));
    }
    assert_eq!(Kind::parse("nope"), None);
}

#[test]
fn an_unknown_entity_is_reported_with_the_event_that_named_it() {
    let transfer = Some(TransferId(id(9)));
    let settled = || {
        Box::new(crate::wallet::event::Settled {
            id: WithdrawalId(id(1)),
            provider_reference: None,
            reason: None,
            event_id: None,
            transfer,
            at: T0,
        })
    };
    let closed = || {
        Box::new(crate::wallet::event::BonusClosed {
            id: BonusId(id(2)),
            amount: dec("1"),
            reason: None,
            transfer,
            at: T0,
        })
    };
    let cases = [
        (Event::WithdrawalSucceeded(settled()), "WithdrawalSucceeded", "withdrawal"),
        (Event::WithdrawalFailed(settled()), "WithdrawalFailed", "withdrawal"),
        (Event::WithdrawalTimedOut(settled()), "WithdrawalTimedOut", "withdrawal"),
        (Event::BonusConverted(closed()), "BonusConverted", "bonus"),
        (Event::BonusExpired(closed()), "BonusExpired", "bonus"),
        (Event::BonusForfeited(closed()), "BonusForfeited", "bonus"),
    ];
    for (event, name, kind) in cases {
        let err = movements(&event, &State::default()).unwrap_err();
        assert_eq!((err.event, err.kind), (name, kind));
    }
}
