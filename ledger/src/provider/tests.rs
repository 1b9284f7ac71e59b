//! The HTTP adapter against the provider simulator's router and a stub server, both served on
//! a loopback port: every answer class (an answer, a refusal, 5xx, a timeout, a refused
//! connection, 4xx, a malformed or wrong-currency answer).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::provider_simulator::{Book, HOLD, Simulator, router};

/// 2026-12-07T00:00:00Z.
const DAY: i64 = 1_796_601_600_000_000;
const HOUR: i64 = 3_600_000_000;

fn at(hours: i64) -> Timestamp {
    Timestamp(DAY + hours * HOUR)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn client(timeout: Duration) -> outbound::Client {
    outbound::Client::new(HttpProvider::client_config(timeout, AllowHttp::Yes)).unwrap()
}

/// A simulator on loopback, its `timeout` holding calls [`HOLD`]; its address.
async fn simulator() -> String {
    serve(router(Arc::new(Simulator::new(Book::default(), HOLD)))).await
}

/// A control call to the simulator at `sim`; its status and answer.
async fn control(sim: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let answer = client(Duration::from_secs(5))
        .send(method, &format!("{sim}{path}"), headers, body.to_string().into())
        .await
        .unwrap();
    (answer.status.as_u16(), serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
}

/// Provider `id` (EUR, opening 100.00, three lines on 2026-12-07) on the simulator at `sim`,
/// and its adapter.
async fn provider(sim: &str, id: &str, timeout: Duration) -> Box<dyn ProviderAdapter> {
    let body = json!({"currency": "EUR", "opening_balance": "100.00", "lines": [
        {"id": "l3", "amount": "-0.10", "reference": "fee", "date": "2026-12-07T15:00:00Z"},
        {"id": "l1", "amount": "250.00", "reference": "dep-1", "date": "2026-12-07T09:00:00Z",
            "metadata": {"psp_ref": "abc"}},
        {"id": "l2", "amount": "-40.5", "currency": "EUR", "reference": "wd-1", "date": "2026-12-07T12:00:00+02:00"},
    ]});
    let (status, answer) = control(sim, Method::PUT, &format!("/control/providers/{id}"), body).await;
    assert_eq!(status, 200, "{answer}");
    let base = format!("{sim}/providers/{id}/");
    Box::new(HttpProvider::new(client(timeout), &base, "EUR").unwrap())
}

async fn behave(sim: &str, id: &str, body: Value) {
    let (status, answer) = control(sim, Method::PUT, &format!("/control/providers/{id}/behaviour"), body).await;
    assert_eq!(status, 200, "{answer}");
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn retryable<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Retryable(message)) => message,
        other => panic!("not retryable: {other:?}"),
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Err(ProviderError::Invalid(message)) => message,
        other => panic!("not invalid: {other:?}"),
    }
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(encode_query_value("2026-12-07T10:00:00+01:00"), "2026-12-07T10%3A00%3A00%2B01%3A00");
    assert_eq!(encode_query_value("a b&c=d~e.f_g-h"), "a%20b%26c%3Dd~e.f_g-h");
    assert_eq!(parse_time("2026-12-07T10:00:00+01:00"), Some(at(9)));
    assert_eq!(parse_time("2026-12-07T09:00:00.5Z"), Some(Timestamp(at(9).0 + 500_000)));
    assert_eq!(parse_time("2026-12-07 09:00:00"), None);
}

