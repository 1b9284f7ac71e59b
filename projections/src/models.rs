//! The read models. Each applies a whole page with a few set-based statements; every balance
//! comes from `ledger_core::ledger::state::balance_deltas`, the function the writer itself uses.

use std::collections::{BTreeMap, HashMap};

use ledger_core::ledger::Event;
use ledger_core::ledger::account::{AccountKind, AccountStatus, Balances};
use ledger_core::ledger::event::{PendingPosted, PendingReleased};
use ledger_core::ledger::state::balance_deltas;
use ledger_core::{AccountId, Posting};
use ledger_store::EventMeta;
use ledger_store::copy::{CopyRows, Jsonb, Type};
use ledger_store::sql::{parse, text, to_time};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::page::PageView;
use crate::{ApplyError, Memo};

/// The built-in read models. Each is a `ReadModel`: its tables (the DDL of version `v`, names
/// ending in `_v{v}`; views without the suffix point at the active version) and its `apply`.
pub struct BalancesModel;
pub struct JournalModel;
pub struct TurnoverModel;

macro_rules! read_model {
    ($model:ident, $name:literal, $definition:literal, $tables:expr, $apply:ident, |$v:ident| $sql:expr, $deferred:expr) => {
        read_model!($model, $name, $definition, $tables, $apply, |$v| $sql, $deferred, {});
    };
    ($model:ident, $name:literal, $definition:literal, $tables:expr, $apply:ident, |$v:ident| $sql:expr, $deferred:expr, { $($extra:tt)* }) => {
        impl crate::ReadModel for $model {
            $($extra)*

            fn name(&self) -> &'static str {
                $name
            }

            fn definition(&self) -> i32 {
                $definition
            }

            fn tables(&self) -> &'static [&'static str] {
                $tables
            }

            fn create_sql(&self, $v: i32) -> String {
                $sql
            }

            fn apply<'a>(
                &'a self,
                conn: &'a mut PgConnection,
                v: i32,
                page: &'a PageView<'a>,
                memo: &'a mut crate::Memo,
            ) -> crate::Applying<'a> {
                Box::pin($apply(conn, v, page, memo))
            }

            fn deferred_indexes(&self, v: i32) -> Vec<String> {
                let names: &[&str] = $deferred;
                names.iter().map(|n| n.replace("{v}", &v.to_string())).collect()
            }
        }
    };
}

