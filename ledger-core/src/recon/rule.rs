//! Reconciliation rules, as an operator writes them (`PUT /v1/recon/rules/{name}`) and as the
//! matching engine uses them.
//!
//! [`RuleSpec`] is the wire form: every value is taken as any string (or, for a tolerance, any
//! JSON) so that [`Rule::check`] can say which value is wrong instead of a serde message.
//! [`Rule`] is the checked form; [`Rule::spec`] writes it back in its canonical form.
//!
//! `check` refuses in a fixed order, the first failure winning:
//! 1. the strategy is known;
//! 2. there are 1 to [`MAX_CRITERIA`] criteria;
//! 3. each criterion in turn: a known field, a known operator, the operator applies to the field
//!    (`within` to `amount` and `date`, `contains` and `prefix` to `reference` and
//!    `metadata.*`, `equals` to any), and a tolerance exactly when the operator is `within`, of
//!    the field's kind (an amount's a decimal string, a date's whole seconds);
//! 4. `group_by`: required by `one_to_many` and `many_to_one`, refused by `one_to_one`, and one
//!    of `reference`, `currency`, `date` (the UTC day) or `metadata.<key>`;
//! 5. a group strategy compares sums, so it has an `equals` or `within` criterion on `amount`.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most criteria a rule may have.
pub const MAX_CRITERIA: usize = 16;

/// The largest date tolerance: 31 days, in seconds.
pub const MAX_DATE_TOLERANCE_SECONDS: u32 = 31 * 86_400;

/// The longest amount tolerance string `check` reads (far more digits than an amount holds).
const MAX_AMOUNT_TOLERANCE_CHARS: usize = 40;

/// A rule's name: 1 to 64 of `a-z 0-9 _ -`, starting with a letter or a digit.
pub fn is_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A rule on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub strategy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    pub criteria: Vec<CriterionSpec>,
}

/// A criterion on the wire. A `null` tolerance is no tolerance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSpec {
    pub field: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Value>,
}

/// How statement lines and ledger entries pair up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// One line with one entry.
    OneToOne,
    /// One line with the group of entries sharing its `group_by` value.
    OneToMany,
    /// The group of lines sharing an entry's `group_by` value with that entry.
    ManyToOne,
}

impl Strategy {
    pub fn parse(text: &str) -> Option<Strategy> {
        match text {
            "one_to_one" => Some(Strategy::OneToOne),
            "one_to_many" => Some(Strategy::OneToMany),
            "many_to_one" => Some(Strategy::ManyToOne),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::OneToOne => "one_to_one",
            Strategy::OneToMany => "one_to_many",
            Strategy::ManyToOne => "many_to_one",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a criterion compares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Amount,
    Reference,
    Date,
    Currency,
    /// `metadata.<key>`, the key 1 to 64 of `A-Z a-z 0-9 _ . -`.
    Metadata(String),
}

impl Field {
    pub fn parse(text: &str) -> Option<Field> {
        match text {
            "amount" => Some(Field::Amount),
            "reference" => Some(Field::Reference),
            "date" => Some(Field::Date),
            "currency" => Some(Field::Currency),
            _ => {
                let key = text.strip_prefix("metadata.")?;
                let ok = (1..=64).contains(&key.len())
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                ok.then(|| Field::Metadata(key.to_owned()))
            }
        }
    }

    /// Text fields: `contains` and `prefix` apply to them.
    fn is_free_text(&self) -> bool {
        matches!(self, Field::Reference | Field::Metadata(_))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Amount => f.write_str("amount"),
            Field::Reference => f.write_str("reference"),
            Field::Date => f.write_str("date"),
            Field::Currency => f.write_str("currency"),
            Field::Metadata(key) => write!(f, "metadata.{key}"),
        }
    }
}

/// How a criterion compares a line's value with an entry's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    Within,
    /// The line's value contains the entry's.
    Contains,
    /// The line's value starts with the entry's.
    Prefix,
}

