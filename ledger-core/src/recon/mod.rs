//! Reconciliation with payment providers (seed 000). Regulators require that the players'
//! money a payment provider holds sits on a transactional account apart from the operator's own
//! (operational) money, and that each provider's transactional balance covers the players'
//! balances held there. This domain keeps, per provider, the two accounts and the fund
//! movements between them (a saga whose steps are events: a hold, the provider's answer, then
//! posted or voided), refusing up front a movement that would leave the transactional account
//! short of what the players are owed (`segregation_breach`). The matching of a provider's
//! statement against the ledger is [`matching`], by operator rules ([`rule`]).
//!
//! Chart of accounts, per provider in its currency: `recon:{id}:transactional` and
//! `recon:{id}:operational` (assets, never below zero). A player's liability is attributed to a
//! provider by its account's `metadata.provider`; their sum is kept by the ledger state
//! (`LedgerState::attributed_to`).

pub mod command;
pub mod cron;
pub mod decide;
pub mod event;
pub mod items;
pub mod matching;
pub mod rejection;
pub mod rule;
pub mod run;
pub mod schedule;
pub mod state;

pub use command::{
    Attempt, Command, CompleteRun, Direction, MoveMoney, Resolution, ResolveItem, SetProvider, StartRun, Terms, Totals,
};
pub use event::Event;
pub use rejection::Rejection;
pub use state::State;

use serde_json::Value;
use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{AccountId, MovementId, RunId, Timestamp, TransferId};
use crate::settings::{Kind, Segment, Setting};

/// The permissions the reconciliation's handlers ask for (see `crate::permission`).
pub mod scope {
    use crate::permission::Need;

    /// Operators: providers, rules and schedules.
    pub const ADMIN: Need<'static> = Need::new("recon", "admin");
    /// Treasury: fund movements between a provider's transactional and operational balances.
    pub const MOVE: Need<'static> = Need::new("recon", "move");
    /// Start reconciliation runs by hand.
    pub const RUN: Need<'static> = Need::new("recon", "run");
    /// Match or dismiss a run's items by hand.
    pub const RESOLVE: Need<'static> = Need::new("recon", "resolve");
    /// Providers, their balances and movements.
    pub const READ: Need<'static> = Need::read("recon");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] =
    &[scope::ADMIN, scope::MOVE, scope::RUN, scope::RESOLVE, scope::READ];

/// The kinds of entity.
pub const PROVIDER_KIND: &str = "recon_provider";
pub const MOVEMENT_KIND: &str = "recon_movement";
pub const RUN_KIND: &str = "recon_run";
pub const RULE_KIND: &str = "recon_rule";
pub const RESOLUTION_KIND: &str = "recon_resolution";
pub const SCHEDULE_KIND: &str = "recon_schedule";

pub const MAX_ATTEMPTS_KEY: &str = "recon.movement.max_attempts";
pub const RETRY_SECONDS_KEY: &str = "recon.movement.retry_seconds";
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_RETRY_SECONDS: u32 = 5;
/// The longest wait between two attempts, however many failed.
pub const MAX_RETRY_SECONDS: u32 = 3600;

/// The runtime settings the movements run under (`Terms::resolve` reads them).
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: MAX_ATTEMPTS_KEY,
        kind: Kind::Integer { min: 1, max: 50 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_MAX_ATTEMPTS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Calls to a provider a fund movement makes before it is voided as failed",
    },
    Setting {
        name: RETRY_SECONDS_KEY,
        kind: Kind::Integer { min: 1, max: 3600 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_RETRY_SECONDS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Seconds before a fund movement's second call to its provider; each later wait doubles (at most an hour)",
    },
];

/// The namespace of the reconciliation's derived ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x9a3e_51c7_2b8d_4f06_b1e4_7c5a_d2f9_0e83);

pub fn provider_entity(id: &str) -> EntityRef {
    EntityRef { kind: PROVIDER_KIND, id: Uuid::new_v5(&NAMESPACE, format!("provider:{id}").as_bytes()) }
}

pub fn movement_entity(id: MovementId) -> EntityRef {
    EntityRef { kind: MOVEMENT_KIND, id: Uuid::new_v5(&NAMESPACE, format!("movement:{}", id.0).as_bytes()) }
}

fn account(code: String) -> (AccountId, String) {
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

pub fn rule_entity(name: &str) -> EntityRef {
    EntityRef { kind: RULE_KIND, id: Uuid::new_v5(&NAMESPACE, format!("rule:{name}").as_bytes()) }
}

/// An item's resolution by hand: a row of its own, keyed by the item's id.
pub fn resolution_entity(item: Uuid) -> EntityRef {
    EntityRef { kind: RESOLUTION_KIND, id: Uuid::new_v5(&NAMESPACE, format!("resolution:{item}").as_bytes()) }
}

pub fn schedule_entity(id: &str) -> EntityRef {
    EntityRef { kind: SCHEDULE_KIND, id: Uuid::new_v5(&NAMESPACE, format!("schedule:{id}").as_bytes()) }
}

pub fn run_entity(id: RunId) -> EntityRef {
    EntityRef { kind: RUN_KIND, id: Uuid::new_v5(&NAMESPACE, format!("run:{}", id.0).as_bytes()) }
}

/// A provider's transactional account: the players' money it holds.
pub fn transactional_account(provider: &str) -> (AccountId, String) {
    account(format!("recon:{provider}:transactional"))
}

/// A provider's operational account: the operator's own money it holds.
pub fn operational_account(provider: &str) -> (AccountId, String) {
    account(format!("recon:{provider}:operational"))
}

/// The hold a movement makes, posted when the provider moves the money, voided otherwise.
pub fn movement_transfer(id: MovementId) -> TransferId {
    TransferId(Uuid::new_v5(&movement_entity(id).id, b"hold"))
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        crate::postings::execute(state, |state, postings| decide::decide(state, postings, self, now))
    }

    /// A movement's hold is the only transfer a command names.
    fn transfer_ids(&self) -> Vec<TransferId> {
        match self {
            Command::MoveMoney(c) => vec![movement_transfer(c.id)],
            Command::RecordAttempt(a) => vec![movement_transfer(a.id)],
            Command::SetProvider(_)
            | Command::SetRule { .. }
            | Command::StartRun(_)
            | Command::CompleteRun(_)
            | Command::FailRun { .. }
            | Command::ResolveItem(_)
            | Command::SetSchedule(_)
            | Command::FireSchedule { .. } => Vec::new(),
        }
    }

    fn answer(&self) -> Option<Answer> {
        let (subject, replay) = match self {
            Command::SetProvider(c) => (provider_entity(&c.id), Replay::Last),
            Command::MoveMoney(c) => (movement_entity(c.id), Replay::First),
            Command::RecordAttempt(a) => (movement_entity(a.id), Replay::Last),
            Command::SetRule { name, .. } => (rule_entity(name), Replay::Last),
            Command::StartRun(c) => (run_entity(c.id), Replay::First),
            Command::CompleteRun(c) => (run_entity(c.id), Replay::Last),
            Command::FailRun { id, .. } => (run_entity(*id), Replay::Last),
            Command::ResolveItem(c) => (resolution_entity(c.item), Replay::First),
            Command::SetSchedule(c) => (schedule_entity(&c.id), Replay::Last),
            Command::FireSchedule { id, .. } => (schedule_entity(id), Replay::Last),
        };
        Some(Answer { subject: Subject::Entity(subject), replay })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}
