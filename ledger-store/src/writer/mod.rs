//! The single writer of a database: a decider and a committer, fenced by an advisory lock.
//!
//! The **decider** owns the in-memory `LedgerState`. It drains the request queue, loads any
//! transfers the commands name that are not in memory, decides and applies each command, and
//! seals the events at the next positions in the hash chain. The **committer** owns the
//! connection that holds the writer lock. It takes every group the decider has sealed since its
//! last commit, writes them in one statement, publishes the touched accounts to the
//! `CommittedView`, and only then answers the callers. Deciding the next group overlaps with
//! committing the last one, and the commit size adapts to the commit latency.

mod committer;
mod decider;
mod known;

use std::sync::Arc;
use std::time::Duration;

use ledger_core::domain::DomainCommand;
use ledger_core::{BatchMode, Command, CreateTransfer, Currencies, Rejection};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use crate::metrics::WriterMetrics;
use crate::record::EventMeta;
use crate::view::CommittedView;

/// What a second writer does when another one holds the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standby {
    /// Wait, polling, until the lock is free; then take over.
    Wait,
    /// Refuse to start.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// The database, used again to reconnect after a failure.
    pub url: String,
    pub currencies: Currencies,
    /// Most commands (batch items count one each) decided together.
    pub max_group: usize,
    /// Most events written by one commit.
    pub max_commit_events: usize,
    /// Commits sent to the server before the first of them has answered (1: none pipelined).
    pub pipeline_depth: usize,
    /// Requests waiting for the writer before callers are told it is overloaded.
    pub queue_capacity: usize,
    /// Settled transfers kept in memory before the working set is trimmed to pending ones.
    pub transfer_cache: usize,
    pub standby: Standby,
    /// How often pending transfers are checked for expiry.
    pub expiry_interval: Duration,
    /// Readers of the log the writer must not run away from (backpressure); none by default.
    pub followers: Option<Arc<crate::followers::Followers>>,
    /// Followers in the same process, handed every landed commit's events (`tail`); none by
    /// default.
    pub tail: Option<crate::tail::Tail>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            url: String::new(),
            currencies: Currencies::standard(),
            max_group: 4096,
            max_commit_events: 32_768,
            pipeline_depth: 2,
            queue_capacity: 65_536,
            transfer_cache: 1_000_000,
            standby: Standby::Refuse,
            expiry_interval: Duration::from_secs(1),
            followers: None,
            tail: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "another ledger writer holds this database (advisory lock {key:#x}); stop it or start this one as a standby"
    )]
    Locked { key: i64 },
    #[error("database error while starting the writer: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error while starting the writer: {0}")]
    Connection(#[from] tokio_postgres::Error),
    #[error("stored state is inconsistent: {0}")]
    Corrupt(String),
}

/// Why a submitted command got no decision. The command may be retried with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the writer's queue is full")]
    Overloaded,
    #[error("the writer is unavailable (stopped, or its commit failed)")]
    Unavailable,
}

pub use ledger_core::Entity;

/// An accepted command, durably committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The position of the command's last event; for a replay, of the original one.
    pub position: i64,
    /// True when the command was a retry that changed nothing.
    pub replayed: bool,
    pub entity: Option<Entity>,
}

/// A command's outcome: committed, or refused with its domain's rejection.
pub type Decision<R = ledger_core::ledger::Rejection> = Result<Committed, R>;
pub type BatchDecision = Result<Vec<Decision>, ledger_core::ledger::Rejection>;

enum Request {
    One {
        command: Command,
        meta: EventMeta,
        reply: oneshot::Sender<Result<Decision<Rejection>, WriteError>>,
    },
    Batch {
        items: Vec<CreateTransfer>,
        mode: BatchMode,
        meta: EventMeta,
        reply: oneshot::Sender<Result<BatchDecision, WriteError>>,
    },
}

impl Request {
    fn weight(&self) -> usize {
        match self {
            Request::One { .. } => 1,
            Request::Batch { items, .. } => items.len().max(1),
        }
    }
}

/// A decided answer, sent once everything before it is durable.
enum Reply {
    One(oneshot::Sender<Result<Decision<Rejection>, WriteError>>, Decision<Rejection>),
    Batch(oneshot::Sender<Result<BatchDecision, WriteError>>, BatchDecision),
}

impl Reply {
    fn send(self) {
        // A caller that went away no longer needs its answer; the command is committed anyway.
        match self {
            Reply::One(tx, decision) => drop(tx.send(Ok(decision))),
            Reply::Batch(tx, decision) => drop(tx.send(Ok(decision))),
        }
    }

