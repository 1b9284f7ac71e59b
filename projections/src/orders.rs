//! The orders domain's read model (seed 003): every order with what the lists filter on and
//! the views show (store, trader, requisite, kind, status, the store's own order id, the fiat
//! and settlement amounts, the rate, the fee split, the reason, its times), and which order
//! each ledger movement of an order's hold or reversal belongs to (`rm_order_movements`, keyed
//! by the ledger event's position).
//!
//! Balances and their histories are not copied: the stores', traders' and platform's accounts
//! are ledger accounts, and the balances read model already keeps each one's balance and, in
//! `rm_account_history`, its balances after every event that moved them. [`movements`] reads
//! that history with the balance before each movement (the one after the movement before) and
//! the order it belongs to.
//!
//! Statistics ([`stats`]) are over the orders *created* in a period, grouped by store or by
//! trader and by currency pair: `count` every order; `completed` those whose status is
//! `completed` (a dispute upheld included); `decided` those whose outcome is known, every status
//! but `manual_review`, `pending` and `disputed`; `conversion` = completed / decided;
//! `turnover` the fiat amount of the completed ones (and their settlement amount and fee split).
//! A disputed order leaves the turnover until it is upheld; a reversed one never counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ledger_core::domain::DomainEvent;
use ledger_core::ledger::Event as LedgerEvent;
use ledger_core::ledger::event::{PendingPosted, PendingReleased};
use ledger_core::orders::Event;
use ledger_core::orders::Status;
use ledger_core::orders::event::Assignment;
use ledger_core::{AccountId, CurrencyCode, OrderId};
use ledger_store::sql::to_time;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApplyError;
use crate::page::PageView;

pub struct OrdersModel;

impl crate::ReadModel for OrdersModel {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_orders", "rm_order_movements"]
    }

    // An order is rewritten as it moves on (status, reason, times): half of each page is kept
    // free (set on every start) so a rewrite stays on its page. No index holds a column a
    // transition changes (status is filtered within the store's, trader's or time's range), so
    // such a rewrite is a HOT update; only an approval, which assigns the trader, is not.
    // Lists and statistics read by store, trader or time, each index ending in the keyset
    // (created_at, created_position).
    fn create_sql(&self, v: i32) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS rm_orders_v{v} (id UUID PRIMARY KEY, store_id TEXT NOT NULL, \
             kind TEXT NOT NULL, external_order_id TEXT NOT NULL, amount NUMERIC NOT NULL, currency TEXT NOT NULL, \
             method TEXT, requested_trader TEXT, rate NUMERIC NOT NULL, settlement_amount NUMERIC NOT NULL, \
             settlement_currency TEXT NOT NULL, store_fee_rate NUMERIC NOT NULL, status TEXT NOT NULL, \
             trader_id TEXT, requisite_id TEXT, masked TEXT, trader_fee_rate NUMERIC, store_fee NUMERIC, \
             trader_reward NUMERIC, platform_share NUMERIC, hold_transfer UUID, expires_at TIMESTAMPTZ, \
             reversal_transfer UUID, reason TEXT, upheld BOOLEAN NOT NULL, created_at TIMESTAMPTZ NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL, completed_at TIMESTAMPTZ, created_position BIGINT NOT NULL, \
             position BIGINT NOT NULL); \
             ALTER TABLE rm_orders_v{v} SET (fillfactor = 50); \
             CREATE INDEX IF NOT EXISTS rm_orders_v{v}_time ON rm_orders_v{v} (created_at, created_position); \
             CREATE INDEX IF NOT EXISTS rm_orders_v{v}_store ON rm_orders_v{v} (store_id, created_at, created_position); \
             CREATE INDEX IF NOT EXISTS rm_orders_v{v}_trader ON rm_orders_v{v} (trader_id, created_at, created_position) \
             WHERE trader_id IS NOT NULL; \
             CREATE INDEX IF NOT EXISTS rm_orders_v{v}_external ON rm_orders_v{v} (store_id, external_order_id); \
             CREATE TABLE IF NOT EXISTS rm_order_movements_v{v} (position BIGINT PRIMARY KEY, order_id UUID NOT NULL, \
             transfer_id UUID NOT NULL, action TEXT NOT NULL);"
        )
    }

    fn deferred_indexes(&self, v: i32) -> Vec<String> {
        ["time", "store", "trader", "external"].iter().map(|i| format!("rm_orders_v{v}_{i}")).collect()
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        v: i32,
        page: &'a PageView<'a>,
        _: &'a mut crate::Memo,
    ) -> crate::Applying<'a> {
        Box::pin(apply(conn, v, page))
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub store_id: String,
    /// `pay_in` or `pay_out`.
    pub kind: String,
    pub external_order_id: String,
    /// Fiat, in `currency`.
    pub amount: Decimal,
    pub currency: String,
    pub method: Option<String>,
    /// The trader the store asked for.
    pub requested_trader: Option<String>,
    /// Fiat per unit of the settlement currency.
    pub rate: Decimal,
    pub settlement_amount: Decimal,
    pub settlement_currency: String,
    /// The store's fee, a fraction of the settlement amount.
    pub store_fee_rate: Decimal,
    pub status: String,
    /// The assignment (none while in review, or when denied).
    pub trader_id: Option<String>,
    pub requisite_id: Option<String>,
    /// The requisite's details as they may be shown.
    pub masked: Option<String>,
    pub trader_fee_rate: Option<Decimal>,
    /// The split of the settlement amount: the store's fee `S`, the trader's reward `T`, the
    /// platform's share `S − T` (negative when the trader's fee is above the store's).
    pub store_fee: Option<Decimal>,
    pub trader_reward: Option<Decimal>,
    pub platform_share: Option<Decimal>,
    pub hold_transfer: Option<Uuid>,
    pub expires_at: Option<OffsetDateTime>,
    pub reversal_transfer: Option<Uuid>,
    pub reason: Option<String>,
    /// Whether a dispute of it was upheld.
    pub upheld: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub created_position: i64,
    /// The last event that changed it.
    pub position: i64,
}

