//! The test consumer that ships with the framework: transfer requests arriving on a topic
//! become ledger transfers. A message is a JSON object
//! `{"id": uuid, "debit": account, "credit": account, "amount": "10.00", "metadata"?: {}}`
//! (an account is an id or a code; the amount a decimal string). The transfer id makes it
//! idempotent; the ledger's rejections dead-letter the message with their code.

use ledger_core::ledger::Command;
use ledger_core::{AccountRef, CreateTransfer, TransferId};
use ledger_store::{EventMeta, LedgerHandle, WriteError};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use crate::consumer::{HandleError, Handler, Inbound};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    id: Uuid,
    debit: String,
    credit: String,
    amount: String,
    #[serde(default)]
    metadata: serde_json::Value,
}

pub struct TransferRequests {
    ledger: LedgerHandle,
}

impl TransferRequests {
    pub fn new(ledger: LedgerHandle) -> TransferRequests {
        TransferRequests { ledger }
    }
}

fn account(text: &str) -> AccountRef {
    match Uuid::parse_str(text) {
        Ok(id) => AccountRef::Id(ledger_core::AccountId(id)),
        Err(_) => AccountRef::Code(text.to_owned()),
    }
}

fn invalid(detail: impl ToString) -> HandleError {
    HandleError::Reject { code: "invalid_body".into(), detail: detail.to_string() }
}

impl Handler for TransferRequests {
    async fn handle(&self, message: &Inbound) -> Result<(), HandleError> {
        let request: TransferRequest = serde_json::from_slice(&message.payload).map_err(invalid)?;
        // Exact decimal strings only: no exponent, nothing rounded.
        let amount = Decimal::from_str_exact(&request.amount).map_err(|e| invalid(format!("amount: {e}")))?;
        let transfer = CreateTransfer {
            metadata: request.metadata,
            ..CreateTransfer::simple(TransferId(request.id), account(&request.debit), account(&request.credit), amount)
        };
        let meta = EventMeta { channel: Some(format!("kafka:{}", message.topic)), ..message.meta() };
        match self.ledger.submit(Command::CreateTransfer(transfer), meta).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(rejection)) => {
                Err(HandleError::Reject { code: rejection.code().to_owned(), detail: rejection.to_string() })
            }
            Err(e @ (WriteError::Overloaded | WriteError::Unavailable)) => Err(HandleError::Retry(e.to_string())),
        }
    }
}
