//! Stores, traders, requisites and orders as the writer holds them, and as the store keeps them:
//! one entity row each. A requisite's row carries its counters (last used, today's completed
//! turnover, what its pending orders hold), so assignment reads them without scanning orders.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{OrderKind, Sealed};
use super::event::{Assignment, Event};
use super::{ORDER_KIND, REQUISITE_KIND, STORE_KIND, TRADER_KIND, requisite_entity, store_entity, trader_entity};
use crate::domain::{DomainState, EntityRef, EntityRow, Subject, Touched, Typed};
use crate::ids::{OrderId, Timestamp, TransferId};
use crate::money::{Currencies, CurrencyCode};

/// An order's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
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

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::ManualReview => "manual_review",
            Status::Pending => "pending",
            Status::Completed => "completed",
            Status::Disputed => "disputed",
            Status::Reversed => "reversed",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Denied => "denied",
        }
    }

    /// Whether the table allows going from this status to `to`.
    pub fn may_become(self, to: Status) -> bool {
        TRANSITIONS.contains(&(self, to))
    }
}

/// Every transition an order may make; any other is `invalid_order_state`.
pub const TRANSITIONS: [(Status, Status); 9] = [
    (Status::ManualReview, Status::Pending),
    (Status::ManualReview, Status::Denied),
    (Status::Pending, Status::Completed),
    (Status::Pending, Status::Cancelled),
    (Status::Pending, Status::Failed),
    (Status::Pending, Status::Expired),
    (Status::Completed, Status::Disputed),
    (Status::Disputed, Status::Completed),
    (Status::Disputed, Status::Reversed),
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub fee: Decimal,
    pub settlement_currency: CurrencyCode,
    pub callback_url: Option<String>,
    pub secret: Sealed,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trader {
    pub id: String,
    pub fee: Decimal,
    pub priority: u32,
    pub traffic_enabled: bool,
    pub team_lead: Option<String>,
    pub currencies: Vec<CurrencyCode>,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requisite {
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
    /// When an order was last assigned to it.
    pub last_used_at: Option<Timestamp>,
    /// The UTC day (days since the epoch) `completed_today` counts.
    pub day: i64,
    /// The fiat amount of its orders completed on `day`.
    pub completed_today: Decimal,
    /// The fiat amount its pending orders hold.
    pub pending: Decimal,
    pub at: Timestamp,
    pub version: u32,
}

impl Requisite {
    /// The fiat amount of its orders completed on the UTC day of `now`.
    pub fn completed_on(&self, now: Timestamp) -> Decimal {
        if self.day == day_of(now) { self.completed_today } else { Decimal::ZERO }
    }

    /// What counts against its daily limit on the day of `now`: completed that day, and pending.
    pub fn turnover(&self, now: Timestamp) -> Decimal {
        self.completed_on(now) + self.pending
    }
}

/// The UTC day of a timestamp, in days since the epoch.
pub fn day_of(at: Timestamp) -> i64 {
    at.0.div_euclid(86_400 * Timestamp::MICROS_PER_SECOND)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub store: String,
    pub kind: OrderKind,
    pub external_order_id: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub method: Option<String>,
    pub requested_trader: Option<String>,
    pub callback_url: Option<String>,
    pub rate: Decimal,
    pub settlement_amount: Decimal,
    pub settlement_currency: CurrencyCode,
    pub store_fee: Decimal,
    pub timeout_seconds: u32,
    pub dispute_window_hours: u32,
    pub status: Status,
    pub assignment: Option<Assignment>,
    pub reason: Option<String>,
    pub completed_at: Option<Timestamp>,
    /// Whether a dispute of it was ever upheld.
    pub upheld: bool,
    pub reversal: Option<TransferId>,
    pub created_at: Timestamp,
    pub at: Timestamp,
    pub version: u32,
}

impl Order {
    /// The requisite it is assigned to, if any.
    pub fn requisite(&self) -> Option<EntityRef> {
        self.assignment.as_ref().map(|a| requisite_entity(&a.trader, &a.requisite))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    stores: HashMap<Uuid, Store>,
    traders: HashMap<Uuid, Trader>,
    /// Each trader's entity id by its id: assignment looks a trader up per requisite, and an
    /// entity id is a hash of the id.
    trader_ids: HashMap<String, Uuid>,
    /// By entity id, in a tree so that assignment walks them in one order on every replay.
    requisites: BTreeMap<Uuid, Requisite>,
    orders: HashMap<OrderId, Order>,
    by_external: HashMap<(String, String), OrderId>,
    /// Pending orders by deadline.
    due: BTreeSet<(Timestamp, OrderId)>,
}

impl State {
    pub fn store(&self, id: &str) -> Option<&Store> {
        self.stores.get(&store_entity(id).id)
    }

    pub fn trader(&self, id: &str) -> Option<&Trader> {
        self.trader_ids.get(id).and_then(|entity| self.traders.get(entity))
    }

    fn insert_trader(&mut self, entity: Uuid, trader: Trader) {
        self.trader_ids.insert(trader.id.clone(), entity);
        self.traders.insert(entity, trader);
    }

    pub fn requisite(&self, trader: &str, id: &str) -> Option<&Requisite> {
        self.requisites.get(&requisite_entity(trader, id).id)
    }

    pub fn requisites(&self) -> impl Iterator<Item = &Requisite> {
        self.requisites.values()
    }

    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// The order a store knows by its own id.
    pub fn by_external(&self, store: &str, external_order_id: &str) -> Option<&Order> {
        self.by_external.get(&(store.to_owned(), external_order_id.to_owned())).map(|id| &self.orders[id])
    }

    /// The pending orders whose deadline is at or before `now`, the earliest first.
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = OrderId> + '_ {
        self.due.iter().take_while(move |(at, _)| *at <= now).map(|(_, id)| *id)
    }

    fn insert_order(&mut self, order: Order) {
        if order.status == Status::Pending
            && let Some(a) = &order.assignment
        {
            self.due.insert((a.expires_at, order.id));
        }
        self.by_external.insert((order.store.clone(), order.external_order_id.clone()), order.id);
        self.orders.insert(order.id, order);
    }

    fn requisite_mut(&mut self, entity: EntityRef) -> &mut Requisite {
        let r = self.requisites.get_mut(&entity.id).expect("orders name requisites in memory");
        r.version += 1;
        r
    }

    /// Moves the order's requisite's counters as the order leaves `pending` for `to`.
    fn release(&mut self, id: OrderId, to: Status, at: Timestamp) {
        let order = &self.orders[&id];
        let (amount, requisite) = (order.amount, order.requisite().expect("pending orders are assigned"));
        let expires_at = order.assignment.as_ref().map(|a| a.expires_at).expect("pending orders are assigned");
        self.due.remove(&(expires_at, id));
        let r = self.requisite_mut(requisite);
        r.pending -= amount;
        if to == Status::Completed {
            if r.day != day_of(at) {
                r.day = day_of(at);
                r.completed_today = Decimal::ZERO;
            }
            r.completed_today += amount;
        }
    }

    /// Assigns the order: its requisite counts it as pending and as its latest use.
    fn assign(&mut self, id: OrderId, assignment: &Assignment, at: Timestamp) {
        let amount = self.orders[&id].amount;
        self.due.insert((assignment.expires_at, id));
        let r = self.requisite_mut(requisite_entity(&assignment.trader, &assignment.requisite));
        r.pending += amount;
        r.last_used_at = Some(at);
    }

    fn order_mut(&mut self, id: OrderId, status: Status, reason: &Option<String>, at: Timestamp) -> &mut Order {
        let o = self.orders.get_mut(&id).expect("events name orders in memory");
        o.version += 1;
        o.status = status;
        o.reason.clone_from(reason);
        o.at = at;
        o
    }
}

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] = &[STORE_KIND, TRADER_KIND, REQUISITE_KIND, ORDER_KIND];

    const SETTINGS: &'static [crate::settings::Setting] = super::SETTINGS;

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::StoreCreated(e) => {
                let store = Store {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    fee: e.fee,
                    settlement_currency: e.settlement_currency.clone(),
                    callback_url: e.callback_url.clone(),
                    secret: e.secret.clone(),
                    at: e.at,
                    version: 1,
                };
                assert!(self.stores.insert(store_entity(&e.id).id, store).is_none(), "store {} made twice", e.id);
            }
            Event::StoreUpdated(e) => {
                let s = self.stores.get_mut(&store_entity(&e.id).id).expect("events name stores in memory");
                s.name.clone_from(&e.name);
                s.fee = e.fee;
                s.callback_url.clone_from(&e.callback_url);
                s.at = e.at;
                s.version += 1;
            }
            Event::StoreSecretRotated(e) => {
                let s = self.stores.get_mut(&store_entity(&e.id).id).expect("events name stores in memory");
                s.secret = e.secret.clone();
                s.at = e.at;
                s.version += 1;
            }
            Event::TraderUpserted(e) => {
                let version = self.trader(&e.id).map_or(0, |t| t.version) + 1;
                let trader = Trader {
                    id: e.id.clone(),
                    fee: e.fee,
                    priority: e.priority,
                    traffic_enabled: e.traffic_enabled,
                    team_lead: e.team_lead.clone(),
                    currencies: e.currencies.clone(),
                    at: e.at,
                    version,
                };
                self.insert_trader(trader_entity(&e.id).id, trader);
            }
            Event::RequisiteUpserted(e) => {
                let key = requisite_entity(&e.trader, &e.id).id;
                let before = self.requisites.get(&key);
                let requisite = Requisite {
                    trader: e.trader.clone(),
                    id: e.id.clone(),
                    method: e.method.clone(),
                    bank: e.bank.clone(),
                    currency: e.currency.clone(),
                    min_amount: e.min_amount,
                    max_amount: e.max_amount,
                    daily_limit: e.daily_limit,
                    enabled: e.enabled,
                    details: e.details.clone(),
                    masked: e.masked.clone(),
                    last_used_at: before.and_then(|r| r.last_used_at),
                    day: before.map_or(0, |r| r.day),
                    completed_today: before.map_or(Decimal::ZERO, |r| r.completed_today),
                    pending: before.map_or(Decimal::ZERO, |r| r.pending),
                    at: e.at,
                    version: before.map_or(0, |r| r.version) + 1,
                };
                self.requisites.insert(key, requisite);
            }
            Event::Created(e) => {
                assert!(!self.orders.contains_key(&e.id), "order {} made twice", e.id);
                self.insert_order(Order {
                    id: e.id,
                    store: e.store.clone(),
                    kind: e.kind,
                    external_order_id: e.external_order_id.clone(),
                    amount: e.amount,
                    currency: e.currency.clone(),
                    method: e.method.clone(),
                    requested_trader: e.requested_trader.clone(),
                    callback_url: e.callback_url.clone(),
                    rate: e.rate,
                    settlement_amount: e.settlement_amount,
                    settlement_currency: e.settlement_currency.clone(),
                    store_fee: e.store_fee,
                    timeout_seconds: e.timeout_seconds,
                    dispute_window_hours: e.dispute_window_hours,
                    // Counted in by `assign` below.
                    status: e.status,
                    assignment: None,
                    reason: None,
                    completed_at: None,
                    upheld: false,
                    reversal: None,
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                });
                if let Some(a) = &e.assignment {
                    self.assign(e.id, a, e.at);
                    self.orders.get_mut(&e.id).expect("just inserted").assignment = Some(a.clone());
                }
            }
            Event::Approved(e) => {
                self.order_mut(e.id, Status::Pending, &None, e.at).assignment = Some(e.assignment.clone());
                self.assign(e.id, &e.assignment, e.at);
            }
            Event::Completed(e) => {
                self.release(e.id, Status::Completed, e.at);
                self.order_mut(e.id, Status::Completed, &e.reason, e.at).completed_at = Some(e.at);
            }
            Event::Cancelled(e) | Event::Failed(e) | Event::Expired(e) => {
                let status = event.status().expect("order events have a status");
                self.release(e.id, status, e.at);
                self.order_mut(e.id, status, &e.reason, e.at);
            }
            Event::Denied(e) | Event::Disputed(e) => {
                let status = event.status().expect("order events have a status");
                self.order_mut(e.id, status, &e.reason, e.at);
            }
            Event::DisputeUpheld(e) => {
                self.order_mut(e.id, Status::Completed, &e.reason, e.at).upheld = true;
            }
            Event::Reversed(e) => {
                self.order_mut(e.id, Status::Reversed, &e.reason, e.at).reversal = e.transfer;
            }
        }
    }

    /// An order's assignment and its leaving `pending` change its requisite's counters.
    fn touched(&self, event: &Event, out: &mut Vec<Touched>) {
        let requisite = match event {
            Event::Created(e) => e.assignment.as_ref().map(|a| requisite_entity(&a.trader, &a.requisite)),
            Event::Approved(e) => Some(requisite_entity(&e.assignment.trader, &e.assignment.requisite)),
            Event::Completed(e) | Event::Cancelled(e) | Event::Failed(e) | Event::Expired(e) => {
                self.order(e.id).and_then(Order::requisite)
            }
            _ => None,
        };
        if let Some(r) = requisite {
            out.push(Touched { subject: Subject::Entity(r), moves: false });
        }
    }

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            STORE_KIND => self.stores.get(&entity.id).map(|s| row(STORE_KIND, entity.id, s.id.clone(), s.version, s)),
            TRADER_KIND => {
                self.traders.get(&entity.id).map(|t| row(TRADER_KIND, entity.id, t.id.clone(), t.version, t))
            }
            REQUISITE_KIND => self.requisites.get(&entity.id).map(requisite_row),
            _ => self.orders.get(&OrderId(entity.id)).map(order_row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        let stores = self.stores.iter().map(|(id, s)| row(STORE_KIND, *id, s.id.clone(), s.version, s));
        let traders = self.traders.iter().map(|(id, t)| row(TRADER_KIND, *id, t.id.clone(), t.version, t));
        stores
            .chain(traders)
            .chain(self.requisites.values().map(requisite_row))
            .chain(self.orders.values().map(order_row))
            .collect()
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let mismatch = || format!("row {} does not match the {} it holds", stored.key, stored.kind);
        let check = |entity: EntityRef, key: String, version: u32| {
            (entity.id == stored.id && key == stored.key && version == stored.version)
                .then_some(())
                .ok_or_else(mismatch)
        };
        match stored.kind.as_str() {
            STORE_KIND => {
                let s: Store = stored.parse().map_err(|e| e.to_string())?;
                check(store_entity(&s.id), s.id.clone(), s.version)?;
                self.stores.insert(stored.id, s);
            }
            TRADER_KIND => {
                let t: Trader = stored.parse().map_err(|e| e.to_string())?;
                check(trader_entity(&t.id), t.id.clone(), t.version)?;
                self.insert_trader(stored.id, t);
            }
            REQUISITE_KIND => {
                let r: Requisite = stored.parse().map_err(|e| e.to_string())?;
                check(requisite_entity(&r.trader, &r.id), requisite_key(&r), r.version)?;
                self.requisites.insert(stored.id, r);
            }
            _ => {
                let o: Order = stored.parse().map_err(|e| e.to_string())?;
                check(EntityRef { kind: ORDER_KIND, id: o.id.0 }, o.id.to_string(), o.version)?;
                self.insert_order(o);
            }
        }
        Ok(())
    }
}

