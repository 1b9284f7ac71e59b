//! Deciding the reconciliation's commands. Refusals are checked in this order:
//!
//! - `SetProvider`: `invalid_provider_id`, `invalid_name`, `invalid_base_url` (an `http://` or
//!   `https://` URL, `text::valid_url`), `unknown_currency`, `invalid_tolerance`, then
//!   `currency_fixed` for an existing provider. Setting what is already set changes nothing.
//! - `MoveMoney`: a movement with its id answers as it is when the body is the same
//!   (`movement_exists` otherwise); then `provider_not_found`, `invalid_reason`, the amount's
//!   ledger checks (`amount_must_be_positive`, `amount_scale`), `segregation_breach` (a move to
//!   operational must leave the transactional account's available balance at least the players'
//!   balances attributed to the provider), and the ledger's own refusal of the hold (a move to
//!   transactional beyond what operational has: `insufficient_funds`).
//! - `RecordAttempt`: `movement_not_found`, `movement_settled`, `invalid_reason` (a provider's
//!   reason or an error is a reason's text).

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::command::{Attempt, Command, Direction, MoveMoney, Outcome, SetProvider};
use super::event::{Event, MovementRequested, MovementStep, ProviderSet};
use super::rejection::Rejection;
use super::state::{Movement, MovementStatus, Provider, State};
use super::{movement_entity, movement_transfer, operational_account, provider_entity, transactional_account};
use crate::audit::{self, Change, Level};
use crate::ids::Timestamp;
use crate::money::checked_amount;
use crate::postings::Postings;
use crate::text::{valid_id, valid_reason, valid_url, within};
use crate::{AccountKind, AccountRef, CreateTransfer, OpenAccount, PostingRequest, Side, ledger};

pub fn decide(state: &crate::State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    let recon = &state.recon;
    match command {
        Command::SetProvider(c) => set_provider(recon, p, c, now),
        Command::MoveMoney(c) => move_money(recon, &state.ledger, p, c, now),
        Command::RecordAttempt(c) => record_attempt(recon, p, c, now),
        Command::SetRule { name, spec } => super::run::set_rule(recon, p, name, spec, now),
        Command::StartRun(c) => super::run::start_run(recon, &state.ledger, p, c, now),
        Command::CompleteRun(c) => super::run::complete_run(recon, p, c, now),
        Command::FailRun { id, reason } => super::run::fail_run(recon, p, *id, reason, now),
        Command::ResolveItem(c) => super::run::resolve_item(recon, p, c, now),
        Command::SetSchedule(c) => super::schedule::set_schedule(recon, p, c, now),
        Command::FireSchedule { id, due } => super::schedule::fire_schedule(recon, &state.ledger, p, id, *due, now),
    }
}

/// The namespace of the ids of the reconciliation's audit entries.
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x5be2_07d4_93a1_4c68_8e3f_1a6d_c470_b925);

/// The most characters of a provider's name.
pub const NAME_MAX_CHARS: usize = 128;

pub(super) fn audited(
    p: &mut Postings<'_>,
    entity: Uuid,
    version: u32,
    change: Change<'_>,
    now: Timestamp,
) -> Result<(), Rejection> {
    audit::record_change(p, &AUDIT_NAMESPACE, entity, version, change, now).map_err(Rejection::from)
}

fn provider_view(p: &Provider) -> serde_json::Value {
    json!({"name": p.name, "currency": p.currency.as_str(), "base_url": p.base_url, "tolerance": p.tolerance.to_string()})
}

fn set_provider(recon: &State, p: &mut Postings<'_>, c: &SetProvider, now: Timestamp) -> Result<(), Rejection> {
    if !valid_id(&c.id) {
        return Err(Rejection::InvalidProviderId);
    }
    if !within(&c.name, NAME_MAX_CHARS) {
        return Err(Rejection::InvalidName);
    }
    let scheme = c.base_url.starts_with("https://") || c.base_url.starts_with("http://");
    if !(valid_url(&c.base_url) && scheme) {
        return Err(Rejection::InvalidBaseUrl);
    }
    let scale = p.currencies().scale(&c.currency).ok_or(ledger::Rejection::UnknownCurrency)?;
    if c.tolerance < Decimal::ZERO || c.tolerance.normalize().scale() > scale {
        return Err(Rejection::InvalidTolerance);
    }
    let mut tolerance = c.tolerance;
    tolerance.rescale(scale);
    let existing = recon.provider(&c.id);
    if let Some(old) = existing {
        if old.currency != c.currency {
            return Err(Rejection::CurrencyFixed);
        }
        if (&old.name, &old.base_url, old.tolerance) == (&c.name, &c.base_url, tolerance) {
            return Ok(());
        }
    } else {
        for (id, code) in [transactional_account(&c.id), operational_account(&c.id)] {
            if p.account(id).is_none() {
                let open = OpenAccount {
                    id,
                    code,
                    currency: c.currency.clone(),
                    kind: AccountKind::Asset,
                    limit: AccountKind::Asset.no_overdraft_limit(),
                    metadata: json!({"domain": "recon", "provider": c.id}),
                };
                p.execute(ledger::Command::OpenAccount(open), now)?;
            }
        }
    }
    let event = ProviderSet {
        id: c.id.clone(),
        name: c.name.clone(),
        currency: c.currency.clone(),
        base_url: c.base_url.clone(),
        tolerance,
        at: now,
    };
    let after = json!({"name": c.name, "currency": c.currency.as_str(), "base_url": c.base_url,
        "tolerance": tolerance.to_string()});
    let change = Change {
        level: Level::Info,
        action: "recon.provider.set",
        subject: c.id.clone(),
        before: existing.map(provider_view),
        after: Some(after),
        reason: None,
    };
    p.record(Event::ProviderSet(Box::new(event)));
    audited(p, provider_entity(&c.id).id, existing.map_or(1, |o| o.version + 1), change, now)
}

