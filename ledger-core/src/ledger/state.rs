//! The ledger's state and `apply`, which only mutates: every check happened in `decide`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::ids::{AccountId, Timestamp, TransferId};
use crate::ledger::account::{Account, AccountStatus, BalanceDelta};
use crate::ledger::command::{AccountRef, Command};
use crate::ledger::event::{Event, PendingPosted, PendingReleased};
use crate::ledger::transfer::{Posting, Transfer, TransferStatus};
use crate::money::{Currencies, CurrencyCode};

/// Accounts (all of them) and transfers (all of them in a full replay; a working set in a store,
/// which must load the transfers a command names before deciding it: see `Command::transfer_ids`).
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerState {
    currencies: Arc<Currencies>,
    accounts: HashMap<AccountId, Account>,
    codes: HashMap<String, AccountId>,
    /// Boxed: the table moves and zeroes 24-byte entries when it grows, not whole transfers.
    transfers: HashMap<TransferId, Box<Transfer>>,
    deadlines: BTreeSet<(Timestamp, TransferId)>,
    /// Accounts by owner: `metadata.client_id`, then `metadata.account_type` (strings both),
    /// for the domains that find a client's accounts of a type (payouts).
    owners: HashMap<String, BTreeMap<String, BTreeSet<AccountId>>>,
    /// The posted balances of the liability accounts attributed to a payment provider
    /// (`metadata.provider`), summed per provider and currency, kept by `apply` (reconciliation
    /// reads them without a scan). Right on a full state only, not on a scratch subset.
    attributed: HashMap<(String, CurrencyCode), Decimal>,
}

impl LedgerState {
    pub fn new(currencies: Currencies) -> LedgerState {
        LedgerState {
            currencies: Arc::new(currencies),
            accounts: HashMap::new(),
            codes: HashMap::new(),
            transfers: HashMap::new(),
            deadlines: BTreeSet::new(),
            owners: HashMap::new(),
            attributed: HashMap::new(),
        }
    }

    pub fn currencies(&self) -> &Currencies {
        &self.currencies
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn resolve(&self, account: &AccountRef) -> Option<&Account> {
        match account {
            AccountRef::Id(id) => self.accounts.get(id),
            AccountRef::Code(code) => self.codes.get(code).and_then(|id| self.accounts.get(id)),
        }
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    pub fn transfer(&self, id: TransferId) -> Option<&Transfer> {
        self.transfers.get(&id).map(|t| &**t)
    }

    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.transfers.values().map(|t| &**t)
    }

    /// Makes room for `additional` more transfers in the working set at once, so that it never
    /// has to grow (and rehash) while commands wait.
    pub fn reserve_transfers(&mut self, additional: usize) {
        self.transfers.reserve(additional);
    }

    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Pending transfers whose timeout is at or before `now`, earliest first.
    pub fn expired_pending(&self, now: Timestamp) -> impl Iterator<Item = TransferId> + '_ {
        self.deadlines.iter().take_while(move |(at, _)| *at <= now).map(|(_, id)| *id)
    }

