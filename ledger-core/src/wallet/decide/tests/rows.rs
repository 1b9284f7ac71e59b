//! The state as the store keeps it, and what commands name.

use super::*;

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
    let all: std::collections::BTreeSet<&str> = crate::wallet::event::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
    assert_eq!(seen, all);
    let mut rebuilt = State::default();
    for row in s.wallet.rows() {
        rebuilt.load(row).unwrap();
    }
    assert_eq!(rebuilt, s.wallet);
    assert_eq!(<Event as DomainEvent>::schemas().len(), crate::wallet::event::EVENT_TYPES.len());
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

#[test]
fn every_entity_is_found_by_its_ref_with_its_natural_key_and_one_version_per_change() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    run(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse)).unwrap();
    run(&mut s, Command::MarkWithdrawalSent { id: wid(1) }).unwrap();
    run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "10", "w1"))).unwrap();
    run(&mut s, bonus_cmd(1, "10", "100")).unwrap();
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "5")).unwrap();
    game_run(&mut s, rollback(2, 1, "r1")).unwrap();
    run(&mut s, Command::ForfeitBonus { id: bid(1), reason: None }).unwrap();
    let expect = [
        (player_entity("p1"), "p1".to_owned(), 1),
        (provider_entity("games"), "games".to_owned(), 1),
        (deposit_entity(did(1)), did(1).to_string(), 2),
        (withdrawal_entity(wid(1)), wid(1).to_string(), 3),
        (bonus_entity(bid(1)), bid(1).to_string(), 2),
        (game_tx_entity("games", tx(1)), format!("games/{}", tx(1)), 2),
        (game_tx_entity("games", tx(2)), format!("games/{}", tx(2)), 1),
    ];
    for (entity, key, version) in expect {
        let row = s.wallet.row(entity).unwrap_or_else(|| panic!("{key}"));
        assert_eq!((row.kind.as_str(), row.id, row.key, row.version), (entity.kind, entity.id, key, version));
    }
}

/// The rows each wallet event changes besides its subject's, by event type.
fn touched_rows(s: &AnyState, events: &[AnyEvent]) -> Vec<(&'static str, Vec<Subject>)> {
    events
        .iter()
        .filter(|e| e.wallet().is_some())
        .map(|e| {
            let touched = s.touched(e);
            assert_eq!(touched[0], Touched { subject: e.subject(), moves: true });
            (e.event_type(), touched[1..].iter().inspect(|t| assert!(!t.moves)).map(|t| t.subject).collect())
        })
        .collect()
}

#[test]
fn an_event_names_the_player_and_bonus_rows_whose_counters_or_wagering_it_changes() {
    let mut s = setup();
    let p1 = Subject::Entity(player_entity("p1"));
    let bonus = Subject::Entity(bonus_entity(bid(1)));
    let mut seen = Vec::new();
    let mut step = |s: &mut AnyState, command: Command, now: Timestamp| {
        let events = run_at(s, command, now).unwrap();
        seen.extend(touched_rows(s, &events));
    };
    let game = |c: GameCall| Command::Game(Box::new(c));
    step(&mut s, deposit_cmd(1, "100"), T0);
    step(&mut s, Command::SettleDeposit(settle(did(1), true, "100", "e1")), T0);
    step(&mut s, deposit_cmd(2, "5"), T0);
    step(&mut s, Command::SettleDeposit(settle(did(2), false, "5", "e2")), T0);
    step(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse), T0);
    step(&mut s, Command::SettleWithdrawal(settle(wid(1), false, "10", "w1")), T0);
    step(&mut s, withdraw_cmd(2, "10", OpenBonusPolicy::Refuse), T0);
    step(&mut s, bonus_cmd(1, "10", "100"), T0);
    step(&mut s, game(call(GameAction::Bet, 1, "r1", "5")), T0);
    step(&mut s, game(call(GameAction::Win, 2, "r1", "1")), T0);
    step(&mut s, game(call(GameAction::Bet, 3, "r2", "5")), T0);
    step(&mut s, game(rollback(4, 3, "r2")), T0);
    step(&mut s, Command::ForfeitBonus { id: bid(1), reason: None }, T0);
    step(&mut s, Command::ExpireWithdrawals, at(1));
    let instant = GrantBonus {
        id: bid(2),
        player: "p1".into(),
        amount: dec("4"),
        wagering_multiplier: Decimal::ZERO,
        expires_at: at(100),
    };
    step(&mut s, Command::GrantBonus(Box::new(instant)), at(2));
    step(&mut s, bonus_cmd(3, "1", "1"), at(3));
    step(&mut s, Command::ExpireBonuses, at(48));
    let p = || vec![p1];
    assert_eq!(
        seen,
        [
            ("DepositCreated", p()),
            ("DepositSucceeded", vec![]),
            ("DepositCreated", p()),
            ("DepositFailed", p()),
            ("WithdrawalRequested", p()),
            ("WithdrawalFailed", p()),
            ("WithdrawalRequested", p()),
            ("BonusGranted", p()),
            ("BetPlaced", vec![p1, bonus]),
            ("WinPaid", p()),
            ("BetPlaced", vec![p1, bonus]),
            ("BetRolledBack", vec![p1, bonus]),
            ("RollbackRecorded", vec![]),
            ("BonusForfeited", p()),
            ("WithdrawalTimedOut", p()),
            ("BonusGranted", p()),
            ("BonusConverted", p()),
            ("BonusGranted", p()),
            ("BonusExpired", p()),
        ]
    );
}

