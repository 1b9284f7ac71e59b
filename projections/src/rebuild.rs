//! Rebuilding a read model: fill a new version of its tables from position 0 while the old one
//! serves (the deferred indexes built at the end), then switch readers in one transaction.

use std::io::Write;
use std::time::Instant;

use sqlx::{Connection, PgConnection};

use crate::page::Page;
use crate::runner::{PAGE, ensure, prepare_read_database, retire, views_sql};
use crate::{ApplyError, Memo, Model};

/// Events applied per transaction while a rebuild fills a new version.
const REBUILD_PAGE: i64 = 10_000;

/// An index a rebuild drops before it fills a new version and builds again after.
struct Deferred {
    /// Builds the index; a primary key's or unique constraint's as a plain unique index, so that
    /// the model's indexes can be built side by side (adding a constraint locks its table).
    create: String,
    /// Makes the built index its constraint again (a catalogue change: nothing is scanned).
    attach: Option<String>,
}

/// Drops the named indexes (a primary key's by its constraint) and returns how to build each
/// again, exactly as it was.
async fn defer_indexes(conn: &mut PgConnection, names: &[String]) -> Result<Vec<Deferred>, ApplyError> {
    // Table, index, constraint and its kind, the index's DDL.
    type Found = (String, String, Option<String>, Option<String>, String);
    let found: Vec<Found> = sqlx::query_as(
        "SELECT quote_ident(t.relname), quote_ident(i.relname), quote_ident(c.conname), c.contype::text, \
         pg_get_indexdef(i.oid) \
         FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid \
         LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = t.oid \
         WHERE i.relname = ANY($1) AND pg_table_is_visible(i.oid)",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    let mut deferred = Vec::with_capacity(found.len());
    for (table, index, constraint, kind, create) in found {
        let drop = match &constraint {
            Some(c) => format!("ALTER TABLE {table} DROP CONSTRAINT {c}"),
            None => format!("DROP INDEX {index}"),
        };
        let attach = match (constraint, kind.as_deref()) {
            (None, _) => None,
            (Some(c), Some("p")) => {
                Some(format!("ALTER TABLE {table} ADD CONSTRAINT {c} PRIMARY KEY USING INDEX {index}"))
            }
            (Some(c), Some("u")) => Some(format!("ALTER TABLE {table} ADD CONSTRAINT {c} UNIQUE USING INDEX {index}")),
            (Some(c), kind) => {
                return Err(ApplyError::Database(sqlx::Error::Protocol(format!(
                    "index {index} backs constraint {c} of kind {kind:?}, which a rebuild cannot defer"
                ))));
            }
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut *conn).await?;
        deferred.push(Deferred { create, attach });
    }
    Ok(deferred)
}

/// Builds the deferred indexes over the filled tables, each in one pass sorted in memory where
/// it fits, then gives the constraints their indexes back. With `url`, each index is built on a
/// connection of its own, all at once: a hash index's build is one backend's work, and runs
/// beside a B-tree's.
async fn build_deferred(conn: &mut PgConnection, url: Option<&str>, deferred: &[Deferred]) -> Result<(), ApplyError> {
    const MEMORY: &str = "SET maintenance_work_mem = '256MB'";
    match url {
        Some(url) if deferred.len() > 1 => {
            let build = |create: &str| {
                let create = create.to_owned();
                async move {
                    let mut own = PgConnection::connect(url).await?;
                    sqlx::query(MEMORY).execute(&mut own).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut own).await?;
                    own.close().await?;
                    Ok::<(), ApplyError>(())
                }
            };
            futures_util::future::try_join_all(deferred.iter().map(|d| build(&d.create))).await?;
        }
        _ => {
            sqlx::query(MEMORY).execute(&mut *conn).await?;
            for d in deferred {
                sqlx::raw_sql(sqlx::AssertSqlSafe(d.create.as_str())).execute(&mut *conn).await?;
            }
            sqlx::query("RESET maintenance_work_mem").execute(&mut *conn).await?;
        }
    }
    for attach in deferred.iter().filter_map(|d| d.attach.as_deref()) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(attach)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rebuilds a projection from position 0 into a new version of its tables while the old one
/// keeps serving, then switches readers in one transaction and then drops the old tables. Progress
/// (with rate and ETA) goes to `progress`. Returns the events applied.
pub async fn rebuild(url: &str, model: Model, progress: &mut (dyn Write + Send)) -> Result<i64, ApplyError> {
    rebuild_in(url, None, model, progress).await
}

/// [`rebuild`] with the read models in `read_url`'s database, when it is not the log's.
pub async fn rebuild_in(
    url: &str,
    read_url: Option<&str>,
    model: Model,
    progress: &mut (dyn Write + Send),
) -> Result<i64, ApplyError> {
    // The log is read on a connection of its own, in the same database or not.
    let mut log = PgConnection::connect(url).await?;
    let mut read = PgConnection::connect(read_url.unwrap_or(url)).await?;
    if read_url.is_some() {
        prepare_read_database(&mut read).await?;
    }
    let connect = Connect { log: Some(url), read: Some(read_url.unwrap_or(url)) };
    rebuild_on(&mut read, Some(&mut log), connect, model, progress, false).await
}

/// Where a rebuild may open connections of its own: the log's database, to read pages ahead on
/// a task of their own, and the read models', to build the deferred indexes side by side.
#[derive(Clone, Copy, Default)]
pub(crate) struct Connect<'a> {
    pub(crate) log: Option<&'a str>,
    pub(crate) read: Option<&'a str>,
}

