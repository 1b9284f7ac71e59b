//! The payment providers' port for reconciliation: what the engine asks a provider (its
//! transactional balance at a time, its statement over a window) and tells it (move funds between
//! its transactional and operational balances). [`ProviderAdapter`] is the port; [`HttpProvider`]
//! its one real adapter, over the outbound client, speaking the wire format `ledger
//! provider-simulator` serves:
//!
//! - `GET {base_url}/balance?at=RFC3339` → `{"balance":"123.45","currency":"EUR","at":"…"}`;
//! - `GET {base_url}/statement?from=&to=` → `{"lines":[{"id","amount","currency","reference",
//!   "date","metadata"?}]}`, the lines with from ≤ date < to;
//! - `POST {base_url}/movements` `{"id","direction","amount","currency"}` → 200
//!   `{"status":"succeeded"|"refused","reason"?}`, idempotent by `id`.
//!
//! Money is a decimal string on the wire, never a JSON number. A failure is [`ProviderError`]:
//! `Retryable` when asking again may answer (refused or broken connection, timeout, 5xx, 408,
//! 429), `Invalid` when it will not (any other 4xx, a redirect, a malformed answer, another
//! currency than the provider's). A movement is safe to retry with the same id: the provider
//! moves nothing twice.

// The reconciliation domain, built beside this module, is the port's caller; until it lands only
// the tests call it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use ledger_core::{CurrencyCode, Timestamp};
use outbound::OutboundError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The longest statement answer [`HttpProvider::client_config`] reads.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// What a call to a provider answers.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A payment provider as reconciliation sees it.
pub trait ProviderAdapter: Send + Sync {
    /// The transactional balance as of `at`.
    fn balance(&self, at: Timestamp) -> Call<'_, ReportedBalance>;
    /// The statement lines with `from` ≤ date < `to`, in date order.
    fn statement(&self, from: Timestamp, to: Timestamp) -> Call<'_, Vec<StatementLine>>;
    /// Moves `amount` between the transactional and operational balances; `id` is the
    /// idempotency key (the same id again answers the first outcome).
    fn move_funds<'a>(
        &'a self,
        id: Uuid,
        direction: Direction,
        amount: Decimal,
        currency: &'a str,
    ) -> Call<'a, MoveOutcome>;
}

/// Why a provider's answer is missing or unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Asking again may answer: the connection was refused or broke, the call timed out, the
    /// provider answered 5xx, 408 or 429.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Asking again will not help: a 4xx, a redirect, a malformed answer, another currency.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// A provider's transactional balance as it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedBalance {
    pub balance: Decimal,
    pub currency: String,
    pub at: Timestamp,
}

/// One line of a provider's statement: a signed amount (credits positive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    pub id: String,
    pub amount: Decimal,
    pub currency: String,
    pub reference: String,
    pub date: Timestamp,
    pub metadata: BTreeMap<String, String>,
}

/// Which way a movement goes between a provider's two balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Transactional → operational: the transactional balance goes down.
    ToOperational,
    /// Operational → transactional: the transactional balance goes up.
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

/// What a provider decided about a movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveOutcome {
    Succeeded,
    Refused { reason: String },
}

/// An RFC 3339 time (any offset) as microseconds since the epoch.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let at = time::OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1000).ok().map(Timestamp)
}

/// `text` percent-encoded for a query value: everything but RFC 3986's unreserved characters
/// (so `+` of an offset is `%2B`, never read as a space).
pub fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A provider reached over HTTP at `base_url`, whose balances are in `currency`.
#[derive(Clone, Debug)]
pub struct HttpProvider {
    client: outbound::Client,
    base_url: String,
    currency: CurrencyCode,
}

