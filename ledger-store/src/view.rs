//! The committed view: accounts and domain entities as of the last durable commit, for strongly consistent reads
//! without queueing behind the writer. The committer updates it after each commit and before
//! it answers, so a caller always reads its own writes.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use ledger_core::{Account, AccountId, AccountRef, EntityRow};
use uuid::Uuid;

/// An account as committed, with the position of the latest event that changed it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedAccount {
    pub account: Account,
    pub position: i64,
}

#[derive(Default)]
pub struct CommittedView {
    accounts: RwLock<HashMap<AccountId, CommittedAccount>>,
    codes: RwLock<HashMap<String, AccountId>>,
    entities: RwLock<HashMap<Uuid, (EntityRow, i64)>>,
    head: AtomicI64,
}

impl CommittedView {
    pub fn account(&self, account: &AccountRef) -> Option<CommittedAccount> {
        let id = match account {
            AccountRef::Id(id) => *id,
            AccountRef::Code(code) => *self.codes.read().expect("view lock").get(code)?,
        };
        self.accounts.read().expect("view lock").get(&id).cloned()
    }

    /// A domain entity as committed, with the position of its latest event.
    pub fn entity(&self, id: Uuid) -> Option<(EntityRow, i64)> {
        self.entities.read().expect("view lock").get(&id).cloned()
    }

    /// The position of the last committed event.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    pub(crate) fn publish(
        &self,
        accounts: impl IntoIterator<Item = CommittedAccount>,
        entities: impl IntoIterator<Item = (EntityRow, i64)>,
        head: i64,
    ) {
        {
            let mut map = self.entities.write().expect("view lock");
            for (row, position) in entities {
                map.insert(row.id, (row, position));
            }
        }
        {
            let mut map = self.accounts.write().expect("view lock");
            let mut codes = None;
            for a in accounts {
                if !map.contains_key(&a.account.id) {
                    codes.get_or_insert_with(Vec::new).push((a.account.code.clone(), a.account.id));
                }
                map.insert(a.account.id, a);
            }
            if let Some(new) = codes {
                self.codes.write().expect("view lock").extend(new);
            }
        }
        self.head.store(head, Ordering::Release);
    }
}
