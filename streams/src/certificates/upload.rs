//! `GiftCertificateUpload`: pre-generated certificates to issue, in the row shape of
//! `POST /v1/certificates/upload/batch` (`{"code","nominal","currency","expires_at"?,
//! "campaign"?,"phone"?}`). A message holds one row, an array of rows, or
//! `{"certificates":[rows]}`. Each row is issued on its own (a row already issued is a no-op);
//! when rows are refused, the others are still issued and the message goes to the dead-letter
//! topic naming each refused row and its code.

use futures_util::future::join_all;
use ledger_core::CurrencyCode;
use ledger_core::certificates::Command;
use ledger_core::certificates::command::Issue;
use ledger_store::{LedgerHandle, WriteError};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::consumer::{HandleError, Handler, Inbound};

/// The most rows one message takes (as one HTTP upload).
pub const MAX_ROWS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    code: String,
    nominal: serde_json::Value,
    currency: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    One(Row),
    Many(Vec<Row>),
    Wrapped { certificates: Vec<Row> },
}

/// A refused row: (its code, the stable code of the refusal, a sentence).
type Refused = (String, &'static str, String);

impl Row {
    fn into_issue(self) -> Result<Issue, Refused> {
        let code = self.code.clone();
        let refused = |problem: &'static str, detail: String| (code.clone(), problem, detail);
        let nominal = super::amount(&self.nominal, "nominal").map_err(|e| refused("invalid_amount", e))?;
        let currency = CurrencyCode::parse(&self.currency)
            .map_err(|_| refused("unknown_currency", format!("{:?} is not a currency code", self.currency)))?;
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|t| {
                time::OffsetDateTime::parse(t, &Rfc3339)
                    .map(ledger_store::sql::from_time)
                    .map_err(|_| refused("invalid_body", format!("expires_at {t:?} is not an RFC 3339 time")))
            })
            .transpose()?;
        Ok(Issue { code: self.code, nominal, currency, expires_at, campaign: self.campaign, phone: self.phone })
    }
}

/// Issues the certificates of `GiftCertificateUpload` messages.
pub struct Uploads {
    ledger: LedgerHandle,
}

impl Uploads {
    pub fn new(ledger: LedgerHandle) -> Uploads {
        Uploads { ledger }
    }
}

fn invalid(detail: impl ToString) -> HandleError {
    HandleError::Reject { code: "invalid_body".into(), detail: detail.to_string() }
}

impl Handler for Uploads {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        let rows = match serde_json::from_slice::<Message>(&message.payload).map_err(invalid)? {
            Message::One(row) => vec![row],
            Message::Many(rows) | Message::Wrapped { certificates: rows } => rows,
        };
        if rows.is_empty() || rows.len() > MAX_ROWS {
            return Err(invalid(format!("a message holds 1 to {MAX_ROWS} rows")));
        }
        let meta = || ledger_store::EventMeta { channel: Some(format!("kafka:{}", message.topic)), ..message.meta() };
        // Every row is its own command, submitted together so they share commits.
        let outcomes = join_all(rows.into_iter().map(|row| async move {
            let issue = row.into_issue()?;
            let code = issue.code.clone();
            match self.ledger.submit(Command::Issue(Box::new(issue)), meta()).await {
                Ok(Ok(_)) => Ok(Ok(())),
                Ok(Err(r)) => Err((code, r.code(), r.to_string())),
                Err(e @ (WriteError::Overloaded | WriteError::Unavailable)) => Ok(Err(e.to_string())),
            }
        }))
        .await;
        let mut refused = Vec::new();
        let mut retry = None;
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(busy)) => retry = Some(busy),
                Err((code, problem, detail)) => refused.push(format!("row {n} ({code}): {problem}: {detail}")),
            }
        }
        // A busy writer: the whole message again later (issued rows are no-ops then).
        if let Some(busy) = retry {
            return Err(HandleError::Retry(busy));
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(HandleError::Reject { code: "rows_rejected".into(), detail: refused.join("; ") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::Timestamp;

    fn rows(text: &str) -> Vec<Row> {
        match serde_json::from_str::<Message>(text).unwrap() {
            Message::One(row) => vec![row],
            Message::Many(rows) | Message::Wrapped { certificates: rows } => rows,
        }
    }

    #[test]
    fn a_message_holds_one_row_an_array_or_the_upload_body() {
        let one = r#"{"code":"GC-1","nominal":"10.00","currency":"EUR"}"#;
        assert_eq!(rows(one).len(), 1);
        assert_eq!(rows(&format!("[{one},{one}]")).len(), 2);
        assert_eq!(rows(&format!(r#"{{"certificates":[{one},{one},{one}]}}"#)).len(), 3);
        let issue = rows(r#"{"code":"GC-1","nominal":25.5,"currency":"EUR","expires_at":"2027-01-01T00:00:00Z","campaign":"x","phone":"+4912345678"}"#)
            .remove(0)
            .into_issue()
            .unwrap();
        assert_eq!(issue.nominal.to_string(), "25.5");
        assert_eq!(issue.expires_at, Some(Timestamp(1_798_761_600_000_000)));
        assert_eq!((issue.campaign.as_deref(), issue.phone.as_deref()), (Some("x"), Some("+4912345678")));
    }

    #[test]
    fn a_row_that_cannot_be_read_is_refused_with_its_code() {
        let refused = |text: &str| rows(text).remove(0).into_issue().unwrap_err().1;
        assert_eq!(refused(r#"{"code":"a","nominal":"x","currency":"EUR"}"#), "invalid_amount");
        assert_eq!(refused(r#"{"code":"a","nominal":"1","currency":"euro!"}"#), "unknown_currency");
        assert_eq!(refused(r#"{"code":"a","nominal":"1","currency":"EUR","expires_at":"soon"}"#), "invalid_body");
        assert!(serde_json::from_str::<Message>(r#"{"code":"a","nominal":"1","currency":"EUR","cvc":"1"}"#).is_err());
    }
}
