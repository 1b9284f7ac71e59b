//! The certificates' consumers, handler by handler, against a real writer and Postgres (Kafka's
//! part, delivery and dead letters, is the consumer framework's and `ledger/tests/certificates.rs`'s):
//! orders and payments in any order, partial, failed and foreign-currency payments, repeats,
//! amounts that are not the nominal, and uploads with bad rows.

use std::sync::Arc;

use ledger_core::certificates::Command;
use ledger_core::certificates::command::Issue;
use ledger_core::certificates::state::{Certificate, Status};
use ledger_core::{CertificateId, CurrencyCode};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use rust_decimal::Decimal;
use secrets::{KeyProvider, LocalKeys};
use serde_json::{Value, json};
use streams::certificates::sales::SalesTopics;
use streams::certificates::{Sales, Uploads};
use streams::consumer::{HandleError, Handler, Inbound};
use test_support::fresh_database;

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn message(topic: &str, offset: i64, payload: Value) -> Inbound {
    Inbound {
        topic: topic.to_owned(),
        partition: 0,
        offset,
        key: Some(format!("m{offset}")),
        payload: payload.to_string().into_bytes(),
        headers: Vec::new(),
    }
}

async fn issue(ledger: &LedgerHandle, code: &str, nominal: i64) {
    let issue = Issue {
        code: code.into(),
        nominal: Decimal::new(nominal, 2),
        currency: CurrencyCode::parse("EUR").unwrap(),
        expires_at: None,
        campaign: None,
        phone: Some("+79990001122".into()),
    };
    ledger.submit(Command::Issue(Box::new(issue)), EventMeta::default()).await.unwrap().unwrap();
}

fn certificate(ledger: &LedgerHandle, code: &str) -> Option<Certificate> {
    let (row, _) = ledger.view().entity(CertificateId::of(code).0)?;
    row.parse().ok()
}

fn status(ledger: &LedgerHandle, code: &str) -> Option<Status> {
    certificate(ledger, code).map(|c| c.status)
}

fn order(id: &str, total: &str, lines: Value) -> Value {
    json!({"order_id": id, "total": total, "currency": "EUR", "client_id": "client-1", "lines": lines})
}

fn payment(id: &str, order: &str, status: &str, amount: &str, currency: &str) -> Value {
    json!({"payment_id": id, "order_id": order, "status": status, "amount": amount, "currency": currency})
}

fn line(code: &str, amount: &str) -> Value {
    json!({"type": "gift_certificate", "certificate_code": code, "amount": amount})
}

