//! The Kafka publisher: one more consumer of the ordered log. It reads pages of events after
//! its checkpoint, publishes each event to its topics keyed by stream, and advances the
//! checkpoint only once the broker acknowledged every message of the page. A failed page is
//! sent again after a back-off, so delivery is at least once and nothing is lost; subscribers
//! deduplicate by event id. Its checkpoint is a row of `projections` (name `kafka_publisher`),
//! so its lag shows wherever the projections' does.

use std::time::Duration;

use ledger_store::RecordedEvent;
use ledger_store::follow::{FollowConfig, Progress};
use ledger_store::tail::{Tail, TailReader};
use sqlx::PgConnection;
use tracing::error;

use crate::envelope::Envelope;
use crate::sink::{OutMessage, Sink, SinkError};
use crate::topics::Topics;

/// The publisher's row in `projections`.
pub const NAME: &str = "kafka_publisher";
/// Events per page (one acknowledgement round, one checkpoint update).
pub const PAGE: i64 = 1000;
const LOCK_KEY: i64 = 0x6c65_6467_6572_0200;

#[derive(Clone, Copy, Debug)]
pub struct PublisherConfig {
    /// Poll this often when no notification arrives.
    pub poll: Duration,
    /// First back-off after a failed page; doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            poll: Duration::from_secs(1),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("event at position {position} cannot be published: {error}")]
    Poison { position: i64, error: String },
}

/// What a domain publishes beside the envelopes: messages of its own shape, on topics of its
/// own, derived from the same page of the log and acknowledged with it (one checkpoint).
pub trait DomainTopics: Send + Sync {
    /// The topics it writes to.
    fn names(&self) -> Vec<String>;
    /// The messages a page of the log becomes (reading the domain's entities when it needs
    /// their latest rows).
    fn messages<'a>(&'a self, conn: &'a mut PgConnection, page: &'a [RecordedEvent]) -> Deriving<'a>;
}

/// What `DomainTopics::messages` returns.
pub type Deriving<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<OutMessage>, PublishError>> + Send + 'a>>;

/// The messages one stored event becomes: one per topic that carries its type.
pub fn messages(record: &RecordedEvent, topics: &Topics) -> Result<Vec<OutMessage>, PublishError> {
    let envelope = Envelope::from_recorded(record)
        .map_err(|e| PublishError::Poison { position: record.position, error: e.to_string() })?;
    let payload = envelope.to_json();
    let headers = vec![
        ("event_id", envelope.id.to_string()),
        ("event_type", envelope.event_type.clone()),
        ("schema_version", envelope.schema_version.to_string()),
        ("position", envelope.position.to_string()),
    ];
    Ok(topics
        .for_type(&record.event_type)
        .map(|topic| OutMessage {
            topic: topic.to_owned(),
            key: record.stream_id.clone(),
            payload: payload.clone(),
            headers: headers.clone(),
        })
        .collect())
}

/// Creates the checkpoint row if it is missing.
async fn ensure(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projections (name, version) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING")
        .bind(NAME)
        .execute(conn)
        .await
        .map(drop)
}

async fn checkpoint(conn: &mut PgConnection) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as("SELECT checkpoint, halted_position FROM projections WHERE name = $1")
        .bind(NAME)
        .fetch_one(conn)
        .await
}

/// Publishes the next page, if any, and advances the checkpoint. Returns how many events it
/// published (0: caught up, or halted).
pub async fn step<S: Sink>(conn: &mut PgConnection, sink: &S, topics: &Topics) -> Result<usize, PublishError> {
    advance(conn, sink, topics, &[], None).await.map(|(published, _)| published)
}

/// `step`, also answering the checkpoint it leaves (`None`: halted). With `tail`, a page the
/// writer in this process has just committed comes from memory instead of the log.
async fn advance<S: Sink>(
    conn: &mut PgConnection,
    sink: &S,
    topics: &Topics,
    domains: &[Box<dyn DomainTopics>],
    tail: Option<&mut TailReader>,
) -> Result<(usize, Option<i64>), PublishError> {
    let (after, halted) = checkpoint(conn).await?;
    if halted.is_some() {
        return Ok((0, None));
    }
    let page = match tail.and_then(|t| t.page(after, PAGE as usize)) {
        Some(page) => page.iter().map(|e| e.0.clone()).collect(),
        None => ledger_store::log::page(conn, after, PAGE).await?,
    };
    let Some(last) = page.last().map(|r| r.position) else { return Ok((0, Some(after))) };
    let mut batch = Vec::with_capacity(page.len() * 2);
    for record in &page {
        batch.extend(messages(record, topics)?);
    }
    for domain in domains {
        batch.extend(domain.messages(conn, &page).await?);
    }
    sink.send(batch).await?;
    // Only this process moves the checkpoint (it holds the lock), and only forward.
    sqlx::query("UPDATE projections SET checkpoint = $2, updated_at = now() WHERE name = $1 AND checkpoint = $3")
        .bind(NAME)
        .bind(last)
        .bind(after)
        .execute(conn)
        .await?;
    Ok((page.len(), Some(last)))
}

