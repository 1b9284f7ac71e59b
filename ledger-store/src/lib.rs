//! The Postgres event store: an append-only, hash-chained log of events, the current state of
//! accounts and transfers beside it, the single group-commit writer, and `verify`.

pub mod audit;
pub mod config;
pub mod copy;
pub mod follow;
pub mod followers;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod recon;
pub mod record;
pub mod roles;
pub(crate) mod rows;
pub mod sql;
pub mod tail;
pub mod verify;
pub mod view;
pub mod writer;

pub use record::{EventMeta, RecordedEvent, Source};
pub use writer::{Committed, Decision, Entity, LedgerHandle, Standby, WriteError, Writer, WriterConfig};

/// The schema migrations under `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Applies pending migrations.
pub async fn migrate(url: &str) -> Result<(), sqlx::migrate::MigrateError> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await
}
