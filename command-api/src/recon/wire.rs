//! Request and response bodies of the reconciliation's endpoints. Amounts are decimal strings
//! at the provider's currency's scale; times are RFC 3339.

use ledger_core::recon::Direction;
use ledger_core::recon::state::{Movement, MovementStatus, Provider};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ledger::wire::WireAmount;

/// A payment provider to create or change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconProviderRequest {
    /// 1 to 128 characters, no control characters (else `invalid_name`).
    #[schema(
        example = "Provider A",
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// Its accounts' currency; it cannot change (`currency_fixed`).
    #[schema(example = "EUR")]
    pub currency: String,
    /// Where its integration answers (`/balance`, `/statement`, `/movements`): `http://` or `https://`.
    #[schema(example = "https://psp.example/v1", min_length = 1, max_length = 2048, pattern = "^https?://[^\\s]*$")]
    pub base_url: String,
    /// The largest difference a reconciliation accepts as matched: a decimal string, zero or
    /// more, at the currency's scale (else `invalid_tolerance`).
    #[schema(example = "0.50", pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub tolerance: String,
}

/// A provider's balances as the ledger holds them now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconProviderBalances {
    /// `recon:{id}:transactional`: the players' money the provider holds.
    pub transactional: String,
    /// What of it is not held by a pending movement.
    pub transactional_available: String,
    /// `recon:{id}:operational`: the operator's own money the provider holds.
    pub operational: String,
    /// The players' balances attributed to the provider (`metadata.provider` on liability accounts).
    pub players: String,
    /// `transactional − players`: negative means the players' money is short.
    pub difference: String,
    pub transactional_account: Uuid,
    pub operational_account: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconProviderBody {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub base_url: String,
    pub tolerance: String,
    pub balances: ReconProviderBalances,
    pub version: u32,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The position of its latest event.
    pub position: i64,
}

impl ReconProviderBody {
    pub fn new(p: &Provider, balances: ReconProviderBalances, position: i64) -> ReconProviderBody {
        ReconProviderBody {
            id: p.id.clone(),
            name: p.name.clone(),
            currency: p.currency.to_string(),
            base_url: p.base_url.clone(),
            tolerance: p.tolerance.to_string(),
            balances,
            version: p.version,
            created_at: p.created_at.rfc3339(),
            updated_at: p.at.rfc3339(),
            position,
        }
    }
}

/// Every provider, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconProviderList {
    pub providers: Vec<ReconProviderBody>,
}

/// Which way a movement goes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireDirection {
    ToOperational,
    ToTransactional,
}

impl From<WireDirection> for Direction {
    fn from(d: WireDirection) -> Direction {
        match d {
            WireDirection::ToOperational => Direction::ToOperational,
            WireDirection::ToTransactional => Direction::ToTransactional,
        }
    }
}

impl From<Direction> for WireDirection {
    fn from(d: Direction) -> WireDirection {
        match d {
            Direction::ToOperational => WireDirection::ToOperational,
            Direction::ToTransactional => WireDirection::ToTransactional,
        }
    }
}

/// A fund movement asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovementRequest {
    /// The movement's id: a retry with the same body answers the original (`movement_exists`
    /// with another body).
    pub id: Uuid,
    #[schema(example = "psp-a")]
    pub provider: String,
    pub direction: WireDirection,
    /// In the provider's currency.
    pub amount: WireAmount,
    #[schema(example = "weekly sweep of the operator's revenue")]
    pub reason: String,
}

/// Where a movement stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireMovementStatus {
    /// Held; the provider has not answered yet (or is being asked again).
    Pending,
    Succeeded,
    /// The provider refused: `status_reason` says why. Nothing moved.
    Refused,
    /// Every call failed: `status_reason` is the last error. Nothing moved.
    Failed,
}

/// One call to the provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    pub attempt: u32,
    /// `error` (tried again), `succeeded`, `refused`, or `failed` (the last error).
    pub outcome: String,
    pub detail: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementBody {
    pub id: Uuid,
    pub provider: String,
    pub direction: WireDirection,
    pub amount: String,
    pub currency: String,
    pub reason: String,
    pub status: WireMovementStatus,
    /// The provider's reason for a refusal, or the last error of a failed movement.
    pub status_reason: Option<String>,
    /// The ledger's pending transfer holding the amount.
    pub transfer_id: Uuid,
    /// The transactional account's available balance, and the players' balances, when the
    /// movement was checked against the segregation rule.
    pub transactional_before: String,
    pub players: String,
    pub attempts: Vec<AttemptBody>,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u32,
    pub position: i64,
}

impl MovementBody {
    pub fn new(m: &Movement, position: i64) -> MovementBody {
        let status = match m.status {
            MovementStatus::Pending => WireMovementStatus::Pending,
            MovementStatus::Succeeded => WireMovementStatus::Succeeded,
            MovementStatus::Refused => WireMovementStatus::Refused,
            MovementStatus::Failed => WireMovementStatus::Failed,
        };
        let attempts = m
            .attempts
            .iter()
            .map(|a| AttemptBody {
                attempt: a.attempt,
                outcome: a.outcome.clone(),
                detail: a.detail.clone(),
                at: a.at.rfc3339(),
            })
            .collect();
        MovementBody {
            id: m.id.0,
            provider: m.provider.clone(),
            direction: m.direction.into(),
            amount: m.amount.to_string(),
            currency: m.currency.to_string(),
            reason: m.reason.clone(),
            status,
            status_reason: m.status_reason.clone(),
            transfer_id: m.transfer.0,
            transactional_before: m.transactional.to_string(),
            players: m.players.to_string(),
            attempts,
            next_attempt_at: m.next_attempt_at.map(|t| t.rfc3339()),
            created_at: m.created_at.rfc3339(),
            updated_at: m.at.rfc3339(),
            version: m.version,
            position,
        }
    }
}

/// A provider's movements, newest first (at most 1000).
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementList {
    pub movements: Vec<MovementBody>,
}
