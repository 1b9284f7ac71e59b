//! The payouts domain over Kafka: the ERP topic it publishes (`PayoutSent` is the outbox: one
//! message per payout sent, derived from the log by the publisher, so a gate never sends
//! anything itself) and the status topics it consumes (the ERP's `paid` or `rejected`).

use ledger_core::payouts::event::PayoutSent;
use ledger_core::payouts::{Command, ErpStatus, Event, Rejection};
use ledger_core::{Event as AnyEvent, PayoutId, Timestamp};
use ledger_store::{LedgerHandle, RecordedEvent, WriteError};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::consumer::{HandleError, Handler, Inbound};
use crate::publisher::{Deriving, DomainTopics, PublishError};
use crate::sink::OutMessage;

/// The ERP topic's name by default.
pub const ERP_TOPIC: &str = "billing-payout.oebs.new-payout";
/// The status topics' names by default.
pub const STATUS_TOPICS: [&str; 2] =
    ["billing-payout.oebs.payout-status-ard", "billing-payout.oebs.payout-status-oebs"];

/// The ERP topic: a new payout to pay, keyed by payout id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutTopics {
    pub erp: String,
}

impl Default for PayoutTopics {
    fn default() -> Self {
        PayoutTopics { erp: ERP_TOPIC.into() }
    }
}

/// The ERP's message v1: a payout sent, with its cash-payment-fact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpMessage {
    pub payout_id: Uuid,
    pub client_id: String,
    /// The payout account the amount was taken from.
    pub account: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub cpf_id: Uuid,
    /// RFC 3339.
    pub sent_at: String,
}

impl ErpMessage {
    pub fn of(e: &PayoutSent) -> ErpMessage {
        ErpMessage {
            payout_id: e.id.0,
            client_id: e.client_id.clone(),
            account: e.account.0,
            amount: e.amount,
            currency: e.currency.to_string(),
            cpf_id: e.cash_payment_fact,
            sent_at: rfc3339(e.at),
        }
    }
}

fn rfc3339(at: Timestamp) -> String {
    ledger_store::log::to_time(at).format(&Rfc3339).unwrap_or_default()
}

/// The JSON Schema of the messages the domain publishes, by message name.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![("PayoutErpMessage", ledger_core::schema::schema_of::<ErpMessage>("PayoutErpMessage v1"))]
}

impl PayoutTopics {
    /// The ERP messages of a page: one per `PayoutSent`, in log order.
    pub fn of_page(&self, page: &[RecordedEvent]) -> Result<Vec<OutMessage>, PublishError> {
        let mut out = Vec::new();
        for record in page.iter().filter(|r| r.event_type == "PayoutSent") {
            let event =
                record.event().map_err(|e| PublishError::Poison { position: record.position, error: e.to_string() })?;
            if let AnyEvent::Payouts(Event::Sent(e)) = event {
                out.push(OutMessage {
                    topic: self.erp.clone(),
                    key: e.id.to_string(),
                    // A struct of strings, numbers and ids always serializes.
                    payload: serde_json::to_string(&ErpMessage::of(&e)).expect("messages serialize"),
                    headers: vec![("event_id", record.event_id.to_string()), ("position", record.position.to_string())],
                });
            }
        }
        Ok(out)
    }
}

impl DomainTopics for PayoutTopics {
    fn names(&self) -> Vec<String> {
        vec![self.erp.clone()]
    }

    fn messages<'a>(&'a self, _: &'a mut PgConnection, page: &'a [RecordedEvent]) -> Deriving<'a> {
        Box::pin(async move { self.of_page(page) })
    }
}

/// A status from the ERP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusMessage {
    payout_id: Uuid,
    status: ErpStatus,
    #[serde(default)]
    reason: Option<String>,
}

/// Applies the ERP's statuses: `paid` is final; `rejected` returns the amount. A repeat is a
/// no-op; an unknown payout, a status its payout cannot take (say `paid` after `rejected`) or a
/// malformed message is dead-lettered with its reason.
pub struct Statuses {
    ledger: LedgerHandle,
}

impl Statuses {
    pub fn new(ledger: LedgerHandle) -> Statuses {
        Statuses { ledger }
    }
}

impl Handler for Statuses {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        let status: StatusMessage = serde_json::from_slice(&message.payload)
            .map_err(|e| HandleError::Reject { code: "invalid_body".into(), detail: e.to_string() })?;
        let meta = ledger_store::EventMeta { channel: Some(format!("kafka:{}", message.topic)), ..message.meta() };
        let command =
            Command::Status { payout: PayoutId(status.payout_id), status: status.status, reason: status.reason };
        match self.ledger.submit(command, meta).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(r)) => Err(HandleError::Reject { code: r.code().into(), detail: refusal(r, status.payout_id) }),
            Err(e @ (WriteError::Overloaded | WriteError::Unavailable)) => Err(HandleError::Retry(e.to_string())),
        }
    }
}

fn refusal(r: Rejection, payout: Uuid) -> String {
    format!("payout {payout}: {r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_strictly() {
        let ok: StatusMessage = serde_json::from_str(
            r#"{"payout_id":"00000000-0000-0000-0000-000000000001","status":"rejected","reason":"closed"}"#,
        )
        .unwrap();
        assert_eq!((ok.status, ok.reason.as_deref()), (ErpStatus::Rejected, Some("closed")));
        for bad in [
            r#"{"payout_id":"x","status":"paid"}"#,
            r#"{"payout_id":"00000000-0000-0000-0000-000000000001","status":"lost"}"#,
            r#"{"payout_id":"00000000-0000-0000-0000-000000000001","status":"paid","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<StatusMessage>(bad).is_err(), "{bad}");
        }
        assert!(refusal(Rejection::PayoutNotFound, Uuid::nil()).ends_with("payout not found"));
    }
}