// Balances and turnover rows are rewritten by every page that touches their account: half of
// each page is kept free (set on every start, so tables an earlier release built get it too) so
// a rewrite stays on its page without new index entries (a HOT update).
// Definition 2: `rm_account_history` keeps a row per account per event that touched it (its
// type, and its stream on the event's first account), with the balances after it where the event
// moved them. The balance history and the account events (earlier releases' `account_events`
// read model, which kept the same key, account and position, in a table of its own) are views
// of it: one row and one key entry per account an event touches, instead of two. The stream index is a hash index: streams are named
// by random ids, so each entry of a B-tree by stream landed on a random leaf; readers ask for one
// stream at a time (`stream_id = $1`) and sort its few positions.
read_model!(
    BalancesModel,
    "balances",
    2,
    &["rm_balances", "rm_account_history", "rm_balance_clock"],
    apply_balances,
    |v| format!(
        "CREATE TABLE IF NOT EXISTS rm_balances_v{v} (account_id UUID PRIMARY KEY, code TEXT NOT NULL, \
         currency TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, debits_posted NUMERIC NOT NULL, \
         credits_posted NUMERIC NOT NULL, debits_pending NUMERIC NOT NULL, credits_pending NUMERIC NOT NULL, \
         balance NUMERIC NOT NULL, available NUMERIC NOT NULL, position BIGINT NOT NULL, \
         updated_at TIMESTAMPTZ NOT NULL); \
         ALTER TABLE rm_balances_v{v} SET (fillfactor = 50); \
         CREATE UNIQUE INDEX IF NOT EXISTS rm_balances_v{v}_code ON rm_balances_v{v} (code); \
         CREATE TABLE IF NOT EXISTS rm_account_history_v{v} (account_id UUID NOT NULL, position BIGINT NOT NULL, \
         recorded_at TIMESTAMPTZ NOT NULL, event_type TEXT NOT NULL, stream_id TEXT, debits_posted NUMERIC, \
         credits_posted NUMERIC, debits_pending NUMERIC, credits_pending NUMERIC, balance NUMERIC, \
         available NUMERIC, PRIMARY KEY (account_id, position)); \
         CREATE INDEX IF NOT EXISTS rm_account_history_v{v}_stream ON rm_account_history_v{v} USING hash (stream_id) \
         WHERE stream_id IS NOT NULL; \
         CREATE TABLE IF NOT EXISTS rm_balance_clock_v{v} (position BIGINT PRIMARY KEY, \
         recorded_at TIMESTAMPTZ NOT NULL); \
         CREATE INDEX IF NOT EXISTS rm_balance_clock_v{v}_time ON rm_balance_clock_v{v} (recorded_at);"
    ),
    &["rm_account_history_v{v}_pkey", "rm_account_history_v{v}_stream"],
    {
        fn derived_views(&self, v: i32) -> Vec<(&'static str, String)> {
            vec![
                // The balance changes: the rows of events that moved the account's balances.
                (
                    "rm_balance_history",
                    format!(
                        "SELECT account_id, position, recorded_at, debits_posted, credits_posted, debits_pending, \
                         credits_pending, balance, available FROM rm_account_history_v{v} WHERE balance IS NOT NULL"
                    ),
                ),
                (
                    "rm_account_events",
                    format!("SELECT account_id, position, event_type, stream_id FROM rm_account_history_v{v}"),
                ),
            ]
        }

        fn retired_tables(&self) -> &'static [&'static str] {
            &["rm_balance_history", "rm_account_events"]
        }

        fn replaces(&self) -> &'static [&'static str] {
            &["account_events"]
        }
    }
);
// Definition 2: legs are keyed by the position of their transfer's creation, so a page's legs
// append to the key instead of landing at random places of an index of transfer ids.
// Definition 3: transfers without an external reference or metadata stay out of those indexes.
// Definition 4: a transfer's legs are three arrays on its own row (accounts, sides, amounts, in
// order), and `rm_legs` is a view unnesting them: no row and no index entries per leg. The
// journal's filter by account goes through the account events (a row per account an event
// touches, keyed by account and position), which kept the same entries as the legs' index by
// account. Transfers are keyed by the position that created them (the key grows at its end) and
// found by id through a hash index (ids are random: a B-tree entry per transfer landed on a
// random leaf); the log keeps ids unique.
read_model!(
    JournalModel,
    "journal",
    4,
    &["rm_transfers"],
    apply_journal,
    |v| format!(
        "CREATE TABLE IF NOT EXISTS rm_transfers_v{v} (id UUID NOT NULL, status TEXT NOT NULL, \
         pending BOOLEAN NOT NULL, external_ref TEXT, channel TEXT, initiator TEXT, metadata JSONB NOT NULL, \
         created_at TIMESTAMPTZ NOT NULL, created_position BIGINT PRIMARY KEY, position BIGINT NOT NULL, \
         timeout_at TIMESTAMPTZ, reverses UUID, reversed_by UUID, posted JSONB, leg_accounts UUID[] NOT NULL, \
         leg_sides TEXT[] NOT NULL, leg_amounts NUMERIC[] NOT NULL); \
         CREATE INDEX IF NOT EXISTS rm_transfers_v{v}_id ON rm_transfers_v{v} USING hash (id); \
         CREATE INDEX IF NOT EXISTS rm_transfers_v{v}_channel ON rm_transfers_v{v} (channel, created_position); \
         CREATE INDEX IF NOT EXISTS rm_transfers_v{v}_ref ON rm_transfers_v{v} (external_ref) \
         WHERE external_ref IS NOT NULL; \
         CREATE INDEX IF NOT EXISTS rm_transfers_v{v}_metadata ON rm_transfers_v{v} USING gin (metadata jsonb_path_ops) \
         WHERE metadata NOT IN ('{{}}'::jsonb, 'null'::jsonb);"
    ),
    &["rm_transfers_v{v}_id", "rm_transfers_v{v}_channel", "rm_transfers_v{v}_ref", "rm_transfers_v{v}_metadata"],
    {
        fn derived_views(&self, v: i32) -> Vec<(&'static str, String)> {
            vec![(
                "rm_legs",
                format!(
                    "SELECT t.id AS transfer_id, (l.n - 1)::integer AS n, l.account_id, l.side, l.amount, \
                     t.created_position AS position FROM rm_transfers_v{v} t CROSS JOIN LATERAL \
                     unnest(t.leg_accounts, t.leg_sides, t.leg_amounts) WITH ORDINALITY AS l(account_id, side, amount, n)"
                ),
            )]
        }

        fn retired_tables(&self) -> &'static [&'static str] {
            &["rm_legs"]
        }
    }
);
read_model!(
    TurnoverModel,
    "turnover",
    1,
    &["rm_turnover"],
    apply_turnover,
    |v| format!(
        "CREATE TABLE IF NOT EXISTS rm_turnover_v{v} (account_id UUID NOT NULL, day DATE NOT NULL, \
         debits NUMERIC NOT NULL, credits NUMERIC NOT NULL, PRIMARY KEY (account_id, day)); \
         ALTER TABLE rm_turnover_v{v} SET (fillfactor = 50);"
    ),
    &[]
);

