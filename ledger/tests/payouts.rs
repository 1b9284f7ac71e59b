//! Payouts end to end through `ledger up` as a process, over HTTP and Kafka (librdkafka's mock
//! cluster, or the brokers in `KAFKA_BROKERS`), with the gates run apart (`ledger payouts
//! req-gate`, `oebs-gate`): requests, one payout per positive payout account, a client with
//! nothing to pay out, funds gone at send time, the ERP messages, statuses back (paid,
//! rejected with the amount returned, a repeat, a conflict, an unknown payout, a malformed
//! message), two gates racing over 1,000 requests with one killed mid-run, and `ledger verify`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};
use support::{Api, Running, key, ledger, read_topic, send, wait_for_line};
use test_support::{TestDatabase, fresh_database};
use uuid::Uuid;

fn gate(db: &TestDatabase, addr: &str, which: &str, key: &str, limit: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["payouts", which, "--url", &format!("http://{addr}"), "--idle-runs", "2"])
        .env("DATABASE_URL", &db.url)
        .env("LEDGER_KEY", key)
        .env("LEDGER_PAYOUT_REQUEST_LIMIT", limit)
        .env("LEDGER_PAYOUT_SENDER_LIMIT", limit)
        .env("LEDGER_PAYOUT_REQ_GATE_INTERVAL_MS", "50")
        .env("LEDGER_PAYOUT_OEBS_GATE_INTERVAL_MS", "50")
        .env("LEDGER_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_gate(db: &TestDatabase, addr: &str, which: &str, key: &str) {
    let status = gate(db, addr, which, key, "1000").wait().unwrap();
    assert!(status.success(), "{which} failed");
}

struct Payouts<'a> {
    api: &'a Api,
    admin: &'a str,
    client: &'a str,
}

