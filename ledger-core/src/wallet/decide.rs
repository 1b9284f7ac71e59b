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

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use uuid::Uuid;

use super::command::{
    Command, CreateDeposit, GameAction, GameCall, GrantBonus, Limits, OpenBonusPolicy, ProviderKind, RequestWithdrawal,
    Settle, UpsertPlayer, UpsertProvider,
};
use super::event::{
    BetRolledBack, BetTombstoned, BonusClosed, BonusGranted, DepositCreated, Event, GameTx, Pending, PlayerUpserted,
    ProviderUpserted, Settled, Timed, TimedLimits, Wagering, WithdrawalRequested,
};
use super::rejection::Rejection;
use super::state::{Bonus, BonusStatus, DepositStatus, GameTransaction, Player, State, TxKind, WithdrawalStatus};
use super::{
    LimitKind, MAX_DUE_PER_COMMAND, bonus_account, bonus_cost_account, bonus_entity, clearing_account, deposit_entity,
    game_revenue_account, game_tx_entity, locked_account, main_account, player_entity, provider_entity, round_transfer,
    settlement_account, transfer_of, withdrawal_entity,
};
use crate::audit::{self, Change, Level};
use crate::ids::{AccountId, Timestamp, TransferId, WithdrawalId};
use crate::money::{AmountError, CurrencyCode, checked_amount};
use crate::postings::Postings;
use crate::text::{valid_id, valid_reason, valid_text, within};
use crate::{AccountKind, AccountRef, BalanceLimit, CreateTransfer, OpenAccount, PostingRequest, Side, ledger};

pub fn decide(state: &crate::State, p: &mut Postings<'_>, command: &Command, now: Timestamp) -> Result<(), Rejection> {
    let wallet = &state.wallet;
    match command {
        Command::UpsertPlayer(c) => upsert_player(wallet, p, c, now),
        Command::UpsertProvider(c) => upsert_provider(wallet, p, c, now),
        Command::CreateDeposit(c) => create_deposit(wallet, p, c, now),
        Command::SettleDeposit(c) => settle_deposit(wallet, p, c, now),
        Command::RequestWithdrawal(c) => request_withdrawal(wallet, p, c, now),
        Command::MarkWithdrawalSent { id } => {
            let w = wallet.withdrawal(*id).ok_or(Rejection::WithdrawalNotFound)?;
            if w.status == WithdrawalStatus::Locked {
                p.record(Event::WithdrawalSent(Box::new(step(*id, None, None, None, None, now))));
            }
            Ok(())
        }
        Command::SettleWithdrawal(c) => settle_withdrawal(wallet, p, c, now),
        Command::ExpireWithdrawals => {
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
        Command::Game(c) => game(wallet, p, c, now),
        Command::GrantBonus(c) => grant_bonus(wallet, p, c, now),
        Command::ForfeitBonus { id, reason } => {
            let bonus = wallet.bonus(*id).ok_or(Rejection::BonusNotFound)?;
            if reason.as_deref().is_some_and(|r| !valid_reason(r)) {
                return Err(Rejection::InvalidReason);
            }
            match bonus.status {
                BonusStatus::Forfeited => Ok(()),
                BonusStatus::Active => forfeit(p, bonus, reason.as_deref(), now),
                _ => Err(Rejection::BonusClosed),
            }
        }
        Command::ExpireBonuses => {
            for id in wallet.due_bonuses(now).take(MAX_DUE_PER_COMMAND) {
                let bonus = wallet.bonus(id).expect("due bonuses are in memory");
                if let Ok(closed) = close_bonus(p, bonus, false, None, now) {
                    p.record(Event::BonusExpired(Box::new(closed)));
                }
            }
            Ok(())
        }
    }
}

/// The namespace of the ids of the wallet's audit entries.
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x47e0_9b2c_6d18_4a53_8f71_c2e9_05ad_3b6c);

/// The most characters of a provider's base URL.
pub const MAX_URL_CHARS: usize = 2048;

/// The largest wagering multiplier.
pub const MAX_WAGERING_MULTIPLIER: u32 = 1000;

fn audited(
    p: &mut Postings<'_>,
    entity: Uuid,
    version: u32,
    change: Change<'_>,
    now: Timestamp,
) -> Result<(), Rejection> {
    // Ids, levels, limits and amounts never look like secrets: only a reason can.
    audit::record_change(p, &AUDIT_NAMESPACE, entity, version, change, now).map_err(|_| Rejection::InvalidReason)
}

