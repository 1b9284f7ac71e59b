//! Given / when / then for payouts, against the whole state (the ledger's accounts included).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::domain::{DomainCommand, DomainEvent, DomainState};
use crate::payouts::event::Event as PayoutEvent;
use crate::payouts::state::RequestStatus;
use crate::payouts::{PAYOUT_KIND, REQUEST_KIND};
use crate::{AccountId, Currencies, CurrencyCode, Event as AnyEvent, PayoutRequestId, State as AnyState, Subject};

const T0: Timestamp = Timestamp(1_000_000);

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn id(n: u128) -> AccountId {
    AccountId(uuid::Uuid::from_u128(n))
}

fn req(n: u128) -> PayoutRequestId {
    PayoutRequestId(uuid::Uuid::from_u128(1000 + n))
}

fn ledger_run(state: &mut AnyState, command: ledger::Command) {
    crate::Command::from(command).execute(state, T0).unwrap();
}

/// Opens a liability account owned by `client` with `account_type`, funded with `balance`
/// from a bank account.
fn account(state: &mut AnyState, n: u128, client: &str, account_type: &str, balance: &str) -> AccountId {
    let eur = CurrencyCode::parse("EUR").unwrap();
    if state.ledger.account(id(1)).is_none() {
        let bank = OpenAccount {
            id: id(1),
            code: "bank".into(),
            currency: eur.clone(),
            kind: AccountKind::Asset,
            limit: BalanceLimit::None,
            metadata: serde_json::Value::Null,
        };
        ledger_run(state, ledger::Command::OpenAccount(bank));
    }
    let open = OpenAccount {
        id: id(n),
        code: format!("{client}:{account_type}:{n}"),
        currency: eur,
        kind: AccountKind::Liability,
        limit: BalanceLimit::DebitsMustNotExceedCredits,
        metadata: serde_json::json!({ "client_id": client, "account_type": account_type }),
    };
    ledger_run(state, ledger::Command::OpenAccount(open));
    fund(state, n, balance);
    id(n)
}

fn fund(state: &mut AnyState, n: u128, amount: &str) {
    if dec(amount) > Decimal::ZERO {
        let t = crate::TransferId(uuid::Uuid::new_v4());
        let credit = CreateTransfer::simple(t, AccountRef::Id(id(1)), AccountRef::Id(id(n)), dec(amount));
        ledger_run(state, ledger::Command::CreateTransfer(credit));
    }
}

fn run(state: &mut AnyState, command: Command) -> Result<Vec<AnyEvent>, Rejection> {
    DomainCommand::execute(&command, state, T0)
}

fn types(events: &[AnyEvent]) -> Vec<&'static str> {
    events.iter().map(AnyEvent::event_type).collect()
}

fn request(state: &mut AnyState, n: u128, client: &str) {
    run(state, Command::Request { id: req(n), client_id: client.into() }).unwrap();
}

fn balance(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).unwrap().balance()
}

fn payout_status(state: &AnyState, payout: PayoutId) -> PayoutStatus {
    state.payouts.payout(payout).unwrap().status
}

fn status(payout: PayoutId, status: ErpStatus) -> Command {
    Command::Status { payout, status, reason: None }
}

fn fresh() -> AnyState {
    AnyState::new(Currencies::standard())
}

#[test]
fn a_request_is_recorded_once_and_nothing_else_happens() {
    let mut state = fresh();
    account(&mut state, 10, "c1", "payout", "100");
    let events = run(&mut state, Command::Request { id: req(1), client_id: "c1".into() }).unwrap();
    assert_eq!(types(&events), ["PayoutRequested"]);
    assert_eq!(events[0].subject(), Subject::Entity(crate::EntityRef { kind: REQUEST_KIND, id: req(1).0 }));
    assert_eq!(events[0].stream(), format!("payout_request-{}", req(1).0));
    let r = state.payouts.request(req(1)).unwrap();
    assert_eq!((r.status, r.version, r.payouts.len()), (RequestStatus::New, 1, 0));
    assert_eq!(balance(&state, id(10)), dec("100"), "no money moves on intake");
    // The same request again replays; another client under the same id is refused.
    assert_eq!(run(&mut state, Command::Request { id: req(1), client_id: "c1".into() }).unwrap(), []);
    let other = run(&mut state, Command::Request { id: req(1), client_id: "c2".into() });
    assert_eq!(other.unwrap_err(), Rejection::ExistsWithDifferentFields);
    for bad in ["", "a\nb", &"x".repeat(129)] {
        let refused = run(&mut state, Command::Request { id: req(2), client_id: bad.into() });
        assert_eq!(refused.unwrap_err().code(), "invalid_client_id");
    }
    assert!(state.payouts.request(req(2)).is_none());
}

