//! Request and response bodies of the configuration endpoints. Values are JSON of the
//! setting's kind (`kind` says which).

use ledger_core::settings::Setting;
use ledger_store::config::RuntimeConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A new value for a setting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConfigBody {
    /// Of the setting's kind, e.g. `{"per_second": 100, "burst": 200}` for a rate limit (else
    /// `invalid_config_value`, naming why).
    #[schema(example = json!({"per_second": 100, "burst": 200}))]
    pub value: Value,
}

/// A setting as it stands in this process.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEntry {
    /// The key: a setting's name, a pattern's name with its segment filled in, or (in the list)
    /// the pattern itself.
    #[schema(example = "rate_limit.default")]
    pub key: String,
    /// The value in effect (`null`: unset, see the description).
    pub value: Value,
    /// Where the value comes from: `database`, `file` or `default`.
    #[schema(example = "database")]
    pub source: &'static str,
    /// The declared setting (a pattern for per-key settings).
    #[schema(example = "rate_limit.default")]
    pub setting: &'static str,
    /// The kind of value it takes.
    #[schema(example = "object {per_second: integer 1..=1000000, burst: integer 1..=1000000}")]
    pub kind: String,
    /// The declared default.
    pub default: Value,
    /// The scope a key needs to change it.
    #[schema(example = "config:write")]
    pub permission: &'static str,
    pub description: &'static str,
    /// The position of its latest change in the log, if it was ever changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

impl ConfigEntry {
    pub fn new(config: &RuntimeConfig, setting: &'static Setting, key: &str) -> ConfigEntry {
        let (value, source) = config.lookup(key);
        ConfigEntry {
            key: key.to_owned(),
            value,
            source: source.as_str(),
            setting: setting.name,
            kind: setting.kind.describe(),
            default: (setting.default)(),
            permission: setting.permission,
            description: setting.description,
            position: config.position(key),
        }
    }
}

/// Every setting: each plain one, and each pattern followed by its keys that have a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigList {
    pub settings: Vec<ConfigEntry>,
}