impl OrderRow {
    fn assign(&mut self, a: &Assignment) {
        self.trader_id = Some(a.trader.clone());
        self.requisite_id = Some(a.requisite.clone());
        self.masked = Some(a.masked.clone());
        self.trader_fee_rate = Some(a.trader_fee);
        self.store_fee = Some(a.split.store_fee);
        self.trader_reward = Some(a.split.trader_reward);
        self.platform_share = Some(a.split.platform);
        self.hold_transfer = Some(a.hold.0);
        self.expires_at = Some(to_time(a.expires_at));
    }

    /// Where a list after this order goes on from.
    pub fn cursor(&self) -> OrderCursor {
        OrderCursor { created_at: self.created_at, created_position: self.created_position }
    }
}

/// A ledger movement of an order's money: the event at `position` held, posted, released or
/// reversed the order's entry.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MovementLink {
    pub position: i64,
    pub order_id: Uuid,
    pub transfer_id: Uuid,
    /// `hold`, `completion`, `release` or `reversal`.
    pub action: String,
}

/// The order a ledger transfer of the orders domain belongs to, read from its metadata and
/// checked against the id the order derives for it (an ordinary transfer that names an order
/// in its metadata is not the order's).
fn order_of(metadata: &serde_json::Value, id: ledger_core::TransferId, reversal: bool) -> Option<Uuid> {
    let order = OrderId(metadata.get("order")?.as_str()?.parse().ok()?);
    let derived = if reversal { order.reversal_transfer() } else { order.hold_transfer() };
    (derived == id).then_some(order.0)
}