fn check_id(id: &str) -> Result<(), Rejection> {
    if valid_id(id) { Ok(()) } else { Err(Rejection::InvalidParticipantId) }
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

/// A positive amount at the currency's scale, rescaled to it.
fn money(p: &Postings<'_>, amount: Decimal, currency: &CurrencyCode) -> Result<Decimal, Rejection> {
    checked_amount(amount, scale(p, currency)?).map_err(amount_rejection)
}

/// A game amount: zero (a losing round's win) or a positive amount at the currency's scale.
fn game_amount(p: &Postings<'_>, amount: Decimal, currency: &CurrencyCode) -> Result<Decimal, Rejection> {
    if amount.is_zero() {
        let mut zero = Decimal::ZERO;
        zero.rescale(scale(p, currency)?);
        return Ok(zero);
    }
    money(p, amount, currency)
}

fn round_even(x: Decimal, scale: u32) -> Decimal {
    let mut r = x.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    r.rescale(scale);
    r
}

fn leg(account: AccountId, side: Side, amount: Decimal) -> PostingRequest {
    PostingRequest { account: AccountRef::Id(account), side, amount }
}

/// Posts an entry of these legs (zero legs left out; nothing when every leg is zero).
fn post(
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
fn available(p: &Postings<'_>, id: AccountId) -> Decimal {
    p.account(id).map_or(Decimal::ZERO, |a| a.available())
}

/// The value a player asks for, decided against the one in force: the same or stricter applies
/// at once (dropping a pending one); looser waits until `from` (a pending value asked again
/// keeps its time).
fn timed<T: Copy + PartialEq>(
    current: Timed<T>,
    asked: Option<T>,
    stricter: impl Fn(Option<T>, Option<T>) -> bool,
    from: Option<Timestamp>,
) -> Timed<T> {
    match from {
        Some(from) if asked != current.value && !stricter(asked, current.value) => {
            if current.pending.is_some_and(|p| p.value == asked) {
                current
            } else {
                Timed { value: current.value, pending: Some(Pending { value: asked, from }) }
            }
        }
        _ => Timed { value: asked, pending: None },
    }
}

/// A lower limit is stricter; a limit where there was none too.
fn lower(asked: Option<Decimal>, current: Option<Decimal>) -> bool {
    match (asked, current) {
        (Some(a), Some(c)) => a < c,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A later end of self-exclusion is stricter; one where there was none too.
fn later(asked: Option<Timestamp>, current: Option<Timestamp>) -> bool {
    match (asked, current) {
        (Some(a), Some(c)) => a > c,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A self-exclusion as it stands at `now`: one that ended is none.
fn exclusion_at(t: Timed<Timestamp>, now: Timestamp) -> Timed<Timestamp> {
    let t = t.settled(now);
    Timed { value: t.value.filter(|until| *until > now), pending: t.pending }
}

fn limits_audit(l: &TimedLimits) -> Value {
    let one = |t: &Timed<Decimal>| {
        json!({"value": t.value.map(|v| v.to_string()),
            "pending": t.pending.map(|p| json!({"value": p.value.map(|v| v.to_string()), "from": p.from.rfc3339()}))})
    };
    let mut all = serde_json::Map::new();
    for kind in LimitKind::ALL {
        all.insert(kind.as_str().to_owned(), one(l.get(kind)));
    }
    Value::Object(all)
}

fn player_audit(e: &PlayerUpserted) -> Value {
    json!({"currency": e.currency.as_str(), "kyc": e.kyc, "limits": limits_audit(&e.limits),
        "self_excluded_until": e.self_exclusion.value.map(Timestamp::rfc3339),
        "self_exclusion_pending": e.self_exclusion.pending.map(|p| json!({"until": p.value.map(Timestamp::rfc3339), "from": p.from.rfc3339()}))})
}

fn upsert_player(wallet: &State, p: &mut Postings<'_>, c: &UpsertPlayer, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.id)?;
    let scale = scale(p, &c.currency)?;
    let asked: Limits = c.limits;
    for kind in LimitKind::ALL {
        if let Some(limit) = asked.get(kind) {
            checked_amount(limit, scale).map_err(|_| Rejection::InvalidLimit)?;
        }
    }
    let existing = wallet.player(&c.id);
    if existing.is_some_and(|p| p.currency != c.currency) {
        return Err(Rejection::CurrencyFixed);
    }
    let from = (c.cooldown_hours > 0).then(|| now.plus_seconds(c.cooldown_hours.saturating_mul(3600)));
    // A new player has nothing to loosen: what it asks for applies at once.
    let from = existing.and(from);
    let (current_limits, current_exclusion) =
        existing.map_or((TimedLimits::default(), Timed::default()), |p| (p.limits, p.self_exclusion));
    let mut limits = TimedLimits::default();
    for kind in LimitKind::ALL {
        let mut value = asked.get(kind);
        if let Some(v) = value.as_mut() {
            v.rescale(scale);
        }
        *limits.get_mut(kind) = timed(current_limits.get(kind).settled(now), value, lower, from);
    }
    let until = c.self_excluded_until.filter(|until| *until > now);
    let self_exclusion = timed(exclusion_at(current_exclusion, now), until, later, from);
    let upserted =
        PlayerUpserted { id: c.id.clone(), currency: c.currency.clone(), kyc: c.kyc, self_exclusion, limits, at: now };
    let before = existing.map(|player| PlayerUpserted {
        id: player.id.clone(),
        currency: player.currency.clone(),
        kyc: player.kyc,
        self_exclusion: exclusion_at(player.self_exclusion, now),
        limits: settled_limits(&player.limits, now),
        at: player.at,
    });
    if let Some(b) = &before
        && b.kyc == upserted.kyc
        && b.self_exclusion == upserted.self_exclusion
        && b.limits == upserted.limits
    {
        return Ok(());
    }
    if existing.is_none() {
        for account in [main_account(&c.id), bonus_account(&c.id), locked_account(&c.id)] {
            ensure_open(p, account, &c.currency, AccountKind::Liability, now)?;
        }
    }
    let change = Change {
        before: before.as_ref().map(player_audit),
        after: Some(player_audit(&upserted)),
        ..Change::info("wallet.player.upsert", format!("player:{}", c.id))
    };
    let version = existing.map_or(0, |p| p.version) + 1;
    audited(p, player_entity(&c.id).id, version, change, now)?;
    p.record(Event::PlayerUpserted(Box::new(upserted)));
    Ok(())
}

fn settled_limits(l: &TimedLimits, now: Timestamp) -> TimedLimits {
    let mut out = *l;
    for kind in LimitKind::ALL {
        *out.get_mut(kind) = l.get(kind).settled(now);
    }
    out
}

fn upsert_provider(wallet: &State, p: &mut Postings<'_>, c: &UpsertProvider, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.id)?;
    let url_ok = |u: &str| within(u, MAX_URL_CHARS) && !u.chars().any(char::is_whitespace);
    if !c.base_url.as_deref().is_none_or(url_ok) {
        return Err(Rejection::InvalidBaseUrl);
    }
    let existing = wallet.provider(&c.id);
    if let Some(provider) = existing {
        if provider.kind != c.kind {
            return Err(Rejection::ProviderKindFixed);
        }
        if provider.secret == c.secret && provider.base_url == c.base_url {
            return Ok(());
        }
    }
    let change = Change {
        after: Some(json!({"kind": c.kind, "base_url_set": c.base_url.is_some()})),
        ..Change::info("wallet.provider.upsert", format!("provider:{}", c.id))
    };
    let version = existing.map_or(0, |p| p.version) + 1;
    audited(p, provider_entity(&c.id).id, version, change, now)?;
    p.record(Event::ProviderUpserted(Box::new(ProviderUpserted {
        id: c.id.clone(),
        kind: c.kind,
        secret: c.secret.clone(),
        base_url: c.base_url.clone(),
        at: now,
    })));
    Ok(())
}

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

/// Refuses `amount` more if a limit of `kind` in force leaves less.
fn within_limit(player: &Player, kind: LimitKind, amount: Decimal, now: Timestamp) -> Result<(), Rejection> {
    match player.remaining(kind, now) {
        Some((_, remaining)) if amount > remaining => {
            Err(Rejection::LimitExceeded { limit: kind, remaining: remaining.max(Decimal::ZERO) })
        }
        _ => Ok(()),
    }
}

fn create_deposit(wallet: &State, p: &mut Postings<'_>, c: &CreateDeposit, now: Timestamp) -> Result<(), Rejection> {
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

fn settle_deposit(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &Settle<crate::ids::DepositId>,
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

fn request_withdrawal(
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
    if player.kyc == super::Kyc::None {
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

fn settle_withdrawal(
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

/// Ends an open bonus: what is left of the bonus balance moves to main (`convert`) or back to
/// bonus_cost.
fn close_bonus(
    p: &mut Postings<'_>,
    bonus: &Bonus,
    convert: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<BonusClosed, Rejection> {
    let from = bonus_account(&bonus.player).0;
    let amount = available(p, from);
    let to = if convert {
        main_account(&bonus.player).0
    } else {
        let cost = bonus_cost_account(&bonus.currency);
        ensure_open(p, cost.clone(), &bonus.currency, AccountKind::Expense, now)?;
        cost.0
    };
    let id = transfer_of(bonus_entity(bonus.id), "close");
    let metadata = json!({"bonus": bonus.id.to_string(), "close": if convert { "converted" } else { "returned" }});
    let moved = post(p, id, &[leg(from, Side::Debit, amount), leg(to, Side::Credit, amount)], metadata, now)?;
    Ok(BonusClosed { id: bonus.id, amount, reason: reason.map(str::to_owned), transfer: moved.then_some(id), at: now })
}

fn forfeit(p: &mut Postings<'_>, bonus: &Bonus, reason: Option<&str>, now: Timestamp) -> Result<(), Rejection> {
    let closed = close_bonus(p, bonus, false, reason, now)?;
    let change = Change {
        level: Level::Warning,
        before: Some(
            json!({"status": "active", "wagered": bonus.wagered.to_string(), "required": bonus.required.to_string()}),
        ),
        after: Some(json!({"status": "forfeited", "returned": closed.amount.to_string()})),
        reason,
        ..Change::info("wallet.bonus.forfeit", format!("bonus:{}", bonus.id))
    };
    audited(p, bonus.id.0, bonus.version + 1, change, now)?;
    p.record(Event::BonusForfeited(Box::new(closed)));
    Ok(())
}

fn grant_bonus(wallet: &State, p: &mut Postings<'_>, c: &GrantBonus, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.player)?;
    if let Some(b) = wallet.bonus(c.id) {
        let same = b.player == c.player
            && b.amount == c.amount
            && b.wagering_multiplier == c.wagering_multiplier
            && b.expires_at == c.expires_at;
        return if same { Ok(()) } else { Err(Rejection::BonusExists) };
    }
    let player = wallet.player(&c.player).ok_or(Rejection::PlayerNotFound)?;
    let currency = player.currency.clone();
    let amount = money(p, c.amount, &currency)?;
    let m = c.wagering_multiplier;
    if m.is_sign_negative()
        || m > Decimal::from(MAX_WAGERING_MULTIPLIER)
        || m.normalize().scale() > 2
        || c.expires_at <= now
    {
        return Err(Rejection::InvalidBonus);
    }
    if player.bonus.is_some() {
        return Err(Rejection::BonusOpen);
    }
    let cost = bonus_cost_account(&currency);
    ensure_open(p, cost.clone(), &currency, AccountKind::Expense, now)?;
    let grant = transfer_of(bonus_entity(c.id), "grant");
    let legs = [leg(cost.0, Side::Debit, amount), leg(bonus_account(&c.player).0, Side::Credit, amount)];
    post(p, grant, &legs, json!({"bonus": c.id.to_string(), "player": c.player}), now)?;
    let required = round_even(amount * m, scale(p, &currency)?);
    let change = Change {
        after: Some(json!({"amount": amount.to_string(), "currency": currency.as_str(),
            "wagering_multiplier": m.to_string(), "required": required.to_string(), "expires_at": c.expires_at.rfc3339()})),
        ..Change::info("wallet.bonus.grant", format!("bonus:{}", c.id))
    };
    audited(p, c.id.0, 1, change, now)?;
    let granted = BonusGranted {
        id: c.id,
        player: c.player.clone(),
        amount,
        currency,
        wagering_multiplier: m,
        required,
        expires_at: c.expires_at,
        transfer: grant,
        at: now,
    };
    let met = required.is_zero();
    p.record(Event::BonusGranted(Box::new(granted)));
    if met {
        let bonus = Bonus {
            id: c.id,
            player: c.player.clone(),
            amount,
            currency: player.currency.clone(),
            wagering_multiplier: m,
            required,
            wagered: Decimal::ZERO,
            status: BonusStatus::Active,
            expires_at: c.expires_at,
            closed_amount: None,
            reason: None,
            transfer: grant,
            close_transfer: None,
            created_at: now,
            at: now,
            version: 1,
        };
        let closed = close_bonus(p, &bonus, true, None, now)?;
        p.record(Event::BonusConverted(Box::new(closed)));
    }
    Ok(())
}

/// Whether a retried call asks for exactly what the transaction recorded.
fn same_call(t: &GameTransaction, c: &GameCall) -> bool {
    let kind = match c.action {
        GameAction::Bet => TxKind::Bet,
        GameAction::Win => TxKind::Win,
        GameAction::Rollback => TxKind::Rollback,
    };
    t.kind == kind
        && t.player == c.player
        && t.round == c.round
        && t.amount == c.amount
        && t.currency.as_ref() == Some(&c.currency)
        && t.reference == c.reference
        && t.round_closed == c.round_closed
}

fn game(wallet: &State, p: &mut Postings<'_>, c: &GameCall, now: Timestamp) -> Result<(), Rejection> {
    check_id(&c.provider)?;
    check_id(&c.player)?;
    if !valid_text(&c.round) {
        return Err(Rejection::InvalidReference);
    }
    wallet.provider(&c.provider).filter(|pr| pr.kind == ProviderKind::Games).ok_or(Rejection::ProviderNotFound)?;
    if let Some(t) = wallet.transaction(&c.provider, c.transaction) {
        return if t.kind == TxKind::Tombstone && c.action == GameAction::Bet {
            Err(Rejection::TransactionRolledBack)
        } else if same_call(t, c) {
            Ok(())
        } else {
            Err(Rejection::DuplicateTransaction)
        };
    }
    let player = wallet.player(&c.player).ok_or(Rejection::PlayerNotFound)?;
    if player.currency != c.currency {
        return Err(Rejection::CurrencyMismatch);
    }
    let amount = game_amount(p, c.amount, &c.currency)?;
    let round = wallet.round(&c.provider, &c.round);
    if round.is_some_and(|r| r.closed || r.player != c.player) {
        return Err(Rejection::RoundClosed);
    }
    let tx_entity = game_tx_entity(&c.provider, c.transaction);
    let posting = transfer_of(tx_entity, "posting");
    let settlement = settlement_account(&c.provider, &c.currency);
    let (main, bonus) = (main_account(&c.player).0, bonus_account(&c.player).0);
    let metadata = json!({"game_provider": c.provider, "transaction": c.transaction.to_string(), "round": c.round});
    let open_bonus = player.bonus.and_then(|id| wallet.bonus(id)).filter(|b| b.status == BonusStatus::Active);
    let scale = scale(p, &c.currency)?;
    let mut record = GameTx {
        provider: c.provider.clone(),
        transaction: c.transaction,
        player: c.player.clone(),
        round: c.round.clone(),
        amount,
        currency: c.currency.clone(),
        reference: c.reference,
        round_closed: c.round_closed,
        main: Decimal::ZERO,
        bonus: Decimal::ZERO,
        wagering: None,
        transfer: None,
        round_transfer: None,
        balance: Decimal::ZERO,
        bonus_balance: Decimal::ZERO,
        at: now,
    };
    let mut before = Vec::new();
    let mut convert = None;
    // What the call does to the round's net (live bets − wins).
    let delta = match c.action {
        GameAction::Bet => {
            if player.excluded(now) {
                return Err(Rejection::SelfExcluded);
            }
            within_limit(player, LimitKind::LossDay, amount, now)?;
            let (main_free, bonus_free) = (available(p, main), available(p, bonus));
            if main_free + bonus_free < amount {
                return Err(Rejection::Ledger(ledger::Rejection::InsufficientFunds));
            }
            let (first, second) = if c.bonus_first { (bonus_free, main_free) } else { (main_free, bonus_free) };
            let taken_first = first.min(amount);
            let taken_second = amount - taken_first;
            debug_assert!(taken_second <= second);
            (record.main, record.bonus) =
                if c.bonus_first { (taken_second, taken_first) } else { (taken_first, taken_second) };
            ensure_open(p, settlement.clone(), &c.currency, AccountKind::Liability, now)?;
            let legs = [
                leg(main, Side::Debit, record.main),
                leg(bonus, Side::Debit, record.bonus),
                leg(settlement.0, Side::Credit, amount),
            ];
            record.transfer = post(p, posting, &legs, metadata, now)?.then_some(posting);
            if let Some(b) = open_bonus {
                let counted = if c.wagering_bonus_only { record.bonus } else { amount };
                if !counted.is_zero() {
                    record.wagering = Some(Wagering { bonus: b.id, amount: counted });
                }
                if b.wagered + counted >= b.required {
                    convert = Some(close_bonus(p, b, true, None, now)?);
                }
            }
            amount
        }
        GameAction::Win => {
            let (live_main, live_bonus) = round.map_or((Decimal::ZERO, Decimal::ZERO), |r| (r.main, r.bonus));
            let staked = live_main + live_bonus;
            record.bonus = if open_bonus.is_some() && !staked.is_zero() {
                round_even(amount * live_bonus / staked, scale)
            } else {
                Decimal::ZERO
            };
            record.bonus.rescale(scale);
            record.main = amount - record.bonus;
            ensure_open(p, settlement.clone(), &c.currency, AccountKind::Liability, now)?;
            let legs = [
                leg(settlement.0, Side::Debit, amount),
                leg(main, Side::Credit, record.main),
                leg(bonus, Side::Credit, record.bonus),
            ];
            record.transfer = post(p, posting, &legs, metadata, now)?.then_some(posting);
            -amount
        }
        GameAction::Rollback => {
            let reference = c.reference.ok_or(Rejection::InvalidReference)?;
            match wallet.transaction(&c.provider, reference) {
                None => {
                    before.push(Event::BetTombstoned(Box::new(BetTombstoned {
                        provider: c.provider.clone(),
                        transaction: reference,
                        player: c.player.clone(),
                        round: c.round.clone(),
                        by: c.transaction,
                        at: now,
                    })));
                    Decimal::ZERO
                }
                Some(bet) if bet.player != c.player || !matches!(bet.kind, TxKind::Bet | TxKind::Tombstone) => {
                    return Err(Rejection::TransactionNotFound);
                }
                // Rolled back already (or tombstoned by another rollback): nothing more moves.
                Some(bet) if bet.rolled_back_by.is_some() => Decimal::ZERO,
                Some(bet) => {
                    let bet_round = wallet.round(&c.provider, &bet.round).expect("bets have rounds");
                    if bet_round.has_win {
                        return Err(Rejection::RollbackAfterWin);
                    }
                    if bet_round.closed {
                        return Err(Rejection::RoundClosed);
                    }
                    let reversal = transfer_of(game_tx_entity(&c.provider, reference), "reversal");
                    if let Some(original) = bet.transfer {
                        let metadata = json!({"game_provider": c.provider, "rollback": c.transaction.to_string()});
                        p.execute(
                            ledger::Command::ReverseTransfer { id: reversal, transfer_id: original, metadata },
                            now,
                        )?;
                    }
                    let wagering = bet.wagering.filter(|w| open_bonus.is_some_and(|b| b.id == w.bonus));
                    (record.main, record.bonus) = (bet.main, bet.bonus);
                    before.push(Event::BetRolledBack(Box::new(BetRolledBack {
                        provider: c.provider.clone(),
                        transaction: reference,
                        by: c.transaction,
                        transfer: bet.transfer.map(|_| reversal),
                        wagering,
                        at: now,
                    })));
                    -bet.amount
                }
            }
        }
    };
    if c.round_closed {
        let net = round.map_or(Decimal::ZERO, |r| r.net()) + delta;
        let close = round_transfer(&c.provider, &c.round);
        let revenue = game_revenue_account(&c.currency);
        ensure_open(p, settlement.clone(), &c.currency, AccountKind::Liability, now)?;
        ensure_open(p, revenue.clone(), &c.currency, AccountKind::Income, now)?;
        let (from, to) = if net.is_sign_negative() { (revenue.0, settlement.0) } else { (settlement.0, revenue.0) };
        let metadata = json!({"game_provider": c.provider, "round": c.round, "close": "revenue"});
        record.round_transfer =
            post(p, close, &[leg(from, Side::Debit, net.abs()), leg(to, Side::Credit, net.abs())], metadata, now)?
                .then_some(close);
    }
    record.balance = available(p, main);
    record.bonus_balance = available(p, bonus);
    for event in before {
        p.record(event);
    }
    p.record(match c.action {
        GameAction::Bet => Event::BetPlaced(Box::new(record)),
        GameAction::Win => Event::WinPaid(Box::new(record)),
        GameAction::Rollback => Event::RollbackRecorded(Box::new(record)),
    });
    if let Some(closed) = convert {
        p.record(Event::BonusConverted(Box::new(closed)));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
