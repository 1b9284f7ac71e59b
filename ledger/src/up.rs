//! `ledger up`: migrations, the writer, and the HTTP API in one process, with graceful shutdown.

use anyhow::Context;
use tracing::info;

use crate::config::Settings;

pub async fn run(url: &str, mut settings: Settings) -> anyhow::Result<()> {
    ledger_store::migrate(url).await.context("applying migrations")?;
    // Before anything starts: missing topics that cannot be created stop start-up here.
    let ready = match &settings.kafka {
        Some(kafka) => {
            let names = crate::kafka::UsedTopics::of(Some(kafka), &settings.domains).written;
            topics_ready(kafka, names).await?
        }
        None => None,
    };
    // The writer slows down rather than run more than max_projection_lag events ahead of the
    // projections this process runs, or more than they apply in max_projection_delay.
    let followers = (settings.projections && settings.max_projection_lag > 0).then(|| {
        let delay = Some(settings.max_projection_delay);
        ledger_store::followers::Followers::with_max_delay(settings.max_projection_lag, delay)
    });
    settings.writer.followers = followers.clone();
    // The read models and the Kafka publisher in this process take what the writer just
    // committed from memory, up to as far behind as the backpressure lets the read models fall
    // (and one commit more).
    if settings.projections || settings.kafka.is_some() {
        let lag = if settings.max_projection_lag > 0 { settings.max_projection_lag as usize } else { 100_000 };
        settings.writer.tail = Some(ledger_store::tail::Tail::new(lag + settings.writer.max_commit_events));
    }
    let (ledger, writer) = ledger_store::Writer::start(url, settings.writer).await.context("starting the writer")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(settings.db_pool_size)
        .connect(url)
        .await
        .context("connecting the pool")?;
    let read_url = settings.read_database_url.as_deref();
    let read_pool = match read_url {
        Some(read_url) => {
            let read_pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(settings.db_pool_size)
                .connect(read_url)
                .await
                .context("connecting the read models' database (LEDGER_READ_DATABASE_URL)")?;
            let mut conn = read_pool.acquire().await.context("connecting the read models' database")?;
            projections::prepare_read_database(&mut conn).await.context("preparing the read models' database")?;
            info!("read models in their own database (LEDGER_READ_DATABASE_URL)");
            Some(read_pool)
        }
        None => None,
    };
    let databases = query_api::Databases { log: pool.clone(), read: read_pool };
    let (stop_projections, projections) = if settings.projections {
        let runners = settings.projection_runners;
        spawn_projections(url, read_url, &projections::Model::EVERY, runners, followers.as_deref(), ledger.tail())
    } else {
        info!("projections are off here (LEDGER_PROJECTIONS=false): run `ledger projections run` elsewhere");
        (tokio::sync::watch::channel(false).0, Vec::new())
    };
    let (stop_kafka, stopped_kafka) = tokio::sync::watch::channel(false);
    let mut publisher = None;
    let mut inbound = None;
    let kafka_config = settings.kafka;
    match &kafka_config {
        None => info!("Kafka publisher off: KAFKA_BROKERS is not set"),
        Some(kafka) => {
            let sink = streams::KafkaSink::new(&kafka.producer).context("creating the Kafka producer")?;
            info!(brokers = kafka.producer.brokers, topics = ?kafka.topics.names(), "Kafka publisher on");
            let (url, stopped) = (url.to_owned(), stopped_kafka.clone());
            let config = streams::PublisherConfig::default();
            let domains = settings.domains.iter().flat_map(|d| d.publisher_topics()).collect();
            let topics = kafka.topics.clone();
            let tail = ledger.tail().cloned();
            publisher = Some(tokio::spawn(async move {
                // Topics the broker could not be asked about at start-up are checked first.
                if let Some(pending) = ready {
                    let mut stop = stopped.clone();
                    tokio::select! {
                        () = pending => {}
                        _ = stop.wait_for(|stopped| *stopped) => return,
                    }
                }
                streams::publisher::run_with(&url, sink, topics, domains, config, stopped, tail.as_ref()).await
            }));
            if let Some(topic) = kafka.transfer_requests_topic.clone() {
                let dead_letters = format!("{topic}.dlq");
                info!(topic, dead_letters, "consuming transfer requests");
                let config = kafka.consumer("ledger-transfer-requests", &[&topic], &dead_letters);
                let handler = streams::inbound::TransferRequests::new(ledger.clone());
                let (pool, stopped) = (pool.clone(), stopped_kafka.clone());
                inbound = Some(tokio::spawn(async move {
                    if let Err(e) = streams::consumer::run(pool, config, handler, stopped).await {
                        tracing::error!(error = %e, "the transfer-request consumer stopped");
                    }
                }));
            }
        }
    }
    let runtime = ledger_store::config::RuntimeConfig::start(url, pool.clone(), settings.runtime.clone())
        .await
        .context("loading the runtime configuration")?;
    let mut api = command_api::ApiState::new(ledger.clone(), pool.clone()).with_runtime_config(runtime.clone());
    let secrets = match crate::env::secrets_key(None, None)? {
        Some((id, key)) => Some(std::sync::Arc::new(
            secrets::LocalKeys::new(&id, &key).context("LEDGER_SECRETS_KEY is 64 hex characters")?,
        ) as std::sync::Arc<dyn secrets::KeyProvider>),
        None => None,
    };
    let cx = crate::domains::Context {
        runtime: &runtime,
        secrets: secrets.as_ref(),
        url,
        ledger: &ledger,
        pool: &pool,
        read_pool: databases.read(),
        kafka: kafka_config.as_ref(),
        stopped: &stopped_kafka,
    };
    let mut domains = Vec::new();
    for domain in &settings.domains {
        domains.push(domain.start(&cx, &mut api)?);
    }
    drop(ledger);
    // `GET /v1/orders` reads the orders read model (the orders' commands are their domain's).
    api = crate::order_reads::equip(api, databases.read());
    if let Some(read) = &databases.read {
        api = api.with_read_database(read.clone());
    }
    if let Some(kafka) = &kafka_config {
        api = api.with_report(std::sync::Arc::new(ConsumedTopics(kafka.health.clone())));
    }
    let queries = query_api::QueryState::with(databases).with_auditor(api.auditor().clone());
    let app = command_api::router(api).merge(query_api::router(queries));
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    info!("command API on http://{addr}/v1 (OpenAPI at /v1/openapi.json, metrics at /metrics)");
    info!("query API on http://{addr}/graphql (subscriptions at ws://{addr}/graphql/ws)");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("serving HTTP")?;
    // In-flight requests have finished and the router (with its writer handle) is gone; the
    // consumer stops next (it holds a handle too): the writer commits what it holds and stops.
    let _ = stop_kafka.send(true);
    if let Some(task) = inbound {
        let _ = task.await;
    }
    // The domains' jobs and consumers hold handles too.
    for domain in domains {
        domain.stop().await;
    }
    writer.await.context("the writer task failed")?;
    if let Some(task) = publisher {
        let _ = task.await;
    }
    let _ = stop_projections.send(true);
    for task in projections {
        let _ = task.await;
    }
    info!("stopped");
    Ok(())
}

