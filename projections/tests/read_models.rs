//! Read models against a real Postgres: for generated command sequences every read model equals
//! what replaying the log through the core computes; a rebuild produces identical tables; a
//! poison event halts a projection at its position.

use std::collections::HashMap;
use std::time::Duration;

use ledger_core::ledger::{Command, Event};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, Currencies, CurrencyCode, LedgerState,
    OpenAccount, TransferId,
};
use ledger_store::{EventMeta, Writer, WriterConfig};
use projections::{Model, rebuild, status, step};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

/// A seeded workload of opens, transfers, holds, posts, voids, reversals and freezes.
async fn generate(db: &TestDatabase, seed: u64, commands: usize) {
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let accounts: Vec<AccountId> = (0..8).map(|i| AccountId(Uuid::from_u128(0xacc0 + i))).collect();
    for (i, id) in accounts.iter().enumerate() {
        let (kind, limit) = if i < 4 {
            (AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits)
        } else {
            (AccountKind::Asset, BalanceLimit::None)
        };
        let open = OpenAccount {
            id: *id,
            code: format!("acc:{i}"),
            currency: CurrencyCode::parse("EUR").unwrap(),
            kind,
            limit,
            metadata: serde_json::json!({"n": i}),
        };
        ledger.submit(Command::OpenAccount(open), EventMeta::default()).await.unwrap().unwrap();
    }
    let mut transfers: Vec<TransferId> = Vec::new();
    for _ in 0..commands {
        let pick = |n: u64| accounts[n as usize];
        let command = match next(10) {
            0..=4 => {
                let (d, c) = (next(8), next(8));
                let id = TransferId(Uuid::new_v4());
                transfers.push(id);
                Command::CreateTransfer(CreateTransfer {
                    pending: next(3) == 0,
                    timeout_seconds: None,
                    external_ref: Some(format!("ref-{}", next(1000))),
                    metadata: serde_json::json!({"order": next(50)}),
                    ..CreateTransfer::simple(
                        id,
                        AccountRef::Id(pick(d)),
                        AccountRef::Id(pick(c)),
                        Decimal::new(1 + next(5000) as i64, 2),
                    )
                })
            }
            5 | 6 if !transfers.is_empty() => {
                let id = transfers[next(transfers.len() as u64) as usize];
                let amount = (next(2) == 0).then(|| Decimal::new(1 + next(100) as i64, 2));
                Command::PostPendingTransfer { pending_id: id, amount }
            }
            7 if !transfers.is_empty() => {
                Command::VoidPendingTransfer { pending_id: transfers[next(transfers.len() as u64) as usize] }
            }
            8 if !transfers.is_empty() => Command::ReverseTransfer {
                id: TransferId(Uuid::new_v4()),
                transfer_id: transfers[next(transfers.len() as u64) as usize],
                metadata: serde_json::Value::Null,
            },
            _ => {
                let id = pick(next(8));
                if next(2) == 0 {
                    Command::FreezeAccount { id, reason: Some("review".into()) }
                } else {
                    Command::UnfreezeAccount { id, reason: None }
                }
            }
        };
        // Rejections are part of the workload: they must leave no trace in any read model.
        let meta = EventMeta { channel: Some(["pos", "shop", "psp"][next(3) as usize].into()), ..EventMeta::default() };
        ledger.submit(command, meta).await.unwrap().ok();
    }
    drop(ledger);
    task.await.unwrap();
}

async fn catch_up(conn: &mut PgConnection) {
    for model in Model::ALL {
        // The runner creates the projection's tables, then follows the log until stopped.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let url = conn_url(conn).await;
        let handle = tokio::spawn(async move {
            projections::run(
                &url,
                model,
                projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(5) },
                stop_rx,
            )
            .await
        });
        loop {
            let s = status(conn).await.unwrap();
            if s.iter().any(|p| p.name == model.name() && p.lag == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(step(conn, model).await.unwrap(), 0, "caught up");
    }
}

async fn conn_url(conn: &mut PgConnection) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut *conn).await.unwrap();
    let admin = std::env::var("DATABASE_URL").unwrap();
    let base = admin.split('?').next().unwrap().rsplit_once('/').unwrap().0.to_owned();
    format!("{base}/{db}")
}

