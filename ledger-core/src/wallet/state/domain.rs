//! The wallet as a domain of the core: what each event changes (`apply`), whom it touches, and
//! the entity rows the store keeps (and rebuilds the state from).

use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use super::*;
use crate::domain::{DomainState, EntityRef, EntityRow, Subject, Touched, Typed};
use crate::money::Currencies;

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] =
        &[PLAYER_KIND, PROVIDER_KIND, DEPOSIT_KIND, WITHDRAWAL_KIND, BONUS_KIND, GAME_TX_KIND];

    const SETTINGS: &'static [crate::settings::Setting] = crate::wallet::SETTINGS;

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::PlayerUpserted(e) => {
                let key = player_entity(&e.id).id;
                if let Some(p) = self.players.get_mut(&key) {
                    p.kyc = e.kyc;
                    p.self_exclusion = e.self_exclusion;
                    p.limits = e.limits;
                    p.at = e.at;
                    p.version += 1;
                } else {
                    let player = Player {
                        id: e.id.clone(),
                        currency: e.currency.clone(),
                        kyc: e.kyc,
                        self_exclusion: e.self_exclusion,
                        limits: e.limits,
                        counters: Counters::default(),
                        bonus: None,
                        created_at: e.at,
                        at: e.at,
                        version: 1,
                    };
                    self.players.insert(key, player);
                }
            }
            Event::ProviderUpserted(e) => {
                let key = provider_entity(&e.id).id;
                let version = self.providers.get(&key).map_or(0, |p| p.version) + 1;
                let provider = Provider {
                    id: e.id.clone(),
                    kind: e.kind,
                    secret: e.secret.clone(),
                    base_url: e.base_url.clone(),
                    at: e.at,
                    version,
                };
                self.providers.insert(key, provider);
            }
            Event::DepositCreated(e) => {
                let counters = &mut self.player_mut(&e.player).counters;
                for kind in DEPOSIT_LIMITS {
                    counters.add(kind, e.at, e.amount);
                }
                let deposit = Deposit {
                    id: e.id,
                    player: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.clone(),
                    provider: e.provider.clone(),
                    status: DepositStatus::Pending,
                    provider_reference: None,
                    reason: None,
                    event_id: None,
                    transfer: None,
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                };
                self.row_ids.insert(deposit_entity(e.id).id, e.id.0);
                assert!(self.deposits.insert(e.id, deposit).is_none(), "deposit {} made twice", e.id);
            }
            Event::DepositSucceeded(e) | Event::DepositFailed(e) => {
                let failed = matches!(event, Event::DepositFailed(_));
                let d = self.deposits.get_mut(&e.id).expect("events name deposits in memory");
                d.status = if failed { DepositStatus::Failed } else { DepositStatus::Succeeded };
                d.provider_reference.clone_from(&e.provider_reference);
                d.reason.clone_from(&e.reason);
                d.event_id.clone_from(&e.event_id);
                d.transfer = e.transfer;
                d.at = e.at;
                d.version += 1;
                if failed {
                    let (player, created_at, amount) = (d.player.clone(), d.created_at, d.amount);
                    let counters = &mut self.player_mut(&player).counters;
                    for kind in DEPOSIT_LIMITS {
                        counters.take_back(kind, created_at, amount);
                    }
                }
            }
            Event::WithdrawalRequested(e) => {
                self.player_mut(&e.player).counters.add(LimitKind::WithdrawDay, e.at, e.amount);
                self.insert_withdrawal(Withdrawal {
                    id: e.id,
                    player: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.clone(),
                    provider: e.provider.clone(),
                    status: WithdrawalStatus::Locked,
                    deadline: e.deadline,
                    steps: vec![Step { status: WithdrawalStatus::Locked, transfer: Some(e.transfer), at: e.at }],
                    provider_reference: None,
                    reason: None,
                    event_id: None,
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                });
            }
            Event::WithdrawalSent(e) => {
                self.withdrawal_step(e, WithdrawalStatus::Sent);
            }
            Event::WithdrawalSucceeded(e) => {
                self.withdrawal_step(e, WithdrawalStatus::Succeeded);
            }
            Event::WithdrawalFailed(e) | Event::WithdrawalTimedOut(e) => {
                let status = if matches!(event, Event::WithdrawalFailed(_)) {
                    WithdrawalStatus::Failed
                } else {
                    WithdrawalStatus::TimedOut
                };
                let w = self.withdrawal_step(e, status);
                let (player, created_at, amount) = (w.player.clone(), w.created_at, w.amount);
                self.player_mut(&player).counters.take_back(LimitKind::WithdrawDay, created_at, amount);
            }
            Event::BetPlaced(e) => {
                self.player_mut(&e.player).counters.add(LimitKind::LossDay, e.at, e.amount);
                self.wager(e.wagering, Decimal::ONE);
                self.insert_transaction(GameTransaction::of(TxKind::Bet, e));
            }
            Event::WinPaid(e) => {
                self.player_mut(&e.player).counters.add(LimitKind::LossDay, e.at, -e.amount);
                self.insert_transaction(GameTransaction::of(TxKind::Win, e));
            }
            Event::RollbackRecorded(e) => {
                self.insert_transaction(GameTransaction::of(TxKind::Rollback, e));
            }
            Event::BetRolledBack(e) => {
                let key = game_tx_entity(&e.provider, e.transaction).id;
                let bet = self.transactions.get_mut(&key).expect("events name transactions in memory");
                bet.rolled_back_by = Some(e.by);
                bet.reversal = e.transfer;
                bet.at = e.at;
                bet.version += 1;
                let (player, amount, main, bonus) = (bet.player.clone(), bet.amount, bet.main, bet.bonus);
                let round = self.rounds.get_mut(&(e.provider.clone(), bet.round.clone())).expect("bets have rounds");
                round.main -= main;
                round.bonus -= bonus;
                self.player_mut(&player).counters.add(LimitKind::LossDay, e.at, -amount);
                self.wager(e.wagering, Decimal::NEGATIVE_ONE);
            }
            Event::BetTombstoned(e) => {
                self.insert_transaction(GameTransaction {
                    provider: e.provider.clone(),
                    transaction: e.transaction,
                    kind: TxKind::Tombstone,
                    player: e.player.clone(),
                    round: e.round.clone(),
                    amount: Decimal::ZERO,
                    currency: None,
                    reference: None,
                    round_closed: false,
                    main: Decimal::ZERO,
                    bonus: Decimal::ZERO,
                    wagering: None,
                    transfer: None,
                    round_transfer: None,
                    balance: Decimal::ZERO,
                    bonus_balance: Decimal::ZERO,
                    rolled_back_by: Some(e.by),
                    reversal: None,
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                });
            }
            Event::BonusGranted(e) => {
                self.player_mut(&e.player).bonus = Some(e.id);
                self.insert_bonus(Bonus {
                    id: e.id,
                    player: e.player.clone(),
                    amount: e.amount,
                    currency: e.currency.clone(),
                    wagering_multiplier: e.wagering_multiplier,
                    required: e.required,
                    wagered: Decimal::ZERO,
                    status: BonusStatus::Active,
                    expires_at: e.expires_at,
                    closed_amount: None,
                    reason: None,
                    transfer: e.transfer,
                    close_transfer: None,
                    created_at: e.at,
                    at: e.at,
                    version: 1,
                });
            }
            Event::BonusConverted(e) => self.close_bonus(e, BonusStatus::Converted),
            Event::BonusExpired(e) => self.close_bonus(e, BonusStatus::Expired),
            Event::BonusForfeited(e) => self.close_bonus(e, BonusStatus::Forfeited),
        }
    }

    /// Deposits, withdrawals, bets, wins, rollbacks and bonuses change their player's counters
    /// (or its open bonus); a bet or a rollback changes the bonus it counted toward.
    fn touched(&self, event: &Event, out: &mut Vec<Touched>) {
        let mut player = |id: &str| out.push(Touched { subject: Subject::Entity(player_entity(id)), moves: false });
        let wagering = match event {
            Event::DepositCreated(e) => {
                player(&e.player);
                None
            }
            Event::DepositFailed(e) => {
                if let Some(d) = self.deposit(e.id) {
                    player(&d.player);
                }
                None
            }
            Event::WithdrawalRequested(e) => {
                player(&e.player);
                None
            }
            Event::WithdrawalFailed(e) | Event::WithdrawalTimedOut(e) => {
                if let Some(w) = self.withdrawal(e.id) {
                    player(&w.player);
                }
                None
            }
            Event::BetPlaced(e) | Event::WinPaid(e) => {
                player(&e.player);
                e.wagering
            }
            Event::BetRolledBack(e) => {
                if let Some(t) = self.transaction(&e.provider, e.transaction) {
                    player(&t.player);
                }
                e.wagering
            }
            Event::BonusGranted(e) => {
                player(&e.player);
                None
            }
            Event::BonusConverted(e) | Event::BonusExpired(e) | Event::BonusForfeited(e) => {
                if let Some(b) = self.bonus(e.id) {
                    player(&b.player);
                }
                None
            }
            _ => None,
        };
        if let Some(w) = wagering
            && self.bonuses.contains_key(&w.bonus)
        {
            out.push(Touched { subject: Subject::Entity(bonus_entity(w.bonus)), moves: false });
        }
    }

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            PLAYER_KIND => self.players.get(&entity.id).map(player_row),
            PROVIDER_KIND => self.providers.get(&entity.id).map(provider_row),
            DEPOSIT_KIND => self.deposits.get(&DepositId(*self.row_ids.get(&entity.id)?)).map(deposit_row),
            WITHDRAWAL_KIND => self.withdrawals.get(&WithdrawalId(*self.row_ids.get(&entity.id)?)).map(withdrawal_row),
            BONUS_KIND => self.bonuses.get(&BonusId(*self.row_ids.get(&entity.id)?)).map(bonus_row),
            _ => self.transactions.get(&entity.id).map(transaction_row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        let mut all: Vec<EntityRow> = self.players.values().map(player_row).collect();
        all.extend(self.providers.values().map(provider_row));
        all.extend(self.deposits.values().map(deposit_row));
        all.extend(self.withdrawals.values().map(withdrawal_row));
        all.extend(self.bonuses.values().map(bonus_row));
        all.extend(self.transactions.values().map(transaction_row));
        all
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let mismatch = || format!("row {} does not match the {} it holds", stored.key, stored.kind);
        let check = |entity: EntityRef, key: String, version: u32| {
            (entity.id == stored.id && key == stored.key && version == stored.version)
                .then_some(())
                .ok_or_else(mismatch)
        };
        match stored.kind.as_str() {
            PLAYER_KIND => {
                let p: Player = stored.parse().map_err(|e| e.to_string())?;
                check(player_entity(&p.id), p.id.clone(), p.version)?;
                self.players.insert(stored.id, p);
            }
            PROVIDER_KIND => {
                let p: Provider = stored.parse().map_err(|e| e.to_string())?;
                check(provider_entity(&p.id), p.id.clone(), p.version)?;
                self.providers.insert(stored.id, p);
            }
            DEPOSIT_KIND => {
                let d: Deposit = stored.parse().map_err(|e| e.to_string())?;
                check(deposit_entity(d.id), d.id.to_string(), d.version)?;
                self.row_ids.insert(deposit_entity(d.id).id, d.id.0);
                self.deposits.insert(d.id, d);
            }
            WITHDRAWAL_KIND => {
                let w: Withdrawal = stored.parse().map_err(|e| e.to_string())?;
                check(withdrawal_entity(w.id), w.id.to_string(), w.version)?;
                self.insert_withdrawal(w);
            }
            BONUS_KIND => {
                let b: Bonus = stored.parse().map_err(|e| e.to_string())?;
                check(bonus_entity(b.id), b.id.to_string(), b.version)?;
                self.insert_bonus(b);
            }
            _ => {
                let t: GameTransaction = stored.parse().map_err(|e| e.to_string())?;
                check(game_tx_entity(&t.provider, t.transaction), transaction_key(&t), t.version)?;
                self.insert_transaction(t);
            }
        }
        Ok(())
    }
}

