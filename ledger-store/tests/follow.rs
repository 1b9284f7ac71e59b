//! Following the log against a real Postgres: the writer's backpressure from its followers, the
//! shared notifications that wake them, and the tail that hands them what was just committed.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use common::{open, scalar, start, stop, submit, transfer};
use ledger_core::ledger::Command;
use ledger_core::{AccountId, AccountKind, BatchMode};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use test_support::{TestDatabase, fresh_database};

#[tokio::test]
async fn the_writer_slows_down_for_a_lagging_follower_and_never_waits_for_one_that_left() {
    let db = fresh_database().await;
    let followers = ledger_store::followers::Followers::new(20);
    let config = WriterConfig { followers: Some(followers.clone()), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, false).await;
    let follower = followers.join("balances");
    follower.report(2);
    // One transfer after another: each group is one command, so the bound is exact.
    let writer = ledger.clone();
    let writes = tokio::spawn(async move {
        for _ in 0..200 {
            submit(&writer, Command::CreateTransfer(transfer(bank, player, "1.00"))).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let head = scalar(&db, "SELECT coalesce(max(position), 0) FROM events").await;
    assert_eq!(head, 2 + 20 + 1, "the writer stops one group past the bound while the follower stands still");
    // The follower applies events: the writer may write half as many, and then catches up.
    follower.report(head);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = scalar(&db, "SELECT coalesce(max(position), 0) FROM events").await;
    assert!(later > head, "progress once the follower advanced ({head} → {later})");
    // A follower that leaves (halted, or stopped) is not waited for.
    drop(follower);
    writes.await.unwrap();
    assert_eq!(scalar(&db, "SELECT max(position) FROM events").await, 202);
    assert!(ledger.metrics().throttled_micros.load(std::sync::atomic::Ordering::Relaxed) > 0);
    stop(ledger, task).await;
    db.drop_database().await;
}

/// A follower that takes `full_page` to apply a full page, and a share of it for a smaller one
/// (a costly read model, the same cost per event whatever the page), and can be paused.
struct SlowFollower {
    checkpoint: Arc<AtomicI64>,
    paused: Arc<AtomicBool>,
    page: i64,
    full_page: Arc<std::sync::Mutex<Duration>>,
}

impl ledger_store::follow::Follow for SlowFollower {
    type Error = sqlx::Error;

    fn name(&self) -> String {
        "slow".into()
    }

    async fn prepare(&mut self, _: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
        Ok(true)
    }

    async fn step(&mut self, conn: &mut sqlx::PgConnection) -> Result<ledger_store::follow::Progress, sqlx::Error> {
        let at = self.checkpoint.load(SeqCst);
        if self.paused.load(SeqCst) {
            return Ok(ledger_store::follow::Progress { read: 0, checkpoint: Some(at) });
        }
        let (read, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), max(position) FROM \
             (SELECT position FROM events WHERE position > $1 ORDER BY position LIMIT $2) page",
        )
        .bind(at)
        .bind(self.page)
        .fetch_one(conn)
        .await?;
        if read > 0 {
            let full_page = *self.full_page.lock().unwrap();
            tokio::time::sleep(full_page * u32::try_from(read).unwrap() / u32::try_from(self.page).unwrap()).await;
        }
        let checkpoint = last.unwrap_or(at);
        self.checkpoint.store(checkpoint, SeqCst);
        Ok(ledger_store::follow::Progress { read: read as usize, checkpoint: Some(checkpoint) })
    }
}

/// A `SlowFollower` running in the log's follow loop, reporting to `followers`.
struct Following {
    checkpoint: Arc<AtomicI64>,
    paused: Arc<AtomicBool>,
    full_page: Arc<std::sync::Mutex<Duration>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Following {
    fn start(url: &str, followers: &ledger_store::followers::Followers, page: i64, full_page: Duration) -> Following {
        Following::polling(url, followers, page, full_page, Duration::from_millis(20))
    }

    /// `start`, polling the log every `poll` besides the writer's notifications.
    fn polling(
        url: &str,
        followers: &ledger_store::followers::Followers,
        page: i64,
        full_page: Duration,
        poll: Duration,
    ) -> Following {
        let (checkpoint, paused) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicBool::new(false)));
        let full_page = Arc::new(std::sync::Mutex::new(full_page));
        let mut follower =
            SlowFollower { checkpoint: checkpoint.clone(), paused: paused.clone(), page, full_page: full_page.clone() };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let report = followers.join("slow");
        let url = url.to_owned();
        let task = tokio::spawn(async move {
            let config = ledger_store::follow::FollowConfig {
                page: page as usize,
                poll,
                linger: Duration::ZERO,
                ..Default::default()
            };
            ledger_store::follow::run(&url, &mut follower, config, stop_rx, Some(&report)).await;
        });
        Following { checkpoint, paused, full_page, stop, task }
    }

    /// Waits (up to 10 s) until the follower applied `position`; answers where it stands.
    async fn reach(&self, position: i64) -> i64 {
        for _ in 0..200 {
            if self.checkpoint.load(SeqCst) >= position {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.checkpoint.load(SeqCst)
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

/// The backends of `db` listening to the writer's notifications.
async fn listening(db: &TestDatabase) -> Vec<i32> {
    let mut conn = db.connect().await;
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
         AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// Waits (up to 10 s) until `db` has `n` listening backends; answers them.
async fn listening_backends(db: &TestDatabase, n: usize) -> Vec<i32> {
    for _ in 0..200 {
        let pids = listening(db).await;
        if pids.len() == n {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listening(db).await
}

#[tokio::test]
async fn followers_in_one_process_wake_at_each_commit_from_one_shared_listening_connection() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, false).await;
    let followers = ledger_store::followers::Followers::new(1_000_000);
    // They poll once a minute: within the test, only a notification wakes them.
    let minute = Duration::from_secs(60);
    let first = Following::polling(&db.url, &followers, 100, Duration::ZERO, minute);
    let second = Following::polling(&db.url, &followers, 100, Duration::ZERO, minute);
    assert_eq!((first.reach(2).await, second.reach(2).await), (2, 2), "both started from the log");
    let pids = listening_backends(&db, 1).await;
    assert_eq!(pids.len(), 1, "one listening connection for both: {pids:?}");

    submit(&ledger, Command::CreateTransfer(transfer(bank, player, "1.00"))).await.unwrap();
    assert_eq!((first.reach(3).await, second.reach(3).await), (3, 3), "both woke at the commit");

    // The connection is lost: the listener comes back, and a commit after it wakes both again.
    let mut conn = db.connect().await;
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pids[0]).execute(&mut conn).await.unwrap();
    let mut again = pids.clone();
    for _ in 0..200 {
        again = listening_backends(&db, 1).await;
        if again != pids {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(again, pids, "the lost connection was replaced");
    assert_eq!(again.len(), 1, "listening again on one connection: {again:?}");
    submit(&ledger, Command::CreateTransfer(transfer(bank, player, "1.00"))).await.unwrap();
    assert_eq!((first.reach(4).await, second.reach(4).await), (4, 4), "both woke after the reconnection");

    // The last follower gone, nobody listens.
    first.stop().await;
    assert_eq!(listening_backends(&db, 1).await.len(), 1, "the second still listens");
    second.stop().await;
    assert_eq!(listening_backends(&db, 0).await, Vec::<i32>::new(), "the connection closed with the last follower");
    stop(ledger, task).await;
    db.drop_database().await;
}

/// A writer bounded to what its followers apply in 200 ms (and 100,000 events), with `batches`
/// batches of 1,000 transfers between two accounts already written: positions 1 to
/// 2 + 1,000 x `batches`.
async fn writer_with_delay_bound(
    db: &TestDatabase,
    batches: usize,
) -> (LedgerHandle, tokio::task::JoinHandle<()>, Arc<ledger_store::followers::Followers>, AccountId, AccountId) {
    let followers = ledger_store::followers::Followers::with_max_delay(100_000, Some(Duration::from_millis(200)));
    let config = WriterConfig { followers: Some(followers.clone()), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, false).await;
    for _ in 0..batches {
        let items = (0..1000).map(|_| transfer(bank, player, "1.00")).collect();
        ledger.submit_batch(items, BatchMode::Independent, EventMeta::default()).await.unwrap().unwrap();
    }
    (ledger, task, followers, bank, player)
}

#[tokio::test]
async fn with_a_delay_bound_the_writer_runs_no_further_ahead_than_the_follower_applies_in_it() {
    let db = fresh_database().await;
    let (ledger, task, followers, bank, player) = writer_with_delay_bound(&db, 3).await;
    // The follower catches up on the backlog at 1,000 events per 100 ms at most: its pace is at
    // most 10,000 events/s, so 200 ms of it is at most 2,000 events.
    let following = Following::start(&db.url, &followers, 1000, Duration::from_millis(100));
    let head = 3002;
    assert_eq!(following.reach(head).await, head, "the follower caught up");
    let bound = followers.bound();
    assert!((ledger_store::followers::MIN_BOUND..=2_000).contains(&bound), "bound {bound}");

    // Paused, it holds the writer at the bound: one transfer after another, each group one
    // command, so the writer stops one group past it.
    following.paused.store(true, SeqCst);
    let writer = ledger.clone();
    let writes = tokio::spawn(async move {
        for _ in 0..(bound + 100) {
            submit(&writer, Command::CreateTransfer(transfer(bank, player, "1.00"))).await.unwrap();
        }
    });
    let mut written = 0;
    for _ in 0..400 {
        written = scalar(&db, "SELECT max(position) FROM events").await - head;
        if written > bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = scalar(&db, "SELECT max(position) FROM events").await - head;
    assert_eq!((written, held), (bound + 1, bound + 1), "held one group past the time bound");
    assert_eq!(followers.bound(), bound, "a paused follower reports no pace");

    // Going again, it lets the writer finish.
    following.paused.store(false, SeqCst);
    writes.await.unwrap();
    assert_eq!(scalar(&db, "SELECT max(position) FROM events").await, head + bound + 100);
    following.stop().await;
    stop(ledger, task).await;
    db.drop_database().await;
}

/// A slow page can drop the time bound below one page; the pace is still measured on the
/// smaller pages that follow, so the bound comes back up when the follower is fast again.
#[tokio::test]
async fn a_bound_below_one_page_still_follows_the_pace_of_smaller_pages() {
    let db = fresh_database().await;
    let (ledger, task, followers, bank, player) = writer_with_delay_bound(&db, 2).await;
    // One full page of 2,000 events in a second: 2,000 events/s, 400 in 200 ms, so the floor.
    let following = Following::start(&db.url, &followers, 2000, Duration::from_secs(1));
    following.reach(2000).await;
    assert_eq!(followers.bound(), ledger_store::followers::MIN_BOUND);
    // Fast again: the writer's transfers arrive in pages of a few hundred events, far below
    // 2,000 (pages of one event would measure mostly a page's fixed cost).
    *following.full_page.lock().unwrap() = Duration::ZERO;
    for _ in 0..3 {
        let items = (0..500).map(|_| transfer(bank, player, "1.00")).collect();
        ledger.submit_batch(items, BatchMode::Independent, EventMeta::default()).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(following.reach(3502).await, 3502);
    let bound = followers.bound();
    assert!(bound > 2 * ledger_store::followers::MIN_BOUND, "bound {bound}: the pace of the small pages counts");
    following.stop().await;
    stop(ledger, task).await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_tail_hands_followers_exactly_the_records_the_log_stores() {
    let db = fresh_database().await;
    let tail = ledger_store::tail::Tail::new(10_000);
    let mut reader = tail.reader();
    let config = WriterConfig { tail: Some(tail.clone()), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    // Commits of one command and of many, accepted and refused, holds and their settlements.
    let mut pending = Vec::new();
    for i in 0..20 {
        let mut hold = transfer(bank, player, "2.00");
        hold.pending = i % 2 == 0;
        pending.extend(hold.pending.then_some(hold.id));
        submit(&ledger, Command::CreateTransfer(hold)).await.unwrap();
    }
    submit(&ledger, Command::CreateTransfer(transfer(player, bank, "1000.00"))).await.unwrap_err();
    let writes: Vec<_> = (0..50)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move { submit(&ledger, Command::CreateTransfer(transfer(bank, player, "0.01"))).await })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    for id in pending {
        submit(&ledger, Command::PostPendingTransfer { pending_id: id, amount: None }).await.unwrap();
    }
    let mut conn = db.connect().await;
    let stored = ledger_store::log::page(&mut conn, 0, 1000).await.unwrap();
    assert_eq!(stored.len(), 2 + 20 + 50 + 10);
    let mut from_memory = Vec::new();
    while let Some(page) = reader.page(from_memory.last().map_or(0, |e: &ledger_store::tail::Logged| e.0.position), 7) {
        assert!(page.len() <= 7);
        from_memory.extend(page);
    }
    let records: Vec<_> = from_memory.iter().map(|e| e.0.clone()).collect();
    assert_eq!(records, stored, "payload, metadata, time and hash as stored");
    for e in &from_memory {
        assert_eq!(e.1, e.0.event().unwrap(), "the decided event is what its record decodes to");
    }
    assert_eq!(tail.served(), stored.len() as u64);
    assert_eq!(ledger.tail().map(|t| t.served()), Some(stored.len() as u64));
    drop(conn);
    stop(ledger, task).await;
    db.drop_database().await;
}
