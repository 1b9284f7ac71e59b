//! `ledger wallet-psp-simulator`: a stand-in payment provider on loopback for the gaming wallet,
//! for development, the README's walk-through and the end-to-end tests. It is one provider of
//! the engine (`--provider`, signing with `--secret`, the secret registered with
//! `PUT /v1/wallet/providers/{id}`, whose `base_url` is this simulator):
//!
//! - `GET /pay/{deposit}?amount=&currency=`: the page a deposit's `redirect_url` opens, with a
//!   button to pay and one to decline; each posts to `POST /pay/{deposit}/succeed|fail`, which
//!   sends the webhook and shows what the engine answered.
//! - `POST /payouts` `{"id","player_id","amount","currency"}`: a withdrawal's payout, as the
//!   engine's saga sends it; answered 202 (once per id: the same id again sends nothing), then
//!   by `--payouts`: `succeed` or `fail` sends the outcome after `--payout-delay-ms`, `hold`
//!   waits for a control call.
//! - `POST /control/deposits/{id}/succeed|fail`, `POST /control/withdrawals/{id}/succeed|fail`
//!   `{"amount"?,"currency"?,"reason"?,"provider_reference"?,"webhook_id"?,"late"?}` (amount
//!   and currency default to the page's or the payout's; a `webhook_id` chosen is new), `POST /control/webhooks/{webhook_id}/duplicate`
//!   `{"late"?}` (the same `webhook-id` and body again): each sends one webhook and answers
//!   what the engine answered. `late` stamps it older than the verifier's tolerance.
//! - `GET /events`: what it received and sent, the last `MAX_EVENTS`.
//!
//! Bad input is a problem document with a stable code (the table in [`Error::code`]).

mod engine;
mod page;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use api_common::{Code, Problem};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_core::CurrencyCode;
use outbound::webhooks::WebhookSecret;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use engine::{Answer, Engine, Kind, Message, Outcome, Payment, Settlement, Timing};

/// Events `GET /events` keeps (the oldest are dropped).
const MAX_EVENTS: usize = 1000;
/// Messages kept for `duplicate` (the oldest are forgotten).
const MAX_MESSAGES: usize = 10_000;
/// Payouts and page visits remembered; past it new ones are refused (503).
const MAX_PAYMENTS: usize = 10_000;
/// Attempts of an automatic payout outcome while the engine is unreachable or answers 5xx.
const AUTO_ATTEMPTS: u32 = 5;
const AUTO_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The reason an automatic `fail` gives.
const AUTO_FAIL_REASON: &str = "declined by the PSP simulator";