/// The consumers' topics in `/healthz` (`kafka_consumers`: each topic's state and lag) and
/// `/metrics`.
struct ConsumedTopics(streams::health::ConsumerHealth);

impl command_api::Report for ConsumedTopics {
    fn name(&self) -> &'static str {
        "kafka_consumers"
    }

    fn health(&self) -> serde_json::Value {
        serde_json::to_value(self.0.topics()).unwrap_or_default()
    }

    fn metrics(&self, out: &mut String) {
        self.0.render(out);
    }
}

/// Makes sure the topics `ledger up` writes to exist (creating the missing ones when
/// `kafka.create_topics` allows). Missing topics that cannot be created stop start-up with
/// their names. A broker that does not answer does not: the ledger runs without Kafka, and the
/// returned future keeps checking (logging why) until the topics are there.
async fn topics_ready(
    kafka: &crate::kafka::KafkaConfig,
    names: Vec<String>,
) -> anyhow::Result<Option<impl std::future::Future<Output = ()> + Send + 'static>> {
    use streams::admin::{TopicsError, ensure_topics};
    let (brokers, policy) = (kafka.producer.brokers.clone(), kafka.topic_policy.clone());
    match ensure_topics(&brokers, &names, &policy).await {
        Ok(created) => {
            if !created.is_empty() {
                info!(
                    ?created,
                    partitions = policy.partitions,
                    replication = policy.replication,
                    "created Kafka topics"
                );
            }
            Ok(None)
        }
        Err(e @ TopicsError::Missing { .. }) => Err(anyhow::anyhow!(
            "{e}. Create them on the broker, or let the ledger create them (kafka.create_topics = true, \
             LEDGER_KAFKA_CREATE_TOPICS)"
        )),
        Err(e @ TopicsError::Unreachable { .. }) => {
            tracing::warn!(error = %e, "cannot check the Kafka topics yet; publishing waits until they exist");
            Ok(Some(async move {
                let mut delay = std::time::Duration::from_secs(1);
                loop {
                    tokio::time::sleep(delay).await;
                    match ensure_topics(&brokers, &names, &policy).await {
                        Ok(created) => {
                            info!(?created, "Kafka topics ready");
                            return;
                        }
                        Err(e) => tracing::error!(error = %e, "Kafka topics not ready; publishing waits"),
                    }
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
            }))
        }
    }
}