async fn apply(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<(), ApplyError> {
    let events: Vec<(&ledger_store::RecordedEvent, &Event)> = page
        .iter()
        .filter_map(|(r, e)| e.orders().map(|e| (r, e)))
        .filter(|(_, e)| e.entity().kind == ledger_core::orders::ORDER_KIND)
        .collect();
    let movements = movements_of(conn, v, page).await?;
    if events.is_empty() && movements.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = events.iter().map(|(_, e)| e.entity().id).collect();
    ids.sort();
    ids.dedup();
    let mut orders: HashMap<Uuid, OrderRow> = HashMap::new();
    if !ids.is_empty() {
        let stored: Vec<OrderRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT * FROM rm_orders_v{v} WHERE id = ANY($1)")))
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        orders.extend(stored.into_iter().map(|o| (o.id, o)));
    }
    for (record, event) in events {
        let position = record.position;
        let poison = |error: String| ApplyError::Poison { position, error };
        if let Event::Created(e) = event {
            let at = to_time(e.at);
            let mut row = OrderRow {
                id: e.id.0,
                store_id: e.store.clone(),
                kind: ledger_store::sql::text(&e.kind),
                external_order_id: e.external_order_id.clone(),
                amount: e.amount,
                currency: e.currency.to_string(),
                method: e.method.clone(),
                requested_trader: e.requested_trader.clone(),
                rate: e.rate,
                settlement_amount: e.settlement_amount,
                settlement_currency: e.settlement_currency.to_string(),
                store_fee_rate: e.store_fee,
                status: e.status.as_str().to_owned(),
                trader_id: None,
                requisite_id: None,
                masked: None,
                trader_fee_rate: None,
                store_fee: None,
                trader_reward: None,
                platform_share: None,
                hold_transfer: None,
                expires_at: None,
                reversal_transfer: None,
                reason: None,
                upheld: false,
                created_at: at,
                updated_at: at,
                completed_at: None,
                created_position: position,
                position,
            };
            if let Some(a) = &e.assignment {
                row.assign(a);
            }
            orders.insert(e.id.0, row);
            continue;
        }
        let id = event.entity().id;
        let row = orders.get_mut(&id).ok_or_else(|| poison(format!("order {id} was never created")))?;
        let status = event.status().ok_or_else(|| poison(format!("{} is not an order's event", event.event_type())))?;
        let at = to_time(event.at());
        match event {
            Event::Approved(e) => row.assign(&e.assignment),
            Event::Denied(e)
            | Event::Completed(e)
            | Event::Cancelled(e)
            | Event::Failed(e)
            | Event::Expired(e)
            | Event::Disputed(e)
            | Event::DisputeUpheld(e)
            | Event::Reversed(e) => {
                // As the writer's state: each transition sets the reason it gives, or none.
                row.reason.clone_from(&e.reason);
                match event {
                    Event::Completed(_) => row.completed_at = Some(at),
                    Event::DisputeUpheld(_) => row.upheld = true,
                    Event::Reversed(_) => row.reversal_transfer = e.transfer.map(|t| t.0),
                    _ => {}
                }
            }
            _ => {}
        }
        row.status = status.as_str().to_owned();
        (row.updated_at, row.position) = (at, position);
    }
    write(conn, v, orders.into_values().collect(), movements).await
}

fn orders_use(metadata: &serde_json::Value) -> bool {
    metadata.get("order").is_some()
}

/// The page's ledger events that hold, post, release or reverse an order's entry. A hold and a
/// reversal name their order in their metadata; a posting or a release names only the hold,
/// whose creation is found in this page or, made in an earlier one, among the movements
/// recorded then (by the position that created it, which the page knows).
async fn movements_of(conn: &mut PgConnection, v: i32, page: &PageView<'_>) -> Result<Vec<MovementLink>, ApplyError> {
    let mut found: Vec<MovementLink> = Vec::new();
    // Holds created in this page: creation position → (order, hold).
    let mut holds: HashMap<i64, Uuid> = HashMap::new();
    // Settlements whose hold was created in an earlier page: (position, creation, transfer, action).
    let mut earlier: Vec<(i64, i64, Uuid, &'static str)> = Vec::new();
    for (record, event) in page.ledger() {
        let position = record.position;
        match event {
            LedgerEvent::PendingTransferCreated(e) if orders_use(&e.metadata) => {
                if let Some(order) = order_of(&e.metadata, e.id, false) {
                    holds.insert(position, order);
                    found.push(MovementLink { position, order_id: order, transfer_id: e.id.0, action: "hold".into() });
                }
            }
            LedgerEvent::TransferPosted(e) if e.reverses.is_some() && orders_use(&e.metadata) => {
                if let Some(order) = order_of(&e.metadata, e.id, true) {
                    found.push(MovementLink {
                        position,
                        order_id: order,
                        transfer_id: e.id.0,
                        action: "reversal".into(),
                    });
                }
            }
            LedgerEvent::PendingTransferPosted(PendingPosted { id, .. })
            | LedgerEvent::PendingTransferVoided(PendingReleased { id, .. })
            | LedgerEvent::PendingTransferExpired(PendingReleased { id, .. }) => {
                let action =
                    if matches!(event, LedgerEvent::PendingTransferPosted(_)) { "completion" } else { "release" };
                let Some(&created) = page.created.get(id) else { continue };
                match holds.get(&created) {
                    Some(order) => found.push(MovementLink {
                        position,
                        order_id: *order,
                        transfer_id: id.0,
                        action: action.into(),
                    }),
                    None => earlier.push((position, created, id.0, action)),
                }
            }
            _ => {}
        }
    }
    if !earlier.is_empty() {
        let created: Vec<i64> = earlier.iter().map(|e| e.1).collect();
        let stored: Vec<(i64, Uuid, Uuid)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT position, order_id, transfer_id FROM rm_order_movements_v{v} WHERE position = ANY($1) \
             AND action = 'hold'"
        )))
        .bind(&created)
        .fetch_all(&mut *conn)
        .await?;
        let stored: HashMap<i64, (Uuid, Uuid)> = stored.into_iter().map(|(p, o, t)| (p, (o, t))).collect();
        for (position, created, transfer, action) in earlier {
            if let Some((order, hold)) = stored.get(&created).filter(|(_, hold)| *hold == transfer) {
                found.push(MovementLink { position, order_id: *order, transfer_id: *hold, action: action.into() });
            }
        }
    }
    found.sort_by_key(|m| m.position);
    Ok(found)
}

