//! Binary `COPY` rows against a real Postgres: every type the read models send comes back as it
//! was written, NULLs included; a value that does not fit its declared column type is refused
//! before anything is sent; a row the server refuses leaves the connection usable.

use std::str::FromStr;

use ledger_store::copy::{CopyRows, Jsonb, Type};
use rust_decimal::Decimal;
use sqlx::{Connection, Executor};
use test_support::fresh_database;
use uuid::Uuid;

const TYPES: &[Type] =
    &[Type::UUID, Type::INT4, Type::INT8, Type::BOOL, Type::TEXT, Type::NUMERIC, Type::TIMESTAMPTZ, Type::JSONB];

const COPY: &str = "COPY copied (id, n, position, flag, label, amount, at, doc) FROM STDIN (FORMAT binary)";

type Row = (Uuid, i32, i64, bool, Option<String>, Decimal, time::OffsetDateTime, serde_json::Value);

#[tokio::test]
async fn rows_come_back_as_they_were_written() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    conn.execute(
        "CREATE TABLE copied (id UUID PRIMARY KEY, n INTEGER NOT NULL, position BIGINT NOT NULL, flag BOOLEAN NOT NULL, \
         label TEXT, amount NUMERIC NOT NULL, at TIMESTAMPTZ NOT NULL, doc JSONB NOT NULL)",
    )
    .await
    .unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap();
    let written: Vec<Row> = vec![
        (
            Uuid::new_v4(),
            0,
            1,
            true,
            Some("tab\there \\ new\nline, ünïcode".into()),
            Decimal::from_str("0.01").unwrap(),
            at,
            serde_json::json!({"a": [1, "x"]}),
        ),
        (
            Uuid::new_v4(),
            -7,
            i64::MAX,
            false,
            None,
            Decimal::from_str("-123456789012345678.000000001").unwrap(),
            at,
            serde_json::Value::Null,
        ),
        (Uuid::new_v4(), i32::MAX, 0, true, Some(String::new()), Decimal::ZERO, at, serde_json::json!({})),
    ];
    let mut rows = CopyRows::new(TYPES);
    assert!(rows.is_empty());
    for (id, n, position, flag, label, amount, at, doc) in &written {
        let doc = doc.to_string();
        rows.row(&[id, n, position, flag, &label.as_deref(), amount, at, &Jsonb(&doc)]).unwrap();
    }
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.send(&mut conn, COPY).await.unwrap(), 3);
    let read: Vec<Row> =
        sqlx::query_as("SELECT id, n, position, flag, label, amount, at, doc FROM copied ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut expected = written.clone();
    expected.sort_by_key(|r| r.2);
    assert_eq!(read, expected);
    // Nothing to send: no statement at all (a COPY naming a table that does not exist would fail).
    let none = CopyRows::new(TYPES);
    assert_eq!(none.send(&mut conn, "COPY no_such_table FROM STDIN (FORMAT binary)").await.unwrap(), 0);
    drop(conn);
    db.drop_database().await;
}

#[tokio::test]
async fn a_value_of_another_type_or_a_short_row_is_refused_before_sending() {
    let mut rows = CopyRows::new(&[Type::UUID, Type::INT8]);
    // An i32 is not an int8: Postgres would misread it, so it is refused here.
    let refused = rows.row(&[&Uuid::nil(), &1_i32]).unwrap_err();
    assert!(matches!(refused, sqlx::Error::Encode(_)), "{refused:?}");
    let short = rows.row(&[&Uuid::nil()]).unwrap_err();
    assert!(short.to_string().contains("1 values for 2 columns"), "{short}");
}

#[tokio::test]
async fn a_refused_copy_rolls_back_and_leaves_the_connection_usable() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    conn.execute("CREATE TABLE copied (id UUID PRIMARY KEY, position BIGINT NOT NULL)").await.unwrap();
    let id = Uuid::new_v4();
    let mut tx = conn.begin().await.unwrap();
    let mut rows = CopyRows::new(&[Type::UUID, Type::INT8]);
    rows.row(&[&id, &1_i64]).unwrap();
    rows.row(&[&id, &2_i64]).unwrap();
    let error = rows.send(&mut tx, "COPY copied (id, position) FROM STDIN (FORMAT binary)").await.unwrap_err();
    assert!(error.to_string().contains("duplicate key"), "{error}");
    tx.rollback().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM copied").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 0);
    drop(conn);
    db.drop_database().await;
}
