//! given(commands).when(command).then(outcome) tests of `decide`, one table per command.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::DomainEvent;
use crate::ledger::account::{AccountKind, BalanceLimit};
use crate::ledger::command::PostingRequest;
use crate::money::Currencies;

const T0: Timestamp = Timestamp(1_700_000_000_000_000);

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
fn acc(n: u128) -> AccountId {
    AccountId(id(n))
}
fn tr(n: u128) -> TransferId {
    TransferId(id(1000 + n))
}
fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Accounts 1 and 2 (EUR, 1 is a no-overdraft player wallet), 3 (USD), 4 (JPY).
fn open(n: u128, code: &str, currency: &str, kind: AccountKind, limit: BalanceLimit) -> Command {
    Command::OpenAccount(OpenAccount {
        id: acc(n),
        code: code.into(),
        currency: CurrencyCode::parse(currency).unwrap(),
        kind,
        limit,
        metadata: json!({}),
    })
}

fn world() -> Vec<Command> {
    vec![
        open(1, "player:1:main", "EUR", AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits),
        open(2, "bank:eur", "EUR", AccountKind::Asset, BalanceLimit::None),
        open(3, "bank:usd", "USD", AccountKind::Asset, BalanceLimit::None),
        open(4, "bank:jpy", "JPY", AccountKind::Asset, BalanceLimit::None),
        open(5, "fees", "EUR", AccountKind::Income, BalanceLimit::None),
    ]
}

fn transfer(n: u128, debit: u128, credit: u128, amount: &str) -> CreateTransfer {
    CreateTransfer::simple(tr(n), AccountRef::Id(acc(debit)), AccountRef::Id(acc(credit)), dec(amount))
}

fn pending(n: u128, debit: u128, credit: u128, amount: &str, timeout_seconds: u32) -> CreateTransfer {
    CreateTransfer { pending: true, timeout_seconds: Some(timeout_seconds), ..transfer(n, debit, credit, amount) }
}

fn deposit(n: u128, amount: &str) -> Command {
    Command::CreateTransfer(transfer(n, 2, 1, amount))
}

/// Runs `given` on a fresh state (each must succeed), then decides `when` at `now`.
fn given(given: &[Command], when: Command, now: Timestamp) -> (LedgerState, Result<Vec<Event>, Rejection>) {
    let mut state = LedgerState::new(Currencies::standard());
    for command in world().iter().chain(given) {
        execute(&mut state, command, T0).unwrap_or_else(|r| panic!("given {command:?} failed: {r:?}"));
    }
    let result = decide(&state, &when, now);
    (state, result)
}

fn rejects(setup: &[Command], when: Command, expect: Rejection) {
    let (_, got) = given(setup, when.clone(), T0);
    assert_eq!(got, Err(expect), "{when:?}");
}

fn event_types(result: &Result<Vec<Event>, Rejection>) -> Vec<&'static str> {
    result.as_ref().expect("accepted").iter().map(|e| e.event_type()).collect()
}

