//! What operators, the cashier, payment providers and game providers ask of the wallet.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::ids::{BonusId, DepositId, Timestamp, WithdrawalId};
use crate::money::CurrencyCode;
use crate::sealed::Sealed;

/// How far a player's identity is verified (the KYC screens are another system's; their
/// outcome is input here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kyc {
    None,
    Basic,
    Full,
}

/// A responsible-gaming limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Deposits per UTC day, ISO week (Monday to Sunday, UTC) and calendar month (UTC).
    DepositDay,
    DepositWeek,
    DepositMonth,
    /// Net loss (bets − wins − rolled-back bets) per UTC day.
    LossDay,
    /// Withdrawals per UTC day.
    WithdrawDay,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LimitKind {
    pub const ALL: [LimitKind; 5] = [
        LimitKind::DepositDay,
        LimitKind::DepositWeek,
        LimitKind::DepositMonth,
        LimitKind::LossDay,
        LimitKind::WithdrawDay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::DepositDay => "deposit_day",
            LimitKind::DepositWeek => "deposit_week",
            LimitKind::DepositMonth => "deposit_month",
            LimitKind::LossDay => "loss_day",
            LimitKind::WithdrawDay => "withdraw_day",
        }
    }
}

/// The limits a player asks for; `None`: no such limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub deposit_day: Option<Decimal>,
    pub deposit_week: Option<Decimal>,
    pub deposit_month: Option<Decimal>,
    pub loss_day: Option<Decimal>,
    pub withdraw_day: Option<Decimal>,
}

impl Limits {
    pub fn get(&self, kind: LimitKind) -> Option<Decimal> {
        match kind {
            LimitKind::DepositDay => self.deposit_day,
            LimitKind::DepositWeek => self.deposit_week,
            LimitKind::DepositMonth => self.deposit_month,
            LimitKind::LossDay => self.loss_day,
            LimitKind::WithdrawDay => self.withdraw_day,
        }
    }
}

/// A player as the operator states it: its currency (fixed once created), KYC level,
/// self-exclusion end and the limits it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpsertPlayer {
    pub id: String,
    pub currency: CurrencyCode,
    pub kyc: Kyc,
    pub self_excluded_until: Option<Timestamp>,
    pub limits: Limits,
    /// `wallet.limit_cooldown_hours`.
    pub cooldown_hours: u32,
}

/// What a provider is to the wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// A payment gateway: deposits and payouts, outcomes by signed webhook.
    Payments,
    /// A game aggregator: seamless-wallet callbacks, signed.
    Games,
}

/// A provider, with its webhook secret sealed by the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpsertProvider {
    pub id: String,
    pub kind: ProviderKind,
    pub secret: Sealed,
    pub base_url: Option<String>,
}

/// A deposit intent: nothing moves until the provider's webhook says it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateDeposit {
    pub id: DepositId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
}

/// A payment provider's verified webhook about a deposit or a withdrawal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settle<Id> {
    pub id: Id,
    /// The provider whose secret signed the webhook.
    pub provider: String,
    pub succeeded: bool,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    /// The webhook's id (`webhook-id`), kept with the outcome.
    pub event_id: String,
}

/// What a withdrawal does when the player has a bonus being wagered
/// (`wallet.open_bonus_withdrawal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpenBonusPolicy {
    Refuse,
    Forfeit,
}

/// A player asks to withdraw from main.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestWithdrawal {
    pub id: WithdrawalId,
    pub player: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub provider: String,
    pub timeout_seconds: u32,
    pub open_bonus: OpenBonusPolicy,
}

/// A seamless-wallet call a game provider makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GameAction {
    Bet,
    Win,
    Rollback,
}

/// The runtime settings a command runs under, resolved by the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub cooldown_hours: u32,
    pub withdrawal_timeout_seconds: u32,
    pub open_bonus: OpenBonusPolicy,
    /// A bet takes bonus before main (`wallet.bet_order` = `bonus_first`).
    pub bonus_first: bool,
    /// Only a bet's bonus part counts toward wagering (`wallet.wagering_counts` = `bonus`).
    pub wagering_bonus_only: bool,
}

impl Terms {
    /// The terms in effect, read through `lookup` (the runtime configuration's value in effect
    /// for a key, `null` when unset).
    pub fn resolve(lookup: impl Fn(&str) -> Value) -> Terms {
        let number =
            |key: &str, default: u32| lookup(key).as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
        let word = |key: &str, yes: &str| lookup(key).as_str() == Some(yes);
        Terms {
            cooldown_hours: number(super::COOLDOWN_KEY, super::DEFAULT_COOLDOWN_HOURS),
            withdrawal_timeout_seconds: number(
                super::WITHDRAWAL_TIMEOUT_KEY,
                super::DEFAULT_WITHDRAWAL_TIMEOUT_SECONDS,
            ),
            open_bonus: if word(super::OPEN_BONUS_WITHDRAWAL_KEY, "forfeit") {
                OpenBonusPolicy::Forfeit
            } else {
                OpenBonusPolicy::Refuse
            },
            bonus_first: word(super::BET_ORDER_KEY, "bonus_first"),
            wagering_bonus_only: word(super::WAGERING_COUNTS_KEY, "bonus"),
        }
    }
}

