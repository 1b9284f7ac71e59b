//! `ledger provider-simulator`: stand-in payment providers on loopback for reconciliation, for
//! development, the README and the tests. Each provider is served at `/providers/{id}` (its
//! `base_url` is `http://ADDR/providers/{id}`), in the wire format of `crate::provider`:
//!
//! - `GET …/balance?at=RFC3339`: the opening balance + the lines dated ≤ at + the drift;
//! - `GET …/statement?from=&to=`: the lines with from ≤ date < to, in date order;
//! - `POST …/movements` `{"id","direction","amount","currency"}`: idempotent by id (the first
//!   outcome again; another body under the id is 409); a success adds the line `mv-{id}`
//!   (−amount `to_operational`, +amount `to_transactional`) dated now; another currency is refused.
//!
//! Control, in JSON: `PUT /control/providers/{id}` `{"currency","opening_balance","lines"}`
//! (create or replace), `POST /control/providers/{id}/lines` `{"lines":[…]}` (append),
//! `PUT /control/providers/{id}/behaviour` `{"movements"|"balance"|"statement":
//! "succeed"|"refuse"|"fail"|"timeout","reason"?,"times"?,"drift"?}` (`fail` answers 503,
//! `timeout` holds the call [`HOLD`] then answers 504, `times` the next N calls, `refuse` for
//! movements only), `GET /control/providers/{id}/movements` (each movement id's body, outcome,
//! calls and what each was answered).
//!
//! Bad input is a problem document with a stable code (the table in [`Error::code`]); the state
//! (`book.rs`) is memory only, each list bounded.

mod book;
pub mod memory;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use api_common::{Code, Problem};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ledger_core::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

pub use book::Book;
use book::{Answer, BehaviourBody, FileBody, MovementBody, MovementRequest, ProviderBody};

