//! Why an orders command is refused. Checked in the order documented in `decide`.

/// Not a refusal: an order over the fraud deny limit is recorded `denied` (nothing held), and
/// the API answers its creation, and every retry of it, with this code.
pub const FRAUD_DENIED: &str = "fraud_denied";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("a store, trader or requisite id is 1 to 64 of A-Z a-z 0-9 . _ -, and never holds ldg_ or whsec_")]
    InvalidParticipantId,
    #[error("a fee is a fraction from 0 (included) to 1 (excluded) with at most 6 decimals")]
    InvalidFee,
    #[error(
        "names, methods, banks, masked details and external ids are 1 to 128 characters with no control characters"
    )]
    InvalidReference,
    #[error("a callback URL is 1 to 2048 characters with no control characters or spaces")]
    InvalidCallbackUrl,
    #[error("a requisite needs 0 < min_amount <= max_amount <= daily_limit, at its currency's scale")]
    InvalidLimits,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("a trader lists at most 16 settlement currencies")]
    TooManyCurrencies,
    #[error("a store's settlement currency cannot change")]
    SettlementCurrencyFixed,
    #[error("store not found")]
    StoreNotFound,
    #[error("trader not found")]
    TraderNotFound,
    #[error("the trader is not in this team lead's team")]
    NotTheTeamLead,
    #[error("order not found")]
    OrderNotFound,
    #[error("an order with this id, or with this store's external order id, exists with different fields")]
    OrderExists,
    #[error("no exchange rate is set from the order's currency to the store's settlement currency")]
    NoExchangeRate,
    #[error("the amount is worth nothing in the settlement currency at its scale")]
    AmountTooSmall,
    #[error("no trader's requisite can take the order now")]
    NoRequisiteAvailable,
    #[error("the order's status does not allow this transition")]
    InvalidOrderState,
    #[error("the order is past its deadline")]
    OrderExpired,
    #[error("the order's dispute window has closed")]
    DisputeWindowClosed,
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
            Rejection::InvalidFee => "invalid_fee",
            Rejection::InvalidReference => "invalid_reference",
            Rejection::InvalidCallbackUrl => "invalid_callback_url",
            Rejection::InvalidLimits => "invalid_limits",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::TooManyCurrencies => "too_many_currencies",
            Rejection::SettlementCurrencyFixed => "settlement_currency_fixed",
            Rejection::StoreNotFound => "store_not_found",
            Rejection::TraderNotFound => "trader_not_found",
            Rejection::NotTheTeamLead => "not_the_team_lead",
            Rejection::OrderNotFound => "order_not_found",
            Rejection::OrderExists => "order_exists",
            Rejection::NoExchangeRate => "no_exchange_rate",
            Rejection::AmountTooSmall => "amount_too_small",
            Rejection::NoRequisiteAvailable => "no_requisite_available",
            Rejection::InvalidOrderState => "invalid_order_state",
            Rejection::OrderExpired => "order_expired",
            Rejection::DisputeWindowClosed => "dispute_window_closed",
            Rejection::Ledger(r) => r.code(),
        }
    }
}
