//! `decide` for P2P orders: checks a command against the stores, traders, requisites, orders and
//! the ledger, moves money only through the ledger's own commands, and records what happened.
//! Pure: no I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - `UpsertStore`: `invalid_participant_id`, `invalid_reference` (name), `invalid_fee`,
//!   `invalid_callback_url`, `unknown_currency`; an existing store: `settlement_currency_fixed`,
//!   the same fields replay (no events); then the ledger's rules on opening its account.
//! - `RotateStoreSecret`: `invalid_participant_id`, `store_not_found`.
//! - `UpsertTrader`: `invalid_participant_id` (its id, its team lead), `invalid_fee`,
//!   `too_many_currencies`, `unknown_currency`; the same fields replay; then the ledger's rules on
//!   opening its deposit and rewards accounts.
//! - `UpsertRequisite`: `invalid_participant_id`, `trader_not_found`, `invalid_reference`
//!   (method, bank, masked details), `unknown_currency`, `invalid_limits`; the same fields replay.
//! - `Create`: `invalid_participant_id` (store, trader), `invalid_reference` (external order id,
//!   method), `invalid_callback_url`; the id exists: the same body replays, else `order_exists`;
//!   the store's external order id is another order's: `order_exists`; `store_not_found`;
//!   `amount_must_be_positive`, `unknown_currency`, `amount_scale`; `trader_not_found`;
//!   `no_exchange_rate`; `overflow`, `amount_too_small` (the settlement amount); then fraud: over
//!   `deny_over` the order is recorded `denied`, over `review_over` `manual_review`, both with
//!   nothing held; else assignment (`no_requisite_available`) and the hold (the ledger's rules:
//!   `insufficient_funds` of a pay-out's store).
//! - order commands: `order_not_found`, `invalid_reason`; the same command on an order already
//!   where it leads replays (no events); each command makes one transition of
//!   `state::TRANSITIONS` from one status, and on an order in any other status is
//!   `invalid_order_state` (`Complete` completes a pending order, never a disputed one); then:
//!   - `Approve`: assignment and hold as for `Create`.
//!   - `Complete`: `order_expired` (at or past its deadline), then the ledger's rules on posting.
//!   - `Cancel`, `Fail`: the ledger's rules on voiding the hold.
//!   - `Dispute`: `dispute_window_closed`.
//!   - `Resolve`: uphold replays only on an order whose dispute was upheld; reverse: the
//!     ledger's rules on the compensating entry (`insufficient_funds`: the dispute stays open).
//! - `SetTraffic`: `invalid_participant_id`, `trader_not_found`, `not_the_team_lead` (the
//!   trader is not, or no longer, in the team of the team lead named); the same value replays.
//! - `ExpireDue` never refuses: each due order's hold is voided and the order `expired`; one the
//!   ledger refuses to void (an operator froze an account) stays due.
//!
//! Audit: every admin change of a participant (`orders.store.create`, `orders.store.update`,
//! `orders.store.rotate_secret`, `orders.trader.upsert`, `orders.trader.traffic`,
//! `orders.requisite.upsert`, level `info`) and every manual decision (`orders.approve` and
//! `orders.uphold` at `info`, `orders.deny` and `orders.reverse` at `warning`), and the fraud
//! rule's denial at creation (`orders.fraud_deny`, `warning`), records its entry in the same
//! command, before the event it explains (`audit::entry_event`): who acted is the event's
//! metadata. An entry's id is derived from its entity, the entity's version after the change and
//! the action, so a retried command never records a second. Entries hold ids, statuses, fees,
//! limits and amounts, never a name, a URL, a method or a secret; a reason that looks like a
//! secret (`ldg_`, `whsec_`) is `invalid_reason`, and no id may hold one (`valid_id`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use uuid::Uuid;

use super::command::{Command, CreateOrder, OrderKind, Outcome, UpsertRequisite, UpsertStore, UpsertTrader};
use super::event::{
    Assignment, Event, OrderApproved, OrderCreated, OrderTransition, RequisiteUpserted, Split, StoreCreated,
    StoreSecretRotated, StoreUpdated, TraderUpserted,
};
use super::rejection::Rejection;
use super::state::{Order, Requisite, State, Status, Trader};
use super::{
    MAX_CURRENCIES, MAX_EXPIRED_PER_COMMAND, deposit_account, platform_account, requisite_entity, rewards_account,
    store_account, store_entity, trader_entity,
};
use crate::audit::{self, Level};
use crate::ids::{AccountId, OrderId, Timestamp};
use crate::money::{AmountError, CurrencyCode, checked_amount, max_amount};
use crate::postings::Postings;
use crate::text::{valid_reason, valid_text};
use crate::{AccountKind, AccountRef, AccountStatus, BalanceLimit, CreateTransfer, OpenAccount, PostingRequest, Side};
use crate::{TransferId, ledger};