/// The accounts an event touches: its own account, or the accounts of the transfer's postings.
fn accounts_of<'a>(event: &'a Event, page: &'a PageView<'a>, position: i64) -> Result<Vec<AccountId>, ApplyError> {
    let postings: &[Posting] = match event {
        Event::AccountOpened(e) => return Ok(vec![e.id]),
        Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => return Ok(vec![e.id]),
        Event::TransferPosted(e) | Event::PendingTransferCreated(e) => &e.postings,
        Event::PendingTransferPosted(PendingPosted { id, .. })
        | Event::PendingTransferVoided(PendingReleased { id, .. })
        | Event::PendingTransferExpired(PendingReleased { id, .. }) => page.held(*id, position)?,
    };
    let mut ids: Vec<AccountId> = Vec::with_capacity(postings.len());
    for p in postings {
        if !ids.contains(&p.account) {
            ids.push(p.account);
        }
    }
    Ok(ids)
}

struct BalanceRow {
    code: String,
    currency: String,
    kind: AccountKind,
    status: AccountStatus,
    balances: Balances,
    position: i64,
    updated_at: ledger_core::Timestamp,
}

/// The balances rows as the last page this runner applied to version `version` left them,
/// through position `after`.
struct Written {
    version: i32,
    after: i64,
    rows: HashMap<AccountId, BalanceRow>,
}

/// Rows kept between pages at most: beyond, a page reads back what it touches.
const MAX_REMEMBERED: usize = 1_000_000;

