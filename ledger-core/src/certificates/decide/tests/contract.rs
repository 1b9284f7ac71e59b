//! What the store and the APIs rely on: the transfers a command names, the entity it answers
//! with, stored rows that load back, events that read back and say what the topics and the
//! audit trail show (action, operation, amount, balance around them), stable codes.

use super::*;

#[test]
fn commands_name_the_transfers_they_read_and_the_entity_they_answer_with() {
    let mut state = active();
    let id = CertificateId::of("GC-1");
    assert_eq!(activation("GC-1", "o1").transfer_ids(), [Purpose::Activation.transfer(id, "")]);
    let hold = Purpose::Hold.transfer(id, "a1");
    for command in [authorize("GC-1", "a1", "1"), capture("GC-1", "a1", None), refuse_cvc("GC-1", "a1")] {
        assert_eq!(command.transfer_ids(), [hold]);
    }
    assert_eq!(void("GC-1", "a1").transfer_ids(), [hold, Purpose::Reversal.transfer(id, "a1")]);
    assert_eq!(refund("GC-1", "r", None).transfer_ids(), [Purpose::Refund.transfer(id, "r")]);
    assert_eq!(cancel("GC-1", "c", "x").transfer_ids(), [Purpose::Cancellation.transfer(id, "c")]);
    assert!(Command::Issue(Box::new(row("GC-1", "1"))).transfer_ids().is_empty());
    assert!(Command::ExpireDue.transfer_ids().is_empty());
    // The ids named are the ones the postings use.
    run(&mut state, authorize("GC-1", "a1", "10"), T0).unwrap();
    assert!(state.ledger.transfer(hold).is_some_and(|t| t.pending));
    assert!(state.ledger.transfer(Purpose::Activation.transfer(id, "")).is_some());
    run(&mut state, capture("GC-1", "a1", None), T0).unwrap();
    run(&mut state, void("GC-1", "a1"), T0).unwrap();
    assert!(state.ledger.transfer(Purpose::Reversal.transfer(id, "a1")).is_some());
    run(&mut state, refund("GC-1", "r", None), T0).unwrap();
    assert!(state.ledger.transfer(Purpose::Refund.transfer(id, "r")).is_some());
    let mut cancelled = active();
    run(&mut cancelled, cancel("GC-1", "c", "x"), T0).unwrap();
    assert!(cancelled.ledger.transfer(Purpose::Cancellation.transfer(id, "c")).is_some());
    let mut expired = active();
    run(&mut expired, Command::ExpireDue, T0.plus_seconds(30 * DAY)).unwrap();
    assert!(expired.ledger.transfer(Purpose::Expiry.transfer(id, "")).is_some());
    // Distinct purposes and operations name distinct transfers.
    let all = [
        Purpose::Activation,
        Purpose::Hold,
        Purpose::Reversal,
        Purpose::Refund,
        Purpose::Cancellation,
        Purpose::Expiry,
    ]
    .map(|p| p.transfer(id, "x"));
    assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), 6);
    assert_ne!(Purpose::Hold.transfer(id, "x"), Purpose::Hold.transfer(id, "y"));
    // Answers show the certificate; a retried upload answers with its issuance.
    let subject = crate::Subject::Entity(crate::EntityRef { kind: KIND, id: id.0 });
    let issue = Command::Issue(Box::new(row("GC-1", "1"))).answer().unwrap();
    assert_eq!((issue.subject, issue.replay), (subject, crate::Replay::First));
    assert_eq!(capture("GC-1", "a1", None).answer().unwrap().replay, crate::Replay::Last);
    assert_eq!(Command::ExpireDue.answer(), None);
    assert_eq!(state.version(subject), Some(cert(&state, "GC-1").version));
}

