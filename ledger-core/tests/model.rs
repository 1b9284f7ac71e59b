//! Property tests: the core against a deliberately simple reference model.
//!
//! The model keeps integer cents, simple two-posting transfers and the documented check order,
//! written out longhand. For any generated command sequence the core must give the same outcome
//! and the same balances as the model at every step, and:
//! - per currency, the sum of all debits equals the sum of all credits (posted and pending);
//! - no account with a no-overdraft limit goes below zero;
//! - replaying the recorded events rebuilds an identical state;
//! - retrying any accepted transfer, post, void or reversal changes nothing.

use std::collections::{BTreeMap, HashMap};

use ledger_core::ledger::account::{AccountKind, AccountStatus, BalanceLimit};
use ledger_core::ledger::decide::execute;
use ledger_core::ledger::{Command, Event, Rejection};
use ledger_core::{
    AccountId, AccountRef, CreateTransfer, Currencies, CurrencyCode, LedgerState, OpenAccount, Timestamp, TransferId,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

const T0: i64 = 1_700_000_000_000_000;

/// (code, currency, kind, limit) of the model's accounts; index `ACCOUNTS.len()` is unknown.
const ACCOUNTS: &[(&str, &str, AccountKind, BalanceLimit)] = &[
    ("player:a", "EUR", AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits),
    ("player:b", "EUR", AccountKind::Liability, BalanceLimit::DebitsMustNotExceedCredits),
    ("bank:eur", "EUR", AccountKind::Asset, BalanceLimit::None),
    ("fees", "EUR", AccountKind::Income, BalanceLimit::None),
    ("merchant", "EUR", AccountKind::Asset, BalanceLimit::CreditsMustNotExceedDebits),
    ("bank:usd", "USD", AccountKind::Asset, BalanceLimit::None),
];

fn account_id(i: usize) -> AccountId {
    AccountId(Uuid::from_u128(1 + i as u128))
}
fn transfer_id(i: u8) -> TransferId {
    TransferId(Uuid::from_u128(1000 + u128::from(i)))
}

/// An amount in cents; `bad_scale` adds a third decimal the currency does not allow.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Amount {
    cents: i64,
    bad_scale: bool,
}

impl Amount {
    fn positive(self) -> bool {
        if self.bad_scale { self.cents >= 0 } else { self.cents > 0 }
    }