#[tokio::test]
async fn the_adapter_reads_a_providers_balance_as_of_a_time_and_its_statement_window() {
    let sim = simulator().await;
    let p = provider(&sim, "p1", Duration::from_secs(5)).await;
    let b = p.balance(at(8)).await.unwrap();
    assert_eq!(b, ReportedBalance { balance: dec("100.00"), currency: "EUR".into(), at: at(8) });
    // 12:00+02:00 is 10:00Z: the line dated exactly at the time counts.
    assert_eq!(p.balance(at(10)).await.unwrap().balance, dec("309.50"));
    assert_eq!(p.balance(at(24)).await.unwrap().balance, dec("309.40"));

    let lines = p.statement(at(0), at(15)).await.unwrap();
    let seen: Vec<(&str, String, Timestamp)> =
        lines.iter().map(|l| (l.id.as_str(), l.amount.to_string(), l.date)).collect();
    assert_eq!(seen, [("l1", "250.00".to_owned(), at(9)), ("l2", "-40.5".to_owned(), at(10))], "to is excluded");
    assert_eq!(lines[0].metadata, BTreeMap::from([("psp_ref".to_owned(), "abc".to_owned())]));
    assert_eq!((lines[1].reference.as_str(), lines[1].currency.as_str()), ("wd-1", "EUR"));
    assert_eq!(p.statement(at(15), at(16)).await.unwrap().len(), 1, "from is included");
    assert!(p.statement(at(16), at(16)).await.unwrap().is_empty());

    behave(&sim, "p1", json!({"drift": "-0.01"})).await;
    assert_eq!(p.balance(at(24)).await.unwrap().balance, dec("309.39"));
}

#[tokio::test]
async fn a_movement_moves_once_per_id_and_a_refusal_carries_its_reason() {
    let sim = simulator().await;
    let p: Arc<dyn ProviderAdapter> = Arc::from(provider(&sim, "p1", Duration::from_secs(5)).await);
    let id = Uuid::new_v4();
    // The port's futures are Send: a task may own one.
    let task = {
        let p = Arc::clone(&p);
        tokio::spawn(async move { p.move_funds(id, Direction::ToOperational, dec("60.00"), "EUR").await })
    };
    assert_eq!(task.await.unwrap(), Ok(MoveOutcome::Succeeded));
    assert_eq!(p.move_funds(id, Direction::ToOperational, dec("60.00"), "EUR").await, Ok(MoveOutcome::Succeeded));
    let far = at(24 * 365 * 100);
    assert_eq!(p.balance(far).await.unwrap().balance, dec("249.40"), "moved once");
    let conflict = invalid(p.move_funds(id, Direction::ToTransactional, dec("60.00"), "EUR").await);
    assert!(conflict.contains("409"), "{conflict}");
    let line = p.statement(Timestamp(0), far).await.unwrap().into_iter().find(|l| l.id == format!("mv-{id}")).unwrap();
    assert_eq!((line.amount, line.reference), (dec("-60.00"), id.to_string()));

    let back = p.move_funds(Uuid::new_v4(), Direction::ToTransactional, dec("0.40"), "EUR").await;
    assert_eq!(back, Ok(MoveOutcome::Succeeded));
    assert_eq!(p.balance(far).await.unwrap().balance, dec("249.80"));

    behave(&sim, "p1", json!({"movements": "refuse", "reason": "daily limit reached"})).await;
    let refused = p.move_funds(Uuid::new_v4(), Direction::ToOperational, dec("1"), "EUR").await;
    assert_eq!(refused, Ok(MoveOutcome::Refused { reason: "daily limit reached".into() }));
    behave(&sim, "p1", json!({"movements": "succeed"})).await;
    let Ok(MoveOutcome::Refused { reason }) =
        p.move_funds(Uuid::new_v4(), Direction::ToOperational, dec("1"), "USD").await
    else {
        panic!("another currency is refused");
    };
    assert!(reason.contains("USD") && reason.contains("EUR"), "{reason}");
    assert_eq!(p.balance(far).await.unwrap().balance, dec("249.80"), "a refusal moves nothing");
}

