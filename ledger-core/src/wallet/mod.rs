//! The gaming wallet (seed 002): players' main, bonus and locked balances; deposits through a
//! payment provider (an intent, then the provider's signed webhook); withdrawals as a saga whose
//! steps are events; game providers' seamless-wallet callbacks (bet, win, rollback); bonuses with
//! wagering; and responsible gaming (limits that loosen only after a cooldown, self-exclusion).
//!
//! Chart of accounts, opened by the first command that needs them: per player, in its currency,
//! `wallet:{player}:main`, `wallet:{player}:bonus`, `wallet:{player}:locked` (liabilities, no
//! overdraft); per provider and currency `wallet:psp:{provider}:clearing:{C}` (asset) and
//! `wallet:games:{provider}:settlement:{C}` (the stakes of open rounds); per currency
//! `wallet:operator:bonus_cost:{C}` (expense) and `wallet:operator:game_revenue:{C}` (income).

pub mod command;
pub mod decide;
pub mod event;
pub mod movement;
pub mod rejection;
pub mod rows;
pub mod state;

pub use command::{Command, GameAction, Kyc, LimitKind, ProviderKind, Terms};
pub use event::Event;
pub use rejection::Rejection;
pub use state::State;

use serde_json::Value;
use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{AccountId, BonusId, DepositId, Timestamp, TransferId, WithdrawalId};
use crate::money::CurrencyCode;
use crate::settings::{Kind, Segment, Setting};

/// The permissions the wallet's handlers ask for (see `crate::permission`).
pub mod scope {
    use crate::permission::Need;

    /// Operators: players, providers, bonuses.
    pub const ADMIN: Need<'static> = Need::new("wallet", "admin");
    /// The cashier: deposit intents and withdrawal requests, scoped by player.
    pub const PAY: Need<'static> = Need::new("wallet", "pay");
    /// Players' wallets, deposits, withdrawals, rounds, bonuses and statements.
    pub const READ: Need<'static> = Need::read("wallet");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] = &[scope::ADMIN, scope::PAY, scope::READ];

/// The kinds of entity.
pub const PLAYER_KIND: &str = "wallet_player";
pub const PROVIDER_KIND: &str = "wallet_provider";
pub const DEPOSIT_KIND: &str = "wallet_deposit";
pub const WITHDRAWAL_KIND: &str = "wallet_withdrawal";
pub const BONUS_KIND: &str = "wallet_bonus";
pub const GAME_TX_KIND: &str = "wallet_game_tx";

/// At most this many withdrawals time out, or bonuses expire, in one command.
pub const MAX_DUE_PER_COMMAND: usize = 256;

pub const COOLDOWN_KEY: &str = "wallet.limit_cooldown_hours";
pub const WITHDRAWAL_TIMEOUT_KEY: &str = "wallet.withdrawal_timeout_seconds";
pub const OPEN_BONUS_WITHDRAWAL_KEY: &str = "wallet.open_bonus_withdrawal";
pub const BET_ORDER_KEY: &str = "wallet.bet_order";
pub const WAGERING_COUNTS_KEY: &str = "wallet.wagering_counts";
pub const DEFAULT_COOLDOWN_HOURS: u32 = 24;
pub const DEFAULT_WITHDRAWAL_TIMEOUT_SECONDS: u32 = 3600;

/// The runtime settings the wallet's commands run under (`Terms::resolve` reads them).
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: COOLDOWN_KEY,
        kind: Kind::Integer { min: 0, max: 30 * 24 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_COOLDOWN_HOURS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Hours before a looser responsible-gaming limit (or an earlier end of self-exclusion) applies",
    },
    Setting {
        name: WITHDRAWAL_TIMEOUT_KEY,
        kind: Kind::Integer { min: 10, max: 7 * 86_400 },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_WITHDRAWAL_TIMEOUT_SECONDS),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Seconds a withdrawal waits for the payment provider's outcome before its money returns to main",
    },
    Setting {
        name: OPEN_BONUS_WITHDRAWAL_KEY,
        kind: Kind::OneOf(&["refuse", "forfeit"]),
        segment: Segment::Word,
        default: || Value::from("refuse"),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "A withdrawal while a bonus is being wagered: refused (bonus_wagering_open), or the bonus is forfeited",
    },
    Setting {
        name: BET_ORDER_KEY,
        kind: Kind::OneOf(&["main_first", "bonus_first"]),
        segment: Segment::Word,
        default: || Value::from("main_first"),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "Which balance a bet takes first",
    },
    Setting {
        name: WAGERING_COUNTS_KEY,
        kind: Kind::OneOf(&["all", "bonus"]),
        segment: Segment::Word,
        default: || Value::from("all"),
        validate: crate::settings::no_rule,
        permission: crate::config::scope::WRITE,
        description: "What a bet adds to a bonus's wagering: the whole stake, or only its bonus part",
    },
];

