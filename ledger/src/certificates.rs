//! The certificates domain inside `ledger up`: its settings (the `[certificates]` table), its
//! expiry job, its SMS outbox, and its Kafka consumers (uploads, sales orders, payments). Its
//! published topics ride on the Kafka publisher (`Domain::publisher_topics`). Everything here
//! stops when `stopped` turns true, except the expiry job, which is aborted (it holds a writer
//! handle and does nothing between ticks).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_store::LedgerHandle;
use tokio::task::JoinHandle;
use tracing::info;

use crate::domains::{Context as Up, Domain, Running};
use crate::env::{env, topic};
use crate::kafka::KafkaConfig;

/// The `[certificates]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    cvc_key: Option<String>,
    cvc_key_id: Option<String>,
    expiry_interval_ms: Option<u64>,
    sms_url: Option<String>,
    sms_text: Option<String>,
    kafka: Option<bool>,
    upload_topic: Option<String>,
    orders_topic: Option<String>,
    payments_topic: Option<String>,
    state_topic: Option<String>,
    transaction_topic: Option<String>,
    bi_topic: Option<String>,
}

/// Gift certificates: the key their CVCs are sealed with, how often expiry runs, where CVCs
/// are sent.
#[derive(Debug)]
pub struct Config {
    /// (key id, 64 hex characters): the secrets key (`crate::env::secrets_key`); without it
    /// activations and authorizations answer 503.
    pub cvc_key: Option<(String, String)>,
    pub expiry_interval: Duration,
    /// The SMS gateway CVCs are sent to (`https://…`, or `http://…` for the simulator or a local
    /// relay); none: CVCs are not sent.
    pub sms_url: Option<String>,
    /// The message, with `{code}` and `{cvc}` filled in.
    pub sms_text: Option<String>,
}

/// The domain's topics: consumed (uploads, orders, payments; each with a `.dlq`) and published
/// (state, transactions, BI).
#[derive(Debug, Clone)]
pub struct Kafka {
    pub upload: String,
    pub sales: streams::certificates::sales::SalesTopics,
    pub published: streams::certificates::CertificateTopics,
}

impl Kafka {
    pub fn dead_letters(topic: &str) -> String {
        format!("{topic}.dlq")
    }

    /// The topics it writes: the three it publishes and its consumers' dead-letter topics.
    pub fn written_topics(&self) -> Vec<String> {
        use streams::publisher::DomainTopics;
        let mut names = self.published.names();
        for consumed in [&self.upload, &self.sales.orders, &self.sales.payments] {
            names.push(Self::dead_letters(consumed));
        }
        names
    }
}

/// The domain's settings from its table, overridden by `LEDGER_SECRETS_KEY*` (or its older
/// name `LEDGER_CVC_KEY*`), `LEDGER_SMS_*` and
/// `LEDGER_CERTIFICATES_*`; its topics unless `LEDGER_CERTIFICATES_KAFKA=false` (used only when
/// Kafka is configured).
pub fn settings(file: File) -> anyhow::Result<(Config, Option<Kafka>)> {
    let published = streams::certificates::CertificateTopics::default();
    let sales = streams::certificates::sales::SalesTopics::default();
    let kafka = if env::<bool>("LEDGER_CERTIFICATES_KAFKA")?.or(file.kafka).unwrap_or(true) {
        Some(Kafka {
            upload: topic("LEDGER_CERTIFICATES_UPLOAD_TOPIC", file.upload_topic, "GiftCertificateUpload".into())?,
            sales: streams::certificates::sales::SalesTopics {
                orders: topic("LEDGER_CERTIFICATES_ORDERS_TOPIC", file.orders_topic, sales.orders)?,
                payments: topic("LEDGER_CERTIFICATES_PAYMENTS_TOPIC", file.payments_topic, sales.payments)?,
            },
            published: streams::certificates::CertificateTopics {
                state: topic("LEDGER_CERTIFICATES_STATE_TOPIC", file.state_topic, published.state)?,
                transaction: topic(
                    "LEDGER_CERTIFICATES_TRANSACTION_TOPIC",
                    file.transaction_topic,
                    published.transaction,
                )?,
                bi: topic("LEDGER_CERTIFICATES_BI_TOPIC", file.bi_topic, published.bi)?,
            },
        })
    } else {
        None
    };
    let config = Config {
        cvc_key: crate::env::secrets_key(file.cvc_key, file.cvc_key_id)?,
        expiry_interval: Duration::from_millis(
            env("LEDGER_CERTIFICATES_EXPIRY_INTERVAL_MS")?.or(file.expiry_interval_ms).unwrap_or(60_000u64).max(10),
        ),
        sms_url: env::<String>("LEDGER_SMS_URL")?.or(file.sms_url).filter(|u| !u.trim().is_empty()),
        sms_text: env("LEDGER_SMS_TEXT")?.or(file.sms_text),
    };
    Ok((config, kafka))
}

