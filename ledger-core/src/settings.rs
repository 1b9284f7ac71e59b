//! Runtime settings as data. Each part that reads a setting declares it next to its code (a
//! domain in `DomainState::SETTINGS`, a platform part such as the rate limiter in its own
//! `SETTINGS`): its name (or a pattern with one `{placeholder}` segment, e.g.
//! `rate_limit.key.{key_id}`), its kind, its default, any rule beyond the kind, and the scope
//! that may change it. The `config` domain records changes and the stores read them back; neither
//! knows a setting by name: they find it here.

use serde_json::Value;

/// The shape of a setting's value, checked before any rule of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// A JSON integer from `min` to `max` (a fraction such as `1.0` is not one).
    Integer {
        min: i64,
        max: i64,
    },
    /// A decimal number as a JSON string (amounts, rates): never a JSON float.
    Decimal,
    /// A JSON list of at most `max_len` integers, each from `min` to `max`.
    IntegerList {
        min: i64,
        max: i64,
        max_len: usize,
    },
    /// A JSON object with exactly these fields, each of its kind.
    Object(&'static [(&'static str, Kind)]),
    /// A JSON string, one of these words (a policy).
    OneOf(&'static [&'static str]),
}

impl Kind {
    /// Why `value` is not of this kind, if it is not.
    pub fn check(self, value: &Value) -> Result<(), String> {
        match self {
            Kind::Bool if value.is_boolean() => Ok(()),
            Kind::Bool => Err("expected true or false".to_owned()),
            Kind::Integer { min, max } => match value.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err(format!("expected an integer from {min} to {max}")),
            },
            Kind::Decimal => match value.as_str().map(str::parse::<rust_decimal::Decimal>) {
                Some(Ok(_)) => Ok(()),
                _ => Err("expected a decimal number as a string, e.g. \"12.50\"".to_owned()),
            },
            Kind::IntegerList { min, max, max_len } => {
                let why = || format!("expected a list of at most {max_len} integers from {min} to {max}");
                let items = value.as_array().ok_or_else(why)?;
                let in_range = |v: &Value| v.as_i64().is_some_and(|n| (min..=max).contains(&n));
                if items.len() > max_len || !items.iter().all(in_range) {
                    return Err(why());
                }
                Ok(())
            }
            Kind::Object(fields) => {
                let names = || fields.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
                let Some(object) = value.as_object() else {
                    return Err(format!("expected an object with the fields {}", names()));
                };
                if let Some(extra) = object.keys().find(|k| !fields.iter().any(|(name, _)| name == k)) {
                    return Err(format!("unknown field {extra:?}; the fields are {}", names()));
                }
                for (name, kind) in fields {
                    let field = object.get(*name).ok_or_else(|| format!("missing field {name:?}"))?;
                    kind.check(field).map_err(|why| format!("{name}: {why}"))?;
                }
                Ok(())
            }
            Kind::OneOf(words) => match value.as_str() {
                Some(word) if words.contains(&word) => Ok(()),
                _ => Err(format!("expected one of {}", words.join(", "))),
            },
        }
    }

    /// The kind in words, for listings (`integer 1..=10`, `object {per_second, burst}`).
    pub fn describe(self) -> String {
        match self {
            Kind::Bool => "bool".to_owned(),
            Kind::Integer { min, max } => format!("integer {min}..={max}"),
            Kind::Decimal => "decimal string".to_owned(),
            Kind::IntegerList { min, max, max_len } => format!("list of at most {max_len} integers {min}..={max}"),
            Kind::Object(fields) => {
                let fields: Vec<String> =
                    fields.iter().map(|(name, kind)| format!("{name}: {}", kind.describe())).collect();
                format!("object {{{}}}", fields.join(", "))
            }
            Kind::OneOf(words) => format!("one of {}", words.join(" | ")),
        }
    }
}

/// What the `{placeholder}` segment of a pattern may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// 1 to 64 of `a-z A-Z 0-9 _ -`.
    Word,
    /// A UUID, lower case with hyphens (one spelling per id, so one key per id).
    Uuid,
    /// Two currency codes joined by `/`, e.g. `RUB/USDT` (an exchange rate's pair).
    CurrencyPair,
}

