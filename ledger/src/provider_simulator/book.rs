//! What the provider simulator knows, with no I/O and no clock (callers pass `now`): each
//! provider's currency, opening balance, statement lines, drift, behaviours and the movement
//! calls it received. The HTTP layer (`mod.rs`) parses requests into these types, locks the book
//! for one decision, and does the waiting a `timeout` behaviour asks for outside the lock.

use std::collections::BTreeMap;

use ledger_core::{CurrencyCode, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Error;
use crate::provider::{Direction, parse_time};

/// Providers one simulator serves.
pub const MAX_PROVIDERS: usize = 100;
/// Statement lines of one provider, movements' lines included.
pub const MAX_LINES: usize = 100_000;
/// Movement ids one provider remembers; past it a new one is answered 503.
pub const MAX_MOVEMENTS: usize = 10_000;
/// Answers kept per movement for `GET /control/providers/{id}/movements` (the count goes on).
pub const MAX_ANSWERS: usize = 100;
/// Digits after the point an amount may have: with [`max_amount`] and [`MAX_LINES`], a balance's
/// sum stays exact within `Decimal`'s 96 bits.
pub const MAX_SCALE: u32 = 8;
/// The longest id, reference, reason, metadata key or value.
pub const MAX_TEXT: usize = 256;
/// Metadata entries per line.
pub const MAX_METADATA: usize = 32;
/// The most calls `times` may name.
pub const MAX_TIMES: u32 = 1_000_000;

/// The largest amount, opening balance or drift, in absolute value: 10^15.
pub fn max_amount() -> Decimal {
    Decimal::new(1_000_000_000_000_000, 0)
}

/// An amount as given (`"-12.50"`): exact, within [`max_amount`] and [`MAX_SCALE`].
pub fn amount(text: &str) -> Result<Decimal, Error> {
    let value = Decimal::from_str_exact(text).map_err(|_| Error::InvalidAmount(clip(text)))?;
    if value.abs() > max_amount() || value.scale() > MAX_SCALE {
        return Err(Error::InvalidAmount(clip(text)));
    }
    Ok(value)
}

pub fn currency(text: &str) -> Result<CurrencyCode, Error> {
    CurrencyCode::parse(text).map_err(|_| Error::InvalidCurrency(clip(text)))
}

pub fn provider_id(text: &str) -> Result<String, Error> {
    if ledger_core::text::valid_id(text) { Ok(text.to_owned()) } else { Err(Error::InvalidProviderId(clip(text))) }
}

/// At most 64 characters of `text`, for an error message.
pub fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

fn text(what: &str, value: String) -> Result<String, Error> {
    if value.chars().count() > MAX_TEXT {
        return Err(Error::InvalidLine(format!("{what} is longer than {MAX_TEXT} characters")));
    }
    Ok(value)
}

/// A statement line as a control call or the file gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    id: String,
    amount: String,
    /// The provider's when left out; another is refused.
    currency: Option<String>,
    reference: String,
    date: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// A provider as `PUT /control/providers/{id}` and the file give it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBody {
    currency: String,
    opening_balance: String,
    #[serde(default)]
    lines: Vec<LineBody>,
}

/// The `--file`: providers by id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    providers: BTreeMap<String, ProviderBody>,
}

/// A line of a statement.
#[derive(Clone, Debug)]
pub struct Line {
    id: String,
    amount: Decimal,
    currency: CurrencyCode,
    reference: String,
    date: Timestamp,
    metadata: BTreeMap<String, String>,
}

impl Line {
    fn parse(body: LineBody, provider_currency: &CurrencyCode) -> Result<Line, Error> {
        if body.id.is_empty() {
            return Err(Error::InvalidLine("a line's id is empty".into()));
        }
        let id = text("a line's id", body.id)?;
        let currency = match body.currency {
            Some(c) => currency(&c)?,
            None => provider_currency.clone(),
        };
        if &currency != provider_currency {
            return Err(Error::CurrencyMismatch { line: clip(&id), currency: currency.as_str().to_owned() });
        }
        let date = parse_time(&body.date).ok_or_else(|| Error::InvalidTime(clip(&body.date)))?;
        if body.metadata.len() > MAX_METADATA {
            return Err(Error::InvalidLine(format!(
                "line {} has more than {MAX_METADATA} metadata entries",
                clip(&id)
            )));
        }
        let mut metadata = BTreeMap::new();
        for (k, v) in body.metadata {
            metadata.insert(text("a metadata key", k)?, text("a metadata value", v)?);
        }
        Ok(Line {
            amount: amount(&body.amount)?,
            reference: text("a reference", body.reference)?,
            id,
            currency,
            date,
            metadata,
        })
    }

