//! The gaming wallet's statement over HTTP (`GET /v1/wallet/players/{id}/statement`): a player's
//! deposits, bets, wins, rollbacks, bonus and withdrawals as JSON, CSV and XLSX. The closing
//! balances equal the ledger's accounts, which `verify` shows equal to the replay of the log;
//! the opening balance of a period is the balance at its start; the workbook's amounts are
//! number cells (read back from the zip, and through LibreOffice where it is installed); bad
//! parameters are 422 problems with stable codes, an unknown player 404. Real router, real
//! writer, real Postgres.
//!
//! The API without a wallet read model reads the whole log (the first tests). With one (the
//! test's own reader over `projections::wallet`, as `ledger up` equips the API, on a read
//! database of its own), the statement is the same answer byte for byte, read from the read
//! model up to its checkpoint and from the log past it: `/metrics` shows that other players'
//! movements change nothing it reads, that a stopped projection's tail comes from the log,
//! and a reader that fails is a 503.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use command_api::wallet::movements::{AppliedLine, MOVING_TYPES, MovementKey, MovementsReader, Reading};
use command_api::{ApiState, router};
use http_body_util::BodyExt;
use ledger_store::keys::create_key;
use ledger_store::{LedgerHandle, Writer, WriterConfig};
use outbound::webhooks::{WebhookSecret, headers};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use test_support::fresh_database;
use tower::ServiceExt;
use uuid::Uuid;

const PSP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GAMES_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgZ2FtZXMgc2VjcmV0IQ==";

struct App {
    router: Router,
    /// The same ledger's API without a read model: the statement from the whole log.
    bare: Router,
    ledger: LedgerHandle,
    keys: HashMap<&'static str, String>,
    pool: sqlx::PgPool,
    db: test_support::TestDatabase,
}

async fn raw(router: &Router, request: Request<Body>) -> (StatusCode, HashMap<String, String>, Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    (status, headers, response.into_body().collect().await.unwrap().to_bytes())
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("{text:?} is a decimal"))
}

impl App {
    async fn raw(&self, request: Request<Body>) -> (StatusCode, HashMap<String, String>, Bytes) {
        raw(&self.router, request).await
    }

