//! The certificates read model against a real Postgres: for a seeded workload of every
//! certificate operation (accepted and refused), each certificate's row and operations equal the
//! writer's own state, the audit trail has one row per certificate event with a continuous
//! balance chain and the source each command came from, and a rebuild is identical.

use std::collections::HashMap;
use std::str::FromStr;

use ledger_core::certificates::command::{Activate, Issue, SealedCvc};
use ledger_core::certificates::state::{Certificate, OperationStatus};
use ledger_core::certificates::{Command, KIND};
use ledger_core::{CertificateId, CurrencyCode, Timestamp};
use ledger_store::{EventMeta, Source, Writer, WriterConfig};
use projections::certificates::{self as rm, CertificateFilter};
use projections::{Model, rebuild};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::fresh_database;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn code(i: u64) -> String {
    format!("GC-{i}")
}

async fn checksum(conn: &mut PgConnection, view: &str, order: &str) -> String {
    let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') FROM {view} t");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await.unwrap()
}

const VIEWS: [(&str, &str); 3] = [
    ("rm_certificates", "id"),
    ("rm_certificate_operations", "certificate_id, operation_id"),
    ("rm_certificate_audit", "position"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificates_read_model_equals_the_writer_and_rebuilds_identically() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let mut rng = 0x5eed_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let certificates = 12;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = Timestamp(i64::try_from(now.as_micros()).unwrap());
    for i in 0..certificates {
        let issue = Issue {
            code: code(i),
            nominal: dec("100.00"),
            currency: CurrencyCode::parse(if i % 3 == 0 { "USD" } else { "EUR" }).unwrap(),
            expires_at: Some(now.plus_seconds(if i == 5 { 1 } else { 86_400 })),
            campaign: Some(["spring", "autumn"][(i % 2) as usize].into()),
            phone: Some("+79990001122".into()),
        };
        ledger.submit(Command::Issue(Box::new(issue)), EventMeta::default()).await.unwrap().unwrap();
    }
    let sources = |n: u64| match n % 3 {
        0 => EventMeta {
            channel: Some("pos".into()),
            initiator: Some("till-7".into()),
            source: Some(Source::Http),
            ..EventMeta::default()
        },
        1 => EventMeta {
            channel: Some("kafka:All_Payments".into()),
            source: Some(Source::Topic { topic: "All_Payments".into(), partition: 2, offset: n as i64 }),
            ..EventMeta::default()
        },
        _ => EventMeta::default(),
    };
    for step in 0..400_u64 {
        let c = code(next(certificates));
        let op = format!("op-{}", next(6));
        let command = match next(9) {
            0 | 1 => Command::Activate(Box::new(Activate {
                code: c.clone(),
                order_id: format!("order-{c}"),
                payment_id: format!("pay-{c}"),
                phone: None,
                client_id: (next(2) == 0).then(|| "client-1".to_owned()),
                paid: None,
                cvc: SealedCvc { key_id: "k".into(), nonce: "00".into(), ciphertext: "ff".into() },
            })),
            2 | 3 => Command::Authorize { code: c, operation_id: op, amount: Decimal::new(500 + next(3000) as i64, 2) },
            4 => Command::Capture {
                code: c,
                operation_id: op,
                amount: (next(2) == 0).then(|| Decimal::new(100 + next(2000) as i64, 2)),
            },
            5 => Command::Void { code: c, operation_id: op },
            6 => Command::RefuseCvc { code: c, operation_id: op },
            7 if next(6) == 0 => Command::Refund { code: c, operation_id: op, reason: None },
            7 if next(4) == 0 => Command::Cancel { code: c, operation_id: op, reason: "fraud".into() },
            _ => Command::ExpireDue,
        };
        // Refusals are part of the workload: they leave no trace in the read model.
        ledger.submit(command, sources(step)).await.unwrap().ok();
        if step == 200 {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }
    let writer: HashMap<String, Certificate> = (0..certificates)
        .map(|i| {
            let (row, _) = ledger.view().entity(CertificateId::of(&code(i)).0).unwrap();
            assert_eq!(row.kind, KIND);
            (code(i), row.parse().unwrap())
        })
        .collect();
    let balances: HashMap<String, (Decimal, Decimal)> = writer
        .values()
        .map(|c| {
            let a = ledger.view().account(&ledger_core::AccountRef::Id(c.account)).unwrap();
            (c.code.clone(), (a.account.balance(), a.account.available()))
        })
        .collect();
    drop(ledger);
    task.await.unwrap();
    assert_eq!(writer.len(), certificates as usize);

    rebuild(&db.url, Model::Certificates, &mut std::io::sink()).await.unwrap();
    let mut conn = db.connect().await;
    // The log replayed: every certificate and every transfer, so each operation is known (an
    // authorization is its hold transfer; the writer keeps only the open ones in memory).
    let mut replayed = ledger_core::State::new(ledger_core::Currencies::standard());
    let mut after = 0;
    loop {
        let page = ledger_store::sql::events_page(&mut conn, after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for record in &page {
            replayed.apply(&record.event().unwrap());
        }
    }
    let rows = rm::certificates(&mut conn, &CertificateFilter::default(), None, 100).await.unwrap();
    assert_eq!(rows.len(), writer.len());
    let mut states = std::collections::BTreeSet::new();
    for row in &rows {
        let c = &writer[&row.code];
        states.insert(row.state.clone());
        assert_eq!(row.state, c.status.as_str(), "{}", row.code);
        assert_eq!((row.balance, row.available), balances[&row.code], "{}", row.code);
        assert_eq!(
            (row.order_id.as_ref(), row.payment_id.as_ref(), row.client_id.as_ref(), row.campaign.as_ref()),
            (c.order_id.as_ref(), c.payment_id.as_ref(), c.client_id.as_ref(), c.campaign.as_ref())
        );
        assert_eq!(row.nominal, c.nominal);
        let ops = rm::operations(&mut conn, row.id, None, 100).await.unwrap();
        let c = replayed.certificates.by_code(&row.code).unwrap();
        let operations: HashMap<String, _> = (0..6)
            .map(|i| format!("op-{i}"))
            .filter_map(|id| c.operation(&replayed.ledger, &id).map(|op| (id, op)))
            .collect();
        assert_eq!(ops.len(), operations.len(), "{}", row.code);
        for op in ops {
            let expected = &operations[&op.operation_id];
            let status = match expected.status {
                OperationStatus::Open => "open",
                OperationStatus::Captured => "captured",
                OperationStatus::Voided => "voided",
                OperationStatus::CaptureVoided => "capture_voided",
                OperationStatus::Done => "done",
            };
            assert_eq!(op.status, status, "{} {}", row.code, op.operation_id);
            assert_eq!(op.amount, expected.amount);
            assert_eq!(op.captured, expected.captured);
        }
        // The audit's balances chain from 0 to the certificate's balance, event by event.
        let audit = rm::audit(&mut conn, Some(row.id), None, None, None, 1000).await.unwrap();
        assert_eq!(audit.first().map(|a| a.action.as_str()), Some("issued"));
        let mut balance = Decimal::ZERO;
        for a in &audit {
            assert_eq!(a.balance_before, balance, "{} at {}", row.code, a.position);
            balance = a.balance_after;
        }
        assert_eq!(balance, row.balance);
    }
    assert!(states.len() >= 4, "the workload reaches several states: {states:?}");
    // One audit row per certificate event, each saying where its command came from.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type LIKE 'Certificate%'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let audit = rm::audit(&mut conn, None, None, None, None, 100_000).await.unwrap();
    assert_eq!(audit.len() as i64, events);
    let topic = audit.iter().find(|a| a.source == "topic").expect("a command from a topic");
    assert_eq!((topic.source_topic.as_deref(), topic.source_partition), (Some("All_Payments"), Some(2)));
    let http = audit.iter().find(|a| a.source == "http").expect("a command over HTTP");
    assert_eq!((http.channel.as_deref(), http.initiator.as_deref()), (Some("pos"), Some("till-7")));
    assert!(audit.iter().any(|a| a.action == "expired"), "certificate GC-5 expired");
    // By time: everything is inside [issue, now]; nothing before.
    let first = audit[0].at;
    let later = rm::audit(&mut conn, None, Some(first), None, None, 100_000).await.unwrap();
    assert_eq!(later.len(), audit.len());
    let none = rm::audit(&mut conn, None, None, Some(first), None, 100_000).await.unwrap();
    assert!(none.is_empty());
    // Filters.
    let spring = CertificateFilter { campaign: Some("spring".into()), ..CertificateFilter::default() };
    assert_eq!(rm::certificates(&mut conn, &spring, None, 100).await.unwrap().len(), 6);

    let mut before = Vec::new();
    for (view, order) in VIEWS {
        before.push(checksum(&mut conn, view, order).await);
    }
    rebuild(&db.url, Model::Certificates, &mut std::io::sink()).await.unwrap();
    for ((view, order), before) in VIEWS.into_iter().zip(before) {
        assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
    }
    drop(conn);
    db.drop_database().await;
}
