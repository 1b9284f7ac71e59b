//! `ledger config`: the runtime settings. `list` and `get` read the database directly (what a
//! process starting now would use, with this file's defaults); `set` and `reset` go through the
//! command API of a running `ledger up` (`PUT`/`DELETE /v1/config/{key}`), since only its writer
//! writes, and the change is audited under the key that made it.

use std::collections::BTreeMap;

use anyhow::Context;
use ledger_store::config::RuntimeConfig;
use serde_json::Value;

#[derive(clap::Args)]
pub struct Remote {
    /// Base URL of the command API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key with config:write (also LEDGER_KEY).
    #[arg(long, env = "LEDGER_KEY", hide_env_values = true)]
    key: String,
}

/// Every setting with the value in effect and where it comes from; `key`: that one only.
pub async fn show(url: &str, file: BTreeMap<String, Value>, key: Option<&str>) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url).await.context("connecting to the database")?;
    let config = RuntimeConfig::start(url, pool, file).await?;
    let keys: Vec<String> = match key {
        Some(key) => {
            ledger_core::settings::find(key).with_context(|| format!("unknown_config_key: no setting has {key:?}"))?;
            vec![key.to_owned()]
        }
        None => {
            let stored = config.keys();
            let mut keys = Vec::new();
            for setting in ledger_core::settings::all() {
                keys.push(setting.name.to_owned());
                keys.extend(stored.iter().filter(|k| setting.is_pattern() && setting.matches(k)).cloned());
            }
            keys
        }
    };
    for key in keys {
        let (value, source) = config.lookup(&key);
        println!("{key} = {value} ({})", source.as_str());
    }
    Ok(())
}

/// Sets (`Some(value)`, JSON text) or resets a setting through the command API.
pub async fn change(remote: Remote, key: &str, value: Option<&str>) -> anyhow::Result<()> {
    let authority = remote.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut client = crate::http_client::Client::connect(&authority, &remote.key).await?;
    let path = format!("/v1/config/{key}");
    let (status, body) = match value {
        Some(value) => {
            let value: Value =
                serde_json::from_str(value).context("the value is JSON, e.g. '{\"per_second\":10,\"burst\":20}'")?;
            client.send("PUT", &path, serde_json::json!({ "value": value }).to_string()).await?
        }
        None => client.send("DELETE", &path, String::new()).await?,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    anyhow::ensure!(
        status == 200,
        "{status} {}: {}",
        body["code"].as_str().unwrap_or("?"),
        body["detail"].as_str().unwrap_or("")
    );
    println!("{key} = {} ({})", body["value"], body["source"].as_str().unwrap_or("?"));
    Ok(())
}
