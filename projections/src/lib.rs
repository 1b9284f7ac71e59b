//! Projections: named consumers of the ordered log that build read models. Each writes its rows
//! and its checkpoint in one transaction, so a crash never double-counts or skips; each can be
//! rebuilt from position 0 into a new version of its tables while the old one keeps serving.

mod models;
mod page;
pub mod read;
pub mod runner;

pub use runner::{Follow, ProjectionStatus, rebuild, run, run_reporting, status, step};

/// The read models. A closed set: each has its own tables and its own checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// Balances (posted, pending, available) per account, and the history of every change.
    Balances,
    /// Transfers with their legs, filterable by account, time, status, channel and metadata.
    Journal,
    /// Every event that touched an account, for auditors.
    AccountEvents,
    /// Posted debits and credits per account per day.
    Turnover,
}

impl Model {
    pub const ALL: [Model; 4] = [Model::Balances, Model::Journal, Model::AccountEvents, Model::Turnover];

    pub fn name(self) -> &'static str {
        match self {
            Model::Balances => "balances",
            Model::Journal => "journal",
            Model::AccountEvents => "account_events",
            Model::Turnover => "turnover",
        }
    }

    pub fn parse(name: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The stable names readers use; `{name}_v{version}` holds the rows.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Model::Balances => &["rm_balances", "rm_balance_history", "rm_balance_clock"],
            Model::Journal => &["rm_transfers", "rm_legs"],
            Model::AccountEvents => &["rm_account_events"],
            Model::Turnover => &["rm_turnover"],
        }
    }

    /// Advisory lock key: one applier per projection at a time.
    fn lock_key(self) -> i64 {
        0x6c65_6467_6572_0100 + self as i64
    }

    async fn apply(self, conn: &mut sqlx::PgConnection, v: i32, page: &page::PageView<'_>) -> Result<(), ApplyError> {
        match self {
            Model::Balances => models::apply_balances(conn, v, page).await,
            Model::Journal => models::apply_journal(conn, v, page).await,
            Model::AccountEvents => models::apply_account_events(conn, v, page).await,
            Model::Turnover => models::apply_turnover(conn, v, page).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An event this projection cannot apply: it halts at that position until an operator acts.
    #[error("position {position}: {error}")]
    Poison { position: i64, error: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
