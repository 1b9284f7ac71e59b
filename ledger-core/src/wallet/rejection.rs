//! Why a wallet command is refused. Checked in the order documented in `decide`.

use rust_decimal::Decimal;

use super::command::LimitKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("a player or provider id is 1 to 64 of A-Z a-z 0-9 . _ -, and never holds ldg_ or whsec_")]
    InvalidParticipantId,
    #[error("a round id or a provider's reference is 1 to 128 characters with no control characters")]
    InvalidReference,
    #[error("a base URL is 1 to 2048 characters with no control characters or spaces")]
    InvalidBaseUrl,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("a limit is a positive amount at the player's currency's scale")]
    InvalidLimit,
    #[error("a bonus's wagering multiplier is from 0 to 1000 with at most 2 decimals, and it expires in the future")]
    InvalidBonus,
    #[error("a player's currency cannot change")]
    CurrencyFixed,
    #[error("a provider's kind cannot change")]
    ProviderKindFixed,
    #[error("player not found")]
    PlayerNotFound,
    #[error("provider not found, or not of the kind this needs")]
    ProviderNotFound,
    #[error("the amount's currency is not the player's")]
    CurrencyMismatch,
    #[error("the player is self-excluded")]
    SelfExcluded,
    #[error("the {limit} limit leaves {remaining}")]
    LimitExceeded { limit: LimitKind, remaining: Decimal },
    #[error("withdrawals need KYC at least basic")]
    KycRequired,
    #[error("a bonus is being wagered")]
    BonusWageringOpen,
    #[error("the player has an open bonus")]
    BonusOpen,
    #[error("a deposit with this id exists with different fields")]
    DepositExists,
    #[error("deposit not found")]
    DepositNotFound,
    #[error("the webhook's amount or currency is not the deposit's or withdrawal's")]
    AmountMismatch,
    #[error("the deposit already has the other outcome")]
    DepositAlreadySettled,
    #[error("a withdrawal with this id exists with different fields")]
    WithdrawalExists,
    #[error("withdrawal not found")]
    WithdrawalNotFound,
    #[error("the withdrawal already has another outcome")]
    WithdrawalAlreadySettled,
    #[error("a bonus with this id exists with different fields")]
    BonusExists,
    #[error("bonus not found")]
    BonusNotFound,
    #[error("the bonus is no longer open")]
    BonusClosed,
    #[error("this transaction id was seen with a different body")]
    DuplicateTransaction,
    #[error("this bet was rolled back before it arrived")]
    TransactionRolledBack,
    #[error("the transaction this names is unknown, or not a bet of this player")]
    TransactionNotFound,
    #[error("the round already has a win")]
    RollbackAfterWin,
    #[error("the round is closed, or another player's")]
    RoundClosed,
    /// Refused by the ledger's rules (amount scale, insufficient funds, a frozen account, ...).
    #[error(transparent)]
    Ledger(crate::ledger::Rejection),
}

impl From<crate::ledger::Rejection> for Rejection {
    fn from(r: crate::ledger::Rejection) -> Rejection {
        Rejection::Ledger(r)
    }
}

impl Rejection {
    /// The stable, snake_case code clients match on (the ledger's own for its rules).
    pub fn code(self) -> &'static str {
        match self {
            Rejection::InvalidParticipantId => "invalid_participant_id",
            Rejection::InvalidReference => "invalid_reference",
            Rejection::InvalidBaseUrl => "invalid_base_url",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::InvalidLimit => "invalid_limit",
            Rejection::InvalidBonus => "invalid_bonus",
            Rejection::CurrencyFixed => "currency_fixed",
            Rejection::ProviderKindFixed => "provider_kind_fixed",
            Rejection::PlayerNotFound => "player_not_found",
            Rejection::ProviderNotFound => "provider_not_found",
            Rejection::CurrencyMismatch => "currency_mismatch",
            Rejection::SelfExcluded => "self_excluded",
            Rejection::LimitExceeded { .. } => "limit_exceeded",
            Rejection::KycRequired => "kyc_required",
            Rejection::BonusWageringOpen => "bonus_wagering_open",
            Rejection::BonusOpen => "bonus_open",
            Rejection::DepositExists => "deposit_exists",
            Rejection::DepositNotFound => "deposit_not_found",
            Rejection::AmountMismatch => "amount_mismatch",
            Rejection::DepositAlreadySettled => "deposit_already_settled",
            Rejection::WithdrawalExists => "withdrawal_exists",
            Rejection::WithdrawalNotFound => "withdrawal_not_found",
            Rejection::WithdrawalAlreadySettled => "withdrawal_already_settled",
            Rejection::BonusExists => "bonus_exists",
            Rejection::BonusNotFound => "bonus_not_found",
            Rejection::BonusClosed => "bonus_closed",
            Rejection::DuplicateTransaction => "duplicate_transaction",
            Rejection::TransactionRolledBack => "transaction_rolled_back",
            Rejection::TransactionNotFound => "transaction_not_found",
            Rejection::RollbackAfterWin => "rollback_after_win",
            Rejection::RoundClosed => "round_closed",
            Rejection::Ledger(r) => r.code(),
        }
    }

    /// The status a game provider's callback answers with (HTTP 200 and this code), as
    /// aggregators expect.
    pub fn game_status(self) -> &'static str {
        match self {
            Rejection::Ledger(crate::ledger::Rejection::InsufficientFunds) => "INSUFFICIENT_FUNDS",
            Rejection::DuplicateTransaction => "DUPLICATE_TRANSACTION",
            Rejection::TransactionNotFound => "TRANSACTION_NOT_FOUND",
            Rejection::TransactionRolledBack => "TRANSACTION_ROLLED_BACK",
            Rejection::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            Rejection::SelfExcluded => "SELF_EXCLUDED",
            Rejection::RollbackAfterWin => "ROLLBACK_AFTER_WIN",
            _ => "INVALID_REQUEST",
        }
    }
}
