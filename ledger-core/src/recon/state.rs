//! Providers and fund movements as the writer holds them, and as the store keeps them: one
//! entity row each (`recon_provider` keyed by the provider's id, `recon_movement` keyed by
//! `{provider}/{id}`, so a provider's movements are one key range).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::Direction;
use super::event::{Event, MovementStep};
use super::run::{ItemResolution, RuleRow, Run, RunStatus};
use super::schedule::Schedule;
use super::{
    MOVEMENT_KIND, PROVIDER_KIND, RESOLUTION_KIND, RULE_KIND, RUN_KIND, SCHEDULE_KIND, movement_entity,
    provider_entity, resolution_entity, rule_entity, run_entity, schedule_entity,
};
use crate::domain::{DomainState, EntityRef, EntityRow, Touched, Typed};
use crate::ids::{MovementId, RunId, Timestamp, TransferId};
use crate::money::{Currencies, CurrencyCode};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub currency: CurrencyCode,
    pub base_url: String,
    pub tolerance: Decimal,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementStatus {
    /// Held; the provider has not moved the money yet.
    Pending,
    Succeeded,
    /// The provider refused (its reason kept).
    Refused,
    /// Every attempt failed (the last error kept).
    Failed,
}

/// One call to the provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    /// `error`, `succeeded`, `refused` or `failed` (the last error, after which it stopped).
    pub outcome: String,
    pub detail: Option<String>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub id: MovementId,
    pub provider: String,
    pub direction: Direction,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub reason: String,
    pub status: MovementStatus,
    /// The provider's reason for a refusal, or the last error of a failed movement.
    pub status_reason: Option<String>,
    /// The hold, posted on success and voided otherwise.
    pub transfer: TransferId,
    /// The segregation figures the movement was checked against.
    pub transactional: Decimal,
    pub players: Decimal,
    pub attempts: Vec<AttemptRecord>,
    /// When the next call to the provider is due (pending movements only).
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// By their rows' ids (`provider_entity`, `movement_entity`, `run_entity`).
    providers: HashMap<Uuid, Provider>,
    movements: HashMap<Uuid, Movement>,
    runs: HashMap<Uuid, Run>,
    rules: BTreeMap<String, RuleRow>,
    /// Each provider's run in progress.
    running: HashMap<String, RunId>,
    /// Each provider's latest completed run's time: where its next run's period starts.
    last_as_of: HashMap<String, Timestamp>,
    /// Items resolved by hand, by their rows' ids (`resolution_entity`).
    resolutions: HashMap<Uuid, ItemResolution>,
    /// By their rows' ids (`schedule_entity`).
    schedules: HashMap<Uuid, Schedule>,
}

