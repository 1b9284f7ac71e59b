//! The committer: the connection that holds the writer lock, one statement per commit, commits
//! pipelined.
//!
//! The connection is tokio-postgres rather than sqlx because it can pipeline: the committer
//! sends the next commit while the server is still running the previous one, so the server
//! goes from one commit straight to the next instead of waiting a round trip for the writer to
//! hear the answer and send more. The server runs the statements of one connection strictly in
//! order, each in its own implicit transaction. Every commit begins by checking that the log
//! ends exactly where the commit was decided (`ledger_log_continues`), so when one commit
//! fails, every commit pipelined behind it fails too and nothing is written out of order or on
//! top of a hole. The answers go out in commit order, each only after its own commit landed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::future::{self, MaybeDone};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, NoTls, Statement};
use tracing::{error, info, warn};

use super::decider::Sealed;
use super::{Standby, StartError, micros};
use crate::metrics::WriterMetrics;
use crate::sql::{self, GroupWrite};
use crate::view::{CommittedAccount, CommittedView};

type Commit = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send>>;

/// The writer's connection: holds the writer lock and the prepared commit statement.
pub(super) struct WriterConnection {
    client: Arc<Client>,
    statement: Statement,
}

/// Connects, takes the writer lock (or waits for it, as a standby) and prepares the commit.
pub(super) async fn lock(url: &str, standby: Standby) -> Result<WriterConnection, StartError> {
    let config: tokio_postgres::Config = url.parse()?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "the writer's connection closed");
        }
    });
    let mut waited = false;
    while !client.query_one("SELECT pg_try_advisory_lock($1)", &[&sql::WRITER_LOCK_KEY]).await?.get::<_, bool>(0) {
        if standby == Standby::Refuse {
            return Err(StartError::Locked { key: sql::WRITER_LOCK_KEY });
        }
        if !waited {
            info!("another writer holds the database: waiting as a standby");
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The commit statement is the same every time: plan it once, not per commit. Its generic
    // plan cannot know how many rows a commit updates, and on a small or freshly analysed
    // `accounts` table it would hash-join a scan of every account against them: updates go by
    // primary key instead (a nested loop over index probes), whatever the table's size.
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan; SET enable_hashjoin = off; SET enable_mergejoin = off",
        )
        .await?;
    let statement = client.prepare(sql::WRITE_GROUP).await?;
    Ok(WriterConnection { client: Arc::new(client), statement })
}

/// A commit sent and not yet answered (or, with no events, only waiting for its turn).
struct InFlight {
    commit: Option<MaybeDone<Commit>>,
    groups: Vec<Sealed>,
    /// The last position it writes and how many events (none: only answers in turn).
    head: Option<i64>,
    events: usize,
    started: Instant,
    /// Its events, for the tail (only when there is one).
    tail: Vec<crate::tail::Logged>,
}

impl InFlight {
    async fn result(&mut self) -> Result<u64, tokio_postgres::Error> {
        let Some(commit) = self.commit.as_mut() else { return Ok(0) };
        (&mut *commit).await;
        Pin::new(commit).take_output().expect("a landed commit's result is taken once")
    }
}

pub(super) struct Committer {
    url: String,
    conn: WriterConnection,
    max_commit_events: usize,
    depth: usize,
    epoch: u64,
    epoch_tx: watch::Sender<u64>,
    metrics: Arc<WriterMetrics>,
    view: Arc<CommittedView>,
    /// Followers in this process, handed each landed commit's events.
    tail: Option<crate::tail::Tail>,
}

impl Committer {
    pub(super) fn new(
        url: &str,
        conn: WriterConnection,
        config: &super::WriterConfig,
        metrics: Arc<WriterMetrics>,
        view: Arc<CommittedView>,
        epoch_tx: watch::Sender<u64>,
    ) -> Committer {
        Committer {
            url: url.to_owned(),
            conn,
            max_commit_events: config.max_commit_events,
            depth: config.pipeline_depth.max(1),
            epoch: 0,
            epoch_tx,
            metrics,
            view,
            tail: config.tail.clone(),
        }
    }

