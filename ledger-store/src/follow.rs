//! One loop for everything that follows the log with a checkpoint of its own (the read models,
//! the Kafka publisher): prepare once per connection, apply pages until caught up, then wait for
//! the writer's notification (or poll), linger so one page covers many commits, and back off
//! and reconnect on errors. What a page does, and where its checkpoint lives, is the
//! [`Follow`] implementation's; the loop never knows.
//!
//! Checkpoints live in the `projections` table (one row per follower: version, checkpoint,
//! halt), read by [`status`].
//!
//! The writer's notifications are heard once per process and log: every follower of the same
//! log in a process wakes from one shared `LISTEN` connection ([`Wakeup`]), not one each (each
//! listening connection costs Postgres a wake-up per commit).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use tracing::{info, warn};

use crate::followers::Follower;

/// The channel the writer notifies after each commit.
pub const CHANNEL: &str = "ledger_events";

/// How far one step got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Events read by the step (a full page means more is waiting).
    pub read: usize,
    /// The follower's checkpoint after the step; `None`: it halted, and the loop ends.
    pub checkpoint: Option<i64>,
}

/// A follower of the log: what it does with a page. Poison (an event it cannot handle) is its
/// own to record; it then answers a `Progress` without a checkpoint.
pub trait Follow: Send {
    type Error: std::fmt::Display + From<sqlx::Error> + Send;

    /// For the log lines the loop writes.
    fn name(&self) -> String;

    /// Once per connection, before the first step: create what is missing, take what the
    /// connection must hold. `Ok(false)`: not now (another instance holds its lock); asked again
    /// after the poll interval.
    fn prepare(&mut self, conn: &mut PgConnection) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Handles the next page after the checkpoint, if any.
    fn step(&mut self, conn: &mut PgConnection) -> impl Future<Output = Result<Progress, Self::Error>> + Send;
}