#[test]
fn create_transfer_rejections_follow_the_documented_order() {
    let t = |f: fn(&mut CreateTransfer)| {
        let mut t = transfer(1, 2, 1, "10.00");
        f(&mut t);
        Command::CreateTransfer(t)
    };
    rejects(&[], t(|t| t.id = TransferId(Uuid::nil())), Rejection::IdMustNotBeNil);
    rejects(&[], t(|t| t.postings.truncate(1)), Rejection::TooFewPostings);
    rejects(&[], t(|t| t.postings = vec![t.postings[0].clone(); 129]), Rejection::TooManyPostings);
    rejects(&[], t(|t| t.postings[0].amount = dec("0")), Rejection::AmountMustBePositive);
    rejects(&[], t(|t| t.postings[1].amount = dec("-1")), Rejection::AmountMustBePositive);
    rejects(&[], t(|t| t.timeout_seconds = Some(5)), Rejection::TimeoutReservedForPendingTransfer);
    rejects(&[], t(|t| (t.pending, t.timeout_seconds) = (true, Some(31 * 86400))), Rejection::TimeoutTooLong);
    rejects(&[], t(|t| t.external_ref = Some(String::new())), Rejection::InvalidExternalRef);
    rejects(&[], t(|t| t.external_ref = Some("a\nb".into())), Rejection::InvalidExternalRef);
    rejects(&[], t(|t| t.metadata = json!({"note": "nul \u{0000} inside"})), Rejection::InvalidMetadata);
    rejects(&[], t(|t| t.metadata = json!([1, 2])), Rejection::InvalidMetadata);
    rejects(&[], t(|t| t.metadata = json!({"big": "x".repeat(17 * 1024)})), Rejection::InvalidMetadata);
    rejects(&[], t(|t| t.postings[0].account = AccountRef::Id(acc(99))), Rejection::AccountNotFound);
    rejects(&[], t(|t| t.postings[0].account = AccountRef::Code("nobody".into())), Rejection::AccountNotFound);
    rejects(
        &[],
        t(|t| t.postings[0].account = AccountRef::Code("player:1:main".into())),
        Rejection::SameAccountOnBothSides,
    );
    rejects(&[], t(|t| t.postings[0].account = AccountRef::Id(acc(3))), Rejection::CurrencyMismatch);
    rejects(&[], t(|t| t.postings[0].amount = dec("10.001")), Rejection::AmountScale);
    rejects(&[], t(|t| t.postings[0].amount = dec("10.01")), Rejection::Unbalanced);
    rejects(&[], t(|t| t.postings[0].amount = dec("1000000000000000000000001")), Rejection::Overflow);
    rejects(&[Command::FreezeAccount { id: acc(2), reason: None }], t(|_| ()), Rejection::AccountFrozen);
    rejects(&[Command::CloseAccount { id: acc(2), reason: None }], t(|_| ()), Rejection::AccountClosed);
    // The no-overdraft player wallet cannot pay out more than it holds.
    rejects(&[], Command::CreateTransfer(transfer(1, 1, 2, "0.01")), Rejection::InsufficientFunds);
    // The order matters: an unknown account wins over a bad scale on the same request.
    rejects(
        &[],
        t(|t| (t.postings[0].account, t.postings[0].amount) = (AccountRef::Id(acc(99)), dec("1.001"))),
        Rejection::AccountNotFound,
    );
}

#[test]
fn a_transfer_moves_both_sides_and_a_retry_changes_nothing() {
    let (mut state, result) = given(&[], deposit(1, "10.5"), T0);
    assert_eq!(event_types(&result), ["TransferPosted"]);
    for e in result.unwrap() {
        state.apply(&e);
    }
    assert_eq!(state.account(acc(1)).unwrap().balance(), dec("10.50"));
    assert_eq!(state.account(acc(2)).unwrap().balance(), dec("10.50"), "the bank asset grows on the debit side");
    assert_eq!(state.account(acc(1)).unwrap().available(), dec("10.50"));
    // Same id, same body (amount written differently): replays, no events.
    assert_eq!(decide(&state, &deposit(1, "10.50"), T0), Ok(vec![]));
    // Same id, other body.
    assert_eq!(decide(&state, &deposit(1, "10.51"), T0), Err(Rejection::ExistsWithDifferentFields));
}

#[test]
fn multi_leg_entries_balance_per_currency() {
    let legs = |fee: &str| {
        Command::CreateTransfer(CreateTransfer {
            postings: vec![
                PostingRequest { account: AccountRef::Id(acc(2)), side: Side::Debit, amount: dec("100") },
                PostingRequest {
                    account: AccountRef::Code("player:1:main".into()),
                    side: Side::Credit,
                    amount: dec("97"),
                },
                PostingRequest { account: AccountRef::Code("fees".into()), side: Side::Credit, amount: dec(fee) },
            ],
            ..transfer(1, 2, 1, "0")
        })
    };
    let (_, ok) = given(&[], legs("3"), T0);
    assert_eq!(event_types(&ok), ["TransferPosted"]);
    rejects(&[], legs("2.99"), Rejection::Unbalanced);
}