impl Operator {
    pub fn parse(text: &str) -> Option<Operator> {
        match text {
            "equals" => Some(Operator::Equals),
            "within" => Some(Operator::Within),
            "contains" => Some(Operator::Contains),
            "prefix" => Some(Operator::Prefix),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "equals",
            Operator::Within => "within",
            Operator::Contains => "contains",
            Operator::Prefix => "prefix",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far apart two values may be for `within`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tolerance {
    /// An amount, at least zero.
    Amount(Decimal),
    /// Whole seconds, at most [`MAX_DATE_TOLERANCE_SECONDS`].
    Seconds(u32),
}

/// One comparison of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Criterion {
    pub field: Field,
    pub operator: Operator,
    pub tolerance: Option<Tolerance>,
}

/// A checked rule. Only [`Rule::check`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    strategy: Strategy,
    group_by: Option<Field>,
    criteria: Vec<Criterion>,
}

/// Why a rule was refused (the `invalid_rule` rejection); the message says which value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRule {
    #[error("unknown strategy {0:?}: expected one_to_one, one_to_many or many_to_one")]
    UnknownStrategy(String),
    #[error("a rule needs at least one criterion")]
    NoCriteria,
    #[error("a rule has at most 16 criteria, this one has {count}")]
    TooManyCriteria { count: usize },
    #[error(
        "criteria[{index}]: unknown field {field:?}: expected amount, reference, date, currency or \
         metadata.<key> (key 1 to 64 of A-Z a-z 0-9 _ . -)"
    )]
    UnknownField { index: usize, field: String },
    #[error("criteria[{index}]: unknown operator {operator:?}: expected equals, within, contains or prefix")]
    UnknownOperator { index: usize, operator: String },
    #[error(
        "criteria[{index}]: {operator} does not apply to {field} (within applies to amount and date, contains \
         and prefix to reference and metadata.<key>)"
    )]
    OperatorNotForField { index: usize, operator: Operator, field: Field },
    #[error("criteria[{index}]: within needs a tolerance")]
    MissingTolerance { index: usize },
    #[error("criteria[{index}]: {operator} takes no tolerance")]
    UnexpectedTolerance { index: usize, operator: Operator },
    #[error("criteria[{index}]: an amount tolerance is a decimal string of at least zero, such as \"0.01\"")]
    InvalidAmountTolerance { index: usize },
    #[error(
        "criteria[{index}]: a date tolerance is a whole number of seconds from 0 to 2678400 (31 days), as an \
         integer or a string of digits"
    )]
    InvalidSecondsTolerance { index: usize },
    #[error("strategy {0} needs group_by")]
    MissingGroupBy(Strategy),
    #[error("strategy one_to_one takes no group_by")]
    UnexpectedGroupBy,
    #[error("group_by {0:?} is not reference, currency, date or metadata.<key>")]
    InvalidGroupBy(String),
    #[error("strategy {0} compares sums, so it needs an equals or within criterion on amount")]
    NoAmountCriterion(Strategy),
}

