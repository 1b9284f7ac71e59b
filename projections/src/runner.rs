//! Running projections: catch up from the checkpoint, then follow the log live (LISTEN/NOTIFY
//! with a polling fallback). Rebuilding: fill a new version from position 0, then switch.

use std::time::Duration;

use ledger_store::follow::{FollowConfig, Progress, halt};
use ledger_store::followers::Follower;
use ledger_store::tail::{Tail, TailReader};
use sqlx::{Connection, PgConnection};
use tracing::{error, info};

use crate::page::Page;
use crate::{ApplyError, Memo, Model};

/// Each model's [`Memo`], by name.
type Memos = std::collections::HashMap<&'static str, Memo>;

/// Events applied per transaction.
pub const PAGE: i64 = 2000;

/// Creates the projection's row and version-1 tables and views if they do not exist yet.
/// Returns the layout definition its tables were built with; tables of an older definition are
/// left untouched (they serve until [`rebuild`](crate::rebuild) replaces them), a newer one is refused.
pub(crate) async fn ensure(conn: &mut PgConnection, model: Model) -> Result<i32, ApplyError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(model.lock_key()).execute(&mut *tx).await?;
    let stored: Option<(i32, i32)> = sqlx::query_as("SELECT version, definition FROM projections WHERE name = $1")
        .bind(model.name())
        .fetch_optional(&mut *tx)
        .await?;
    let definition = match stored {
        None => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(model.create_sql(1))).execute(&mut *tx).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(views_sql(model, 1))).execute(&mut *tx).await?;
            retire(&mut tx, model).await?;
            sqlx::query("INSERT INTO projections (name, version, definition) VALUES ($1, 1, $2)")
                .bind(model.name())
                .bind(model.definition())
                .execute(&mut *tx)
                .await?;
            model.definition()
        }
        Some((_, stored)) if stored > model.definition() => {
            return Err(ApplyError::Newer { name: model.name(), stored, known: model.definition() });
        }
        Some((v, stored)) if stored == model.definition() => {
            drop_older_versions(&mut tx, model, v).await?;
            // Tables a newer release added to this version (all DDL is IF NOT EXISTS), and
            // their views.
            sqlx::raw_sql(sqlx::AssertSqlSafe(model.create_sql(v))).execute(&mut *tx).await?;
            for (view, select) in views(model, v) {
                let exists: bool =
                    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(view).fetch_one(&mut *tx).await?;
                if !exists {
                    let view = format!("CREATE VIEW {view} AS {select}");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(view)).execute(&mut *tx).await?;
                }
            }
            stored
        }
        Some((v, stored)) => {
            drop_older_versions(&mut tx, model, v).await?;
            stored
        }
    };
    tx.commit().await?;
    Ok(definition)
}