pub fn decide(state: &crate::State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    let orders = &state.orders;
    match command {
        Command::UpsertStore(c) => upsert_store(orders, p, c, now),
        Command::RotateStoreSecret(c) => {
            let (id, secret) = &**c;
            check_id(id)?;
            let store = orders.store(id).ok_or(Rejection::StoreNotFound)?;
            let entry = Audit::info("orders.store.rotate_secret", format!("store:{id}"));
            audited(p, store_entity(id).id, store.version + 1, entry, now)
                .map_err(|_| Rejection::InvalidParticipantId)?;
            let rotated = StoreSecretRotated { id: id.clone(), secret: secret.clone(), at: now };
            p.record(Event::StoreSecretRotated(Box::new(rotated)));
            Ok(())
        }
        Command::UpsertTrader(c) => upsert_trader(orders, p, c, now),
        Command::UpsertRequisite(c) => upsert_requisite(orders, p, c, now),
        Command::SetTraffic { trader, enabled, team_lead } => {
            check_id(trader)?;
            let t = orders.trader(trader).ok_or(Rejection::TraderNotFound)?;
            if team_lead.as_ref().is_some_and(|lead| t.team_lead.as_ref() != Some(lead)) {
                return Err(Rejection::NotTheTeamLead);
            }
            if t.traffic_enabled == *enabled {
                return Ok(());
            }
            let entry = Audit {
                before: Some(json!({"traffic_enabled": t.traffic_enabled})),
                after: Some(json!({"traffic_enabled": enabled})),
                ..Audit::info("orders.trader.traffic", format!("trader:{trader}"))
            };
            audited(p, trader_entity(trader).id, t.version + 1, entry, now)
                .map_err(|_| Rejection::InvalidParticipantId)?;
            p.record(Event::TraderUpserted(Box::new(TraderUpserted {
                traffic_enabled: *enabled,
                at: now,
                ..trader_fields(t)
            })));
            Ok(())
        }
        Command::Create(c) => create(orders, p, c, now),
        Command::Approve { id } => {
            let order = order(orders, *id)?;
            if !transition(order, Status::ManualReview, Status::Pending)? {
                return Ok(());
            }
            let assignment = assign_and_hold(orders, p, &Wanted::of(order), now)?;
            let after = json!({"status": Status::Pending.as_str(), "trader": assignment.trader});
            decision(p, order, Level::Info, "orders.approve", after, None, now)?;
            p.record(Event::Approved(Box::new(OrderApproved { id: *id, assignment, at: now })));
            Ok(())
        }
        Command::Deny { id, reason } => {
            let order = order(orders, *id)?;
            check_reason(reason.as_deref())?;
            if transition(order, Status::ManualReview, Status::Denied)? {
                let after = json!({"status": Status::Denied.as_str()});
                decision(p, order, Level::Warning, "orders.deny", after, reason.as_deref(), now)?;
                p.record(Event::Denied(moved(*id, reason.clone(), None, now)));
            }
            Ok(())
        }
        Command::Complete { id } => {
            let order = order(orders, *id)?;
            if !transition(order, Status::Pending, Status::Completed)? {
                return Ok(());
            }
            let a = order.assignment.as_ref().expect("pending orders are assigned");
            if a.expires_at <= now {
                return Err(Rejection::OrderExpired);
            }
            p.execute(ledger::Command::PostPendingTransfer { pending_id: a.hold, amount: None }, now)?;
            p.record(Event::Completed(moved(*id, None, Some(a.hold), now)));
            Ok(())
        }
        Command::Cancel { id, reason } => release(orders, p, *id, reason.as_deref(), Status::Cancelled, now),
        Command::Fail { id, reason } => release(orders, p, *id, reason.as_deref(), Status::Failed, now),
        Command::Dispute { id, reason } => {
            let order = order(orders, *id)?;
            check_reason(Some(reason))?;
            if !transition(order, Status::Completed, Status::Disputed)? {
                return Ok(());
            }
            let completed = order.completed_at.expect("completed orders have a completion time");
            if completed.plus_seconds(order.dispute_window_hours.saturating_mul(3600)) < now {
                return Err(Rejection::DisputeWindowClosed);
            }
            p.record(Event::Disputed(moved(*id, Some(reason.clone()), None, now)));
            Ok(())
        }
        Command::Resolve { id, outcome, reason } => {
            let order = order(orders, *id)?;
            check_reason(Some(reason))?;
            let reason = Some(reason.clone());
            match outcome {
                Outcome::Uphold if order.status == Status::Completed => {
                    if order.upheld {
                        Ok(())
                    } else {
                        Err(Rejection::InvalidOrderState)
                    }
                }
                Outcome::Uphold => {
                    transition(order, Status::Disputed, Status::Completed)?;
                    let after = json!({"status": Status::Completed.as_str()});
                    decision(p, order, Level::Info, "orders.uphold", after, reason.as_deref(), now)?;
                    p.record(Event::DisputeUpheld(moved(*id, reason, None, now)));
                    Ok(())
                }
                Outcome::Reverse => {
                    if !transition(order, Status::Disputed, Status::Reversed)? {
                        return Ok(());
                    }
                    let (reversal, hold) = (id.reversal_transfer(), id.hold_transfer());
                    let metadata = serde_json::json!({"order": id.to_string(), "reverses": "completion"});
                    p.execute(ledger::Command::ReverseTransfer { id: reversal, transfer_id: hold, metadata }, now)?;
                    let after = json!({"status": Status::Reversed.as_str(), "reversal": reversal.to_string()});
                    decision(p, order, Level::Warning, "orders.reverse", after, reason.as_deref(), now)?;
                    p.record(Event::Reversed(moved(*id, reason, Some(reversal), now)));
                    Ok(())
                }
            }
        }
        Command::ExpireDue => {
            for id in orders.due(now).take(MAX_EXPIRED_PER_COMMAND) {
                let hold = id.hold_transfer();
                if p.execute(ledger::Command::VoidPendingTransfer { pending_id: hold }, now).is_ok() {
                    p.record(Event::Expired(moved(id, None, Some(hold), now)));
                }
            }
            Ok(())
        }
    }
}

