//! `ledger provider-simulator` as a process, over real HTTP: providers loaded from a file answer
//! their balance as of a time and their statement over a window; a movement moves once per id
//! and another body under its id is 409; each behaviour (refuse with a reason, fail N times then
//! succeed, timeout, drift) answers as documented; bad input is a problem, a bad start an error.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Running, http, wait_for_line};
use uuid::Uuid;

/// A file of providers, removed when the test ends.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(content: &Value) -> TempFile {
        let path = std::env::temp_dir().join(format!("provider-simulator-{}.json", Uuid::new_v4()));
        std::fs::write(&path, content.to_string()).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command.arg("provider-simulator").args(args);
    command
}

/// The simulator on a free loopback port, with `file` if given; its address.
fn simulator(file: Option<&TempFile>) -> (Running, String) {
    let mut args = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
    if let Some(file) = file {
        args.extend(["--file".to_owned(), file.0.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Running(command(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("ledger runs"));
    let mut out = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut out, "provider-simulator listening on http://");
    std::thread::spawn(move || out.map_while(Result::ok).for_each(drop));
    (child, addr)
}

fn call(addr: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, text) = http(addr, method, path, &[("Content-Type", "application/json")], &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ok(addr: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = call(addr, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

fn balance(addr: &str, provider: &str, at: &str) -> Value {
    ok(
        addr,
        "GET",
        &format!("/providers/{provider}/balance?at={}", at.replace(':', "%3A").replace('+', "%2B")),
        Value::Null,
    )
}

fn statement_ids(addr: &str, provider: &str, from: &str, to: &str) -> Vec<String> {
    let answer = ok(addr, "GET", &format!("/providers/{provider}/statement?from={from}&to={to}"), Value::Null);
    answer["lines"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect()
}

fn movement(id: Uuid, direction: &str, amount: &str, currency: &str) -> Value {
    json!({"id": id, "direction": direction, "amount": amount, "currency": currency})
}

fn behave(addr: &str, provider: &str, body: Value) -> Value {
    ok(addr, "PUT", &format!("/control/providers/{provider}/behaviour"), body)
}

fn line(id: &str, amount: &str, date: &str) -> Value {
    json!({"id": id, "amount": amount, "currency": "EUR", "reference": format!("ref-{id}"), "date": date})
}

fn file() -> TempFile {
    TempFile::new(&json!({"providers": {
        "acme": {"currency": "EUR", "opening_balance": "1000.00", "lines": [
            line("l2", "-125.25", "2020-12-01T12:00:00Z"),
            {"id": "l1", "amount": "300.00", "currency": "EUR", "reference": "batch-1",
                "date": "2020-12-01T09:00:00+01:00", "metadata": {"channel": "card"}},
            line("l3", "0.75", "2020-12-02T00:00:00Z"),
        ]},
        "other": {"currency": "USD", "opening_balance": "5"},
    }}))
}

#[test]
fn a_loaded_provider_answers_its_balance_statement_and_each_movement_once() {
    let file = file();
    let (_sim, sim) = simulator(Some(&file));

    // The balance as of two times (the second with an offset, percent-encoded).
    let b = balance(&sim, "acme", "2020-12-01T07:59:59Z");
    assert_eq!(b, json!({"balance": "1000.00", "currency": "EUR", "at": "2020-12-01T07:59:59Z"}));
    let b = balance(&sim, "acme", "2020-12-01T13:00:00+01:00");
    assert_eq!((b["balance"].as_str(), b["at"].as_str()), (Some("1174.75"), Some("2020-12-01T12:00:00Z")));
    assert_eq!(balance(&sim, "other", "2020-12-01T00:00:00Z")["balance"], "5");

    // The window: from included, to excluded, in date order.
    assert_eq!(statement_ids(&sim, "acme", "2020-12-01T08:00:00Z", "2020-12-02T00:00:00Z"), ["l1", "l2"]);
    assert_eq!(statement_ids(&sim, "acme", "2020-12-01T12:00:00Z", "2020-12-03T00:00:00Z"), ["l2", "l3"]);
    let answer =
        ok(&sim, "GET", "/providers/acme/statement?from=2020-12-01T00:00:00Z&to=2020-12-01T09:00:00Z", Value::Null);
    assert_eq!(
        answer,
        json!({"lines": [{"id": "l1", "amount": "300.00", "currency": "EUR", "reference": "batch-1",
            "date": "2020-12-01T08:00:00Z", "metadata": {"channel": "card"}}]})
    );

    // A movement moves once: the same id again answers the same and moves nothing more.
    let id = Uuid::new_v4();
    let body = movement(id, "to_operational", "174.75", "EUR");
    assert_eq!(ok(&sim, "POST", "/providers/acme/movements", body.clone()), json!({"status": "succeeded"}));
    assert_eq!(ok(&sim, "POST", "/providers/acme/movements", body.clone()), json!({"status": "succeeded"}));
    let far = "2100-01-01T00:00:00Z";
    assert_eq!(balance(&sim, "acme", far)["balance"], "1000.75");
    let (status, conflict) =
        call(&sim, "POST", "/providers/acme/movements", movement(id, "to_operational", "1", "EUR"));
    assert_eq!((status, conflict["code"].as_str()), (409, Some("movement_exists_with_different_body")), "{conflict}");
    let ids = statement_ids(&sim, "acme", "2020-12-02T00:00:00Z", far);
    assert_eq!(ids, ["l3".to_owned(), format!("mv-{id}")]);
    let lines = ok(&sim, "GET", &format!("/providers/acme/statement?from=2020-12-02T00:00:01Z&to={far}"), Value::Null);
    assert_eq!(lines["lines"][0]["amount"], "-174.75");
    assert_eq!(lines["lines"][0]["reference"], id.to_string());

    let back = Uuid::new_v4();
    let body = movement(back, "to_transactional", "0.25", "EUR");
    assert_eq!(ok(&sim, "POST", "/providers/acme/movements", body)["status"], "succeeded");
    assert_eq!(balance(&sim, "acme", far)["balance"], "1001.00");
    // Another currency than the provider's is refused with a reason, and moves nothing.
    let refused =
        ok(&sim, "POST", "/providers/other/movements", movement(Uuid::new_v4(), "to_operational", "1", "EUR"));
    assert_eq!(refused["status"], "refused");
    assert!(refused["reason"].as_str().unwrap().contains("EUR"), "{refused}");
    assert_eq!(balance(&sim, "other", far)["balance"], "5");

    // What the provider received: each id once, with its body, outcome and calls.
    let list = ok(&sim, "GET", "/control/providers/acme/movements", Value::Null);
    assert_eq!(list["movements"][0]["id"], id.to_string());
    assert_eq!(list["movements"][0]["body"], movement(id, "to_operational", "174.75", "EUR"));
    assert_eq!(list["movements"][0]["outcome"], json!({"status": "succeeded"}));
    assert_eq!((list["movements"][0]["calls"].as_u64(), list["movements"][1]["calls"].as_u64()), (Some(2), Some(1)));

    // Lines are appended, or the provider replaced whole.
    let appended = ok(
        &sim,
        "POST",
        "/control/providers/other/lines",
        json!({"lines": [
        {"id": "u1", "amount": "2.50", "reference": "r", "date": "2020-12-05T00:00:00Z"}]}),
    );
    assert_eq!((appended["appended"].as_u64(), appended["lines"].as_u64()), (Some(1), Some(1)));
    assert_eq!(balance(&sim, "other", far)["balance"], "7.50");
    let (status, exists) = call(
        &sim,
        "POST",
        "/control/providers/other/lines",
        json!({"lines": [
        {"id": "u1", "amount": "1", "reference": "r", "date": "2020-12-05T00:00:00Z"}]}),
    );
    assert_eq!((status, exists["code"].as_str()), (409, Some("line_exists")));
    ok(&sim, "PUT", "/control/providers/other", json!({"currency": "GBP", "opening_balance": "-3"}));
    assert_eq!(balance(&sim, "other", far), json!({"balance": "-3", "currency": "GBP", "at": far}));
}

/// Whether a call to `addr` gets any answer within `within`.
fn answers_within(addr: &str, method: &str, path: &str, body: &str, within: Duration) -> bool {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(n) => n > 0,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => false,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn each_behaviour_answers_as_told_and_goes_back_to_succeed() {
    let file = file();
    let (_sim, sim) = simulator(Some(&file));
    let post = |body: Value| call(&sim, "POST", "/providers/acme/movements", body);

    // Refuse, with a reason, for the next call only.
    let b =
        behave(&sim, "acme", json!({"movements": "refuse", "reason": "insufficient operational funds", "times": 1}));
    assert_eq!(b["movements"], json!({"mode": "refuse", "reason": "insufficient operational funds", "times": 1}));
    let refused = post(movement(Uuid::new_v4(), "to_transactional", "10", "EUR"));
    assert_eq!(refused, (200, json!({"status": "refused", "reason": "insufficient operational funds"})));
    let next = Uuid::new_v4();
    assert_eq!(post(movement(next, "to_transactional", "10", "EUR")), (200, json!({"status": "succeeded"})));
    assert_eq!(balance(&sim, "acme", "2100-01-01T00:00:00Z")["balance"], "1185.50");

    // Fail twice (503), then succeed: the retried id moves once.
    behave(&sim, "acme", json!({"movements": "fail", "times": 2}));
    let id = Uuid::new_v4();
    for _ in 0..2 {
        let (status, problem) = post(movement(id, "to_operational", "85.50", "EUR"));
        assert_eq!((status, problem["code"].as_str()), (503, Some("provider_unavailable")), "{problem}");
    }
    assert_eq!(post(movement(id, "to_operational", "85.50", "EUR")), (200, json!({"status": "succeeded"})));
    assert_eq!(post(movement(id, "to_operational", "85.50", "EUR")), (200, json!({"status": "succeeded"})));
    assert_eq!(balance(&sim, "acme", "2100-01-01T00:00:00Z")["balance"], "1100.00");
    let list = ok(&sim, "GET", "/control/providers/acme/movements", Value::Null);
    let retried = list["movements"].as_array().unwrap().iter().find(|m| m["id"] == id.to_string()).unwrap();
    assert_eq!(retried["calls"], 4, "{retried}");
    assert_eq!(retried["answers"], json!(["failed", "failed", "succeeded", "replayed"]));

    // Balance and statement fail and time out too.
    behave(&sim, "acme", json!({"balance": "fail", "statement": "fail", "times": 1}));
    let (status, problem) = call(&sim, "GET", "/providers/acme/balance?at=2020-12-02T00:00:00Z", Value::Null);
    assert_eq!((status, problem["code"].as_str()), (503, Some("provider_unavailable")));
    let (status, _) =
        call(&sim, "GET", "/providers/acme/statement?from=2020-12-01T00:00:00Z&to=2020-12-02T00:00:00Z", Value::Null);
    assert_eq!(status, 503);
    assert_eq!(balance(&sim, "acme", "2020-12-02T00:00:00Z")["balance"], "1175.50", "back to succeed");

    // Timeout: the call is held past any sane client's patience, and moves nothing.
    behave(&sim, "acme", json!({"movements": "timeout", "balance": "timeout"}));
    let held = Uuid::new_v4();
    let body = movement(held, "to_operational", "1", "EUR").to_string();
    assert!(!answers_within(&sim, "POST", "/providers/acme/movements", &body, Duration::from_secs(2)));
    assert!(!answers_within(
        &sim,
        "GET",
        "/providers/acme/balance?at=2020-12-02T00:00:00Z",
        "",
        Duration::from_secs(1)
    ));
    behave(&sim, "acme", json!({"movements": "succeed", "balance": "succeed"}));
    assert!(answers_within(&sim, "GET", "/providers/acme/balance?at=2020-12-02T00:00:00Z", "", Duration::from_secs(5)));
    assert_eq!(balance(&sim, "acme", "2100-01-01T00:00:00Z")["balance"], "1100.00", "the held call moved nothing");
    let list = ok(&sim, "GET", "/control/providers/acme/movements", Value::Null);
    let timed_out = list["movements"].as_array().unwrap().iter().find(|m| m["id"] == held.to_string()).unwrap();
    assert_eq!((timed_out["outcome"].clone(), timed_out["answers"].clone()), (Value::Null, json!(["timed_out"])));

    // Drift is added to every balance reported, not to the statement.
    let b = behave(&sim, "acme", json!({"drift": "1.00"}));
    assert_eq!(b["drift"], "1.00");
    assert_eq!(balance(&sim, "acme", "2020-12-01T00:00:00Z")["balance"], "1001.00");
    assert_eq!(balance(&sim, "acme", "2100-01-01T00:00:00Z")["balance"], "1101.00");
    assert_eq!(statement_ids(&sim, "acme", "2020-12-01T00:00:00Z", "2020-12-02T00:00:00Z"), ["l1", "l2"]);
    behave(&sim, "acme", json!({"drift": "0"}));
    assert_eq!(balance(&sim, "acme", "2020-12-01T00:00:00Z")["balance"], "1000.00");

    // Bad input is a problem with a code, never a panic.
    for (method, path, body, expect) in [
        ("PUT", "/control/providers/acme/behaviour", json!({"balance": "refuse"}), (422, "invalid_behaviour")),
        ("PUT", "/control/providers/acme/behaviour", json!({"drift": "lots"}), (422, "invalid_amount")),
        ("PUT", "/control/providers/ghost/behaviour", json!({"movements": "fail"}), (404, "provider_not_found")),
        ("GET", "/providers/acme/balance?at=2020-12-01T00:00:00+01:00", Value::Null, (400, "invalid_query")),
        ("POST", "/providers/acme/movements", json!({"id": Uuid::nil()}), (400, "invalid_body")),
        (
            "PUT",
            "/control/providers/bad%2Fid",
            json!({"currency": "EUR", "opening_balance": "0"}),
            (400, "invalid_provider_id"),
        ),
    ] {
        let (status, problem) = call(&sim, method, path, body);
        assert_eq!((status, problem["code"].as_str().unwrap_or_default()), expect, "{method} {path}: {problem}");
    }
}

#[test]
fn a_bad_file_or_a_listen_address_off_loopback_stops_the_start() {
    let run = |args: &[&str]| {
        let out = command(args).output().expect("ledger runs");
        assert!(!out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--listen", "0.0.0.0:0"]).contains("loopback only"));
    assert!(run(&["--listen", "localhost"]).contains("IP:PORT"));
    let bad = TempFile::new(&json!({"providers": {"acme": {"currency": "EUR", "opening_balance": "1.0.0"}}}));
    let message = run(&["--listen", "127.0.0.1:0", "--file", &bad.0.display().to_string()]);
    assert!(message.contains("is not an amount"), "{message}");
    let message = run(&["--listen", "127.0.0.1:0", "--file", "/nonexistent/providers.json"]);
    assert!(message.contains("--file /nonexistent/providers.json"), "{message}");
}