#[test]
fn a_hold_is_posted_partly_and_releases_the_rest() {
    let setup = [deposit(1, "100"), Command::CreateTransfer(pending(2, 1, 2, "30", 60))];
    let (mut state, _) = given(&setup, Command::ExpirePendingTransfers, T0);
    let player = |s: &LedgerState| s.account(acc(1)).unwrap().clone();
    assert_eq!((player(&state).balance(), player(&state).available()), (dec("100"), dec("70")));

    let post = Command::PostPendingTransfer { pending_id: tr(2), amount: Some(dec("12.5")) };
    execute(&mut state, &post, T0).unwrap();
    assert_eq!((player(&state).balance(), player(&state).available()), (dec("87.50"), dec("87.50")));
    assert_eq!(state.transfer(tr(2)).unwrap().status, TransferStatus::Posted);
    // A retried post replays; a different amount or a void is refused.
    assert_eq!(decide(&state, &post, T0), Ok(vec![]));
    let other = Command::PostPendingTransfer { pending_id: tr(2), amount: Some(dec("1")) };
    assert_eq!(decide(&state, &other, T0), Err(Rejection::PendingTransferAlreadyPosted));
    assert_eq!(
        decide(&state, &Command::VoidPendingTransfer { pending_id: tr(2) }, T0),
        Err(Rejection::PendingTransferAlreadyPosted)
    );
}

#[test]
fn post_pending_rejections() {
    let setup = [deposit(1, "100"), Command::CreateTransfer(pending(2, 1, 2, "30", 60))];
    let post = |amount: Option<&str>| Command::PostPendingTransfer { pending_id: tr(2), amount: amount.map(dec) };
    rejects(
        &setup,
        Command::PostPendingTransfer { pending_id: tr(9), amount: None },
        Rejection::PendingTransferNotFound,
    );
    rejects(
        &setup,
        Command::PostPendingTransfer { pending_id: tr(1), amount: None },
        Rejection::PendingTransferNotPending,
    );
    rejects(&setup, post(Some("0")), Rejection::AmountMustBePositive);
    rejects(&setup, post(Some("1.001")), Rejection::AmountScale);
    rejects(&setup, post(Some("30.01")), Rejection::PostAmountExceedsPending);
    let (_, late) = given(&setup, post(None), T0.plus_seconds(60));
    assert_eq!(late, Err(Rejection::PendingTransferExpired));
    let voided = [&setup[..], &[Command::VoidPendingTransfer { pending_id: tr(2) }]].concat();
    rejects(&voided, post(None), Rejection::PendingTransferAlreadyVoided);
    let frozen = [&setup[..], &[Command::FreezeAccount { id: acc(1), reason: None }]].concat();
    rejects(&frozen, post(None), Rejection::AccountFrozen);
}

#[test]
fn holds_count_against_available_and_expire() {
    let setup = [deposit(1, "50"), Command::CreateTransfer(pending(2, 1, 2, "40", 10))];
    // 50 held 40: another 20 would overdraw.
    rejects(&setup, Command::CreateTransfer(transfer(3, 1, 2, "20")), Rejection::InsufficientFunds);
    let (mut state, expired) = given(&setup, Command::ExpirePendingTransfers, T0.plus_seconds(10));
    assert_eq!(event_types(&expired), ["PendingTransferExpired"]);
    for e in expired.unwrap() {
        state.apply(&e);
    }
    assert_eq!(state.account(acc(1)).unwrap().available(), dec("50"));
    assert_eq!(state.next_deadline(), None);
    assert_eq!(
        decide(&state, &Command::VoidPendingTransfer { pending_id: tr(2) }, T0),
        Err(Rejection::PendingTransferExpired)
    );
}