/// Drops the tables of `model`'s versions before `v`: a rebuild drops its old version's tables
/// once readers are switched to the new one, and a crash in between leaves them to this.
async fn drop_older_versions(conn: &mut PgConnection, model: Model, v: i32) -> Result<(), ApplyError> {
    for table in model.tables() {
        let prefix = format!("{table}_v");
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND starts_with(relname, $1) \
             AND pg_table_is_visible(oid)",
        )
        .bind(&prefix)
        .fetch_all(&mut *conn)
        .await?;
        for name in names {
            if name.strip_prefix(&prefix).and_then(|n| n.parse::<i32>().ok()).is_some_and(|n| n < v) {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}"))).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

/// The views readers read of version `v`: one per table, then those derived from the tables.
fn views(model: Model, v: i32) -> Vec<(&'static str, String)> {
    let mut views: Vec<(&'static str, String)> =
        model.tables().iter().map(|t| (*t, format!("SELECT * FROM {t}_v{v}"))).collect();
    views.extend(model.derived_views(v));
    views
}

pub(crate) fn views_sql(model: Model, v: i32) -> String {
    views(model, v)
        .into_iter()
        .map(|(t, select)| format!("DROP VIEW IF EXISTS {t}; CREATE VIEW {t} AS {select};"))
        .collect()
}

/// Drops what earlier layouts left that no version of `model` has: the retired tables (and their
/// view, unless `model` keeps the name), and the rows of the read models it replaced.
pub(crate) async fn retire(conn: &mut PgConnection, model: Model) -> Result<(), ApplyError> {
    let kept: Vec<&str> = views(model, 0).into_iter().map(|(t, _)| t).collect();
    for table in model.retired_tables() {
        if !kept.contains(table) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP VIEW IF EXISTS {table}"))).execute(&mut *conn).await?;
        }
        let versions: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_class WHERE relkind IN ('r', 'p') AND relname ~ ('^' || $1 || '_v[0-9]+$') \
             AND pg_table_is_visible(oid)",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        for name in versions {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {name}"))).execute(&mut *conn).await?;
        }
    }
    if !model.replaces().is_empty() {
        sqlx::query("DELETE FROM projections WHERE name = ANY($1)").bind(model.replaces()).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies the next page, if any, in one transaction with the checkpoint. Returns how many
/// events it applied (0: caught up, or halted).
pub async fn step(conn: &mut PgConnection, model: Model) -> Result<usize, ApplyError> {
    advance(conn, None, None, &[model], &mut Memos::new()).await.map(|(applied, _)| applied)
}

/// Applies the next page to every model in `models` in one transaction: the page is read and
/// decoded once, each model applies the part after its own checkpoint (under a savepoint) and
/// moves its checkpoint. A poison event halts the model it poisons, recorded in the same
/// transaction; the others go on. Returns the events read and the slowest checkpoint of the
/// models still running (`None`: every one is halted). The read models and their checkpoints
/// live on `read`; the log is read there too, or on `log` when the read models have a database
/// of their own (the log is append-only, so reading it outside the transaction changes nothing:
/// a page that fails to apply is read again after the rollback). With `tail`, a page the
/// writer in this process has just committed comes from memory instead of the log.
async fn advance(
    read: &mut PgConnection,
    log: Option<&mut PgConnection>,
    tail: Option<&mut TailReader>,
    models: &[Model],
    memos: &mut Memos,
) -> Result<(usize, Option<i64>), ApplyError> {
    let mut tx = read.begin().await?;
    // Read models are derived: rows and checkpoint stay atomic, but need not wait for the disk.
    // After a crash both roll back together and the events are applied again.
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
    // One applier per projection; locks are always taken in the order of their keys, in one
    // round trip, so two runners never wait on each other in a circle.
    let mut wanted: Vec<Model> = models.to_vec();
    wanted.sort_by_key(|m| m.lock_key());
    wanted.dedup();
    let keys: Vec<i64> = wanted.iter().map(|m| m.lock_key()).collect();
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS x(k, n) ORDER BY n")
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    let names: Vec<&str> = wanted.iter().map(|m| m.name()).collect();
    let rows: Vec<(String, i32, i64, Option<i64>)> =
        sqlx::query_as("SELECT name, version, checkpoint, halted_position FROM projections WHERE name = ANY($1)")
            .bind(&names)
            .fetch_all(&mut *tx)
            .await?;
    let mut active = Vec::with_capacity(wanted.len());
    for model in wanted {
        let (_, version, checkpoint, halted) =
            rows.iter().find(|r| r.0 == model.name()).ok_or(sqlx::Error::RowNotFound)?;
        if halted.is_none() {
            active.push((model, *version, *checkpoint));
        }
    }
    let Some(from) = active.iter().map(|(_, _, checkpoint)| *checkpoint).min() else { return Ok((0, None)) };
    let page = match (tail.and_then(|t| t.page(from, PAGE as usize)), log) {
        (Some(records), Some(log)) => Page::of(log, records).await,
        (Some(records), None) => Page::of(&mut tx, records).await,
        (None, Some(log)) => Page::read(log, from, PAGE).await,
        (None, None) => Page::read(&mut tx, from, PAGE).await,
    };
    let page = match page {
        Ok(page) => page,
        // An event that cannot be decoded stops every model that has not passed it.
        Err(ApplyError::Poison { position, error }) => {
            for (model, _, checkpoint) in &active {
                if *checkpoint < position {
                    error!(projection = model.name(), position, error, "projection halted on a poison event");
                    halt(&mut tx, model.name(), position, &error).await?;
                }
            }
            tx.commit().await?;
            return Ok((0, active.iter().map(|a| a.2).filter(|c| *c >= position).min()));
        }
        Err(e) => return Err(e),
    };
    let mut slowest: Option<i64> = None;
    for (model, version, checkpoint) in active {
        let mut part = page.after(checkpoint);
        let mut halted = false;
        // Apply the part; on poison, halt there and apply what came before it.
        while let Some(last) = part.last_position() {
            sqlx::query("SAVEPOINT model").execute(&mut *tx).await?;
            match model.apply(&mut tx, version, &part, memos.entry(model.name()).or_default()).await {
                Ok(()) => {
                    sqlx::query("RELEASE SAVEPOINT model").execute(&mut *tx).await?;
                    sqlx::query("UPDATE projections SET checkpoint = $2, updated_at = now() WHERE name = $1")
                        .bind(model.name())
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                    if !halted {
                        slowest = Some(slowest.map_or(last, |s| s.min(last)));
                    }
                    break;
                }
                Err(ApplyError::Poison { position, error }) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT model").execute(&mut *tx).await?;
                    error!(projection = model.name(), position, error, "projection halted on a poison event");
                    halt(&mut tx, model.name(), position, &error).await?;
                    halted = true;
                    part = part.before(position);
                }
                Err(e) => return Err(e),
            }
        }
        if part.events.is_empty() && !halted {
            slowest = Some(slowest.map_or(checkpoint, |s| s.min(checkpoint)));
        }
    }
    tx.commit().await?;
    Ok((page.events.len(), slowest))
}

/// How a runner follows the log once caught up.
#[derive(Clone, Copy, Debug)]
pub struct Follow {
    /// Poll this often when no notification arrives.
    pub poll: Duration,
    /// After a notification, wait this long so that one transaction covers many commits.
    pub linger: Duration,
}

impl Default for Follow {
    fn default() -> Self {
        Follow { poll: Duration::from_secs(1), linger: Duration::from_millis(50) }
    }
}

