//! Fraud limits: manual review, approval and denial.

use super::*;

#[test]
fn an_order_over_the_review_limit_waits_unheld_until_approved_or_denied() {
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("999.99")), deny_over: Some(dec("5000")), ..terms() };
    let events =
        create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    assert_eq!(types(&events), ["OrderCreated"], "nothing held");
    assert_eq!(status(&state, 1), Status::ManualReview);
    assert_eq!(available(&state, deposit("t1")), dec("100"));
    assert!(state.ledger.transfer(oid(1).hold_transfer()).is_none());
    // At the limit exactly: no review.
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(2, OrderKind::PayIn, "999.99") }).unwrap();
    assert_eq!(status(&state, 2), Status::Pending);
    let approved = run_at(&mut state, Command::Approve { id: oid(1) }, T0.plus_seconds(30)).unwrap();
    assert_eq!(types(&approved), ["PendingTransferCreated", "AuditRecorded", "OrderApproved"]);
    let o = state.orders.order(oid(1)).unwrap();
    assert_eq!(o.assignment.as_ref().unwrap().expires_at, T0.plus_seconds(930), "the timeout runs from approval");
    assert_eq!(available(&state, deposit("t1")), dec("100") - dec("10.810810") - dec("10.810702"));
    assert_eq!(run(&mut state, Command::Approve { id: oid(1) }).unwrap(), [], "approving again replays");
    // Denied from review: nothing was ever held.
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(3, OrderKind::PayIn, "2000") }).unwrap();
    let denied = run(&mut state, Command::Deny { id: oid(3), reason: Some("stolen card".into()) }).unwrap();
    assert_eq!(types(&denied), ["AuditRecorded", "OrderDenied"]);
    assert_eq!(run(&mut state, Command::Approve { id: oid(3) }).unwrap_err(), Rejection::InvalidOrderState);
    // Over the deny limit: recorded denied at once, nothing held, and a retry answers the same.
    // At the deny limit exactly: reviewed, not denied.
    let at_limit = CreateOrder { terms: review.clone(), ..order_cmd(5, OrderKind::PayIn, "5000") };
    create(&mut state, at_limit).unwrap();
    assert_eq!(status(&state, 5), Status::ManualReview);
    let over = CreateOrder { terms: review, ..order_cmd(4, OrderKind::PayIn, "5000.01") };
    assert_eq!(types(&create(&mut state, over.clone()).unwrap()), ["AuditRecorded", "OrderCreated"]);
    assert_eq!(status(&state, 4), Status::Denied);
    assert_eq!(create(&mut state, over).unwrap(), []);
    assert_eq!(FRAUD_DENIED, "fraud_denied");
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().pending, dec("1999.99"));
}

#[test]
fn approving_finds_no_requisite_then_the_order_stays_in_review() {
    let mut state = given("0.035", "0.02", "5");
    let review = Terms { review_over: Some(dec("1")), ..terms() };
    create(&mut state, CreateOrder { terms: review, ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    assert_eq!(run(&mut state, Command::Approve { id: oid(1) }).unwrap_err(), Rejection::NoRequisiteAvailable);
    assert_eq!(status(&state, 1), Status::ManualReview);
    fund(&mut state, deposit("t1"), "6");
    let approved = run(&mut state, Command::Approve { id: oid(1) }).unwrap();
    assert_eq!(types(&approved), ["AccountOpened", "PendingTransferCreated", "AuditRecorded", "OrderApproved"]);
    assert_eq!(approved[0].subject(), Subject::Account(platform()), "the refused approval opened nothing");
}