    /// The earliest timeout of a pending transfer, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.iter().next().map(|(at, _)| *at)
    }

    /// A client's accounts of a type (by `metadata.client_id` and `metadata.account_type`), by
    /// id, from the index: never a scan of every account.
    pub fn accounts_of<'a>(&'a self, client_id: &str, account_type: &str) -> impl Iterator<Item = &'a Account> + 'a {
        let ids = self.owners.get(client_id).and_then(|types| types.get(account_type));
        ids.into_iter().flatten().filter_map(|id| self.accounts.get(id))
    }

    /// The sum of the posted balances of the liability accounts in `currency` whose
    /// `metadata.provider` is `provider`: what the operator owes the players whose money that
    /// payment provider holds. Kept as postings apply, never a scan.
    pub fn attributed_to(&self, provider: &str, currency: &CurrencyCode) -> Decimal {
        // A lookup by a borrowed pair would need an owned key; providers are few and short.
        self.attributed.get(&(provider.to_owned(), currency.clone())).copied().unwrap_or_default()
    }

    /// Loads an account as a store persisted it (start-up without replaying the log).
    pub fn load_account(&mut self, account: Account) {
        let owner = |field: &str| account.metadata.get(field).and_then(serde_json::Value::as_str);
        if let (Some(client), Some(kind)) = (owner("client_id"), owner("account_type")) {
            self.owners.entry(client.to_owned()).or_default().entry(kind.to_owned()).or_default().insert(account.id);
        }
        if let Some(provider) = account.attributed_provider() {
            let sum = self.attributed.entry((provider.to_owned(), account.currency.clone())).or_default();
            *sum = sum.checked_add(account.balance()).expect("balances are bounded far below Decimal's range");
        }
        self.codes.insert(account.code.clone(), account.id);
        self.accounts.insert(account.id, account);
    }

    /// Loads a transfer as a store persisted it into the working set.
    pub fn load_transfer(&mut self, transfer: Transfer) {
        if let (TransferStatus::Pending, Some(at)) = (transfer.status, transfer.timeout_at) {
            self.deadlines.insert((at, transfer.id));
        }
        self.transfers.insert(transfer.id, Box::new(transfer));
    }

    /// Drops settled transfers for which `evictable` holds from the working set (a store keeps
    /// them on disk). Pending transfers always stay: expiry needs them.
    pub fn evict_transfers(&mut self, mut evictable: impl FnMut(&Transfer) -> bool) {
        self.transfers.retain(|_, t| t.status == TransferStatus::Pending || !evictable(t));
    }

    /// A copy holding only the named accounts and transfers: a scratch state for a linked batch.
    pub fn subset<'a>(
        &self,
        accounts: impl IntoIterator<Item = &'a AccountRef>,
        transfers: impl IntoIterator<Item = TransferId>,
    ) -> LedgerState {
        let mut out = LedgerState {
            currencies: Arc::clone(&self.currencies),
            accounts: HashMap::new(),
            codes: HashMap::new(),
            transfers: HashMap::new(),
            deadlines: BTreeSet::new(),
            owners: HashMap::new(),
            attributed: HashMap::new(),
        };
        for account in accounts {
            if let Some(a) = self.resolve(account) {
                out.load_account(a.clone());
            }
        }
        for id in transfers {
            if let Some(t) = self.transfers.get(&id) {
                out.load_transfer((**t).clone());
            }
        }
        out
    }

    /// Copies from `base` everything `command` may read that this (scratch) state does not
    /// hold yet: its accounts (by id or code), its transfers, and the accounts those transfers
    /// post to. Deciding the command here then gives what it would give on `base`, and applying
    /// the result to `base` too leaves both alike for what they share. `ExpirePendingTransfers`
    /// reads every deadline and is not supported on a scratch state.
    pub fn absorb(&mut self, base: &LedgerState, command: &Command) {
        let mut accounts: Vec<AccountRef> = Vec::new();
        match command {
            Command::OpenAccount(open) => {
                accounts.push(AccountRef::Id(open.id));
                accounts.push(AccountRef::Code(open.code.clone()));
            }
            Command::FreezeAccount { id, .. }
            | Command::UnfreezeAccount { id, .. }
            | Command::CloseAccount { id, .. } => accounts.push(AccountRef::Id(*id)),
            Command::CreateTransfer(t) => accounts.extend(t.postings.iter().map(|p| p.account.clone())),
            _ => {}
        }
        for id in command.transfer_ids() {
            if let Some(t) = base.transfer(id) {
                accounts.extend(t.postings.iter().map(|p| AccountRef::Id(p.account)));
                if self.transfer(id).is_none() {
                    self.load_transfer(t.clone());
                }
            }
        }
        for account in &accounts {
            if let Some(a) = base.resolve(account)
                && self.account(a.id).is_none()
            {
                self.load_account(a.clone());
            }
        }
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::AccountOpened(e) => {
                assert!(!self.accounts.contains_key(&e.id), "account {} opened twice", e.id);
                self.load_account(Account {
                    id: e.id,
                    code: e.code.clone(),
                    currency: e.currency.clone(),
                    kind: e.kind,
                    limit: e.limit,
                    status: AccountStatus::Open,
                    metadata: e.metadata.clone(),
                    balances: Default::default(),
                    version: 1,
                    opened_at: e.at,
                });
            }
            Event::AccountFrozen(e) => self.set_status(e.id, AccountStatus::Frozen),
            Event::AccountUnfrozen(e) => self.set_status(e.id, AccountStatus::Open),
            Event::AccountClosed(e) => self.set_status(e.id, AccountStatus::Closed),
            Event::TransferPosted(e) | Event::PendingTransferCreated(e) => {
                let status = if matches!(event, Event::TransferPosted(_)) {
                    TransferStatus::Posted
                } else {
                    TransferStatus::Pending
                };
                self.apply_deltas(&event_deltas(self, event));
                if let Some(original) = e.reverses.and_then(|id| self.transfers.get_mut(&id)) {
                    original.reversed_by = Some(e.id);
                }
                assert!(!self.transfers.contains_key(&e.id), "transfer {} created twice", e.id);
                self.load_transfer(Transfer::created(e, status));
            }
            Event::PendingTransferPosted(PendingPosted { id, .. })
            | Event::PendingTransferVoided(PendingReleased { id, .. })
            | Event::PendingTransferExpired(PendingReleased { id, .. }) => {
                self.apply_deltas(&event_deltas(self, event));
                let transfer = self.transfers.get_mut(id).expect("event names a transfer in the working set");
                transfer.settle(event);
                if let Some(at) = transfer.timeout_at {
                    self.deadlines.remove(&(at, *id));
                }
            }
        }
    }

    fn set_status(&mut self, id: AccountId, status: AccountStatus) {
        let account = self.accounts.get_mut(&id).expect("status change of a known account");
        account.status = status;
        account.version += 1;
    }

    fn apply_deltas(&mut self, deltas: &BTreeMap<AccountId, BalanceDelta>) {
        for (id, delta) in deltas {
            let account = self.accounts.get_mut(id).expect("postings name known accounts");
            let before = account.balance();
            account.balances = delta.applied_to(&account.balances).expect("decide checked every total");
            if let Some(provider) = account.attributed_provider() {
                let change = account.balance() - before;
                let sum = self.attributed.entry((provider.to_owned(), account.currency.clone())).or_default();
                *sum = sum.checked_add(change).expect("balances are bounded far below Decimal's range");
            }
        }
    }
}