async fn write(
    conn: &mut PgConnection,
    v: i32,
    mut rows: Vec<OrderRow>,
    movements: Vec<MovementLink>,
) -> Result<(), ApplyError> {
    // In key order: two appliers never lock rows in opposite orders.
    rows.sort_by_key(|r| r.id);
    let r = &rows;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_orders_v{v} (id, store_id, kind, external_order_id, amount, currency, method, \
         requested_trader, rate, settlement_amount, settlement_currency, store_fee_rate, status, trader_id, \
         requisite_id, masked, trader_fee_rate, store_fee, trader_reward, platform_share, hold_transfer, expires_at, \
         reversal_transfer, reason, upheld, created_at, updated_at, completed_at, created_position, position) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], \
         $7::text[], $8::text[], $9::numeric[], $10::numeric[], $11::text[], $12::numeric[], $13::text[], \
         $14::text[], $15::text[], $16::text[], $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[], \
         $21::uuid[], $22::timestamptz[], $23::uuid[], $24::text[], $25::boolean[], $26::timestamptz[], \
         $27::timestamptz[], $28::timestamptz[], $29::bigint[], $30::bigint[]) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, trader_id = EXCLUDED.trader_id, \
         requisite_id = EXCLUDED.requisite_id, masked = EXCLUDED.masked, trader_fee_rate = EXCLUDED.trader_fee_rate, \
         store_fee = EXCLUDED.store_fee, trader_reward = EXCLUDED.trader_reward, \
         platform_share = EXCLUDED.platform_share, hold_transfer = EXCLUDED.hold_transfer, \
         expires_at = EXCLUDED.expires_at, reversal_transfer = EXCLUDED.reversal_transfer, reason = EXCLUDED.reason, \
         upheld = EXCLUDED.upheld, updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at, \
         position = EXCLUDED.position"
    )))
    .bind(r.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.store_id.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.external_order_id.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.currency.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.method.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.requested_trader.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.rate).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.settlement_amount).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.settlement_currency.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.store_fee_rate).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.trader_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.requisite_id.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.masked.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.trader_fee_rate).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.store_fee).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.trader_reward).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.platform_share).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.hold_transfer).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.expires_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.reversal_transfer).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.reason.clone()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.upheld).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.created_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.updated_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.completed_at).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.created_position).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.position).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let m = &movements;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rm_order_movements_v{v} (position, order_id, transfer_id, action) \
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[])"
    )))
    .bind(m.iter().map(|x| x.position).collect::<Vec<_>>())
    .bind(m.iter().map(|x| x.order_id).collect::<Vec<_>>())
    .bind(m.iter().map(|x| x.transfer_id).collect::<Vec<_>>())
    .bind(m.iter().map(|x| x.action.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where an order list goes on from: the order it ended with, by its keyset (creation time,
/// then the position that created it). As text `{created_at in µs since the epoch}_{position}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderCursor {
    pub created_at: OffsetDateTime,
    pub created_position: i64,
}

impl OrderCursor {
    /// The text form, as `Display` writes it; `None` for anything else.
    pub fn parse(text: &str) -> Option<OrderCursor> {
        let (micros, position) = text.split_once('_')?;
        let micros: i64 = micros.parse().ok()?;
        let created_position: i64 = position.parse().ok()?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
        (created_position >= 0).then_some(OrderCursor { created_at, created_position })
    }
}

impl fmt::Display for OrderCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.created_at.unix_timestamp_nanos() / 1000, self.created_position)
    }
}

