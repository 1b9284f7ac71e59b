//! The game providers' seamless-wallet callbacks: bets, wins, rollbacks, and a round's close.

use rust_decimal::Decimal;
use serde_json::json;

use super::bonuses::close_bonus;
use super::{available, check_id, ensure_open, leg, money, post, round_even, scale, within_limit};
use crate::ids::Timestamp;
use crate::money::CurrencyCode;
use crate::postings::Postings;
use crate::text::valid_text;
use crate::wallet::command::{GameAction, GameCall, ProviderKind};
use crate::wallet::event::{BetRolledBack, BetTombstoned, Event, GameTx, Wagering};
use crate::wallet::rejection::Rejection;
use crate::wallet::state::{BonusStatus, GameTransaction, State, TxKind};
use crate::wallet::{
    LimitKind, bonus_account, game_revenue_account, game_tx_entity, main_account, round_transfer, settlement_account,
    transfer_of,
};
use crate::{AccountKind, Side, ledger};

/// A game amount: zero (a losing round's win) or a positive amount at the currency's scale.
fn game_amount(p: &Postings<'_>, amount: Decimal, currency: &CurrencyCode) -> Result<Decimal, Rejection> {
    if amount.is_zero() {
        let mut zero = Decimal::ZERO;
        zero.rescale(scale(p, currency)?);
        return Ok(zero);
    }
    money(p, amount, currency)
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

pub(super) fn game(wallet: &State, p: &mut Postings<'_>, c: &GameCall, now: Timestamp) -> Result<(), Rejection> {
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