    fn wire(&self) -> Value {
        json!({"id": self.id, "amount": self.amount.to_string(), "currency": self.currency.as_str(),
            "reference": self.reference, "date": self.date.rfc3339(), "metadata": self.metadata})
    }
}

/// What a call meets: answered as it should be, refused (movements only), a 503, or held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Succeed,
    Refuse,
    Fail,
    Timeout,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        match text {
            "succeed" => Some(Mode::Succeed),
            "refuse" => Some(Mode::Refuse),
            "fail" => Some(Mode::Fail),
            "timeout" => Some(Mode::Timeout),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Mode::Succeed => "succeed",
            Mode::Refuse => "refuse",
            Mode::Fail => "fail",
            Mode::Timeout => "timeout",
        }
    }
}

/// One operation's behaviour: its mode, for the next `times` calls (`None`: until changed).
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    mode: Mode,
    reason: Option<String>,
    times: Option<u32>,
}

impl Behaviour {
    /// The mode this call meets, counted against `times`; back to `succeed` once they are used.
    fn take(&mut self) -> (Mode, Option<String>) {
        let now = (self.mode, self.reason.clone());
        match self.times {
            Some(n) if n <= 1 => *self = Behaviour::default(),
            Some(n) => self.times = Some(n - 1),
            None => {}
        }
        now
    }

    fn wire(&self) -> Value {
        json!({"mode": self.mode.as_str(), "reason": self.reason, "times": self.times})
    }
}

/// `PUT /control/providers/{id}/behaviour`: each operation named gets `reason` and `times`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourBody {
    movements: Option<String>,
    balance: Option<String>,
    statement: Option<String>,
    reason: Option<String>,
    times: Option<u32>,
    drift: Option<String>,
}

/// What a provider decided about a movement, once and for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Refused(String),
}

impl Outcome {
    pub fn wire(&self) -> Value {
        match self {
            Outcome::Succeeded => json!({"status": "succeeded"}),
            Outcome::Refused(reason) => json!({"status": "refused", "reason": reason}),
        }
    }
}

/// `POST /providers/{id}/movements`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementBody {
    id: Uuid,
    direction: Direction,
    amount: String,
    currency: String,
}

/// A movement request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovementRequest {
    id: Uuid,
    direction: Direction,
    amount: Decimal,
    currency: CurrencyCode,
}

impl MovementRequest {
    pub fn parse(body: MovementBody) -> Result<MovementRequest, Error> {
        let amount = amount(&body.amount)?;
        if amount <= Decimal::ZERO {
            return Err(Error::InvalidAmount(body.amount));
        }
        Ok(MovementRequest { id: body.id, direction: body.direction, amount, currency: currency(&body.currency)? })
    }

    fn wire(&self) -> Value {
        json!({"id": self.id, "direction": self.direction.as_str(), "amount": self.amount.to_string(),
            "currency": self.currency.as_str()})
    }
}

/// A movement id's history: its body, its outcome once decided, what each call was answered.
#[derive(Clone, Debug)]
struct Movement {
    request: MovementRequest,
    outcome: Option<Outcome>,
    calls: u64,
    answers: Vec<&'static str>,
}

impl Movement {
    fn answered(&mut self, answer: &'static str) {
        self.calls += 1;
        if self.answers.len() < MAX_ANSWERS {
            self.answers.push(answer);
        }
    }
}

/// What a call is answered: now, with a 503, or after holding it.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<T> {
    Now(T),
    Fail,
    Hold,
}

/// One simulated provider.
#[derive(Clone, Debug)]
pub struct Provider {
    currency: CurrencyCode,
    opening_balance: Decimal,
    lines: Vec<Line>,
    drift: Decimal,
    balance: Behaviour,
    statement: Behaviour,
    movements_behaviour: Behaviour,
    movements: Vec<Movement>,
}