/// Filters of the order list and statistics; every one optional. `from` inclusive and `to`
/// exclusive, on the creation time; `min_amount` and `max_amount` both inclusive, on the fiat
/// amount.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderFilter {
    pub store_id: Option<String>,
    pub trader_id: Option<String>,
    pub status: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    pub external_order_id: Option<String>,
}

/// `WHERE …` of the filters given (and the cursor), each bound: a statement per combination
/// of filters, so each is planned with the index its filters have.
fn filtered(select: &str, filter: &OrderFilter, after: Option<OrderCursor>) -> sqlx::QueryBuilder<sqlx::Postgres> {
    let mut q = sqlx::QueryBuilder::new(select);
    q.push(" WHERE true");
    if let Some(store) = &filter.store_id {
        q.push(" AND store_id = ").push_bind(store.clone());
    }
    if let Some(trader) = &filter.trader_id {
        q.push(" AND trader_id = ").push_bind(trader.clone());
    }
    if let Some(status) = &filter.status {
        q.push(" AND status = ").push_bind(status.clone());
    }
    if let Some(from) = filter.from {
        q.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" AND created_at < ").push_bind(to);
    }
    if let Some(min) = filter.min_amount {
        q.push(" AND amount >= ").push_bind(min);
    }
    if let Some(max) = filter.max_amount {
        q.push(" AND amount <= ").push_bind(max);
    }
    if let Some(external) = &filter.external_order_id {
        q.push(" AND external_order_id = ").push_bind(external.clone());
    }
    if let Some(after) = after {
        q.push(" AND (created_at, created_position) > (")
            .push_bind(after.created_at)
            .push(", ")
            .push_bind(after.created_position)
            .push(")");
    }
    q
}

