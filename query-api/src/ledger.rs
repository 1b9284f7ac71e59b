//! The ledger's part of the schema: accounts, transfers, balances, turnover and the log, and
//! their subscriptions.

use std::time::Duration;

use async_graphql::connection::Connection;
use async_graphql::{Context, Json, Object, Result, SimpleObject, Subscription};
use futures_util::Stream;
use ledger_core::{AccountId, AccountRef};
use projections::Model;
use projections::read::{self, AccountRow, LegRow, SnapshotRow, TransferFilter, TransferRow};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::resolve::{
    Reads, bad_input, internal, log_pool, money, page, page_size, parse_cursor, parse_day, parse_time, pool, rfc3339,
    wait_for,
};

fn account_ref(s: &str) -> AccountRef {
    Uuid::parse_str(s).map(|id| AccountRef::Id(AccountId(id))).unwrap_or_else(|_| AccountRef::Code(s.to_owned()))
}

/// Resolves an optional account filter: `Ok(None)` when no filter was given, `Err(())` when the
/// account does not exist (so the list is empty).
async fn account_filter(conn: &mut sqlx::PgConnection, account: Option<String>) -> Result<Result<Option<Uuid>, ()>> {
    let Some(account) = account else { return Ok(Ok(None)) };
    let found = read::account(conn, &account_ref(&account)).await.map_err(internal)?;
    Ok(found.map(|a| Some(a.account_id)).ok_or(()))
}

#[derive(SimpleObject, Clone)]
pub struct Balance {
    pub debits_posted: String,
    pub credits_posted: String,
    pub debits_pending: String,
    pub credits_pending: String,
    /// Posted balance, signed on the account's normal side.
    pub balance: String,
    /// Balance less pending holds against it.
    pub available: String,
}

#[derive(SimpleObject, Clone)]
pub struct Account {
    pub id: String,
    pub code: String,
    pub currency: String,
    pub kind: String,
    pub status: String,
    pub balance: Balance,
    /// Position of the last event that changed the account.
    pub position: i64,
    pub updated_at: String,
}

