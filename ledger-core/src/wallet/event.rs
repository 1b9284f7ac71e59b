//! What happened to players, providers, deposits, withdrawals, game transactions and bonuses,
//! each on its own stream; the ledger transfers that move the money are committed with them.
//! Secrets are sealed.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::{GameAction, Kyc, LimitKind, ProviderKind};
use super::{bonus_entity, deposit_entity, game_tx_entity, player_entity, provider_entity, withdrawal_entity};
use crate::domain::{DomainEvent, EntityRef, EventDecodeError, Subject};
use crate::ids::{BonusId, DepositId, Timestamp, TransferId, WithdrawalId};
use crate::money::CurrencyCode;
use crate::schema::EventSchema;
use crate::sealed::Sealed;

/// A value that may loosen only after a cooldown: the value in force, and a looser value waiting
/// for its time. `None`: no limit (or no self-exclusion).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timed<T> {
    pub value: Option<T>,
    pub pending: Option<Pending<T>>,
}

impl<T> Default for Timed<T> {
    fn default() -> Timed<T> {
        Timed { value: None, pending: None }
    }
}

/// A looser value and when it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pending<T> {
    pub value: Option<T>,
    pub from: Timestamp,
}

impl<T: Copy> Timed<T> {
    /// The value in force at `now`.
    pub fn at(&self, now: Timestamp) -> Option<T> {
        match self.pending {
            Some(p) if p.from <= now => p.value,
            _ => self.value,
        }
    }

    /// As it stands at `now`: a pending value whose time has come is the value in force.
    pub fn settled(&self, now: Timestamp) -> Timed<T> {
        match self.pending {
            Some(p) if p.from <= now => Timed { value: p.value, pending: None },
            _ => *self,
        }
    }
}

/// A player's limits as decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimedLimits {
    pub deposit_day: Timed<Decimal>,
    pub deposit_week: Timed<Decimal>,
    pub deposit_month: Timed<Decimal>,
    pub loss_day: Timed<Decimal>,
    pub withdraw_day: Timed<Decimal>,
}

impl TimedLimits {
    pub fn get(&self, kind: LimitKind) -> &Timed<Decimal> {
        match kind {
            LimitKind::DepositDay => &self.deposit_day,
            LimitKind::DepositWeek => &self.deposit_week,
            LimitKind::DepositMonth => &self.deposit_month,
            LimitKind::LossDay => &self.loss_day,
            LimitKind::WithdrawDay => &self.withdraw_day,
        }
    }

    pub fn get_mut(&mut self, kind: LimitKind) -> &mut Timed<Decimal> {
        match kind {
            LimitKind::DepositDay => &mut self.deposit_day,
            LimitKind::DepositWeek => &mut self.deposit_week,
            LimitKind::DepositMonth => &mut self.deposit_month,
            LimitKind::LossDay => &mut self.loss_day,
            LimitKind::WithdrawDay => &mut self.withdraw_day,
        }
    }
}

/// A player was created or changed: its fields as decided (limits in force and pending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerUpserted {
    pub id: String,
    pub currency: CurrencyCode,
    pub kyc: Kyc,
    pub self_exclusion: Timed<Timestamp>,
    pub limits: TimedLimits,
    pub at: Timestamp,
}

/// A provider was created or changed, with its sealed webhook secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderUpserted {
    pub id: String,
    pub kind: ProviderKind,
    pub secret: Sealed,
    pub base_url: Option<String>,
    pub at: Timestamp,
}

/// A deposit intent: nothing moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositCreated {
    pub id: DepositId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
    pub at: Timestamp,
}

/// A payment provider's outcome (the event type says which), with the transfer that moved the
/// money, if one did, and the webhook that said so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settled<Id> {
    pub id: Id,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub transfer: Option<TransferId>,
    pub at: Timestamp,
}

/// A withdrawal's money moved main → locked; the payout is to be sent by `deadline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequested {
    pub id: WithdrawalId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
    pub deadline: Timestamp,
    pub transfer: TransferId,
    pub at: Timestamp,
}

