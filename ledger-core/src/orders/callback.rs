//! The orders' webhooks: every store owns a callback endpoint (`webhook::owned_endpoint_id` of
//! `store_owner(id)`), made by `StoreCreated` with the store's sealed secret, pointed at its
//! callback URL by `StoreUpdated` and re-keyed by `StoreSecretRotated`; every change of an
//! order's status is an `orders.status_changed` callback through its store's endpoint, to the
//! order's own callback URL when it has one.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::event::Event;
use super::state::{Order, Status};
use super::{ORDER_KIND, store_owner};
use crate::domain::EntityRow;
use crate::ids::{OrderId, Timestamp};
use crate::money::CurrencyCode;
use crate::webhook::{Callback, EndpointChange, OwnedEndpoint};

/// The type of an order's callback.
pub const STATUS_CHANGED: &str = "orders.status_changed";

/// The event types that change a store's endpoint or an order's status.
pub const CALLBACK_TYPES: &[&str] = &[
    "StoreCreated",
    "StoreUpdated",
    "StoreSecretRotated",
    "OrderCreated",
    "OrderApproved",
    "OrderDenied",
    "OrderCompleted",
    "OrderCancelled",
    "OrderFailed",
    "OrderExpired",
    "OrderDisputed",
    "DisputeUpheld",
    "OrderReversed",
];

/// What a store's event does to its endpoint.
pub fn owned_endpoint(event: &Event) -> Option<OwnedEndpoint> {
    let (store, change) = match event {
        Event::StoreCreated(e) => {
            (&e.id, EndpointChange::Created { url: e.callback_url.clone(), secret: e.secret.to_json() })
        }
        Event::StoreUpdated(e) => (&e.id, EndpointChange::Url(e.callback_url.clone())),
        Event::StoreSecretRotated(e) => (&e.id, EndpointChange::Secret(e.secret.to_json())),
        _ => return None,
    };
    Some(OwnedEndpoint { owner: store_owner(store), change })
}

/// What a callback tells of its order, besides the status and time.
struct Told<'a> {
    id: OrderId,
    store: &'a str,
    external_order_id: &'a str,
    amount: Decimal,
    currency: &'a CurrencyCode,
    settlement_amount: Decimal,
    settlement_currency: &'a CurrencyCode,
    rate: Decimal,
    callback_url: Option<&'a str>,
}

