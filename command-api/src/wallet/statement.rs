//! `GET /v1/wallet/players/{id}/statement`: a player's statement over `[from, to)`, as JSON, CSV
//! or XLSX. Its lines are the wallet's movements (`ledger_core::wallet::movement`): those the
//! wallet read model applied, then those of the log past its checkpoint (`super::movements`), so
//! the totals are the replay's to the last commit: the opening balance of each account (main,
//! bonus, locked) is the sum of its movements before `from`, the closing balance the opening plus
//! the movements in the period, and each movement carries the balance after it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::wallet::Rejection;
use ledger_core::wallet::scope::READ;
use ledger_core::{CurrencyCode, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::routes::{at_scale, player_of};
use crate::ApiState;
use crate::certificates::audit::csv_field;
use crate::error::{ApiError, Problem, Refusal};
use crate::handler::{json, require_of, require_some};
use crate::xlsx::{self, Cell, Sheet};

/// Most movements one statement holds, in its period; a longer one asks for a shorter period.
pub const MAX_MOVEMENTS: usize = 100_000;

/// A player's account, as the statement names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatementAccount {
    Main,
    Bonus,
    Locked,
}

impl StatementAccount {
    pub const ALL: [StatementAccount; 3] = [StatementAccount::Main, StatementAccount::Bonus, StatementAccount::Locked];

    pub fn name(self) -> &'static str {
        match self {
            StatementAccount::Main => "main",
            StatementAccount::Bonus => "bonus",
            StatementAccount::Locked => "locked",
        }
    }

    fn id(self, player: &str) -> Uuid {
        use ledger_core::wallet::{bonus_account, locked_account, main_account};
        match self {
            StatementAccount::Main => main_account(player).0.0,
            StatementAccount::Bonus => bonus_account(player).0.0,
            StatementAccount::Locked => locked_account(player).0.0,
        }
    }
}

/// One movement of one of the player's accounts, in log order: what the statement is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub position: i64,
    pub at: Timestamp,
    pub account: StatementAccount,
    pub kind: String,
    pub reference: String,
    /// A game transaction's round.
    pub round: Option<String>,
    /// Signed: positive adds to the account's balance (a credit of the player's liability).
    pub amount: Decimal,
}

/// The statement over `[from, to)` of a player's lines (all of them, in log order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Per account, in `StatementAccount::ALL` order.
    pub accounts: Vec<AccountTotals>,
    /// The lines in the period, each with its account's balance after it.
    pub movements: Vec<(Line, Decimal)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountTotals {
    pub opening: Decimal,
    pub credits: Decimal,
    pub debits: Decimal,
    pub closing: Decimal,
}

/// Why a statement cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementError {
    /// More than `MAX_MOVEMENTS` in the period.
    TooLarge,
    /// A sum outside the decimal range.
    Overflow,
}

impl Statement {
    /// An empty statement of the period, to `push` the player's lines into.
    pub fn new(from: Option<Timestamp>, to: Option<Timestamp>) -> Statement {
        Statement { from, to, accounts: vec![AccountTotals::default(); 3], movements: Vec::new() }
    }

    /// Folds every line of the player (in log order) into the period's statement: lines before
    /// `from` make the opening balances, lines from `from` until before `to` are listed, later
    /// ones are left out.
    pub fn of(lines: Vec<Line>, from: Option<Timestamp>, to: Option<Timestamp>) -> Result<Statement, StatementError> {
        let mut statement = Statement::new(from, to);
        for line in lines {
            statement.push(line)?;
        }
        Ok(statement)
    }

    /// Folds in the player's next line: only the period's are kept.
    pub fn push(&mut self, line: Line) -> Result<(), StatementError> {
        if self.to.is_some_and(|to| line.at >= to) {
            return Ok(());
        }
        let t = &mut self.accounts[line.account as usize];
        let add = |a: Decimal, b: Decimal| a.checked_add(b).ok_or(StatementError::Overflow);
        if self.from.is_some_and(|from| line.at < from) {
            t.opening = add(t.opening, line.amount)?;
            t.closing = t.opening;
            return Ok(());
        }
        if self.movements.len() == MAX_MOVEMENTS {
            return Err(StatementError::TooLarge);
        }
        if line.amount.is_sign_negative() {
            t.debits = add(t.debits, -line.amount)?;
        } else {
            t.credits = add(t.credits, line.amount)?;
        }
        t.closing = add(t.closing, line.amount)?;
        let after = t.closing;
        self.movements.push((line, after));
        Ok(())
    }
}

