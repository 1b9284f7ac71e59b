//! Read-model layouts: a changed definition is rebuilt on start while the old tables serve,
//! and read models kept in a second cluster equal those beside the log.

mod common;

use std::time::Duration;

use projections::Model;
use test_support::fresh_database;
use uuid::Uuid;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_layout_definition_is_rebuilt_on_start_while_the_old_tables_serve() {
    let db = fresh_database().await;
    generate(&db, 4242, 300).await;
    let mut conn = db.connect().await;
    catch_up(&mut conn).await;
    let account = Uuid::from_u128(0xacc3);
    let expected = journal_of(&mut conn, account).await;
    assert!(expected.len() > 5, "the account has a journal: {}", expected.len());
    assert!(expected.iter().all(|(_, legs)| legs.len() == 2 && legs.iter().any(|l| l.1 == account)));
    let transfers = checksum(&mut conn, "rm_transfers", "id").await;

    // The journal as definition 1 left it: legs a table of their own, keyed by transfer id,
    // without their position; transfers without the legs' arrays.
    sqlx::raw_sql(
        "CREATE TABLE rm_legs_v1 AS SELECT transfer_id, n, account_id, side, amount FROM rm_legs; \
         DROP VIEW rm_legs; DROP VIEW rm_transfers; \
         ALTER TABLE rm_transfers_v1 DROP COLUMN leg_accounts, DROP COLUMN leg_sides, DROP COLUMN leg_amounts; \
         CREATE VIEW rm_transfers AS SELECT * FROM rm_transfers_v1; \
         ALTER TABLE rm_legs_v1 ADD PRIMARY KEY (transfer_id, n); \
         CREATE INDEX rm_legs_v1_account ON rm_legs_v1 (account_id, transfer_id); \
         CREATE VIEW rm_legs AS SELECT * FROM rm_legs_v1; \
         UPDATE projections SET definition = 1 WHERE name = 'journal'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // Until the upgrade's switch, readers read the old tables the old way.
    assert_eq!(journal_of(&mut conn, account).await, expected);

    // A runner of this release rebuilds the journal into version 2 (definition 4) before it
    // follows the log.
    catch_up(&mut conn).await;
    let (version, definition): (i32, i32) =
        sqlx::query_as("SELECT version, definition FROM projections WHERE name = 'journal'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((version, definition), (2, 4));
    let old: bool = sqlx::query_scalar("SELECT to_regclass('rm_legs_v1') IS NULL").fetch_one(&mut conn).await.unwrap();
    assert!(old, "the old tables are dropped at the switch");
    let keyed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rm_legs l JOIN rm_transfers t ON t.created_position = l.position")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let legs: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_legs").fetch_one(&mut conn).await.unwrap();
    assert_eq!(keyed, legs, "every leg is keyed by its transfer's creation");
    assert_eq!(journal_of(&mut conn, account).await, expected);
    assert_eq!(checksum(&mut conn, "rm_transfers", "id").await, transfers);
    // Started again, nothing is rebuilt.
    catch_up(&mut conn).await;
    let version: i32 = sqlx::query_scalar("SELECT version FROM projections WHERE name = 'journal'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, 2);

    // Tables a newer release built are refused, and left as they are.
    sqlx::query("UPDATE projections SET definition = 5 WHERE name = 'journal'").execute(&mut conn).await.unwrap();
    let mut runner = projections::runner::ReadModels::new(&[Model::Journal]);
    let refused = ledger_store::follow::Follow::prepare(&mut runner, &mut conn).await.unwrap_err();
    assert!(matches!(refused, projections::ApplyError::Newer { name: "journal", stored: 5, known: 4 }), "{refused}");
    assert_eq!(journal_of(&mut conn, account).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_events_of_the_retired_read_model_are_taken_over_by_the_balances_history_and_answer_the_same() {
    let db = fresh_database().await;
    generate(&db, 4343, 300).await;
    let mut conn = db.connect().await;
    let mut log = db.connect().await;
    catch_up(&mut conn).await;
    let account = Uuid::from_u128(0xacc1);
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT stream_id FROM rm_account_events WHERE stream_id IS NOT NULL ORDER BY stream_id LIMIT 20",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(streams.len(), 20);
    async fn answers(conn: &mut sqlx::PgConnection, log: &mut sqlx::PgConnection, streams: &[String]) -> Vec<Vec<i64>> {
        let mut found = Vec::new();
        for stream in streams {
            for account in [None, Some(Uuid::from_u128(0xacc1))] {
                let events = projections::read::events(conn, log, 0, 1000, Some(stream), None, account).await.unwrap();
                found.push(events.iter().map(|e| e.position).collect());
            }
        }
        let by_account = projections::read::events(conn, log, 0, 1000, None, None, Some(Uuid::from_u128(0xacc1)));
        found.push(by_account.await.unwrap().iter().map(|e| e.position).collect());
        found
    }
    let expected = answers(&mut conn, &mut log, &streams).await;
    assert!(expected.iter().step_by(2).all(|positions: &Vec<i64>| !positions.is_empty()));
    let in_the_log: Vec<i64> = sqlx::query_scalar("SELECT position FROM events WHERE stream_id = $1 ORDER BY position")
        .bind(&streams[0])
        .fetch_all(&mut log)
        .await
        .unwrap();
    assert_eq!(expected[0], in_the_log);
    let by_account: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_account_events WHERE account_id = $1")
        .bind(account)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(by_account > 5, "the account has events: {by_account}");
    let events = checksum(&mut conn, "rm_account_events", "account_id, position").await;
    let history = checksum(&mut conn, "rm_balance_history", "account_id, position").await;
    let balance = projections::read::balance_at(&mut conn, account, None, None).await.unwrap().unwrap();
    async fn kind(conn: &mut sqlx::PgConnection) -> String {
        sqlx::query_scalar(
            "SELECT am.amname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am am ON am.oid = c.relam WHERE c.relname LIKE 'rm\\_account\\_history\\_v%\\_stream'",
        )
        .fetch_one(conn)
        .await
        .unwrap()
    }
    assert_eq!(kind(&mut conn).await, "hash");

    // As an earlier release left them: the balance history in a table of the balances'
    // definition 1, the account events in a read model of their own (its definition 3).
    sqlx::raw_sql(
        "CREATE TABLE rm_account_events_v3 AS SELECT * FROM rm_account_events; \
         ALTER TABLE rm_account_events_v3 ADD PRIMARY KEY (account_id, position); \
         CREATE INDEX rm_account_events_v3_stream ON rm_account_events_v3 USING hash (stream_id) \
         WHERE stream_id IS NOT NULL; \
         CREATE TABLE rm_balance_history_v1 AS SELECT * FROM rm_balance_history; \
         ALTER TABLE rm_balance_history_v1 ADD PRIMARY KEY (account_id, position); \
         DROP VIEW rm_account_events; DROP VIEW rm_balance_history; DROP VIEW rm_account_history; \
         DROP TABLE rm_account_history_v1; \
         CREATE VIEW rm_account_events AS SELECT * FROM rm_account_events_v3; \
         CREATE VIEW rm_balance_history AS SELECT * FROM rm_balance_history_v1; \
         INSERT INTO projections (name, version, definition, checkpoint) \
         SELECT 'account_events', 3, 3, checkpoint FROM projections WHERE name = 'balances'; \
         UPDATE projections SET definition = 1 WHERE name = 'balances'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(answers(&mut conn, &mut log, &streams).await, expected);

    // A runner of this release rebuilds the balances into version 2 (definition 2): the history
    // now keeps the account events, the retired read model's tables and row are gone, and
    // readers get the same answers.
    catch_up(&mut conn).await;
    let (version, definition): (i32, i32) =
        sqlx::query_as("SELECT version, definition FROM projections WHERE name = 'balances'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((version, definition), (2, 2));
    let retired: i64 = sqlx::query_scalar("SELECT count(*) FROM projections WHERE name = 'account_events'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(retired, 0, "the retired read model's checkpoint is gone");
    let left: bool = sqlx::query_scalar(
        "SELECT to_regclass('rm_account_events_v3') IS NULL AND to_regclass('rm_balance_history_v1') IS NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(left, "the tables of the earlier layouts are dropped at the switch");
    assert_eq!(kind(&mut conn).await, "hash");
    assert_eq!(checksum(&mut conn, "rm_account_events", "account_id, position").await, events);
    assert_eq!(checksum(&mut conn, "rm_balance_history", "account_id, position").await, history);
    assert_eq!(answers(&mut conn, &mut log, &streams).await, expected);
    let after = projections::read::balance_at(&mut conn, account, None, None).await.unwrap().unwrap();
    assert_eq!((after.position, after.balance), (balance.position, balance.balance));
    drop((conn, log));
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_in_a_second_cluster_equal_those_beside_the_log() {
    let db = fresh_database().await;
    let read_db = test_support::fresh_read_database().await;
    generate(&db, 5150, 400).await;
    let mut conn = db.connect().await;
    let mut read = read_db.connect().await;

    // The runner reads the log from the first cluster and applies it in the second.
    let (stop_tx, stopped) = tokio::sync::watch::channel(false);
    let (url, read_url) = (db.url.clone(), read_db.url.clone());
    let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) };
    let runner = tokio::spawn(async move {
        projections::run_reporting(&url, Some(&read_url), &Model::ALL, follow, stopped, None).await
    });
    caught_up_in(&mut conn, &mut read, &Model::ALL).await;
    let none_beside_the_log: bool =
        sqlx::query_scalar("SELECT to_regclass('rm_balances') IS NULL").fetch_one(&mut conn).await.unwrap();
    assert!(none_beside_the_log);
    // More of the log while it follows.
    generate(&db, 5151, 200).await;
    caught_up_in(&mut conn, &mut read, &Model::ALL).await;
    stop_tx.send(true).unwrap();
    runner.await.unwrap();

    // Events by account and by stream: positions from the read models (nothing of them beside
    // the log yet), events from the log.
    let account = Uuid::from_u128(0xacc2);
    let stream: String = sqlx::query_scalar(
        "SELECT stream_id FROM rm_account_events WHERE account_id = $1 AND stream_id IS NOT NULL \
         ORDER BY position DESC LIMIT 1",
    )
    .bind(account)
    .fetch_one(&mut read)
    .await
    .unwrap();
    let mut log = db.connect().await;
    let queries = [
        (None, Some(account), None),
        (Some(stream.as_str()), None, None),
        (Some(stream.as_str()), Some(account), None),
        (None, Some(account), Some("TransferPosted")),
    ];
    let positions = |events: Vec<ledger_store::RecordedEvent>| events.iter().map(|e| e.position).collect::<Vec<_>>();
    let mut apart = Vec::new();
    for (stream, account, event_type) in queries {
        let found = projections::read::events(&mut read, &mut log, 0, 1000, stream, event_type, account).await.unwrap();
        assert!(!found.is_empty());
        apart.push(positions(found));
    }
    // A stream's events are the log's events of that stream, whichever account's row keeps it.
    let in_the_log: Vec<i64> = sqlx::query_scalar("SELECT position FROM events WHERE stream_id = $1 ORDER BY position")
        .bind(&stream)
        .fetch_all(&mut log)
        .await
        .unwrap();
    assert_eq!(apart[1], in_the_log);
    assert_eq!(apart[2], in_the_log);

    // The same read models built beside the log (equal to the replay: the test above) are
    // identical, row for row and index for index.
    catch_up(&mut conn).await;
    for (view, order) in VIEWS {
        assert_eq!(checksum(&mut read, view, order).await, checksum(&mut conn, view, order).await, "{view}");
    }
    assert_eq!(indexes(&mut read, 1).await, indexes(&mut conn, 1).await);

    for ((stream, account, event_type), apart) in queries.into_iter().zip(apart) {
        let beside =
            projections::read::events(&mut conn, &mut log, 0, 1000, stream, event_type, account).await.unwrap();
        assert_eq!(apart, positions(beside));
    }

    // A rebuild in the second cluster, from the log in the first.
    let before = checksum(&mut read, "rm_transfers", "id").await;
    projections::rebuild_in(&db.url, Some(&read_db.url), Model::Journal, &mut std::io::sink()).await.unwrap();
    assert_eq!(checksum(&mut read, "rm_transfers", "id").await, before);
    let version: i32 = sqlx::query_scalar("SELECT version FROM projections WHERE name = 'journal'")
        .fetch_one(&mut read)
        .await
        .unwrap();
    assert_eq!(version, 2);
    drop((conn, read, log));
    read_db.drop_database().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_whose_rows_are_rewritten_keep_room_to_update_them_in_place_also_when_an_earlier_release_built_them() {
    // Rows rewritten by every page that touches them (balances, turnover, certificates, their
    // operations, payout requests, payouts, orders) keep half of each page free, so a rewrite
    // stays on its page without new index entries (a HOT update).
    const REWRITTEN: [&str; 7] = [
        "rm_balances_v1",
        "rm_turnover_v1",
        "rm_certificates_v1",
        "rm_certificate_operations_v1",
        "rm_payout_requests_v1",
        "rm_payouts_v1",
        "rm_orders_v1",
    ];
    async fn fillfactors(conn: &mut sqlx::PgConnection) -> Vec<(String, Option<Vec<String>>)> {
        sqlx::query_as("SELECT relname::text, reloptions FROM pg_class WHERE relname = ANY($1) ORDER BY relname")
            .bind(REWRITTEN)
            .fetch_all(conn)
            .await
            .unwrap()
    }
    let half = |found: &[(String, Option<Vec<String>>)]| {
        assert_eq!(found.len(), REWRITTEN.len(), "{found:?}");
        for (table, options) in found {
            assert_eq!(options.as_deref(), Some(&["fillfactor=50".to_owned()][..]), "{table}");
        }
    };
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let mut runner = projections::runner::ReadModels::new(&Model::EVERY);
    assert!(ledger_store::follow::Follow::prepare(&mut runner, &mut conn).await.unwrap());
    drop(conn);
    let mut conn = db.connect().await;
    half(&fillfactors(&mut conn).await);

    // The tables as an earlier release built them: a runner of this release sets the room on
    // start, without rebuilding anything.
    for table in REWRITTEN {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {table} RESET (fillfactor)")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert!(fillfactors(&mut conn).await.iter().all(|(_, options)| options.is_none()));
    let mut runner = projections::runner::ReadModels::new(&Model::EVERY);
    assert!(ledger_store::follow::Follow::prepare(&mut runner, &mut conn).await.unwrap());
    half(&fillfactors(&mut conn).await);
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM projections WHERE name = ANY($1)")
        .bind(Model::EVERY.map(|m| m.name()))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, vec![1; Model::EVERY.len()]);
    drop(conn);
    db.drop_database().await;
}
