//! Request and response bodies of the P2P orders' endpoints. Amounts and fees are decimal
//! strings; a store's callback secret is shown once, a requisite's details never (masked, in
//! the answer that sets it and in its trader's).

use ledger_core::orders::state::{Order, Requisite, Store, Trader};
use ledger_core::orders::{OrderKind, Outcome};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ledger::wire::WireAmount;

/// A store: created with a callback secret, else updated (the secret stays).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreRequest {
    /// 1 to 128 characters, no control characters (else `invalid_reference`).
    #[schema(example = "Coffee Shop")]
    pub name: String,
    /// The store's fee on every order: a fraction from 0 to 1 (excluded), at most 6 decimals.
    #[schema(example = "0.035", pattern = "^0(\\.[0-9]{1,6})?$")]
    pub fee: String,
    /// The currency the store is settled in (its account's, and its traders' deposits'); it
    /// cannot change (`settlement_currency_fixed`).
    #[schema(example = "USDT")]
    pub settlement_currency: String,
    /// Where the store's orders' status changes are sent, signed (an order's own URL wins):
    /// `https://` and a public address unless `webhooks.allow_private` is set.
    #[schema(
        pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$",
        min_length = 8,
        max_length = 2048,
        example = "https://shop.example/callbacks"
    )]
    pub callback_url: Option<String>,
}

/// A store as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreBody {
    pub id: String,
    pub name: String,
    #[schema(example = "0.035")]
    pub fee: String,
    pub settlement_currency: String,
    pub callback_url: Option<String>,
    /// The store's account in its settlement currency.
    pub account: Uuid,
    #[schema(example = "0.00")]
    pub balance: String,
    /// The signing secret of its callbacks (`whsec_…`): in the answer that created the store or
    /// rotated its secret only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
    pub version: u32,
    /// The position of the store's latest event.
    pub position: i64,
}

impl StoreBody {
    pub fn new(s: &Store, balance: String, position: i64, secret: Option<String>) -> StoreBody {
        StoreBody {
            id: s.id.clone(),
            name: s.name.clone(),
            fee: s.fee.to_string(),
            settlement_currency: s.settlement_currency.to_string(),
            callback_url: s.callback_url.clone(),
            account: ledger_core::orders::store_account(&s.id, &s.settlement_currency).0.0,
            balance,
            callback_secret: secret,
            version: s.version,
            position,
        }
    }
}

/// A currency's code, in a list.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct WireCurrency(pub String);

impl utoipa::PartialSchema for WireCurrency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A currency's code"))
            .pattern(Some(ledger_core::money::CURRENCY_PATTERN))
            .examples([serde_json::json!("USDT")])
            .into()
    }
}

impl ToSchema for WireCurrency {}

/// A trader.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraderRequest {
    /// The trader's reward on every order it completes: a fraction from 0 to 1 (excluded).
    #[schema(example = "0.02", pattern = "^0(\\.[0-9]{1,6})?$")]
    pub fee: String,
    /// Lower goes first when orders are assigned.
    // u64's format (int64): u32's would be int32, whose range ends at 2^31 - 1.
    #[schema(value_type = u64, minimum = 0, maximum = 4294967295_u64)]
    #[serde(deserialize_with = "whole_u32")]
    pub priority: u32,
    /// Whether orders are assigned to it.
    pub traffic_enabled: bool,
    /// The team lead who may turn its traffic on and off (`orders:traffic:{team_lead}`).
    #[schema(example = "lead-1")]
    pub team_lead: Option<String>,
    /// The settlement currencies it holds a deposit in: its deposit and rewards accounts in each
    /// are opened, so the deposit can be funded by ordinary transfers (at most 16).
    #[serde(default)]
    #[schema(example = json!(["USDT"]), max_items = 16)]
    pub currencies: Vec<WireCurrency>,
}

/// A whole number from 0 to `u32::MAX`, written `14` or `14.0` (JSON Schema's integers).
fn whole_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    crate::ledger::wire::whole_number(d)?.ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}

/// A trader's traffic turned on or off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficRequest {
    pub enabled: bool,
}

/// One of a trader's accounts in a settlement currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraderAccounts {
    pub currency: String,
    pub deposit: Uuid,
    #[schema(example = "100.000000")]
    pub deposit_balance: String,
    /// What the deposit has left after its pending orders' holds.
    pub deposit_available: String,
    pub rewards: Uuid,
    pub rewards_balance: String,
}