#[test]
fn stored_rows_load_back_into_the_same_state() {
    let mut state = active();
    run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap();
    run(&mut state, Command::Issue(Box::new(row("GC-2", "5"))), T0).unwrap();
    let rows = state.certificates.rows();
    assert_eq!(rows.len(), 2, "one row per certificate, none per operation");
    let mut loaded = State::default();
    for row in rows.clone() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.certificates);
    let row = state.certificates.row(cert(&state, "GC-1").entity()).unwrap();
    assert_eq!((row.kind.as_str(), row.key.as_str(), row.version), (KIND, "GC-1", 3));
    // The row keeps the open authorization (what a refund, a cancellation or expiry must
    // release); once captured, the hold transfer alone tells what happened to it.
    let open: serde_json::Value = row.parse().unwrap();
    assert_eq!(open["open"], serde_json::json!({"a1": "30.00"}));
    run(&mut state, capture("GC-1", "a1", Some("20")), T0).unwrap();
    let captured = state.certificates.row(cert(&state, "GC-1").entity()).unwrap();
    assert_eq!(captured.parse::<serde_json::Value>().unwrap()["open"], serde_json::json!({}));
    let op = cert(&state, "GC-1").operation(&state.ledger, "a1").unwrap();
    assert_eq!((op.amount, op.captured, op.status), (dec("30.00"), Some(dec("20.00")), OperationStatus::Captured));
    assert_eq!(op.transfer, Some(crate::certificates::Purpose::Hold.transfer(CertificateId::of("GC-1"), "a1")));
    // Without its hold transfer (not loaded), an authorization is not found.
    let without = crate::ledger::state::LedgerState::new(Currencies::standard());
    assert_eq!(cert(&state, "GC-1").operation(&without, "a1"), None);
    assert_eq!(cert(&state, "GC-1").operation(&state.ledger, "a2"), None);
    // A certificate row that still holds its operations predates their rows: refused.
    let mut old = row.clone();
    let mut value: serde_json::Value = old.parse().unwrap();
    value["operations"] = serde_json::json!({"a1": {"kind": "authorization", "amount": "30"}});
    old.state = value.to_string().into();
    assert!(State::default().load(old).is_err());
    // A row whose key or version does not match what it holds is refused.
    let mut wrong = row.clone();
    wrong.key = "GC-9".into();
    assert!(State::default().load(wrong).is_err());
    let mut wrong = row.clone();
    wrong.version = 9;
    assert!(State::default().load(wrong).is_err());
    let mut wrong = row.clone();
    wrong.id = uuid::Uuid::nil();
    assert!(State::default().load(wrong).is_err());
    let mut wrong = row;
    wrong.state = "{}".into();
    assert!(State::default().load(wrong).is_err());
    // Expiry deadlines come back with the rows, final certificates have none.
    run(&mut state, cancel("GC-2", "c", "x"), T0).unwrap();
    let mut loaded = State::default();
    for row in state.certificates.rows() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded.due(T0.plus_seconds(30 * DAY)).collect::<Vec<_>>(), [CertificateId::of("GC-1")]);
}

#[test]
fn every_event_reads_back_from_its_stored_form() {
    let mut state = given(&[]);
    let mut events = Vec::new();
    for command in [
        Command::Issue(Box::new(row("GC-1", "100.00"))),
        activation("GC-1", "o1"),
        authorize("GC-1", "a1", "30"),
        refuse_cvc("GC-1", "x"),
        capture("GC-1", "a1", Some("10")),
        void("GC-1", "a1"),
        authorize("GC-1", "a2", "5"),
        void("GC-1", "a2"),
        refund("GC-1", "r1", Some("asked")),
    ] {
        events.extend(DomainCommand::execute(&command, &mut state, T0).unwrap());
    }
    let mut other = given(&[Command::Issue(Box::new(row("GC-2", "5"))), activation("GC-2", "o")]);
    events.extend(DomainCommand::execute(&cancel("GC-2", "c", "x"), &mut other, T0).unwrap());
    let mut expired = given(&[Command::Issue(Box::new(row("GC-3", "5")))]);
    events.extend(DomainCommand::execute(&Command::ExpireDue, &mut expired, T0.plus_seconds(30 * DAY)).unwrap());
    let mut types = std::collections::BTreeSet::new();
    for event in events.iter().filter(|e| e.certificates().is_some()) {
        types.insert(event.event_type());
        assert!(crate::domain::current_version(event.event_type()).is_some());
        let back = AnyEvent::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(&back, event);
        assert_eq!(event.stream(), format!("certificate-{}", event.subject().id()));
    }
    assert_eq!(types.len(), 10, "{types:?}");
    assert!(AnyEvent::from_parts("CertificateIssued", 2, "{}").is_err());
    assert!(AnyEvent::from_parts("CertificateIssued", 1, "{}").is_err());
}