impl HttpProvider {
    /// `base_url` as the client would call it (`https://`, or `http://` when the client allows
    /// it), without a trailing `/`.
    pub fn new(client: outbound::Client, base_url: &str, currency: &str) -> Result<HttpProvider, ProviderError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        client.check_url(&base_url).map_err(|e| ProviderError::Invalid(e.to_string()))?;
        let currency = CurrencyCode::parse(currency)
            .map_err(|_| ProviderError::Invalid(format!("{currency:?} is not a currency code")))?;
        Ok(HttpProvider { client, base_url, currency })
    }

    /// The client settings a provider's calls take: `timeout` a call, a statement up to
    /// [`MAX_ANSWER_BYTES`], and `http://` allowed when `allow_http` (the loopback simulator).
    pub fn client_config(timeout: Duration, allow_http: AllowHttp) -> outbound::ClientConfig {
        outbound::ClientConfig {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            timeout,
            max_body_bytes: MAX_ANSWER_BYTES,
            allow_http: allow_http == AllowHttp::Yes,
            ..outbound::ClientConfig::default()
        }
    }

    /// One call; the body of a 2xx answer, or the error class of anything else.
    async fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<axum::body::Bytes, ProviderError> {
        let url = format!("{}{path}", self.base_url);
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let answer = self
            .client
            .send(method, &url, headers, body.unwrap_or_default().into())
            .await
            .map_err(classify_outbound)?;
        let status = answer.status;
        if status.is_success() {
            return Ok(answer.body);
        }
        let text: String = String::from_utf8_lossy(&answer.body).chars().take(300).collect();
        let message = format!("the provider answered {}: {text}", status.as_u16());
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS
        {
            Err(ProviderError::Retryable(message))
        } else {
            Err(ProviderError::Invalid(message))
        }
    }

    async fn get_balance(&self, at: Timestamp) -> Result<ReportedBalance, ProviderError> {
        let body = self.call(Method::GET, &format!("/balance?at={}", encode_query_value(&at.rfc3339())), None).await?;
        read_balance(&self.currency, &body)
    }

    async fn get_statement(&self, from: Timestamp, to: Timestamp) -> Result<Vec<StatementLine>, ProviderError> {
        let path =
            format!("/statement?from={}&to={}", encode_query_value(&from.rfc3339()), encode_query_value(&to.rfc3339()));
        read_statement(&self.currency, from, to, &self.call(Method::GET, &path, None).await?)
    }

    async fn post_movement(
        &self,
        id: Uuid,
        direction: Direction,
        amount: Decimal,
        currency: &str,
    ) -> Result<MoveOutcome, ProviderError> {
        let body = serde_json::json!({"id": id, "direction": direction.as_str(), "amount": amount.to_string(),
            "currency": currency});
        read_outcome(&self.call(Method::POST, "/movements", Some(body.to_string())).await?)
    }
}

fn check_currency(expected: &CurrencyCode, currency: &str, what: &str) -> Result<(), ProviderError> {
    if currency == expected.as_str() {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!("{what} is in {currency:?}, not the provider's {}", expected.as_str())))
    }
}

/// A balance answer, checked: a decimal string in the provider's `currency`, an RFC 3339 time.
pub fn read_balance(currency: &CurrencyCode, body: &[u8]) -> Result<ReportedBalance, ProviderError> {
    let wire: BalanceWire = answer(body)?;
    check_currency(currency, &wire.currency, "the balance")?;
    Ok(ReportedBalance { balance: amount(&wire.balance)?, currency: wire.currency, at: time_of(&wire.at)? })
}

