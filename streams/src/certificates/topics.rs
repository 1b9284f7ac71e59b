//! The topics the certificates domain publishes, keyed by certificate code (a certificate's
//! messages keep their order):
//! - `GiftCertificateState`: the state and balance after every change;
//! - `GiftCertificateTransaction`: every operation with its audit details (action, operation,
//!   channel, initiator, key, source, balance before and after);
//! - `GiftCertificateBI`: the remaining balance with the order, payment, client and campaign the
//!   certificate is linked to.
//!
//! Every message is derived from one certificate event and the certificate's stored row (its
//! code, nominal, currency and links, which never change once set: the campaign on issue, the
//! order, payment and client on activation, and nothing happens to a certificate between its
//! issue and its activation that could be published with a link it did not have yet).

use std::collections::HashMap;

use ledger_core::certificates::state::{Certificate, Status};
use ledger_core::certificates::{Event, KIND};
use ledger_core::{Event as AnyEvent, Timestamp};
use ledger_store::{EventMeta, RecordedEvent, Source};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::publisher::{Deriving, DomainTopics, PublishError};
use crate::sink::OutMessage;

/// The names of the three topics (the seed's by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateTopics {
    pub state: String,
    pub transaction: String,
    pub bi: String,
}

impl Default for CertificateTopics {
    fn default() -> Self {
        CertificateTopics {
            state: "GiftCertificateState".into(),
            transaction: "GiftCertificateTransaction".into(),
            bi: "GiftCertificateBI".into(),
        }
    }
}

/// `GiftCertificateState` v1: a certificate's state and balance after one of its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateMessage {
    pub code: String,
    pub certificate_id: Uuid,
    pub state: Status,
    pub currency: String,
    pub nominal: Decimal,
    /// Posted balance.
    pub balance: Decimal,
    /// Balance less open authorizations.
    pub available: Decimal,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// The event that changed it: its id (deduplicate by it), type and log position.
    pub event_id: Uuid,
    pub event_type: String,
    pub position: i64,
    /// When it changed, RFC 3339.
    pub at: String,
}

/// `GiftCertificateTransaction` v1: one operation on a certificate with its audit details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionMessage {
    pub event_id: Uuid,
    pub position: i64,
    /// issued, activated, cvc_refused, authorized, captured, authorization_voided,
    /// capture_voided, refunded, cancelled or expired.
    pub action: String,
    pub code: String,
    pub certificate_id: Uuid,
    pub operation_id: Option<String>,
    /// What the operation moved or held.
    pub amount: Option<Decimal>,
    pub currency: String,
    pub balance_before: Option<Decimal>,
    pub balance_after: Option<Decimal>,
    pub available_after: Option<Decimal>,
    pub state: Status,
    pub channel: Option<String>,
    pub initiator: Option<String>,
    /// The API key that authenticated the command.
    pub key_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    /// http, topic, job, or internal.
    pub source: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    /// RFC 3339.
    pub at: String,
}

/// `GiftCertificateBI` v1: the remaining balance with the certificate's links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BiMessage {
    pub code: String,
    pub certificate_id: Uuid,
    pub state: Status,
    pub currency: String,
    pub nominal: Decimal,
    pub balance: Decimal,
    pub available: Decimal,
    /// What has been spent: the nominal less the balance, once activated.
    pub redeemed: Decimal,
    pub campaign: Option<String>,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub client_id: Option<String>,
    /// RFC 3339.
    pub issued_at: String,
    pub expires_at: Option<String>,
    pub event_id: Uuid,
    pub event_type: String,
    pub position: i64,
    pub at: String,
}

/// The schemas of the three messages: (topic's default name, JSON Schema).
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    use ledger_core::schema::schema_of;
    vec![
        ("GiftCertificateState", schema_of::<StateMessage>("GiftCertificateState v1")),
        ("GiftCertificateTransaction", schema_of::<TransactionMessage>("GiftCertificateTransaction v1")),
        ("GiftCertificateBI", schema_of::<BiMessage>("GiftCertificateBI v1")),
    ]
}

fn rfc3339(at: Timestamp) -> String {
    ledger_store::log::to_time(at).format(&Rfc3339).unwrap_or_default()
}

