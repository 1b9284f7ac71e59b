//! `decide` for the runtime configuration: checks a change against the declared settings
//! (`crate::settings`) and what is stored. Pure: no I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - `Set`: `unknown_config_key` (no setting's name or pattern names the key), then
//!   `invalid_config_value` (the setting's kind, then its own rule, refuses the value); the
//!   value the key already has replays (no events).
//! - `Reset`: `unknown_config_key`; a key with no value set replays (no events).
//!
//! The command API runs the same checks before it submits, to name why a value is invalid; the
//! rejection itself carries only its code.

use serde_json::Value;

use super::command::Command;
use super::event::{ConfigChanged, Event};
use super::rejection::Rejection;
use super::state::State;
use crate::ids::Timestamp;
use crate::settings::{self, Refused};

pub fn decide(state: &State, command: &Command, now: Timestamp) -> Result<Option<Event>, Rejection> {
    let (key, after) = match command {
        Command::Set(c) => {
            settings::check(&c.key, &c.value).map_err(|refused| match refused {
                Refused::UnknownKey => Rejection::UnknownConfigKey,
                Refused::InvalidValue(_) => Rejection::InvalidConfigValue,
            })?;
            (&c.key, Some(c.value.clone()))
        }
        Command::Reset(c) => {
            settings::find(&c.key).ok_or(Rejection::UnknownConfigKey)?;
            (&c.key, None)
        }
    };
    let before: Option<&Value> = state.value(key);
    if before == after.as_ref() {
        return Ok(None);
    }
    Ok(Some(Event::Changed(Box::new(ConfigChanged { key: key.clone(), before: before.cloned(), after, at: now }))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{DomainCommand, DomainEvent, DomainState, EntityRow, Subject};
    use crate::{Currencies, State as AnyState};

    const T0: Timestamp = Timestamp(1_000);
    const KEY: &str = "rate_limit.key.6f9619ff-8b86-d011-b42d-00cf4fc964ff";

    fn given(commands: &[Command]) -> AnyState {
        let mut state = AnyState::new(Currencies::standard());
        for command in commands {
            command.execute(&mut state, T0).unwrap();
        }
        state
    }

    fn when(state: &mut AnyState, command: Command) -> Result<Vec<ConfigChanged>, Rejection> {
        let events = command.execute(state, Timestamp(2_000))?;
        Ok(events
            .into_iter()
            .map(|e| match Event::try_from(e).ok() {
                Some(Event::Changed(c)) => *c,
                None => panic!("not a config event"),
            })
            .collect())
    }

    fn quota(n: u32) -> Value {
        json!({ "per_second": n, "burst": n * 2 })
    }

    fn changed(key: &str, before: Option<Value>, after: Option<Value>) -> ConfigChanged {
        ConfigChanged { key: key.into(), before, after, at: Timestamp(2_000) }
    }

    #[test]
    fn a_change_records_the_value_before_and_after_and_the_same_value_again_nothing() {
        let mut state = given(&[]);
        assert_eq!(when(&mut state, Command::set(KEY, quota(5))), Ok(vec![changed(KEY, None, Some(quota(5)))]));
        assert_eq!(state.config.value(KEY), Some(&quota(5)));
        assert_eq!(state.config.entry(KEY).map(|e| (e.version, e.at)), Some((1, Timestamp(2_000))));
        assert_eq!(when(&mut state, Command::set(KEY, quota(5))), Ok(vec![]));
        assert_eq!(
            when(&mut state, Command::set(KEY, quota(7))),
            Ok(vec![changed(KEY, Some(quota(5)), Some(quota(7)))])
        );
        assert_eq!(state.config.entry(KEY).map(|e| e.version), Some(2));
        // A reset takes the value back; the key keeps its row, unset.
        assert_eq!(when(&mut state, Command::reset(KEY)), Ok(vec![changed(KEY, Some(quota(7)), None)]));
        assert_eq!(state.config.value(KEY), None);
        assert_eq!(state.config.entry(KEY).map(|e| e.version), Some(3));
        assert_eq!(when(&mut state, Command::reset(KEY)), Ok(vec![]));
        assert_eq!(when(&mut given(&[]), Command::reset(KEY)), Ok(vec![]));
    }

    #[test]
    fn rejections_come_in_the_documented_order_and_change_nothing() {
        let mut state = given(&[Command::set(KEY, quota(5))]);
        let before = state.clone();
        // Unknown before invalid: a key no setting names, with a value no setting takes.
        assert_eq!(when(&mut state, Command::set("rate_limit.nothing", json!(1))), Err(Rejection::UnknownConfigKey));
        assert_eq!(when(&mut state, Command::set("rate_limit.key.x", quota(5))), Err(Rejection::UnknownConfigKey));
        assert_eq!(when(&mut state, Command::reset("rate_limit.nothing")), Err(Rejection::UnknownConfigKey));
        let zero = json!({ "per_second": 0, "burst": 1 });
        assert_eq!(when(&mut state, Command::set(KEY, zero)), Err(Rejection::InvalidConfigValue));
        assert_eq!(when(&mut state, Command::set(KEY, Value::Null)), Err(Rejection::InvalidConfigValue));
        assert_eq!(state, before);
        assert_eq!(Rejection::UnknownConfigKey.code(), "unknown_config_key");
        assert_eq!(Rejection::InvalidConfigValue.code(), "invalid_config_value");
        assert_eq!(crate::Rejection::from(Rejection::InvalidConfigValue).code(), "invalid_config_value");
    }

    #[test]
    fn a_key_is_one_entity_whose_row_is_read_back_as_it_was_and_events_decode_as_written() {
        let state = given(&[Command::set(KEY, quota(5)), Command::set("rate_limit.default", quota(9))]);
        let entity = super::super::entity(KEY);
        let command = Command::set(KEY, quota(1));
        assert_eq!(command.answer().map(|a| a.subject), Some(Subject::Entity(entity)));
        assert!(command.transfer_ids().is_empty());
        assert_eq!(state.version(Subject::Entity(entity)), Some(1));
        let rows = state.config.rows();
        assert_eq!(rows.len(), 2);
        let row = state.row(entity).unwrap();
        assert_eq!((row.kind.as_str(), row.key.as_str(), row.version), ("config", KEY, 1));
        let mut back = AnyState::new(Currencies::standard());
        for row in rows {
            let stored = EntityRow { typed: Default::default(), ..row };
            back.load(stored).unwrap();
        }
        assert_eq!(back.config, state.config);
        assert_eq!(back.config.entries().count(), 2);
        // A row that does not hold its key's entry is refused.
        let wrong = EntityRow { key: "rate_limit.default".into(), typed: Default::default(), ..row.clone() };
        assert!(back.config.load(wrong).is_err());
        let wrong = EntityRow { version: 2, typed: Default::default(), ..row.clone() };
        assert!(back.config.load(wrong).is_err());
        let wrong = EntityRow { id: uuid::Uuid::nil(), typed: Default::default(), ..row };
        assert!(back.config.load(wrong).is_err());

        let event = Event::Changed(Box::new(changed(KEY, None, Some(quota(5)))));
        assert_eq!(event.event_type(), "ConfigChanged");
        assert_eq!(event.at(), Timestamp(2_000));
        assert_eq!(event.subject(), Subject::Entity(entity));
        assert_eq!(Event::decode("ConfigChanged", 1, &event.payload()).unwrap(), event);
        assert!(Event::decode("ConfigChanged", 2, &event.payload()).is_err());
        assert!(Event::decode("ConfigChanged", 1, "{}").is_err());
        assert!(Event::decode("ConfigDropped", 1, "{}").is_err());
        assert_eq!(Event::schemas().len(), 1);
    }
}
