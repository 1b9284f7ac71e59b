//! The event store against a real Postgres: each test on its own fresh database.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use ledger_core::ledger::{Command, Rejection};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, BatchMode, CreateTransfer, CurrencyCode, OpenAccount,
    PostingRequest, Side, TransferId, TransferStatus,
};
use ledger_store::verify::{VerifyError, verify};
use ledger_store::writer::StartError;
use ledger_store::{Committed, Entity, EventMeta, LedgerHandle, Standby, WriteError, Writer, WriterConfig};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::Executor;
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn start(db: &TestDatabase) -> (LedgerHandle, tokio::task::JoinHandle<()>) {
    Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts")
}

async fn submit(ledger: &LedgerHandle, command: Command) -> Result<Committed, Rejection> {
    ledger
        .submit(command, EventMeta { channel: Some("test".into()), ..EventMeta::default() })
        .await
        .expect("writer answers")
}

async fn open(ledger: &LedgerHandle, code: &str, kind: AccountKind, no_overdraft: bool) -> AccountId {
    let id = AccountId(Uuid::new_v4());
    let limit = if no_overdraft { kind.no_overdraft_limit() } else { BalanceLimit::None };
    let command = Command::OpenAccount(OpenAccount {
        id,
        code: code.into(),
        currency: CurrencyCode::parse("EUR").unwrap(),
        kind,
        limit,
        metadata: json!({}),
    });
    submit(ledger, command).await.expect("account opens");
    id
}

fn transfer(debit: AccountId, credit: AccountId, amount: &str) -> CreateTransfer {
    CreateTransfer::simple(TransferId(Uuid::new_v4()), AccountRef::Id(debit), AccountRef::Id(credit), dec(amount))
}

async fn balance(ledger: &LedgerHandle, id: AccountId) -> Decimal {
    // Unfreezing an open account changes nothing and answers with its current state.
    let Ok(Committed { entity: Some(Entity::Account(a)), .. }) =
        submit(ledger, Command::UnfreezeAccount { id, reason: None }).await
    else {
        panic!("account {id} not found")
    };
    a.balance()
}

async fn scalar(db: &TestDatabase, sql: &'static str) -> i64 {
    let mut conn = db.connect().await;
    sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
}

async fn stop(ledger: LedgerHandle, task: tokio::task::JoinHandle<()>) {
    drop(ledger);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_transfers_through_one_hot_account_leave_no_hole() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank:eur", AccountKind::Asset, false).await;
    let fees = open(&ledger, "platform:fees", AccountKind::Income, false).await;
    let mut players = Vec::new();
    for i in 0..50 {
        players.push(open(&ledger, &format!("player:{i}:main"), AccountKind::Liability, true).await);
    }

    let mut tasks = Vec::new();
    for player in players.clone() {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for _ in 0..20 {
                // Every transfer also credits the one platform fee account.
                let t = CreateTransfer {
                    postings: vec![
                        PostingRequest { account: AccountRef::Id(bank), side: Side::Debit, amount: dec("10.00") },
                        PostingRequest { account: AccountRef::Id(player), side: Side::Credit, amount: dec("9.90") },
                        PostingRequest {
                            account: AccountRef::Code("platform:fees".into()),
                            side: Side::Credit,
                            amount: dec("0.10"),
                        },
                    ],
                    ..transfer(bank, player, "0")
                };
                positions.push(submit(&ledger, Command::CreateTransfer(t)).await.expect("accepted").position);
            }
            positions
        }));
    }
    let mut positions: Vec<i64> = Vec::new();
    for t in tasks {
        positions.extend(t.await.unwrap());
    }
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 1000, "every transfer got its own position");
    assert_eq!((positions[0], positions[999]), (53, 1052), "positions follow the 52 account openings");

    assert_eq!(balance(&ledger, fees).await, dec("100.00"));
    assert_eq!(balance(&ledger, bank).await, dec("10000.00"));
    for player in &players {
        assert_eq!(balance(&ledger, *player).await, dec("198.00"));
    }
    let (count, max) =
        (scalar(&db, "SELECT count(*) FROM events").await, scalar(&db, "SELECT max(position) FROM events").await);
    assert_eq!((count, max), (1052, 1052), "positions 1..N with no hole");
    stop(ledger, task).await;
    let report = verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    assert_eq!((report.events, report.accounts, report.transfers), (1052, 52, 1000));
    db.drop_database().await;
}