/// How the statement is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatementFormat {
    Json,
    Csv,
    Xlsx,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// From this time, inclusive (RFC 3339; default: the player's first movement).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Until this time, exclusive (RFC 3339; default: every movement so far).
    #[param(format = DateTime)]
    to: Option<String>,
    /// json (default), csv or xlsx.
    #[param(value_type = Option<StatementFormat>)]
    format: Option<String>,
}

/// An account's balances over the period.
#[derive(Serialize, ToSchema)]
pub struct StatementAccountBody {
    pub account: StatementAccount,
    pub account_id: Uuid,
    /// The balance before `from`: the sum of every movement before it.
    pub opening: String,
    /// What the period added and took.
    pub credits: String,
    pub debits: String,
    /// opening + credits − debits.
    pub closing: String,
}

/// One movement of the period.
#[derive(Serialize, ToSchema)]
pub struct StatementMovementBody {
    /// The log position of the event that made it.
    pub position: i64,
    /// RFC 3339.
    pub at: String,
    pub account: StatementAccount,
    /// deposit, withdrawal_lock, withdrawal_returned, bet, win, rollback, bonus_granted, …
    pub kind: String,
    /// The deposit, withdrawal or bonus id, or the game transaction (a rollback's own).
    pub reference: String,
    /// A game transaction's round.
    pub round: Option<String>,
    /// Signed: what it added to (positive) or took from (negative) the account.
    pub amount: String,
    pub balance_after: String,
}

/// A player's statement.
#[derive(Serialize, ToSchema)]
pub struct StatementBody {
    pub player_id: String,
    pub currency: String,
    /// The period, as asked (none: unbounded).
    pub from: Option<String>,
    pub to: Option<String>,
    /// The log read up to this position (the read model's checkpoint, then the log past it).
    pub position: i64,
    /// main, bonus and locked, in that order.
    pub accounts: Vec<StatementAccountBody>,
    pub movements: Vec<StatementMovementBody>,
}

/// An XLSX workbook's bytes, as the document names them.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Workbook(pub Vec<u8>);

/// The CSV columns: the opening balances as `opening` rows, then the movements, then the
/// closing balances as `closing` rows.
pub const CSV_HEADER: &str = "position,at,account,kind,reference,round,amount,balance_after";

fn invalid(code: &'static str, detail: String) -> ApiError {
    ApiError::Rejected(Refusal { status: StatusCode::UNPROCESSABLE_ENTITY, code, detail })
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let Some(text) = value else { return Ok(None) };
    let bad =
        || invalid("invalid_period", format!("{name}: {text:?} is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"));
    let t = time::OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).map(|m| Some(Timestamp(m))).map_err(|_| bad())
}

fn format_param(value: Option<&str>) -> Result<StatementFormat, ApiError> {
    match value {
        None | Some("json") => Ok(StatementFormat::Json),
        Some("csv") => Ok(StatementFormat::Csv),
        Some("xlsx") => Ok(StatementFormat::Xlsx),
        Some(other) => Err(invalid("invalid_format", format!("format: {other:?} is not json, csv or xlsx"))),
    }
}

impl From<StatementError> for ApiError {
    fn from(e: StatementError) -> ApiError {
        match e {
            StatementError::TooLarge => invalid(
                "statement_too_large",
                format!("the period holds more than {MAX_MOVEMENTS} movements: ask for a shorter one"),
            ),
            StatementError::Overflow => ApiError::Internal("a statement's sum overflowed".into()),
        }
    }
}

#[utoipa::path(get, path = "/v1/wallet/players/{id}/statement", tag = "wallet",
    params(("id" = String, Path, description = "The player's id"), StatementParams),
    responses(
        (status = 200, description = "The statement: JSON, CSV (opening rows, the movements, closing rows) or an \
            XLSX workbook (sheets Summary and Movements, amounts as numbers, times as dates)",
            content((StatementBody = "application/json"), (String = "text/csv"),
                (Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, body = Problem, description = "invalid_query: a parameter the statement does not take"),
        (status = 404, body = Problem, description = "player_not_found"),
        (status = 422, body = Problem, description = "invalid_period (from or to not RFC 3339, or from after to), \
            invalid_format, statement_too_large"),
        (status = 503, body = Problem, description = "read_model_unavailable: the wallet read model's database \
            did not answer")),
    security(("api_key" = [])))]