#[test]
fn the_events_naming_an_entity_by_id_name_the_row_their_movements_read() {
    let mut s = setup();
    let mut named = Vec::new();
    let mut step = |s: &mut AnyState, command: Command, now: Timestamp| {
        for e in run_at(s, command, now).unwrap() {
            if let Some(id) = e.wallet().and_then(crate::wallet::rows::named_rows) {
                named.push((e.event_type(), id));
            }
        }
    };
    step(&mut s, deposit_cmd(1, "100"), T0);
    step(&mut s, Command::SettleDeposit(settle(did(1), true, "100", "e1")), T0);
    step(&mut s, withdraw_cmd(1, "10", OpenBonusPolicy::Refuse), T0);
    step(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "10", "w1")), T0);
    step(&mut s, withdraw_cmd(2, "10", OpenBonusPolicy::Refuse), T0);
    step(&mut s, Command::SettleWithdrawal(settle(wid(2), false, "10", "w2")), T0);
    step(&mut s, withdraw_cmd(3, "10", OpenBonusPolicy::Refuse), T0);
    step(&mut s, Command::ExpireWithdrawals, at(1));
    step(&mut s, bonus_cmd(1, "10", "100"), at(1));
    step(&mut s, Command::Game(Box::new(call(GameAction::Bet, 1, "r1", "5"))), at(1));
    step(&mut s, Command::Game(Box::new(rollback(2, 1, "r1"))), at(1));
    step(&mut s, Command::ForfeitBonus { id: bid(1), reason: None }, at(1));
    step(&mut s, bonus_cmd(2, "1", "1"), at(2));
    step(&mut s, Command::ExpireBonuses, at(48));
    let instant = GrantBonus {
        id: bid(3),
        player: "p1".into(),
        amount: dec("4"),
        wagering_multiplier: Decimal::ZERO,
        expires_at: at(100),
    };
    step(&mut s, Command::GrantBonus(Box::new(instant)), at(49));
    assert_eq!(
        named,
        [
            ("DepositSucceeded", deposit_entity(did(1)).id),
            ("WithdrawalSucceeded", withdrawal_entity(wid(1)).id),
            ("WithdrawalFailed", withdrawal_entity(wid(2)).id),
            ("WithdrawalTimedOut", withdrawal_entity(wid(3)).id),
            ("BetRolledBack", game_tx_entity("games", tx(1)).id),
            ("BonusForfeited", bonus_entity(bid(1)).id),
            ("BonusExpired", bonus_entity(bid(2)).id),
            ("BonusConverted", bonus_entity(bid(3)).id),
        ]
    );
}
