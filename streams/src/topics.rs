//! Which event types go to which topics. Every topic name is `{prefix}.{name}`; by default
//! `ledger.events` carries everything, `ledger.accounts` the account events and
//! `ledger.transfers` the transfer events.

use std::collections::BTreeMap;

use ledger_core::domain::event_types;
use ledger_core::ledger::event::EVENT_TYPES;

/// The types a route carries: `*` for every type.
pub const ALL_TYPES: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub topic: String,
    /// Empty: every event type.
    types: Vec<String>,
}

impl Route {
    pub fn carries(&self, event_type: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == event_type)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicsError {
    #[error("topic {topic:?}: unknown event type {event_type:?} (known: {known})")]
    UnknownType { topic: String, event_type: String, known: String },
    #[error("topic name {0:?} is not 1 to 200 characters of a-z A-Z 0-9 . _ -")]
    BadName(String),
    #[error("no topics configured")]
    Empty,
}

/// The default routing: name → event types.
pub fn default_routes() -> BTreeMap<String, Vec<String>> {
    let of = |prefix: &str| -> Vec<String> {
        EVENT_TYPES.iter().filter(|(t, _)| t.starts_with(prefix)).map(|(t, _)| (*t).to_owned()).collect()
    };
    let transfers: Vec<String> = EVENT_TYPES
        .iter()
        .filter(|(t, _)| t.starts_with("Transfer") || t.starts_with("Pending"))
        .map(|(t, _)| (*t).to_owned())
        .collect();
    BTreeMap::from([
        ("events".to_owned(), vec![ALL_TYPES.to_owned()]),
        ("accounts".to_owned(), of("Account")),
        ("transfers".to_owned(), transfers),
    ])
}

impl Topics {
    /// Builds the routing from `name → event types` under `prefix`; `*` means every type.
    pub fn new(prefix: &str, routes: &BTreeMap<String, Vec<String>>) -> Result<Topics, TopicsError> {
        let mut out = Vec::new();
        for (name, types) in routes {
            let topic = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            let valid = (1..=200).contains(&topic.len())
                && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return Err(TopicsError::BadName(topic));
            }
            let mut listed = Vec::new();
            if !types.iter().any(|t| t == ALL_TYPES) {
                for t in types {
                    if !event_types().any(|(known, _)| known == t) {
                        let known = event_types().map(|(k, _)| k).collect::<Vec<_>>().join(", ");
                        return Err(TopicsError::UnknownType { topic, event_type: t.clone(), known });
                    }
                    listed.push(t.clone());
                }
            }
            out.push(Route { topic, types: listed });
        }
        if out.is_empty() {
            return Err(TopicsError::Empty);
        }
        Ok(Topics { routes: out })
    }

    pub fn with_defaults(prefix: &str) -> Result<Topics, TopicsError> {
        Topics::new(prefix, &default_routes())
    }

    /// The topics an event of this type is published to.
    pub fn for_type<'a>(&'a self, event_type: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.routes.iter().filter(move |r| r.carries(event_type)).map(|r| r.topic.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.routes.iter().map(|r| r.topic.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_split_by_domain_and_copy_everything_to_events() {
        let topics = Topics::with_defaults("ledger").unwrap();
        assert_eq!(topics.names(), ["ledger.accounts", "ledger.events", "ledger.transfers"]);
        assert_eq!(topics.for_type("AccountFrozen").collect::<Vec<_>>(), ["ledger.accounts", "ledger.events"]);
        assert_eq!(topics.for_type("PendingTransferVoided").collect::<Vec<_>>(), ["ledger.events", "ledger.transfers"]);
        for (t, _) in EVENT_TYPES {
            assert_eq!(topics.for_type(t).count(), 2, "{t}");
        }
        // Other domains' events go to the events topic; their own topics are theirs to route.
        for (t, _) in event_types().filter(|(t, _)| !EVENT_TYPES.iter().any(|(l, _)| l == t)) {
            assert_eq!(topics.for_type(t).collect::<Vec<_>>(), ["ledger.events"], "{t}");
        }
    }

    #[test]
    fn configuration_mistakes_are_refused() {
        let unknown = BTreeMap::from([("x".to_owned(), vec!["TransferSent".to_owned()])]);
        assert!(matches!(Topics::new("ledger", &unknown), Err(TopicsError::UnknownType { .. })));
        let bad = BTreeMap::from([("a b".to_owned(), vec!["*".to_owned()])]);
        assert!(matches!(Topics::new("ledger", &bad), Err(TopicsError::BadName(_))));
        assert_eq!(Topics::new("ledger", &BTreeMap::new()), Err(TopicsError::Empty));
    }
}
