//! Rejections: typed result codes, one per reason a command is refused. Checked in a fixed order
//! (see `decide`), so the same command against the same state always gets the same code.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    #[error("the id must not be the nil UUID")]
    IdMustNotBeNil,
    #[error("account codes are 1 to 128 characters of A-Z a-z 0-9 : . _ - @ /")]
    InvalidAccountCode,
    #[error("the currency is not configured")]
    UnknownCurrency,
    #[error("metadata must be a JSON object (or null) of at most 16 KiB with no NUL characters")]
    InvalidMetadata,
    #[error("an external reference is 1 to 256 characters with no control characters")]
    InvalidExternalRef,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("an entity with this id exists with different fields")]
    ExistsWithDifferentFields,
    #[error("another account already has this code")]
    AccountCodeExists,
    #[error("a journal entry needs at least two postings")]
    TooFewPostings,
    #[error("a journal entry has at most 128 postings")]
    TooManyPostings,
    #[error("amounts must be greater than zero")]
    AmountMustBePositive,
    #[error("a timeout is only allowed on a pending transfer")]
    TimeoutReservedForPendingTransfer,
    #[error("the timeout exceeds 30 days")]
    TimeoutTooLong,
    #[error("account not found")]
    AccountNotFound,
    #[error("the same account is on both sides")]
    SameAccountOnBothSides,
    #[error("the debit and credit sides are in different currencies")]
    CurrencyMismatch,
    #[error("the amount has more decimals than the currency's scale")]
    AmountScale,
    #[error("debits do not equal credits in every currency")]
    Unbalanced,
    #[error("the account is frozen")]
    AccountFrozen,
    #[error("the account is closed")]
    AccountClosed,
    #[error("the amount or a resulting balance is too large")]
    Overflow,
    #[error("the transfer would overdraw a no-overdraft account")]
    InsufficientFunds,
    #[error("the account still has a balance or holds")]
    AccountBalanceNotZero,
    #[error("pending transfer not found")]
    PendingTransferNotFound,
    #[error("the transfer was not created as pending")]
    PendingTransferNotPending,
    #[error("the pending transfer was already posted")]
    PendingTransferAlreadyPosted,
    #[error("the pending transfer was already voided")]
    PendingTransferAlreadyVoided,
    #[error("the pending transfer has expired")]
    PendingTransferExpired,
    #[error("a partial amount can only be posted on a two-posting transfer")]
    PartialPostRequiresSimpleTransfer,
    #[error("the amount to post exceeds the pending amount")]
    PostAmountExceedsPending,
    #[error("transfer not found")]
    TransferNotFound,
    #[error("only a posted transfer can be reversed")]
    TransferNotPosted,
    #[error("the transfer was already reversed")]
    TransferAlreadyReversed,
    #[error("another transfer of the linked batch failed")]
    LinkedEventFailed,
    #[error("a batch holds 1 to 8190 transfers")]
    BatchSize,
    /// The seam's own refusal, for every domain (their rejections carry the ledger's): the
    /// command would create an entity row under an id that an entity of another kind holds
    /// (`crate::domain::State::claim`).
    #[error("this id is already another kind of entity's; a new entity needs an id of its own")]
    IdTaken,
}

impl Rejection {
    /// The stable, snake_case code clients match on.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::IdMustNotBeNil => "id_must_not_be_nil",
            Rejection::InvalidAccountCode => "invalid_account_code",
            Rejection::UnknownCurrency => "unknown_currency",
            Rejection::InvalidMetadata => "invalid_metadata",
            Rejection::InvalidExternalRef => "invalid_external_ref",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::ExistsWithDifferentFields => "exists_with_different_fields",
            Rejection::AccountCodeExists => "account_code_exists",
            Rejection::TooFewPostings => "too_few_postings",
            Rejection::TooManyPostings => "too_many_postings",
            Rejection::AmountMustBePositive => "amount_must_be_positive",
            Rejection::TimeoutReservedForPendingTransfer => "timeout_reserved_for_pending_transfer",
            Rejection::TimeoutTooLong => "timeout_too_long",
            Rejection::AccountNotFound => "account_not_found",
            Rejection::SameAccountOnBothSides => "same_account_on_both_sides",
            Rejection::CurrencyMismatch => "currency_mismatch",
            Rejection::AmountScale => "amount_scale",
            Rejection::Unbalanced => "unbalanced",
            Rejection::AccountFrozen => "account_frozen",
            Rejection::AccountClosed => "account_closed",
            Rejection::Overflow => "overflow",
            Rejection::InsufficientFunds => "insufficient_funds",
            Rejection::AccountBalanceNotZero => "account_balance_not_zero",
            Rejection::PendingTransferNotFound => "pending_transfer_not_found",
            Rejection::PendingTransferNotPending => "pending_transfer_not_pending",
            Rejection::PendingTransferAlreadyPosted => "pending_transfer_already_posted",
            Rejection::PendingTransferAlreadyVoided => "pending_transfer_already_voided",
            Rejection::PendingTransferExpired => "pending_transfer_expired",
            Rejection::PartialPostRequiresSimpleTransfer => "partial_post_requires_simple_transfer",
            Rejection::PostAmountExceedsPending => "post_amount_exceeds_pending",
            Rejection::TransferNotFound => "transfer_not_found",
            Rejection::TransferNotPosted => "transfer_not_posted",
            Rejection::TransferAlreadyReversed => "transfer_already_reversed",
            Rejection::LinkedEventFailed => "linked_event_failed",
            Rejection::BatchSize => "batch_size",
            Rejection::IdTaken => "id_taken",
        }
    }
}
