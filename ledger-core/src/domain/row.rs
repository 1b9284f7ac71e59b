//! A domain entity as a store keeps it: one generic keyed row, its state as JSON text (and, in
//! the process that made it, as the domain's own type).

use std::any::Any;
use std::sync::Arc;

/// The stored form of a domain entity: one generic keyed row, written in the commit of the
/// events that changed it and read back at start-up.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityRow {
    pub kind: String,
    pub id: uuid::Uuid,
    /// The domain's natural key, e.g. a certificate's code.
    pub key: String,
    pub version: u32,
    /// The entity as JSON text: serialized once when the entity changes, then shared (not
    /// copied) by the commit, the committed view and the command's answer.
    pub state: Arc<str>,
    /// The same entity as the domain's own type, when the row was made in this process.
    pub typed: Typed,
}

/// An entity as its domain's own type, beside its JSON text in an [`EntityRow`]: readers in the
/// process that made the row (the committed view, a command's answer) take it as it is instead
/// of parsing the text again. A row read back from a store has none. Two rows compare by their
/// text, which this mirrors.
#[derive(Clone, Default)]
pub struct Typed(Option<Arc<dyn Any + Send + Sync>>);

impl Typed {
    pub fn of<T: Any + Send + Sync>(value: T) -> Typed {
        Typed(Some(Arc::new(value)))
    }
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Typed(..)" } else { "Typed(None)" })
    }
}

impl PartialEq for Typed {
    fn eq(&self, _: &Typed) -> bool {
        true
    }
}

impl EntityRow {
    /// The state as the domain's type.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.state)
    }

    /// The state as the domain's type, shared: the one the row was made from when there is one
    /// (no parsing), else parsed from the text.
    pub fn typed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(&self) -> Result<Arc<T>, serde_json::Error> {
        if let Some(value) = &self.typed.0
            && let Ok(value) = Arc::clone(value).downcast::<T>()
        {
            return Ok(value);
        }
        self.parse().map(Arc::new)
    }

    /// Whether two rows hold the same entity, their states compared as JSON values (a store may
    /// give the text back reformatted, e.g. Postgres' `jsonb`).
    pub fn same_as(&self, other: &EntityRow) -> bool {
        let value = |r: &EntityRow| serde_json::from_str::<serde_json::Value>(&r.state).ok();
        (&self.kind, self.id, &self.key, self.version) == (&other.kind, other.id, &other.key, other.version)
            && value(self).is_some()
            && value(self) == value(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, typed: Typed) -> EntityRow {
        let id = uuid::Uuid::from_u128(7);
        EntityRow { kind: "k".into(), id, key: "key".into(), version: 1, state: state.into(), typed }
    }

    #[test]
    fn a_row_made_in_this_process_gives_its_entity_without_parsing_and_one_read_back_parses() {
        // The text is not even JSON: the value the row was made from is what comes back.
        let made = row("not json", Typed::of(vec![1u32, 2]));
        assert_eq!(*made.typed::<Vec<u32>>().unwrap(), vec![1, 2]);
        assert!(made.parse::<Vec<u32>>().is_err());
        // Asked for another type, the text is parsed.
        let made = row("[3]", Typed::of(vec![1u32, 2]));
        assert_eq!(*made.typed::<Vec<u64>>().unwrap(), vec![3]);
        // Read back from a store: parsed.
        let stored = row("[4, 5]", Typed::default());
        assert_eq!(*stored.typed::<Vec<u32>>().unwrap(), vec![4, 5]);
        assert!(row("[", Typed::default()).typed::<Vec<u32>>().is_err());
        // A row and the same row read back are equal: the typed value mirrors the text.
        assert_eq!(row("[4, 5]", Typed::of(vec![4u32, 5])), stored);
        assert_ne!(row("[4]", Typed::of(vec![4u32, 5])), stored);
        assert_eq!(format!("{:?}", Typed::of(1u8)), "Typed(..)");
        assert_eq!(format!("{:?}", Typed::default()), "Typed(None)");
    }

    #[test]
    fn rows_are_the_same_when_their_fields_are_and_their_states_are_equal_json() {
        let ours = row(r#"{"a":1,"b":[2,3]}"#, Typed::default());
        // A store may give the text back reformatted (Postgres' jsonb: spaces, key order).
        assert!(ours.same_as(&row(r#"{"b": [2, 3], "a": 1}"#, Typed::default())));
        assert!(!ours.same_as(&row(r#"{"a":1,"b":[3,2]}"#, Typed::default())));
        assert!(!ours.same_as(&EntityRow { version: 2, ..ours.clone() }));
        assert!(!ours.same_as(&EntityRow { key: "other".into(), ..ours.clone() }));
        // Text that is not JSON is never the same, not even as itself.
        let broken = row("{", Typed::default());
        assert!(!broken.same_as(&broken));
    }
}
