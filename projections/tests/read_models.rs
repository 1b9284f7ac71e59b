//! Read models against a real Postgres: for generated command sequences every read model equals
//! what replaying the log through the core computes; a rebuild produces identical tables; a
//! poison event halts a projection at its position.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use ledger_core::ledger::{Command, Event};
use ledger_core::{AccountId, AccountRef, CreateTransfer, Currencies, LedgerState, TransferId};
use ledger_store::{EventMeta, Writer, WriterConfig};
use projections::{Model, rebuild, status, step};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::fresh_database;
use uuid::Uuid;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_model_equals_the_replayed_log_and_rebuilds_identically() {
    for seed in [7, 1234, 99991] {
        let db = fresh_database().await;
        generate(&db, seed, 400).await;
        let mut conn = db.connect().await;
        catch_up(&mut conn).await;
        let (state, events) = replay(&mut conn).await;

        type BalanceRow = (Uuid, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, String);
        let rows: Vec<BalanceRow> = sqlx::query_as(
            "SELECT account_id, debits_posted, credits_posted, debits_pending, credits_pending, balance, available, status \
             FROM rm_balances",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows.len(), state.accounts().count());
        for (id, dp, cp, dh, ch, balance, available, status) in rows {
            let a = state.account(AccountId(id)).unwrap();
            let b = a.balances;
            assert_eq!(
                (dp, cp, dh, ch),
                (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending),
                "seed {seed}"
            );
            assert_eq!((balance, available), (a.balance(), a.available()));
            assert_eq!(status, ledger_store::sql::text(&a.status));
        }
        // The last history row of every account is its current balance.
        let last: Vec<(Uuid, Decimal)> = sqlx::query_as(
            "SELECT DISTINCT ON (account_id) account_id, balance FROM rm_balance_history ORDER BY account_id, position DESC",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (id, balance) in last {
            assert_eq!(balance, state.account(AccountId(id)).unwrap().balance());
        }

        let transfers: Vec<(Uuid, String, Option<Uuid>)> =
            sqlx::query_as("SELECT id, status, reversed_by FROM rm_transfers").fetch_all(&mut conn).await.unwrap();
        assert_eq!(transfers.len(), state.transfer_count());
        for (id, status, reversed_by) in transfers {
            let t = state.transfer(TransferId(id)).unwrap();
            assert_eq!((status.as_str(), reversed_by), (t.status.as_str(), t.reversed_by.map(|r| r.0)));
        }

        // Account event history: one row per event per account it touched.
        let mut expected: HashMap<Uuid, i64> = HashMap::new();
        let mut held: HashMap<TransferId, Vec<AccountId>> = HashMap::new();
        for (_, _, event) in &events {
            let accounts: Vec<AccountId> = match event {
                Event::AccountOpened(e) => vec![e.id],
                Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => vec![e.id],
                Event::TransferPosted(e) | Event::PendingTransferCreated(e) => {
                    let ids: Vec<AccountId> = e.postings.iter().map(|p| p.account).collect();
                    held.insert(e.id, ids.clone());
                    ids
                }
                Event::PendingTransferPosted(e) => held[&e.id].clone(),
                Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => held[&e.id].clone(),
            };
            for a in accounts {
                *expected.entry(a.0).or_default() += 1;
            }
        }
        let counted: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT account_id, count(*) FROM rm_account_events GROUP BY account_id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(counted.into_iter().collect::<HashMap<_, _>>(), expected);

        // Turnover over all days adds up to the posted totals.
        let turnover: Vec<(Uuid, Decimal, Decimal)> =
            sqlx::query_as("SELECT account_id, sum(debits), sum(credits) FROM rm_turnover GROUP BY account_id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for (id, debits, credits) in turnover {
            let b = state.account(AccountId(id)).unwrap().balances;
            assert_eq!((debits, credits), (b.debits_posted, b.credits_posted));
        }

        let mut before = Vec::new();
        for (view, order) in VIEWS {
            before.push(checksum(&mut conn, view, order).await);
        }
        let indexes_before = indexes(&mut conn, 1).await;
        for model in Model::ALL {
            let applied = rebuild(&db.url, model, &mut std::io::sink()).await.unwrap();
            assert_eq!(applied, events.len() as i64);
        }
        for ((view, order), before) in VIEWS.into_iter().zip(before) {
            assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
        }
        // The indexes a rebuild defers to the end of its fill are all there, as they were.
        assert_eq!(indexes(&mut conn, 2).await, indexes_before);
        assert!(indexes_before.len() >= 12, "{indexes_before:?}");
        let versions: Vec<i32> = status(&mut conn).await.unwrap().iter().map(|s| s.version).collect();
        assert_eq!(versions, [2, 2, 2]);
        drop(conn);
        db.drop_database().await;
    }
}

/// Appends a `TransferPosted` row by hand, bypassing the writer (as a corrupted log would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_fed_from_the_writers_tail_equal_those_rebuilt_from_the_log() {
    let db = fresh_database().await;
    let tail = ledger_store::tail::Tail::new(100_000);
    let config = WriterConfig { tail: Some(tail.clone()), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    let (stop_tx, stopped) = tokio::sync::watch::channel(false);
    let (url, runner_tail) = (db.url.clone(), tail.clone());
    let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(2) };
    let runner = tokio::spawn(async move {
        projections::run_in_process(&url, None, &Model::ALL, follow, stopped, None, Some(&runner_tail)).await
    });
    // Holds settled pages after they were placed, reversals, freezes, refusals: from memory,
    // the page's settling events still find the held postings in the log.
    for seed in [11, 12, 13] {
        generate_with(&ledger, seed, 300).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut conn = db.connect().await;
    loop {
        let s = status(&mut conn).await.unwrap();
        if Model::ALL.iter().all(|m| s.iter().any(|p| p.name == m.name() && p.lag == 0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    runner.await.unwrap();
    drop(ledger);
    task.await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    assert!(tail.served() > head as u64 / 2, "most pages came from memory: {} of {head}", tail.served());

    let mut applied = Vec::new();
    for (view, order) in VIEWS {
        applied.push(checksum(&mut conn, view, order).await);
    }
    for model in Model::ALL {
        rebuild(&db.url, model, &mut std::io::sink()).await.unwrap();
    }
    for ((view, order), applied) in VIEWS.into_iter().zip(applied) {
        assert_eq!(checksum(&mut conn, view, order).await, applied, "{view}");
    }
    drop(conn);
    db.drop_database().await;
}

/// A runner of the balances keeps the rows it wrote for its next page, and must not trust them
/// once another process has applied pages in between: here the test, holding the projection's
/// lock, applies the second of three bursts while the runner waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_never_builds_on_rows_another_process_has_moved_on_from() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let (stop_tx, stopped) = tokio::sync::watch::channel(false);
    let follow = projections::Follow { poll: Duration::from_millis(5), linger: Duration::from_millis(1) };
    let url = db.url.clone();
    let runner = tokio::spawn(async move { projections::run(&url, Model::Balances, follow, stopped).await });
    let mut conn = db.connect().await;
    generate_with(&ledger, 11, 400).await;
    balances_caught_up(&mut conn).await;
    // The projection's lock, held by another session.
    let key = Model::Balances.lock_key();
    let mut other = db.connect().await;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut other).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    generate_with(&ledger, 12, 400).await;
    let after: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    let mut applied = 0;
    while let n @ 1.. = step(&mut other, Model::Balances).await.unwrap() {
        applied += n;
    }
    assert!(after > before + 10, "a second burst of events: {before}..{after}");
    assert_eq!(applied as i64, after - before, "the other process applied all of it, the runner none");
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut other).await.unwrap();
    generate_with(&ledger, 13, 400).await;
    balances_caught_up(&mut conn).await;
    stop_tx.send(true).unwrap();
    runner.await.unwrap();
    drop(ledger);
    task.await.unwrap();
    let (state, _) = replay(&mut conn).await;
    let rows: Vec<(Uuid, Decimal, Decimal, Decimal, Decimal, String)> = sqlx::query_as(
        "SELECT account_id, debits_posted, credits_posted, debits_pending, credits_pending, status FROM rm_balances",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), state.accounts().count());
    for (id, dp, cp, dh, ch, status) in rows {
        let a = state.account(AccountId(id)).unwrap();
        let b = a.balances;
        assert_eq!((dp, cp, dh, ch), (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending));
        assert_eq!(status, ledger_store::sql::text(&a.status));
    }
    let history = checksum(&mut conn, "rm_balance_history", "account_id, position").await;
    rebuild(&db.url, Model::Balances, &mut std::io::sink()).await.unwrap();
    assert_eq!(checksum(&mut conn, "rm_balance_history", "account_id, position").await, history);
    drop((conn, other));
    db.drop_database().await;
}

