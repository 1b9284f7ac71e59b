//! An order's statuses: cancel, fail and expiry, and the transition table.

use super::*;

#[test]
fn cancel_fail_and_expiry_void_the_hold_and_free_the_limits() {
    let mut state = given("0.035", "0.02", "100");
    for n in 1..=4 {
        create(&mut state, order_cmd(n, OrderKind::PayIn, "1000.00")).unwrap();
    }
    assert_eq!(available(&state, deposit("t1")), dec("56.756760"));
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, dec("4000.00"));
    let cancelled = run(&mut state, Command::Cancel { id: oid(1), reason: Some("client left".into()) }).unwrap();
    assert_eq!(types(&cancelled), ["PendingTransferVoided", "OrderCancelled"]);
    let failed = run(&mut state, Command::Fail { id: oid(2), reason: None }).unwrap();
    assert_eq!(types(&failed), ["PendingTransferVoided", "OrderFailed"]);
    assert_eq!(state.orders.order(oid(1)).unwrap().reason.as_deref(), Some("client left"));
    assert_eq!((status(&state, 1), status(&state, 2)), (Status::Cancelled, Status::Failed));
    assert_eq!(available(&state, deposit("t1")), dec("78.378380"));
    // Expiry: nothing is due before the deadline; at it, every pending order expires.
    let deadline = T0.plus_seconds(900);
    assert_eq!(run_at(&mut state, Command::ExpireDue, Timestamp(deadline.0 - 1)).unwrap(), []);
    let complete_late = run_at(&mut state, Command::Complete { id: oid(3) }, deadline);
    assert_eq!(complete_late.unwrap_err(), Rejection::OrderExpired);
    let expired = run_at(&mut state, Command::ExpireDue, deadline).unwrap();
    assert_eq!(types(&expired), ["PendingTransferVoided", "OrderExpired", "PendingTransferVoided", "OrderExpired"]);
    assert_eq!((status(&state, 3), status(&state, 4)), (Status::Expired, Status::Expired));
    assert_eq!(available(&state, deposit("t1")), dec("100.000000"));
    assert_eq!(balance(&state, store_acc("s1")), Decimal::ZERO);
    let r = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((r.pending, r.completed_today), (dec("0.00"), Decimal::ZERO));
    assert_eq!(run_at(&mut state, Command::ExpireDue, deadline).unwrap(), [], "nothing left due");
    // Said again, each replays; anything else is refused.
    assert_eq!(run(&mut state, Command::Cancel { id: oid(1), reason: None }).unwrap(), []);
    assert_eq!(run(&mut state, Command::Fail { id: oid(1), reason: None }).unwrap_err(), Rejection::InvalidOrderState);
    let bad = run(&mut state, Command::Cancel { id: oid(9), reason: Some(" ".into()) });
    assert_eq!(bad.unwrap_err(), Rejection::OrderNotFound);
    assert_eq!(
        run(&mut state, Command::Cancel { id: oid(2), reason: Some(" ".into()) }).unwrap_err(),
        Rejection::InvalidReason
    );
}

/// Every command that makes a transition, with the one transition of the table it makes.
fn every_transition(n: u128) -> Vec<(Command, Status, Status)> {
    use Status::*;
    let id = oid(n);
    let why = "why".to_owned();
    vec![
        (Command::Approve { id }, ManualReview, Pending),
        (Command::Deny { id, reason: None }, ManualReview, Denied),
        (Command::Complete { id }, Pending, Completed),
        (Command::Cancel { id, reason: None }, Pending, Cancelled),
        (Command::Fail { id, reason: None }, Pending, Failed),
        (Command::Dispute { id, reason: why.clone() }, Completed, Disputed),
        (Command::Resolve { id, outcome: Outcome::Uphold, reason: why.clone() }, Disputed, Completed),
        (Command::Resolve { id, outcome: Outcome::Reverse, reason: why }, Disputed, Reversed),
    ]
}

#[test]
fn every_transition_outside_the_table_is_refused_and_changes_nothing() {
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    // One order in each status, n = the status's place.
    let mut state = given("0.035", "0.02", "1000");
    let make = |state: &mut AnyState, n: u128, steps: &[Command]| {
        create(state, CreateOrder { terms: review.clone(), ..order_cmd(n, OrderKind::PayIn, "1000.00") }).unwrap();
        for step in steps {
            run(state, step.clone()).unwrap();
        }
    };
    let why = || "why".to_owned();
    make(&mut state, 1, &[]);
    make(&mut state, 2, &[Command::Approve { id: oid(2) }]);
    make(&mut state, 3, &[Command::Approve { id: oid(3) }, Command::Complete { id: oid(3) }]);
    let dispute = |n| Command::Dispute { id: oid(n), reason: why() };
    make(&mut state, 4, &[Command::Approve { id: oid(4) }, Command::Complete { id: oid(4) }, dispute(4)]);
    let reverse = |n| Command::Resolve { id: oid(n), outcome: Outcome::Reverse, reason: why() };
    make(&mut state, 5, &[Command::Approve { id: oid(5) }, Command::Complete { id: oid(5) }, dispute(5), reverse(5)]);
    make(&mut state, 6, &[Command::Approve { id: oid(6) }, Command::Cancel { id: oid(6), reason: None }]);
    make(&mut state, 7, &[Command::Approve { id: oid(7) }, Command::Fail { id: oid(7), reason: None }]);
    make(&mut state, 9, &[Command::Deny { id: oid(9), reason: Some("fraud".into()) }]);
    create(
        &mut state,
        CreateOrder { terms: Terms { timeout_seconds: 60, ..terms() }, ..order_cmd(8, OrderKind::PayIn, "100") },
    )
    .unwrap();
    run_at(&mut state, Command::ExpireDue, T0.plus_seconds(60)).unwrap();
    let statuses = [
        (1, Status::ManualReview),
        (2, Status::Pending),
        (3, Status::Completed),
        (4, Status::Disputed),
        (5, Status::Reversed),
        (6, Status::Cancelled),
        (7, Status::Failed),
        (8, Status::Expired),
        (9, Status::Denied),
    ];
    let mut refused = 0;
    for (n, from) in statuses {
        assert_eq!(status(&state, n), from);
        for (command, own, to) in every_transition(n) {
            assert!(own.may_become(to), "{own:?} → {to:?} is in the table");
            if from == own || from == to {
                continue;
            }
            let before = state.clone();
            let r = run(&mut state, command.clone());
            assert_eq!(r.unwrap_err(), Rejection::InvalidOrderState, "{from:?} → {to:?} by {command:?}");
            assert_eq!(state, before, "a refusal changes nothing");
            refused += 1;
        }
    }
    // A completed order never upheld is not replayed by an uphold.
    let uphold = Command::Resolve { id: oid(3), outcome: Outcome::Uphold, reason: why() };
    assert_eq!(run(&mut state, uphold).unwrap_err(), Rejection::InvalidOrderState);
    assert_eq!(refused, 9 * 8 - 8 - 8, "every pair but each command's own transition and its replay");
    // Completing is from pending only: a disputed order is not completed behind support's back.
    assert_eq!(run(&mut state, Command::Complete { id: oid(4) }).unwrap_err(), Rejection::InvalidOrderState);
}