fn requisite_key(r: &Requisite) -> String {
    super::requisite_key(&r.trader, &r.id)
}

fn row<T: Serialize + Clone + Send + Sync + 'static>(
    kind: &str,
    id: Uuid,
    key: String,
    version: u32,
    value: &T,
) -> EntityRow {
    EntityRow {
        kind: kind.to_owned(),
        id,
        key,
        version,
        // Structs of strings, numbers and ids always serialize.
        state: serde_json::to_string(value).expect("orders' entities serialize").into(),
        typed: Typed::of(value.clone()),
    }
}

fn requisite_row(r: &Requisite) -> EntityRow {
    row(REQUISITE_KIND, requisite_entity(&r.trader, &r.id).id, requisite_key(r), r.version, r)
}

fn order_row(o: &Order) -> EntityRow {
    row(ORDER_KIND, o.id.0, o.id.to_string(), o.version, o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::event::RequisiteUpserted;
    use crate::orders::{requisite_key, requisites_key_prefix};

    fn upserted(trader: &str, id: &str) -> Event {
        Event::RequisiteUpserted(Box::new(RequisiteUpserted {
            trader: trader.into(),
            id: id.into(),
            method: "card".into(),
            bank: "Bank".into(),
            currency: CurrencyCode::parse("RUB").unwrap(),
            min_amount: Decimal::ONE,
            max_amount: Decimal::TEN,
            daily_limit: Decimal::ONE_HUNDRED,
            enabled: true,
            details: Sealed { key_id: "k1".into(), nonce: "n".into(), ciphertext: format!("sealed-{id}") },
            masked: "•••• 4242".into(),
            at: Timestamp(0),
        }))
    }

    #[test]
    fn a_traders_requisites_are_the_rows_keyed_from_its_prefix_and_no_other_traders() {
        let mut state = State::default();
        for (trader, id) in [("t1", "b"), ("t10", "a"), ("t1", "a"), ("t2", "a"), ("t1", "b")] {
            state.apply(&upserted(trader, id));
        }
        let requisites: Vec<EntityRow> = state.rows().into_iter().filter(|r| r.kind == REQUISITE_KIND).collect();
        assert_eq!(requisites.len(), 4, "an upsert of the same ids changes its row");
        for row in &requisites {
            let r: Requisite = row.parse().unwrap();
            assert_eq!(
                (row.id, row.key.as_str()),
                (requisite_entity(&r.trader, &r.id).id, requisite_key(&r.trader, &r.id).as_str())
            );
        }
        let of = |trader: &str| {
            let prefix = requisites_key_prefix(trader);
            let mut keys: Vec<&str> =
                requisites.iter().map(|r| r.key.as_str()).filter(|k| k.starts_with(&prefix)).collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(of("t1"), ["t1/a", "t1/b"], "t10's requisite is not t1's");
        assert_eq!(of("t10"), ["t10/a"]);
        assert!(of("t3").is_empty());
    }
}