pub async fn apply_balances(
    conn: &mut PgConnection,
    v: i32,
    page: &PageView<'_>,
    memo: &mut Memo,
) -> Result<(), ApplyError> {
    let (Some(first), Some(last)) = (page.events.first(), page.events.last()) else { return Ok(()) };
    let (first, last) = (first.0.position, last.0.position);
    // What the page before left, if this page follows right on from it: else a page was
    // rolled back since, or another process applied pages meanwhile.
    let mut written = match memo.take().and_then(|m| m.downcast::<Written>().ok()) {
        Some(w) if w.version == v && w.after + 1 == first => w.rows,
        _ => HashMap::new(),
    };
    let mut touched: Vec<Uuid> = Vec::new();
    for (record, event) in page.ledger() {
        touched.extend(accounts_of(event, page, record.position)?.into_iter().map(|a| a.0));
    }
    touched.sort();
    touched.dedup();
    let mut rows: HashMap<AccountId, BalanceRow> = HashMap::with_capacity(touched.len());
    let mut unknown: Vec<Uuid> = Vec::new();
    for id in &touched {
        match written.remove(&AccountId(*id)) {
            Some(row) => drop(rows.insert(AccountId(*id), row)),
            None => unknown.push(*id),
        }
    }
    let sql = format!(
        "SELECT account_id, code, currency, kind, status, debits_posted, credits_posted, debits_pending, \
         credits_pending, position, updated_at FROM rm_balances_v{v} WHERE account_id = ANY($1)"
    );
    type Stored = (Uuid, String, String, String, String, Decimal, Decimal, Decimal, Decimal, i64, time::OffsetDateTime);
    let stored: Vec<Stored> = if unknown.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&unknown).fetch_all(&mut *conn).await?
    };
    for (id, code, currency, kind, status, dp, cp, dh, ch, position, updated_at) in stored {
        rows.insert(
            AccountId(id),
            BalanceRow {
                code,
                currency,
                kind: parse("kind", kind)?,
                status: parse("status", status)?,
                balances: Balances { debits_posted: dp, credits_posted: cp, debits_pending: dh, credits_pending: ch },
                position,
                updated_at: ledger_store::sql::from_time(updated_at),
            },
        );
    }
    // A row per account per event: its type, its stream on the first account, and the balances
    // after it where it moved them.
    let mut history: Vec<HistoryRow> = Vec::new();
    for (record, event) in page.ledger() {
        let poison = |error: String| ApplyError::Poison { position: record.position, error };
        let missing = |id: AccountId| poison(format!("account {id} is not opened"));
        let accounts = accounts_of(event, page, record.position)?;
        // The accounts whose balances the event moved.
        let moved = match event {
            Event::AccountOpened(e) => {
                rows.insert(
                    e.id,
                    BalanceRow {
                        code: e.code.clone(),
                        currency: e.currency.to_string(),
                        kind: e.kind,
                        status: AccountStatus::Open,
                        balances: Balances::default(),
                        position: record.position,
                        updated_at: record.recorded_at,
                    },
                );
                BTreeMap::new()
            }
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => {
                let row = rows.get_mut(&e.id).ok_or_else(|| missing(e.id))?;
                row.status = match event {
                    Event::AccountFrozen(_) => AccountStatus::Frozen,
                    Event::AccountUnfrozen(_) => AccountStatus::Open,
                    _ => AccountStatus::Closed,
                };
                row.position = record.position;
                row.updated_at = record.recorded_at;
                BTreeMap::new()
            }
            _ => {
                // A settling event whose hold is not in the log is poison (`accounts_of` checks).
                let deltas = balance_deltas(event, |id| page.held.get(&id).map_or(&[], Vec::as_slice));
                for (id, delta) in &deltas {
                    let row = rows.get_mut(id).ok_or_else(|| missing(*id))?;
                    row.balances = delta
                        .applied_to(&row.balances)
                        .ok_or_else(|| poison(format!("account {id} would go negative or overflow")))?;
                    row.position = record.position;
                    row.updated_at = record.recorded_at;
                }
                deltas
            }
        };
        for (n, id) in accounts.iter().enumerate() {
            let row = rows.get(id).ok_or_else(|| missing(*id))?;
            history.push(HistoryRow {
                account: *id,
                position: record.position,
                recorded_at: record.recorded_at,
                event_type: &record.event_type,
                stream: (n == 0).then_some(record.stream_id.as_str()),
                balances: moved.contains_key(id).then_some((row.balances, row.kind)),
            });
        }
    }
    let rows: Vec<(AccountId, BalanceRow)> = rows.into_iter().collect();
    let dec = |f: &dyn Fn(&BalanceRow) -> Decimal| rows.iter().map(|(_, r)| f(r)).collect::<Vec<_>>();
    let sql = format!(
        "INSERT INTO rm_balances_v{v} (account_id, code, currency, kind, status, debits_posted, credits_posted, \
         debits_pending, credits_pending, balance, available, position, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], \
         $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12::bigint[], $13::timestamptz[]) \
         ON CONFLICT (account_id) DO UPDATE SET status = EXCLUDED.status, debits_posted = EXCLUDED.debits_posted, \
         credits_posted = EXCLUDED.credits_posted, debits_pending = EXCLUDED.debits_pending, \
         credits_pending = EXCLUDED.credits_pending, balance = EXCLUDED.balance, available = EXCLUDED.available, \
         position = EXCLUDED.position, updated_at = EXCLUDED.updated_at"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(rows.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.code.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.currency.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| text(&r.kind)).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| text(&r.status)).collect::<Vec<_>>())
        .bind(dec(&|r| r.balances.debits_posted))
        .bind(dec(&|r| r.balances.credits_posted))
        .bind(dec(&|r| r.balances.debits_pending))
        .bind(dec(&|r| r.balances.credits_pending))
        .bind(dec(&|r| r.balances.balance(r.kind.normal_side())))
        .bind(dec(&|r| r.balances.available(r.kind.normal_side())))
        .bind(rows.iter().map(|(_, r)| r.position).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| to_time(r.updated_at)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    // One clock row per page: the time of its last event, so "as of a time" finds its position
    // range without an index on every history row's time.
    if let Some((last, _)) = page.iter().last() {
        let latest = page.iter().map(|(r, _)| r.recorded_at).max().unwrap_or(last.recorded_at);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rm_balance_clock_v{v} (position, recorded_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )))
        .bind(last.position)
        .bind(to_time(latest))
        .execute(&mut *conn)
        .await?;
    }
    const HISTORY: &[Type] = &[
        Type::UUID,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::TEXT,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
    ];
    let mut copy = CopyRows::new(HISTORY);
    for h in &history {
        let b = h.balances.map(|(b, kind)| (b, b.balance(kind.normal_side()), b.available(kind.normal_side())));
        copy.row(&[
            &h.account.0,
            &h.position,
            &to_time(h.recorded_at),
            &h.event_type,
            &h.stream,
            &b.map(|(b, _, _)| b.debits_posted),
            &b.map(|(b, _, _)| b.credits_posted),
            &b.map(|(b, _, _)| b.debits_pending),
            &b.map(|(b, _, _)| b.credits_pending),
            &b.map(|(_, balance, _)| balance),
            &b.map(|(_, _, available)| available),
        ])?;
    }
    copy.send(
        conn,
        &format!(
            "COPY rm_account_history_v{v} (account_id, position, recorded_at, event_type, stream_id, debits_posted, \
             credits_posted, debits_pending, credits_pending, balance, available) FROM STDIN (FORMAT binary)"
        ),
    )
    .await?;
    // Written: the next page starts from these rows if it follows right on.
    written.extend(rows);
    if written.len() <= MAX_REMEMBERED {
        *memo = Some(Box::new(Written { version: v, after: last, rows: written }));
    }
    Ok(())
}

