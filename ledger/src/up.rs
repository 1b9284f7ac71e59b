//! `ledger up`: migrations, the writer, and the HTTP API in one process, with graceful shutdown.

use anyhow::Context;
use tracing::info;

use crate::config::Settings;

pub async fn run(url: &str, mut settings: Settings) -> anyhow::Result<()> {
    ledger_store::migrate(url).await.context("applying migrations")?;
    // The writer slows down rather than run more than max_projection_lag events ahead of the
    // projections this process runs.
    let followers = (settings.projections && settings.max_projection_lag > 0)
        .then(|| ledger_store::followers::Followers::new(settings.max_projection_lag));
    settings.writer.followers = followers.clone();
    let (ledger, writer) = ledger_store::Writer::start(url, settings.writer).await.context("starting the writer")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(settings.db_pool_size)
        .connect(url)
        .await
        .context("connecting the read pool")?;
    let (stop_projections, projections) = if settings.projections {
        spawn_projections(url, followers.as_deref())
    } else {
        info!("projections are off here (LEDGER_PROJECTIONS=false): run `ledger projections run` elsewhere");
        (tokio::sync::watch::channel(false).0, Vec::new())
    };
    let (stop_kafka, stopped_kafka) = tokio::sync::watch::channel(false);
    let mut publisher = None;
    let mut inbound = None;
    match settings.kafka {
        None => info!("Kafka publisher off: KAFKA_BROKERS is not set"),
        Some(kafka) => {
            let sink = streams::KafkaSink::new(&kafka.producer).context("creating the Kafka producer")?;
            info!(brokers = kafka.producer.brokers, topics = ?kafka.topics.names(), "Kafka publisher on");
            let (url, stopped) = (url.to_owned(), stopped_kafka.clone());
            let config = streams::PublisherConfig::default();
            publisher =
                Some(tokio::spawn(
                    async move { streams::publisher::run(&url, sink, kafka.topics, config, stopped).await },
                ));
            if let Some(topic) = kafka.transfer_requests_topic {
                let dead_letters = format!("{topic}.dlq");
                info!(topic, dead_letters, "consuming transfer requests");
                let config = streams::consumer::ConsumerConfig::new(
                    "ledger-transfer-requests",
                    &kafka.producer.brokers,
                    &[&topic],
                    &dead_letters,
                );
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
    let app = command_api::router(command_api::ApiState::new(ledger, pool.clone()))
        .merge(query_api::router(query_api::QueryState::new(pool)));
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

/// Starts the projections: one runner applies every read model, reading each page of the log
/// once (reporting to `followers` when given); sending `true` stops it.
pub fn spawn_projections(
    url: &str,
    followers: Option<&ledger_store::followers::Followers>,
) -> (tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = url.to_owned();
    let follower = followers.map(|f| f.join("projections"));
    let follow = projections::Follow::default();
    let task = tokio::spawn(async move {
        projections::run_reporting(&url, &projections::Model::ALL, follow, stopped, follower).await
    });
    (stop, vec![task])
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
