//! The gaming wallet over HTTP (seed 002): players and providers, deposits settled by a signed
//! webhook, withdrawals, seamless game calls signed by the aggregator, bonuses, scope refusals,
//! concurrency on one player, and secrets kept out of every answer and event. Real router, real
//! writer, real Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use command_api::{ApiState, router};
use futures_util::future::join_all;
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use ledger_store::{Writer, WriterConfig};
use outbound::webhooks::{WebhookSecret, headers};
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

const PSP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GAMES_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgZ2FtZXMgc2VjcmV0IQ==";

struct App {
    router: Router,
    keys: HashMap<&'static str, String>,
    pool: sqlx::PgPool,
    _db: test_support::TestDatabase,
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl App {
    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn send(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[channel]));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        self.raw(request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()).await
    }

    async fn ok(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(channel, method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// A provider's signed message, as its secret signs it at `timestamp`.
    async fn signed(&self, path: &str, secret: &str, id: &str, timestamp: i64, body: &Value) -> (StatusCode, Value) {
        let text = body.to_string();
        let secret = WebhookSecret::parse(secret).unwrap();
        let mut request = Request::builder().method("POST").uri(path).header("content-type", "application/json");
        for (name, value) in headers(&secret, id, timestamp, text.as_bytes()) {
            request = request.header(name, value);
        }
        self.raw(request.body(Body::from(text)).unwrap()).await
    }

    async fn webhook(&self, kind: &str, id: Uuid, amount: &str) -> (StatusCode, Value) {
        let body = json!({"type": kind, "timestamp": "2026-12-07T10:00:00Z",
            "data": {"id": id, "amount": amount, "currency": "EUR", "provider_reference": "psp-1"}});
        self.signed(
            "/v1/wallet/webhooks/payments/psp",
            PSP_SECRET,
            &format!("msg_{}", Uuid::new_v4()),
            now_secs(),
            &body,
        )
        .await
    }

    async fn game(&self, action: &str, body: Value) -> Value {
        let path = format!("/v1/wallet/games/games/{action}");
        let (status, answer) =
            self.signed(&path, GAMES_SECRET, &format!("call_{}", Uuid::new_v4()), now_secs(), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    async fn deposit(&self, player: &str, amount: &str) -> Uuid {
        let id = Uuid::new_v4();
        let body = json!({"id": id, "player_id": player, "amount": amount, "currency": "EUR", "provider": "psp"});
        let (status, answer) = self.send("admin", "POST", "/v1/wallet/deposits", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (status, answer) = self.webhook("deposit.succeeded", id, amount).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        id
    }

    async fn player(&self, id: &str, kyc: &str) -> Value {
        self.ok("admin", "PUT", &format!("/v1/wallet/players/{id}"), Some(json!({"currency": "EUR", "kyc": kyc}))).await
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await.unwrap()
    }
}

fn bet(tx: Uuid, round: &str, amount: &str) -> Value {
    json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": tx, "player_id": "p1", "round": round,
        "amount": amount, "currency": "EUR"})
}

/// A player `p1` (KYC basic) in EUR, a payment provider `psp` and a game provider `games`, and a
/// key per role.
async fn app() -> App {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    std::mem::forget(writer);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = HashMap::new();
    for (channel, scopes) in [
        ("admin", &["wallet:admin", "wallet:read", "wallet:pay"][..]),
        ("cashier", &["wallet:pay:p1", "wallet:read:p1"][..]),
        ("other", &["wallet:pay:p2", "wallet:read:p2"][..]),
        ("config", &["config:write"][..]),
    ] {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        keys.insert(channel, create_key(&pool, channel, &scopes).await.unwrap().1);
    }
    let secrets: Arc<dyn secrets::KeyProvider> = Arc::new(secrets::LocalKeys::random("k1").unwrap());
    let state = ApiState::new(ledger, pool.clone()).with_secrets(secrets);
    let app = App { router: router(state), keys, pool, _db: db };
    app.player("p1", "basic").await;
    for (id, kind, secret) in [("psp", "payments", PSP_SECRET), ("games", "games", GAMES_SECRET)] {
        let body = json!({"kind": kind, "secret": secret, "base_url": "http://127.0.0.1:9"});
        let answer = app.ok("admin", "PUT", &format!("/v1/wallet/providers/{id}"), Some(body)).await;
        assert!(!answer.to_string().contains("whsec_"), "the secret is never shown: {answer}");
    }
    app
}

#[tokio::test]
async fn a_deposit_is_pending_until_its_signed_webhook_and_a_bad_or_stale_signature_writes_nothing() {
    let app = app().await;
    let id = Uuid::new_v4();
    let body = json!({"id": id, "player_id": "p1", "amount": "25.5", "currency": "EUR", "provider": "psp"});
    let (status, deposit) = app.send("cashier", "POST", "/v1/wallet/deposits", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{deposit}");
    assert_eq!((deposit["status"].as_str(), deposit["amount"].as_str()), (Some("pending"), Some("25.50")));
    assert_eq!(deposit["redirect_url"], format!("http://127.0.0.1:9/pay/{id}?amount=25.50&currency=EUR"));
    let (status, again) = app.send("cashier", "POST", "/v1/wallet/deposits", Some(body)).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &deposit["id"]));
    // Unsigned, signed with another secret, or stale: 401, and nothing is written.
    let before = app.events().await;
    let webhook = json!({"type": "deposit.succeeded", "timestamp": "2026-12-07T10:00:00Z",
        "data": {"id": id, "amount": "25.50", "currency": "EUR"}});
    let path = "/v1/wallet/webhooks/payments/psp";
    let unsigned = Request::builder().method("POST").uri(path).body(Body::from(webhook.to_string())).unwrap();
    assert_eq!(app.raw(unsigned).await.0, StatusCode::UNAUTHORIZED);
    let (status, problem) = app.signed(path, GAMES_SECRET, "msg_1", now_secs(), &webhook).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_signature")));
    assert_eq!(app.signed(path, PSP_SECRET, "msg_2", now_secs() - 600, &webhook).await.0, StatusCode::UNAUTHORIZED);
    let other = "/v1/wallet/webhooks/payments/games";
    assert_eq!(app.signed(other, GAMES_SECRET, "msg_3", now_secs(), &webhook).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.events().await, before);
    let (status, answer) = app.signed(path, PSP_SECRET, "msg_4", now_secs(), &webhook).await;
    assert_eq!((status, answer["payment_status"].as_str()), (StatusCode::OK, Some("succeeded")), "{answer}");
    // The same webhook again (a retry, or a duplicate under another id) changes nothing.
    let after = app.events().await;
    assert_eq!(app.signed(path, PSP_SECRET, "msg_4", now_secs(), &webhook).await.0, StatusCode::OK);
    assert_eq!(app.signed(path, PSP_SECRET, "msg_5", now_secs(), &webhook).await.0, StatusCode::OK);
    assert_eq!(app.events().await, after);
    let (status, problem) = app.webhook("deposit.failed", id, "25.50").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("deposit_already_settled")));
    let (status, problem) = app.webhook("deposit.succeeded", Uuid::new_v4(), "1").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("deposit_not_found")));
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(player["balances"]["main"], "25.50");
    assert_eq!(player["balances"]["withdrawable"], "25.50");
    let got = app.ok("cashier", "GET", &format!("/v1/wallet/deposits/{id}"), None).await;
    assert_eq!((got["status"].as_str(), got["provider_reference"].as_str()), (Some("succeeded"), None));
}

