//! P2P stores' callbacks: real orders written through the writer, the fanout keeping each
//! store's endpoint from the store's events, and the deliverer signing every order's status
//! change with the store's secret, to the order's callback URL or the store's, verified by a
//! receiver on loopback that holds the secret in clear (as the store would).

use ledger_core::orders::command::{CreateOrder, Sealed, UpsertRequisite, UpsertStore, UpsertTrader};
use ledger_core::orders::{self, OrderKind, Terms};
use ledger_core::webhook::owned_endpoint_id;
use ledger_core::{AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount};
use ledger_core::{OrderId, TransferId};
use rust_decimal::Decimal;

use super::*;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn code(s: &str) -> CurrencyCode {
    CurrencyCode::parse(s).unwrap()
}

/// The owner of a store's endpoint, and its id.
fn owner(store: &str) -> (String, Uuid) {
    let owner = orders::store_owner(store);
    let id = owned_endpoint_id(&owner);
    (owner, id)
}

impl Engine {
    /// Seals a store's callback secret as the HTTP edge does: for its owned endpoint's id.
    fn seal_for(&self, store: &str, secret: &WebhookSecret) -> Sealed {
        let context = format!("webhook-endpoint:{}", owner(store).1);
        let sealed = secrets::seal(self.keys.as_ref(), &context, secret.expose().as_bytes()).unwrap();
        Sealed { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext }
    }

    async fn order_command(&self, command: orders::Command) -> i64 {
        self.ledger.submit(command, EventMeta::default()).await.unwrap().unwrap().position
    }

    /// Creates or updates a store; gives the position of its event.
    async fn upsert_store(&self, id: &str, url: Option<&str>, secret: &WebhookSecret) -> i64 {
        let store = UpsertStore {
            id: id.into(),
            name: format!("Store {id}"),
            fee: dec("0.02"),
            settlement_currency: code("USDT"),
            callback_url: url.map(str::to_owned),
            secret: self.seal_for(id, secret),
        };
        self.order_command(orders::Command::UpsertStore(Box::new(store))).await
    }

    /// Trader `t1` with one card taking 100 to 10,000 RUB and 1,000 USDT on its deposit.
    async fn trader(&self) {
        let trader = UpsertTrader {
            id: "t1".into(),
            fee: dec("0.01"),
            priority: 1,
            traffic_enabled: true,
            team_lead: None,
            currencies: vec![code("USDT")],
        };
        self.order_command(orders::Command::UpsertTrader(Box::new(trader))).await;
        let requisite = UpsertRequisite {
            trader: "t1".into(),
            id: "r1".into(),
            method: "card".into(),
            bank: "Bank".into(),
            currency: code("RUB"),
            min_amount: dec("100"),
            max_amount: dec("10000"),
            daily_limit: dec("1000000"),
            enabled: true,
            details: Sealed { key_id: "k".into(), nonce: "n".into(), ciphertext: "c".into() },
            masked: "•••• 4242".into(),
        };
        self.order_command(orders::Command::UpsertRequisite(Box::new(requisite))).await;
        let bank = AccountId(Uuid::new_v4());
        let open = OpenAccount {
            id: bank,
            code: "bank:usdt".into(),
            currency: code("USDT"),
            kind: AccountKind::Asset,
            limit: BalanceLimit::None,
            metadata: Value::Null,
        };
        let ledger = |c: ledger_core::ledger::Command| self.ledger.submit(c, EventMeta::default());
        ledger(ledger_core::ledger::Command::OpenAccount(open)).await.unwrap().unwrap();
        let deposit = orders::deposit_account("t1", &code("USDT")).0;
        let fund = CreateTransfer::simple(
            TransferId(Uuid::new_v4()),
            AccountRef::Id(bank),
            AccountRef::Id(deposit),
            dec("1000"),
        );
        ledger(ledger_core::ledger::Command::CreateTransfer(fund)).await.unwrap().unwrap();
    }

