//! Reading settings: a `LEDGER_…` variable parsed into its type, and checked topic names. The
//! process's settings (`config`), Kafka's (`kafka`) and every domain's use it; it knows none of
//! them.

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