/// How a set of postings moves an account's totals.
#[derive(Clone, Copy)]
enum Movement {
    Post,
    Hold,
    ReleaseHold,
}

fn add_deltas(out: &mut BTreeMap<AccountId, BalanceDelta>, postings: &[Posting], movement: Movement) {
    for p in postings {
        let (posted, amount) = match movement {
            Movement::Post => (true, p.amount),
            Movement::Hold => (false, p.amount),
            Movement::ReleaseHold => (false, -p.amount),
        };
        out.entry(p.account).or_default().add(p.side, posted, amount);
    }
}

/// The balance changes an event makes, per account. `decide` checks them and `apply` makes
/// them, so the two can never disagree. Settling events need their transfer in the state.
pub(crate) fn event_deltas(state: &LedgerState, event: &Event) -> BTreeMap<AccountId, BalanceDelta> {
    balance_deltas(event, |id| &state.transfers.get(&id).expect("event names a transfer in the working set").postings)
}

/// The balance changes an event makes, per account, given the held postings of the pending
/// transfer a settling event names (`held` is only called for settling events). Read models
/// use it too, so every balance in the system comes from this one function.
pub fn balance_deltas<'a>(
    event: &'a Event,
    held: impl Fn(TransferId) -> &'a [Posting],
) -> BTreeMap<AccountId, BalanceDelta> {
    let mut out = BTreeMap::new();
    match event {
        Event::TransferPosted(e) => add_deltas(&mut out, &e.postings, Movement::Post),
        Event::PendingTransferCreated(e) => add_deltas(&mut out, &e.postings, Movement::Hold),
        Event::PendingTransferPosted(e) => {
            add_deltas(&mut out, held(e.id), Movement::ReleaseHold);
            add_deltas(&mut out, &e.postings, Movement::Post);
        }
        Event::PendingTransferVoided(e) | Event::PendingTransferExpired(e) => {
            add_deltas(&mut out, held(e.id), Movement::ReleaseHold)
        }
        Event::AccountOpened(_) | Event::AccountFrozen(_) | Event::AccountUnfrozen(_) | Event::AccountClosed(_) => {}
    }
    out
}
