//! `decide` for the runtime configuration: checks a change against the declared settings
//! (`crate::settings`) and what is stored. Pure: no I/O, no clock.
//!
//! Check order (the first failing check names the rejection):
//! - `Set`: `unknown_config_key` (no setting's name or pattern names the key), then
//!   `invalid_config_value` (the setting's kind, then its own rule, refuses the value); the
//!   value the key already has replays (no events).
//! - `Reset`: `unknown_config_key`; a key with no value set replays (no events).
//!
//! A change is two events, in this order: its audit entry (`AuditRecorded`, level `info`,
//! action `config.set` or `config.reset`, the key as subject, the values before and after), then
//! `ConfigChanged`; so the command's position is the change's, as a replay answers. The entry's
//! id is derived from the key and the change's version (no randomness in the core; a key's
//! versions only grow). A value its entry could not hold is `invalid_config_value`: no kind of
//! value can today (no free text, a bounded size), and none is changed unaudited.
//!
//! The command API runs the same checks before it submits, to name why a value is invalid; the
//! rejection itself carries only its code.

use serde_json::Value;

use uuid::Uuid;

use super::command::Command;
use super::event::{ConfigChanged, Event};
use super::rejection::Rejection;
use super::state::State;
use crate::audit::{self, Entry, Level};
use crate::ids::Timestamp;
use crate::settings::{self, Refused};

/// The namespace of the ids of config changes' audit entries (UUIDv5 of key and version).
const AUDIT_NAMESPACE: Uuid = Uuid::from_u128(0x3c1e_8f52_d0a4_47b9_9a6e_51f0_2b7c_d813);

/// The events of a change (none: a replay).
pub fn decide(state: &State, command: &Command, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
    let (action, key, after) = match command {
        Command::Set(c) => {
            settings::check(&c.key, &c.value).map_err(|refused| match refused {
                Refused::UnknownKey => Rejection::UnknownConfigKey,
                Refused::InvalidValue(_) => Rejection::InvalidConfigValue,
            })?;
            ("config.set", &c.key, Some(c.value.clone()))
        }
        Command::Reset(c) => {
            settings::find(&c.key).ok_or(Rejection::UnknownConfigKey)?;
            ("config.reset", &c.key, None)
        }
    };
    let before: Option<&Value> = state.value(key);
    if before == after.as_ref() {
        return Ok(Vec::new());
    }
    let version = state.entry(key).map_or(0, |e| e.version) + 1;
    let entry = Entry {
        id: Uuid::new_v5(&AUDIT_NAMESPACE, format!("{key}\n{version}").as_bytes()),
        level: Level::Info,
        action: action.to_owned(),
        subject: key.clone(),
        before: before.cloned(),
        after: after.clone(),
        reason: None,
    };
    let audited = audit::entry_event(entry, now).map_err(|_| Rejection::InvalidConfigValue)?;
    let changed = Event::Changed(Box::new(ConfigChanged { key: key.clone(), before: before.cloned(), after, at: now }));
    Ok(vec![audited, changed.into()])
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

    /// The changes a command makes; each comes after its audit entry, which says the same.
    fn when(state: &mut AnyState, command: Command) -> Result<Vec<ConfigChanged>, Rejection> {
        let events = command.execute(state, Timestamp(2_000))?;
        let mut changes = Vec::new();
        for pair in events.chunks(2) {
            let [crate::Event::Audit(audit::Event::Recorded(audited)), changed] = pair else {
                panic!("not an audit entry and a change: {pair:?}")
            };
            let Ok(Event::Changed(c)) = Event::try_from(changed.clone()) else { panic!("not a config event") };
            let entry = &audited.entry;
            assert_eq!((entry.subject.as_str(), entry.level, audited.at), (c.key.as_str(), Level::Info, c.at));
            assert_eq!((&entry.before, &entry.after), (&c.before, &c.after));
            let action = if matches!(command, Command::Set(_)) { "config.set" } else { "config.reset" };
            assert_eq!(entry.action, action);
            changes.push(*c);
        }
        Ok(changes)
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
    fn each_change_has_an_audit_entry_of_its_own_id_and_the_change_is_the_last_event() {
        let mut state = given(&[]);
        let mut ids = Vec::new();
        for command in [Command::set(KEY, quota(5)), Command::set(KEY, quota(6)), Command::reset(KEY)] {
            let events = command.execute(&mut state, T0).unwrap();
            assert_eq!(events.iter().map(|e| e.event_type()).collect::<Vec<_>>(), ["AuditRecorded", "ConfigChanged"]);
            let crate::Event::Audit(audit::Event::Recorded(audited)) = &events[0] else { unreachable!() };
            ids.push(audited.entry.id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "one id per change");
        // The same change in another process, from the same state, is the same entry.
        let mut other = given(&[Command::set(KEY, quota(5))]);
        let mut again = given(&[Command::set(KEY, quota(5))]);
        assert_eq!(
            Command::set(KEY, quota(6)).execute(&mut other, T0),
            Command::set(KEY, quota(6)).execute(&mut again, T0)
        );
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
