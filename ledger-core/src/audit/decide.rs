//! Whether an audit entry may be recorded. Checks, in this order:
//! 1. `invalid_action`: 1 to 64 of `a-z 0-9 . _ : -`, starting with a letter;
//! 2. `invalid_subject`: the free-text rule (`text::valid_text`);
//! 3. `invalid_reason`: a reason, when given, follows `text::valid_reason`;
//! 4. `entry_too_large`: before and after together at most 16 KiB of JSON;
//! 5. `secret_in_entry`: no text of the entry (subject, reason, any string in before or after)
//!    holds an API key (`ldg_`) or a webhook secret (`whsec_`).

use super::{Entry, Rejection};
use crate::text::{valid_reason, valid_text};

/// The largest before and after, together, in bytes of JSON.
pub const MAX_VALUES_BYTES: usize = 16 * 1024;

/// What secrets look like where the engine makes them.
const SECRET_PREFIXES: [&str; 2] = ["ldg_", "whsec_"];

/// Whether a text looks like it holds a secret the engine makes (an entry holding it is
/// `secret_in_entry`): domains keep such texts out of the ids they audit by.
pub fn looks_secret(text: &str) -> bool {
    SECRET_PREFIXES.iter().any(|p| text.contains(p))
}

pub fn check(entry: &Entry) -> Result<(), Rejection> {
    let action = entry.action.as_bytes();
    let action_ok = (1..=64).contains(&action.len())
        && action[0].is_ascii_lowercase()
        && action.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._:-".contains(b));
    if !action_ok {
        return Err(Rejection::InvalidAction);
    }
    if !valid_text(&entry.subject) {
        return Err(Rejection::InvalidSubject);
    }
    if entry.reason.as_deref().is_some_and(|r| !valid_reason(r)) {
        return Err(Rejection::InvalidReason);
    }
    let values = [&entry.before, &entry.after];
    let size: usize = values.iter().filter_map(|v| v.as_ref()).map(|v| v.to_string().len()).sum();
    if size > MAX_VALUES_BYTES {
        return Err(Rejection::EntryTooLarge);
    }
    let mut texts = vec![entry.subject.as_str()];
    texts.extend(entry.reason.as_deref());
    for value in values.into_iter().flatten() {
        strings(value, &mut texts);
    }
    if texts.iter().any(|t| looks_secret(t)) {
        return Err(Rejection::SecretInEntry);
    }
    Ok(())
}

