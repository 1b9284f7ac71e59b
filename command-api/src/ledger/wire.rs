//! The wire format: request and response bodies. Amounts travel as decimal strings, never
//! JSON numbers; unknown fields are refused.

use std::str::FromStr;

use ledger_core::ledger::account::{AccountKind, BalanceLimit};
use ledger_core::{Account, AccountId, AccountRef, Posting, Side, Timestamp, Transfer};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem};

/// A decimal amount as a JSON string, e.g. `"10.50"`. JSON numbers are refused: a float
/// cannot carry money exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct WireAmount(String);

/// The JSON Schema pattern of the amounts every request takes: the decimal strings
/// [`WireAmount::parse`] reads, above zero. (Decimals beyond the currency's scale are the
/// ledger's to refuse: `amount_scale`.)
pub const POSITIVE_AMOUNT_PATTERN: &str = "^([0-9]*[1-9][0-9]*(\\.[0-9]+)?|[0-9]+\\.[0-9]*[1-9][0-9]*)$";

impl utoipa::PartialSchema for WireAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A positive decimal amount as a JSON string, e.g. `\"10.50\"`. JSON numbers are refused: a \
                 float cannot carry money exactly.",
            ))
            .pattern(Some(POSITIVE_AMOUNT_PATTERN))
            .examples([serde_json::json!("10.50")])
            .into()
    }
}

impl ToSchema for WireAmount {}

impl<'de> Deserialize<'de> for WireAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WireAmount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an amount as a decimal string such as \"10.50\" (JSON numbers are not accepted)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WireAmount, E> {
                Ok(WireAmount(v.to_owned()))
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl WireAmount {
    /// An amount as text from another wire format (a CSV cell).
    pub fn new(text: &str) -> WireAmount {
        WireAmount(text.to_owned())
    }

    /// Parses `-?digits(.digits)?`. A well-formed number that does not fit is `overflow` (or
    /// `amount_scale` when it has more decimals than anything can hold); sign and scale are the
    /// core's to judge.
    pub fn parse(&self) -> Result<Decimal, ApiError> {
        let s = self.0.as_str();
        let digits = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let well_formed = !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.is_empty() != digits.contains('.')
            && frac.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(ApiError::InvalidAmount(format!("{s:?} is not a decimal string such as \"10.50\"")));
        }
        use ledger_core::ledger::Rejection;
        let parsed = Decimal::from_str(s)
            .map_err(|_| ApiError::from(if frac.len() > 28 { Rejection::AmountScale } else { Rejection::Overflow }))?;
        // rust_decimal rounds digits it cannot hold: refuse instead of moving a different amount.
        if parsed.scale() as usize != frac.len() {
            return Err(ApiError::from(Rejection::AmountScale));
        }
        Ok(parsed)
    }
}

/// Metadata as `check_metadata` stores it: a JSON object whose keys and strings, at any depth,
/// hold no NUL ([`NO_NUL_PATTERN`](ledger_core::ledger::decide::NO_NUL_PATTERN)), at most 16 KiB
/// serialized. The schema states the NUL rule for the object's own keys and string values: a
/// recursive schema defeats client generators, and the size is not JSON Schema's to state
/// (deeper, or larger, the ledger answers `invalid_metadata`).
pub struct Metadata;

impl utoipa::PartialSchema for Metadata {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, SchemaType};
        use utoipa::openapi::{ObjectBuilder, Type};
        let no_nul = || {
            ObjectBuilder::new().schema_type(Type::String).pattern(Some(ledger_core::ledger::decide::NO_NUL_PATTERN))
        };
        let scalars =
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Boolean, Type::Null]));
        let value = AnyOfBuilder::new()
            .item(no_nul())
            .item(scalars)
            .item(ArrayBuilder::new())
            .item(ObjectBuilder::new().schema_type(Type::Object));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(no_nul()))
            .additional_properties(Some(utoipa::openapi::schema::Schema::AnyOf(value.build())))
            .description(Some(
                "A JSON object of at most 16 KiB (serialized), with no NUL character in any key or string at any \
                 depth (else `invalid_metadata`).",
            ))
            .into()
    }
}

impl ToSchema for Metadata {}

/// An account id (UUID) or its unique code.
pub fn account_ref(s: &str) -> AccountRef {
    match Uuid::parse_str(s) {
        Ok(id) => AccountRef::Id(AccountId(id)),
        Err(_) => AccountRef::Code(s.to_owned()),
    }
}

fn rfc3339(t: Timestamp) -> String {
    ledger_store::log::to_time(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.micros().to_string())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    /// Optional: a UUID is generated when absent. Sending the same id again is idempotent.
    pub id: Option<Uuid>,
    /// Unique: letters, digits and `:._-@/`, at most 128.
    #[schema(example = "player:42:main")]
    pub code: String,
    /// An ISO 4217 currency or a configured asset.
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(value_type = KindName, example = "liability")]
    pub kind: AccountKind,
    /// The balance may not go below zero on the account's normal side.
    #[serde(default)]
    pub no_overdraft: bool,
    #[serde(default)]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

