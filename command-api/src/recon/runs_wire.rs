//! Request and response bodies of the reconciliation's rules and runs.

use ledger_core::recon::Totals;
use ledger_core::recon::rule::{CriterionSpec, RuleSpec};
use ledger_core::recon::run::{RuleRow, Run, RunStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How a rule pairs statement lines with ledger entries.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireStrategy {
    /// One line with one entry.
    OneToOne,
    /// One line with the sum of a group of entries sharing `group_by`.
    OneToMany,
    /// The sum of a group of lines sharing `group_by` with one entry.
    ManyToOne,
}

/// One condition between a line and an entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionBody {
    /// `amount`, `reference`, `date`, `currency` or `metadata.<key>` (else `invalid_rule`).
    #[schema(example = "amount", pattern = "^(amount|reference|date|currency|metadata\\.[A-Za-z0-9_.-]{1,64})$")]
    pub field: String,
    /// `equals`, `within` (amount, date), `contains` or `prefix` (reference, metadata).
    #[schema(example = "within", pattern = "^(equals|within|contains|prefix)$")]
    pub operator: String,
    /// `within` only: an exact decimal string for amounts (`"0.01"`), whole seconds for dates.
    #[schema(value_type = Option<String>, example = "0.01", pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub tolerance: Option<serde_json::Value>,
}

/// A matching rule: checked whole (`invalid_rule` says which value is wrong).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    pub strategy: WireStrategy,
    /// Required by `one_to_many` and `many_to_one`: `reference`, `currency`, `date` or `metadata.<key>`.
    #[schema(pattern = "^(reference|currency|date|metadata\\.[A-Za-z0-9_.-]{1,64})$")]
    pub group_by: Option<String>,
    pub criteria: Vec<CriterionBody>,
}

impl RuleRequest {
    pub fn spec(&self) -> RuleSpec {
        let strategy = match self.strategy {
            WireStrategy::OneToOne => "one_to_one",
            WireStrategy::OneToMany => "one_to_many",
            WireStrategy::ManyToOne => "many_to_one",
        };
        RuleSpec {
            strategy: strategy.into(),
            group_by: self.group_by.clone(),
            criteria: self
                .criteria
                .iter()
                .map(|c| CriterionSpec {
                    field: c.field.clone(),
                    operator: c.operator.clone(),
                    tolerance: c.tolerance.clone(),
                })
                .collect(),
        }
    }
}

/// A rule as stored: its canonical form.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleBody {
    pub name: String,
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
    pub version: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl RuleBody {
    pub fn new(r: &RuleRow) -> RuleBody {
        RuleBody {
            name: r.name.clone(),
            rule: r.spec.clone(),
            version: r.version,
            created_at: r.created_at.rfc3339(),
            updated_at: r.at.rfc3339(),
        }
    }
}

/// Every rule by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<RuleBody>,
}

/// A run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The run's id (a retry with the same body answers the run as it stands); a new one when absent.
    pub id: Option<Uuid>,
    #[schema(example = "psp-a")]
    pub provider: String,
    /// RFC 3339; now when absent. Not in the future, nor before the provider's previous run.
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    /// The rules' names, applied in order (every rule by name when absent).
    #[schema(schema_with = rule_names)]
    pub rules: Option<Vec<String>>,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireRunStatus {
    Running,
    Completed,
    /// Not computed: `reason` says why.
    Failed,
}

/// What a run counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsBody {
    pub lines: u64,
    pub entries: u64,
    pub matched: u64,
    pub amount_mismatch: u64,
    pub missing_in_ledger: u64,
    pub missing_at_provider: u64,
    /// Items of earlier runs tried again, and those of them matched now.
    pub carried_over: u64,
    pub late_matched: u64,
}

impl From<Totals> for TotalsBody {
    fn from(t: Totals) -> TotalsBody {
        TotalsBody {
            lines: t.lines,
            entries: t.entries,
            matched: t.matched,
            amount_mismatch: t.amount_mismatch,
            missing_in_ledger: t.missing_in_ledger,
            missing_at_provider: t.missing_at_provider,
            carried_over: t.carried_over,
            late_matched: t.late_matched,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunBody {
    pub id: Uuid,
    pub provider: String,
    /// The statement's period: from the previous completed run's time (null: from the start) to `as_of`.
    #[schema(format = DateTime)]
    pub from: Option<String>,
    #[schema(format = DateTime)]
    pub as_of: String,
    pub rules: Vec<String>,
    /// The schedule that started it; null when started by hand.
    pub schedule: Option<String>,
    /// `manual` or `scheduled`.
    pub trigger: String,
    pub status: WireRunStatus,
    pub reason: Option<String>,
    /// The provider's reported transactional balance, the players' balances, and reported − players.
    pub reported: Option<String>,
    pub players: Option<String>,
    pub difference: Option<String>,
    /// `matched` (within tolerance) or `discrepancy`; null until completed.
    pub balance_status: Option<String>,
    pub totals: Option<TotalsBody>,
    pub lines_hash: Option<String>,
    pub items_hash: Option<String>,
    pub duration_ms: Option<u64>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u32,
    pub position: i64,
}

impl RunBody {
    pub fn new(r: &Run, position: i64) -> RunBody {
        let status = match r.status {
            RunStatus::Running => WireRunStatus::Running,
            RunStatus::Completed => WireRunStatus::Completed,
            RunStatus::Failed => WireRunStatus::Failed,
        };
        RunBody {
            id: r.id.0,
            provider: r.provider.clone(),
            from: r.from.map(|t| t.rfc3339()),
            as_of: r.as_of.rfc3339(),
            rules: r.rules.iter().map(|r| r.name.clone()).collect(),
            schedule: r.schedule.clone(),
            trigger: if r.schedule.is_some() { "scheduled" } else { "manual" }.into(),
            status,
            reason: r.reason.clone(),
            reported: r.reported.map(|d| d.to_string()),
            players: r.players.map(|d| d.to_string()),
            difference: r.difference.map(|d| d.to_string()),
            balance_status: r.balanced.map(|b| if b { "matched" } else { "discrepancy" }.to_owned()),
            totals: r.totals.map(TotalsBody::from),
            lines_hash: r.lines_hash.clone(),
            items_hash: r.items_hash.clone(),
            duration_ms: r.duration_ms,
            started_at: r.started_at.rfc3339(),
            updated_at: r.at.rfc3339(),
            version: r.version,
            position,
        }
    }
}

/// A provider's runs, newest first (at most 1000).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunBody>,
}

/// A rule's name, as `rule::is_rule_name` takes it.
pub const RULE_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// A list of rules' names.
pub fn rule_names() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    let name = ObjectBuilder::new().schema_type(Type::String).pattern(Some(RULE_NAME_PATTERN)).max_length(Some(64));
    ArrayBuilder::new().items(name).max_items(Some(16)).description(Some("The rules' names, applied in order")).build()
}