#[tokio::test]
async fn limits_and_scopes_refuse_up_front_with_their_codes() {
    let app = app().await;
    let player = json!({"currency": "EUR", "kyc": "basic", "limits": {"deposit_day": "100"}});
    let answer = app.ok("admin", "PUT", "/v1/wallet/players/p1", Some(player)).await;
    assert_eq!(answer["limits"]["deposit_day"]["value"], "100.00");
    let looser = json!({"currency": "EUR", "kyc": "basic", "limits": {"deposit_day": "500"}});
    let answer = app.ok("admin", "PUT", "/v1/wallet/players/p1", Some(looser)).await;
    assert_eq!(answer["limits"]["deposit_day"]["value"], "100.00", "looser waits: {answer}");
    assert_eq!(answer["limits"]["deposit_day"]["pending"]["value"], "500.00");
    let body = |amount: &str| json!({"id": Uuid::new_v4(), "player_id": "p1", "amount": amount, "currency": "EUR", "provider": "psp"});
    let (status, problem) = app.send("cashier", "POST", "/v1/wallet/deposits", Some(body("150"))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit_exceeded")));
    assert!(problem["detail"].as_str().unwrap().contains("deposit_day limit leaves 100.00"), "{problem}");
    // Another player's cashier key, and an unsigned game call.
    let (status, _) = app.send("other", "POST", "/v1/wallet/deposits", Some(body("1"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.send("other", "GET", "/v1/wallet/players/p1", None).await.0, StatusCode::FORBIDDEN);
    let (status, problem) = app
        .send(
            "cashier",
            "POST",
            "/v1/wallet/withdrawals",
            Some(json!({"id": Uuid::new_v4(),
        "player_id": "p1", "amount": "1", "currency": "USD", "provider": "psp"})),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("currency_mismatch")));
    let (status, problem) =
        app.send("admin", "PUT", "/v1/wallet/players/p1", Some(json!({"currency": "USD", "kyc": "basic"}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("currency_fixed")));
    let (status, problem) =
        app.send("admin", "PUT", "/v1/wallet/providers/x", Some(json!({"kind": "games", "secret": "nope"}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_secret")));
    assert_eq!(app.send("cashier", "GET", "/v1/wallet/players/p9", None).await.0, StatusCode::FORBIDDEN);
    for path in ["/v1/wallet/deposits/null%2Cnull", "/v1/wallet/withdrawals/x"] {
        let (status, problem) = app.send("admin", "GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {problem}");
    }
    let (status, problem) = app.send("admin", "POST", "/v1/wallet/bonuses/x/forfeit", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("bonus_not_found")));
    let (status, problem) = app.send("admin", "GET", "/v1/wallet/players/p9", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("player_not_found")));
}

#[tokio::test]
async fn a_withdrawal_needs_kyc_locks_main_and_shows_each_step_of_its_saga() {
    let app = app().await;
    app.player("p2", "none").await;
    let (status, problem) = app
        .send(
            "admin",
            "POST",
            "/v1/wallet/withdrawals",
            Some(json!({"id": Uuid::new_v4(),
        "player_id": "p2", "amount": "1", "currency": "EUR", "provider": "psp"})),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("kyc_required")));
    app.deposit("p1", "100").await;
    let id = Uuid::new_v4();
    let body = json!({"id": id, "player_id": "p1", "amount": "40", "currency": "EUR", "provider": "psp"});
    let (status, w) = app.send("cashier", "POST", "/v1/wallet/withdrawals", Some(body)).await;
    assert_eq!((status, w["status"].as_str()), (StatusCode::CREATED, Some("locked")), "{w}");
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(
        (player["balances"]["main"].as_str(), player["balances"]["locked"].as_str()),
        (Some("60.00"), Some("40.00"))
    );
    let (status, answer) = app.webhook("withdrawal.succeeded", id, "40.00").await;
    assert_eq!((status, answer["payment_status"].as_str()), (StatusCode::OK, Some("succeeded")), "{answer}");
    let w = app.ok("cashier", "GET", &format!("/v1/wallet/withdrawals/{id}"), None).await;
    let steps: Vec<&str> = w["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(steps, ["locked", "succeeded"]);
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(player["balances"]["locked"], "0.00");
    let (status, problem) = app.webhook("withdrawal.failed", id, "40.00").await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("withdrawal_already_settled")));
}

#[tokio::test]
async fn game_calls_are_signed_answer_200_with_a_status_and_replay_their_original_answer() {
    let app = app().await;
    app.deposit("p1", "10").await;
    let body = bet(Uuid::new_v4(), "r1", "4");
    let path = "/v1/wallet/games/games/bet";
    let unsigned = Request::builder().method("POST").uri(path).body(Body::from(body.to_string())).unwrap();
    assert_eq!(app.raw(unsigned).await.0, StatusCode::UNAUTHORIZED);
    let answer = app.game("bet", body.clone()).await;
    assert_eq!(
        answer,
        json!({"status": "OK", "balance": "6.00", "bonus_balance": "0.00", "currency": "EUR",
        "request_uuid": body["request_uuid"]})
    );
    // The same transaction again answers the original; another body under its id is a duplicate.
    app.deposit("p1", "10").await;
    let mut retry = body.clone();
    retry["request_uuid"] = json!(Uuid::new_v4());
    let replayed = app.game("bet", retry.clone()).await;
    assert_eq!((replayed["status"].as_str(), replayed["balance"].as_str()), (Some("OK"), Some("6.00")));
    assert_eq!(replayed["request_uuid"], retry["request_uuid"]);
    let mut other = retry.clone();
    other["amount"] = json!("5");
    let duplicate = app.game("bet", other).await;
    assert_eq!(
        (duplicate["status"].as_str(), duplicate["balance"].as_str()),
        (Some("DUPLICATE_TRANSACTION"), Some("16.00"))
    );
    let balance = app.game("balance", json!({"request_uuid": Uuid::new_v4(), "player_id": "p1"})).await;
    assert_eq!((balance["status"].as_str(), balance["balance"].as_str()), (Some("OK"), Some("16.00")));
    // Too much: refused with the balance; a win pays into main; a rollback after a win is refused.
    let poor = app.game("bet", bet(Uuid::new_v4(), "r2", "16.01")).await;
    assert_eq!((poor["status"].as_str(), poor["balance"].as_str()), (Some("INSUFFICIENT_FUNDS"), Some("16.00")));
    let win = json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": Uuid::new_v4(), "player_id": "p1",
        "round": "r1", "amount": "7.5", "currency": "EUR", "round_closed": true});
    assert_eq!(app.game("win", win).await["balance"], "23.50");
    let rollback = json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": Uuid::new_v4(), "player_id": "p1",
        "round": "r1", "amount": "4", "currency": "EUR", "reference_transaction_uuid": body["transaction_uuid"]});
    assert_eq!(app.game("rollback", rollback).await["status"], "INVALID_REQUEST", "the round is closed");
    // A rollback before its bet: OK, and the bet is refused when it comes.
    let late = Uuid::new_v4();
    let early = json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": Uuid::new_v4(), "player_id": "p1",
        "round": "r3", "amount": "2", "currency": "EUR", "reference_transaction_uuid": late});
    assert_eq!(app.game("rollback", early).await["status"], "OK");
    assert_eq!(app.game("bet", bet(late, "r3", "2")).await["status"], "TRANSACTION_ROLLED_BACK");
    // Malformed or unknown: INVALID_REQUEST, still 200.
    assert_eq!(app.game("spin", bet(Uuid::new_v4(), "r4", "1")).await["status"], "INVALID_REQUEST");
    let missing = json!({"request_uuid": Uuid::new_v4(), "player_id": "p1"});
    assert_eq!(app.game("bet", missing).await["status"], "INVALID_REQUEST");
    assert_eq!(app.game("bet", json!({"nonsense": true})).await["status"], "INVALID_REQUEST");
    let nobody = json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": Uuid::new_v4(), "player_id": "p9",
        "round": "r5", "amount": "1", "currency": "EUR"});
    let answer = app.game("bet", nobody).await;
    assert_eq!((answer["status"].as_str(), answer.get("balance")), (Some("INVALID_REQUEST"), None));
}