/// The namespace of the wallet's derived ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x2c6f_83d1_5a0e_4b97_9e14_d7a2_60b8_c53e);

pub fn player_entity(id: &str) -> EntityRef {
    EntityRef { kind: PLAYER_KIND, id: Uuid::new_v5(&NAMESPACE, format!("player:{id}").as_bytes()) }
}

pub fn provider_entity(id: &str) -> EntityRef {
    EntityRef { kind: PROVIDER_KIND, id: Uuid::new_v5(&NAMESPACE, format!("provider:{id}").as_bytes()) }
}

/// A game provider's transaction (ids are unique within a provider).
pub fn game_tx_entity(provider: &str, transaction: Uuid) -> EntityRef {
    EntityRef {
        kind: GAME_TX_KIND,
        id: Uuid::new_v5(&NAMESPACE, format!("game_tx:{provider}/{transaction}").as_bytes()),
    }
}

// A deposit, a withdrawal and a bonus may be given the same UUID by their callers (and an
// order or a payout request too): their rows' ids are derived per kind, as every entity's
// here, because the seam keeps one row per id.
pub fn deposit_entity(id: DepositId) -> EntityRef {
    EntityRef { kind: DEPOSIT_KIND, id: Uuid::new_v5(&NAMESPACE, format!("deposit:{}", id.0).as_bytes()) }
}

pub fn withdrawal_entity(id: WithdrawalId) -> EntityRef {
    EntityRef { kind: WITHDRAWAL_KIND, id: Uuid::new_v5(&NAMESPACE, format!("withdrawal:{}", id.0).as_bytes()) }
}

pub fn bonus_entity(id: BonusId) -> EntityRef {
    EntityRef { kind: BONUS_KIND, id: Uuid::new_v5(&NAMESPACE, format!("bonus:{}", id.0).as_bytes()) }
}

fn account(code: String) -> (AccountId, String) {
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

/// A player's balances (in the player's one currency).
pub fn main_account(player: &str) -> (AccountId, String) {
    account(format!("wallet:{player}:main"))
}

pub fn bonus_account(player: &str) -> (AccountId, String) {
    account(format!("wallet:{player}:bonus"))
}

pub fn locked_account(player: &str) -> (AccountId, String) {
    account(format!("wallet:{player}:locked"))
}

/// A payment provider's clearing account in a currency: what it holds for the operator.
pub fn clearing_account(provider: &str, currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("wallet:psp:{provider}:clearing:{currency}"))
}

/// A game provider's settlement account in a currency: the stakes of its open rounds.
pub fn settlement_account(provider: &str, currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("wallet:games:{provider}:settlement:{currency}"))
}

pub fn bonus_cost_account(currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("wallet:operator:bonus_cost:{currency}"))
}

pub fn game_revenue_account(currency: &CurrencyCode) -> (AccountId, String) {
    account(format!("wallet:operator:game_revenue:{currency}"))
}

