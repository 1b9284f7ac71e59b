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

    // Stored: one row of kind certificate, at the position of its latest event, and one for
    // the operation that event opened.
    let mut conn = db.connect().await;
    let rows: Vec<(String, String, i32, i64, i64)> =
        sqlx::query_as("SELECT kind, key, version, first_position, position FROM entities ORDER BY kind")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let rows: Vec<_> = rows.iter().map(|(k, key, v, f, l)| (k.as_str(), key.as_str(), *v, *f, *l)).collect();
    assert_eq!(rows, [("certificate", "GC-1", 3, 4, 8), ("certificate_operation", "GC-1/a1", 1, 8, 8)]);

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
    let clearing = sales_clearing(&CurrencyCode::parse("EUR").unwrap()).0;
    let clearing = ledger.view().account(&ledger_core::AccountRef::Id(clearing)).unwrap();
    assert_eq!(clearing.account.balance(), dec("80.00"));
    stop(ledger, task).await;

    let report = verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    assert_eq!((report.accounts, report.transfers, report.entities), (3, 2, 2));
    let (version, last): (i32, i64) =
        sqlx::query_as("SELECT version, position FROM entities WHERE kind = 'certificate_operation'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((version, last), (2, 10), "the capture changed the operation's row");

    // A stored row that the log does not give is caught.
    sqlx::query("UPDATE entities SET state = jsonb_set(state, '{nominal}', '\"1000.00\"') WHERE kind = 'certificate'")
        .execute(&mut conn)
        .await
        .unwrap();
    let Err(VerifyError::State(problem)) = verify(&db.url, ledger_core::Currencies::standard()).await else {
        panic!("tampering not caught")
    };
    assert!(problem.contains("certificate GC-1"), "{problem}");
    sqlx::query("UPDATE entities SET state = jsonb_set(state, '{nominal}', '\"100.00\"') WHERE kind = 'certificate'")
        .execute(&mut conn)
        .await
        .unwrap();
    verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    // So is an operation's row that says something else, or is missing.
    sqlx::query(
        "UPDATE entities SET state = jsonb_set(state, '{operation,status}', '\"open\"') WHERE kind <> 'certificate'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let Err(VerifyError::State(problem)) = verify(&db.url, ledger_core::Currencies::standard()).await else {
        panic!("tampering not caught")
    };
    assert!(problem.contains("certificate_operation GC-1/a1"), "{problem}");
    sqlx::query("DELETE FROM entities WHERE kind <> 'certificate'").execute(&mut conn).await.unwrap();
    let Err(VerifyError::State(problem)) = verify(&db.url, ledger_core::Currencies::standard()).await else {
        panic!("a missing row not caught")
    };
    assert!(problem.contains("GC-1/a1 is in the log but not stored"), "{problem}");
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
