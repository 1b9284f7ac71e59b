//! The operator platform end to end through `ledger up` as a process: the audit log (entries
//! asked for from outside the writer are recorded within a second, read as JSON, CSV and
//! GraphQL, counted in `/metrics`, covered by `ledger verify`; admin actions, refusals over HTTP
//! and GraphQL, and setting changes over HTTP and from the command line are audited).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger_core::audit::{Entry, Level};
use ledger_store::EventMeta;
use serde_json::{Value, json};
use support::{Api, Running, key, ledger, wait_for_line};
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

fn up(db: &TestDatabase) -> (Running, Api) {
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    (up, Api { addr })
}

fn entry(action: &str, level: Level, subject: &str) -> Entry {
    Entry {
        id: Uuid::new_v4(),
        level,
        action: action.into(),
        subject: subject.into(),
        before: Some(json!({"per_second": 100})),
        after: Some(json!({"per_second": 5, "note": "a, \"quoted\" value"})),
        reason: Some("=cmd".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_asked_for_outside_the_writer_are_recorded_and_read_as_json_csv_and_graphql() {
    let db = fresh_database().await;
    let auditor = key(&db, "auditors", "audit:read,read");
    let other = key(&db, "backoffice", "accounts:read");
    let (up, api) = up(&db);

    // The command line's way: a row in the transaction of the change it audits.
    let mut conn = db.connect().await;
    let cli = EventMeta { channel: Some("cli".into()), ..EventMeta::default() };
    let (first, second) =
        (entry("config.set", Level::Info, "rate_limit.default"), entry("keys.revoke", Level::Critical, "key-9"));
    ledger_store::audit::request(&mut conn, &first, &cli).await.unwrap();
    ledger_store::audit::request(&mut conn, &second, &cli).await.unwrap();

    // The keys the test made from the command line are audited too: four entries in all.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let (status, _, body) = api.get(&auditor, "/v1/admin/audit", "application/json");
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        if page["entries"].as_array().is_some_and(|e| e.len() == 4) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{page}");
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["keys.create", "keys.create", "config.set", "keys.revoke"]);
    let (mine, theirs) = (&entries[2], &entries[3]);
    assert_eq!(mine["id"], first.id.to_string());
    assert_eq!(mine["channel"], "cli");
    assert_eq!(mine["level"], "info");
    assert_eq!(mine["before"], json!({"per_second": 100}));
    assert_eq!(theirs["id"], second.id.to_string());
    assert_eq!(page["next_after"], theirs["position"]);

    // By level; as CSV (quoted, formulas defused); after a position.
    let (_, _, body) = api.get(&auditor, "/v1/admin/audit?level=critical", "application/json");
    let critical: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(critical["entries"].as_array().map(Vec::len), Some(1), "{critical}");
    let (status, head, csv) = api.get(&auditor, "/v1/admin/audit?format=csv", "*/*");
    assert_eq!(status, 200, "{csv}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/csv"), "{head}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "position,id,level,at,key_id,channel,source,action,subject,before,after,reason");
    assert_eq!(lines.len(), 5, "{csv}");
    let row = lines.iter().find(|l| l.contains(&first.id.to_string())).unwrap();
    assert!(row.contains(r#""{""note"":""a, \""quoted\"" value"",""per_second"":5}""#), "{row}");
    assert!(row.ends_with(",'=cmd"), "{row}");
    let after = mine["position"].as_i64().unwrap();
    let (_, _, body) = api.get(&auditor, &format!("/v1/admin/audit?after={after}"), "application/json");
    let rest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rest["entries"][0]["id"], second.id.to_string());
    let (status, _, body) = api.get(&auditor, "/v1/admin/audit?level=loud", "application/json");
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = api.get(&other, "/v1/admin/audit", "application/json");
    assert_eq!(status, 403, "reading the audit log takes audit:read");

    // GraphQL, by actor and action.
    let data = api.graphql(
        &auditor,
        "{ auditLog(actor: \"cli\", action: \"keys.revoke\") { edges { node { id level channel action subject } } } }",
    );
    let nodes = data["auditLog"]["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{data}");
    assert_eq!(nodes[0]["node"]["level"], "critical");
    assert_eq!(nodes[0]["node"]["subject"], "key-9");

    // Counted where they were recorded; nothing left to record; the log verifies.
    let metrics = api.get(&auditor, "/metrics", "text/plain").2;
    // Three info entries (two keys, a setting) and one critical; the 403 above is a warning.
    for line in [
        "ledger_audit_entries_total{level=\"info\"} 3",
        "ledger_audit_entries_total{level=\"warning\"} 1",
        "ledger_audit_entries_total{level=\"critical\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_requests").fetch_one(&mut conn).await.unwrap();
    assert_eq!(pending, 0);
    drop(up);
    let out = ledger(&db, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(conn);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_and_refusals_are_audited_without_the_key_itself() {
    let db = fresh_database().await;
    let admin = key(&db, "admins", "keys:write,audit:read");
    let (up, api) = up(&db);
    // The engine records the command line's entry for that key as it starts: wait for it, so
    // the entries below come in the order the test makes them.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, body) = api.get(&admin, "/v1/admin/audit", "application/json");
        let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if page["entries"].as_array().is_some_and(|e| !e.is_empty()) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Over HTTP: a key made (its secret shown once, never audited), a role set, a refusal.
    let (status, made) =
        api.post(&admin, "/v1/admin/keys", json!({"channel": "pos-7", "permissions": ["accounts:read"]}));
    assert_eq!(status, 201, "{made}");
    let secret = made["key"].as_str().unwrap().to_owned();
    let put = support::http(
        &api.addr,
        "PUT",
        "/v1/admin/roles/ops",
        &[("Authorization", &format!("Bearer {admin}")), ("Content-Type", "application/json")],
        &json!({"permissions": ["transfers:*"]}).to_string(),
    );
    assert!([200, 201].contains(&put.0), "{put:?}");
    let (status, _) = api.post(&secret, "/v1/accounts", json!({"code": "x", "currency": "EUR", "kind": "asset"}));
    assert_eq!(status, 403);
    // Over GraphQL: a field the key may not read.
    let (status, _, body) = support::http(
        &api.addr,
        "POST",
        "/graphql",
        &[("Authorization", &format!("Bearer {secret}")), ("Content-Type", "application/json")],
        &json!({"query": "{ auditLog { edges { node { id } } } }"}).to_string(),
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "forbidden", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["permission"], "audit:read", "{answer}");
    // From the command line beside the running engine.
    let cli = key(&db, "later", "accounts:read");
    assert!(cli.starts_with("ldg_"));

    let deadline = Instant::now() + Duration::from_secs(5);
    let entries = loop {
        let (_, _, body) = api.get(&admin, "/v1/admin/audit", "application/json");
        let page: Value = serde_json::from_str(&body).unwrap();
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= 6 || Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["level"].as_str().unwrap(), e["channel"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        [
            ("keys.create", "info", "cli"),
            ("keys.create", "info", "admins"),
            ("roles.set", "info", "admins"),
            ("access.denied", "warning", "pos-7"),
            ("access.denied", "warning", "pos-7"),
            ("keys.create", "info", "cli")
        ],
        "{entries:#?}"
    );
    assert_eq!(entries[1]["subject"], made["id"]);
    assert_eq!(entries[3]["subject"], "accounts:write");
    assert_eq!(entries[3]["key_id"], made["id"]);
    // The GraphQL refusal is the same entry as the HTTP one, naming the missing permission.
    assert_eq!((&entries[4]["subject"], &entries[4]["key_id"]), (&json!("audit:read"), &made["id"]));
    assert_eq!(entries[3]["source"], "http");
    assert_eq!(entries[4]["source"], "http");
    // No key in clear anywhere in the log.
    let mut conn = db.connect().await;
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%ldg_%' OR metadata::text LIKE '%ldg_%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    drop(up);
    drop(conn);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_changes_over_http_and_from_the_command_line_are_audited_with_their_values() {
    let db = fresh_database().await;
    let operator = key(&db, "operators", "config:write,audit:read");
    let (up, api) = up(&db);
    let auth = format!("Bearer {operator}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let (slow, slower) = (json!({"per_second": 50, "burst": 100}), json!({"per_second": 10, "burst": 20}));
    let put =
        support::http(&api.addr, "PUT", "/v1/config/rate_limit.default", &headers, &json!({"value": slow}).to_string());
    assert_eq!(put.0, 200, "{put:?}");
    // The same value again changes nothing, and is not audited.
    let again =
        support::http(&api.addr, "PUT", "/v1/config/rate_limit.default", &headers, &json!({"value": slow}).to_string());
    assert_eq!(again.0, 200, "{again:?}");
    let url = format!("http://{}", api.addr);
    let remote = ["--url", url.as_str(), "--key", operator.as_str()];
    let set = ledger(&db, &[&["config", "set", "rate_limit.default", &slower.to_string()][..], &remote].concat());
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let reset = ledger(&db, &[&["config", "reset", "rate_limit.default"][..], &remote].concat());
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let deleted = support::http(&api.addr, "DELETE", "/v1/config/rate_limit.enabled", &headers, "");
    assert_eq!(deleted.0, 200, "{deleted:?}");

    // The key's creation and the three changes, once the read model has them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let (status, _, body) = api.get(&operator, "/v1/admin/audit?level=info", "application/json");
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        if page["entries"].as_array().is_some_and(|e| e.len() >= 4) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seen: Vec<(&str, &str, &Value, &Value, &str)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("config.")))
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or("");
            (text("action"), text("subject"), &e["before"], &e["after"], text("channel"))
        })
        .collect();
    let null = Value::Null;
    assert_eq!(
        seen,
        [
            ("config.set", "rate_limit.default", &null, &slow, "operators"),
            ("config.set", "rate_limit.default", &slow, &slower, "operators"),
            ("config.reset", "rate_limit.default", &slower, &null, "operators"),
        ],
        "{page}"
    );
    let metrics = api.get(&operator, "/metrics", "text/plain").2;
    // The key's creation (from the command line, recorded by this engine) and the three changes.
    assert!(metrics.contains("ledger_audit_entries_total{level=\"info\"} 4"), "{metrics}");
    drop(up);
    let out = ledger(&db, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db.drop_database().await;
}
