//! Activation by sale: the consumer of `All_SalesOrder` and `All_Payments`.
//!
//! - An order `{"order_id","total","currency","client_id"?,"phone"?,"lines":[{"type",
//!   "certificate_code","amount"}]}` is kept when it has `gift_certificate` lines (other line
//!   types, and orders without certificates, are ignored).
//! - A payment `{"payment_id","order_id","status","amount","currency"}` is kept (its latest
//!   status).
//!
//! Either may arrive first. Once the order's `paid` payments in its currency reach its total, each
//! certificate line is activated with the order, the payment that completed it (the one whose
//! arrival did; when the order came last, the paid payment with the greatest id), the buyer and
//! the line's amount (the core refuses a line that is not the certificate's nominal:
//! `payment_mismatch`). A partial payment activates nothing. Redeliveries and repeats are
//! no-ops: the activation of a certificate by the same order and payment replays. Lines the
//! ledger refuses send the message to the dead-letter topic naming each one; the other lines are
//! activated.

use std::sync::Arc;

use ledger_core::certificates::Command;
use ledger_core::certificates::command::{Activate, Paid};
use ledger_core::{CurrencyCode, certificates};
use ledger_store::{EventMeta, LedgerHandle, WriteError};
use rust_decimal::Decimal;
use secrets::{Cvc, KeyProvider};
use serde::Deserialize;
use sqlx::PgPool;

use crate::consumer::{HandleError, Handler, Inbound};

/// The topics (the seed's by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesTopics {
    pub orders: String,
    pub payments: String,
}

impl Default for SalesTopics {
    fn default() -> Self {
        SalesTopics { orders: "All_SalesOrder".into(), payments: "All_Payments".into() }
    }
}