/// A game provider's transaction as recorded (the event type says which): a bet (what it took
/// from main and bonus), a win (what it credited to each) or a rollback, with the balances the
/// call answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GameTx {
    pub provider: String,
    pub transaction: Uuid,
    pub player: String,
    pub round: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub reference: Option<Uuid>,
    pub round_closed: bool,
    pub main: Decimal,
    pub bonus: Decimal,
    /// The open bonus a bet's stake counted toward, and how much it counted.
    pub wagering: Option<Wagering>,
    pub transfer: Option<TransferId>,
    /// The round's net moved to game revenue, when the call closed it.
    pub round_transfer: Option<TransferId>,
    /// Main and bonus available after the call: what it answered.
    pub balance: Decimal,
    pub bonus_balance: Decimal,
    pub at: Timestamp,
}

/// What a bet's stake counted toward an open bonus's wagering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wagering {
    pub bonus: BonusId,
    pub amount: Decimal,
}

/// A bet was rolled back by the rollback `by`: its entry reversed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BetRolledBack {
    pub provider: String,
    pub transaction: Uuid,
    pub by: Uuid,
    pub transfer: Option<TransferId>,
    /// The wagering it had counted, taken back from the bonus still open.
    pub wagering: Option<Wagering>,
    pub at: Timestamp,
}

/// A rollback named a bet not seen yet: the bet's id is taken, so the bet is refused if it comes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BetTombstoned {
    pub provider: String,
    pub transaction: Uuid,
    pub player: String,
    pub round: String,
    pub by: Uuid,
    pub at: Timestamp,
}

/// A bonus was granted: bonus_cost → bonus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusGranted {
    pub id: BonusId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub wagering_multiplier: Decimal,
    /// What its bets must add up to: round(amount × multiplier), half to even.
    pub required: Decimal,
    pub expires_at: Timestamp,
    pub transfer: TransferId,
    pub at: Timestamp,
}

/// A bonus ended (the event type says how): what was left of the bonus balance moved to main
/// (converted) or back to bonus_cost (expired, forfeited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusClosed {
    pub id: BonusId,
    pub amount: Decimal,
    pub reason: Option<String>,
    pub transfer: Option<TransferId>,
    pub at: Timestamp,
}

/// Every event type of the wallet with the schema version written today.
pub const EVENT_TYPES: [(&str, i16); 19] = [
    ("PlayerUpserted", 1),
    ("ProviderUpserted", 1),
    ("DepositCreated", 1),
    ("WithdrawalRequested", 1),
    ("BetRolledBack", 1),
    ("BetTombstoned", 1),
    ("BonusGranted", 1),
    ("BetPlaced", 1),
    ("WinPaid", 1),
    ("RollbackRecorded", 1),
    ("DepositSucceeded", 1),
    ("DepositFailed", 1),
    ("WithdrawalSent", 1),
    ("WithdrawalSucceeded", 1),
    ("WithdrawalFailed", 1),
    ("WithdrawalTimedOut", 1),
    ("BonusConverted", 1),
    ("BonusExpired", 1),
    ("BonusForfeited", 1),
];

/// Payloads are boxed: the log's event type stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    PlayerUpserted(Box<PlayerUpserted>),
    ProviderUpserted(Box<ProviderUpserted>),
    DepositCreated(Box<DepositCreated>),
    WithdrawalRequested(Box<WithdrawalRequested>),
    BetRolledBack(Box<BetRolledBack>),
    BetTombstoned(Box<BetTombstoned>),
    BonusGranted(Box<BonusGranted>),
    BetPlaced(Box<GameTx>),
    WinPaid(Box<GameTx>),
    RollbackRecorded(Box<GameTx>),
    DepositSucceeded(Box<Settled<DepositId>>),
    DepositFailed(Box<Settled<DepositId>>),
    WithdrawalSent(Box<Settled<WithdrawalId>>),
    WithdrawalSucceeded(Box<Settled<WithdrawalId>>),
    WithdrawalFailed(Box<Settled<WithdrawalId>>),
    WithdrawalTimedOut(Box<Settled<WithdrawalId>>),
    BonusConverted(Box<BonusClosed>),
    BonusExpired(Box<BonusClosed>),
    BonusForfeited(Box<BonusClosed>),
}