impl Balance {
    fn new(totals: [Decimal; 4], balance: Decimal, available: Decimal) -> Balance {
        let [debits_posted, credits_posted, debits_pending, credits_pending] = totals.map(money);
        Balance {
            debits_posted,
            credits_posted,
            debits_pending,
            credits_pending,
            balance: money(balance),
            available: money(available),
        }
    }
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Account {
        Account {
            id: r.account_id.to_string(),
            code: r.code,
            currency: r.currency,
            kind: r.kind,
            status: r.status,
            balance: Balance::new(
                [r.debits_posted, r.credits_posted, r.debits_pending, r.credits_pending],
                r.balance,
                r.available,
            ),
            position: r.position,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct BalanceSnapshot {
    pub account_id: String,
    /// The position of the change that produced this balance.
    pub position: i64,
    pub recorded_at: String,
    pub balance: Balance,
}

impl From<SnapshotRow> for BalanceSnapshot {
    fn from(r: SnapshotRow) -> BalanceSnapshot {
        BalanceSnapshot {
            account_id: r.account_id.to_string(),
            position: r.position,
            recorded_at: rfc3339(r.recorded_at),
            balance: Balance::new(
                [r.debits_posted, r.credits_posted, r.debits_pending, r.credits_pending],
                r.balance,
                r.available,
            ),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Leg {
    pub account_id: String,
    pub side: String,
    pub amount: String,
}

#[derive(SimpleObject, Clone)]
pub struct Transfer {
    pub id: String,
    /// pending, posted, voided or expired.
    pub status: String,
    pub pending: bool,
    pub legs: Vec<Leg>,
    /// What was posted when a hold was captured.
    pub posted: Option<Json<serde_json::Value>>,
    pub external_ref: Option<String>,
    pub channel: Option<String>,
    pub initiator: Option<String>,
    pub metadata: Json<serde_json::Value>,
    pub created_at: String,
    pub created_position: i64,
    pub position: i64,
    pub timeout_at: Option<String>,
    pub reverses: Option<String>,
    pub reversed_by: Option<String>,
}

fn transfer(r: TransferRow, legs: &[LegRow]) -> Transfer {
    Transfer {
        id: r.id.to_string(),
        status: r.status,
        pending: r.pending,
        legs: legs
            .iter()
            .filter(|l| l.transfer_id == r.id)
            .map(|l| Leg { account_id: l.account_id.to_string(), side: l.side.clone(), amount: money(l.amount) })
            .collect(),
        posted: r.posted.map(Json),
        external_ref: r.external_ref,
        channel: r.channel,
        initiator: r.initiator,
        metadata: Json(r.metadata),
        created_at: rfc3339(r.created_at),
        created_position: r.created_position,
        position: r.position,
        timeout_at: r.timeout_at.map(rfc3339),
        reverses: r.reverses.map(|u| u.to_string()),
        reversed_by: r.reversed_by.map(|u| u.to_string()),
    }
}

#[derive(SimpleObject, Clone)]
pub struct LedgerEvent {
    pub position: i64,
    pub event_id: String,
    pub stream_id: String,
    pub stream_version: i32,
    #[graphql(name = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Json<serde_json::Value>,
    pub metadata: Json<serde_json::Value>,
    pub recorded_at: String,
    /// Hex SHA-256 chaining this event to the one before it.
    pub hash: String,
}

impl From<ledger_store::RecordedEvent> for LedgerEvent {
    fn from(r: ledger_store::RecordedEvent) -> LedgerEvent {
        LedgerEvent {
            position: r.position,
            event_id: r.event_id.to_string(),
            stream_id: r.stream_id,
            stream_version: r.stream_version,
            event_type: r.event_type,
            schema_version: i32::from(r.schema_version),
            payload: Json(serde_json::from_str(&r.payload).unwrap_or_default()),
            metadata: Json(serde_json::from_str(&r.metadata).unwrap_or_default()),
            recorded_at: rfc3339(ledger_store::log::to_time(r.recorded_at)),
            hash: hex::encode(r.hash),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct TurnoverDay {
    pub day: String,
    pub debits: String,
    pub credits: String,
}

#[derive(Default)]
pub struct LedgerQuery;

#[Object]
impl LedgerQuery {
    /// One account by id or code.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::ACCOUNTS_READ)")]
    async fn account(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        code: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Option<Account>> {
        let account = match (id, code) {
            (Some(id), None) => account_ref(&id),
            (None, Some(code)) => AccountRef::Code(code),
            _ => return Err(bad_input("pass exactly one of id or code")),
        };
        wait_for(pool(ctx), Model::Balances, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        Ok(read::account(&mut conn, &account).await.map_err(internal)?.map(Account::from))
    }

    /// Accounts in code order.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::ACCOUNTS_READ)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        currency: Option<String>,
        code_prefix: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, Account>> {
        let limit = page_size(first)?;
        wait_for(pool(ctx), Model::Balances, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = read::accounts(&mut conn, after.as_deref(), limit + 1, currency.as_deref(), code_prefix.as_deref())
            .await
            .map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.code.clone(), Account::from(r))))
    }

    /// One transfer with its legs.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::TRANSFERS_READ)")]
    async fn transfer(&self, ctx: &Context<'_>, id: String, min_position: Option<i64>) -> Result<Option<Transfer>> {
        let id = Uuid::parse_str(&id).map_err(|_| bad_input("id must be a UUID"))?;
        wait_for(pool(ctx), Model::Journal, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Some(row) = read::transfer(&mut conn, id).await.map_err(internal)? else { return Ok(None) };
        let legs = read::legs(&mut conn, std::slice::from_ref(&row)).await.map_err(internal)?;
        Ok(Some(transfer(row, &legs)))
    }

    /// The journal, in log order, filtered by account, status, channel, external reference,
    /// creation time (`from` inclusive, `to` exclusive, RFC 3339) and metadata containment.
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "Reads(ledger_core::ledger::scope::TRANSFERS_READ)")]
    async fn transfers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        account: Option<String>,
        status: Option<String>,
        channel: Option<String>,
        external_ref: Option<String>,
        from: Option<String>,
        to: Option<String>,
        metadata: Option<Json<serde_json::Value>>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, Transfer>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        wait_for(pool(ctx), Model::Journal, min_position).await?;
        if account.is_some() {
            // The filter by account reads the account events, kept by the balances.
            wait_for(pool(ctx), Model::Balances, min_position).await?;
        }
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Ok(account) = account_filter(&mut conn, account).await? else { return Ok(Connection::new(false, false)) };
        let filter = TransferFilter {
            account,
            status,
            channel,
            external_ref,
            from: parse_time("from", from)?,
            to: parse_time("to", to)?,
            metadata: metadata.map(|m| m.0),
        };
        let rows = read::transfers(&mut conn, &filter, after_position, limit + 1).await.map_err(internal)?;
        let legs = read::legs(&mut conn, &rows).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.created_position.to_string(), transfer(r, &legs))))
    }

    /// The balance of an account as of a time (RFC 3339) or a log position.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::ACCOUNTS_READ)")]
    async fn balance_at(
        &self,
        ctx: &Context<'_>,
        account: String,
        at: Option<String>,
        position: Option<i64>,
        min_position: Option<i64>,
    ) -> Result<Option<BalanceSnapshot>> {
        let at = parse_time("at", at)?;
        if at.is_none() && position.is_none() {
            return Err(bad_input("pass at or position"));
        }
        wait_for(pool(ctx), Model::Balances, min_position.or(position)).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Some(found) = read::account(&mut conn, &account_ref(&account)).await.map_err(internal)? else {
            return Ok(None);
        };
        Ok(read::balance_at(&mut conn, found.account_id, at, position)
            .await
            .map_err(internal)?
            .map(BalanceSnapshot::from))
    }

    /// The ordered log, optionally of one stream, one event type, or touching one account. The
    /// stream and account filters go through the account-events read model, so they see events
    /// up to its checkpoint.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::EVENTS_READ)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        stream: Option<String>,
        r#type: Option<String>,
        account: Option<String>,
    ) -> Result<Connection<String, LedgerEvent>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Ok(account) = account_filter(&mut conn, account).await? else { return Ok(Connection::new(false, false)) };
        let mut log = log_pool(ctx).acquire().await.map_err(internal)?;
        let rows = read::events(
            &mut conn,
            &mut log,
            after_position.unwrap_or(0),
            limit + 1,
            stream.as_deref(),
            r#type.as_deref(),
            account,
        )
        .await
        .map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), LedgerEvent::from(r))))
    }

    /// Posted debits and credits of an account per day (`from`/`to` as YYYY-MM-DD, inclusive).
    #[graphql(guard = "Reads(ledger_core::ledger::scope::ACCOUNTS_READ)")]
    async fn turnover(
        &self,
        ctx: &Context<'_>,
        account: String,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Vec<TurnoverDay>> {
        let (from, to) = (parse_day("from", from)?, parse_day("to", to)?);
        wait_for(pool(ctx), Model::Turnover, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Some(found) = read::account(&mut conn, &account_ref(&account)).await.map_err(internal)? else {
            return Ok(Vec::new());
        };
        let rows = read::turnover(&mut conn, found.account_id, from, to).await.map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|r| TurnoverDay { day: r.day.to_string(), debits: money(r.debits), credits: money(r.credits) })
            .collect())
    }
}

