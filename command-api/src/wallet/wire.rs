//! Request and response bodies of the wallet's endpoints. Amounts and limits are decimal strings;
//! times are RFC 3339; a provider's secret is taken once and never shown.

use ledger_core::Timestamp;
use ledger_core::wallet::command::{Kyc, ProviderKind};
use ledger_core::wallet::event::{Timed, TimedLimits};
use ledger_core::wallet::state::{
    Bonus, BonusStatus, Deposit, DepositStatus, Player, Provider, Withdrawal, WithdrawalStatus,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ledger::wire::WireAmount;
use crate::rfc3339;

/// How far a player's identity is verified.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireKyc {
    None,
    Basic,
    Full,
}

impl From<WireKyc> for Kyc {
    fn from(k: WireKyc) -> Kyc {
        match k {
            WireKyc::None => Kyc::None,
            WireKyc::Basic => Kyc::Basic,
            WireKyc::Full => Kyc::Full,
        }
    }
}

impl From<Kyc> for WireKyc {
    fn from(k: Kyc) -> WireKyc {
        match k {
            Kyc::None => WireKyc::None,
            Kyc::Basic => WireKyc::Basic,
            Kyc::Full => WireKyc::Full,
        }
    }
}

/// The responsible-gaming limits a player asks for; a missing one is no limit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    pub deposit_day: Option<WireAmount>,
    pub deposit_week: Option<WireAmount>,
    pub deposit_month: Option<WireAmount>,
    pub loss_day: Option<WireAmount>,
    pub withdraw_day: Option<WireAmount>,
}

/// A player as the operator states it. A stricter limit (or a later end of self-exclusion)
/// applies at once; a looser one after `wallet.limit_cooldown_hours`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerRequest {
    /// The player's currency; it cannot change (`currency_fixed`).
    #[schema(example = "EUR")]
    pub currency: String,
    pub kyc: WireKyc,
    /// Deposits and bets are refused until then (RFC 3339).
    #[schema(format = DateTime, example = "2026-12-31T00:00:00Z")]
    pub self_excluded_until: Option<String>,
    #[serde(default)]
    pub limits: LimitsRequest,
}

/// A looser value waiting for its time.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingBody {
    /// The value it becomes (none: no limit, or no self-exclusion).
    pub value: Option<String>,
    /// When it applies (RFC 3339).
    pub from: String,
}

/// A value in force, and the looser one waiting, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimedBody {
    pub value: Option<String>,
    pub pending: Option<PendingBody>,
}

impl TimedBody {
    fn of<T: Copy>(t: &Timed<T>, now: Timestamp, text: impl Fn(T) -> String) -> TimedBody {
        let t = t.settled(now);
        TimedBody {
            value: t.value.map(&text),
            pending: t.pending.map(|p| PendingBody { value: p.value.map(&text), from: rfc3339(p.from) }),
        }
    }
}

/// The limits in force at the time of the answer, and those pending.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsBody {
    pub deposit_day: TimedBody,
    pub deposit_week: TimedBody,
    pub deposit_month: TimedBody,
    pub loss_day: TimedBody,
    pub withdraw_day: TimedBody,
}

impl LimitsBody {
    fn of(l: &TimedLimits, now: Timestamp) -> LimitsBody {
        let one = |t: &Timed<Decimal>| TimedBody::of(t, now, |d| d.to_string());
        LimitsBody {
            deposit_day: one(&l.deposit_day),
            deposit_week: one(&l.deposit_week),
            deposit_month: one(&l.deposit_month),
            loss_day: one(&l.loss_day),
            withdraw_day: one(&l.withdraw_day),
        }
    }
}

/// A player's balances: what each account holds, and what may be withdrawn (main).
#[derive(Debug, Serialize, ToSchema)]
pub struct BalancesBody {
    #[schema(example = "100.00")]
    pub main: String,
    pub bonus: String,
    pub locked: String,
    pub withdrawable: String,
    /// The accounts' ids in the ledger.
    pub main_account: Uuid,
    pub bonus_account: Uuid,
    pub locked_account: Uuid,
}

/// A player's wallet as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerBody {
    pub id: String,
    pub currency: String,
    pub kyc: WireKyc,
    pub self_excluded_until: TimedBody,
    pub limits: LimitsBody,
    pub balances: BalancesBody,
    /// The bonus being wagered, if any.
    pub bonus: Option<BonusBody>,
    pub version: u32,
    /// The position of the player's latest event.
    pub position: i64,
}

impl PlayerBody {
    pub fn new(
        p: &Player,
        balances: BalancesBody,
        bonus: Option<BonusBody>,
        position: i64,
        now: Timestamp,
    ) -> PlayerBody {
        PlayerBody {
            id: p.id.clone(),
            currency: p.currency.to_string(),
            kyc: p.kyc.into(),
            self_excluded_until: TimedBody::of(&p.self_exclusion, now, rfc3339),
            limits: LimitsBody::of(&p.limits, now),
            balances,
            bonus,
            version: p.version,
            position,
        }
    }
}