/// What the simulator does with a payout once it answered 202.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PayoutMode {
    /// Sends `withdrawal.succeeded`.
    Succeed,
    /// Sends `withdrawal.failed`.
    Fail,
    /// Sends nothing until `POST /control/withdrawals/{id}/succeed|fail`.
    Hold,
}

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8092")]
    listen: String,
    /// The engine's command API (`http://` only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    engine: String,
    /// The provider id this simulator is: webhooks go to /v1/wallet/webhooks/payments/{provider}.
    #[arg(long, default_value = "psp")]
    provider: String,
    /// The provider's secret (`whsec_…`), as registered with PUT /v1/wallet/providers/{id}.
    #[arg(long, env = "LEDGER_PSP_SECRET", hide_env_values = true)]
    secret: String,
    /// What happens to a payout once accepted.
    #[arg(long, value_enum, default_value_t = PayoutMode::Succeed)]
    payouts: PayoutMode,
    /// How long after accepting a payout its automatic outcome is sent.
    #[arg(long, default_value_t = 200)]
    payout_delay_ms: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let secret = WebhookSecret::parse(&args.secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let simulator = Arc::new(Simulator {
        engine: Engine::new(&args.engine, &args.provider, secret)?,
        provider: args.provider.clone(),
        payouts: args.payouts,
        payout_delay: Duration::from_millis(args.payout_delay_ms),
        book: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!(
        "PSP simulator on http://{}/pay (provider {}, engine {}, payouts {:?}; what it sent at /events)",
        listener.local_addr()?,
        args.provider,
        args.engine,
        args.payouts
    );
    axum::serve(listener, router(simulator)).with_graceful_shutdown(crate::up::shutdown_signal()).await?;
    Ok(())
}

fn router(simulator: Arc<Simulator>) -> Router {
    Router::new()
        .route("/pay/{deposit}", get(pay_page))
        .route("/pay/{deposit}/{outcome}", post(pay))
        .route("/payouts", post(payout))
        .route("/control/deposits/{id}/{outcome}", post(control_deposit))
        .route("/control/withdrawals/{id}/{outcome}", post(control_withdrawal))
        .route("/control/webhooks/{webhook_id}/duplicate", post(duplicate))
        .route("/events", get(events))
        .fallback(|| async { Error::NotFound })
        .with_state(simulator)
}

/// The simulator's refusals, each with its stable code.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("the body is not what this path takes: {0}")]
    InvalidBody(String),
    #[error("the query is not what this path takes: {0}")]
    InvalidQuery(String),
    #[error("{0} is not a UUID")]
    InvalidId(String),
    #[error("the outcome is succeed or fail, not {0:?}")]
    InvalidOutcome(String),
    #[error("the amount is a decimal number as text, e.g. \"100.00\"")]
    InvalidAmount,
    #[error("the currency is 3 to 12 capital letters and digits, e.g. \"EUR\"")]
    InvalidCurrency,
    #[error("give amount and currency: this payment was not seen on the page or as a payout")]
    AmountRequired,
    #[error("a webhook id is 1 to 64 letters, digits, '_', '-' or '.'")]
    InvalidWebhookId,
    #[error("webhook {0} was sent already: ask for a duplicate instead")]
    WebhookExists(String),
    #[error("no webhook {0} was sent (or it is older than the last {MAX_MESSAGES})")]
    WebhookNotFound(String),
    #[error("{MAX_PAYMENTS} payments are remembered already; restart the simulator")]
    Full,
    #[error("the engine could not be reached: {0}")]
    EngineUnreachable(String),
    #[error("no such path")]
    NotFound,
}

impl Error {
    fn code(&self) -> Code {
        let (status, code, title) = match self {
            Error::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body", "Malformed body"),
            Error::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query", "Malformed query"),
            Error::InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid_id", "Malformed id"),
            Error::InvalidOutcome(_) => (StatusCode::NOT_FOUND, "invalid_outcome", "No such outcome"),
            Error::InvalidAmount => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount", "Malformed amount"),
            Error::InvalidCurrency => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_currency", "Malformed currency"),
            Error::AmountRequired => (StatusCode::UNPROCESSABLE_ENTITY, "amount_required", "Amount unknown"),
            Error::InvalidWebhookId => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_webhook_id", "Malformed webhook id"),
            Error::WebhookExists(_) => (StatusCode::CONFLICT, "webhook_exists", "Webhook sent already"),
            Error::WebhookNotFound(_) => (StatusCode::NOT_FOUND, "webhook_not_found", "No such webhook"),
            Error::Full => (StatusCode::SERVICE_UNAVAILABLE, "simulator_full", "Simulator full"),
            Error::EngineUnreachable(_) => (StatusCode::BAD_GATEWAY, "engine_unreachable", "Engine unreachable"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
        };
        Code { status, code, title }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::new(self.code(), self.to_string(), Uuid::new_v4()).into_response()
    }
}

/// What the simulator remembers: payments it learnt the amount of, messages it sent, events.
#[derive(Default)]
struct Book {
    /// Amount and currency by payment id: a deposit's from its page, a withdrawal's from its payout.
    amounts: HashMap<Uuid, (Decimal, CurrencyCode)>,
    messages: VecDeque<Message>,
    events: VecDeque<Value>,
    next_seq: u64,
}

impl Book {
    fn log(&mut self, mut event: Value) {
        self.next_seq += 1;
        event["seq"] = json!(self.next_seq);
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn remember(&mut self, message: Message) {
        if self.messages.len() == MAX_MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }

    /// Records a payment's amount; false when it is new and there is no room for it.
    fn learn(&mut self, id: Uuid, amount: Decimal, currency: CurrencyCode) -> bool {
        if !self.amounts.contains_key(&id) && self.amounts.len() >= MAX_PAYMENTS {
            return false;
        }
        self.amounts.insert(id, (amount, currency));
        true
    }
}

struct Simulator {
    engine: Engine,
    provider: String,
    payouts: PayoutMode,
    payout_delay: Duration,
    book: Mutex<Book>,
}

/// What a control call or a button answers: the webhook sent and the engine's answer.
#[derive(Debug, serde::Serialize)]
struct Sent {
    webhook_id: String,
    r#type: &'static str,
    late: bool,
    duplicate: bool,
    engine: Answer,
}

fn now_micros() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

impl Simulator {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new message about `s`, remembered for duplicates, delivered once.
    async fn send(&self, kind: Kind, s: &Settlement, timing: Timing) -> Result<Sent, Error> {
        self.send_as(None, kind, s, timing).await
    }

    /// [`Simulator::send`] with the caller's `webhook-id` when it gives one (a new one).
    async fn send_as(&self, id: Option<String>, kind: Kind, s: &Settlement, timing: Timing) -> Result<Sent, Error> {
        let mut message = Message::new(kind, s, now_micros());
        if let Some(id) = id {
            let valid = (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(Error::InvalidWebhookId);
            }
            if self.book().messages.iter().any(|m| m.id == id) {
                return Err(Error::WebhookExists(id));
            }
            message.id = id;
        }
        self.book().remember(message.clone());
        self.deliver(&message, timing, false).await
    }

    /// Delivers `message` and logs what the engine answered (or that it could not be reached).
    async fn deliver(&self, message: &Message, timing: Timing, duplicate: bool) -> Result<Sent, Error> {
        let result = self.engine.deliver(message, timing).await;
        let late = timing == Timing::Late;
        let engine = match &result {
            Ok(answer) => json!(answer),
            Err(e) => json!({"error": format!("{e:#}")}),
        };
        let body: Value = serde_json::from_str(&message.body).unwrap_or(Value::Null);
        self.book().log(json!({"direction": "sent", "webhook_id": message.id, "type": message.kind.as_str(),
            "late": late, "duplicate": duplicate, "body": body, "engine": engine}));
        match result {
            Ok(engine) => {
                Ok(Sent { webhook_id: message.id.clone(), r#type: message.kind.as_str(), late, duplicate, engine })
            }
            Err(e) => {
                tracing::warn!(webhook = %message.id, error = %format!("{e:#}"), "the engine could not be reached");
                Err(Error::EngineUnreachable(format!("{e:#}")))
            }
        }
    }

    /// A payout's automatic outcome, after the delay; sent again while the engine is down or
    /// answers 5xx, up to `AUTO_ATTEMPTS` times.
    async fn settle_payout(self: Arc<Self>, kind: Kind, s: Settlement) {
        tokio::time::sleep(self.payout_delay).await;
        let message = Message::new(kind, &s, now_micros());
        self.book().remember(message.clone());
        for attempt in 1..=AUTO_ATTEMPTS {
            match self.deliver(&message, Timing::OnTime, attempt > 1).await {
                Ok(sent) if sent.engine.status < 500 => return,
                _ if attempt < AUTO_ATTEMPTS => tokio::time::sleep(AUTO_RETRY_DELAY).await,
                _ => tracing::warn!(withdrawal = %s.id, "the payout's outcome was not delivered; send it by control"),
            }
        }
    }
}

fn uuid(text: &str) -> Result<Uuid, Error> {
    text.parse().map_err(|_| Error::InvalidId(text.chars().take(64).collect()))
}

fn outcome(text: &str) -> Result<Outcome, Error> {
    Outcome::parse(text).ok_or_else(|| Error::InvalidOutcome(text.chars().take(64).collect()))
}

fn amount(text: &str) -> Result<Decimal, Error> {
    Decimal::from_str_exact(text).map_err(|_| Error::InvalidAmount)
}

fn currency(text: &str) -> Result<CurrencyCode, Error> {
    CurrencyCode::parse(text).map_err(|_| Error::InvalidCurrency)
}

/// The body as JSON; an empty body is `T`'s default.
fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidBody(e.to_string()))
}

/// The amount and currency of a payment: given, else as the simulator learnt them.
fn amount_of(sim: &Simulator, id: Uuid, given: (Option<&str>, Option<&str>)) -> Result<(Decimal, CurrencyCode), Error> {
    let known = sim.book().amounts.get(&id).cloned();
    match (given, known) {
        ((Some(a), Some(c)), _) => Ok((amount(a)?, currency(c)?)),
        ((a, c), Some((known_amount, known_currency))) => Ok((
            a.map(amount).transpose()?.unwrap_or(known_amount),
            c.map(currency).transpose()?.unwrap_or(known_currency),
        )),
        ((_, _), None) => Err(Error::AmountRequired),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    amount: Option<String>,
    currency: Option<String>,
}

fn page_query(query: Result<Query<PageQuery>, QueryRejection>) -> Result<(Decimal, CurrencyCode), Error> {
    let Query(q) = query.map_err(|e| Error::InvalidQuery(e.body_text()))?;
    match (q.amount, q.currency) {
        (Some(a), Some(c)) => Ok((amount(&a)?, currency(&c)?)),
        _ => Err(Error::AmountRequired),
    }
}

async fn pay_page(
    State(sim): State<Arc<Simulator>>,
    Path(deposit): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Html<String>, Error> {
    let deposit = uuid(&deposit)?;
    let (amount, currency) = page_query(query)?;
    let mut book = sim.book();
    if !book.learn(deposit, amount, currency.clone()) {
        return Err(Error::Full);
    }
    book.log(json!({"direction": "received", "kind": "redirect", "deposit": deposit,
        "amount": amount.to_string(), "currency": currency.as_str()}));
    Ok(Html(page::payment(&sim.provider, deposit, amount, &currency)))
}

async fn pay(
    State(sim): State<Arc<Simulator>>,
    Path((deposit, chosen)): Path<(String, String)>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Html<String>, Error> {
    let (deposit, chosen) = (uuid(&deposit)?, outcome(&chosen)?);
    let (amount, currency) = page_query(query)?;
    let kind = Kind::of(Payment::Deposit, chosen);
    let reason = (chosen == Outcome::Fail).then(|| "declined by the payer".to_owned());
    let s = Settlement { id: deposit, amount, currency, provider_reference: None, reason };
    let sent = sim.send(kind, &s, Timing::OnTime).await?;
    Ok(Html(page::outcome(deposit, kind, &sent.webhook_id, &sent.engine)))
}

/// A control call's body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    amount: Option<String>,
    currency: Option<String>,
    reason: Option<String>,
    provider_reference: Option<String>,
    /// The `webhook-id` to send it with (new; by default `msg_` and a random id).
    webhook_id: Option<String>,
    #[serde(default)]
    late: bool,
}

async fn control(sim: &Simulator, payment: Payment, id: &str, chosen: &str, body: &[u8]) -> Result<Response, Error> {
    let (id, chosen) = (uuid(id)?, outcome(chosen)?);
    let c: Control = parse(body)?;
    let (amount, currency) = amount_of(sim, id, (c.amount.as_deref(), c.currency.as_deref()))?;
    let s = Settlement { id, amount, currency, provider_reference: c.provider_reference, reason: c.reason };
    let sent = sim.send_as(c.webhook_id, Kind::of(payment, chosen), &s, Timing::from_late(c.late)).await?;
    Ok(Json(sent).into_response())
}

async fn control_deposit(
    State(sim): State<Arc<Simulator>>,
    Path((id, chosen)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Error> {
    control(&sim, Payment::Deposit, &id, &chosen, &body).await
}

async fn control_withdrawal(
    State(sim): State<Arc<Simulator>>,
    Path((id, chosen)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Error> {
    control(&sim, Payment::Withdrawal, &id, &chosen, &body).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Again {
    #[serde(default)]
    late: bool,
}

async fn duplicate(
    State(sim): State<Arc<Simulator>>,
    Path(webhook_id): Path<String>,
    body: Bytes,
) -> Result<Json<Sent>, Error> {
    let again: Again = parse(&body)?;
    let message = sim.book().messages.iter().rev().find(|m| m.id == webhook_id).cloned();
    let message = message.ok_or_else(|| Error::WebhookNotFound(webhook_id.chars().take(64).collect()))?;
    Ok(Json(sim.deliver(&message, Timing::from_late(again.late), true).await?))
}

/// A payout as the engine's withdrawal saga posts it.
#[derive(Debug, Deserialize)]
struct PayoutBody {
    id: Uuid,
    player_id: String,
    amount: String,
    currency: String,
}

async fn payout(State(sim): State<Arc<Simulator>>, body: Bytes) -> Result<Response, Error> {
    let p: PayoutBody = serde_json::from_slice(&body).map_err(|e| Error::InvalidBody(e.to_string()))?;
    let (amount, currency) = (amount(&p.amount)?, currency(&p.currency)?);
    let first = {
        let mut book = sim.book();
        let first = !book.amounts.contains_key(&p.id);
        if first && !book.learn(p.id, amount, currency.clone()) {
            return Err(Error::Full);
        }
        book.log(json!({"direction": "received", "kind": "payout", "duplicate": !first,
            "body": {"id": p.id, "player_id": p.player_id, "amount": p.amount, "currency": p.currency}}));
        first
    };
    let kind = match sim.payouts {
        PayoutMode::Succeed => Some(Kind::WithdrawalSucceeded),
        PayoutMode::Fail => Some(Kind::WithdrawalFailed),
        PayoutMode::Hold => None,
    };
    if let (true, Some(kind)) = (first, kind) {
        let reason = (kind == Kind::WithdrawalFailed).then(|| AUTO_FAIL_REASON.to_owned());
        let s = Settlement { id: p.id, amount, currency, provider_reference: None, reason };
        tokio::spawn(Arc::clone(&sim).settle_payout(kind, s));
    }
    let status = if kind.is_some() { "accepted" } else { "held" };
    Ok((StatusCode::ACCEPTED, Json(json!({"id": p.id, "status": status}))).into_response())
}

async fn events(State(sim): State<Arc<Simulator>>) -> Json<Vec<Value>> {
    Json(sim.book().events.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// A simulator whose engine is a port nothing listens on.
    fn simulator(payouts: PayoutMode) -> Arc<Simulator> {
        let engine = Engine::new("http://127.0.0.1:1", "psp", WebhookSecret::parse(SECRET).unwrap()).unwrap();
        Arc::new(Simulator {
            engine,
            provider: "psp".into(),
            payouts,
            payout_delay: Duration::ZERO,
            book: Mutex::default(),
        })
    }

    async fn call(sim: &Arc<Simulator>, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        let request = Request::builder().method(method).uri(path).body(body).unwrap();
        let response = router(Arc::clone(sim)).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn payout(id: Uuid) -> Value {
        json!({"id": id, "player_id": "p1", "amount": "40.00", "currency": "EUR"})
    }

    #[tokio::test]
    async fn a_held_payout_is_accepted_once_per_id_and_sends_nothing() {
        let sim = simulator(PayoutMode::Hold);
        let id = Uuid::new_v4();
        for _ in 0..2 {
            let (status, answer) = call(&sim, "POST", "/payouts", payout(id)).await;
            assert_eq!((status, answer), (StatusCode::ACCEPTED, json!({"id": id, "status": "held"})));
        }
        let (_, events) = call(&sim, "GET", "/events", Value::Null).await;
        let seen: Vec<(&str, bool, u64)> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["direction"].as_str().unwrap(), e["duplicate"].as_bool().unwrap(), e["seq"].as_u64().unwrap()))
            .collect();
        assert_eq!(seen, [("received", false, 1), ("received", true, 2)]);
        // Its amount is the payout's when a control call leaves it out.
        assert_eq!(
            amount_of(&sim, id, (None, None)).unwrap(),
            ("40.00".parse().unwrap(), CurrencyCode::parse("EUR").unwrap())
        );
    }

    #[tokio::test]
    async fn a_webhook_id_chosen_is_used_once_and_checked() {
        let sim = simulator(PayoutMode::Hold);
        let path = format!("/control/deposits/{}/succeed", Uuid::nil());
        let body = |id: &str| json!({"amount": "1.00", "currency": "EUR", "webhook_id": id});
        // The engine is not there, but the message is made with that id.
        let (status, _) = call(&sim, "POST", &path, body("msg_readme-1.a")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(sim.book().messages.back().unwrap().id, "msg_readme-1.a");
        let (status, problem) = call(&sim, "POST", &path, body("msg_readme-1.a")).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("webhook_exists")));
        for bad in ["", "msg readme", &"m".repeat(65)] {
            let (status, problem) = call(&sim, "POST", &path, body(bad)).await;
            assert_eq!(
                (status, problem["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_webhook_id"))
            );
        }
        assert_eq!(sim.book().messages.len(), 1);
        let (status, _) = call(&sim, "POST", &path, body(&"m".repeat(64))).await;
        assert_eq!((status, sim.book().messages.len()), (StatusCode::BAD_GATEWAY, 2));
    }

    #[tokio::test]
    async fn an_unreachable_engine_is_a_bad_gateway_and_an_automatic_outcome_is_retried() {
        let sim = simulator(PayoutMode::Fail);
        let body = json!({"amount": "1.00", "currency": "EUR"});
        let (status, problem) = call(&sim, "POST", &format!("/control/deposits/{}/succeed", Uuid::nil()), body).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("engine_unreachable")));
        // The message was still made: it can be sent again once the engine is up.
        let id = sim.book().messages.back().unwrap().id.clone();
        let (status, problem) = call(&sim, "POST", &format!("/control/webhooks/{id}/duplicate"), Value::Null).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("engine_unreachable")));

        let (status, answer) = call(&sim, "POST", "/payouts", payout(Uuid::new_v4())).await;
        assert_eq!((status, answer["status"].as_str()), (StatusCode::ACCEPTED, Some("accepted")));
        // The failure is sent after the (zero) delay, then again a second later.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let failures = loop {
            let (_, events) = call(&sim, "GET", "/events", Value::Null).await;
            let failures: Vec<Value> =
                events.as_array().unwrap().iter().filter(|e| e["type"] == "withdrawal.failed").cloned().collect();
            if failures.len() >= 2 || std::time::Instant::now() > deadline {
                break failures;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!(failures[0]["webhook_id"], failures[1]["webhook_id"], "the same message again");
        assert_eq!(failures[0]["body"]["data"]["reason"], AUTO_FAIL_REASON);
        assert!(failures[0]["engine"]["error"].is_string(), "{failures:?}");
    }

    #[tokio::test]
    async fn unknown_paths_and_bad_pages_are_problems() {
        let sim = simulator(PayoutMode::Succeed);
        for (method, path, expect) in [
            ("GET", "/nowhere", (StatusCode::NOT_FOUND, "not_found")),
            ("GET", "/pay/not-a-uuid?amount=1&currency=EUR", (StatusCode::BAD_REQUEST, "invalid_id")),
            ("GET", &format!("/pay/{}?amount=1", Uuid::nil()), (StatusCode::UNPROCESSABLE_ENTITY, "amount_required")),
            (
                "GET",
                &format!("/pay/{}?amount=1.5.0&currency=EUR", Uuid::nil()),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"),
            ),
            (
                "POST",
                &format!("/pay/{}/refund?amount=1&currency=EUR", Uuid::nil()),
                (StatusCode::NOT_FOUND, "invalid_outcome"),
            ),
        ] {
            let (status, problem) = call(&sim, method, path, Value::Null).await;
            assert_eq!((status, problem["code"].as_str().unwrap_or_default()), (expect.0, expect.1), "{path}");
        }
    }
}
