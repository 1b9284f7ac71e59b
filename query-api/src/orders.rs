//! The P2P orders' part of the GraphQL schema: orders by store, trader, status, time, amount
//! and the store's own id; one order; a store's, trader's or the platform's balances with each
//! account's history (every movement with its balance before and after, and the order it
//! belongs to); and statistics per store or trader for a period.
//!
//! Every field asks for `orders:read` scoped by the store or trader it names
//! (`orders:read:store-17`; either one grants it when it names both; the unscoped permission
//! grants all): a key scoped to one store reads that store's orders, balances and statistics,
//! and is refused another's, an order of another's, the platform's and any list that names
//! no store or trader. The field's guard (`resolve::ReadsSomeScope`) lets through a key that
//! reads orders in some scope; the resolver asks for the scope once it knows the owner.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use ledger_core::orders::scope::READ;
use ledger_core::permission::Need;
use ledger_core::{AccountRef, CurrencyCode};
use projections::Model;
use projections::orders::{self as rm, MovementRow, OrderCursor, OrderFilter, OrderRow, Owner, StatsBy, StatsRow};
use projections::read;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::resolve::{
    ReadsSomeScope, bad_input, internal, money, page, page_size, parse_cursor, parse_time, pool, require_any, rfc3339,
    wait_for,
};

/// An order's status.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum OrderStatus {
    ManualReview,
    Pending,
    Completed,
    Disputed,
    Reversed,
    Cancelled,
    Failed,
    Expired,
    Denied,
}

impl OrderStatus {
    fn as_str(self) -> &'static str {
        use ledger_core::orders::Status;
        match self {
            OrderStatus::ManualReview => Status::ManualReview,
            OrderStatus::Pending => Status::Pending,
            OrderStatus::Completed => Status::Completed,
            OrderStatus::Disputed => Status::Disputed,
            OrderStatus::Reversed => Status::Reversed,
            OrderStatus::Cancelled => Status::Cancelled,
            OrderStatus::Failed => Status::Failed,
            OrderStatus::Expired => Status::Expired,
            OrderStatus::Denied => Status::Denied,
        }
        .as_str()
    }
}

/// Whose accounts: a store's (its settlement account), a trader's (its deposit and its
/// rewards) or the platform's (its profit).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum OrdersOwner {
    Store,
    Trader,
    Platform,
}

/// What statistics are grouped by.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum OrderStatsBy {
    Store,
    Trader,
}

#[derive(SimpleObject)]
pub struct Order {
    pub id: String,
    pub store_id: String,
    /// pay_in or pay_out.
    pub kind: String,
    /// manual_review, pending, completed, disputed, reversed, cancelled, failed, expired or denied.
    pub status: String,
    /// The store's own id of the order.
    pub external_order_id: String,
    /// Fiat, in `currency`.
    pub amount: String,
    pub currency: String,
    pub method: Option<String>,
    /// The trader the store asked for.
    pub requested_trader_id: Option<String>,
    /// Fiat per unit of the settlement currency, fixed at creation.
    pub rate: String,
    pub settlement_amount: String,
    pub settlement_currency: String,
    /// The store's fee, a fraction of the settlement amount.
    pub store_fee_rate: String,
    /// The trader and requisite it went to (none in review, or denied).
    pub trader_id: Option<String>,
    pub requisite_id: Option<String>,
    /// The requisite's details as they may be shown.
    pub requisite_masked: Option<String>,
    pub trader_fee_rate: Option<String>,
    /// The split of the settlement amount: the store's fee, the trader's reward and the
    /// platform's share (their difference, negative when the trader's fee is the higher).
    pub store_fee: Option<String>,
    pub trader_reward: Option<String>,
    pub platform_share: Option<String>,
    /// The ledger transfer that holds, then completes, its entry.
    pub hold_transfer_id: Option<String>,
    /// The transfer that reversed it, after a dispute.
    pub reversal_transfer_id: Option<String>,
    pub expires_at: Option<String>,
    /// Why it was denied, cancelled, failed, disputed or resolved.
    pub reason: Option<String>,
    /// Whether a dispute of it was upheld.
    pub dispute_upheld: bool,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// The log position that created it.
    pub created_position: i64,
    /// Position of the last event that changed it.
    pub position: i64,
}