/// What a provider is to the wallet.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireProviderKind {
    Payments,
    Games,
}

impl From<WireProviderKind> for ProviderKind {
    fn from(k: WireProviderKind) -> ProviderKind {
        match k {
            WireProviderKind::Payments => ProviderKind::Payments,
            WireProviderKind::Games => ProviderKind::Games,
        }
    }
}

/// A payment gateway or a game aggregator, with the secret its webhooks and callbacks are
/// signed with (Standard Webhooks).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    pub kind: WireProviderKind,
    /// `whsec_` and the base64 of 24 to 64 bytes; stored encrypted, never shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", pattern = "^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")]
    pub secret: String,
    /// Where a payment provider takes payouts (`POST {base_url}/payouts`) and serves its payment
    /// pages (`{base_url}/pay/{deposit_id}`).
    #[schema(example = "http://127.0.0.1:8090", pattern = "^https?://[^\\s]{1,2040}$")]
    pub base_url: Option<String>,
}

/// A provider as it stands (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderBody {
    pub id: String,
    pub kind: WireProviderKind,
    pub base_url: Option<String>,
    pub version: u32,
    pub position: i64,
}

impl ProviderBody {
    pub fn new(p: &Provider, position: i64) -> ProviderBody {
        let kind = match p.kind {
            ProviderKind::Payments => WireProviderKind::Payments,
            ProviderKind::Games => WireProviderKind::Games,
        };
        ProviderBody { id: p.id.clone(), kind, base_url: p.base_url.clone(), version: p.version, position }
    }
}

/// A deposit or a withdrawal asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The payment's id: a retry with the same body answers the original.
    pub id: Uuid,
    #[schema(example = "player-17")]
    pub player_id: String,
    pub amount: WireAmount,
    #[schema(example = "EUR")]
    pub currency: String,
    /// The payment provider's id.
    #[schema(example = "psp")]
    pub provider: String,
}

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireDepositStatus {
    Pending,
    Succeeded,
    Failed,
}

/// A deposit: an intent until the provider's webhook settles it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositBody {
    pub id: Uuid,
    pub player_id: String,
    #[schema(example = "25.00")]
    pub amount: String,
    pub currency: String,
    pub provider: String,
    pub status: WireDepositStatus,
    /// The provider's payment page for this deposit, when the provider has a base URL:
    /// `{base_url}/pay/{id}?amount=…&currency=…`.
    pub redirect_url: Option<String>,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u32,
    pub position: i64,
}

impl DepositBody {
    pub fn new(d: &Deposit, redirect_url: Option<String>, position: i64) -> DepositBody {
        DepositBody {
            id: d.id.0,
            player_id: d.player.clone(),
            amount: d.amount.to_string(),
            currency: d.currency.to_string(),
            provider: d.provider.clone(),
            status: match d.status {
                DepositStatus::Pending => WireDepositStatus::Pending,
                DepositStatus::Succeeded => WireDepositStatus::Succeeded,
                DepositStatus::Failed => WireDepositStatus::Failed,
            },
            redirect_url,
            provider_reference: d.provider_reference.clone(),
            reason: d.reason.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.at),
            version: d.version,
            position,
        }
    }
}

/// Where a withdrawal's saga stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireWithdrawalStatus {
    Locked,
    Sent,
    Succeeded,
    Failed,
    TimedOut,
}

fn withdrawal_status(s: WithdrawalStatus) -> WireWithdrawalStatus {
    match s {
        WithdrawalStatus::Locked => WireWithdrawalStatus::Locked,
        WithdrawalStatus::Sent => WireWithdrawalStatus::Sent,
        WithdrawalStatus::Succeeded => WireWithdrawalStatus::Succeeded,
        WithdrawalStatus::Failed => WireWithdrawalStatus::Failed,
        WithdrawalStatus::TimedOut => WireWithdrawalStatus::TimedOut,
    }
}

/// A step of a withdrawal's saga, as the log recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepBody {
    pub status: WireWithdrawalStatus,
    /// The transfer that moved its money, if it moved any.
    pub transfer: Option<Uuid>,
    pub at: String,
}

/// A withdrawal and each step of its saga.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalBody {
    pub id: Uuid,
    pub player_id: String,
    pub amount: String,
    pub currency: String,
    pub provider: String,
    pub status: WireWithdrawalStatus,
    /// When the money returns to main if the provider has not answered.
    pub deadline: String,
    pub steps: Vec<StepBody>,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
    pub created_at: String,
    pub version: u32,
    pub position: i64,
}

impl WithdrawalBody {
    pub fn new(w: &Withdrawal, position: i64) -> WithdrawalBody {
        WithdrawalBody {
            id: w.id.0,
            player_id: w.player.clone(),
            amount: w.amount.to_string(),
            currency: w.currency.to_string(),
            provider: w.provider.clone(),
            status: withdrawal_status(w.status),
            deadline: rfc3339(w.deadline),
            steps: w
                .steps
                .iter()
                .map(|s| StepBody {
                    status: withdrawal_status(s.status),
                    transfer: s.transfer.map(|t| t.0),
                    at: rfc3339(s.at),
                })
                .collect(),
            provider_reference: w.provider_reference.clone(),
            reason: w.reason.clone(),
            created_at: rfc3339(w.created_at),
            version: w.version,
            position,
        }
    }
}