/// Waits for the balances to have applied the whole log; a halt fails the test.
async fn balances_caught_up(conn: &mut PgConnection) {
    for _ in 0..1000 {
        let s = status(&mut *conn).await.unwrap();
        // No row yet: the runner has not created its tables.
        if let Some(balances) = s.iter().find(|p| p.name == "balances") {
            assert_eq!(balances.halted_error, None, "stale rows put an account below its limit");
            if balances.lag == 0 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the runner catches up");
}

async fn insert_event(conn: &mut PgConnection, position: i64, stream: &str, payload: &str) {
    sqlx::query(
        "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, payload, \
         metadata, recorded_at, hash) VALUES ($1, gen_random_uuid(), $2, 1, 'TransferPosted', 1, $3::json, '{}', \
         now(), decode(repeat('00', 32), 'hex'))",
    )
    .bind(position)
    .bind(stream)
    .bind(payload)
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_halts_the_projection_at_its_position() {
    let db = fresh_database().await;
    generate(&db, 5, 50).await;
    let mut conn = db.connect().await;
    catch_up(&mut conn).await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    insert_event(&mut conn, head + 1, "transfer-x", r#"{"not": "a transfer"}"#).await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    // The runner returns once it has recorded the halt.
    tokio::time::timeout(
        Duration::from_secs(20),
        projections::run(
            &db.url,
            Model::Balances,
            projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) },
            stopped,
        ),
    )
    .await
    .expect("a halted projection stops");
    let balances = status(&mut conn).await.unwrap().into_iter().find(|s| s.name == "balances").unwrap();
    assert_eq!((balances.checkpoint, balances.halted_position), (head, Some(head + 1)));
    assert!(balances.halted_error.unwrap().contains("TransferPosted"), "the error names what failed");
    assert_eq!(step(&mut conn, Model::Balances).await.unwrap(), 0, "it is never silently skipped");
    drop(conn);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_as_of_any_time_equals_the_replay_up_to_that_time() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    // Three bursts, each applied on its own: the balance clock gets a row per applied page.
    for seed in [3, 5, 8] {
        generate(&db, seed, 60).await;
        catch_up(&mut conn).await;
    }
    let clock: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_balance_clock").fetch_one(&mut conn).await.unwrap();
    assert!(clock >= 3, "one clock row per applied page: {clock}");
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = ledger_store::sql::events_page(&mut conn, after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        records.extend(page);
    }
    let mut times: Vec<i64> =
        records.iter().flat_map(|r| [r.recorded_at.micros(), r.recorded_at.micros() - 1]).collect();
    times.sort_unstable();
    times.dedup();
    let accounts: Vec<AccountId> = (0..8).map(|i| AccountId(Uuid::from_u128(0xacc0 + i))).collect();
    for t in times {
        let mut state = LedgerState::new(Currencies::standard());
        for record in records.iter().take_while(|r| r.recorded_at.micros() <= t) {
            state.apply(&Event::try_from(record.event().unwrap()).unwrap());
        }
        let at = ledger_store::sql::to_time(ledger_core::Timestamp(t));
        for id in &accounts {
            let got = projections::read::balance_at(&mut conn, id.0, Some(at), None).await.unwrap();
            let got = got.map(|s| (s.debits_posted, s.credits_posted, s.debits_pending, s.credits_pending));
            let b = state.account(*id).map(|a| a.balances).unwrap_or_default();
            // History starts with the first balance change: before it there is no row.
            let expected = (got.is_some() || !b.is_zero()).then_some((
                b.debits_posted,
                b.credits_posted,
                b.debits_pending,
                b.credits_pending,
            ));
            assert_eq!(got, expected, "account {id} at {t}");
        }
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_applies_every_model_and_a_model_poison_halts_only_that_model() {
    let db = fresh_database().await;
    generate(&db, 11, 80).await;
    let mut conn = db.connect().await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    // A well-formed transfer between accounts that were never opened: balances cannot apply it.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let payload = format!(
        r#"{{"id":"{}","postings":[{{"account":"{a}","side":"debit","amount":"1.00"}},{{"account":"{b}","side":"credit","amount":"1.00"}}],"timeout_at":null,"reverses":null,"external_ref":null,"metadata":{{}},"at":1}}"#,
        Uuid::new_v4()
    );
    insert_event(&mut conn, head + 1, "transfer-y", &payload).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) };
    let runner =
        tokio::spawn(async move { projections::run_reporting(&url, None, &Model::ALL, follow, stopped, None).await });
    let settled = async {
        loop {
            let s = status(&mut conn).await.unwrap();
            if s.len() == Model::ALL.len() && s.iter().all(|p| p.halted_position.is_some() || p.lag == 0) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let s = tokio::time::timeout(Duration::from_secs(20), settled).await.expect("the runner settles");
    for p in &s {
        if p.name == "balances" {
            assert_eq!((p.checkpoint, p.halted_position), (head, Some(head + 1)));
            assert!(p.halted_error.as_deref().unwrap().contains("not opened"), "{p:?}");
        } else {
            assert_eq!((p.checkpoint, p.halted_position), (head + 1, None), "{} goes on", p.name);
        }
    }
    stop.send(true).unwrap();
    runner.await.unwrap();
    drop(conn);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_settled_pages_after_it_was_placed_releases_what_it_held() {
    let db = fresh_database().await;
    generate(&db, 3, 20).await;
    let mut conn = db.connect().await;
    catch_up(&mut conn).await;
    // Holds applied in one page and settled in a later one: the later page finds the held
    // postings in the log through the transfer's first event.
    let (debit, credit) = (AccountId(Uuid::from_u128(0xacc0 + 4)), AccountId(Uuid::from_u128(0xacc0 + 5)));
    let holds = [TransferId(Uuid::new_v4()), TransferId(Uuid::new_v4())];
    let submit = |ledger: ledger_store::LedgerHandle, command: Command| async move {
        ledger.submit(command, EventMeta::default()).await.unwrap().unwrap();
    };
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    for id in holds {
        let hold = CreateTransfer {
            pending: true,
            ..CreateTransfer::simple(id, AccountRef::Id(debit), AccountRef::Id(credit), Decimal::new(500, 2))
        };
        submit(ledger.clone(), Command::CreateTransfer(hold)).await;
    }
    // A transfer reversed pages later, too.
    let original = TransferId(Uuid::new_v4());
    let posted = CreateTransfer::simple(original, AccountRef::Id(debit), AccountRef::Id(credit), Decimal::new(300, 2));
    submit(ledger.clone(), Command::CreateTransfer(posted)).await;
    drop(ledger);
    task.await.unwrap();
    catch_up(&mut conn).await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    submit(ledger.clone(), Command::PostPendingTransfer { pending_id: holds[0], amount: Some(Decimal::new(200, 2)) })
        .await;
    submit(ledger.clone(), Command::VoidPendingTransfer { pending_id: holds[1] }).await;
    let reversal = TransferId(Uuid::new_v4());
    submit(
        ledger.clone(),
        Command::ReverseTransfer { id: reversal, transfer_id: original, metadata: serde_json::Value::Null },
    )
    .await;
    drop(ledger);
    task.await.unwrap();
    catch_up(&mut conn).await;

    let (state, _) = replay(&mut conn).await;
    for id in [debit, credit] {
        let (dp, cp, dh, ch): (Decimal, Decimal, Decimal, Decimal) = sqlx::query_as(
            "SELECT debits_posted, credits_posted, debits_pending, credits_pending FROM rm_balances WHERE account_id = $1",
        )
        .bind(id.0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let b = state.account(id).unwrap().balances;
        assert_eq!((dp, cp, dh, ch), (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending));
    }
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM rm_transfers WHERE id = ANY($1) ORDER BY status")
            .bind(holds.map(|h| h.0).to_vec())
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(statuses, ["posted", "voided"]);
    let links: Vec<(Uuid, Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, reverses, reversed_by FROM rm_transfers WHERE id = ANY($1) ORDER BY created_position",
    )
    .bind(vec![original.0, reversal.0])
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(links, [(original.0, None, Some(reversal.0)), (reversal.0, Some(original.0), None)]);
    drop(conn);
    db.drop_database().await;
}

/// A read model defined outside the crate, as a domain defines its own: events per type.
struct EventTypes;

impl projections::ReadModel for EventTypes {
    fn name(&self) -> &'static str {
        "test_event_types"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_test_event_types"]
    }

    fn create_sql(&self, v: i32) -> String {
        format!("CREATE TABLE IF NOT EXISTS rm_test_event_types_v{v} (event_type TEXT PRIMARY KEY, n BIGINT NOT NULL);")
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        v: i32,
        page: &'a projections::PageView<'a>,
        _: &'a mut projections::Memo,
    ) -> projections::Applying<'a> {
        Box::pin(async move {
            let types: Vec<&str> = page.iter().map(|(r, _)| r.event_type.as_str()).collect();
            let sql = format!(
                "INSERT INTO rm_test_event_types_v{v} SELECT t, count(*) FROM unnest($1::text[]) t GROUP BY t \
                 ON CONFLICT (event_type) DO UPDATE SET n = rm_test_event_types_v{v}.n + excluded.n"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&types).execute(conn).await?;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_registers_through_the_trait_and_runs_beside_the_others() {
    let db = fresh_database().await;
    generate(&db, 5, 60).await;
    let mut conn = db.connect().await;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut conn).await.unwrap();
    let models = [Model::Balances, Model::new(&EventTypes)];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) };
    let runner =
        tokio::spawn(async move { projections::run_reporting(&url, None, &models, follow, stopped, None).await });
    let caught_up = async {
        loop {
            let s = status(&mut conn).await.unwrap();
            if s.len() == 2 && s.iter().all(|p| p.checkpoint == head) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let s = tokio::time::timeout(Duration::from_secs(20), caught_up).await.expect("both catch up");
    assert_eq!(s.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["balances", "test_event_types"]);
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, n FROM rm_test_event_types ORDER BY event_type")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, count(*) FROM events GROUP BY event_type ORDER BY event_type")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(counted, expected);
    stop.send(true).unwrap();
    runner.await.unwrap();
    drop(conn);
    db.drop_database().await;
}

/// A read database the runner has not prepared yet (no `projections` table) has applied
/// nothing: readers waiting for a position see 0 and keep waiting, instead of failing.
#[tokio::test]
async fn a_read_database_not_prepared_yet_is_at_position_zero() {
    let read = test_support::fresh_read_database().await;
    let mut conn = read.connect().await;
    assert_eq!(projections::read::checkpoint(&mut conn, Model::Balances).await.unwrap(), 0);
    assert_eq!(projections::read::reflected_position(&mut conn).await.unwrap(), 0);
    // Any other failure still surfaces.
    sqlx::raw_sql(
        "CREATE TABLE projections (name TEXT, checkpoint TEXT); INSERT INTO projections VALUES ('balances', 'x')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(projections::read::checkpoint(&mut conn, Model::Balances).await.is_err());
    drop(conn);
    read.drop_database().await;
}