#[tokio::test]
async fn sixty_four_concurrent_bets_on_one_player_never_overdraw() {
    let app = app().await;
    app.deposit("p1", "100").await;
    let answers = join_all((0..64).map(|n| app.game("bet", bet(Uuid::new_v4(), &format!("r{n}"), "3")))).await;
    let ok = answers.iter().filter(|a| a["status"] == "OK").count();
    let refused = answers.iter().filter(|a| a["status"] == "INSUFFICIENT_FUNDS").count();
    assert_eq!((ok, refused), (33, 31));
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(player["balances"]["main"], "1.00");
}

#[tokio::test]
async fn a_deposit_a_withdrawal_and_a_bonus_may_share_one_uuid() {
    let app = app().await;
    app.deposit("p1", "50").await;
    let id = Uuid::new_v4();
    let deposit = json!({"id": id, "player_id": "p1", "amount": "5", "currency": "EUR", "provider": "psp"});
    let (status, answer) = app.send("admin", "POST", "/v1/wallet/deposits", Some(deposit)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let withdrawal = json!({"id": id, "player_id": "p1", "amount": "7", "currency": "EUR", "provider": "psp"});
    let (status, answer) = app.send("admin", "POST", "/v1/wallet/withdrawals", Some(withdrawal)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let bonus = json!({"id": id, "amount": "3", "wagering_multiplier": "1", "expires_at": "2099-01-01T00:00:00Z"});
    let (status, answer) = app.send("admin", "POST", "/v1/wallet/players/p1/bonuses", Some(bonus)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    app.ok("admin", "POST", &format!("/v1/wallet/bonuses/{id}/forfeit"), Some(json!({}))).await;
    let deposit = app.ok("admin", "GET", &format!("/v1/wallet/deposits/{id}"), None).await;
    assert_eq!((deposit["amount"].as_str(), deposit["status"].as_str()), (Some("5.00"), Some("pending")), "{deposit}");
    let withdrawal = app.ok("admin", "GET", &format!("/v1/wallet/withdrawals/{id}"), None).await;
    assert_eq!(
        (withdrawal["amount"].as_str(), withdrawal["status"].as_str()),
        (Some("7.00"), Some("locked")),
        "{withdrawal}"
    );
    let player = app.ok("admin", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(
        (
            player["balances"]["main"].as_str(),
            player["balances"]["locked"].as_str(),
            player["balances"]["bonus"].as_str()
        ),
        (Some("43.00"), Some("7.00"), Some("0.00")),
        "{player}"
    );
}

#[tokio::test]
async fn a_bonus_is_granted_wagered_and_forfeited_over_http() {
    let app = app().await;
    app.deposit("p1", "50").await;
    let id = Uuid::new_v4();
    let body = json!({"id": id, "amount": "20", "wagering_multiplier": "2", "expires_at": "2099-01-01T00:00:00Z"});
    let (status, bonus) = app.send("admin", "POST", "/v1/wallet/players/p1/bonuses", Some(body.clone())).await;
    assert_eq!((status, bonus["required"].as_str()), (StatusCode::CREATED, Some("40.00")), "{bonus}");
    let (status, _) = app.send("admin", "POST", "/v1/wallet/players/p1/bonuses", Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!(
        (player["balances"]["bonus"].as_str(), player["bonus"]["status"].as_str()),
        (Some("20.00"), Some("active"))
    );
    let (status, problem) = app
        .send(
            "cashier",
            "POST",
            "/v1/wallet/withdrawals",
            Some(json!({"id": Uuid::new_v4(),
        "player_id": "p1", "amount": "1", "currency": "EUR", "provider": "psp"})),
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("bonus_wagering_open")));
    let answer = app.game("bet", bet(Uuid::new_v4(), "r1", "30")).await;
    assert_eq!((answer["balance"].as_str(), answer["bonus_balance"].as_str()), (Some("20.00"), Some("20.00")));
    let path = format!("/v1/wallet/bonuses/{id}/forfeit");
    let (status, forfeited) = app.send("admin", "POST", &path, Some(json!({"reason": "abuse"}))).await;
    assert_eq!((status, forfeited["status"].as_str()), (StatusCode::OK, Some("forfeited")), "{forfeited}");
    assert_eq!((forfeited["closed_amount"].as_str(), forfeited["wagered"].as_str()), (Some("20.00"), Some("30.00")));
    let player = app.ok("cashier", "GET", "/v1/wallet/players/p1", None).await;
    assert_eq!((player["balances"]["bonus"].as_str(), &player["bonus"]), (Some("0.00"), &Value::Null));
    // A bet that meets the wagering converts what is left to main in the same call.
    let second =
        json!({"id": Uuid::new_v4(), "amount": "10", "wagering_multiplier": "1", "expires_at": "2099-01-01T00:00:00Z"});
    app.ok("admin", "POST", "/v1/wallet/players/p1/bonuses", Some(second)).await;
    let answer = app.game("bet", bet(Uuid::new_v4(), "r2", "15")).await;
    assert_eq!((answer["balance"].as_str(), answer["bonus_balance"].as_str()), (Some("15.00"), Some("0.00")));
}

#[tokio::test]
async fn a_providers_secret_is_never_in_an_answer_or_an_event() {
    let app = app().await;
    app.deposit("p1", "5").await;
    app.game("bet", bet(Uuid::new_v4(), "r1", "1")).await;
    let payloads: Vec<(String,)> =
        sqlx::query_as("SELECT payload::text FROM events").fetch_all(&app.pool).await.unwrap();
    let encoded = |s: &str| s.trim_start_matches("whsec_").to_owned();
    for (payload,) in &payloads {
        for secret in [PSP_SECRET, GAMES_SECRET] {
            assert!(!payload.contains(&encoded(secret)), "a secret in an event: {payload}");
        }
    }
    let rows: Vec<(String,)> = sqlx::query_as("SELECT state::text FROM entities").fetch_all(&app.pool).await.unwrap();
    assert!(rows.iter().all(|(r,)| !r.contains(&encoded(PSP_SECRET))));
    let provider = app.ok("admin", "GET", "/v1/wallet/providers/psp", None).await;
    assert_eq!(
        provider,
        json!({"id": "psp", "kind": "payments", "base_url": "http://127.0.0.1:9",
        "version": 1, "position": provider["position"]})
    );
    // The same secret again is no change; another is a new version.
    let same = json!({"kind": "payments", "secret": PSP_SECRET, "base_url": "http://127.0.0.1:9"});
    assert_eq!(app.ok("admin", "PUT", "/v1/wallet/providers/psp", Some(same)).await["version"], 1);
    let rotated = json!({"kind": "payments", "secret": GAMES_SECRET, "base_url": "http://127.0.0.1:9"});
    assert_eq!(app.ok("admin", "PUT", "/v1/wallet/providers/psp", Some(rotated)).await["version"], 2);
    let (status, problem) = app
        .send("admin", "PUT", "/v1/wallet/providers/psp", Some(json!({"kind": "games", "secret": PSP_SECRET})))
        .await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("provider_kind_fixed")));
}
