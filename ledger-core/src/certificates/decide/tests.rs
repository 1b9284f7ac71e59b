//! given(commands).when(command).then(outcome) tests of the certificates domain, through the
//! top-level `Command::execute` the writer calls, so postings and the certificate's own events
//! are checked together.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::certificates::KIND;
use crate::certificates::command::{Paid, SealedCvc};
use crate::domain::{DomainCommand, DomainState};
use crate::money::Currencies;
use crate::{Command as Any, Event as AnyEvent, State as AnyState};

const T0: Timestamp = Timestamp(1_700_000_000_000_000);
const DAY: u32 = 86_400;
const PHONE: &str = "+79990001122";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

fn row(code: &str, nominal: &str) -> Issue {
    Issue {
        code: code.to_owned(),
        nominal: dec(nominal),
        currency: eur(),
        expires_at: Some(T0.plus_seconds(30 * DAY)),
        campaign: Some("spring".to_owned()),
        phone: Some(PHONE.to_owned()),
    }
}

fn sealed() -> SealedCvc {
    SealedCvc { key_id: "k1".into(), nonce: "00".into(), ciphertext: "ff".into() }
}

fn activation(code: &str, order: &str) -> Command {
    Command::Activate(Box::new(Activate {
        code: code.to_owned(),
        order_id: order.to_owned(),
        payment_id: format!("pay-{order}"),
        phone: None,
        client_id: None,
        paid: None,
        cvc: sealed(),
    }))
}

fn authorize(code: &str, op: &str, amount: &str) -> Command {
    Command::Authorize { code: code.to_owned(), operation_id: op.to_owned(), amount: dec(amount) }
}

fn capture(code: &str, op: &str, amount: Option<&str>) -> Command {
    Command::Capture { code: code.to_owned(), operation_id: op.to_owned(), amount: amount.map(dec) }
}

fn void(code: &str, op: &str) -> Command {
    Command::Void { code: code.to_owned(), operation_id: op.to_owned() }
}

fn refuse_cvc(code: &str, op: &str) -> Command {
    Command::RefuseCvc { code: code.to_owned(), operation_id: op.to_owned() }
}

fn refund(code: &str, op: &str, reason: Option<&str>) -> Command {
    Command::Refund { code: code.to_owned(), operation_id: op.to_owned(), reason: reason.map(str::to_owned) }
}

fn cancel(code: &str, op: &str, reason: &str) -> Command {
    Command::Cancel { code: code.to_owned(), operation_id: op.to_owned(), reason: reason.to_owned() }
}

/// Runs a command; accepted: the types of the events it produced.
fn run(state: &mut AnyState, command: Command, now: Timestamp) -> Result<Vec<&'static str>, Rejection> {
    let events = DomainCommand::execute(&command, state, now)?;
    Ok(events.iter().map(AnyEvent::event_type).collect())
}

/// Runs a command that must be refused, and checks it changed nothing.
fn refused(state: &mut AnyState, command: Command, now: Timestamp) -> Rejection {
    let before = state.clone();
    let rejection = run(state, command, now).expect_err("refused");
    assert!(*state == before, "a refused command changed the state");
    rejection
}

fn given(commands: &[Command]) -> AnyState {
    let mut state = AnyState::new(Currencies::standard());
    for command in commands {
        run(&mut state, command.clone(), T0).unwrap();
    }
    state
}

/// A certificate of 100.00 EUR, issued and activated.
fn active() -> AnyState {
    given(&[Command::Issue(Box::new(row("GC-1", "100.00"))), activation("GC-1", "o1")])
}

fn cert<'a>(state: &'a AnyState, code: &str) -> &'a Certificate {
    state.certificates.by_code(code).expect("issued")
}

/// An operation on a certificate as the state shows it (an authorization: its hold transfer).
fn op(state: &AnyState, code: &str, operation_id: &str) -> crate::certificates::state::Operation {
    cert(state, code).operation(&state.ledger, operation_id).expect("the operation exists")
}

/// (balance, available) of the certificate's account.
fn balances_of(state: &AnyState, code: &str) -> (Decimal, Decimal) {
    let a = state.ledger.account(cert(state, code).account).unwrap();
    (a.balance(), a.available())
}

fn balance_of(state: &AnyState, account: AccountId) -> Decimal {
    state.ledger.account(account).map_or(Decimal::ZERO, |a| a.balance())
}

fn ledger_code(r: ledger::Rejection) -> Rejection {
    Rejection::Ledger(r)
}