    async fn send(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[channel]));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let (status, _, bytes) =
            self.raw(request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn ok(&self, channel: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(channel, method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// The statement's raw answer.
    async fn statement(&self, channel: &str, query: &str) -> (StatusCode, HashMap<String, String>, Bytes) {
        let request = Request::builder()
            .uri(format!("/v1/wallet/players/p1/statement{query}"))
            .header("authorization", format!("Bearer {}", self.keys[channel]))
            .body(Body::empty())
            .unwrap();
        self.raw(request).await
    }

    async fn json_statement(&self, query: &str) -> Value {
        let (status, _, bytes) = self.statement("reader", query).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body
    }

    async fn signed(&self, path: &str, secret: &str, body: &Value) -> Value {
        let text = body.to_string();
        let secret = WebhookSecret::parse(secret).unwrap();
        let mut request = Request::builder().method("POST").uri(path).header("content-type", "application/json");
        for (name, value) in headers(&secret, &format!("msg_{}", Uuid::new_v4()), now_secs(), text.as_bytes()) {
            request = request.header(name, value);
        }
        let (status, _, bytes) = self.raw(request.body(Body::from(text)).unwrap()).await;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        answer
    }

    async fn webhook(&self, kind: &str, id: Uuid, amount: &str) {
        let body = json!({"type": kind, "timestamp": "2026-12-07T10:00:00Z",
            "data": {"id": id, "amount": amount, "currency": "EUR"}});
        self.signed("/v1/wallet/webhooks/payments/psp", PSP_SECRET, &body).await;
    }

    async fn game(&self, action: &str, body: Value) -> Value {
        let answer = self.signed(&format!("/v1/wallet/games/games/{action}"), GAMES_SECRET, &body).await;
        assert_eq!(answer["status"], "OK", "{action}: {answer}");
        answer
    }

    async fn deposit(&self, player: &str, amount: &str) -> Uuid {
        let id = Uuid::new_v4();
        let body = json!({"id": id, "player_id": player, "amount": amount, "currency": "EUR", "provider": "psp"});
        self.ok("admin", "POST", "/v1/wallet/deposits", Some(body)).await;
        self.webhook("deposit.succeeded", id, amount).await;
        id
    }

    async fn withdraw(&self, amount: &str, outcome: &str) -> Uuid {
        let id = Uuid::new_v4();
        let body = json!({"id": id, "player_id": "p1", "amount": amount, "currency": "EUR", "provider": "psp"});
        self.ok("admin", "POST", "/v1/wallet/withdrawals", Some(body)).await;
        self.webhook(outcome, id, amount).await;
        id
    }

    /// main, bonus and locked as the player's answer shows them (the writer's accounts).
    async fn balances(&self) -> [String; 3] {
        let p = self.ok("reader", "GET", "/v1/wallet/players/p1", None).await;
        ["main", "bonus", "locked"].map(|a| p["balances"][a].as_str().unwrap().to_owned())
    }
}

fn call(tx: Uuid, round: &str, amount: &str) -> Value {
    json!({"request_uuid": Uuid::new_v4(), "transaction_uuid": tx, "player_id": "p1", "round": round,
        "amount": amount, "currency": "EUR"})
}

/// Players `p1` and `p2` (KYC basic) in EUR, a payment provider `psp`, a game provider `games`.
async fn app() -> App {
    app_reading(None).await
}

/// The same, the API reading statements' movements through `reader`.
async fn app_reading(reader: Option<Arc<dyn MovementsReader>>) -> App {
    let db = fresh_database().await;
    let (ledger, writer) = Writer::start(&db.url, WriterConfig::default()).await.expect("writer starts");
    std::mem::forget(writer);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut keys = HashMap::new();
    for (channel, scopes) in [
        ("admin", &["wallet:admin", "wallet:pay"][..]),
        ("reader", &["wallet:read:p1"][..]),
        ("other", &["wallet:read:p2"][..]),
    ] {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        keys.insert(channel, create_key(&pool, channel, &scopes).await.unwrap().1);
    }
    let secrets: Arc<dyn secrets::KeyProvider> = Arc::new(secrets::LocalKeys::random("k1").unwrap());
    let bare = router(ApiState::new(ledger.clone(), pool.clone()).with_secrets(Arc::clone(&secrets)));
    let mut state = ApiState::new(ledger.clone(), pool.clone()).with_secrets(secrets);
    if let Some(reader) = reader {
        state = state.with_wallet_movements(reader);
    }
    let app = App { router: router(state), bare, ledger, keys, pool, db };
    for player in ["p1", "p2"] {
        let body = json!({"currency": "EUR", "kyc": "basic"});
        app.ok("admin", "PUT", &format!("/v1/wallet/players/{player}"), Some(body)).await;
    }
    for (id, kind, secret) in [("psp", "payments", PSP_SECRET), ("games", "games", GAMES_SECRET)] {
        let body = json!({"kind": kind, "secret": secret, "base_url": "http://127.0.0.1:9"});
        app.ok("admin", "PUT", &format!("/v1/wallet/providers/{id}"), Some(body)).await;
    }
    app
}

/// A time between two movements: after every one made so far, before every later one.
async fn instant() -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let t = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    t
}

/// What happened to `p1` before `middle` (a deposit, a bonus, a bet and its win), and after it
/// (a bet rolled back, the bonus forfeited, a withdrawal returned, one paid), with `p2`'s
/// deposit between them; the balances at `middle`.
async fn history(app: &App) -> (String, [String; 3]) {
    app.deposit("p1", "100").await;
    let bonus = Uuid::new_v4();
    let grant = json!({"id": bonus, "amount": "20", "wagering_multiplier": "10",
        "expires_at": "2099-01-01T00:00:00Z"});
    app.ok("admin", "POST", "/v1/wallet/players/p1/bonuses", Some(grant)).await;
    app.game("bet", call(Uuid::new_v4(), "r1", "30")).await;
    let mut win = call(Uuid::new_v4(), "r1", "12");
    win["round_closed"] = json!(true);
    app.game("win", win).await;
    let middle = instant().await;
    let at_middle = app.balances().await;
    app.deposit("p2", "55").await;
    let bet = Uuid::new_v4();
    app.game("bet", call(bet, "r2", "5")).await;
    let mut rollback = call(Uuid::new_v4(), "r2", "5");
    rollback["reference_transaction_uuid"] = json!(bet);
    app.game("rollback", rollback).await;
    // An open bonus refuses withdrawals: it is forfeited first.
    app.ok("admin", "POST", &format!("/v1/wallet/bonuses/{bonus}/forfeit"), Some(json!({"reason": "test"}))).await;
    app.withdraw("10", "withdrawal.failed").await;
    app.withdraw("20", "withdrawal.succeeded").await;
    (middle, at_middle)
}

fn totals(statement: &Value, field: &str) -> [String; 3] {
    let accounts = statement["accounts"].as_array().unwrap();
    let names: Vec<&str> = accounts.iter().map(|a| a["account"].as_str().unwrap()).collect();
    assert_eq!(names, ["main", "bonus", "locked"]);
    [0, 1, 2].map(|i| accounts[i][field].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_statement_totals_are_the_ledgers_balances_and_every_movement_carries_the_balance_after() {
    let app = app().await;
    let (middle, at_middle) = history(&app).await;
    let all = app.json_statement("").await;
    assert_eq!((all["player_id"].as_str(), all["currency"].as_str()), (Some("p1"), Some("EUR")));
    assert_eq!(totals(&all, "opening"), ["0.00", "0.00", "0.00"]);
    // Main: 100 − 30 + 12 − 5 + 5 − 10 + 10 − 20; the bonus, untouched by main-first bets, forfeited.
    assert_eq!(totals(&all, "closing"), ["62.00", "0.00", "0.00"]);
    assert_eq!(totals(&all, "closing"), app.balances().await);
    let kinds: Vec<(&str, &str, &str)> = all["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["account"].as_str().unwrap(), m["amount"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("deposit", "main", "100.00"),
            ("bonus_granted", "bonus", "20.00"),
            ("bet", "main", "-30.00"),
            ("win", "main", "12.00"),
            ("bet", "main", "-5.00"),
            ("rollback", "main", "5.00"),
            ("bonus_returned", "bonus", "-20.00"),
            ("withdrawal_lock", "main", "-10.00"),
            ("withdrawal_lock", "locked", "10.00"),
            ("withdrawal_returned", "locked", "-10.00"),
            ("withdrawal_returned", "main", "10.00"),
            ("withdrawal_lock", "main", "-20.00"),
            ("withdrawal_lock", "locked", "20.00"),
            ("withdrawal_paid", "locked", "-20.00"),
        ]
    );
    // Each balance after is the one before plus the amount; positions only grow.
    let mut running: HashMap<&str, Decimal> = HashMap::new();
    let mut last = 0;
    for m in all["movements"].as_array().unwrap() {
        let balance = running.entry(m["account"].as_str().unwrap()).or_default();
        *balance += d(m["amount"].as_str().unwrap());
        assert_eq!(*balance, d(m["balance_after"].as_str().unwrap()), "{m}");
        let position = m["position"].as_i64().unwrap();
        assert!(position >= last && position <= all["position"].as_i64().unwrap(), "{m}");
        last = position;
        assert!(!m["reference"].as_str().unwrap().is_empty());
    }
    let bet = &all["movements"][2];
    assert_eq!(bet["round"], "r1");
    assert_eq!(all["movements"][0]["round"], Value::Null);
    // The closing balances are the ledger's stored accounts, which the replay of the log verifies.
    let report = ledger_store::verify::verify(&app.db.url, ledger_core::Currencies::standard()).await.unwrap();
    assert!(report.events > 0);
    for account in all["accounts"].as_array().unwrap() {
        let id = Uuid::parse_str(account["account_id"].as_str().unwrap()).unwrap();
        let stored: Option<Decimal> =
            sqlx::query_scalar("SELECT credits_posted - debits_posted FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        assert_eq!(stored.unwrap_or_default(), d(account["closing"].as_str().unwrap()), "{account}");
    }

    // A period: its opening is the balance at its start, its closing the balance at its end.
    let later = app.json_statement(&format!("?from={middle}")).await;
    assert_eq!(totals(&later, "opening"), at_middle);
    assert_eq!(totals(&later, "closing"), totals(&all, "closing"));
    assert_eq!(later["movements"].as_array().unwrap().len(), 10);
    assert_eq!((totals(&later, "credits")[0].as_str(), totals(&later, "debits")[0].as_str()), ("15.00", "35.00"));
    let earlier = app.json_statement(&format!("?to={middle}&format=json")).await;
    assert_eq!(totals(&earlier, "closing"), at_middle);
    assert_eq!(earlier["movements"].as_array().unwrap().len(), 4);
    let empty = app.json_statement(&format!("?from={middle}&to={middle}")).await;
    assert_eq!((totals(&empty, "opening"), empty["movements"].as_array().unwrap().len()), (at_middle, 0));
}

#[tokio::test]
async fn the_csv_has_the_opening_rows_the_movements_and_the_closing_rows() {
    let app = app().await;
    history(&app).await;
    let json = app.json_statement("").await;
    let (status, headers, bytes) = app.statement("reader", "?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].starts_with("text/csv"), "{headers:?}");
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["position", "at", "account", "kind", "reference", "round", "amount", "balance_after"]);
    let movements = json["movements"].as_array().unwrap();
    assert_eq!(rows.len(), 1 + 3 + movements.len() + 3);
    assert_eq!(rows[1], ["", "", "main", "opening", "", "", "", "0.00"]);
    for (row, m) in rows[4..4 + movements.len()].iter().zip(movements) {
        let field = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
        let position = m["position"].to_string();
        let expected = [
            &position,
            &field("at"),
            &field("account"),
            &field("kind"),
            &field("reference"),
            &field("round"),
            &field("amount"),
            &field("balance_after"),
        ];
        assert_eq!(row.iter().map(|s| s.to_string()).collect::<Vec<_>>(), expected.map(|s| s.to_owned()));
    }
    let closing: Vec<&str> = rows[rows.len() - 3..].iter().map(|r| r[7]).collect();
    assert_eq!(closing, ["62.00", "0.00", "0.00"]);
    assert!(rows[rows.len() - 3..].iter().all(|r| r[3] == "closing"));
}

/// The stored entries of a zip, each checked against its CRC-32.
fn unzip(zip: &[u8]) -> HashMap<String, String> {
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
    let crc32 = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let end = zip.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50, "an end of central directory");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
    let mut out = HashMap::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50);
        let (crc, size, name_len, local) =
            (u32_at(at + 16), u32_at(at + 20) as usize, u16_at(at + 28), u32_at(at + 42) as usize);
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        assert_eq!((u32_at(local), u16_at(local + 8)), (0x0403_4b50, 0), "{name}: a stored entry");
        let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let data = &zip[data_at..data_at + size];
        assert_eq!(crc32.checksum(data), crc, "{name}");
        out.insert(name, String::from_utf8(data.to_vec()).unwrap());
        at += 46 + name_len;
    }
    out
}

