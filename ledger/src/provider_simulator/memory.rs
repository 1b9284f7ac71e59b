//! The simulator in memory: one provider of a [`Book`] behind [`ProviderAdapter`], with no HTTP
//! and a clock the caller sets — the port's in-memory adapter, for unit tests of reconciliation.
//! It decides as `ledger provider-simulator` does (the same book), and its answers pass the same
//! checks as [`crate::provider::HttpProvider`]'s; a `fail` or `timeout` behaviour is `Retryable`
//! at once (nothing is held), a refusal of the book `Invalid` as its 4xx would be.

// The reconciliation domain's tests, written beside this module, are its callers.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

use ledger_core::{CurrencyCode, Timestamp};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Error;
use super::book::{Answer, Book, MovementBody, MovementRequest, ProviderBody};
use crate::provider::{
    Call, Direction, MoveOutcome, ProviderAdapter, ProviderError, ReportedBalance, StatementLine, read_balance,
    read_outcome, read_statement,
};

/// The id the provider has in its book (never seen by callers).
const ID: &str = "memory";

pub struct MemoryProvider {
    currency: CurrencyCode,
    book: Mutex<Book>,
    now: Mutex<Timestamp>,
}

fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::InvalidBody(e.to_string()))
}

impl MemoryProvider {
    /// The provider `{"currency","opening_balance","lines"?}` (as `PUT /control/providers/{id}`
    /// takes it), its clock at `now`.
    pub fn new(provider: Value, now: Timestamp) -> Result<MemoryProvider, Error> {
        let mut book = Book::default();
        let summary = book.replace(ID, body::<ProviderBody>(provider)?)?;
        let currency = super::book::currency(summary["currency"].as_str().unwrap_or_default())?;
        Ok(MemoryProvider { currency, book: Mutex::new(book), now: Mutex::new(now) })
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends statement lines (`[{"id","amount","reference","date",…}]`), all or none.
    pub fn append(&self, lines: Value) -> Result<Value, Error> {
        let lines = body(lines)?;
        self.book().append(ID, lines)
    }

    /// Sets behaviours and drift as `PUT /control/providers/{id}/behaviour` does.
    pub fn behave(&self, behaviour: Value) -> Result<Value, Error> {
        let behaviour = body(behaviour)?;
        self.book().behave(ID, behaviour)
    }

    /// The movement calls received, as `GET /control/providers/{id}/movements` lists them.
    pub fn movements(&self) -> Value {
        self.book().movements(ID).unwrap_or(Value::Null)
    }

    /// The time a successful movement's line is dated.
    pub fn set_now(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn movement(
        &self,
        id: Uuid,
        direction: Direction,
        amount: Decimal,
        currency: &str,
    ) -> Result<Answer<Value>, Error> {
        let request: MovementBody =
            body(json!({"id": id, "direction": direction, "amount": amount.to_string(), "currency": currency}))?;
        let answer = self.book().movement(ID, MovementRequest::parse(request)?, self.now())?;
        Ok(match answer {
            Answer::Now(outcome) => Answer::Now(outcome.wire()),
            Answer::Fail => Answer::Fail,
            Answer::Hold => Answer::Hold,
        })
    }
}

/// A decision as the HTTP adapter would read its answer.
fn read<T>(
    decision: Result<Answer<Value>, Error>,
    check: impl FnOnce(&[u8]) -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    match decision {
        Ok(Answer::Now(value)) => check(value.to_string().as_bytes()),
        Ok(Answer::Fail) => Err(ProviderError::Retryable(Error::Unavailable.to_string())),
        Ok(Answer::Hold) => Err(ProviderError::Retryable(Error::Held.to_string())),
        Err(e) if e.code().status.is_server_error() => Err(ProviderError::Retryable(e.to_string())),
        Err(e) => Err(ProviderError::Invalid(e.to_string())),
    }
}

impl ProviderAdapter for MemoryProvider {
    fn balance(&self, at: Timestamp) -> Call<'_, ReportedBalance> {
        let decision = self.book().balance(ID, at);
        Box::pin(async move { read(decision, |b| read_balance(&self.currency, b)) })
    }

    fn statement(&self, from: Timestamp, to: Timestamp) -> Call<'_, Vec<StatementLine>> {
        let decision = self.book().statement(ID, from, to);
        Box::pin(async move { read(decision, |b| read_statement(&self.currency, from, to, b)) })
    }