impl<'a> Told<'a> {
    fn of(o: &'a Order) -> Told<'a> {
        Told {
            id: o.id,
            store: &o.store,
            external_order_id: &o.external_order_id,
            amount: o.amount,
            currency: &o.currency,
            settlement_amount: o.settlement_amount,
            settlement_currency: &o.settlement_currency,
            rate: o.rate,
            callback_url: o.callback_url.as_deref(),
        }
    }

    /// `{"order_id","external_order_id","status","amount","currency","settlement_amount",
    /// "settlement_currency","rate","timestamp"}`: amounts and rate as decimal strings at the
    /// scale they were stored with, the time as RFC 3339.
    fn callback(&self, status: Status, at: Timestamp) -> Callback {
        Callback {
            owner: store_owner(self.store),
            url: self.callback_url.map(str::to_owned),
            subject: self.id.to_string(),
            name: STATUS_CHANGED,
            data: json!({
                "order_id": self.id.to_string(),
                "external_order_id": self.external_order_id,
                "status": status.as_str(),
                "amount": self.amount.to_string(),
                "currency": self.currency.as_str(),
                "settlement_amount": self.settlement_amount.to_string(),
                "settlement_currency": self.settlement_currency.as_str(),
                "rate": self.rate.to_string(),
                "timestamp": Value::String(at.rfc3339()),
            }),
        }
    }
}

/// The callback of an order's status change. The order's creation carries every field; a later
/// change reads the fields fixed at creation from the order's stored row (`None` without the
/// row of that very order).
pub fn callback(event: &Event, row: Option<&EntityRow>) -> Option<Callback> {
    let status = event.status()?;
    if let Event::Created(e) = event {
        let told = Told {
            id: e.id,
            store: &e.store,
            external_order_id: &e.external_order_id,
            amount: e.amount,
            currency: &e.currency,
            settlement_amount: e.settlement_amount,
            settlement_currency: &e.settlement_currency,
            rate: e.rate,
            callback_url: e.callback_url.as_deref(),
        };
        return Some(told.callback(status, e.at));
    }
    let row = row.filter(|r| r.kind == ORDER_KIND && r.id == event.entity().id)?;
    let order = row.typed::<Order>().ok()?;
    (order.id.0 == row.id).then(|| Told::of(&order).callback(status, crate::domain::DomainEvent::at(event)))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::domain::{DomainEvent, DomainState, Typed};
    use crate::orders::State;
    use crate::orders::command::{OrderKind, Sealed};
    use crate::orders::event::{OrderCreated, OrderTransition, StoreCreated, StoreSecretRotated, StoreUpdated};
    use crate::webhook::owned_endpoint_id;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn code(s: &str) -> CurrencyCode {
        CurrencyCode::parse(s).unwrap()
    }

    fn sealed(n: u8) -> Sealed {
        Sealed { key_id: "k1".into(), nonce: format!("n{n}"), ciphertext: format!("c{n}") }
    }

    const AT: Timestamp = Timestamp(1_700_000_000_250_000);

    fn created(url: Option<&str>, status: Status) -> OrderCreated {
        OrderCreated {
            id: OrderId(uuid::Uuid::from_u128(9)),
            store: "s1".into(),
            kind: OrderKind::PayIn,
            external_order_id: "ext-9".into(),
            amount: dec("1000.00"),
            currency: code("RUB"),
            method: None,
            requested_trader: None,
            callback_url: url.map(str::to_owned),
            rate: dec("92.50"),
            settlement_amount: dec("10.810810"),
            settlement_currency: code("USDT"),
            store_fee: dec("0.02"),
            timeout_seconds: 900,
            dispute_window_hours: 72,
            status,
            assignment: None,
            at: AT,
        }
    }

    /// An order event of the transitions' shape.
    type Transition = fn(Box<OrderTransition>) -> Event;

    fn transition(id: OrderId, at: Timestamp) -> Box<OrderTransition> {
        Box::new(OrderTransition { id, reason: None, transfer: None, at })
    }

    /// The order's stored row, as the writer keeps it after its creation.
    fn stored(c: &OrderCreated) -> EntityRow {
        let mut state = State::default();
        state.apply(&Event::Created(Box::new(c.clone())));
        let row = state.row(Event::Created(Box::new(c.clone())).entity()).unwrap();
        // Read back from a store: text only.
        EntityRow { typed: Typed::default(), ..row }
    }

    #[test]
    fn a_store_owns_an_endpoint_made_repointed_and_rekeyed_by_its_events() {
        let owner = "orders:store:s1".to_owned();
        let made = Event::StoreCreated(Box::new(StoreCreated {
            id: "s1".into(),
            name: "S".into(),
            fee: dec("0.02"),
            settlement_currency: code("USDT"),
            callback_url: Some("https://shop.example/cb".into()),
            secret: sealed(1),
            at: AT,
        }));
        assert_eq!(
            made.owned_endpoint(),
            Some(OwnedEndpoint {
                owner: owner.clone(),
                change: EndpointChange::Created {
                    url: Some("https://shop.example/cb".into()),
                    secret: json!({"key_id": "k1", "nonce": "n1", "ciphertext": "c1"}),
                },
            })
        );
        let updated = |url: Option<&str>| {
            Event::StoreUpdated(Box::new(StoreUpdated {
                id: "s1".into(),
                name: "S".into(),
                fee: dec("0.02"),
                callback_url: url.map(str::to_owned),
                at: AT,
            }))
        };
        assert_eq!(
            updated(Some("https://x.example/")).owned_endpoint(),
            Some(OwnedEndpoint {
                owner: owner.clone(),
                change: EndpointChange::Url(Some("https://x.example/".into()))
            })
        );
        assert_eq!(
            updated(None).owned_endpoint(),
            Some(OwnedEndpoint { owner: owner.clone(), change: EndpointChange::Url(None) })
        );
        let rotated =
            Event::StoreSecretRotated(Box::new(StoreSecretRotated { id: "s1".into(), secret: sealed(2), at: AT }));
        assert_eq!(
            rotated.owned_endpoint(),
            Some(OwnedEndpoint {
                owner: owner.clone(),
                change: EndpointChange::Secret(json!({"key_id": "k1", "nonce": "n2", "ciphertext": "c2"})),
            })
        );
        // Through the sum of every domain's events too.
        assert_eq!(crate::Event::from(rotated.clone()).owned_endpoint(), rotated.owned_endpoint());
        // The id the edge seals the store's secret for.
        assert_eq!(owned_endpoint_id(&owner), owned_endpoint_id(&store_owner("s1")));
        // Store events make no callbacks, order events change no endpoint.
        for e in [&made, &rotated, &updated(None)] {
            assert_eq!(e.callback(None), None);
        }
        let order = Event::Created(Box::new(created(None, Status::Pending)));
        assert_eq!(order.owned_endpoint(), None);
    }

    #[test]
    fn an_order_created_tells_its_status_to_its_url_or_its_stores() {
        let c = created(Some("https://shop.example/o/9"), Status::Pending);
        let callback = Event::Created(Box::new(c.clone())).callback(None).unwrap();
        assert_eq!(
            callback,
            Callback {
                owner: "orders:store:s1".into(),
                url: Some("https://shop.example/o/9".into()),
                subject: c.id.to_string(),
                name: "orders.status_changed",
                data: json!({
                    "order_id": c.id.to_string(),
                    "external_order_id": "ext-9",
                    "status": "pending",
                    "amount": "1000.00",
                    "currency": "RUB",
                    "settlement_amount": "10.810810",
                    "settlement_currency": "USDT",
                    "rate": "92.50",
                    "timestamp": "2023-11-14T22:13:20.25Z",
                }),
            }
        );
        // No URL of its own: the store's (the endpoint's); the status is the one recorded.
        for status in [Status::ManualReview, Status::Denied] {
            let callback = Event::Created(Box::new(created(None, status))).callback(None).unwrap();
            assert_eq!(callback.url, None);
            assert_eq!(callback.data["status"], status.as_str());
        }
        // The sum of every domain's events gives the same.
        let any = crate::Event::from(Event::Created(Box::new(c.clone())));
        assert_eq!(any.callback(None), Some(callback_of(&c)));
    }

    fn callback_of(c: &OrderCreated) -> Callback {
        Event::Created(Box::new(c.clone())).callback(None).unwrap()
    }

    #[test]
    fn a_later_change_reads_the_order_from_its_row_and_tells_the_events_status_and_time() {
        let c = created(Some("https://shop.example/o/9"), Status::Pending);
        let row = stored(&c);
        let later = Timestamp(AT.0 + 60_000_000);
        let cases: [(Transition, &str); 8] = [
            (Event::Denied, "denied"),
            (Event::Completed, "completed"),
            (Event::Cancelled, "cancelled"),
            (Event::Failed, "failed"),
            (Event::Expired, "expired"),
            (Event::Disputed, "disputed"),
            (Event::DisputeUpheld, "completed"),
            (Event::Reversed, "reversed"),
        ];
        for (make, status) in cases {
            let event = make(transition(c.id, later));
            let callback = event.callback(Some(&row)).unwrap();
            let mut expected = callback_of(&c);
            expected.data["status"] = json!(status);
            expected.data["timestamp"] = json!("2023-11-14T22:14:20.25Z");
            assert_eq!(callback, expected, "{}", event.event_type());
            // Without the row nothing can be told.
            assert_eq!(event.callback(None), None);
        }
        let approved = Event::Approved(Box::new(crate::orders::event::OrderApproved {
            id: c.id,
            assignment: crate::orders::event::Assignment {
                trader: "t1".into(),
                requisite: "r1".into(),
                masked: "•••• 1".into(),
                trader_fee: dec("0.01"),
                split: crate::orders::event::Split {
                    store_fee: dec("0.2"),
                    trader_reward: dec("0.1"),
                    platform: dec("0.1"),
                },
                hold: c.id.hold_transfer(),
                expires_at: later,
            },
            at: later,
        }));
        assert_eq!(approved.callback(Some(&row)).unwrap().data["status"], "pending");
    }

    #[test]
    fn a_change_is_told_only_from_its_own_orders_row() {
        let c = created(None, Status::Pending);
        let row = stored(&c);
        let event = Event::Completed(transition(c.id, AT));
        assert!(event.callback(Some(&row)).is_some());
        // Another order's row, a row of another kind, a row whose text is not the order it
        // says: nothing (never another store's callback).
        let other = Event::Completed(transition(OrderId(uuid::Uuid::from_u128(10)), AT));
        assert_eq!(other.callback(Some(&row)), None);
        let kind = EntityRow { kind: "order_store".into(), ..row.clone() };
        assert_eq!(event.callback(Some(&kind)), None);
        let mut other_order = c.clone();
        other_order.id = OrderId(uuid::Uuid::from_u128(10));
        let mislabelled = EntityRow { id: c.id.0, ..stored(&other_order) };
        assert_eq!(event.callback(Some(&mislabelled)), None);
        let broken = EntityRow { state: "{".into(), ..row };
        assert_eq!(event.callback(Some(&broken)), None);
    }

    #[test]
    fn an_event_changes_an_endpoint_or_makes_a_callback_only_if_its_type_is_a_callback_type() {
        let c = created(None, Status::Pending);
        let row = stored(&c);
        let store = StoreCreated {
            id: "s1".into(),
            name: "S".into(),
            fee: dec("0"),
            settlement_currency: code("USDT"),
            callback_url: None,
            secret: sealed(1),
            at: AT,
        };
        let events = [
            Event::StoreCreated(Box::new(store)),
            Event::StoreUpdated(Box::new(StoreUpdated {
                id: "s1".into(),
                name: "S".into(),
                fee: dec("0"),
                callback_url: None,
                at: AT,
            })),
            Event::StoreSecretRotated(Box::new(StoreSecretRotated { id: "s1".into(), secret: sealed(2), at: AT })),
            Event::TraderUpserted(Box::new(crate::orders::event::TraderUpserted {
                id: "t1".into(),
                fee: dec("0"),
                priority: 1,
                traffic_enabled: true,
                team_lead: None,
                currencies: vec![],
                at: AT,
            })),
            Event::RequisiteUpserted(Box::new(crate::orders::event::RequisiteUpserted {
                trader: "t1".into(),
                id: "r1".into(),
                method: "card".into(),
                bank: "B".into(),
                currency: code("RUB"),
                min_amount: dec("1"),
                max_amount: dec("2"),
                daily_limit: dec("3"),
                enabled: true,
                details: sealed(3),
                masked: "•".into(),
                at: AT,
            })),
            Event::Created(Box::new(c.clone())),
            Event::Completed(transition(c.id, AT)),
        ];
        let mut seen = Vec::new();
        for event in &events {
            let makes = event.owned_endpoint().is_some() || event.callback(Some(&row)).is_some();
            assert_eq!(makes, CALLBACK_TYPES.contains(&event.event_type()), "{}", event.event_type());
            seen.push(event.event_type());
        }
        assert_eq!(seen.len(), 7);
        // The rest of the types are order transitions, shown to make callbacks above.
        for t in CALLBACK_TYPES {
            assert!(Event::TYPES.iter().any(|(name, _)| name == t), "{t}");
        }
        assert_eq!(CALLBACK_TYPES.len(), Event::TYPES.len() - 2, "all but the traders' and requisites'");
        assert_eq!(<Event as DomainEvent>::CALLBACK_TYPES, CALLBACK_TYPES);
        assert!(crate::domain::callback_types().eq(CALLBACK_TYPES.iter().copied()), "only the orders have callbacks");
    }
}
