//! Runtime configuration: the values operators set for declared settings
//! (`crate::settings`), one entity per key (kind `config`, keyed by the setting's key). Each
//! change is a `ConfigChanged` event with the value before and after (the actor is in the
//! event's metadata: key id and channel), committed with its entry in the audit log
//! (`config.set`, `config.reset`); the stores read the entity rows back
//! (`ledger_store::config::RuntimeConfig`). This domain never knows a setting by name.

pub mod command;
pub mod decide;
pub mod event;
pub mod rejection;
pub mod state;

pub use command::Command;
pub use event::Event;
pub use rejection::Rejection;
pub use state::State;

use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{Timestamp, TransferId};

/// The API-key scopes of configuration.
pub mod scope {
    /// Change runtime settings (reading them is `read`).
    pub const WRITE: &str = "config:write";
}

/// Configuration declares no permission of its own: changing it is the platform's
/// `config:write`, reading it `config:read` (`crate::permission::platform`).
pub const SCOPES: &[crate::permission::Need<'static>] = &[];

/// The kind of entity a setting's stored value is, and its stream prefix.
pub const KIND: &str = "config";

/// The namespace of the ids of config entities (UUIDv5 of the key).
const NAMESPACE: Uuid = Uuid::from_u128(0x9d3f_41c2_7a0e_4b58_8e61_2c7d_05ab_e934);

/// The entity that holds `key`'s value: the same key is the same entity in every process.
pub fn entity(key: &str) -> EntityRef {
    EntityRef { kind: KIND, id: Uuid::new_v5(&NAMESPACE, key.as_bytes()) }
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        let events = decide::decide(&state.config, self, now)?;
        state.claim(&events).map_err(|_| Rejection::IdTaken)?;
        for event in &events {
            state.apply(event);
        }
        Ok(events)
    }

    fn transfer_ids(&self) -> Vec<TransferId> {
        vec![]
    }

    /// The key's entity; a replay (the value it already has) answers with its latest change.
    fn answer(&self) -> Option<Answer> {
        Some(Answer { subject: Subject::Entity(entity(self.key())), replay: Replay::Last })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}