/// Store, trader, team lead and requisite ids are the text rules' participant ids.
pub use crate::text::{ID_PATTERN, valid_id};

/// An audit entry of the domain, before its id.
type Audit<'a> = audit::Change<'a>;

/// The namespace of the ids of the orders' audit entries.
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x8d21_4b6e_0f9a_4c37_a5d8_3e7b_91c2_46f0);

/// Records an audit entry of the entity `entity` as its version becomes `version`.
fn audited(
    p: &mut Postings<'_>,
    entity: Uuid,
    version: u32,
    a: Audit<'_>,
    now: Timestamp,
) -> Result<(), audit::Rejection> {
    audit::record_change(p, &AUDIT_NAMESPACE, entity, version, a, now)
}

/// Records the audit entry of a manual decision on an order: its status before, and `after`.
fn decision(
    p: &mut Postings<'_>,
    order: &Order,
    level: Level,
    action: &'static str,
    after: Value,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let a = Audit {
        level,
        action,
        subject: format!("order:{}", order.id),
        before: Some(json!({"status": order.status.as_str()})),
        after: Some(after),
        reason,
    };
    // Ids and statuses never look like secrets: only the reason can.
    audited(p, order.id.0, order.version + 1, a, now).map_err(|_| Rejection::InvalidReason)
}

/// What a participant's audit entry says of a store.
fn store_fields(fee: Decimal, currency: &CurrencyCode) -> Value {
    json!({"fee": fee.to_string(), "settlement_currency": currency.as_str()})
}

/// What a participant's audit entry says of a trader.
fn trader_audit(t: &TraderUpserted) -> Value {
    json!({"fee": t.fee.to_string(), "priority": t.priority, "traffic_enabled": t.traffic_enabled,
        "team_lead": t.team_lead, "currencies": t.currencies})
}

/// A trader's fields as its next `TraderUpserted` starts from.
fn trader_fields(t: &Trader) -> TraderUpserted {
    TraderUpserted {
        id: t.id.clone(),
        fee: t.fee,
        priority: t.priority,
        traffic_enabled: t.traffic_enabled,
        team_lead: t.team_lead.clone(),
        currencies: t.currencies.clone(),
        at: t.at,
    }
}

/// Fees: a fraction from 0 (included) to 1 (excluded), at most 6 decimals.
pub fn valid_fee(fee: Decimal) -> bool {
    fee >= Decimal::ZERO && fee < Decimal::ONE && fee.normalize().scale() <= 6
}

