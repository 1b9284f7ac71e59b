//! Which trader's requisite takes an order, within its limits and its trader's deposit.

use super::*;

#[test]
fn assignment_takes_the_lowest_priority_then_the_requisite_used_longest_ago() {
    let mut state = given("0.035", "0.02", "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r2", "100", "10000", "50000")))).unwrap();
    run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t2", "0.02", 1)))).unwrap();
    fund(&mut state, deposit("t2"), "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t2", "q1", "100", "10000", "50000")))).unwrap();
    run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t3", "0.02", 5)))).unwrap();
    fund(&mut state, deposit("t3"), "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t3", "z1", "100", "10000", "50000")))).unwrap();
    let mut got = Vec::new();
    for n in 1..=6 {
        create_at(&mut state, order_cmd(n, OrderKind::PayIn, "1000"), T0.plus_seconds(n as u32)).unwrap();
        got.push(assigned(&state, n));
    }
    let pair = |t: &str, r: &str| (t.to_owned(), r.to_owned());
    // Never used first (by trader and id), then the one used longest ago: round robin over
    // the three requisites of priority 1; t3 (priority 5) gets nothing.
    assert_eq!(
        got,
        [pair("t1", "r1"), pair("t1", "r2"), pair("t2", "q1"), pair("t1", "r1"), pair("t1", "r2"), pair("t2", "q1")]
    );
    // Traffic off, a disabled requisite, an amount outside its range: skipped.
    let mut off = trader_cmd("t2", "0.02", 1);
    off.traffic_enabled = false;
    run(&mut state, Command::UpsertTrader(Box::new(off))).unwrap();
    let mut disabled = requisite_cmd("t1", "r1", "100", "10000", "50000");
    disabled.enabled = false;
    run(&mut state, Command::UpsertRequisite(Box::new(disabled))).unwrap();
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r2", "100", "500", "50000")))).unwrap();
    create_at(&mut state, order_cmd(7, OrderKind::PayIn, "1000"), T0.plus_seconds(7)).unwrap();
    assert_eq!(assigned(&state, 7), pair("t3", "z1"));
    // A named trader takes it only through its own requisites.
    let named = CreateOrder { trader: Some("t1".into()), ..order_cmd(8, OrderKind::PayIn, "400") };
    create(&mut state, named).unwrap();
    assert_eq!(assigned(&state, 8), pair("t1", "r2"));
    let named = CreateOrder { trader: Some("t2".into()), ..order_cmd(9, OrderKind::PayIn, "400") };
    assert_eq!(create(&mut state, named).unwrap_err(), Rejection::NoRequisiteAvailable);
}

#[test]
fn consecutive_orders_never_overrun_a_daily_limit_or_a_deposit() {
    // Daily limit 2500 RUB: two orders of 1000 fit, a third does not (pending counts).
    let mut state = given("0.035", "0.02", "1000");
    run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "100", "2500", "2500")))).unwrap();
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    create(&mut state, order_cmd(2, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(
        create(&mut state, order_cmd(3, OrderKind::PayIn, "1000")).unwrap_err(),
        Rejection::NoRequisiteAvailable
    );
    create(&mut state, order_cmd(3, OrderKind::PayIn, "500")).unwrap();
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().turnover(T0), dec("2500"), "exactly the limit");
    // Completed counts too, for the rest of the UTC day; the next day starts afresh.
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Cancel { id: oid(2), reason: None }).unwrap();
    run(&mut state, Command::Cancel { id: oid(3), reason: None }).unwrap();
    let r = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((r.completed_today, r.pending, r.turnover(T0)), (dec("1000"), dec("0"), dec("1000")));
    assert_eq!(r.turnover(Timestamp(T0.0 + DAY / 2 - 1)), dec("1000"), "until the day's last microsecond");
    create(&mut state, order_cmd(4, OrderKind::PayIn, "1500")).unwrap();
    assert_eq!(create(&mut state, order_cmd(5, OrderKind::PayIn, "100")).unwrap_err(), Rejection::NoRequisiteAvailable);
    let tomorrow = Timestamp(T0.0 + DAY / 2);
    assert_eq!(state.orders.requisite("t1", "r1").unwrap().turnover(tomorrow), dec("1500"), "only the pending one");
    create_at(&mut state, order_cmd(5, OrderKind::PayIn, "1000"), tomorrow).unwrap();

    // A deposit of 25 USDT: two pay-ins of 10.810810 fit, a third does not.
    let mut state = given("0.035", "0.02", "25");
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    create(&mut state, order_cmd(2, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(
        create(&mut state, order_cmd(3, OrderKind::PayIn, "1000")).unwrap_err(),
        Rejection::NoRequisiteAvailable
    );
    assert_eq!(available(&state, deposit("t1")), dec("3.378380"));
    // A pay-out needs no deposit: it credits it.
    fund(&mut state, store_acc("s1"), "50");
    create(&mut state, order_cmd(3, OrderKind::PayOut, "1000")).unwrap();
    assert_eq!(available(&state, deposit("t1")), dec("3.378380"));
}

#[test]
fn a_pay_in_passes_over_the_best_traders_whose_deposits_fall_short() {
    // t1 (priority 1) holds 5 USDT, t2 (priority 2) 8, t3 (priority 3) 1000: a pay-in of
    // 10.810810 USDT goes to t3; one of 4.324324 (400 RUB) to t1, the best that holds it.
    let mut state = given("0.035", "0.02", "5");
    for (t, priority, funded) in [("t2", 2, "8"), ("t3", 3, "1000")] {
        run(&mut state, Command::UpsertTrader(Box::new(trader_cmd(t, "0.02", priority)))).unwrap();
        fund(&mut state, deposit(t), funded);
        run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd(t, "r1", "100", "10000", "50000")))).unwrap();
    }
    create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    assert_eq!(assigned(&state, 1), ("t3".to_owned(), "r1".to_owned()));
    create(&mut state, order_cmd(2, OrderKind::PayIn, "400")).unwrap();
    assert_eq!(assigned(&state, 2), ("t1".to_owned(), "r1".to_owned()));
    // t1 now holds 0.675676 and t2 8: 700 RUB (7.567567) goes to t2, then none is left for it.
    create(&mut state, order_cmd(3, OrderKind::PayIn, "700")).unwrap();
    assert_eq!(assigned(&state, 3), ("t2".to_owned(), "r1".to_owned()));
    assert_eq!(available(&state, deposit("t3")), dec("989.189190"));
}
