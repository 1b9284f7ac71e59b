//! A domain other than the ledger through the store: its commands and postings commit together,
//! its entities are stored as generic rows, loaded back at start-up, and checked by `verify`.

use std::str::FromStr;

use ledger_core::certificates::command::{Activate, Issue, SealedCvc};
use ledger_core::certificates::state::Certificate;
use ledger_core::certificates::{Command, Rejection, sales_clearing};
use ledger_core::{CertificateId, CurrencyCode, Entity, Timestamp};
use ledger_store::verify::{VerifyError, verify};
use ledger_store::{Committed, EventMeta, LedgerHandle, Writer, WriterConfig};
use rust_decimal::Decimal;
use test_support::{TestDatabase, fresh_database};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn start(db: &TestDatabase) -> (LedgerHandle, tokio::task::JoinHandle<()>) {
    Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts")
}

async fn stop(ledger: LedgerHandle, task: tokio::task::JoinHandle<()>) {
    drop(ledger);
    task.await.unwrap();
}

async fn submit(ledger: &LedgerHandle, command: Command) -> Result<Committed, Rejection> {
    ledger.submit(command, EventMeta::default()).await.expect("writer answers")
}

/// The certificate an answer shows.
fn certificate(committed: &Committed) -> Certificate {
    let Some(Entity::Row(row)) = &committed.entity else { panic!("no certificate in {committed:?}") };
    row.parse().unwrap()
}

fn issue(code: &str) -> Command {
    Command::Issue(Box::new(Issue {
        code: code.into(),
        nominal: dec("100.00"),
        currency: CurrencyCode::parse("EUR").unwrap(),
        expires_at: Some(Timestamp(i64::MAX / 2)),
        campaign: None,
        phone: Some("+79990001122".into()),
    }))
}

fn activate(code: &str) -> Command {
    Command::Activate(Box::new(Activate {
        code: code.into(),
        order_id: "o1".into(),
        payment_id: "p1".into(),
        phone: None,
        client_id: None,
        paid: None,
        cvc: SealedCvc { key_id: "k".into(), nonce: "00".into(), ciphertext: "ff".into() },
    }))
}

fn authorize(op: &str, amount: &str) -> Command {
    Command::Authorize { code: "GC-1".into(), operation_id: op.into(), amount: dec(amount) }
}