/// Runs one projection until `stop` turns true: catches up, then waits for notifications
/// (or polls). A poison event halts it and is recorded; database errors are retried.
pub async fn run(url: &str, model: Model, follow_with: Follow, stop: tokio::sync::watch::Receiver<bool>) {
    run_reporting(url, None, &[model], follow_with, stop, None).await
}

/// `run` for several models reading each page once, reporting each checkpoint to the writer's
/// backpressure (`ledger up` does this). The loop is the log's one follower loop
/// (`ledger_store::follow`); what a step does is [`ReadModels`]'. With `read_url`, the read
/// models and their checkpoints live in that database, and only the log is read from `url`.
pub async fn run_reporting(
    url: &str,
    read_url: Option<&str>,
    models: &[Model],
    follow_with: Follow,
    stop: tokio::sync::watch::Receiver<bool>,
    follower: Option<Follower>,
) {
    run_in_process(url, read_url, models, follow_with, stop, follower, None).await
}

/// `run_reporting` beside the writer: pages it has just committed are taken from its `tail`.
pub async fn run_in_process(
    url: &str,
    read_url: Option<&str>,
    models: &[Model],
    follow_with: Follow,
    stop: tokio::sync::watch::Receiver<bool>,
    follower: Option<Follower>,
    tail: Option<&Tail>,
) {
    let config = FollowConfig {
        page: PAGE as usize,
        poll: follow_with.poll,
        linger: follow_with.linger,
        ..FollowConfig::default()
    };
    let mut runner = ReadModels::new(models);
    runner.log_url = Some(url.to_owned());
    runner.read_url = read_url.map(str::to_owned);
    runner.tail = tail.map(Tail::reader);
    ledger_store::follow::run(url, &mut runner, config, stop, follower.as_ref()).await
}

/// Read models as one follower of the log: each page is read and decoded once and applied to
/// every model past its own checkpoint (`advance`).
pub struct ReadModels<'a> {
    pub models: &'a [Model],
    /// The log's database, where a rebuild on upgrade opens connections of its own.
    pub log_url: Option<String>,
    /// The database of the read models and their checkpoints, when it is not the log's.
    pub read_url: Option<String>,
    read: Option<PgConnection>,
    /// The writer's commits, when it runs in this process.
    pub tail: Option<TailReader>,
    /// What each model kept from the last page it applied.
    memos: Memos,
}

impl<'a> ReadModels<'a> {
    pub fn new(models: &'a [Model]) -> ReadModels<'a> {
        ReadModels { models, log_url: None, read_url: None, read: None, tail: None, memos: Memos::new() }
    }
}

impl ledger_store::follow::Follow for ReadModels<'_> {
    type Error = ApplyError;

    fn name(&self) -> String {
        let names: Vec<&str> = self.models.iter().map(|m| m.name()).collect();
        format!("projections {}", names.join(", "))
    }

    async fn prepare(&mut self, conn: &mut PgConnection) -> Result<bool, ApplyError> {
        // A new connection to the log: a new one to the read database too.
        self.read = None;
        if let Some(url) = &self.read_url {
            let mut read = PgConnection::connect(url).await?;
            prepare_read_database(&mut read).await?;
            self.read = Some(read);
        }
        for model in self.models {
            let (read, log) = match self.read.as_mut() {
                Some(read) => (read, Some(&mut *conn)),
                None => (&mut *conn, None),
            };
            let stored = ensure(read, *model).await?;
            if stored < model.definition() {
                // An upgrade changed this model's tables: rebuild it into its next version while
                // the old one serves, then follow the log with the rest.
                info!(
                    projection = model.name(),
                    from = stored,
                    to = model.definition(),
                    "rebuilding a read model whose layout definition changed"
                );
                let connect = crate::rebuild::Connect {
                    log: self.log_url.as_deref(),
                    read: self.read_url.as_deref().or(self.log_url.as_deref()),
                };
                crate::rebuild::rebuild_on(read, log, connect, *model, &mut std::io::sink(), true).await?;
            }
        }
        Ok(true)
    }

    async fn step(&mut self, conn: &mut PgConnection) -> Result<Progress, ApplyError> {
        let tail = self.tail.as_mut();
        let (read, checkpoint) = match self.read.as_mut() {
            Some(read) => advance(read, Some(conn), tail, self.models, &mut self.memos).await?,
            None => advance(conn, None, tail, self.models, &mut self.memos).await?,
        };
        Ok(Progress { read, checkpoint })
    }
}

/// Creates the bookkeeping a database of read models needs (the `projections` table, as the
/// log's database has it from its migrations) if it is missing. Nothing else of the log's
/// schema goes there.
pub async fn prepare_read_database(read: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS projections (name TEXT PRIMARY KEY, version INTEGER NOT NULL, \
         checkpoint BIGINT NOT NULL DEFAULT 0, halted_position BIGINT, halted_error TEXT, \
         updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), definition INTEGER NOT NULL DEFAULT 1)",
    )
    .execute(read)
    .await
    .map(drop)
}

pub use ledger_store::follow::{ProjectionStatus, status, status_with};
