//! Rebuilds over logs longer than a rebuild's pages: the fill reads pages ahead on a connection
//! of its own and builds the deferred indexes side by side, and the result equals the read
//! models built live.

mod common;

use ledger_core::ledger::Command;
use ledger_core::{AccountId, AccountRef, CreateTransfer, TransferId};
use ledger_store::{EventMeta, Writer, WriterConfig};
use projections::{Model, rebuild};
use rust_decimal::Decimal;
use test_support::fresh_database;
use uuid::Uuid;

use common::*;

/// A log several rebuild pages long: the fill reads its pages ahead on a connection of its own
/// (holds placed pages before their settlement found there too), applies them in order, and the
/// rebuilt tables and indexes equal those the live runner built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_over_many_pages_equals_the_read_models_built_live() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    generate_with(&ledger, 42, 200).await;
    let accounts: Vec<AccountId> = (0..8).map(|i| AccountId(Uuid::from_u128(0xacc0 + i))).collect();
    for id in &accounts {
        // The workload froze some: open them all (refused for those already open).
        ledger.submit(Command::UnfreezeAccount { id: *id, reason: None }, EventMeta::default()).await.unwrap().ok();
    }
    let mut holds = Vec::new();
    for batch in 0..32u128 {
        let items: Vec<CreateTransfer> = (0..1000u128)
            .map(|i| {
                let n = (batch * 1000 + i) as usize;
                let id = TransferId(Uuid::from_u128(0x7000_0000 + batch * 1000 + i));
                // Every 97th transfer a hold, settled after the last batch, 25,000 events on.
                let pending = n.is_multiple_of(97);
                if pending {
                    holds.push(id);
                }
                CreateTransfer {
                    pending,
                    ..CreateTransfer::simple(
                        id,
                        AccountRef::Id(accounts[4 + n % 4]),
                        AccountRef::Id(accounts[(n / 4) % 4]),
                        Decimal::new(1 + (n % 500) as i64, 2),
                    )
                }
            })
            .collect();
        let meta = EventMeta { channel: Some("batch".into()), ..EventMeta::default() };
        let decided = ledger.submit_batch(items, ledger_core::BatchMode::Independent, meta).await.unwrap().unwrap();
        assert!(decided.iter().all(|d| d.is_ok()), "{:?}", decided.iter().find(|d| d.is_err()));
    }
    for (n, id) in holds.iter().enumerate() {
        let command = if n.is_multiple_of(2) {
            Command::PostPendingTransfer { pending_id: *id, amount: None }
        } else {
            Command::VoidPendingTransfer { pending_id: *id }
        };
        ledger.submit(command, EventMeta::default()).await.unwrap().unwrap();
    }
    drop(ledger);
    task.await.unwrap();

    let mut conn = db.connect().await;
    catch_up(&mut conn).await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    assert!(head > 30_000, "{head} events: several rebuild pages");
    let mut before = Vec::new();
    for (view, order) in VIEWS {
        before.push(checksum(&mut conn, view, order).await);
    }
    let indexes_before = indexes(&mut conn, 1).await;
    for model in Model::ALL {
        assert_eq!(rebuild(&db.url, model, &mut std::io::sink()).await.unwrap(), head);
    }
    for ((view, order), before) in VIEWS.into_iter().zip(before) {
        assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
    }
    assert_eq!(indexes(&mut conn, 2).await, indexes_before);
    drop(conn);
    db.drop_database().await;
}

/// A rebuild drops the old version's tables after switching readers to the new one; what a
/// crash in between leaves is dropped at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_version_goes_after_the_switch_and_a_leftover_at_the_next_start() {
    let db = fresh_database().await;
    generate(&db, 3, 100).await;
    let mut conn = db.connect().await;
    catch_up(&mut conn).await;
    let turnover = checksum(&mut conn, "rm_turnover", "account_id, day").await;
    rebuild(&db.url, Model::Turnover, &mut std::io::sink()).await.unwrap();
    assert_eq!(tables(&mut conn).await, ["rm_turnover_v2"]);
    // As if the process had died between the switch and dropping version 1.
    sqlx::query("CREATE TABLE rm_turnover_v1 (LIKE rm_turnover_v2)").execute(&mut conn).await.unwrap();
    let (stop_tx, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let follow = projections::Follow { poll: std::time::Duration::from_millis(10), linger: std::time::Duration::ZERO };
    let runner = tokio::spawn(async move { projections::run(&url, Model::Turnover, follow, stopped).await });
    for _ in 0..500 {
        if tables(&mut conn).await == ["rm_turnover_v2"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    runner.await.unwrap();
    assert_eq!(tables(&mut conn).await, ["rm_turnover_v2"], "the leftover is dropped on start");
    assert_eq!(checksum(&mut conn, "rm_turnover", "account_id, day").await, turnover);
    drop(conn);
    db.drop_database().await;
}

/// The turnover's tables, by name.
async fn tables(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relname LIKE 'rm\\_turnover%' ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}
