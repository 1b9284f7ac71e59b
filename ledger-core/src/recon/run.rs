//! Reconciliation runs: started by hand or by a schedule, computed by the runtime (the
//! provider's report against the ledger, by the run's rules), recorded whole. A provider runs
//! one run at a time; a run's period starts where the provider's previous completed run ended.
//! Refusals, in order: `SetRule`: `invalid_rule_name`, `invalid_rule` (`rule::Rule::check`;
//! the same rule again changes nothing). `StartRun`: `provider_not_found`, `invalid_rules` (none, more than 16,
//! or a name twice), `rule_not_found`, `invalid_as_of` (in the future, or before the previous
//! run's time), `run_in_progress`; a run with the same id and fields answers as it stands
//! (`run_exists` otherwise). `CompleteRun` / `FailRun`: `run_not_found`, `run_not_running`
//! (a second completion of the same run is the same: it changes nothing), `invalid_reason`.
//! `ResolveItem`: an item resolved before answers as it stands when asked the same
//! (`item_closed` otherwise); then `item_closed` (the store holds it other than open),
//! `invalid_reason`, `invalid_counterpart`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::command::{CompleteRun, Resolution, ResolveItem, StartRun, Totals};
use super::event::{Discrepancy, Event, ItemResolved, RuleSet, RunCompleted, RunFailed, RunRule, RunStarted};
use super::rejection::Rejection;
use super::rule::{Rule, RuleSpec, is_rule_name};
use super::state::State;
use super::{resolution_entity, rule_entity, run_entity};
use crate::audit::{Change, Level};
use crate::ids::{RunId, Timestamp};
use crate::postings::Postings;
use crate::text::valid_reason;

/// The most rules one run applies.
pub const MAX_RULES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub provider: String,
    pub from: Option<Timestamp>,
    pub as_of: Timestamp,
    pub rules: Vec<RunRule>,
    pub schedule: Option<String>,
    pub status: RunStatus,
    /// The players' balances the writer summed when the run started as of now.
    pub players_at_start: Option<Decimal>,
    pub reported: Option<Decimal>,
    pub players: Option<Decimal>,
    pub difference: Option<Decimal>,
    /// Whether the balances agreed within the provider's tolerance.
    pub balanced: Option<bool>,
    pub totals: Option<Totals>,
    pub lines_hash: Option<String>,
    pub items_hash: Option<String>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    pub started_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

impl Run {
    pub(super) fn started(e: &RunStarted) -> Run {
        Run {
            id: e.id,
            provider: e.provider.clone(),
            from: e.from,
            as_of: e.as_of,
            rules: e.rules.clone(),
            schedule: e.schedule.clone(),
            status: RunStatus::Running,
            players_at_start: e.players,
            reported: None,
            players: None,
            difference: None,
            balanced: None,
            totals: None,
            lines_hash: None,
            items_hash: None,
            duration_ms: None,
            reason: None,
            started_at: e.at,
            at: e.at,
            version: 1,
        }
    }

    pub(super) fn completed(&mut self, e: &RunCompleted) {
        self.status = RunStatus::Completed;
        self.reported = Some(e.reported);
        self.players = Some(e.players);
        self.difference = Some(e.difference);
        self.balanced = Some(e.matched);
        self.totals = Some(e.totals);
        self.lines_hash = Some(e.lines_hash.clone());
        self.items_hash = Some(e.items_hash.clone());
        self.duration_ms = Some(e.duration_ms);
        self.at = e.at;
        self.version += 1;
    }

    pub(super) fn failed(&mut self, e: &RunFailed) {
        self.status = RunStatus::Failed;
        self.reason = Some(e.reason.clone());
        self.at = e.at;
        self.version += 1;
    }
}

/// A matching rule as the store keeps it: its canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub name: String,
    pub spec: serde_json::Value,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

impl RuleRow {
    /// The checked rule (a stored rule was checked when it was set).
    pub fn rule(&self) -> Option<Rule> {
        let spec: RuleSpec = serde_json::from_value(self.spec.clone()).ok()?;
        Rule::check(&spec).ok()
    }
}