impl Payouts<'_> {
    fn account(&self, code: &str, client: &str, account_type: &str, amount: &str) -> String {
        let body = json!({"code": code, "currency": "EUR", "kind": "liability", "no_overdraft": true,
            "metadata": {"client_id": client, "account_type": account_type}});
        let (status, account) = self.api.post(self.admin, "/v1/accounts", body);
        assert_eq!(status, 201, "{account}");
        if amount != "0.00" {
            self.move_money("bank", code, amount);
        }
        account["id"].as_str().unwrap().to_owned()
    }

    fn move_money(&self, debit: &str, credit: &str, amount: &str) {
        let transfer = json!({"id": Uuid::new_v4(), "debit": debit, "credit": credit, "amount": amount});
        let (status, body) = self.api.post(self.admin, "/v1/transfers", transfer);
        assert_eq!(status, 201, "{body}");
    }

    fn balance(&self, code: &str) -> String {
        let (status, _, body) = self.api.get(self.admin, &format!("/v1/accounts?code={code}"), "application/json");
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        body["balance"]["balance"].as_str().unwrap().to_owned()
    }

    fn request(&self, client: &str) -> Uuid {
        let id = Uuid::new_v4();
        let (status, body) = self.api.post(self.client, "/v1/payouts/requests", json!({"id": id, "client_id": client}));
        assert_eq!((status, body["status"].as_str()), (202, Some("new")), "{body}");
        id
    }

    fn get(&self, id: Uuid) -> Value {
        let (status, _, body) = self.api.get(self.admin, &format!("/v1/payouts/requests/{id}"), "application/json");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until the request's first payout has `status` (or a minute passed).
    fn wait_payout(&self, id: Uuid, n: usize, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let request = self.get(id);
            if request["payouts"][n]["status"] == status || Instant::now() > deadline {
                assert_eq!(request["payouts"][n]["status"], status, "{request}");
                return request;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_end_to_end_over_http_and_kafka() {
    let run = Uuid::new_v4().simple().to_string();
    let t = |name: &str| format!("{name}-{run}");
    let (erp, ard, oebs, dlq) =
        (t("new-payout"), t("payout-status-ard"), t("payout-status-oebs"), t("payout-status.dlq"));
    let prefix = format!("ledger{run}");
    let statuses = format!("{ard},{oebs}");
    let kafka_env = [
        ("LEDGER_KAFKA_TOPIC_PREFIX", prefix.as_str()),
        ("LEDGER_PAYOUT_ERP_TOPIC", erp.as_str()),
        ("LEDGER_PAYOUT_STATUS_TOPICS", statuses.as_str()),
        ("LEDGER_PAYOUT_STATUS_DEAD_LETTER_TOPIC", dlq.as_str()),
    ];
    let (_mock, brokers) = support::kafka_for(&kafka_env, &[]).await;

    let db = fresh_database().await;
    let admin = key(&db, "backoffice", "accounts:write,transfers:write,read");
    let client = key(&db, "clients", "payouts:request");
    let gates = key(&db, "gates", "payouts:gate");
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_LOG", "info,rdkafka=info,sqlx=warn")
            .env("KAFKA_BROKERS", &brokers)
            .envs(kafka_env)
            .env("LEDGER_PAYOUT_GATES", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    let api = Api { addr: addr.clone() };
    let p = Payouts { api: &api, admin: &admin, client: &client };
    let (status, body) = api.post(&admin, "/v1/accounts", json!({"code": "bank", "currency": "EUR", "kind": "asset"}));
    assert_eq!(status, 201, "{body}");

    // c1 has two payout accounts with money and a wallet; c2 one; c3 an empty one; c4 one
    // whose money partly leaves between planning and sending.
    p.account("c1:payout:a", "c1", "payout", "100.00");
    p.account("c1:payout:b", "c1", "payout", "30.50");
    p.account("c1:wallet", "c1", "wallet", "70.00");
    p.account("c2:payout", "c2", "payout", "40.00");
    p.account("c3:payout", "c3", "payout", "0.00");
    p.account("c4:payout", "c4", "payout", "20.00");
    let requests: Vec<Uuid> = ["c1", "c2", "c3", "c4"].iter().map(|c| p.request(c)).collect();
    run_gate(&db, &addr, "req-gate", &gates);
    let planned: Vec<Value> = requests.iter().map(|id| p.get(*id)).collect();
    let counts: Vec<(&str, usize)> =
        planned.iter().map(|r| (r["status"].as_str().unwrap(), r["payouts"].as_array().unwrap().len())).collect();
    assert_eq!(counts, [("done", 2), ("done", 1), ("done", 0), ("done", 1)]);
    let mut c1_amounts: Vec<&str> =
        planned[0]["payouts"].as_array().unwrap().iter().map(|x| x["amount"].as_str().unwrap()).collect();
    c1_amounts.sort();
    assert_eq!(c1_amounts, ["100.00", "30.50"]);
    p.move_money("c4:payout", "bank", "5.00");
    run_gate(&db, &addr, "oebs-gate", &gates);
    let c4 = p.get(requests[3]);
    assert_eq!(c4["payouts"][0]["status"], "failed");
    assert!(c4["payouts"][0]["reason"].as_str().unwrap().starts_with("insufficient_funds"), "{c4}");
    assert_eq!(
        [p.balance("c1:payout:a"), p.balance("c1:payout:b"), p.balance("c1:wallet"), p.balance("c4:payout")],
        ["0.00", "0.00", "70.00", "15.00"]
    );
    assert_eq!((p.balance("payout_sent:c1:EUR"), p.balance("payout_sent:c2:EUR")), ("130.50".into(), "40.00".into()));

    // The ERP topic: one message per payout sent, from the log.
    let sent = read_topic(&brokers, &erp, 3).await;
    assert_eq!(sent.len(), 3);
    for (message, _) in &sent {
        streams::schemas::check_domain("PayoutErpMessage", message).unwrap();
    }
    let c2_payout = planned[1]["payouts"][0]["id"].as_str().unwrap().to_owned();
    let c1_payout = planned[0]["payouts"][0]["id"].as_str().unwrap().to_owned();
    assert!(sent.iter().any(|(m, _)| m["payout_id"] == c2_payout.as_str() && m["amount"] == "40.00"));

    // Statuses back: paid, rejected (the amount returns), a repeat, a conflict, an unknown
    // payout and a malformed message (the last three dead-lettered).
    let producer: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    send(&producer, &ard, &c1_payout, json!({"payout_id": c1_payout, "status": "paid"})).await;
    send(&producer, &oebs, &c2_payout, json!({"payout_id": c2_payout, "status": "rejected", "reason": "closed"})).await;
    p.wait_payout(requests[1], 0, "rejected");
    let first = p.wait_payout(requests[0], 0, "paid");
    send(&producer, &oebs, &c1_payout, json!({"payout_id": c1_payout, "status": "paid"})).await;
    send(&producer, &ard, &c2_payout, json!({"payout_id": c2_payout, "status": "paid"})).await;
    send(&producer, &ard, "x", json!({"payout_id": Uuid::nil(), "status": "paid"})).await;
    send(&producer, &ard, "y", json!({"payout": "?"})).await;
    let dead = read_topic(&brokers, &dlq, 3).await;
    let mut codes: Vec<String> = dead
        .iter()
        .map(|(_, h)| h.iter().find(|(k, _)| k == "dlq.error.code").map(|(_, v)| v.clone()).unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["invalid_body", "invalid_transition", "payout_not_found"]);
    assert_eq!(p.get(requests[0]), first, "the repeated paid changed nothing");
    assert_eq!(p.get(requests[1])["payouts"][0]["status"], "rejected");
    assert_eq!((p.balance("c2:payout"), p.balance("payout_sent:c2:EUR")), ("40.00".into(), "0.00".into()));

    // The read model in GraphQL: c2's history chains its payout account's balance; c1's
    // payouts and cash-payment-facts.
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = "{ payoutHistory(client: \"c2\") { edges { node { action amount balanceBefore balanceAfter } } } \
        payouts(client: \"c1\", status: paid) { edges { node { amount status } } } \
        cashPaymentFacts(client: \"c1\") { edges { node { amount payoutId } } } \
        payoutRequests(client: \"c3\") { edges { node { status payoutCount payouts { id } } } } }";
    let data = loop {
        let data = api.graphql(&admin, query);
        if data["payoutHistory"]["edges"].as_array().is_some_and(|e| e.len() == 2) || Instant::now() > deadline {
            break data;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let history: Vec<(&str, &str, &str)> = data["payoutHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (n["action"].as_str().unwrap(), n["balanceBefore"].as_str().unwrap(), n["balanceAfter"].as_str().unwrap())
        })
        .collect();
    assert_eq!(history, [("sent", "40.00", "0.00"), ("returned", "0.00", "40.00")], "{data}");
    assert_eq!(data["payouts"]["edges"].as_array().map(Vec::len), Some(1), "{data}");
    assert_eq!(data["cashPaymentFacts"]["edges"].as_array().map(Vec::len), Some(2), "{data}");
    let c3 = &data["payoutRequests"]["edges"][0]["node"];
    assert_eq!((c3["status"].as_str(), c3["payoutCount"].as_i64()), (Some("done"), Some(0)), "{data}");

    // Two request gates racing over 1,000 requests, one killed mid-run and started again, then
    // two ERP gates: every payout exactly once.
    let clients: i64 = 250;
    let mut batch = Vec::new();
    for n in 0..clients {
        let body = json!({"code": format!("r{n}:payout"), "currency": "EUR", "kind": "liability",
            "metadata": {"client_id": format!("r{n}"), "account_type": "payout"}});
        assert_eq!(api.post(&admin, "/v1/accounts", body).0, 201);
        batch.push(json!({"id": Uuid::new_v4(), "debit": "bank", "credit": format!("r{n}:payout"), "amount": "2.00"}));
    }
    let (status, body) = api.post(&admin, "/v1/transfers/batch", json!({"transfers": batch}));
    assert_eq!(status, 200, "{body}");
    for n in 0..1000 {
        p.request(&format!("r{}", n % clients));
    }
    for which in ["req-gate", "oebs-gate"] {
        let mut racing = [gate(&db, &addr, which, &gates, "20"), gate(&db, &addr, which, &gates, "20")];
        std::thread::sleep(Duration::from_millis(150));
        racing[0].kill().unwrap();
        racing[0].wait().unwrap();
        racing[0] = gate(&db, &addr, which, &gates, "20");
        for g in &mut racing {
            assert!(g.wait().unwrap().success(), "{which}");
        }
    }
    let mut conn = db.connect().await;
    let count = |types: &'static str| {
        let sql = format!("SELECT count(*), count(DISTINCT stream_id) FROM events WHERE event_type IN ({types})");
        sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql))
    };
    let created = count("'PayoutCreated'").fetch_one(&mut conn).await.unwrap();
    let sent = count("'PayoutSent'").fetch_one(&mut conn).await.unwrap();
    let done = count("'PayoutRequestDone', 'PayoutRequestFailed'").fetch_one(&mut conn).await.unwrap();
    assert_eq!(created, (clients + 4, clients + 4), "one payout per positive account, each once");
    assert_eq!(sent, (clients + 3, clients + 3));
    assert_eq!(done, (1004, 1004), "every request planned once");
    for n in [0, clients / 2, clients - 1] {
        assert_eq!(
            (p.balance(&format!("r{n}:payout")), p.balance(&format!("payout_sent:r{n}:EUR"))),
            ("0.00".into(), "2.00".into())
        );
    }

    let out = ledger(&db, &["verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(up);
    drop(conn);
    db.drop_database().await;
}

/// A status topic that does not exist when `ledger up` starts: with a broker that lets it, the
/// engine creates it at start-up; with one that refuses (librdkafka's mock cluster has no
/// CreateTopics), `/healthz` names it missing until another client creates it. Either way a
/// status published to it is applied within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_topic_missing_at_start_is_consumed_within_ten_seconds_of_its_first_message() {
    let run = Uuid::new_v4().simple().to_string();
    let t = |name: &str| format!("{name}-{run}");
    let (erp, ard, dlq) = (t("new-payout"), t("payout-status-ard"), t("payout-status.dlq"));
    let prefix = format!("ledger{run}");
    let kafka_env = [
        ("LEDGER_KAFKA_TOPIC_PREFIX", prefix.as_str()),
        ("LEDGER_PAYOUT_ERP_TOPIC", erp.as_str()),
        ("LEDGER_PAYOUT_STATUS_TOPICS", ard.as_str()),
        ("LEDGER_PAYOUT_STATUS_DEAD_LETTER_TOPIC", dlq.as_str()),
    ];
    // Every topic of the configuration but the status topic under test.
    let (mock, brokers) = support::kafka_for(&kafka_env, &[&ard]).await;

    let db = fresh_database().await;
    let admin = key(&db, "backoffice", "accounts:write,transfers:write,read");
    let client = key(&db, "clients", "payouts:request");
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_LOG", "info,rdkafka=info,sqlx=warn")
            .env("KAFKA_BROKERS", &brokers)
            .envs(kafka_env)
            .env("LEDGER_PAYOUT_REQ_GATE_INTERVAL_MS", "50")
            .env("LEDGER_PAYOUT_OEBS_GATE_INTERVAL_MS", "50")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, _) = wait_for_line(&mut log, "command API on http://");
    let (lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || log.map_while(Result::ok).for_each(|line| drop(lines.send(line))));
    let api = Api { addr: addr.clone() };
    let p = Payouts { api: &api, admin: &admin, client: &client };
    let (status, body) = api.post(&admin, "/v1/accounts", json!({"code": "bank", "currency": "EUR", "kind": "asset"}));
    assert_eq!(status, 201, "{body}");
    p.account("c1:payout", "c1", "payout", "25.00");
    let request = p.request("c1");
    let payout = p.wait_payout(request, 0, "sent")["payouts"][0]["id"].as_str().unwrap().to_owned();

    // /healthz lists the consumed topic: missing on the mock, subscribed where it was created.
    let expected = if mock.is_some() { "missing" } else { "subscribed" };
    let topic_state = || {
        let (status, _, body) = api.get(&admin, "/healthz", "application/json");
        assert_eq!(status, 200, "{body}");
        let health: Value = serde_json::from_str(&body).unwrap();
        let topics = health["kafka_consumers"].as_array().cloned().unwrap_or_default();
        let topic = topics.iter().find(|t| t["topic"] == ard.as_str()).cloned().unwrap_or(Value::Null);
        (topic["consumer"].as_str().map(str::to_owned), topic["state"].as_str().map(str::to_owned))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while topic_state().1.as_deref() != Some(expected) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(topic_state(), (Some("ledger-payout-statuses".into()), Some(expected.into())));
    if let Some(mock) = &mock {
        let metrics = api.get(&admin, "/metrics", "text/plain").2;
        let up_line = format!("ledger_consumer_topic_up{{consumer=\"ledger-payout-statuses\",topic=\"{ard}\"}} 0");
        assert!(metrics.contains(&up_line), "{metrics}");
        let named = logged.try_iter().any(|l| l.contains("consumed Kafka topic missing") && l.contains(&ard));
        assert!(named, "one line names the missing topic");
        // Another client creates it.
        mock.create_topic(&ard, 1, 1).unwrap();
    }

    let producer: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    send(&producer, &ard, &payout, json!({"payout_id": payout, "status": "paid"})).await;
    let published = Instant::now();
    while p.get(request)["payouts"][0]["status"] != "paid" && published.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.get(request)["payouts"][0]["status"], "paid", "applied within 10 s of the message");
    let deadline = Instant::now() + Duration::from_secs(10);
    while topic_state().1.as_deref() != Some("subscribed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(topic_state().1.as_deref(), Some("subscribed"));
    drop(up);
    db.drop_database().await;
}