    fn fail(self) {
        match self {
            Reply::One(tx, _) => drop(tx.send(Err(WriteError::Unavailable))),
            Reply::Batch(tx, _) => drop(tx.send(Err(WriteError::Unavailable))),
        }
    }
}

/// A cloneable handle to the writer. When every handle is dropped, the writer commits what it
/// holds and stops.
#[derive(Clone)]
pub struct LedgerHandle {
    tx: mpsc::Sender<Request>,
    metrics: Arc<WriterMetrics>,
    view: Arc<CommittedView>,
    currencies: Arc<Currencies>,
    tail: Option<crate::tail::Tail>,
}

impl LedgerHandle {
    /// The tail every landed commit is handed to, when the writer was given one.
    pub fn tail(&self) -> Option<&crate::tail::Tail> {
        self.tail.as_ref()
    }

    /// Submits a command of any domain; a refusal comes back as that domain's rejection.
    pub async fn submit<C>(&self, command: C, meta: EventMeta) -> Result<Decision<C::Rejection>, WriteError>
    where
        C: DomainCommand + Into<Command>,
        C::Rejection: TryFrom<Rejection>,
    {
        let decision = self.submit_any(command.into(), meta).await?;
        Ok(decision.map_err(|r| {
            // A command is only ever refused by its own domain's rules.
            C::Rejection::try_from(r).unwrap_or_else(|_| panic!("{} refused by another domain", r.code()))
        }))
    }

    /// Submits a command of whichever domain it is.
    pub async fn submit_any(&self, command: Command, meta: EventMeta) -> Result<Decision<Rejection>, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Request::One { command, meta, reply }).map_err(queue_error)?;
        rx.await.map_err(|_| WriteError::Unavailable)?
    }

    pub async fn submit_batch(
        &self,
        items: Vec<CreateTransfer>,
        mode: BatchMode,
        meta: EventMeta,
    ) -> Result<BatchDecision, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Request::Batch { items, mode, meta, reply }).map_err(queue_error)?;
        rx.await.map_err(|_| WriteError::Unavailable)?
    }

    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    /// Accounts as of the last commit: read-your-writes for every answered command.
    pub fn view(&self) -> &CommittedView {
        &self.view
    }

    /// The currencies and scales this ledger accepts.
    pub fn currencies(&self) -> &Currencies {
        &self.currencies
    }

    /// False once the writer has stopped.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

fn queue_error<T>(e: mpsc::error::TrySendError<T>) -> WriteError {
    match e {
        mpsc::error::TrySendError::Full(_) => WriteError::Overloaded,
        mpsc::error::TrySendError::Closed(_) => WriteError::Unavailable,
    }
}

pub struct Writer;

impl Writer {
    /// Connects, takes the writer lock (or waits for it, as a standby), loads the current
    /// state of accounts and pending transfers (not a replay of the log), and starts the
    /// decider and committer tasks. The returned task ends when every handle is dropped and
    /// everything decided is committed.
    pub async fn start(
        url: &str,
        mut config: WriterConfig,
    ) -> Result<(LedgerHandle, tokio::task::JoinHandle<()>), StartError> {
        config.url = url.to_owned();
        let writer_conn = committer::lock(url, config.standby).await?;
        let mut read_conn = decider::connect(url).await?;
        let loaded = decider::Loaded::from_database(&mut read_conn, &config.currencies).await?;
        let metrics = Arc::new(WriterMetrics::default());
        let view = Arc::new(CommittedView::default());
        view.publish(loaded.committed_accounts(), loaded.committed_entities(), loaded.head);
        metrics.set_head(loaded.head);

        let currencies = Arc::new(config.currencies.clone());
        let tail = config.tail.clone();
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (sealed_tx, sealed_rx) = mpsc::channel(64);
        let (epoch_tx, epoch_rx) = watch::channel(0u64);
        let committer =
            committer::Committer::new(url, writer_conn, &config, Arc::clone(&metrics), Arc::clone(&view), epoch_tx);
        let decider = decider::Decider::new(
            config,
            read_conn,
            loaded,
            Arc::clone(&metrics),
            Arc::clone(&view),
            epoch_rx,
            sealed_tx,
        );
        let committing = tokio::spawn(committer.run(sealed_rx));
        let deciding = tokio::spawn(decider.run(rx));
        let task = tokio::spawn(async move {
            let _ = deciding.await;
            let _ = committing.await;
            info!("writer stopped: every handle was dropped");
        });
        Ok((LedgerHandle { tx, metrics, view, currencies, tail }, task))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