impl Segment {
    fn accepts(self, s: &str) -> bool {
        match self {
            Segment::Word => {
                (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
            }
            Segment::Uuid => uuid::Uuid::parse_str(s).is_ok_and(|id| id.hyphenated().to_string() == s),
            Segment::CurrencyPair => s.split_once('/').is_some_and(|(from, to)| {
                crate::money::CurrencyCode::parse(from).is_ok() && crate::money::CurrencyCode::parse(to).is_ok()
            }),
        }
    }
}

/// A declared setting.
#[derive(Debug)]
pub struct Setting {
    /// `a.b.c`, or a pattern with one `{placeholder}` segment: `rate_limit.key.{key_id}`.
    pub name: &'static str,
    pub kind: Kind,
    /// What the placeholder segment of a pattern may be (unused for a plain name).
    pub segment: Segment,
    /// The value when neither the database nor the file sets one (`null`: unset, which the
    /// part that reads it explains).
    pub default: fn() -> Value,
    /// A rule beyond the kind (`no_rule` when there is none).
    pub validate: fn(&Value) -> Result<(), String>,
    /// The scope a key needs to change it.
    pub permission: &'static str,
    pub description: &'static str,
}

/// The rule of a setting whose kind says everything.
pub fn no_rule(_: &Value) -> Result<(), String> {
    Ok(())
}

impl Setting {
    /// Whether this setting is a pattern (`{placeholder}` in its name).
    pub fn is_pattern(&self) -> bool {
        self.name.contains('{')
    }

    /// Whether `key` names this setting: its name, or its pattern with an accepted segment.
    pub fn matches(&self, key: &str) -> bool {
        self.segment_of(key).is_some()
    }

    /// The placeholder segment of `key` under this pattern (`""` for a plain name that is `key`).
    pub fn segment_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let Some((prefix, rest)) = self.name.split_once('{') else {
            return (self.name == key).then_some("");
        };
        let suffix = rest.split_once('}').map_or("", |(_, suffix)| suffix);
        let segment = key.strip_prefix(prefix)?.strip_suffix(suffix)?;
        self.segment.accepts(segment).then_some(segment)
    }

    /// Why `value` may not be this setting's, if it may not.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        self.kind.check(value)?;
        (self.validate)(value)
    }
}

/// Settings of the parts that are not domains (a domain's are its `DomainState::SETTINGS`).
const PARTS: &[&[Setting]] = &[crate::rate_limit::SETTINGS, crate::webhook::SETTINGS];

/// Every declared setting: the domains' first, then the other parts'.
pub fn all() -> impl Iterator<Item = &'static Setting> {
    crate::domain::settings().chain(PARTS.iter().flat_map(|part| part.iter()))
}

/// The setting `key` names, if one does.
pub fn find(key: &str) -> Option<&'static Setting> {
    all().find(|s| s.matches(key))
}

/// Why `value` may not be set under `key`: no setting names the key, or the setting refuses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    UnknownKey,
    InvalidValue(String),
}

