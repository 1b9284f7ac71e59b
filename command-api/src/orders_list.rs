//! `GET /v1/orders`: P2P orders by store, trader, status, creation time, fiat amount and the
//! store's own id, in the order they were created, a page at a time (keyset: `after` is the
//! `next_after` of the page before, so a page never repeats or skips an order whatever is
//! created meanwhile). The rows come from the orders read model through [`OrdersReader`],
//! which the process running the read models provides (`ledger up`): the command API itself
//! does not know the read models.
//!
//! A key needs `orders:read` scoped by the store or the trader the query names (either grants
//! it when it names both), or the unscoped `orders:read` for a query that names neither: a key
//! scoped to store-17 lists store-17's orders and is refused store-18's, and every list that
//! names no store or trader.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use ledger_core::orders::scope::READ;
use ledger_core::permission::Need;
use ledger_store::keys::{KeyError, bearer};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::ApiState;
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::json;
use crate::openapi::{At, Text};

/// An order as the list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OrderListItem {
    pub id: Uuid,
    pub store_id: String,
    /// pay_in or pay_out.
    pub kind: String,
    /// manual_review, pending, completed, disputed, reversed, cancelled, failed, expired or denied.
    pub status: String,
    /// The store's own id of the order.
    pub external_order_id: String,
    /// Fiat, in `currency`.
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub currency: String,
    pub method: Option<String>,
    /// The trader the store asked for.
    pub requested_trader_id: Option<String>,
    /// Fiat per unit of the settlement currency, fixed at creation.
    #[schema(value_type = String)]
    pub rate: Decimal,
    #[schema(value_type = String)]
    pub settlement_amount: Decimal,
    pub settlement_currency: String,
    /// The store's fee, a fraction of the settlement amount.
    #[schema(value_type = String)]
    pub store_fee_rate: Decimal,
    /// The trader and requisite it went to (none in review, or denied).
    pub trader_id: Option<String>,
    pub requisite_id: Option<String>,
    /// The requisite's details as they may be shown.
    pub requisite_masked: Option<String>,
    #[schema(value_type = Option<String>)]
    pub trader_fee_rate: Option<Decimal>,
    /// The split of the settlement amount: the store's fee, the trader's reward, the platform's
    /// share (their difference, negative when the trader's fee is the higher).
    #[schema(value_type = Option<String>)]
    pub store_fee: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub trader_reward: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub platform_share: Option<Decimal>,
    /// The ledger transfer that holds, then completes, its entry; and the one that reversed it.
    pub hold_transfer_id: Option<Uuid>,
    pub reversal_transfer_id: Option<Uuid>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// Why it was denied, cancelled, failed, disputed or resolved.
    pub reason: Option<String>,
    /// Whether a dispute of it was upheld.
    pub dispute_upheld: bool,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// The log position that created it, and that of the last event that changed it.
    pub created_position: i64,
    pub position: i64,
}

/// A page of orders.
#[derive(Serialize, ToSchema)]
pub struct OrderListPage {
    pub orders: Vec<OrderListItem>,
    /// Pass as `after` for the next page; none: this is the last.
    #[schema(pattern = "^-?[0-9]{1,17}_[0-9]{1,18}$")]
    pub next_after: Option<String>,
}

/// Where a list goes on from: the creation time (µs since the epoch) and creation position of
/// the order the page before ended with, as text `{micros}_{position}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at_micros: i64,
    pub created_position: i64,
}

/// A cursor's text: the digits are bounded so that every text of this shape is a time and a
/// position (years -1198 to 5138, positions below 10^18).
pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,17}_[0-9]{1,18}$";

impl ListCursor {
    pub fn parse(text: &str) -> Option<ListCursor> {
        let (micros, position) = text.split_once('_')?;
        let digits = |s: &str, most: usize| (1..=most).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(micros.strip_prefix('-').unwrap_or(micros), 17) || !digits(position, 18) {
            return None;
        }
        Some(ListCursor { created_at_micros: micros.parse().ok()?, created_position: position.parse().ok()? })
    }

    pub fn to_text(self) -> String {
        format!("{}_{}", self.created_at_micros, self.created_position)
    }
}

/// What the list is read by, checked: every filter optional; `from` inclusive, `to` exclusive
/// on the creation time; `min_amount`, `max_amount` inclusive on the fiat amount.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderListQuery {
    pub store_id: Option<String>,
    pub trader_id: Option<String>,
    /// A status's name.
    pub status: Option<&'static str>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    pub external_order_id: Option<String>,
    pub after: Option<ListCursor>,
    pub limit: i64,
}

/// Orders in the order they were created, each with its cursor; or what went wrong.
pub type Listing<'a> = Pin<Box<dyn Future<Output = Result<Vec<(ListCursor, OrderListItem)>, String>> + Send + 'a>>;

