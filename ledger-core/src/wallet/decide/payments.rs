//! Deposits (an intent, then the provider's webhook) and withdrawals (a saga: locked, sent,
//! then succeeded, failed or timed out).

use serde_json::json;

use super::bonuses::forfeit;
use super::{check_id, ensure_open, leg, money, post, scale, within_limit};
use crate::ids::{DepositId, Timestamp, TransferId, WithdrawalId};
use crate::money::CurrencyCode;
use crate::postings::Postings;
use crate::text::{valid_reason, valid_text};
use crate::wallet::command::{CreateDeposit, OpenBonusPolicy, ProviderKind, RequestWithdrawal, Settle};
use crate::wallet::event::{DepositCreated, Event, Settled, WithdrawalRequested};
use crate::wallet::rejection::Rejection;
use crate::wallet::state::{DepositStatus, Player, State, WithdrawalStatus};
use crate::wallet::{
    Kyc, LimitKind, MAX_DUE_PER_COMMAND, clearing_account, deposit_entity, locked_account, main_account, transfer_of,
    withdrawal_entity,
};
use crate::{AccountKind, Side};

/// The player, a provider of `kind`, and the amount in the player's currency.
fn party<'s>(
    wallet: &'s State,
    p: &Postings<'_>,
    player: &str,
    provider: &str,
    kind: ProviderKind,
    currency: &CurrencyCode,
) -> Result<&'s Player, Rejection> {
    let player = wallet.player(player).ok_or(Rejection::PlayerNotFound)?;
    wallet.provider(provider).filter(|pr| pr.kind == kind).ok_or(Rejection::ProviderNotFound)?;
    if player.currency != *currency {
        return Err(Rejection::CurrencyMismatch);
    }
    scale(p, currency)?;
    Ok(player)
}

pub(super) fn create_deposit(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &CreateDeposit,
    now: Timestamp,
) -> Result<(), Rejection> {
    check_id(&c.player)?;
    check_id(&c.provider)?;
    if let Some(d) = wallet.deposit(c.id) {
        let same = d.player == c.player && d.amount == c.amount && d.currency == c.currency && d.provider == c.provider;
        return if same { Ok(()) } else { Err(Rejection::DepositExists) };
    }
    let player = party(wallet, p, &c.player, &c.provider, ProviderKind::Payments, &c.currency)?;
    let amount = money(p, c.amount, &c.currency)?;
    if player.excluded(now) {
        return Err(Rejection::SelfExcluded);
    }
    for kind in [LimitKind::DepositDay, LimitKind::DepositWeek, LimitKind::DepositMonth] {
        within_limit(player, kind, amount, now)?;
    }
    p.record(Event::DepositCreated(Box::new(DepositCreated {
        id: c.id,
        player: c.player.clone(),
        amount,
        currency: c.currency.clone(),
        provider: c.provider.clone(),
        at: now,
    })));
    Ok(())
}

/// The texts a provider's webhook carries.
fn check_outcome<Id>(c: &Settle<Id>) -> Result<(), Rejection> {
    if !c.provider_reference.as_deref().is_none_or(valid_text) || !valid_text(&c.event_id) {
        return Err(Rejection::InvalidReference);
    }
    if !c.reason.as_deref().is_none_or(valid_reason) {
        return Err(Rejection::InvalidReason);
    }
    Ok(())
}

fn step<Id>(
    id: Id,
    reference: Option<String>,
    reason: Option<String>,
    event_id: Option<String>,
    transfer: Option<TransferId>,
    now: Timestamp,
) -> Settled<Id> {
    Settled { id, provider_reference: reference, reason, event_id, transfer, at: now }
}

pub(super) fn settle_deposit(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &Settle<DepositId>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let d = wallet.deposit(c.id).filter(|d| d.provider == c.provider).ok_or(Rejection::DepositNotFound)?;
    check_outcome(c)?;
    if c.amount != d.amount || c.currency != d.currency {
        return Err(Rejection::AmountMismatch);
    }
    match (d.status, c.succeeded) {
        (DepositStatus::Pending, _) => {}
        (DepositStatus::Succeeded, true) | (DepositStatus::Failed, false) => return Ok(()),
        _ => return Err(Rejection::DepositAlreadySettled),
    }
    let (reference, event_id) = (c.provider_reference.clone(), Some(c.event_id.clone()));
    if c.succeeded {
        let clearing = clearing_account(&d.provider, &d.currency);
        ensure_open(p, clearing.clone(), &d.currency, AccountKind::Asset, now)?;
        let id = transfer_of(deposit_entity(d.id), "deposit");
        let legs = [leg(clearing.0, Side::Debit, d.amount), leg(main_account(&d.player).0, Side::Credit, d.amount)];
        post(p, id, &legs, json!({"deposit": d.id.to_string(), "player": d.player}), now)?;
        p.record(Event::DepositSucceeded(Box::new(step(d.id, reference, None, event_id, Some(id), now))));
    } else {
        p.record(Event::DepositFailed(Box::new(step(d.id, reference, c.reason.clone(), event_id, None, now))));
    }
    Ok(())
}

