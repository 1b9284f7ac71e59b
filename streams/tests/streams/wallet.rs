//! `wallet.transactions` on the mock cluster: the publisher, given the wallet's topic, sends one
//! message per movement of a player's balance, keyed by player, each valid against the
//! published schema; the amounts a player's messages carry add up to the ledger's balances of
//! that player's accounts, and no movement is sent twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ledger_core::sealed::Sealed;
use ledger_core::wallet::command::{
    CreateDeposit, GameCall, GrantBonus, Limits, OpenBonusPolicy, RequestWithdrawal, Settle, UpsertPlayer,
    UpsertProvider,
};
use ledger_core::wallet::{Command, GameAction, Kyc, ProviderKind, bonus_account, locked_account, main_account};
use ledger_core::{AccountRef, BonusId, DepositId, Timestamp, WithdrawalId};
use ledger_store::{EventMeta, LedgerHandle};
use rust_decimal::Decimal;
use serde_json::Value;
use streams::publisher::DomainTopics;
use streams::wallet::{TransactionMessage, WalletTopics, WireAccount, WireKind, WireReference};
use streams::{KafkaSettings, KafkaSink, PublisherConfig, Topics};
use uuid::Uuid;

use crate::support::{Broker, eur, ledger, prefix, read_until};

async fn run(ledger: &LedgerHandle, command: Command) {
    ledger.submit(command, EventMeta::default()).await.unwrap().unwrap_or_else(|r| panic!("refused: {r:?}"));
}

fn game(action: GameAction, player: &str, round: &str, amount: i64, reference: Option<Uuid>) -> (Uuid, Command) {
    let transaction = Uuid::new_v4();
    let call = GameCall {
        provider: "games".into(),
        action,
        transaction,
        player: player.into(),
        round: round.into(),
        amount: Decimal::new(amount, 2),
        currency: eur(),
        reference,
        round_closed: false,
        bonus_first: false,
        wagering_bonus_only: false,
    };
    (transaction, Command::Game(Box::new(call)))
}

async fn deposit(ledger: &LedgerHandle, player: &str, amount: i64) {
    let id = DepositId(Uuid::new_v4());
    let (amount, currency) = (Decimal::new(amount, 2), eur());
    let create =
        CreateDeposit { id, player: player.into(), amount, currency: currency.clone(), provider: "psp".into() };
    run(ledger, Command::CreateDeposit(Box::new(create))).await;
    let settle = Settle {
        id,
        provider: "psp".into(),
        succeeded: true,
        amount,
        currency,
        provider_reference: None,
        reason: None,
        event_id: format!("evt-{id}"),
    };
    run(ledger, Command::SettleDeposit(Box::new(settle))).await;
}