#[tokio::test]
async fn a_rejected_command_writes_nothing() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    let before = scalar(&db, "SELECT count(*) FROM events").await;
    let overdraw = submit(&ledger, Command::CreateTransfer(transfer(player, bank, "0.01"))).await;
    assert_eq!(overdraw, Err(Rejection::InsufficientFunds));
    let scale = submit(&ledger, Command::CreateTransfer(transfer(bank, player, "0.001"))).await;
    assert_eq!(scale, Err(Rejection::AmountScale));
    let items = vec![transfer(bank, player, "5"), transfer(player, bank, "6")];
    let linked = ledger.submit_batch(items, BatchMode::Linked, EventMeta::default()).await.unwrap().unwrap();
    assert_eq!(
        linked.iter().map(|r| r.as_ref().err().copied()).collect::<Vec<_>>(),
        [Some(Rejection::LinkedEventFailed), Some(Rejection::InsufficientFunds)]
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, before);
    assert_eq!(scalar(&db, "SELECT count(*) FROM transfers").await, 0);
    stop(ledger, task).await;
    db.drop_database().await;
}

#[tokio::test]
async fn idempotency_and_holds_survive_a_restart() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    let deposit = transfer(bank, player, "50");
    let first = submit(&ledger, Command::CreateTransfer(deposit.clone())).await.unwrap();
    let hold = CreateTransfer { pending: true, timeout_seconds: Some(3600), ..transfer(player, bank, "20") };
    submit(&ledger, Command::CreateTransfer(hold.clone())).await.unwrap();
    stop(ledger, task).await;

    let (ledger, task) = start(&db).await;
    let again = submit(&ledger, Command::CreateTransfer(deposit.clone())).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.position, first.position, "a retry answers with the original position");
    let changed = CreateTransfer { postings: transfer(bank, player, "51").postings, ..deposit };
    assert_eq!(submit(&ledger, Command::CreateTransfer(changed)).await, Err(Rejection::ExistsWithDifferentFields));
    // The hold placed before the restart is still there and can be captured in part.
    let post = Command::PostPendingTransfer { pending_id: hold.id, amount: Some(dec("12.5")) };
    let posted = submit(&ledger, post.clone()).await.unwrap();
    let Some(Entity::Transfer(t)) = &posted.entity else { panic!() };
    assert_eq!(t.status, TransferStatus::Posted);
    assert_eq!(balance(&ledger, player).await, dec("37.50"));
    stop(ledger, task).await;

    let (ledger, task) = start(&db).await;
    let retried = submit(&ledger, post).await.unwrap();
    assert_eq!((retried.replayed, retried.position), (true, posted.position));
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    db.drop_database().await;
}

#[tokio::test]
async fn a_second_writer_refuses_or_waits_as_a_standby() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    open(&ledger, "bank", AccountKind::Asset, false).await;

    let refused = Writer::start(&db.url, WriterConfig::default()).await;
    assert!(matches!(refused, Err(StartError::Locked { .. })), "a second writer refuses");

    let url = db.url.clone();
    let standby = tokio::spawn(async move {
        Writer::start(&url, WriterConfig { standby: Standby::Wait, ..WriterConfig::default() }).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!standby.is_finished(), "the standby waits while the first writer runs");
    stop(ledger, task).await;

    let (ledger, task) =
        tokio::time::timeout(Duration::from_secs(10), standby).await.expect("standby takes over").unwrap();
    let next = open(&ledger, "fees", AccountKind::Income, false).await;
    assert!(balance(&ledger, next).await.is_zero());
    assert_eq!(scalar(&db, "SELECT max(position) FROM events").await, 2, "the standby continues the log");
    stop(ledger, task).await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_database_refuses_to_change_events() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    open(&ledger, "bank", AccountKind::Asset, false).await;
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    for sql in ["UPDATE events SET event_type = 'X'", "DELETE FROM events", "TRUNCATE events"] {
        let err = conn.execute(sql).await.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    drop(conn);
    db.drop_database().await;
}

#[tokio::test]
async fn verify_names_the_first_tampered_position() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    // Free metadata with numbers JSONB normalises differently must still verify.
    let odd = CreateTransfer {
        metadata: json!({"f": 1.5, "e": 1e3, "big": 18446744073709551616u128 as f64, "s": "é\"\\", "n": [null, true]}),
        external_ref: Some("order-1".into()),
        ..transfer(bank, player, "10")
    };
    submit(&ledger, Command::CreateTransfer(odd)).await.unwrap();
    for _ in 0..5 {
        submit(&ledger, Command::CreateTransfer(transfer(bank, player, "1"))).await.unwrap();
    }
    stop(ledger, task).await;
    let report = verify(&db.url, ledger_core::Currencies::standard()).await.expect("an untouched log verifies");
    assert_eq!(report.events, 8);

    let mut conn = db.connect().await;
    conn.execute("SET session_replication_role = replica").await.unwrap();
    conn.execute(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{postings,0,amount}', '\"100.00\"')::json WHERE position = 5",
    )
    .await
    .unwrap();
    match verify(&db.url, ledger_core::Currencies::standard()).await {
        Err(VerifyError::Event { position: 5, problem }) => assert!(problem.contains("hash"), "{problem}"),
        other => panic!("tampering at 5 went unnoticed: {other:?}"),
    }
    drop(conn);
    db.drop_database().await;
}