pub async fn player_statement(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<StatementParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let who = require_some(&state, &headers, READ).await?;
    require_of(&state, &who, &[READ.of(&id)]).await?;
    let Query(params) = params.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let from = time_param("from", params.from.as_deref())?;
    let to = time_param("to", params.to.as_deref())?;
    let format = format_param(params.format.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(invalid("invalid_period", "from is after to".into()));
    }
    let (player, _) = player_of(&state, &id)?.ok_or(ApiError::from(Rejection::PlayerNotFound))?;
    let mut statement = Statement::new(from, to);
    let position =
        super::movements::of_player(&state, &id, |line| statement.push(line).map_err(ApiError::from)).await?;
    let body = body(&state, &id, &player.currency, &statement, position);
    Ok(match format {
        StatementFormat::Json => json(StatusCode::OK, body),
        StatementFormat::Csv => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv(&body)).into_response()
        }
        StatementFormat::Xlsx => {
            let disposition = format!("attachment; filename=\"statement-{id}.xlsx\"");
            let headers =
                [(header::CONTENT_TYPE, xlsx::CONTENT_TYPE.to_owned()), (header::CONTENT_DISPOSITION, disposition)];
            (StatusCode::OK, headers, workbook(&statement, &body)).into_response()
        }
    })
}

fn body(state: &ApiState, player: &str, currency: &CurrencyCode, s: &Statement, position: i64) -> StatementBody {
    let text = |d: Decimal| at_scale(state, currency, d);
    let accounts = StatementAccount::ALL
        .iter()
        .zip(&s.accounts)
        .map(|(&account, t)| StatementAccountBody {
            account,
            account_id: account.id(player),
            opening: text(t.opening),
            credits: text(t.credits),
            debits: text(t.debits),
            closing: text(t.closing),
        })
        .collect();
    let movements = s
        .movements
        .iter()
        .map(|(line, after)| StatementMovementBody {
            position: line.position,
            at: line.at.rfc3339(),
            account: line.account,
            kind: line.kind.clone(),
            reference: line.reference.clone(),
            round: line.round.clone(),
            amount: text(line.amount),
            balance_after: text(*after),
        })
        .collect();
    StatementBody {
        player_id: player.to_owned(),
        currency: currency.to_string(),
        from: s.from.map(Timestamp::rfc3339),
        to: s.to.map(Timestamp::rfc3339),
        position,
        accounts,
        movements,
    }
}

fn csv(body: &StatementBody) -> String {
    let mut out = String::with_capacity(64 + body.movements.len() * 120);
    out.push_str(CSV_HEADER);
    out.push('\n');
    let mut row = |fields: [&str; 8]| {
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    };
    let from = body.from.as_deref().unwrap_or_default();
    for a in &body.accounts {
        row(["", from, a.account.name(), "opening", "", "", "", &a.opening]);
    }
    for m in &body.movements {
        let position = m.position.to_string();
        let round = m.round.as_deref().unwrap_or_default();
        row([&position, &m.at, m.account.name(), &m.kind, &m.reference, round, &m.amount, &m.balance_after]);
    }
    let to = body.to.as_deref().unwrap_or_default();
    for a in &body.accounts {
        row(["", to, a.account.name(), "closing", "", "", "", &a.closing]);
    }
    out
}

