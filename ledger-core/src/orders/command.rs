//! What the admin API, stores, traders and support ask of P2P orders.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::OrderId;
use crate::money::CurrencyCode;

pub use crate::sealed::Sealed;

/// Which way the money goes: a client pays a store through a trader (`pay_in`), or a store pays
/// a client through a trader (`pay_out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    PayIn,
    PayOut,
}

/// A store's fields: created with the sealed secret the edge generated, else updated (the
/// secret is then left as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpsertStore {
    pub id: String,
    pub name: String,
    pub fee: Decimal,
    pub settlement_currency: CurrencyCode,
    pub callback_url: Option<String>,
    pub secret: Sealed,
}

/// A trader's fields. `currencies`: the settlement currencies it holds a deposit in; their
/// deposit and rewards accounts are opened (once) so the deposit can be funded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpsertTrader {
    pub id: String,
    pub fee: Decimal,
    pub priority: u32,
    pub traffic_enabled: bool,
    pub team_lead: Option<String>,
    pub currencies: Vec<CurrencyCode>,
}

/// A trader's card or account. Amounts are in the requisite's fiat `currency`; `masked` is
/// what may be shown of the sealed details (`•••• 4242`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpsertRequisite {
    pub trader: String,
    pub id: String,
    pub method: String,
    pub bank: String,
    pub currency: CurrencyCode,
    pub min_amount: Decimal,
    pub max_amount: Decimal,
    pub daily_limit: Decimal,
    pub enabled: bool,
    pub details: Sealed,
    pub masked: String,
}

/// The runtime settings an order is created under, resolved by the edge from the runtime
/// configuration (see [`Terms::resolve`]) and fixed on the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Fiat per unit of the settlement currency (`orders.rate.{FIAT}/{SETTLEMENT}`).
    pub rate: Option<Decimal>,
    /// Orders above this fiat amount wait for a review (`orders.fraud.review_over.{FIAT}`).
    pub review_over: Option<Decimal>,
    /// Orders above this fiat amount are denied (`orders.fraud.deny_over.{FIAT}`).
    pub deny_over: Option<Decimal>,
    /// How long a pending order waits for completion (`orders.timeout_seconds`).
    pub timeout_seconds: u32,
    /// How long after completion a store may dispute (`orders.dispute_window_hours`).
    pub dispute_window_hours: u32,
}

impl Terms {
    /// The terms in effect for an order from `fiat` settled in `settlement`, read through
    /// `lookup` (the runtime configuration's value in effect for a key, `null` when unset).
    pub fn resolve(lookup: impl Fn(&str) -> Value, fiat: &CurrencyCode, settlement: &CurrencyCode) -> Terms {
        let decimal = |key: String| lookup(&key).as_str().and_then(|s| s.parse::<Decimal>().ok());
        let seconds =
            |key: &str, default: u32| lookup(key).as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
        Terms {
            rate: decimal(super::rate_key(fiat, settlement)),
            review_over: decimal(format!("{}{fiat}", super::REVIEW_OVER_PREFIX)),
            deny_over: decimal(format!("{}{fiat}", super::DENY_OVER_PREFIX)),
            timeout_seconds: seconds(super::TIMEOUT_KEY, super::DEFAULT_TIMEOUT_SECONDS),
            dispute_window_hours: seconds(super::DISPUTE_WINDOW_KEY, super::DEFAULT_DISPUTE_WINDOW_HOURS),
        }
    }
}

/// A store asks for a payment. `amount` is fiat, in `currency`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOrder {
    pub id: OrderId,
    pub store: String,
    pub kind: OrderKind,
    pub external_order_id: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub method: Option<String>,
    /// The trader the store asks for; any trader that qualifies when absent.
    pub trader: Option<String>,
    pub callback_url: Option<String>,
    pub terms: Terms,
}

/// How support settles a dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The completion stands.
    Uphold,
    /// The completion entry is reversed, leg by leg.
    Reverse,
}

/// The large commands are boxed, so the sum of every domain's commands stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    UpsertStore(Box<UpsertStore>),
    /// A new sealed callback secret for the store.
    RotateStoreSecret(Box<(String, Sealed)>),
    UpsertTrader(Box<UpsertTrader>),
    UpsertRequisite(Box<UpsertRequisite>),
    /// Turns a trader's traffic on or off. `team_lead`: the team lead the caller acts as (the
    /// trader must still be in that team lead's team); none for an operator.
    SetTraffic {
        trader: String,
        enabled: bool,
        team_lead: Option<String>,
    },
    Create(Box<CreateOrder>),
    /// Support lets an order in review go on: assigned and held as a new order would be.
    Approve {
        id: OrderId,
    },
    /// Support denies an order in review.
    Deny {
        id: OrderId,
        reason: Option<String>,
    },
    /// The trader saw the fiat arrive (pay-in) or sent it (pay-out): the entry is posted.
    Complete {
        id: OrderId,
    },
    /// The store withdraws a pending order: the hold is voided.
    Cancel {
        id: OrderId,
        reason: Option<String>,
    },
    /// The trader could not carry out a pending order: the hold is voided.
    Fail {
        id: OrderId,
        reason: Option<String>,
    },
    /// The store disputes a completed order, within the dispute window.
    Dispute {
        id: OrderId,
        reason: String,
    },
    /// Support settles a dispute.
    Resolve {
        id: OrderId,
        outcome: Outcome,
        reason: String,
    },
    /// Expire the pending orders past their deadline (at most `MAX_EXPIRED_PER_COMMAND`).
    ExpireDue,
}

impl Command {
    /// The order the command names, if one.
    pub fn order(&self) -> Option<OrderId> {
        match self {
            Command::Create(c) => Some(c.id),
            Command::Approve { id }
            | Command::Deny { id, .. }
            | Command::Complete { id }
            | Command::Cancel { id, .. }
            | Command::Fail { id, .. }
            | Command::Dispute { id, .. }
            | Command::Resolve { id, .. } => Some(*id),
            Command::UpsertStore(_)
            | Command::RotateStoreSecret(_)
            | Command::UpsertTrader(_)
            | Command::UpsertRequisite(_)
            | Command::SetTraffic { .. }
            | Command::ExpireDue => None,
        }
    }
}