/// Two players: deposits, a bonus, bets taking main then bonus, a win, a rollback, a
/// withdrawal returned by its provider.
async fn workload(ledger: &LedgerHandle) {
    for id in ["p1", "p2"] {
        let player = UpsertPlayer {
            id: id.into(),
            currency: eur(),
            kyc: Kyc::Basic,
            self_excluded_until: None,
            limits: Limits::default(),
            cooldown_hours: 24,
        };
        run(ledger, Command::UpsertPlayer(Box::new(player))).await;
    }
    for (id, kind) in [("psp", ProviderKind::Payments), ("games", ProviderKind::Games)] {
        let secret = Sealed { key_id: "k1".into(), nonce: format!("n-{id}"), ciphertext: format!("c-{id}") };
        let provider = UpsertProvider { id: id.into(), kind, secret, base_url: Some("http://127.0.0.1:9".into()) };
        run(ledger, Command::UpsertProvider(Box::new(provider))).await;
    }
    deposit(ledger, "p1", 5000).await;
    deposit(ledger, "p2", 700).await;
    let bonus = GrantBonus {
        id: BonusId(Uuid::new_v4()),
        player: "p1".into(),
        amount: Decimal::new(2000, 2),
        wagering_multiplier: Decimal::new(10, 0),
        expires_at: Timestamp(i64::MAX / 2),
    };
    run(ledger, Command::GrantBonus(Box::new(bonus))).await;
    // 60.00 from 50.00 in main and 20.00 in bonus: both legs.
    run(ledger, game(GameAction::Bet, "p1", "r1", 6000, None).1).await;
    run(ledger, game(GameAction::Win, "p1", "r1", 1200, None).1).await;
    let (bet, command) = game(GameAction::Bet, "p2", "r2", 300, None);
    run(ledger, command).await;
    run(ledger, game(GameAction::Rollback, "p2", "r2", 300, Some(bet)).1).await;
    let id = WithdrawalId(Uuid::new_v4());
    let request = RequestWithdrawal {
        id,
        player: "p2".into(),
        amount: Decimal::new(500, 2),
        currency: eur(),
        provider: "psp".into(),
        timeout_seconds: 3600,
        open_bonus: OpenBonusPolicy::Refuse,
    };
    run(ledger, Command::RequestWithdrawal(Box::new(request))).await;
    let failed = Settle {
        id,
        provider: "psp".into(),
        succeeded: false,
        amount: Decimal::new(500, 2),
        currency: eur(),
        provider_reference: None,
        reason: Some("closed".into()),
        event_id: "evt-w".into(),
    };
    run(ledger, Command::SettleWithdrawal(Box::new(failed))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_movement_is_one_message_keyed_by_player_and_valid_against_its_schema() {
    let broker = Broker::any();
    let prefix = prefix();
    let topic = format!("{prefix}.wallet.transactions");
    let envelopes = [format!("{prefix}.events"), format!("{prefix}.accounts"), format!("{prefix}.transfers")];
    let mut names: Vec<&str> = envelopes.iter().map(String::as_str).collect();
    names.push(&topic);
    broker.create_topics(&names);
    let ledger = ledger().await;
    workload(&ledger.handle).await;

    // What the log's page derives, read without Kafka: the expected messages.
    let wallet = WalletTopics { transactions: topic.clone() };
    let expected = {
        let mut conn = ledger.db.connect().await;
        let page = ledger_store::log::page(&mut conn, 0, 10_000).await.unwrap();
        wallet.messages(&mut conn, &page).await.unwrap()
    };
    let kinds: Vec<(String, WireKind, WireAccount, Decimal)> = expected
        .iter()
        .map(|m| {
            let t: TransactionMessage = serde_json::from_str(&m.payload).unwrap();
            (t.player_id, t.kind, t.account, t.amount)
        })
        .collect();
    let e = |cents| Decimal::new(cents, 2);
    use WireAccount::*;
    use WireKind::*;
    let p = |s: &str| s.to_owned();
    assert_eq!(
        kinds,
        [
            (p("p1"), Deposit, Main, e(5000)),
            (p("p2"), Deposit, Main, e(700)),
            (p("p1"), BonusGranted, Bonus, e(2000)),
            (p("p1"), Bet, Main, e(-5000)),
            (p("p1"), Bet, Bonus, e(-1000)),
            (p("p1"), Win, Main, e(1000)),
            (p("p1"), Win, Bonus, e(200)),
            (p("p2"), Bet, Main, e(-300)),
            (p("p2"), Rollback, Main, e(300)),
            (p("p2"), WithdrawalLock, Main, e(-500)),
            (p("p2"), WithdrawalLock, Locked, e(500)),
            (p("p2"), WithdrawalReturned, Locked, e(-500)),
            (p("p2"), WithdrawalReturned, Main, e(500)),
        ]
    );

    let sink = KafkaSink::new(&KafkaSettings::new(&broker.brokers)).unwrap();
    let config = PublisherConfig {
        poll: Duration::from_millis(100),
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
    };
    let topics = Topics::with_defaults(&prefix).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = ledger.db.url.clone();
    let domains: Vec<Box<dyn DomainTopics>> = vec![Box::new(wallet)];
    let publisher =
        tokio::spawn(
            async move { streams::publisher::run_with(&url, sink, topics, domains, config, stopped, None).await },
        );
    let n = expected.len();
    let received = read_until(&broker.brokers, &topic, Duration::from_secs(60), |r| r.len() >= n).await;
    assert_eq!(received.len(), n, "every movement once");
    let mut legs = HashSet::new();
    let mut sums: HashMap<(String, WireAccount), Decimal> = HashMap::new();
    let mut partitions: HashMap<String, HashSet<i32>> = HashMap::new();
    for r in &received {
        let value: Value = serde_json::from_slice(&r.payload).unwrap();
        streams::schemas::check_domain("WalletTransaction", &value).unwrap_or_else(|e| panic!("{value}: {e:?}"));
        let t: TransactionMessage = serde_json::from_value(value).unwrap();
        assert_eq!(r.key.as_deref(), Some(t.player_id.as_str()), "keyed by player");
        assert_eq!(r.header("event_id"), Some(t.event_id.to_string().as_str()));
        assert!(legs.insert((t.event_id, t.leg)), "one message per movement");
        assert!(t.at.ends_with('Z') && t.currency == "EUR", "{t:?}");
        match t.reference_type {
            WireReference::Game => assert!(t.provider.as_deref() == Some("games") && t.round.is_some(), "{t:?}"),
            _ => assert!(t.provider.is_none() && t.round.is_none(), "{t:?}"),
        }
        partitions.entry(t.player_id.clone()).or_default().insert(r.partition);
        *sums.entry((t.player_id, t.account)).or_default() += t.amount;
    }
    // A player's messages share one partition, so a sink reads them in order.
    assert!(partitions.values().all(|p| p.len() == 1), "{partitions:?}");
    let view = ledger.handle.view();
    for player in ["p1", "p2"] {
        for (account, id) in
            [(Main, main_account(player).0), (Bonus, bonus_account(player).0), (Locked, locked_account(player).0)]
        {
            let balance = view.account(&AccountRef::Id(id)).map_or(Decimal::ZERO, |a| a.account.balance());
            let sum = sums.get(&(player.to_owned(), account)).copied().unwrap_or_default();
            assert_eq!(sum, balance, "{player} {account:?}");
        }
    }
    assert_eq!(sums[&("p1".to_owned(), Main)], e(1000));
    stop.send(true).unwrap();
    publisher.await.unwrap();
    drop(ledger.handle);
    ledger.task.await.unwrap();
    ledger.db.drop_database().await;
}
