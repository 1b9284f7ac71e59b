//! What the simulator sends the engine: a payment outcome as the engine's wire format
//! (`{"type","timestamp","data":{…}}`), signed by the platform's Standard Webhooks signer
//! (`outbound::webhooks`), posted to `POST {engine}/v1/wallet/webhooks/payments/{provider}`
//! through the binary's HTTP client.

use std::time::Duration;

use anyhow::Context;
use ledger_core::{CurrencyCode, Timestamp};
use outbound::webhooks::{TOLERANCE_SECS, WebhookSecret};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long one delivery to the engine may take, connecting included.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How far before now a late message is stamped: past the verifier's tolerance by a minute.
const LATE_BY_SECS: i64 = TOLERANCE_SECS + 60;

/// The four outcomes the engine takes from a payment provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DepositSucceeded,
    DepositFailed,
    WithdrawalSucceeded,
    WithdrawalFailed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DepositSucceeded => "deposit.succeeded",
            Kind::DepositFailed => "deposit.failed",
            Kind::WithdrawalSucceeded => "withdrawal.succeeded",
            Kind::WithdrawalFailed => "withdrawal.failed",
        }
    }

    pub fn of(payment: Payment, outcome: Outcome) -> Kind {
        match (payment, outcome) {
            (Payment::Deposit, Outcome::Succeed) => Kind::DepositSucceeded,
            (Payment::Deposit, Outcome::Fail) => Kind::DepositFailed,
            (Payment::Withdrawal, Outcome::Succeed) => Kind::WithdrawalSucceeded,
            (Payment::Withdrawal, Outcome::Fail) => Kind::WithdrawalFailed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payment {
    Deposit,
    Withdrawal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    Fail,
}

impl Outcome {
    /// `succeed` or `fail`, as the control paths and the page's forms name them.
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "succeed" => Some(Outcome::Succeed),
            "fail" => Some(Outcome::Fail),
            _ => None,
        }
    }
}

/// When a message is stamped: now, or older than the engine's verifier accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    OnTime,
    Late,
}

impl Timing {
    pub fn from_late(late: bool) -> Timing {
        if late { Timing::Late } else { Timing::OnTime }
    }

    /// The `webhook-timestamp` of a message sent at `now_secs`.
    pub fn stamp(self, now_secs: i64) -> i64 {
        match self {
            Timing::OnTime => now_secs,
            Timing::Late => now_secs - LATE_BY_SECS,
        }
    }
}

/// What a payment's outcome says: the engine's id, the amount and currency it was created
/// with, and optionally the provider's reference and a failure's reason.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub id: Uuid,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
}

/// A message as sent: its `webhook-id` and its body, kept so a duplicate is the same bytes.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub kind: Kind,
    pub body: String,
}

impl Message {
    /// The message of an outcome, timestamped `now_micros` in its body.
    pub fn new(kind: Kind, s: &Settlement, now_micros: i64) -> Message {
        let mut data = json!({
            "id": s.id,
            "amount": s.amount.to_string(),
            "currency": s.currency.as_str(),
            "provider_reference": s.provider_reference.clone().unwrap_or_else(|| format!("sim-{}", s.id.simple())),
        });
        if let Some(reason) = &s.reason {
            data["reason"] = json!(reason);
        }
        let body = json!({"type": kind.as_str(), "timestamp": Timestamp(now_micros).rfc3339(), "data": data});
        Message { id: format!("msg_{}", Uuid::new_v4().simple()), kind, body: body.to_string() }
    }

    /// The three Standard Webhooks headers of this message stamped `timestamp_secs`.
    pub fn headers(&self, secret: &WebhookSecret, timestamp_secs: i64) -> Vec<(&'static str, String)> {
        outbound::webhooks::headers(secret, &self.id, timestamp_secs, self.body.as_bytes())
    }
}

/// What the engine answered a delivery: its status and body (JSON when it is).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The engine's payment webhook for one provider, and the secret to sign with.
pub struct Engine {
    authority: String,
    path: String,
    secret: WebhookSecret,
}