/// Every string in a JSON value, keys included.
fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                strings(v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::audit::{AuditRecorded, Command, Event, Level};
    use crate::domain::{DomainCommand, DomainEvent, EntityRef, Subject};
    use crate::{Currencies, State, Timestamp};

    fn entry() -> Entry {
        Entry {
            id: Uuid::from_u128(7),
            level: Level::Info,
            action: "config.set".into(),
            subject: "rate_limit.default".into(),
            before: Some(json!({"per_second": 100})),
            after: Some(json!({"per_second": 50})),
            reason: Some("a burst from one partner".into()),
        }
    }

    /// Checks one change to a valid entry: `Ok` or the code it is refused with.
    fn check_with(change: impl FnOnce(&mut Entry), expected: Result<(), &str>) {
        let mut e = entry();
        change(&mut e);
        assert_eq!(check(&e).map_err(|r| r.code()), expected, "{e:?}");
    }

    #[test]
    fn entries_are_checked_in_the_documented_order() {
        check_with(|_| {}, Ok(()));
        check_with(|e| e.action = "keys.create:v2_x-y".into(), Ok(()));
        check_with(|e| e.action = "a".repeat(64), Ok(()));
        check_with(|e| e.action = "a".repeat(65), Err("invalid_action"));
        check_with(|e| e.action = String::new(), Err("invalid_action"));
        check_with(|e| e.action = "1keys".into(), Err("invalid_action"));
        check_with(|e| e.action = "Keys".into(), Err("invalid_action"));
        check_with(|e| e.action = "keys create".into(), Err("invalid_action"));
        check_with(|e| e.action = "keys/create".into(), Err("invalid_action"));
        // The order: the action first, then the subject, the reason, the size, secrets.
        check_with(
            |e| {
                e.action = "X".into();
                e.subject = String::new();
            },
            Err("invalid_action"),
        );
        check_with(|e| e.subject = String::new(), Err("invalid_subject"));
        check_with(|e| e.subject = "a\u{0}b".into(), Err("invalid_subject"));
        check_with(
            |e| {
                e.subject = String::new();
                e.reason = Some(" ".into());
            },
            Err("invalid_subject"),
        );
        check_with(|e| e.subject = "s".repeat(128), Ok(()));
        check_with(|e| e.subject = "s".repeat(129), Err("invalid_subject"));
        check_with(|e| e.reason = Some(" ".into()), Err("invalid_reason"));
        check_with(|e| e.reason = None, Ok(()));
        check_with(
            |e| {
                e.reason = Some(" ".into());
                e.after = Some(json!("x".repeat(MAX_VALUES_BYTES)));
            },
            Err("invalid_reason"),
        );
        // 16 KiB of JSON together: a string of n characters is n + 2 bytes of JSON.
        check_with(
            |e| {
                e.before = Some(json!("b".repeat(MAX_VALUES_BYTES / 2 - 2)));
                e.after = Some(json!("a".repeat(MAX_VALUES_BYTES / 2 - 2)));
            },
            Ok(()),
        );
        check_with(
            |e| {
                e.before = Some(json!("b".repeat(MAX_VALUES_BYTES / 2 - 2)));
                e.after = Some(json!("a".repeat(MAX_VALUES_BYTES / 2 - 1)));
            },
            Err("entry_too_large"),
        );
        check_with(
            |e| {
                e.after = Some(json!(["x".repeat(MAX_VALUES_BYTES), "whsec_abc"]));
            },
            Err("entry_too_large"),
        );
        // 16 KiB is 16,384 bytes: one value of 16,382 characters is the most.
        check_with(
            |e| {
                e.before = None;
                e.after = Some(json!("a".repeat(16_382)));
            },
            Ok(()),
        );
        check_with(
            |e| {
                e.before = None;
                e.after = Some(json!("a".repeat(16_383)));
            },
            Err("entry_too_large"),
        );
    }

    #[test]
    fn no_secret_is_ever_recorded() {
        check_with(|e| e.subject = "key ldg_0123".into(), Err("secret_in_entry"));
        check_with(|e| e.reason = Some("rotated whsec_AAAA".into()), Err("secret_in_entry"));
        check_with(|e| e.before = Some(json!({"secret": "whsec_AAAA"})), Err("secret_in_entry"));
        check_with(|e| e.after = Some(json!([1, {"nested": ["ldg_x"]}])), Err("secret_in_entry"));
        check_with(|e| e.after = Some(json!({"ldg_key": true})), Err("secret_in_entry"));
        check_with(|e| e.after = Some(json!({"secret": "whsec"})), Ok(()));
        check_with(|e| e.after = Some(json!([true, null, 5, "ldg"])), Ok(()));
    }

    #[test]
    fn a_recorded_entry_is_one_event_on_its_own_stream_and_keeps_nothing_in_memory() {
        let mut state = State::new(Currencies::standard());
        let before = state.clone();
        let command = Command::Record(Box::new(entry()));
        let events = command.execute(&mut state, Timestamp(42)).unwrap();
        assert_eq!(state, before, "nothing in memory");
        let expected = Event::Recorded(Box::new(AuditRecorded { entry: entry(), at: Timestamp(42) }));
        assert_eq!(events, [crate::Event::Audit(expected.clone())]);
        let subject = Subject::Record(EntityRef { kind: "audit", id: Uuid::from_u128(7) });
        assert_eq!(events[0].subject(), subject);
        assert_eq!(events[0].stream(), format!("audit-{}", Uuid::from_u128(7)));
        assert_eq!(events[0].event_type(), "AuditRecorded");
        assert_eq!(state.version(subject), Some(1));
        assert_eq!(state.touched(&events[0]).len(), 1);
        assert_eq!(command.transfer_ids(), []);
        assert_eq!(command.answer(), None);
        assert_eq!(expected.recorded().at, Timestamp(42));
        // Stored and read back as it was.
        let back = crate::Event::from_parts("AuditRecorded", 1, &events[0].payload()).unwrap();
        assert_eq!(back, events[0]);
        assert!(Event::decode("AuditRecorded", 2, &events[0].payload()).is_err());
        assert!(Event::decode("AuditRecorded", 1, "{}").is_err());
        assert_eq!(Event::schemas().len(), 1);
        // Refused: nothing.
        let mut bad = entry();
        bad.action = String::new();
        let refused = Command::Record(Box::new(bad)).execute(&mut state, Timestamp(43)).unwrap_err();
        assert_eq!(refused.code(), "invalid_action");
    }

    #[test]
    fn rejection_codes_are_stable_and_the_same_through_the_core_s_rejection() {
        let codes = [
            (Rejection::InvalidAction, "invalid_action"),
            (Rejection::InvalidSubject, "invalid_subject"),
            (Rejection::InvalidReason, "invalid_reason"),
            (Rejection::EntryTooLarge, "entry_too_large"),
            (Rejection::SecretInEntry, "secret_in_entry"),
        ];
        for (rejection, code) in codes {
            assert_eq!(rejection.code(), code);
            assert_eq!(crate::Rejection::from(rejection).code(), code);
        }
    }

    #[test]
    fn levels_read_back_from_their_names() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Some(level));
            assert_eq!(serde_json::to_value(level).unwrap(), json!(level.as_str()));
        }
        assert_eq!(Level::parse("debug"), None);
        assert!(Level::Info < Level::Warning && Level::Warning < Level::Critical);
    }
}
