//! JSON Schemas of every event payload, current and older versions, generated from the Rust
//! types. They are the public contract of the event stream; `schemas/events/` holds them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

pub use crate::domain::event_schemas;

/// One event type's payload schema at one version.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSchema {
    pub event_type: &'static str,
    pub version: i16,
    pub schema: serde_json::Value,
}

impl EventSchema {
    /// The schema of payload type `T` as `event_type` at `version`.
    pub fn of<T: JsonSchema>(event_type: &'static str, version: i16) -> EventSchema {
        EventSchema { event_type, version, schema: schema_of::<T>(&format!("{event_type} v{version}")) }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event_types;

    #[test]
    fn every_version_up_to_the_current_one_has_a_schema() {
        let all = event_schemas();
        for (event_type, current) in event_types() {
            for version in 1..=current {
                assert!(
                    all.iter().any(|s| s.event_type == event_type && s.version == version),
                    "{event_type} v{version} has no schema"
                );
            }
        }
        assert_eq!(all.len(), event_types().map(|(_, v)| v as usize).sum::<usize>());
    }

    #[test]
    fn a_schema_is_titled_and_published_by_its_type_and_version() {
        let schema = EventSchema::of::<crate::ledger::event::AccountOpened>("AccountOpened", 1);
        assert_eq!(schema.file_name(), "AccountOpened.v1.json");
        assert_eq!(schema.schema["title"], "AccountOpened v1");
        assert_eq!(schema.schema["type"], "object");
        assert!(schema.schema["properties"]["currency"].is_object(), "{}", schema.schema);
    }
}
