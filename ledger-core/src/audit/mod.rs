//! The audit log: what operators did (keys, roles, settings, manual decisions of any domain,
//! fund movements) and what the platform refused (403s, bursts of 429s, webhooks that ended
//! undelivered), each an `AuditRecorded` event in the log, so the hash chain and `ledger verify`
//! cover it. An entry is a record (`Subject::Record`): a stream of one event, `audit-<id>`, with
//! no stored row and nothing kept in the writer's memory, however many entries there are.
//!
//! Who acted is the event's metadata, as for every event: the API key, its channel, the source
//! (a request, a job, the command line); a domain whose manual decision is audited records its
//! entry in the same command, with `entry_event`.
//!
//! An entry never holds a secret: an API key (`ldg_…`) or a webhook secret (`whsec_…`) anywhere
//! in its text is refused (`secret_in_entry`), so a caller's mistake cannot write one to the log.

pub mod decide;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainEvent, DomainRejection, DomainState, EntityRef, EventDecodeError};
use crate::domain::{Subject, Touched};
use crate::ids::{Timestamp, TransferId};
use crate::money::Currencies;
use crate::schema::EventSchema;

/// The permission its readers need (`GET /v1/admin/audit`, GraphQL `auditLog`): the platform's
/// `audit:read`.
pub const READ: crate::permission::Need<'static> = crate::permission::platform::AUDIT_READ;

/// The audit log declares no permission of its own: reading it is the platform's `audit:read`.
pub const SCOPES: &[crate::permission::Need<'static>] = &[];

/// The kind of record an entry is, and its stream prefix.
pub const KIND: &str = "audit";

/// How much an entry matters: `critical` entries also reach the alert webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Info, Level::Warning, Level::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

/// What an entry says, as a caller asks for it to be recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The entry's id. Recording is at least once (a caller retries after a crash); the audit
    /// read model keeps one row per id.
    pub id: Uuid,
    pub level: Level,
    /// What was done, dotted: `keys.create`, `config.set`, `access.denied`, `webhook.failed`.
    pub action: String,
    /// What it was done to: a key id, a setting's name, a route, an endpoint.
    pub subject: String,
    /// A setting's value before and after (none for actions that are not changes).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
}

/// An entry as the log holds it: what was asked, and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecorded {
    pub entry: Entry,
    pub at: Timestamp,
}

/// A command of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Records an entry (boxed: the log's command type stays the ledger's size).
    Record(Box<Entry>),
}

/// An event of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Recorded(Box<AuditRecorded>),
}

/// Why an entry is refused. Checked in the order documented in `decide`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("an action is 1 to 64 of a-z 0-9 . _ : -, starting with a letter")]
    InvalidAction,
    #[error("a subject is 1 to 128 characters with no control characters")]
    InvalidSubject,
    #[error("a reason is 1 to 500 bytes, not blank, with no control characters")]
    InvalidReason,
    #[error("before and after are at most 16 KiB of JSON together")]
    EntryTooLarge,
    #[error("an audit entry never holds a secret (an API key or a webhook secret)")]
    SecretInEntry,
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}

impl Rejection {
    /// The stable, snake_case code clients match on.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::InvalidAction => "invalid_action",
            Rejection::InvalidSubject => "invalid_subject",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::EntryTooLarge => "entry_too_large",
            Rejection::SecretInEntry => "secret_in_entry",
        }
    }
}

/// The audit log keeps nothing in memory: an entry is its event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State;

impl DomainState for State {
    type Event = Event;

    fn new(_currencies: &Currencies) -> State {
        State
    }

    fn apply(&mut self, _event: &Event) {}

    fn touched(&self, _event: &Event, _out: &mut Vec<Touched>) {}
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, _state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        let Command::Record(entry) = self;
        Ok(vec![entry_event((**entry).clone(), now)?])
    }

    fn transfer_ids(&self) -> Vec<TransferId> {
        vec![]
    }

    fn answer(&self) -> Option<Answer> {
        None
    }
}

/// The event recording `entry` at `now`, if it may be recorded: what `Record` decides, for a
/// domain that audits its own manual decisions in the same command.
pub fn entry_event(entry: Entry, now: Timestamp) -> Result<crate::Event, Rejection> {
    decide::check(&entry)?;
    Ok(crate::Event::Audit(Event::Recorded(Box::new(AuditRecorded { entry, at: now }))))
}

/// Every event type of the audit log with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 1] = [("AuditRecorded", 1)];

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        "AuditRecorded"
    }

    fn subject(&self) -> Subject {
        let Event::Recorded(e) = self;
        Subject::Record(EntityRef { kind: KIND, id: e.entry.id })
    }

    fn at(&self) -> Timestamp {
        let Event::Recorded(e) = self;
        e.at
    }

    fn payload(&self) -> String {
        let Event::Recorded(e) = self;
        // Strings, ids, JSON values and a number always serialize.
        serde_json::to_string(e).expect("event payloads always serialize")
    }

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        if (event_type, schema_version) != ("AuditRecorded", 1) {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        serde_json::from_str(payload)
            .map(|e| Event::Recorded(Box::new(e)))
            .map_err(|e| EventDecodeError::Payload("AuditRecorded", e))
    }

    fn schemas() -> Vec<EventSchema> {
        vec![EventSchema::of::<AuditRecorded>("AuditRecorded", 1)]
    }
}

impl Event {
    /// The entry the event recorded.
    pub fn recorded(&self) -> &AuditRecorded {
        let Event::Recorded(e) = self;
        e
    }
}

/// An entry a domain records about a change of one of its entities, before its id.
pub struct Change<'a> {
    pub level: Level,
    pub action: &'static str,
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<&'a str>,
}

impl Change<'_> {
    pub fn info(action: &'static str, subject: String) -> Change<'static> {
        Change { level: Level::Info, action, subject, before: None, after: None, reason: None }
    }
}

/// Records `change` of the entity `entity` as the entity's version becomes `version`, in the
/// domain's command. The entry's id is UUIDv5 (in the domain's `namespace`) of the entity, that
/// version and the action, so a retried command never records a second.
pub fn record_change(
    p: &mut crate::postings::Postings<'_>,
    namespace: &Uuid,
    entity: Uuid,
    version: u32,
    change: Change<'_>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let name = format!("{entity}\n{version}\n{}", change.action);
    let entry = Entry {
        id: Uuid::new_v5(namespace, name.as_bytes()),
        level: change.level,
        action: change.action.to_owned(),
        subject: change.subject,
        before: change.before,
        after: change.after,
        reason: change.reason.map(str::to_owned),
    };
    p.record(entry_event(entry, now)?);
    Ok(())
}