/// Orders and payments come from other systems: fields this consumer does not read are allowed.
#[derive(Deserialize)]
struct Order {
    order_id: String,
    total: serde_json::Value,
    currency: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    lines: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Line {
    certificate_code: String,
    amount: serde_json::Value,
}

#[derive(Deserialize)]
struct Payment {
    payment_id: String,
    order_id: String,
    status: String,
    amount: serde_json::Value,
    currency: String,
}

/// The line type that is a gift certificate.
pub const CERTIFICATE_LINE: &str = "gift_certificate";

#[derive(Clone)]
pub struct Sales {
    ledger: LedgerHandle,
    pool: PgPool,
    keys: Arc<dyn KeyProvider>,
    topics: SalesTopics,
}

impl Sales {
    pub fn new(ledger: LedgerHandle, pool: PgPool, keys: Arc<dyn KeyProvider>, topics: SalesTopics) -> Sales {
        Sales { ledger, pool, keys, topics }
    }
}

fn invalid(detail: impl ToString) -> HandleError {
    HandleError::Reject { code: "invalid_body".into(), detail: detail.to_string() }
}

fn database(e: sqlx::Error) -> HandleError {
    HandleError::Retry(format!("database: {e}"))
}

/// A stored certificate line.
#[derive(serde::Serialize, Deserialize)]
struct StoredLine {
    certificate_code: String,
    amount: Decimal,
}

impl Sales {
    async fn order(&self, message: &Inbound) -> Result<Option<String>, HandleError> {
        let order: Order = serde_json::from_slice(&message.payload).map_err(invalid)?;
        let total = super::amount(&order.total, "total").map_err(invalid)?;
        CurrencyCode::parse(&order.currency).map_err(|_| invalid(format!("currency {:?}", order.currency)))?;
        let mut lines = Vec::new();
        for line in order.lines {
            if line.get("type").and_then(|t| t.as_str()) != Some(CERTIFICATE_LINE) {
                continue;
            }
            let line: Line = serde_json::from_value(line).map_err(|e| invalid(format!("a certificate line: {e}")))?;
            let amount = super::amount(&line.amount, "amount").map_err(invalid)?;
            lines.push(StoredLine { certificate_code: line.certificate_code, amount });
        }
        if lines.is_empty() {
            return Ok(None);
        }
        let lines = serde_json::to_value(&lines).map_err(invalid)?;
        sqlx::query(
            "INSERT INTO certificate_orders (order_id, total, currency, client_id, phone, lines) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&order.order_id)
        .bind(total)
        .bind(&order.currency)
        .bind(&order.client_id)
        .bind(&order.phone)
        .bind(lines)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        Ok(Some(order.order_id))
    }

    /// Records a payment; answers its order and, when it is paid, its id.
    async fn payment(&self, message: &Inbound) -> Result<Option<(String, Option<String>)>, HandleError> {
        let payment: Payment = serde_json::from_slice(&message.payload).map_err(invalid)?;
        let amount = super::amount(&payment.amount, "amount").map_err(invalid)?;
        if !matches!(payment.status.as_str(), "paid" | "failed") {
            return Err(invalid(format!("status {:?} is not paid or failed", payment.status)));
        }
        sqlx::query(
            "INSERT INTO certificate_payments (payment_id, order_id, status, amount, currency) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO UPDATE SET status = EXCLUDED.status",
        )
        .bind(&payment.payment_id)
        .bind(&payment.order_id)
        .bind(&payment.status)
        .bind(amount)
        .bind(&payment.currency)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        let paid = (payment.status == "paid").then_some(payment.payment_id);
        Ok(Some((payment.order_id, paid)))
    }

    /// The order's certificate lines to activate and the payment that completed it, once its
    /// paid payments reach its total (the first time: recorded on the order). The payment that
    /// completes it is the one just received, when it is paid; when the order arrives after
    /// its payments, the paid payment with the greatest id.
    async fn completed(
        &self,
        order_id: &str,
        received: Option<&str>,
    ) -> Result<Option<(Vec<StoredLine>, String, Option<String>, Option<String>, CurrencyCode)>, HandleError> {
        let mut tx = self.pool.begin().await.map_err(database)?;
        type OrderRow = (Decimal, String, Option<String>, Option<String>, serde_json::Value, Option<String>);
        let row: Option<OrderRow> = sqlx::query_as(
            "SELECT total, currency, client_id, phone, lines, completed_by FROM certificate_orders \
             WHERE order_id = $1 FOR UPDATE",
        )
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(database)?;
        // Every way out ends the transaction here: a transaction merely dropped would keep the
        // row lock until its connection is used again.
        let Some((total, currency, client_id, phone, lines, completed_by)) = row else {
            tx.commit().await.map_err(database)?;
            return Ok(None);
        };
        let completed_by = match completed_by {
            Some(payment) => payment,
            None => {
                let (paid, last): (Option<Decimal>, Option<String>) = sqlx::query_as(
                    "SELECT sum(amount), max(payment_id) FROM certificate_payments \
                     WHERE order_id = $1 AND status = 'paid' AND currency = $2",
                )
                .bind(order_id)
                .bind(&currency)
                .fetch_one(&mut *tx)
                .await
                .map_err(database)?;
                let (Some(paid), Some(last)) = (paid, last) else {
                    tx.commit().await.map_err(database)?;
                    return Ok(None);
                };
                if paid < total {
                    tx.commit().await.map_err(database)?;
                    return Ok(None);
                }
                let by = received.map_or(last, str::to_owned);
                sqlx::query("UPDATE certificate_orders SET completed_by = $2 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(&by)
                    .execute(&mut *tx)
                    .await
                    .map_err(database)?;
                by
            }
        };
        tx.commit().await.map_err(database)?;
        let lines: Vec<StoredLine> = serde_json::from_value(lines).map_err(invalid)?;
        let currency = CurrencyCode::parse(&currency).map_err(|_| invalid("stored currency"))?;
        Ok(Some((lines, completed_by, client_id, phone, currency)))
    }
}

impl Handler for Sales {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        let (order_id, paid) = if message.topic == self.topics.orders {
            (self.order(message).await?, None)
        } else if message.topic == self.topics.payments {
            match self.payment(message).await? {
                Some((order, paid)) => (Some(order), paid),
                None => (None, None),
            }
        } else {
            return Err(invalid(format!("unexpected topic {}", message.topic)));
        };
        let Some(order_id) = order_id else { return Ok(()) };
        let Some((lines, payment_id, client_id, phone, currency)) = self.completed(&order_id, paid.as_deref()).await?
        else {
            return Ok(());
        };
        let mut refused = Vec::new();
        for line in lines {
            let cvc = Cvc::generate().map_err(|e| HandleError::Retry(e.to_string()))?;
            let cvc = secrets::seal_cvc(self.keys.as_ref(), &line.certificate_code, &cvc)
                .map_err(|e| HandleError::Retry(e.to_string()))?;
            let activate = Activate {
                code: line.certificate_code.clone(),
                order_id: order_id.clone(),
                payment_id: payment_id.clone(),
                phone: phone.clone(),
                client_id: client_id.clone(),
                paid: Some(Paid { amount: line.amount, currency: currency.clone() }),
                cvc,
            };
            let meta = EventMeta { channel: Some(format!("kafka:{}", message.topic)), ..message.meta() };
            match self.ledger.submit(Command::Activate(Box::new(activate)), meta).await {
                Ok(Ok(_)) => {}
                Ok(Err(r)) => {
                    refused.push(format!("{}: {}: {r}", line.certificate_code, certificates::Rejection::code(r)))
                }
                Err(e @ (WriteError::Overloaded | WriteError::Unavailable)) => {
                    return Err(HandleError::Retry(e.to_string()));
                }
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(HandleError::Reject { code: "activation_refused".into(), detail: refused.join("; ") })
        }
    }
}
