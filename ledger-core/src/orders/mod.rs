//! P2P payment orders (seed 003): a merchant's store takes payments through traders who hold a
//! deposit with the platform in the store's settlement currency; the client pays the trader in
//! fiat (pay-in), or the trader pays the client for the store (pay-out). The core decides
//! everything that touches money or a limit: the exchange rate and fraud limits an order is
//! created under, which trader's requisite takes it, the hold, the exact multi-leg completion
//! entry, voids, disputes and reversals.
//!
//! Chart of accounts, per settlement currency `{C}`, opened by the first command that needs
//! them: `orders:store:{id}:{C}` (liability, no overdraft), `orders:trader:{id}:deposit:{C}`
//! (liability, no overdraft, funded by ordinary transfers), `orders:trader:{id}:rewards:{C}`
//! (liability, no overdraft) and `orders:platform:profit:{C}` (income). The hold of a pending
//! order is its completion entry, pending: posting it completes the order, voiding it cancels,
//! fails or expires it, reversing it settles a dispute against the trader.

pub mod callback;
pub mod command;
pub mod decide;
pub mod event;
pub mod rejection;
pub mod state;

pub use command::{Command, OrderKind, Outcome, Sealed, Terms};
pub use event::Event;
pub use rejection::Rejection;
pub use state::{State, Status};

use serde_json::Value;
use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{AccountId, OrderId, Timestamp, TransferId};
use crate::money::CurrencyCode;
use crate::settings::{Kind, Segment, Setting};

/// The permissions the orders' handlers ask for (see `crate::permission`), scoped by the store
/// or trader an order concerns (`orders:create:store-1`, `orders:complete:trader-5`).
pub mod scope {
    use crate::permission::Need;

    /// Stores: create orders.
    pub const CREATE: Need<'static> = Need::new("orders", "create");
    /// Traders: complete their orders.
    pub const COMPLETE: Need<'static> = Need::new("orders", "complete");
    /// Stores: cancel their pending orders.
    pub const CANCEL: Need<'static> = Need::new("orders", "cancel");
    /// Traders: fail their pending orders.
    pub const FAIL: Need<'static> = Need::new("orders", "fail");
    /// Stores: dispute their completed orders.
    pub const DISPUTE: Need<'static> = Need::new("orders", "dispute");
    /// Support: settle disputes.
    pub const RESOLVE: Need<'static> = Need::new("orders", "resolve");
    /// Support: approve or deny orders in review.
    pub const REVIEW: Need<'static> = Need::new("orders", "review");
    /// Team leads: turn their traders' traffic on or off (scoped by the team lead's id).
    pub const TRAFFIC: Need<'static> = Need::new("orders", "traffic");
    /// Operators: stores, traders and requisites.
    pub const ADMIN: Need<'static> = Need::new("orders", "admin");
    /// Orders, participants, balances and statistics.
    pub const READ: Need<'static> = Need::read("orders");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] = &[
    scope::CREATE,
    scope::COMPLETE,
    scope::CANCEL,
    scope::FAIL,
    scope::DISPUTE,
    scope::RESOLVE,
    scope::REVIEW,
    scope::TRAFFIC,
    scope::ADMIN,
    scope::READ,
];

/// The kinds of entity, and their stream prefixes.
pub const STORE_KIND: &str = "order_store";
pub const TRADER_KIND: &str = "order_trader";
pub const REQUISITE_KIND: &str = "order_requisite";
pub const ORDER_KIND: &str = "order";

/// At most this many orders expire in one `ExpireDue`.
pub const MAX_EXPIRED_PER_COMMAND: usize = 256;
/// At most this many settlement currencies per trader.
pub const MAX_CURRENCIES: usize = 16;

/// `orders.rate.{FIAT}/{SETTLEMENT}`: fiat per unit of the settlement currency.
pub const RATE_PREFIX: &str = "orders.rate.";
pub const REVIEW_OVER_PREFIX: &str = "orders.fraud.review_over.";
pub const DENY_OVER_PREFIX: &str = "orders.fraud.deny_over.";
pub const TIMEOUT_KEY: &str = "orders.timeout_seconds";
pub const DISPUTE_WINDOW_KEY: &str = "orders.dispute_window_hours";
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 900;
pub const DEFAULT_DISPUTE_WINDOW_HOURS: u32 = 72;

/// The rate key of a pair.
pub fn rate_key(fiat: &CurrencyCode, settlement: &CurrencyCode) -> String {
    format!("{RATE_PREFIX}{fiat}/{settlement}")
}

fn positive(value: &Value) -> Result<(), String> {
    match value.as_str().map(str::parse::<rust_decimal::Decimal>) {
        Some(Ok(d)) if d > rust_decimal::Decimal::ZERO => Ok(()),
        _ => Err("expected a positive decimal".to_owned()),
    }
}

