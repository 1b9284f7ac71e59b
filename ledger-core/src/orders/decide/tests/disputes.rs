//! Disputes: the window, reversal and uphold.

use super::*;

#[test]
fn a_reversed_dispute_posts_the_exact_compensating_entry() {
    let mut state = given("0.01", "0.03", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    let late = Timestamp(T0.0 + 72 * 3600 * 1_000_000 + 1);
    let window = run_at(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }, late);
    assert_eq!(window.unwrap_err(), Rejection::DisputeWindowClosed);
    let blank = run(&mut state, Command::Dispute { id: oid(1), reason: "".into() });
    assert_eq!(blank.unwrap_err(), Rejection::InvalidReason);
    let at_edge = Timestamp(T0.0 + 72 * 3600 * 1_000_000);
    let disputed = run_at(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }, at_edge).unwrap();
    assert_eq!(types(&disputed), ["OrderDisputed"]);
    let resolve = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "chargeback".into() };
    let events = run(&mut state, resolve.clone()).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "AuditRecorded", "OrderReversed"]);
    let reversal = state.ledger.transfer(oid(1).reversal_transfer()).unwrap();
    let legs: Vec<_> = reversal.postings.iter().map(|p| (p.account, p.side, p.amount)).collect();
    let opposite: Vec<_> = entry(&state, 1).into_iter().map(|(a, side, amount)| (a, side.opposite(), amount)).collect();
    assert_eq!(legs, opposite, "every leg, the other way");
    assert_eq!(balance(&state, deposit("t1")), dec("100.000000"));
    for account in [store_acc("s1"), rewards("t1"), platform()] {
        assert_eq!(balance(&state, account), Decimal::ZERO);
    }
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!((o.status, o.reversal), (Status::Reversed, Some(oid(1).reversal_transfer())));
    assert_eq!(run(&mut state, resolve).unwrap(), [], "reversing again replays");
}

#[test]
fn a_reversal_the_store_cannot_pay_keeps_the_dispute_open_and_uphold_restores_completed() {
    let mut state = given("0.035", "0.02", "100");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000.00")).unwrap();
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }).unwrap();
    withdraw(&mut state, store_acc("s1"), "10");
    let reverse = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "chargeback".into() };
    assert_eq!(run(&mut state, reverse).unwrap_err().code(), "insufficient_funds");
    assert_eq!(status(&state, 1), Status::Disputed);
    assert!(state.ledger.transfer(oid(1).reversal_transfer()).is_none());
    let uphold = Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: "paid after all".into() };
    assert_eq!(types(&run(&mut state, uphold.clone()).unwrap()), ["AuditRecorded", "DisputeUpheld"]);
    assert_eq!(status(&state, 1), Status::Completed);
    assert_eq!(run(&mut state, uphold).unwrap(), [], "upholding again replays");
    assert_eq!(balance(&state, store_acc("s1")), dec("0.432432"), "no money moved");
}
