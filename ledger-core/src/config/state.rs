//! The values set for settings, as the writer holds them and as the store keeps them: one
//! entity row per key (kind `config`, natural key the setting's key). A reset key keeps its
//! row, with no value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KIND;
use super::event::Event;
use crate::domain::{DomainState, EntityRef, EntityRow, Touched, Typed};
use crate::ids::Timestamp;
use crate::money::Currencies;

/// A key's stored value (`None`: unset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub key: String,
    pub value: Option<Value>,
    /// When it last changed.
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// By the id of the key's entity.
    entries: BTreeMap<uuid::Uuid, Entry>,
}

impl State {
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(&super::entity(key).id)
    }

    /// The value set for `key`, if any.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.entry(key).and_then(|e| e.value.as_ref())
    }

    /// Every key with a stored row, set or reset.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }
}

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] = &[KIND];

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Changed(e) => {
                let entry = self.entries.entry(super::entity(&e.key).id).or_insert_with(|| Entry {
                    key: e.key.clone(),
                    value: None,
                    at: e.at,
                    version: 0,
                });
                entry.value.clone_from(&e.after);
                entry.at = e.at;
                entry.version += 1;
            }
        }
    }

    /// A change touches only its own key's row.
    fn touched(&self, _: &Event, _: &mut Vec<Touched>) {}

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        self.entries.get(&entity.id).map(row)
    }

    fn rows(&self) -> Vec<EntityRow> {
        self.entries.values().map(row).collect()
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let entry: Entry = stored.parse().map_err(|e| e.to_string())?;
        if entry.key != stored.key || super::entity(&entry.key).id != stored.id || entry.version != stored.version {
            return Err(format!("row {} does not match the config entry it holds", stored.key));
        }
        self.entries.insert(stored.id, entry);
        Ok(())
    }
}

fn row(e: &Entry) -> EntityRow {
    EntityRow {
        kind: KIND.to_owned(),
        id: super::entity(&e.key).id,
        key: e.key.clone(),
        version: e.version,
        // Strings, numbers and JSON values always serialize.
        state: serde_json::to_string(e).expect("config entries serialize").into(),
        typed: Typed::of(e.clone()),
    }
}