/// Runs the publisher until `stop` turns true, on the log's one follower loop
/// (`ledger_store::follow`). A sink error backs off and retries the same page; a database error
/// reconnects; an event that cannot be decoded halts it (recorded in `projections`, shown by
/// `ledger projections status`). One publisher per database: a second one waits as a standby.
pub async fn run<S: Sink>(
    url: &str,
    sink: S,
    topics: Topics,
    config: PublisherConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    run_with(url, sink, topics, Vec::new(), config, stop, None).await
}

/// `run`, also publishing what each domain derives from the log; beside the writer, pages it
/// has just committed are taken from its `tail`.
pub async fn run_with<S: Sink>(
    url: &str,
    sink: S,
    topics: Topics,
    domains: Vec<Box<dyn DomainTopics>>,
    config: PublisherConfig,
    stop: tokio::sync::watch::Receiver<bool>,
    tail: Option<&Tail>,
) {
    let follow = FollowConfig {
        page: PAGE as usize,
        poll: config.poll,
        linger: std::time::Duration::ZERO,
        backoff: config.backoff,
        max_backoff: config.max_backoff,
    };
    let tail = tail.map(Tail::reader);
    ledger_store::follow::run(url, &mut Publisher { sink, topics, domains, tail }, follow, stop, None).await
}

/// The publisher as a follower of the log.
struct Publisher<S> {
    sink: S,
    topics: Topics,
    domains: Vec<Box<dyn DomainTopics>>,
    tail: Option<TailReader>,
}

impl<S: Sink> ledger_store::follow::Follow for Publisher<S> {
    type Error = PublishError;

    fn name(&self) -> String {
        let mut names: Vec<String> = self.topics.names().into_iter().map(str::to_owned).collect();
        names.extend(self.domains.iter().flat_map(|d| d.names()));
        format!("Kafka publisher to {}", names.join(", "))
    }

    /// The checkpoint row, and the lock that makes this the one publisher of the database
    /// (held by the connection, so it goes when the connection does).
    async fn prepare(&mut self, conn: &mut PgConnection) -> Result<bool, PublishError> {
        ensure(conn).await?;
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(conn).await?)
    }

    async fn step(&mut self, conn: &mut PgConnection) -> Result<Progress, PublishError> {
        match advance(conn, &self.sink, &self.topics, &self.domains, self.tail.as_mut()).await {
            Ok((read, checkpoint)) => Ok(Progress { read, checkpoint }),
            Err(PublishError::Poison { position, error }) => {
                error!(position, error, "Kafka publisher halted on an event it cannot publish");
                ledger_store::follow::halt(conn, NAME, position, &error).await?;
                Ok(Progress { read: 0, checkpoint: None })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::ledger::event::{AccountStatusChanged, old::AccountStatusChangedV1};
    use ledger_core::{AccountId, Event, Timestamp};
    use uuid::Uuid;

    fn record(position: i64, event_type: &str, version: i16, payload: String) -> RecordedEvent {
        RecordedEvent {
            position,
            event_id: Uuid::from_u128(position as u128),
            stream_id: format!("account-{}", Uuid::from_u128(9)),
            stream_version: 2,
            event_type: event_type.to_owned(),
            schema_version: version,
            payload,
            metadata: r#"{"channel":"pos"}"#.to_owned(),
            recorded_at: Timestamp(77),
            hash: [1; 32],
        }
    }

    #[test]
    fn an_old_version_is_published_upcast_with_its_headers() {
        let id = AccountId(Uuid::from_u128(9));
        let v1 = serde_json::to_string(&AccountStatusChangedV1 { id, at: Timestamp(5) }).unwrap();
        let topics = Topics::with_defaults("ledger").unwrap();
        let out = messages(&record(3, "AccountFrozen", 1, v1), &topics).unwrap();
        assert_eq!(out.iter().map(|m| m.topic.as_str()).collect::<Vec<_>>(), ["ledger.accounts", "ledger.events"]);
        let m = &out[0];
        assert_eq!(m.key, id.stream());
        assert!(m.headers.contains(&("schema_version", "2".to_owned())));
        assert!(m.headers.contains(&("position", "3".to_owned())));
        assert!(m.headers.contains(&("event_id", Uuid::from_u128(3).to_string())));
        let envelope: Envelope = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(envelope.schema_version, 2);
        let expected = AccountStatusChanged { id, reason: None, at: Timestamp(5) };
        assert_eq!(envelope.event().unwrap(), Event::from(ledger_core::ledger::Event::AccountFrozen(expected)));
        assert_eq!(envelope.metadata["channel"], "pos");
        assert_eq!(envelope.hash, "01".repeat(32));
        crate::schemas::check(&serde_json::from_str(&m.payload).unwrap()).unwrap();
    }

    #[test]
    fn an_undecodable_event_is_poison() {
        let topics = Topics::with_defaults("ledger").unwrap();
        let bad = record(4, "AccountFrozen", 2, r#"{"id":"nope"}"#.to_owned());
        assert!(matches!(messages(&bad, &topics), Err(PublishError::Poison { position: 4, .. })));
    }
}
