//! Creating an order: idempotency by id and external id, the rate and the checks before it.

use super::*;

#[test]
fn an_order_is_idempotent_by_id_and_by_the_stores_external_id() {
    let mut state = given("0.035", "0.02", "100");
    let c = order_cmd(1, OrderKind::PayIn, "1000.00");
    create(&mut state, c.clone()).unwrap();
    // The same body replays, whatever the rate is now.
    let later = CreateOrder { terms: Terms { rate: Some(dec("80")), ..terms() }, amount: dec("1000"), ..c.clone() };
    assert_eq!(create(&mut state, later).unwrap(), []);
    assert_eq!(state.orders.order(oid(1)).unwrap().settlement_amount, dec("10.810810"));
    let different = CreateOrder { amount: dec("1000.01"), ..c.clone() };
    assert_eq!(create(&mut state, different).unwrap_err(), Rejection::OrderExists);
    let other_id = CreateOrder { id: oid(2), ..c.clone() };
    assert_eq!(create(&mut state, other_id).unwrap_err().code(), "order_exists");
    assert!(state.orders.order(oid(2)).is_none());
    // Another store may use the same external id.
    run(&mut state, store_cmd("s2", "0.01")).unwrap();
    create(&mut state, CreateOrder { id: oid(3), store: "s2".into(), ..c }).unwrap();
    assert_eq!(state.orders.by_external("s2", "ext-1").unwrap().id, oid(3));
    assert_eq!(available(&state, deposit("t1")), dec("78.378380"), "two holds, not three");
}

#[test]
fn an_order_without_a_rate_or_a_requisite_is_refused_and_a_retry_decides_afresh() {
    let mut state = given("0.035", "0.02", "100");
    let no_rate = CreateOrder { terms: Terms { rate: None, ..terms() }, ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, no_rate).unwrap_err().code(), "no_exchange_rate");
    let zero =
        CreateOrder { terms: Terms { rate: Some(Decimal::ZERO), ..terms() }, ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, zero).unwrap_err(), Rejection::NoExchangeRate);
    let by_sbp = CreateOrder { method: Some("sbp".into()), ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, by_sbp.clone()).unwrap_err().code(), "no_requisite_available");
    assert!(state.orders.order(oid(1)).is_none());
    let mut sbp = requisite_cmd("t1", "r2", "100", "10000", "50000");
    sbp.method = "sbp".into();
    run(&mut state, Command::UpsertRequisite(Box::new(sbp))).unwrap();
    create(&mut state, by_sbp).unwrap();
    assert_eq!(assigned(&state, 1), ("t1".into(), "r2".into()));
    for (amount, code) in [("0", "amount_must_be_positive"), ("10.001", "amount_scale")] {
        assert_eq!(create(&mut state, order_cmd(5, OrderKind::PayIn, amount)).unwrap_err().code(), code);
    }
    let unknown = CreateOrder { store: "nobody".into(), ..order_cmd(5, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, unknown).unwrap_err(), Rejection::StoreNotFound);
    let trader = CreateOrder { trader: Some("t9".into()), ..order_cmd(5, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, trader).unwrap_err(), Rejection::TraderNotFound);
}

#[test]
fn an_orders_external_id_and_method_are_each_checked_and_its_worth_is_bounded_by_the_ledgers_largest_amount() {
    let mut state = given("0.035", "0.02", "100");
    let no_ext = CreateOrder { external_order_id: String::new(), ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, no_ext).unwrap_err(), Rejection::InvalidReference);
    let bad_method = CreateOrder { method: Some("card\n".into()), ..order_cmd(1, OrderKind::PayIn, "1000") };
    assert_eq!(create(&mut state, bad_method).unwrap_err(), Rejection::InvalidReference);
    assert!(state.orders.order(oid(1)).is_none());
    // Worth exactly the largest amount: settled; worth more: overflow, never a hold the
    // ledger cannot carry.
    let largest = crate::money::max_amount();
    assert_eq!(settlement_amount(largest, Decimal::ONE, 0).unwrap(), largest);
    assert_eq!(settlement_amount(largest, dec("1.5"), 2).unwrap(), dec("666666666666666666666666.66"));
    let over = settlement_amount(largest, dec("0.5"), 0).unwrap_err();
    assert_eq!(over, Rejection::Ledger(ledger::Rejection::Overflow));
}