impl Event {
    /// The player, provider, deposit, withdrawal, game transaction or bonus the event is about.
    pub fn entity(&self) -> EntityRef {
        match self {
            Event::PlayerUpserted(e) => player_entity(&e.id),
            Event::ProviderUpserted(e) => provider_entity(&e.id),
            Event::DepositCreated(e) => deposit_entity(e.id),
            Event::WithdrawalRequested(e) => withdrawal_entity(e.id),
            Event::BetRolledBack(e) => game_tx_entity(&e.provider, e.transaction),
            Event::BetTombstoned(e) => game_tx_entity(&e.provider, e.transaction),
            Event::BonusGranted(e) => bonus_entity(e.id),
            Event::BetPlaced(e) | Event::WinPaid(e) | Event::RollbackRecorded(e) => {
                game_tx_entity(&e.provider, e.transaction)
            }
            Event::DepositSucceeded(e) | Event::DepositFailed(e) => deposit_entity(e.id),
            Event::WithdrawalSent(e)
            | Event::WithdrawalSucceeded(e)
            | Event::WithdrawalFailed(e)
            | Event::WithdrawalTimedOut(e) => withdrawal_entity(e.id),
            Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => bonus_entity(e.id),
        }
    }

    /// The game action a transaction event records.
    pub fn game_action(&self) -> Option<GameAction> {
        match self {
            Event::BetPlaced(_) => Some(GameAction::Bet),
            Event::WinPaid(_) => Some(GameAction::Win),
            Event::RollbackRecorded(_) => Some(GameAction::Rollback),
            _ => None,
        }
    }
}