/// Reads orders in the order they were created, each with its cursor.
pub trait OrdersReader: Send + Sync {
    fn list(&self, query: OrderListQuery) -> Listing<'_>;
}

/// Most orders one page holds, and how many without `limit`.
pub const MAX_PAGE: i64 = 1000;
pub const DEFAULT_PAGE: i64 = 100;

/// An order's status, as the list filters on it.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderListStatus {
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

impl OrderListStatus {
    fn as_str(self) -> &'static str {
        use ledger_core::orders::Status;
        match self {
            OrderListStatus::ManualReview => Status::ManualReview,
            OrderListStatus::Pending => Status::Pending,
            OrderListStatus::Completed => Status::Completed,
            OrderListStatus::Disputed => Status::Disputed,
            OrderListStatus::Reversed => Status::Reversed,
            OrderListStatus::Cancelled => Status::Cancelled,
            OrderListStatus::Failed => Status::Failed,
            OrderListStatus::Expired => Status::Expired,
            OrderListStatus::Denied => Status::Denied,
        }
        .as_str()
    }
}

/// An amount's text: a decimal of at most 27 digits, within the ledger's range.
pub const AMOUNT_PATTERN: &str = "^[0-9]{1,15}(\\.[0-9]{1,12})?$";

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this store's orders.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$", max_length = 64)]
    store_id: Option<String>,
    /// Only the orders that went to this trader.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$", max_length = 64)]
    trader_id: Option<String>,
    status: Option<OrderListStatus>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// A fiat amount at least this (decimal string).
    #[param(pattern = "^[0-9]{1,15}(\\.[0-9]{1,12})?$", max_length = 28)]
    min_amount: Option<String>,
    /// A fiat amount at most this.
    #[param(pattern = "^[0-9]{1,15}(\\.[0-9]{1,12})?$", max_length = 28)]
    max_amount: Option<String>,
    /// The store's own id of the order.
    external_order_id: Option<String>,
    /// The `next_after` of the page before.
    #[param(pattern = "^-?[0-9]{1,17}_[0-9]{1,18}$", max_length = 37)]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The texts the list takes that the core has a rule for.
pub const TEXTS: &[(At, Text)] = &[(At::Parameter("list_orders", "external_order_id"), Text::Reference)];

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| ApiError::InvalidQuery(format!("{name} must be RFC 3339, e.g. 2026-12-01T00:00:00Z")))
        })
        .transpose()
}

fn amount_param(name: &str, value: Option<&str>) -> Result<Option<Decimal>, ApiError> {
    value
        .map(|v| {
            v.parse::<Decimal>()
                .ok()
                .filter(|_| amount_shape(v))
                .ok_or_else(|| ApiError::InvalidQuery(format!("{name} must be a decimal string, e.g. 1500.00")))
        })
        .transpose()
}

/// Whether `text` has `AMOUNT_PATTERN`'s shape: 1 to 15 digits, then optionally a point and 1
/// to 12 digits.
fn amount_shape(text: &str) -> bool {
    let digits = |s: &str, most: usize| (1..=most).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((whole, fraction)) => digits(whole, 15) && digits(fraction, 12),
        None => digits(text, 15),
    }
}

/// 422 `invalid_range`: a range whose start is past its end selects nothing, and is a mistake.
fn invalid_range(detail: &str) -> ApiError {
    ApiError::Rejected(Refusal {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid_range",
        detail: detail.to_owned(),
    })
}

/// The caller, if its key reads orders in some scope; refused (and audited) otherwise.
async fn reader_of_orders(state: &ApiState, headers: &HeaderMap) -> Result<ledger_store::keys::Principal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = state.inner.keys.authenticate(bearer(authorization)).await?;
    if let Err(refused) = who.require_some_scope(&READ) {
        state.auditor.denied(&who, &READ.to_string()).await;
        return Err(refused.into());
    }
    Ok(who)
}

