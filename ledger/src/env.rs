//! Reading settings: a `LEDGER_…` variable parsed into its type, and checked topic names. The
//! process's settings (`config`), Kafka's (`kafka`) and every domain's use it; it knows none of
//! them.

use anyhow::Context;

/// The variable `name` parsed, `None` when unset.
pub fn env<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v.parse().map(Some).map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        Err(_) => Ok(None),
    }
}

/// A topic name from its variable, the file, or its default; checked.
pub fn topic(var: &str, file: Option<String>, default: String) -> anyhow::Result<String> {
    checked_topic(var, env::<String>(var)?.or(file).unwrap_or(default))
}

/// A topic name, checked (`var` names where it came from).
pub fn checked_topic(var: &str, topic: String) -> anyhow::Result<String> {
    let valid =
        (1..=200).contains(&topic.len()) && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    anyhow::ensure!(valid, "{var}={topic:?}: a topic name is 1 to 200 of a-z A-Z 0-9 . _ -");
    Ok(topic)
}

/// The outbound client every part that calls out uses, from `config` and
/// `LEDGER_OUTBOUND_CA_FILE` (PEM certificates trusted besides Mozilla's roots).
pub fn outbound_client(config: outbound::ClientConfig) -> anyhow::Result<outbound::Client> {
    let config = match env::<String>("LEDGER_OUTBOUND_CA_FILE")?.filter(|p| !p.trim().is_empty()) {
        Some(path) => config.with_extra_ca_file(std::path::Path::new(&path)).context("LEDGER_OUTBOUND_CA_FILE")?,
        None => config,
    };
    outbound::Client::new(config).context("LEDGER_OUTBOUND_CA_FILE")
}

/// The one key every domain secret is sealed with: `LEDGER_SECRETS_KEY` (64 hex characters)
/// under `LEDGER_SECRETS_KEY_ID` (default `local-1`). `LEDGER_CVC_KEY` / `LEDGER_CVC_KEY_ID`
/// (or the `[certificates]` table's `cvc_key`) are its older names, read when the new one is
/// unset; both set and different is an error. None: no key (the domains that seal answer 503).
pub fn secrets_key(file_key: Option<String>, file_key_id: Option<String>) -> anyhow::Result<Option<(String, String)>> {
    let set = |v: Option<String>| v.filter(|k| !k.trim().is_empty());
    let key = set(env("LEDGER_SECRETS_KEY")?);
    let alias = set(env::<String>("LEDGER_CVC_KEY")?).or(set(file_key));
    let key = match (key, alias) {
        (Some(key), Some(alias)) if key.trim() != alias.trim() => anyhow::bail!(
            "LEDGER_SECRETS_KEY and LEDGER_CVC_KEY (or certificates.cvc_key) are both set and differ: \
             set only LEDGER_SECRETS_KEY"
        ),
        (key, alias) => key.or(alias),
    };
    let id = set(env("LEDGER_SECRETS_KEY_ID")?);
    let id_alias = set(env::<String>("LEDGER_CVC_KEY_ID")?).or(set(file_key_id));
    let id = match (id, id_alias) {
        (Some(id), Some(alias)) if id != alias => anyhow::bail!(
            "LEDGER_SECRETS_KEY_ID and LEDGER_CVC_KEY_ID (or certificates.cvc_key_id) are both set and differ: \
             set only LEDGER_SECRETS_KEY_ID"
        ),
        (id, alias) => id.or(alias).unwrap_or_else(|| "local-1".to_owned()),
    };
    Ok(key.map(|key| (id, key)))
}