/// The loop's timing.
#[derive(Clone, Copy, Debug)]
pub struct FollowConfig {
    /// A step that read this many events goes on at once.
    pub page: usize,
    /// Poll this often when no notification arrives.
    pub poll: Duration,
    /// After a notification, wait this long so that one page covers many commits.
    pub linger: Duration,
    /// First back-off after an error; doubles up to `max_backoff`, back to the first after a
    /// step that succeeds.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            page: 1000,
            poll: Duration::from_secs(1),
            linger: Duration::from_millis(50),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Runs a follower until `stop` turns true or it halts. Errors are logged and retried on a new
/// connection after a back-off. `report` (the writer's backpressure) hears every checkpoint,
/// and that the follower left when it halts.
pub async fn run<F: Follow>(
    url: &str,
    follower: &mut F,
    config: FollowConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
    report: Option<&Follower>,
) {
    let mut delay = config.backoff;
    while !*stop.borrow() {
        match follow(url, follower, config, &mut stop, report, &mut delay).await {
            Ok(()) => return,
            Err(e) => {
                warn!(follower = follower.name(), error = %e, retry_in_ms = delay.as_millis() as u64, "paused; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
                delay = (delay * 2).min(config.max_backoff);
            }
        }
    }
}

async fn follow<F: Follow>(
    url: &str,
    follower: &mut F,
    config: FollowConfig,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    report: Option<&Follower>,
    delay: &mut Duration,
) -> Result<(), F::Error> {
    let mut conn = PgConnection::connect(url).await?;
    while !follower.prepare(&mut conn).await? {
        tokio::select! {
            _ = tokio::time::sleep(config.poll) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    let mut wakeup = Wakeup::of(url);
    info!(follower = follower.name(), "following the log");
    loop {
        // A full page means more is waiting: keep going without pause.
        loop {
            let started = std::time::Instant::now();
            let progress = tokio::select! {
                progress = follower.step(&mut conn) => progress?,
                _ = stop.changed() => return Ok(()),
            };
            *delay = config.backoff;
            let Some(checkpoint) = progress.checkpoint else {
                // Halted: a halted follower never holds the writer back.
                if let Some(r) = report {
                    r.leave();
                }
                return Ok(());
            };
            if let Some(r) = report {
                r.report(checkpoint);
                if progress.read > 0 {
                    r.applied(progress.read, started.elapsed());
                }
            }
            if progress.read < config.page {
                break;
            }
            if *stop.borrow() {
                return Ok(());
            }
        }
        tokio::select! {
            _ = wakeup.next() => {}
            _ = tokio::time::sleep(config.poll) => {}
            _ = stop.changed() => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.linger) => {}
            _ = stop.changed() => return Ok(()),
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

/// Wakes a follower when the writer committed (a notification on [`CHANNEL`]), heard on the one
/// `LISTEN` connection this process keeps to the log for all its followers. That connection is
/// opened by the first follower of a log, reconnected after errors (every follower is woken once
/// it is back, since notifications may have been missed meanwhile), and closed when the last
/// follower of the log is gone. Followers poll besides, so a lost connection delays them, never
/// stops them.
pub struct Wakeup {
    commits: tokio::sync::watch::Receiver<u64>,
}

/// The hearing side of each log this process follows, by its URL.
static LISTENERS: LazyLock<Mutex<HashMap<String, tokio::sync::watch::Sender<u64>>>> = LazyLock::new(Default::default);

impl Wakeup {
    /// Wake-ups for a follower of the log at `url`; the first one in the process starts listening.
    pub fn of(url: &str) -> Wakeup {
        let mut listeners = LISTENERS.lock().expect("the listeners' registry is never poisoned");
        if let Some(tx) = listeners.get(url) {
            return Wakeup { commits: tx.subscribe() };
        }
        let (tx, mut commits) = tokio::sync::watch::channel(0);
        commits.mark_unchanged();
        listeners.insert(url.to_owned(), tx.clone());
        tokio::spawn(listen(url.to_owned(), tx));
        Wakeup { commits }
    }

    /// Resolves at the next commit after the last one this follower was woken for.
    pub async fn next(&mut self) {
        if self.commits.changed().await.is_err() {
            // The listening task never drops its sender while a follower waits; should it, the
            // follower's poll still wakes it.
            std::future::pending::<()>().await;
        }
    }
}

/// Listens on `url` for as long as any follower of it waits, reconnecting with back-off.
async fn listen(url: String, tx: tokio::sync::watch::Sender<u64>) {
    let mut delay = FollowConfig::default().backoff;
    loop {
        tokio::select! {
            result = hear(&url, &tx) => {
                let Err(e) = result;
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "listening to the log's notifications paused; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = tx.closed() => {}
                }
                delay = (delay * 2).min(FollowConfig::default().max_backoff);
            }
            _ = tx.closed() => {}
        }
        // Gone only when no follower of this log is left, checked under the registry's lock (a
        // new follower takes the same sender meanwhile, and is then heard for).
        let mut listeners = LISTENERS.lock().expect("the listeners' registry is never poisoned");
        if tx.receiver_count() == 0 {
            if listeners.get(&url).is_some_and(|t| t.same_channel(&tx)) {
                listeners.remove(&url);
            }
            return;
        }
    }
}

/// One connection's hearing: wakes every follower once it listens, then at every notification
/// and when the connection is lost.
async fn hear(url: &str, tx: &tokio::sync::watch::Sender<u64>) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    loop {
        tx.send_modify(|n| *n = n.wrapping_add(1));
        if listener.try_recv().await?.is_none() {
            // Reconnected from scratch (after the back-off), so the followers are woken once
            // it listens again.
            return Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the listening connection was lost",
            )));
        }
    }
}

/// Records where and why a follower halted; it stays halted until it is rebuilt.
pub async fn halt(conn: &mut PgConnection, name: &str, position: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE projections SET halted_position = $2, halted_error = $3, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(position)
        .bind(error)
        .execute(conn)
        .await
        .map(drop)
}

/// A follower's row: where it stands and whether it halted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub checkpoint: i64,
    pub head: i64,
    pub lag: i64,
    pub halted_position: Option<i64>,
    pub halted_error: Option<String>,
}

/// Every follower's version, checkpoint and lag behind the head of the log.
pub async fn status(conn: &mut PgConnection) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    status_with(conn, None).await
}

/// [`status`] when the read models keep their checkpoints in a database of their own (`read`):
/// its rows, and the log's for every other follower (the publisher, outboxes), against the
/// head of the log.
pub async fn status_with(
    log: &mut PgConnection,
    read: Option<&mut PgConnection>,
) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(&mut *log).await?;
    let mut rows = checkpoints(log).await?;
    if let Some(read) = read {
        let read_rows = match checkpoints(read).await {
            // No runner has prepared the read models' database yet: nothing has run there.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            read_rows => read_rows?,
        };
        rows.retain(|r| !read_rows.iter().any(|m| m.name == r.name));
        rows.extend(read_rows);
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(rows
        .into_iter()
        .map(|r| ProjectionStatus {
            name: r.name,
            version: r.version,
            checkpoint: r.checkpoint,
            head,
            lag: head - r.checkpoint,
            halted_position: r.halted_position,
            halted_error: r.halted_error,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    version: i32,
    checkpoint: i64,
    halted_position: Option<i64>,
    halted_error: Option<String>,
}

async fn checkpoints(conn: &mut PgConnection) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as("SELECT name, version, checkpoint, halted_position, halted_error FROM projections ORDER BY name")
        .fetch_all(conn)
        .await
}
