//! The wallet read model against a real Postgres, fed by a real writer: for a workload of
//! deposits (settled, failed, pending), withdrawals (paid, failed, timed out, still locked),
//! bets, wins and rollbacks in open and closed rounds, and bonuses (converted, forfeited,
//! expired, open), every row equals the writer's own state of its entity, every player's
//! balances equal the ledger's, each account's movements chain their balances up to it, and a
//! rebuild (the whole log in one page) equals the live build (in pages of its own).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use ledger_core::domain::EntityRef;
use ledger_core::wallet::command::{
    CreateDeposit, GameCall, GrantBonus, Kyc, Limits, OpenBonusPolicy, RequestWithdrawal, Settle, UpsertPlayer,
    UpsertProvider,
};
use ledger_core::wallet::state::{Bonus, Deposit, GameTransaction, Player, Withdrawal};
use ledger_core::wallet::{self as wallet, Command, GameAction, ProviderKind};
use ledger_core::{AccountRef, BonusId, CurrencyCode, DepositId, Timestamp, WithdrawalId};
use ledger_store::sql::{text, to_time};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::wallet::{self as rm, MovementCursor, MovementFilter};
use projections::{Model, rebuild};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use test_support::fresh_database;
use uuid::Uuid;

use common::{caught_up_in, checksum};

const PLAYERS: [&str; 3] = ["p1", "p2", "p3"];

const VIEWS: [(&str, &str); 8] = [
    ("rm_wallet_players", "id"),
    ("rm_wallet_deposits", "id"),
    ("rm_wallet_withdrawals", "id"),
    ("rm_wallet_withdrawal_steps", "withdrawal_id, position"),
    ("rm_wallet_rounds", "provider_id, round_id"),
    ("rm_wallet_game_transactions", "provider_id, transaction_id"),
    ("rm_wallet_bonuses", "id"),
    ("rm_wallet_movements", "position, seq"),
];

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn eur() -> CurrencyCode {
    CurrencyCode::parse("EUR").unwrap()
}

async fn submit(ledger: &LedgerHandle, command: Command) {
    let what = format!("{command:?}");
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap_or_else(|r| panic!("{what}: {r:?}"));
}

fn settle<I>(id: I, succeeded: bool, amount: &str, event: &str) -> Box<Settle<I>> {
    Box::new(Settle {
        id,
        provider: "psp".into(),
        succeeded,
        amount: dec(amount),
        currency: eur(),
        provider_reference: Some(format!("ref-{event}")),
        reason: (!succeeded).then(|| "declined".into()),
        event_id: event.into(),
    })
}

fn did(n: u128) -> DepositId {
    DepositId(Uuid::from_u128(0xd0 + n))
}

fn wid(n: u128) -> WithdrawalId {
    WithdrawalId(Uuid::from_u128(0x1d0 + n))
}

fn bid(n: u128) -> BonusId {
    BonusId(Uuid::from_u128(0x2d0 + n))
}

fn tx(n: u128) -> Uuid {
    Uuid::from_u128(0x3d0 + n)
}

fn game(action: GameAction, n: u128, player: &str, round: &str, amount: &str) -> Command {
    call(GameCall {
        provider: "games".into(),
        action,
        transaction: tx(n),
        player: player.into(),
        round: round.into(),
        amount: dec(amount),
        currency: eur(),
        reference: None,
        round_closed: false,
        bonus_first: false,
        wagering_bonus_only: false,
    })
}

fn call(c: GameCall) -> Command {
    Command::Game(Box::new(c))
}

/// `game`, changed.
fn with(command: Command, change: impl FnOnce(&mut GameCall)) -> Command {
    match command {
        Command::Game(mut c) => {
            change(&mut c);
            Command::Game(c)
        }
        _ => unreachable!("a game call"),
    }
}

fn deposit(n: u128, player: &str, amount: &str) -> Command {
    Command::CreateDeposit(Box::new(CreateDeposit {
        id: did(n),
        player: player.into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
    }))
}

