//! Bonuses: a grant with its wagering requirement, and its end (converted to main, expired or
//! forfeited back to bonus_cost).

use rust_decimal::Decimal;
use serde_json::json;

use super::{MAX_WAGERING_MULTIPLIER, audited, available, check_id, ensure_open, leg, money, post, round_even, scale};
use crate::AccountKind;
use crate::Side;
use crate::audit::{Change, Level};
use crate::ids::{BonusId, Timestamp};
use crate::postings::Postings;
use crate::text::valid_reason;
use crate::wallet::command::GrantBonus;
use crate::wallet::event::{BonusClosed, BonusGranted, Event};
use crate::wallet::rejection::Rejection;
use crate::wallet::state::{Bonus, BonusStatus, State};
use crate::wallet::{MAX_DUE_PER_COMMAND, bonus_account, bonus_cost_account, bonus_entity, main_account, transfer_of};

/// Ends an open bonus: what is left of the bonus balance moves to main (`convert`) or back to
/// bonus_cost.
pub(super) fn close_bonus(
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

pub(super) fn forfeit(
    p: &mut Postings<'_>,
    bonus: &Bonus,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), Rejection> {
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

pub(super) fn grant_bonus(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &GrantBonus,
    now: Timestamp,
) -> Result<(), Rejection> {
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

pub(super) fn forfeit_bonus(
    wallet: &State,
    p: &mut Postings<'_>,
    id: BonusId,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let bonus = wallet.bonus(id).ok_or(Rejection::BonusNotFound)?;
    if reason.is_some_and(|r| !valid_reason(r)) {
        return Err(Rejection::InvalidReason);
    }
    match bonus.status {
        BonusStatus::Forfeited => Ok(()),
        BonusStatus::Active => forfeit(p, bonus, reason, now),
        _ => Err(Rejection::BonusClosed),
    }
}

/// Returns the bonuses past their end to bonus_cost (one the ledger refuses to move stays due).
pub(super) fn expire_bonuses(wallet: &State, p: &mut Postings<'_>, now: Timestamp) -> Result<(), Rejection> {
    for id in wallet.due_bonuses(now).take(MAX_DUE_PER_COMMAND) {
        let bonus = wallet.bonus(id).expect("due bonuses are in memory");
        if let Ok(closed) = close_bonus(p, bonus, false, None, now) {
            p.record(Event::BonusExpired(Box::new(closed)));
        }
    }
    Ok(())
}
