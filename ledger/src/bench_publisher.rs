//! `ledger bench-publisher`: publishes the first events of the log at DATABASE_URL to Kafka
//! (KAFKA_BROKERS, else an in-process librdkafka mock cluster) and reports events/s beside a
//! baseline taken in the same run: the same messages produced straight from memory to the same
//! broker (no database, no envelopes, no checkpoints).

use std::time::Instant;

use anyhow::Context;
use sqlx::Connection;
use streams::{KafkaSettings, KafkaSink, Sink, Topics};

#[derive(clap::Args)]
pub struct Args {
    /// How many events of the log to publish, from position 1.
    #[arg(long, default_value_t = 200_000)]
    events: i64,
}

pub async fn run(url: &str, args: Args) -> anyhow::Result<()> {
    let mock;
    let brokers = match std::env::var("KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            mock = rdkafka::mocking::MockCluster::new(1).context("starting a mock cluster")?;
            mock.bootstrap_servers()
        }
    };
    let topics = Topics::with_defaults(&format!("bench{}", uuid::Uuid::new_v4().simple()))?;
    let sink = KafkaSink::new(&KafkaSettings::new(&brokers))?;
    let mut conn = sqlx::PgConnection::connect(url).await.context("connecting to the database")?;
    let existing: Option<i64> = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = $1")
        .bind(streams::publisher::NAME)
        .fetch_optional(&mut conn)
        .await?;
    anyhow::ensure!(existing.is_none(), "this database has a Kafka publisher checkpoint: benchmark on a copy");

    // Baseline: the same messages, produced from memory in pages of the same size.
    let mut batches = Vec::new();
    let mut after = 0;
    while after < args.events {
        let page = ledger_store::log::page(&mut conn, after, streams::publisher::PAGE.min(args.events - after)).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let mut batch = Vec::new();
        for record in &page {
            batch.extend(streams::publisher::messages(record, &topics)?);
        }
        batches.push(batch);
    }
    let events = after;
    let messages: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    for batch in batches {
        sink.send(batch).await?;
    }
    let raw = events as f64 / started.elapsed().as_secs_f64();

    // The publisher: read, wrap, produce, wait for acknowledgements, checkpoint; page by page.
    sqlx::query("INSERT INTO projections (name, version) VALUES ($1, 1)")
        .bind(streams::publisher::NAME)
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut published = 0;
    while published < events {
        let n = streams::publisher::step(&mut conn, &sink, &topics).await?;
        anyhow::ensure!(n > 0, "the log ended early");
        published += n as i64;
    }
    let rate = published as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DELETE FROM projections WHERE name = $1").bind(streams::publisher::NAME).execute(&mut conn).await?;
    println!(
        "{{\"events\":{published},\"messages\":{messages},\"publisher_events_per_second\":{rate:.0},\
         \"raw_produce_events_per_second\":{raw:.0},\"ratio\":{:.2}}}",
        rate / raw
    );
    Ok(())
}
