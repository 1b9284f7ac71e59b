//! Bonuses: grants, wagering, conversion, expiry and forfeits.

use super::*;

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

#[test]
fn a_multiplier_may_have_two_decimals_and_a_grant_and_its_forfeit_are_audited_with_their_amounts() {
    let mut s = setup();
    let granted = run(&mut s, bonus_cmd(1, "10", "1.25")).unwrap();
    assert_eq!(s.wallet.bonus(bid(1)).unwrap().required, dec("12.50"));
    let grant = audit_entries(&granted)[0].clone();
    assert_eq!(grant.subject, format!("bonus:{}", bid(1)));
    assert_eq!(
        grant.after,
        Some(json!({"amount": "10.00", "currency": "EUR", "wagering_multiplier": "1.25", "required": "12.50",
            "expires_at": at(48).rfc3339()}))
    );
    // A bet of 4 from the bonus: 4 wagered, 6 left to return.
    game_run(&mut s, call(GameAction::Bet, 1, "r1", "4")).unwrap();
    let forfeited = run(&mut s, Command::ForfeitBonus { id: bid(1), reason: Some("abuse".into()) }).unwrap();
    let entry = audit_entries(&forfeited)[0].clone();
    assert_eq!((entry.level, entry.reason.as_deref()), (Level::Warning, Some("abuse")));
    assert_eq!(entry.before, Some(json!({"status": "active", "wagered": "4.00", "required": "12.50"})));
    assert_eq!(entry.after, Some(json!({"status": "forfeited", "returned": "6.00"})));
    assert_eq!(balance(&s, bonus_cost_account(&eur())), dec("4.00"));
}