/// The core's state from replaying the whole log.
async fn replay(conn: &mut PgConnection) -> (LedgerState, Vec<(i64, String, Event)>) {
    let mut state = LedgerState::new(Currencies::standard());
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = ledger_store::sql::events_page(conn, after, 5000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for record in page {
            let event = Event::try_from(record.event().unwrap()).unwrap();
            state.apply(&event);
            events.push((record.position, record.event_type.clone(), event));
        }
    }
    (state, events)
}

async fn checksum(conn: &mut PgConnection, view: &str, order: &str) -> String {
    let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') FROM {view} t");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await.unwrap()
}

/// Every index and constraint of version `v` of the read models' tables, with the version
/// taken out of the names.
async fn indexes(conn: &mut PgConnection, v: i32) -> Vec<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(i.oid) || coalesce(' ' || pg_get_constraintdef(c.oid), '') \
         FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid \
         LEFT JOIN pg_constraint c ON c.conindid = i.oid WHERE t.relname LIKE 'rm\\_%\\_v' || $1 \
         ORDER BY 1",
    )
    .bind(v.to_string())
    .fetch_all(conn)
    .await
    .unwrap();
    let mut defs: Vec<String> = defs.into_iter().map(|d| d.replace(&format!("_v{v}"), "_v")).collect();
    defs.sort();
    defs
}

const VIEWS: [(&str, &str); 6] = [
    ("rm_balances", "account_id"),
    ("rm_balance_history", "account_id, position"),
    ("rm_transfers", "id"),
    ("rm_legs", "transfer_id, n"),
    ("rm_account_events", "account_id, position"),
    ("rm_turnover", "account_id, day"),
];

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
        assert!(indexes_before.len() >= 15, "{indexes_before:?}");
        let versions: Vec<i32> = status(&mut conn).await.unwrap().iter().map(|s| s.version).collect();
        assert_eq!(versions, [2, 2, 2, 2]);
        drop(conn);
        db.drop_database().await;
    }
}

/// Appends a `TransferPosted` row by hand, bypassing the writer (as a corrupted log would).
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
            if s.len() == 4 && s.iter().all(|p| p.halted_position.is_some() || p.lag == 0) {
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
    ) -> projections::Applying<'a> {
        Box::pin(async move {
            let types: Vec<&str> = page.events.iter().map(|(r, _)| r.event_type.as_str()).collect();
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

/// The journal as a reader sees it: every transfer touching `account`, with its legs.
async fn journal_of(conn: &mut PgConnection, account: Uuid) -> Vec<(Uuid, Vec<(i32, Uuid, String, Decimal)>)> {
    let filter = projections::read::TransferFilter { account: Some(account), ..Default::default() };
    let rows = projections::read::transfers(conn, &filter, None, 10_000).await.unwrap();
    let legs = projections::read::legs(conn, &rows).await.unwrap();
    rows.iter()
        .map(|t| {
            let mine =
                legs.iter().filter(|l| l.transfer_id == t.id).map(|l| (l.n, l.account_id, l.side.clone(), l.amount));
            (t.id, mine.collect())
        })
        .collect()
}

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

    // The journal as definition 1 left it: legs keyed by transfer id, without their position.
    sqlx::raw_sql(
        "DROP VIEW rm_legs; ALTER TABLE rm_legs_v1 DROP COLUMN position; \
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

    // A runner of this release rebuilds the journal into version 2 (definition 3) before it
    // follows the log.
    catch_up(&mut conn).await;
    let (version, definition): (i32, i32) =
        sqlx::query_as("SELECT version, definition FROM projections WHERE name = 'journal'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((version, definition), (2, 3));
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
    sqlx::query("UPDATE projections SET definition = 4 WHERE name = 'journal'").execute(&mut conn).await.unwrap();
    let mut runner = projections::runner::ReadModels::new(&[Model::Journal]);
    let refused = ledger_store::follow::Follow::prepare(&mut runner, &mut conn).await.unwrap_err();
    assert!(matches!(refused, projections::ApplyError::Newer { name: "journal", stored: 4, known: 3 }), "{refused}");
    assert_eq!(journal_of(&mut conn, account).await, expected);
}

/// Waits until every one of `models` reached the head of the log, its checkpoint kept in
/// `read`'s database.
async fn caught_up_in(log: &mut PgConnection, read: &mut PgConnection, models: &[Model]) {
    loop {
        let s = projections::status_with(log, Some(&mut *read)).await.unwrap();
        if models.iter().all(|m| s.iter().any(|p| p.name == m.name() && p.lag == 0)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
