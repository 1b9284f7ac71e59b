//! Topics are checked, and created when missing, before anything is published.

use std::time::Duration;

use streams::admin::{TopicPolicy, TopicsError, ensure_topics};

use crate::support::{Broker, prefix};

fn names(prefix: &str) -> Vec<String> {
    ["events", "accounts", "transfers"].iter().map(|t| format!("{prefix}.{t}")).collect()
}

#[tokio::test]
async fn existing_topics_pass_and_missing_ones_are_named_when_creation_is_off() {
    let broker = Broker::mock();
    let prefix = prefix();
    let names = names(&prefix);
    broker.create_topics(&[&names[0]]);
    let off = TopicPolicy { create: false, ..TopicPolicy::default() };
    match ensure_topics(&broker.brokers, &names, &off).await {
        Err(TopicsError::Missing { missing }) => {
            let named: Vec<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(named, [names[1].as_str(), names[2].as_str()]);
            assert!(missing.iter().all(|(_, why)| why.contains("create_topics is off")), "{missing:?}");
        }
        other => panic!("expected the missing topics named, got {other:?}"),
    }
    broker.create_topics(&[&names[1], &names[2]]);
    assert_eq!(ensure_topics(&broker.brokers, &names, &off).await, Ok(Vec::new()));
}

#[tokio::test]
async fn missing_topics_are_created_with_the_configured_partitions_or_named_with_the_reason() {
    let broker = Broker::any();
    let prefix = prefix();
    let names = names(&prefix);
    let policy = TopicPolicy { partitions: 2, ..TopicPolicy::default() };
    match (&broker.mock, ensure_topics(&broker.brokers, &names, &policy).await) {
        // librdkafka's mock cluster does not implement CreateTopics: the reason says so.
        (Some(_), Err(TopicsError::Missing { missing })) => {
            assert_eq!(missing.len(), 3, "{missing:?}");
            assert!(missing.iter().all(|(_, why)| why.starts_with("not created")), "{missing:?}");
        }
        // A real broker creates them, and a second check finds them.
        (None, Ok(mut created)) => {
            created.sort();
            let mut expected = names.clone();
            expected.sort();
            assert_eq!(created, expected);
            assert_eq!(ensure_topics(&broker.brokers, &names, &policy).await, Ok(Vec::new()));
        }
        (_, other) => panic!("unexpected: {other:?}"),
    }
}

#[tokio::test]
async fn a_broker_that_does_not_answer_is_reported_as_unreachable() {
    let policy = TopicPolicy { timeout: Duration::from_secs(1), ..TopicPolicy::default() };
    let result = ensure_topics("127.0.0.1:1", &names("x"), &policy).await;
    assert!(matches!(result, Err(TopicsError::Unreachable { .. })), "{result:?}");
}
