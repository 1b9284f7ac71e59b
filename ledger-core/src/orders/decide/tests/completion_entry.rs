//! The exact completion entry: the split, its rounding and its legs, for pay-ins and pay-outs.

use super::*;

#[test]
fn fees_round_half_to_even_at_the_settlement_scale_and_the_platform_takes_the_rest() {
    // A·fee exactly halfway at the 7th decimal: 0.5000005 → 0.500000, 1.5000015 → 1.500002.
    let s = split(dec("10.000010"), dec("0.05"), dec("0.15"), 6).unwrap();
    assert_eq!((s.store_fee, s.trader_reward, s.platform), (dec("0.500000"), dec("1.500002"), dec("-1.000002")));
    let s = split(dec("10.810810"), dec("0.035"), dec("0.02"), 6).unwrap();
    assert_eq!((s.store_fee, s.trader_reward, s.platform), (dec("0.378378"), dec("0.216216"), dec("0.162162")));
    assert_eq!(s.store_fee.to_string(), "0.378378");
    // Equal fees leave the platform nothing: its leg is left out.
    let s = split(dec("1.00"), dec("0.1"), dec("0.1"), 2).unwrap();
    let accounts = Accounts {
        store: AccountId(uuid::Uuid::from_u128(1)),
        deposit: AccountId(uuid::Uuid::from_u128(2)),
        rewards: AccountId(uuid::Uuid::from_u128(3)),
        platform: AccountId(uuid::Uuid::from_u128(4)),
    };
    let legs = legs(OrderKind::PayIn, &accounts, dec("1.00"), &s);
    let legs: Vec<_> = legs.iter().map(|l| (l.side, l.amount)).collect();
    assert_eq!(legs, [(Side::Debit, dec("1.00")), (Side::Credit, dec("0.90")), (Side::Credit, dec("0.10"))]);
    // Rounding down to the settlement scale, never up.
    assert_eq!(settlement_amount(dec("1000.00"), dec("92.5"), 6).unwrap(), dec("10.810810"));
    assert_eq!(settlement_amount(dec("2.00"), dec("3"), 2).unwrap(), dec("0.66"));
    assert_eq!(settlement_amount(dec("0.01"), dec("1000000"), 6).unwrap_err(), Rejection::AmountTooSmall);
}

#[test]
fn a_pay_in_holds_the_deposit_then_completes_with_one_exact_four_leg_entry() {
    let mut state = given("0.035", "0.02", "100");
    let events = create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    assert_eq!(
        types(&events),
        ["AccountOpened", "PendingTransferCreated", "OrderCreated"],
        "profit opened on first use"
    );
    let OrderEvent::Created(e) = events[2].orders().unwrap() else { panic!() };
    assert_eq!((e.rate, e.settlement_amount, e.status), (dec("92.5"), dec("10.810810"), Status::Pending));
    let a = e.assignment.as_ref().unwrap();
    assert_eq!((a.trader.as_str(), a.requisite.as_str(), a.masked.as_str()), ("t1", "r1", "•••• 4242"));
    assert_eq!(a.expires_at, T0.plus_seconds(900));
    // Held: the deposit's available balance, not its balance; nobody is credited yet.
    assert_eq!((balance(&state, deposit("t1")), available(&state, deposit("t1"))), (dec("100"), dec("89.189190")));
    assert_eq!(balance(&state, store_acc("s1")), Decimal::ZERO);
    let held = vec![
        (deposit("t1"), Side::Debit, dec("10.810810")),
        (store_acc("s1"), Side::Credit, dec("10.432432")),
        (rewards("t1"), Side::Credit, dec("0.216216")),
        (platform(), Side::Credit, dec("0.162162")),
    ];
    assert_eq!(entry(&state, 1), held);

    let events = run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(types(&events), ["PendingTransferPosted", "OrderCompleted"]);
    let t = state.ledger.transfer(oid(1).hold_transfer()).unwrap();
    assert_eq!(t.status, TransferStatus::Posted);
    assert_eq!(balance(&state, deposit("t1")), dec("89.189190"));
    assert_eq!(balance(&state, store_acc("s1")), dec("10.432432"));
    assert_eq!(balance(&state, rewards("t1")), dec("0.216216"));
    assert_eq!(balance(&state, platform()), dec("0.162162"));
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!((o.status, o.completed_at, o.version), (Status::Completed, Some(T0), 2));
    // Completing again replays.
    assert_eq!(run(&mut state, Command::Complete { id: oid(1) }).unwrap(), []);
}

#[test]
fn a_trader_fee_above_the_stores_is_a_platform_debit_and_the_entry_still_balances() {
    let mut state = given("0.01", "0.03", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    assert_eq!(
        entry(&state, 1),
        [
            (deposit("t1"), Side::Debit, dec("10.810810")),
            (store_acc("s1"), Side::Credit, dec("10.702702")),
            (rewards("t1"), Side::Credit, dec("0.324324")),
            (platform(), Side::Debit, dec("0.216216")),
        ]
    );
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(balance(&state, platform()), dec("-0.216216"), "a platform expense");
    assert_eq!(balance(&state, rewards("t1")), dec("0.324324"));
    assert_eq!(balance(&state, store_acc("s1")), dec("10.702702"));
}

#[test]
fn a_pay_out_holds_the_stores_amount_and_fee_and_credits_the_deposit() {
    let mut state = given("0.035", "0.02", "0");
    // An unfunded store cannot pay out: refused by the ledger, nothing recorded.
    let refused = create(&mut state, order_cmd(1, OrderKind::PayOut, "1000.00")).unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds");
    assert!(state.orders.order(oid(1)).is_none());
    assert!(state.ledger.transfer(oid(1).hold_transfer()).is_none());
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, Decimal::ZERO);
    fund(&mut state, store_acc("s1"), "20");
    create(&mut state, order_cmd(1, OrderKind::PayOut, "1000.00")).unwrap();
    assert_eq!(available(&state, store_acc("s1")), dec("8.810812"), "20 − (10.810810 + 0.378378)");
    assert_eq!(
        entry(&state, 1),
        [
            (store_acc("s1"), Side::Debit, dec("11.189188")),
            (deposit("t1"), Side::Credit, dec("10.810810")),
            (rewards("t1"), Side::Credit, dec("0.216216")),
            (platform(), Side::Credit, dec("0.162162")),
        ]
    );
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    assert_eq!(balance(&state, store_acc("s1")), dec("8.810812"));
    assert_eq!(balance(&state, deposit("t1")), dec("10.810810"));
    assert_eq!(balance(&state, rewards("t1")), dec("0.216216"));
    assert_eq!(balance(&state, platform()), dec("0.162162"));
}
