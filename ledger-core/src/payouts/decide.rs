//! `decide` for payouts: checks a command against the requests, the payouts and the ledger,
//! moves money only through the ledger's own commands, and records what happened. Pure: no
//! I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - `Request`: `invalid_client_id`; the id exists: the same client replays (no events), else
//!   `exists_with_different_fields`.
//! - `PlanNew`, `SendNew`: `invalid_limit` (1 to `MAX_PER_COMMAND`). They never refuse an item:
//!   each request is `done` or `error`, each payout `sent` or `failed`, in arrival order.
//!   - planning a request: its client's `payout` accounts (by id); for each, the balance less
//!     what the account's payouts not yet sent will take; a positive rest on an account that is
//!     not open makes the request `error`; otherwise each positive rest becomes a payout of
//!     exactly that amount, and the request is `done` (with no payouts when there was none).
//!   - sending a payout: `failed` when its account's available balance is below the amount, or
//!     when the ledger refuses opening `payout_sent` or the transfer (its code is the reason);
//!     otherwise `sent`.
//! - `Status`: `payout_not_found`, `invalid_reason`; the same status again replays; `paid` and
//!   `rejected` apply to a `sent` payout only, else `invalid_transition`; then the ledger's rules
//!   on returning a rejected payout's amount.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::command::{Command, ErpStatus};
use super::event::{
    AccountBalance, Event, PayoutClosed, PayoutCreated, PayoutRequestDone, PayoutRequestFailed, PayoutRequested,
    PayoutSent,
};
use super::rejection::Rejection;
use super::state::{Payout, PayoutStatus, Request};
use super::{MAX_PER_COMMAND, PAYOUT_ACCOUNT, SENT_ACCOUNT, sent_account};
use crate::ids::{AccountId, PayoutId, Timestamp};
use crate::postings::Postings;
use crate::text::{valid_reason, valid_text};
use crate::{AccountKind, AccountRef, AccountStatus, BalanceLimit, CreateTransfer, OpenAccount, ledger};

pub fn decide(state: &crate::State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    let payouts = &state.payouts;
    match command {
        Command::Request { id, client_id } => {
            if !valid_text(client_id) {
                return Err(Rejection::InvalidClientId);
            }
            match payouts.request(*id) {
                Some(r) if r.client_id == *client_id => Ok(()),
                Some(_) => Err(Rejection::ExistsWithDifferentFields),
                None => {
                    p.record(Event::Requested(Box::new(PayoutRequested {
                        id: *id,
                        client_id: client_id.clone(),
                        at: now,
                    })));
                    Ok(())
                }
            }
        }
        Command::PlanNew { limit } => {
            check_limit(*limit)?;
            // What this command's own payouts take, on top of the payouts already planned.
            let mut planned: HashMap<AccountId, Decimal> = HashMap::new();
            for request in payouts.new_requests().take(*limit as usize) {
                plan(state, p, request, &mut planned, now);
            }
            Ok(())
        }
        Command::SendNew { limit } => {
            check_limit(*limit)?;
            for payout in payouts.new_payouts().take(*limit as usize) {
                send(p, payout, now);
            }
            Ok(())
        }
        Command::Status { payout, status, reason } => {
            let payout = payouts.payout(*payout).ok_or(Rejection::PayoutNotFound)?;
            if reason.as_deref().is_some_and(|r| !valid_reason(r)) {
                return Err(Rejection::InvalidReason);
            }
            apply_status(p, payout, *status, reason.clone(), now)
        }
    }
}

fn check_limit(limit: u32) -> Result<(), Rejection> {
    if (1..=MAX_PER_COMMAND).contains(&limit) { Ok(()) } else { Err(Rejection::InvalidLimit) }
}

fn plan(
    state: &crate::State,
    p: &mut Postings<'_>,
    request: &Request,
    planned: &mut HashMap<AccountId, Decimal>,
    now: Timestamp,
) {
    let mut made = Vec::new();
    for account in state.ledger.accounts_of(&request.client_id, PAYOUT_ACCOUNT) {
        let taken = state.payouts.planned(account.id) + planned.get(&account.id).copied().unwrap_or_default();
        let rest = account.balance() - taken;
        if rest <= Decimal::ZERO {
            continue;
        }
        if account.status != AccountStatus::Open {
            let error = format!("payout account {} is {}", account.code, status_name(account.status));
            p.record(Event::RequestFailed(Box::new(PayoutRequestFailed { id: request.id, error, at: now })));
            return;
        }
        made.push(PayoutCreated {
            id: PayoutId::of(request.id, account.id),
            request: request.id,
            client_id: request.client_id.clone(),
            account: account.id,
            amount: rest,
            currency: account.currency.clone(),
            at: now,
        });
    }
    for payout in &made {
        *planned.entry(payout.account).or_default() += payout.amount;
    }
    let ids = made.iter().map(|m| m.id).collect();
    for payout in made {
        p.record(Event::Created(Box::new(payout)));
    }
    p.record(Event::RequestDone(Box::new(PayoutRequestDone { id: request.id, payouts: ids, at: now })));
}

fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Open => "open",
        AccountStatus::Frozen => "frozen",
        AccountStatus::Closed => "closed",
    }
}

/// A balance at its currency's scale, as every amount in an event is (`0.00`, not `0`).
fn balance_of(p: &Postings<'_>, payout: &Payout) -> Decimal {
    let mut balance = p.account(payout.account).map_or(Decimal::ZERO, |a| a.balance());
    if let Some(scale) = p.currencies().scale(&payout.currency) {
        balance.rescale(scale);
    }
    balance
}

fn send(p: &mut Postings<'_>, payout: &Payout, now: Timestamp) {
    let failed = |p: &mut Postings<'_>, reason: String| {
        let closed = PayoutClosed { id: payout.id, reason: Some(reason), transfer: None, balance: None, at: now };
        p.record(Event::Failed(Box::new(closed)));
    };
    // The account as this command's earlier sends left it.
    let (before, available) =
        (balance_of(p, payout), p.account(payout.account).map_or(Decimal::ZERO, |a| a.available()));
    if available < payout.amount {
        return failed(p, format!("insufficient_funds: {available} available"));
    }
    let (sent, code) = sent_account(&payout.client_id, &payout.currency);
    if p.account(sent).is_none() {
        let open = OpenAccount {
            id: sent,
            code,
            currency: payout.currency.clone(),
            kind: AccountKind::Liability,
            limit: BalanceLimit::DebitsMustNotExceedCredits,
            metadata: serde_json::json!({ "client_id": payout.client_id, "account_type": SENT_ACCOUNT }),
        };
        if let Err(refused) = p.execute(ledger::Command::OpenAccount(open), now) {
            return failed(p, refused.code().to_owned());
        }
    }
    let transfer = payout.id.send_transfer();
    let move_it = CreateTransfer::simple(transfer, AccountRef::Id(payout.account), AccountRef::Id(sent), payout.amount);
    if let Err(refused) = p.execute(ledger::Command::CreateTransfer(move_it), now) {
        return failed(p, refused.code().to_owned());
    }
    let after = balance_of(p, payout);
    p.record(Event::Sent(Box::new(PayoutSent {
        id: payout.id,
        client_id: payout.client_id.clone(),
        account: payout.account,
        sent_account: sent,
        amount: payout.amount,
        currency: payout.currency.clone(),
        cash_payment_fact: payout.id.cash_payment_fact(),
        transfer,
        balance: AccountBalance { before, after },
        at: now,
    })));
}

fn apply_status(
    p: &mut Postings<'_>,
    payout: &Payout,
    status: ErpStatus,
    reason: Option<String>,
    now: Timestamp,
) -> Result<(), Rejection> {
    match (status, payout.status) {
        (ErpStatus::Paid, PayoutStatus::Paid) | (ErpStatus::Rejected, PayoutStatus::Rejected) => Ok(()),
        (ErpStatus::Paid, PayoutStatus::Sent) => {
            p.record(Event::Paid(Box::new(PayoutClosed {
                id: payout.id,
                reason,
                transfer: None,
                balance: None,
                at: now,
            })));
            Ok(())
        }
        (ErpStatus::Rejected, PayoutStatus::Sent) => {
            let sent = payout.sent_account.expect("a sent payout names its payout_sent account");
            let transfer = payout.id.return_transfer();
            let back =
                CreateTransfer::simple(transfer, AccountRef::Id(sent), AccountRef::Id(payout.account), payout.amount);
            let before = balance_of(p, payout);
            p.execute(ledger::Command::CreateTransfer(back), now)?;
            let balance = Some(AccountBalance { before, after: balance_of(p, payout) });
            let closed = PayoutClosed { id: payout.id, reason, transfer: Some(transfer), balance, at: now };
            p.record(Event::Rejected(Box::new(closed)));
            Ok(())
        }
        _ => Err(Rejection::InvalidTransition),
    }
}

#[cfg(test)]
mod tests;