fn check_id(id: &str) -> Result<(), Rejection> {
    if valid_id(id) { Ok(()) } else { Err(Rejection::InvalidParticipantId) }
}

fn check_url(url: Option<&str>) -> Result<(), Rejection> {
    if url.is_none_or(crate::text::valid_url) { Ok(()) } else { Err(Rejection::InvalidCallbackUrl) }
}

fn check_reason(reason: Option<&str>) -> Result<(), Rejection> {
    if reason.is_none_or(valid_reason) { Ok(()) } else { Err(Rejection::InvalidReason) }
}

fn scale(p: &Postings<'_>, currency: &CurrencyCode) -> Result<u32, Rejection> {
    p.currencies().scale(currency).ok_or(Rejection::Ledger(ledger::Rejection::UnknownCurrency))
}

fn amount_rejection(e: AmountError) -> Rejection {
    Rejection::Ledger(match e {
        AmountError::NotPositive => ledger::Rejection::AmountMustBePositive,
        AmountError::Scale => ledger::Rejection::AmountScale,
        AmountError::Overflow => ledger::Rejection::Overflow,
        AmountError::UnknownCurrency => ledger::Rejection::UnknownCurrency,
    })
}

fn order(orders: &State, id: OrderId) -> Result<&Order, Rejection> {
    orders.order(id).ok_or(Rejection::OrderNotFound)
}

/// Whether a command taking orders from `from` to `to` goes on (true) or replays (false: the
/// order is already there). Each command makes one transition of the table, from one status.
fn transition(order: &Order, from: Status, to: Status) -> Result<bool, Rejection> {
    assert!(from.may_become(to), "{from:?} to {to:?} is not in the transition table");
    if order.status == to {
        Ok(false)
    } else if order.status == from {
        Ok(true)
    } else {
        Err(Rejection::InvalidOrderState)
    }
}

fn moved(id: OrderId, reason: Option<String>, transfer: Option<TransferId>, at: Timestamp) -> Box<OrderTransition> {
    Box::new(OrderTransition { id, reason, transfer, at })
}

/// Opens an account of the domain unless this command's postings already see it.
fn ensure_open(
    p: &mut Postings<'_>,
    (id, code): (AccountId, String),
    currency: &CurrencyCode,
    kind: AccountKind,
    now: Timestamp,
) -> Result<(), Rejection> {
    if p.account(id).is_some() {
        return Ok(());
    }
    let limit = if kind == AccountKind::Income { BalanceLimit::None } else { BalanceLimit::DebitsMustNotExceedCredits };
    let open = OpenAccount {
        id,
        code,
        currency: currency.clone(),
        kind,
        limit,
        metadata: serde_json::json!({"domain": "orders"}),
    };
    p.execute(ledger::Command::OpenAccount(open), now)?;
    Ok(())
}

fn upsert_store(orders: &State, p: &mut Postings<'_>, c: &UpsertStore, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.id)?;
    if !valid_text(&c.name) {
        return Err(Rejection::InvalidReference);
    }
    if !valid_fee(c.fee) {
        return Err(Rejection::InvalidFee);
    }
    check_url(c.callback_url.as_deref())?;
    scale(p, &c.settlement_currency)?;
    if let Some(store) = orders.store(&c.id) {
        if store.settlement_currency != c.settlement_currency {
            return Err(Rejection::SettlementCurrencyFixed);
        }
        if store.name == c.name && store.fee == c.fee && store.callback_url == c.callback_url {
            return Ok(());
        }
        let entry = Audit {
            before: Some(store_fields(store.fee, &store.settlement_currency)),
            after: Some(store_fields(c.fee, &c.settlement_currency)),
            ..Audit::info("orders.store.update", format!("store:{}", c.id))
        };
        audited(p, store_entity(&c.id).id, store.version + 1, entry, now)
            .map_err(|_| Rejection::InvalidParticipantId)?;
        let updated = StoreUpdated {
            id: c.id.clone(),
            name: c.name.clone(),
            fee: c.fee,
            callback_url: c.callback_url.clone(),
            at: now,
        };
        p.record(Event::StoreUpdated(Box::new(updated)));
        return Ok(());
    }
    let currency = &c.settlement_currency;
    ensure_open(p, store_account(&c.id, currency), currency, AccountKind::Liability, now)?;
    let entry = Audit {
        after: Some(store_fields(c.fee, currency)),
        ..Audit::info("orders.store.create", format!("store:{}", c.id))
    };
    audited(p, store_entity(&c.id).id, 1, entry, now).map_err(|_| Rejection::InvalidParticipantId)?;
    p.record(Event::StoreCreated(Box::new(StoreCreated {
        id: c.id.clone(),
        name: c.name.clone(),
        fee: c.fee,
        settlement_currency: currency.clone(),
        callback_url: c.callback_url.clone(),
        secret: c.secret.clone(),
        at: now,
    })));
    Ok(())
}

