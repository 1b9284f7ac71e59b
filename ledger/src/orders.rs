//! The P2P orders domain inside `ledger up`: the expiry job (every interval, the pending orders
//! past their deadline expire and their holds are voided: one command the writer decides whole,
//! so expiry running in several processes never expires twice), and the engine's secrets key
//! for the API, which seals stores' callback secrets and requisites' details.

use std::sync::Arc;
use std::time::Duration;

use ledger_store::LedgerHandle;
use tracing::warn;

use crate::domains::{Context as Up, Domain, Running};
use crate::env::env;

/// The `[orders]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    expiry: Option<bool>,
    expiry_interval_ms: Option<u64>,
}

/// The domain as `ledger up` runs it.
#[derive(Debug)]
pub struct Orders {
    /// Whether this process runs the expiry job.
    expiry: bool,
    expiry_interval: Duration,
}

/// Reads the `[orders]` table and `LEDGER_ORDERS_*`.
pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let file: File = crate::domains::table("orders", table)?;
    let expiry = env("LEDGER_ORDERS_EXPIRY")?.or(file.expiry).unwrap_or(true);
    let ms = env("LEDGER_ORDERS_EXPIRY_INTERVAL_MS")?.or(file.expiry_interval_ms).unwrap_or(1000u64).max(10);
    Ok(Box::new(Orders { expiry, expiry_interval: Duration::from_millis(ms) }))
}

impl Domain for Orders {
    fn start(&self, cx: &Up<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        match cx.secrets {
            Some(keys) => *api = api.clone().with_secrets(Arc::clone(keys)),
            None => warn!("no LEDGER_SECRETS_KEY: stores and requisites cannot be written (503)"),
        }
        let aborted =
            if self.expiry { vec![tokio::spawn(expire(cx.ledger.clone(), self.expiry_interval))] } else { vec![] };
        Ok(Running { tasks: Vec::new(), aborted })
    }
}

/// Every `interval`, expires the pending orders past their deadline, as many commands as it
/// takes.
async fn expire(ledger: LedgerHandle, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            let meta = ledger_store::EventMeta {
                channel: Some("expiry".into()),
                source: Some(ledger_store::Source::Job { name: "orders_expiry".into() }),
                ..Default::default()
            };
            match ledger.submit(ledger_core::orders::Command::ExpireDue, meta).await {
                // Something expired: more may be due (a command expires at most
                // `MAX_EXPIRED_PER_COMMAND`); nothing did: none is, or the rest cannot be voided.
                Ok(Ok(c)) if !c.replayed => continue,
                Ok(Ok(_)) => break,
                Ok(Err(r)) => {
                    warn!(code = r.code(), "order expiry refused");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "order expiry not run; retried next interval");
                    break;
                }
            }
        }
    }
}
