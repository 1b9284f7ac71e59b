//! Reconciliation end to end: `ledger up` and `ledger provider-simulator` as processes on a
//! fresh database. A run reads the provider's balance and statement through the adapter and
//! the ledger as of its time, matches by rules (matched, amount mismatch, missing either side),
//! raises a discrepancy beyond the tolerance, and its open items match late in the next run.
//! Fund movements through the provider: succeeded (posted), refused (voided with the reason),
//! retried after errors until they succeed, and failed after the last attempt (voided, a
//! critical audit entry); a movement that would breach segregation moves nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, Running, http, key, wait_for_line};
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

fn drain(log: impl Iterator<Item = std::io::Result<String>> + Send + 'static) {
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
}

type Log = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// `ledger up` on the database, a standby when another holds it; its log.
fn spawn_up(db: &TestDatabase, standby: bool) -> (Running, Log) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_STANDBY", standby.to_string())
            .env("LEDGER_RECON_INTERVAL_MS", "100")
            .env("LEDGER_RECON_CALL_TIMEOUT_MS", "500")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    (child, log)
}

/// The engine's address once it serves.
fn serving(mut log: Log) -> Api {
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    drain(log);
    Api { addr }
}

fn up(db: &TestDatabase) -> (Running, Api) {
    let (child, log) = spawn_up(db, false);
    (child, serving(log))
}

fn simulator() -> (Running, String) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["provider-simulator", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut out, "provider-simulator listening on http://");
    drain(out);
    (child, addr)
}