fn upsert_trader(orders: &State, p: &mut Postings<'_>, c: &UpsertTrader, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.id)?;
    if c.team_lead.as_deref().is_some_and(|t| !valid_id(t)) {
        return Err(Rejection::InvalidParticipantId);
    }
    if !valid_fee(c.fee) {
        return Err(Rejection::InvalidFee);
    }
    if c.currencies.len() > MAX_CURRENCIES {
        return Err(Rejection::TooManyCurrencies);
    }
    for currency in &c.currencies {
        scale(p, currency)?;
    }
    let mut currencies = c.currencies.clone();
    currencies.sort();
    currencies.dedup();
    let before = orders.trader(&c.id);
    if let Some(t) = before
        && t.fee == c.fee
        && t.priority == c.priority
        && t.traffic_enabled == c.traffic_enabled
        && t.team_lead == c.team_lead
        && t.currencies == currencies
    {
        return Ok(());
    }
    for currency in &currencies {
        ensure_open(p, deposit_account(&c.id, currency), currency, AccountKind::Liability, now)?;
        ensure_open(p, rewards_account(&c.id, currency), currency, AccountKind::Liability, now)?;
    }
    let upserted = TraderUpserted {
        id: c.id.clone(),
        fee: c.fee,
        priority: c.priority,
        traffic_enabled: c.traffic_enabled,
        team_lead: c.team_lead.clone(),
        currencies,
        at: now,
    };
    let entry = Audit {
        before: before.map(|t| trader_audit(&trader_fields(t))),
        after: Some(trader_audit(&upserted)),
        ..Audit::info("orders.trader.upsert", format!("trader:{}", c.id))
    };
    let version = before.map_or(0, |t| t.version) + 1;
    audited(p, trader_entity(&c.id).id, version, entry, now).map_err(|_| Rejection::InvalidParticipantId)?;
    p.record(Event::TraderUpserted(Box::new(upserted)));
    Ok(())
}

fn upsert_requisite(
    orders: &State,
    p: &mut Postings<'_>,
    c: &UpsertRequisite,
    now: Timestamp,
) -> Result<(), Rejection> {
    check_id(&c.trader)?;
    check_id(&c.id)?;
    orders.trader(&c.trader).ok_or(Rejection::TraderNotFound)?;
    if !valid_text(&c.method) || !valid_text(&c.bank) || !valid_text(&c.masked) {
        return Err(Rejection::InvalidReference);
    }
    let scale = scale(p, &c.currency)?;
    let limit = |a: Decimal| checked_amount(a, scale).map_err(|_| Rejection::InvalidLimits);
    let (min, max, daily) = (limit(c.min_amount)?, limit(c.max_amount)?, limit(c.daily_limit)?);
    if min > max || max > daily {
        return Err(Rejection::InvalidLimits);
    }
    let before = orders.requisite(&c.trader, &c.id);
    if let Some(r) = before
        && r.method == c.method
        && r.bank == c.bank
        && r.currency == c.currency
        && (r.min_amount, r.max_amount, r.daily_limit) == (min, max, daily)
        && r.enabled == c.enabled
        && r.details == c.details
        && r.masked == c.masked
    {
        return Ok(());
    }
    let limits = |currency: &CurrencyCode, min: Decimal, max: Decimal, daily: Decimal, enabled: bool| {
        json!({"currency": currency.as_str(), "min_amount": min.to_string(), "max_amount": max.to_string(),
            "daily_limit": daily.to_string(), "enabled": enabled})
    };
    let entry = Audit {
        before: before.map(|r| limits(&r.currency, r.min_amount, r.max_amount, r.daily_limit, r.enabled)),
        after: Some(limits(&c.currency, min, max, daily, c.enabled)),
        ..Audit::info("orders.requisite.upsert", format!("requisite:{}/{}", c.trader, c.id))
    };
    let (entity, version) = (requisite_entity(&c.trader, &c.id).id, before.map_or(0, |r| r.version) + 1);
    audited(p, entity, version, entry, now).map_err(|_| Rejection::InvalidParticipantId)?;
    p.record(Event::RequisiteUpserted(Box::new(RequisiteUpserted {
        trader: c.trader.clone(),
        id: c.id.clone(),
        method: c.method.clone(),
        bank: c.bank.clone(),
        currency: c.currency.clone(),
        min_amount: min,
        max_amount: max,
        daily_limit: daily,
        enabled: c.enabled,
        details: c.details.clone(),
        masked: c.masked.clone(),
        at: now,
    })));
    Ok(())
}

