//! A BI subscriber: reads the ledger's event topic and rebuilds every account's balances.
//!
//! ```text
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run -p streams --example balances -- ledger.events
//! ```
//! It prints one JSON line per account once the topic has been quiet for two seconds.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use streams::Envelope;
use streams::subscriber::BalanceBook;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers = std::env::var("KAFKA_BROKERS").map_err(|_| "set KAFKA_BROKERS")?;
    let topic = std::env::args().nth(1).unwrap_or_else(|| "ledger.events".to_owned());
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("balances-example-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let mut book = BalanceBook::default();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        let message = message?;
        let envelope: Envelope = serde_json::from_slice(message.payload().unwrap_or_default())?;
        book.apply(&envelope)?;
    }
    for (account, t) in book.accounts() {
        let line = serde_json::json!({
            "account": account,
            "debits_posted": t.debits_posted.to_string(),
            "credits_posted": t.credits_posted.to_string(),
            "debits_pending": t.debits_pending.to_string(),
            "credits_pending": t.credits_pending.to_string(),
        });
        println!("{line}");
    }
    eprintln!("{} events, {} accounts", book.events(), book.accounts().len());
    Ok(())
}
