//! The event store against a real Postgres: each test on its own fresh database.

mod common;

use std::time::Duration;

use ledger_core::ledger::{Command, Rejection};
use ledger_core::{AccountKind, AccountRef, BatchMode, CreateTransfer, PostingRequest, Side, TransferStatus};
use ledger_store::verify::{VerifyError, verify};
use ledger_store::writer::StartError;
use ledger_store::{Entity, EventMeta, Standby, WriteError, Writer, WriterConfig};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::Executor;
use test_support::fresh_database;

use common::{balance, dec, open, scalar, start, stop, submit, transfer};

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
async fn api_keys_are_hashed_permitted_and_revocable() {
    use ledger_core::ledger::scope::{ACCOUNTS_READ, TRANSFERS_WRITE};
    use ledger_core::payouts::scope::REQUEST;
    use ledger_store::keys::{CreateKeyError, KeyError, KeyStore, bearer, create_key, revoke_key};
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (id, key) =
        create_key(&pool, "pos", &["read".to_owned(), "payouts:request:client-5".to_owned()]).await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(&pool).await.unwrap();
    assert_ne!(stored, key.as_bytes(), "only a hash is stored");
    let keys = KeyStore::new(pool.clone());
    let header = format!("Bearer {key}");
    let who = keys.require(bearer(Some(&header)), &ACCOUNTS_READ).await.unwrap();
    assert_eq!((who.key_id, who.channel.as_str()), (id, "pos"));
    assert!(who.require(&REQUEST.of("client-5")).is_ok());
    assert!(who.require_some_scope(&REQUEST).is_ok());
    match keys.require(bearer(Some(&header)), &REQUEST.of("client-6")).await {
        Err(KeyError::Forbidden(p)) => assert_eq!(p, "payouts:request:client-6", "the refusal names the permission"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    assert!(matches!(keys.require(bearer(Some(&header)), &TRANSFERS_WRITE).await, Err(KeyError::Forbidden(_))));
    assert!(matches!(keys.require(bearer(Some("Bearer nope")), &ACCOUNTS_READ).await, Err(KeyError::Unauthorized)));
    assert!(matches!(keys.require(bearer(None), &ACCOUNTS_READ).await, Err(KeyError::Unauthorized)));
    for unknown in ["admin", "accounts:redeem", "nowhere:*"] {
        assert!(
            matches!(create_key(&pool, "pos", &[unknown.to_owned()]).await, Err(CreateKeyError::Permission(_))),
            "{unknown} is refused"
        );
    }
    assert!(create_key(&pool, "admin", &["*".to_owned()]).await.is_ok(), "every pattern, * included");
    assert!(revoke_key(&pool, id).await.unwrap());
    assert!(!revoke_key(&pool, id).await.unwrap(), "revoking twice is a no-op");
    within_a_second(|| async { matches!(keys.authenticate(bearer(Some(&header))).await, Err(KeyError::Unauthorized)) })
        .await;
    pool.close().await;
    db.drop_database().await;
}

/// Waits up to a second for `f` to hold.
async fn within_a_second<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "not within a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s) for a key store's listening connection.
async fn listening(keys: &ledger_store::keys::KeyStore) {
    for _ in 0..250 {
        if keys.listening() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the key store does not listen");
}

#[tokio::test]
async fn a_role_change_applies_to_its_keys_in_another_key_store_within_a_second() {
    use ledger_core::ledger::scope::{ACCOUNTS_READ, TRANSFERS_WRITE};
    use ledger_store::keys::{KeyStore, bearer, create_key_with_roles};
    use ledger_store::roles::{list_roles, set_role};
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // The API of another process: its own pool and key store.
    let other = sqlx::PgPool::connect(&db.url).await.unwrap();
    let keys = KeyStore::new(other.clone());
    listening(&keys).await;
    assert!(set_role(&pool, "clerk", &["accounts:read".to_owned()]).await.unwrap(), "a new role");
    assert!(set_role(&pool, "clerk", &["nothing:read".to_owned()]).await.is_err(), "unknown permissions are refused");
    assert!(set_role(&pool, "Clerk!", &[]).await.is_err(), "role names are checked");
    let (_, key) =
        create_key_with_roles(&pool, "desk", &["clerk".to_owned()], &["events:read".to_owned()]).await.unwrap();
    assert!(create_key_with_roles(&pool, "desk", &["nobody".to_owned()], &[]).await.is_err(), "unknown roles");
    let header = format!("Bearer {key}");
    let key = bearer(Some(&header));
    let who = keys.require(key, &ACCOUNTS_READ).await.unwrap();
    assert_eq!(who.roles, ["clerk"]);
    assert!(keys.require(key, &TRANSFERS_WRITE).await.is_err());
    // Changed behind the store's back (no notification): the cached key still grants the old.
    sqlx::query("UPDATE roles SET permissions = '{}'").execute(&pool).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(keys.require(key, &ACCOUNTS_READ).await.is_ok(), "the store answers from its cache");
    assert!(!set_role(&pool, "clerk", &["transfers:write".to_owned()]).await.unwrap(), "replaced");
    within_a_second(|| async { keys.require(key, &TRANSFERS_WRITE).await.is_ok() }).await;
    assert!(keys.require(key, &ACCOUNTS_READ).await.is_err(), "the role no longer grants what it granted");
    assert!(keys.require(key, &ledger_core::ledger::scope::EVENTS_READ).await.is_ok(), "the key's own stay");
    // Listed by name beside the seeded example roles.
    let roles = list_roles(&pool).await.unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["admin", "clerk", "merchant", "support", "teamlead", "trader"]);
    assert_eq!(roles[1].permissions, ["transfers:write"]);
    drop(keys);
    other.close().await;
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_example_roles_are_seeded_as_templates_that_only_a_bound_grant_fills() {
    use ledger_core::orders::scope::{ADMIN, CANCEL, COMPLETE, CREATE, DISPUTE, FAIL, READ, RESOLVE, REVIEW, TRAFFIC};
    use ledger_core::permission::PermissionError;
    use ledger_core::permission::platform::{CONFIG_READ, CONFIG_WRITE};
    use ledger_store::keys::{CreateKeyError, KeyStore, Principal, bearer, create_key, create_key_with_roles};
    use ledger_store::roles::{known_role_permissions, list_roles, set_role};
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let keys = KeyStore::new(pool.clone());
    listening(&keys).await;

    // Seeded by the migrations, as the P2P orders' roles read; each valid and in canonical form.
    let seeded: Vec<(String, Vec<String>)> =
        list_roles(&pool).await.unwrap().into_iter().map(|r| (r.name, r.permissions)).collect();
    let expected = [
        ("admin", &["orders:*", "config:read"][..]),
        (
            "merchant",
            &["orders:create:{scope}", "orders:cancel:{scope}", "orders:dispute:{scope}", "orders:read:{scope}"],
        ),
        ("support", &["orders:read", "orders:review"]),
        ("teamlead", &["orders:traffic:{scope}"]),
        ("trader", &["orders:complete:{scope}", "orders:fail:{scope}", "orders:read:{scope}"]),
    ]
    .map(|(name, permissions)| (name.to_owned(), permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
    assert_eq!(seeded, expected);
    for (name, permissions) in &seeded {
        assert_eq!(&known_role_permissions(permissions).unwrap(), permissions, "{name}");
    }

    let principal = |grants: &[&str]| {
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        let (pool, keys) = (&pool, &keys);
        async move {
            let (_, key) = create_key_with_roles(pool, "desk", &grants, &[]).await.unwrap();
            keys.authenticate(bearer(Some(&format!("Bearer {key}")))).await.unwrap()
        }
    };
    let grants = |who: &Principal, needs: &[ledger_core::permission::Need<'_>]| -> Vec<bool> {
        needs.iter().map(|n| who.require(n).is_ok()).collect()
    };

    // Bound: the templates for that owner and no other, nor for every owner.
    let merchant = principal(&["merchant:store-17"]).await;
    assert_eq!(merchant.roles, ["merchant:store-17"]);
    let store_17 = [CREATE.of("store-17"), CANCEL.of("store-17"), DISPUTE.of("store-17"), READ.of("store-17")];
    assert_eq!(grants(&merchant, &store_17), [true; 4]);
    let elsewhere = [CREATE.of("store-18"), CREATE, READ, COMPLETE.of("store-17"), REVIEW, ADMIN];
    assert_eq!(grants(&merchant, &elsewhere), [false; 6]);
    // Plain: none of the templates, so the merchant role alone grants nothing at all.
    let plain = principal(&["merchant"]).await;
    assert_eq!(grants(&plain, &store_17), [false; 4]);
    assert!(plain.require_some_scope(&CREATE).is_err() && plain.permissions.iter().next().is_none());
    // Two owners, and the other example roles.
    let two = principal(&["merchant:store-17", "merchant:store-18", "support"]).await;
    assert_eq!(
        grants(&two, &[CREATE.of("store-17"), CREATE.of("store-18"), CREATE.of("store-19")]),
        [true, true, false]
    );
    assert_eq!(grants(&two, &[READ, READ.of("store-19"), REVIEW, RESOLVE]), [true, true, true, false]);
    let trader = principal(&["trader:t1"]).await;
    assert_eq!(
        grants(&trader, &[COMPLETE.of("t1"), FAIL.of("t1"), READ.of("t1"), COMPLETE.of("t2"), CREATE.of("t1")]),
        [true, true, true, false, false]
    );
    let lead = principal(&["teamlead:lead-1"]).await;
    assert_eq!(grants(&lead, &[TRAFFIC.of("lead-1"), TRAFFIC.of("lead-2"), TRAFFIC]), [true, false, false]);
    let admin = principal(&["admin"]).await;
    assert_eq!(
        grants(&admin, &[ADMIN, RESOLVE, COMPLETE.of("t9"), TRAFFIC.of("lead-2"), CONFIG_READ, CONFIG_WRITE]),
        [true, true, true, true, true, false]
    );

    // An edit of the role applies to its bound keys at once (this one is cached before).
    let (_, key) = create_key_with_roles(&pool, "desk", &["merchant:store-17".to_owned()], &[]).await.unwrap();
    let header = format!("Bearer {key}");
    let key = bearer(Some(&header));
    assert!(keys.require(key, &CREATE.of("store-17")).await.is_ok());
    assert!(!set_role(&pool, "merchant", &["orders:read:{scope}".to_owned()]).await.unwrap());
    within_a_second(|| async { keys.require(key, &CREATE.of("store-17")).await.is_err() }).await;
    assert!(keys.require(key, &READ.of("store-17")).await.is_ok());
    assert!(keys.require(key, &READ.of("store-18")).await.is_err());
    assert_eq!(list_roles(&pool).await.unwrap()[1].permissions, ["orders:read:{scope}"], "stored as written");

    // Refused, and nothing written: a grant whose scope is no owner, an unknown role bound, a
    // key's own permission with the placeholder, a role's placeholder that is not its whole scope.
    let count = || scalar(&db, "SELECT count(*) FROM api_keys");
    let before = count().await;
    for bad in ["merchant:*", "merchant:", "merchant:a b", "merchant:{scope}", "merchant:x:y"] {
        let refused = create_key_with_roles(&pool, "desk", &["support".to_owned(), bad.to_owned()], &[]).await;
        assert!(matches!(&refused, Err(CreateKeyError::InvalidRoleScope(e)) if e.0 == bad), "{bad}: {refused:?}");
    }
    let refused = create_key_with_roles(&pool, "desk", &["nobody:store-17".to_owned()], &[]).await;
    assert!(matches!(&refused, Err(CreateKeyError::UnknownRole(r)) if r == "nobody"), "{refused:?}");
    let refused = create_key(&pool, "desk", &["orders:create:{scope}".to_owned()]).await;
    assert!(matches!(refused, Err(CreateKeyError::Permission(PermissionError::Placeholder(_)))), "{refused:?}");
    assert_eq!(count().await, before, "no key written");
    for bad in ["orders:create:x{scope}", "orders:{scope}", "nothing:read:{scope}"] {
        assert!(set_role(&pool, "merchant", &[bad.to_owned()]).await.is_err(), "{bad}");
    }
    // A grant malformed in the table by hand grants nothing of its role.
    let (id, key) = create_key_with_roles(&pool, "desk", &["support".to_owned()], &[]).await.unwrap();
    sqlx::query("UPDATE api_keys SET roles = '{support:a b}' WHERE id = $1").bind(id).execute(&pool).await.unwrap();
    let who = keys.authenticate(bearer(Some(&format!("Bearer {key}")))).await.unwrap();
    assert!(who.require(&READ).is_err() && who.roles == ["support:a b"], "{who:?}");
    drop(keys);
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_key_is_revoked_within_a_second_even_when_the_listening_connection_was_lost() {
    use ledger_core::ledger::scope::ACCOUNTS_READ;
    use ledger_store::keys::{KeyStore, bearer, create_key, revoke_key};
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let other = sqlx::PgPool::connect(&db.url).await.unwrap();
    let keys = KeyStore::new(other.clone());
    listening(&keys).await;
    let (first, first_key) = create_key(&pool, "pos", &["read".to_owned()]).await.unwrap();
    let (second, second_key) = create_key(&pool, "pos", &["read".to_owned()]).await.unwrap();
    let (first_header, second_header) = (format!("Bearer {first_key}"), format!("Bearer {second_key}"));
    assert!(keys.require(bearer(Some(&first_header)), &ACCOUNTS_READ).await.is_ok());
    assert!(keys.require(bearer(Some(&second_header)), &ACCOUNTS_READ).await.is_ok());
    assert!(revoke_key(&pool, first).await.unwrap());
    within_a_second(|| async { keys.require(bearer(Some(&first_header)), &ACCOUNTS_READ).await.is_err() }).await;
    // The listening connection is cut, and the key revoked at once (the notification is lost).
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(cut, [true], "one listening connection");
    assert!(revoke_key(&pool, second).await.unwrap());
    within_a_second(|| async { keys.require(bearer(Some(&second_header)), &ACCOUNTS_READ).await.is_err() }).await;
    listening(&keys).await;
    drop(keys);
    other.close().await;
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn an_account_and_a_transfer_may_share_an_id() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let bank = open(&ledger, "bank", AccountKind::Asset, false).await;
    let wallet = open(&ledger, "wallet", AccountKind::Liability, false).await;
    // The transfer takes the id of the account it credits, and a hold takes the bank's.
    let mut same = transfer(bank, wallet, "10.00");
    same.id = ledger_core::TransferId(wallet.0);
    submit(&ledger, Command::CreateTransfer(same.clone())).await.unwrap();
    let mut hold = transfer(bank, wallet, "5.00");
    hold.id = ledger_core::TransferId(bank.0);
    (hold.pending, hold.timeout_seconds) = (true, Some(600));
    submit(&ledger, Command::CreateTransfer(hold)).await.unwrap();
    submit(&ledger, Command::PostPendingTransfer { pending_id: ledger_core::TransferId(bank.0), amount: None })
        .await
        .unwrap();
    // The accounts move again after the transfers: their positions must not become the transfers'.
    submit(&ledger, Command::FreezeAccount { id: wallet, reason: None }).await.unwrap();
    submit(&ledger, Command::FreezeAccount { id: bank, reason: None }).await.unwrap();
    assert_eq!(balance(&ledger, wallet).await, dec("15.00"));
    // A retry answers with the transfer's own position.
    let again = submit(&ledger, Command::CreateTransfer(same)).await.unwrap();
    assert!(again.replayed);
    let created: i64 = scalar(&db, "SELECT position FROM events WHERE event_type = 'TransferPosted'").await;
    assert_eq!(again.position, created);
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    let rows = ledger_store::sql::load_transfers(&mut conn, &[wallet.0, bank.0]).await.unwrap();
    assert_eq!(rows.len(), 2, "both transfers rebuild from their own events");
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    // Restarted from the stored rows, the writer finds both apart.
    let (ledger, task) = start(&db).await;
    assert_eq!(balance(&ledger, wallet).await, dec("15.00"));
    stop(ledger, task).await;
    drop(conn);
    db.drop_database().await;
}