/// Checks a change: the setting `key` names, and that it accepts `value`.
pub fn check(key: &str, value: &Value) -> Result<&'static Setting, Refused> {
    let setting = find(key).ok_or(Refused::UnknownKey)?;
    setting.check(value).map_err(Refused::InvalidValue)?;
    Ok(setting)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const QUOTA: Kind = Kind::Object(&[("n", Kind::Integer { min: 1, max: 10 }), ("on", Kind::Bool)]);

    fn pattern(name: &'static str, segment: Segment) -> Setting {
        Setting {
            name,
            kind: Kind::Bool,
            segment,
            default: || Value::Null,
            validate: no_rule,
            permission: "config:write",
            description: "",
        }
    }

    #[test]
    fn kinds_accept_their_values_and_name_why_they_refuse_others() {
        let check = |kind: Kind, value: Value| kind.check(&value);
        assert_eq!(check(Kind::Bool, json!(true)), Ok(()));
        assert_eq!(check(Kind::Bool, json!(1)), Err("expected true or false".into()));
        let small = Kind::Integer { min: 1, max: 10 };
        assert_eq!(check(small, json!(1)), Ok(()));
        assert_eq!(check(small, json!(10)), Ok(()));
        for bad in [json!(0), json!(11), json!(2.0), json!("2")] {
            assert_eq!(check(small, bad), Err("expected an integer from 1 to 10".into()));
        }
        assert_eq!(check(Kind::Decimal, json!("12.50")), Ok(()));
        for bad in [json!(12.5), json!("x")] {
            assert!(check(Kind::Decimal, bad).unwrap_err().contains("decimal number as a string"));
        }
        assert_eq!(check(QUOTA, json!({"n": 3, "on": false})), Ok(()));
        assert_eq!(check(QUOTA, json!({"n": 30, "on": false})), Err("n: expected an integer from 1 to 10".into()));
        assert_eq!(check(QUOTA, json!({"n": 3})), Err("missing field \"on\"".into()));
        assert_eq!(
            check(QUOTA, json!({"n": 3, "on": true, "x": 1})),
            Err("unknown field \"x\"; the fields are n, on".into())
        );
        assert_eq!(check(QUOTA, json!([])), Err("expected an object with the fields n, on".into()));
        assert_eq!(QUOTA.describe(), "object {n: integer 1..=10, on: bool}");
        assert_eq!(Kind::Decimal.describe(), "decimal string");
        let delays = Kind::IntegerList { min: 1, max: 9, max_len: 2 };
        assert_eq!(check(delays, json!([1, 9])), Ok(()));
        assert_eq!(check(delays, json!([])), Ok(()));
        for bad in [json!([0]), json!([10]), json!([1, 2, 3]), json!([1.5]), json!("1"), json!({})] {
            assert_eq!(check(delays, bad), Err("expected a list of at most 2 integers from 1 to 9".into()));
        }
        assert_eq!(delays.describe(), "list of at most 2 integers 1..=9");
        let policy = Kind::OneOf(&["refuse", "forfeit"]);
        assert_eq!(check(policy, json!("forfeit")), Ok(()));
        for bad in [json!("Refuse"), json!(""), json!(1), json!(["refuse"])] {
            assert_eq!(check(policy, bad), Err("expected one of refuse, forfeit".into()));
        }
        assert_eq!(policy.describe(), "one of refuse | forfeit");
    }

    #[test]
    fn a_pattern_names_the_keys_its_segment_accepts_and_a_name_only_itself() {
        let id = "6f9619ff-8b86-d011-b42d-00cf4fc964ff";
        let by_id = pattern("limit.key.{key_id}", Segment::Uuid);
        assert!(by_id.is_pattern());
        assert_eq!(by_id.segment_of(&format!("limit.key.{id}")), Some(id));
        assert!(!by_id.matches("limit.key.6F9619FF-8B86-D011-B42D-00CF4FC964FF"));
        assert!(!by_id.matches("limit.key.x"));
        assert!(!by_id.matches("limit.key."));
        assert!(!by_id.matches(&format!("other.key.{id}")));
        let middle = pattern("orders.{pair}.rate", Segment::Word);
        assert_eq!(middle.segment_of("orders.EUR_USD.rate"), Some("EUR_USD"));
        assert!(!middle.matches("orders.EUR.USD.rate"));
        assert!(!middle.matches("orders..rate"));
        assert!(!middle.matches(&format!("orders.{}.rate", "x".repeat(65))));
        assert!(middle.matches(&format!("orders.{}.rate", "x".repeat(64))));
        let pair = pattern("orders.rate.{pair}", Segment::CurrencyPair);
        assert_eq!(pair.segment_of("orders.rate.RUB/USDT"), Some("RUB/USDT"));
        for bad in ["orders.rate.RUB", "orders.rate.rub/USDT", "orders.rate.RUB/USDT/BTC", "orders.rate./USDT"] {
            assert!(!pair.matches(bad), "{bad}");
        }
        let plain = pattern("a.b", Segment::Word);
        assert!(!plain.is_pattern());
        assert_eq!(plain.segment_of("a.b"), Some(""));
        assert!(!plain.matches("a.b.c"));
    }

    #[test]
    fn every_declared_setting_has_one_name_a_declared_scope_and_a_default_of_its_kind() {
        let all: Vec<&Setting> = all().collect();
        assert!(all.iter().any(|s| s.name == "rate_limit.default"));
        for (i, s) in all.iter().enumerate() {
            assert!(all[..i].iter().all(|other| other.name != s.name), "{} declared twice", s.name);
            let declared = crate::permission::declared().any(|need| need.to_string() == s.permission);
            assert!(declared, "{}: {}", s.name, s.permission);
            let default = (s.default)();
            assert!(default.is_null() || s.check(&default).is_ok(), "{}: {default}", s.name);
        }
    }

    #[test]
    fn a_change_names_its_setting_or_why_it_is_refused() {
        let quota = json!({"per_second": 5, "burst": 10});
        assert_eq!(check("rate_limit.default", &quota).map(|s| s.name), Ok("rate_limit.default"));
        let key = "rate_limit.key.6f9619ff-8b86-d011-b42d-00cf4fc964ff";
        assert_eq!(check(key, &quota).map(|s| s.name), Ok("rate_limit.key.{key_id}"));
        assert_eq!(check("rate_limit.nothing", &quota).map(|s| s.name), Err(Refused::UnknownKey));
        let refused = check("rate_limit.default", &json!({"per_second": 0, "burst": 10})).map(|s| s.name);
        assert!(matches!(refused, Err(Refused::InvalidValue(why)) if why.starts_with("per_second:")));
        assert_eq!(find("rate_limit.default").map(|s| s.name), Some("rate_limit.default"));
    }
}