impl Rule {
    /// Checks a rule whole, in the order the module documents.
    pub fn check(spec: &RuleSpec) -> Result<Rule, InvalidRule> {
        let strategy =
            Strategy::parse(&spec.strategy).ok_or_else(|| InvalidRule::UnknownStrategy(spec.strategy.clone()))?;
        match spec.criteria.len() {
            0 => return Err(InvalidRule::NoCriteria),
            count if count > MAX_CRITERIA => return Err(InvalidRule::TooManyCriteria { count }),
            _ => {}
        }
        let criteria = spec
            .criteria
            .iter()
            .enumerate()
            .map(|(index, c)| check_criterion(index, c))
            .collect::<Result<Vec<_>, _>>()?;
        let group_by = match (strategy, &spec.group_by) {
            (Strategy::OneToOne, None) => None,
            (Strategy::OneToOne, Some(_)) => return Err(InvalidRule::UnexpectedGroupBy),
            (_, None) => return Err(InvalidRule::MissingGroupBy(strategy)),
            (_, Some(text)) => match Field::parse(text) {
                Some(field) if field != Field::Amount => Some(field),
                _ => return Err(InvalidRule::InvalidGroupBy(text.clone())),
            },
        };
        if group_by.is_some() && !criteria.iter().any(|c| c.field == Field::Amount) {
            return Err(InvalidRule::NoAmountCriterion(strategy));
        }
        Ok(Rule { strategy, group_by, criteria })
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The field groups share: `Some` exactly for the group strategies.
    pub fn group_by(&self) -> Option<&Field> {
        self.group_by.as_ref()
    }

    pub fn criteria(&self) -> &[Criterion] {
        &self.criteria
    }

    /// The canonical wire form: `check(&rule.spec()) == Ok(rule)`. An amount tolerance keeps
    /// the digits it was given (`"0.010"`); a date tolerance is a JSON integer.
    pub fn spec(&self) -> RuleSpec {
        let criterion = |c: &Criterion| CriterionSpec {
            field: c.field.to_string(),
            operator: c.operator.as_str().to_owned(),
            tolerance: c.tolerance.map(|t| match t {
                Tolerance::Amount(amount) => Value::String(amount.to_string()),
                Tolerance::Seconds(seconds) => Value::from(seconds),
            }),
        };
        RuleSpec {
            strategy: self.strategy.as_str().to_owned(),
            group_by: self.group_by.as_ref().map(Field::to_string),
            criteria: self.criteria.iter().map(criterion).collect(),
        }
    }
}

fn check_criterion(index: usize, spec: &CriterionSpec) -> Result<Criterion, InvalidRule> {
    let field =
        Field::parse(&spec.field).ok_or_else(|| InvalidRule::UnknownField { index, field: spec.field.clone() })?;
    let operator = Operator::parse(&spec.operator)
        .ok_or_else(|| InvalidRule::UnknownOperator { index, operator: spec.operator.clone() })?;
    let applies = match operator {
        Operator::Equals => true,
        Operator::Within => matches!(field, Field::Amount | Field::Date),
        Operator::Contains | Operator::Prefix => field.is_free_text(),
    };
    if !applies {
        return Err(InvalidRule::OperatorNotForField { index, operator, field });
    }
    let tolerance = match (operator, &spec.tolerance) {
        (Operator::Within, None) => return Err(InvalidRule::MissingTolerance { index }),
        (Operator::Within, Some(value)) if field == Field::Amount => {
            Some(Tolerance::Amount(amount_tolerance(value).ok_or(InvalidRule::InvalidAmountTolerance { index })?))
        }
        (Operator::Within, Some(value)) => {
            Some(Tolerance::Seconds(seconds_tolerance(value).ok_or(InvalidRule::InvalidSecondsTolerance { index })?))
        }
        (_, None) => None,
        (_, Some(_)) => return Err(InvalidRule::UnexpectedTolerance { index, operator }),
    };
    Ok(Criterion { field, operator, tolerance })
}

/// A JSON string of digits with an optional fraction (`"0.01"`, `"5"`), exactly representable
/// and at most [`crate::money::max_amount`]. A JSON number is refused: it may have passed
/// through a float.
fn amount_tolerance(value: &Value) -> Option<Decimal> {
    let text = value.as_str()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "1"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if text.len() > MAX_AMOUNT_TOLERANCE_CHARS || !digits(whole) || !digits(fraction) {
        return None;
    }
    Decimal::from_str_exact(text).ok().filter(|amount| *amount <= crate::money::max_amount())
}

/// A JSON integer or a string of digits, from 0 to [`MAX_DATE_TOLERANCE_SECONDS`].
fn seconds_tolerance(value: &Value) -> Option<u32> {
    let seconds = match value {
        Value::Number(number) => number.as_u64()?,
        Value::String(text) if (1..=7).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()?
        }
        _ => return None,
    };
    u32::try_from(seconds).ok().filter(|s| *s <= MAX_DATE_TOLERANCE_SECONDS)
}

#[cfg(test)]
mod tests;