#[test]
fn a_reversal_is_a_new_transfer_and_happens_once() {
    let setup = [deposit(1, "25")];
    let reverse =
        |n: u128| Command::ReverseTransfer { id: tr(n), transfer_id: tr(1), metadata: json!({"reason": "chargeback"}) };
    let (mut state, result) = given(&setup, reverse(2), T0);
    for e in result.unwrap() {
        state.apply(&e);
    }
    assert_eq!(state.account(acc(1)).unwrap().balance(), dec("0"));
    assert_eq!(state.transfer(tr(1)).unwrap().reversed_by, Some(tr(2)));
    assert_eq!(state.transfer(tr(1)).unwrap().status, TransferStatus::Posted, "history is not rewritten");
    assert_eq!(decide(&state, &reverse(2), T0), Ok(vec![]));
    assert_eq!(decide(&state, &reverse(3), T0), Err(Rejection::TransferAlreadyReversed));
    rejects(
        &setup,
        Command::ReverseTransfer { id: tr(2), transfer_id: tr(7), metadata: json!(null) },
        Rejection::TransferNotFound,
    );
    let held = [deposit(1, "25"), Command::CreateTransfer(pending(2, 1, 2, "5", 0))];
    rejects(
        &held,
        Command::ReverseTransfer { id: tr(3), transfer_id: tr(2), metadata: json!(null) },
        Rejection::TransferNotPosted,
    );
    // The player spent the money: reversing the deposit would overdraw the wallet.
    let spent = [deposit(1, "25"), Command::CreateTransfer(transfer(2, 1, 2, "20"))];
    rejects(&spent, reverse(3), Rejection::InsufficientFunds);
}

#[test]
fn accounts_open_once_and_close_only_when_empty() {
    rejects(
        &[],
        open(1, "player:1:main", "EUR", AccountKind::Asset, BalanceLimit::None),
        Rejection::ExistsWithDifferentFields,
    );
    rejects(
        &[],
        open(9, "player:1:main", "EUR", AccountKind::Liability, BalanceLimit::None),
        Rejection::AccountCodeExists,
    );
    rejects(&[], open(9, "bad code", "EUR", AccountKind::Asset, BalanceLimit::None), Rejection::InvalidAccountCode);
    rejects(&[], open(9, "x", "XAU", AccountKind::Asset, BalanceLimit::None), Rejection::UnknownCurrency);
    let (_, same) = given(&[], world()[0].clone(), T0);
    assert_eq!(same, Ok(vec![]));
    rejects(&[deposit(1, "1")], Command::CloseAccount { id: acc(1), reason: None }, Rejection::AccountBalanceNotZero);
    rejects(
        &[Command::CloseAccount { id: acc(5), reason: None }],
        Command::FreezeAccount { id: acc(5), reason: None },
        Rejection::AccountClosed,
    );
    rejects(&[], Command::FreezeAccount { id: acc(42), reason: None }, Rejection::AccountNotFound);
}

#[test]
fn a_linked_batch_is_all_or_nothing() {
    let mut state = LedgerState::new(Currencies::standard());
    for c in world() {
        execute(&mut state, &c, T0).unwrap();
    }
    let before = state.clone();
    let items = [transfer(1, 2, 1, "10"), transfer(2, 1, 5, "4"), transfer(3, 1, 5, "7")];
    let results = execute_batch(&mut state, &items, BatchMode::Linked, T0).unwrap();
    let codes: Vec<_> = results.iter().map(|r| r.as_ref().err().copied()).collect();
    assert_eq!(
        codes,
        [Some(Rejection::LinkedEventFailed), Some(Rejection::LinkedEventFailed), Some(Rejection::InsufficientFunds)]
    );
    assert_eq!(state, before, "a failed linked batch leaves no trace");

    let results = execute_batch(&mut state, &items, BatchMode::Independent, T0).unwrap();
    let ok: Vec<_> = results.iter().map(|r| r.is_ok()).collect();
    assert_eq!(ok, [true, true, false]);
    assert_eq!(state.account(acc(1)).unwrap().balance(), dec("6.00"));
    assert_eq!(execute_batch(&mut state, &[], BatchMode::Linked, T0), Err(Rejection::BatchSize));
}

