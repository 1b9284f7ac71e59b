//! The runtime configuration as every process reads it: [`RuntimeConfig`], a cheap handle whose
//! `get` answers a setting's value from the database (the `config` entity rows the writer
//! commits), else the file's default handed in at start, else the declared default
//! (`ledger_core::settings`). It loads the rows at start and reloads them when the log moves
//! (the commit's `NOTIFY ledger_events`, heard on the process's shared `follow::Wakeup`), at most
//! every [`MIN_RELOAD`], and every [`POLL`] besides, so a change is seen within a second in every
//! process, without a restart. Parts that must react watch [`RuntimeConfig::changes`]. It never
//! knows a setting by name.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ledger_core::EntityRow;
use ledger_core::config::state::Entry;
use ledger_core::settings::{self, Refused};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;

/// The fallback poll: a change is seen within this even when no notification is heard.
pub const POLL: Duration = Duration::from_secs(1);
/// Reloads after notifications come at most this often (a busy log notifies at every commit).
pub const MIN_RELOAD: Duration = Duration::from_millis(100);

/// Where a value in effect comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Database,
    File,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Database => "database",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// A file default that no setting takes.
#[derive(Debug, thiserror::Error)]
#[error("settings.{key}: {why}")]
pub struct FileError {
    pub key: String,
    pub why: String,
}

/// Why the configuration could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("reading the runtime configuration: {0}")]
    Database(#[from] sqlx::Error),
}

/// The values in effect in this process; cheap to clone.
#[derive(Clone)]
pub struct RuntimeConfig {
    inner: Arc<Inner>,
}

struct Inner {
    file: BTreeMap<String, Value>,
    /// The stored entries by key, and the position of each one's latest change.
    stored: RwLock<Arc<HashMap<String, (Entry, i64)>>>,
    changes: watch::Sender<u64>,
}

impl RuntimeConfig {
    /// The declared defaults alone, changed only by what this process commits (`absorb`).
    pub fn defaults() -> RuntimeConfig {
        RuntimeConfig::made(BTreeMap::new())
    }

    fn made(file: BTreeMap<String, Value>) -> RuntimeConfig {
        let inner = Inner { file, stored: RwLock::default(), changes: watch::channel(0).0 };
        RuntimeConfig { inner: Arc::new(inner) }
    }

    /// A configuration of file and declared defaults only, changed only by what this process
    /// commits (`absorb`): for a process without a database to follow (tests, tools).
    pub fn detached(file: BTreeMap<String, Value>) -> Result<RuntimeConfig, FileError> {
        for (key, value) in &file {
            settings::check(key, value).map_err(|refused| FileError {
                key: key.clone(),
                why: match refused {
                    Refused::UnknownKey => "no setting has this key".to_owned(),
                    Refused::InvalidValue(why) => why,
                },
            })?;
        }
        Ok(RuntimeConfig::made(file))
    }

    /// Loads the stored values of the log at `url` and follows them until the last handle is
    /// dropped.
    pub async fn start(url: &str, pool: PgPool, file: BTreeMap<String, Value>) -> Result<RuntimeConfig, StartError> {
        let config = RuntimeConfig::detached(file)?;
        config.reload(&pool).await?;
        let weak = Arc::downgrade(&config.inner);
        tokio::spawn(follow(crate::follow::Wakeup::of(url), pool, weak));
        Ok(config)
    }

    /// The value in effect for `key`: the database's, the file's, or the declared default
    /// (`null` for a key no setting names, or a pattern's key left unset).
    pub fn get(&self, key: &str) -> Value {
        self.lookup(key).0
    }

    /// The value in effect and where it comes from.
    pub fn lookup(&self, key: &str) -> (Value, Source) {
        if let Some(value) = self.stored_value(key) {
            return (value, Source::Database);
        }
        if let Some(value) = self.inner.file.get(key) {
            return (value.clone(), Source::File);
        }
        (settings::find(key).map_or(Value::Null, |s| (s.default)()), Source::Default)
    }

    fn stored_value(&self, key: &str) -> Option<Value> {
        self.snapshot().get(key).and_then(|(entry, _)| entry.value.clone())
    }

    /// The position of `key`'s latest stored change, if it has one.
    pub fn position(&self, key: &str) -> Option<i64> {
        self.snapshot().get(key).map(|(_, position)| *position)
    }

    /// Every key the database or the file sets a value for (a pattern's keys included), sorted.
    pub fn keys(&self) -> Vec<String> {
        let stored = self.snapshot();
        let mut keys: Vec<String> =
            stored.iter().filter(|(_, (e, _))| e.value.is_some()).map(|(k, _)| k.clone()).collect();
        keys.extend(self.inner.file.keys().cloned());
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Turns (a counter) at every change of a value in effect.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// How many changes this process has seen: a part compares it with the one it built from.
    pub fn generation(&self) -> u64 {
        *self.inner.changes.borrow()
    }

    /// Takes a row this process committed at `position` (the command's answer), at once.
    pub fn absorb(&self, row: &EntityRow, position: i64) {
        if let Ok(entry) = row.parse::<Entry>() {
            self.merge(vec![(entry, position)]);
        }
    }

    /// Reads the stored rows again.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let rows = crate::sql::entities_of_kind(&mut conn, ledger_core::config::KIND).await?;
        // A row that does not parse is not ours to use; `ledger verify` names it.
        self.merge(rows.into_iter().filter_map(|s| s.row.parse::<Entry>().ok().map(|e| (e, s.position))).collect());
        Ok(())
    }

    fn snapshot(&self) -> Arc<HashMap<String, (Entry, i64)>> {
        Arc::clone(&self.inner.stored.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Keeps each key's newest entry (a reload that started before a commit this process
    /// absorbed never takes it back), and turns `changes` if a value changed.
    fn merge(&self, entries: Vec<(Entry, i64)>) {
        let mut stored = self.inner.stored.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer: Vec<(Entry, i64)> = entries
            .into_iter()
            .filter(|(entry, _)| stored.get(&entry.key).is_none_or(|(held, _)| held.version < entry.version))
            .collect();
        if newer.is_empty() {
            return;
        }
        let mut next = HashMap::clone(&stored);
        let mut changed = false;
        for (entry, position) in newer {
            changed |= next.get(&entry.key).and_then(|(e, _)| e.value.as_ref()) != entry.value.as_ref();
            next.insert(entry.key.clone(), (entry, position));
        }
        *stored = Arc::new(next);
        drop(stored);
        if changed {
            self.inner.changes.send_modify(|n| *n += 1);
        }
    }
}

/// Reloads at notifications (at most every `MIN_RELOAD`) and every `POLL`, while a handle lives.
async fn follow(mut wakeup: crate::follow::Wakeup, pool: PgPool, config: Weak<Inner>) {
    loop {
        tokio::select! {
            () = wakeup.next() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        let Some(inner) = config.upgrade() else { return };
        if let Err(e) = (RuntimeConfig { inner }).reload(&pool).await {
            tracing::warn!(error = %e, "reloading the runtime configuration failed; retrying");
        }
        tokio::time::sleep(MIN_RELOAD).await;
    }
}
