//! Game callbacks: bets, wins, rollbacks, rounds.

use super::*;

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

#[test]
fn a_rounds_close_counts_its_earlier_wins_and_leaves_out_its_rolled_back_bets() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "30")).unwrap();
    game_run(&mut s, call(GameAction::Win, 2, "r1", "10")).unwrap();
    // A closing win of zero: the round's net is 30 − 10.
    game_run(&mut s, GameCall { round_closed: true, ..call(GameAction::Win, 3, "r1", "0") }).unwrap();
    assert_eq!(balance(&s, game_revenue_account(&eur())), dec("20.00"));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    // A rollback that closes its round: the bet it reverses is not the round's.
    game_run(&mut s, call(GameAction::Bet, 4, "r2", "10")).unwrap();
    game_run(&mut s, call(GameAction::Bet, 5, "r2", "5")).unwrap();
    game_run(&mut s, GameCall { round_closed: true, ..rollback(6, 5, "r2") }).unwrap();
    assert_eq!(balance(&s, game_revenue_account(&eur())), dec("30.00"));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    assert_eq!(main_of(&s), dec("70.00"));
    assert!(s.wallet.round("games", "r2").unwrap().closed);
}

#[test]
fn a_game_transactions_event_names_its_action_and_no_other_event_does() {
    let mut s = setup();
    let actions = |events: &[AnyEvent]| -> Vec<GameAction> {
        events.iter().filter_map(|e| e.wallet().and_then(Event::game_action)).collect()
    };
    let deposited = run(&mut s, deposit_cmd(1, "10")).unwrap();
    assert_eq!(actions(&deposited), []);
    run(&mut s, Command::SettleDeposit(settle(did(1), true, "10", "e1"))).unwrap();
    assert_eq!(actions(&game_run(&mut s, call(GameAction::Bet, 1, "r1", "5")).unwrap()), [GameAction::Bet]);
    assert_eq!(actions(&game_run(&mut s, call(GameAction::Win, 2, "r1", "1")).unwrap()), [GameAction::Win]);
    game_run(&mut s, call(GameAction::Bet, 3, "r2", "1")).unwrap();
    // The rollback's own event, not the BetRolledBack it records first.
    assert_eq!(actions(&game_run(&mut s, rollback(4, 3, "r2")).unwrap()), [GameAction::Rollback]);
}

#[test]
fn a_rounds_close_moves_the_bonus_part_of_its_stakes_to_revenue_too() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    run(&mut s, bonus_cmd(1, "20", "100")).unwrap();
    // 10 from main and 20 from bonus; a win of 6 pays 2 to main and 4 to bonus; then the close.
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "30")).unwrap();
    game_run(&mut s, call(GameAction::Win, 2, "r1", "6")).unwrap();
    game_run(&mut s, GameCall { round_closed: true, ..call(GameAction::Win, 3, "r1", "0") }).unwrap();
    assert_eq!(balance(&s, game_revenue_account(&eur())), dec("24.00"));
    assert_eq!(balance(&s, settlement_account("games", &eur())), Decimal::ZERO);
    assert_eq!((main_of(&s), bonus_of(&s)), (dec("2.00"), dec("4.00")));
}

#[test]
fn a_bet_is_live_until_rolled_back_and_nothing_else_is_a_live_bet() {
    let mut s = setup();
    deposit(&mut s, 1, "10");
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "5")).unwrap();
    game_run(&mut s, call(GameAction::Bet, 2, "r2", "1")).unwrap();
    game_run(&mut s, rollback(3, 2, "r2")).unwrap();
    game_run(&mut s, call(GameAction::Win, 4, "r1", "1")).unwrap();
    // A rollback of a bet not yet seen leaves a tombstone of it.
    game_run(&mut s, rollback(5, 9, "r3")).unwrap();
    let live: Vec<bool> = [1, 2, 3, 4, 5, 9].map(|n| s.wallet.transaction("games", tx(n)).unwrap().live_bet()).into();
    assert_eq!(live, [true, false, false, false, false, false]);
}