impl Provider {
    pub fn parse(body: ProviderBody) -> Result<Provider, Error> {
        let currency = currency(&body.currency)?;
        let mut provider = Provider {
            opening_balance: amount(&body.opening_balance)?,
            currency,
            lines: Vec::new(),
            drift: Decimal::ZERO,
            balance: Behaviour::default(),
            statement: Behaviour::default(),
            movements_behaviour: Behaviour::default(),
            movements: Vec::new(),
        };
        provider.append(body.lines)?;
        Ok(provider)
    }

    /// Appends `lines`, all or none: each id new, the currency the provider's.
    fn append(&mut self, lines: Vec<LineBody>) -> Result<usize, Error> {
        if self.lines.len() + lines.len() > MAX_LINES {
            return Err(Error::TooMany(format!("{MAX_LINES} lines a provider")));
        }
        let mut new: Vec<Line> = Vec::with_capacity(lines.len());
        for body in lines {
            let line = Line::parse(body, &self.currency)?;
            if self.lines.iter().chain(&new).any(|l| l.id == line.id) {
                return Err(Error::LineExists(clip(&line.id)));
            }
            new.push(line);
        }
        let n = new.len();
        self.lines.extend(new);
        Ok(n)
    }

    fn summary(&self, id: &str) -> Value {
        json!({"id": id, "currency": self.currency.as_str(), "opening_balance": self.opening_balance.to_string(),
            "lines": self.lines.len(), "movements": self.movements.len()})
    }

    fn behaviours(&self) -> Value {
        json!({"movements": self.movements_behaviour.wire(), "balance": self.balance.wire(),
            "statement": self.statement.wire(), "drift": self.drift.to_string()})
    }

    /// Opening balance + the lines dated ≤ `at` + the drift.
    fn balance_at(&self, at: Timestamp) -> Result<Decimal, Error> {
        let lines = self.lines.iter().filter(|l| l.date <= at).map(|l| l.amount);
        std::iter::once(self.opening_balance)
            .chain(lines)
            .chain(std::iter::once(self.drift))
            .try_fold(Decimal::ZERO, |sum, a| sum.checked_add(a))
            .ok_or(Error::Overflow)
    }
}

/// Every provider, by id.
#[derive(Debug, Default)]
pub struct Book {
    providers: BTreeMap<String, Provider>,
}

impl Book {
    /// The book of a `--file`.
    pub fn load(file: FileBody) -> Result<Book, Error> {
        let mut book = Book::default();
        for (id, body) in file.providers {
            book.replace(&id, body)?;
        }
        Ok(book)
    }

    fn provider(&mut self, id: &str) -> Result<&mut Provider, Error> {
        self.providers.get_mut(id).ok_or_else(|| Error::ProviderNotFound(clip(id)))
    }

    /// Creates or replaces provider `id` whole (its behaviours and movements forgotten).
    pub fn replace(&mut self, id: &str, body: ProviderBody) -> Result<Value, Error> {
        let id = provider_id(id)?;
        if !self.providers.contains_key(&id) && self.providers.len() >= MAX_PROVIDERS {
            return Err(Error::TooMany(format!("{MAX_PROVIDERS} providers")));
        }
        let provider = Provider::parse(body)?;
        let summary = provider.summary(&id);
        self.providers.insert(id, provider);
        Ok(summary)
    }

    pub fn append(&mut self, id: &str, lines: Vec<LineBody>) -> Result<Value, Error> {
        let provider = self.provider(id)?;
        let appended = provider.append(lines)?;
        let mut summary = provider.summary(id);
        summary["appended"] = json!(appended);
        Ok(summary)
    }