#[utoipa::path(get, path = "/v1/orders", tag = "orders", operation_id = "list_orders", params(ListParams),
    responses(
        (status = 200, body = OrderListPage, description = "Orders in the order they were created (by creation time, \
            then log position)"),
        (status = 400, body = Problem, description = "invalid_query: a parameter of the wrong shape or an unknown one"),
        (status = 422, body = Problem, description = "invalid_range: from after to, or min_amount above max_amount"),
        (status = 503, body = Problem, description = "read_model_unavailable: the read models do not run here")),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let who = reader_of_orders(&state, &headers).await?;
    let Query(params) = params.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    for (name, id) in [("store_id", &params.store_id), ("trader_id", &params.trader_id)] {
        if id.as_deref().is_some_and(|id| !ledger_core::orders::decide::valid_id(id)) {
            return Err(ApiError::InvalidQuery(format!("{name} is 1 to 64 of A-Z a-z 0-9 . _ -")));
        }
    }
    let needs: Vec<Need<'_>> = match (params.store_id.as_deref(), params.trader_id.as_deref()) {
        (None, None) => vec![READ],
        (store, trader) => store.into_iter().chain(trader).map(|owner| READ.of(owner)).collect(),
    };
    if !needs.iter().any(|need| who.permissions.grants(need)) {
        let permission = needs[0].to_string();
        state.auditor.denied(&who, &permission).await;
        return Err(KeyError::Forbidden(permission).into());
    }
    let from = time_param("from", params.from.as_deref())?;
    let to = time_param("to", params.to.as_deref())?;
    let min_amount = amount_param("min_amount", params.min_amount.as_deref())?;
    let max_amount = amount_param("max_amount", params.max_amount.as_deref())?;
    let after = match params.after.as_deref() {
        Some(text) => Some(
            ListCursor::parse(text)
                .ok_or_else(|| ApiError::InvalidQuery("after must be the next_after of the page before".to_owned()))?,
        ),
        None => None,
    };
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!("limit must be 1 to {MAX_PAGE}")));
    }
    if params.external_order_id.as_deref().is_some_and(|e| !ledger_core::text::valid_text(e)) {
        return Err(ApiError::InvalidQuery(format!(
            "external_order_id must be 1 to {} characters, none of them a control",
            ledger_core::text::TEXT_MAX_CHARS
        )));
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(invalid_range("from must not be after to"));
    }
    if let (Some(min), Some(max)) = (min_amount, max_amount)
        && min > max
    {
        return Err(invalid_range("min_amount must not be above max_amount"));
    }
    let reader = state.orders.as_ref().ok_or(ApiError::ReadModelMissing)?;
    let query = OrderListQuery {
        store_id: params.store_id,
        trader_id: params.trader_id,
        status: params.status.map(OrderListStatus::as_str),
        from,
        to,
        min_amount,
        max_amount,
        external_order_id: params.external_order_id,
        after,
        limit: limit + 1,
    };
    let mut rows = reader.list(query).await.map_err(ApiError::Internal)?;
    // The row past the page only says there is a next one.
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after = rows.last().filter(|_| more).map(|(cursor, _)| cursor.to_text());
    Ok(json(StatusCode::OK, OrderListPage { orders: rows.into_iter().map(|(_, order)| order).collect(), next_after }))
}

/// `GET /v1/orders`. The orders' commands (`POST /v1/orders`, …) are a router of their own;
/// merged, axum joins the methods of the one path.
pub fn router() -> Router<ApiState> {
    Router::new().route("/v1/orders", get(list))
}

#[derive(OpenApi)]
#[openapi(paths(list), components(schemas(OrderListItem, OrderListPage, OrderListStatus)))]
pub struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_of_the_documented_shapes_reads() {
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        for text in ["0_0", "-99999999999999999_999999999999999999", "99999999999999999_1", "1733550000000000_42"] {
            assert!(pattern.is_match(text), "{text}");
            let cursor = ListCursor::parse(text).unwrap();
            assert_eq!(ListCursor::parse(&cursor.to_text()), Some(cursor));
            // Within the times the read model keeps.
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(cursor.created_at_micros) * 1000);
            assert!(at.is_ok(), "{text}");
        }
        for text in ["", "1", "_1", "1_", "1_-1", "+1_1", "1_1_1", "100000000000000000_1", "1_1000000000000000000"] {
            assert!(!pattern.is_match(text) && ListCursor::parse(text).is_none(), "{text}");
        }
        let amount = regex::Regex::new(AMOUNT_PATTERN).unwrap();
        for text in ["0", "1500.00", "999999999999999.999999999999"] {
            assert!(amount.is_match(text) && amount_param("a", Some(text)).unwrap().is_some(), "{text}");
        }
        for text in ["", "-1", "1.", ".5", "1e3", "1 ", "1000000000000000"] {
            assert!(!amount.is_match(text) && amount_param("a", Some(text)).is_err(), "{text}");
        }
        // The document states these very patterns.
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let params = doc["paths"]["/v1/orders"]["get"]["parameters"].as_array().unwrap();
        let pattern_of = |name: &str| params.iter().find(|p| p["name"] == name).unwrap()["schema"]["pattern"].clone();
        assert_eq!(pattern_of("after"), CURSOR_PATTERN);
        assert_eq!(pattern_of("min_amount"), AMOUNT_PATTERN);
        assert_eq!(pattern_of("max_amount"), AMOUNT_PATTERN);
    }
}