pub(super) fn request_withdrawal(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &RequestWithdrawal,
    now: Timestamp,
) -> Result<(), Rejection> {
    check_id(&c.player)?;
    check_id(&c.provider)?;
    if let Some(w) = wallet.withdrawal(c.id) {
        let same = w.player == c.player && w.amount == c.amount && w.currency == c.currency && w.provider == c.provider;
        return if same { Ok(()) } else { Err(Rejection::WithdrawalExists) };
    }
    let player = party(wallet, p, &c.player, &c.provider, ProviderKind::Payments, &c.currency)?;
    let amount = money(p, c.amount, &c.currency)?;
    if player.kyc == Kyc::None {
        return Err(Rejection::KycRequired);
    }
    within_limit(player, LimitKind::WithdrawDay, amount, now)?;
    if let Some(bonus) = player.bonus.and_then(|id| wallet.bonus(id)) {
        if c.open_bonus == OpenBonusPolicy::Refuse {
            return Err(Rejection::BonusWageringOpen);
        }
        forfeit(p, bonus, Some("withdrawal"), now)?;
    }
    let lock = transfer_of(withdrawal_entity(c.id), "lock");
    let legs =
        [leg(main_account(&c.player).0, Side::Debit, amount), leg(locked_account(&c.player).0, Side::Credit, amount)];
    post(p, lock, &legs, json!({"withdrawal": c.id.to_string(), "step": "locked"}), now)?;
    p.record(Event::WithdrawalRequested(Box::new(WithdrawalRequested {
        id: c.id,
        player: c.player.clone(),
        amount,
        currency: c.currency.clone(),
        provider: c.provider.clone(),
        deadline: now.plus_seconds(c.timeout_seconds),
        transfer: lock,
        at: now,
    })));
    Ok(())
}

pub(super) fn settle_withdrawal(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &Settle<WithdrawalId>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let w = wallet.withdrawal(c.id).filter(|w| w.provider == c.provider).ok_or(Rejection::WithdrawalNotFound)?;
    check_outcome(c)?;
    if c.amount != w.amount || c.currency != w.currency {
        return Err(Rejection::AmountMismatch);
    }
    match (w.status, c.succeeded) {
        (WithdrawalStatus::Locked | WithdrawalStatus::Sent, _) => {}
        (WithdrawalStatus::Succeeded, true) | (WithdrawalStatus::Failed, false) => return Ok(()),
        _ => return Err(Rejection::WithdrawalAlreadySettled),
    }
    let settle = transfer_of(withdrawal_entity(w.id), "settle");
    let locked = locked_account(&w.player).0;
    let (reference, event_id) = (c.provider_reference.clone(), Some(c.event_id.clone()));
    let metadata = json!({"withdrawal": w.id.to_string(), "step": if c.succeeded { "succeeded" } else { "failed" }});
    if c.succeeded {
        let clearing = clearing_account(&w.provider, &w.currency);
        ensure_open(p, clearing.clone(), &w.currency, AccountKind::Asset, now)?;
        post(p, settle, &[leg(locked, Side::Debit, w.amount), leg(clearing.0, Side::Credit, w.amount)], metadata, now)?;
        p.record(Event::WithdrawalSucceeded(Box::new(step(w.id, reference, None, event_id, Some(settle), now))));
    } else {
        let main = main_account(&w.player).0;
        post(p, settle, &[leg(locked, Side::Debit, w.amount), leg(main, Side::Credit, w.amount)], metadata, now)?;
        let reason = c.reason.clone();
        p.record(Event::WithdrawalFailed(Box::new(step(w.id, reference, reason, event_id, Some(settle), now))));
    }
    Ok(())
}

pub(super) fn mark_withdrawal_sent(
    wallet: &State,
    p: &mut Postings<'_>,
    id: WithdrawalId,
    now: Timestamp,
) -> Result<(), Rejection> {
    let w = wallet.withdrawal(id).ok_or(Rejection::WithdrawalNotFound)?;
    if w.status == WithdrawalStatus::Locked {
        p.record(Event::WithdrawalSent(Box::new(step(id, None, None, None, None, now))));
    }
    Ok(())
}

/// Returns locked → main for the withdrawals past their deadline (one the ledger refuses to
/// move stays due).
pub(super) fn expire_withdrawals(wallet: &State, p: &mut Postings<'_>, now: Timestamp) -> Result<(), Rejection> {
    for id in wallet.due_withdrawals(now).take(MAX_DUE_PER_COMMAND) {
        let w = &wallet.withdrawal(id).expect("due withdrawals are in memory");
        let back = transfer_of(withdrawal_entity(id), "settle");
        let legs = [
            leg(locked_account(&w.player).0, Side::Debit, w.amount),
            leg(main_account(&w.player).0, Side::Credit, w.amount),
        ];
        if post(p, back, &legs, json!({"withdrawal": id.to_string(), "step": "timed_out"}), now).is_ok() {
            p.record(Event::WithdrawalTimedOut(Box::new(step(id, None, None, None, Some(back), now))));
        }
    }
    Ok(())
}