#[tokio::test]
async fn a_certificate_and_its_postings_commit_together_and_survive_a_restart() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let issued = submit(&ledger, issue("GC-1")).await.unwrap();
    assert_eq!(issued.position, 4, "three accounts opened, then the certificate");
    assert_eq!(certificate(&issued).version, 1);
    let activated = submit(&ledger, activate("GC-1")).await.unwrap();
    assert_eq!(activated.position, 6, "the posting, then the certificate's event");
    submit(&ledger, authorize("a1", "30")).await.unwrap();
    let refused = submit(&ledger, authorize("a2", "70.01")).await.unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds");
    // A retried upload answers with the position that issued it.
    let again = submit(&ledger, issue("GC-1")).await.unwrap();
    assert_eq!((again.position, again.replayed), (4, true));
    stop(ledger, task).await;

    // A follower after a few types reads a window of positions: only those types, up to the
    // window's end or the head of the log.
    let mut conn = db.connect().await;
    let types = ["CertificateActivated", "CertificateAuthorized"];
    let (events, last) = ledger_store::log::page_of(&mut conn, 0, 6, &types).await.unwrap();
    assert_eq!((events.iter().map(|e| e.position).collect::<Vec<_>>(), last), (vec![6], 6));
    let (events, last) = ledger_store::log::page_of(&mut conn, 6, 1000, &types).await.unwrap();
    assert_eq!(
        (events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), last),
        (vec!["CertificateAuthorized"], 8)
    );
    assert_eq!(ledger_store::log::page_of(&mut conn, 8, 1000, &types).await.unwrap(), (vec![], 8));
    drop(conn);

    // Stored: one row of kind certificate, at the position of its latest event, holding the
    // authorization that event opened (no row of its own: its hold transfer tells the rest).
    let mut conn = db.connect().await;
    let rows: Vec<(String, String, i32, i64, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT kind, key, version, first_position, position, state->'open' FROM entities ORDER BY kind",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let rows: Vec<_> =
        rows.iter().map(|(k, key, v, f, l, open)| (k.as_str(), key.as_str(), *v, *f, *l, open)).collect();
    assert_eq!(rows, [("certificate", "GC-1", 3, 4, 8, &serde_json::json!({"a1": "30.00"}))]);

    // Started again from the stored rows, not a replay: the hold is still there.
    let (ledger, task) = start(&db).await;
    let replayed = submit(&ledger, authorize("a1", "30")).await.unwrap();
    assert!(replayed.replayed);
    assert_eq!(replayed.position, 8);
    let refused = submit(&ledger, authorize("a2", "70.01")).await.unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds");
    let captured =
        submit(&ledger, Command::Capture { code: "GC-1".into(), operation_id: "a1".into(), amount: Some(dec("20")) })
            .await
            .unwrap();
    let c = certificate(&captured);
    assert_eq!(c.status.as_str(), "partially_redeemed");
    assert_eq!(c.id, CertificateId::of("GC-1"));
    assert!(c.open.is_empty());
    let clearing = sales_clearing(&CurrencyCode::parse("EUR").unwrap()).0;
    let clearing = ledger.view().account(&ledger_core::AccountRef::Id(clearing)).unwrap();
    assert_eq!(clearing.account.balance(), dec("80.00"));
    stop(ledger, task).await;

    // Started again: a settled hold is not in memory (only pending transfers are loaded), yet a
    // command naming the authorization finds it: the writer loads the transfer it names.
    let (ledger, task) = start(&db).await;
    let capture = Command::Capture { code: "GC-1".into(), operation_id: "a1".into(), amount: Some(dec("20")) };
    assert!(submit(&ledger, capture).await.unwrap().replayed, "a retried capture replays");
    let capture = Command::Capture { code: "GC-1".into(), operation_id: "a1".into(), amount: Some(dec("10")) };
    assert_eq!(submit(&ledger, capture).await.unwrap_err().code(), "authorization_already_captured");
    let voided = submit(&ledger, Command::Void { code: "GC-1".into(), operation_id: "a1".into() }).await.unwrap();
    assert_eq!(certificate(&voided).status.as_str(), "active", "the captured amount came back");
    stop(ledger, task).await;

    let report = verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    assert_eq!((report.accounts, report.transfers, report.entities), (3, 3, 1));

    // A stored row that the log does not give is caught.
    sqlx::query("UPDATE entities SET state = jsonb_set(state::jsonb, '{nominal}', '\"1000.00\"')::json WHERE kind = 'certificate'")
        .execute(&mut conn)
        .await
        .unwrap();
    let Err(VerifyError::State(problem)) = verify(&db.url, ledger_core::Currencies::standard()).await else {
        panic!("tampering not caught")
    };
    assert!(problem.contains("certificate GC-1"), "{problem}");
    sqlx::query("UPDATE entities SET state = jsonb_set(state::jsonb, '{nominal}', '\"100.00\"')::json WHERE kind = 'certificate'")
        .execute(&mut conn)
        .await
        .unwrap();
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    // So is an open authorization the log closed.
    sqlx::query("UPDATE entities SET state = jsonb_set(state::jsonb, '{open}', '{\"a1\": \"30.00\"}')::json")
        .execute(&mut conn)
        .await
        .unwrap();
    let Err(VerifyError::State(problem)) = verify(&db.url, ledger_core::Currencies::standard()).await else {
        panic!("tampering not caught")
    };
    assert!(problem.contains("certificate GC-1"), "{problem}");
}

/// Commands on one certificate decided together (sent at once, taken by the writer as one
/// group): each answers with the certificate as it left it, and the commit stores the row the
/// last of them left, which is what the log gives.
#[tokio::test]
async fn commands_on_one_certificate_decided_together_answer_each_their_own_state_and_store_the_last() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    submit(&ledger, issue("GC-1")).await.unwrap();
    submit(&ledger, activate("GC-1")).await.unwrap();
    let ops: Vec<String> = (1..=20).map(|n| format!("a{n}")).collect();
    let answers = futures_util::future::join_all(ops.iter().map(|op| submit(&ledger, authorize(op, "1")))).await;
    let mut open: Vec<usize> = answers.iter().map(|a| certificate(a.as_ref().unwrap()).open.len()).collect();
    open.sort_unstable();
    assert_eq!(open, (1..=20).collect::<Vec<_>>(), "each answer shows the authorizations up to its own");
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();

    let (ledger, task) = start(&db).await;
    let again = submit(&ledger, authorize("a20", "1")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(certificate(&again).open.len(), 20, "the stored row holds every authorization");
    assert_eq!(submit(&ledger, authorize("a21", "80.01")).await.unwrap_err().code(), "insufficient_funds");
    stop(ledger, task).await;
    db.drop_database().await;
}