/// A bonus to grant: bonus_cost → the player's bonus.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusRequest {
    pub id: Uuid,
    pub amount: WireAmount,
    /// Its bets must add up to amount × this before it converts to main (0 to 1000, at most 2
    /// decimals).
    #[schema(example = "30")]
    pub wagering_multiplier: WireAmount,
    /// RFC 3339; what is left goes back to bonus_cost then.
    #[schema(format = DateTime, example = "2026-12-31T00:00:00Z")]
    pub expires_at: String,
}

/// Why a bonus is forfeited.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForfeitRequest {
    pub reason: Option<String>,
}

/// Where a bonus stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireBonusStatus {
    Active,
    Converted,
    Expired,
    Forfeited,
}

/// A bonus and its wagering.
#[derive(Debug, Serialize, ToSchema)]
pub struct BonusBody {
    pub id: Uuid,
    pub player_id: String,
    pub amount: String,
    pub currency: String,
    pub wagering_multiplier: String,
    pub required: String,
    pub wagered: String,
    pub status: WireBonusStatus,
    pub expires_at: String,
    /// What its end moved (to main, or back to bonus_cost).
    pub closed_amount: Option<String>,
    pub reason: Option<String>,
    pub version: u32,
}

impl BonusBody {
    pub fn new(b: &Bonus) -> BonusBody {
        BonusBody {
            id: b.id.0,
            player_id: b.player.clone(),
            amount: b.amount.to_string(),
            currency: b.currency.to_string(),
            wagering_multiplier: b.wagering_multiplier.to_string(),
            required: b.required.to_string(),
            wagered: b.wagered.to_string(),
            status: match b.status {
                BonusStatus::Active => WireBonusStatus::Active,
                BonusStatus::Converted => WireBonusStatus::Converted,
                BonusStatus::Expired => WireBonusStatus::Expired,
                BonusStatus::Forfeited => WireBonusStatus::Forfeited,
            },
            expires_at: rfc3339(b.expires_at),
            closed_amount: b.closed_amount.map(|a| a.to_string()),
            reason: b.reason.clone(),
            version: b.version,
        }
    }
}

/// What a payment provider's webhook says happened.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
pub enum PaymentEventType {
    #[serde(rename = "deposit.succeeded")]
    DepositSucceeded,
    #[serde(rename = "deposit.failed")]
    DepositFailed,
    #[serde(rename = "withdrawal.succeeded")]
    WithdrawalSucceeded,
    #[serde(rename = "withdrawal.failed")]
    WithdrawalFailed,
}

/// The payment the webhook is about: `id` is the engine's deposit or withdrawal id.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentEventData {
    pub id: Uuid,
    pub amount: WireAmount,
    pub currency: String,
    pub provider_reference: Option<String>,
    pub reason: Option<String>,
}

/// A payment provider's webhook, signed with its secret (Standard Webhooks headers).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentEvent {
    pub r#type: PaymentEventType,
    /// When the provider says it happened (RFC 3339), as sent.
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: PaymentEventData,
}

/// How the engine took a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `accepted` (recorded, or already recorded the same way).
    pub status: String,
    /// The payment as it stands.
    pub id: Uuid,
    pub payment_status: String,
}

/// What a game provider's call asks.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GameActionPath {
    Balance,
    Bet,
    Win,
    Rollback,
}

/// A seamless-wallet call of a game provider. `balance` needs only `request_uuid`,
/// `player_id` (and optionally `currency`); `bet`, `win` and `rollback` need the rest
/// (`reference_transaction_uuid` names a rollback's bet).
#[derive(Debug, Deserialize, ToSchema)]
pub struct GameRequest {
    pub request_uuid: Uuid,
    pub transaction_uuid: Option<Uuid>,
    pub player_id: String,
    pub round: Option<String>,
    pub amount: Option<WireAmount>,
    pub currency: Option<String>,
    pub reference_transaction_uuid: Option<Uuid>,
    #[serde(default)]
    pub round_closed: bool,
}

/// The answer to a game provider, always HTTP 200 once its signature is verified: `OK` or a
/// code (`INSUFFICIENT_FUNDS`, `DUPLICATE_TRANSACTION`, `TRANSACTION_NOT_FOUND`,
/// `TRANSACTION_ROLLED_BACK`, `LIMIT_EXCEEDED`, `SELF_EXCLUDED`, `INVALID_REQUEST`,
/// `ROLLBACK_AFTER_WIN`), with the balances when the player is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct GameAnswer {
    #[schema(example = "OK")]
    pub status: &'static str,
    /// Main available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bonus_balance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub request_uuid: Uuid,
}