pub(super) fn set_rule(
    recon: &State,
    p: &mut Postings<'_>,
    name: &str,
    spec: &RuleSpec,
    now: Timestamp,
) -> Result<(), Rejection> {
    if !is_rule_name(name) {
        return Err(Rejection::InvalidRuleName);
    }
    let rule = Rule::check(spec).map_err(|_| Rejection::InvalidRule)?;
    // A spec of strings and JSON values always serializes.
    let canonical = serde_json::to_value(rule.spec()).expect("rule specs serialize");
    let existing = recon.rule(name);
    if existing.is_some_and(|r| r.spec == canonical) {
        return Ok(());
    }
    p.record(Event::RuleSet(Box::new(RuleSet { name: name.to_owned(), spec: canonical.clone(), at: now })));
    let change = Change {
        level: Level::Info,
        action: "recon.rule.set",
        subject: name.to_owned(),
        before: existing.map(|r| r.spec.clone()),
        after: Some(canonical),
        reason: None,
    };
    super::decide::audited(p, rule_entity(name).id, existing.map_or(1, |r| r.version + 1), change, now)
}

pub(crate) fn start_run(
    recon: &State,
    ledger: &crate::LedgerState,
    p: &mut Postings<'_>,
    c: &StartRun,
    now: Timestamp,
) -> Result<(), Rejection> {
    if let Some(run) = recon.run(c.id) {
        let names: Vec<&String> = run.rules.iter().map(|r| &r.name).collect();
        let same = (&run.provider, &run.schedule) == (&c.provider, &c.schedule)
            && names == c.rules.iter().collect::<Vec<_>>()
            && c.as_of.is_none_or(|t| t == run.as_of);
        return if same { Ok(()) } else { Err(Rejection::RunExists) };
    }
    let provider = recon.provider(&c.provider).ok_or(Rejection::ProviderNotFound)?;
    let mut seen = std::collections::BTreeSet::new();
    if c.rules.is_empty() || c.rules.len() > MAX_RULES || !c.rules.iter().all(|r| seen.insert(r)) {
        return Err(Rejection::InvalidRules);
    }
    let rules = c
        .rules
        .iter()
        .map(|name| recon.rule(name).map(|r| RunRule { name: name.clone(), spec: r.spec.clone() }))
        .collect::<Option<Vec<RunRule>>>()
        .ok_or(Rejection::RuleNotFound)?;
    let as_of = c.as_of.unwrap_or(now);
    let from = recon.last_as_of(&provider.id);
    if as_of > now || from.is_some_and(|f| as_of < f) {
        return Err(Rejection::InvalidAsOf);
    }
    if recon.running(&provider.id).is_some() {
        return Err(Rejection::RunInProgress);
    }
    let players = c.as_of.is_none().then(|| ledger.attributed_to(&provider.id, &provider.currency));
    p.record(Event::RunStarted(Box::new(RunStarted {
        id: c.id,
        provider: provider.id.clone(),
        from,
        as_of,
        rules,
        schedule: c.schedule.clone(),
        players,
        at: now,
    })));
    Ok(())
}

fn running(recon: &State, id: RunId) -> Result<&Run, Rejection> {
    let run = recon.run(id).ok_or(Rejection::RunNotFound)?;
    if run.status != RunStatus::Running {
        return Err(Rejection::RunNotRunning);
    }
    Ok(run)
}