/// A game transaction's natural key: `{provider}/{transaction}`.
fn transaction_key(t: &GameTransaction) -> String {
    format!("{}/{}", t.provider, t.transaction)
}

fn row<T: Serialize + Clone + Send + Sync + 'static>(
    kind: &str,
    id: Uuid,
    key: String,
    version: u32,
    value: &T,
) -> EntityRow {
    EntityRow {
        kind: kind.to_owned(),
        id,
        key,
        version,
        // Structs of strings, numbers and ids always serialize.
        state: serde_json::to_string(value).expect("wallet entities serialize").into(),
        typed: Typed::of(value.clone()),
    }
}

fn player_row(p: &Player) -> EntityRow {
    row(PLAYER_KIND, player_entity(&p.id).id, p.id.clone(), p.version, p)
}

fn provider_row(p: &Provider) -> EntityRow {
    row(PROVIDER_KIND, provider_entity(&p.id).id, p.id.clone(), p.version, p)
}

fn deposit_row(d: &Deposit) -> EntityRow {
    row(DEPOSIT_KIND, deposit_entity(d.id).id, d.id.to_string(), d.version, d)
}

fn withdrawal_row(w: &Withdrawal) -> EntityRow {
    row(WITHDRAWAL_KIND, withdrawal_entity(w.id).id, w.id.to_string(), w.version, w)
}

fn bonus_row(b: &Bonus) -> EntityRow {
    row(BONUS_KIND, bonus_entity(b.id).id, b.id.to_string(), b.version, b)
}

fn transaction_row(t: &GameTransaction) -> EntityRow {
    row(GAME_TX_KIND, game_tx_entity(&t.provider, t.transaction).id, transaction_key(t), t.version, t)
}
