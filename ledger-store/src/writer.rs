//! The single writer: one task per database, fenced by an advisory lock, that decides commands
//! against in-memory state and writes each group of them in one transaction (group commit).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_core::event::Subject;
use ledger_core::{
    Account, AccountId, BatchMode, Command, CreateTransfer, Currencies, Event, LedgerState, Rejection, Timestamp,
    Transfer, TransferId, execute, execute_batch,
};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::metrics::WriterMetrics;
use crate::record::{EventMeta, GENESIS_HASH, RecordedEvent};
use crate::sql::{self, GroupWrite, Positions};

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
    pub currencies: Currencies,
    /// Most commands (batch items count one each) decided and committed together.
    pub max_group: usize,
    /// Requests waiting for the writer before callers are told it is overloaded.
    pub queue_capacity: usize,
    /// Settled transfers kept in memory before the working set is trimmed to pending ones.
    pub transfer_cache: usize,
    pub standby: Standby,
    /// How often pending transfers are checked for expiry.
    pub expiry_interval: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            currencies: Currencies::standard(),
            max_group: 4096,
            queue_capacity: 65_536,
            transfer_cache: 1_000_000,
            standby: Standby::Refuse,
            expiry_interval: Duration::from_secs(1),
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

/// The entity a command concerns, as it stands after the command.
#[derive(Clone, Debug, PartialEq)]
pub enum Entity {
    Account(Account),
    Transfer(Transfer),
}

/// An accepted command, durably committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The position of the command's last event; for a replay, of the original one.
    pub position: i64,
    /// True when the command was a retry that changed nothing.
    pub replayed: bool,
    pub entity: Option<Entity>,
}

pub type Decision = Result<Committed, Rejection>;

enum Request {
    One {
        command: Command,
        meta: EventMeta,
        reply: oneshot::Sender<Result<Decision, WriteError>>,
    },
    Batch {
        items: Vec<CreateTransfer>,
        mode: BatchMode,
        meta: EventMeta,
        reply: oneshot::Sender<Result<Result<Vec<Decision>, Rejection>, WriteError>>,
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

/// A cloneable handle to the writer. When every handle is dropped, the writer commits what it
/// holds and stops.
#[derive(Clone)]
pub struct LedgerHandle {
    tx: mpsc::Sender<Request>,
    metrics: Arc<WriterMetrics>,
}

impl LedgerHandle {
    pub async fn submit(&self, command: Command, meta: EventMeta) -> Result<Decision, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Request::One { command, meta, reply })
            .map_err(queue_error)?;
        rx.await.map_err(|_| WriteError::Unavailable)?
    }

    pub async fn submit_batch(
        &self,
        items: Vec<CreateTransfer>,
        mode: BatchMode,
        meta: EventMeta,
    ) -> Result<Result<Vec<Decision>, Rejection>, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Request::Batch {
                items,
                mode,
                meta,
                reply,
            })
            .map_err(queue_error)?;
        rx.await.map_err(|_| WriteError::Unavailable)?
    }

    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
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

pub struct Writer {
    url: String,
    config: WriterConfig,
    conn: PgConnection,
    state: LedgerState,
    positions: Positions,
    next_position: i64,
    head_hash: [u8; 32],
    last_now: Timestamp,
    metrics: Arc<WriterMetrics>,
}

impl Writer {
    /// Connects, takes the writer lock (or waits for it, as a standby), loads the current
    /// state of accounts and pending transfers (not a replay of the log), and starts the
    /// writer task.
    pub async fn start(
        url: &str,
        config: WriterConfig,
    ) -> Result<(LedgerHandle, tokio::task::JoinHandle<()>), StartError> {
        let conn = lock(url, config.standby).await?;
        let mut writer = Writer {
            url: url.to_owned(),
            state: LedgerState::new(config.currencies.clone()),
            config,
            conn,
            positions: Positions::new(),
            next_position: 1,
            head_hash: GENESIS_HASH,
            last_now: Timestamp(0),
            metrics: Arc::new(WriterMetrics::default()),
        };
        writer.load().await?;
        let (tx, rx) = mpsc::channel(writer.config.queue_capacity);
        let metrics = Arc::clone(&writer.metrics);
        let task = tokio::spawn(writer.run(rx));
        Ok((LedgerHandle { tx, metrics }, task))
    }