fn withdraw(n: u128, player: &str, amount: &str, timeout_seconds: u32, open_bonus: OpenBonusPolicy) -> Command {
    Command::RequestWithdrawal(Box::new(RequestWithdrawal {
        id: wid(n),
        player: player.into(),
        amount: dec(amount),
        currency: eur(),
        provider: "psp".into(),
        timeout_seconds,
        open_bonus,
    }))
}

fn bonus(n: u128, player: &str, amount: &str, multiplier: &str, expires_at: Timestamp) -> Command {
    Command::GrantBonus(Box::new(GrantBonus {
        id: bid(n),
        player: player.into(),
        amount: dec(amount),
        wagering_multiplier: dec(multiplier),
        expires_at,
    }))
}

fn now() -> Timestamp {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    Timestamp(i64::try_from(nanos / 1000).unwrap())
}

/// The workload, in two halves with a catch-up between them (so the live build applies it in
/// several pages, and a page reads back rows an earlier one wrote).
async fn workload(ledger: &LedgerHandle, catch_up: impl AsyncFnOnce()) {
    for p in PLAYERS {
        let c = UpsertPlayer {
            id: p.into(),
            currency: eur(),
            kyc: if p == "p3" { Kyc::None } else { Kyc::Full },
            self_excluded_until: None,
            limits: Limits { deposit_day: Some(dec("1000")), ..Limits::default() },
            cooldown_hours: 24,
        };
        submit(ledger, Command::UpsertPlayer(Box::new(c))).await;
    }
    for (id, kind) in [("psp", ProviderKind::Payments), ("games", ProviderKind::Games)] {
        let secret = ledger_core::sealed::Sealed { key_id: "k1".into(), nonce: "n".into(), ciphertext: id.into() };
        submit(
            ledger,
            Command::UpsertProvider(Box::new(UpsertProvider { id: id.into(), kind, secret, base_url: None })),
        )
        .await;
    }
    for (n, player, amount) in [(1, "p1", "100"), (2, "p2", "60"), (3, "p3", "30")] {
        submit(ledger, deposit(n, player, amount)).await;
        submit(ledger, Command::SettleDeposit(settle(did(n), true, amount, &format!("d{n}")))).await;
    }
    submit(ledger, deposit(4, "p1", "7")).await;
    submit(ledger, Command::SettleDeposit(settle(did(4), false, "7", "d4"))).await;
    // Left pending.
    submit(ledger, deposit(5, "p2", "9")).await;
    // A stricter limit applies at once; p3's KYC changes.
    let stricter = UpsertPlayer {
        id: "p1".into(),
        currency: eur(),
        kyc: Kyc::Full,
        self_excluded_until: None,
        limits: Limits { deposit_day: Some(dec("500")), loss_day: Some(dec("400")), ..Limits::default() },
        cooldown_hours: 24,
    };
    submit(ledger, Command::UpsertPlayer(Box::new(stricter))).await;
    let far = Timestamp(now().0 + 86_400 * 1_000_000);
    submit(ledger, bonus(1, "p1", "10", "100", far)).await;
    submit(ledger, game(GameAction::Bet, 1, "p1", "r1", "95")).await;
    submit(ledger, game(GameAction::Bet, 2, "p1", "r1", "8")).await;
    catch_up().await;

    submit(ledger, with(game(GameAction::Rollback, 3, "p1", "r1", "0"), |c| c.reference = Some(tx(2)))).await;
    // A rollback before its bet: a tombstone.
    submit(ledger, with(game(GameAction::Rollback, 4, "p1", "r1", "0"), |c| c.reference = Some(tx(99)))).await;
    submit(ledger, with(game(GameAction::Win, 5, "p1", "r1", "20"), |c| c.round_closed = true)).await;
    submit(ledger, with(game(GameAction::Bet, 6, "p1", "r2", "12"), |c| c.bonus_first = true)).await;
    submit(ledger, game(GameAction::Win, 7, "p1", "r2", "6")).await;
    // p2's bonus converts on a bet; p2's round is lost and closed.
    submit(ledger, bonus(2, "p2", "4", "2", far)).await;
    submit(ledger, game(GameAction::Bet, 8, "p2", "r3", "8")).await;
    submit(ledger, with(game(GameAction::Win, 9, "p2", "r3", "0"), |c| c.round_closed = true)).await;
    // p1's withdrawal forfeits its open bonus; it is sent, then paid.
    submit(ledger, withdraw(1, "p1", "10", 600, OpenBonusPolicy::Forfeit)).await;
    submit(ledger, Command::MarkWithdrawalSent { id: wid(1) }).await;
    submit(ledger, Command::SettleWithdrawal(settle(wid(1), true, "10", "w1"))).await;
    submit(ledger, withdraw(2, "p1", "1", 600, OpenBonusPolicy::Refuse)).await;
    submit(ledger, Command::SettleWithdrawal(settle(wid(2), false, "1", "w2"))).await;
    // p2's times out; p1's last stays locked.
    submit(ledger, withdraw(3, "p2", "7", 0, OpenBonusPolicy::Refuse)).await;
    submit(ledger, withdraw(4, "p1", "2", 600, OpenBonusPolicy::Refuse)).await;
    // p3's bonus expires; p2's is forfeited by an operator; p1's new one stays open.
    submit(ledger, bonus(3, "p3", "5", "10", Timestamp(now().0 + 300_000))).await;
    submit(ledger, bonus(4, "p2", "6", "5", far)).await;
    submit(ledger, Command::ForfeitBonus { id: bid(4), reason: Some("abuse".into()) }).await;
    submit(ledger, bonus(5, "p1", "3", "5", far)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    submit(ledger, Command::ExpireWithdrawals).await;
    submit(ledger, Command::ExpireBonuses).await;
}

fn entity(ledger: &LedgerHandle, e: EntityRef) -> ledger_core::EntityRow {
    ledger.view().entity(e.id).unwrap_or_else(|| panic!("{e:?} in the writer")).0
}

async fn all_movements(conn: &mut PgConnection, player: &str, limit: i64) -> Vec<rm::MovementRow> {
    let mut all = Vec::new();
    let mut after: Option<MovementCursor> = None;
    loop {
        let page = rm::movements(conn, player, &MovementFilter::default(), after, limit).await.unwrap();
        let Some(last) = page.last() else { return all };
        after = Some(last.cursor());
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_read_model_equals_the_writer_chains_balances_and_rebuilds_identically() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let runner = tokio::spawn(async move {
        let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
        projections::run_reporting(&url, None, &[Model::Wallet], follow, stopped, None).await
    });
    let (mut conn, mut other) = (db.connect().await, db.connect().await);
    workload(&ledger, async || caught_up_in(&mut conn, &mut other, &[Model::Wallet]).await).await;

    // What the writer holds.
    let players: Vec<Player> =
        PLAYERS.iter().map(|p| entity(&ledger, wallet::player_entity(p)).parse().unwrap()).collect();
    let balances: HashMap<(String, &str), Decimal> = PLAYERS
        .iter()
        .flat_map(|p| {
            [
                ("main", wallet::main_account(p)),
                ("bonus", wallet::bonus_account(p)),
                ("locked", wallet::locked_account(p)),
            ]
            .map(|(name, (id, _))| {
                let balance = ledger.view().account(&AccountRef::Id(id)).map_or(Decimal::ZERO, |a| a.account.balance());
                ((p.to_string(), name), balance)
            })
        })
        .collect();
    let deposits: Vec<Deposit> =
        (1..=5).map(|n| entity(&ledger, wallet::deposit_entity(did(n))).parse().unwrap()).collect();
    let withdrawals: Vec<Withdrawal> =
        (1..=4).map(|n| entity(&ledger, wallet::withdrawal_entity(wid(n))).parse().unwrap()).collect();
    let bonuses: Vec<Bonus> = (1..=5).map(|n| entity(&ledger, wallet::bonus_entity(bid(n))).parse().unwrap()).collect();
    let mut txs: Vec<GameTransaction> =
        (1..=9).map(|n| entity(&ledger, wallet::game_tx_entity("games", tx(n))).parse().unwrap()).collect();
    txs.push(entity(&ledger, wallet::game_tx_entity("games", tx(99))).parse().unwrap());
    drop(ledger);
    task.await.unwrap();
    caught_up_in(&mut conn, &mut other, &[Model::Wallet]).await;
    stop.send(true).unwrap();
    runner.await.unwrap();

    // Players: their fields as decided, their balances the ledger's.
    for p in &players {
        let row = rm::player(&mut conn, &p.id).await.unwrap().unwrap();
        assert_eq!(row.kyc, text(&p.kyc));
        assert_eq!(row.limits, serde_json::to_value(p.limits).unwrap());
        assert_eq!(row.self_exclusion, serde_json::to_value(p.self_exclusion).unwrap());
        assert_eq!(row.open_bonus, p.bonus.map(|b| b.0));
        assert_eq!(
            (row.main, row.bonus, row.locked),
            (
                balances[&(p.id.clone(), "main")],
                balances[&(p.id.clone(), "bonus")],
                balances[&(p.id.clone(), "locked")]
            ),
            "{}'s balances",
            p.id
        );
    }
    assert_eq!(rm::player(&mut conn, "nobody").await.unwrap(), None);
    assert_eq!(balances[&("p1".to_string(), "locked")], dec("2"), "one withdrawal still locked");

    // Deposits, withdrawals with every step, bonuses, transactions: as the writer's.
    for d in &deposits {
        let rows = rm::deposits(&mut conn, &d.player, None, 100).await.unwrap();
        let row = rows.iter().find(|r| r.id == d.id.0).unwrap();
        assert_eq!(
            (row.status.as_str(), row.amount, row.transfer_id, row.event_id.as_deref(), row.reason.as_deref()),
            (text(&d.status).as_str(), d.amount, d.transfer.map(|t| t.0), d.event_id.as_deref(), d.reason.as_deref())
        );
    }
    for w in &withdrawals {
        let rows = rm::withdrawals(&mut conn, &w.player, None, 100).await.unwrap();
        let row = rows.iter().find(|r| r.id == w.id.0).unwrap();
        assert_eq!((row.status.clone(), row.amount, row.deadline), (text(&w.status), w.amount, to_time(w.deadline)));
        let steps = rm::steps(&mut conn, &[w.id.0]).await.unwrap();
        let steps: Vec<(String, Option<Uuid>)> = steps.into_iter().map(|s| (s.status, s.transfer_id)).collect();
        let writer: Vec<(String, Option<Uuid>)> =
            w.steps.iter().map(|s| (text(&s.status), s.transfer.map(|t| t.0))).collect();
        assert_eq!(steps, writer, "withdrawal {}'s steps", w.id);
    }
    let statuses: Vec<String> = withdrawals.iter().map(|w| text(&w.status)).collect();
    assert_eq!(statuses, ["succeeded", "failed", "timed_out", "locked"]);
    for b in &bonuses {
        let rows = rm::bonuses(&mut conn, &b.player, None, 100).await.unwrap();
        let row = rows.iter().find(|r| r.id == b.id.0).unwrap();
        assert_eq!(
            (row.status.clone(), row.wagered, row.required, row.closed_amount, row.close_transfer_id),
            (text(&b.status), b.wagered, b.required, b.closed_amount, b.close_transfer.map(|t| t.0)),
            "bonus {}",
            b.id
        );
    }
    let statuses: Vec<String> = bonuses.iter().map(|b| text(&b.status)).collect();
    assert_eq!(statuses, ["forfeited", "converted", "expired", "forfeited", "active"]);
    let rounds = rm::rounds(&mut conn, "p1", None, 100).await.unwrap();
    assert_eq!(
        rounds.iter().map(|r| (r.round_id.as_str(), r.closed)).collect::<Vec<_>>(),
        [("r1", true), ("r2", false)]
    );
    let r1 = &rounds[0];
    // The rolled-back bet's stake is out of the round's; it still counts as a bet made.
    assert_eq!(
        (r1.staked_main, r1.staked_bonus, r1.won_main, r1.bets, r1.wins, r1.rollbacks),
        (dec("95"), dec("0"), dec("20"), 2, 1, 2)
    );
    let keys: Vec<(String, String)> = rounds.iter().map(|r| (r.provider_id.clone(), r.round_id.clone())).collect();
    let in_rounds = rm::round_transactions(&mut conn, &keys).await.unwrap();
    let by_id: HashMap<Uuid, &rm::GameTransactionRow> = in_rounds.iter().map(|t| (t.transaction_id, t)).collect();
    for t in txs.iter().filter(|t| t.player == "p1") {
        let row = by_id[&t.transaction];
        assert_eq!(
            (row.kind.clone(), row.main, row.bonus, row.rolled_back_by, row.reversal_transfer_id, row.transfer_id),
            (text(&t.kind), t.main, t.bonus, t.rolled_back_by, t.reversal.map(|r| r.0), t.transfer.map(|r| r.0)),
            "transaction {}",
            t.transaction
        );
    }
    assert_eq!(by_id[&tx(99)].kind, "tombstone");

    // Movements: each account's chain of balances, ending at the ledger's balance; pages of two
    // give the same as one page.
    for p in PLAYERS {
        let all = all_movements(&mut conn, p, 2).await;
        assert_eq!(all, rm::movements(&mut conn, p, &MovementFilter::default(), None, 1000).await.unwrap());
        let mut running: BTreeMap<String, Decimal> = BTreeMap::new();
        for m in &all {
            let balance = running.entry(m.account.clone()).or_default();
            *balance += m.amount;
            assert_eq!(m.balance_after, *balance, "{p}: movement {}", m.cursor());
        }
        for account in ["main", "bonus", "locked"] {
            let end = running.get(account).copied().unwrap_or_default();
            assert_eq!(end, balances[&(p.to_string(), account)], "{p}'s {account}");
        }
    }
    let p1 = rm::movements(&mut conn, "p1", &MovementFilter::default(), None, 1000).await.unwrap();
    let kinds: std::collections::BTreeSet<&str> = p1.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "bet",
            "bonus_granted",
            "bonus_returned",
            "deposit",
            "rollback",
            "win",
            "withdrawal_lock",
            "withdrawal_paid",
            "withdrawal_returned"
        ]
    );
    let locks =
        MovementFilter { account: Some(ledger_core::wallet::movement::Account::Locked), ..MovementFilter::default() };
    let locked = rm::movements(&mut conn, "p1", &locks, None, 1000).await.unwrap();
    assert!(locked.iter().all(|m| m.account == "locked"));
    assert_eq!(locked.len(), 5, "three locks, one paid, one returned");
    let converted =
        MovementFilter { kind: Some(ledger_core::wallet::movement::Kind::BonusConverted), ..MovementFilter::default() };
    let converted = rm::movements(&mut conn, "p2", &converted, None, 1000).await.unwrap();
    assert_eq!(
        converted.iter().map(|m| (m.account.as_str(), m.amount)).collect::<Vec<_>>(),
        [("bonus", dec("-4.00")), ("main", dec("4.00"))]
    );

    // A rebuild, the whole log in one page, equals the live build.
    let mut before = Vec::new();
    for (view, order) in VIEWS {
        before.push(checksum(&mut conn, view, order).await);
    }
    rebuild(&db.url, Model::Wallet, &mut std::io::sink()).await.unwrap();
    for ((view, order), before) in VIEWS.into_iter().zip(before) {
        assert_eq!(checksum(&mut conn, view, order).await, before, "{view} rebuilt identically");
    }
    drop((conn, other));
    db.drop_database().await;
}
