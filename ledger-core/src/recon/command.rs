//! What operators and the movements' runtime ask of the reconciliation.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rule::RuleSpec;
use crate::ids::{MovementId, RunId, Timestamp};
use crate::money::CurrencyCode;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Creates or changes a provider; its accounts open with it.
    SetProvider(SetProvider),
    /// Moves funds between a provider's transactional and operational balances: checks the
    /// segregation rule and holds the amount; the provider's answer settles it.
    MoveMoney(MoveMoney),
    /// The outcome of one call to the provider for a pending movement.
    RecordAttempt(Attempt),
    /// Creates or replaces a matching rule.
    SetRule { name: String, spec: RuleSpec },
    /// Starts a reconciliation run of a provider as of a time (now when none).
    StartRun(StartRun),
    /// Records a run's result, computed by the runtime from the provider's report, the ledger
    /// as of the run's time and the run's rules.
    CompleteRun(Box<CompleteRun>),
    /// A run that could not be computed (the provider did not answer), with why.
    FailRun { id: RunId, reason: String },
    /// An operator matches or dismisses an open item by hand.
    ResolveItem(Box<ResolveItem>),
    /// Creates or changes a schedule of runs.
    SetSchedule(super::schedule::SetSchedule),
    /// A scheduler fires a schedule at the due time it holds.
    FireSchedule { id: String, due: Timestamp },
}

/// What an operator decides about an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Matched by hand, with its counterpart (a line's or a transfer's id) when it names one.
    Match,
    /// Dismissed: nothing will match it, and the reason says why.
    Dismiss,
}

/// An item's resolution, with what the store holds of the item (items are kept beside the log,
/// not in the writer's memory): the edge reads it, the core decides on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveItem {
    pub item: uuid::Uuid,
    pub run: RunId,
    pub provider: String,
    /// The item's status in the store: only `open` items are resolved.
    pub status: String,
    pub action: Resolution,
    pub counterpart: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRun {
    pub id: RunId,
    pub provider: String,
    pub as_of: Option<Timestamp>,
    /// The rules' names, applied in order.
    pub rules: Vec<String>,
    /// The schedule that started it (none: started by hand).
    pub schedule: Option<String>,
}

/// What a run counted. Items carried over from earlier runs count in `carried_over`, and those
/// of them matched by this run in `late_matched` too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub lines: u64,
    pub entries: u64,
    pub matched: u64,
    pub amount_mismatch: u64,
    pub missing_in_ledger: u64,
    pub missing_at_provider: u64,
    pub carried_over: u64,
    pub late_matched: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteRun {
    pub id: RunId,
    /// The provider's transactional balance as it reported it for the run's time.
    pub reported: Decimal,
    /// The players' balances attributed to the provider as of the run's time.
    pub players: Decimal,
    pub totals: Totals,
    /// SHA-256 (hex) of the statement lines the run read, and of its itemised result, as stored
    /// beside the log (`recon_statement_lines`, `recon_items`).
    pub lines_hash: String,
    pub items_hash: String,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetProvider {
    pub id: String,
    pub name: String,
    pub currency: CurrencyCode,
    pub base_url: String,
    /// The largest difference a reconciliation accepts as matched, in the provider's currency.
    pub tolerance: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToOperational,
    ToTransactional,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToOperational => "to_operational",
            Direction::ToTransactional => "to_transactional",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveMoney {
    pub id: MovementId,
    pub provider: String,
    pub direction: Direction,
    pub amount: Decimal,
    pub reason: String,
}

/// What one call to the provider answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The provider moved the money.
    Succeeded,
    /// The provider refused, with its reason: final.
    Refused { reason: String },
    /// No answer (a connection error, a timeout, a 5xx): tried again unless it was the last.
    Error { error: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub id: MovementId,
    pub outcome: Outcome,
    pub terms: Terms,
}

/// The runtime settings a movement's attempts run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub max_attempts: u32,
    pub retry_seconds: u32,
}

impl Terms {
    /// The terms in effect, read through `lookup` (the runtime configuration's value in effect
    /// for a key, `null` when unset).
    pub fn resolve(lookup: impl Fn(&str) -> Value) -> Terms {
        let number =
            |key: &str, default: u32| lookup(key).as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
        Terms {
            max_attempts: number(super::MAX_ATTEMPTS_KEY, super::DEFAULT_MAX_ATTEMPTS),
            retry_seconds: number(super::RETRY_SECONDS_KEY, super::DEFAULT_RETRY_SECONDS),
        }
    }

    /// The wait after the `failed`-th failed call: the first retry after `retry_seconds`, each
    /// later one twice as long, at most an hour.
    pub fn backoff(self, failed: u32) -> u32 {
        let doublings = failed.saturating_sub(1).min(31);
        self.retry_seconds.saturating_mul(1u32 << doublings).min(super::MAX_RETRY_SECONDS)
    }
}

impl Default for Terms {
    fn default() -> Terms {
        Terms::resolve(|_| Value::Null)
    }
}
