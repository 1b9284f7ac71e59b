//! JSON Schemas of every event payload, current and older versions, generated from the Rust
//! types. They are the public contract of the event stream; `schemas/events/` holds them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

use crate::event::{AccountOpened, AccountStatusChanged, PendingPosted, PendingReleased, TransferCreated, old};

/// One event type's payload schema at one version.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSchema {
    pub event_type: &'static str,
    pub version: i16,
    pub schema: serde_json::Value,
}

impl EventSchema {
    /// The file name it is published under, e.g. `AccountOpened.v1.json`.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.json", self.event_type, self.version)
    }
}

/// The schema of `T` as written (serialized), titled `"{event_type} v{version}"`.
pub fn schema_of<T: JsonSchema>(title: &str) -> serde_json::Value {
    let mut schema = SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>();
    schema.insert("title".to_owned(), serde_json::Value::String(title.to_owned()));
    schema.to_value()
}

fn entry<T: JsonSchema>(event_type: &'static str, version: i16) -> EventSchema {
    EventSchema { event_type, version, schema: schema_of::<T>(&format!("{event_type} v{version}")) }
}

/// Every event type at every version it was ever written with, in a fixed order.
pub fn event_schemas() -> Vec<EventSchema> {
    let mut all = vec![entry::<AccountOpened>("AccountOpened", 1)];
    for status in ["AccountFrozen", "AccountUnfrozen", "AccountClosed"] {
        all.push(entry::<old::AccountStatusChangedV1>(status, 1));
        all.push(entry::<AccountStatusChanged>(status, 2));
    }
    for created in ["TransferPosted", "PendingTransferCreated"] {
        all.push(entry::<TransferCreated>(created, 1));
    }
    all.push(entry::<PendingPosted>("PendingTransferPosted", 1));
    for released in ["PendingTransferVoided", "PendingTransferExpired"] {
        all.push(entry::<PendingReleased>(released, 1));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EVENT_TYPES;

    #[test]
    fn every_version_up_to_the_current_one_has_a_schema() {
        let all = event_schemas();
        for (event_type, current) in EVENT_TYPES {
            for version in 1..=current {
                assert!(
                    all.iter().any(|s| s.event_type == event_type && s.version == version),
                    "{event_type} v{version} has no schema"
                );
            }
        }
        assert_eq!(all.len(), EVENT_TYPES.iter().map(|(_, v)| *v as usize).sum::<usize>());
    }
}