    /// Sets the behaviours named (all checked before any is set); answers them all.
    pub fn behave(&mut self, id: &str, body: BehaviourBody) -> Result<Value, Error> {
        let provider = self.provider(id)?;
        let mode = |text: Option<String>, refusable: bool| -> Result<Option<Mode>, Error> {
            let Some(text) = text else { return Ok(None) };
            match Mode::parse(&text) {
                Some(Mode::Refuse) if !refusable => {
                    Err(Error::InvalidBehaviour("balance and statement are succeed, fail or timeout".into()))
                }
                Some(mode) => Ok(Some(mode)),
                None => {
                    Err(Error::InvalidBehaviour(format!("{:?} is not succeed, refuse, fail or timeout", clip(&text))))
                }
            }
        };
        let movements = mode(body.movements, true)?;
        let balance = mode(body.balance, false)?;
        let statement = mode(body.statement, false)?;
        let named = movements.is_some() || balance.is_some() || statement.is_some();
        if !named && (body.reason.is_some() || body.times.is_some()) {
            return Err(Error::InvalidBehaviour("reason and times go with movements, balance or statement".into()));
        }
        if body.times.is_some_and(|n| n == 0 || n > MAX_TIMES) {
            return Err(Error::InvalidBehaviour(format!("times is 1 to {MAX_TIMES}")));
        }
        let reason = body
            .reason
            .map(|r| text("a reason", r))
            .transpose()
            .map_err(|_| Error::InvalidBehaviour(format!("a reason is at most {MAX_TEXT} characters")))?;
        let drift = body.drift.as_deref().map(amount).transpose()?;
        let set = |mode: Option<Mode>, behaviour: &mut Behaviour| {
            if let Some(mode) = mode {
                *behaviour = Behaviour { mode, reason: reason.clone(), times: body.times };
            }
        };
        set(movements, &mut provider.movements_behaviour);
        set(balance, &mut provider.balance);
        set(statement, &mut provider.statement);
        if let Some(drift) = drift {
            provider.drift = drift;
        }
        Ok(provider.behaviours())
    }

    pub fn balance(&mut self, id: &str, at: Timestamp) -> Result<Answer<Value>, Error> {
        let provider = self.provider(id)?;
        match provider.balance.take().0 {
            Mode::Fail => return Ok(Answer::Fail),
            Mode::Timeout => return Ok(Answer::Hold),
            Mode::Succeed | Mode::Refuse => {}
        }
        let balance = provider.balance_at(at)?;
        Ok(Answer::Now(json!({"balance": balance.to_string(), "currency": provider.currency.as_str(),
            "at": at.rfc3339()})))
    }

    /// The lines with `from` ≤ date < `to`, in date order (the order given among equal dates).
    pub fn statement(&mut self, id: &str, from: Timestamp, to: Timestamp) -> Result<Answer<Value>, Error> {
        if from > to {
            return Err(Error::InvalidWindow);
        }
        let provider = self.provider(id)?;
        match provider.statement.take().0 {
            Mode::Fail => return Ok(Answer::Fail),
            Mode::Timeout => return Ok(Answer::Hold),
            Mode::Succeed | Mode::Refuse => {}
        }
        let mut lines: Vec<&Line> = provider.lines.iter().filter(|l| (from..to).contains(&l.date)).collect();
        lines.sort_by_key(|l| l.date);
        Ok(Answer::Now(json!({"lines": lines.iter().map(|l| l.wire()).collect::<Vec<_>>()})))
    }