/// A statement answer for the window `from`..`to`, checked: each line's id given once, its
/// amount a decimal string in the provider's `currency`, its date inside the window. In date
/// order (a provider's order among lines of the same date is kept).
pub fn read_statement(
    currency: &CurrencyCode,
    from: Timestamp,
    to: Timestamp,
    body: &[u8],
) -> Result<Vec<StatementLine>, ProviderError> {
    let wire: StatementWire = answer(body)?;
    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(wire.lines.len());
    for line in wire.lines {
        if line.id.is_empty() || !seen.insert(line.id.clone()) {
            return Err(ProviderError::Invalid(format!(
                "the statement has an empty or repeated line id {:?}",
                line.id
            )));
        }
        check_currency(currency, &line.currency, &format!("line {:?}", line.id))?;
        let date = time_of(&line.date)?;
        if !(from..to).contains(&date) {
            return Err(ProviderError::Invalid(format!(
                "line {:?} is dated {}, outside the window asked for",
                line.id, line.date
            )));
        }
        lines.push(StatementLine {
            amount: amount(&line.amount)?,
            id: line.id,
            currency: line.currency,
            reference: line.reference,
            date,
            metadata: line.metadata,
        });
    }
    lines.sort_by_key(|l| l.date);
    Ok(lines)
}

/// A movement's answer: `succeeded`, or `refused` with its reason.
pub fn read_outcome(body: &[u8]) -> Result<MoveOutcome, ProviderError> {
    let wire: MoveWire = answer(body)?;
    match (wire.status.as_str(), wire.reason) {
        ("succeeded", _) => Ok(MoveOutcome::Succeeded),
        ("refused", reason) => {
            Ok(MoveOutcome::Refused { reason: reason.unwrap_or_else(|| "no reason given".to_owned()) })
        }
        (other, _) => Err(ProviderError::Invalid(format!("a movement's status is {other:?}"))),
    }
}

/// Whether a client calls `http://` URLs (the loopback simulator) or only `https://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowHttp {
    Yes,
    No,
}

impl ProviderAdapter for HttpProvider {
    fn balance(&self, at: Timestamp) -> Call<'_, ReportedBalance> {
        Box::pin(self.get_balance(at))
    }

    fn statement(&self, from: Timestamp, to: Timestamp) -> Call<'_, Vec<StatementLine>> {
        Box::pin(self.get_statement(from, to))
    }

    fn move_funds<'a>(
        &'a self,
        id: Uuid,
        direction: Direction,
        amount: Decimal,
        currency: &'a str,
    ) -> Call<'a, MoveOutcome> {
        Box::pin(self.post_movement(id, direction, amount, currency))
    }
}

/// An outbound failure's class: the network's are retried, the configuration's are not.
fn classify_outbound(error: OutboundError) -> ProviderError {
    match error {
        OutboundError::ConnectRefused { .. }
        | OutboundError::Connect { .. }
        | OutboundError::Timeout { .. }
        | OutboundError::Http { .. } => ProviderError::Retryable(error.to_string()),
        OutboundError::InvalidUrl { .. }
        | OutboundError::PlainHttpRefused { .. }
        | OutboundError::UntrustedCertificate { .. }
        | OutboundError::Tls { .. }
        | OutboundError::BodyTooLarge { .. }
        | OutboundError::RedirectRefused { .. }
        | OutboundError::BadCa(_) => ProviderError::Invalid(error.to_string()),
    }
}

#[derive(Deserialize)]
struct BalanceWire {
    balance: String,
    currency: String,
    at: String,
}

#[derive(Deserialize)]
struct StatementWire {
    lines: Vec<LineWire>,
}

#[derive(Deserialize)]
struct LineWire {
    id: String,
    amount: String,
    currency: String,
    reference: String,
    date: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct MoveWire {
    status: String,
    reason: Option<String>,
}

fn answer<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Invalid(format!("the answer is malformed: {e}")))
}

fn amount(text: &str) -> Result<Decimal, ProviderError> {
    Decimal::from_str_exact(text).map_err(|_| ProviderError::Invalid(format!("{text:?} is not a decimal amount")))
}

fn time_of(text: &str) -> Result<Timestamp, ProviderError> {
    parse_time(text).ok_or_else(|| ProviderError::Invalid(format!("{text:?} is not an RFC 3339 time")))
}

#[cfg(test)]
mod tests;