impl From<OrderRow> for Order {
    fn from(r: OrderRow) -> Order {
        Order {
            id: r.id.to_string(),
            store_id: r.store_id,
            kind: r.kind,
            status: r.status,
            external_order_id: r.external_order_id,
            amount: money(r.amount),
            currency: r.currency,
            method: r.method,
            requested_trader_id: r.requested_trader,
            rate: money(r.rate),
            settlement_amount: money(r.settlement_amount),
            settlement_currency: r.settlement_currency,
            store_fee_rate: money(r.store_fee_rate),
            trader_id: r.trader_id,
            requisite_id: r.requisite_id,
            requisite_masked: r.masked,
            trader_fee_rate: r.trader_fee_rate.map(money),
            store_fee: r.store_fee.map(money),
            trader_reward: r.trader_reward.map(money),
            platform_share: r.platform_share.map(money),
            hold_transfer_id: r.hold_transfer.map(|t| t.to_string()),
            reversal_transfer_id: r.reversal_transfer.map(|t| t.to_string()),
            expires_at: r.expires_at.map(rfc3339),
            reason: r.reason,
            dispute_upheld: r.upheld,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            completed_at: r.completed_at.map(rfc3339),
            created_position: r.created_position,
            position: r.position,
        }
    }
}

/// One of an owner's accounts, as the ledger's balances read model holds it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrdersAccount {
    #[graphql(skip)]
    uuid: Uuid,
    /// store, deposit, rewards or profit.
    pub role: String,
    pub account_id: String,
    pub code: String,
    pub currency: String,
    /// Posted balance, signed on the account's normal side.
    pub balance: String,
    /// Balance less the holds of pending orders against it.
    pub available: String,
    /// Position of the last event that changed it.
    pub position: i64,
    pub updated_at: String,
}

/// A movement of an account: an event that changed its balances, with them before (after
/// the movement before; zero before the first) and after.
#[derive(SimpleObject)]
pub struct OrdersMovement {
    pub position: i64,
    pub recorded_at: String,
    /// The ledger event: TransferPosted, PendingTransferCreated (a hold),
    /// PendingTransferPosted, PendingTransferVoided, …
    pub event_type: String,
    /// The order whose entry it held (hold), posted (completion), released (release) or
    /// reversed (reversal); none for an ordinary transfer, such as a deposit's funding.
    pub order_id: Option<String>,
    pub transfer_id: Option<String>,
    pub action: Option<String>,
    pub balance_before: String,
    pub balance_after: String,
    pub available_before: String,
    pub available_after: String,
}

impl From<MovementRow> for OrdersMovement {
    fn from(mut r: MovementRow) -> OrdersMovement {
        // A zero before the first movement comes back without a scale: shown at the after's.
        let scale = r.balance_after.scale().max(r.available_after.scale());
        for d in [&mut r.balance_before, &mut r.balance_after, &mut r.available_before, &mut r.available_after] {
            if d.scale() < scale {
                d.rescale(scale);
            }
        }
        OrdersMovement {
            position: r.position,
            recorded_at: rfc3339(r.recorded_at),
            event_type: r.event_type,
            order_id: r.order_id.map(|o| o.to_string()),
            transfer_id: r.transfer_id.map(|t| t.to_string()),
            action: r.action,
            balance_before: money(r.balance_before),
            balance_after: money(r.balance_after),
            available_before: money(r.available_before),
            available_after: money(r.available_after),
        }
    }
}

#[ComplexObject]
impl OrdersAccount {
    /// Its movements in log order.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, OrdersMovement>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::movements(&mut conn, self.uuid, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }
}

#[derive(SimpleObject)]
pub struct OrderStatusCount {
    pub status: String,
    pub count: i64,
}