/// An account kind: assets and expenses grow with debits; liabilities, equity and income
/// with credits.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // the schema of `ledger_core::AccountKind` on the wire
pub enum KindName {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

/// Debit or credit.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // the schema of `ledger_core::Side` on the wire
pub enum SideName {
    Debit,
    Credit,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BalanceBody {
    #[schema(value_type = String)]
    pub debits_posted: Decimal,
    #[schema(value_type = String)]
    pub credits_posted: Decimal,
    #[schema(value_type = String)]
    pub debits_pending: Decimal,
    #[schema(value_type = String)]
    pub credits_pending: Decimal,
    /// Posted balance, signed on the account's normal side.
    #[schema(value_type = String)]
    pub balance: Decimal,
    /// The balance less pending holds against it.
    #[schema(value_type = String)]
    pub available: Decimal,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountBody {
    pub id: Uuid,
    pub code: String,
    pub currency: String,
    #[schema(value_type = String)]
    pub kind: AccountKind,
    pub no_overdraft: bool,
    #[schema(value_type = String)]
    pub status: ledger_core::AccountStatus,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub balance: BalanceBody,
    /// The log position this answer reflects.
    pub position: i64,
    pub opened_at: String,
}

impl AccountBody {
    /// `scale` is the account currency's: every amount is shown with exactly that many decimals.
    pub fn new(a: &Account, position: i64, scale: u32) -> AccountBody {
        let b = &a.balances;
        let at_scale = |mut d: Decimal| {
            d.rescale(scale);
            d
        };
        AccountBody {
            id: a.id.0,
            code: a.code.clone(),
            currency: a.currency.to_string(),
            kind: a.kind,
            no_overdraft: a.limit != BalanceLimit::None,
            status: a.status,
            metadata: a.metadata.clone(),
            balance: BalanceBody {
                debits_posted: at_scale(b.debits_posted),
                credits_posted: at_scale(b.credits_posted),
                debits_pending: at_scale(b.debits_pending),
                credits_pending: at_scale(b.credits_pending),
                balance: at_scale(a.balance()),
                available: at_scale(a.available()),
            },
            position,
            opened_at: rfc3339(a.opened_at),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingRequestBody {
    /// Account id or code.
    pub account: String,
    #[schema(value_type = SideName, example = "debit")]
    pub side: Side,
    pub amount: WireAmount,
}

/// A transfer: either `debit` + `credit` + `amount` ([`SimpleTransfer`]), or `postings`
/// ([`MultiLegTransfer`]). Its schema is the `oneOf` of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The idempotency key: the same id and body again answers with the original result.
    pub id: Uuid,
    /// Account id or code to debit (simple form).
    pub debit: Option<String>,
    /// Account id or code to credit (simple form).
    pub credit: Option<String>,
    pub amount: Option<WireAmount>,
    /// Multi-leg form: debits equal credits per currency.
    pub postings: Option<Vec<PostingRequestBody>>,
    /// Place a hold, to be posted, voided, or expired later.
    #[serde(default)]
    pub pending: bool,
    #[serde(default, deserialize_with = "whole_number")]
    pub timeout_seconds: Option<u32>,
    pub external_ref: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// A JSON integer, which JSON Schema lets a client write as `78` or `78.0`.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number from 0 to {}", u32::MAX))),
    }
}

impl utoipa::PartialSchema for TransferRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("SimpleTransfer"))
            .item(utoipa::openapi::Ref::from_schema_name("MultiLegTransfer"))
            .description(Some("A transfer: either `debit` + `credit` + `amount`, or `postings`."))
            .into()
    }
}

impl ToSchema for TransferRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("SimpleTransfer".to_owned(), SimpleTransfer::schema()));
        schemas.push(("MultiLegTransfer".to_owned(), MultiLegTransfer::schema()));
        <SimpleTransfer as ToSchema>::schemas(schemas);
        <MultiLegTransfer as ToSchema>::schemas(schemas);
    }
}

/// A transfer's simple form: one debit, one credit, one amount. (Requests are read as
/// [`TransferRequest`]; this type only describes them.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SimpleTransfer {
    /// The idempotency key: the same id and body again answers with the original result.
    id: Uuid,
    /// Account id or code to debit.
    #[schema(example = "bank:eur")]
    debit: String,
    /// Account id or code to credit.
    #[schema(example = "player:42:main")]
    credit: String,
    amount: WireAmount,
    /// Place a hold, to be posted, voided, or expired later.
    #[serde(default)]
    pending: bool,
    /// A hold's lifetime, at most 30 days (0 or null: no timeout).
    #[schema(maximum = 2592000)]
    timeout_seconds: Option<u32>,
    /// 1 to 256 characters, no control characters.
    external_ref: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
}