impl Engine {
    /// `base_url` is `http://host:port` (a path after it is kept as a prefix).
    pub fn new(base_url: &str, provider: &str, secret: WebhookSecret) -> anyhow::Result<Engine> {
        let rest = base_url.strip_prefix("http://").context("--engine: only http:// URLs (the engine on loopback)")?;
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p.trim_end_matches('/')));
        anyhow::ensure!(!authority.is_empty(), "--engine: no host in {base_url:?}");
        anyhow::ensure!(ledger_core::text::valid_id(provider), "--provider: 1 to 64 of A-Z a-z 0-9 . _ -");
        let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
        Ok(Engine {
            authority: authority.to_owned(),
            path: format!("{prefix}/v1/wallet/webhooks/payments/{provider}"),
            secret,
        })
    }

    /// Posts `message` stamped by `timing`; an error when the engine could not be reached or
    /// did not answer in time.
    pub async fn deliver(&self, message: &Message, timing: Timing) -> anyhow::Result<Answer> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = message.headers(&self.secret, timing.stamp(now));
        let call = async {
            let mut client = crate::http_client::Client::connect(&self.authority, "").await?;
            client.post_with(&self.path, &headers, message.body.clone()).await
        };
        let (status, body) = tokio::time::timeout(DELIVERY_TIMEOUT, call)
            .await
            .map_err(|_| anyhow::anyhow!("the engine did not answer within {} s", DELIVERY_TIMEOUT.as_secs()))??;
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use outbound::webhooks::{Verifier, VerifyError};

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_796_638_000;

    fn settlement(reason: Option<&str>) -> Settlement {
        Settlement {
            id: Uuid::from_u128(7),
            amount: "100.00".parse().unwrap(),
            currency: CurrencyCode::parse("EUR").unwrap(),
            provider_reference: None,
            reason: reason.map(str::to_owned),
        }
    }

    fn header_map(headers: &[(&'static str, String)]) -> HeaderMap {
        headers.iter().map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn the_body_is_the_engines_wire_format() {
        let m = Message::new(Kind::DepositFailed, &settlement(Some("card declined")), NOW * 1_000_000);
        let body: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(
            body,
            json!({"type": "deposit.failed", "timestamp": Timestamp(NOW * 1_000_000).rfc3339(),
                "data": {"id": Uuid::from_u128(7), "amount": "100.00", "currency": "EUR",
                    "provider_reference": format!("sim-{}", Uuid::from_u128(7).simple()), "reason": "card declined"}})
        );
        let ok = Message::new(Kind::WithdrawalSucceeded, &settlement(None), 0);
        let body: Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(body["type"], "withdrawal.succeeded");
        assert!(body["data"].get("reason").is_none(), "{body}");
        assert!(m.id.starts_with("msg_") && m.id != ok.id, "each message has its own id");
    }

    #[test]
    fn messages_are_signed_for_the_platforms_verifier_and_a_late_one_is_stale() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let verifier = Verifier::new(secret.clone());
        let m = Message::new(Kind::DepositSucceeded, &settlement(None), NOW * 1_000_000);
        let on_time = header_map(&m.headers(&secret, Timing::OnTime.stamp(NOW)));
        let verified = verifier.verify(&on_time, m.body.as_bytes(), NOW).unwrap();
        assert_eq!((verified.id.as_str(), verified.timestamp_secs), (m.id.as_str(), NOW));
        let late = header_map(&m.headers(&secret, Timing::Late.stamp(NOW)));
        assert_eq!(
            verifier.verify(&late, m.body.as_bytes(), NOW),
            Err(VerifyError::StaleTimestamp { timestamp: NOW - TOLERANCE_SECS - 60, now: NOW })
        );
        // Another secret's signature, or another body, does not verify.
        let other = WebhookSecret::generate().unwrap();
        let forged = header_map(&m.headers(&other, NOW));
        assert_eq!(verifier.verify(&forged, m.body.as_bytes(), NOW), Err(VerifyError::BadSignature));
        assert_eq!(verifier.verify(&on_time, b"{}", NOW), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_engine_url_names_the_providers_webhook() {
        let secret = || WebhookSecret::parse(SECRET).unwrap();
        let e = Engine::new("http://127.0.0.1:8080", "psp", secret()).unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("127.0.0.1:8080", "/v1/wallet/webhooks/payments/psp"));
        let e = Engine::new("http://localhost:9/api/", "psp-2", secret()).unwrap();
        assert_eq!((e.authority.as_str(), e.path.as_str()), ("localhost:9", "/api/v1/wallet/webhooks/payments/psp-2"));
        assert!(Engine::new("https://engine.example", "psp", secret()).is_err());
        assert!(Engine::new("http:///x", "psp", secret()).is_err());
        assert!(Engine::new("http://127.0.0.1:8080", "a/b", secret()).is_err());
    }
}