#[test]
fn planning_pays_out_each_positive_payout_account_exactly_once() {
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "100.50");
    account(&mut state, 11, "c1", "payout", "0");
    account(&mut state, 12, "c1", "main", "70");
    account(&mut state, 13, "c2", "payout", "5");
    request(&mut state, 1, "c1");
    request(&mut state, 2, "c1");
    request(&mut state, 3, "nobody");
    let events = run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(
        types(&events),
        ["PayoutCreated", "PayoutRequestDone", "PayoutRequestDone", "PayoutRequestDone"],
        "the second request of the same client finds the money already planned"
    );
    let payout = PayoutId::of(req(1), a);
    let p = state.payouts.payout(payout).unwrap();
    assert_eq!((p.amount, p.account, p.client_id.as_str(), p.status), (dec("100.50"), a, "c1", PayoutStatus::New));
    assert_eq!(state.payouts.request(req(1)).unwrap().payouts, [payout]);
    for n in [2, 3] {
        let r = state.payouts.request(req(n)).unwrap();
        assert_eq!((r.status, r.payouts.len(), r.version), (RequestStatus::Done, 0, 2));
    }
    assert_eq!(state.payouts.planned(a), dec("100.50"));
    assert_eq!(balance(&state, a), dec("100.50"), "planning moves no money");
    // Nothing new: an empty plan.
    assert_eq!(run(&mut state, Command::PlanNew { limit: 10 }).unwrap(), []);
    // A later request while the payout is still on its way: nothing more to pay out.
    request(&mut state, 4, "c1");
    let events = run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(types(&events), ["PayoutRequestDone"]);
    // Money credited since is paid out, and only that.
    fund(&mut state, 10, "9.50");
    request(&mut state, 5, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(state.payouts.payout(PayoutId::of(req(5), a)).unwrap().amount, dec("9.50"));
    assert_eq!(state.payouts.planned(a), dec("110.00"));
}

#[test]
fn a_gate_takes_the_oldest_up_to_its_limit() {
    let mut state = fresh();
    account(&mut state, 10, "c1", "payout", "10");
    account(&mut state, 20, "c2", "payout", "20");
    request(&mut state, 1, "c1");
    request(&mut state, 2, "c2");
    for limit in [0, MAX_PER_COMMAND + 1] {
        assert_eq!(run(&mut state, Command::PlanNew { limit }).unwrap_err().code(), "invalid_limit");
        assert_eq!(run(&mut state, Command::SendNew { limit }).unwrap_err(), Rejection::InvalidLimit);
    }
    run(&mut state, Command::PlanNew { limit: MAX_PER_COMMAND }).unwrap();
    let mut state2 = fresh();
    account(&mut state2, 10, "c1", "payout", "10");
    account(&mut state2, 20, "c2", "payout", "20");
    request(&mut state2, 1, "c1");
    request(&mut state2, 2, "c2");
    let first = run(&mut state2, Command::PlanNew { limit: 1 }).unwrap();
    assert_eq!(first.last().unwrap().subject().id(), req(1).0);
    assert_eq!(state2.payouts.new_requests().map(|r| r.id).collect::<Vec<_>>(), [req(2)]);
    run(&mut state2, Command::PlanNew { limit: 1 }).unwrap();
    let sent = run(&mut state2, Command::SendNew { limit: 1 }).unwrap();
    assert_eq!(sent.last().unwrap().subject().id(), PayoutId::of(req(1), id(10)).0);
    assert_eq!(state2.payouts.new_payouts().map(|p| p.id).collect::<Vec<_>>(), [PayoutId::of(req(2), id(20))]);
    assert_eq!(state.payouts.new_requests().count(), 0, "the limit of MAX_PER_COMMAND is accepted");
}