/// New events and balance changes.
#[derive(Default)]
pub struct LedgerSubscription;

/// How often subscriptions look for new rows.
const POLL: Duration = Duration::from_millis(100);

#[Subscription]
impl LedgerSubscription {
    /// New events after a position, in order.
    #[graphql(guard = "Reads(ledger_core::ledger::scope::EVENTS_READ)")]
    async fn events(&self, ctx: &Context<'_>, after: Option<i64>) -> impl Stream<Item = Result<LedgerEvent>> {
        let pool = log_pool(ctx).clone();
        let state = (pool, after.unwrap_or(0), std::collections::VecDeque::<LedgerEvent>::new());
        futures_util::stream::unfold(state, |(pool, mut after, mut queue)| async move {
            loop {
                if let Some(next) = queue.pop_front() {
                    return Some((Ok(next), (pool, after, queue)));
                }
                let page = match pool.acquire().await {
                    Ok(mut conn) => ledger_store::log::page(&mut conn, after, 100).await,
                    Err(e) => Err(e),
                };
                match page {
                    Ok(rows) if rows.is_empty() => tokio::time::sleep(POLL).await,
                    Ok(rows) => {
                        after = rows.last().map_or(after, |r| r.position);
                        queue.extend(rows.into_iter().map(LedgerEvent::from));
                    }
                    Err(e) => return Some((Err(internal(e)), (pool, after, queue))),
                }
            }
        })
    }

    /// Every change of one account's balance from now on (or after a position).
    #[graphql(guard = "Reads(ledger_core::ledger::scope::ACCOUNTS_READ)")]
    async fn balance_changes(
        &self,
        ctx: &Context<'_>,
        account: String,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<BalanceSnapshot>>> {
        let pool = pool(ctx).clone();
        let mut conn = pool.acquire().await.map_err(internal)?;
        let found = read::account(&mut conn, &account_ref(&account)).await.map_err(internal)?;
        let found = found.ok_or_else(|| bad_input(format!("account {account} not found")))?;
        let after = after.unwrap_or(found.position);
        drop(conn);
        let state = (pool, found.account_id, after, std::collections::VecDeque::<BalanceSnapshot>::new());
        Ok(futures_util::stream::unfold(state, |(pool, id, mut after, mut queue)| async move {
            loop {
                if let Some(next) = queue.pop_front() {
                    return Some((Ok(next), (pool, id, after, queue)));
                }
                let rows = match pool.acquire().await {
                    Ok(mut conn) => read::balance_changes(&mut conn, id, after, 100).await,
                    Err(e) => Err(e),
                };
                match rows {
                    Ok(rows) if rows.is_empty() => tokio::time::sleep(POLL).await,
                    Ok(rows) => {
                        after = rows.last().map_or(after, |r| r.position);
                        queue.extend(rows.into_iter().map(BalanceSnapshot::from));
                    }
                    Err(e) => return Some((Err(internal(e)), (pool, id, after, queue))),
                }
            }
        }))
    }
}