/// The orders of one store or trader in one currency pair, created in the period asked for.
#[derive(SimpleObject)]
pub struct OrderStats {
    /// The store's or trader's id, as grouped (none: the orders no trader took).
    pub store_id: Option<String>,
    pub trader_id: Option<String>,
    /// The fiat currency, and the settlement currency.
    pub currency: String,
    pub settlement_currency: String,
    pub count: i64,
    pub by_status: Vec<OrderStatusCount>,
    /// Orders completed (a dispute upheld included), and with a known outcome (every status but
    /// manual_review, pending and disputed).
    pub completed: i64,
    pub decided: i64,
    /// completed / decided, to 4 decimals (rounded half to even); none before any is decided.
    pub conversion: Option<String>,
    /// The completed orders' fiat amount, in `currency`.
    pub turnover: String,
    /// Their settlement amount, and its split.
    pub settlement_turnover: String,
    pub store_fees: String,
    pub trader_rewards: String,
    pub platform_share: String,
}

impl OrderStats {
    fn new(by: StatsBy, r: StatsRow) -> OrderStats {
        let conversion = r.conversion().map(money);
        let (store_id, trader_id) = match by {
            StatsBy::Store => (r.owner, None),
            StatsBy::Trader => (None, r.owner),
        };
        OrderStats {
            store_id,
            trader_id,
            currency: r.currency,
            settlement_currency: r.settlement_currency,
            count: r.count,
            by_status: r.by_status.into_iter().map(|(status, count)| OrderStatusCount { status, count }).collect(),
            completed: r.completed,
            decided: r.decided,
            conversion,
            turnover: money(r.turnover),
            settlement_turnover: money(r.settlement_turnover),
            store_fees: money(r.store_fees),
            trader_rewards: money(r.trader_rewards),
            platform_share: money(r.platform_share),
        }
    }
}

/// `Ok` if the key grants `orders:read` for the store or for the trader (either, when both are
/// named), or unscoped when neither is; else the audited `forbidden` error naming the first.
async fn require_owner(ctx: &Context<'_>, store: Option<&str>, trader: Option<&str>) -> Result<()> {
    let needs: Vec<Need<'_>> = match (store, trader) {
        (None, None) => vec![READ],
        _ => store.into_iter().chain(trader).map(|owner| READ.of(owner)).collect(),
    };
    require_any(ctx, &needs).await
}

fn amount(name: &str, value: Option<String>) -> Result<Option<Decimal>> {
    value
        .map(|v| {
            v.parse::<Decimal>().map_err(|_| bad_input(format!("{name} must be a decimal string, e.g. \"1500.00\"")))
        })
        .transpose()
}

fn cursor(after: Option<String>) -> Result<Option<OrderCursor>> {
    after
        .map(|c| OrderCursor::parse(&c).ok_or_else(|| bad_input(format!("{c:?} is not a cursor from this list"))))
        .transpose()
}

/// The period: `from` inclusive, `to` exclusive (RFC 3339).
fn period(
    from: Option<String>,
    to: Option<String>,
) -> Result<(Option<time::OffsetDateTime>, Option<time::OffsetDateTime>)> {
    let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(bad_input("from must not be after to"));
    }
    Ok((from, to))
}