    fn decimal(self) -> Decimal {
        if self.bad_scale { Decimal::new(self.cents * 10 + 1, 3) } else { Decimal::new(self.cents, 2) }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Transfer {
        id: u8,
        debit: usize,
        credit: usize,
        amount: Amount,
        pending: bool,
        timeout: Option<u32>,
    },
    Post {
        id: u8,
        amount: Option<Amount>,
    },
    Void {
        id: u8,
    },
    Reverse {
        id: u8,
        of: u8,
    },
    Freeze {
        account: usize,
    },
    Unfreeze {
        account: usize,
    },
    Close {
        account: usize,
    },
    Advance {
        seconds: u32,
    },
    /// Repeat the n-th earlier op (modulo the history length).
    Retry {
        nth: usize,
    },
}

fn amount() -> impl Strategy<Value = Amount> {
    (prop_oneof![1 => -100i64..=0, 12 => 1i64..=5_000], prop::bool::weighted(0.05))
        .prop_map(|(cents, bad_scale)| Amount { cents, bad_scale })
}

fn op() -> impl Strategy<Value = Op> {
    let account = 0..=ACCOUNTS.len();
    let id = 0u8..24;
    prop_oneof![
        10 => (id.clone(), account.clone(), account.clone(), amount(), prop::bool::weighted(0.3), prop::option::weighted(0.3, 1u32..20))
            .prop_map(|(id, debit, credit, amount, pending, timeout)| Op::Transfer { id, debit, credit, amount, pending, timeout }),
        3 => (id.clone(), prop::option::of(amount())).prop_map(|(id, amount)| Op::Post { id, amount }),
        2 => id.clone().prop_map(|id| Op::Void { id }),
        2 => (id.clone(), id.clone()).prop_map(|(id, of)| Op::Reverse { id, of }),
        1 => (0..ACCOUNTS.len()).prop_map(|account| Op::Freeze { account }),
        2 => (0..ACCOUNTS.len()).prop_map(|account| Op::Unfreeze { account }),
        1 => (0..ACCOUNTS.len()).prop_map(|account| Op::Close { account }),
        2 => (1u32..15).prop_map(|seconds| Op::Advance { seconds }),
        2 => any::<usize>().prop_map(|nth| Op::Retry { nth }),
    ]
}

// ---------------------------------------------------------------- the reference model

#[derive(Clone, Debug, Default, PartialEq)]
struct Totals {
    dp: i64,
    cp: i64,
    dh: i64,
    ch: i64,
}

#[derive(Clone, Debug, PartialEq)]
enum Status {
    Pending,
    Posted(i64),
    Voided,
    Expired,
}

#[derive(Clone, Debug)]
struct ModelTransfer {
    request: Op,
    debit: usize,
    credit: usize,
    cents: i64,
    pending: bool,
    timeout_at: Option<i64>,
    status: Status,
    reversed: bool,
    /// The accounts in the order the core's postings name them (account checks go in this order).
    order: [usize; 2],
}

struct Model {
    totals: Vec<Totals>,
    status: Vec<AccountStatus>,
    transfers: HashMap<u8, ModelTransfer>,
    now: i64,
}

/// What the model expects: a rejection, or acceptance with or without new events.
#[derive(Debug, PartialEq)]
enum Outcome {
    Changed,
    Unchanged,
    Rejected(Rejection),
}

impl Model {
    fn new() -> Model {
        Model {
            totals: vec![Totals::default(); ACCOUNTS.len()],
            status: vec![AccountStatus::Open; ACCOUNTS.len()],
            transfers: HashMap::new(),
            now: T0,
        }
    }

    fn within(&self, i: usize, t: &Totals) -> bool {
        match ACCOUNTS[i].3 {
            BalanceLimit::None => true,
            BalanceLimit::DebitsMustNotExceedCredits => t.dp + t.dh <= t.cp,
            BalanceLimit::CreditsMustNotExceedDebits => t.cp + t.ch <= t.dp,
        }
    }

    fn usable(&self, accounts: [usize; 2]) -> Result<(), Rejection> {
        for a in accounts {
            match self.status[a] {
                AccountStatus::Closed => return Err(Rejection::AccountClosed),
                AccountStatus::Frozen => return Err(Rejection::AccountFrozen),
                AccountStatus::Open => {}
            }
        }
        Ok(())
    }