#[test]
fn issuing_opens_the_chart_of_accounts_once_and_moves_no_money() {
    let mut state = given(&[]);
    let events = run(&mut state, Command::Issue(Box::new(row("GC-1", "100.00"))), T0).unwrap();
    assert_eq!(events, ["AccountOpened", "AccountOpened", "AccountOpened", "CertificateIssued"]);
    let c = cert(&state, "GC-1");
    assert_eq!((c.status, c.nominal, c.version), (Status::Issued, dec("100.00"), 1));
    let account = state.ledger.account(c.account).unwrap();
    assert_eq!(account.code, "certificate:GC-1");
    assert_eq!(account.limit, BalanceLimit::DebitsMustNotExceedCredits);
    assert_eq!(account.kind, AccountKind::Liability);
    let clearing = state.ledger.account(sales_clearing(&eur()).0).unwrap();
    assert_eq!((clearing.code.as_str(), clearing.kind), ("certificates:sales_clearing:EUR", AccountKind::Asset));
    let writeoff = state.ledger.account(breakage(&eur()).0).unwrap();
    assert_eq!((writeoff.code.as_str(), writeoff.kind), ("certificates:breakage:EUR", AccountKind::Income));
    assert_eq!(balances_of(&state, "GC-1"), (Decimal::ZERO, Decimal::ZERO));
    // The same row again replays; the next certificate opens only its own account.
    assert_eq!(run(&mut state, Command::Issue(Box::new(row("GC-1", "100.00"))), T0).unwrap(), Vec::<&str>::new());
    let events = run(&mut state, Command::Issue(Box::new(row("GC-2", "50"))), T0).unwrap();
    assert_eq!(events, ["AccountOpened", "CertificateIssued"]);
    // A trailing zero is the same nominal.
    assert_eq!(run(&mut state, Command::Issue(Box::new(row("GC-2", "50.00"))), T0).unwrap(), Vec::<&str>::new());
}

#[test]
fn an_upload_row_is_checked_field_by_field() {
    let mut state = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    let with = |f: &dyn Fn(&mut Issue)| {
        let mut r = row("GC-9", "10.00");
        f(&mut r);
        Command::Issue(Box::new(r))
    };
    let cases: Vec<(Command, Rejection)> = vec![
        (with(&|r| r.code = String::new()), Rejection::InvalidCertificateCode),
        (with(&|r| r.code = "a".repeat(65)), Rejection::InvalidCertificateCode),
        (with(&|r| r.code = "GC 9".into()), Rejection::InvalidCertificateCode),
        (with(&|r| r.code = "GC:9".into()), Rejection::InvalidCertificateCode),
        (with(&|r| r.nominal = Decimal::ZERO), ledger_code(ledger::Rejection::AmountMustBePositive)),
        (with(&|r| r.nominal = dec("-1")), ledger_code(ledger::Rejection::AmountMustBePositive)),
        (with(&|r| r.currency = CurrencyCode::parse("XXX").unwrap()), ledger_code(ledger::Rejection::UnknownCurrency)),
        (with(&|r| r.nominal = dec("10.001")), ledger_code(ledger::Rejection::AmountScale)),
        (with(&|r| r.phone = Some("123456".into())), Rejection::InvalidPhone),
        (with(&|r| r.phone = Some("+1234567890123456".into())), Rejection::InvalidPhone),
        (with(&|r| r.phone = Some("12345a7".into())), Rejection::InvalidPhone),
        (with(&|r| r.phone = Some("++1234567".into())), Rejection::InvalidPhone),
        (with(&|r| r.campaign = Some(String::new())), Rejection::InvalidCampaign),
        (with(&|r| r.campaign = Some("a".repeat(129))), Rejection::InvalidCampaign),
        (with(&|r| r.campaign = Some("spring\0".into())), Rejection::InvalidCampaign),
        (with(&|r| r.expires_at = Some(T0)), Rejection::InvalidExpiry),
        (
            Command::Issue(Box::new(Issue { nominal: dec("99"), ..row("GC-1", "100") })),
            Rejection::ExistsWithDifferentFields,
        ),
        (Command::Issue(Box::new(Issue { phone: None, ..row("GC-1", "100") })), Rejection::ExistsWithDifferentFields),
        (
            Command::Issue(Box::new(Issue { campaign: None, ..row("GC-1", "100") })),
            Rejection::ExistsWithDifferentFields,
        ),
        (
            Command::Issue(Box::new(Issue { expires_at: None, ..row("GC-1", "100") })),
            Rejection::ExistsWithDifferentFields,
        ),
        (
            Command::Issue(Box::new(Issue { currency: CurrencyCode::parse("USD").unwrap(), ..row("GC-1", "100") })),
            Rejection::ExistsWithDifferentFields,
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), T0), expected, "{command:?}");
    }
    // The limits themselves are accepted.
    let edge = Issue {
        code: format!("{}_-9", "a".repeat(61)),
        phone: Some("1234567".into()),
        campaign: Some("c".repeat(128)),
        expires_at: Some(T0.plus_seconds(1)),
        ..row("x", "0.01")
    };
    assert!(run(&mut state, Command::Issue(Box::new(edge)), T0).is_ok());
    let edge = Issue { code: "b".into(), phone: Some("+123456789012345".into()), expires_at: None, ..row("x", "1") };
    assert!(run(&mut state, Command::Issue(Box::new(edge)), T0).is_ok());
}

