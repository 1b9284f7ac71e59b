//! The decider: in-memory state, `decide`/`apply`, positions and the hash chain.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ledger_core::ledger::decide::execute_batch;
use ledger_core::{
    AccountId, Command, Currencies, Entity, EntityRef, EntityRow, Event, Replay, State, Subject, Timestamp, Touched,
    TransferId,
};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use uuid::Uuid;

use super::known::Known;
use super::{Committed, Reply, Request, StartError, WriterConfig, micros};
use crate::metrics::WriterMetrics;
use crate::record::{GENESIS_HASH, RecordedEvent, meta_json};
use crate::sql::{self, Positions, Stored, TransferIndex};
use crate::view::{CommittedAccount, CommittedView};

/// State loaded from the database at start-up or after a failed commit.
pub(super) struct Loaded {
    state: State,
    positions: Positions,
    pub(super) head: i64,
    head_hash: [u8; 32],
}

impl Loaded {
    /// Accounts and pending transfers as stored, plus the head of the log: no replay.
    pub(super) async fn from_database(conn: &mut PgConnection, currencies: &Currencies) -> Result<Loaded, StartError> {
        let mut state = State::new(currencies.clone());
        let mut positions = Positions::new();
        let (head, hash) = sql::head(conn).await?.unwrap_or((0, GENESIS_HASH.to_vec()));
        let head_hash = hash.try_into().map_err(|_| StartError::Corrupt(format!("hash at {head} is not 32 bytes")))?;
        for row in sql::load_accounts(conn).await? {
            if row.position > head {
                return Err(StartError::Corrupt(format!("account {} is ahead of the log", row.account.id)));
            }
            positions.insert(Stored::Account(row.account.id.0), (row.opened_position, row.position));
            state.ledger.load_account(row.account);
        }
        for stored in sql::load_entities(conn).await? {
            if stored.position > head {
                return Err(StartError::Corrupt(format!("{} {} is ahead of the log", stored.row.kind, stored.row.key)));
            }
            positions.insert(Stored::Entity(stored.row.id), (stored.first_position, stored.position));
            let kind = stored.row.kind.clone();
            state.load(stored.row).map_err(|e| StartError::Corrupt(format!("stored {kind}: {e}")))?;
        }
        for row in sql::load_pending_transfers(conn).await? {
            positions.insert(Stored::Transfer(row.transfer.id.0), (row.created_position, row.position));
            state.ledger.load_transfer(row.transfer);
        }
        info!(head, accounts = state.ledger.accounts().count(), "writer loaded state");
        Ok(Loaded { state, positions, head, head_hash })
    }

    pub(super) fn committed_entities(&self) -> Vec<(EntityRow, i64)> {
        self.state
            .rows()
            .into_iter()
            .map(|row| {
                let position = self.positions.get(&Stored::Entity(row.id)).map_or(0, |p| p.1);
                (row, position)
            })
            .collect()
    }

    pub(super) fn committed_accounts(&self) -> Vec<CommittedAccount> {
        self.state
            .ledger
            .accounts()
            .map(|a| CommittedAccount {
                account: a.clone(),
                position: self.positions.get(&Stored::Account(a.id.0)).map_or(0, |p| p.1),
            })
            .collect()
    }
}

/// One decided group, sealed and ready to commit.
pub(super) struct Sealed {
    pub(super) epoch: u64,
    /// The end of the log these events continue: position and hash before the first of them.
    pub(super) after: (i64, [u8; 32]),
    pub(super) events: Vec<RecordedEvent>,
    /// The events as decided, one per sealed record, for the tail (empty without one).
    pub(super) decoded: Vec<Event>,
    pub(super) accounts: Vec<(ledger_core::Account, i64, i64)>,
    pub(super) transfers: Vec<TransferIndex>,
    pub(super) entities: Vec<(EntityRow, i64, i64)>,
    pub(super) replies: Vec<Reply>,
}

/// The decider's connection, for loading state and transfers not in memory. Its queries run
/// for every group with the same shape: plan them once, not per group.
pub(super) async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await?;
    Ok(conn)
}