/// The domain as `ledger up` runs it.
#[derive(Debug)]
pub struct Certificates {
    config: Config,
    kafka: Option<Kafka>,
}

/// Reads the `[certificates]` table and the domain's variables.
pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let (config, kafka) = settings(crate::domains::table("certificates", table)?)?;
    Ok(Box::new(Certificates { config, kafka }))
}

impl Domain for Certificates {
    fn written_topics(&self) -> Vec<String> {
        self.kafka.iter().flat_map(Kafka::written_topics).collect()
    }

    /// Uploads, orders and payments.
    fn consumed_topics(&self) -> Vec<String> {
        self.kafka.iter().flat_map(|k| [k.upload.clone(), k.sales.orders.clone(), k.sales.payments.clone()]).collect()
    }

    /// Its three topics: state, transactions, BI.
    fn publisher_topics(&self) -> Vec<Box<dyn streams::publisher::DomainTopics>> {
        self.kafka.iter().map(|c| Box::new(c.published.clone()) as Box<dyn streams::publisher::DomainTopics>).collect()
    }

    /// The expiry job, the SMS outbox and the consumers; the API gets the CVC keys and the audit
    /// reader.
    fn start(&self, cx: &Up<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        let kafka = cx.kafka.and_then(|k| self.kafka.as_ref().map(|topics| (k, topics)));
        let (keys, running) = start(cx.url, cx.ledger, cx.pool, &self.config, kafka, cx.stopped)?;
        *api = api.clone().with_certificate_audit(Arc::new(ReadModelAudit(cx.read_pool.clone())));
        if let Some(keys) = keys {
            *api = api.clone().with_cvc_keys(keys);
        }
        Ok(running)
    }
}

/// Starts the domain's parts; returns the CVC keys (none: activations and authorizations answer
/// 503) beside them.
fn start(
    url: &str,
    ledger: &LedgerHandle,
    pool: &sqlx::PgPool,
    settings: &Config,
    kafka: Option<(&KafkaConfig, &Kafka)>,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Option<Arc<dyn secrets::KeyProvider>>, Running)> {
    let expiry = tokio::spawn(expire(ledger.clone(), settings.expiry_interval));
    let mut tasks = Vec::new();
    let keys: Option<Arc<dyn secrets::KeyProvider>> = match &settings.cvc_key {
        Some((id, key)) => {
            Some(Arc::new(secrets::LocalKeys::new(id, key).context("LEDGER_SECRETS_KEY is 64 hex characters")?))
        }
        None => {
            tracing::warn!("no LEDGER_SECRETS_KEY: certificate activations and authorizations answer 503");
            None
        }
    };
    if let Some(keys) = &keys {
        match &settings.sms_url {
            Some(sms_url) => {
                // http:// stays allowed here: the SMS simulator, or a relay on the gateway's host.
                let client = crate::env::outbound_client(outbound::ClientConfig {
                    allow_http: true,
                    timeout: Duration::from_secs(10),
                    ..Default::default()
                })?;
                let gateway = streams::sms::HttpGateway::new(sms_url, client).context("LEDGER_SMS_URL")?;
                let text = settings.sms_text.clone();
                let mut outbox =
                    streams::sms::SmsOutbox::new(gateway, keys.clone(), text, streams::sms::Retry::default());
                let (url, stopped) = (url.to_owned(), stopped.clone());
                info!(sms_url, "sending certificate CVCs by SMS");
                tasks.push(tokio::spawn(async move {
                    let page = streams::sms::WINDOW as usize;
                    let config = ledger_store::follow::FollowConfig { page, ..Default::default() };
                    ledger_store::follow::run(&url, &mut outbox, config, stopped, None).await
                }));
            }
            None => tracing::warn!("no LEDGER_SMS_URL: certificate CVCs are sealed but not sent"),
        }
    }
    if let Some((kafka, topics)) = kafka {
        tasks.extend(consumers(ledger, pool, keys.as_ref(), kafka, topics, stopped));
    }
    Ok((keys, Running { tasks, aborted: vec![expiry] }))
}