#[test]
fn activation_posts_the_nominal_from_sales_clearing() {
    let mut state = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    let events = run(&mut state, activation("GC-1", "o1"), T0).unwrap();
    assert_eq!(events, ["TransferPosted", "CertificateActivated"]);
    let c = cert(&state, "GC-1");
    assert_eq!(c.status, Status::Active);
    assert_eq!((c.order_id.as_deref(), c.payment_id.as_deref()), (Some("o1"), Some("pay-o1")));
    assert_eq!((c.cvc_phone.as_deref(), c.cvc.as_ref()), (Some(PHONE), Some(&sealed())));
    assert_eq!(balances_of(&state, "GC-1"), (dec("100.00"), dec("100.00")));
    assert_eq!(balance_of(&state, sales_clearing(&eur()).0), dec("100.00"));
    // The same order and payment again replays; another order is refused.
    assert_eq!(run(&mut state, activation("GC-1", "o1"), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(refused(&mut state, activation("GC-1", "o2"), T0), Rejection::CertificateNotIssued);
    // The same order with another payment is another activation.
    let mut other_payment = activation("GC-1", "o1");
    if let Command::Activate(a) = &mut other_payment {
        a.payment_id = "pay-o2".into();
    }
    assert_eq!(refused(&mut state, other_payment, T0), Rejection::CertificateNotIssued);
    let mut other_order = activation("GC-1", "o2");
    if let Command::Activate(a) = &mut other_order {
        a.payment_id = "pay-o1".into();
    }
    assert_eq!(refused(&mut state, other_order, T0), Rejection::CertificateNotIssued);
    // A phone given on activation wins over the upload row's.
    let mut state = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    let mut with_phone = activation("GC-1", "o1");
    if let Command::Activate(a) = &mut with_phone {
        a.phone = Some("+4912345678".into());
    }
    run(&mut state, with_phone, T0).unwrap();
    assert_eq!(cert(&state, "GC-1").cvc_phone.as_deref(), Some("+4912345678"));
}

#[test]
fn activation_is_refused_with_a_typed_code() {
    let no_phone = Issue { phone: None, ..row("GC-3", "10") };
    let mut state = given(&[
        Command::Issue(Box::new(row("GC-1", "100.00"))),
        Command::Issue(Box::new(row("GC-2", "100.00"))),
        Command::Issue(Box::new(no_phone)),
        cancel("GC-2", "c1", "fraud"),
    ]);
    let with = |f: &dyn Fn(&mut Activate)| {
        let mut a = Activate {
            code: "GC-1".into(),
            order_id: "o1".into(),
            payment_id: "p1".into(),
            phone: None,
            client_id: None,
            paid: None,
            cvc: sealed(),
        };
        f(&mut a);
        Command::Activate(Box::new(a))
    };
    let cases: Vec<(Command, Timestamp, Rejection)> = vec![
        (with(&|a| a.code = "nope".into()), T0, Rejection::CertificateNotFound),
        (with(&|a| a.code = "no pe".into()), T0, Rejection::InvalidCertificateCode),
        (with(&|a| a.order_id = String::new()), T0, Rejection::InvalidReference),
        (with(&|a| a.payment_id = "p\n1".into()), T0, Rejection::InvalidReference),
        (with(&|a| a.order_id = "o".repeat(129)), T0, Rejection::InvalidReference),
        (with(&|a| a.client_id = Some(String::new())), T0, Rejection::InvalidReference),
        (with(&|a| a.client_id = Some("c".repeat(129))), T0, Rejection::InvalidReference),
        (with(&|a| a.phone = Some("12".into())), T0, Rejection::InvalidPhone),
        (with(&|a| a.paid = Some(Paid { amount: dec("99.99"), currency: eur() })), T0, Rejection::PaymentMismatch),
        (with(&|a| a.paid = Some(Paid { amount: dec("100.01"), currency: eur() })), T0, Rejection::PaymentMismatch),
        (
            with(&|a| a.paid = Some(Paid { amount: dec("100.00"), currency: CurrencyCode::parse("USD").unwrap() })),
            T0,
            Rejection::PaymentMismatch,
        ),
        (with(&|_| {}), T0.plus_seconds(30 * DAY), Rejection::CertificateExpired),
        (with(&|a| a.code = "GC-2".into()), T0, Rejection::CertificateCancelled),
        (with(&|a| a.code = "GC-3".into()), T0, Rejection::PhoneRequired),
    ];
    for (command, now, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), now), expected, "{command:?}");
    }
    // The limits are accepted: a 128-character order id, a phone only on activation.
    let ok = with(&|a| {
        a.code = "GC-3".into();
        a.order_id = "o".repeat(128);
        a.phone = Some("1234567".into());
    });
    assert!(run(&mut state, ok, T0.plus_seconds(30 * DAY - 1)).is_ok());
    // An order paying the nominal (at any scale) activates, and its client is kept.
    let paid = with(&|a| {
        a.paid = Some(Paid { amount: dec("100"), currency: eur() });
        a.client_id = Some("c".repeat(128));
    });
    assert!(run(&mut state, paid, T0).is_ok());
    assert_eq!(cert(&state, "GC-1").client_id, Some("c".repeat(128)));
}

