//! Schedules of reconciliation runs: a provider, a cron expression (UTC) and the rules, kept in
//! the log like every entity. A due schedule fires as one command the writer decides whole:
//! `FireSchedule` names the due time the schedule holds, records that it fired and starts the
//! run (its id derived from the schedule and the due time, its time the due time), so however
//! many schedulers ask, a due time fires once. A run that cannot start (the provider's last run
//! is still in progress) is recorded as skipped, and the schedule moves on to its next time.
//!
//! Refusals, in order: `SetSchedule`: `invalid_schedule_id`, `provider_not_found`,
//! `invalid_cron`, `invalid_rules`, `rule_not_found` (the same fields again change nothing).
//! `FireSchedule`: `schedule_not_found`, `schedule_not_due` (disabled, not yet due, or a due
//! time other than the one it holds).

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::command::StartRun;
use super::cron::Cron;
use super::event::{Event, ScheduleFired, ScheduleSet};
use super::rejection::Rejection;
use super::run::{MAX_RULES, start_run};
use super::schedule_entity;
use super::state::State;
use crate::audit::{Change, Level};
use crate::ids::{RunId, Timestamp};
use crate::postings::Postings;
use crate::text::valid_id;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub provider: String,
    pub cron: String,
    pub rules: Vec<String>,
    pub enabled: bool,
    /// When it fires next (none: disabled, or its expression names no time ahead).
    pub next_due: Option<Timestamp>,
    pub last_fired: Option<Timestamp>,
    pub last_run: Option<RunId>,
    /// Why the last firing started no run.
    pub last_skipped: Option<String>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSchedule {
    pub id: String,
    pub provider: String,
    pub cron: String,
    pub rules: Vec<String>,
    pub enabled: bool,
}

/// The run a schedule starts at a due time.
pub fn scheduled_run(schedule: &str, due: Timestamp) -> RunId {
    RunId(Uuid::new_v5(&schedule_entity(schedule).id, format!("run:{}", due.0).as_bytes()))
}

pub(super) fn set_schedule(
    recon: &State,
    p: &mut Postings<'_>,
    c: &SetSchedule,
    now: Timestamp,
) -> Result<(), Rejection> {
    if !valid_id(&c.id) {
        return Err(Rejection::InvalidScheduleId);
    }
    recon.provider(&c.provider).ok_or(Rejection::ProviderNotFound)?;
    let cron = Cron::parse(&c.cron).map_err(|_| Rejection::InvalidCron)?;
    let mut seen = std::collections::BTreeSet::new();
    if c.rules.is_empty() || c.rules.len() > MAX_RULES || !c.rules.iter().all(|r| seen.insert(r)) {
        return Err(Rejection::InvalidRules);
    }
    if c.rules.iter().any(|r| recon.rule(r).is_none()) {
        return Err(Rejection::RuleNotFound);
    }
    let existing = recon.schedule(&c.id);
    if let Some(s) = existing
        && (&s.provider, &s.cron, &s.rules, s.enabled) == (&c.provider, &c.cron, &c.rules, c.enabled)
    {
        return Ok(());
    }
    let next_due = if c.enabled { cron.next_after(now) } else { None };
    p.record(Event::ScheduleSet(Box::new(ScheduleSet {
        id: c.id.clone(),
        provider: c.provider.clone(),
        cron: c.cron.clone(),
        rules: c.rules.clone(),
        enabled: c.enabled,
        next_due,
        at: now,
    })));
    let view = |provider: &str, cron: &str, rules: &[String], enabled: bool| json!({"provider": provider, "cron": cron, "rules": rules, "enabled": enabled});
    let change = Change {
        level: Level::Info,
        action: "recon.schedule.set",
        subject: c.id.clone(),
        before: existing.map(|s| view(&s.provider, &s.cron, &s.rules, s.enabled)),
        after: Some(view(&c.provider, &c.cron, &c.rules, c.enabled)),
        reason: None,
    };
    super::decide::audited(p, schedule_entity(&c.id).id, existing.map_or(1, |s| s.version + 1), change, now)
}

pub(super) fn fire_schedule(
    recon: &State,
    ledger: &crate::LedgerState,
    p: &mut Postings<'_>,
    id: &str,
    due: Timestamp,
    now: Timestamp,
) -> Result<(), Rejection> {
    let s = recon.schedule(id).ok_or(Rejection::ScheduleNotFound)?;
    if !s.enabled || s.next_due != Some(due) || due > now {
        return Err(Rejection::ScheduleNotDue);
    }
    // An expression that parsed when it was set parses now.
    let next_due = Cron::parse(&s.cron).ok().and_then(|c| c.next_after(due.max(now)));
    let run = scheduled_run(id, due);
    let start = StartRun {
        id: run,
        provider: s.provider.clone(),
        as_of: Some(due),
        rules: s.rules.clone(),
        schedule: Some(s.id.clone()),
    };
    let started = start_run(recon, ledger, p, &start, now);
    let skipped = started.err().map(|r| r.code().to_owned());
    p.record(Event::ScheduleFired(Box::new(ScheduleFired {
        id: id.to_owned(),
        due,
        run: skipped.is_none().then_some(run),
        skipped,
        next_due,
        at: now,
    })));
    Ok(())
}