    /// A pay-in of 1000.00 RUB at 92.5 RUB per USDT; gives its id and the position of its creation.
    async fn order(&self, store: &str, external: &str, url: Option<&str>) -> (OrderId, i64) {
        let id = OrderId(Uuid::new_v4());
        let order = CreateOrder {
            id,
            store: store.into(),
            kind: OrderKind::PayIn,
            external_order_id: external.into(),
            amount: dec("1000.00"),
            currency: code("RUB"),
            method: Some("card".into()),
            trader: None,
            callback_url: url.map(str::to_owned),
            terms: Terms {
                rate: Some(dec("92.5")),
                review_over: None,
                deny_over: None,
                timeout_seconds: 900,
                dispute_window_hours: 72,
            },
        };
        (id, self.order_command(orders::Command::Create(Box::new(order))).await)
    }

    /// Waits until the fanout has looked through the log up to `position`.
    async fn fanned_out(&self, position: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let at: Option<i64> = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = 'webhooks'")
                .fetch_optional(self.store.pool())
                .await
                .unwrap();
            if at.is_some_and(|at| at >= position) {
                return;
            }
            assert!(Instant::now() < deadline, "the fanout is at {at:?}, not yet {position}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn messages_about(&self, order: OrderId) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM webhook_messages WHERE subject = $1")
            .bind(order.to_string())
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

fn body_of(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The requests one message got, in order.
fn attempts_of(got: &[Received], id: Uuid) -> Vec<&Received> {
    got.iter().filter(|r| id_of(r) == id).collect()
}

fn verifies(secret: &WebhookSecret, r: &Received) -> bool {
    let ts: i64 = header(r, "webhook-timestamp").parse().unwrap();
    Verifier::new(secret.clone()).verify(&r.headers, &r.body, ts).is_ok()
}

#[tokio::test]
async fn an_orders_status_changes_are_signed_with_its_stores_secret_and_retried_until_delivered() {
    let e = engine(&[1, 1], Duration::from_secs(10)).await;
    // The store's receiver fails every message's first attempt; the order's own answers at once.
    let shop = Receiver::start(Arc::new(|n| {
        (if n == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }, Duration::ZERO)
    }))
    .await;
    let own = Receiver::start(ok()).await;
    let secret = WebhookSecret::generate().unwrap();
    e.upsert_store("s1", Some(&shop.url), &secret).await;
    e.trader().await;
    let (first, _) = e.order("s1", "ext-1", None).await;
    e.order_command(orders::Command::Complete { id: first }).await;
    let (second, _) = e.order("s1", "ext-2", Some(&own.url)).await;

    // Two messages to the store's URL, each failed once and then delivered; one to the order's.
    let got = shop.wait(Duration::from_secs(15), |g| g.len() >= 4).await;
    let to_own = own.wait(Duration::from_secs(10), |g| !g.is_empty()).await;
    let mut ids: Vec<Uuid> = Vec::new();
    for r in &got {
        if !ids.contains(&id_of(r)) {
            ids.push(id_of(r));
        }
    }
    assert_eq!(ids.len(), 2, "{:?}", bodies(&got));
    // In log order.
    let mut positions = Vec::new();
    for id in &ids {
        positions.push((e.store.message(*id).await.unwrap().unwrap().position, *id));
    }
    positions.sort();
    let ids: Vec<Uuid> = positions.into_iter().map(|(_, id)| id).collect();
    let wrong = WebhookSecret::generate().unwrap();
    for r in got.iter().chain(&to_own) {
        assert!(verifies(&secret, r), "signed with the store's secret");
        assert!(!verifies(&wrong, r));
        assert_eq!(header(r, "webhook-signature").split(' ').count(), 1, "no previous secret");
    }
    let statuses: Vec<Value> =
        ids.iter().map(|id| body_of(attempts_of(&got, *id)[0])["data"]["status"].clone()).collect();
    assert_eq!(statuses, [json!("pending"), json!("completed")]);
    for id in &ids {
        let tries = attempts_of(&got, *id);
        assert_eq!(tries.len(), 2);
        assert_eq!(tries[0].body, tries[1].body, "the same body on every attempt");
        assert!(tries[1].at - tries[0].at >= Duration::from_millis(900), "the schedule's delay is kept");
        e.wait_status(*id, "delivered", Duration::from_secs(5)).await;
    }
    // The body: the message type, and exactly the fields.
    let body = body_of(attempts_of(&got, ids[0])[0]);
    assert_eq!(body["type"], "orders.status_changed");
    let data = body["data"].as_object().unwrap();
    let timestamp = data["timestamp"].as_str().unwrap();
    let at = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((time::OffsetDateTime::now_utc() - at).abs() < time::Duration::minutes(1), "{timestamp}");
    assert_eq!(
        Value::Object(data.clone()),
        json!({
            "order_id": first.to_string(),
            "external_order_id": "ext-1",
            "status": "pending",
            "amount": "1000.00",
            "currency": "RUB",
            "settlement_amount": "10.810810",
            "settlement_currency": "USDT",
            "rate": "92.5",
            "timestamp": timestamp,
        })
    );
    let own_body = body_of(&to_own[0]);
    assert_eq!(
        (own_body["data"]["order_id"].as_str(), own_body["data"]["status"].as_str()),
        (Some(&*second.to_string()), Some("pending"))
    );
    assert_eq!(shop.got().iter().filter(|r| body_of(r)["data"]["order_id"] == json!(second.to_string())).count(), 0);

    // The delivery log of each order, through its store's endpoint.
    let (store_owner, endpoint) = owner("s1");
    let log = e.store.deliveries(&store_owner, &first.to_string(), None, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log.iter().map(|d| d.message.id).collect::<Vec<_>>(), ids);
    for d in &log {
        assert_eq!((d.message.status.as_str(), d.message.attempts), ("delivered", 2));
        assert_eq!(d.message.endpoint_id, endpoint);
        assert_eq!(d.message.event_type, "orders.status_changed");
        assert_eq!(d.url.as_deref(), Some(shop.url.as_str()));
        assert_eq!(
            d.attempts.iter().map(|a| (a.attempt, a.status_code)).collect::<Vec<_>>(),
            [(1, Some(503)), (2, Some(200))]
        );
        assert_eq!(d.last_status_code(), Some(200));
        assert!(d.attempts.iter().all(|a| a.event_type == "orders.status_changed" && a.message_id == d.message.id));
    }
    let rest = e.store.deliveries(&store_owner, &first.to_string(), Some(log[0].message.position), 10).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.message.id).collect::<Vec<_>>(), [ids[1]]);
    let limited = e.store.deliveries(&store_owner, &first.to_string(), None, 1).await.unwrap();
    assert_eq!(limited.len(), 1);
    let own_log = e.store.deliveries(&store_owner, &second.to_string(), None, 10).await.unwrap();
    assert_eq!(own_log.len(), 1);
    assert_eq!(own_log[0].url.as_deref(), Some(own.url.as_str()));
    e.wait_status(own_log[0].message.id, "delivered", Duration::from_secs(5)).await;
    // Only through the order's own store's endpoint.
    assert!(e.store.deliveries(&orders::store_owner("s9"), &first.to_string(), None, 10).await.unwrap().is_empty());