#[test]
fn a_positive_account_that_is_not_open_fails_the_whole_request() {
    let mut state = fresh();
    account(&mut state, 10, "c1", "payout", "10");
    account(&mut state, 11, "c1", "payout", "5");
    ledger_run(&mut state, ledger::Command::FreezeAccount { id: id(11), reason: None });
    request(&mut state, 1, "c1");
    let events = run(&mut state, Command::PlanNew { limit: 5 }).unwrap();
    assert_eq!(types(&events), ["PayoutRequestFailed"]);
    let r = state.payouts.request(req(1)).unwrap();
    assert_eq!(r.status, RequestStatus::Error);
    assert_eq!(r.error.as_deref(), Some("payout account c1:payout:11 is frozen"));
    assert_eq!(state.payouts.new_payouts().count(), 0);
    assert_eq!(state.payouts.planned(id(10)), Decimal::ZERO);
    // An empty account that is closed does not stand in the way.
    let mut state = fresh();
    account(&mut state, 10, "c1", "payout", "10");
    account(&mut state, 11, "c1", "payout", "0");
    ledger_run(&mut state, ledger::Command::CloseAccount { id: id(11), reason: None });
    request(&mut state, 1, "c1");
    assert_eq!(types(&run(&mut state, Command::PlanNew { limit: 5 }).unwrap()), ["PayoutCreated", "PayoutRequestDone"]);
    assert_eq!(status_name(AccountStatus::Closed), "closed");
    assert_eq!(status_name(AccountStatus::Open), "open");
}

#[test]
fn sending_moves_the_amount_to_payout_sent_and_records_the_cash_payment_fact() {
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "100");
    let b = account(&mut state, 11, "c1", "payout", "30");
    request(&mut state, 1, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    let events = run(&mut state, Command::SendNew { limit: 10 }).unwrap();
    assert_eq!(
        types(&events),
        ["AccountOpened", "TransferPosted", "PayoutSent", "TransferPosted", "PayoutSent"],
        "payout_sent is opened by the first payout that needs it"
    );
    let (sent, code) = sent_account("c1", &CurrencyCode::parse("EUR").unwrap());
    let opened = state.ledger.account(sent).unwrap();
    assert_eq!((opened.code.as_str(), opened.kind), (code.as_str(), AccountKind::Liability));
    assert_eq!(state.ledger.accounts_of("c1", SENT_ACCOUNT).map(|a| a.id).collect::<Vec<_>>(), [sent]);
    assert_eq!((balance(&state, a), balance(&state, b), balance(&state, sent)), (dec("0"), dec("0"), dec("130")));
    let payout = PayoutId::of(req(1), a);
    let p = state.payouts.payout(payout).unwrap();
    assert_eq!(
        (p.status, p.cash_payment_fact, p.sent_account, p.sent_at, p.version),
        (PayoutStatus::Sent, Some(payout.cash_payment_fact()), Some(sent), Some(T0), 2)
    );
    let PayoutEvent::Sent(e) = events[2].payouts().unwrap() else { panic!() };
    assert_eq!((e.amount, e.transfer, e.account), (dec("100"), payout.send_transfer(), a));
    assert_eq!((e.balance.before.to_string(), e.balance.after.to_string()), ("100.00".into(), "0.00".into()));
    let t = state.ledger.transfer(payout.send_transfer()).unwrap();
    assert_eq!(t.postings.len(), 2);
    assert_eq!(state.payouts.planned(a), Decimal::ZERO);
    assert_eq!(run(&mut state, Command::SendNew { limit: 10 }).unwrap(), []);
}

