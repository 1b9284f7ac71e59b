//! Gift certificates end to end through `ledger up` as a process, over HTTP and Kafka
//! (librdkafka's mock cluster, or the brokers in `KAFKA_BROKERS`): uploads over HTTP (JSON and
//! CSV) and over the upload topic, activation by the sales order and payment topics (either
//! first, a partial payment activating nothing), the CVC by SMS (the loopback simulator),
//! authorize, partial capture, void of the capture, a race of two channels, expiry; then the
//! three published topics against their schemas, the audit trail in GraphQL and as CSV, no CVC in
//! clear in any log line, event or message, and `ledger verify`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use serde_json::{Value, json};
use support::{Api, Running, http, key, ledger, read_topic, send, wait_for_line};
use test_support::fresh_database;
use uuid::Uuid;

const CVC_KEY: &str = "8f2a0c3e5b7d9f1a2c4e6a8b0d2f4a6c8e0a2c4e6f8a0b2d4f6a8c0e2a4c6e8f";

/// The certificate calls of this test.
trait CertificateApi {
    fn balance(&self, key: &str, code: &str) -> Value;
    fn wait_state(&self, key: &str, code: &str, state: &str) -> Value;
}

impl CertificateApi for Api {
    fn balance(&self, key: &str, code: &str) -> Value {
        let (_, _, body) = self.get(key, &format!("/v1/certificates/{code}/balance"), "application/json");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Waits until the certificate is in `state` (or a minute passed).
    fn wait_state(&self, key: &str, code: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let balance = self.balance(key, code);
            if balance["state"] == state || Instant::now() > deadline {
                assert_eq!(balance["state"], state, "{code}: {balance}");
                return balance;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_end_to_end_over_http_and_kafka() {
    // Names unique to this run, so a real broker's earlier runs do not interfere.
    let run = Uuid::new_v4().simple().to_string();
    let t = |name: &str| format!("{name}-{run}");
    let (upload, orders, payments) = (t("GiftCertificateUpload"), t("All_SalesOrder"), t("All_Payments"));
    let (state_topic, transaction_topic, bi_topic) =
        (t("GiftCertificateState"), t("GiftCertificateTransaction"), t("GiftCertificateBI"));
    let prefix = format!("ledger{run}");
    // The domain's topics; every other part's are created as `ledger kafka topics` lists them.
    let kafka_env = [
        ("LEDGER_KAFKA_TOPIC_PREFIX", prefix.as_str()),
        ("LEDGER_CERTIFICATES_UPLOAD_TOPIC", upload.as_str()),
        ("LEDGER_CERTIFICATES_ORDERS_TOPIC", orders.as_str()),
        ("LEDGER_CERTIFICATES_PAYMENTS_TOPIC", payments.as_str()),
        ("LEDGER_CERTIFICATES_STATE_TOPIC", state_topic.as_str()),
        ("LEDGER_CERTIFICATES_TRANSACTION_TOPIC", transaction_topic.as_str()),
        ("LEDGER_CERTIFICATES_BI_TOPIC", bi_topic.as_str()),
    ];
    let (_mock, brokers) = support::kafka_for(&kafka_env, &[]).await;

    let db = fresh_database().await;
    let loader = key(&db, "loader", "certificates:upload");
    let store = key(&db, "onlinestore", "certificates:redeem,read");
    let pos = key(&db, "pos", "certificates:redeem,read");
    let auditor = key(&db, "auditor", "read");

    let mut sms = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["sms-simulator", "--listen", "127.0.0.1:0"])
            .env("LEDGER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut sms_log = BufReader::new(sms.0.stderr.take().unwrap()).lines();
    let (sms_addr, _) = wait_for_line(&mut sms_log, "SMS simulator on http://");
    std::thread::spawn(move || sms_log.map_while(Result::ok).for_each(drop));

    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_LOG", "debug,rdkafka=info,sqlx=warn,hyper=info,h2=info,tower=info")
            .env("KAFKA_BROKERS", &brokers)
            .envs(kafka_env)
            .env("LEDGER_SECRETS_KEY", CVC_KEY)
            .env("LEDGER_SMS_URL", format!("http://{sms_addr}/sms"))
            .env("LEDGER_CERTIFICATES_EXPIRY_INTERVAL_MS", "200")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, mut logged) = wait_for_line(&mut log, "command API on http://");
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || log.map_while(Result::ok).for_each(|l| drop(log_tx.send(l))));
    let api = Api { addr };
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);

    // Uploads: JSON and CSV over HTTP, rows over the topic.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(15))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, body) = api.post(
        &loader,
        "/v1/certificates/upload/batch",
        json!({"certificates": [
            {"code": "GC-1", "nominal": "100.00", "currency": "EUR", "campaign": "spring"},
            {"code": "GC-2", "nominal": "50.00", "currency": "EUR", "expires_at": soon, "phone": "+79990002233"},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["result"], "issued");
    let csv = "code,nominal,currency,expires_at,campaign,phone\nGC-3,10.00,EUR,,autumn,\nGC-4,10.001,EUR,,,\n";
    let auth = format!("Bearer {loader}");
    let (status, _, body) = http(
        &api.addr,
        "POST",
        "/v1/certificates/upload/batch",
        &[("Authorization", auth.as_str()), ("Content-Type", "text/csv")],
        csv,
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["results"][0]["result"].as_str(), body["results"][1]["result"].as_str()),
        (Some("issued"), Some("rejected"))
    );
    assert_eq!(body["results"][1]["problem"]["code"], "amount_scale");

    let producer: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    send(
        &producer,
        &upload,
        "upload-1",
        json!([
            {"code": "GC-5", "nominal": "20.00", "currency": "EUR", "campaign": "spring"},
            {"code": "GC-6", "nominal": "abc", "currency": "EUR"}
        ]),
    )
    .await;
    api.wait_state(&auditor, "GC-5", "issued");
    let dead = read_topic(&brokers, &format!("{upload}.dlq"), 1).await;
    assert_eq!(dead.len(), 1, "the message with a bad row is dead-lettered");
    let code = dead[0].1.iter().find(|(k, _)| k == "dlq.error.code").map(|(_, v)| v.as_str());
    assert_eq!(code, Some("rows_rejected"));
    let detail = dead[0].1.iter().find(|(k, _)| k == "dlq.error.detail").map(|(_, v)| v.clone()).unwrap();
    assert!(detail.contains("GC-6") && detail.contains("invalid_amount") && !detail.contains("GC-5"), "{detail}");

    // Activation by topics: a payment before its order, a partial payment, then the rest (the
    // payment that completes the order is the one activations name, whatever the ids' order).
    let paid = |id: &str, order: &str, amount: &str| json!({"payment_id": id, "order_id": order, "status": "paid", "amount": amount, "currency": "EUR"});
    send(&producer, &payments, "p9", paid("p9", "o1", "60.00")).await;
    send(
        &producer,
        &orders,
        "o1",
        json!({"order_id": "o1", "total": "100.00", "currency": "EUR", "client_id": "client-7",
            "phone": "+79990001122", "source": "web",
            "lines": [{"type": "gift_certificate", "certificate_code": "GC-1", "amount": "100.00"},
                      {"type": "goods", "sku": "mug", "amount": "0.00"}]}),
    )
    .await;
    // The order and the partial payment are in; nothing is activated yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = &mut db.connect().await;
        let seen: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbox WHERE consumer IN ('ledger-certificate-orders', 'ledger-certificate-payments')",
        )
        .fetch_one(conn)
        .await
        .unwrap();
        if seen == 2 || Instant::now() > deadline {
            assert_eq!(seen, 2);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.balance(&auditor, "GC-1")["state"], "issued", "a partial payment activates nothing");
    send(
        &producer,
        &payments,
        "p2",
        json!({"payment_id": "p2", "order_id": "o1", "status": "failed", "amount": "40.00", "currency": "EUR"}),
    )
    .await;
    send(&producer, &payments, "p3", paid("p3", "o1", "40.00")).await;
    // The other order comes first, its payment after.
    send(
        &producer,
        &orders,
        "o2",
        json!({"order_id": "o2", "total": 50, "currency": "EUR",
            "lines": [{"type": "gift_certificate", "certificate_code": "GC-2", "amount": 50}]}),
    )
    .await;
    send(&producer, &payments, "p4", paid("p4", "o2", "50.00")).await;
    let gc1 = api.wait_state(&auditor, "GC-1", "active");
    assert_eq!((gc1["balance"].as_str(), gc1["available"].as_str()), (Some("100.00"), Some("100.00")));
    api.wait_state(&auditor, "GC-2", "active");

    // The CVCs arrive by SMS, once each.
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages: Vec<Value> = loop {
        let (_, _, body) = http(&sms_addr, "GET", "/messages", &[], "");
        let messages: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        if messages.len() >= 2 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages.len(), 2, "{messages:?}");
    let cvc_of = |code: &str| -> String {
        let m = messages.iter().find(|m| m["text"].as_str().unwrap().contains(&format!("{code}:"))).unwrap();
        m["text"].as_str().unwrap().rsplit(' ').next().unwrap().to_owned()
    };
    let (cvc1, cvc2) = (cvc_of("GC-1"), cvc_of("GC-2"));
    assert_eq!(messages.iter().find(|m| m["text"].as_str().unwrap().contains("GC-1")).unwrap()["to"], "+79990001122");

    // Spending GC-1 over HTTP: a wrong CVC, an authorization, a partial capture, the capture voided.
    let wrong = format!("{:03}", (cvc1.parse::<u32>().unwrap() + 1) % 1000);
    let (status, body) = api.post(
        &store,
        "/v1/certificates/GC-1/authorize",
        json!({"operation_id": "a0", "amount": "30.00", "cvc": wrong}),
    );
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_cvc")));
    let (status, body) = api.post(
        &store,
        "/v1/certificates/GC-1/authorize",
        json!({"operation_id": "a1", "amount": "30.00", "cvc": cvc1}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        api.post(&store, "/v1/certificates/GC-1/capture", json!({"operation_id": "a1", "amount": "20.00"}));
    assert_eq!(status, 200, "{body}");
    let balance = api.balance(&auditor, "GC-1");
    assert_eq!((balance["state"].as_str(), balance["balance"].as_str()), (Some("partially_redeemed"), Some("80.00")));
    let (status, body) = api.post(&store, "/v1/certificates/GC-1/void", json!({"operation_id": "a1"}));
    assert_eq!(status, 200, "{body}");
    let balance = api.balance(&auditor, "GC-1");
    assert_eq!((balance["state"].as_str(), balance["balance"].as_str()), (Some("active"), Some("100.00")));

    // Two channels race for GC-2's 50.00: exactly one hold of 40.00 wins.
    let race = [(&store, "online-1"), (&pos, "pos-1")].map(|(key, op)| {
        let (addr, key, cvc, op) = (api.addr.clone(), key.clone(), cvc2.clone(), op.to_owned());
        std::thread::spawn(move || {
            Api { addr }.post(
                &key,
                "/v1/certificates/GC-2/authorize",
                json!({"operation_id": op, "amount": "40.00", "cvc": cvc}),
            )
        })
    });
    let mut outcomes: Vec<(u16, Value)> = race.into_iter().map(|t| t.join().unwrap()).collect();
    outcomes.sort_by_key(|(status, _)| *status);
    assert_eq!(outcomes[0].0, 201, "{outcomes:?}");
    assert_eq!((outcomes[1].0, outcomes[1].1["code"].as_str()), (422, Some("insufficient_funds")), "{outcomes:?}");
    // Expiry releases the open hold and writes off the balance.
    let expired = api.wait_state(&auditor, "GC-2", "expired");
    assert_eq!((expired["balance"].as_str(), expired["available"].as_str()), (Some("0.00"), Some("0.00")));
    let (status, body) = api.post(
        &store,
        "/v1/certificates/GC-2/authorize",
        json!({"operation_id": "late", "amount": "1.00", "cvc": cvc2}),
    );
    assert_eq!((status, body["code"].as_str()), (409, Some("certificate_expired")));

    // The published topics: every certificate event on each, in order per certificate, each
    // message following its schema.
    let conn = &mut db.connect().await;
    let certificate_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type LIKE 'Certificate%'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let n = certificate_events as usize;
    let states = read_topic(&brokers, &state_topic, n).await;
    let transactions = read_topic(&brokers, &transaction_topic, n).await;
    let bi = read_topic(&brokers, &bi_topic, n).await;
    assert_eq!((states.len(), transactions.len(), bi.len()), (n, n, n));
    for (name, messages) in
        [("GiftCertificateState", &states), ("GiftCertificateTransaction", &transactions), ("GiftCertificateBI", &bi)]
    {
        for (message, _) in messages {
            streams::schemas::check_domain(name, message).unwrap_or_else(|e| panic!("{name}: {e:?} in {message}"));
        }
    }
    let last_gc1 = states.iter().rev().find(|(m, _)| m["code"] == "GC-1").unwrap();
    assert_eq!((last_gc1.0["state"].as_str(), last_gc1.0["balance"].as_str()), (Some("active"), Some("100.00")));
    let gc2_states: Vec<&str> =
        states.iter().filter(|(m, _)| m["code"] == "GC-2").map(|(m, _)| m["state"].as_str().unwrap()).collect();
    assert_eq!(gc2_states.first(), Some(&"issued"));
    assert_eq!(gc2_states.last(), Some(&"expired"));
    let activation = transactions.iter().find(|(m, _)| m["code"] == "GC-1" && m["action"] == "activated").unwrap();
    assert_eq!(activation.0["source"], "topic");
    assert_eq!(activation.0["source_topic"].as_str(), Some(payments.as_str()));
    assert_eq!(activation.0["amount"], "100.00");
    let capture = transactions.iter().find(|(m, _)| m["code"] == "GC-1" && m["action"] == "captured").unwrap();
    assert_eq!((capture.0["source"].as_str(), capture.0["channel"].as_str()), (Some("http"), Some("onlinestore")));
    assert_eq!(
        (capture.0["balance_before"].as_str(), capture.0["balance_after"].as_str()),
        (Some("100.00"), Some("80.00"))
    );
    let linked = bi.iter().rev().find(|(m, _)| m["code"] == "GC-1").unwrap();
    assert_eq!(
        (
            linked.0["order_id"].as_str(),
            linked.0["payment_id"].as_str(),
            linked.0["client_id"].as_str(),
            linked.0["campaign"].as_str()
        ),
        (Some("o1"), Some("p3"), Some("client-7"), Some("spring"))
    );
    let issued = bi.iter().find(|(m, _)| m["code"] == "GC-1").unwrap();
    assert_eq!(
        (issued.0["state"].as_str(), issued.0["order_id"].as_str()),
        (Some("issued"), None),
        "no link before the sale"
    );

    // GraphQL: the certificate with its operations and audit trail, and the list by state.
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events").fetch_one(&mut *conn).await.unwrap();
    let data = api.graphql(
        &auditor,
        &format!(
            "{{ certificate(code: \"GC-1\", minPosition: {head}) {{ state balance clientId orderId \
             operations {{ edges {{ node {{ operationId kind status amount captured }} }} }} \
             audit(first: 50) {{ edges {{ node {{ action source sourceTopic channel balanceBefore balanceAfter }} }} }} }} \
             certificates(state: expired) {{ edges {{ node {{ code }} }} }} }}"
        ),
    );
    let certificate = &data["certificate"];
    assert_eq!((certificate["state"].as_str(), certificate["balance"].as_str()), (Some("active"), Some("100.00")));
    assert_eq!(certificate["clientId"], "client-7");
    let ops = &certificate["operations"]["edges"];
    assert_eq!(ops[0]["node"]["operationId"], "a1");
    assert_eq!(
        (ops[0]["node"]["status"].as_str(), ops[0]["node"]["captured"].as_str()),
        (Some("capture_voided"), Some("20.00"))
    );
    let actions: Vec<&str> = certificate["audit"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["issued", "activated", "cvc_refused", "authorized", "captured", "capture_voided"]);
    assert_eq!(data["certificates"]["edges"], json!([{"node": {"code": "GC-2"}}]));

    // The audit trail as CSV, by time.
    let now = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let from = started.format(&time::format_description::well_known::Rfc3339).unwrap();
    let (status, head_lines, csv) =
        api.get(&auditor, &format!("/v1/certificates/audit?from={from}&to={now}"), "text/csv");
    assert_eq!(status, 200, "{csv}");
    assert!(head_lines.to_ascii_lowercase().contains("content-type: text/csv"), "{head_lines}");
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("position,code,action,operation_id,amount,channel,initiator"), "{}", rows[0]);
    assert_eq!(rows.len() - 1, n, "one row per certificate event");
    assert!(rows.iter().any(|r| r.contains(",GC-1,captured,a1,20.00,onlinestore,")), "{csv}");
    let (status, _, empty) = api.get(&auditor, &format!("/v1/certificates/audit?to={from}"), "text/csv");
    assert_eq!((status, empty.lines().count()), (200, 1), "nothing before the start: {empty}");

    // No CVC in clear anywhere: not in a log line, an event, or a published message.
    assert!(Command::new("kill").args(["-TERM", &up.0.id().to_string()]).status().unwrap().success());
    assert!(up.0.wait().unwrap().success());
    logged.extend(log_rx.try_iter());
    let logged = logged.join("\n");
    assert!(logged.contains("consuming"), "the log was captured");
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM events").fetch_all(&mut *conn).await.unwrap();
    let published: Vec<String> =
        [&states, &transactions, &bi].iter().flat_map(|m| m.iter().map(|(v, _)| v.to_string())).collect();
    for cvc in [&cvc1, &cvc2] {
        for needle in [format!("CVC {cvc}"), format!("\"cvc\":\"{cvc}\""), format!("cvc={cvc}")] {
            assert!(!logged.contains(&needle), "{needle} logged");
            assert!(!payloads.iter().any(|p| p.contains(&needle)), "{needle} in an event");
            assert!(!published.iter().any(|p| p.contains(&needle)), "{needle} published");
        }
    }
    let verified = ledger(&db, &["verify"]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    drop(sms);
    db.drop_database().await;
}