/// The transfers a wallet entity makes, derived from its id and a purpose, so a retry of the
/// command that makes one finds it.
pub fn transfer_of(entity: EntityRef, purpose: &str) -> TransferId {
    TransferId(Uuid::new_v5(&entity.id, purpose.as_bytes()))
}

/// The transfer that closes a round: its net moves from settlement to game revenue.
pub fn round_transfer(provider: &str, round: &str) -> TransferId {
    TransferId(Uuid::new_v5(&NAMESPACE, format!("round:{provider}/{round}").as_bytes()))
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        crate::postings::execute(state, |state, postings| decide::decide(state, postings, self, now))
    }

    /// The transfers the command makes or reads, by their derived ids (a store loads those it
    /// evicted before deciding). The expiry jobs find theirs in memory.
    fn transfer_ids(&self) -> Vec<TransferId> {
        match self {
            Command::SettleDeposit(c) => vec![transfer_of(deposit_entity(c.id), "deposit")],
            Command::RequestWithdrawal(c) => vec![transfer_of(withdrawal_entity(c.id), "lock")],
            Command::SettleWithdrawal(c) => {
                let w = withdrawal_entity(c.id);
                vec![transfer_of(w, "lock"), transfer_of(w, "settle")]
            }
            Command::Game(c) => {
                let mut ids = vec![
                    transfer_of(game_tx_entity(&c.provider, c.transaction), "posting"),
                    round_transfer(&c.provider, &c.round),
                ];
                if let Some(reference) = c.reference {
                    let bet = game_tx_entity(&c.provider, reference);
                    ids.extend([transfer_of(bet, "posting"), transfer_of(bet, "reversal")]);
                }
                ids
            }
            Command::GrantBonus(c) => {
                vec![transfer_of(bonus_entity(c.id), "grant"), transfer_of(bonus_entity(c.id), "close")]
            }
            Command::ForfeitBonus { id, .. } => vec![transfer_of(bonus_entity(*id), "close")],
            Command::UpsertPlayer(_)
            | Command::UpsertProvider(_)
            | Command::CreateDeposit(_)
            | Command::MarkWithdrawalSent { .. }
            | Command::ExpireWithdrawals
            | Command::ExpireBonuses => Vec::new(),
        }
    }

    fn answer(&self) -> Option<Answer> {
        let (entity, replay) = match self {
            Command::UpsertPlayer(c) => (player_entity(&c.id), Replay::Last),
            Command::UpsertProvider(c) => (provider_entity(&c.id), Replay::Last),
            Command::CreateDeposit(c) => (deposit_entity(c.id), Replay::First),
            Command::SettleDeposit(c) => (deposit_entity(c.id), Replay::Last),
            Command::RequestWithdrawal(c) => (withdrawal_entity(c.id), Replay::First),
            Command::MarkWithdrawalSent { id } => (withdrawal_entity(*id), Replay::Last),
            Command::SettleWithdrawal(c) => (withdrawal_entity(c.id), Replay::Last),
            Command::Game(c) => (game_tx_entity(&c.provider, c.transaction), Replay::First),
            Command::GrantBonus(c) => (bonus_entity(c.id), Replay::First),
            Command::ForfeitBonus { id, .. } => (bonus_entity(*id), Replay::Last),
            Command::ExpireWithdrawals | Command::ExpireBonuses => return None,
        };
        Some(Answer { subject: Subject::Entity(entity), replay })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_cooldown_is_0_to_30_days_of_hours_and_the_withdrawal_timeout_10_seconds_to_7_days() {
        for (key, min, max) in [(COOLDOWN_KEY, 0, 30 * 24), (WITHDRAWAL_TIMEOUT_KEY, 10, 7 * 86_400)] {
            let setting = SETTINGS.iter().find(|s| s.name == key).unwrap();
            for ok in [min, max] {
                assert!(setting.check(&json!(ok)).is_ok(), "{key} {ok}");
            }
            for refused in [min - 1, max + 1] {
                assert!(setting.check(&json!(refused)).is_err(), "{key} {refused}");
            }
        }
    }
}