#[test]
fn codes_are_stable() {
    assert_eq!(Rejection::CertificateLocked.code(), "certificate_locked");
    assert_eq!(CVC_LOCK_SECONDS, 900, "fifteen minutes");
    let states = [
        Status::Issued,
        Status::Active,
        Status::PartiallyRedeemed,
        Status::Redeemed,
        Status::Refunded,
        Status::Cancelled,
        Status::Expired,
    ];
    let names = ["issued", "active", "partially_redeemed", "redeemed", "refunded", "cancelled", "expired"];
    for (status, name) in states.into_iter().zip(names) {
        assert_eq!(status.as_str(), name);
        assert_eq!(serde_json::to_value(status).unwrap(), name);
        assert_eq!(status.is_final(), ["refunded", "cancelled", "expired"].contains(&name));
    }
    assert_eq!(Rejection::Ledger(ledger::Rejection::InsufficientFunds).code(), "insufficient_funds");
    assert_eq!(Rejection::from(ledger::Rejection::AmountScale), Rejection::Ledger(ledger::Rejection::AmountScale));
    assert_eq!(crate::Rejection::from(Rejection::PhoneRequired).code(), "phone_required");
    assert!(valid_code(&"a".repeat(64)) && !valid_code(&"a".repeat(65)) && !valid_code(""));
    assert!(valid_phone("1234567") && valid_phone("+123456789012345") && !valid_phone("+1234567890123456"));
    assert!(!valid_phone("+123456") && !valid_phone("12345678901234a"));
    assert!(valid_text(&"é".repeat(128)) && !valid_text(&"é".repeat(129)));
}

#[test]
fn codes_and_phones_agree_with_their_schemas() {
    use crate::certificates::decide::{CODE_PATTERN, PHONE_PATTERN};
    use crate::text::agree::{check, schema};
    let codes = ["", "GC-0001", "a_b", "a b", "a.b", &"a".repeat(64), &"a".repeat(65)];
    check(valid_code, schema(CODE_PATTERN, 64), &codes);
    let phones = [
        "",
        "+",
        "1234567",
        "+123456",
        "+79990001122",
        "+123456789012345",
        "+1234567890123456",
        "++1234567",
        "1234567+",
    ];
    check(valid_phone, schema(PHONE_PATTERN, 16), &phones);
}