/// Orders in the order they were created (by creation time, then position), after `after`.
pub async fn orders(
    conn: &mut PgConnection,
    filter: &OrderFilter,
    after: Option<OrderCursor>,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut q = filtered("SELECT * FROM rm_orders", filter, after);
    q.push(" ORDER BY created_at, created_position LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(conn).await
}

pub async fn order(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM rm_orders WHERE id = $1").bind(id).fetch_optional(conn).await
}

/// Whose orders statistics are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsBy {
    Store,
    Trader,
}

/// The statistics of one store's or trader's orders in one currency pair (see the module's
/// documentation for what each figure counts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsRow {
    /// The store's or the trader's id (none: the orders no trader took, in review or denied).
    pub owner: Option<String>,
    pub currency: String,
    pub settlement_currency: String,
    pub count: i64,
    /// Orders by status, in the status's name order.
    pub by_status: BTreeMap<String, i64>,
    pub completed: i64,
    pub decided: i64,
    /// The fiat amount of the completed orders, in `currency`.
    pub turnover: Decimal,
    /// Their settlement amount, and its split.
    pub settlement_turnover: Decimal,
    pub store_fees: Decimal,
    pub trader_rewards: Decimal,
    pub platform_share: Decimal,
}

/// Conversions are given to this many decimals, rounded half-even.
pub const CONVERSION_SCALE: u32 = 4;

impl StatsRow {
    /// `completed / decided`, none before any order is decided.
    pub fn conversion(&self) -> Option<Decimal> {
        (self.decided > 0).then(|| {
            (Decimal::from(self.completed) / Decimal::from(self.decided))
                .round_dp_with_strategy(CONVERSION_SCALE, rust_decimal::RoundingStrategy::MidpointNearestEven)
        })
    }
}

/// Whether an order in `status` has a known outcome: every status but those an order leaves
/// again (in review, pending, disputed).
pub fn decided(status: Status) -> bool {
    use Status::*;
    match status {
        ManualReview | Pending | Disputed => false,
        Completed | Reversed | Cancelled | Failed | Expired | Denied => true,
    }
}

/// How many statuses there are (`decided`'s match names each).
const STATUSES: usize = 9;

/// Most groups one answer of [`stats`] holds; more is [`TooManyGroups`].
pub const MAX_STATS_GROUPS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("more than {MAX_STATS_GROUPS} groups: narrow the filter")]
    TooManyGroups,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub use StatsError::TooManyGroups;

/// Statistics of the orders the filter selects (by store, trader and creation time; its
/// status, amount and external id are not used), per store or trader and currency pair, in
/// owner order (the orders of no trader first).
pub async fn stats(conn: &mut PgConnection, by: StatsBy, filter: &OrderFilter) -> Result<Vec<StatsRow>, StatsError> {
    let owner = match by {
        StatsBy::Store => "store_id",
        StatsBy::Trader => "trader_id",
    };
    let scope = OrderFilter {
        store_id: filter.store_id.clone(),
        trader_id: filter.trader_id.clone(),
        from: filter.from,
        to: filter.to,
        ..OrderFilter::default()
    };
    let select = format!(
        "SELECT {owner} AS owner, currency, settlement_currency, status, count(*) AS n, sum(amount) AS amount, \
         sum(settlement_amount) AS settlement, coalesce(sum(store_fee), 0) AS store_fee, \
         coalesce(sum(trader_reward), 0) AS trader_reward, coalesce(sum(platform_share), 0) AS platform_share \
         FROM rm_orders"
    );
    let mut q = filtered(&select, &scope, None);
    // Each group has at most one row per status: the rows of one group past the most.
    let most = (MAX_STATS_GROUPS + 1) * STATUSES;
    q.push(" GROUP BY 1, 2, 3, 4 ORDER BY 1 NULLS FIRST, 2, 3, 4 LIMIT ").push_bind(most as i64);
    type Group = (Option<String>, String, String, String, i64, Decimal, Decimal, Decimal, Decimal, Decimal);
    let groups: Vec<Group> = q.build_query_as().fetch_all(conn).await?;
    let mut rows: Vec<StatsRow> = Vec::new();
    for (owner, currency, settlement_currency, status, n, amount, settlement, store_fee, reward, platform) in groups {
        let same = rows.last().is_some_and(|r: &StatsRow| {
            (&r.owner, &r.currency, &r.settlement_currency) == (&owner, &currency, &settlement_currency)
        });
        if !same {
            if rows.len() == MAX_STATS_GROUPS {
                return Err(TooManyGroups);
            }
            rows.push(StatsRow {
                owner,
                currency,
                settlement_currency,
                turnover: Decimal::ZERO,
                ..StatsRow::default()
            });
        }
        let row = rows.last_mut().expect("just pushed");
        let parsed: Status = ledger_store::sql::parse("status", status.clone())?;
        row.count += n;
        if decided(parsed) {
            row.decided += n;
        }
        if parsed == Status::Completed {
            row.completed += n;
            row.turnover += amount;
            row.settlement_turnover += settlement;
            row.store_fees += store_fee;
            row.trader_rewards += reward;
            row.platform_share += platform;
        }
        row.by_status.insert(status, n);
    }
    Ok(rows)
}