#[test]
fn final_certificates_refuse_activation_by_their_state() {
    let mut refunded = active();
    run(&mut refunded, refund("GC-1", "r1", None), T0).unwrap();
    assert_eq!(refused(&mut refunded, activation("GC-1", "o2"), T0), Rejection::CertificateRefunded);
    let mut expired = active();
    run(&mut expired, Command::ExpireDue, T0.plus_seconds(30 * DAY)).unwrap();
    assert_eq!(refused(&mut expired, activation("GC-1", "o2"), T0), Rejection::CertificateExpired);
    // The order that activated it still replays.
    assert_eq!(run(&mut expired, activation("GC-1", "o1"), T0).unwrap(), Vec::<&str>::new());
}

#[test]
fn an_authorization_holds_and_a_partial_capture_releases_the_rest() {
    let mut state = active();
    let events = run(&mut state, authorize("GC-1", "a1", "30.00"), T0).unwrap();
    assert_eq!(events, ["PendingTransferCreated", "CertificateAuthorized"]);
    assert_eq!(balances_of(&state, "GC-1"), (dec("100.00"), dec("70.00")));
    assert_eq!(cert(&state, "GC-1").status, Status::Active);
    // A retry replays; the same id for another amount is refused.
    assert_eq!(run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(refused(&mut state, authorize("GC-1", "a1", "31"), T0), Rejection::ExistsWithDifferentFields);
    // Over the available balance.
    let over = authorize("GC-1", "a2", "70.01");
    assert_eq!(refused(&mut state, over, T0), ledger_code(ledger::Rejection::InsufficientFunds));
    let events = run(&mut state, capture("GC-1", "a1", Some("20.00")), T0).unwrap();
    assert_eq!(events, ["PendingTransferPosted", "CertificateCaptured"]);
    assert_eq!(balances_of(&state, "GC-1"), (dec("80.00"), dec("80.00")));
    let c = cert(&state, "GC-1");
    assert_eq!(c.status, Status::PartiallyRedeemed);
    assert_eq!(op(&state, "GC-1", "a1").captured, Some(dec("20.00")));
    assert_eq!(op(&state, "GC-1", "a1").status, OperationStatus::Captured);
    // A retried capture replays; another amount is refused.
    assert_eq!(run(&mut state, capture("GC-1", "a1", Some("20")), T0).unwrap(), Vec::<&str>::new());
    let again = capture("GC-1", "a1", Some("10"));
    assert_eq!(refused(&mut state, again, T0), Rejection::AuthorizationAlreadyCaptured);
    let full = capture("GC-1", "a1", None);
    assert_eq!(refused(&mut state, full, T0), Rejection::AuthorizationAlreadyCaptured);
}

#[test]
fn a_full_capture_redeems_and_its_void_restores_the_nominal() {
    let mut state = active();
    run(&mut state, authorize("GC-1", "a1", "100"), T0).unwrap();
    assert_eq!(balances_of(&state, "GC-1"), (dec("100.00"), Decimal::ZERO));
    run(&mut state, capture("GC-1", "a1", None), T0).unwrap();
    assert_eq!(cert(&state, "GC-1").status, Status::Redeemed);
    assert_eq!(op(&state, "GC-1", "a1").captured, Some(dec("100")));
    assert_eq!(run(&mut state, capture("GC-1", "a1", None), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(run(&mut state, capture("GC-1", "a1", Some("100")), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(balances_of(&state, "GC-1"), (Decimal::ZERO, Decimal::ZERO));
    let refused_authorization = authorize("GC-1", "a2", "0.01");
    assert_eq!(refused(&mut state, refused_authorization, T0), ledger_code(ledger::Rejection::InsufficientFunds));
    // A void of the capture returns the amount by a compensating transfer.
    let events = run(&mut state, void("GC-1", "a1"), T0).unwrap();
    assert_eq!(events, ["TransferPosted", "CertificateCaptureVoided"]);
    assert_eq!(balances_of(&state, "GC-1"), (dec("100.00"), dec("100.00")));
    let c = cert(&state, "GC-1");
    assert_eq!((c.status, op(&state, "GC-1", "a1").status), (Status::Active, OperationStatus::CaptureVoided));
    assert_eq!(run(&mut state, void("GC-1", "a1"), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(refused(&mut state, capture("GC-1", "a1", None), T0), Rejection::AuthorizationVoided);
    // A void of part of the balance leaves it partially redeemed.
    run(&mut state, authorize("GC-1", "a3", "40"), T0).unwrap();
    run(&mut state, capture("GC-1", "a3", None), T0).unwrap();
    run(&mut state, authorize("GC-1", "a4", "10"), T0).unwrap();
    run(&mut state, capture("GC-1", "a4", None), T0).unwrap();
    run(&mut state, void("GC-1", "a4"), T0).unwrap();
    assert_eq!(cert(&state, "GC-1").status, Status::PartiallyRedeemed);
    assert_eq!(balances_of(&state, "GC-1"), (dec("60.00"), dec("60.00")));
}

#[test]
fn an_open_authorization_is_voided_or_captured_within_its_amount() {
    let mut state = active();
    run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap();
    run(&mut state, refuse_cvc("GC-1", "x"), T0).unwrap();
    let cases: Vec<(Command, Rejection)> = vec![
        (capture("GC-1", "a1", Some("30.01")), Rejection::CaptureExceedsAuthorization),
        (capture("GC-1", "a1", Some("0")), ledger_code(ledger::Rejection::AmountMustBePositive)),
        (capture("GC-1", "a1", Some("1.001")), ledger_code(ledger::Rejection::AmountScale)),
        (capture("GC-1", "zz", None), Rejection::OperationNotFound),
        (capture("GC-1", "", None), Rejection::InvalidOperationId),
        (capture("nope", "a1", None), Rejection::CertificateNotFound),
        (void("GC-1", "zz"), Rejection::OperationNotFound),
        (void("GC-1", "a\u{7}"), Rejection::InvalidOperationId),
    ];
    for (command, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), T0), expected, "{command:?}");
    }
    let events = run(&mut state, void("GC-1", "a1"), T0).unwrap();
    assert_eq!(events, ["PendingTransferVoided", "CertificateAuthorizationVoided"]);
    assert_eq!(balances_of(&state, "GC-1"), (dec("100.00"), dec("100.00")));
    assert_eq!(cert(&state, "GC-1").status, Status::Active);
    assert_eq!(run(&mut state, void("GC-1", "a1"), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(refused(&mut state, capture("GC-1", "a1", None), T0), Rejection::AuthorizationVoided);
    // A refund's operation id is not an authorization.
    run(&mut state, refund("GC-1", "r1", None), T0).unwrap();
    assert_eq!(refused(&mut state, capture("GC-1", "r1", None), T0), Rejection::OperationNotFound);
    assert_eq!(refused(&mut state, void("GC-1", "r1"), T0), Rejection::OperationNotFound);
    // The same id as an authorization is another operation's.
    assert_eq!(refused(&mut state, authorize("GC-1", "r1", "1"), T0), Rejection::ExistsWithDifferentFields);
}

#[test]
fn authorizations_need_a_usable_certificate() {
    let mut state = given(&[
        Command::Issue(Box::new(row("GC-1", "100.00"))),
        Command::Issue(Box::new(row("GC-2", "100.00"))),
        activation("GC-2", "o2"),
    ]);
    let cases: Vec<(Command, Timestamp, Rejection)> = vec![
        (authorize("GC-1", "a1", "1"), T0, Rejection::CertificateNotActive),
        (refuse_cvc("GC-1", "a1"), T0, Rejection::CertificateNotActive),
        (authorize("GC-2", "a1", "0"), T0, ledger_code(ledger::Rejection::AmountMustBePositive)),
        (authorize("GC-2", "a1", "1.001"), T0, ledger_code(ledger::Rejection::AmountScale)),
        (authorize("GC-2", "", "1"), T0, Rejection::InvalidOperationId),
        (authorize("GC-2", &"o".repeat(129), "1"), T0, Rejection::InvalidOperationId),
        (authorize("GC-2", "a1", "1"), T0.plus_seconds(30 * DAY), Rejection::CertificateExpired),
        (refuse_cvc("GC-2", "a1"), T0.plus_seconds(30 * DAY), Rejection::CertificateExpired),
        (authorize("GC 2", "a1", "1"), T0, Rejection::InvalidCertificateCode),
        (authorize("GC-3", "a1", "1"), T0, Rejection::CertificateNotFound),
    ];
    for (command, now, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), now), expected, "{command:?}");
    }
    assert!(run(&mut state, authorize("GC-2", &"o".repeat(128), "1"), T0.plus_seconds(30 * DAY - 1)).is_ok());
    for (status, code) in [
        (refund("GC-2", "r", None), Rejection::CertificateRefunded),
        (cancel("GC-2", "c", "x"), Rejection::CertificateCancelled),
        (Command::ExpireDue, Rejection::CertificateExpired),
    ] {
        let mut state = given(&[Command::Issue(Box::new(row("GC-2", "100.00"))), activation("GC-2", "o2")]);
        run(&mut state, status, T0.plus_seconds(30 * DAY)).unwrap();
        assert_eq!(refused(&mut state, authorize("GC-2", "a9", "1"), T0), code);
        assert_eq!(refused(&mut state, refuse_cvc("GC-2", "a9"), T0), code);
    }
}

#[test]
fn the_fifth_wrong_cvc_locks_authorizations_for_fifteen_minutes() {
    let mut state = active();
    for attempt in 1..=4 {
        assert_eq!(run(&mut state, refuse_cvc("GC-1", "a1"), T0).unwrap(), ["CertificateCvcRefused"]);
        assert_eq!(cert(&state, "GC-1").failed_cvc_attempts, attempt);
    }
    // A good CVC in between starts the count again.
    run(&mut state, authorize("GC-1", "ok", "1"), T0).unwrap();
    assert_eq!(cert(&state, "GC-1").failed_cvc_attempts, 0);
    for _ in 1..=4 {
        run(&mut state, refuse_cvc("GC-1", "a1"), T0).unwrap();
    }
    assert_eq!(cert(&state, "GC-1").locked_until, None);
    run(&mut state, refuse_cvc("GC-1", "a1"), T0).unwrap();
    let until = T0.plus_seconds(CVC_LOCK_SECONDS);
    assert_eq!((cert(&state, "GC-1").failed_cvc_attempts, cert(&state, "GC-1").locked_until), (0, Some(until)));
    let locked = Timestamp(until.0 - 1);
    assert_eq!(refused(&mut state, authorize("GC-1", "a2", "1"), locked), Rejection::CertificateLocked);
    assert_eq!(refused(&mut state, refuse_cvc("GC-1", "a2"), locked), Rejection::CertificateLocked);
    // Captures and voids of earlier authorizations go on while locked.
    assert!(run(&mut state, capture("GC-1", "ok", None), locked).is_ok());
    // At the end of the lock, authorizations are taken again; the lock stays recorded.
    assert!(run(&mut state, authorize("GC-1", "a2", "1"), until).is_ok());
    run(&mut state, refuse_cvc("GC-1", "a3"), until).unwrap();
    assert_eq!(cert(&state, "GC-1").locked_until, Some(until));
    assert_eq!(cert(&state, "GC-1").failed_cvc_attempts, 1);
}

#[test]
fn a_refund_returns_the_balance_to_sales_clearing_once_no_authorization_is_open() {
    let mut state = active();
    run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap();
    assert_eq!(refused(&mut state, refund("GC-1", "r1", None), T0), Rejection::AuthorizationOpen);
    run(&mut state, capture("GC-1", "a1", None), T0).unwrap();
    let cases: Vec<(Command, Rejection)> = vec![
        (refund("GC-1", "r1", Some(" ")), Rejection::InvalidReason),
        (refund("GC-1", "r1", Some(&"r".repeat(501))), Rejection::InvalidReason),
        (refund("GC-1", "r1", Some("bad\u{1b}")), Rejection::InvalidReason),
        (refund("GC-1", "a1", None), Rejection::ExistsWithDifferentFields),
        (refund("GC-1", "", None), Rejection::InvalidOperationId),
    ];
    for (command, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), T0), expected, "{command:?}");
    }
    let events = run(&mut state, refund("GC-1", "r1", Some(&"r".repeat(500))), T0).unwrap();
    assert_eq!(events, ["TransferPosted", "CertificateRefunded"]);
    assert_eq!(balances_of(&state, "GC-1"), (Decimal::ZERO, Decimal::ZERO));
    // Sold for 100, 30 redeemed, 70 refunded: sales clearing is settled.
    assert_eq!(balance_of(&state, sales_clearing(&eur()).0), Decimal::ZERO);
    let c = cert(&state, "GC-1");
    assert_eq!((c.status, op(&state, "GC-1", "r1").amount), (Status::Refunded, dec("70.00")));
    assert_eq!(op(&state, "GC-1", "r1").kind, OperationKind::Refund);
    assert_eq!(run(&mut state, refund("GC-1", "r1", Some(&"r".repeat(500))), T0).unwrap(), Vec::<&str>::new());
    let cases: Vec<(Command, Rejection)> = vec![
        (refund("GC-1", "r1", None), Rejection::ExistsWithDifferentFields),
        (refund("GC-1", "r2", None), Rejection::CertificateRefunded),
        (cancel("GC-1", "r1", "x"), Rejection::ExistsWithDifferentFields),
        (cancel("GC-1", "c1", "x"), Rejection::CertificateRefunded),
        (void("GC-1", "a1"), Rejection::CertificateRefunded),
    ];
    for (command, expected) in cases {
        assert_eq!(refused(&mut state, command.clone(), T0), expected, "{command:?}");
    }
    // An issued certificate was never paid for: nothing to refund.
    let mut issued = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    assert_eq!(refused(&mut issued, refund("GC-1", "r1", None), T0), Rejection::CertificateNotActive);
    // A fully redeemed certificate refunds nothing, with no transfer.
    let mut redeemed = active();
    run(&mut redeemed, authorize("GC-1", "a1", "100"), T0).unwrap();
    run(&mut redeemed, capture("GC-1", "a1", None), T0).unwrap();
    assert_eq!(run(&mut redeemed, refund("GC-1", "r1", None), T0).unwrap(), ["CertificateRefunded"]);
    let op = &op(&redeemed, "GC-1", "r1");
    assert_eq!((op.amount, op.transfer), (Decimal::ZERO, None));
}