/// A database written when a certificate's operations had rows of their own: the migration
/// folds them into their certificate's row (open authorizations, the closing operation), and
/// the result is what the log gives.
#[tokio::test]
async fn operation_rows_of_an_earlier_release_are_folded_into_their_certificates() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    for code in ["GC-1", "GC-2"] {
        submit(&ledger, issue(code)).await.unwrap();
    }
    submit(&ledger, activate("GC-1")).await.unwrap();
    submit(&ledger, authorize("a1", "30")).await.unwrap();
    submit(&ledger, authorize("a2", "10")).await.unwrap();
    submit(&ledger, Command::Capture { code: "GC-1".into(), operation_id: "a2".into(), amount: None }).await.unwrap();
    let cancel = Command::Cancel { code: "GC-2".into(), operation_id: "c1".into(), reason: "lost".into() };
    submit(&ledger, cancel).await.unwrap();
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    let now: Vec<(uuid::Uuid, serde_json::Value)> =
        sqlx::query_as("SELECT id, state FROM entities ORDER BY id").fetch_all(&mut conn).await.unwrap();

    // The earlier layout: operations in rows of their own, certificates without them.
    let certificate_id = |code: &str| CertificateId::of(code).0;
    let op = |code: &str, op: &str, body: serde_json::Value| {
        let id = uuid::Uuid::new_v5(&certificate_id(code), format!("operation:{op}").as_bytes());
        let state = serde_json::json!({"certificate": certificate_id(code), "operation_id": op, "operation": body});
        (id, format!("{code}/{op}"), state)
    };
    let hold = |code: &str, op: &str| ledger_core::certificates::Purpose::Hold.transfer(CertificateId::of(code), op).0;
    let closing = &now.iter().find(|(id, _)| *id == certificate_id("GC-2")).unwrap().1["closing"];
    let legacy = [
        op(
            "GC-1",
            "a1",
            serde_json::json!({"kind": "authorization", "amount": "30.00", "captured": null,
            "status": "open", "transfer": hold("GC-1", "a1"), "reason": null, "at": 1, "version": 1}),
        ),
        op(
            "GC-1",
            "a2",
            serde_json::json!({"kind": "authorization", "amount": "10.00", "captured": "10.00",
            "status": "captured", "transfer": hold("GC-1", "a2"), "reason": null, "at": 1, "version": 2}),
        ),
        op(
            "GC-2",
            "c1",
            serde_json::json!({"kind": "cancellation", "amount": closing["amount"],
            "captured": null, "status": "done", "transfer": closing["transfer"], "reason": "lost",
            "at": closing["at"], "version": 1}),
        ),
    ];
    // That release stored the state as `jsonb` and had no entity change type (migration 0015).
    let as_jsonb = "ALTER TABLE entities ALTER COLUMN state TYPE jsonb USING state::jsonb; \
                    DROP TYPE IF EXISTS ledger_entity_change";
    sqlx::raw_sql(as_jsonb).execute(&mut conn).await.unwrap();
    sqlx::query("UPDATE entities SET state = state - 'open' - 'closing'").execute(&mut conn).await.unwrap();
    for (id, key, state) in legacy {
        sqlx::query(
            "INSERT INTO entities (id, kind, key, version, first_position, position, state) \
             VALUES ($1, 'certificate_operation', $2, 1, 1, 1, $3)",
        )
        .bind(id)
        .bind(key)
        .bind(state)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Migrated (0014 on that layout, then 0015), the rows are what the log gives; run again, the
    // migrations change nothing.
    for _ in 0..2 {
        sqlx::raw_sql(as_jsonb).execute(&mut conn).await.unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0014_certificate_operations_in_transfers.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0015_entities_state_json.sql")).execute(&mut conn).await.unwrap();
        let migrated: Vec<(uuid::Uuid, serde_json::Value)> =
            sqlx::query_as("SELECT id, state FROM entities ORDER BY id").fetch_all(&mut conn).await.unwrap();
        assert_eq!(migrated, now);
        verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    }
    // And the writer starts on it: the open authorization still holds its amount.
    let (ledger, task) = start(&db).await;
    assert!(submit(&ledger, authorize("a1", "30")).await.unwrap().replayed);
    stop(ledger, task).await;
    drop(conn);
    db.drop_database().await;
}

