//! The audit entries of manual decisions and admin changes.

use super::*;

#[test]
fn every_manual_decision_and_admin_change_is_an_audit_entry_of_its_own_with_the_right_level() {
    use crate::audit::Level;
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("500")), deny_over: Some(dec("5000")), ..terms() };
    fn decided(state: &mut AnyState, c: Command, all: &mut Vec<crate::audit::Entry>) -> crate::audit::Entry {
        let events = run(state, c).unwrap();
        let found = entries(&events);
        assert_eq!(found.len(), 1, "one entry: {:?}", types(&events));
        all.push(found[0].clone());
        found[0].clone()
    }
    let mut all = Vec::new();
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    create(&mut state, CreateOrder { terms: review.clone(), ..order_cmd(2, OrderKind::PayIn, "1000") }).unwrap();
    let approved = decided(&mut state, Command::Approve { id: oid(1) }, &mut all);
    assert_eq!((approved.level, approved.action.as_str()), (Level::Info, "orders.approve"));
    assert_eq!(approved.subject, format!("order:{}", oid(1)));
    assert_eq!(approved.before, Some(serde_json::json!({"status": "manual_review"})));
    assert_eq!(approved.after, Some(serde_json::json!({"status": "pending", "trader": "t1"})));
    let denied = decided(&mut state, Command::Deny { id: oid(2), reason: Some("stolen card".into()) }, &mut all);
    assert_eq!((denied.level, denied.action.as_str()), (Level::Warning, "orders.deny"));
    assert_eq!(denied.reason.as_deref(), Some("stolen card"));
    assert_eq!(denied.after, Some(serde_json::json!({"status": "denied"})));
    // Denied by the fraud rule at creation: audited too, once, whatever the retries.
    let over = CreateOrder { terms: review, ..order_cmd(3, OrderKind::PayIn, "6000") };
    let fraud = entries(&create(&mut state, over.clone()).unwrap());
    assert_eq!(fraud.len(), 1);
    assert_eq!((fraud[0].level, fraud[0].action.as_str()), (Level::Warning, "orders.fraud_deny"));
    assert_eq!(fraud[0].after.as_ref().unwrap()["deny_over"], "5000");
    assert_eq!(create(&mut state, over).unwrap(), []);
    all.push(fraud[0].clone());
    // Disputes, upheld then (a second order) reversed.
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }).unwrap();
    let uphold = Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: "paid".into() };
    let upheld = decided(&mut state, uphold.clone(), &mut all);
    assert_eq!((upheld.level, upheld.action.as_str()), (Level::Info, "orders.uphold"));
    assert_eq!(upheld.before, Some(serde_json::json!({"status": "disputed"})));
    assert_eq!(run(&mut state, uphold).unwrap(), [], "a retry records nothing");
    create(&mut state, order_cmd(4, OrderKind::PayIn, "1000")).unwrap();
    run(&mut state, Command::Complete { id: oid(4) }).unwrap();
    run(&mut state, Command::Dispute { id: oid(4), reason: "not paid".into() }).unwrap();
    let reversed = decided(
        &mut state,
        Command::Resolve { id: oid(4), outcome: Outcome::Reverse, reason: "chargeback".into() },
        &mut all,
    );
    assert_eq!((reversed.level, reversed.action.as_str()), (Level::Warning, "orders.reverse"));
    assert_eq!(reversed.after.as_ref().unwrap()["reversal"], oid(4).reversal_transfer().to_string());
    // Admin changes: a store's fee, a trader's traffic, a requisite's limits.
    let updated = decided(&mut state, store_cmd("s1", "0.04"), &mut all);
    assert_eq!((updated.action.as_str(), updated.subject.as_str()), ("orders.store.update", "store:s1"));
    assert_eq!(updated.before.as_ref().unwrap()["fee"], "0.035");
    assert_eq!(updated.after.as_ref().unwrap()["fee"], "0.04");
    let traffic =
        decided(&mut state, Command::SetTraffic { trader: "t1".into(), enabled: false, team_lead: None }, &mut all);
    assert_eq!((traffic.action.as_str(), traffic.subject.as_str()), ("orders.trader.traffic", "trader:t1"));
    assert_eq!(traffic.after, Some(serde_json::json!({"traffic_enabled": false})));
    let limits =
        decided(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "1", "9", "90"))), &mut all);
    assert_eq!((limits.action.as_str(), limits.subject.as_str()), ("orders.requisite.upsert", "requisite:t1/r1"));
    assert_eq!(limits.after.as_ref().unwrap()["max_amount"], "9.00");
    let rotated = decided(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("new")))), &mut all);
    assert_eq!(
        (rotated.action.as_str(), rotated.before.clone(), rotated.after.clone()),
        ("orders.store.rotate_secret", None, None)
    );
    for e in &all {
        assert_eq!(
            e.level != Level::Info,
            ["orders.deny", "orders.reverse", "orders.fraud_deny"].contains(&e.action.as_str())
        );
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains("sealed") && !text.contains("4242"), "no secret, sealed or not: {text}");
    }
    let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "every entry has an id of its own");
}