    /// Moves `cents` from `debit` to `credit` (posted or held), releasing `release` held cents
    /// first, if every limit still holds afterwards.
    fn try_move(
        &mut self,
        debit: usize,
        credit: usize,
        release: i64,
        cents: i64,
        posted: bool,
    ) -> Result<(), Rejection> {
        let mut next = self.totals.clone();
        next[debit].dh -= release;
        next[credit].ch -= release;
        if posted {
            next[debit].dp += cents;
            next[credit].cp += cents;
        } else {
            next[debit].dh += cents;
            next[credit].ch += cents;
        }
        if !(self.within(debit, &next[debit]) && self.within(credit, &next[credit])) {
            return Err(Rejection::InsufficientFunds);
        }
        self.totals = next;
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Outcome {
        match self.step(op) {
            Ok(true) => Outcome::Changed,
            Ok(false) => Outcome::Unchanged,
            Err(r) => Outcome::Rejected(r),
        }
    }

    fn step(&mut self, op: &Op) -> Result<bool, Rejection> {
        match *op {
            Op::Transfer { id, debit, credit, amount, pending, timeout } => {
                if !amount.positive() {
                    return Err(Rejection::AmountMustBePositive);
                }
                if timeout.is_some() && !pending {
                    return Err(Rejection::TimeoutReservedForPendingTransfer);
                }
                if let Some(t) = self.transfers.get(&id) {
                    return if t.request == *op { Ok(false) } else { Err(Rejection::ExistsWithDifferentFields) };
                }
                if debit == ACCOUNTS.len() || credit == ACCOUNTS.len() {
                    return Err(Rejection::AccountNotFound);
                }
                if debit == credit {
                    return Err(Rejection::SameAccountOnBothSides);
                }
                if ACCOUNTS[debit].1 != ACCOUNTS[credit].1 {
                    return Err(Rejection::CurrencyMismatch);
                }
                if amount.bad_scale {
                    return Err(Rejection::AmountScale);
                }
                self.usable([debit, credit])?;
                self.try_move(debit, credit, 0, amount.cents, !pending)?;
                let status = if pending { Status::Pending } else { Status::Posted(amount.cents) };
                let timeout_at = timeout.map(|s| self.now + i64::from(s) * 1_000_000);
                self.transfers.insert(
                    id,
                    ModelTransfer {
                        request: op.clone(),
                        debit,
                        credit,
                        cents: amount.cents,
                        pending,
                        timeout_at,
                        status,
                        reversed: false,
                        order: [debit, credit],
                    },
                );
                Ok(true)
            }
            Op::Post { id, amount } => {
                let t = self.transfers.get(&id).ok_or(Rejection::PendingTransferNotFound)?.clone();
                if !t.pending {
                    return Err(Rejection::PendingTransferNotPending);
                }
                let wanted = amount.map(|a| if a.bad_scale { -1 } else { a.cents }).unwrap_or(t.cents);
                match t.status {
                    Status::Posted(cents) => {
                        return if cents == wanted { Ok(false) } else { Err(Rejection::PendingTransferAlreadyPosted) };
                    }
                    Status::Voided => return Err(Rejection::PendingTransferAlreadyVoided),
                    Status::Expired => return Err(Rejection::PendingTransferExpired),
                    Status::Pending => {}
                }
                if let Some(a) = amount {
                    if !a.positive() {
                        return Err(Rejection::AmountMustBePositive);
                    }
                    if a.bad_scale {
                        return Err(Rejection::AmountScale);
                    }
                    if a.cents > t.cents {
                        return Err(Rejection::PostAmountExceedsPending);
                    }
                }
                if t.timeout_at.is_some_and(|at| at <= self.now) {
                    return Err(Rejection::PendingTransferExpired);
                }
                self.usable(t.order)?;
                self.try_move(t.debit, t.credit, t.cents, wanted, true)?;
                self.transfers.get_mut(&id).unwrap().status = Status::Posted(wanted);
                Ok(true)
            }
            Op::Void { id } => {
                let t = self.transfers.get(&id).ok_or(Rejection::PendingTransferNotFound)?.clone();
                if !t.pending {
                    return Err(Rejection::PendingTransferNotPending);
                }
                match t.status {
                    Status::Voided => return Ok(false),
                    Status::Posted(_) => return Err(Rejection::PendingTransferAlreadyPosted),
                    Status::Expired => return Err(Rejection::PendingTransferExpired),
                    Status::Pending => {}
                }
                if t.timeout_at.is_some_and(|at| at <= self.now) {
                    return Err(Rejection::PendingTransferExpired);
                }
                self.try_move(t.debit, t.credit, t.cents, 0, true).expect("releasing a hold never breaks a limit");
                self.transfers.get_mut(&id).unwrap().status = Status::Voided;
                Ok(true)
            }
            Op::Reverse { id, of } => {
                if let Some(t) = self.transfers.get(&id) {
                    let same = matches!(t.request, Op::Reverse { of: o, .. } if o == of);
                    return if same { Ok(false) } else { Err(Rejection::ExistsWithDifferentFields) };
                }
                let original = self.transfers.get(&of).ok_or(Rejection::TransferNotFound)?.clone();
                let Status::Posted(cents) = original.status else {
                    return Err(Rejection::TransferNotPosted);
                };
                if original.reversed {
                    return Err(Rejection::TransferAlreadyReversed);
                }
                // The compensating postings keep the original's order, with sides swapped.
                self.usable(original.order)?;
                self.try_move(original.credit, original.debit, 0, cents, true)?;
                self.transfers.get_mut(&of).unwrap().reversed = true;
                self.transfers.insert(
                    id,
                    ModelTransfer {
                        request: op.clone(),
                        debit: original.credit,
                        credit: original.debit,
                        cents,
                        pending: false,
                        timeout_at: None,
                        status: Status::Posted(cents),
                        reversed: false,
                        order: original.order,
                    },
                );
                Ok(true)
            }
            Op::Freeze { account } | Op::Unfreeze { account } | Op::Close { account } => {
                let to = match op {
                    Op::Freeze { .. } => AccountStatus::Frozen,
                    Op::Unfreeze { .. } => AccountStatus::Open,
                    _ => AccountStatus::Closed,
                };
                let from = self.status[account];
                if from == to {
                    return Ok(false);
                }
                if from == AccountStatus::Closed {
                    return Err(Rejection::AccountClosed);
                }
                let t = &self.totals[account];
                if to == AccountStatus::Closed && (t.dp != t.cp || t.dh != 0 || t.ch != 0) {
                    return Err(Rejection::AccountBalanceNotZero);
                }
                self.status[account] = to;
                Ok(true)
            }
            Op::Advance { seconds } => {
                self.now += i64::from(seconds) * 1_000_000;
                let mut changed = false;
                let mut ids: Vec<u8> = self.transfers.keys().copied().collect();
                ids.sort();
                for id in ids {
                    let t = self.transfers[&id].clone();
                    if t.status == Status::Pending && t.timeout_at.is_some_and(|at| at <= self.now) {
                        self.try_move(t.debit, t.credit, t.cents, 0, true)
                            .expect("releasing a hold never breaks a limit");
                        self.transfers.get_mut(&id).unwrap().status = Status::Expired;
                        changed = true;
                    }
                }
                Ok(changed)
            }
            Op::Retry { .. } => unreachable!("retries are resolved before they reach the model"),
        }
    }
}

// ---------------------------------------------------------------- the core under test

fn account_ref(i: usize) -> AccountRef {
    // Name accounts alternately by id and by code: both must resolve alike.
    if i.is_multiple_of(2) {
        AccountRef::Id(account_id(i))
    } else {
        AccountRef::Code(ACCOUNTS.get(i).map_or("unknown", |a| a.0).into())
    }
}

fn command(op: &Op) -> Command {
    match *op {
        Op::Transfer { id, debit, credit, amount, pending, timeout } => Command::CreateTransfer(CreateTransfer {
            pending,
            timeout_seconds: timeout,
            ..CreateTransfer::simple(transfer_id(id), account_ref(debit), account_ref(credit), amount.decimal())
        }),
        Op::Post { id, amount } => {
            Command::PostPendingTransfer { pending_id: transfer_id(id), amount: amount.map(Amount::decimal) }
        }
        Op::Void { id } => Command::VoidPendingTransfer { pending_id: transfer_id(id) },
        Op::Reverse { id, of } => Command::ReverseTransfer {
            id: transfer_id(id),
            transfer_id: transfer_id(of),
            metadata: serde_json::Value::Null,
        },
        Op::Freeze { account } => {
            Command::FreezeAccount { id: account_id(account), reason: Some("chargeback dispute".into()) }
        }
        Op::Unfreeze { account } => Command::UnfreezeAccount { id: account_id(account), reason: None },
        Op::Close { account } => Command::CloseAccount { id: account_id(account), reason: None },
        Op::Advance { .. } => Command::ExpirePendingTransfers,
        Op::Retry { .. } => unreachable!(),
    }
}

fn cents(d: Decimal) -> i64 {
    let scaled = d * Decimal::ONE_HUNDRED;
    assert!(scaled.fract().is_zero(), "{d} is not whole cents");
    i64::try_from(scaled).unwrap()
}

fn opened() -> (LedgerState, Vec<Event>) {
    let mut state = LedgerState::new(Currencies::standard());
    let mut log = Vec::new();
    for (i, (code, currency, kind, limit)) in ACCOUNTS.iter().enumerate() {
        let open = Command::OpenAccount(OpenAccount {
            id: account_id(i),
            code: (*code).into(),
            currency: CurrencyCode::parse(currency).unwrap(),
            kind: *kind,
            limit: *limit,
            metadata: serde_json::json!({}),
        });
        log.extend(execute(&mut state, &open, Timestamp(T0)).unwrap());
    }
    (state, log)
}

fn check_invariants(state: &LedgerState) {
    let mut sums: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for a in state.accounts() {
        let s = sums.entry(a.currency.as_str()).or_default();
        s.0 += a.balances.debits_posted - a.balances.credits_posted;
        s.1 += a.balances.debits_pending - a.balances.credits_pending;
        assert!(a.balances.within(a.limit), "{} broke its limit: {:?}", a.code, a.balances);
    }
    for (currency, (posted, pending)) in sums {
        assert!(
            posted.is_zero() && pending.is_zero(),
            "{currency} does not balance: {posted} posted, {pending} pending"
        );
    }
}

fn run(ops: Vec<Op>) {
    let mut model = Model::new();
    let (mut state, mut log) = opened();
    let mut history: Vec<Op> = Vec::new();
    let mut accepted: Vec<Command> = Vec::new();
    for op in ops {
        let op = match op {
            Op::Retry { nth } if history.is_empty() => Op::Advance { seconds: 1 + (nth % 3) as u32 },
            Op::Retry { nth } => history[nth % history.len()].clone(),
            op => op,
        };
        history.push(op.clone());
        let expected = model.run(&op);
        let now = Timestamp(model.now);
        let got = match execute(&mut state, &command(&op), now) {
            Ok(events) if events.is_empty() => Outcome::Unchanged,
            Ok(events) => {
                log.extend(events);
                Outcome::Changed
            }
            Err(r) => Outcome::Rejected(r),
        };
        assert_eq!(got, expected, "outcome of {op:?}");
        if got != Outcome::Unchanged && !matches!(got, Outcome::Rejected(_)) && !matches!(op, Op::Advance { .. }) {
            accepted.push(command(&op));
        }
        for (i, t) in model.totals.iter().enumerate() {
            let b = state.account(account_id(i)).unwrap().balances;
            let got = Totals {
                dp: cents(b.debits_posted),
                cp: cents(b.credits_posted),
                dh: cents(b.debits_pending),
                ch: cents(b.credits_pending),
            };
            assert_eq!(&got, t, "balances of {} after {op:?}", ACCOUNTS[i].0);
        }
        check_invariants(&state);
    }

    let mut replayed = LedgerState::new(Currencies::standard());
    for event in &log {
        replayed.apply(event);
    }
    assert_eq!(replayed, state, "replaying the log rebuilds the state");

    let now = Timestamp(model.now);
    for command in accepted.iter().filter(|c| {
        !matches!(c, Command::FreezeAccount { .. } | Command::UnfreezeAccount { .. } | Command::CloseAccount { .. })
    }) {
        let before = state.clone();
        assert_eq!(execute(&mut state, command, now), Ok(vec![]), "retrying {command:?}");
        assert_eq!(state, before);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_core_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}

#[test]
fn events_round_trip_through_their_stored_form() {
    let (mut state, mut log) = opened();
    let ops = [
        Op::Transfer {
            id: 1,
            debit: 2,
            credit: 0,
            amount: Amount { cents: 500, bad_scale: false },
            pending: false,
            timeout: None,
        },
        Op::Transfer {
            id: 2,
            debit: 0,
            credit: 3,
            amount: Amount { cents: 200, bad_scale: false },
            pending: true,
            timeout: Some(5),
        },
        Op::Post { id: 2, amount: Some(Amount { cents: 150, bad_scale: false }) },
        Op::Reverse { id: 3, of: 2 },
    ];
    for op in &ops {
        let events = execute(&mut state, &command(op), Timestamp(T0));
        assert!(events.is_ok(), "{op:?}: {events:?}");
        log.extend(events.unwrap());
    }
    for event in log.into_iter().map(ledger_core::Event::Ledger) {
        let back =
            ledger_core::Event::from_parts(event.event_type(), event.schema_version(), &event.payload()).unwrap();
        assert_eq!(back, event);
    }
}