    /// A movement call, in a fixed order: a known id with another body is a conflict; then the
    /// behaviour's `fail` or `timeout` (no outcome yet); a known id answers its outcome; a new one
    /// in another currency is refused, then by the behaviour's `refuse`; else it succeeds and adds
    /// its statement line dated `now`.
    pub fn movement(&mut self, id: &str, request: MovementRequest, now: Timestamp) -> Result<Answer<Outcome>, Error> {
        let provider = self.provider(id)?;
        let known = provider.movements.iter().position(|m| m.request.id == request.id);
        if let Some(i) = known
            && provider.movements[i].request != request
        {
            return Err(Error::MovementConflict(request.id));
        }
        if known.is_none() && provider.movements.len() >= MAX_MOVEMENTS {
            return Err(Error::Full);
        }
        let i = known.unwrap_or_else(|| {
            let record = Movement { request: request.clone(), outcome: None, calls: 0, answers: Vec::new() };
            provider.movements.push(record);
            provider.movements.len() - 1
        });
        let held = match provider.movements_behaviour.mode {
            Mode::Fail => Some((Answer::Fail, "failed")),
            Mode::Timeout => Some((Answer::Hold, "timed_out")),
            Mode::Succeed | Mode::Refuse => None,
        };
        if let Some((answer, label)) = held {
            provider.movements_behaviour.take();
            provider.movements[i].answered(label);
            return Ok(answer);
        }
        if let Some(outcome) = provider.movements[i].outcome.clone() {
            provider.movements[i].answered("replayed");
            return Ok(Answer::Now(outcome));
        }
        let outcome = if request.currency != provider.currency {
            Outcome::Refused(format!(
                "currency {} is not this provider's ({})",
                request.currency.as_str(),
                provider.currency.as_str()
            ))
        } else {
            match provider.movements_behaviour.take() {
                (Mode::Refuse, reason) => {
                    Outcome::Refused(reason.unwrap_or_else(|| "refused by the provider simulator".to_owned()))
                }
                _ if provider.lines.len() >= MAX_LINES => {
                    Outcome::Refused(format!("the simulator keeps {MAX_LINES} lines a provider"))
                }
                _ => {
                    let amount = match request.direction {
                        Direction::ToOperational => -request.amount,
                        Direction::ToTransactional => request.amount,
                    };
                    let metadata = BTreeMap::from([("direction".to_owned(), request.direction.as_str().to_owned())]);
                    provider.lines.push(Line {
                        id: format!("mv-{}", request.id),
                        amount,
                        currency: provider.currency.clone(),
                        reference: request.id.to_string(),
                        date: now,
                        metadata,
                    });
                    Outcome::Succeeded
                }
            }
        };
        let movement = &mut provider.movements[i];
        movement.outcome = Some(outcome.clone());
        movement.answered(match outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Refused(_) => "refused",
        });
        Ok(Answer::Now(outcome))
    }

    /// The movement calls provider `id` received, in the order their ids first came.
    pub fn movements(&mut self, id: &str) -> Result<Value, Error> {
        let provider = self.provider(id)?;
        let list: Vec<Value> = provider
            .movements
            .iter()
            .map(|m| {
                json!({"id": m.request.id, "body": m.request.wire(),
                    "outcome": m.outcome.as_ref().map(Outcome::wire), "calls": m.calls, "answers": m.answers})
            })
            .collect();
        Ok(json!({"movements": list}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_601_600_000_000; // 2026-12-07T00:00:00Z

    fn eur_book(lines: Value) -> Book {
        let body = json!({"currency": "EUR", "opening_balance": "100.00", "lines": lines});
        let mut book = Book::default();
        book.replace("p1", serde_json::from_value(body).unwrap()).unwrap();
        book
    }

    fn line(id: &str, amount: &str, date: &str) -> Value {
        json!({"id": id, "amount": amount, "reference": format!("ref-{id}"), "date": date})
    }

    fn request(id: u128, amount: &str, currency: &str) -> MovementRequest {
        let body = json!({"id": Uuid::from_u128(id), "direction": "to_operational", "amount": amount,
            "currency": currency});
        MovementRequest::parse(serde_json::from_value(body).unwrap()).unwrap()
    }

    fn balance(book: &mut Book, at: &str) -> String {
        match book.balance("p1", parse_time(at).unwrap()).unwrap() {
            Answer::Now(v) => v["balance"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_balance_sums_the_lines_up_to_and_at_the_time_and_the_drift() {
        let mut book =
            eur_book(json!([line("b", "-20.5", "2026-12-07T12:00:00Z"), line("a", "10.00", "2026-12-07T10:00:00Z"),]));
        assert_eq!(balance(&mut book, "2026-12-07T09:59:59Z"), "100.00");
        assert_eq!(balance(&mut book, "2026-12-07T10:00:00Z"), "110.00");
        assert_eq!(balance(&mut book, "2026-12-07T13:00:00+01:00"), "89.50");
        book.behave("p1", BehaviourBody { drift: Some("0.01".into()), ..Default::default() }).unwrap();
        assert_eq!(balance(&mut book, "2026-12-08T00:00:00Z"), "89.51");
    }

    #[test]
    fn a_movement_moves_once_and_its_id_with_another_body_is_a_conflict() {
        let mut book = eur_book(json!([]));
        let now = Timestamp(T0);
        assert_eq!(book.movement("p1", request(1, "30", "EUR"), now), Ok(Answer::Now(Outcome::Succeeded)));
        assert_eq!(book.movement("p1", request(1, "30.00", "EUR"), now), Ok(Answer::Now(Outcome::Succeeded)));
        assert_eq!(book.movement("p1", request(1, "31", "EUR"), now), Err(Error::MovementConflict(Uuid::from_u128(1))));
        assert_eq!(balance(&mut book, "2026-12-07T00:00:00Z"), "70.00");
        let refused = book.movement("p1", request(2, "5", "USD"), now).unwrap();
        assert!(matches!(refused, Answer::Now(Outcome::Refused(ref r)) if r.contains("USD")), "{refused:?}");
        let list = book.movements("p1").unwrap();
        assert_eq!(list["movements"][0]["calls"], 2);
        assert_eq!(list["movements"][0]["answers"], json!(["succeeded", "replayed"]));
        assert_eq!(list["movements"][1]["outcome"]["status"], "refused");
    }

    #[test]
    fn a_behaviour_with_times_returns_to_succeed_and_a_replay_does_not_use_up_a_refusal() {
        let mut book = eur_book(json!([]));
        let now = Timestamp(T0);
        book.movement("p1", request(1, "1", "EUR"), now).unwrap();
        let body = BehaviourBody { movements: Some("refuse".into()), times: Some(1), ..Default::default() };
        book.behave("p1", body).unwrap();
        assert_eq!(book.movement("p1", request(1, "1", "EUR"), now), Ok(Answer::Now(Outcome::Succeeded)));
        let refused = book.movement("p1", request(2, "1", "EUR"), now);
        assert_eq!(refused, Ok(Answer::Now(Outcome::Refused("refused by the provider simulator".into()))));
        assert_eq!(book.movement("p1", request(3, "1", "EUR"), now), Ok(Answer::Now(Outcome::Succeeded)));
        let body = BehaviourBody { balance: Some("timeout".into()), times: Some(2), ..Default::default() };
        book.behave("p1", body).unwrap();
        let at = Timestamp(T0);
        assert_eq!(book.balance("p1", at), Ok(Answer::Hold));
        assert_eq!(book.balance("p1", at), Ok(Answer::Hold));
        assert!(matches!(book.balance("p1", at), Ok(Answer::Now(_))));
    }

    #[test]
    fn bad_lines_and_behaviours_are_refused_whole() {
        let mut book = eur_book(json!([line("a", "1", "2026-12-07T10:00:00Z")]));
        let append = |book: &mut Book, lines: Value| book.append("p1", serde_json::from_value(lines).unwrap());
        for (lines, expect) in [
            (json!([line("b", "1", "2026-12-07T10:00:00Z"), line("a", "1", "2026-12-07T10:00:00Z")]), "line_exists"),
            (json!([line("c", "1.123456789", "2026-12-07T10:00:00Z")]), "invalid_amount"),
            (json!([line("c", "1e3", "2026-12-07T10:00:00Z")]), "invalid_amount"),
            (json!([line("c", "10000000000000000", "2026-12-07T10:00:00Z")]), "invalid_amount"),
            (json!([line("c", "1", "yesterday")]), "invalid_time"),
            (json!([line("", "1", "2026-12-07T10:00:00Z")]), "invalid_line"),
            (
                json!([{"id": "c", "amount": "1", "currency": "USD", "reference": "r",
                    "date": "2026-12-07T10:00:00Z"}]),
                "currency_mismatch",
            ),
        ] {
            let error = append(&mut book, lines.clone()).unwrap_err();
            assert_eq!(error.code().code, expect, "{lines}");
        }
        assert_eq!(book.providers["p1"].lines.len(), 1, "nothing appended");
        for body in [
            BehaviourBody { balance: Some("refuse".into()), ..Default::default() },
            BehaviourBody { movements: Some("explode".into()), ..Default::default() },
            BehaviourBody { movements: Some("fail".into()), times: Some(0), ..Default::default() },
            BehaviourBody { times: Some(2), ..Default::default() },
        ] {
            assert_eq!(book.behave("p1", body).unwrap_err().code().code, "invalid_behaviour");
        }
        assert_eq!(book.providers["p1"].movements_behaviour.mode, Mode::Succeed);
    }

    #[test]
    fn the_largest_amounts_sum_exactly() {
        assert_eq!(max_amount().to_string(), "1000000000000000");
        let big = Decimal::from_str_exact("999999999999999.99999999").unwrap();
        let sum = (0..MAX_LINES).try_fold(Decimal::ZERO, |s, _| s.checked_add(big)).unwrap();
        assert_eq!(sum, big * Decimal::from(MAX_LINES as u64));
        assert_eq!(sum.scale(), MAX_SCALE);
    }
}
