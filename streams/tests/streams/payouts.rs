//! The payouts' Kafka parts against a real writer and Postgres: the ERP messages the log's
//! `PayoutSent` events become (checked against their schema), and the status handler with
//! repeats, conflicts, unknown payouts and malformed messages.

use ledger_core::payouts::state::PayoutStatus;
use ledger_core::payouts::{Command, PAYOUT_KIND};
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, CreateTransfer, CurrencyCode, OpenAccount, PayoutId,
    PayoutRequestId, TransferId,
};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use streams::consumer::{HandleError, Handler, Inbound};
use streams::payouts::{ErpMessage, PayoutTopics, Statuses};
use test_support::fresh_database;
use uuid::Uuid;

fn message(offset: i64, payload: Value) -> Inbound {
    Inbound {
        topic: streams::payouts::STATUS_TOPICS[0].to_owned(),
        partition: 0,
        offset,
        key: None,
        payload: payload.to_string().into_bytes(),
        headers: Vec::new(),
    }
}

async fn open(ledger: &LedgerHandle, n: u128, code: &str, kind: AccountKind, metadata: Value) -> AccountId {
    let id = AccountId(Uuid::from_u128(n));
    let open = OpenAccount {
        id,
        code: code.into(),
        currency: CurrencyCode::parse("EUR").unwrap(),
        kind,
        limit: BalanceLimit::None,
        metadata,
    };
    ledger.submit(ledger_core::ledger::Command::OpenAccount(open), EventMeta::default()).await.unwrap().unwrap();
    id
}

fn status(ledger: &LedgerHandle, payout: PayoutId) -> PayoutStatus {
    let (row, _) = ledger.view().entity(payout.0).unwrap();
    assert_eq!(row.kind, PAYOUT_KIND);
    row.parse::<ledger_core::payouts::state::Payout>().unwrap().status
}

#[tokio::test]
async fn sent_payouts_become_erp_messages_and_statuses_come_back() {
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let bank = open(&ledger, 1, "bank", AccountKind::Asset, Value::Null).await;
    let mut payouts = Vec::new();
    for (n, client) in [(10, "c1"), (11, "c2")] {
        let meta = json!({"client_id": client, "account_type": "payout"});
        let account = open(&ledger, n, &format!("{client}:payout"), AccountKind::Liability, meta).await;
        let fund = CreateTransfer::simple(
            TransferId(Uuid::new_v4()),
            AccountRef::Id(bank),
            AccountRef::Id(account),
            Decimal::new(2500, 2),
        );
        ledger.submit(ledger_core::ledger::Command::CreateTransfer(fund), EventMeta::default()).await.unwrap().unwrap();
        let request = PayoutRequestId(Uuid::from_u128(100 + n));
        ledger
            .submit(Command::Request { id: request, client_id: client.into() }, EventMeta::default())
            .await
            .unwrap()
            .unwrap();
        payouts.push(PayoutId::of(request, account));
    }
    ledger.submit(Command::PlanNew { limit: 10 }, EventMeta::default()).await.unwrap().unwrap();
    ledger.submit(Command::SendNew { limit: 10 }, EventMeta::default()).await.unwrap().unwrap();

    // The ERP messages come from the log: one per payout sent, keyed by payout, in log order.
    let mut conn = db.connect().await;
    let page = ledger_store::log::page(&mut conn, 0, 1000).await.unwrap();
    let out = PayoutTopics::default().of_page(&page).unwrap();
    assert_eq!(
        out.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
        payouts.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    );
    for m in &out {
        assert_eq!(m.topic, "billing-payout.oebs.new-payout");
        let value: Value = serde_json::from_str(&m.payload).unwrap();
        streams::schemas::check_domain("PayoutErpMessage", &value).unwrap();
        let erp: ErpMessage = serde_json::from_value(value).unwrap();
        assert_eq!((erp.amount, erp.currency.as_str()), (Decimal::new(2500, 2), "EUR"));
        assert_eq!(erp.cpf_id, PayoutId(erp.payout_id).cash_payment_fact());
        assert!(erp.sent_at.ends_with('Z'), "{}", erp.sent_at);
    }

    let statuses = Statuses::new(ledger.clone());
    let paid = json!({"payout_id": payouts[0].0, "status": "paid"});
    statuses.handle(&message(1, paid.clone())).await.unwrap();
    assert_eq!(status(&ledger, payouts[0]), PayoutStatus::Paid);
    // Twice, from the other topic: a no-op.
    statuses.handle(&message(2, paid)).await.unwrap();
    let rejected = json!({"payout_id": payouts[1].0, "status": "rejected", "reason": "closed at the bank"});
    statuses.handle(&message(3, rejected.clone())).await.unwrap();
    statuses.handle(&message(4, rejected)).await.unwrap();
    assert_eq!(status(&ledger, payouts[1]), PayoutStatus::Rejected);
    let back = ledger.view().account(&AccountRef::Code("c2:payout".into())).unwrap();
    assert_eq!(back.account.balance(), Decimal::new(2500, 2), "the rejected amount is back");
    // Dead letters: a status the payout cannot take, an unknown payout, malformed messages.
    let reject = |r: Result<(), HandleError>| match r {
        Err(HandleError::Reject { code, detail }) => (code, detail),
        other => panic!("not dead-lettered: {other:?}"),
    };
    let late = reject(statuses.handle(&message(5, json!({"payout_id": payouts[1].0, "status": "paid"}))).await);
    assert_eq!(late.0, "invalid_transition");
    let unknown = reject(statuses.handle(&message(6, json!({"payout_id": Uuid::nil(), "status": "paid"}))).await);
    assert_eq!(unknown.0, "payout_not_found");
    assert!(unknown.1.contains(&Uuid::nil().to_string()));
    for bad in [
        json!({"payout_id": payouts[0].0}),
        json!("paid"),
        json!({"payout_id": payouts[0].0, "status": "paid", "x": 1}),
    ] {
        assert_eq!(reject(statuses.handle(&message(7, bad)).await).0, "invalid_body");
    }
    let bad_reason = json!({"payout_id": payouts[1].0, "status": "rejected", "reason": ""});
    assert_eq!(reject(statuses.handle(&message(8, bad_reason)).await).0, "invalid_reason");
    assert_eq!(status(&ledger, payouts[1]), PayoutStatus::Rejected);
    // Each status applied names its source: the topic, partition and offset.
    let sources: Vec<String> = sqlx::query_scalar(
        "SELECT metadata::text FROM events WHERE event_type IN ('PayoutPaid', 'PayoutRejected') ORDER BY position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(sources.len(), 2);
    assert!(sources[0].contains("\"offset\":1") && sources[1].contains("\"offset\":3"), "{sources:?}");
    drop((statuses, ledger));
    task.await.unwrap();
    drop(conn);
    db.drop_database().await;
}