/// A command that appends several events to one stream (a cancellation releases the open hold,
/// then closes the certificate) numbers them one after the other, as a replay does.
#[tokio::test]
async fn several_events_of_one_command_on_one_stream_take_consecutive_versions() {
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    submit(&ledger, issue("GC-1")).await.unwrap();
    submit(&ledger, activate("GC-1")).await.unwrap();
    submit(&ledger, authorize("a1", "30")).await.unwrap();
    submit(&ledger, authorize("a2", "20")).await.unwrap();
    let cancel = Command::Cancel { code: "GC-1".into(), operation_id: "c1".into(), reason: "fraud".into() };
    let cancelled = submit(&ledger, cancel).await.unwrap();
    assert_eq!(certificate(&cancelled).status.as_str(), "cancelled");
    stop(ledger, task).await;
    let mut conn = db.connect().await;
    let versions: Vec<(String, i32)> =
        sqlx::query_as("SELECT event_type, stream_version FROM events WHERE stream_id = $1 ORDER BY position")
            .bind(format!("certificate-{}", CertificateId::of("GC-1").0))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected = [
        "CertificateIssued",
        "CertificateActivated",
        "CertificateAuthorized",
        "CertificateAuthorized",
        "CertificateAuthorizationVoided",
        "CertificateAuthorizationVoided",
        "CertificateCancelled",
    ];
    assert_eq!(versions.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), expected);
    assert_eq!(versions.iter().map(|(_, v)| *v).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    db.drop_database().await;
}

/// The writer hands its in-process followers each event as it decided it, beside the sealed
/// record: for every kind of certificate command, that is exactly what the record decodes to.
#[tokio::test]
async fn the_tail_hands_each_certificate_event_as_its_stored_record_decodes() {
    let db = fresh_database().await;
    let tail = ledger_store::tail::Tail::new(10_000);
    let mut reader = tail.reader();
    let config = WriterConfig { tail: Some(tail.clone()), ..WriterConfig::default() };
    let (ledger, task) = Writer::start(&db.url, config).await.unwrap();
    submit(&ledger, issue("GC-1")).await.unwrap();
    submit(&ledger, activate("GC-1")).await.unwrap();
    submit(&ledger, authorize("a1", "30")).await.unwrap();
    let capture = Command::Capture { code: "GC-1".into(), operation_id: "a1".into(), amount: Some(dec("12.50")) };
    submit(&ledger, capture).await.unwrap();
    submit(&ledger, Command::Void { code: "GC-1".into(), operation_id: "a1".into() }).await.unwrap();
    submit(&ledger, authorize("a2", "20")).await.unwrap();
    let cancel = Command::Cancel { code: "GC-1".into(), operation_id: "c1".into(), reason: "fraud".into() };
    submit(&ledger, cancel).await.unwrap();
    let mut conn = db.connect().await;
    let stored = ledger_store::log::page(&mut conn, 0, 1000).await.unwrap();
    let mut from_memory = Vec::new();
    while let Some(page) = reader.page(from_memory.last().map_or(0, |e: &ledger_store::tail::Logged| e.0.position), 100)
    {
        from_memory.extend(page);
    }
    assert_eq!(from_memory.len(), stored.len());
    let types: std::collections::BTreeSet<&str> = stored.iter().map(|r| r.event_type.as_str()).collect();
    assert!(types.len() >= 9, "every kind of command and its postings: {types:?}");
    for (e, record) in from_memory.iter().zip(&stored) {
        assert_eq!(&e.0, record);
        assert_eq!(e.1, record.event().unwrap(), "{}", record.event_type);
    }
    drop(conn);
    stop(ledger, task).await;
    db.drop_database().await;
}

fn audit_entry(n: u128, action: &str) -> ledger_core::audit::Entry {
    ledger_core::audit::Entry {
        id: uuid::Uuid::from_u128(n),
        level: ledger_core::audit::Level::Warning,
        action: action.into(),
        subject: format!("key-{n}"),
        before: None,
        after: Some(serde_json::json!({"roles": ["ops"]})),
        reason: None,
    }
}