pub(super) struct Decider {
    config: WriterConfig,
    conn: PgConnection,
    state: State,
    positions: Positions,
    next_position: i64,
    head_hash: [u8; 32],
    last_now: Timestamp,
    epoch: u64,
    epoch_rx: watch::Receiver<u64>,
    metrics: Arc<WriterMetrics>,
    view: Arc<CommittedView>,
    out: mpsc::Sender<Sealed>,
    throttle: crate::followers::Throttle,
    known: Known,
    /// What the event being sealed touched (reused, not allocated per event).
    touched: Vec<Touched>,
    /// The entities the command being staged touched.
    touched_entities: BTreeSet<EntityRef>,
}

#[derive(Default)]
struct Staged {
    events: Vec<RecordedEvent>,
    /// The events as decided, for the tail (only when there is one).
    decoded: Vec<Event>,
    accounts: BTreeSet<AccountId>,
    transfers: BTreeSet<TransferId>,
    /// Each touched entity's stored form as the latest command touching it left it: made once
    /// per command, it is both the commit's row and that command's answer.
    entities: BTreeMap<EntityRef, EntityRow>,
}

impl Decider {
    pub(super) fn new(
        config: WriterConfig,
        conn: PgConnection,
        loaded: Loaded,
        metrics: Arc<WriterMetrics>,
        view: Arc<CommittedView>,
        epoch_rx: watch::Receiver<u64>,
        out: mpsc::Sender<Sealed>,
    ) -> Decider {
        let config_url = config.url.clone();
        let mut decider = Decider {
            config,
            conn,
            state: State::new(Currencies::standard()),
            positions: Positions::new(),
            next_position: 1,
            head_hash: GENESIS_HASH,
            last_now: Timestamp(0),
            epoch: 0,
            epoch_rx,
            metrics,
            view,
            out,
            throttle: crate::followers::Throttle::default(),
            known: Known::build(&config_url),
            touched: Vec::new(),
            touched_entities: BTreeSet::new(),
        };
        decider.install(loaded);
        decider
    }

    fn install(&mut self, loaded: Loaded) {
        self.state = loaded.state;
        // The working set is sized once for the whole cache (and one group past it): growing
        // it later would rehash it on the decider's thread while every caller waits.
        self.state.ledger.reserve_transfers(self.config.transfer_cache.saturating_add(self.config.max_group));
        self.positions = loaded.positions;
        self.next_position = loaded.head + 1;
        self.head_hash = loaded.head_hash;
    }

