//! Every outbound HTTP call of the engine (webhook receivers, payment providers, SMS gateways)
//! goes through `Client`: HTTPS with certificate verification, timeouts, a connection pool, no
//! redirects and capped answers. `webhooks` signs what the engine sends and verifies what
//! providers send, as the Standard Webhooks specification says. Nothing here logs, and no
//! secret prints in clear.

mod client;
pub mod webhooks;

pub use client::{Client, ClientConfig, OutboundError, Response};
