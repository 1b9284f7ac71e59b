//! Settings: defaults, then an optional TOML file (`--config` or `LEDGER_CONFIG`), then
//! `LEDGER_…` environment variables (and `DATABASE_URL`), each overriding the one before.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use ledger_core::{Currencies, CurrencyCode};
use ledger_store::{Standby, WriterConfig};
use serde::Deserialize;

use crate::env::env;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    database_url: Option<String>,
    read_database_url: Option<String>,
    max_group: Option<usize>,
    queue_capacity: Option<usize>,
    transfer_cache: Option<usize>,
    commit_pipeline: Option<usize>,
    expiry_interval_ms: Option<u64>,
    standby: Option<bool>,
    db_pool_size: Option<u32>,
    projections: Option<bool>,
    max_projection_lag: Option<i64>,
    max_projection_delay_ms: Option<u64>,
    projection_runners: Option<usize>,
    /// Extra assets and their scales, e.g. `{ USDC = 6, GOLD = 3 }`.
    assets: Option<BTreeMap<String, u32>>,
    kafka: Option<crate::kafka::KafkaFile>,
    /// Defaults of runtime settings by key (`"rate_limit.default" = { per_second = 100, burst = 200 }`);
    /// values set in the database (`ledger config set`) override them.
    settings: Option<BTreeMap<String, toml::Value>>,
}

#[derive(Debug)]
pub struct Settings {
    pub listen: String,
    pub database_url: Option<String>,
    /// The read models' own database (`None`: the log's): the projections apply there, GraphQL
    /// reads there.
    pub read_database_url: Option<String>,
    pub db_pool_size: u32,
    /// Run the projections inside `ledger up` (off: run `ledger projections run` elsewhere).
    pub projections: bool,
    /// Backpressure: how many events the writer may run ahead of the slowest in-process
    /// projection (0: no limit).
    pub max_projection_lag: i64,
    /// Backpressure in time: the writer runs no further ahead than the slowest in-process
    /// projection applies in this long at its measured pace (zero: the event bound alone).
    pub max_projection_delay: Duration,
    /// How many runners share the read models (each applies its share of them on a connection
    /// of its own, so the read side is not one transaction at a time).
    pub projection_runners: usize,
    pub writer: WriterConfig,
    /// Off unless KAFKA_BROKERS (or `kafka.brokers`) is set.
    pub kafka: Option<crate::kafka::KafkaConfig>,
    /// Every registered domain, with its settings read from its own table.
    pub domains: Vec<Box<dyn crate::domains::Domain>>,
    /// The domains' tables of the file, by name (a subcommand of one domain reads its own).
    pub tables: BTreeMap<String, toml::Value>,
    /// The file's defaults of runtime settings (checked against their declarations).
    pub runtime: BTreeMap<String, serde_json::Value>,
}

