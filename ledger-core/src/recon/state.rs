//! Providers and fund movements as the writer holds them, and as the store keeps them: one
//! entity row each (`recon_provider` keyed by the provider's id, `recon_movement` keyed by
//! `{provider}/{id}`, so a provider's movements are one key range).

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::Direction;
use super::event::{Event, MovementStep};
use super::{MOVEMENT_KIND, PROVIDER_KIND, movement_entity, provider_entity};
use crate::domain::{DomainState, EntityRef, EntityRow, Touched, Typed};
use crate::ids::{MovementId, Timestamp, TransferId};
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
    /// By their rows' ids (`provider_entity`, `movement_entity`).
    providers: HashMap<Uuid, Provider>,
    movements: HashMap<Uuid, Movement>,
}

impl State {
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.get(&provider_entity(id).id)
    }

    pub fn movement(&self, id: MovementId) -> Option<&Movement> {
        self.movements.get(&movement_entity(id).id)
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

    const KINDS: &'static [&'static str] = &[PROVIDER_KIND, MOVEMENT_KIND];

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
        }
    }

    /// A provider's or movement's events change only its own row.
    fn touched(&self, _: &Event, _: &mut Vec<Touched>) {}

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            PROVIDER_KIND => self.providers.get(&entity.id).map(provider_row),
            _ => self.movements.get(&entity.id).map(movement_row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        self.providers.values().map(provider_row).chain(self.movements.values().map(movement_row)).collect()
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