impl Default for Terms {
    fn default() -> Terms {
        Terms::resolve(|_| Value::Null)
    }
}

/// A bet, win or rollback. `transaction`: the provider's transaction id (unique within the
/// provider); `reference`: the bet a rollback (or a win) names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameCall {
    pub provider: String,
    pub action: GameAction,
    pub transaction: Uuid,
    pub player: String,
    pub round: String,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub reference: Option<Uuid>,
    pub round_closed: bool,
    pub bonus_first: bool,
    pub wagering_bonus_only: bool,
}

/// The operator grants a bonus: bonus_cost → the player's bonus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantBonus {
    pub id: BonusId,
    pub player: String,
    pub amount: Decimal,
    pub wagering_multiplier: Decimal,
    pub expires_at: Timestamp,
}

/// The large commands are boxed, so the sum of every domain's commands stays the ledger's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    UpsertPlayer(Box<UpsertPlayer>),
    UpsertProvider(Box<UpsertProvider>),
    CreateDeposit(Box<CreateDeposit>),
    SettleDeposit(Box<Settle<DepositId>>),
    RequestWithdrawal(Box<RequestWithdrawal>),
    /// The payment provider accepted the payout (2xx).
    MarkWithdrawalSent {
        id: WithdrawalId,
    },
    SettleWithdrawal(Box<Settle<WithdrawalId>>),
    /// Return the money of every withdrawal past its deadline (at most `MAX_DUE_PER_COMMAND`).
    ExpireWithdrawals,
    Game(Box<GameCall>),
    GrantBonus(Box<GrantBonus>),
    ForfeitBonus {
        id: BonusId,
        reason: Option<String>,
    },
    /// Expire every open bonus past its end (at most `MAX_DUE_PER_COMMAND`).
    ExpireBonuses,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::wallet::{
        BET_ORDER_KEY, COOLDOWN_KEY, OPEN_BONUS_WITHDRAWAL_KEY, WAGERING_COUNTS_KEY, WITHDRAWAL_TIMEOUT_KEY,
    };

    #[test]
    fn terms_read_the_runtime_settings_and_their_defaults_when_unset_or_out_of_range() {
        let defaults = Terms {
            cooldown_hours: 24,
            withdrawal_timeout_seconds: 3600,
            open_bonus: OpenBonusPolicy::Refuse,
            bonus_first: false,
            wagering_bonus_only: false,
        };
        assert_eq!(Terms::default(), defaults);
        let set = |key: &str| match key {
            COOLDOWN_KEY => json!(0),
            WITHDRAWAL_TIMEOUT_KEY => json!(60),
            OPEN_BONUS_WITHDRAWAL_KEY => json!("forfeit"),
            BET_ORDER_KEY => json!("bonus_first"),
            WAGERING_COUNTS_KEY => json!("bonus"),
            _ => Value::Null,
        };
        let terms = Terms {
            cooldown_hours: 0,
            withdrawal_timeout_seconds: 60,
            open_bonus: OpenBonusPolicy::Forfeit,
            bonus_first: true,
            wagering_bonus_only: true,
        };
        assert_eq!(Terms::resolve(set), terms);
        // The other words of each setting, and numbers a u32 cannot hold.
        let other = |key: &str| match key {
            COOLDOWN_KEY | WITHDRAWAL_TIMEOUT_KEY => json!(u64::from(u32::MAX) + 1),
            OPEN_BONUS_WITHDRAWAL_KEY => json!("refuse"),
            BET_ORDER_KEY => json!("main_first"),
            _ => json!("all"),
        };
        assert_eq!(Terms::resolve(other), defaults);
    }

    #[test]
    fn a_limit_is_named_by_its_snake_case_key() {
        let names: Vec<String> = LimitKind::ALL.iter().map(LimitKind::to_string).collect();
        assert_eq!(names, ["deposit_day", "deposit_week", "deposit_month", "loss_day", "withdraw_day"]);
        let limits = Limits {
            deposit_day: Some(Decimal::from(1)),
            deposit_week: Some(Decimal::from(2)),
            deposit_month: Some(Decimal::from(3)),
            loss_day: Some(Decimal::from(4)),
            withdraw_day: None,
        };
        let got: Vec<Option<Decimal>> = LimitKind::ALL.into_iter().map(|kind| limits.get(kind)).collect();
        assert_eq!(got, [1, 2, 3, 4].map(|n| Some(Decimal::from(n))).into_iter().chain([None]).collect::<Vec<_>>());
    }
}