    fn now(&mut self) -> Timestamp {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        self.last_now = self.last_now.max(Timestamp(i64::try_from(micros).unwrap_or(i64::MAX)));
        self.last_now
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
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
            if *self.epoch_rx.borrow() != self.epoch
                && let Err(e) = self.resync().await
            {
                // Dropping the group answers every caller `Unavailable`.
                warn!(error = %e, "reloading state after a failed commit failed; will retry");
                continue;
            }
            self.wait_for_followers().await;
            let before = self.next_position;
            self.process(group, weight).await;
            self.throttle.spend(self.next_position - before);
        }
    }

    /// Backpressure: while the slowest follower is too far behind, wait (requests queue up).
    async fn wait_for_followers(&mut self) {
        let Some(followers) = self.config.followers.clone() else { return };
        let started = Instant::now();
        let mut warned = false;
        while let Some(lag) = self.throttle.check(&followers, self.next_position - 1) {
            if !warned {
                tracing::debug!(lag, bound = followers.bound(), "waiting for projections to catch up");
                warned = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if warned {
            WriterMetrics::add(&self.metrics.throttled_micros, micros(started.elapsed()));
        }
    }

    /// After a failed commit memory may be ahead of the database. The committer has retaken
    /// the lock and discards everything decided before; reload what is durable.
    async fn resync(&mut self) -> Result<(), StartError> {
        let epoch = *self.epoch_rx.borrow();
        if self.conn.ping().await.is_err() {
            self.conn = connect(&self.config.url).await?;
        }
        let loaded = Loaded::from_database(&mut self.conn, &self.config.currencies).await?;
        self.install(loaded);
        // Settled transfers that were in memory are now only in the database: rebuild.
        self.known = Known::build(&self.config.url);
        WriterMetrics::set(&self.metrics.transfer_filter_ready, 0);
        self.epoch = epoch;
        Ok(())
    }

    /// Loads the transfers the group names that are not in memory.
    async fn prefetch(&mut self, group: &[Request]) -> Result<(), sqlx::Error> {
        if !self.known.is_ready() {
            self.known.poll();
            WriterMetrics::set(&self.metrics.transfer_filter_ready, u64::from(self.known.is_ready()));
        }
        let mut missing = BTreeSet::new();
        for request in group {
            let ids: Vec<TransferId> = match request {
                Request::One { command, .. } => command.transfer_ids(),
                Request::Batch { items, .. } => items.iter().map(|t| t.id).collect(),
            };
            missing.extend(
                ids.into_iter()
                    .filter(|id| self.state.ledger.transfer(*id).is_none() && self.known.may_exist(&id.0))
                    .map(|id| id.0),
            );
        }
        if missing.is_empty() {
            return Ok(());
        }
        WriterMetrics::add(&self.metrics.transfers_looked_up, missing.len() as u64);
        let ids: Vec<Uuid> = missing.into_iter().collect();
        for row in sql::load_transfers(&mut self.conn, &ids).await? {
            self.positions.insert(Stored::Transfer(row.transfer.id.0), (row.created_position, row.position));
            self.state.ledger.load_transfer(row.transfer);
        }
        Ok(())
    }

    async fn process(&mut self, group: Vec<Request>, weight: usize) {
        let started = Instant::now();
        if let Err(e) = self.prefetch(&group).await {
            error!(error = %e, "loading transfers failed");
            if let Ok(conn) = connect(&self.config.url).await {
                self.conn = conn;
            }
            return; // Dropping the group answers every caller `Unavailable`.
        }
        let decided = Instant::now();
        WriterMetrics::add(&self.metrics.prefetch_micros, micros(decided - started));
        let now = self.now();
        let after = (self.next_position - 1, self.head_hash);
        let mut staged = Staged::default();
        let mut replies = Vec::with_capacity(group.len());
        for request in group {
            match request {
                Request::One { command, meta, reply } => {
                    let meta = meta_json(&meta);
                    let decision = command
                        .execute(&mut self.state, now)
                        .map(|events| self.stage(&mut staged, &command, events, &meta, now));
                    replies.push(Reply::One(reply, decision));
                }
                Request::Batch { items, mode, meta, reply } => {
                    let meta = meta_json(&meta);
                    let decisions = execute_batch(&mut self.state.ledger, &items, mode, now).map(|results| {
                        results
                            .into_iter()
                            .zip(items)
                            .map(|(result, item)| {
                                let command = Command::from(ledger_core::ledger::Command::CreateTransfer(item));
                                result.map(|events| {
                                    let events: Vec<Event> = events.into_iter().map(Event::from).collect();
                                    self.stage(&mut staged, &command, events, &meta, now)
                                })
                            })
                            .collect()
                    });
                    replies.push(Reply::Batch(reply, decisions));
                }
            }
        }
        if self.state.ledger.next_deadline().is_some_and(|at| at <= now) {
            let expire = Command::from(ledger_core::ledger::Command::ExpirePendingTransfers);
            if let Ok(events) = expire.execute(&mut self.state, now) {
                self.stage(&mut staged, &expire, events, "{}", now);
            }
        }
        let sealed = Sealed {
            epoch: self.epoch,
            after,
            accounts: staged
                .accounts
                .iter()
                .map(|id| {
                    let (first, last) = self.positions[&Stored::Account(id.0)];
                    (self.state.ledger.account(*id).expect("touched accounts are in memory").clone(), first, last)
                })
                .collect(),
            transfers: staged
                .transfers
                .iter()
                .map(|id| {
                    let (created_position, position) = self.positions[&Stored::Transfer(id.0)];
                    let transfer = self.state.ledger.transfer(*id).expect("touched transfers are in memory");
                    TransferIndex {
                        id: id.0,
                        status: transfer.status,
                        created_position,
                        position,
                        reversed_by: transfer.reversed_by.map(|t| t.0),
                    }
                })
                .collect(),
            entities: staged
                .entities
                .into_values()
                .map(|row| {
                    let (first, last) = self.positions[&Stored::Entity(row.id)];
                    (row, first, last)
                })
                .collect(),
            events: staged.events,
            decoded: staged.decoded,
            replies,
        };
        WriterMetrics::add(&self.metrics.decide_micros, micros(decided.elapsed()));
        WriterMetrics::add(&self.metrics.commands, weight as u64);
        // A closed channel means the committer stopped: dropping the replies answers `Unavailable`.
        let _ = self.out.send(sealed).await;
        self.evict();
    }

    /// Trims the working set to pending transfers and those not yet committed.
    fn evict(&mut self) {
        if self.state.ledger.transfer_count() <= self.config.transfer_cache {
            return;
        }
        let committed = self.view.head();
        let positions = &self.positions;
        let mut evicted = Vec::new();
        self.state.ledger.evict_transfers(|t| {
            let evict = positions.get(&Stored::Transfer(t.id.0)).is_some_and(|p| p.1 <= committed);
            if evict {
                evicted.push(t.id.0);
            }
            evict
        });
        for id in &evicted {
            self.positions.remove(&Stored::Transfer(*id));
        }
        self.known.evicted(&self.config.url, evicted);
    }

    /// Seals a command's events at the next positions and records what they touched. The state
    /// already holds every event of the command, so each event's stream version is read back
    /// from it (see `stream_version`).
    fn stage(
        &mut self,
        staged: &mut Staged,
        command: &Command,
        events: Vec<Event>,
        meta: &str,
        now: Timestamp,
    ) -> Committed {
        for (n, event) in events.iter().enumerate() {
            let position = self.next_position;
            self.next_position += 1;
            let version = stream_version(&self.state, &events, n);
            let record = RecordedEvent::seal(event, position, version, meta, now, &self.head_hash);
            self.head_hash = record.hash;
            staged.events.push(record);
            self.state.touched_into(event, &mut self.touched);
            for touched in &self.touched {
                let subject = touched.subject;
                if let (true, Some(stored)) = (touched.moves, Stored::of(subject)) {
                    self.positions.entry(stored).or_insert((position, position)).1 = position;
                }
                match subject {
                    Subject::Account(id) => staged.accounts.insert(id),
                    Subject::Transfer(id) => staged.transfers.insert(id),
                    Subject::Entity(e) => self.touched_entities.insert(e),
                    // A record is its event: no row, no memory.
                    Subject::Record(_) => false,
                };
            }
        }
        for e in std::mem::take(&mut self.touched_entities) {
            staged.entities.insert(e, self.state.row(e).expect("touched entities are in memory"));
        }
        let answer = command.answer();
        let entity = answer.and_then(|a| match a.subject {
            Subject::Entity(e) => staged.entities.get(&e).cloned().or_else(|| self.state.row(e)).map(Entity::Row),
            subject => self.state.entity(subject),
        });
        let replayed = events.is_empty();
        let position = match (answer, &entity, replayed) {
            (Some(answer), Some(_), true) => self.position_of(answer.subject, answer.replay == Replay::First),
            _ => self.next_position - 1,
        };
        if self.config.tail.is_some() {
            staged.decoded.extend(events);
        }
        Committed { position, replayed, entity }
    }

    fn position_of(&self, subject: Subject, first: bool) -> i64 {
        let stored = Stored::of(subject).expect("an answer shows a stored entity");
        let (created, last) = self.positions.get(&stored).copied().expect("entities in memory have positions");
        if first { created } else { last }
    }
}

/// The stream version of `events[n]`, the state holding every one of `events` applied: its
/// stream's version less the command's later events on the same stream (a certificate's
/// cancellation releases its holds, then closes it: several events on one stream).
fn stream_version(state: &ledger_core::State, events: &[Event], n: usize) -> u32 {
    let subject = events[n].subject();
    let last = state.version(subject).expect("an applied event's subject is in memory");
    let later = events[n + 1..].iter().filter(|e| e.subject() == subject).count();
    last - u32::try_from(later).expect("a command holds fewer than 2^32 events")
}