#[tokio::test]
async fn verify_catches_a_stored_balance_that_the_log_does_not_give() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    submit(&ledger, Command::CreateTransfer(transfer(bank, player, "10"))).await.unwrap();
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    conn.execute("UPDATE accounts SET credits_posted = 1000 WHERE code = 'player'").await.unwrap();
    match verify(&db.url, ledger_core::Currencies::standard()).await {
        Err(VerifyError::State(problem)) => assert!(problem.contains("account player"), "{problem}"),
        other => panic!("a forged balance went unnoticed: {other:?}"),
    }
    drop(conn);
    db.drop_database().await;
}

#[tokio::test]
async fn the_writer_expires_holds_after_their_timeout() {
    let db = fresh_database().await;
    let config = WriterConfig { expiry_interval: Duration::from_millis(50), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    submit(&ledger, Command::CreateTransfer(transfer(bank, player, "10"))).await.unwrap();
    let hold = CreateTransfer { pending: true, timeout_seconds: Some(1), ..transfer(player, bank, "4") };
    submit(&ledger, Command::CreateTransfer(hold.clone())).await.unwrap();
    let mut status = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut conn = db.connect().await;
        status = sqlx::query_scalar("SELECT status FROM transfers WHERE id = $1")
            .bind(hold.id.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if status == "expired" {
            break;
        }
    }
    assert_eq!(status, "expired");
    let void = submit(&ledger, Command::VoidPendingTransfer { pending_id: hold.id }).await;
    assert_eq!(void, Err(Rejection::PendingTransferExpired));
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    db.drop_database().await;
}

#[tokio::test]
async fn the_writer_recovers_when_its_connections_are_killed() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, true).await;
    submit(&ledger, Command::CreateTransfer(transfer(bank, player, "1"))).await.unwrap();

    let mut admin = db.connect().await;
    admin
        .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .await
        .unwrap();
    // Commands fail with `Unavailable` (and write nothing) until the writer has reconnected,
    // retaken its lock and reloaded; a retry with the same id then succeeds exactly once.
    let mut accepted = 1;
    for _ in 0..20 {
        let t = transfer(bank, player, "1");
        loop {
            match ledger.submit(Command::CreateTransfer(t.clone()), EventMeta::default()).await {
                Ok(decision) => {
                    decision.expect("accepted");
                    accepted += 1;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    assert_eq!(balance(&ledger, player).await, Decimal::from(accepted));
    let failed = ledger_store::metrics::WriterMetrics::get(&ledger.metrics().failed_commits);
    assert_eq!(failed, 1, "the commit on the killed connection failed, and only that one");
    stop(ledger, task).await;
    drop(admin);
    verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_commit_pipelined_behind_it_and_leaves_no_hole() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, false).await;
    // The database refuses one transfer, slowly, so that what is decided after it is sent to the
    // server behind it (on top of a commit that will fail).
    let poison = transfer(bank, player, "100");
    let mut admin = db.connect().await;
    let trigger = format!(
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.id = '{}' THEN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER poison BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION poison()",
        poison.id.0
    );
    admin.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))).await.unwrap();
    let spawn = |t: CreateTransfer| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.submit(Command::CreateTransfer(t), EventMeta::default()).await })
    };
    let poisoned = spawn(poison);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let behind: Vec<CreateTransfer> = (0..20).map(|_| transfer(bank, player, "1")).collect();
    let answers: Vec<_> = behind.iter().cloned().map(spawn).collect();
    assert_eq!(poisoned.await.unwrap(), Err(WriteError::Unavailable));
    for answer in answers {
        // Decided on top of the failed commit: the pipelined commit fails on the log check, and
        // the groups not yet sent are void.
        assert_eq!(answer.await.unwrap(), Err(WriteError::Unavailable));
    }
    assert_eq!(ledger_store::metrics::WriterMetrics::get(&ledger.metrics().failed_commits), 1);
    let (events, max) = {
        let mut conn = db.connect().await;
        sqlx::query_as::<_, (i64, Option<i64>)>("SELECT count(*), max(position) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!((events, max), (2, Some(2)), "only the two accounts are in the log");
    // The writer reloaded: the same requests again are accepted, once each.
    for t in behind.iter().cloned().chain(behind.iter().cloned()) {
        submit(&ledger, Command::CreateTransfer(t)).await.expect("accepted");
    }
    assert_eq!(balance(&ledger, player).await, dec("20"));
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, 22);
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    drop(admin);
    db.drop_database().await;
}