/// The consumers of uploads, and (with CVC keys to seal the new CVCs) of orders and payments.
fn consumers(
    ledger: &LedgerHandle,
    pool: &sqlx::PgPool,
    keys: Option<&Arc<dyn secrets::KeyProvider>>,
    kafka: &KafkaConfig,
    topics: &Kafka,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    use streams::consumer::{ConsumerConfig, Handler, run};
    fn spawn<H: Handler>(
        pool: &sqlx::PgPool,
        config: ConsumerConfig,
        handler: H,
        stopped: &tokio::sync::watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (pool, stopped) = (pool.clone(), stopped.clone());
        info!(consumer = config.name, topics = ?config.topics, dead_letters = config.dead_letter_topic, "consuming");
        tokio::spawn(async move {
            let name = config.name.clone();
            if let Err(e) = run(pool, config, handler, stopped).await {
                tracing::error!(consumer = name, error = %e, "a certificates consumer stopped");
            }
        })
    }
    let config = |name: &str, topic: &str| kafka.consumer(name, &[topic], &Kafka::dead_letters(topic));
    let mut tasks = vec![spawn(
        pool,
        config("ledger-certificate-uploads", &topics.upload),
        streams::certificates::Uploads::new(ledger.clone()),
        stopped,
    )];
    match keys {
        Some(keys) => {
            let sales =
                streams::certificates::Sales::new(ledger.clone(), pool.clone(), keys.clone(), topics.sales.clone());
            tasks.push(spawn(pool, config("ledger-certificate-orders", &topics.sales.orders), sales.clone(), stopped));
            tasks.push(spawn(pool, config("ledger-certificate-payments", &topics.sales.payments), sales, stopped));
        }
        None => tracing::warn!("no LEDGER_SECRETS_KEY: certificates are not activated from orders and payments"),
    }
    tasks
}

/// Every `interval`, expires the certificates past their `expires_at`: the writer of this
/// database is the only one, so one expiry runs at a time across processes.
async fn expire(ledger: LedgerHandle, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let meta = ledger_store::EventMeta {
            channel: Some("expiry".into()),
            source: Some(ledger_store::Source::Job { name: "certificates_expiry".into() }),
            ..Default::default()
        };
        match ledger.submit(ledger_core::certificates::Command::ExpireDue, meta).await {
            Ok(Ok(_)) => {}
            Ok(Err(r)) => tracing::warn!(code = r.code(), "certificate expiry refused"),
            Err(e) => tracing::warn!(error = %e, "certificate expiry not run; retried next interval"),
        }
    }
}

/// The audit endpoint's rows, read from the certificates read model.
pub struct ReadModelAudit(pub sqlx::PgPool);

impl command_api::certificates::audit::AuditReader for ReadModelAudit {
    fn read(
        &self,
        from: Option<time::OffsetDateTime>,
        to: Option<time::OffsetDateTime>,
        after: i64,
        limit: i64,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Vec<command_api::certificates::audit::AuditEntry>, String>>
                + Send
                + '_,
        >,
    > {
        use time::format_description::well_known::Rfc3339;
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let rows = projections::certificates::audit(&mut conn, None, from, to, Some(after), limit)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| command_api::certificates::audit::AuditEntry {
                    position: r.position,
                    code: r.code,
                    action: r.action,
                    operation_id: r.operation_id,
                    amount: r.amount,
                    channel: r.channel,
                    initiator: r.initiator,
                    key_id: r.key_id,
                    source: r.source,
                    source_topic: r.source_topic,
                    source_partition: r.source_partition,
                    source_offset: r.source_offset,
                    at: r.at.format(&Rfc3339).unwrap_or_default(),
                    balance_before: r.balance_before,
                    balance_after: r.balance_after,
                    available_after: r.available_after,
                    state: r.state,
                })
                .collect())
        })
    }
}