impl DomainEvent for Event {
    const TYPES: &'static [(&'static str, i16)] = &EVENT_TYPES;

    fn event_type(&self) -> &'static str {
        match self {
            Event::PlayerUpserted(_) => "PlayerUpserted",
            Event::ProviderUpserted(_) => "ProviderUpserted",
            Event::DepositCreated(_) => "DepositCreated",
            Event::WithdrawalRequested(_) => "WithdrawalRequested",
            Event::BetRolledBack(_) => "BetRolledBack",
            Event::BetTombstoned(_) => "BetTombstoned",
            Event::BonusGranted(_) => "BonusGranted",
            Event::BetPlaced(_) => "BetPlaced",
            Event::WinPaid(_) => "WinPaid",
            Event::RollbackRecorded(_) => "RollbackRecorded",
            Event::DepositSucceeded(_) => "DepositSucceeded",
            Event::DepositFailed(_) => "DepositFailed",
            Event::WithdrawalSent(_) => "WithdrawalSent",
            Event::WithdrawalSucceeded(_) => "WithdrawalSucceeded",
            Event::WithdrawalFailed(_) => "WithdrawalFailed",
            Event::WithdrawalTimedOut(_) => "WithdrawalTimedOut",
            Event::BonusConverted(_) => "BonusConverted",
            Event::BonusExpired(_) => "BonusExpired",
            Event::BonusForfeited(_) => "BonusForfeited",
        }
    }

    fn subject(&self) -> Subject {
        Subject::Entity(self.entity())
    }

    fn at(&self) -> Timestamp {
        match self {
            Event::PlayerUpserted(e) => e.at,
            Event::ProviderUpserted(e) => e.at,
            Event::DepositCreated(e) => e.at,
            Event::WithdrawalRequested(e) => e.at,
            Event::BetRolledBack(e) => e.at,
            Event::BetTombstoned(e) => e.at,
            Event::BonusGranted(e) => e.at,
            Event::BetPlaced(e) | Event::WinPaid(e) | Event::RollbackRecorded(e) => e.at,
            Event::DepositSucceeded(e) | Event::DepositFailed(e) => e.at,
            Event::WithdrawalSent(e)
            | Event::WithdrawalSucceeded(e)
            | Event::WithdrawalFailed(e)
            | Event::WithdrawalTimedOut(e) => e.at,
            Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => e.at,
        }
    }

    fn payload(&self) -> String {
        let text = match self {
            Event::PlayerUpserted(e) => serde_json::to_string(e),
            Event::ProviderUpserted(e) => serde_json::to_string(e),
            Event::DepositCreated(e) => serde_json::to_string(e),
            Event::WithdrawalRequested(e) => serde_json::to_string(e),
            Event::BetRolledBack(e) => serde_json::to_string(e),
            Event::BetTombstoned(e) => serde_json::to_string(e),
            Event::BonusGranted(e) => serde_json::to_string(e),
            Event::BetPlaced(e) | Event::WinPaid(e) | Event::RollbackRecorded(e) => serde_json::to_string(e),
            Event::DepositSucceeded(e) | Event::DepositFailed(e) => serde_json::to_string(e),
            Event::WithdrawalSent(e)
            | Event::WithdrawalSucceeded(e)
            | Event::WithdrawalFailed(e)
            | Event::WithdrawalTimedOut(e) => serde_json::to_string(e),
            Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => serde_json::to_string(e),
        };
        // Plain structs of strings, numbers and ids always serialize.
        text.expect("event payloads always serialize")
    }

    fn decode(event_type: &str, schema_version: i16, payload: &str) -> Result<Event, EventDecodeError> {
        fn body<T: serde::de::DeserializeOwned>(name: &'static str, payload: &str) -> Result<Box<T>, EventDecodeError> {
            serde_json::from_str(payload).map(Box::new).map_err(|e| EventDecodeError::Payload(name, e))
        }
        if schema_version != 1 {
            return Err(EventDecodeError::UnknownType(event_type.to_owned(), schema_version));
        }
        Ok(match event_type {
            "PlayerUpserted" => Event::PlayerUpserted(body("PlayerUpserted", payload)?),
            "ProviderUpserted" => Event::ProviderUpserted(body("ProviderUpserted", payload)?),
            "DepositCreated" => Event::DepositCreated(body("DepositCreated", payload)?),
            "WithdrawalRequested" => Event::WithdrawalRequested(body("WithdrawalRequested", payload)?),
            "BetRolledBack" => Event::BetRolledBack(body("BetRolledBack", payload)?),
            "BetTombstoned" => Event::BetTombstoned(body("BetTombstoned", payload)?),
            "BonusGranted" => Event::BonusGranted(body("BonusGranted", payload)?),
            "BetPlaced" => Event::BetPlaced(body("BetPlaced", payload)?),
            "WinPaid" => Event::WinPaid(body("WinPaid", payload)?),
            "RollbackRecorded" => Event::RollbackRecorded(body("RollbackRecorded", payload)?),
            "DepositSucceeded" => Event::DepositSucceeded(body("DepositSucceeded", payload)?),
            "DepositFailed" => Event::DepositFailed(body("DepositFailed", payload)?),
            "WithdrawalSent" => Event::WithdrawalSent(body("WithdrawalSent", payload)?),
            "WithdrawalSucceeded" => Event::WithdrawalSucceeded(body("WithdrawalSucceeded", payload)?),
            "WithdrawalFailed" => Event::WithdrawalFailed(body("WithdrawalFailed", payload)?),
            "WithdrawalTimedOut" => Event::WithdrawalTimedOut(body("WithdrawalTimedOut", payload)?),
            "BonusConverted" => Event::BonusConverted(body("BonusConverted", payload)?),
            "BonusExpired" => Event::BonusExpired(body("BonusExpired", payload)?),
            "BonusForfeited" => Event::BonusForfeited(body("BonusForfeited", payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned(), schema_version)),
        })
    }

    fn schemas() -> Vec<EventSchema> {
        let mut all = vec![
            EventSchema::of::<PlayerUpserted>("PlayerUpserted", 1),
            EventSchema::of::<ProviderUpserted>("ProviderUpserted", 1),
            EventSchema::of::<DepositCreated>("DepositCreated", 1),
            EventSchema::of::<WithdrawalRequested>("WithdrawalRequested", 1),
            EventSchema::of::<BetRolledBack>("BetRolledBack", 1),
            EventSchema::of::<BetTombstoned>("BetTombstoned", 1),
            EventSchema::of::<BonusGranted>("BonusGranted", 1),
        ];
        for (name, _) in &EVENT_TYPES[7..10] {
            all.push(EventSchema::of::<GameTx>(name, 1));
        }
        for (name, _) in &EVENT_TYPES[10..12] {
            all.push(EventSchema::of::<Settled<DepositId>>(name, 1));
        }
        for (name, _) in &EVENT_TYPES[12..16] {
            all.push(EventSchema::of::<Settled<WithdrawalId>>(name, 1));
        }
        for (name, _) in &EVENT_TYPES[16..] {
            all.push(EventSchema::of::<BonusClosed>(name, 1));
        }
        all
    }
}