#[tokio::test]
async fn a_failing_provider_is_retryable_until_its_times_are_used_and_a_held_call_times_out() {
    let sim = simulator().await;
    let p = provider(&sim, "p1", Duration::from_millis(300)).await;
    behave(&sim, "p1", json!({"movements": "fail", "times": 2})).await;
    let id = Uuid::new_v4();
    for _ in 0..2 {
        let message = retryable(p.move_funds(id, Direction::ToOperational, dec("5"), "EUR").await);
        assert!(message.contains("503"), "{message}");
    }
    assert_eq!(p.move_funds(id, Direction::ToOperational, dec("5"), "EUR").await, Ok(MoveOutcome::Succeeded));
    let (_, list) = control(&sim, Method::GET, "/control/providers/p1/movements", Value::Null).await;
    assert_eq!(list["movements"][0]["calls"], 3, "{list}");
    assert_eq!(list["movements"][0]["answers"], json!(["failed", "failed", "succeeded"]));

    behave(&sim, "p1", json!({"balance": "fail", "statement": "timeout"})).await;
    assert!(retryable(p.balance(at(1)).await).contains("503"));
    let message = retryable(p.statement(at(0), at(1)).await);
    assert!(message.contains("did not answer within 300 ms"), "{message}");
    behave(&sim, "p1", json!({"movements": "timeout", "times": 1})).await;
    let later = Uuid::new_v4();
    retryable(p.move_funds(later, Direction::ToOperational, dec("5"), "EUR").await);
    // Nothing was moved by the held call: the same id now succeeds, once.
    assert_eq!(p.move_funds(later, Direction::ToOperational, dec("5"), "EUR").await, Ok(MoveOutcome::Succeeded));
    behave(&sim, "p1", json!({"balance": "succeed"})).await;
    // The movements' lines are dated when they were made (the wall clock): read past them.
    assert_eq!(p.balance(at(24 * 365 * 100)).await.unwrap().balance, dec("299.40"));
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_an_unknown_provider_is_invalid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = HttpProvider::new(client(Duration::from_secs(5)), &format!("http://{addr}/providers/p1"), "EUR").unwrap();
    assert!(retryable(p.balance(at(0)).await).contains("refused"));

    let sim = simulator().await;
    let p = HttpProvider::new(client(Duration::from_secs(5)), &format!("{sim}/providers/nobody"), "EUR").unwrap();
    let message = invalid(p.statement(at(0), at(1)).await);
    assert!(message.contains("404") && message.contains("provider_not_found"), "{message}");
    assert!(HttpProvider::new(client(Duration::from_secs(5)), "ftp://x", "EUR").is_err());
    assert!(HttpProvider::new(client(Duration::from_secs(5)), &sim, "euro").is_err());
    let strict = outbound::Client::new(HttpProvider::client_config(Duration::from_secs(1), AllowHttp::No)).unwrap();
    assert!(HttpProvider::new(strict, &sim, "EUR").is_err(), "http:// only when allowed");
}