/// A trader as it stands, with its accounts and its requisites.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraderBody {
    pub id: String,
    pub fee: String,
    #[schema(value_type = u64, minimum = 0, maximum = 4294967295_u64)]
    pub priority: u32,
    pub traffic_enabled: bool,
    pub team_lead: Option<String>,
    pub accounts: Vec<TraderAccounts>,
    /// Its requisites by id, each with its counters; their details masked only.
    pub requisites: Vec<RequisiteBody>,
    pub version: u32,
    pub position: i64,
}

impl TraderBody {
    pub fn new(t: &Trader, accounts: Vec<TraderAccounts>, requisites: Vec<RequisiteBody>, position: i64) -> TraderBody {
        TraderBody {
            id: t.id.clone(),
            fee: t.fee.to_string(),
            priority: t.priority,
            traffic_enabled: t.traffic_enabled,
            team_lead: t.team_lead.clone(),
            accounts,
            requisites,
            version: t.version,
            position,
        }
    }
}

/// A trader's card or account, in its fiat currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequisiteRequest {
    /// How clients pay: matched against an order's `method`.
    #[schema(example = "card")]
    pub method: String,
    #[schema(example = "Sberbank")]
    pub bank: String,
    /// The fiat currency orders to it are in.
    #[schema(example = "RUB")]
    pub currency: String,
    pub min_amount: WireAmount,
    pub max_amount: WireAmount,
    /// Completed and pending orders of a UTC day stay within it.
    pub daily_limit: WireAmount,
    pub enabled: bool,
    /// The card number or account details: stored encrypted, shown only masked (the last four
    /// characters): 4 to 64 characters, no control characters.
    #[schema(
        example = "4276 0000 0000 4242",
        min_length = 4,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub details: String,
}

/// A requisite as it may be shown: its details masked, never in clear or sealed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequisiteBody {
    pub id: String,
    pub trader_id: String,
    pub method: String,
    pub bank: String,
    pub currency: String,
    /// The details, masked: `•••• 4242`.
    #[schema(example = "•••• 4242")]
    pub masked: String,
    pub min_amount: String,
    pub max_amount: String,
    pub daily_limit: String,
    /// Completed today (UTC) and pending, counted against the daily limit.
    pub turnover_today: String,
    /// The fiat amount of its orders completed today (UTC).
    #[schema(example = "1000.00")]
    pub completed_today: String,
    /// The fiat amount its pending orders hold.
    #[schema(example = "0.00")]
    pub pending: String,
    /// RFC 3339: when an order was last assigned to it (none yet: never).
    pub last_used_at: Option<String>,
    pub enabled: bool,
    pub version: u32,
}

impl RequisiteBody {
    pub fn new(r: &Requisite, now: ledger_core::Timestamp, scale: u32) -> RequisiteBody {
        let at = |d: Decimal| at_scale(d, scale);
        RequisiteBody {
            id: r.id.clone(),
            trader_id: r.trader.clone(),
            method: r.method.clone(),
            bank: r.bank.clone(),
            currency: r.currency.to_string(),
            masked: r.masked.clone(),
            min_amount: at(r.min_amount),
            max_amount: at(r.max_amount),
            daily_limit: at(r.daily_limit),
            turnover_today: at(r.turnover(now)),
            completed_today: at(r.completed_on(now)),
            pending: at(r.pending),
            last_used_at: r.last_used_at.map(crate::rfc3339),
            enabled: r.enabled,
            version: r.version,
        }
    }
}

/// A decimal at a currency's scale, as text.
pub fn at_scale(mut d: Decimal, scale: u32) -> String {
    d.rescale(scale);
    d.to_string()
}

/// Which way the money goes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// A client pays the store through a trader.
    PayIn,
    /// The store pays a client through a trader.
    PayOut,
}

impl From<OrderType> for OrderKind {
    fn from(t: OrderType) -> OrderKind {
        match t {
            OrderType::PayIn => OrderKind::PayIn,
            OrderType::PayOut => OrderKind::PayOut,
        }
    }
}

/// A store asks for a payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The order's id, chosen by the caller: a retry with the same body answers the original;
    /// another body under it, or under the store's `external_order_id`, is `order_exists`.
    pub id: Uuid,
    #[schema(example = "store-1")]
    pub store_id: String,
    #[serde(rename = "type")]
    pub kind: OrderType,
    /// The store's own id of the order.
    #[schema(example = "A-1001")]
    pub external_order_id: String,
    /// The fiat amount, at its currency's scale.
    pub amount: WireAmount,
    /// The fiat currency.
    #[schema(example = "RUB")]
    pub currency: String,
    /// The payment method wanted (a requisite's `method`); any when absent.
    #[schema(example = "card")]
    pub method: Option<String>,
    /// The trader wanted; whichever qualifies when absent.
    pub trader_id: Option<String>,
    /// Where this order's status changes go instead of the store's callback URL (signed with
    /// the store's secret).
    #[schema(
        pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$",
        min_length = 8,
        max_length = 2048,
        example = "https://shop.example/callbacks"
    )]
    pub callback_url: Option<String>,
}

