//! `decide` for gift certificates: checks a command against the certificates and the ledger,
//! makes the postings through the ledger's own commands, and records what happened. Pure: no
//! I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - every command naming a certificate: `invalid_certificate_code`; then, except `Issue`,
//!   `certificate_not_found`; then `invalid_operation_id` where the command has one.
//! - `Issue`: `amount_must_be_positive`, `unknown_currency`, `amount_scale` (the nominal),
//!   `invalid_phone`, `invalid_campaign`, `invalid_expiry` (not after now); the code exists: the
//!   same row replays (no events), else `exists_with_different_fields`; then the ledger's rules
//!   on opening the certificate's, sales clearing's and breakage's accounts.
//! - `Activate`: `invalid_reference` (order, payment, client), `invalid_phone`; activated by the
//!   same order and payment replays; `certificate_refunded`, `certificate_cancelled`,
//!   `certificate_expired`, `certificate_not_issued`; `certificate_expired` (past `expires_at`);
//!   `payment_mismatch` (the order line paid another amount or currency than the nominal);
//!   `phone_required`; the ledger's rules on the posting.
//! - `Authorize`: `amount_must_be_positive`, `amount_scale`; the operation exists: the same
//!   authorization replays, else `exists_with_different_fields`; usable (below); then the
//!   ledger's rules on the hold (`insufficient_funds` over the available balance).
//! - `RefuseCvc`: usable (below); every call counts one wrong CVC.
//! - usable: `certificate_not_active`, `certificate_refunded`, `certificate_cancelled`,
//!   `certificate_expired` (by state, then past `expires_at`), `certificate_locked`.
//! - `Capture`: `amount_must_be_positive`, `amount_scale`; `operation_not_found` (no
//!   authorization by that id); captured with the same amount replays, else
//!   `authorization_already_captured`; `authorization_voided`; `capture_exceeds_authorization`.
//! - `Void`: `operation_not_found`; voided replays; a capture on a final certificate is refused
//!   by its state; the ledger's rules on the release or the reversal.
//! - `Refund`, `Cancel`: `invalid_reason`; the operation exists: the same one replays, else
//!   `exists_with_different_fields`; `certificate_not_active` (refund only), `certificate_refunded`,
//!   `certificate_cancelled`, `certificate_expired`; `authorization_open` (refund only: a
//!   cancellation releases open authorizations first).

use rust_decimal::Decimal;

use super::command::{Activate, Command, Issue};
use super::event::{
    BalanceChange, CertificateActivated, CertificateExpired, CertificateIssued, CertificateOperation, CvcRefused, Event,
};
use super::rejection::Rejection;
use super::state::{Certificate, OperationKind, OperationStatus, State, Status};
use super::{
    CVC_ATTEMPTS, CVC_LOCK_SECONDS, MAX_EXPIRED_PER_COMMAND, Purpose, breakage, certificate_account, sales_clearing,
};
use crate::AccountKind;
use crate::ids::{AccountId, CertificateId, Timestamp};
use crate::ledger;
use crate::money::{AmountError, CurrencyCode, checked_amount};
use crate::postings::Postings;
use crate::{AccountRef, BalanceLimit, CreateTransfer, OpenAccount};

pub fn decide(state: &State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    if let Some(code) = command.code()
        && !valid_code(code)
    {
        return Err(Rejection::InvalidCertificateCode);
    }
    let certificate = || command.code().and_then(|code| state.by_code(code)).ok_or(Rejection::CertificateNotFound);
    match command {
        Command::Issue(c) => issue(state, p, c, now),
        Command::Activate(c) => activate(certificate()?, p, c, now),
        Command::Authorize { operation_id, amount, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            authorize(c, p, operation_id, *amount, now)
        }
        Command::RefuseCvc { operation_id, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            usable(c, now)?;
            let failed = c.failed_cvc_attempts + 1;
            let (failed_attempts, locked_until) =
                if failed >= CVC_ATTEMPTS { (0, Some(now.plus_seconds(CVC_LOCK_SECONDS))) } else { (failed, None) };
            let (balance, available) = balances(p, c.account);
            p.record(Event::CvcRefused(Box::new(CvcRefused {
                id: c.id,
                operation_id: operation_id.clone(),
                failed_attempts,
                locked_until,
                balance: Some(BalanceChange { before: balance, after: balance, available }),
                state: c.status,
                at: now,
            })));
            Ok(())
        }
        Command::Capture { operation_id, amount, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            capture(c, p, operation_id, *amount, now)
        }
        Command::Void { operation_id, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            void(c, p, operation_id, now)
        }
        Command::Refund { operation_id, reason, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            close(c, p, operation_id, reason.as_deref(), OperationKind::Refund, now)
        }
        Command::Cancel { operation_id, reason, .. } => {
            let c = certificate()?;
            check_operation_id(operation_id)?;
            close(c, p, operation_id, Some(reason), OperationKind::Cancellation, now)
        }
        Command::ExpireDue => {
            for id in state.due(now).take(MAX_EXPIRED_PER_COMMAND) {
                let c = state.get(id).expect("deadlines name known certificates");
                // A certificate the ledger refuses to write off (an operator froze an account)
                // stays due and is tried again; the others expire.
                let _ = expire(c, p, now);
            }
            Ok(())
        }
    }
}

