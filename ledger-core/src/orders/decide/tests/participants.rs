//! Stores, traders and requisites: created, updated, replayed or refused; a team lead's traffic switch.

use super::*;

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

#[test]
fn a_trader_lists_up_to_sixteen_currencies_and_a_requisite_any_limits_in_order() {
    let mut state = fresh();
    let codes =
        ["USDT", "BTC", "EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF"];
    let mut t = trader_cmd("t1", "0.02", 1);
    t.currencies = codes.iter().chain(&["RUB"]).map(|c| CurrencyCode::parse(c).unwrap()).collect();
    assert_eq!(t.currencies.len(), MAX_CURRENCIES);
    let events = run(&mut state, Command::UpsertTrader(Box::new(t.clone()))).unwrap();
    assert_eq!(events.iter().filter(|e| e.event_type() == "AccountOpened").count(), 2 * MAX_CURRENCIES);
    t.currencies.push(CurrencyCode::parse("TRY").unwrap());
    assert_eq!(run(&mut state, Command::UpsertTrader(Box::new(t))).unwrap_err(), Rejection::TooManyCurrencies);
    // A requisite taking one amount only, its daily limit: min = max = daily.
    let one = requisite_cmd("t1", "r1", "500", "500", "500");
    assert_eq!(
        types(&run(&mut state, Command::UpsertRequisite(Box::new(one))).unwrap()),
        ["AuditRecorded", "RequisiteUpserted"]
    );
    // Each of method, bank and masked details is checked on its own.
    for field in 0..3 {
        let mut bad = requisite_cmd("t1", "r2", "1", "2", "3");
        *[&mut bad.method, &mut bad.bank, &mut bad.masked][field] = "a\u{7}b".into();
        assert_eq!(run(&mut state, Command::UpsertRequisite(Box::new(bad))).unwrap_err(), Rejection::InvalidReference);
    }
    assert!(state.orders.requisite("t1", "r2").is_none());
}

#[test]
fn a_traffic_switch_is_a_change_of_the_trader_at_the_time_it_is_made() {
    let mut state = given("0.035", "0.02", "100");
    let later = T0.plus_seconds(3600);
    let off = Command::SetTraffic { trader: "t1".into(), enabled: false, team_lead: None };
    let events = run_at(&mut state, off, later).unwrap();
    let OrderEvent::TraderUpserted(e) = events[1].orders().unwrap() else { panic!("{:?}", types(&events)) };
    assert_eq!((e.traffic_enabled, e.at), (false, later));
    let t = state.orders.trader("t1").unwrap();
    assert_eq!((t.traffic_enabled, t.at, t.version), (false, later, 2));
}

#[test]
fn a_participants_command_answers_with_its_own_entity() {
    let cases = [
        (store_cmd("s1", "0.01"), store_entity("s1")),
        (Command::RotateStoreSecret(Box::new(("s1".into(), sealed("x")))), store_entity("s1")),
        (Command::UpsertTrader(Box::new(trader_cmd("t1", "0.01", 1))), trader_entity("t1")),
        (Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "1", "2", "3"))), requisite_entity("t1", "r1")),
        (Command::SetTraffic { trader: "t1".into(), enabled: true, team_lead: None }, trader_entity("t1")),
    ];
    for (command, entity) in cases {
        let answer = command.answer().unwrap();
        assert_eq!((answer.subject, answer.replay), (Subject::Entity(entity), crate::Replay::Last), "{command:?}");
    }
}