    async fn load(&mut self) -> Result<(), StartError> {
        self.state = LedgerState::new(self.config.currencies.clone());
        self.positions.clear();
        let (position, hash) = sql::head(&mut self.conn).await?.unwrap_or((0, GENESIS_HASH.to_vec()));
        self.next_position = position + 1;
        self.metrics.head_position.store(
            u64::try_from(position).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.head_hash = hash
            .try_into()
            .map_err(|_| StartError::Corrupt(format!("hash at {position} is not 32 bytes")))?;
        for row in sql::load_accounts(&mut self.conn).await? {
            if row.position > position {
                return Err(StartError::Corrupt(format!(
                    "account {} is ahead of the log",
                    row.account.id
                )));
            }
            self.positions
                .insert(row.account.id.0, (row.opened_position, row.position));
            self.state.load_account(row.account);
        }
        for row in sql::load_pending_transfers(&mut self.conn).await? {
            self.positions
                .insert(row.transfer.id.0, (row.created_position, row.position));
            self.state.load_transfer(row.transfer);
        }
        info!(
            head = position,
            accounts = self.state.accounts().count(),
            "writer loaded state"
        );
        Ok(())
    }

    fn now(&mut self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let now = Timestamp(i64::try_from(micros).unwrap_or(i64::MAX));
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut expiry = tokio::time::interval(self.config.expiry_interval);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut group = Vec::new();
            tokio::select! {
                biased;
                request = rx.recv() => match request {
                    Some(r) => group.push(r),
                    None => break,
                },
                _ = expiry.tick() => {}
            }
            let mut weight: usize = group.iter().map(Request::weight).sum();
            while weight < self.config.max_group {
                match rx.try_recv() {
                    Ok(r) => {
                        weight += r.weight();
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.process(group).await;
        }
        info!("writer stopped: every handle was dropped");
    }

    /// Loads the transfers the group names that are not in memory.
    async fn prefetch(&mut self, group: &[Request]) -> Result<(), sqlx::Error> {
        let mut missing = BTreeSet::new();
        for request in group {
            let ids: Vec<TransferId> = match request {
                Request::One { command, .. } => command.transfer_ids(),
                Request::Batch { items, .. } => items.iter().map(|t| t.id).collect(),
            };
            missing.extend(
                ids.into_iter()
                    .filter(|id| self.state.transfer(*id).is_none())
                    .map(|id| id.0),
            );
        }
        if missing.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = missing.into_iter().collect();
        for row in sql::load_transfers(&mut self.conn, &ids).await? {
            self.positions
                .insert(row.transfer.id.0, (row.created_position, row.position));
            self.state.load_transfer(row.transfer);
        }
        Ok(())
    }

    async fn process(&mut self, group: Vec<Request>) {
        let started = Instant::now();
        let commands: usize = group.iter().map(Request::weight).sum();
        if let Err(e) = self.prefetch(&group).await {
            error!(error = %e, "loading transfers failed");
            self.recover().await;
            return; // Dropping the group answers every caller `Unavailable`.
        }
        let decided = Instant::now();
        WriterMetrics::add(&self.metrics.prefetch_micros, micros(decided - started));
        let now = self.now();
        let mut staged = Staged::default();
        let mut replies = Vec::with_capacity(group.len());
        for request in group {
            match request {
                Request::One { command, meta, reply } => {
                    let decision = execute(&mut self.state, &command, now)
                        .map(|events| self.stage(&mut staged, &command, &events, &meta, now));
                    replies.push(Reply::One(reply, decision));
                }
                Request::Batch {
                    items,
                    mode,
                    meta,
                    reply,
                } => {
                    let decisions = execute_batch(&mut self.state, &items, mode, now).map(|results| {
                        results
                            .into_iter()
                            .zip(items)
                            .map(|(result, item)| {
                                let command = Command::CreateTransfer(item);
                                result.map(|events| self.stage(&mut staged, &command, &events, &meta, now))
                            })
                            .collect()
                    });
                    replies.push(Reply::Batch(reply, decisions));
                }
            }
        }
        if self.state.next_deadline().is_some_and(|at| at <= now) {
            let expire = Command::ExpirePendingTransfers;
            if let Ok(events) = execute(&mut self.state, &expire, now) {
                self.stage(&mut staged, &expire, &events, &EventMeta::default(), now);
            }
        }
        let committing = Instant::now();
        WriterMetrics::add(&self.metrics.decide_micros, micros(committing - decided));
        if !staged.events.is_empty() {
            if let Err(e) = self.persist(&staged).await {
                error!(error = %e, events = staged.events.len(), "group commit failed; reloading state");
                WriterMetrics::add(&self.metrics.failed_commits, 1);
                self.recover().await;
                return;
            }
            self.metrics.observe_commit(micros(committing.elapsed()));
            let head = u64::try_from(self.next_position - 1).unwrap_or(0);
            self.metrics
                .head_position
                .store(head, std::sync::atomic::Ordering::Relaxed);
        }
        WriterMetrics::add(&self.metrics.groups, 1);
        WriterMetrics::add(&self.metrics.commands, commands as u64);
        WriterMetrics::add(&self.metrics.events, staged.events.len() as u64);
        for reply in replies {
            reply.send();
        }
        if self.state.transfer_count() > self.config.transfer_cache {
            self.state.evict_settled_transfers();
            let state = &self.state;
            self.positions
                .retain(|id, _| state.account(AccountId(*id)).is_some() || state.transfer(TransferId(*id)).is_some());
        }
    }

    /// Seals a command's events at the next positions and records what they touched.
    fn stage(
        &mut self,
        staged: &mut Staged,
        command: &Command,
        events: &[Event],
        meta: &EventMeta,
        now: Timestamp,
    ) -> Committed {
        for event in events {
            let position = self.next_position;
            self.next_position += 1;
            let version = match event.subject() {
                Subject::Account(id) => self.state.account(id).expect("applied").version,
                Subject::Transfer(id) => self.state.transfer(id).expect("applied").version,
            };
            let record = RecordedEvent::seal(event, position, version, meta, now, &self.head_hash);
            self.head_hash = record.hash;
            staged.events.push(record);
            let mut touch = |id: Uuid| self.positions.entry(id).or_insert((position, position)).1 = position;
            match event.subject() {
                Subject::Account(id) => {
                    touch(id.0);
                    staged.accounts.insert(id);
                }
                Subject::Transfer(id) => {
                    touch(id.0);
                    staged.transfers.insert(id);
                    let transfer = self.state.transfer(id).expect("applied");
                    for posting in &transfer.postings {
                        touch(posting.account.0);
                        staged.accounts.insert(posting.account);
                    }
                    if let (Event::TransferPosted(e), Some(original)) = (event, transfer.reverses) {
                        debug_assert_eq!(e.reverses, Some(original));
                        staged.transfers.insert(original);
                    }
                }
            }
        }
        let (entity, replay_first) = match command {
            Command::OpenAccount(c) => (Some(Subject::Account(c.id)), true),
            Command::FreezeAccount { id } | Command::UnfreezeAccount { id } | Command::CloseAccount { id } => {
                (Some(Subject::Account(*id)), false)
            }
            Command::CreateTransfer(t) => (Some(Subject::Transfer(t.id)), true),
            Command::ReverseTransfer { id, .. } => (Some(Subject::Transfer(*id)), true),
            Command::PostPendingTransfer { pending_id, .. } | Command::VoidPendingTransfer { pending_id } => {
                (Some(Subject::Transfer(*pending_id)), false)
            }
            Command::ExpirePendingTransfers => (None, false),
        };
        let entity = entity.and_then(|subject| match subject {
            Subject::Account(id) => self.state.account(id).cloned().map(Entity::Account),
            Subject::Transfer(id) => self.state.transfer(id).cloned().map(Entity::Transfer),
        });
        let position = match (&entity, events.is_empty()) {
            (_, false) => self.next_position - 1,
            (Some(Entity::Account(a)), true) => self.position_of(a.id.0, replay_first),
            (Some(Entity::Transfer(t)), true) => self.position_of(t.id.0, replay_first),
            (None, true) => self.next_position - 1,
        };
        Committed {
            position,
            replayed: events.is_empty(),
            entity,
        }
    }

    fn position_of(&self, id: Uuid, first: bool) -> i64 {
        let (created, last) = self
            .positions
            .get(&id)
            .copied()
            .expect("entities in memory have positions");
        if first { created } else { last }
    }

    async fn persist(&mut self, staged: &Staged) -> Result<(), sqlx::Error> {
        let mut write = GroupWrite {
            events: staged.events.clone(),
            ..GroupWrite::default()
        };
        for id in &staged.accounts {
            let account = self.state.account(*id).expect("touched accounts are in memory");
            let (first, last) = self.positions[&id.0];
            write.accounts.push((account, first, last));
        }
        for id in &staged.transfers {
            let transfer = self.state.transfer(*id).expect("touched transfers are in memory");
            let (first, last) = self.positions[&id.0];
            write.transfers.push((transfer, first, last));
        }
        sql::write_group(&mut self.conn, &write).await
    }

    /// After a failed commit the in-memory state may be ahead of the database: reconnect,
    /// take the lock again and reload. Retries until it succeeds.
    async fn recover(&mut self) {
        let mut delay = Duration::from_millis(100);
        loop {
            match lock(&self.url, Standby::Wait).await {
                Ok(conn) => {
                    self.conn = conn;
                    match self.load().await {
                        Ok(()) => return,
                        Err(e) => warn!(error = %e, "reloading state failed"),
                    }
                }
                Err(e) => warn!(error = %e, "reconnecting the writer failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn lock(url: &str, standby: Standby) -> Result<PgConnection, StartError> {
    let mut conn = PgConnection::connect(url).await?;
    let mut waited = false;
    while !sql::try_lock_writer(&mut conn).await? {
        if standby == Standby::Refuse {
            return Err(StartError::Locked {
                key: sql::WRITER_LOCK_KEY,
            });
        }
        if !waited {
            info!("another writer holds the database: waiting as a standby");
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(conn)
}

#[derive(Default)]
struct Staged {
    events: Vec<RecordedEvent>,
    accounts: BTreeSet<AccountId>,
    transfers: BTreeSet<TransferId>,
}

enum Reply {
    One(oneshot::Sender<Result<Decision, WriteError>>, Decision),
    Batch(
        oneshot::Sender<Result<Result<Vec<Decision>, Rejection>, WriteError>>,
        Result<Vec<Decision>, Rejection>,
    ),
}

impl Reply {
    fn send(self) {
        // A caller that went away no longer needs its answer; the command is committed anyway.
        match self {
            Reply::One(tx, decision) => drop(tx.send(Ok(decision))),
            Reply::Batch(tx, decisions) => drop(tx.send(Ok(decisions))),
        }
    }
}
