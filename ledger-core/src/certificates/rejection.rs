//! Why a certificate command is refused. Checked in the order documented in `decide`.

use crate::ledger;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("a certificate code is 1 to 64 characters of A-Z a-z 0-9 _ -")]
    InvalidCertificateCode,
    #[error("certificate not found")]
    CertificateNotFound,
    #[error("an operation id is 1 to 128 characters with no control characters")]
    InvalidOperationId,
    #[error("order and payment ids are 1 to 128 characters with no control characters")]
    InvalidReference,
    #[error("a phone number is 7 to 15 digits, optionally after a +")]
    InvalidPhone,
    #[error("a campaign is 1 to 128 characters with no control characters")]
    InvalidCampaign,
    #[error("a reason is at most 500 characters, not blank, with no control characters")]
    InvalidReason,
    #[error("the expiry must be later than now")]
    InvalidExpiry,
    #[error("an operation with this id exists with different fields")]
    ExistsWithDifferentFields,
    #[error("the certificate has not been activated")]
    CertificateNotActive,
    #[error("the certificate was already activated by another order or payment")]
    CertificateNotIssued,
    #[error("the certificate has expired")]
    CertificateExpired,
    #[error("the certificate was cancelled")]
    CertificateCancelled,
    #[error("the certificate was refunded")]
    CertificateRefunded,
    #[error("the order paid another amount or currency than the certificate's nominal")]
    PaymentMismatch,
    #[error("no phone number to send the CVC to: give one on activation or on the upload row")]
    PhoneRequired,
    #[error("too many wrong CVCs: authorizations are refused for 15 minutes")]
    CertificateLocked,
    #[error("no authorization with this operation id")]
    OperationNotFound,
    #[error("the authorization was already captured")]
    AuthorizationAlreadyCaptured,
    #[error("the authorization was voided")]
    AuthorizationVoided,
    #[error("the amount to capture exceeds the authorization")]
    CaptureExceedsAuthorization,
    #[error("an authorization is still open on the certificate")]
    AuthorizationOpen,
    /// Refused by the ledger's rules (amount scale, insufficient funds, ...).
    #[error(transparent)]
    Ledger(ledger::Rejection),
}

impl From<ledger::Rejection> for Rejection {
    fn from(r: ledger::Rejection) -> Rejection {
        Rejection::Ledger(r)
    }
}

impl Rejection {
    /// The stable, snake_case code clients match on (the ledger's own for its rules).
    pub fn code(self) -> &'static str {
        match self {
            Rejection::InvalidCertificateCode => "invalid_certificate_code",
            Rejection::CertificateNotFound => "certificate_not_found",
            Rejection::InvalidOperationId => "invalid_operation_id",
            Rejection::InvalidReference => "invalid_reference",
            Rejection::InvalidPhone => "invalid_phone",
            Rejection::InvalidCampaign => "invalid_campaign",
            Rejection::InvalidReason => "invalid_reason",
            Rejection::InvalidExpiry => "invalid_expiry",
            Rejection::ExistsWithDifferentFields => "exists_with_different_fields",
            Rejection::CertificateNotActive => "certificate_not_active",
            Rejection::CertificateNotIssued => "certificate_not_issued",
            Rejection::CertificateExpired => "certificate_expired",
            Rejection::CertificateCancelled => "certificate_cancelled",
            Rejection::CertificateRefunded => "certificate_refunded",
            Rejection::PaymentMismatch => "payment_mismatch",
            Rejection::PhoneRequired => "phone_required",
            Rejection::CertificateLocked => "certificate_locked",
            Rejection::OperationNotFound => "operation_not_found",
            Rejection::AuthorizationAlreadyCaptured => "authorization_already_captured",
            Rejection::AuthorizationVoided => "authorization_voided",
            Rejection::CaptureExceedsAuthorization => "capture_exceeds_authorization",
            Rejection::AuthorizationOpen => "authorization_open",
            Rejection::Ledger(r) => r.code(),
        }
    }
}