#[tokio::test]
async fn orders_and_payments_activate_certificates_once_their_order_is_paid() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeys::new("k1", KEY).unwrap());
    let topics = SalesTopics::default();
    let sales = Sales::new(ledger.clone(), pool.clone(), keys, topics.clone());
    let (orders, payments) = (topics.orders.as_str(), topics.payments.as_str());
    for (code, nominal) in [("GC-1", 5000), ("GC-2", 2500), ("GC-3", 1000), ("GC-4", 1000)] {
        issue(&ledger, code, nominal).await;
    }

    // Two certificates in one order of 80.00 (with other goods); the payments come first, one
    // failed and one in another currency, neither counting.
    let o1 = order(
        "o1",
        "80.00",
        json!([line("GC-1", "50.00"), line("GC-2", "25.00"), {"type": "goods", "amount": "5.00"}]),
    );
    sales.handle(&message(payments, 1, payment("p1", "o1", "paid", "40.00", "EUR"))).await.unwrap();
    sales.handle(&message(payments, 2, payment("p2", "o1", "failed", "40.00", "EUR"))).await.unwrap();
    sales.handle(&message(payments, 3, payment("p3", "o1", "paid", "40.00", "USD"))).await.unwrap();
    sales.handle(&message(orders, 4, o1.clone())).await.unwrap();
    assert_eq!(status(&ledger, "GC-1"), Some(Status::Issued), "40.00 of 80.00 paid");
    // The failed payment is retried and goes through: the order is paid.
    sales.handle(&message(payments, 5, payment("p2", "o1", "paid", "40.00", "EUR"))).await.unwrap();
    for code in ["GC-1", "GC-2"] {
        let c = certificate(&ledger, code).unwrap();
        assert_eq!(c.status, Status::Active, "{code}");
        assert_eq!((c.order_id.as_deref(), c.payment_id.as_deref()), (Some("o1"), Some("p2")));
        assert_eq!(c.client_id.as_deref(), Some("client-1"));
    }
    let activated = |ledger: &LedgerHandle| ledger.view().head();
    let head = activated(&ledger);
    // Redeliveries and repeats change nothing.
    sales.handle(&message(orders, 4, o1)).await.unwrap();
    sales.handle(&message(payments, 5, payment("p2", "o1", "paid", "40.00", "EUR"))).await.unwrap();
    sales.handle(&message(payments, 6, payment("p4", "o1", "paid", "1.00", "EUR"))).await.unwrap();
    assert_eq!(activated(&ledger), head, "nothing written again");

    // The order after its payment; a line paying less than the nominal is refused alone.
    sales.handle(&message(payments, 7, payment("p5", "o2", "paid", "19.99", "EUR"))).await.unwrap();
    let refused = sales
        .handle(&message(orders, 8, order("o2", "19.99", json!([line("GC-3", "10.00"), line("GC-4", "9.99")]))))
        .await
        .unwrap_err();
    let HandleError::Reject { code, detail } = refused else { panic!("{refused:?}") };
    assert_eq!(code, "activation_refused");
    assert!(detail.contains("GC-4: payment_mismatch") && !detail.contains("GC-3"), "{detail}");
    assert_eq!((status(&ledger, "GC-3"), status(&ledger, "GC-4")), (Some(Status::Active), Some(Status::Issued)));
    assert_eq!(certificate(&ledger, "GC-3").unwrap().payment_id.as_deref(), Some("p5"));

    // An order without certificate lines is none of this consumer's business; malformed
    // messages are refused with invalid_body.
    sales.handle(&message(orders, 9, order("o3", "5.00", json!([{"type": "goods", "amount": "5.00"}])))).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM certificate_orders").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 2);
    for (topic, bad) in [
        (orders, json!({"order_id": "o4"})),
        (orders, order("o4", "1e3", json!([line("GC-4", "10.00")]))),
        (orders, order("o4", "10.00", json!([{"type": "gift_certificate", "amount": "10.00"}]))),
        (payments, payment("p6", "o4", "pending", "1.00", "EUR")),
        (payments, json!("not an object")),
    ] {
        let refused = sales.handle(&message(topic, 10, bad.clone())).await.unwrap_err();
        assert!(matches!(&refused, HandleError::Reject { code, .. } if code == "invalid_body"), "{bad}: {refused:?}");
    }
    drop((sales, ledger));
    task.await.unwrap();
    ledger_store::verify::verify(&db.url, ledger_core::Currencies::standard()).await.unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn an_upload_message_issues_its_good_rows_and_names_the_bad_ones() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let uploads = Uploads::new(ledger.clone());
    let topic = "GiftCertificateUpload";
    uploads.handle(&message(topic, 1, json!({"code": "GC-1", "nominal": 10, "currency": "EUR"}))).await.unwrap();
    let refused = uploads
        .handle(&message(
            topic,
            2,
            json!({"certificates": [
                {"code": "GC-2", "nominal": "20.00", "currency": "EUR", "campaign": "x"},
                {"code": "GC-3", "nominal": "1.001", "currency": "EUR"},
                {"code": "bad code", "nominal": "1.00", "currency": "EUR"},
                {"code": "GC-1", "nominal": "10.00", "currency": "EUR"}
            ]}),
        ))
        .await
        .unwrap_err();
    let HandleError::Reject { code, detail } = refused else { panic!("{refused:?}") };
    assert_eq!(code, "rows_rejected");
    assert!(detail.contains("row 1 (GC-3): amount_scale"), "{detail}");
    assert!(detail.contains("row 2 (bad code): invalid_certificate_code"), "{detail}");
    assert!(!detail.contains("GC-2") && !detail.contains("row 3"), "the same row again is not an error: {detail}");
    assert_eq!(certificate(&ledger, "GC-2").map(|c| c.campaign), Some(Some("x".to_owned())));
    assert!(certificate(&ledger, "GC-3").is_none());
    assert_eq!(certificate(&ledger, "GC-1").map(|c| c.nominal), Some(Decimal::new(1000, 2)));
    for bad in [json!([]), json!({"certificates": []}), json!({"code": "GC-9"}), json!(7)] {
        let refused = uploads.handle(&message(topic, 3, bad.clone())).await.unwrap_err();
        assert!(matches!(&refused, HandleError::Reject { code, .. } if code == "invalid_body"), "{bad}: {refused:?}");
    }
    drop(uploads);
    drop(ledger);
    task.await.unwrap();
    db.drop_database().await;
}