fn leg(account: crate::AccountId, side: Side, amount: Decimal) -> PostingRequest {
    PostingRequest { account: AccountRef::Id(account), side, amount }
}

fn move_money(
    recon: &State,
    ledger_state: &crate::LedgerState,
    p: &mut Postings<'_>,
    c: &MoveMoney,
    now: Timestamp,
) -> Result<(), Rejection> {
    if let Some(m) = recon.movement(c.id) {
        let same = (&m.provider, m.direction, m.amount, &m.reason) == (&c.provider, c.direction, c.amount, &c.reason);
        return if same { Ok(()) } else { Err(Rejection::MovementExists) };
    }
    let provider = recon.provider(&c.provider).ok_or(Rejection::ProviderNotFound)?;
    if !valid_reason(&c.reason) {
        return Err(Rejection::InvalidReason);
    }
    let scale = p.currencies().scale(&provider.currency).ok_or(ledger::Rejection::UnknownCurrency)?;
    let amount = checked_amount(c.amount, scale).map_err(ledger::decide::amount_rejection)?;
    let (transactional, operational) = (transactional_account(&provider.id).0, operational_account(&provider.id).0);
    let held = p.account(transactional).map_or(Decimal::ZERO, |a| a.available());
    let players = ledger_state.attributed_to(&provider.id, &provider.currency);
    if c.direction == Direction::ToOperational && held - amount < players {
        return Err(Rejection::SegregationBreach);
    }
    let (from, to) = match c.direction {
        Direction::ToOperational => (transactional, operational),
        Direction::ToTransactional => (operational, transactional),
    };
    let transfer = movement_transfer(c.id);
    let hold = CreateTransfer {
        id: transfer,
        postings: vec![leg(to, Side::Debit, amount), leg(from, Side::Credit, amount)],
        pending: true,
        timeout_seconds: None,
        // The provider's statement names the movement by its id: so does the ledger's entry.
        external_ref: Some(c.id.to_string()),
        metadata: json!({"movement": c.id.to_string(), "provider": provider.id, "direction": c.direction.as_str()}),
    };
    p.execute(ledger::Command::CreateTransfer(hold), now)?;
    p.record(Event::MovementRequested(Box::new(MovementRequested {
        id: c.id,
        provider: provider.id.clone(),
        direction: c.direction,
        amount,
        currency: provider.currency.clone(),
        reason: c.reason.clone(),
        transfer,
        transactional: held,
        players,
        at: now,
    })));
    let change = Change {
        level: Level::Info,
        action: "recon.movement.requested",
        subject: c.id.to_string(),
        before: None,
        after: Some(json!({"provider": provider.id, "direction": c.direction.as_str(), "amount": amount.to_string(),
            "currency": provider.currency.as_str(), "transactional": held.to_string(), "players": players.to_string()})),
        reason: Some(&c.reason),
    };
    audited(p, movement_entity(c.id).id, 1, change, now)
}

fn record_attempt(recon: &State, p: &mut Postings<'_>, c: &Attempt, now: Timestamp) -> Result<(), Rejection> {
    let m = recon.movement(c.id).ok_or(Rejection::MovementNotFound)?;
    if m.status != MovementStatus::Pending {
        return Err(Rejection::MovementSettled);
    }
    let detail = match &c.outcome {
        Outcome::Succeeded => None,
        Outcome::Refused { reason } => Some(reason),
        Outcome::Error { error } => Some(error),
    };
    if !detail.is_none_or(|d| valid_reason(d)) {
        return Err(Rejection::InvalidReason);
    }
    let attempt = u32::try_from(m.attempts.len()).unwrap_or(u32::MAX).saturating_add(1);
    let step = |next_attempt_at| MovementStep { id: c.id, attempt, detail: detail.cloned(), next_attempt_at, at: now };
    match &c.outcome {
        Outcome::Succeeded => {
            p.execute(ledger::Command::PostPendingTransfer { pending_id: m.transfer, amount: None }, now)?;
            p.record(Event::Succeeded(Box::new(step(None))));
            settled(p, m, Level::Info, "recon.movement.succeeded", None, now)
        }
        Outcome::Refused { reason } => {
            p.execute(ledger::Command::VoidPendingTransfer { pending_id: m.transfer }, now)?;
            p.record(Event::Refused(Box::new(step(None))));
            settled(p, m, Level::Warning, "recon.movement.refused", Some(reason), now)
        }
        Outcome::Error { error } if attempt >= c.terms.max_attempts => {
            p.execute(ledger::Command::VoidPendingTransfer { pending_id: m.transfer }, now)?;
            p.record(Event::Failed(Box::new(step(None))));
            settled(p, m, Level::Critical, "recon.movement.failed", Some(error), now)
        }
        Outcome::Error { .. } => {
            let next = now.plus_seconds(c.terms.backoff(attempt));
            p.record(Event::AttemptFailed(Box::new(step(Some(next)))));
            Ok(())
        }
    }
}

/// The audit entry of a movement's end: critical when it failed after every attempt (which
/// reaches the alert webhook).
fn settled(
    p: &mut Postings<'_>,
    m: &Movement,
    level: Level,
    action: &'static str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let change = Change {
        level,
        action,
        subject: m.id.to_string(),
        before: Some(json!({"status": "pending"})),
        after: Some(json!({"provider": m.provider, "direction": m.direction.as_str(), "amount": m.amount.to_string(),
            "currency": m.currency.as_str(), "attempts": m.attempts.len() + 1})),
        reason,
    };
    audited(p, movement_entity(m.id).id, m.version + 1, change, now)
}

#[cfg(test)]
mod tests;