/// A transfer's multi-leg form: debits equal credits per currency. (Requests are read as
/// [`TransferRequest`]; this type only describes them.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MultiLegTransfer {
    /// The idempotency key: the same id and body again answers with the original result.
    id: Uuid,
    /// 2 to 128 postings.
    #[schema(min_items = 2, max_items = 128)]
    postings: Vec<PostingRequestBody>,
    /// Place a hold, to be posted, voided, or expired later.
    #[serde(default)]
    pending: bool,
    /// A hold's lifetime, at most 30 days (0 or null: no timeout).
    #[schema(maximum = 2592000)]
    timeout_seconds: Option<u32>,
    /// 1 to 256 characters, no control characters.
    external_ref: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
}

impl TransferRequest {
    /// The constraints the OpenAPI document states for a transfer beyond its JSON types
    /// (patterns, lengths, bounds), each answered with the code the ledger gives the same
    /// transfer sent alone. A batch refuses as a whole an item that breaks one: it is not a
    /// request the document allows.
    pub fn check_documented(&self) -> Result<(), ledger_core::ledger::Rejection> {
        use ledger_core::ledger::Rejection;
        let accounts = self.debit.iter().chain(&self.credit).chain(self.postings.iter().flatten().map(|p| &p.account));
        if accounts.into_iter().any(|a| !ledger_core::ledger::account::valid_account_code(a)) {
            return Err(Rejection::AccountNotFound);
        }
        let amounts = self.amount.iter().chain(self.postings.iter().flatten().map(|p| &p.amount));
        if amounts.into_iter().any(|a| a.0.starts_with('-')) {
            return Err(Rejection::AmountMustBePositive);
        }
        if let Some(postings) = &self.postings {
            if postings.len() < 2 {
                return Err(Rejection::TooFewPostings);
            }
            if postings.len() > ledger_core::ledger::transfer::MAX_POSTINGS {
                return Err(Rejection::TooManyPostings);
            }
        }
        if self.timeout_seconds.is_some_and(|s| s > ledger_core::ledger::transfer::MAX_TIMEOUT_SECONDS) {
            return Err(Rejection::TimeoutTooLong);
        }
        if self.external_ref.as_deref().is_some_and(|r| !ledger_core::ledger::decide::valid_external_ref(r)) {
            return Err(Rejection::InvalidExternalRef);
        }
        if let Some(metadata) = &self.metadata {
            ledger_core::ledger::decide::check_metadata(metadata)?;
        }
        Ok(())
    }

