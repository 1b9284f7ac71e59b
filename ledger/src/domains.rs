//! The domains' parts in the binary: each reads its settings from its own table of the
//! configuration file and its own variables, names the Kafka topics it writes and publishes, and
//! starts what it runs inside `ledger up` (jobs, followers, consumers). A domain is registered by
//! one line in `DOMAINS`; `config` and `up` know domains only through this trait. The topics
//! they name are what `ledger kafka topics` prints (`kafka::UsedTopics`), so a test creates a
//! configuration's topics without knowing any domain's.

use ledger_store::LedgerHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kafka::KafkaConfig;

/// A domain as `ledger up` runs it.
pub trait Domain: Send + Sync + std::fmt::Debug {
    /// The topics it writes to (published, and its consumers' dead letters), when Kafka is on.
    fn written_topics(&self) -> Vec<String> {
        Vec::new()
    }

    /// The topics its consumers read, when Kafka is on (`ledger kafka topics` lists them).
    fn consumed_topics(&self) -> Vec<String> {
        Vec::new()
    }

    /// Its topics of its own shape, sent by the Kafka publisher with the envelopes.
    fn publisher_topics(&self) -> Vec<Box<dyn streams::publisher::DomainTopics>> {
        Vec::new()
    }

    /// Starts its background parts; each ends once `cx.stopped` turns true (or is aborted by
    /// `Running::stop`). It may equip the API with what its handlers need (`api`).
    fn start(&self, cx: &Context<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running>;
}

/// Reads a domain's settings from its table of the configuration file (`None`: no table).
pub type Load = fn(Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>>;

/// Every domain of the binary: the name of its table, and how its settings are read.
pub const DOMAINS: &[(&str, Load)] = &[
    ("certificates", crate::certificates::load),
    ("payouts", crate::payouts::load),
    ("orders", crate::orders::load),
    ("wallet", crate::wallet::load),
    ("recon", crate::recon::load),
    ("audit", crate::audit::load),
    ("webhooks", crate::webhooks::load),
];

/// What `ledger up` hands a domain's parts.
pub struct Context<'a> {
    /// The log's database.
    pub url: &'a str,
    pub ledger: &'a LedgerHandle,
    pub pool: &'a sqlx::PgPool,
    /// The read models' database (the log's unless they have their own).
    pub read_pool: &'a sqlx::PgPool,
    pub kafka: Option<&'a KafkaConfig>,
    /// The runtime settings, following the database.
    pub runtime: &'a ledger_store::config::RuntimeConfig,
    /// The engine's secrets key (`LEDGER_SECRETS_KEY`), if one is set.
    pub secrets: Option<&'a std::sync::Arc<dyn secrets::KeyProvider>>,
    pub stopped: &'a watch::Receiver<bool>,
}

/// A domain's running parts.
#[derive(Default)]
pub struct Running {
    /// Tasks that end once `stopped` turns true.
    pub tasks: Vec<JoinHandle<()>>,
    /// Tasks stopped by aborting them (jobs that hold a writer handle and wait between runs).
    pub aborted: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits for every part to finish (after `stopped` turned true).
    pub async fn stop(self) {
        for task in &self.aborted {
            task.abort();
        }
        for task in self.aborted.into_iter().chain(self.tasks) {
            let _ = task.await;
        }
    }
}

/// Deserializes a domain's table (none: its defaults).
pub fn table<T: serde::de::DeserializeOwned + Default>(name: &str, table: Option<toml::Value>) -> anyhow::Result<T> {
    use anyhow::Context as _;
    match table {
        Some(value) => T::deserialize(value).with_context(|| format!("the [{name}] table")),
        None => Ok(T::default()),
    }
}