impl CertificateTopics {
    /// The messages of one certificate event, given the certificate's stored row.
    pub fn of_event(&self, record: &RecordedEvent, event: &Event, c: &Certificate) -> Vec<OutMessage> {
        let balance = event.balance();
        let after = balance.map_or(Decimal::ZERO, |b| b.after);
        let available = balance.map_or(Decimal::ZERO, |b| b.available);
        let at = rfc3339(record.recorded_at);
        let state = event.state();
        let expires_at = c.expires_at.map(rfc3339);
        let headers = vec![
            ("event_id", record.event_id.to_string()),
            ("event_type", record.event_type.clone()),
            ("position", record.position.to_string()),
            ("schema_version", "1".to_owned()),
        ];
        let message = |topic: &str, payload: String| OutMessage {
            topic: topic.to_owned(),
            key: c.code.clone(),
            payload,
            headers: headers.clone(),
        };
        let state_message = StateMessage {
            code: c.code.clone(),
            certificate_id: c.id.0,
            state,
            currency: c.currency.to_string(),
            nominal: c.nominal,
            balance: after,
            available,
            expires_at: expires_at.clone(),
            event_id: record.event_id,
            event_type: record.event_type.clone(),
            position: record.position,
            at: at.clone(),
        };
        let meta: EventMeta = serde_json::from_str(&record.metadata).unwrap_or_default();
        let (source, source_topic, source_partition, source_offset) = match meta.source {
            Some(Source::Http) => ("http", None, None, None),
            Some(Source::Topic { topic, partition, offset }) => ("topic", Some(topic), Some(partition), Some(offset)),
            Some(Source::Job { .. }) => ("job", None, None, None),
            None => ("internal", None, None, None),
        };
        let transaction = TransactionMessage {
            event_id: record.event_id,
            position: record.position,
            action: event.action().to_owned(),
            code: c.code.clone(),
            certificate_id: c.id.0,
            operation_id: event.operation_id().map(str::to_owned),
            amount: event.amount(),
            currency: c.currency.to_string(),
            balance_before: balance.map(|b| b.before),
            balance_after: balance.map(|b| b.after),
            available_after: balance.map(|b| b.available),
            state,
            channel: meta.channel,
            initiator: meta.initiator,
            key_id: meta.key_id,
            correlation_id: meta.correlation_id,
            source: source.to_owned(),
            source_topic,
            source_partition,
            source_offset,
            at: at.clone(),
        };
        // Links as they were at the event: none but the campaign before the activation.
        let activated = !matches!(event, Event::Issued(_));
        let link = |l: &Option<String>| if activated { l.clone() } else { None };
        let bi = BiMessage {
            code: c.code.clone(),
            certificate_id: c.id.0,
            state,
            currency: c.currency.to_string(),
            nominal: c.nominal,
            balance: after,
            available,
            redeemed: if c.order_id.is_some() && activated { c.nominal - after } else { Decimal::ZERO },
            campaign: c.campaign.clone(),
            order_id: link(&c.order_id),
            payment_id: link(&c.payment_id),
            client_id: link(&c.client_id),
            issued_at: rfc3339(c.issued_at),
            expires_at,
            event_id: record.event_id,
            event_type: record.event_type.clone(),
            position: record.position,
            at,
        };
        vec![
            message(&self.state, json(&state_message)),
            message(&self.transaction, json(&transaction)),
            message(&self.bi, json(&bi)),
        ]
    }

    async fn page_messages(
        &self,
        conn: &mut PgConnection,
        page: &[RecordedEvent],
    ) -> Result<Vec<OutMessage>, PublishError> {
        let mut events = Vec::new();
        for record in page.iter().filter(|r| r.event_type.starts_with("Certificate")) {
            let poison = |error: String| PublishError::Poison { position: record.position, error };
            let event = record.event().map_err(|e| poison(e.to_string()))?;
            if let AnyEvent::Certificates(e) = event {
                events.push((record, e));
            }
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<Uuid> = events.iter().map(|(_, e)| e.certificate().0).collect();
        ids.sort();
        ids.dedup();
        let mut rows: HashMap<Uuid, Certificate> = HashMap::new();
        for stored in ledger_store::log::entities(conn, &ids).await? {
            if stored.row.kind == KIND {
                let c: Certificate = stored.row.parse().map_err(|e| PublishError::Poison {
                    position: stored.position,
                    error: format!("certificate {}: {e}", stored.row.key),
                })?;
                rows.insert(c.id.0, c);
            }
        }
        let mut out = Vec::with_capacity(events.len() * 3);
        for (record, event) in &events {
            let c = rows.get(&event.certificate().0).ok_or_else(|| PublishError::Poison {
                position: record.position,
                error: format!("certificate {} has no stored row", event.certificate()),
            })?;
            out.extend(self.of_event(record, event, c));
        }
        Ok(out)
    }
}

/// Plain structs of strings and numbers always serialize.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("messages serialize")
}

impl DomainTopics for CertificateTopics {
    fn names(&self) -> Vec<String> {
        vec![self.state.clone(), self.transaction.clone(), self.bi.clone()]
    }

    fn messages<'a>(&'a self, conn: &'a mut PgConnection, page: &'a [RecordedEvent]) -> Deriving<'a> {
        Box::pin(self.page_messages(conn, page))
    }
}
