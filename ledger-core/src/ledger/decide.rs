//! `decide`: checks a command against the state and returns the events it produces, or the
//! first rejection in a fixed order. Pure: no I/O, no clock (`now` is passed in).
//!
//! Check order for `CreateTransfer` (the first failing check names the rejection):
//!  1. `id_must_not_be_nil`
//!  2. `too_few_postings`, `too_many_postings`
//!  3. `amount_must_be_positive`
//!  4. `timeout_reserved_for_pending_transfer`, `timeout_too_long`, `invalid_external_ref`, `invalid_metadata`
//!  5. the id exists: the same fields replay the original (no events), else `exists_with_different_fields`
//!  6. `account_not_found`
//!  7. `same_account_on_both_sides`
//!  8. `currency_mismatch` (the debit side's currencies differ from the credit side's)
//!  9. `amount_scale`, `overflow` (per posting, at its account's currency scale)
//! 10. `unbalanced` (debits equal credits in every currency)
//! 11. `account_closed`, `account_frozen` (per posting, in order)
//! 12. `overflow` of a running total, then `insufficient_funds` (a no-overdraft limit)
//!
//! `PostPendingTransfer`: nil id; `pending_transfer_not_found`; `pending_transfer_not_pending`;
//! already posted (the same amount replays, else `pending_transfer_already_posted`),
//! `pending_transfer_already_voided`, `pending_transfer_expired`; `amount_must_be_positive`;
//! `partial_post_requires_simple_transfer`; `amount_scale`; `post_amount_exceeds_pending`;
//! the timeout has passed (`pending_transfer_expired`); then steps 11 and 12.
//! `OpenAccount`: nil id; `invalid_account_code`; `unknown_currency`; `invalid_metadata`; the id
//! exists (same fields replay, else `exists_with_different_fields`); `account_code_exists`.
//! `FreezeAccount`, `UnfreezeAccount`, `CloseAccount`: `invalid_reason`; `account_not_found`;
//! the same status replays (no events); `account_closed`; closing needs `account_balance_not_zero`.
//! `VoidPendingTransfer`: the same up to the status (voided replays); the timeout has passed.
//! `ReverseTransfer`: nil ids; `invalid_metadata`; the id exists (same original and metadata replays);
//! `transfer_not_found`; `transfer_not_posted`; `transfer_already_reversed`; then steps 11 and 12.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use crate::ids::{AccountId, Timestamp, TransferId};
use crate::ledger::account::valid_account_code;
use crate::ledger::account::{Account, AccountStatus, Side};
use crate::ledger::command::{AccountRef, Command, CreateTransfer, OpenAccount};
use crate::ledger::event::{
    AccountOpened, AccountStatusChanged, Event, PendingPosted, PendingReleased, TransferCreated,
};
use crate::ledger::rejection::Rejection;
use crate::ledger::state::{LedgerState, event_deltas};
use crate::ledger::transfer::{MAX_BATCH, MAX_POSTINGS, MAX_TIMEOUT_SECONDS, Posting, Transfer, TransferStatus};
use crate::money::{AmountError, CurrencyCode, checked_amount};

/// At most this many transfers expire in one `ExpirePendingTransfers`.
pub const MAX_EXPIRED_PER_COMMAND: usize = 1024;

pub fn decide(state: &LedgerState, command: &Command, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::OpenAccount(open) => open_account(state, open, now),
        Command::FreezeAccount { id, reason } => change_status(state, *id, AccountStatus::Frozen, reason, now),
        Command::UnfreezeAccount { id, reason } => change_status(state, *id, AccountStatus::Open, reason, now),
        Command::CloseAccount { id, reason } => change_status(state, *id, AccountStatus::Closed, reason, now),
        Command::CreateTransfer(t) => create_transfer(state, t, now),
        Command::PostPendingTransfer { pending_id, amount } => post_pending(state, *pending_id, *amount, now),
        Command::VoidPendingTransfer { pending_id } => void_pending(state, *pending_id, now),
        Command::ReverseTransfer { id, transfer_id, metadata } => reverse(state, *id, *transfer_id, metadata, now),
        Command::ExpirePendingTransfers => Ok(state
            .expired_pending(now)
            .take(MAX_EXPIRED_PER_COMMAND)
            .map(|id| Event::PendingTransferExpired(PendingReleased { id, at: now }))
            .collect()),
    }
}