/// Whose orders' accounts: a store's, a trader's or the platform's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    Store(&'a str),
    Trader(&'a str),
    Platform,
}

/// The accounts an owner holds in a settlement currency, each with its role (`store`,
/// `deposit`, `rewards`, `profit`) and code: the chart of accounts of `ledger_core::orders`.
pub fn accounts_of(owner: Owner<'_>, currency: &CurrencyCode) -> Vec<(&'static str, AccountId, String)> {
    use ledger_core::orders::{deposit_account, platform_account, rewards_account, store_account};
    let with = |role: &'static str, (id, code): (AccountId, String)| (role, id, code);
    match owner {
        Owner::Store(id) => vec![with("store", store_account(id, currency))],
        Owner::Trader(id) => {
            vec![with("deposit", deposit_account(id, currency)), with("rewards", rewards_account(id, currency))]
        }
        Owner::Platform => vec![with("profit", platform_account(currency))],
    }
}

/// A movement of an account: an event that changed its balances, with its posted balance and
/// its available balance before and after (before: after the movement before it; zero before
/// the first), and the order whose entry it held, posted, released or reversed, if one did
/// (none: an ordinary transfer, a deposit's funding say, or a movement the orders read model
/// has not applied yet).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MovementRow {
    pub position: i64,
    pub recorded_at: OffsetDateTime,
    pub event_type: String,
    pub balance_before: Decimal,
    pub balance_after: Decimal,
    pub available_before: Decimal,
    pub available_after: Decimal,
    pub order_id: Option<Uuid>,
    pub transfer_id: Option<Uuid>,
    /// `hold`, `completion`, `release` or `reversal`.
    pub action: Option<String>,
}

/// An account's movements in log order after `after`: the ledger's own account history (the
/// balances read model), each with the balances before it read from the history row before it.
pub async fn movements(
    conn: &mut PgConnection,
    account: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<MovementRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT h.position, h.recorded_at, h.event_type, coalesce(p.balance, 0) AS balance_before, \
         h.balance AS balance_after, coalesce(p.available, 0) AS available_before, h.available AS available_after, \
         m.order_id, m.transfer_id, m.action \
         FROM rm_account_history h \
         LEFT JOIN LATERAL (SELECT q.balance, q.available FROM rm_account_history q WHERE q.account_id = h.account_id \
           AND q.position < h.position AND q.balance IS NOT NULL ORDER BY q.position DESC LIMIT 1) p ON true \
         LEFT JOIN rm_order_movements m ON m.position = h.position \
         WHERE h.account_id = $1 AND h.position > $2 AND h.balance IS NOT NULL ORDER BY h.position LIMIT $3",
    )
    .bind(account)
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(conn)
    .await
}