    // The operators' endpoint API neither shows nor touches the store's endpoint...
    assert_eq!(e.store.list().await.unwrap(), []);
    assert_eq!(e.store.get(endpoint).await.unwrap(), None);
    assert!(e.store.rotate(endpoint).await.unwrap().is_none());
    assert!(!e.store.delete(endpoint).await.unwrap());
    assert_eq!(e.store.attempts(endpoint, None, 10).await.unwrap(), []);
    // ... but a callback may be sent again like any message.
    assert_eq!(e.store.retry(ids[0]).await.unwrap(), Some(true));
    shop.wait(Duration::from_secs(5), |g| attempts_of(g, ids[0]).len() == 3).await;
    e.wait_status(ids[0], "delivered", Duration::from_secs(5)).await;

    // The store's secret is sealed everywhere it is stored, and in no event or message in clear.
    let stored: Value = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE owner = $1")
        .bind(&store_owner)
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert!(stored.get("ciphertext").is_some() && !stored.to_string().contains("whsec_"), "{stored}");
    let clear = secret.expose();
    let leaks: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events WHERE strpos(payload::text, $1) > 0) \
              + (SELECT count(*) FROM webhook_messages WHERE strpos(body, $1) > 0) \
              + (SELECT count(*) FROM entities WHERE strpos(state::text, $1) > 0)",
    )
    .bind(&clear)
    .fetch_one(e.store.pool())
    .await
    .unwrap();
    assert_eq!(leaks, 0);
    e.stop().await;
}

