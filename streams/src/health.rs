//! What the process's consumers report about the topics they read: each topic's state
//! (`subscribed`, `missing`, `lagging`) and lag, for `/healthz` and `/metrics`. The consumer
//! framework updates it at every check of its topics (`consumer::ConsumerConfig::check_interval`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A consumed topic's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicState {
    /// The topic exists and the consumer keeps up with it.
    Subscribed,
    /// The broker has no such topic (yet): the consumer looks again at every check.
    Missing,
    /// Messages wait and the consumer's committed offsets did not move since the last check.
    Lagging,
}

impl TopicState {
    /// From a check: whether the topic exists, the messages waiting, and whether any were
    /// consumed since the check before.
    pub fn of(exists: bool, lag: i64, progressed: bool) -> TopicState {
        match (exists, lag > 0 && !progressed) {
            (false, _) => TopicState::Missing,
            (true, true) => TopicState::Lagging,
            (true, false) => TopicState::Subscribed,
        }
    }
}

/// One consumed topic as last checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicHealth {
    pub consumer: String,
    pub topic: String,
    pub state: TopicState,
    /// Messages on the broker past the group's committed offsets (`None` while missing).
    pub lag: Option<i64>,
}

/// The consumed topics of a process, shared by its consumers and its HTTP API.
#[derive(Clone, Debug, Default)]
pub struct ConsumerHealth {
    topics: Arc<Mutex<BTreeMap<(String, String), TopicHealth>>>,
}

impl ConsumerHealth {
    /// Records a check; returns the state the topic had before (`None`: its first check).
    pub fn set(&self, health: TopicHealth) -> Option<TopicState> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (health.consumer.clone(), health.topic.clone());
        topics.insert(key, health).map(|before| before.state)
    }

    /// Every consumed topic, ordered by consumer and topic.
    pub fn topics(&self) -> Vec<TopicHealth> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// `ledger_consumer_topic_up` (1 when the topic exists) and `ledger_consumer_lag` per
    /// consumer and topic, in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let topics = self.topics();
        if topics.is_empty() {
            return;
        }
        out.push_str("# TYPE ledger_consumer_topic_up gauge\n");
        for t in &topics {
            let up = u8::from(t.state != TopicState::Missing);
            let _ = writeln!(out, "ledger_consumer_topic_up{{consumer=\"{}\",topic=\"{}\"}} {up}", t.consumer, t.topic);
        }
        out.push_str("# TYPE ledger_consumer_lag gauge\n");
        for t in &topics {
            let lag = t.lag.unwrap_or(0);
            let _ = writeln!(out, "ledger_consumer_lag{{consumer=\"{}\",topic=\"{}\"}} {lag}", t.consumer, t.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_is_missing_lagging_only_when_stuck_or_subscribed() {
        assert_eq!(TopicState::of(false, 0, true), TopicState::Missing);
        assert_eq!(TopicState::of(false, 5, false), TopicState::Missing);
        assert_eq!(TopicState::of(true, 5, false), TopicState::Lagging);
        assert_eq!(TopicState::of(true, 5, true), TopicState::Subscribed);
        assert_eq!(TopicState::of(true, 0, false), TopicState::Subscribed);
    }

    #[test]
    fn checks_replace_each_other_and_render_one_line_per_topic_and_metric() {
        let health = ConsumerHealth::default();
        let mut out = String::new();
        health.render(&mut out);
        assert_eq!(out, "", "no consumer, no lines");
        let t = |topic: &str, state, lag| TopicHealth { consumer: "c".into(), topic: topic.into(), state, lag };
        assert_eq!(health.set(t("b", TopicState::Missing, None)), None);
        assert_eq!(health.set(t("a", TopicState::Subscribed, Some(0))), None);
        assert_eq!(health.set(t("b", TopicState::Lagging, Some(7))), Some(TopicState::Missing));
        assert_eq!(health.topics().iter().map(|t| t.topic.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        health.render(&mut out);
        assert_eq!(
            out,
            "# TYPE ledger_consumer_topic_up gauge\n\
             ledger_consumer_topic_up{consumer=\"c\",topic=\"a\"} 1\n\
             ledger_consumer_topic_up{consumer=\"c\",topic=\"b\"} 1\n\
             # TYPE ledger_consumer_lag gauge\n\
             ledger_consumer_lag{consumer=\"c\",topic=\"a\"} 0\n\
             ledger_consumer_lag{consumer=\"c\",topic=\"b\"} 7\n"
        );
        let json = serde_json::to_value(health.topics()).unwrap();
        assert_eq!(json[1], serde_json::json!({"consumer": "c", "topic": "b", "state": "lagging", "lag": 7}));
    }
}