/// Whether a retried `Create` asks for exactly what the order holds (the terms aside: a retry
/// answers the original whatever the rate is now).
fn same_order(o: &Order, c: &CreateOrder) -> bool {
    o.store == c.store
        && o.kind == c.kind
        && o.external_order_id == c.external_order_id
        && o.amount == c.amount
        && o.currency == c.currency
        && o.method == c.method
        && o.requested_trader == c.trader
        && o.callback_url == c.callback_url
}

/// The settlement amount of a fiat amount at a rate: amount / rate, rounded down to `scale`.
pub fn settlement_amount(amount: Decimal, rate: Decimal, scale: u32) -> Result<Decimal, Rejection> {
    let overflow = Rejection::Ledger(ledger::Rejection::Overflow);
    let mut settled = amount.checked_div(rate).ok_or(overflow)?.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    if settled > max_amount() {
        return Err(overflow);
    }
    if settled.is_zero() {
        return Err(Rejection::AmountTooSmall);
    }
    settled.rescale(scale);
    Ok(settled)
}

fn create(orders: &State, p: &mut Postings<'_>, c: &CreateOrder, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.store)?;
    if c.trader.as_deref().is_some_and(|t| !valid_id(t)) {
        return Err(Rejection::InvalidParticipantId);
    }
    if !valid_text(&c.external_order_id) || c.method.as_deref().is_some_and(|m| !valid_text(m)) {
        return Err(Rejection::InvalidReference);
    }
    check_url(c.callback_url.as_deref())?;
    if let Some(existing) = orders.order(c.id) {
        return if same_order(existing, c) { Ok(()) } else { Err(Rejection::OrderExists) };
    }
    if orders.by_external(&c.store, &c.external_order_id).is_some() {
        return Err(Rejection::OrderExists);
    }
    let store = orders.store(&c.store).ok_or(Rejection::StoreNotFound)?;
    if c.amount <= Decimal::ZERO {
        return Err(Rejection::Ledger(ledger::Rejection::AmountMustBePositive));
    }
    let amount = checked_amount(c.amount, scale(p, &c.currency)?).map_err(amount_rejection)?;
    if let Some(trader) = &c.trader {
        orders.trader(trader).ok_or(Rejection::TraderNotFound)?;
    }
    let rate = c.terms.rate.filter(|r| *r > Decimal::ZERO).ok_or(Rejection::NoExchangeRate)?;
    let settlement_currency = store.settlement_currency.clone();
    let settled = settlement_amount(amount, rate, scale(p, &settlement_currency)?)?;
    let status = if c.terms.deny_over.is_some_and(|limit| amount > limit) {
        Status::Denied
    } else if c.terms.review_over.is_some_and(|limit| amount > limit) {
        Status::ManualReview
    } else {
        Status::Pending
    };
    let created = OrderCreated {
        id: c.id,
        store: c.store.clone(),
        kind: c.kind,
        external_order_id: c.external_order_id.clone(),
        amount,
        currency: c.currency.clone(),
        method: c.method.clone(),
        requested_trader: c.trader.clone(),
        callback_url: c.callback_url.clone(),
        rate,
        settlement_amount: settled,
        settlement_currency,
        store_fee: store.fee,
        timeout_seconds: c.terms.timeout_seconds,
        dispute_window_hours: c.terms.dispute_window_hours,
        status,
        assignment: None,
        at: now,
    };
    let assignment = match status {
        Status::Pending => Some(assign_and_hold(orders, p, &Wanted::created(&created), now)?),
        _ => None,
    };
    if status == Status::Denied {
        let entry = Audit {
            level: Level::Warning,
            after: Some(json!({"status": Status::Denied.as_str(), "amount": amount.to_string(),
                "currency": c.currency.as_str(), "deny_over": c.terms.deny_over.map(|d| d.to_string())})),
            ..Audit::info("orders.fraud_deny", format!("order:{}", c.id))
        };
        audited(p, c.id.0, 1, entry, now).map_err(|_| Rejection::InvalidReference)?;
    }
    p.record(Event::Created(Box::new(OrderCreated { assignment, ..created })));
    Ok(())
}

