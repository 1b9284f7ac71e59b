//! The rows of one commit in Postgres' binary format, as arrays of composite values.
//!
//! A commit sends one array per table (`events[]`, `accounts[]`, `transfers[]`, `entities[]`, and the two
//! change types of migration 0007) rather than one array per column: the server unpacks each
//! with a single UNNEST. Every field is encoded against the field type the server reported
//! when the statement was prepared, and refused if the Rust value does not fit it, so a column
//! added to a table without a matching change here fails the first commit loudly instead of
//! writing something else.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use ledger_core::Account;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::record::RecordedEvent;
use crate::sql::{TransferIndex, text, to_time};

type Result = std::result::Result<IsNull, Box<dyn Error + Sync + Send>>;

/// Writes one composite value: the field count, then each field's type oid, length and bytes.
fn record(ty: &Type, out: &mut BytesMut, values: &[&(dyn ToSql + Sync)]) -> Result {
    let Kind::Composite(fields) = ty.kind() else {
        return Err(format!("{} is not a composite type", ty.name()).into());
    };
    if fields.len() != values.len() {
        return Err(format!("{} has {} fields, the writer sends {}", ty.name(), fields.len(), values.len()).into());
    }
    out.put_i32(i32::try_from(fields.len())?);
    for (field, value) in fields.iter().zip(values) {
        out.put_u32(field.type_().oid());
        let at = out.len();
        out.put_i32(0);
        let len = match value.to_sql_checked(field.type_(), out)? {
            IsNull::Yes => -1,
            IsNull::No => i32::try_from(out.len() - at - 4)?,
        };
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(IsNull::No)
}

fn composite(ty: &Type, name: &str) -> bool {
    ty.name() == name && matches!(ty.kind(), Kind::Composite(_))
}

/// JSON text sent as is (`json`: the exact text is kept, and hashed).
#[derive(Debug)]
struct Json<'a>(&'a str);

impl ToSql for Json<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }
    to_sql_checked!();
}

/// JSON text for a `jsonb` column (binary format: version 1, then the text).
#[derive(Debug)]
pub struct Jsonb<'a>(pub &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }
    to_sql_checked!();
}

/// A row of `events`.
#[derive(Debug)]
pub struct EventRow(pub RecordedEvent);

impl ToSql for EventRow {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let e = &self.0;
        record(
            ty,
            out,
            &[
                &e.position,
                &e.event_id,
                &e.stream_id,
                &e.stream_version,
                &e.event_type,
                &e.schema_version,
                &Json(&e.payload),
                &Json(&e.metadata),
                &to_time(e.recorded_at),
                &&e.hash[..],
            ],
        )
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "events")
    }
    to_sql_checked!();
}

/// A row of `accounts`, for an account opened in this commit: (account, first, last position).
#[derive(Debug)]
pub struct NewAccount(pub Account, pub i64, pub i64);

impl ToSql for NewAccount {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let NewAccount(a, first, last) = self;
        let b = &a.balances;
        record(
            ty,
            out,
            &[
                &a.id.0,
                &a.code.as_str(),
                &a.currency.as_str(),
                &text(&a.kind),
                &text(&a.limit),
                &text(&a.status),
                &Jsonb(&a.metadata.to_string()),
                &b.debits_posted,
                &b.credits_posted,
                &b.debits_pending,
                &b.credits_pending,
                &version(a)?,
                &to_time(a.opened_at),
                first,
                last,
            ],
        )
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "accounts")
    }
    to_sql_checked!();
}

/// A `ledger_account_change`: the new balances, status, version and latest position (copied
/// out of the account: nothing else of it is sent).
#[derive(Debug)]
pub struct AccountChange {
    id: uuid::Uuid,
    status: ledger_core::AccountStatus,
    balances: ledger_core::Balances,
    version: u32,
    position: i64,
}

impl AccountChange {
    pub fn new(a: &Account, position: i64) -> AccountChange {
        AccountChange { id: a.id.0, status: a.status, balances: a.balances, version: a.version, position }
    }
}

impl ToSql for AccountChange {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let b = &self.balances;
        record(
            ty,
            out,
            &[
                &self.id,
                &text(&self.status),
                &b.debits_posted,
                &b.credits_posted,
                &b.debits_pending,
                &b.credits_pending,
                &i32::try_from(self.version)?,
                &self.position,
            ],
        )
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "ledger_account_change")
    }
    to_sql_checked!();
}

/// A row of `transfers`, for a transfer created in this commit.
#[derive(Debug)]
pub struct NewTransfer(pub TransferIndex);

impl ToSql for NewTransfer {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let t = &self.0;
        record(ty, out, &[&t.id, &t.status.as_str(), &t.created_position, &t.position, &t.reversed_by])
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "transfers")
    }
    to_sql_checked!();
}

/// A `ledger_transfer_change`: the new status, latest position and reversal.
#[derive(Debug)]
pub struct TransferChange(pub TransferIndex);

impl ToSql for TransferChange {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let t = &self.0;
        record(ty, out, &[&t.id, &t.status.as_str(), &t.position, &t.reversed_by])
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "ledger_transfer_change")
    }
    to_sql_checked!();
}

/// A row of `entities`: (row, first, last position), inserted or replaced whole.
#[derive(Debug)]
pub struct EntityRowOut(pub ledger_core::EntityRow, pub i64, pub i64);

impl ToSql for EntityRowOut {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let EntityRowOut(row, first, last) = self;
        record(
            ty,
            out,
            &[
                &row.id,
                &row.kind.as_str(),
                &row.key.as_str(),
                &i32::try_from(row.version)?,
                first,
                last,
                &Json(&row.state),
            ],
        )
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "entities")
    }
    to_sql_checked!();
}

fn version(a: &Account) -> std::result::Result<i32, Box<dyn Error + Sync + Send>> {
    Ok(i32::try_from(a.version)?)
}

/// A `ledger_entity_change`: an existing entity's new key, version, latest position and state.
#[derive(Debug)]
pub struct EntityChange(pub ledger_core::EntityRow, pub i64);

impl ToSql for EntityChange {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result {
        let EntityChange(row, last) = self;
        record(ty, out, &[&row.id, &row.key.as_str(), &i32::try_from(row.version)?, last, &Json(&row.state)])
    }
    fn accepts(ty: &Type) -> bool {
        composite(ty, "ledger_entity_change")
    }
    to_sql_checked!();
}