/// The JSON Schema pattern of [`valid_code`].
pub const CODE_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Certificate codes: 1 to 64 characters of `A-Z a-z 0-9 _ -` ([`CODE_PATTERN`]).
pub fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The JSON Schema pattern of [`valid_phone`].
pub const PHONE_PATTERN: &str = "^\\+?[0-9]{7,15}$";

/// Phone numbers: 7 to 15 digits, optionally after a `+` ([`PHONE_PATTERN`]).
pub fn valid_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Free text fields (operation, order and payment ids, campaigns): 1 to 128 characters, none of
/// them a control character.
pub use crate::text::{valid_reason, valid_text};

fn check_operation_id(operation_id: &str) -> Result<(), Rejection> {
    if valid_text(operation_id) { Ok(()) } else { Err(Rejection::InvalidOperationId) }
}

fn amount_rejection(e: AmountError) -> Rejection {
    Rejection::Ledger(match e {
        AmountError::NotPositive => ledger::Rejection::AmountMustBePositive,
        AmountError::Scale => ledger::Rejection::AmountScale,
        AmountError::Overflow => ledger::Rejection::Overflow,
        AmountError::UnknownCurrency => ledger::Rejection::UnknownCurrency,
    })
}

/// An amount of the certificate's currency: positive, at its scale.
fn checked(p: &Postings<'_>, currency: &CurrencyCode, amount: Decimal) -> Result<Decimal, Rejection> {
    let scale = p.currencies().scale(currency).ok_or(Rejection::Ledger(ledger::Rejection::UnknownCurrency))?;
    checked_amount(amount, scale).map_err(amount_rejection)
}

/// An operation on the certificate, its hold read from the transfers this command sees.
fn operation(cert: &Certificate, p: &Postings<'_>, operation_id: &str) -> Option<super::state::Operation> {
    cert.operation_with(operation_id, |id| p.transfer(id))
}

/// The certificate's account: (posted balance, available balance).
fn balances(p: &Postings<'_>, account: AccountId) -> (Decimal, Decimal) {
    let a = p.account(account).expect("a certificate's account is opened when it is issued");
    (a.balance(), a.available())
}

fn open(
    p: &mut Postings<'_>,
    id: AccountId,
    code: String,
    currency: &CurrencyCode,
    kind: AccountKind,
    limit: BalanceLimit,
    now: Timestamp,
) -> Result<(), Rejection> {
    let open = OpenAccount {
        id,
        code,
        currency: currency.clone(),
        kind,
        limit,
        metadata: serde_json::json!({"domain": "certificates"}),
    };
    p.execute(ledger::Command::OpenAccount(open), now)?;
    Ok(())
}