async fn log_head(log: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events").fetch_one(log).await
}

/// A rebuild's pages after `after`, each with the log's head when it was read, read and decoded
/// on a task and connection of their own while the page before is applied, until the log's head
/// is within a page (the rest is applied under the projection's lock). The task stops at the
/// first error, which it hands over, or when the receiver is dropped.
fn read_ahead(url: String, after: i64) -> tokio::sync::mpsc::Receiver<Result<(i64, Page), ApplyError>> {
    let (pages, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let read = async {
            let mut log = PgConnection::connect(&url).await?;
            let mut position = after;
            loop {
                let head = log_head(&mut log).await?;
                if head - position <= PAGE {
                    return Ok(());
                }
                let page = Page::read(&mut log, position, REBUILD_PAGE).await?;
                position = page.last_position().unwrap_or(position);
                if pages.send(Ok((head, page))).await.is_err() {
                    return Ok(());
                }
            }
        };
        if let Err(error) = read.await {
            let _ = pages.send(Err::<(i64, Page), ApplyError>(error)).await;
        }
    });
    receiver
}

/// [`rebuild`] on a connection, one rebuild of a model at a time (a session lock, so an upgrade
/// (`upgrade`) that finds the rebuild already done by another process skips it). The new version is built
/// with this release's layout and records its definition.
pub(crate) async fn rebuild_on(
    conn: &mut PgConnection,
    log: Option<&mut PgConnection>,
    connect: Connect<'_>,
    model: Model,
    progress: &mut (dyn Write + Send),
    upgrade: bool,
) -> Result<i64, ApplyError> {
    sqlx::query("SELECT pg_advisory_lock($1)").bind(model.rebuild_key()).execute(&mut *conn).await?;
    let rebuilt = rebuild_locked(conn, log, connect, model, progress, upgrade).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(model.rebuild_key()).execute(&mut *conn).await;
    let applied = rebuilt?;
    unlocked?;
    Ok(applied)
}

