//! Deposits and withdrawals.

use super::*;

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

#[test]
fn a_withdrawal_settled_before_its_deadline_is_not_returned_at_it() {
    let mut s = setup();
    deposit(&mut s, 1, "100");
    run(&mut s, withdraw_cmd(1, "30", OpenBonusPolicy::Refuse)).unwrap();
    run(&mut s, withdraw_cmd(2, "40", OpenBonusPolicy::Refuse)).unwrap();
    run(&mut s, Command::SettleWithdrawal(settle(wid(1), true, "30", "w1"))).unwrap();
    // Both had the same deadline: only the one still locked returns, though locked holds more.
    let expired = run_at(&mut s, Command::ExpireWithdrawals, T0.plus_seconds(600)).unwrap();
    assert_eq!(types(&expired), ["TransferPosted", "WithdrawalTimedOut"]);
    assert_eq!(
        (withdrawal(&s, 1).status, withdrawal(&s, 2).status),
        (WithdrawalStatus::Succeeded, WithdrawalStatus::TimedOut)
    );
    assert_eq!((main_of(&s), balance(&s, locked_account("p1"))), (dec("70.00"), Decimal::ZERO));
    assert_eq!(balance(&s, clearing_account("psp", &eur())), dec("70.00"));
}

#[test]
fn a_limit_refusal_names_the_limit_and_what_it_leaves() {
    let r = Rejection::LimitExceeded { limit: LimitKind::DepositWeek, remaining: dec("50.00") };
    assert_eq!((r.code(), r.to_string().as_str()), ("limit_exceeded", "the deposit_week limit leaves 50.00"));
}
