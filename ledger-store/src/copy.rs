//! Bulk rows for `COPY … FROM STDIN (FORMAT binary)`: what the read models append per page.
//!
//! A page's rows are encoded here, each field against the column type the caller declares (a
//! Rust value that does not fit its declared type is refused before anything is sent), and
//! streamed in one `COPY`. Postgres stores them with its multi-row insert, without unpacking
//! one array per column: about half the server time of `INSERT … SELECT FROM UNNEST` for the
//! same rows.

use bytes::{BufMut, BytesMut};
use sqlx::PgConnection;
pub use tokio_postgres::types::{ToSql, Type};

pub use crate::rows::Jsonb;

/// The signature, flags and header extension of the binary `COPY` format.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows being encoded for one table's `COPY`, their column types fixed at the start.
pub struct CopyRows {
    types: &'static [Type],
    buf: BytesMut,
    rows: u64,
}

impl CopyRows {
    pub fn new(types: &'static [Type]) -> CopyRows {
        let mut buf = BytesMut::with_capacity(8192);
        buf.put_slice(HEADER);
        CopyRows { types, buf, rows: 0 }
    }

    /// How many rows were added.
    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row: a value per declared column, in order.
    pub fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), sqlx::Error> {
        if values.len() != self.types.len() {
            return Err(sqlx::Error::Encode(
                format!("a row of {} values for {} columns", values.len(), self.types.len()).into(),
            ));
        }
        let count = i16::try_from(values.len()).map_err(|e| sqlx::Error::Encode(e.into()))?;
        self.buf.put_i16(count);
        for (ty, value) in self.types.iter().zip(values) {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let len = match value.to_sql_checked(ty, &mut self.buf).map_err(sqlx::Error::Encode)? {
                tokio_postgres::types::IsNull::Yes => -1,
                tokio_postgres::types::IsNull::No => {
                    i32::try_from(self.buf.len() - at - 4).map_err(|e| sqlx::Error::Encode(e.into()))?
                }
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        self.rows += 1;
        Ok(())
    }

    /// Sends the rows with `statement` (a `COPY table (columns) FROM STDIN (FORMAT binary)`
    /// naming the declared columns in order); nothing at all when there are none. Returns the
    /// rows stored.
    pub async fn send(mut self, conn: &mut PgConnection, statement: &str) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        self.buf.put_i16(-1);
        let mut copy = conn.copy_in_raw(statement).await?;
        if let Err(e) = copy.send(self.buf.freeze()).await {
            // The connection is unusable mid-stream anyway; tell the server why if it listens.
            let _ = copy.abort(e.to_string()).await;
            return Err(e);
        }
        let stored = copy.finish().await?;
        if stored != self.rows {
            return Err(sqlx::Error::Protocol(format!("COPY stored {stored} of {} rows", self.rows)));
        }
        Ok(stored)
    }
}