#[test]
fn a_cancellation_releases_open_authorizations_and_writes_the_balance_off() {
    let mut state = active();
    run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap();
    run(&mut state, authorize("GC-1", "a2", "10"), T0).unwrap();
    run(&mut state, capture("GC-1", "a2", None), T0).unwrap();
    assert_eq!(refused(&mut state, cancel("GC-1", "c1", ""), T0), Rejection::InvalidReason);
    let events = run(&mut state, cancel("GC-1", "c1", "fraud"), T0).unwrap();
    assert_eq!(
        events,
        ["PendingTransferVoided", "CertificateAuthorizationVoided", "TransferPosted", "CertificateCancelled"]
    );
    assert_eq!(balances_of(&state, "GC-1"), (Decimal::ZERO, Decimal::ZERO));
    assert_eq!(balance_of(&state, breakage(&eur()).0), dec("90.00"));
    let c = cert(&state, "GC-1");
    assert_eq!((c.status, op(&state, "GC-1", "a1").status), (Status::Cancelled, OperationStatus::Voided));
    assert_eq!(op(&state, "GC-1", "c1").kind, OperationKind::Cancellation);
    assert_eq!(op(&state, "GC-1", "c1").reason.as_deref(), Some("fraud"));
    assert_eq!(run(&mut state, cancel("GC-1", "c1", "fraud"), T0).unwrap(), Vec::<&str>::new());
    assert_eq!(refused(&mut state, void("GC-1", "a2"), T0), Rejection::CertificateCancelled);
    assert_eq!(refused(&mut state, refund("GC-1", "r1", None), T0), Rejection::CertificateCancelled);
    // An issued certificate is cancelled with nothing to write off.
    let mut issued = given(&[Command::Issue(Box::new(row("GC-1", "100.00")))]);
    assert_eq!(run(&mut issued, cancel("GC-1", "c1", "lost"), T0).unwrap(), ["CertificateCancelled"]);
}

