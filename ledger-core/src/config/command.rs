//! What operators ask of the runtime configuration.

use serde_json::Value;

/// Boxed: the writer's command type stays the ledger's size.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Sets `key` (a declared setting's name, or its pattern filled in) to `value`.
    Set(Box<SetConfig>),
    /// Takes back `key`'s value: the file's default, else the declared one, applies again.
    Reset(Box<ResetConfig>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetConfig {
    pub key: String,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResetConfig {
    pub key: String,
}

impl Command {
    pub fn set(key: impl Into<String>, value: Value) -> Command {
        Command::Set(Box::new(SetConfig { key: key.into(), value }))
    }

    pub fn reset(key: impl Into<String>) -> Command {
        Command::Reset(Box::new(ResetConfig { key: key.into() }))
    }

    /// The key the command is about.
    pub fn key(&self) -> &str {
        match self {
            Command::Set(c) => &c.key,
            Command::Reset(c) => &c.key,
        }
    }
}