#[tokio::test]
async fn audit_entries_are_events_of_their_own_streams_with_no_row_and_verify_covers_them() {
    use ledger_store::audit::{AuditError, Auditor, request};
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let auditor = Auditor::new(ledger.clone());
    let meta = EventMeta {
        channel: Some("backoffice".into()),
        key_id: Some(uuid::Uuid::from_u128(99)),
        ..EventMeta::default()
    };
    auditor.record(audit_entry(1, "keys.create"), meta.clone()).await.unwrap();
    let mut refused = audit_entry(2, "keys.create");
    refused.reason = Some("rotated ldg_0123".into());
    assert!(
        matches!(auditor.record(refused, meta.clone()).await, Err(AuditError::Refused(r)) if r.code() == "secret_in_entry")
    );
    // Asked for from outside the writer, in a transaction of the caller's, then drained.
    let mut conn = db.connect().await;
    request(
        &mut conn,
        &audit_entry(3, "roles.set"),
        &EventMeta { channel: Some("cli".into()), ..EventMeta::default() },
    )
    .await
    .unwrap();
    let mut bad = audit_entry(4, "roles.set");
    bad.action = "Bad Action".into();
    request(&mut conn, &bad, &EventMeta::default()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    assert_eq!(auditor.drain(&pool).await.unwrap(), 1, "the refused request is dropped");
    pool.close().await;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_requests").fetch_one(&mut conn).await.unwrap();
    assert_eq!(pending, 0);
    let counts = auditor.recorded().map(|(level, n)| (level.as_str(), n));
    assert_eq!(counts, [("info", 0), ("warning", 2), ("critical", 0)]);

    let rows: Vec<(String, i32, String, serde_json::Value)> = sqlx::query_as(
        "SELECT stream_id, stream_version, event_type, metadata::jsonb FROM events WHERE event_type = 'AuditRecorded' ORDER BY position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let streams: Vec<(&str, i32)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    let (one, three) = (format!("audit-{}", uuid::Uuid::from_u128(1)), format!("audit-{}", uuid::Uuid::from_u128(3)));
    assert_eq!(streams, [(one.as_str(), 1), (three.as_str(), 1)]);
    assert_eq!(rows[0].3["channel"], "backoffice");
    assert_eq!(rows[1].3["channel"], "cli");
    let entities: i64 = sqlx::query_scalar("SELECT count(*) FROM entities").fetch_one(&mut conn).await.unwrap();
    assert_eq!(entities, 0, "an audit entry keeps no row");
    drop(auditor);
    stop(ledger, task).await;
    // A restart has nothing to load for them, and verify replays them.
    let (ledger, task) = start(&db).await;
    stop(ledger, task).await;
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    drop(conn);
    db.drop_database().await;
}

mod runtime_config {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use ledger_core::config::Command;
    use ledger_store::config::{RuntimeConfig, Source};
    use ledger_store::verify::verify;
    use ledger_store::{EventMeta, Writer, WriterConfig};
    use serde_json::{Value, json};
    use test_support::fresh_database;

    fn quota(n: u32) -> Value {
        json!({ "per_second": n, "burst": n })
    }

    #[tokio::test]
    async fn a_change_is_seen_by_another_reader_of_the_database_within_a_second_and_survives_a_restart() {
        let db = fresh_database().await;
        let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let file = BTreeMap::from([("rate_limit.default".to_owned(), quota(7))]);
        let reader = RuntimeConfig::start(&db.url, pool.clone(), file).await.unwrap();
        assert_eq!(reader.lookup("rate_limit.default"), (quota(7), Source::File));
        let key = format!("rate_limit.key.{}", uuid::Uuid::new_v4());
        assert_eq!(reader.lookup(&key), (Value::Null, Source::Default));
        let mut changes = reader.changes();

        let set = Command::set("rate_limit.default", quota(9));
        let committed = ledger.submit(set.clone(), EventMeta::default()).await.unwrap().unwrap();
        assert!(!committed.replayed);
        let landed = Instant::now();
        while reader.get("rate_limit.default") != quota(9) {
            assert!(landed.elapsed() < Duration::from_secs(1), "not seen within a second");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(reader.lookup("rate_limit.default").1, Source::Database);
        assert_eq!(reader.position("rate_limit.default"), Some(committed.position));
        assert_eq!(reader.keys(), ["rate_limit.default"]);

        // A reset brings the file's default back, seen the same way.
        ledger.submit(Command::reset("rate_limit.default"), EventMeta::default()).await.unwrap().unwrap();
        let landed = Instant::now();
        while reader.lookup("rate_limit.default") != (quota(7), Source::File) {
            assert!(landed.elapsed() < Duration::from_secs(1), "reset not seen within a second");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(changes.has_changed().unwrap());
        let set = Command::set(key.clone(), quota(3));
        ledger.submit(set.clone(), EventMeta::default()).await.unwrap().unwrap();

        // A writer started again holds the values: the same value again changes nothing.
        drop(ledger);
        task.await.unwrap();
        let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
        assert!(ledger.submit(set, EventMeta::default()).await.unwrap().unwrap().replayed);
        let late = RuntimeConfig::start(&db.url, pool.clone(), BTreeMap::new()).await.unwrap();
        assert_eq!(late.lookup(&key), (quota(3), Source::Database));
        assert_eq!(late.lookup("rate_limit.default").1, Source::Default);
        assert_eq!(late.get("rate_limit.default"), ledger_core::rate_limit::DEFAULT.to_value());
        drop(ledger);
        task.await.unwrap();
        let report = verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
        assert_eq!(report.entities, 2);
        drop((reader, late));
        pool.close().await;
        db.drop_database().await;
    }

    #[test]
    fn file_defaults_name_a_setting_and_hold_a_value_it_takes() {
        let file = |key: &str, value: Value| RuntimeConfig::detached(BTreeMap::from([(key.to_owned(), value)]));
        assert!(file("rate_limit.default", quota(1)).is_ok());
        let unknown = file("rate_limit.nothing", quota(1)).err().unwrap();
        assert_eq!(unknown.to_string(), "settings.rate_limit.nothing: no setting has this key");
        let invalid = file("rate_limit.default", json!({"per_second": 1})).err().unwrap();
        assert_eq!(invalid.to_string(), "settings.rate_limit.default: missing field \"burst\"");
    }
}

/// One UUID given to two kinds of entity shares no row: a payout request named by a
/// certificate's row id is refused with the seam's `id_taken`, and so is a certificate whose
/// row id a payout request already holds; each holder keeps its own row, through a restart and
/// `verify`.
#[tokio::test]
async fn an_entity_row_id_held_by_another_kind_is_refused_and_its_holder_keeps_its_row() {
    use ledger_core::ledger::Rejection::IdTaken;
    use ledger_core::payouts;
    let db = fresh_database().await;
    let (ledger, task) = start(&db).await;
    let request =
        |id: uuid::Uuid| payouts::Command::Request { id: ledger_core::PayoutRequestId(id), client_id: "c1".into() };
    let submit_request = async |id| ledger.submit(request(id), EventMeta::default()).await.expect("writer answers");

    submit(&ledger, issue("GC-1")).await.unwrap();
    let refused = submit_request(CertificateId::of("GC-1").0).await.unwrap_err();
    assert_eq!(refused, payouts::Rejection::Ledger(IdTaken));
    assert_eq!(refused.code(), "id_taken");
    // The other way round: the request holds GC-2's id before GC-2 is issued.
    submit_request(CertificateId::of("GC-2").0).await.unwrap();
    assert_eq!(submit(&ledger, issue("GC-2")).await.unwrap_err(), Rejection::Ledger(IdTaken));
    // A retried request is still the request's own.
    assert!(submit_request(CertificateId::of("GC-2").0).await.unwrap().replayed);
    stop(ledger, task).await;

    let mut conn = db.connect().await;
    let rows: Vec<(uuid::Uuid, String, String, i32)> =
        sqlx::query_as("SELECT id, kind, key, version FROM entities ORDER BY first_position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected = [
        (CertificateId::of("GC-1").0, "certificate".to_owned(), "GC-1".to_owned(), 1),
        (CertificateId::of("GC-2").0, payouts::REQUEST_KIND.to_owned(), rows[1].2.clone(), 1),
    ];
    assert_eq!(rows, expected);
    drop(conn);
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();

    // Started again from the stored rows: the holders are known, the refusals stand.
    let (ledger, task) = start(&db).await;
    assert!(submit(&ledger, issue("GC-1")).await.unwrap().replayed);
    assert_eq!(submit(&ledger, issue("GC-2")).await.unwrap_err(), Rejection::Ledger(IdTaken));
    let refused = ledger.submit(request(CertificateId::of("GC-1").0), EventMeta::default()).await.unwrap();
    assert_eq!(refused.unwrap_err(), payouts::Rejection::Ledger(IdTaken));
    stop(ledger, task).await;
    db.drop_database().await;
}
