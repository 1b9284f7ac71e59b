//! What a BI subscriber does with the stream, as an example (`examples/balances.rs` runs it
//! against a broker): deduplicate by event id, then fold each event into account balances.
//! It reads only the published envelopes and their JSON payloads, as an outside subscriber
//! would, not the ledger's own state code.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::envelope::Envelope;

/// Posted and pending totals of one account, per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub debits_posted: Decimal,
    pub credits_posted: Decimal,
    pub debits_pending: Decimal,
    pub credits_pending: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event at position {position}: {problem}")]
pub struct BookError {
    pub position: i64,
    pub problem: String,
}

/// Balances rebuilt from the stream.
#[derive(Debug, Default)]
pub struct BalanceBook {
    seen: HashSet<Uuid>,
    accounts: BTreeMap<String, Totals>,
    /// Postings held by pending transfers, until they are posted, voided or expire.
    held: HashMap<String, Vec<(String, bool, Decimal)>>,
}

/// `(account, is_debit, amount)` of each posting in a payload.
fn postings(payload: &Value) -> Result<Vec<(String, bool, Decimal)>, String> {
    let list = payload["postings"].as_array().ok_or("no postings")?;
    list.iter()
        .map(|p| {
            let account = p["account"].as_str().ok_or("posting without account")?.to_owned();
            let debit = match p["side"].as_str() {
                Some("debit") => true,
                Some("credit") => false,
                _ => return Err("posting without side".to_owned()),
            };
            let amount = p["amount"].as_str().ok_or("posting without amount")?;
            let amount = Decimal::from_str_exact(amount).map_err(|e| format!("amount {amount:?}: {e}"))?;
            Ok((account, debit, amount))
        })
        .collect()
}

impl BalanceBook {
    /// Folds one envelope in. Returns false for a duplicate (already applied).
    pub fn apply(&mut self, envelope: &Envelope) -> Result<bool, BookError> {
        if !self.seen.insert(envelope.id) {
            return Ok(false);
        }
        let error = |problem: String| BookError { position: envelope.position, problem };
        let payload = &envelope.payload;
        let id = payload["id"].as_str().unwrap_or_default().to_owned();
        match envelope.event_type.as_str() {
            "AccountOpened" => {
                self.accounts.entry(id).or_default();
            }
            "TransferPosted" => {
                for (account, debit, amount) in postings(payload).map_err(error)? {
                    let t = self.accounts.entry(account).or_default();
                    *(if debit { &mut t.debits_posted } else { &mut t.credits_posted }) += amount;
                }
            }
            "PendingTransferCreated" => {
                let held = postings(payload).map_err(error)?;
                for (account, debit, amount) in &held {
                    let t = self.accounts.entry(account.clone()).or_default();
                    *(if *debit { &mut t.debits_pending } else { &mut t.credits_pending }) += *amount;
                }
                self.held.insert(id, held);
            }
            "PendingTransferPosted" | "PendingTransferVoided" | "PendingTransferExpired" => {
                let held = self.held.remove(&id).ok_or_else(|| error(format!("no hold for {id}")))?;
                for (account, debit, amount) in held {
                    let t = self.accounts.entry(account).or_default();
                    *(if debit { &mut t.debits_pending } else { &mut t.credits_pending }) -= amount;
                }
                if envelope.event_type == "PendingTransferPosted" {
                    for (account, debit, amount) in postings(payload).map_err(error)? {
                        let t = self.accounts.entry(account).or_default();
                        *(if debit { &mut t.debits_posted } else { &mut t.credits_posted }) += amount;
                    }
                }
            }
            // Status changes move no money.
            _ => {}
        }
        Ok(true)
    }

    pub fn accounts(&self) -> &BTreeMap<String, Totals> {
        &self.accounts
    }

    /// Distinct events applied.
    pub fn events(&self) -> usize {
        self.seen.len()
    }
}
