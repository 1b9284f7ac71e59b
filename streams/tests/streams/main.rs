//! Integration tests of the streams crate: schemas, publisher, consumer, subscriber. Kafka is
//! librdkafka's mock cluster, or the broker KAFKA_BROKERS names; Postgres is DATABASE_URL.

mod certificates;
mod consumer;
mod payouts;
mod publisher;
mod schemas;
mod sms;
mod support;
mod topics;
mod wallet;