#[test]
fn expiry_releases_holds_and_writes_off_what_is_left() {
    let mut state = given(&[
        Command::Issue(Box::new(row("GC-1", "100.00"))),
        activation("GC-1", "o1"),
        Command::Issue(Box::new(row("GC-2", "20.00"))),
        Command::Issue(Box::new(Issue { expires_at: Some(T0.plus_seconds(60 * DAY)), ..row("GC-3", "5") })),
        Command::Issue(Box::new(Issue { expires_at: None, ..row("GC-4", "5") })),
    ]);
    run(&mut state, authorize("GC-1", "a1", "30"), T0).unwrap();
    run(&mut state, authorize("GC-1", "a2", "10"), T0).unwrap();
    run(&mut state, capture("GC-1", "a2", None), T0).unwrap();
    let before = T0.plus_seconds(30 * DAY - 1);
    assert_eq!(run(&mut state, Command::ExpireDue, before).unwrap(), Vec::<&str>::new());
    let events = run(&mut state, Command::ExpireDue, T0.plus_seconds(30 * DAY)).unwrap();
    assert_eq!(
        events,
        [
            "PendingTransferVoided",
            "CertificateAuthorizationVoided",
            "TransferPosted",
            "CertificateExpired",
            "CertificateExpired"
        ]
    );
    assert_eq!(cert(&state, "GC-1").status, Status::Expired);
    assert_eq!(cert(&state, "GC-2").status, Status::Expired);
    assert_eq!(cert(&state, "GC-3").status, Status::Issued);
    assert_eq!(balance_of(&state, breakage(&eur()).0), dec("90.00"));
    assert_eq!(balances_of(&state, "GC-1"), (Decimal::ZERO, Decimal::ZERO));
    assert_eq!(run(&mut state, Command::ExpireDue, T0.plus_seconds(59 * DAY)).unwrap(), Vec::<&str>::new());
    let events = run(&mut state, Command::ExpireDue, T0.plus_seconds(3650 * DAY)).unwrap();
    assert_eq!(events, ["CertificateExpired"]);
    assert_eq!(cert(&state, "GC-4").status, Status::Issued);
}