#[test]
fn a_payout_whose_money_left_meanwhile_fails_and_moves_nothing() {
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "100");
    request(&mut state, 1, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    // 0.01 leaves the account after planning.
    let t = crate::TransferId(uuid::Uuid::from_u128(77));
    ledger_run(
        &mut state,
        ledger::Command::CreateTransfer(CreateTransfer::simple(
            t,
            AccountRef::Id(a),
            AccountRef::Id(id(1)),
            dec("0.01"),
        )),
    );
    let events = run(&mut state, Command::SendNew { limit: 10 }).unwrap();
    assert_eq!(types(&events), ["PayoutFailed"]);
    let p = state.payouts.payout(PayoutId::of(req(1), a)).unwrap();
    assert_eq!((p.status, p.reason.as_deref()), (PayoutStatus::Failed, Some("insufficient_funds: 99.99 available")));
    assert_eq!(balance(&state, a), dec("99.99"));
    assert!(state.ledger.account(sent_account("c1", &p.currency).0).is_none());
    // Failed frees what it had planned: a new request pays out what is there.
    request(&mut state, 2, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(state.payouts.payout(PayoutId::of(req(2), a)).unwrap().amount, dec("99.99"));
}

#[test]
fn the_ledger_refusing_the_move_fails_the_payout_with_its_code() {
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "50");
    request(&mut state, 1, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    ledger_run(&mut state, ledger::Command::FreezeAccount { id: a, reason: None });
    let events = run(&mut state, Command::SendNew { limit: 10 }).unwrap();
    // The payout_sent account opened first stays: it is the client's whatever happens next.
    assert_eq!(types(&events), ["AccountOpened", "PayoutFailed"]);
    assert_eq!(state.payouts.payout(PayoutId::of(req(1), a)).unwrap().reason.as_deref(), Some("account_frozen"));
    // A payout_sent code taken by someone else's account: that payout fails on the opening.
    let mut state = fresh();
    let a = account(&mut state, 10, "c2", "payout", "50");
    let (_, code) = sent_account("c2", &CurrencyCode::parse("EUR").unwrap());
    let squatter = OpenAccount {
        id: id(99),
        code,
        currency: CurrencyCode::parse("EUR").unwrap(),
        kind: AccountKind::Asset,
        limit: BalanceLimit::None,
        metadata: serde_json::Value::Null,
    };
    ledger_run(&mut state, ledger::Command::OpenAccount(squatter));
    request(&mut state, 1, "c2");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(types(&run(&mut state, Command::SendNew { limit: 10 }).unwrap()), ["PayoutFailed"]);
    let p = state.payouts.payout(PayoutId::of(req(1), a)).unwrap();
    assert_eq!(p.reason.as_deref(), Some("account_code_exists"));
    assert_eq!(balance(&state, a), dec("50"));
}

fn sent_payout(state: &mut AnyState) -> (AccountId, PayoutId) {
    let a = account(state, 10, "c1", "payout", "40");
    request(state, 1, "c1");
    run(state, Command::PlanNew { limit: 10 }).unwrap();
    run(state, Command::SendNew { limit: 10 }).unwrap();
    (a, PayoutId::of(req(1), a))
}

#[test]
fn paid_is_final_and_said_twice_changes_nothing() {
    let mut state = fresh();
    let (a, payout) = sent_payout(&mut state);
    let events = run(&mut state, status(payout, ErpStatus::Paid)).unwrap();
    assert_eq!(types(&events), ["PayoutPaid"]);
    let PayoutEvent::Paid(e) = events[0].payouts().unwrap() else { panic!() };
    assert_eq!((e.balance, e.transfer), (None, None), "nothing moves when paid");
    let mut with_reason = fresh();
    let (_, other) = sent_payout(&mut with_reason);
    run(&mut with_reason, Command::Status { payout: other, status: ErpStatus::Paid, reason: Some("ard".into()) })
        .unwrap();
    assert_eq!(with_reason.payouts.payout(other).unwrap().reason.as_deref(), Some("ard"));
    assert_eq!(payout_status(&state, payout), PayoutStatus::Paid);
    assert_eq!(run(&mut state, status(payout, ErpStatus::Paid)).unwrap(), []);
    assert_eq!(run(&mut state, status(payout, ErpStatus::Rejected)).unwrap_err(), Rejection::InvalidTransition);
    let sent = sent_account("c1", &CurrencyCode::parse("EUR").unwrap()).0;
    assert_eq!((balance(&state, a), balance(&state, sent)), (dec("0"), dec("40")));
}

#[test]
fn rejected_returns_the_amount_to_the_payout_account() {
    let mut state = fresh();
    let (a, payout) = sent_payout(&mut state);
    let reason = Some("account closed at the bank".to_owned());
    let events =
        run(&mut state, Command::Status { payout, status: ErpStatus::Rejected, reason: reason.clone() }).unwrap();
    assert_eq!(types(&events), ["TransferPosted", "PayoutRejected"]);
    let PayoutEvent::Rejected(e) = events[1].payouts().unwrap() else { panic!() };
    let around = e.balance.unwrap();
    assert_eq!((around.before, around.after, e.transfer), (dec("0"), dec("40"), Some(payout.return_transfer())));
    let sent = sent_account("c1", &CurrencyCode::parse("EUR").unwrap()).0;
    assert_eq!((balance(&state, a), balance(&state, sent)), (dec("40"), dec("0")));
    let p = state.payouts.payout(payout).unwrap();
    assert_eq!((p.status, &p.reason, p.returned_by), (PayoutStatus::Rejected, &reason, Some(payout.return_transfer())));
    assert_eq!(run(&mut state, status(payout, ErpStatus::Rejected)).unwrap(), []);
    assert_eq!(run(&mut state, status(payout, ErpStatus::Paid)).unwrap_err().code(), "invalid_transition");
    // The money back on the account is paid out again by the next request.
    request(&mut state, 2, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    assert_eq!(state.payouts.payout(PayoutId::of(req(2), a)).unwrap().amount, dec("40"));
}

#[test]
fn statuses_apply_only_to_sent_payouts_that_exist() {
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "40");
    request(&mut state, 1, "c1");
    run(&mut state, Command::PlanNew { limit: 10 }).unwrap();
    let payout = PayoutId::of(req(1), a);
    for s in [ErpStatus::Paid, ErpStatus::Rejected] {
        assert_eq!(
            run(&mut state, status(payout, s)).unwrap_err(),
            Rejection::InvalidTransition,
            "{s:?} of a new payout"
        );
    }
    let unknown = PayoutId(uuid::Uuid::from_u128(5));
    assert_eq!(run(&mut state, status(unknown, ErpStatus::Paid)).unwrap_err().code(), "payout_not_found");
    for bad in ["", "  ", "a\u{7}"] {
        let c = Command::Status { payout, status: ErpStatus::Paid, reason: Some(bad.into()) };
        assert_eq!(run(&mut state, c).unwrap_err(), Rejection::InvalidReason);
    }
    // A return the ledger refuses (the payout account closed since) is the ledger's code.
    run(&mut state, Command::SendNew { limit: 10 }).unwrap();
    ledger_run(&mut state, ledger::Command::FreezeAccount { id: a, reason: None });
    let refused = run(&mut state, status(payout, ErpStatus::Rejected)).unwrap_err();
    assert_eq!((refused, refused.code()), (Rejection::Ledger(ledger::Rejection::AccountFrozen), "account_frozen"));
    assert_eq!(payout_status(&state, payout), PayoutStatus::Sent);
    let failed = Command::Status { payout, status: ErpStatus::Paid, reason: None };
    assert_eq!(run(&mut state, failed).map(|e| types(&e)).unwrap(), ["PayoutPaid"]);
}

#[test]
fn commands_name_what_they_answer_with_and_the_transfers_to_load() {
    let payout = PayoutId(uuid::Uuid::from_u128(9));
    let answer = Command::Request { id: req(1), client_id: "c".into() }.answer().unwrap();
    assert_eq!(answer.subject, Subject::Entity(crate::EntityRef { kind: REQUEST_KIND, id: req(1).0 }));
    assert_eq!(answer.replay, crate::Replay::First);
    let answer = status(payout, ErpStatus::Paid).answer().unwrap();
    assert_eq!((answer.subject.id(), answer.replay), (payout.0, crate::Replay::Last));
    assert!(matches!(answer.subject, Subject::Entity(e) if e.kind == PAYOUT_KIND));
    assert_eq!(Command::PlanNew { limit: 1 }.answer(), None);
    assert_eq!(Command::SendNew { limit: 1 }.answer(), None);
    assert_eq!(status(payout, ErpStatus::Rejected).transfer_ids(), [payout.send_transfer(), payout.return_transfer()]);
    assert!(Command::SendNew { limit: 1 }.transfer_ids().is_empty());
    assert!(Command::PlanNew { limit: 1 }.transfer_ids().is_empty());
    assert!(Command::Request { id: req(1), client_id: "c".into() }.transfer_ids().is_empty());
    // Derived ids: stable, and distinct per request, account and purpose.
    assert_eq!(PayoutId::of(req(1), id(2)), PayoutId::of(req(1), id(2)));
    assert_ne!(PayoutId::of(req(1), id(2)), PayoutId::of(req(2), id(2)));
    assert_ne!(PayoutId::of(req(1), id(2)), PayoutId::of(req(1), id(3)));
    assert_ne!(payout.send_transfer(), payout.return_transfer());
    assert_ne!(payout.cash_payment_fact(), payout.send_transfer().0);
    assert_ne!(PayoutId::of(req(1), id(2)).cash_payment_fact(), PayoutId::of(req(1), id(3)).cash_payment_fact());
    // Rejections read the same through the seam as through the domain.
    for r in
        [Rejection::InvalidClientId, Rejection::PayoutNotFound, Rejection::Ledger(ledger::Rejection::AccountFrozen)]
    {
        assert_eq!(crate::domain::DomainRejection::code(r), r.code());
        assert_eq!(crate::Rejection::from(r).code(), r.code());
    }
    assert_eq!(crate::domain::DomainRejection::code(Rejection::InvalidLimit), "invalid_limit");
    let eur = CurrencyCode::parse("EUR").unwrap();
    assert_eq!(sent_account("c1", &eur).1, "payout_sent:c1:EUR");
    assert_ne!(sent_account("c1", &eur).0, sent_account("c2", &eur).0);
}

#[test]
fn stored_rows_load_back_into_the_same_state_and_events_read_back() {
    let mut state = fresh();
    let (_, payout) = sent_payout(&mut state);
    request(&mut state, 2, "c1");
    let rows = state.payouts.rows();
    assert_eq!(rows.len(), 3);
    let mut loaded = crate::payouts::State::default();
    for row in rows.clone() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.payouts);
    let entity = crate::EntityRef { kind: PAYOUT_KIND, id: payout.0 };
    let row = state.payouts.row(entity).unwrap();
    assert_eq!((row.key.clone(), row.version), (payout.0.to_string(), 2));
    assert_eq!(state.version(Subject::Entity(entity)), Some(2));
    let first = crate::EntityRef { kind: REQUEST_KIND, id: req(1).0 };
    assert_eq!(state.version(Subject::Entity(first)), Some(2), "requested, then done");
    let names: Vec<&str> =
        [PayoutStatus::New, PayoutStatus::Sent, PayoutStatus::Failed, PayoutStatus::Paid, PayoutStatus::Rejected]
            .map(PayoutStatus::as_str)
            .to_vec();
    assert_eq!(names, ["new", "sent", "failed", "paid", "rejected"]);
    let request_row = state.payouts.row(crate::EntityRef { kind: REQUEST_KIND, id: req(2).0 }).unwrap();
    assert_eq!((request_row.kind.as_str(), request_row.version), (REQUEST_KIND, 1));
    assert_eq!(loaded.new_requests().map(|r| r.id).collect::<Vec<_>>(), [req(2)]);
    for mut wrong in rows {
        wrong.version += 1;
        assert!(crate::payouts::State::default().load(wrong).is_err());
    }
    let mut wrong = row.clone();
    wrong.key = "x".into();
    assert!(crate::payouts::State::default().load(wrong).is_err());
    let mut wrong = row;
    wrong.state = "{}".into();
    assert!(crate::payouts::State::default().load(wrong).is_err());

    // Every event type, through its stored form and back.
    let mut state = fresh();
    let a = account(&mut state, 10, "c1", "payout", "40");
    account(&mut state, 20, "c2", "payout", "5");
    ledger_run(&mut state, ledger::Command::FreezeAccount { id: id(20), reason: None });
    let mut events = Vec::new();
    for c in [
        Command::Request { id: req(1), client_id: "c1".into() },
        Command::Request { id: req(2), client_id: "c2".into() },
        Command::PlanNew { limit: 5 },
        Command::SendNew { limit: 5 },
        status(PayoutId::of(req(1), a), ErpStatus::Rejected),
    ] {
        events.extend(run(&mut state, c).unwrap());
    }
    request(&mut state, 3, "c1");
    events.extend(run(&mut state, Command::PlanNew { limit: 5 }).unwrap());
    let t = crate::TransferId(uuid::Uuid::from_u128(78));
    ledger_run(
        &mut state,
        ledger::Command::CreateTransfer(CreateTransfer::simple(t, AccountRef::Id(a), AccountRef::Id(id(1)), dec("1"))),
    );
    events.extend(run(&mut state, Command::SendNew { limit: 5 }).unwrap());
    request(&mut state, 4, "c1");
    fund(&mut state, 10, "3");
    events.extend(run(&mut state, Command::PlanNew { limit: 5 }).unwrap());
    events.extend(run(&mut state, Command::SendNew { limit: 5 }).unwrap());
    events.extend(run(&mut state, status(PayoutId::of(req(4), a), ErpStatus::Paid)).unwrap());
    let mut seen = std::collections::BTreeSet::new();
    for event in events.iter().filter(|e| e.payouts().is_some()) {
        seen.insert(event.event_type());
        let back = AnyEvent::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(&back, event);
        assert_eq!(event.at(), T0);
        let p = event.payouts().unwrap();
        let unknown = PayoutEvent::decode(p.event_type(), 2, &p.payload()).unwrap_err();
        assert!(unknown.to_string().contains("version 2"), "{unknown}");
    }
    assert_eq!(seen.len(), crate::payouts::event::EVENT_TYPES.len(), "{seen:?}");
    assert!(PayoutEvent::decode("PayoutMelted", 1, "{}").is_err());
    assert!(PayoutEvent::decode("PayoutPaid", 1, "{}").is_err());
    assert_eq!(PayoutEvent::schemas().len(), crate::payouts::event::EVENT_TYPES.len());
}