pub(super) fn complete_run(
    recon: &State,
    p: &mut Postings<'_>,
    c: &CompleteRun,
    now: Timestamp,
) -> Result<(), Rejection> {
    if recon.run(c.id).is_some_and(|r| r.status == RunStatus::Completed && r.items_hash.as_ref() == Some(&c.items_hash))
    {
        return Ok(());
    }
    let run = running(recon, c.id)?;
    let provider = recon.provider(&run.provider).ok_or(Rejection::ProviderNotFound)?;
    let difference = c.reported.checked_sub(c.players).ok_or(crate::ledger::Rejection::Overflow)?;
    let matched = difference.abs() <= provider.tolerance;
    p.record(Event::RunCompleted(Box::new(RunCompleted {
        id: c.id,
        reported: c.reported,
        players: c.players,
        difference,
        matched,
        totals: c.totals,
        lines_hash: c.lines_hash.clone(),
        items_hash: c.items_hash.clone(),
        duration_ms: c.duration_ms,
        at: now,
    })));
    if matched {
        return Ok(());
    }
    p.record(Event::Discrepancy(Box::new(Discrepancy {
        run: c.id,
        provider: provider.id.clone(),
        currency: provider.currency.clone(),
        reported: c.reported,
        players: c.players,
        difference,
        tolerance: provider.tolerance,
        as_of: run.as_of,
        at: now,
    })));
    let change = Change {
        level: Level::Critical,
        action: "recon.discrepancy",
        subject: provider.id.clone(),
        before: None,
        after: Some(json!({"run": c.id.to_string(), "reported": c.reported.to_string(),
            "players": c.players.to_string(), "difference": difference.to_string(),
            "tolerance": provider.tolerance.to_string(), "as_of": run.as_of.rfc3339()})),
        reason: None,
    };
    super::decide::audited(p, run_entity(c.id).id, run.version + 1, change, now)
}

/// An item resolved by hand, as the store keeps it (a row keyed by the item's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResolution {
    pub item: uuid::Uuid,
    pub run: RunId,
    pub provider: String,
    pub action: Resolution,
    pub counterpart: Option<String>,
    pub reason: String,
    pub at: Timestamp,
    pub version: u32,
}

impl ItemResolution {
    /// The item's status once resolved.
    pub fn status(&self) -> &'static str {
        match self.action {
            Resolution::Match => "matched_by_hand",
            Resolution::Dismiss => "dismissed",
        }
    }
}

pub(super) fn resolve_item(
    recon: &State,
    p: &mut Postings<'_>,
    c: &ResolveItem,
    now: Timestamp,
) -> Result<(), Rejection> {
    if let Some(done) = recon.resolution(c.item) {
        let same = (done.action, &done.counterpart, &done.reason) == (c.action, &c.counterpart, &c.reason);
        return if same { Ok(()) } else { Err(Rejection::ItemClosed) };
    }
    if c.status != "open" {
        return Err(Rejection::ItemClosed);
    }
    if !valid_reason(&c.reason) {
        return Err(Rejection::InvalidReason);
    }
    if !c.counterpart.as_deref().is_none_or(crate::text::valid_text) {
        return Err(Rejection::InvalidCounterpart);
    }
    p.record(Event::ItemResolved(Box::new(ItemResolved {
        item: c.item,
        run: c.run,
        provider: c.provider.clone(),
        action: c.action,
        counterpart: c.counterpart.clone(),
        reason: c.reason.clone(),
        at: now,
    })));
    let action = match c.action {
        Resolution::Match => "recon.item.match",
        Resolution::Dismiss => "recon.item.dismiss",
    };
    let change = Change {
        level: Level::Info,
        action,
        subject: c.item.to_string(),
        before: Some(json!({"status": "open"})),
        after: Some(json!({"run": c.run.to_string(), "provider": c.provider, "counterpart": c.counterpart})),
        reason: Some(&c.reason),
    };
    super::decide::audited(p, resolution_entity(c.item).id, 1, change, now)
}

pub(super) fn fail_run(
    recon: &State,
    p: &mut Postings<'_>,
    id: RunId,
    reason: &str,
    now: Timestamp,
) -> Result<(), Rejection> {
    if recon.run(id).is_some_and(|r| r.status == RunStatus::Failed && r.reason.as_deref() == Some(reason)) {
        return Ok(());
    }
    running(recon, id)?;
    if !valid_reason(reason) {
        return Err(Rejection::InvalidReason);
    }
    p.record(Event::RunFailed(Box::new(RunFailed { id, reason: reason.to_owned(), at: now })));
    Ok(())
}
