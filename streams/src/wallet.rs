//! The gaming wallet over Kafka: `wallet.transactions`, one flat message per movement of a
//! player's balance (`ledger_core::wallet::movement`), keyed by player, for ClickHouse-style
//! sinks. The messages are derived from the log by the publisher, with the entities an event
//! names by id read from their stored rows, and acknowledged with the page they came from.
//! A subscriber deduplicates by `(event_id, leg)`.

use std::collections::HashMap;

use ledger_core::wallet::movement::{Account, Kind, Movement, Reference, movements};
use ledger_core::wallet::rows::{RowLookup, named_rows};
use ledger_core::{EntityRow, Event};
use ledger_store::RecordedEvent;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::publisher::{Deriving, DomainTopics, PublishError};
use crate::sink::OutMessage;

/// The topic's name by default.
pub const TRANSACTIONS_TOPIC: &str = "wallet.transactions";

/// The wallet's topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletTopics {
    pub transactions: String,
}

impl Default for WalletTopics {
    fn default() -> Self {
        WalletTopics { transactions: TRANSACTIONS_TOPIC.into() }
    }
}

/// One of a player's balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireAccount {
    Main,
    Bonus,
    Locked,
}

/// Why the money moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    Deposit,
    WithdrawalLock,
    WithdrawalPaid,
    WithdrawalReturned,
    Bet,
    Win,
    Rollback,
    BonusGranted,
    BonusConverted,
    BonusReturned,
}

/// What the movement belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireReference {
    Deposit,
    Withdrawal,
    Bonus,
    Game,
}

/// `wallet.transactions` v1: one movement of one of a player's balances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionMessage {
    /// The log event that made it, and its position.
    pub event_id: Uuid,
    pub position: i64,
    /// Its place among the event's movements (from 0): `(event_id, leg)` is unique.
    pub leg: u32,
    pub player_id: String,
    pub account: WireAccount,
    pub currency: String,
    /// Signed: positive when the balance grew.
    pub amount: Decimal,
    pub kind: WireKind,
    pub reference_type: WireReference,
    /// The deposit, withdrawal or bonus id, or the game transaction's (a rollback's own).
    pub reference_id: Uuid,
    /// A game transaction's provider and round.
    pub provider: Option<String>,
    pub round: Option<String>,
    /// The ledger transfer that moved it.
    pub transfer_id: Uuid,
    /// RFC 3339.
    pub at: String,
}

impl TransactionMessage {
    pub fn of(record: &RecordedEvent, leg: u32, m: &Movement) -> TransactionMessage {
        let account = match m.account {
            Account::Main => WireAccount::Main,
            Account::Bonus => WireAccount::Bonus,
            Account::Locked => WireAccount::Locked,
        };
        let kind = match m.kind {
            Kind::Deposit => WireKind::Deposit,
            Kind::WithdrawalLock => WireKind::WithdrawalLock,
            Kind::WithdrawalPaid => WireKind::WithdrawalPaid,
            Kind::WithdrawalReturned => WireKind::WithdrawalReturned,
            Kind::Bet => WireKind::Bet,
            Kind::Win => WireKind::Win,
            Kind::Rollback => WireKind::Rollback,
            Kind::BonusGranted => WireKind::BonusGranted,
            Kind::BonusConverted => WireKind::BonusConverted,
            Kind::BonusReturned => WireKind::BonusReturned,
        };
        let (reference_type, provider, round) = match &m.reference {
            Reference::Deposit(_) => (WireReference::Deposit, None, None),
            Reference::Withdrawal(_) => (WireReference::Withdrawal, None, None),
            Reference::Bonus(_) => (WireReference::Bonus, None, None),
            Reference::Game { provider, round, .. } => {
                (WireReference::Game, Some(provider.clone()), Some(round.clone()))
            }
        };
        TransactionMessage {
            event_id: record.event_id,
            position: record.position,
            leg,
            player_id: m.player.clone(),
            account,
            currency: m.currency.to_string(),
            amount: m.amount,
            kind,
            reference_type,
            reference_id: m.reference.id(),
            provider,
            round,
            transfer_id: m.transfer.0,
            at: m.at.rfc3339(),
        }
    }
}

/// The JSON Schema of the messages the domain publishes, by message name.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![("WalletTransaction", ledger_core::schema::schema_of::<TransactionMessage>("WalletTransaction v1"))]
}

impl WalletTopics {
    /// The messages of a page: one per movement, in log order, keyed by player. `rows` holds
    /// the stored rows of the entities the page's events name by id (`named_rows`).
    pub fn of_page(
        &self,
        page: &[RecordedEvent],
        rows: &HashMap<Uuid, EntityRow>,
    ) -> Result<Vec<OutMessage>, PublishError> {
        let lookup = RowLookup(|id| rows.get(&id).cloned());
        let mut out = Vec::new();
        for (record, event) in wallet_events(page)? {
            let poison = |error: String| PublishError::Poison { position: record.position, error };
            let moved = movements(&event, &lookup).map_err(|e| poison(e.to_string()))?;
            for (leg, m) in moved.iter().enumerate() {
                let leg = u32::try_from(leg).map_err(|e| poison(e.to_string()))?;
                out.push(OutMessage {
                    topic: self.transactions.clone(),
                    key: m.player.clone(),
                    // A struct of strings, numbers and ids always serializes.
                    payload: serde_json::to_string(&TransactionMessage::of(record, leg, m))
                        .expect("messages serialize"),
                    headers: vec![("event_id", record.event_id.to_string()), ("position", record.position.to_string())],
                });
            }
        }
        Ok(out)
    }
}

/// The page's wallet events, decoded.
fn wallet_events(page: &[RecordedEvent]) -> Result<Vec<(&RecordedEvent, ledger_core::wallet::Event)>, PublishError> {
    let wallet = ledger_core::wallet::event::EVENT_TYPES;
    let mut out = Vec::new();
    for record in page.iter().filter(|r| wallet.iter().any(|(t, _)| *t == r.event_type)) {
        let event =
            record.event().map_err(|e| PublishError::Poison { position: record.position, error: e.to_string() })?;
        if let Event::Wallet(e) = event {
            out.push((record, e));
        }
    }
    Ok(out)
}

impl DomainTopics for WalletTopics {
    fn names(&self) -> Vec<String> {
        vec![self.transactions.clone()]
    }

    fn messages<'a>(&'a self, conn: &'a mut PgConnection, page: &'a [RecordedEvent]) -> Deriving<'a> {
        Box::pin(async move {
            let ids: Vec<Uuid> = wallet_events(page)?.iter().filter_map(|(_, e)| named_rows(e)).collect();
            let rows = if ids.is_empty() {
                HashMap::new()
            } else {
                ledger_store::log::entities(conn, &ids).await?.into_iter().map(|s| (s.row.id, s.row)).collect()
            };
            self.of_page(page, &rows)
        })
    }
}