/// The cells of a sheet by reference (`B2`): `(type, value)`, inline strings as `s`.
fn cells(sheet: &str) -> HashMap<String, (String, String)> {
    let cell = regex::Regex::new(r#"<c r="([A-Z]+[0-9]+)"(?: s="[0-9]+")? t="([a-zA-Z]+)">(.*?)</c>"#).unwrap();
    let value = regex::Regex::new(r"<v>(.*?)</v>|<t[^>]*>(.*?)</t>").unwrap();
    cell.captures_iter(sheet)
        .map(|c| {
            let v = value.captures(&c[3]).unwrap();
            let text = v.get(1).or(v.get(2)).unwrap().as_str().to_owned();
            (c[1].to_owned(), (c[2].to_owned(), text))
        })
        .collect()
}

#[tokio::test]
async fn the_workbook_holds_amounts_and_times_as_number_cells() {
    let app = app().await;
    history(&app).await;
    let json = app.json_statement("").await;
    let (status, headers, bytes) = app.statement("reader", "?format=xlsx").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(headers["content-disposition"].contains("statement-p1.xlsx"), "{headers:?}");
    let files = unzip(&bytes);
    for part in ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/styles.xml"] {
        assert!(files.contains_key(part), "{part}");
    }
    assert!(
        files["xl/workbook.xml"].contains(r#"name="Summary""#)
            && files["xl/workbook.xml"].contains(r#"name="Movements""#)
    );
    let summary = cells(&files["xl/worksheets/sheet1.xml"]);
    assert_eq!(summary["C2"], ("inlineStr".into(), "main".into()));
    assert_eq!(summary["G2"], ("n".into(), "62".into()), "main's closing is a number");
    assert_eq!(summary["E3"], ("n".into(), "20".into()), "the bonus's credits");
    assert_eq!(summary["G3"], ("n".into(), "0".into()));
    let movements = cells(&files["xl/worksheets/sheet2.xml"]);
    assert_eq!(movements["F1"], ("inlineStr".into(), "Round".into()));
    for (i, m) in json["movements"].as_array().unwrap().iter().enumerate() {
        let row = i + 2;
        let (kind, at) = &movements[&format!("A{row}")];
        assert_eq!(kind, "n", "times are numbers");
        // Days since 1899-12-30: this test runs long after 2020 (43831).
        assert!(d(at) > d("43831"), "{at}");
        assert_eq!(movements[&format!("B{row}")], ("n".into(), m["position"].to_string()));
        assert_eq!(movements[&format!("D{row}")].1, m["kind"].as_str().unwrap());
        let (kind, amount) = &movements[&format!("G{row}")];
        assert_eq!((kind.as_str(), d(amount)), ("n", d(m["amount"].as_str().unwrap())));
        let (kind, after) = &movements[&format!("H{row}")];
        assert_eq!((kind.as_str(), d(after)), ("n", d(m["balance_after"].as_str().unwrap())));
    }
    assert!(!movements.contains_key(&format!("A{}", json["movements"].as_array().unwrap().len() + 2)));
    libreoffice_reads(&bytes, &json);
}

/// Where LibreOffice is installed, it converts the workbook's Movements sheet to CSV headless,
/// and the amounts it reads are numbers (written plainly, not quoted as text).
fn libreoffice_reads(workbook: &[u8], json: &Value) {
    let Some(office) = ["soffice", "libreoffice"]
        .into_iter()
        .find(|p| std::process::Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("LibreOffice is not installed: the workbook is checked from its XML only");
        return;
    };
    let dir = std::env::temp_dir().join(format!("wallet-statement-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("statement.xlsx");
    std::fs::write(&input, workbook).unwrap();
    // Sheet 2 (Movements), numbers as shown by their format, UTF-8, comma-separated.
    let filter = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,2";
    let output = std::process::Command::new(office)
        .args(["--headless", "--norestore", &format!("-env:UserInstallation=file://{}/profile", dir.display())])
        .args(["--convert-to", filter, "--outdir"])
        .arg(&dir)
        .arg(&input)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let converted = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap_or_else(|| panic!("LibreOffice wrote no CSV: {}", String::from_utf8_lossy(&output.stdout)));
    let text = std::fs::read_to_string(&converted).unwrap();
    let rows: Vec<Vec<String>> = text.lines().map(|l| l.split(',').map(str::to_owned).collect()).collect();
    let movements = json["movements"].as_array().unwrap();
    assert_eq!(rows.len(), movements.len() + 1, "{text}");
    for (row, m) in rows[1..].iter().zip(movements) {
        assert!(row[0].starts_with("20") && row[0].contains(':'), "a time shown as a date: {row:?}");
        assert_eq!(d(&row[1]), Decimal::from(m["position"].as_i64().unwrap()), "{row:?}");
        assert_eq!(d(&row[6]), d(m["amount"].as_str().unwrap()), "{row:?}");
        assert_eq!(d(&row[7]), d(m["balance_after"].as_str().unwrap()), "{row:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn bad_parameters_are_422_with_stable_codes_and_an_unknown_player_404() {
    let app = app().await;
    app.deposit("p1", "1").await;
    let code = |bytes: &Bytes| serde_json::from_slice::<Value>(bytes).unwrap()["code"].as_str().unwrap().to_owned();
    for (query, expected) in [
        ("?from=yesterday", "invalid_period"),
        ("?to=2026-13-01T00:00:00Z", "invalid_period"),
        ("?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "invalid_period"),
        ("?format=pdf", "invalid_format"),
        ("?format=XLSX", "invalid_format"),
    ] {
        let (status, headers, bytes) = app.statement("reader", query).await;
        assert_eq!((status, code(&bytes)), (StatusCode::UNPROCESSABLE_ENTITY, expected.to_owned()), "{query}");
        assert_eq!(headers["content-type"], "application/problem+json", "{query}");
    }
    let (status, _, bytes) = app.statement("reader", "?limit=5").await;
    assert_eq!((status, code(&bytes)), (StatusCode::BAD_REQUEST, "invalid_query".to_owned()));
    // Another player's key is refused; an unknown player is 404 for a key that may read it.
    assert_eq!(app.statement("other", "").await.0, StatusCode::FORBIDDEN);
    let request = Request::builder()
        .uri("/v1/wallet/players/p2/statement")
        .header("authorization", format!("Bearer {}", app.keys["reader"]))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.raw(request).await.0, StatusCode::FORBIDDEN);
    let key = create_key(&app.pool, "everyone", &["wallet:read".to_owned()]).await.unwrap().1;
    let request = Request::builder()
        .uri("/v1/wallet/players/nobody/statement")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, bytes) = app.raw(request).await;
    assert_eq!((status, code(&bytes)), (StatusCode::NOT_FOUND, "player_not_found".to_owned()));
}

/// The wallet read model's movements, as `ledger up` reads them (`ledger/src/wallet.rs`).
struct ReadModelMovements(sqlx::PgPool);

impl MovementsReader for ReadModelMovements {
    fn checkpoint(&self) -> Reading<'_, i64> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            projections::read::checkpoint(&mut conn, projections::Model::Wallet).await.map_err(|e| e.to_string())
        })
    }

    fn movements<'a>(
        &'a self,
        player: &'a str,
        after: MovementKey,
        upto: i64,
        limit: i64,
    ) -> Reading<'a, Vec<AppliedLine>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let after = projections::wallet::MovementCursor { position: after.position, seq: after.seq };
            let rows = projections::wallet::movements_upto(&mut conn, player, after, upto, limit)
                .await
                .map_err(|e| e.to_string())?;
            rows.into_iter()
                .map(|r| {
                    let key = MovementKey { position: r.position, seq: r.seq };
                    AppliedLine::new(key, r.at, &r.account, r.kind, r.reference_id, r.round_id, r.amount)
                })
                .collect()
        })
    }
}