    fn move_funds<'a>(
        &'a self,
        id: Uuid,
        direction: Direction,
        amount: Decimal,
        currency: &'a str,
    ) -> Call<'a, MoveOutcome> {
        let decision = self.movement(id, direction, amount, currency);
        Box::pin(async move { read(decision, read_outcome) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T00:00:00Z.
    const DAY: i64 = 1_796_601_600_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[tokio::test]
    async fn the_memory_provider_decides_as_the_simulator_and_is_checked_as_the_http_adapter() {
        let body = json!({"currency": "EUR", "opening_balance": "10.00", "lines": [
            {"id": "a", "amount": "5.00", "reference": "r", "date": "2026-12-07T01:00:00Z"}]});
        let memory = MemoryProvider::new(body, Timestamp(DAY + 2 * HOUR)).unwrap();
        let p: &dyn ProviderAdapter = &memory;
        assert_eq!(p.balance(Timestamp(DAY)).await.unwrap().balance, dec("10.00"));
        assert_eq!(p.balance(Timestamp(DAY + HOUR)).await.unwrap().balance, dec("15.00"));

        let id = Uuid::new_v4();
        for _ in 0..2 {
            assert_eq!(p.move_funds(id, Direction::ToOperational, dec("4"), "EUR").await, Ok(MoveOutcome::Succeeded));
        }
        let lines = p.statement(Timestamp(DAY), Timestamp(DAY + 3 * HOUR)).await.unwrap();
        let seen: Vec<(String, Decimal, Timestamp)> = lines.into_iter().map(|l| (l.id, l.amount, l.date)).collect();
        assert_eq!(
            seen,
            [
                ("a".into(), dec("5.00"), Timestamp(DAY + HOUR)),
                (format!("mv-{id}"), dec("-4"), Timestamp(DAY + 2 * HOUR))
            ]
        );
        assert!(matches!(
            p.move_funds(id, Direction::ToOperational, dec("5"), "EUR").await,
            Err(ProviderError::Invalid(m)) if m.contains("another body")
        ));
        assert!(matches!(
            p.move_funds(Uuid::new_v4(), Direction::ToOperational, dec("0"), "EUR").await,
            Err(ProviderError::Invalid(_))
        ));

        memory.behave(json!({"movements": "refuse", "reason": "closed", "times": 1, "balance": "timeout"})).unwrap();
        let refused = p.move_funds(Uuid::new_v4(), Direction::ToTransactional, dec("1"), "EUR").await;
        assert_eq!(refused, Ok(MoveOutcome::Refused { reason: "closed".into() }));
        assert!(matches!(p.balance(Timestamp(DAY)).await, Err(ProviderError::Retryable(_))));
        assert_eq!(p.balance(Timestamp(DAY + 3 * HOUR)).await.unwrap().balance, dec("11.00"));
        memory.append(json!([{"id": "b", "amount": "1", "reference": "r", "date": "2026-12-07T02:30:00Z"}])).unwrap();
        memory.behave(json!({"drift": "0.50"})).unwrap();
        assert_eq!(p.balance(Timestamp(DAY + 3 * HOUR)).await.unwrap().balance, dec("12.50"));
        assert_eq!(
            memory.movements()["movements"].as_array().unwrap().len(),
            2,
            "a conflict and a malformed call are no movement"
        );
        assert!(MemoryProvider::new(json!({"currency": "EUR"}), Timestamp(DAY)).is_err());
    }
}
