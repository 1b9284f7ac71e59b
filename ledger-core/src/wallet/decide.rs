//! `decide` for the gaming wallet: checks a command against the players, providers, deposits,
//! withdrawals, game transactions, bonuses and the ledger, moves money only through the ledger's
//! own commands, and records what happened. Pure: no I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - `UpsertPlayer`: `invalid_participant_id`, `unknown_currency`, `invalid_limit`; an existing
//!   player: `currency_fixed`; the same fields (as they stand at `now`) replay (no events).
//! - `UpsertProvider`: `invalid_participant_id`, `invalid_base_url`; an existing provider:
//!   `provider_kind_fixed`; the same fields replay.
//! - `CreateDeposit`: `invalid_participant_id`; the id exists: the same body replays, else
//!   `deposit_exists`; `player_not_found`, `provider_not_found` (or not a payment provider),
//!   `currency_mismatch`, the amount (the ledger's codes), `self_excluded`, `limit_exceeded`
//!   (day, week, month).
//! - `SettleDeposit`: `deposit_not_found` (also when another provider asks), `invalid_reference`
//!   (provider reference, event id), `invalid_reason`, `amount_mismatch`; the same outcome
//!   again replays; the other outcome `deposit_already_settled`.
//! - `RequestWithdrawal`: `invalid_participant_id`; the id exists: the same body replays, else
//!   `withdrawal_exists`; `player_not_found`, `provider_not_found`, `currency_mismatch`, the
//!   amount, `kyc_required`, `limit_exceeded` (withdraw_day), `bonus_wagering_open` (policy
//!   `refuse`; `forfeit` forfeits the bonus in the same command); then the ledger's rules on
//!   main → locked (`insufficient_funds`).
//! - `MarkWithdrawalSent`: `withdrawal_not_found`; anything but `locked` replays.
//! - `SettleWithdrawal`: as `SettleDeposit`, with `withdrawal_not_found` and
//!   `withdrawal_already_settled` (a timed-out withdrawal takes no outcome).
//! - `Game`: `invalid_participant_id`, `invalid_reference` (round); `provider_not_found` (or
//!   not a game provider); the transaction id exists: a bet on a tombstone is
//!   `transaction_rolled_back`, the same body replays, another `duplicate_transaction`;
//!   `player_not_found`, `currency_mismatch`, the amount (zero allowed), `round_closed` (closed,
//!   or another player's); then a bet: `self_excluded`, `limit_exceeded` (loss_day),
//!   `insufficient_funds`; a rollback: `invalid_reference` (no reference), the bet of another
//!   kind or player `transaction_not_found`, `rollback_after_win`.
//! - `GrantBonus`: `invalid_participant_id`; the id exists: the same body replays, else
//!   `bonus_exists`; `player_not_found`, the amount, `invalid_bonus`, `bonus_open`.
//! - `ForfeitBonus`: `bonus_not_found`, `invalid_reason`; forfeited replays; another end
//!   `bonus_closed`.
//! - `ExpireWithdrawals`, `ExpireBonuses` never refuse: one the ledger refuses to move (an
//!   operator froze an account) stays due.
//!
//! Audit: player and provider changes (`wallet.player.upsert`, `wallet.provider.upsert`,
//! `info`), bonus grants (`wallet.bonus.grant`, `info`) and forfeits (`wallet.bonus.forfeit`,
//! `warning`) record their entry in the same command, before the event they explain; entries
//! hold ids, levels, limits and amounts, never a secret or a URL.

mod bonuses;
mod games;
mod payments;
mod players;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use uuid::Uuid;

use super::LimitKind;
use super::command::Command;
use super::rejection::Rejection;
use super::state::Player;
use crate::audit::{self, Change};
use crate::ids::{AccountId, Timestamp, TransferId};
use crate::money::{AmountError, CurrencyCode, checked_amount};
use crate::postings::Postings;
use crate::text::valid_id;
use crate::{AccountKind, AccountRef, BalanceLimit, CreateTransfer, OpenAccount, PostingRequest, Side, ledger};