#[test]
fn a_reason_or_an_id_that_looks_like_a_secret_is_refused_and_nothing_is_recorded() {
    let mut state = given("0.035", "0.02", "100");
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    create(&mut state, CreateOrder { terms: review, ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    let leaked = Command::Deny { id: oid(1), reason: Some("key ldg_abc".into()) };
    assert_eq!(run(&mut state, leaked).unwrap_err(), Rejection::InvalidReason);
    assert_eq!(status(&state, 1), Status::ManualReview);
    for id in ["ldg_1", "a-whsec_b"] {
        assert_eq!(run(&mut state, store_cmd(id, "0.01")).unwrap_err(), Rejection::InvalidParticipantId, "{id}");
    }
}

/// The id an entry of `action` on `entity` must have once the entity's version is `version`: the
/// id a retry of the same change computes, and no other change's.
fn entry_id(entity: EntityRef, version: u32, action: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&AUDIT_NAMESPACE, format!("{}\n{version}\n{action}", entity.id).as_bytes())
}

/// The one entry a command recorded, checked to be named after its entity's version now.
fn entry_of(state: &AnyState, events: &[AnyEvent], entity: EntityRef, action: &str) -> crate::audit::Entry {
    let found = entries(events);
    assert_eq!(found.len(), 1, "one entry: {:?}", types(events));
    let version = state.version(Subject::Entity(entity)).unwrap();
    assert_eq!(found[0].action, action);
    assert_eq!(found[0].id, entry_id(entity, version, action), "{action} at version {version}");
    found[0].clone()
}

#[test]
fn each_entry_is_named_after_its_entitys_version_after_the_change_and_tells_before_and_after() {
    let mut state = fresh();
    let s1 = store_entity("s1");
    let events = run(&mut state, store_cmd("s1", "0.035")).unwrap();
    let created = entry_of(&state, &events, s1, "orders.store.create");
    assert_eq!((created.before, created.after), (None, Some(json!({"fee": "0.035", "settlement_currency": "USDT"}))));
    let events = run(&mut state, Command::RotateStoreSecret(Box::new(("s1".into(), sealed("r"))))).unwrap();
    entry_of(&state, &events, s1, "orders.store.rotate_secret");
    assert_eq!(state.orders.store("s1").unwrap().version, 2, "rotating is a change of the store");
    for fee in ["0.04", "0.05"] {
        let events = run(&mut state, store_cmd("s1", fee)).unwrap();
        entry_of(&state, &events, s1, "orders.store.update");
    }

    let t1 = trader_entity("t1");
    let events = run(&mut state, Command::UpsertTrader(Box::new(trader_cmd("t1", "0.02", 3)))).unwrap();
    let trader =
        json!({"fee": "0.02", "priority": 3, "traffic_enabled": true, "team_lead": null, "currencies": ["USDT"]});
    let created = entry_of(&state, &events, t1, "orders.trader.upsert");
    assert_eq!((created.before, created.after), (None, Some(trader.clone())));
    let mut changed = trader_cmd("t1", "0.03", 2);
    changed.team_lead = Some("lead-1".into());
    let events = run(&mut state, Command::UpsertTrader(Box::new(changed))).unwrap();
    let updated = entry_of(&state, &events, t1, "orders.trader.upsert");
    let after =
        json!({"fee": "0.03", "priority": 2, "traffic_enabled": true, "team_lead": "lead-1", "currencies": ["USDT"]});
    assert_eq!((updated.before, updated.after), (Some(trader), Some(after)));
    for enabled in [false, true] {
        let traffic = Command::SetTraffic { trader: "t1".into(), enabled, team_lead: None };
        let events = run(&mut state, traffic).unwrap();
        let entry = entry_of(&state, &events, t1, "orders.trader.traffic");
        assert_eq!(entry.before, Some(json!({"traffic_enabled": !enabled})));
    }

    let r1 = requisite_entity("t1", "r1");
    let events =
        run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "100", "10000", "50000"))))
            .unwrap();
    assert_eq!(entry_of(&state, &events, r1, "orders.requisite.upsert").before, None);
    let events =
        run(&mut state, Command::UpsertRequisite(Box::new(requisite_cmd("t1", "r1", "100", "5000", "50000")))).unwrap();
    let limits = entry_of(&state, &events, r1, "orders.requisite.upsert");
    let before = json!({"currency": "RUB", "min_amount": "100.00", "max_amount": "10000.00",
        "daily_limit": "50000.00", "enabled": true});
    assert_eq!(limits.before, Some(before));

    // An order's manual decisions, and a second dispute upheld after the first.
    fund(&mut state, deposit("t1"), "100");
    let review = Terms { review_over: Some(dec("500")), ..terms() };
    create(&mut state, CreateOrder { terms: review, ..order_cmd(1, OrderKind::PayIn, "1000") }).unwrap();
    let order = EntityRef { kind: ORDER_KIND, id: oid(1).0 };
    let events = run(&mut state, Command::Approve { id: oid(1) }).unwrap();
    entry_of(&state, &events, order, "orders.approve");
    run(&mut state, Command::Complete { id: oid(1) }).unwrap();
    for _ in 0..2 {
        run(&mut state, Command::Dispute { id: oid(1), reason: "not paid".into() }).unwrap();
        let uphold = Command::Resolve { id: oid(1), outcome: Outcome::Uphold, reason: "paid".into() };
        let events = run(&mut state, uphold).unwrap();
        entry_of(&state, &events, order, "orders.uphold");
    }
}
