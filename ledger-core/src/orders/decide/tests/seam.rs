//! What the writer and the store rely on: answers, transfers to load, rows and event round trips.

use super::*;

#[test]
fn commands_name_what_they_answer_with_and_the_transfers_to_load() {
    let c = Command::Create(Box::new(order_cmd(1, OrderKind::PayIn, "1")));
    let answer = c.answer().unwrap();
    assert_eq!(
        (answer.subject, answer.replay),
        (Subject::Entity(EntityRef { kind: ORDER_KIND, id: oid(1).0 }), crate::Replay::First)
    );
    assert_eq!(c.transfer_ids(), [oid(1).hold_transfer()]);
    let resolve = Command::Resolve { id: oid(1), outcome: Outcome::Reverse, reason: "r".into() };
    assert_eq!(resolve.transfer_ids(), [oid(1).hold_transfer(), oid(1).reversal_transfer()]);
    assert_eq!(resolve.answer().unwrap().replay, crate::Replay::Last);
    assert_eq!(Command::ExpireDue.answer(), None);
    assert!(Command::ExpireDue.transfer_ids().is_empty());
    assert_eq!(store_cmd("s1", "0").answer().unwrap().subject, Subject::Entity(store_entity("s1")));
    assert_ne!(oid(1).hold_transfer(), oid(1).reversal_transfer());
    assert_ne!(oid(1).hold_transfer(), oid(2).hold_transfer());
    assert_ne!(requisite_entity("t1", "r1"), requisite_entity("t2", "r1"));
    assert_eq!(platform_account(&usdt()).1, "orders:platform:profit:USDT");
    for r in [Rejection::OrderExists, Rejection::Ledger(ledger::Rejection::InsufficientFunds)] {
        assert_eq!(crate::domain::DomainRejection::code(r), r.code());
        assert_eq!(crate::Rejection::from(r).code(), r.code());
    }
    // Terms come from the runtime configuration's values, with the declared defaults.
    let lookup = |key: &str| match key {
        "orders.rate.RUB/USDT" => serde_json::json!("92.5"),
        "orders.fraud.review_over.RUB" => serde_json::json!("50000"),
        "orders.timeout_seconds" => serde_json::json!(600),
        _ => serde_json::Value::Null,
    };
    let t = Terms::resolve(lookup, &rub(), &usdt());
    assert_eq!(t, Terms { review_over: Some(dec("50000")), timeout_seconds: 600, ..terms() });
    assert_eq!(Terms::resolve(|_| serde_json::Value::Null, &rub(), &usdt()).rate, None);
    let rate = crate::settings::check("orders.rate.RUB/USDT", &serde_json::json!("92.5")).unwrap();
    assert_eq!(rate.name, "orders.rate.{pair}");
    assert!(crate::settings::check("orders.rate.RUB/USDT", &serde_json::json!("0")).is_err());
    assert_eq!((crate::settings::find("orders.timeout_seconds").unwrap().default)(), serde_json::json!(900));
}