/// `decide`, then `apply` what it decided.
pub fn execute(state: &mut LedgerState, command: &Command, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    let events = decide(state, command, now)?;
    for event in &events {
        state.apply(event);
    }
    Ok(events)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// All transfers succeed or none does.
    Linked,
    /// Each transfer succeeds or fails on its own.
    Independent,
}

/// Executes a batch of transfers in order. Linked: on the first rejection nothing is applied,
/// that item gets its rejection and every other item `linked_event_failed`.
pub fn execute_batch(
    state: &mut LedgerState,
    items: &[CreateTransfer],
    mode: BatchMode,
    now: Timestamp,
) -> Result<Vec<Result<Vec<Event>, Rejection>>, Rejection> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Rejection::BatchSize);
    }
    match mode {
        BatchMode::Independent => {
            Ok(items.iter().map(|t| execute(state, &Command::CreateTransfer(t.clone()), now)).collect())
        }
        BatchMode::Linked => {
            let accounts = items.iter().flat_map(|t| t.postings.iter().map(|p| &p.account));
            let mut scratch = state.subset(accounts, items.iter().map(|t| t.id));
            let mut results = Vec::with_capacity(items.len());
            for (i, t) in items.iter().enumerate() {
                match execute(&mut scratch, &Command::CreateTransfer(t.clone()), now) {
                    Ok(events) => results.push(Ok(events)),
                    Err(rejection) => {
                        let mut failed = vec![Err(Rejection::LinkedEventFailed); items.len()];
                        failed[i] = Err(rejection);
                        return Ok(failed);
                    }
                }
            }
            for event in results.iter().flatten().flatten() {
                state.apply(event);
            }
            Ok(results)
        }
    }
}