#[tokio::test]
async fn a_store_without_a_url_calls_back_only_orders_with_one_and_a_rotation_signs_with_both_secrets() {
    let e = engine(&[1], Duration::from_secs(10)).await;
    let rx = Receiver::start(ok()).await;
    let old = WebhookSecret::generate().unwrap();
    e.upsert_store("s2", None, &old).await;
    e.trader().await;
    // Neither the order nor its store has a URL: no message at all.
    let (silent, at) = e.order("s2", "ext-a", None).await;
    e.fanned_out(at).await;
    assert_eq!(e.messages_about(silent).await, 0);
    let (before, _) = e.order("s2", "ext-b", Some(&rx.url)).await;
    let got = rx.wait(Duration::from_secs(10), |g| !g.is_empty()).await;
    assert_eq!(body_of(&got[0])["data"]["order_id"], json!(before.to_string()));
    assert!(verifies(&old, &got[0]));
    assert_eq!(header(&got[0], "webhook-signature").split(' ').count(), 1);

    // Rotation: the new secret signs, and the old one beside it for a day from the rotation.
    let new = WebhookSecret::generate().unwrap();
    let sealed = e.seal_for("s2", &new);
    let rotated = e.order_command(orders::Command::RotateStoreSecret(Box::new(("s2".into(), sealed)))).await;
    e.fanned_out(rotated).await;
    let until: time::OffsetDateTime =
        sqlx::query_scalar("SELECT previous_until FROM webhook_endpoints WHERE owner = $1")
            .bind(orders::store_owner("s2"))
            .fetch_one(e.store.pool())
            .await
            .unwrap();
    let overlap = until - time::OffsetDateTime::now_utc();
    assert!(overlap > time::Duration::hours(23) && overlap <= time::Duration::hours(24), "{overlap}");
    // The deliverer reads endpoints' secrets every second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (after, _) = e.order("s2", "ext-c", Some(&rx.url)).await;
    let got = rx.wait(Duration::from_secs(10), |g| g.len() >= 2).await;
    let r = &got[1];
    assert_eq!(body_of(r)["data"]["order_id"], json!(after.to_string()));
    assert!(verifies(&new, r) && verifies(&old, r), "both secrets sign during the overlap");
    assert_eq!(header(r, "webhook-signature").split(' ').count(), 2);

    // The store gets a URL: an order without one of its own is now called back there.
    let shop = Receiver::start(ok()).await;
    let updated = e.upsert_store("s2", Some(&shop.url), &old).await;
    e.fanned_out(updated).await;
    let (later, _) = e.order("s2", "ext-d", None).await;
    let got = shop.wait(Duration::from_secs(10), |g| !g.is_empty()).await;
    assert_eq!(body_of(&got[0])["data"]["order_id"], json!(later.to_string()));
    assert!(verifies(&new, &got[0]));
    // Nothing more for the silent order, even now that its store has a URL.
    assert_eq!(e.messages_about(silent).await, 0);
    assert_eq!(rx.got().len(), 2);
    let log = e.store.deliveries(&orders::store_owner("s2"), &later.to_string(), None, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].url.as_deref(), Some(shop.url.as_str()));
    e.stop().await;
}