#[tokio::test]
async fn a_commit_refuses_to_extend_a_log_that_ends_elsewhere() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    open(&ledger, "bank", AccountKind::Asset, false).await;
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    let hash: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM events WHERE position = 1").fetch_one(&mut conn).await.unwrap();
    let check = "SELECT ledger_log_continues($1, $2)";
    let ok: i32 = sqlx::query_scalar(check).bind(1_i64).bind(&hash).fetch_one(&mut conn).await.unwrap();
    assert_eq!(ok, 1);
    let ok: i32 = sqlx::query_scalar(check).bind(0_i64).bind(vec![0_u8; 32]).fetch_one(&mut conn).await.unwrap();
    assert_eq!(ok, 1, "an empty log continues at 0");
    for (after, hash) in [(2_i64, hash.clone()), (1, vec![7_u8; 32])] {
        let err = sqlx::query_scalar::<_, i32>(check).bind(after).bind(hash).fetch_one(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("does not end at position"), "{err}");
    }
    drop(conn);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_transfers_are_found_through_the_id_filter_and_new_ids_are_not_looked_up() {
    use ledger_store::metrics::WriterMetrics;
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let player = open(&ledger, "player", AccountKind::Liability, false).await;
    let before_restart: Vec<CreateTransfer> = (0..20).map(|_| transfer(bank, player, "1")).collect();
    for t in &before_restart {
        submit(&ledger, Command::CreateTransfer(t.clone())).await.unwrap();
    }
    stop(ledger, task).await;

    // A new writer with a tiny working set, so that it evicts its own transfers too.
    let config = WriterConfig { transfer_cache: 5, ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let metrics = || ledger.metrics();
    let mut waited = 0;
    while WriterMetrics::get(&metrics().transfer_filter_ready) == 0 {
        // The filter is installed when the decider next handles a command.
        assert!(waited < 250, "the transfer id filter is built within 5 s");
        balance(&ledger, player).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    let looked_up = WriterMetrics::get(&metrics().transfers_looked_up);
    let after_restart: Vec<CreateTransfer> = (0..20).map(|_| transfer(bank, player, "1")).collect();
    for t in &after_restart {
        let committed = submit(&ledger, Command::CreateTransfer(t.clone())).await.unwrap();
        assert!(!committed.replayed);
    }
    assert_eq!(WriterMetrics::get(&metrics().transfers_looked_up), looked_up, "new ids are not looked up");
    // Retries of transfers stored before the restart, and of transfers this writer evicted, are
    // found in the database and answered as the original, once.
    for t in before_restart.iter().chain(&after_restart) {
        let committed = submit(&ledger, Command::CreateTransfer(t.clone())).await.unwrap();
        assert!(committed.replayed, "{:?} is a retry", t.id);
    }
    assert!(
        WriterMetrics::get(&metrics().transfers_looked_up) >= looked_up + 35,
        "evicted and older ids were looked up"
    );
    assert_eq!(balance(&ledger, player).await, dec("40"));
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.expect("the log verifies");
    db.drop_database().await;
}

#[tokio::test]
async fn api_keys_are_hashed_scoped_and_revocable() {
    use ledger_store::keys::{KeyError, KeyStore, Scope, bearer, create_key, revoke_key};
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (id, key) = create_key(&pool, "pos", &["read".to_owned()]).await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(&pool).await.unwrap();
    assert_ne!(stored, key.as_bytes(), "only a hash is stored");
    let keys = KeyStore::with_ttl(pool.clone(), Duration::ZERO);
    let header = format!("Bearer {key}");
    let who = keys.require(bearer(Some(&header)), Scope::Read).await.unwrap();
    assert_eq!((who.key_id, who.channel.as_str()), (id, "pos"));
    assert!(matches!(keys.require(bearer(Some(&header)), Scope::TransfersWrite).await, Err(KeyError::Forbidden(_))));
    assert!(matches!(keys.require(bearer(Some("Bearer nope")), Scope::Read).await, Err(KeyError::Unauthorized)));
    assert!(matches!(keys.require(bearer(None), Scope::Read).await, Err(KeyError::Unauthorized)));
    assert!(create_key(&pool, "pos", &["admin".to_owned()]).await.is_err(), "unknown scopes are refused");
    assert!(revoke_key(&pool, id).await.unwrap());
    assert!(!revoke_key(&pool, id).await.unwrap(), "revoking twice is a no-op");
    assert!(matches!(keys.require(bearer(Some(&header)), Scope::Read).await, Err(KeyError::Unauthorized)));
    pool.close().await;
    db.drop_database().await;
}

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
