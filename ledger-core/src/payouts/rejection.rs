//! Why a payouts command is refused. Checked in the order documented in `decide`.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("a client id is 1 to 128 characters with no control characters")]
    InvalidClientId,
    #[error("a request with this id exists with different fields")]
    ExistsWithDifferentFields,
    #[error("a gate takes 1 to 10000 at a time")]
    InvalidLimit,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("payout not found")]
    PayoutNotFound,
    #[error("the payout's status does not allow this transition")]
    InvalidTransition,
    /// Refused by the ledger's rules (a rejected payout's return to a closed account, ...).
    #[error(transparent)]
    Ledger(crate::ledger::Rejection),
}

impl From<crate::ledger::Rejection> for Rejection {
    fn from(r: crate::ledger::Rejection) -> Rejection {
        Rejection::Ledger(r)
    }
}

impl Rejection {
    /// The stable, snake_case code clients match on.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::InvalidClientId => "invalid_client_id",
            Rejection::ExistsWithDifferentFields => "exists_with_different_fields",
            Rejection::InvalidLimit => "invalid_limit",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::PayoutNotFound => "payout_not_found",
            Rejection::InvalidTransition => "invalid_transition",
            Rejection::Ledger(r) => r.code(),
        }
    }
}