#[test]
fn stored_rows_load_back_into_the_same_state_and_every_event_reads_back() {
    let mut state = given("0.035", "0.02", "1000");
    let review = Terms { review_over: Some(dec("5000")), ..terms() };
    let mut events = Vec::new();
    events.extend(run(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("r"))))).unwrap());
    events.extend(run(&mut state, store_cmd("s1", "0.04")).unwrap());
    for n in 1..=5 {
        events.extend(create(&mut state, order_cmd(n, OrderKind::PayIn, "1000")).unwrap());
    }
    events.extend(
        create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(6, OrderKind::PayIn, "6000") }).unwrap(),
    );
    events.extend(create(&mut state, CreateOrder { terms: review, ..order_cmd(7, OrderKind::PayIn, "6000") }).unwrap());
    let why = || "why".to_owned();
    for c in [
        Command::Approve { id: oid(6) },
        Command::Deny { id: oid(7), reason: None },
        Command::Complete { id: oid(1) },
        Command::Complete { id: oid(2) },
        Command::Cancel { id: oid(3), reason: None },
        Command::Fail { id: oid(4), reason: None },
        Command::Dispute { id: oid(1), reason: why() },
        Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: why() },
        Command::Dispute { id: oid(2), reason: why() },
        Command::Resolve { id: oid(2), outcome: Outcome::Reverse, reason: why() },
    ] {
        events.extend(run(&mut state, c).unwrap());
    }
    events.extend(run_at(&mut state, Command::ExpireDue, T0.plus_seconds(900)).unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for event in events.iter().filter(|e| e.orders().is_some()) {
        seen.insert(event.event_type());
        let back = AnyEvent::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(&back, event);
        let o = event.orders().unwrap();
        assert!(OrderEvent::decode(o.event_type(), 2, &o.payload()).is_err());
    }
    seen.insert("StoreCreated");
    seen.insert("TraderUpserted");
    seen.insert("RequisiteUpserted");
    assert_eq!(seen.len(), crate::orders::event::EVENT_TYPES.len(), "{seen:?}");
    assert_eq!(OrderEvent::schemas().len(), crate::orders::event::EVENT_TYPES.len());
    // An order's leaving pending touches its requisite's row, which moves its counters.
    let completed = AnyEvent::from(OrderEvent::Completed(Box::new(OrderTransition {
        id: oid(1),
        reason: None,
        transfer: None,
        at: T0,
    })));
    let r = requisite_entity("t1", "r1");
    assert_eq!(state.touched(&completed)[1], crate::Touched { subject: Subject::Entity(r), moves: false });
    let requisite = state.orders.requisite("t1", "r1").unwrap();
    assert_eq!((requisite.completed_today, requisite.pending), (dec("2000"), dec("0")));
    assert_eq!(requisite.last_used_at, Some(T0));
    assert_eq!(state.version(Subject::Entity(r)), Some(1 + 5 + 1 + 5 + 1), "created, 6 assigned, 6 released");

    let rows = state.orders.rows();
    assert_eq!(rows.len(), 1 + 1 + 1 + 7);
    let mut loaded = crate::orders::State::default();
    for row in rows.clone() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.orders);
    assert!(rows.iter().any(|r| r.kind == REQUISITE_KIND && r.key == "t1/r1"));
    for mut wrong in rows {
        wrong.version += 1;
        assert!(crate::orders::State::default().load(wrong).is_err());
    }
    let names: Vec<&str> = [Status::ManualReview, Status::Pending, Status::Denied].map(Status::as_str).to_vec();
    assert_eq!(names, ["manual_review", "pending", "denied"]);
}

#[test]
fn the_timeout_and_the_dispute_window_take_a_minute_to_a_week_and_an_hour_to_ninety_days() {
    use serde_json::json;
    for (key, min, max) in [("orders.timeout_seconds", 60, 7 * 86_400), ("orders.dispute_window_hours", 1, 90 * 24)] {
        for (value, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            assert_eq!(crate::settings::check(key, &json!(value)).is_ok(), ok, "{key} = {value}");
        }
    }
}

#[test]
fn only_the_tables_transitions_are_allowed_and_an_ended_order_becomes_nothing() {
    use Status::*;
    let all = [ManualReview, Pending, Completed, Disputed, Reversed, Cancelled, Failed, Expired, Denied];
    let allowed: Vec<(Status, Status)> =
        all.iter().flat_map(|&from| all.iter().map(move |&to| (from, to))).filter(|(f, t)| f.may_become(*t)).collect();
    assert_eq!(allowed, crate::orders::state::TRANSITIONS);
    for ended in [Reversed, Cancelled, Failed, Expired, Denied] {
        assert!(all.iter().all(|&to| !ended.may_become(to)), "{ended:?}");
    }
    assert!(!Completed.may_become(Pending) && !Pending.may_become(ManualReview));
}

#[test]
fn an_orders_assignment_touches_its_requisites_row_and_every_entity_reports_its_version() {
    let mut state = given("0.035", "0.02", "100");
    let r = Subject::Entity(requisite_entity("t1", "r1"));
    let touches = |state: &AnyState, events: &[AnyEvent], kind: &str| {
        let event = events.iter().find(|e| e.event_type() == kind).unwrap();
        state.touched(event).contains(&crate::Touched { subject: r, moves: false })
    };
    let created = create(&mut state, order_cmd(1, OrderKind::PayIn, "1000")).unwrap();
    assert!(touches(&state, &created, "OrderCreated"));
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    let waiting = create(&mut state, CreateOrder { terms: review, ..order_cmd(2, OrderKind::PayIn, "1000") }).unwrap();
    assert!(!touches(&state, &waiting, "OrderCreated"), "nothing assigned, nothing touched");
    let approved = run(&mut state, Command::Approve { id: oid(2) }).unwrap();
    assert!(touches(&state, &approved, "OrderApproved"));
    run(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("r"))))).unwrap();
    assert_eq!(state.version(Subject::Entity(store_entity("s1"))), Some(2));
    assert_eq!(state.version(Subject::Entity(crate::orders::trader_entity("t1"))), Some(1));
    assert_eq!(state.version(r), Some(3), "created, two orders assigned");
    assert_eq!(state.version(Subject::Entity(EntityRef { kind: ORDER_KIND, id: oid(2).0 })), Some(2));
}
