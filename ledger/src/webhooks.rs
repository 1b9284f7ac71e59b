//! Outbound webhooks inside `ledger up`: the follower that makes messages from the log, the
//! delivery engine (one per database; another process's stands by), and the API's endpoints.
//! Without a secrets key (`LEDGER_SECRETS_KEY`) nothing runs and `/v1/webhooks/…` answers 503:
//! an endpoint's secret is never stored unsealed.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::domains::{Context as Up, Domain, Running};

/// `[webhooks]` of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Whether this process delivers (default true); the API and the follower run either way.
    deliver: Option<bool>,
    /// Attempts under way at once per endpoint (default 8).
    per_endpoint: Option<usize>,
}

#[derive(Debug)]
pub struct Webhooks {
    deliver: bool,
    per_endpoint: usize,
}

pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let file: File = crate::domains::table("webhooks", table)?;
    let defaults = webhooks::DeliveryConfig::default();
    let per_endpoint = file.per_endpoint.unwrap_or(defaults.per_endpoint);
    anyhow::ensure!((1..=64).contains(&per_endpoint), "webhooks.per_endpoint is 1 to 64");
    Ok(Box::new(Webhooks { deliver: file.deliver.unwrap_or(true), per_endpoint }))
}

impl Domain for Webhooks {
    fn start(&self, cx: &Up<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        let Some(keys) = cx.secrets else {
            warn!("no secrets key (LEDGER_SECRETS_KEY): webhooks are off");
            return Ok(Running::default());
        };
        let store = webhooks::Store::new(cx.pool.clone(), keys.clone());
        let metrics = Arc::new(webhooks::Metrics::default());
        *api = api
            .clone()
            .with_webhooks(store.clone())
            .with_report(Arc::new(command_api::webhooks::Deliveries(metrics.clone())));
        let mut tasks = Vec::new();
        let follow = ledger_store::follow::FollowConfig {
            page: webhooks::fanout::WINDOW as usize,
            linger: Duration::from_millis(5),
            ..Default::default()
        };
        let (url, config, stopped) = (cx.url.to_owned(), cx.runtime.clone(), cx.stopped.clone());
        let mut fanout = webhooks::Fanout::new(config).with_ledger(cx.ledger.clone());
        tasks.push(tokio::spawn(
            async move { ledger_store::follow::run(&url, &mut fanout, follow, stopped, None).await },
        ));
        if self.deliver {
            let client = crate::env::outbound_client(webhooks::deliver::client_config())?;
            let settings = webhooks::DeliveryConfig { per_endpoint: self.per_endpoint, ..Default::default() };
            let deliverer = webhooks::Deliverer::new(
                store,
                client,
                cx.runtime.clone(),
                Some(api.auditor().clone()),
                metrics,
                settings,
            );
            tasks.push(tokio::spawn(deliverer.run(cx.url.to_owned(), cx.stopped.clone())));
        }
        Ok(Running { tasks, aborted: Vec::new() })
    }
}