async fn rebuild_locked(
    conn: &mut PgConnection,
    mut log: Option<&mut PgConnection>,
    connect: Connect<'_>,
    model: Model,
    progress: &mut (dyn Write + Send),
    upgrade: bool,
) -> Result<i64, ApplyError> {
    let stored = ensure(conn, model).await?;
    if upgrade && stored == model.definition() {
        // Another process finished the upgrade's rebuild while this one waited for the lock.
        return Ok(0);
    }
    let old: i32 = sqlx::query_scalar("SELECT version FROM projections WHERE name = $1")
        .bind(model.name())
        .fetch_one(&mut *conn)
        .await?;
    let new = old + 1;
    for table in model.tables() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}_v{new}"))).execute(&mut *conn).await?;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(model.create_sql(new))).execute(&mut *conn).await?;
    let deferred = defer_indexes(conn, &model.deferred_indexes(new)).await?;
    let started = Instant::now();
    let mut position = 0;
    let mut applied: i64 = 0;
    // With the log's address, pages are read and decoded on a task of their own, a page ahead
    // of the one being applied; else here, between pages.
    let mut ahead = connect.log.map(|url| read_ahead(url.to_owned(), position));
    // The new version's own: the live runner's belongs to the version that serves.
    let mut memo: Memo = None;
    loop {
        // Fill in transactions of a page each, without the lock, until close to the head.
        let (head, page) = match ahead.as_mut() {
            Some(pages) => match pages.recv().await {
                Some(read) => read?,
                None => break,
            },
            None => {
                let log = match log.as_deref_mut() {
                    Some(log) => log,
                    None => &mut *conn,
                };
                let head = log_head(log).await?;
                if head - position <= PAGE {
                    break;
                }
                (head, Page::read(log, position, REBUILD_PAGE).await?)
            }
        };
        let last = page.last_position().unwrap_or(position);
        let mut tx = conn.begin().await?;
        // The new version serves nobody yet: a crash loses at most pages a rebuild redoes.
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        model.apply(&mut tx, new, &page.view(), &mut memo).await?;
        tx.commit().await?;
        position = last;
        applied += page.events.len() as i64;
        let rate = applied as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let eta = (head - position) as f64 / rate.max(1.0);
        let _ = write!(
            progress,
            "\rrebuilding {} v{new}: {position}/{head} ({:.0}%) {rate:.0} events/s, ETA {eta:.0}s   ",
            model.name(),
            100.0 * position as f64 / head.max(1) as f64
        );
        let _ = progress.flush();
    }
    // The deferred indexes, before readers see the tables.
    if !deferred.is_empty() {
        let _ = write!(progress, "\rrebuilding {} v{new}: indexing                                  ", model.name());
        let _ = progress.flush();
        build_deferred(conn, connect.read, &deferred).await?;
    }
    // The switch: under the projection's lock, apply the rest, then point readers at the new
    // version, all in one transaction. The live runner continues on the new version.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(model.lock_key()).execute(&mut *tx).await?;
    loop {
        let page = match log.as_deref_mut() {
            Some(log) => Page::read(log, position, PAGE).await?,
            None => Page::read(&mut tx, position, PAGE).await?,
        };
        let Some(last) = page.last_position() else { break };
        model.apply(&mut tx, new, &page.view(), &mut memo).await?;
        position = last;
        applied += page.events.len() as i64;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(views_sql(model, new))).execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE projections SET version = $2, checkpoint = $3, definition = $4, halted_position = NULL, \
         halted_error = NULL, updated_at = now() WHERE name = $1",
    )
    .bind(model.name())
    .bind(new)
    .bind(position)
    .bind(model.definition())
    .execute(&mut *tx)
    .await?;
    retire(&mut tx, model).await?;
    tx.commit().await?;
    // The old version's tables go once readers are switched, so the switch does not wait for
    // their files to be removed (a crash before leaves them to the next start: `ensure`).
    for table in model.tables() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}_v{old}"))).execute(&mut *conn).await?;
    }
    let rate = applied as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let _ = writeln!(
        progress,
        "\rrebuilt {} v{new}: {applied} events in {:.1}s ({rate:.0} events/s)        ",
        model.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(applied)
}
