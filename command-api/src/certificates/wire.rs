//! Request and response bodies of the certificate endpoints. Amounts are decimal strings, times
//! RFC 3339. No body ever carries a CVC in clear except the one a caller presents to authorize.

use ledger_core::certificates::command::Issue;
use ledger_core::certificates::state::Certificate;
use ledger_core::{Account, CurrencyCode, Timestamp};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::ledger::wire::WireAmount;

/// The most rows one upload takes.
pub const MAX_UPLOAD_ROWS: usize = 1000;

/// One pre-generated certificate to issue. With `Content-Type: text/csv` the same fields are
/// the columns, under the header row `code,nominal,currency,expires_at,campaign,phone`. Each row
/// is checked on its own: a value out of its rules (described on each field) rejects that row in
/// the results, not the upload, so the schema holds only the fields' types.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRow {
    /// 1 to 64 characters of `A-Z a-z 0-9 _ -` (else `invalid_certificate_code`).
    #[schema(example = "GC-0001")]
    pub code: String,
    /// A positive decimal string at the currency's scale (else `invalid_amount`,
    /// `amount_must_be_positive` or `amount_scale`).
    #[schema(value_type = String, example = "100.00")]
    pub nominal: WireAmount,
    /// A configured currency (else `unknown_currency`).
    #[schema(example = "EUR")]
    pub currency: String,
    /// RFC 3339, later than now (else `invalid_body` or `invalid_expiry`); the certificate
    /// expires then.
    #[schema(example = "2027-12-31T23:59:59Z")]
    pub expires_at: Option<String>,
    /// 1 to 128 characters, no control characters (else `invalid_campaign`).
    pub campaign: Option<String>,
    /// 7 to 15 digits, optionally after a `+` (else `invalid_phone`): where the CVC is sent on
    /// activation, unless the activation names another number.
    #[schema(example = "+79990001122")]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub certificates: Vec<UploadRow>,
}

/// The CSV form of an upload: the header row, then one row per certificate.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^code,nominal,currency,expires_at,campaign,phone(\r?\n|$)",
    example = "code,nominal,currency,expires_at,campaign,phone\nGC-0001,100.00,EUR,2027-12-31T23:59:59Z,spring,+79990001122\n")]
pub struct UploadCsv(#[allow(dead_code)] String);

/// Parses an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<Timestamp, ApiError> {
    let at = time::OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| ApiError::InvalidBody(format!("{text:?} is not an RFC 3339 time")))?;
    Ok(ledger_store::sql::from_time(at))
}

fn format_time(at: Timestamp) -> String {
    ledger_store::sql::to_time(at).format(&Rfc3339).unwrap_or_default()
}

impl UploadRow {
    /// The core's command for this row; a field that cannot be read refuses the row.
    pub fn into_issue(self) -> Result<Issue, ApiError> {
        let currency = CurrencyCode::parse(&self.currency)
            .map_err(|_| ApiError::from(ledger_core::ledger::Rejection::UnknownCurrency))?;
        Ok(Issue {
            code: self.code,
            nominal: self.nominal.parse()?,
            currency,
            expires_at: self.expires_at.as_deref().map(parse_time).transpose()?,
            campaign: self.campaign,
            phone: self.phone,
        })
    }
}

/// What happened to one uploaded row.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResult {
    pub code: String,
    /// `issued`, `exists` (the same row was uploaded before) or `rejected`.
    #[schema(pattern = "^(issued|exists|rejected)$")]
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<RowProblem>,
}

/// Why a row was rejected: a stable code and a sentence.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowProblem {
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadBody {
    /// One per row, in input order.
    pub results: Vec<UploadResult>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub order_id: String,
    pub payment_id: String,
    /// Where the CVC is sent; the upload row's phone when absent.
    pub phone: Option<String>,
    /// The buyer, kept for BI.
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub operation_id: String,
    pub amount: WireAmount,
    /// The CVC the customer presents: three digits (any other text is a CVC that does not
    /// match).
    #[schema(example = "042")]
    pub cvc: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// The authorization to capture.
    pub operation_id: String,
    /// At most the amount authorized; the whole of it when absent.
    pub amount: Option<WireAmount>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// The authorization (open or captured) to void.
    pub operation_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub operation_id: String,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub operation_id: String,
    pub reason: String,
}

/// A certificate as it stands: never its CVC.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateBody {
    pub code: String,
    /// `issued`, `active`, `partially_redeemed`, `redeemed`, `refunded`, `cancelled` or `expired`.
    pub state: &'static str,
    pub currency: String,
    #[schema(value_type = String, example = "100.00")]
    pub nominal: String,
    /// Posted balance.
    #[schema(value_type = String, example = "70.00")]
    pub balance: String,
    /// The balance less open authorizations.
    #[schema(value_type = String, example = "40.00")]
    pub available: String,
    pub expires_at: Option<String>,
    /// The log position of the certificate's latest event.
    pub position: i64,
}

impl CertificateBody {
    pub fn new(c: &Certificate, account: Option<&Account>, position: i64, scale: u32) -> CertificateBody {
        let amount = |d: rust_decimal::Decimal| {
            let mut d = d;
            d.rescale(scale);
            d.to_string()
        };
        let (balance, available) = account
            .map_or((rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO), |a| (a.balance(), a.available()));
        CertificateBody {
            code: c.code.clone(),
            state: c.status.as_str(),
            currency: c.currency.to_string(),
            nominal: amount(c.nominal),
            balance: amount(balance),
            available: amount(available),
            expires_at: c.expires_at.map(format_time),
            position,
        }
    }
}