#[test]
fn every_event_says_the_balance_it_leaves() {
    use crate::certificates::event::{BalanceChange, Event as CertEvent};
    let mut state = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    let commands = [
        (activation("GC-1", "o1"), "activated", None, Some("100.00")),
        (authorize("GC-1", "a1", "30.00"), "authorized", Some("a1"), Some("30.00")),
        (refuse_cvc("GC-1", "a2"), "cvc_refused", Some("a2"), None),
        (capture("GC-1", "a1", Some("20.00")), "captured", Some("a1"), Some("20.00")),
        (authorize("GC-1", "a3", "10.00"), "authorized", Some("a3"), Some("10.00")),
        (void("GC-1", "a3"), "authorization_voided", Some("a3"), Some("10.00")),
        (void("GC-1", "a1"), "capture_voided", Some("a1"), Some("20.00")),
        (authorize("GC-1", "a4", "5.00"), "authorized", Some("a4"), Some("5.00")),
        (cancel("GC-1", "c1", "fraud"), "cancelled", Some("c1"), Some("100.00")),
    ];
    for (command, action, operation, amount) in commands {
        let (before, _) = balances_of(&state, "GC-1");
        let events = DomainCommand::execute(&command, &mut state, T0).unwrap();
        let (after, available) = balances_of(&state, "GC-1");
        let last = events.iter().filter_map(AnyEvent::certificates).next_back().expect("a certificate event");
        let change = match last {
            CertEvent::Activated(e) => e.balance,
            CertEvent::CvcRefused(e) => e.balance.expect("a refusal says the balance"),
            CertEvent::Authorized(e)
            | CertEvent::Captured(e)
            | CertEvent::AuthorizationVoided(e)
            | CertEvent::CaptureVoided(e)
            | CertEvent::Refunded(e)
            | CertEvent::Cancelled(e) => e.balance,
            other => panic!("unexpected {other:?}"),
        };
        // A command releasing holds first (a cancellation) reports the last step's change.
        assert_eq!((change.after, change.available), (after, available), "{command:?}");
        if events.iter().filter(|e| e.certificates().is_some()).count() == 1 {
            assert_eq!(change.before, before, "{command:?}");
        }
        assert_eq!(change, BalanceChange { before: change.before, after, available });
        assert_eq!(last.balance(), Some(change));
        assert_eq!((last.action(), last.operation_id(), last.amount()), (action, operation, amount.map(dec)));
    }
    // An issue leaves zero and moves nothing; an expiry writes off what is left.
    let mut state = AnyState::new(Currencies::standard());
    let events = DomainCommand::execute(&Command::Issue(Box::new(row("GC-2", "50.00"))), &mut state, T0).unwrap();
    let issued = events.iter().filter_map(AnyEvent::certificates).next_back().unwrap();
    let zero = BalanceChange { before: Decimal::ZERO, after: Decimal::ZERO, available: Decimal::ZERO };
    assert_eq!((issued.action(), issued.operation_id(), issued.amount()), ("issued", None, None));
    assert_eq!(issued.balance(), Some(zero));
    DomainCommand::execute(&activation("GC-2", "o2"), &mut state, T0).unwrap();
    let events = DomainCommand::execute(&Command::ExpireDue, &mut state, T0.plus_seconds(30 * DAY)).unwrap();
    let expired = events.iter().filter_map(AnyEvent::certificates).next_back().unwrap();
    assert_eq!((expired.action(), expired.operation_id(), expired.amount()), ("expired", None, Some(dec("50.00"))));
    let gone = BalanceChange { before: dec("50.00"), after: Decimal::ZERO, available: Decimal::ZERO };
    assert_eq!(expired.balance(), Some(gone));
}

#[test]
fn an_event_about_an_operation_touches_its_certificate_only_and_counts_its_changes() {
    let mut state = active();
    let touched = |state: &AnyState, events: &[AnyEvent]| -> Vec<Vec<crate::Subject>> {
        events
            .iter()
            .filter(|e| e.certificates().is_some())
            .map(|e| state.touched(e).into_iter().map(|t| t.subject).collect())
            .collect()
    };
    let subject = crate::Subject::Entity(cert(&state, "GC-1").entity());
    let version = |state: &AnyState| state.version(subject);
    assert_eq!(version(&state), Some(2), "issued, activated");
    let events = DomainCommand::execute(&authorize("GC-1", "a1", "30"), &mut state, T0).unwrap();
    assert_eq!(touched(&state, &events), [vec![subject]]);
    run(&mut state, void("GC-1", "a1"), T0).unwrap();
    run(&mut state, authorize("GC-1", "a2", "10"), T0).unwrap();
    run(&mut state, capture("GC-1", "a2", None), T0).unwrap();
    let events = DomainCommand::execute(&void("GC-1", "a2"), &mut state, T0).unwrap();
    assert_eq!(touched(&state, &events), [vec![subject]]);
    assert_eq!(version(&state), Some(7), "two authorizations, a void, a capture and its void");
    let events = DomainCommand::execute(&refuse_cvc("GC-1", "a3"), &mut state, T0).unwrap();
    assert_eq!(touched(&state, &events), [vec![subject]]);
}
