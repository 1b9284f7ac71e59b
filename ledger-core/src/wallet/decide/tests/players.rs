//! Players (KYC, limits, self-exclusion) and providers.

use super::*;

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

#[test]
fn a_players_audit_entry_shows_its_fields_before_and_after_and_each_change_has_its_own_entry() {
    let mut s = fresh();
    let created = run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::None, Limits::default())))).unwrap();
    let first = audit_entries(&created)[0].clone();
    assert_eq!((first.subject.as_str(), &first.before), ("player:p1", &None));
    let after = first.after.clone().unwrap();
    assert_eq!((&after["currency"], &after["kyc"]), (&json!("EUR"), &json!("none")));
    assert_eq!(after["limits"]["loss_day"], json!({"value": null, "pending": null}));
    assert_eq!((&after["self_excluded_until"], &after["self_exclusion_pending"]), (&Value::Null, &Value::Null));
    let strict = Limits { loss_day: Some(dec("10")), ..Limits::default() };
    let tightened = run(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, strict)))).unwrap();
    let second = audit_entries(&tightened)[0].clone();
    assert_eq!(second.before.as_ref().unwrap()["kyc"], json!("none"));
    assert_eq!(second.after.as_ref().unwrap()["limits"]["loss_day"], json!({"value": "10.00", "pending": null}));
    // A looser limit and an earlier end of self-exclusion: the entry shows them pending, with their time.
    let excluded = UpsertPlayer { self_excluded_until: Some(at(72)), ..player_cmd("p1", Kyc::Basic, strict) };
    let third = audit_entries(&run(&mut s, Command::UpsertPlayer(Box::new(excluded))).unwrap())[0].clone();
    assert_eq!(third.after.as_ref().unwrap()["self_excluded_until"], json!(at(72).rfc3339()));
    let looser = Limits { loss_day: Some(dec("30")), ..Limits::default() };
    let loosened =
        run_at(&mut s, Command::UpsertPlayer(Box::new(player_cmd("p1", Kyc::Basic, looser))), at(1)).unwrap();
    let fourth = audit_entries(&loosened)[0].clone();
    let (before, after) = (fourth.before.clone().unwrap(), fourth.after.clone().unwrap());
    assert_eq!(before["limits"]["loss_day"], json!({"value": "10.00", "pending": null}));
    assert_eq!(
        after["limits"]["loss_day"],
        json!({"value": "10.00", "pending": {"value": "30.00", "from": at(25).rfc3339()}})
    );
    assert_eq!(after["self_excluded_until"], json!(at(72).rfc3339()));
    assert_eq!(after["self_exclusion_pending"], json!({"until": null, "from": at(25).rfc3339()}));
    let ids: std::collections::BTreeSet<Uuid> = [first.id, second.id, third.id, fourth.id].into();
    assert_eq!(ids.len(), 4);
}

#[test]
fn a_self_exclusion_that_ends_now_or_ended_is_none() {
    let mut s = setup();
    let excluded = |until: Option<Timestamp>| UpsertPlayer {
        self_excluded_until: until,
        ..player_cmd("p1", Kyc::Basic, Limits::default())
    };
    // One that ends now is no self-exclusion: the same fields as before, no change at all.
    assert!(run(&mut s, Command::UpsertPlayer(Box::new(excluded(Some(T0))))).unwrap().is_empty());
    assert_eq!(s.wallet.player("p1").unwrap().self_exclusion, Timed::default());
    // At its end it is over: lifting it then is no change, and deposits go through.
    run(&mut s, Command::UpsertPlayer(Box::new(excluded(Some(at(72)))))).unwrap();
    assert!(run_at(&mut s, Command::UpsertPlayer(Box::new(excluded(None))), at(72)).unwrap().is_empty());
    run_at(&mut s, deposit_cmd(1, "10"), at(72)).unwrap();
}

#[test]
fn a_providers_audit_entry_names_its_kind_and_whether_a_base_url_is_set_never_the_url() {
    let mut s = fresh();
    let c = UpsertProvider { id: "psp".into(), kind: ProviderKind::Payments, secret: sealed("a"), base_url: None };
    let events = run(&mut s, Command::UpsertProvider(Box::new(c.clone()))).unwrap();
    let entry = audit_entries(&events)[0].clone();
    assert_eq!(entry.subject, "provider:psp");
    assert_eq!(entry.after, Some(json!({"kind": "payments", "base_url_set": false})));
    let with_url = UpsertProvider { base_url: Some("http://127.0.0.1:9/psp".into()), ..c };
    let events = run(&mut s, Command::UpsertProvider(Box::new(with_url))).unwrap();
    let second = audit_entries(&events)[0].clone();
    assert_eq!(second.after, Some(json!({"kind": "payments", "base_url_set": true})));
    assert_ne!(second.id, entry.id);
    assert_eq!(s.wallet.provider("psp").unwrap().base_url.as_deref(), Some("http://127.0.0.1:9/psp"));
}
