//! Kafka streams: the event publisher (one more consumer of the ordered log), the inbound
//! consumer framework with a test consumer, the published schemas, and the envelope
//! subscribers receive.

pub mod admin;
pub mod certificates;
pub mod consumer;
pub mod envelope;
pub mod health;
pub mod inbound;
pub mod payouts;
pub mod publisher;
pub mod schemas;
pub mod sink;
pub mod sms;
pub mod subscriber;
pub mod topics;
pub mod wallet;

pub use envelope::Envelope;
pub use publisher::PublisherConfig;
pub use sink::{KafkaSettings, KafkaSink, MemorySink, OutMessage, Sink, SinkError};
pub use topics::Topics;