impl State {
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.get(&provider_entity(id).id)
    }

    pub fn movement(&self, id: MovementId) -> Option<&Movement> {
        self.movements.get(&movement_entity(id).id)
    }

    pub fn run(&self, id: RunId) -> Option<&Run> {
        self.runs.get(&run_entity(id).id)
    }

    pub fn rule(&self, name: &str) -> Option<&RuleRow> {
        self.rules.get(name)
    }

    pub fn resolution(&self, item: Uuid) -> Option<&ItemResolution> {
        self.resolutions.get(&resolution_entity(item).id)
    }

    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.schedules.get(&schedule_entity(id).id)
    }

    /// The provider's run in progress, if any.
    pub fn running(&self, provider: &str) -> Option<&Run> {
        self.running.get(provider).and_then(|id| self.run(*id))
    }

    /// The time of the provider's latest completed run.
    pub fn last_as_of(&self, provider: &str) -> Option<Timestamp> {
        self.last_as_of.get(provider).copied()
    }

    fn index_run(&mut self, run: &Run) {
        match run.status {
            RunStatus::Running => {
                self.running.insert(run.provider.clone(), run.id);
            }
            RunStatus::Completed => {
                self.stop_running(run);
                let last = self.last_as_of.entry(run.provider.clone()).or_insert(run.as_of);
                *last = (*last).max(run.as_of);
            }
            RunStatus::Failed => self.stop_running(run),
        }
    }

    /// The provider runs nothing now, unless it runs another run (rows load in any order).
    fn stop_running(&mut self, run: &Run) {
        if self.running.get(&run.provider) == Some(&run.id) {
            self.running.remove(&run.provider);
        }
    }

    fn run_mut(&mut self, id: RunId, change: impl FnOnce(&mut Run)) {
        let run = self.runs.get_mut(&run_entity(id).id).expect("events name runs in memory");
        change(run);
        let run = run.clone();
        self.index_run(&run);
    }

    /// Every provider, in no order.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    fn step(&mut self, e: &MovementStep, status: MovementStatus, outcome: &str) {
        let m = self.movements.get_mut(&movement_entity(e.id).id).expect("events name movements in memory");
        m.attempts.push(AttemptRecord {
            attempt: e.attempt,
            outcome: outcome.to_owned(),
            detail: e.detail.clone(),
            at: e.at,
        });
        m.status = status;
        if status != MovementStatus::Pending {
            m.status_reason.clone_from(&e.detail);
        }
        m.next_attempt_at = e.next_attempt_at;
        m.at = e.at;
        m.version += 1;
    }
}

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] =
        &[PROVIDER_KIND, MOVEMENT_KIND, RUN_KIND, RULE_KIND, RESOLUTION_KIND, SCHEDULE_KIND];

    const SETTINGS: &'static [crate::settings::Setting] = super::SETTINGS;

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::ProviderSet(e) => {
                let key = provider_entity(&e.id).id;
                let (created_at, version) =
                    self.providers.get(&key).map_or((e.at, 1), |p| (p.created_at, p.version + 1));
                let provider = Provider {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    currency: e.currency.clone(),
                    base_url: e.base_url.clone(),
                    tolerance: e.tolerance,
                    created_at,
                    at: e.at,
                    version,
                };
                self.providers.insert(key, provider);
            }
            Event::MovementRequested(e) => {
                let key = movement_entity(e.id).id;
                assert!(!self.movements.contains_key(&key), "movement {} made twice", e.id);
                let movement = Movement {
                    id: e.id,
                    provider: e.provider.clone(),
                    direction: e.direction,
                    amount: e.amount,
                    currency: e.currency.clone(),
                    reason: e.reason.clone(),
                    status: MovementStatus::Pending,
                    status_reason: None,
                    transfer: e.transfer,
                    transactional: e.transactional,
                    players: e.players,
                    attempts: Vec::new(),
                    next_attempt_at: Some(e.at),
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                };
                self.movements.insert(key, movement);
            }
            Event::AttemptFailed(e) => self.step(e, MovementStatus::Pending, "error"),
            Event::Succeeded(e) => self.step(e, MovementStatus::Succeeded, "succeeded"),
            Event::Refused(e) => self.step(e, MovementStatus::Refused, "refused"),
            Event::Failed(e) => self.step(e, MovementStatus::Failed, "failed"),
            Event::RuleSet(e) => {
                let (created_at, version) =
                    self.rules.get(&e.name).map_or((e.at, 1), |r| (r.created_at, r.version + 1));
                let row = RuleRow { name: e.name.clone(), spec: e.spec.clone(), created_at, at: e.at, version };
                self.rules.insert(e.name.clone(), row);
            }
            Event::RunStarted(e) => {
                let key = run_entity(e.id).id;
                assert!(!self.runs.contains_key(&key), "run {} started twice", e.id);
                let run = Run::started(e);
                self.index_run(&run);
                self.runs.insert(key, run);
            }
            Event::RunCompleted(e) => self.run_mut(e.id, |r| r.completed(e)),
            Event::RunFailed(e) => self.run_mut(e.id, |r| r.failed(e)),
            // The run's own completion changed its row; the alert is its event beside it.
            Event::Discrepancy(_) => {}
            Event::ScheduleSet(e) => {
                let key = schedule_entity(&e.id).id;
                let old = self.schedules.get(&key);
                let schedule = Schedule {
                    id: e.id.clone(),
                    provider: e.provider.clone(),
                    cron: e.cron.clone(),
                    rules: e.rules.clone(),
                    enabled: e.enabled,
                    next_due: e.next_due,
                    last_fired: old.and_then(|s| s.last_fired),
                    last_run: old.and_then(|s| s.last_run),
                    last_skipped: old.and_then(|s| s.last_skipped.clone()),
                    created_at: old.map_or(e.at, |s| s.created_at),
                    at: e.at,
                    version: old.map_or(1, |s| s.version + 1),
                };
                self.schedules.insert(key, schedule);
            }
            Event::ScheduleFired(e) => {
                let s = self.schedules.get_mut(&schedule_entity(&e.id).id).expect("events name schedules in memory");
                s.next_due = e.next_due;
                s.last_fired = Some(e.due);
                s.last_run = e.run;
                s.last_skipped.clone_from(&e.skipped);
                s.at = e.at;
                s.version += 1;
            }
            Event::ItemResolved(e) => {
                let resolution = ItemResolution {
                    item: e.item,
                    run: e.run,
                    provider: e.provider.clone(),
                    action: e.action,
                    counterpart: e.counterpart.clone(),
                    reason: e.reason.clone(),
                    at: e.at,
                    version: 1,
                };
                self.resolutions.insert(resolution_entity(e.item).id, resolution);
            }
        }
    }

    /// A provider's or movement's events change only its own row.
    fn touched(&self, _: &Event, _: &mut Vec<Touched>) {}

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            PROVIDER_KIND => self.providers.get(&entity.id).map(provider_row),
            RUN_KIND => self.runs.get(&entity.id).map(run_row),
            RULE_KIND => self.rules.values().find(|r| rule_entity(&r.name) == entity).map(rule_row),
            RESOLUTION_KIND => self.resolutions.get(&entity.id).map(resolution_row),
            SCHEDULE_KIND => self.schedules.get(&entity.id).map(schedule_row),
            _ => self.movements.get(&entity.id).map(movement_row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        let providers = self.providers.values().map(provider_row);
        let runs = self.runs.values().map(run_row).chain(self.rules.values().map(rule_row));
        let runs = runs.chain(self.resolutions.values().map(resolution_row));
        let runs = runs.chain(self.schedules.values().map(schedule_row));
        providers.chain(self.movements.values().map(movement_row)).chain(runs).collect()
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let mismatch = || format!("row {} does not match the {} it holds", stored.key, stored.kind);
        if stored.kind == PROVIDER_KIND {
            let provider: Provider = stored.parse().map_err(|e| e.to_string())?;
            let row = provider_row(&provider);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.providers.insert(row.id, provider);
        } else if stored.kind == RUN_KIND {
            let run: Run = stored.parse().map_err(|e| e.to_string())?;
            let row = run_row(&run);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.index_run(&run);
            self.runs.insert(row.id, run);
        } else if stored.kind == SCHEDULE_KIND {
            let schedule: Schedule = stored.parse().map_err(|e| e.to_string())?;
            let row = schedule_row(&schedule);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.schedules.insert(row.id, schedule);
        } else if stored.kind == RESOLUTION_KIND {
            let resolution: ItemResolution = stored.parse().map_err(|e| e.to_string())?;
            let row = resolution_row(&resolution);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.resolutions.insert(row.id, resolution);
        } else if stored.kind == RULE_KIND {
            let rule: RuleRow = stored.parse().map_err(|e| e.to_string())?;
            let row = rule_row(&rule);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.rules.insert(rule.name.clone(), rule);
        } else {
            let movement: Movement = stored.parse().map_err(|e| e.to_string())?;
            let row = movement_row(&movement);
            if (row.id, &row.key, row.version) != (stored.id, &stored.key, stored.version) {
                return Err(mismatch());
            }
            self.movements.insert(row.id, movement);
        }
        Ok(())
    }
}