    /// Sends everything sealed since the last send as one commit, up to `depth` commits in
    /// flight, and answers each commit's callers when it lands, in order.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Sealed>) {
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        loop {
            enum Next {
                Landed(Result<u64, tokio_postgres::Error>),
                Sealed(Option<Sealed>),
            }
            let next = tokio::select! {
                biased;
                result = async { in_flight.front_mut().expect("checked").result().await }, if !in_flight.is_empty() => {
                    Next::Landed(result)
                }
                sealed = rx.recv(), if in_flight.len() < self.depth => Next::Sealed(sealed),
            };
            match next {
                Next::Landed(result) => {
                    let landed = in_flight.pop_front().expect("checked");
                    if let Err(e) = result {
                        self.fail(landed, in_flight.drain(..).collect(), &e).await;
                    } else {
                        self.land(landed);
                    }
                }
                Next::Sealed(Some(first)) => {
                    let mut events = first.events.len();
                    let mut groups = vec![first];
                    while events < self.max_commit_events {
                        match rx.try_recv() {
                            Ok(group) => {
                                events += group.events.len();
                                groups.push(group);
                            }
                            Err(_) => break,
                        }
                    }
                    // Groups decided on top of a failed commit are void: their callers may retry.
                    let (groups, stale): (Vec<Sealed>, Vec<Sealed>) =
                        groups.into_iter().partition(|g| g.epoch == self.epoch);
                    stale.into_iter().flat_map(|g| g.replies).for_each(super::Reply::fail);
                    if !groups.is_empty() {
                        in_flight.push_back(self.send(groups).await);
                    }
                }
                Next::Sealed(None) => break,
            }
        }
        // Every handle is gone: let what is in flight land, then hand the writer lock over now,
        // so a standby or a restart need not wait for Postgres to notice the closed connection.
        while let Some(mut commit) = in_flight.pop_front() {
            match commit.result().await {
                Ok(_) => self.land(commit),
                Err(e) => {
                    self.fail(commit, in_flight.drain(..).collect(), &e).await;
                }
            }
        }
        let _ = self.conn.client.batch_execute("SELECT pg_advisory_unlock_all()").await;
    }

    /// Starts one commit of `groups` and makes sure it is queued on the connection before
    /// anything sent later.
    async fn send(&mut self, mut groups: Vec<Sealed>) -> InFlight {
        let started = Instant::now();
        let events: Vec<_> = groups.iter_mut().flat_map(|g| std::mem::take(&mut g.events)).collect();
        let (head, count) = (events.last().map(|e| e.position), events.len());
        if events.is_empty() {
            return InFlight { commit: None, groups, head, events: count, started, tail: Vec::new() };
        }
        let tail = if self.tail.is_some() {
            let decoded = groups.iter_mut().flat_map(|g| std::mem::take(&mut g.decoded));
            let tail: Vec<_> = events.iter().cloned().zip(decoded).map(Arc::new).collect();
            assert_eq!(tail.len(), events.len(), "the decider keeps every sealed event for the tail");
            tail
        } else {
            Vec::new()
        };
        // Later groups hold newer rows of the same account or transfer: keep the last.
        let mut accounts = HashMap::new();
        let mut transfers = HashMap::new();
        let mut entities = HashMap::new();
        for group in &groups {
            for (row, first, last) in &group.entities {
                entities.insert(row.id, (row, *first, *last));
            }
            for (account, first, last) in &group.accounts {
                accounts.insert(account.id, (account, *first, *last));
            }
            for transfer in &group.transfers {
                transfers.insert(transfer.id, transfer);
            }
        }
        let write = GroupWrite {
            after: groups[0].after,
            events,
            accounts: accounts.into_values().collect(),
            transfers: transfers.into_values().collect(),
            entities: entities.into_values().collect(),
        };
        let params = write.into_params();
        let (client, statement) = (Arc::clone(&self.conn.client), self.conn.statement.clone());
        let commit: Commit = Box::pin(async move { client.execute_raw(&statement, params).await });
        let mut commit = future::maybe_done(commit);
        // The first poll encodes the statement and queues it on the connection: from then on
        // the server runs it after every commit sent before it, whoever awaits what.
        std::future::poll_fn(|cx| {
            let _ = Pin::new(&mut commit).poll(cx);
            Poll::Ready(())
        })
        .await;
        InFlight { commit: Some(commit), groups, head, events: count, started, tail }
    }

    /// A commit landed: publish what it changed, then answer its callers.
    fn land(&mut self, mut landed: InFlight) {
        if let Some(head) = landed.head {
            let events = landed.events as u64;
            self.metrics.observe_commit(micros(landed.started.elapsed()), events);
            WriterMetrics::add(&self.metrics.events, events);
            let mut accounts = HashMap::new();
            let mut entities = HashMap::new();
            for group in &landed.groups {
                for (account, _, last) in &group.accounts {
                    accounts.insert(account.id, (account, *last));
                }
                for (row, _, last) in &group.entities {
                    entities.insert(row.id, (row, *last));
                }
            }
            let committed = accounts
                .into_values()
                .map(|(account, last)| CommittedAccount { account: account.clone(), position: last });
            let entities = entities.into_values().map(|(row, last)| (row.clone(), last));
            self.view.publish(committed, entities, head);
            self.metrics.set_head(head);
            WriterMetrics::add(&self.metrics.groups, 1);
            if let Some(tail) = &self.tail {
                tail.publish(std::mem::take(&mut landed.tail));
            }
        }
        landed.groups.into_iter().flat_map(|g| g.replies).for_each(super::Reply::send);
    }

    /// A commit failed: it and every commit pipelined behind it (which fail on the log check,
    /// or never ran) answer `Unavailable`; then the writer reloads what is durable.
    async fn fail(&mut self, failed: InFlight, behind: Vec<InFlight>, e: &tokio_postgres::Error) {
        error!(error = %e, events = failed.events, "commit failed; the writer reloads its state");
        WriterMetrics::add(&self.metrics.failed_commits, 1);
        failed.groups.into_iter().flat_map(|g| g.replies).for_each(super::Reply::fail);
        for mut commit in behind {
            // Wait for the server to finish with it, so the reload sees the final state.
            let _ = commit.result().await;
            commit.groups.into_iter().flat_map(|g| g.replies).for_each(super::Reply::fail);
        }
        self.recover().await;
    }

    /// Reconnects and retakes the lock (waiting as a standby if another writer took over), then
    /// tells the decider to reload from what is durable.
    async fn recover(&mut self) {
        // A statement that failed leaves a live session, which still holds the writer lock.
        if !self.conn.client.is_closed() && self.conn.client.batch_execute("SELECT 1").await.is_ok() {
            self.epoch += 1;
            let _ = self.epoch_tx.send(self.epoch);
            return;
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match lock(&self.url, Standby::Wait).await {
                Ok(conn) => {
                    self.conn = conn;
                    self.epoch += 1;
                    let _ = self.epoch_tx.send(self.epoch);
                    return;
                }
                Err(e) => warn!(error = %e, "reconnecting the writer failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