/// How long a `timeout` behaviour holds a call: longer than any sane client waits.
pub const HOLD: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen: IP:PORT on loopback (port 0: any free one).
    #[arg(long, default_value = "127.0.0.1:8093")]
    listen: String,
    /// Providers to start with: `{"providers":{"<id>":{"currency","opening_balance","lines"}}}`.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let addr: SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {:?}: IP:PORT, e.g. 127.0.0.1:8093", args.listen))?;
    anyhow::ensure!(addr.ip().is_loopback(), "--listen {addr}: the simulator listens on loopback only");
    let book = match &args.file {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("--file {}", path.display()))?;
            let file: FileBody = serde_json::from_slice(&text)
                .with_context(|| format!("--file {}: not the file's JSON", path.display()))?;
            Book::load(file).map_err(|e| anyhow::anyhow!("--file {}: {e}", path.display()))?
        }
        None => Book::default(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--listen {addr}"))?;
    println!("provider-simulator listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(Arc::new(Simulator::new(book, HOLD))))
        .with_graceful_shutdown(crate::up::shutdown_signal())
        .await?;
    Ok(())
}

/// The simulator's state: the book, and how long a `timeout` holds a call.
pub struct Simulator {
    book: Mutex<Book>,
    hold: Duration,
}

impl Simulator {
    pub fn new(book: Book, hold: Duration) -> Simulator {
        Simulator { book: Mutex::new(book), hold }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A decision's answer: now, a 503, or a 504 after holding the call (outside the lock).
    async fn answer(&self, answer: Answer<Value>) -> Response {
        match answer {
            Answer::Now(body) => Json(body).into_response(),
            Answer::Fail => Error::Unavailable.into_response(),
            Answer::Hold => {
                tokio::time::sleep(self.hold).await;
                Error::Held.into_response()
            }
        }
    }
}

pub fn router(simulator: Arc<Simulator>) -> Router {
    Router::new()
        .route("/providers/{id}/balance", get(balance))
        .route("/providers/{id}/statement", get(statement))
        .route("/providers/{id}/movements", post(movement))
        .route("/control/providers/{id}", put(replace))
        .route("/control/providers/{id}/lines", post(append))
        .route("/control/providers/{id}/behaviour", put(behave))
        .route("/control/providers/{id}/movements", get(movements))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(simulator)
}

/// The simulator's refusals, each with its stable code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the body is not what this path takes: {0}")]
    InvalidBody(String),
    #[error("the query is not what this path takes: {0}")]
    InvalidQuery(String),
    #[error("{0:?} is not a provider id (1 to 64 of A-Z a-z 0-9 . _ -)")]
    InvalidProviderId(String),
    #[error("{0:?} is not an amount: a decimal as text, e.g. \"-12.50\", at most 10^15 and 8 decimals")]
    InvalidAmount(String),
    #[error("{0:?} is not a currency: 3 to 12 capital letters and digits, e.g. \"EUR\"")]
    InvalidCurrency(String),
    #[error("{0:?} is not an RFC 3339 time, e.g. \"2026-12-07T10:00:00Z\"")]
    InvalidTime(String),
    #[error("{0}")]
    InvalidLine(String),
    #[error("line {line:?} is in {currency}, not the provider's currency")]
    CurrencyMismatch { line: String, currency: String },
    #[error("line {0:?} is there already")]
    LineExists(String),
    #[error("{0}")]
    InvalidBehaviour(String),
    #[error("from is after to")]
    InvalidWindow,
    #[error("the simulator keeps at most {0}")]
    TooMany(String),
    #[error("the balance overflows")]
    Overflow,
    #[error("no provider {0:?}: create it with PUT /control/providers/{{id}}")]
    ProviderNotFound(String),
    #[error("movement {0} was received with another body")]
    MovementConflict(Uuid),
    #[error("the provider remembers {} movements already; restart the simulator", book::MAX_MOVEMENTS)]
    Full,
    #[error("the provider is unavailable (behaviour: fail)")]
    Unavailable,
    #[error("the provider held the call (behaviour: timeout)")]
    Held,
    #[error("no such path")]
    NotFound,
    #[error("this path does not take that method")]
    MethodNotAllowed,
}

impl Error {
    fn code(&self) -> Code {
        let (status, code, title) = match self {
            Error::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body", "Malformed body"),
            Error::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query", "Malformed query"),
            Error::InvalidProviderId(_) => (StatusCode::BAD_REQUEST, "invalid_provider_id", "Malformed provider id"),
            Error::InvalidAmount(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount", "Malformed amount"),
            Error::InvalidCurrency(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_currency", "Malformed currency"),
            Error::InvalidTime(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time", "Malformed time"),
            Error::InvalidLine(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_line", "Malformed line"),
            Error::CurrencyMismatch { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch", "Another currency")
            }
            Error::LineExists(_) => (StatusCode::CONFLICT, "line_exists", "Line exists"),
            Error::InvalidBehaviour(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_behaviour", "Malformed behaviour")
            }
            Error::InvalidWindow => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_window", "Empty window"),
            Error::TooMany(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too_many", "Over a limit"),
            Error::Overflow => (StatusCode::UNPROCESSABLE_ENTITY, "balance_overflow", "Balance overflow"),
            Error::ProviderNotFound(_) => (StatusCode::NOT_FOUND, "provider_not_found", "No such provider"),
            Error::MovementConflict(_) => {
                (StatusCode::CONFLICT, "movement_exists_with_different_body", "Movement exists")
            }
            Error::Full => (StatusCode::SERVICE_UNAVAILABLE, "simulator_full", "Simulator full"),
            Error::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", "Provider unavailable"),
            Error::Held => (StatusCode::GATEWAY_TIMEOUT, "provider_timeout", "Provider timed out"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
        };
        Code { status, code, title }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::new(self.code(), self.to_string(), Uuid::new_v4()).into_response()
    }
}

fn now() -> Timestamp {
    Timestamp(i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX))
}

fn id(path: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    let Path(id) = path.map_err(|e| Error::InvalidProviderId(book::clip(&e.body_text())))?;
    book::provider_id(&id)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidBody(e.to_string()))
}

/// A time of the query, required.
fn query_time(name: &str, value: Option<String>) -> Result<Timestamp, Error> {
    let value = value.ok_or_else(|| Error::InvalidQuery(format!("{name} is required (RFC 3339)")))?;
    crate::provider::parse_time(&value)
        .ok_or_else(|| Error::InvalidQuery(format!("{name}={:?} is not an RFC 3339 time", book::clip(&value))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceQuery {
    at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn balance(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let id = id(path)?;
    let Query(q) = query.map_err(|e| Error::InvalidQuery(e.body_text()))?;
    let at = query_time("at", q.at)?;
    let answer = sim.book().balance(&id, at)?;
    Ok(sim.answer(answer).await)
}

async fn statement(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let id = id(path)?;
    let Query(q) = query.map_err(|e| Error::InvalidQuery(e.body_text()))?;
    let (from, to) = (query_time("from", q.from)?, query_time("to", q.to)?);
    let answer = sim.book().statement(&id, from, to)?;
    Ok(sim.answer(answer).await)
}

async fn movement(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, Error> {
    let id = id(path)?;
    let request = MovementRequest::parse(parse::<MovementBody>(&body)?)?;
    let answer = sim.book().movement(&id, request, now())?;
    let answer = match answer {
        Answer::Now(outcome) => Answer::Now(outcome.wire()),
        Answer::Fail => Answer::Fail,
        Answer::Hold => Answer::Hold,
    };
    Ok(sim.answer(answer).await)
}

async fn replace(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    let id = id(path)?;
    let body: ProviderBody = parse(&body)?;
    Ok(Json(sim.book().replace(&id, body)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesBody {
    lines: Vec<book::LineBody>,
}

async fn append(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    let id = id(path)?;
    let body: LinesBody = parse(&body)?;
    Ok(Json(sim.book().append(&id, body.lines)?))
}

async fn behave(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, Error> {
    let id = id(path)?;
    let body: BehaviourBody = parse(&body)?;
    Ok(Json(sim.book().behave(&id, body)?))
}

async fn movements(
    State(sim): State<Arc<Simulator>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Error> {
    let id = id(path)?;
    Ok(Json(sim.book().movements(&id)?))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    async fn call(sim: &Arc<Simulator>, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(path).body(Body::from(body.to_owned())).unwrap();
        let response = router(Arc::clone(sim)).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn bad_requests_to_the_provider_simulator_are_problems_with_their_code() {
        let sim = Arc::new(Simulator::new(Book::default(), Duration::ZERO));
        let provider = json!({"currency": "EUR", "opening_balance": "0"}).to_string();
        assert_eq!(call(&sim, "PUT", "/control/providers/p1", &provider).await.0, StatusCode::OK);
        let movement = |amount: &str| {
            json!({"id": Uuid::nil(), "direction": "to_operational", "amount": amount, "currency": "EUR"}).to_string()
        };
        for (method, path, body, expect) in [
            ("GET", "/nowhere", "", (404, "not_found")),
            ("DELETE", "/control/providers/p1", "", (405, "method_not_allowed")),
            ("GET", "/providers/p1/balance", "", (400, "invalid_query")),
            ("GET", "/providers/p1/balance?at=yesterday", "", (400, "invalid_query")),
            ("GET", "/providers/p1/balance?at=2026-12-07T10:00:00Z&x=1", "", (400, "invalid_query")),
            ("GET", "/providers/p2/balance?at=2026-12-07T10:00:00Z", "", (404, "provider_not_found")),
            ("GET", "/providers/a%20b/balance?at=2026-12-07T10:00:00Z", "", (400, "invalid_provider_id")),
            ("GET", "/providers/%FF/balance?at=2026-12-07T10:00:00Z", "", (400, "invalid_provider_id")),
            (
                "GET",
                "/providers/p1/statement?from=2026-12-08T00:00:00Z&to=2026-12-07T00:00:00Z",
                "",
                (422, "invalid_window"),
            ),
            ("GET", "/providers/p1/statement?from=2026-12-08T00:00:00Z", "", (400, "invalid_query")),
            ("POST", "/providers/p1/movements", "{", (400, "invalid_body")),
            ("POST", "/providers/p1/movements", &movement("0"), (422, "invalid_amount")),
            ("POST", "/providers/p1/movements", &movement("-1"), (422, "invalid_amount")),
            ("POST", "/providers/p1/movements", &movement("1.5.0"), (422, "invalid_amount")),
            (
                "POST",
                "/providers/p1/movements",
                &json!({"id": "x", "direction": "to_operational", "amount": "1", "currency": "EUR"}).to_string(),
                (400, "invalid_body"),
            ),
            (
                "POST",
                "/providers/p1/movements",
                &json!({"id": Uuid::nil(), "direction": "sideways", "amount": "1", "currency": "EUR"}).to_string(),
                (400, "invalid_body"),
            ),
            (
                "POST",
                "/providers/p1/movements",
                &json!({"id": Uuid::nil(), "direction": "to_operational", "amount": 1, "currency": "EUR"}).to_string(),
                (400, "invalid_body"),
            ),
            (
                "POST",
                "/providers/p1/movements",
                &json!({"id": Uuid::nil(), "direction": "to_operational", "amount": "1", "currency": "eur"})
                    .to_string(),
                (422, "invalid_currency"),
            ),
            ("PUT", "/control/providers/p1", r#"{"currency":"EUR"}"#, (400, "invalid_body")),
            ("PUT", "/control/providers/p1", r#"{"currency":"EUR","opening_balance":"x"}"#, (422, "invalid_amount")),
            ("PUT", "/control/providers/p1", r#"{"currency":"E","opening_balance":"1"}"#, (422, "invalid_currency")),
            ("POST", "/control/providers/p2/lines", r#"{"lines":[]}"#, (404, "provider_not_found")),
            ("PUT", "/control/providers/p1/behaviour", r#"{"movements":"explode"}"#, (422, "invalid_behaviour")),
            ("PUT", "/control/providers/p1/behaviour", r#"{"drift":1.5}"#, (400, "invalid_body")),
            ("PUT", "/control/providers/p1/behaviour", r#"{"colour":"red"}"#, (400, "invalid_body")),
            ("GET", "/control/providers/p2/movements", "", (404, "provider_not_found")),
        ] {
            let (status, problem) = call(&sim, method, path, body).await;
            assert_eq!(
                (status.as_u16(), problem["code"].as_str().unwrap_or_default()),
                expect,
                "{method} {path} {body}: {problem}"
            );
        }
        let (_, list) = call(&sim, "GET", "/control/providers/p1/movements", "").await;
        assert_eq!(list, json!({"movements": []}), "a refused request is no movement");
    }
}