/// P2P orders.
#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// Orders in the order they were created (by creation time, then log position), by store,
    /// trader, status, creation time (`from` inclusive, `to` exclusive, RFC 3339), fiat amount
    /// (`minAmount`, `maxAmount`, both inclusive) and the store's own id.
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "ReadsSomeScope(READ)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        store_id: Option<String>,
        trader_id: Option<String>,
        status: Option<OrderStatus>,
        from: Option<String>,
        to: Option<String>,
        min_amount: Option<String>,
        max_amount: Option<String>,
        external_order_id: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, Order>> {
        require_owner(ctx, store_id.as_deref(), trader_id.as_deref()).await?;
        let limit = page_size(first)?;
        let after = cursor(after)?;
        let (from, to) = period(from, to)?;
        let (min_amount, max_amount) = (amount("minAmount", min_amount)?, amount("maxAmount", max_amount)?);
        if let (Some(min), Some(max)) = (min_amount, max_amount)
            && min > max
        {
            return Err(bad_input("minAmount must not be above maxAmount"));
        }
        let filter = OrderFilter {
            store_id,
            trader_id,
            status: status.map(|s| s.as_str().to_owned()),
            from,
            to,
            min_amount,
            max_amount,
            external_order_id,
        };
        wait_for(pool(ctx), Model::Orders, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::orders(&mut conn, &filter, after, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.cursor().to_string(), r.into())))
    }

    /// One order, if the key may read its store's or its trader's orders.
    #[graphql(guard = "ReadsSomeScope(READ)")]
    async fn order(&self, ctx: &Context<'_>, id: String, min_position: Option<i64>) -> Result<Option<Order>> {
        let Ok(id) = Uuid::parse_str(&id) else { return Ok(None) };
        wait_for(pool(ctx), Model::Orders, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let Some(row) = rm::order(&mut conn, id).await.map_err(internal)? else { return Ok(None) };
        require_owner(ctx, Some(&row.store_id), row.trader_id.as_deref()).await?;
        Ok(Some(row.into()))
    }

    /// A store's, a trader's or the platform's accounts in a settlement currency, with their
    /// balances and histories (`id`: the store's or trader's; none for the platform). Accounts
    /// not opened yet are left out.
    #[graphql(guard = "ReadsSomeScope(READ)")]
    async fn orders_balances(
        &self,
        ctx: &Context<'_>,
        owner: OrdersOwner,
        id: Option<String>,
        currency: String,
        min_position: Option<i64>,
    ) -> Result<Vec<OrdersAccount>> {
        let owner = match (owner, id.as_deref()) {
            (OrdersOwner::Store, Some(id)) => Owner::Store(id),
            (OrdersOwner::Trader, Some(id)) => Owner::Trader(id),
            (OrdersOwner::Platform, None) => Owner::Platform,
            (OrdersOwner::Platform, Some(_)) => return Err(bad_input("the platform's accounts take no id")),
            (_, None) => return Err(bad_input("a store's or trader's accounts need its id")),
        };
        match owner {
            Owner::Store(id) => require_owner(ctx, Some(id), None).await?,
            Owner::Trader(id) => require_owner(ctx, None, Some(id)).await?,
            Owner::Platform => require_owner(ctx, None, None).await?,
        }
        let currency =
            CurrencyCode::parse(&currency).map_err(|_| bad_input(format!("{currency:?} is not a currency code")))?;
        wait_for(pool(ctx), Model::Balances, min_position).await?;
        wait_for(pool(ctx), Model::Orders, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let mut accounts = Vec::new();
        for (role, id, code) in rm::accounts_of(owner, &currency) {
            if let Some(a) = read::account(&mut conn, &AccountRef::Id(id)).await.map_err(internal)? {
                debug_assert_eq!(a.code, code);
                accounts.push(OrdersAccount {
                    uuid: a.account_id,
                    role: role.to_owned(),
                    account_id: a.account_id.to_string(),
                    code: a.code,
                    currency: a.currency,
                    balance: money(a.balance),
                    available: money(a.available),
                    position: a.position,
                    updated_at: rfc3339(a.updated_at),
                });
            }
        }
        Ok(accounts)
    }

    /// Statistics of the orders created in a period (`from` inclusive, `to` exclusive, RFC
    /// 3339), by store or by trader and currency pair, of one store's or one trader's orders
    /// (or both) or, unscoped, of all.
    #[allow(clippy::too_many_arguments)]
    #[graphql(guard = "ReadsSomeScope(READ)")]
    async fn order_stats(
        &self,
        ctx: &Context<'_>,
        by: OrderStatsBy,
        store_id: Option<String>,
        trader_id: Option<String>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Vec<OrderStats>> {
        require_owner(ctx, store_id.as_deref(), trader_id.as_deref()).await?;
        let (from, to) = period(from, to)?;
        let by = match by {
            OrderStatsBy::Store => StatsBy::Store,
            OrderStatsBy::Trader => StatsBy::Trader,
        };
        let filter = OrderFilter { store_id, trader_id, from, to, ..OrderFilter::default() };
        wait_for(pool(ctx), Model::Orders, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::stats(&mut conn, by, &filter).await.map_err(|e| match e {
            rm::StatsError::Database(e) => internal(e),
            too_many => bad_input(too_many.to_string()),
        })?;
        Ok(rows.into_iter().map(|r| OrderStats::new(by, r)).collect())
    }
}