impl Settings {
    pub fn load(path: Option<&str>) -> anyhow::Result<Settings> {
        let (file, tables): (File, BTreeMap<String, toml::Value>) =
            match path.map(str::to_owned).or_else(|| std::env::var("LEDGER_CONFIG").ok()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                    let mut whole: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {path}"))?;
                    // Each domain's table is its own to read; the rest is the process's.
                    let tables = crate::domains::DOMAINS
                        .iter()
                        .filter_map(|(name, _)| whole.remove(*name).map(|t| ((*name).to_owned(), t)))
                        .collect();
                    let file =
                        File::deserialize(toml::Value::Table(whole)).with_context(|| format!("parsing {path}"))?;
                    (file, tables)
                }
                None => (File::default(), BTreeMap::new()),
            };
        let defaults = WriterConfig::default();
        let mut currencies = Currencies::standard();
        let mut assets = file.assets.unwrap_or_default();
        if let Some(list) = env::<String>("LEDGER_ASSETS")? {
            for item in list.split(',').filter(|s| !s.trim().is_empty()) {
                let (code, scale) = item.split_once(':').context("LEDGER_ASSETS is CODE:SCALE,CODE:SCALE")?;
                assets.insert(code.trim().to_owned(), scale.trim().parse().context("an asset scale is a number")?);
            }
        }
        for (code, scale) in assets {
            let code = CurrencyCode::parse(&code)
                .map_err(|_| anyhow::anyhow!("asset code {code:?} is not A-Z0-9, 3 to 12 long"))?;
            currencies =
                currencies.with_asset(code, scale).map_err(|_| anyhow::anyhow!("asset scale {scale} exceeds 18"))?;
        }
        let kafka = crate::kafka::settings(file.kafka.unwrap_or_default())?;
        let runtime: BTreeMap<String, serde_json::Value> = file
            .settings
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| Ok((key, serde_json::to_value(value)?)))
            .collect::<Result<_, serde_json::Error>>()
            .context("reading [settings]")?;
        ledger_store::config::RuntimeConfig::detached(runtime.clone()).context("checking [settings]")?;
        // Each domain reads its own table and variables.
        let domains = crate::domains::DOMAINS
            .iter()
            .map(|(name, load)| load(tables.get(*name).cloned()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let standby = env::<bool>("LEDGER_STANDBY")?.or(file.standby).unwrap_or(false);
        let expiry_ms = env("LEDGER_EXPIRY_INTERVAL_MS")?.or(file.expiry_interval_ms).unwrap_or(1000);
        Ok(Settings {
            listen: env("LEDGER_LISTEN")?.or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            database_url: env("DATABASE_URL")?.or(file.database_url),
            read_database_url: env("LEDGER_READ_DATABASE_URL")?.or(file.read_database_url),
            db_pool_size: env("LEDGER_DB_POOL_SIZE")?.or(file.db_pool_size).unwrap_or(16),
            projections: env("LEDGER_PROJECTIONS")?.or(file.projections).unwrap_or(true),
            kafka,
            domains,
            tables,
            runtime,
            max_projection_lag: env("LEDGER_MAX_PROJECTION_LAG")?.or(file.max_projection_lag).unwrap_or(20_000),
            max_projection_delay: Duration::from_millis(
                env("LEDGER_MAX_PROJECTION_DELAY_MS")?.or(file.max_projection_delay_ms).unwrap_or(500),
            ),
            projection_runners: env("LEDGER_PROJECTION_RUNNERS")?.or(file.projection_runners).unwrap_or(2).max(1),
            writer: WriterConfig {
                currencies,
                max_group: env("LEDGER_MAX_GROUP")?.or(file.max_group).unwrap_or(defaults.max_group),
                queue_capacity: env("LEDGER_QUEUE_CAPACITY")?
                    .or(file.queue_capacity)
                    .unwrap_or(defaults.queue_capacity),
                transfer_cache: env("LEDGER_TRANSFER_CACHE")?
                    .or(file.transfer_cache)
                    .unwrap_or(defaults.transfer_cache),
                pipeline_depth: env("LEDGER_COMMIT_PIPELINE")?
                    .or(file.commit_pipeline)
                    .unwrap_or(defaults.pipeline_depth),
                standby: if standby { Standby::Wait } else { Standby::Refuse },
                expiry_interval: Duration::from_millis(expiry_ms.max(10)),
                ..defaults
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    fn load(text: &str) -> anyhow::Result<Settings> {
        let path = std::env::temp_dir().join(format!("ledger-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        let settings = Settings::load(path.to_str());
        let _ = std::fs::remove_file(&path);
        settings
    }

    #[test]
    fn each_domain_reads_its_own_table_and_unknown_keys_are_refused_where_they_are() {
        let text = "listen = \"127.0.0.1:9999\"\n[kafka]\ntopic_prefix = \"x\"\n\
                    [certificates]\nexpiry_interval_ms = 500\n[payouts]\nsender_limit = 7\n";
        let settings = load(text).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9999");
        assert_eq!(settings.domains.len(), crate::domains::DOMAINS.len());
        assert_eq!(settings.tables.keys().collect::<Vec<_>>(), ["certificates", "payouts"], "tables given, only");
        let gates = crate::payouts::gate_settings(settings.tables.get("payouts").cloned()).unwrap();
        assert_eq!(gates.sender_limit, 7);
        let debug = format!("{:?}", settings.domains);
        assert!(debug.contains("expiry_interval: 500ms"), "{debug}");

        let runtime = load("[settings]\n\"rate_limit.default\" = { per_second = 5, burst = 9 }\n").unwrap().runtime;
        assert_eq!(runtime["rate_limit.default"], serde_json::json!({"per_second": 5, "burst": 9}));
        let refused =
            load("[settings]\n\"rate_limit.default\" = { per_second = 0, burst = 9 }\n").map(drop).unwrap_err();
        assert!(format!("{refused:#}").contains("rate_limit.default: per_second"), "{refused:#}");

        let typo = load("listn = \"x\"\n").map(drop).unwrap_err();
        assert!(format!("{typo:#}").contains("unknown field `listn`"), "{typo:#}");
        let typo = load("[payouts]\nsender_limt = 7\n").map(drop).unwrap_err();
        let message = format!("{typo:#}");
        assert!(message.contains("[payouts]") && message.contains("sender_limt"), "{message}");
    }
}