/// Starts the projections: one runner applies `models`, reading each page of the log once
/// (reporting to `followers` when given), into `read_url`'s database when given; sending
/// `true` stops it.
/// Runs `models` in `runners` runners (at most one per model), each following the log on its own
/// connections with its share of the models (dealt in turn, so the costliest ledger models land
/// on different runners), and each reporting its checkpoint to the writer's backpressure.
pub fn spawn_projections(
    url: &str,
    read_url: Option<&str>,
    models: &[projections::Model],
    runners: usize,
    followers: Option<&ledger_store::followers::Followers>,
    tail: Option<&ledger_store::tail::Tail>,
) -> (tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = shares(models, runners)
        .into_iter()
        .enumerate()
        .map(|(n, share)| {
            let url = url.to_owned();
            let read_url = read_url.map(str::to_owned);
            let follower = followers.map(|f| f.join(&format!("projections {}", n + 1)));
            let follow = projections::Follow::default();
            let stopped = stopped.clone();
            let tail = tail.cloned();
            tokio::spawn(async move {
                let (read_url, tail) = (read_url.as_deref(), tail.as_ref());
                projections::run_in_process(&url, read_url, &share, follow, stopped, follower, tail).await
            })
        })
        .collect();
    (stop, tasks)
}

/// `models` dealt in turn into `runners` shares (none empty).
fn shares(models: &[projections::Model], runners: usize) -> Vec<Vec<projections::Model>> {
    let n = runners.clamp(1, models.len().max(1));
    let mut shares = vec![Vec::new(); n];
    for (i, model) in models.iter().enumerate() {
        shares[i % n].push(*model);
    }
    shares.retain(|s| !s.is_empty());
    shares
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    info!("shutting down: finishing what is in flight");
}

#[cfg(test)]
mod tests {
    use super::shares;
    use projections::Model;

    #[test]
    fn models_are_dealt_in_turn_into_non_empty_shares() {
        let every = Model::EVERY;
        let names = |shares: Vec<Vec<Model>>| -> Vec<Vec<&str>> {
            shares.iter().map(|s| s.iter().map(|m| m.name()).collect()).collect()
        };
        let two = shares(&every, 2);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0][0].name(), "balances");
        assert_eq!(two[1][0].name(), "journal");
        assert_eq!(two.iter().map(Vec::len).sum::<usize>(), every.len());
        // Every model once, whatever the count.
        for runners in [0, 1, 3, every.len(), every.len() + 5] {
            let dealt = shares(&every, runners);
            assert!(dealt.iter().all(|s| !s.is_empty()));
            assert_eq!(dealt.len(), runners.clamp(1, every.len()));
            let mut seen: Vec<&str> = names(dealt).concat();
            seen.sort();
            let mut all: Vec<&str> = every.iter().map(|m| m.name()).collect();
            all.sort();
            assert_eq!(seen, all);
        }
        assert_eq!(names(shares(&every[..1], 2)), vec![vec!["balances"]]);
        assert!(shares(&[], 2).is_empty());
    }
}