    pub fn into_command(self) -> Result<ledger_core::CreateTransfer, ApiError> {
        let postings = match (self.debit, self.credit, self.amount, self.postings) {
            (Some(debit), Some(credit), Some(amount), None) => {
                let amount = amount.parse()?;
                vec![
                    ledger_core::PostingRequest { account: account_ref(&debit), side: Side::Debit, amount },
                    ledger_core::PostingRequest { account: account_ref(&credit), side: Side::Credit, amount },
                ]
            }
            (None, None, None, Some(postings)) => postings
                .into_iter()
                .map(|p| {
                    Ok(ledger_core::PostingRequest {
                        account: account_ref(&p.account),
                        side: p.side,
                        amount: p.amount.parse()?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            _ => {
                return Err(ApiError::InvalidBody(
                    "a transfer has either debit, credit and amount, or postings".to_owned(),
                ));
            }
        };
        Ok(ledger_core::CreateTransfer {
            id: ledger_core::TransferId(self.id),
            postings,
            pending: self.pending,
            timeout_seconds: self.timeout_seconds,
            external_ref: self.external_ref,
            metadata: self.metadata.unwrap_or(serde_json::Value::Null),
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPendingRequest {
    /// Post less than the held amount (two-posting transfers only); the rest is released.
    pub amount: Option<WireAmount>,
}

/// Freeze, unfreeze or close an account.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountStatusRequest {
    /// Why, e.g. `chargeback dispute 7731` (at most 500 characters, not blank, no control
    /// characters); recorded in the event.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    /// The id of the new, compensating transfer.
    pub id: Uuid,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// All or nothing.
    #[serde(default)]
    pub linked: bool,
    /// 1 to 8190 transfers.
    #[schema(min_items = 1, max_items = 8190)]
    pub transfers: Vec<TransferRequest>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostingBody {
    pub account: Uuid,
    #[schema(value_type = String)]
    pub side: Side,
    #[schema(value_type = String)]
    pub amount: Decimal,
}

fn postings(p: &[Posting]) -> Vec<PostingBody> {
    p.iter().map(|p| PostingBody { account: p.account.0, side: p.side, amount: p.amount }).collect()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferBody {
    pub id: Uuid,
    /// pending, posted, voided or expired.
    pub status: String,
    /// The log position this answer reflects (for a retry, the original's).
    pub position: i64,
    pub pending: bool,
    pub postings: Vec<PostingBody>,
    /// What was posted when a hold was captured (possibly less than held).
    pub posted: Option<Vec<PostingBody>>,
    pub timeout_at: Option<String>,
    pub reverses: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
    pub external_ref: Option<String>,
    /// The transfer's metadata; null when it was given none.
    #[schema(value_type = Option<Object>)]
    pub metadata: serde_json::Value,
    pub created_at: String,
}

impl TransferBody {
    pub fn new(t: &Transfer, position: i64) -> TransferBody {
        TransferBody {
            id: t.id.0,
            status: t.status.as_str().to_owned(),
            position,
            pending: t.pending,
            postings: postings(&t.postings),
            posted: t.posted.as_deref().map(postings),
            timeout_at: t.timeout_at.map(rfc3339),
            reverses: t.reverses.map(|id| id.0),
            reversed_by: t.reversed_by.map(|id| id.0),
            external_ref: t.external_ref.clone(),
            metadata: t.metadata.clone(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// One item of a batch answer: the transfer's id, status and position, or the problem that
/// refused it. `GET /v1/transfers/{id}` has the whole transfer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    /// 201 created, 200 a replayed retry, or the status of the problem.
    pub status: u16,
    pub id: Uuid,
    /// pending or posted (absent on error).
    pub transfer_status: Option<String>,
    pub position: Option<i64>,
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchBody {
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventBody {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i32,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i16,
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
    #[schema(value_type = Object)]
    pub metadata: Box<serde_json::value::RawValue>,
    pub recorded_at: String,
    /// Hex SHA-256 chaining this event to the one before it.
    pub hash: String,
}

impl EventBody {
    /// The stored JSON passes through as it is (the database checked it on the way in).
    pub fn new(r: ledger_store::RecordedEvent) -> Result<EventBody, serde_json::Error> {
        Ok(EventBody {
            position: r.position,
            event_id: r.event_id,
            stream_id: r.stream_id,
            stream_version: r.stream_version,
            event_type: r.event_type,
            schema_version: r.schema_version,
            payload: serde_json::value::RawValue::from_string(r.payload)?,
            metadata: serde_json::value::RawValue::from_string(r.metadata)?,
            recorded_at: rfc3339(r.recorded_at),
            hash: hex::encode(r.hash),
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventBody>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

/// Account kinds in a no-overdraft request map to the limit on their normal side.
pub fn limit_for(kind: AccountKind, no_overdraft: bool) -> BalanceLimit {
    if no_overdraft { kind.no_overdraft_limit() } else { BalanceLimit::None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, &str>) {
        let got = WireAmount(input.to_owned()).parse().map(|d| d.to_string()).map_err(|e| e.code().code);
        assert_eq!(got.as_deref().map_err(|e| *e), expect, "{input:?}");
    }

    #[test]
    fn amounts_parse_strictly() {
        check("10.50", Ok("10.50"));
        check("0", Ok("0"));
        check("-1", Ok("-1"));
        check("1e5", Err("invalid_amount"));
        check("1.", Err("invalid_amount"));
        check(".5", Err("invalid_amount"));
        check("", Err("invalid_amount"));
        check(" 1", Err("invalid_amount"));
        check("0x10", Err("invalid_amount"));
        check("99999999999999999999999999999999", Err("overflow"));
        check("0.00000000000000000000000000001", Err("amount_scale"));
        check("1234.1234567890123456789012345678", Err("amount_scale"));
    }

    #[test]
    fn the_amount_pattern_is_what_parses_above_zero() {
        let regex = regex::Regex::new(POSITIVE_AMOUNT_PATTERN).unwrap();
        let inputs = [
            "10.50", "0", "0.0", "00", "-1", "1", "01", "0.01", "0.10", "100", "1.", ".5", "", " 1", "1e5", "0x10",
            "1.0.0", "+1", "10.000", "0.000001", "-0.5", "1 ", "١",
        ];
        for input in inputs {
            let positive = WireAmount(input.to_owned()).parse().is_ok_and(|d| d > Decimal::ZERO);
            assert_eq!(regex.is_match(input), positive, "{input:?}");
        }
    }

    #[test]
    fn json_numbers_are_not_amounts() {
        assert!(serde_json::from_str::<WireAmount>("10.5").is_err());
        assert!(serde_json::from_str::<WireAmount>("\"10.5\"").is_ok());
    }
}