/// The wallet read model's runner, on a read database of its own.
struct Projection {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Projection {
    fn start(url: &str, read_url: &str) -> Projection {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (url, read_url) = (url.to_owned(), read_url.to_owned());
        let task = tokio::spawn(async move {
            let follow = projections::Follow { poll: Duration::from_millis(20), linger: Duration::from_millis(1) };
            projections::run_reporting(&url, Some(&read_url), &[projections::Model::Wallet], follow, stopped, None)
                .await
        });
        Projection { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

async fn checkpoint(read: &sqlx::PgPool) -> i64 {
    let mut conn = read.acquire().await.unwrap();
    projections::read::checkpoint(&mut conn, projections::Model::Wallet).await.unwrap()
}

/// Waits until the read model applied the whole log; answers its checkpoint.
async fn caught_up(app: &App, read: &sqlx::PgPool) -> i64 {
    let head = app.ledger.view().head();
    for _ in 0..1500 {
        let at = checkpoint(read).await;
        if at >= head {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the wallet read model did not reach {head}");
}

/// The wallet's money-moving events in the log after `after`.
async fn moving_events_after(app: &App, after: i64) -> u64 {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position > $1 AND event_type = ANY($2)")
        .bind(after)
        .bind(MOVING_TYPES)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    n as u64
}

/// What the API's statements read so far: (read-model movements, log events), from `/metrics`.
async fn reads(router: &Router) -> (u64, u64) {
    let (status, _, bytes) = raw(router, Request::builder().uri("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    (value("ledger_wallet_statement_read_model_movements_total"), value("ledger_wallet_statement_log_events_total"))
}

/// Every one of `queries` answers the same, byte for byte, with the read model as without it.
async fn same_as_the_whole_log(app: &App, queries: &[String]) {
    for query in queries {
        let (status, headers, with_model) = statement_on(&app.router, app, query).await;
        let (bare_status, bare_headers, whole_log) = statement_on(&app.bare, app, query).await;
        assert_eq!((status, bare_status), (StatusCode::OK, StatusCode::OK), "{query}");
        assert_eq!(headers["content-type"], bare_headers["content-type"], "{query}");
        assert_eq!(with_model, whole_log, "{query}: {}", String::from_utf8_lossy(&with_model));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_reads_the_read_model_to_its_checkpoint_and_the_log_past_it() {
    let read_db = test_support::fresh_read_database().await;
    let read = sqlx::PgPool::connect(&read_db.url).await.unwrap();
    let app = app_reading(Some(Arc::new(ReadModelMovements(read.clone())))).await;
    let projection = Projection::start(&app.db.url, &read_db.url);
    let (middle, _) = history(&app).await;
    for _ in 0..20 {
        app.deposit("p2", "1").await;
    }
    caught_up(&app, &read).await;
    let queries = [
        String::new(),
        "?format=csv".into(),
        "?format=xlsx".into(),
        format!("?from={middle}"),
        format!("?from={middle}&format=xlsx"),
        format!("?to={middle}&format=csv"),
    ];
    let p1 = app.json_statement("").await["movements"].as_array().unwrap().len() as u64;
    assert_eq!(p1, 14);
    let before = reads(&app.router).await;
    same_as_the_whole_log(&app, &queries).await;
    // Caught up: every movement of p1 from the read model, nothing from the log.
    let n = queries.len() as u64;
    assert_eq!(reads(&app.router).await, (before.0 + n * p1, before.1));
    // Many more movements of another player change nothing the statement reads.
    for _ in 0..30 {
        app.deposit("p2", "2").await;
    }
    caught_up(&app, &read).await;
    let others: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_wallet_movements WHERE player_id = 'p2'")
        .fetch_one(&read)
        .await
        .unwrap();
    assert_eq!(others, 51);
    let before = reads(&app.router).await;
    same_as_the_whole_log(&app, &queries[..1]).await;
    assert_eq!(reads(&app.router).await, (before.0 + p1, before.1));

    // The projection stops: what is committed after its checkpoint comes from the log.
    projection.stop().await;
    let applied = checkpoint(&read).await;
    app.deposit("p1", "7").await;
    app.game("bet", call(Uuid::new_v4(), "r3", "3")).await;
    app.deposit("p2", "4").await;
    assert_eq!(checkpoint(&read).await, applied, "the read model lags");
    let tail = moving_events_after(&app, applied).await;
    assert_eq!(tail, 3);
    let before = reads(&app.router).await;
    same_as_the_whole_log(&app, &queries).await;
    assert_eq!(reads(&app.router).await, (before.0 + n * p1, before.1 + n * tail));
    let all = app.json_statement("").await;
    let movements = all["movements"].as_array().unwrap();
    let late: Vec<(&str, &str)> = movements
        .iter()
        .filter(|m| m["position"].as_i64().unwrap() > applied)
        .map(|m| (m["kind"].as_str().unwrap(), m["amount"].as_str().unwrap()))
        .collect();
    assert_eq!(late, [("deposit", "7.00"), ("bet", "-3.00")]);
    assert_eq!(all["position"].as_i64(), Some(app.ledger.view().head()));
    // Exact to the last commit: the closing balances are the ledger's accounts.
    assert_eq!(totals(&all, "closing"), ["66.00", "0.00", "0.00"]);
    assert_eq!(totals(&all, "closing"), app.balances().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_not_yet_created_gives_the_log_and_one_that_fails_is_503() {
    // No runner ever ran on this read database: nothing applied, the whole log is the tail.
    let read_db = test_support::fresh_read_database().await;
    let read = sqlx::PgPool::connect(&read_db.url).await.unwrap();
    let app = app_reading(Some(Arc::new(ReadModelMovements(read.clone())))).await;
    let (middle, _) = history(&app).await;
    let queries = ["".to_owned(), "?format=csv".to_owned(), format!("?from={middle}&format=xlsx")];
    let before = reads(&app.router).await;
    same_as_the_whole_log(&app, &queries).await;
    let every = moving_events_after(&app, 0).await;
    assert_eq!(reads(&app.router).await, (before.0, before.1 + 3 * every));

    // A reader whose database does not answer: a typed 503, nothing about the cause.
    read.close().await;
    for query in &queries {
        let (status, headers, bytes) = app.statement("reader", query).await;
        let problem: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("read_model_unavailable")),
            "{query}"
        );
        assert_eq!(headers["content-type"], "application/problem+json");
        assert!(!problem["detail"].as_str().unwrap().contains("closed"), "{problem}");
    }
    // The same ledger's API without a reader still answers from the log.
    assert_eq!(statement_on(&app.bare, &app, "").await.0, StatusCode::OK);
}

async fn statement_on(router: &Router, app: &App, query: &str) -> (StatusCode, HashMap<String, String>, Bytes) {
    let request = Request::builder()
        .uri(format!("/v1/wallet/players/p1/statement{query}"))
        .header("authorization", format!("Bearer {}", app.keys["reader"]))
        .body(Body::empty())
        .unwrap();
    raw(router, request).await
}