fn issue(state: &State, p: &mut Postings<'_>, c: &Issue, now: Timestamp) -> Result<(), Rejection> {
    if c.nominal <= Decimal::ZERO {
        return Err(Rejection::Ledger(ledger::Rejection::AmountMustBePositive));
    }
    let nominal = checked(p, &c.currency, c.nominal)?;
    if c.phone.as_deref().is_some_and(|phone| !valid_phone(phone)) {
        return Err(Rejection::InvalidPhone);
    }
    if c.campaign.as_deref().is_some_and(|campaign| !valid_text(campaign)) {
        return Err(Rejection::InvalidCampaign);
    }
    if c.expires_at.is_some_and(|at| at <= now) {
        return Err(Rejection::InvalidExpiry);
    }
    let id = CertificateId::of(&c.code);
    if let Some(existing) = state.get(id) {
        let same = existing.nominal == nominal
            && existing.currency == c.currency
            && existing.expires_at == c.expires_at
            && existing.campaign == c.campaign
            && existing.phone == c.phone;
        return if same { Ok(()) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    let currency = &c.currency;
    let (clearing, clearing_code) = sales_clearing(currency);
    open(p, clearing, clearing_code, currency, AccountKind::Asset, BalanceLimit::None, now)?;
    let (writeoff, writeoff_code) = breakage(currency);
    open(p, writeoff, writeoff_code, currency, AccountKind::Income, BalanceLimit::None, now)?;
    let (account, account_code) = certificate_account(id, &c.code);
    let limit = BalanceLimit::DebitsMustNotExceedCredits;
    open(p, account, account_code, currency, AccountKind::Liability, limit, now)?;
    p.record(Event::Issued(Box::new(CertificateIssued {
        id,
        code: c.code.clone(),
        nominal,
        currency: currency.clone(),
        expires_at: c.expires_at,
        campaign: c.campaign.clone(),
        phone: c.phone.clone(),
        account,
        state: Status::Issued,
        at: now,
    })));
    Ok(())
}

fn activate(cert: &Certificate, p: &mut Postings<'_>, c: &Activate, now: Timestamp) -> Result<(), Rejection> {
    if !valid_text(&c.order_id)
        || !valid_text(&c.payment_id)
        || c.client_id.as_deref().is_some_and(|id| !valid_text(id))
    {
        return Err(Rejection::InvalidReference);
    }
    if c.phone.as_deref().is_some_and(|phone| !valid_phone(phone)) {
        return Err(Rejection::InvalidPhone);
    }
    if cert.status != Status::Issued {
        if cert.order_id.as_ref() == Some(&c.order_id) && cert.payment_id.as_ref() == Some(&c.payment_id) {
            return Ok(());
        }
        final_state(cert)?;
        return Err(Rejection::CertificateNotIssued);
    }
    if cert.expires_at.is_some_and(|at| at <= now) {
        return Err(Rejection::CertificateExpired);
    }
    if c.paid.as_ref().is_some_and(|paid| paid.amount != cert.nominal || paid.currency != cert.currency) {
        return Err(Rejection::PaymentMismatch);
    }
    let phone = c.phone.clone().or_else(|| cert.phone.clone()).ok_or(Rejection::PhoneRequired)?;
    let transfer = Purpose::Activation.transfer(cert.id, "");
    let (before, _) = balances(p, cert.account);
    let (clearing, _) = sales_clearing(&cert.currency);
    let mut posting =
        CreateTransfer::simple(transfer, AccountRef::Id(clearing), AccountRef::Id(cert.account), cert.nominal);
    posting.metadata =
        serde_json::json!({"certificate": cert.code, "order_id": c.order_id, "payment_id": c.payment_id});
    p.execute(ledger::Command::CreateTransfer(posting), now)?;
    let (after, available) = balances(p, cert.account);
    p.record(Event::Activated(Box::new(CertificateActivated {
        id: cert.id,
        code: cert.code.clone(),
        order_id: c.order_id.clone(),
        payment_id: c.payment_id.clone(),
        client_id: c.client_id.clone(),
        phone,
        cvc: c.cvc.clone(),
        transfer,
        balance: BalanceChange { before, after, available },
        state: Status::Active,
        at: now,
    })));
    Ok(())
}

/// Refunded, cancelled and expired certificates refuse by their state.
fn final_state(cert: &Certificate) -> Result<(), Rejection> {
    match cert.status {
        Status::Refunded => Err(Rejection::CertificateRefunded),
        Status::Cancelled => Err(Rejection::CertificateCancelled),
        Status::Expired => Err(Rejection::CertificateExpired),
        _ => Ok(()),
    }
}

/// Whether the certificate takes authorizations now.
fn usable(cert: &Certificate, now: Timestamp) -> Result<(), Rejection> {
    if cert.status == Status::Issued {
        return Err(Rejection::CertificateNotActive);
    }
    final_state(cert)?;
    if cert.expires_at.is_some_and(|at| at <= now) {
        return Err(Rejection::CertificateExpired);
    }
    if cert.locked_until.is_some_and(|until| until > now) {
        return Err(Rejection::CertificateLocked);
    }
    Ok(())
}

/// The state a certificate is in after money moved on it.
fn status_after(cert: &Certificate, balance: Decimal) -> Status {
    if balance.is_zero() {
        Status::Redeemed
    } else if balance == cert.nominal {
        Status::Active
    } else {
        Status::PartiallyRedeemed
    }
}

fn authorize(
    cert: &Certificate,
    p: &mut Postings<'_>,
    operation_id: &str,
    amount: Decimal,
    now: Timestamp,
) -> Result<(), Rejection> {
    if amount <= Decimal::ZERO {
        return Err(Rejection::Ledger(ledger::Rejection::AmountMustBePositive));
    }
    let amount = checked(p, &cert.currency, amount)?;
    if let Some(existing) = operation(cert, p, operation_id) {
        let same = existing.kind == OperationKind::Authorization && existing.amount == amount;
        return if same { Ok(()) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    usable(cert, now)?;
    let transfer = Purpose::Hold.transfer(cert.id, operation_id);
    let (before, _) = balances(p, cert.account);
    let (clearing, _) = sales_clearing(&cert.currency);
    let mut hold = CreateTransfer::simple(transfer, AccountRef::Id(cert.account), AccountRef::Id(clearing), amount);
    hold.pending = true;
    hold.metadata = serde_json::json!({"certificate": cert.code, "operation_id": operation_id});
    p.execute(ledger::Command::CreateTransfer(hold), now)?;
    let (after, available) = balances(p, cert.account);
    p.record(Event::Authorized(Box::new(CertificateOperation {
        id: cert.id,
        operation_id: operation_id.to_owned(),
        amount,
        transfer: Some(transfer),
        reason: None,
        balance: BalanceChange { before, after, available },
        state: cert.status,
        at: now,
    })));
    Ok(())
}

fn capture(
    cert: &Certificate,
    p: &mut Postings<'_>,
    operation_id: &str,
    amount: Option<Decimal>,
    now: Timestamp,
) -> Result<(), Rejection> {
    if amount.is_some_and(|a| a <= Decimal::ZERO) {
        return Err(Rejection::Ledger(ledger::Rejection::AmountMustBePositive));
    }
    let amount = amount.map(|a| checked(p, &cert.currency, a)).transpose()?;
    let op = operation(cert, p, operation_id)
        .filter(|op| op.kind == OperationKind::Authorization)
        .ok_or(Rejection::OperationNotFound)?;
    match op.status {
        OperationStatus::Captured => {
            return if op.captured == Some(amount.unwrap_or(op.amount)) {
                Ok(())
            } else {
                Err(Rejection::AuthorizationAlreadyCaptured)
            };
        }
        OperationStatus::Voided | OperationStatus::CaptureVoided => return Err(Rejection::AuthorizationVoided),
        OperationStatus::Open | OperationStatus::Done => {}
    }
    let amount = amount.unwrap_or(op.amount);
    if amount > op.amount {
        return Err(Rejection::CaptureExceedsAuthorization);
    }
    let transfer = Purpose::Hold.transfer(cert.id, operation_id);
    let (before, _) = balances(p, cert.account);
    p.execute(ledger::Command::PostPendingTransfer { pending_id: transfer, amount: Some(amount) }, now)?;
    let (after, available) = balances(p, cert.account);
    p.record(Event::Captured(Box::new(CertificateOperation {
        id: cert.id,
        operation_id: operation_id.to_owned(),
        amount,
        transfer: Some(transfer),
        reason: None,
        balance: BalanceChange { before, after, available },
        state: status_after(cert, after),
        at: now,
    })));
    Ok(())
}

fn void(cert: &Certificate, p: &mut Postings<'_>, operation_id: &str, now: Timestamp) -> Result<(), Rejection> {
    let op = operation(cert, p, operation_id)
        .filter(|op| op.kind == OperationKind::Authorization)
        .ok_or(Rejection::OperationNotFound)?;
    let hold = Purpose::Hold.transfer(cert.id, operation_id);
    let (before, _) = balances(p, cert.account);
    match op.status {
        OperationStatus::Voided | OperationStatus::CaptureVoided => Ok(()),
        OperationStatus::Open | OperationStatus::Done => release(cert, p, operation_id, op.amount, now),
        OperationStatus::Captured => {
            final_state(cert)?;
            let reversal = Purpose::Reversal.transfer(cert.id, operation_id);
            let metadata = serde_json::json!({"certificate": cert.code, "operation_id": operation_id});
            p.execute(ledger::Command::ReverseTransfer { id: reversal, transfer_id: hold, metadata }, now)?;
            let (after, available) = balances(p, cert.account);
            p.record(Event::CaptureVoided(Box::new(CertificateOperation {
                id: cert.id,
                operation_id: operation_id.to_owned(),
                amount: op.captured.unwrap_or(op.amount),
                transfer: Some(reversal),
                reason: None,
                balance: BalanceChange { before, after, available },
                state: status_after(cert, after),
                at: now,
            })));
            Ok(())
        }
    }
}

/// Releases an open authorization of `held`.
fn release(
    cert: &Certificate,
    p: &mut Postings<'_>,
    operation_id: &str,
    held: Decimal,
    now: Timestamp,
) -> Result<(), Rejection> {
    let hold = Purpose::Hold.transfer(cert.id, operation_id);
    let (before, _) = balances(p, cert.account);
    p.execute(ledger::Command::VoidPendingTransfer { pending_id: hold }, now)?;
    let (after, available) = balances(p, cert.account);
    p.record(Event::AuthorizationVoided(Box::new(CertificateOperation {
        id: cert.id,
        operation_id: operation_id.to_owned(),
        amount: held,
        transfer: Some(hold),
        reason: None,
        balance: BalanceChange { before, after, available },
        state: cert.status,
        at: now,
    })));
    Ok(())
}

/// A refund (the balance back to sales clearing) or a cancellation (to breakage income).
fn close(
    cert: &Certificate,
    p: &mut Postings<'_>,
    operation_id: &str,
    reason: Option<&str>,
    kind: OperationKind,
    now: Timestamp,
) -> Result<(), Rejection> {
    if reason.is_some_and(|r| !valid_reason(r)) {
        return Err(Rejection::InvalidReason);
    }
    if let Some(existing) = operation(cert, p, operation_id) {
        let same = existing.kind == kind && existing.reason.as_deref() == reason;
        return if same { Ok(()) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    if kind == OperationKind::Refund && cert.status == Status::Issued {
        return Err(Rejection::CertificateNotActive);
    }
    final_state(cert)?;
    let open: Vec<(&String, &Decimal)> = cert.open.iter().collect();
    if kind == OperationKind::Refund && !open.is_empty() {
        return Err(Rejection::AuthorizationOpen);
    }
    for (operation, held) in open {
        release(cert, p, operation, *held, now)?;
    }
    let (purpose, to, status) = match kind {
        OperationKind::Refund => (Purpose::Refund, sales_clearing(&cert.currency).0, Status::Refunded),
        _ => (Purpose::Cancellation, breakage(&cert.currency).0, Status::Cancelled),
    };
    let (before, amount, transfer) =
        write_off(cert, p, purpose.transfer(cert.id, operation_id), to, operation_id, now)?;
    let (after, available) = balances(p, cert.account);
    let operation = CertificateOperation {
        id: cert.id,
        operation_id: operation_id.to_owned(),
        amount,
        transfer,
        reason: reason.map(str::to_owned),
        balance: BalanceChange { before, after, available },
        state: status,
        at: now,
    };
    let operation = Box::new(operation);
    p.record(if kind == OperationKind::Refund { Event::Refunded(operation) } else { Event::Cancelled(operation) });
    Ok(())
}

/// Moves the whole balance off the certificate: (balance before, amount, transfer if any).
fn write_off(
    cert: &Certificate,
    p: &mut Postings<'_>,
    transfer: crate::TransferId,
    to: AccountId,
    operation_id: &str,
    now: Timestamp,
) -> Result<(Decimal, Decimal, Option<crate::TransferId>), Rejection> {
    let (before, _) = balances(p, cert.account);
    if before.is_zero() {
        return Ok((before, before, None));
    }
    let mut posting = CreateTransfer::simple(transfer, AccountRef::Id(cert.account), AccountRef::Id(to), before);
    posting.metadata = serde_json::json!({"certificate": cert.code, "operation_id": operation_id});
    p.execute(ledger::Command::CreateTransfer(posting), now)?;
    Ok((before, before, Some(transfer)))
}

fn expire(cert: &Certificate, p: &mut Postings<'_>, now: Timestamp) -> Result<(), Rejection> {
    let open: Vec<(&String, &Decimal)> = cert.open.iter().collect();
    for (operation, held) in open {
        release(cert, p, operation, *held, now)?;
    }
    let transfer = Purpose::Expiry.transfer(cert.id, "");
    let (before, amount, transfer) = write_off(cert, p, transfer, breakage(&cert.currency).0, "expiry", now)?;
    let (after, available) = balances(p, cert.account);
    p.record(Event::Expired(Box::new(CertificateExpired {
        id: cert.id,
        amount,
        transfer,
        balance: BalanceChange { before, after, available },
        state: Status::Expired,
        at: now,
    })));
    Ok(())
}

#[cfg(test)]
mod tests;