fn open_account(state: &LedgerState, open: &OpenAccount, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    if open.id.0.is_nil() {
        return Err(Rejection::IdMustNotBeNil);
    }
    if !valid_account_code(&open.code) {
        return Err(Rejection::InvalidAccountCode);
    }
    if state.currencies().scale(&open.currency).is_none() {
        return Err(Rejection::UnknownCurrency);
    }
    check_metadata(&open.metadata)?;
    if let Some(existing) = state.account(open.id) {
        let same = existing.code == open.code
            && existing.currency == open.currency
            && existing.kind == open.kind
            && existing.limit == open.limit
            && existing.metadata == open.metadata;
        return if same { Ok(vec![]) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    if state.resolve(&AccountRef::Code(open.code.clone())).is_some() {
        return Err(Rejection::AccountCodeExists);
    }
    Ok(vec![Event::AccountOpened(AccountOpened {
        id: open.id,
        code: open.code.clone(),
        currency: open.currency.clone(),
        kind: open.kind,
        limit: open.limit,
        metadata: open.metadata.clone(),
        at: now,
    })])
}

fn change_status(
    state: &LedgerState,
    id: AccountId,
    to: AccountStatus,
    reason: &Option<String>,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    if reason.as_deref().is_some_and(|r| !crate::text::valid_reason(r)) {
        return Err(Rejection::InvalidReason);
    }
    let account = state.account(id).ok_or(Rejection::AccountNotFound)?;
    let changed = AccountStatusChanged { id, reason: reason.clone(), at: now };
    match (account.status, to) {
        (from, to) if from == to => Ok(vec![]),
        (AccountStatus::Closed, _) => Err(Rejection::AccountClosed),
        (_, AccountStatus::Frozen) => Ok(vec![Event::AccountFrozen(changed)]),
        (_, AccountStatus::Open) => Ok(vec![Event::AccountUnfrozen(changed)]),
        (_, AccountStatus::Closed) if !account.balances.is_zero() => Err(Rejection::AccountBalanceNotZero),
        (_, AccountStatus::Closed) => Ok(vec![Event::AccountClosed(changed)]),
    }
}

fn create_transfer(state: &LedgerState, t: &CreateTransfer, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    if t.id.0.is_nil() {
        return Err(Rejection::IdMustNotBeNil);
    }
    if t.postings.len() < 2 {
        return Err(Rejection::TooFewPostings);
    }
    if t.postings.len() > MAX_POSTINGS {
        return Err(Rejection::TooManyPostings);
    }
    if t.postings.iter().any(|p| p.amount <= Decimal::ZERO) {
        return Err(Rejection::AmountMustBePositive);
    }
    let timeout_seconds = t.timeout_seconds.filter(|s| *s > 0);
    if timeout_seconds.is_some() && !t.pending {
        return Err(Rejection::TimeoutReservedForPendingTransfer);
    }
    if timeout_seconds.is_some_and(|s| s > MAX_TIMEOUT_SECONDS) {
        return Err(Rejection::TimeoutTooLong);
    }
    if let Some(external_ref) = &t.external_ref
        && !valid_external_ref(external_ref)
    {
        return Err(Rejection::InvalidExternalRef);
    }
    check_metadata(&t.metadata)?;
    if let Some(existing) = state.transfer(t.id) {
        return if same_transfer(state, existing, t) { Ok(vec![]) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    let accounts = t
        .postings
        .iter()
        .map(|p| state.resolve(&p.account).ok_or(Rejection::AccountNotFound))
        .collect::<Result<Vec<&Account>, _>>()?;
    let sides = |side: Side| -> BTreeSet<AccountId> {
        t.postings.iter().zip(&accounts).filter(|(p, _)| p.side == side).map(|(_, a)| a.id).collect()
    };
    if !sides(Side::Debit).is_disjoint(&sides(Side::Credit)) {
        return Err(Rejection::SameAccountOnBothSides);
    }
    let currencies = |side: Side| -> BTreeSet<&CurrencyCode> {
        t.postings.iter().zip(&accounts).filter(|(p, _)| p.side == side).map(|(_, a)| &a.currency).collect()
    };
    if currencies(Side::Debit) != currencies(Side::Credit) {
        return Err(Rejection::CurrencyMismatch);
    }
    let mut postings = Vec::with_capacity(t.postings.len());
    for (p, account) in t.postings.iter().zip(&accounts) {
        let scale = state.currencies().scale(&account.currency).expect("accounts hold configured currencies");
        let amount = checked_amount(p.amount, scale).map_err(amount_rejection)?;
        postings.push(Posting { account: account.id, side: p.side, amount });
    }
    let mut sums: BTreeMap<&CurrencyCode, Decimal> = BTreeMap::new();
    for (p, account) in postings.iter().zip(&accounts) {
        let signed = if p.side == Side::Debit { p.amount } else { -p.amount };
        let sum = sums.entry(&account.currency).or_default();
        *sum = sum.checked_add(signed).ok_or(Rejection::Overflow)?;
    }
    if sums.values().any(|s| !s.is_zero()) {
        return Err(Rejection::Unbalanced);
    }
    let created = TransferCreated {
        id: t.id,
        postings,
        timeout_at: timeout_seconds.map(|s| now.plus_seconds(s)),
        reverses: None,
        external_ref: t.external_ref.clone(),
        metadata: t.metadata.clone(),
        at: now,
    };
    let event = if t.pending { Event::PendingTransferCreated(created) } else { Event::TransferPosted(created) };
    checked_effects(state, event)
}

/// Whether a retried `CreateTransfer` asks for exactly what the existing transfer holds.
fn same_transfer(state: &LedgerState, existing: &Transfer, t: &CreateTransfer) -> bool {
    let timeout_at = t.timeout_seconds.filter(|s| *s > 0).map(|s| existing.created_at.plus_seconds(s));
    existing.reverses.is_none()
        && existing.pending == t.pending
        && existing.timeout_at == timeout_at
        && existing.external_ref == t.external_ref
        && existing.metadata == t.metadata
        && existing.postings.len() == t.postings.len()
        && existing.postings.iter().zip(&t.postings).all(|(have, want)| {
            have.side == want.side
                && have.amount == want.amount
                && state.resolve(&want.account).is_some_and(|a| a.id == have.account)
        })
}

/// Largest serialized metadata accepted on an account or a transfer.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The JSON Schema pattern of a key or string [`check_metadata`] stores: no NUL.
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

/// Metadata is free JSON, but an object (or null), bounded, and storable: Postgres' JSONB
/// refuses NUL characters ([`NO_NUL_PATTERN`]), and one bad value must never fail a whole group
/// commit.
pub fn check_metadata(metadata: &serde_json::Value) -> Result<(), Rejection> {
    fn storable(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => !s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().all(storable),
            serde_json::Value::Object(map) => map.iter().all(|(k, v)| !k.contains('\0') && storable(v)),
            _ => true,
        }
    }
    let shape = matches!(metadata, serde_json::Value::Object(_) | serde_json::Value::Null);
    if shape && storable(metadata) && metadata.to_string().len() <= MAX_METADATA_BYTES {
        Ok(())
    } else {
        Err(Rejection::InvalidMetadata)
    }
}

/// The most characters of a transfer's external reference.
pub const EXTERNAL_REF_MAX_CHARS: usize = 256;

/// 1 to [`EXTERNAL_REF_MAX_CHARS`] characters, no control characters
/// ([`crate::text::NO_CONTROLS_PATTERN`]).
pub fn valid_external_ref(external_ref: &str) -> bool {
    crate::text::within(external_ref, EXTERNAL_REF_MAX_CHARS)
}

/// Why an amount is refused, as the ledger says it (every domain's amounts too).
pub fn amount_rejection(e: AmountError) -> Rejection {
    match e {
        AmountError::NotPositive => Rejection::AmountMustBePositive,
        AmountError::Scale => Rejection::AmountScale,
        AmountError::Overflow => Rejection::Overflow,
        AmountError::UnknownCurrency => Rejection::UnknownCurrency,
    }
}

/// Steps 11 and 12: every account is usable, and no total overflows or breaks a limit.
fn checked_effects(state: &LedgerState, event: Event) -> Result<Vec<Event>, Rejection> {
    let postings = match &event {
        Event::TransferPosted(e) | Event::PendingTransferCreated(e) => &e.postings,
        Event::PendingTransferPosted(e) => &e.postings,
        _ => unreachable!("only events that move money are checked"),
    };
    for p in postings {
        match state.account(p.account).expect("postings name resolved accounts").status {
            AccountStatus::Closed => return Err(Rejection::AccountClosed),
            AccountStatus::Frozen => return Err(Rejection::AccountFrozen),
            AccountStatus::Open => {}
        }
    }
    for (id, delta) in event_deltas(state, &event) {
        let account = state.account(id).expect("postings name resolved accounts");
        let next = delta.applied_to(&account.balances).ok_or(Rejection::Overflow)?;
        if !next.within(account.limit) {
            return Err(Rejection::InsufficientFunds);
        }
    }
    Ok(vec![event])
}

fn pending_transfer(state: &LedgerState, pending_id: TransferId) -> Result<&Transfer, Rejection> {
    if pending_id.0.is_nil() {
        return Err(Rejection::IdMustNotBeNil);
    }
    let t = state.transfer(pending_id).ok_or(Rejection::PendingTransferNotFound)?;
    if !t.pending {
        return Err(Rejection::PendingTransferNotPending);
    }
    Ok(t)
}

fn post_pending(
    state: &LedgerState,
    pending_id: TransferId,
    amount: Option<Decimal>,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let t = pending_transfer(state, pending_id)?;
    match t.status {
        TransferStatus::Posted => {
            let posted_amount = t.posted.as_ref().and_then(|p| p.first()).map(|p| p.amount);
            let same = match amount {
                None => t.posted.as_ref() == Some(&t.postings),
                Some(a) => t.simple_amount().is_some() && posted_amount == Some(a),
            };
            return if same { Ok(vec![]) } else { Err(Rejection::PendingTransferAlreadyPosted) };
        }
        TransferStatus::Voided => return Err(Rejection::PendingTransferAlreadyVoided),
        TransferStatus::Expired => return Err(Rejection::PendingTransferExpired),
        TransferStatus::Pending => {}
    }
    let postings = match amount {
        None => t.postings.clone(),
        Some(a) if a <= Decimal::ZERO => return Err(Rejection::AmountMustBePositive),
        Some(a) if t.simple_amount() == Some(a) => t.postings.clone(),
        Some(a) => {
            let held = t.simple_amount().ok_or(Rejection::PartialPostRequiresSimpleTransfer)?;
            let account = state.account(t.postings[0].account).expect("held postings name known accounts");
            let scale = state.currencies().scale(&account.currency).expect("accounts hold configured currencies");
            let a = checked_amount(a, scale).map_err(amount_rejection)?;
            if a > held {
                return Err(Rejection::PostAmountExceedsPending);
            }
            t.postings.iter().map(|p| Posting { amount: a, ..p.clone() }).collect()
        }
    };
    if t.timeout_at.is_some_and(|at| at <= now) {
        return Err(Rejection::PendingTransferExpired);
    }
    checked_effects(state, Event::PendingTransferPosted(PendingPosted { id: pending_id, postings, at: now }))
}

fn void_pending(state: &LedgerState, pending_id: TransferId, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    let t = pending_transfer(state, pending_id)?;
    match t.status {
        TransferStatus::Voided => return Ok(vec![]),
        TransferStatus::Posted => return Err(Rejection::PendingTransferAlreadyPosted),
        TransferStatus::Expired => return Err(Rejection::PendingTransferExpired),
        TransferStatus::Pending => {}
    }
    if t.timeout_at.is_some_and(|at| at <= now) {
        return Err(Rejection::PendingTransferExpired);
    }
    Ok(vec![Event::PendingTransferVoided(PendingReleased { id: pending_id, at: now })])
}

fn reverse(
    state: &LedgerState,
    id: TransferId,
    transfer_id: TransferId,
    metadata: &serde_json::Value,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    if id.0.is_nil() || transfer_id.0.is_nil() {
        return Err(Rejection::IdMustNotBeNil);
    }
    check_metadata(metadata)?;
    if let Some(existing) = state.transfer(id) {
        let same = existing.reverses == Some(transfer_id) && existing.metadata == *metadata;
        return if same { Ok(vec![]) } else { Err(Rejection::ExistsWithDifferentFields) };
    }
    let original = state.transfer(transfer_id).ok_or(Rejection::TransferNotFound)?;
    let posted = original.posted_postings().ok_or(Rejection::TransferNotPosted)?;
    if original.reversed_by.is_some() {
        return Err(Rejection::TransferAlreadyReversed);
    }
    let postings = posted.iter().map(|p| Posting { side: p.side.opposite(), ..p.clone() }).collect();
    checked_effects(
        state,
        Event::TransferPosted(TransferCreated {
            id,
            postings,
            timeout_at: None,
            reverses: Some(transfer_id),
            external_ref: original.external_ref.clone(),
            metadata: metadata.clone(),
            at: now,
        }),
    )
}

#[cfg(test)]
mod tests;
