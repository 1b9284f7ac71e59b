//! The command API's per-key rate limits, declared here (pure data) so that the writer checks a
//! change as it checks any setting; `command-api`'s rate-limit layer enforces them. A key's
//! quota is `rate_limit.key.{key_id}` when set, else `rate_limit.default`.

use serde_json::{Value, json};

use crate::settings::{Kind, Segment, Setting, no_rule};

/// The most a quota's rate or burst may be.
pub const MAX_PER_SECOND: u32 = 1_000_000;

/// The kind of both settings: `{"per_second": N, "burst": M}`.
const QUOTA: Kind = Kind::Object(&[
    ("per_second", Kind::Integer { min: 1, max: MAX_PER_SECOND as i64 }),
    ("burst", Kind::Integer { min: 1, max: MAX_PER_SECOND as i64 }),
]);

/// The default quota: far above what one key of a payment channel sends (the single-transfer
/// benchmark reaches about 20,000 a second), so that only a quota set on purpose limits.
pub const DEFAULT: Quota = Quota { per_second: 100_000, burst: 200_000 };

/// Whether the limits apply at all (off: the layer passes every request untouched).
pub const ENABLED_KEY: &str = "rate_limit.enabled";
/// The name of the default quota.
pub const DEFAULT_KEY: &str = "rate_limit.default";
/// The prefix of a key's own quota, followed by its key id.
pub const KEY_PREFIX: &str = "rate_limit.key.";

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: ENABLED_KEY,
        kind: Kind::Bool,
        segment: Segment::Word,
        default: || Value::Bool(true),
        validate: no_rule,
        permission: crate::config::scope::WRITE,
        description: "Whether the command API limits each key's rate (per process)",
    },
    Setting {
        name: DEFAULT_KEY,
        kind: QUOTA,
        segment: Segment::Word,
        default: || DEFAULT.to_value(),
        validate: no_rule,
        permission: crate::config::scope::WRITE,
        description: "Requests per second and burst of every API key without a quota of its own (per process)",
    },
    Setting {
        name: "rate_limit.key.{key_id}",
        kind: QUOTA,
        segment: Segment::Uuid,
        default: || Value::Null,
        validate: no_rule,
        permission: crate::config::scope::WRITE,
        description: "Requests per second and burst of one API key (unset: rate_limit.default)",
    },
];

/// A token bucket: refills `per_second` requests a second, holds at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    pub per_second: u32,
    pub burst: u32,
}

impl Quota {
    /// The quota a setting's value holds (`None`: not a quota, e.g. unset).
    pub fn from_value(value: &Value) -> Option<Quota> {
        QUOTA.check(value).ok()?;
        let field = |name: &str| value.get(name).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
        Some(Quota { per_second: field("per_second")?, burst: field("burst")? })
    }

    pub fn to_value(self) -> Value {
        json!({ "per_second": self.per_second, "burst": self.burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_read_from_a_setting_value_of_its_kind_only() {
        let quota = Quota { per_second: 5, burst: 10 };
        assert_eq!(Quota::from_value(&quota.to_value()), Some(quota));
        assert_eq!(Quota::from_value(&DEFAULT.to_value()), Some(DEFAULT));
        assert_eq!(Quota::from_value(&json!({"per_second": 5})), None);
        assert_eq!(Quota::from_value(&json!({"per_second": 0, "burst": 1})), None);
        assert_eq!(Quota::from_value(&json!({"per_second": 1, "burst": MAX_PER_SECOND + 1})), None);
        assert_eq!(Quota::from_value(&Value::Null), None);
    }
}