#[test]
fn at_most_a_bounded_number_of_certificates_expire_per_command() {
    let mut state = given(&[]);
    for i in 0..=MAX_EXPIRED_PER_COMMAND {
        run(&mut state, Command::Issue(Box::new(row(&format!("GC-{i}"), "1"))), T0).unwrap();
    }
    let later = T0.plus_seconds(30 * DAY);
    assert_eq!(run(&mut state, Command::ExpireDue, later).unwrap().len(), MAX_EXPIRED_PER_COMMAND);
    assert_eq!(run(&mut state, Command::ExpireDue, later).unwrap(), ["CertificateExpired"]);
}

#[test]
fn a_certificate_the_ledger_refuses_to_write_off_stays_due() {
    let mut state = given(&[
        Command::Issue(Box::new(row("GC-1", "100.00"))),
        activation("GC-1", "o1"),
        Command::Issue(Box::new(row("GC-2", "10.00"))),
        activation("GC-2", "o2"),
    ]);
    let account = cert(&state, "GC-1").account;
    let freeze = Any::Ledger(ledger::Command::FreezeAccount { id: account, reason: None });
    freeze.execute(&mut state, T0).unwrap();
    let events = run(&mut state, Command::ExpireDue, T0.plus_seconds(30 * DAY)).unwrap();
    assert_eq!(events, ["TransferPosted", "CertificateExpired"]);
    assert_eq!(cert(&state, "GC-1").status, Status::Active);
    assert_eq!(state.certificates.due(T0.plus_seconds(30 * DAY)).count(), 1);
}

mod contract;
