//! Integration tests of the streams crate: schemas, publisher, consumer, subscriber.

mod schemas;
