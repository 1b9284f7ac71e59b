//! Outbound webhooks (Standard Webhooks): endpoints and their sealed secrets (`store`), the
//! follower that makes one message per event and endpoint from the log (`fanout`), and the
//! engine that signs, sends, retries and records every attempt (`deliver`). The rules (types,
//! filters, bodies, schedule, allowed addresses) are `ledger_core::webhook`'s. Beside the
//! operators' endpoints, domain entities own endpoints of their own (a store's callbacks),
//! which the fanout keeps from their events and the operators' API never shows.

pub mod deliver;
pub mod fanout;
pub mod store;

pub use deliver::{Deliverer, DeliveryConfig, Metrics};
pub use fanout::Fanout;
pub use outbound::webhooks::WebhookSecret;
pub use store::{Attempt, Cursor, Delivery, Endpoint, Message, NewEndpoint, Store, StoreError};