pub fn decide(state: &crate::State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    let wallet = &state.wallet;
    match command {
        Command::UpsertPlayer(c) => players::upsert_player(wallet, p, c, now),
        Command::UpsertProvider(c) => players::upsert_provider(wallet, p, c, now),
        Command::CreateDeposit(c) => payments::create_deposit(wallet, p, c, now),
        Command::SettleDeposit(c) => payments::settle_deposit(wallet, p, c, now),
        Command::RequestWithdrawal(c) => payments::request_withdrawal(wallet, p, c, now),
        Command::MarkWithdrawalSent { id } => payments::mark_withdrawal_sent(wallet, p, *id, now),
        Command::SettleWithdrawal(c) => payments::settle_withdrawal(wallet, p, c, now),
        Command::ExpireWithdrawals => payments::expire_withdrawals(wallet, p, now),
        Command::Game(c) => games::game(wallet, p, c, now),
        Command::GrantBonus(c) => bonuses::grant_bonus(wallet, p, c, now),
        Command::ForfeitBonus { id, reason } => bonuses::forfeit_bonus(wallet, p, *id, reason.as_deref(), now),
        Command::ExpireBonuses => bonuses::expire_bonuses(wallet, p, now),
    }
}

/// The namespace of the ids of the wallet's audit entries.
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x47e0_9b2c_6d18_4a53_8f71_c2e9_05ad_3b6c);

/// The largest wagering multiplier.
pub const MAX_WAGERING_MULTIPLIER: u32 = 1000;

pub(super) fn audited(
    p: &mut Postings<'_>,
    entity: Uuid,
    version: u32,
    change: Change<'_>,
    now: Timestamp,
) -> Result<(), Rejection> {
    // Ids, levels, limits and amounts never look like secrets: only a reason can.
    audit::record_change(p, &AUDIT_NAMESPACE, entity, version, change, now).map_err(|_| Rejection::InvalidReason)
}

pub(super) fn check_id(id: &str) -> Result<(), Rejection> {
    if valid_id(id) { Ok(()) } else { Err(Rejection::InvalidParticipantId) }
}

pub(super) fn scale(p: &Postings<'_>, currency: &CurrencyCode) -> Result<u32, Rejection> {
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

/// A positive amount at the currency's scale, rescaled to it.
pub(super) fn money(p: &Postings<'_>, amount: Decimal, currency: &CurrencyCode) -> Result<Decimal, Rejection> {
    checked_amount(amount, scale(p, currency)?).map_err(amount_rejection)
}

pub(super) fn round_even(x: Decimal, scale: u32) -> Decimal {
    let mut r = x.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    r.rescale(scale);
    r
}

pub(super) fn leg(account: AccountId, side: Side, amount: Decimal) -> PostingRequest {
    PostingRequest { account: AccountRef::Id(account), side, amount }
}

/// Posts an entry of these legs (zero legs left out; nothing when every leg is zero).
pub(super) fn post(
    p: &mut Postings<'_>,
    id: TransferId,
    legs: &[PostingRequest],
    metadata: Value,
    now: Timestamp,
) -> Result<bool, Rejection> {
    let postings: Vec<PostingRequest> = legs.iter().filter(|l| !l.amount.is_zero()).cloned().collect();
    if postings.is_empty() {
        return Ok(false);
    }
    let entry = CreateTransfer { id, postings, pending: false, timeout_seconds: None, external_ref: None, metadata };
    p.execute(ledger::Command::CreateTransfer(entry), now)?;
    Ok(true)
}

/// Opens an account of the domain unless this command's postings already see it.
pub(super) fn ensure_open(
    p: &mut Postings<'_>,
    (id, code): (AccountId, String),
    currency: &CurrencyCode,
    kind: AccountKind,
    now: Timestamp,
) -> Result<(), Rejection> {
    if p.account(id).is_some() {
        return Ok(());
    }
    // A player's balances never go below zero; the operator's and providers' accounts may.
    let limit = if kind == AccountKind::Liability && code.starts_with("wallet:") && !code.starts_with("wallet:games:") {
        BalanceLimit::DebitsMustNotExceedCredits
    } else {
        BalanceLimit::None
    };
    let open = OpenAccount { id, code, currency: currency.clone(), kind, limit, metadata: json!({"domain": "wallet"}) };
    p.execute(ledger::Command::OpenAccount(open), now)?;
    Ok(())
}

/// What an account has available now, as this command's postings left it.
pub(super) fn available(p: &Postings<'_>, id: AccountId) -> Decimal {
    p.account(id).map_or(Decimal::ZERO, |a| a.available())
}

/// Refuses `amount` more if a limit of `kind` in force leaves less.
pub(super) fn within_limit(player: &Player, kind: LimitKind, amount: Decimal, now: Timestamp) -> Result<(), Rejection> {
    match player.remaining(kind, now) {
        Some((_, remaining)) if amount > remaining => {
            Err(Rejection::LimitExceeded { limit: kind, remaining: remaining.max(Decimal::ZERO) })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
