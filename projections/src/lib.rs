//! Projections: named consumers of the ordered log that build read models. Each writes its rows
//! and its checkpoint in one transaction, so a crash never double-counts or skips; each can be
//! rebuilt from position 0 into a new version of its tables while the old one keeps serving.

pub mod audit;
pub mod certificates;
mod models;
pub mod orders;
mod page;
pub mod payouts;
mod rebuild;
pub use page::PageView;
pub mod read;
pub mod recon;
pub mod runner;
pub mod wallet;

pub use rebuild::{rebuild, rebuild_in};
pub use runner::{
    Follow, ProjectionStatus, prepare_read_database, run, run_in_process, run_reporting, status, status_with, step,
};

/// A read model: tables built from the log, with a checkpoint (a row of `projections`) of its
/// own. Each page reaches it once, in order, in the same transaction as its checkpoint; it can
/// be rebuilt into a new version of its tables while the old one serves. A domain adds one by
/// implementing this trait and listing it where the runner starts (`Model::new`); the runner
/// never knows which read models exist.
pub trait ReadModel: Send + Sync {
    /// Its row in `projections`, its name on the command line.
    fn name(&self) -> &'static str;
    /// The stable names readers use (views); `{table}_v{version}` holds the rows.
    fn tables(&self) -> &'static [&'static str];
    /// The DDL of version `v` of its tables, `IF NOT EXISTS` throughout.
    fn create_sql(&self, v: i32) -> String;
    /// Views over version `v`'s tables for names readers keep using though no table of theirs
    /// exists (name, `SELECT`): a layout that folded a table into another keeps its name so.
    fn derived_views(&self, _v: i32) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Tables of earlier layouts that no version of this one has (its own, or those of a read
    /// model it replaced): every `{name}_v{n}` is dropped when a version of this one is switched in.
    fn retired_tables(&self) -> &'static [&'static str] {
        &[]
    }
    /// Read models this one replaced: their `projections` rows go when a version of this one is
    /// switched in.
    fn replaces(&self) -> &'static [&'static str] {
        &[]
    }
    /// The definition of its layout: raise it whenever `create_sql` or `apply` changes what is
    /// stored. Tables built with an older definition are rebuilt into the next version (the
    /// old one serving meanwhile) when a runner starts; a newer one is refused.
    fn definition(&self) -> i32 {
        1
    }
    /// Indexes of version `v` that `apply` never reads (by name; a primary key's index is
    /// `{table}_pkey`): a rebuild drops them before its bulk fill and builds each in one pass
    /// at the end, before the switch, instead of growing them row by row.
    fn deferred_indexes(&self, _v: i32) -> Vec<String> {
        Vec::new()
    }
    /// Applies a run of a page to version `v` of its tables. An event it cannot apply is
    /// `ApplyError::Poison`: the model halts there. `memo` is what this model kept in memory
    /// after the page its runner gave it before (see [`Memo`]).
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::PgConnection,
        v: i32,
        page: &'a page::PageView<'a>,
        memo: &'a mut Memo,
    ) -> Applying<'a>;
}

/// What a read model keeps in memory from one page it applies to the next, one per model and
/// runner (a rebuild has its own): the rows it just wrote, say, so that the next page need not
/// read them back. A cache, never the truth: the runner may hand it over after a page that was
/// rolled back, or after other processes applied pages, so the model checks that it still
/// holds (positions are consecutive) and is correct with it empty.
pub type Memo = Option<Box<dyn std::any::Any + Send>>;

/// What `ReadModel::apply` returns.
pub type Applying<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApplyError>> + Send + 'a>>;

