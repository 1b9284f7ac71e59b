//! Players (KYC, limits and self-exclusion, each decided against the one in force) and
//! providers.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{audited, check_id, ensure_open, scale};
use crate::AccountKind;
use crate::audit::Change;
use crate::ids::Timestamp;
use crate::money::checked_amount;
use crate::postings::Postings;
use crate::wallet::command::{Limits, UpsertPlayer, UpsertProvider};
use crate::wallet::event::{Event, Pending, PlayerUpserted, ProviderUpserted, Timed, TimedLimits};
use crate::wallet::rejection::Rejection;
use crate::wallet::state::State;
use crate::wallet::{LimitKind, bonus_account, locked_account, main_account, player_entity, provider_entity};

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

pub(super) fn upsert_player(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &UpsertPlayer,
    now: Timestamp,
) -> Result<(), Rejection> {
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

pub(super) fn upsert_provider(
    wallet: &State,
    p: &mut Postings<'_>,
    c: &UpsertProvider,
    now: Timestamp,
) -> Result<(), Rejection> {
    check_id(&c.id)?;
    if !c.base_url.as_deref().is_none_or(crate::text::valid_url) {
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