fn send(addr: &str, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, _, text) = http(addr, method, path, &headers, &body);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ok(addr: &str, key: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = send(addr, key, method, path, body);
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Polls `path` until `done` holds of its answer (at most 20 s).
fn wait_for(addr: &str, key: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ok(addr, key, "GET", path, Value::Null);
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{path}: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct World {
    _engine: Running,
    _sim: Running,
    api: String,
    sim: String,
    key: String,
}

impl World {
    fn transfer(&self, debit: &str, credit: &str, amount: &str, reference: &str) {
        let body = json!({"id": Uuid::new_v4(), "debit": debit, "credit": credit, "amount": amount,
            "external_ref": reference});
        ok(&self.api, &self.key, "POST", "/v1/transfers", body);
    }

    fn control(&self, method: &str, path: &str, body: Value) -> Value {
        ok(&self.sim, "", method, path, body)
    }

    fn run(&self) -> Value {
        let started = ok(&self.api, &self.key, "POST", "/v1/recon/runs", json!({"provider": "psp-a"}));
        let path = format!("/v1/recon/runs/{}", started["id"].as_str().unwrap());
        wait_for(&self.api, &self.key, &path, |r| r["status"] != "running")
    }

    fn items(&self, run: &Value) -> Vec<Value> {
        let path = format!("/v1/recon/runs/{}/items?limit=1000", run["id"].as_str().unwrap());
        ok(&self.api, &self.key, "GET", &path, Value::Null)["items"].as_array().unwrap().clone()
    }
}

/// The engine, the simulator, and provider `psp-a` (EUR, tolerance 0.50) whose players `p1`
/// and `p2` deposited 100.00 (`dep-1`), 50.00 (`dep-2`) and 20.00 (`dep-3`), and a rule
/// matching by reference with amounts within 0.05.
fn world(db: &TestDatabase) -> World {
    let key = key(
        db,
        "ops",
        "recon:admin,recon:run,recon:move,recon:read,accounts:write,transfers:write,config:write,audit:read",
    );
    let (engine, api) = up(db);
    let (sim, sim_addr) = simulator();
    let w = World { _engine: engine, _sim: sim, api: api.addr, sim: sim_addr, key };
    let provider = json!({"name": "Provider A", "currency": "EUR",
        "base_url": format!("http://{}/providers/psp-a", w.sim), "tolerance": "0.50"});
    ok(&w.api, &w.key, "PUT", "/v1/recon/providers/psp-a", provider);
    for (code, kind, metadata) in [
        ("p1", "liability", json!({"provider": "psp-a"})),
        ("p2", "liability", json!({"provider": "psp-a"})),
        ("equity", "equity", Value::Null),
    ] {
        let body = json!({"code": code, "currency": "EUR", "kind": kind, "metadata": metadata});
        ok(&w.api, &w.key, "POST", "/v1/accounts", body);
    }
    w.transfer("recon:psp-a:transactional", "p1", "100.00", "dep-1");
    w.transfer("recon:psp-a:transactional", "p2", "50.00", "dep-2");
    w.transfer("recon:psp-a:transactional", "p1", "20.00", "dep-3");
    let rule = json!({"strategy": "one_to_one", "criteria": [{"field": "reference", "operator": "equals"},
        {"field": "amount", "operator": "within", "tolerance": "0.05"}]});
    ok(&w.api, &w.key, "PUT", "/v1/recon/rules/by-ref", rule);
    w
}

fn by_kind<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_matches_by_rules_alerts_a_discrepancy_and_its_open_items_match_late() {
    let db = fresh_database().await;
    let w = world(&db);
    let earlier = rfc3339(now() - time::Duration::minutes(1));
    // The provider reports dep-1 in full, dep-2 ten cents short, a fee the ledger lacks, and not dep-3.
    w.control(
        "PUT",
        "/control/providers/psp-a",
        json!({"currency": "EUR", "opening_balance": "0", "lines": [
        {"id": "l1", "amount": "100.00", "reference": "dep-1", "date": earlier},
        {"id": "l2", "amount": "49.90", "reference": "dep-2", "date": earlier},
        {"id": "l4", "amount": "5.00", "reference": "fee-7", "date": earlier}]}),
    );
    let run = w.run();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!((run["reported"].as_str(), run["players"].as_str()), (Some("154.90"), Some("170.00")), "{run}");
    assert_eq!((run["difference"].as_str(), run["balance_status"].as_str()), (Some("-15.10"), Some("discrepancy")));
    let t = &run["totals"];
    assert_eq!(
        (t["lines"].as_u64(), t["entries"].as_u64(), t["matched"].as_u64()),
        (Some(3), Some(3), Some(1)),
        "{run}"
    );
    assert_eq!(
        (t["amount_mismatch"].as_u64(), t["missing_in_ledger"].as_u64(), t["missing_at_provider"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(run["lines_hash"].as_str().map(str::len), Some(64));
    let items = w.items(&run);
    assert_eq!(items.len(), 4);
    let matched = by_kind(&items, "matched")[0];
    assert_eq!(
        (matched["lines"][0]["id"].as_str(), matched["entries"][0]["reference"].as_str()),
        (Some("l1"), Some("dep-1"))
    );
    assert_eq!(matched["rule"], "by-ref");
    let short = by_kind(&items, "amount_mismatch")[0];
    assert_eq!((short["difference"].as_str(), short["status"].as_str()), (Some("-0.10"), Some("open")));
    assert_eq!(by_kind(&items, "missing_in_ledger")[0]["lines"][0]["id"], "l4");
    assert_eq!(by_kind(&items, "missing_at_provider")[0]["entries"][0]["reference"], "dep-3");
    // The discrepancy is a critical audit entry (what the alert webhook sends).
    wait_for(&w.api, &w.key, "/v1/admin/audit?level=critical", |a| a.to_string().contains("recon.discrepancy"));
    // CSV of the open items.
    let auth = format!("Bearer {}", w.key);
    let path = format!("/v1/recon/runs/{}/items?format=csv&status=open", run["id"].as_str().unwrap());
    let (status, head, csv) = http(&w.api, "GET", &path, &[("Authorization", auth.as_str())], "");
    assert_eq!(status, 200, "{csv}");
    assert!(head.to_ascii_lowercase().contains("text/csv"), "{head}");
    assert_eq!(csv.lines().count(), 4, "the header and three open items: {csv}");
    assert!(csv.lines().next().unwrap().starts_with("seq,id,kind,status"), "{csv}");

    // GraphQL: the provider's runs with a discrepancy, and the run's mismatched items.
    let api = Api { addr: w.api.clone() };
    let id = run["id"].as_str().unwrap();
    let query = format!(
        "{{ reconRuns(provider: \"psp-a\", discrepancy: true) {{ edges {{ node {{ id difference trigger totals {{ matched }} }} }} }} \
         reconItems(run: \"{id}\", kind: \"amount_mismatch\") {{ edges {{ node {{ lineIds difference status }} }} }} }}"
    );
    let data = api.graphql(&w.key, &query);
    let runs = &data["reconRuns"]["edges"];
    assert_eq!(
        (runs[0]["node"]["id"].as_str(), runs[0]["node"]["difference"].as_str()),
        (Some(id), Some("-15.10")),
        "{data}"
    );
    assert_eq!(runs[0]["node"]["totals"]["matched"], 1);
    let items = &data["reconItems"]["edges"];
    assert_eq!(
        (items[0]["node"]["lineIds"][0].as_str(), items[0]["node"]["difference"].as_str()),
        (Some("l2"), Some("-0.10"))
    );
    let none = api.graphql(&w.key, "{ reconRuns(provider: \"psp-a\", discrepancy: false) { edges { node { id } } } }");
    assert_eq!(none["reconRuns"]["edges"].as_array().map(Vec::len), Some(0));

    // Later: the ledger records the fee, the provider reports dep-3. Both match late.
    std::thread::sleep(Duration::from_millis(20));
    w.transfer("recon:psp-a:transactional", "equity", "5.00", "fee-7");
    let later = rfc3339(now());
    w.control(
        "POST",
        "/control/providers/psp-a/lines",
        json!({"lines": [{"id": "l3", "amount": "20.00", "reference": "dep-3", "date": later}]}),
    );
    std::thread::sleep(Duration::from_millis(20));
    let second = w.run();
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(second["from"], run["as_of"], "the period starts where the last run ended");
    let t = &second["totals"];
    assert_eq!(
        (t["lines"].as_u64(), t["entries"].as_u64(), t["carried_over"].as_u64(), t["late_matched"].as_u64()),
        (Some(1), Some(1), Some(3), Some(2)),
        "{second}"
    );
    let first_items = w.items(&run);
    let closed: Vec<&Value> = first_items.iter().filter(|i| i["closed_by_run"] == second["id"]).collect();
    assert_eq!(closed.len(), 2, "{first_items:?}");
    assert!(closed.iter().all(|i| i["status"] == "matched"));
    assert_eq!(by_kind(&first_items, "amount_mismatch")[0]["status"], "open", "still short: still open");
    assert_eq!((second["reported"].as_str(), second["players"].as_str()), (Some("174.90"), Some("170.00")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movements_succeed_refuse_retry_and_fail_through_the_provider() {
    let db = fresh_database().await;
    let w = world(&db);
    w.transfer("recon:psp-a:transactional", "equity", "300.00", "operator-funds");
    ok(&w.api, &w.key, "PUT", "/v1/config/recon.movement.retry_seconds", json!({"value": 1}));
    ok(&w.api, &w.key, "PUT", "/v1/config/recon.movement.max_attempts", json!({"value": 3}));
    w.control("PUT", "/control/providers/psp-a", json!({"currency": "EUR", "opening_balance": "470.00", "lines": []}));
    let movement = |amount: &str, direction: &str| {
        let body = json!({"id": Uuid::new_v4(), "provider": "psp-a", "direction": direction, "amount": amount,
            "reason": "revenue sweep"});
        send(&w.api, &w.key, "POST", "/v1/recon/movements", body)
    };
    let settled = |m: &Value| {
        let path = format!("/v1/recon/movements/{}", m["id"].as_str().unwrap());
        wait_for(&w.api, &w.key, &path, |m| m["status"] != "pending")
    };
    let balances = || ok(&w.api, &w.key, "GET", "/v1/recon/providers/psp-a", Value::Null)["balances"].clone();

    // Beyond the operator's 300.00: refused, nothing moves.
    let (status, problem) = movement("300.01", "to_operational");
    assert_eq!((status, problem["code"].as_str()), (422, Some("segregation_breach")), "{problem}");
    // Succeeded: the hold is posted.
    let (status, m) = movement("100.00", "to_operational");
    assert_eq!(status, 201, "{m}");
    let m = settled(&m);
    assert_eq!((m["status"].as_str(), m["attempts"].as_array().map(Vec::len)), (Some("succeeded"), Some(1)), "{m}");
    let b = balances();
    assert_eq!((b["transactional"].as_str(), b["operational"].as_str()), (Some("370.00"), Some("100.00")), "{b}");
    // Refused by the provider: voided with its reason.
    w.control(
        "PUT",
        "/control/providers/psp-a/behaviour",
        json!({"movements": "refuse", "reason": "daily limit reached", "times": 1}),
    );
    let (_, m) = movement("50.00", "to_operational");
    let m = settled(&m);
    assert_eq!(
        (m["status"].as_str(), m["status_reason"].as_str()),
        (Some("refused"), Some("daily limit reached")),
        "{m}"
    );
    assert_eq!(balances()["transactional_available"], "370.00", "the refused hold is released");
    // Two errors, then success: three attempts, posted once.
    w.control("PUT", "/control/providers/psp-a/behaviour", json!({"movements": "fail", "times": 2}));
    let (_, m) = movement("10.00", "to_operational");
    let m = settled(&m);
    let outcomes: Vec<&str> =
        m["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!((m["status"].as_str(), outcomes), (Some("succeeded"), vec!["error", "error", "succeeded"]), "{m}");
    assert_eq!(balances()["operational"], "110.00");
    // Errors on every attempt: failed after three, voided, a critical audit entry.
    w.control("PUT", "/control/providers/psp-a/behaviour", json!({"movements": "fail", "times": 10}));
    let (_, m) = movement("10.00", "to_operational");
    let m = settled(&m);
    assert_eq!((m["status"].as_str(), m["attempts"].as_array().map(Vec::len)), (Some("failed"), Some(3)), "{m}");
    assert!(m["status_reason"].as_str().is_some_and(|r| r.contains("503")), "{m}");
    assert_eq!(balances()["operational"], "110.00", "nothing moved");
    wait_for(&w.api, &w.key, "/v1/admin/audit?level=critical", |a| a.to_string().contains("recon.movement.failed"));
    // Back to operational: the provider's own record moved once per succeeded movement.
    w.control("PUT", "/control/providers/psp-a/behaviour", json!({"movements": "succeed"}));
    let (_, m) = movement("110.00", "to_transactional");
    assert_eq!(settled(&m)["status"], "succeeded");
    let calls = w.control("GET", "/control/providers/psp-a/movements", Value::Null);
    let succeeded = calls.to_string().matches("succeeded").count();
    assert!(succeeded >= 3, "{calls}");
    assert_eq!(balances()["transactional"], "470.00", "back where it started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_a_movement_in_flight_and_fires_the_schedules() {
    let db = fresh_database().await;
    let mut w = world(&db);
    w.transfer("recon:psp-a:transactional", "equity", "300.00", "operator-funds");
    w.control("PUT", "/control/providers/psp-a", json!({"currency": "EUR", "opening_balance": "470.00", "lines": []}));
    ok(&w.api, &w.key, "PUT", "/v1/config/recon.movement.retry_seconds", json!({"value": 1}));
    ok(&w.api, &w.key, "PUT", "/v1/config/recon.movement.max_attempts", json!({"value": 50}));
    // The provider fails every call: the movement is pending, its errors recorded, when the engine dies.
    w.control("PUT", "/control/providers/psp-a/behaviour", json!({"movements": "fail", "times": 1000}));
    let body = json!({"id": Uuid::new_v4(), "provider": "psp-a", "direction": "to_operational", "amount": "25.00",
        "reason": "sweep"});
    let (status, m) = send(&w.api, &w.key, "POST", "/v1/recon/movements", body);
    assert_eq!(status, 201, "{m}");
    let path = format!("/v1/recon/movements/{}", m["id"].as_str().unwrap());
    wait_for(&w.api, &w.key, &path, |m| m["attempts"].as_array().is_some_and(|a| !a.is_empty()));
    let (standby, log) = spawn_up(&db, true);
    drop(std::mem::replace(&mut w._engine, standby));
    w.api = serving(log).addr;
    // The standby took the writer and the jobs: the saga goes on from the log.
    w.control("PUT", "/control/providers/psp-a/behaviour", json!({"movements": "succeed"}));
    let m = wait_for(&w.api, &w.key, &path, |m| m["status"] != "pending");
    assert_eq!(m["status"], "succeeded", "{m}");
    let attempts = m["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2 && attempts.last().unwrap()["outcome"] == "succeeded", "{m}");
    let calls = w.control("GET", "/control/providers/psp-a/movements", Value::Null);
    assert_eq!(calls["movements"].as_array().map(Vec::len), Some(1), "{calls}");
    assert_eq!(ok(&w.api, &w.key, "GET", "/v1/recon/providers/psp-a", Value::Null)["balances"]["operational"], "25.00");
    // A schedule due every minute fires, and its run records it was scheduled.
    let schedule = json!({"provider": "psp-a", "cron": "* * * * *", "rules": ["by-ref"], "enabled": true});
    ok(&w.api, &w.key, "PUT", "/v1/recon/schedules/every-minute", schedule);
    let deadline = Instant::now() + Duration::from_secs(75);
    let run = loop {
        let runs = ok(&w.api, &w.key, "GET", "/v1/recon/runs?provider=psp-a", Value::Null);
        if let Some(run) = runs["runs"].as_array().unwrap().iter().find(|r| r["trigger"] == "scheduled") {
            break run.clone();
        }
        assert!(Instant::now() < deadline, "no scheduled run: {runs}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(run["schedule"], "every-minute");
    assert!(run["as_of"].as_str().unwrap().ends_with(":00Z"), "a run as of its due minute: {run}");
    let path = format!("/v1/recon/runs/{}", run["id"].as_str().unwrap());
    let done = wait_for(&w.api, &w.key, &path, |r| r["status"] != "running");
    assert_eq!(done["status"], "completed", "{done}");
    let schedules = ok(&w.api, &w.key, "GET", "/v1/recon/schedules", Value::Null);
    assert_eq!(schedules["schedules"][0]["last_run"], run["id"], "{schedules}");
}