/// A handle to a registered read model (compared by name).
#[derive(Clone, Copy)]
pub struct Model(&'static dyn ReadModel);

#[allow(non_upper_case_globals)]
impl Model {
    /// Balances (posted, pending, available) per account, and the history of every event that
    /// touched an account (the balance history and the account events are views of it).
    pub const Balances: Model = Model(&models::BalancesModel);
    /// Transfers with their legs, filterable by account, time, status, channel and metadata.
    pub const Journal: Model = Model(&models::JournalModel);
    /// Posted debits and credits per account per day.
    pub const Turnover: Model = Model(&models::TurnoverModel);

    /// Gift certificates: state, balance and links, operations, and the audit trail.
    pub const Certificates: Model = Model(&certificates::CertificatesModel);
    /// Payouts: requests, payouts, cash-payment-facts, and each client's payout history.
    pub const Payouts: Model = Model(&payouts::PayoutsModel);
    /// P2P orders: every order by store, trader, status and time, and the order each ledger
    /// movement of its money belongs to.
    pub const Orders: Model = Model(&orders::OrdersModel);
    /// The gaming wallet: players with their balances, deposits, withdrawals with their saga's
    /// steps, rounds with their bets, wins and rollbacks, bonuses, and every movement of a
    /// player's money with its account's balance after it.
    pub const Wallet: Model = Model(&wallet::WalletModel);
    /// The audit log: one row per entry.
    pub const Audit: Model = Model(&audit::AuditModel);

    /// The ledger's own read models, in the order their locks are taken.
    pub const ALL: [Model; 3] = [Model::Balances, Model::Journal, Model::Turnover];
    /// Every read model `ledger up` runs: the ledger's own, then each domain's (a domain adds
    /// its own here).
    pub const EVERY: [Model; 8] = [
        Model::Balances,
        Model::Journal,
        Model::Turnover,
        Model::Certificates,
        Model::Payouts,
        Model::Orders,
        Model::Wallet,
        Model::Audit,
    ];

    pub const fn new(model: &'static dyn ReadModel) -> Model {
        Model(model)
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn parse(name: &str) -> Option<Model> {
        Model::EVERY.into_iter().find(|m| m.name() == name)
    }

    pub fn tables(self) -> &'static [&'static str] {
        self.0.tables()
    }

    fn create_sql(self, v: i32) -> String {
        self.0.create_sql(v)
    }

    fn derived_views(self, v: i32) -> Vec<(&'static str, String)> {
        self.0.derived_views(v)
    }

    fn retired_tables(self) -> &'static [&'static str] {
        self.0.retired_tables()
    }

    fn replaces(self) -> &'static [&'static str] {
        self.0.replaces()
    }

    pub fn definition(self) -> i32 {
        self.0.definition()
    }

    fn deferred_indexes(self, v: i32) -> Vec<String> {
        self.0.deferred_indexes(v)
    }

    /// Advisory lock key: one applier per projection at a time (FNV-1a of the name, so a
    /// model's key does not depend on where it is listed). Another session holding it keeps
    /// every runner of the model waiting.
    pub fn lock_key(self) -> i64 {
        let hash = self
            .name()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        (hash >> 1) as i64
    }

    /// Advisory lock key of its rebuilds: one at a time, whether started by an operator or by
    /// an upgrade.
    fn rebuild_key(self) -> i64 {
        self.lock_key() ^ 0x0052_4542_5549_4c44
    }

    async fn apply(
        self,
        conn: &mut sqlx::PgConnection,
        v: i32,
        page: &page::PageView<'_>,
        memo: &mut Memo,
    ) -> Result<(), ApplyError> {
        self.0.apply(conn, v, page, memo).await
    }
}

impl PartialEq for Model {
    fn eq(&self, other: &Model) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Model {}

impl std::hash::Hash for Model {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An event this projection cannot apply: it halts at that position until an operator acts.
    #[error("position {position}: {error}")]
    Poison { position: i64, error: String },
    /// Its tables were built by a newer release than this one.
    #[error(
        "read model {name} was built with layout definition {stored}; this release knows up to {known}: run the newer release"
    )]
    Newer { name: &'static str, stored: i32, known: i32 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