/// A server answering every call `status` and `body`, recording what it was asked.
#[derive(Clone, Default)]
struct Stub {
    answer: Arc<Mutex<(u16, String)>>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn stub_answer(State(stub): State<Stub>, uri: Uri) -> Response {
    stub.seen.lock().unwrap().push(uri.to_string());
    let (status, body) = stub.answer.lock().unwrap().clone();
    let status = StatusCode::from_u16(status).unwrap();
    (status, [(header::CONTENT_TYPE, "application/json"), (header::LOCATION, "/elsewhere")], body).into_response()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Balance,
    Statement,
    Move,
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Ok,
    Retryable,
    Invalid,
}

/// What the adapter makes of `status` and `body` answered to `op` (asked for the window
/// 00:00-01:00 and the balance at 00:00).
async fn check(stub: &Stub, p: &HttpProvider, op: Op, status: u16, body: Value, expect: Class) {
    *stub.answer.lock().unwrap() =
        (status, if body.is_string() { body.as_str().unwrap().into() } else { body.to_string() });
    let class = |r: Result<(), ProviderError>| match r {
        Ok(()) => Class::Ok,
        Err(ProviderError::Retryable(_)) => Class::Retryable,
        Err(ProviderError::Invalid(_)) => Class::Invalid,
    };
    let got = match op {
        Op::Balance => class(p.balance(at(0)).await.map(drop)),
        Op::Statement => class(p.statement(at(0), at(1)).await.map(drop)),
        Op::Move => class(p.move_funds(Uuid::nil(), Direction::ToOperational, dec("1"), "EUR").await.map(drop)),
    };
    assert_eq!(got, expect, "{op:?} answered {status} {body}");
}

fn line(id: &str, amount: Value, currency: &str, date: &str) -> Value {
    json!({"id": id, "amount": amount, "currency": currency, "reference": "r", "date": date})
}

#[tokio::test]
async fn statuses_and_malformed_or_wrong_currency_answers_have_their_class() {
    let stub = Stub::default();
    let base = serve(Router::new().fallback(stub_answer).with_state(stub.clone())).await;
    let p = HttpProvider::new(client(Duration::from_secs(5)), &format!("{base}/providers/p%2B1"), "EUR").unwrap();
    let balance = json!({"balance": "1.00", "currency": "EUR", "at": "2026-12-07T00:00:00Z"});
    let ok_line = line("a", json!("1.00"), "EUR", "2026-12-07T00:30:00Z");
    for (op, status, body, expect) in [
        (Op::Balance, 200, balance.clone(), Class::Ok),
        (Op::Balance, 500, balance.clone(), Class::Retryable),
        (Op::Balance, 502, json!("bad gateway"), Class::Retryable),
        (Op::Balance, 429, json!({}), Class::Retryable),
        (Op::Balance, 408, json!({}), Class::Retryable),
        (Op::Balance, 400, json!({"code": "invalid_query"}), Class::Invalid),
        (Op::Balance, 404, json!({}), Class::Invalid),
        (Op::Balance, 302, json!({}), Class::Invalid),
        (Op::Balance, 200, json!("not json"), Class::Invalid),
        (Op::Balance, 200, json!({"balance": 1.0, "currency": "EUR", "at": "2026-12-07T00:00:00Z"}), Class::Invalid),
        (Op::Balance, 200, json!({"balance": "1,00", "currency": "EUR", "at": "2026-12-07T00:00:00Z"}), Class::Invalid),
        (Op::Balance, 200, json!({"balance": "1.00", "currency": "USD", "at": "2026-12-07T00:00:00Z"}), Class::Invalid),
        (Op::Balance, 200, json!({"balance": "1.00", "currency": "EUR", "at": "today"}), Class::Invalid),
        (Op::Balance, 200, json!({"balance": "1.00", "currency": "EUR"}), Class::Invalid),
        (Op::Statement, 200, json!({"lines": [ok_line.clone()]}), Class::Ok),
        (Op::Statement, 200, json!({"lines": []}), Class::Ok),
        (Op::Statement, 503, json!({}), Class::Retryable),
        (Op::Statement, 200, json!({"lines": [line("a", json!("1"), "USD", "2026-12-07T00:30:00Z")]}), Class::Invalid),
        (Op::Statement, 200, json!({"lines": [line("a", json!(1), "EUR", "2026-12-07T00:30:00Z")]}), Class::Invalid),
        (Op::Statement, 200, json!({"lines": [line("a", json!("1"), "EUR", "2026-12-07T01:00:00Z")]}), Class::Invalid),
        (Op::Statement, 200, json!({"lines": [ok_line.clone(), ok_line.clone()]}), Class::Invalid),
        (Op::Statement, 200, json!({"lines": [{"id": "a", "amount": "1", "currency": "EUR"}]}), Class::Invalid),
        (
            Op::Statement,
            200,
            json!({"lines": [{"id": "a", "amount": "1", "currency": "EUR", "reference": "r",
            "date": "2026-12-07T00:30:00Z", "metadata": {"n": 1}}]}),
            Class::Invalid,
        ),
        (Op::Move, 200, json!({"status": "succeeded"}), Class::Ok),
        (Op::Move, 200, json!({"status": "refused"}), Class::Ok),
        (Op::Move, 200, json!({"status": "pending"}), Class::Invalid),
        (Op::Move, 409, json!({"code": "movement_exists_with_different_body"}), Class::Invalid),
        (Op::Move, 504, json!({}), Class::Retryable),
    ] {
        check(&stub, &p, op, status, body, expect).await;
    }
    // The times asked for are percent-encoded, the path as given.
    let seen = stub.seen.lock().unwrap().clone();
    assert!(seen.contains(&"/providers/p%2B1/balance?at=2026-12-07T00%3A00%3A00Z".to_owned()), "{seen:?}");
    assert!(
        seen.contains(
            &"/providers/p%2B1/statement?from=2026-12-07T00%3A00%3A00Z&to=2026-12-07T01%3A00%3A00Z".to_owned()
        ),
        "{seen:?}"
    );
    // A refusal without a reason still says so.
    *stub.answer.lock().unwrap() = (200, json!({"status": "refused"}).to_string());
    let refused = p.move_funds(Uuid::nil(), Direction::ToOperational, dec("1"), "EUR").await;
    assert_eq!(refused, Ok(MoveOutcome::Refused { reason: "no reason given".into() }));
}