/// What assignment and the hold need of an order.
pub struct Wanted<'a> {
    pub id: OrderId,
    pub store: &'a str,
    pub kind: OrderKind,
    pub amount: Decimal,
    pub currency: &'a CurrencyCode,
    pub method: Option<&'a str>,
    pub trader: Option<&'a str>,
    pub settlement_amount: Decimal,
    pub settlement_currency: &'a CurrencyCode,
    pub store_fee: Decimal,
    pub timeout_seconds: u32,
}

impl<'a> Wanted<'a> {
    fn of(o: &'a Order) -> Wanted<'a> {
        Wanted {
            id: o.id,
            store: &o.store,
            kind: o.kind,
            amount: o.amount,
            currency: &o.currency,
            method: o.method.as_deref(),
            trader: o.requested_trader.as_deref(),
            settlement_amount: o.settlement_amount,
            settlement_currency: &o.settlement_currency,
            store_fee: o.store_fee,
            timeout_seconds: o.timeout_seconds,
        }
    }

    fn created(o: &'a OrderCreated) -> Wanted<'a> {
        Wanted {
            id: o.id,
            store: &o.store,
            kind: o.kind,
            amount: o.amount,
            currency: &o.currency,
            method: o.method.as_deref(),
            trader: o.requested_trader.as_deref(),
            settlement_amount: o.settlement_amount,
            settlement_currency: &o.settlement_currency,
            store_fee: o.store_fee,
            timeout_seconds: o.timeout_seconds,
        }
    }
}

/// The requisite that takes an order now, and its trader: among the enabled requisites of the
/// order's fiat currency (and method, and trader, when the order names them) whose trader has
/// traffic on, that take the amount (`min_amount ≤ amount ≤ max_amount`), whose turnover today
/// plus the amount stays within the daily limit and, for a pay-in, whose trader's open deposit
/// has the settlement amount available: the lowest priority, then the requisite used longest ago
/// (never used first), then by trader and requisite id.
pub fn assign<'s>(
    orders: &'s State,
    p: &Postings<'_>,
    w: &Wanted<'_>,
    now: Timestamp,
) -> Option<(&'s Trader, &'s Requisite)> {
    let funded = |trader: &Trader| {
        w.kind == OrderKind::PayOut
            || p.account(deposit_account(&trader.id, w.settlement_currency).0)
                .is_some_and(|a| a.status == AccountStatus::Open && a.available() >= w.settlement_amount)
    };
    let candidates: Vec<(&Trader, &Requisite)> = orders
        .requisites()
        .filter(|r| r.enabled && r.currency == *w.currency)
        .filter(|r| w.method.is_none_or(|m| m == r.method) && w.trader.is_none_or(|t| t == r.trader))
        .filter(|r| r.min_amount <= w.amount && w.amount <= r.max_amount)
        .filter(|r| r.turnover(now).checked_add(w.amount).is_some_and(|t| t <= r.daily_limit))
        .filter_map(|r| orders.trader(&r.trader).filter(|t| t.traffic_enabled).map(|t| (t, r)))
        .collect();
    // Best first; a deposit is looked at (its account id is a hash) only until one is funded.
    let mut best: BinaryHeap<Reverse<(Rank<'_>, usize)>> = candidates
        .iter()
        .enumerate()
        .map(|(i, (t, r))| Reverse(((t.priority, r.last_used_at, r.trader.as_str(), r.id.as_str()), i)))
        .collect();
    while let Some(Reverse((_, i))) = best.pop() {
        if funded(candidates[i].0) {
            return Some(candidates[i]);
        }
    }
    None
}

/// How a candidate ranks in assignment, best (least) first: priority, last use (never used
/// first), trader, requisite.
type Rank<'a> = (u32, Option<Timestamp>, &'a str, &'a str);

/// The split of a settlement amount: the store's fee and the trader's reward, each rounded half
/// to even at `scale`, and the platform's share, the remainder `store_fee − trader_reward`.
pub fn split(amount: Decimal, store_fee: Decimal, trader_fee: Decimal, scale: u32) -> Option<Split> {
    let round = |x: Decimal| {
        let mut r = x.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
        r.rescale(scale);
        r
    };
    let store_fee = round(amount.checked_mul(store_fee)?);
    let trader_reward = round(amount.checked_mul(trader_fee)?);
    Some(Split { store_fee, trader_reward, platform: store_fee.checked_sub(trader_reward)? })
}

/// The accounts of an order's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accounts {
    pub store: AccountId,
    pub deposit: AccountId,
    pub rewards: AccountId,
    pub platform: AccountId,
}

/// The completion entry of `amount` split by `split`. Pay-in: the deposit pays `amount`, the
/// store gets it less its fee. Pay-out: the store pays `amount` and its fee, the deposit gets
/// `amount`. The trader's rewards get its reward and the platform the rest: a credit, or a debit
/// when the rest is negative. Zero legs are left out.
pub fn legs(kind: OrderKind, accounts: &Accounts, amount: Decimal, split: &Split) -> Vec<PostingRequest> {
    let leg = |account: AccountId, side: Side, amount: Decimal| PostingRequest {
        account: AccountRef::Id(account),
        side,
        amount,
    };
    let mut legs = match kind {
        OrderKind::PayIn => {
            vec![
                leg(accounts.deposit, Side::Debit, amount),
                leg(accounts.store, Side::Credit, amount - split.store_fee),
            ]
        }
        OrderKind::PayOut => {
            vec![
                leg(accounts.store, Side::Debit, amount + split.store_fee),
                leg(accounts.deposit, Side::Credit, amount),
            ]
        }
    };
    legs.push(leg(accounts.rewards, Side::Credit, split.trader_reward));
    if split.platform.is_sign_negative() {
        legs.push(leg(accounts.platform, Side::Debit, -split.platform));
    } else {
        legs.push(leg(accounts.platform, Side::Credit, split.platform));
    }
    legs.retain(|l| !l.amount.is_zero());
    legs
}

/// Assigns the order and holds its completion entry, pending.
fn assign_and_hold(
    orders: &State,
    p: &mut Postings<'_>,
    w: &Wanted<'_>,
    now: Timestamp,
) -> Result<Assignment, Rejection> {
    let (trader, requisite) = assign(orders, p, w, now).ok_or(Rejection::NoRequisiteAvailable)?;
    let currency = w.settlement_currency;
    let overflow = Rejection::Ledger(ledger::Rejection::Overflow);
    let split = split(w.settlement_amount, w.store_fee, trader.fee, scale(p, currency)?).ok_or(overflow)?;
    let (store, deposit, rewards, platform) = (
        store_account(w.store, currency),
        deposit_account(&trader.id, currency),
        rewards_account(&trader.id, currency),
        platform_account(currency),
    );
    let accounts = Accounts { store: store.0, deposit: deposit.0, rewards: rewards.0, platform: platform.0 };
    ensure_open(p, store, currency, AccountKind::Liability, now)?;
    ensure_open(p, deposit, currency, AccountKind::Liability, now)?;
    ensure_open(p, rewards, currency, AccountKind::Liability, now)?;
    ensure_open(p, platform, currency, AccountKind::Income, now)?;
    let hold = w.id.hold_transfer();
    let entry = CreateTransfer {
        id: hold,
        postings: legs(w.kind, &accounts, w.settlement_amount, &split),
        pending: true,
        timeout_seconds: None,
        external_ref: None,
        metadata: serde_json::json!({"order": w.id.to_string(), "store": w.store, "trader": trader.id}),
    };
    p.execute(ledger::Command::CreateTransfer(entry), now)?;
    Ok(Assignment {
        trader: trader.id.clone(),
        requisite: requisite.id.clone(),
        masked: requisite.masked.clone(),
        trader_fee: trader.fee,
        split,
        hold,
        expires_at: now.plus_seconds(w.timeout_seconds),
    })
}

/// Cancel or fail a pending order: its hold is voided.
fn release(
    orders: &State,
    p: &mut Postings<'_>,
    id: OrderId,
    reason: Option<&str>,
    to: Status,
    now: Timestamp,
) -> Result<(), Rejection> {
    let order = order(orders, id)?;
    check_reason(reason)?;
    if !transition(order, Status::Pending, to)? {
        return Ok(());
    }
    let hold = id.hold_transfer();
    p.execute(ledger::Command::VoidPendingTransfer { pending_id: hold }, now)?;
    let event = moved(id, reason.map(str::to_owned), Some(hold), now);
    p.record(if to == Status::Cancelled { Event::Cancelled(event) } else { Event::Failed(event) });
    Ok(())
}

#[cfg(test)]
mod tests;