/// A row of `rm_account_history`: `balances` where the event moved the account's.
struct HistoryRow<'a> {
    account: AccountId,
    position: i64,
    recorded_at: ledger_core::Timestamp,
    event_type: &'a str,
    stream: Option<&'a str>,
    balances: Option<(Balances, AccountKind)>,
}

pub async fn apply_journal(
    conn: &mut PgConnection,
    v: i32,
    page: &PageView<'_>,
    _: &mut Memo,
) -> Result<(), ApplyError> {
    struct Created<'a> {
        e: &'a ledger_core::ledger::event::TransferCreated,
        pending: bool,
        meta: EventMeta,
        position: i64,
    }
    let mut created = Vec::new();
    // Settled and reversed transfers are found by the position that created them: the key, which
    // grows at its end and which a rebuild keeps while it defers the index by id.
    let mut settled: Vec<(i64, &'static str, i64, Option<String>)> = Vec::new();
    let mut reversed: Vec<(i64, Uuid)> = Vec::new();
    for (record, event) in page.ledger() {
        match event {
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => {
                let meta: EventMeta = serde_json::from_str(&record.metadata).unwrap_or_default();
                let pending = matches!(event, Event::PendingTransferCreated(_));
                created.push(Created { e, pending, meta, position: record.position });
                if let Some(original) = e.reverses {
                    reversed.push((page.created(original, record.position)?, e.id.0));
                }
            }
            Event::PendingTransferPosted(e) => {
                let posted = serde_json::to_string(&e.postings)
                    .map_err(|err| ApplyError::Poison { position: record.position, error: err.to_string() })?;
                settled.push((page.created(e.id, record.position)?, "posted", record.position, Some(posted)));
            }
            Event::PendingTransferVoided(e) => {
                settled.push((page.created(e.id, record.position)?, "voided", record.position, None));
            }
            Event::PendingTransferExpired(e) => {
                settled.push((page.created(e.id, record.position)?, "expired", record.position, None));
            }
            _ => {}
        }
    }
    const TRANSFERS: &[Type] = &[
        Type::UUID,
        Type::TEXT,
        Type::BOOL,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::JSONB,
        Type::TIMESTAMPTZ,
        Type::INT8,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::UUID,
        Type::UUID_ARRAY,
        Type::TEXT_ARRAY,
        Type::NUMERIC_ARRAY,
    ];
    let mut transfers = CopyRows::new(TRANSFERS);
    for c in &created {
        let metadata = c.e.metadata.to_string();
        let accounts: Vec<Uuid> = c.e.postings.iter().map(|p| p.account.0).collect();
        let sides: Vec<String> = c.e.postings.iter().map(|p| text(&p.side)).collect();
        let amounts: Vec<Decimal> = c.e.postings.iter().map(|p| p.amount).collect();
        transfers.row(&[
            &c.e.id.0,
            &if c.pending { "pending" } else { "posted" },
            &c.pending,
            &c.e.external_ref.as_deref(),
            &c.meta.channel.as_deref(),
            &c.meta.initiator.as_deref(),
            &Jsonb(&metadata),
            &to_time(c.e.at),
            &c.position,
            &c.position,
            &c.e.timeout_at.map(to_time),
            &c.e.reverses.map(|r| r.0),
            &accounts,
            &sides,
            &amounts,
        ])?;
    }
    transfers
        .send(
            conn,
            &format!(
                "COPY rm_transfers_v{v} (id, status, pending, external_ref, channel, initiator, metadata, created_at, \
                 created_position, position, timeout_at, reverses, leg_accounts, leg_sides, leg_amounts) \
                 FROM STDIN (FORMAT binary)"
            ),
        )
        .await?;
    let sql = format!(
        "UPDATE rm_transfers_v{v} t SET status = x.st, position = x.p, posted = x.posted::jsonb \
         FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS x(cp, st, p, posted) \
         WHERE t.created_position = x.cp"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(settled.iter().map(|s| s.0).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.1).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.2).collect::<Vec<_>>())
        .bind(settled.iter().map(|s| s.3.as_deref()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "UPDATE rm_transfers_v{v} t SET reversed_by = x.by FROM UNNEST($1::bigint[], $2::uuid[]) AS x(cp, by) \
         WHERE t.created_position = x.cp"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(reversed.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(reversed.iter().map(|r| r.1).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn apply_turnover(
    conn: &mut PgConnection,
    v: i32,
    page: &PageView<'_>,
    _: &mut Memo,
) -> Result<(), ApplyError> {
    // Posted movements only, per account and UTC day.
    let mut sums: BTreeMap<(Uuid, String), (Decimal, Decimal)> = BTreeMap::new();
    for (record, event) in page.ledger() {
        let postings = match event {
            Event::TransferPosted(e) => &e.postings,
            Event::PendingTransferPosted(e) => &e.postings,
            _ => continue,
        };
        let day = to_time(record.recorded_at).date().to_string();
        for p in postings {
            let sum = sums.entry((p.account.0, day.clone())).or_default();
            match p.side {
                ledger_core::Side::Debit => sum.0 += p.amount,
                ledger_core::Side::Credit => sum.1 += p.amount,
            }
        }
    }
    let sql = format!(
        "INSERT INTO rm_turnover_v{v} (account_id, day, debits, credits) \
         SELECT id, d::date, dr, cr FROM UNNEST($1::uuid[], $2::text[], $3::numeric[], $4::numeric[]) AS x(id, d, dr, cr) \
         ON CONFLICT (account_id, day) DO UPDATE SET debits = rm_turnover_v{v}.debits + EXCLUDED.debits, \
         credits = rm_turnover_v{v}.credits + EXCLUDED.credits"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(sums.keys().map(|k| k.0).collect::<Vec<_>>())
        .bind(sums.keys().map(|k| k.1.as_str()).collect::<Vec<_>>())
        .bind(sums.values().map(|s| s.0).collect::<Vec<_>>())
        .bind(sums.values().map(|s| s.1).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