/// Two sheets: Summary (each account's opening, credits, debits, closing) and Movements; every
/// amount a number cell at the currency's scale, every time a date cell.
fn workbook(s: &Statement, body: &StatementBody) -> Vec<u8> {
    let number = |text: &str| text.parse::<Decimal>().map_or(Cell::Empty, Cell::Number);
    let mut summary = Sheet::new("Summary");
    summary.push(
        ["Player", "Currency", "Account", "Opening", "Credits", "Debits", "Closing", "From", "To"]
            .map(Cell::from)
            .to_vec(),
    );
    let time = |t: Option<Timestamp>| t.map_or(Cell::Empty, Cell::Time);
    for a in &body.accounts {
        summary.push(vec![
            body.player_id.as_str().into(),
            body.currency.as_str().into(),
            a.account.name().into(),
            number(&a.opening),
            number(&a.credits),
            number(&a.debits),
            number(&a.closing),
            time(s.from),
            time(s.to),
        ]);
    }
    let mut movements = Sheet::new("Movements");
    movements.push(
        ["At", "Position", "Account", "Kind", "Reference", "Round", "Amount", "Balance after"].map(Cell::from).to_vec(),
    );
    for ((line, _), m) in s.movements.iter().zip(&body.movements) {
        movements.push(vec![
            Cell::Time(line.at),
            Cell::Number(Decimal::from(m.position)),
            m.account.name().into(),
            m.kind.as_str().into(),
            m.reference.as_str().into(),
            m.round.as_deref().map_or(Cell::Empty, Cell::from),
            number(&m.amount),
            number(&m.balance_after),
        ]);
    }
    xlsx::workbook(&[summary, movements])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn line(position: i64, at: i64, account: StatementAccount, amount: &str) -> Line {
        Line {
            position,
            at: Timestamp(at),
            account,
            kind: "bet".into(),
            reference: format!("r{position}"),
            round: None,
            amount: Decimal::from_str(amount).unwrap(),
        }
    }

    #[test]
    fn opening_is_before_from_and_closing_adds_the_period() {
        use StatementAccount::*;
        let lines = vec![
            line(1, 10, Main, "100.00"),
            line(2, 20, Main, "-30.00"),
            line(3, 20, Bonus, "5.00"),
            line(4, 30, Main, "12.50"),
            line(5, 40, Locked, "50.00"),
            line(6, 50, Main, "-1.00"),
        ];
        let s = Statement::of(lines.clone(), Some(Timestamp(20)), Some(Timestamp(50))).unwrap();
        let d = |t: &str| Decimal::from_str(t).unwrap();
        assert_eq!(
            s.accounts[0],
            AccountTotals { opening: d("100"), credits: d("12.5"), debits: d("30"), closing: d("82.5") }
        );
        assert_eq!(s.accounts[1], AccountTotals { opening: d("0"), credits: d("5"), debits: d("0"), closing: d("5") });
        assert_eq!(s.accounts[2].closing, d("50"));
        let listed: Vec<(i64, Decimal)> = s.movements.iter().map(|(l, after)| (l.position, *after)).collect();
        assert_eq!(listed, [(2, d("70")), (3, d("5")), (4, d("82.5")), (5, d("50"))]);
        // Unbounded: every line, and the closing is the sum of all.
        let all = Statement::of(lines, None, None).unwrap();
        assert_eq!(all.movements.len(), 6);
        assert_eq!(all.accounts[0].closing, d("81.5"));
        assert_eq!(all.accounts[0].opening, Decimal::ZERO);
    }

    #[test]
    fn a_period_holds_a_bounded_number_of_movements() {
        let lines: Vec<Line> =
            (0..=MAX_MOVEMENTS as i64).map(|i| line(i + 1, i, StatementAccount::Main, "1")).collect();
        assert_eq!(Statement::of(lines.clone(), None, None), Err(StatementError::TooLarge));
        // The lines before `from` only make the opening balance.
        let s = Statement::of(lines, Some(Timestamp(1)), None).unwrap();
        assert_eq!((s.accounts[0].opening, s.movements.len()), (Decimal::ONE, MAX_MOVEMENTS));
        let max = line(1, 0, StatementAccount::Main, &Decimal::MAX.to_string());
        assert_eq!(Statement::of(vec![max.clone(), max], None, None), Err(StatementError::Overflow));
    }

    #[test]
    fn parameters_are_refused_with_stable_codes() {
        let code = |e: ApiError| (e.code().status, e.code().code);
        assert_eq!(
            code(time_param("from", Some("yesterday")).unwrap_err()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_period")
        );
        assert_eq!(time_param("from", Some("1970-01-01T00:00:01Z")).unwrap(), Some(Timestamp(1_000_000)));
        assert_eq!(code(format_param(Some("pdf")).unwrap_err()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_format"));
        assert_eq!(format_param(None).unwrap(), StatementFormat::Json);
        assert_eq!(format_param(Some("xlsx")).unwrap(), StatementFormat::Xlsx);
    }
}