/// The runtime settings orders are created under (`Terms::resolve` reads them).
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "orders.rate.{pair}",
        kind: Kind::Decimal,
        segment: Segment::CurrencyPair,
        default: || Value::Null,
        validate: positive,
        permission: crate::config::scope::WRITE,
        description: "Exchange rate of a pair FIAT/SETTLEMENT (fiat per unit of the settlement currency), \
                      fixed on each order at creation (unset: such orders are refused, no_exchange_rate)",
    },
    Setting {
        name: "orders.fraud.review_over.{currency}",
        kind: Kind::Decimal,
        segment: Segment::Word,
        default: || Value::Null,
        validate: positive,
        permission: crate::config::scope::WRITE,
        description: "Orders above this fiat amount wait for a manual review (unset: none do)",
    },
    Setting {
        name: "orders.fraud.deny_over.{currency}",
        kind: Kind::Decimal,
        segment: Segment::Word,
        default: || Value::Null,
        validate: positive,
        permission: crate::config::scope::WRITE,
        description: "Orders above this fiat amount are denied (unset: none are)",
    },
    Setting {
        name: TIMEOUT_KEY,
        kind: Kind::Integer { min: 60, max: 7 * 86_400 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_TIMEOUT_SECONDS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Seconds a pending order waits for completion before it expires and its hold is voided",
    },
    Setting {
        name: DISPUTE_WINDOW_KEY,
        kind: Kind::Integer { min: 1, max: 90 * 24 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_DISPUTE_WINDOW_HOURS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Hours after completion during which a store may dispute an order",
    },
];

/// The namespace of the orders domain's derived ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x5b7e_0c3a_91d4_4f26_b8e2_7a1c_64d9_03f5);

pub fn store_entity(id: &str) -> EntityRef {
    EntityRef { kind: STORE_KIND, id: Uuid::new_v5(&NAMESPACE, format!("store:{id}").as_bytes()) }
}

pub fn trader_entity(id: &str) -> EntityRef {
    EntityRef { kind: TRADER_KIND, id: Uuid::new_v5(&NAMESPACE, format!("trader:{id}").as_bytes()) }
}

/// A trader's requisite (ids are unique within a trader).
pub fn requisite_entity(trader: &str, id: &str) -> EntityRef {
    EntityRef { kind: REQUISITE_KIND, id: Uuid::new_v5(&NAMESPACE, format!("requisite:{trader}/{id}").as_bytes()) }
}

/// A requisite's natural key, its row's: `{trader}/{id}`.
pub fn requisite_key(trader: &str, id: &str) -> String {
    format!("{trader}/{id}")
}

/// Where the keys of a trader's requisites start: ids hold no `/`, so the rows keyed from it are
/// that trader's requisites and no other's (`t1/…`, never `t10/…`).
pub fn requisites_key_prefix(trader: &str) -> String {
    format!("{trader}/")
}

fn account(code: String) -> (AccountId, String) {
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

/// The owner of a store's callback endpoint (`webhook::owned_endpoint_id`).
pub fn store_owner(store: &str) -> String {
    format!("orders:store:{store}")
}

/// A store's account in its settlement currency: id and code.
pub fn store_account(store: &str, currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("orders:store:{store}:{currency}"))
}

/// A trader's deposit in a settlement currency.
pub fn deposit_account(trader: &str, currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("orders:trader:{trader}:deposit:{currency}"))
}

/// A trader's rewards in a settlement currency.
pub fn rewards_account(trader: &str, currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("orders:trader:{trader}:rewards:{currency}"))
}

/// The platform's profit in a settlement currency.
pub fn platform_account(currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("orders:platform:profit:{currency}"))
}

impl OrderId {
    /// The order's hold: its completion entry, pending.
    pub fn hold_transfer(self) -> TransferId {
        TransferId(Uuid::new_v5(&self.0, b"hold"))
    }

    /// The entry that reverses a completed order.
    pub fn reversal_transfer(self) -> TransferId {
        TransferId(Uuid::new_v5(&self.0, b"reversal"))
    }
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        crate::postings::execute(state, |state, postings| decide::decide(state, postings, self, now))
    }

    fn transfer_ids(&self) -> Vec<TransferId> {
        match self {
            Command::Create(c) => vec![c.id.hold_transfer()],
            Command::Approve { id }
            | Command::Complete { id }
            | Command::Cancel { id, .. }
            | Command::Fail { id, .. } => {
                vec![id.hold_transfer()]
            }
            Command::Resolve { id, .. } => vec![id.hold_transfer(), id.reversal_transfer()],
            Command::Deny { .. }
            | Command::Dispute { .. }
            | Command::UpsertStore(_)
            | Command::RotateStoreSecret(_)
            | Command::UpsertTrader(_)
            | Command::UpsertRequisite(_)
            | Command::SetTraffic { .. }
            | Command::ExpireDue => Vec::new(),
        }
    }

    fn answer(&self) -> Option<Answer> {
        let entity = match self {
            Command::UpsertStore(c) => store_entity(&c.id),
            Command::RotateStoreSecret(c) => store_entity(&c.0),
            Command::UpsertTrader(c) => trader_entity(&c.id),
            Command::UpsertRequisite(c) => requisite_entity(&c.trader, &c.id),
            Command::SetTraffic { trader, .. } => trader_entity(trader),
            Command::ExpireDue => return None,
            _ => EntityRef { kind: ORDER_KIND, id: self.order()?.0 },
        };
        let replay = if matches!(self, Command::Create(_)) { Replay::First } else { Replay::Last };
        Some(Answer { subject: Subject::Entity(entity), replay })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}
