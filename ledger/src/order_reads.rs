//! The reader behind `GET /v1/orders` inside `ledger up`: the orders read model
//! (`projections::orders`) in the read models' database, as the command API's wire rows.

use std::sync::Arc;

use command_api::orders_list::{ListCursor, Listing, OrderListItem, OrderListQuery, OrdersReader};
use projections::orders::{OrderCursor, OrderFilter, OrderRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Equips the API with the orders read model of `read_pool` (the read models' database).
pub fn equip(api: command_api::ApiState, read_pool: &sqlx::PgPool) -> command_api::ApiState {
    api.with_orders_reader(Arc::new(ReadModelOrders(read_pool.clone())))
}

struct ReadModelOrders(sqlx::PgPool);

impl OrdersReader for ReadModelOrders {
    fn list(&self, query: OrderListQuery) -> Listing<'_> {
        Box::pin(async move {
            let after = match query.after {
                Some(c) => Some(OrderCursor {
                    created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.created_at_micros) * 1000)
                        .map_err(|e| e.to_string())?,
                    created_position: c.created_position,
                }),
                None => None,
            };
            let filter = OrderFilter {
                store_id: query.store_id,
                trader_id: query.trader_id,
                status: query.status.map(str::to_owned),
                from: query.from,
                to: query.to,
                min_amount: query.min_amount,
                max_amount: query.max_amount,
                external_order_id: query.external_order_id,
            };
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let rows = match projections::orders::orders(&mut conn, &filter, after, query.limit).await {
                Ok(rows) => rows,
                // The read model's runner has not created its tables yet: nothing is applied.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
                Err(e) => return Err(e.to_string()),
            };
            Ok(rows.into_iter().map(item).collect())
        })
    }
}

fn item(r: OrderRow) -> (ListCursor, OrderListItem) {
    let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let cursor = ListCursor {
        created_at_micros: i64::try_from(r.created_at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX),
        created_position: r.created_position,
    };
    let order = OrderListItem {
        id: r.id,
        store_id: r.store_id,
        kind: r.kind,
        status: r.status,
        external_order_id: r.external_order_id,
        amount: r.amount,
        currency: r.currency,
        method: r.method,
        requested_trader_id: r.requested_trader,
        rate: r.rate,
        settlement_amount: r.settlement_amount,
        settlement_currency: r.settlement_currency,
        store_fee_rate: r.store_fee_rate,
        trader_id: r.trader_id,
        requisite_id: r.requisite_id,
        requisite_masked: r.masked,
        trader_fee_rate: r.trader_fee_rate,
        store_fee: r.store_fee,
        trader_reward: r.trader_reward,
        platform_share: r.platform_share,
        hold_transfer_id: r.hold_transfer,
        reversal_transfer_id: r.reversal_transfer,
        expires_at: r.expires_at.map(time),
        reason: r.reason,
        dispute_upheld: r.upheld,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        completed_at: r.completed_at.map(time),
        created_position: r.created_position,
        position: r.position,
    };
    (cursor, order)
}