pub fn movement_key(provider: &str, id: MovementId) -> String {
    format!("{provider}/{id}")
}

/// A run's key: `{provider}/{id}`, so a provider's runs are one key range.
pub fn run_key(provider: &str, id: RunId) -> String {
    format!("{provider}/{id}")
}

fn run_row(r: &Run) -> EntityRow {
    EntityRow {
        kind: RUN_KIND.to_owned(),
        id: run_entity(r.id).id,
        key: run_key(&r.provider, r.id),
        version: r.version,
        state: serde_json::to_string(r).expect("runs serialize").into(),
        typed: Typed::of(r.clone()),
    }
}

fn schedule_row(s: &Schedule) -> EntityRow {
    EntityRow {
        kind: SCHEDULE_KIND.to_owned(),
        id: schedule_entity(&s.id).id,
        key: s.id.clone(),
        version: s.version,
        state: serde_json::to_string(s).expect("schedules serialize").into(),
        typed: Typed::of(s.clone()),
    }
}

fn resolution_row(r: &ItemResolution) -> EntityRow {
    EntityRow {
        kind: RESOLUTION_KIND.to_owned(),
        id: resolution_entity(r.item).id,
        key: r.item.to_string(),
        version: r.version,
        state: serde_json::to_string(r).expect("resolutions serialize").into(),
        typed: Typed::of(r.clone()),
    }
}

fn rule_row(r: &RuleRow) -> EntityRow {
    EntityRow {
        kind: RULE_KIND.to_owned(),
        id: rule_entity(&r.name).id,
        key: r.name.clone(),
        version: r.version,
        state: serde_json::to_string(r).expect("rules serialize").into(),
        typed: Typed::of(r.clone()),
    }
}

fn provider_row(p: &Provider) -> EntityRow {
    EntityRow {
        kind: PROVIDER_KIND.to_owned(),
        id: provider_entity(&p.id).id,
        key: p.id.clone(),
        version: p.version,
        // A struct of strings, numbers and ids always serializes.
        state: serde_json::to_string(p).expect("providers serialize").into(),
        typed: Typed::of(p.clone()),
    }
}

fn movement_row(m: &Movement) -> EntityRow {
    EntityRow {
        kind: MOVEMENT_KIND.to_owned(),
        id: movement_entity(m.id).id,
        key: movement_key(&m.provider, m.id),
        version: m.version,
        state: serde_json::to_string(m).expect("movements serialize").into(),
        typed: Typed::of(m.clone()),
    }
}