/// The two checks the command API also runs on batch items (`check_documented`).
#[test]
fn external_refs_and_metadata_are_judged_alike_wherever_they_are_checked() {
    assert!(valid_external_ref("psp-771"));
    assert!(valid_external_ref(&"é".repeat(256)), "256 characters, whatever their bytes");
    assert!(!valid_external_ref(&"a".repeat(257)));
    assert!(!valid_external_ref(""));
    assert!(!valid_external_ref("a\u{85}b"), "a C1 control character");
    assert_eq!(check_metadata(&json!({"tags": ["ok", {"k": "v"}]})), Ok(()));
    assert_eq!(check_metadata(&serde_json::Value::Null), Ok(()));
    assert_eq!(check_metadata(&json!({"tags": ["nul \u{0000} inside"]})), Err(Rejection::InvalidMetadata));
    assert_eq!(check_metadata(&json!({"deep": [{"k": "nul \u{0000}"}]})), Err(Rejection::InvalidMetadata));
    assert_eq!(check_metadata(&json!({"key \u{0000}": 1})), Err(Rejection::InvalidMetadata));
    // A transfer with a valid external reference is accepted.
    let mut t = transfer(1, 2, 1, "10.00");
    t.external_ref = Some("psp-771".into());
    let (_, result) = given(&world(), Command::CreateTransfer(t), Timestamp(1));
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn the_working_set_lists_counts_and_evicts_what_it_holds() {
    let held = [
        deposit(1, "100.00"),
        Command::CreateTransfer(pending(2, 1, 2, "10.00", 60)),
        Command::CreateTransfer(pending(3, 1, 2, "5.00", 30)),
    ];
    let (mut state, _) = given(&held, Command::ExpirePendingTransfers, T0);
    let mut accounts: Vec<AccountId> = state.accounts().map(|a| a.id).collect();
    accounts.sort();
    assert_eq!(accounts, (1..=5).map(acc).collect::<Vec<_>>());
    let mut transfers: Vec<TransferId> = state.transfers().map(|t| t.id).collect();
    transfers.sort();
    assert_eq!(transfers, vec![tr(1), tr(2), tr(3)]);
    assert_eq!(state.transfer_count(), 3);
    assert_eq!(state.next_deadline(), Some(T0.plus_seconds(30)), "the earliest hold's timeout");

    // A settled transfer goes only when it may; pending ones always stay.
    state.evict_transfers(|t| t.id != tr(1));
    assert_eq!(state.transfer_count(), 3, "the posted transfer was not evictable");
    state.evict_transfers(|_| true);
    let mut kept: Vec<TransferId> = state.transfers().map(|t| t.id).collect();
    kept.sort();
    assert_eq!(kept, vec![tr(2), tr(3)], "holds stay for expiry");

    // Settling the earliest hold moves the next deadline to the other one.
    execute(&mut state, &Command::VoidPendingTransfer { pending_id: tr(3) }, T0).unwrap();
    assert_eq!(state.next_deadline(), Some(T0.plus_seconds(60)));
    execute(&mut state, &Command::VoidPendingTransfer { pending_id: tr(2) }, T0).unwrap();
    assert_eq!(state.next_deadline(), None);
}

#[test]
fn a_status_change_counts_as_an_event_of_the_account() {
    let (mut state, _) = given(&[], Command::ExpirePendingTransfers, T0);
    assert_eq!(state.account(acc(5)).unwrap().version, 1);
    execute(&mut state, &Command::FreezeAccount { id: acc(5), reason: None }, T0).unwrap();
    execute(&mut state, &Command::UnfreezeAccount { id: acc(5), reason: None }, T0).unwrap();
    assert_eq!(state.account(acc(5)).unwrap().version, 3);
}

#[test]
fn a_command_names_the_transfers_a_store_loads_before_deciding_it() {
    let create = Command::CreateTransfer(transfer(1, 2, 1, "1.00"));
    assert_eq!(create.transfer_ids(), vec![tr(1)]);
    assert_eq!(crate::domain::DomainCommand::transfer_ids(&create), vec![tr(1)]);
    let post = Command::PostPendingTransfer { pending_id: tr(2), amount: None };
    assert_eq!(post.transfer_ids(), vec![tr(2)]);
    assert_eq!(Command::VoidPendingTransfer { pending_id: tr(3) }.transfer_ids(), vec![tr(3)]);
    let reverse = Command::ReverseTransfer { id: tr(4), transfer_id: tr(1), metadata: json!({}) };
    assert_eq!(reverse.transfer_ids(), vec![tr(4), tr(1)]);
    assert_eq!(Command::ExpirePendingTransfers.transfer_ids(), Vec::<TransferId>::new());
}

#[test]
fn an_event_touches_the_accounts_it_posts_to_and_a_reversal_the_transfer_it_reverses() {
    use crate::domain::{DomainState, Subject, Touched};
    let (mut state, _) = given(&[deposit(1, "100.00")], Command::ExpirePendingTransfers, T0);
    let reverse = Command::ReverseTransfer { id: tr(2), transfer_id: tr(1), metadata: json!({}) };
    let events = execute(&mut state, &reverse, T0).unwrap();
    let mut touched = Vec::new();
    DomainState::touched(&state, &events[0], &mut touched);
    let subjects: Vec<Subject> = touched.iter().map(|t: &Touched| t.subject).collect();
    let mut expected: Vec<Subject> =
        state.transfer(tr(2)).unwrap().postings.iter().map(|p| Subject::Account(p.account)).collect();
    expected.push(Subject::Transfer(tr(1)));
    assert_eq!(subjects, expected);
    assert_eq!(subjects.len(), 3, "both accounts, then the reversed transfer");
    assert_eq!(touched.iter().map(|t| t.moves).collect::<Vec<_>>(), vec![true, true, false]);
}

/// Each limit admits its own value and refuses the next one.
#[test]
fn limits_admit_their_own_value() {
    let mut state = LedgerState::new(Currencies::standard());
    for c in world() {
        execute(&mut state, &c, T0).unwrap();
    }
    let batch: Vec<CreateTransfer> = (0..MAX_BATCH as u128).map(|n| transfer(10_000 + n, 2, 5, "0.01")).collect();
    assert!(execute_batch(&mut state.clone(), &batch, BatchMode::Independent, T0).is_ok(), "a batch of the maximum");
    let mut over = batch.clone();
    over.push(transfer(9_999, 2, 5, "0.01"));
    assert_eq!(execute_batch(&mut state, &over, BatchMode::Independent, T0), Err(Rejection::BatchSize));

    // The most postings one entry may hold: 127 debits and one credit.
    let leg = |account: u128, side: Side, amount: &str| PostingRequest {
        account: AccountRef::Id(acc(account)),
        side,
        amount: dec(amount),
    };
    let mut wide = transfer(1, 2, 1, "1");
    wide.postings = (0..MAX_POSTINGS - 1).map(|_| leg(2, Side::Debit, "1")).collect();
    wide.postings.push(leg(1, Side::Credit, &(MAX_POSTINGS - 1).to_string()));
    let (_, accepted) = given(&[], Command::CreateTransfer(wide.clone()), T0);
    assert_eq!(event_types(&accepted), ["TransferPosted"]);
    wide.postings.push(leg(2, Side::Debit, "1"));
    rejects(&[], Command::CreateTransfer(wide), Rejection::TooManyPostings);

    // The longest hold.
    let (_, held) = given(&[deposit(1, "10")], Command::CreateTransfer(pending(2, 1, 2, "1", MAX_TIMEOUT_SECONDS)), T0);
    assert_eq!(event_types(&held), ["PendingTransferCreated"]);
    let too_long = Command::CreateTransfer(pending(2, 1, 2, "1", MAX_TIMEOUT_SECONDS + 1));
    rejects(&[deposit(1, "10")], too_long, Rejection::TimeoutTooLong);

    // Metadata up to 16 KiB, counted as serialized JSON.
    let sized = |bytes: usize| json!({ "k": "x".repeat(bytes - r#"{"k":""}"#.len()) });
    assert_eq!(sized(16_384).to_string().len(), 16_384);
    assert_eq!(check_metadata(&sized(16_384)), Ok(()));
    assert_eq!(check_metadata(&sized(16_385)), Err(Rejection::InvalidMetadata));

    // A reason by the shared rule: up to its length in characters, never blank, never with a
    // control character.
    let reason = |r: String| Command::FreezeAccount { id: acc(5), reason: Some(r) };
    let (_, frozen) = given(&[], reason("é".repeat(crate::text::REASON_MAX_CHARS)), T0);
    assert_eq!(event_types(&frozen), ["AccountFrozen"]);
    rejects(&[], reason("r".repeat(crate::text::REASON_MAX_CHARS + 1)), Rejection::InvalidReason);
    rejects(&[], reason("  ".into()), Rejection::InvalidReason);
    rejects(&[], reason("a\0b".into()), Rejection::InvalidReason);
    rejects(&[], reason("a\u{1b}b".into()), Rejection::InvalidReason);
}

#[test]
fn a_zero_timeout_is_no_timeout_and_its_retry_replays() {
    let mut t = transfer(1, 2, 1, "5");
    t.timeout_seconds = Some(0);
    let (_, created) = given(&[], Command::CreateTransfer(t.clone()), T0);
    assert_eq!(event_types(&created), ["TransferPosted"], "not refused as a timeout on a posted transfer");
    let (_, retried) = given(&[Command::CreateTransfer(t.clone())], Command::CreateTransfer(t), T0);
    assert_eq!(retried, Ok(vec![]));
}

#[test]
fn an_account_opened_again_with_another_limit_is_another_account() {
    let again = open(1, "player:1:main", "EUR", AccountKind::Liability, BalanceLimit::None);
    rejects(&[], again, Rejection::ExistsWithDifferentFields);
}

#[test]
fn a_reversal_names_two_ids_and_neither_may_be_nil() {
    let nil = TransferId(Uuid::nil());
    for (id, transfer_id) in [(nil, tr(1)), (tr(2), nil)] {
        let reverse = Command::ReverseTransfer { id, transfer_id, metadata: json!({}) };
        rejects(&[deposit(1, "10")], reverse, Rejection::IdMustNotBeNil);
    }
}

#[test]
fn a_partial_post_of_nothing_is_refused_as_such_whatever_the_hold() {
    let mut three_legs = pending(2, 1, 2, "1", 60);
    three_legs.postings = vec![
        PostingRequest { account: AccountRef::Id(acc(1)), side: Side::Debit, amount: dec("3") },
        PostingRequest { account: AccountRef::Id(acc(2)), side: Side::Credit, amount: dec("2") },
        PostingRequest { account: AccountRef::Id(acc(5)), side: Side::Credit, amount: dec("1") },
    ];
    let setup = [deposit(1, "10"), Command::CreateTransfer(three_legs)];
    let post = Command::PostPendingTransfer { pending_id: tr(2), amount: Some(Decimal::ZERO) };
    rejects(&setup, post, Rejection::AmountMustBePositive);
}

#[test]
fn an_external_ref_and_its_schema_agree() {
    use crate::text::agree::{check, schema};
    let inputs = ["", "order 1", "tab\t", &"é".repeat(EXTERNAL_REF_MAX_CHARS), &"é".repeat(EXTERNAL_REF_MAX_CHARS + 1)];
    check(valid_external_ref, schema(crate::text::NO_CONTROLS_PATTERN, EXTERNAL_REF_MAX_CHARS), &inputs);
}

#[test]
fn a_metadata_key_or_string_and_its_schema_agree() {
    use crate::text::agree::{check, schema};
    let inputs = ["k", "nul\0", "\0", "tab\t", "\u{1b}"];
    let as_key = |s: &str| check_metadata(&json!({ s: "v" })).is_ok();
    let as_string = |s: &str| check_metadata(&json!({ "k": [{ "deep": s }] })).is_ok();
    check(as_key, schema(NO_NUL_PATTERN, 1000), &inputs);
    check(as_string, schema(NO_NUL_PATTERN, 1000), &inputs);
}