/// No fields: a transition that takes no reason (an empty body, or `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// A reason, where a transition takes one (an empty body: none).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// At most 500 characters, not blank, no control characters.
    pub reason: Option<String>,
}

/// A store disputes a completed order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    pub reason: String,
}

/// How support settles a dispute.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    /// The completion stands.
    Uphold,
    /// Every leg of the completion entry is reversed.
    Reverse,
}

/// Support settles a dispute.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub outcome: ResolveOutcome,
    pub reason: String,
}

impl From<ResolveOutcome> for Outcome {
    fn from(o: ResolveOutcome) -> Outcome {
        match o {
            ResolveOutcome::Uphold => Outcome::Uphold,
            ResolveOutcome::Reverse => Outcome::Reverse,
        }
    }
}

/// The trader's requisite an order went to, and its split.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentBody {
    pub trader_id: String,
    pub requisite_id: String,
    /// What the client may be shown of the requisite: method, bank and masked details.
    pub method: Option<String>,
    pub bank: Option<String>,
    #[schema(example = "•••• 4242")]
    pub masked: String,
    pub trader_fee: String,
    /// The store's fee, the trader's reward and the platform's share, in the settlement currency.
    pub store_fee_amount: String,
    pub trader_reward: String,
    pub platform_amount: String,
    /// The held completion entry (a pending transfer).
    pub hold_transfer: Uuid,
    /// RFC 3339: a pending order still waiting then expires.
    pub expires_at: String,
}

/// An order as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub id: Uuid,
    pub store_id: String,
    #[serde(rename = "type")]
    pub kind: OrderType,
    pub external_order_id: String,
    /// `manual_review`, `pending`, `completed`, `disputed`, `reversed`, `cancelled`, `failed`,
    /// `expired` or `denied`.
    #[schema(example = "pending")]
    pub status: &'static str,
    pub amount: String,
    pub currency: String,
    pub method: Option<String>,
    pub callback_url: Option<String>,
    /// Fiat per unit of the settlement currency, fixed at creation.
    pub rate: String,
    /// amount / rate, rounded down to the settlement currency's scale.
    pub settlement_amount: String,
    pub settlement_currency: String,
    pub store_fee: String,
    pub assignment: Option<AssignmentBody>,
    /// Why it was cancelled, failed, denied, disputed or resolved.
    pub reason: Option<String>,
    /// The entry that reversed it.
    pub reversal_transfer: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub version: u32,
    /// The position of the order's latest event.
    pub position: i64,
}

impl OrderBody {
    /// `requisite`: the assigned requisite's method and bank, where it is still known.
    pub fn new(
        o: &Order,
        requisite: Option<&Requisite>,
        fiat_scale: u32,
        settlement_scale: u32,
        position: i64,
    ) -> OrderBody {
        let kind = match o.kind {
            OrderKind::PayIn => OrderType::PayIn,
            OrderKind::PayOut => OrderType::PayOut,
        };
        let settled = |d: Decimal| at_scale(d, settlement_scale);
        OrderBody {
            id: o.id.0,
            store_id: o.store.clone(),
            kind,
            external_order_id: o.external_order_id.clone(),
            status: o.status.as_str(),
            amount: at_scale(o.amount, fiat_scale),
            currency: o.currency.to_string(),
            method: o.method.clone(),
            callback_url: o.callback_url.clone(),
            rate: o.rate.to_string(),
            settlement_amount: settled(o.settlement_amount),
            settlement_currency: o.settlement_currency.to_string(),
            store_fee: o.store_fee.to_string(),
            assignment: o.assignment.as_ref().map(|a| AssignmentBody {
                trader_id: a.trader.clone(),
                requisite_id: a.requisite.clone(),
                method: requisite.map(|r| r.method.clone()),
                bank: requisite.map(|r| r.bank.clone()),
                masked: a.masked.clone(),
                trader_fee: a.trader_fee.to_string(),
                store_fee_amount: settled(a.split.store_fee),
                trader_reward: settled(a.split.trader_reward),
                platform_amount: settled(a.split.platform),
                hold_transfer: a.hold.0,
                expires_at: crate::rfc3339(a.expires_at),
            }),
            reason: o.reason.clone(),
            reversal_transfer: o.reversal.map(|t| t.0),
            created_at: crate::rfc3339(o.created_at),
            updated_at: crate::rfc3339(o.at),
            completed_at: o.completed_at.map(crate::rfc3339),
            version: o.version,
            position,
        }
    }
}
