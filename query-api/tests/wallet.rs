//! The wallet's part of the GraphQL schema end to end: a real writer and the wallet read
//! model's runner on a fresh database, queries through the router (`oneshot`). A player reads
//! with its balances (the ledger's), limits, deposits, withdrawals with their steps, rounds
//! with their calls, bonuses and movements whose keyset pages neither repeat nor skip one; a key
//! scoped to one player is refused another's; bad arguments are typed errors.

use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ledger_core::wallet::command::{
    CreateDeposit, GameCall, GrantBonus, Kyc, Limits, OpenBonusPolicy, RequestWithdrawal, Settle, UpsertPlayer,
    UpsertProvider,
};
use ledger_core::wallet::{Command, GameAction, ProviderKind};
use ledger_core::{AccountRef, BonusId, CurrencyCode, DepositId, Timestamp, WithdrawalId};
use ledger_store::keys::create_key;
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use projections::Model;
use query_api::{QueryState, router};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

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

fn game(action: GameAction, n: u128, round: &str, amount: &str) -> GameCall {
    GameCall {
        provider: "games".into(),
        action,
        transaction: Uuid::from_u128(0x3d0 + n),
        player: "p1".into(),
        round: round.into(),
        amount: dec(amount),
        currency: eur(),
        reference: None,
        round_closed: false,
        bonus_first: false,
        wagering_bonus_only: false,
    }
}

/// p1 deposits 100 (and fails one of 5), gets a bonus, bets in two rounds (one bet rolled
/// back, one round closed with a win), withdraws 10 (paid) and 3 (left locked); p2 only exists.
async fn workload(ledger: &LedgerHandle) {
    for p in ["p1", "p2"] {
        let c = UpsertPlayer {
            id: p.into(),
            currency: eur(),
            kyc: Kyc::Full,
            self_excluded_until: None,
            limits: Limits { deposit_day: Some(dec("500")), ..Limits::default() },
            cooldown_hours: 24,
        };
        submit(ledger, Command::UpsertPlayer(Box::new(c))).await;
    }
    // A looser limit waits for the cooldown.
    let looser = UpsertPlayer {
        id: "p1".into(),
        currency: eur(),
        kyc: Kyc::Full,
        self_excluded_until: None,
        limits: Limits { deposit_day: Some(dec("800")), ..Limits::default() },
        cooldown_hours: 24,
    };
    submit(ledger, Command::UpsertPlayer(Box::new(looser))).await;
    for (id, kind) in [("psp", ProviderKind::Payments), ("games", ProviderKind::Games)] {
        let secret = ledger_core::sealed::Sealed { key_id: "k1".into(), nonce: "n".into(), ciphertext: id.into() };
        submit(
            ledger,
            Command::UpsertProvider(Box::new(UpsertProvider { id: id.into(), kind, secret, base_url: None })),
        )
        .await;
    }
    for (n, amount, ok) in [(1u128, "100", true), (2, "5", false)] {
        let id = DepositId(Uuid::from_u128(0xd0 + n));
        let c = CreateDeposit { id, player: "p1".into(), amount: dec(amount), currency: eur(), provider: "psp".into() };
        submit(ledger, Command::CreateDeposit(Box::new(c))).await;
        submit(ledger, Command::SettleDeposit(settle(id, ok, amount, &format!("d{n}")))).await;
    }
    let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap();
    let far = Timestamp(now + 86_400 * 1_000_000);
    let bonus = GrantBonus {
        id: BonusId(Uuid::from_u128(0x2d1)),
        player: "p1".into(),
        amount: dec("10"),
        wagering_multiplier: dec("100"),
        expires_at: far,
    };
    submit(ledger, Command::GrantBonus(Box::new(bonus))).await;
    submit(ledger, Command::Game(Box::new(game(GameAction::Bet, 1, "r1", "95")))).await;
    submit(ledger, Command::Game(Box::new(game(GameAction::Bet, 2, "r1", "8")))).await;
    let rollback = GameCall { reference: Some(Uuid::from_u128(0x3d2)), ..game(GameAction::Rollback, 3, "r1", "0") };
    submit(ledger, Command::Game(Box::new(rollback))).await;
    let win = GameCall { round_closed: true, ..game(GameAction::Win, 4, "r1", "20") };
    submit(ledger, Command::Game(Box::new(win))).await;
    submit(ledger, Command::Game(Box::new(game(GameAction::Bet, 5, "r2", "1")))).await;
    for (n, amount) in [(1u128, "10"), (2, "3")] {
        let id = WithdrawalId(Uuid::from_u128(0x1d0 + n));
        let c = RequestWithdrawal {
            id,
            player: "p1".into(),
            amount: dec(amount),
            currency: eur(),
            provider: "psp".into(),
            timeout_seconds: 600,
            open_bonus: OpenBonusPolicy::Refuse,
        };
        // The open bonus refuses a withdrawal: forfeit it first, then withdraw.
        if n == 1 {
            submit(ledger, Command::ForfeitBonus { id: BonusId(Uuid::from_u128(0x2d1)), reason: None }).await;
        }
        submit(ledger, Command::RequestWithdrawal(Box::new(c))).await;
    }
    let w1 = WithdrawalId(Uuid::from_u128(0x1d1));
    submit(ledger, Command::MarkWithdrawalSent { id: w1 }).await;
    submit(ledger, Command::SettleWithdrawal(settle(w1, true, "10", "w1"))).await;
}

