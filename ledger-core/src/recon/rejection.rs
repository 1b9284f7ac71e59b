//! Why a reconciliation command is refused. Checked in the order documented in `decide`.

use crate::ledger;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("a provider id is 1 to 64 of A-Z a-z 0-9 . _ -, and never holds ldg_ or whsec_")]
    InvalidProviderId,
    #[error("a provider's name is 1 to 128 characters with no control characters")]
    InvalidName,
    #[error("a base URL is an http:// or https:// URL of at most 2048 characters with no spaces or control characters")]
    InvalidBaseUrl,
    #[error("a tolerance is zero or positive, at the provider's currency's scale")]
    InvalidTolerance,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("a provider's currency cannot change")]
    CurrencyFixed,
    #[error("provider not found")]
    ProviderNotFound,
    #[error("movement not found")]
    MovementNotFound,
    #[error("a movement with this id exists with other details")]
    MovementExists,
    #[error("the movement would leave the transactional balance below what the players are owed")]
    SegregationBreach,
    #[error("the movement is settled")]
    MovementSettled,
    #[error("a rule's name is 1 to 64 of a-z 0-9 _ -, starting with a letter or digit")]
    InvalidRuleName,
    #[error("a rule names a strategy, fields and operators the matching knows, with tolerances where they apply")]
    InvalidRule,
    #[error("a run applies 1 to 16 rules, each named once")]
    InvalidRules,
    #[error("a rule the run names does not exist")]
    RuleNotFound,
    #[error("a run's time is not in the future, nor before the provider's previous run's")]
    InvalidAsOf,
    #[error("the provider has a run in progress")]
    RunInProgress,
    #[error("a run with this id exists with other details")]
    RunExists,
    #[error("run not found")]
    RunNotFound,
    #[error("the run is not running")]
    RunNotRunning,
    #[error("the item is not open: a run matched or superseded it, or it was resolved")]
    ItemClosed,
    #[error("a counterpart is a line's or a transfer's id: 1 to 128 characters with no control characters")]
    InvalidCounterpart,
    #[error("a schedule id is 1 to 64 of A-Z a-z 0-9 . _ -")]
    InvalidScheduleId,
    #[error("a schedule's cron is five fields (minute hour day-of-month month day-of-week, UTC)")]
    InvalidCron,
    #[error("schedule not found")]
    ScheduleNotFound,
    #[error("the schedule is not due at that time")]
    ScheduleNotDue,
    #[error(transparent)]
    Ledger(#[from] ledger::Rejection),
}

impl Rejection {
    pub fn code(self) -> &'static str {
        match self {
            Rejection::InvalidProviderId => "invalid_provider_id",
            Rejection::InvalidName => "invalid_name",
            Rejection::InvalidBaseUrl => "invalid_base_url",
            Rejection::InvalidTolerance => "invalid_tolerance",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::CurrencyFixed => "currency_fixed",
            Rejection::ProviderNotFound => "provider_not_found",
            Rejection::MovementNotFound => "movement_not_found",
            Rejection::MovementExists => "movement_exists",
            Rejection::SegregationBreach => "segregation_breach",
            Rejection::MovementSettled => "movement_settled",
            Rejection::InvalidRuleName => "invalid_rule_name",
            Rejection::InvalidRule => "invalid_rule",
            Rejection::InvalidRules => "invalid_rules",
            Rejection::RuleNotFound => "rule_not_found",
            Rejection::InvalidAsOf => "invalid_as_of",
            Rejection::RunInProgress => "run_in_progress",
            Rejection::RunExists => "run_exists",
            Rejection::RunNotFound => "run_not_found",
            Rejection::RunNotRunning => "run_not_running",
            Rejection::ItemClosed => "item_closed",
            Rejection::InvalidCounterpart => "invalid_counterpart",
            Rejection::InvalidScheduleId => "invalid_schedule_id",
            Rejection::InvalidCron => "invalid_cron",
            Rejection::ScheduleNotFound => "schedule_not_found",
            Rejection::ScheduleNotDue => "schedule_not_due",
            Rejection::Ledger(r) => r.code(),
        }
    }
}

impl From<crate::audit::Rejection> for Rejection {
    /// Providers' ids, names and amounts never look like secrets: only a reason can.
    fn from(_: crate::audit::Rejection) -> Rejection {
        Rejection::InvalidReason
    }
}