struct App {
    router: Router,
    keys: std::collections::HashMap<&'static str, String>,
}

impl App {
    async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.keys[key]));
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn data(&self, key: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(key, query, variables).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    /// The code (and permission) of the error a query must meet.
    async fn refused(&self, key: &str, query: &str, variables: Value) -> (String, String) {
        let body = self.gql(key, query, variables).await;
        let e = &body["errors"][0]["extensions"];
        (e["code"].as_str().unwrap_or_default().to_owned(), e["permission"].as_str().unwrap_or_default().to_owned())
    }

    /// Every page of p1's movements, `first` at a time.
    async fn movements(&self, key: &str, first: usize) -> Vec<Value> {
        let query = format!(
            "query($after: String) {{ walletPlayer(id: \"p1\") {{ movements(first: {first}, after: $after) {{ \
             edges {{ cursor node {{ position seq account amount balanceAfter kind referenceKind referenceId roundId }} }} \
             pageInfo {{ hasNextPage endCursor }} }} }} }}"
        );
        let mut all = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = self.data(key, &query, json!({"after": after})).await;
            let page = &data["walletPlayer"]["movements"];
            let edges = page["edges"].as_array().unwrap();
            assert!(edges.len() <= first);
            all.extend(edges.iter().map(|e| e["node"].clone()));
            if page["pageInfo"]["hasNextPage"] != json!(true) {
                return all;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
    }
}

const PLAYER: &str = "query($id: String!) { walletPlayer(id: $id) { id currency kyc \
    balances { main bonus locked } limits { kind value pending pendingValue } selfExclusion { until pending } \
    openBonusId \
    deposits(first: 10) { edges { node { amount status eventId transferId } } } \
    withdrawals(first: 10) { edges { node { amount status steps { status transferId } } } } \
    rounds(first: 10) { edges { node { roundId closed bets wins rollbacks stakedMain wonMain \
      transactions { kind amount main bonus rolledBackBy } } } } \
    bonuses(first: 10) { edges { node { status amount closedAmount } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_s_wallet_is_read_within_the_key_s_scope() {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = db.url.clone();
    let runner = tokio::spawn(async move {
        let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
        projections::run_reporting(&url, None, &[Model::Wallet], follow, stopped, None).await
    });
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (name, permission) in
        [("operator", "wallet:read"), ("p1", "wallet:read:p1"), ("p2", "wallet:read:p2"), ("orders", "orders:read")]
    {
        keys.insert(name, create_key(&pool, name, &[permission.to_owned()]).await.unwrap().1);
    }
    let app = App { router: router(QueryState::new(pool.clone())), keys };
    // Before anything is applied (the tables may not exist yet): no such player.
    let none = app.data("operator", PLAYER, json!({"id": "p9"})).await;
    assert_eq!(none["walletPlayer"], Value::Null);

    workload(&ledger).await;
    let head = ledger.view().head();
    let balance = |code: (ledger_core::AccountId, String)| {
        ledger.view().account(&AccountRef::Id(code.0)).map_or(Decimal::ZERO, |a| a.account.balance()).to_string()
    };
    let (main, bonus, locked) = (
        balance(ledger_core::wallet::main_account("p1")),
        balance(ledger_core::wallet::bonus_account("p1")),
        balance(ledger_core::wallet::locked_account("p1")),
    );
    let mut conn = pool.acquire().await.unwrap();
    while projections::read::checkpoint(&mut conn, Model::Wallet).await.unwrap() < head {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let p1 = &app.data("p1", PLAYER, json!({"id": "p1"})).await["walletPlayer"];
    assert_eq!(p1["balances"], json!({"main": main, "bonus": bonus, "locked": locked}));
    assert_eq!(locked, "3.00");
    assert_eq!((p1["kyc"].clone(), p1["currency"].clone()), (json!("full"), json!("EUR")));
    assert_eq!(
        p1["limits"][0],
        json!({"kind": "deposit_day", "value": "500.00", "pending": true, "pendingValue": "800.00"})
    );
    assert_eq!(p1["limits"][3], json!({"kind": "loss_day", "value": null, "pending": false, "pendingValue": null}));
    assert_eq!(p1["selfExclusion"], json!({"until": null, "pending": false}));
    assert_eq!(p1["openBonusId"], Value::Null);
    let deposits: Vec<(String, String)> = p1["deposits"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["amount"].as_str().unwrap().to_owned(), e["node"]["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(deposits, [("100.00".to_owned(), "succeeded".to_owned()), ("5.00".to_owned(), "failed".to_owned())]);
    let withdrawals = p1["withdrawals"]["edges"].as_array().unwrap();
    let steps = |w: &Value| -> Vec<String> {
        w["node"]["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(steps(&withdrawals[0]), ["locked", "sent", "succeeded"]);
    assert_eq!(withdrawals[0]["node"]["steps"][1]["transferId"], Value::Null, "sending moves nothing");
    assert_eq!(steps(&withdrawals[1]), ["locked"]);
    let rounds = p1["rounds"]["edges"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    let r1 = &rounds[0]["node"];
    assert_eq!(
        (r1["roundId"].clone(), r1["closed"].clone(), r1["bets"].clone(), r1["wins"].clone(), r1["rollbacks"].clone()),
        (json!("r1"), json!(true), json!(2), json!(1), json!(1))
    );
    assert_eq!((r1["stakedMain"].clone(), r1["wonMain"].clone()), (json!("95.00"), json!("20.00")));
    let kinds: Vec<&str> = r1["transactions"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["bet", "bet", "rollback", "win"]);
    assert_eq!(r1["transactions"][1]["rolledBackBy"], json!(Uuid::from_u128(0x3d3).to_string()));
    assert_eq!(
        p1["bonuses"]["edges"][0]["node"],
        json!({"status": "forfeited", "amount": "10.00", "closedAmount": "10.00"})
    );

    // Movements: the same in pages of one, three or a hundred; each account's balances chain
    // to the ledger's.
    let all = app.movements("operator", 100).await;
    for first in [1, 3] {
        assert_eq!(app.movements("p1", first).await, all, "by {first}");
    }
    let mut running = std::collections::HashMap::<String, Decimal>::new();
    for m in &all {
        let b = running.entry(m["account"].as_str().unwrap().to_owned()).or_default();
        *b += dec(m["amount"].as_str().unwrap());
        assert_eq!(dec(m["balanceAfter"].as_str().unwrap()), *b);
    }
    assert_eq!(running["main"].to_string(), main);
    assert_eq!(running["locked"].to_string(), locked);
    assert_eq!(all[0]["kind"], "deposit");
    let filtered = app
        .data(
            "p1",
            "{ walletPlayer(id: \"p1\") { movements(account: locked, kind: withdrawal_lock) { edges { node { amount } } } } }",
            json!({}),
        )
        .await;
    let amounts: Vec<&str> = filtered["walletPlayer"]["movements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["10.00", "3.00"]);

    // Scopes: p2's key reads p2, not p1; a key that reads no wallet is refused up front.
    assert_eq!(app.data("p2", PLAYER, json!({"id": "p2"})).await["walletPlayer"]["balances"]["main"], "0");
    assert_eq!(app.refused("p2", PLAYER, json!({"id": "p1"})).await, ("forbidden".into(), "wallet:read:p1".into()));
    assert_eq!(app.refused("orders", PLAYER, json!({"id": "p1"})).await, ("forbidden".into(), "wallet:read".into()));
    assert_eq!(app.data("operator", PLAYER, json!({"id": "nobody"})).await["walletPlayer"], Value::Null);

    // Bad arguments: typed errors.
    let bad = |args: &str| format!("{{ walletPlayer(id: \"p1\") {{ movements({args}) {{ edges {{ cursor }} }} }} }}");
    for args in [
        "first: 0",
        "first: 101",
        "after: \"x\"",
        "after: \"1\"",
        "from: \"yesterday\"",
        "from: \"2026-01-02T00:00:00Z\", to: \"2026-01-01T00:00:00Z\"",
    ] {
        assert_eq!(app.refused("operator", &bad(args), json!({})).await.0, "invalid_argument", "{args}");
    }
    let bad_deposits = "{ walletPlayer(id: \"p1\") { deposits(after: \"nope\") { edges { cursor } } } }";
    assert_eq!(app.refused("operator", bad_deposits, json!({})).await.0, "invalid_argument");

    drop(ledger);
    writer.await.unwrap();
    stop.send(true).unwrap();
    runner.await.unwrap();
    drop(conn);
    pool.close().await;
    db.drop_database().await;
}
