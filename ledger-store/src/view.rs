//! The committed view: accounts and domain entities as of the last durable commit, for strongly consistent reads
//! without queueing behind the writer. The committer updates it after each commit and before
//! it answers, so a caller always reads its own writes. Entities are found by id, or by kind and
//! the start of their natural key, as the `entities` table's `(kind, key)` index finds them (a
//! trader's requisites, keyed `{trader}/{id}`).

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use ledger_core::{Account, AccountId, AccountRef, CurrencyCode, EntityRow};
use rust_decimal::Decimal;
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
    entities: RwLock<Entities>,
    /// The posted balances of the liability accounts attributed to a payment provider, per
    /// provider and currency (`LedgerState::attributed_to`, as committed).
    attributed: RwLock<HashMap<(String, CurrencyCode), Decimal>>,
    head: AtomicI64,
}

/// The entities' rows by id, and their ids by kind and key.
#[derive(Default)]
struct Entities {
    rows: HashMap<Uuid, (EntityRow, i64)>,
    keys: HashMap<String, BTreeMap<String, Uuid>>,
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
        self.entities.read().expect("view lock").rows.get(&id).cloned()
    }

    /// The entities of `kind` whose key starts with `prefix`, in key order, each with the
    /// position of its latest event.
    pub fn entities_keyed(&self, kind: &str, prefix: &str) -> Vec<(EntityRow, i64)> {
        let entities = self.entities.read().expect("view lock");
        let Some(keys) = entities.keys.get(kind) else { return Vec::new() };
        keys.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, id)| entities.rows[id].clone())
            .collect()
    }

    /// The players' balances attributed to `provider` in `currency`, as committed.
    pub fn attributed_to(&self, provider: &str, currency: &CurrencyCode) -> Decimal {
        let sums = self.attributed.read().expect("view lock");
        sums.get(&(provider.to_owned(), currency.clone())).copied().unwrap_or_default()
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
            let Entities { rows, keys } = &mut *map;
            for (row, position) in entities {
                // Only a new entity, or one whose key changed, moves in the key index.
                let before = rows.get(&row.id).map(|(b, _)| (b.kind.as_str(), b.key.as_str()));
                if before != Some((row.kind.as_str(), row.key.as_str())) {
                    if let Some((kind, key)) = before
                        && let Some(by_key) = keys.get_mut(kind)
                    {
                        by_key.remove(key);
                    }
                    keys.entry(row.kind.clone()).or_default().insert(row.key.clone(), row.id);
                }
                rows.insert(row.id, (row, position));
            }
        }
        {
            let mut map = self.accounts.write().expect("view lock");
            let mut codes = None;
            for a in accounts {
                let before = map.get(&a.account.id);
                if before.is_none() {
                    codes.get_or_insert_with(Vec::new).push((a.account.code.clone(), a.account.id));
                }
                if let Some(provider) = a.account.attributed_provider() {
                    let change = a.account.balance() - before.map_or(Decimal::ZERO, |b| b.account.balance());
                    let mut sums = self.attributed.write().expect("view lock");
                    *sums.entry((provider.to_owned(), a.account.currency.clone())).or_default() += change;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, id: u128, key: &str, version: u32) -> (EntityRow, i64) {
        let state = format!("{{\"v\":{version}}}").into();
        let row = EntityRow {
            kind: kind.into(),
            id: Uuid::from_u128(id),
            key: key.into(),
            version,
            state,
            typed: Default::default(),
        };
        (row, i64::from(version))
    }

    fn keyed(view: &CommittedView, kind: &str, prefix: &str) -> Vec<(String, u32, i64)> {
        view.entities_keyed(kind, prefix).into_iter().map(|(r, at)| (r.key, r.version, at)).collect()
    }

    #[test]
    fn entities_are_found_by_kind_and_the_start_of_their_key_in_key_order() {
        let view = CommittedView::default();
        view.publish(
            [],
            [row("r", 1, "t1/b", 1), row("r", 2, "t1/a", 1), row("r", 3, "t10/a", 1), row("o", 4, "t1/c", 1)],
            4,
        );
        assert_eq!(keyed(&view, "r", "t1/"), [("t1/a".into(), 1, 1), ("t1/b".into(), 1, 1)]);
        assert_eq!(keyed(&view, "r", "t1"), [("t1/a".into(), 1, 1), ("t1/b".into(), 1, 1), ("t10/a".into(), 1, 1)]);
        assert_eq!(keyed(&view, "o", "t1/"), [("t1/c".into(), 1, 1)]);
        assert!(keyed(&view, "r", "t2/").is_empty());
        assert!(keyed(&view, "none", "").is_empty());
        // A later version replaces the row in place; a changed key moves it.
        view.publish([], [row("r", 1, "t1/b", 2), row("r", 2, "t2/a", 3)], 6);
        assert_eq!(keyed(&view, "r", "t1/"), [("t1/b".into(), 2, 2)]);
        assert_eq!(keyed(&view, "r", "t2/"), [("t2/a".into(), 3, 3)]);
        assert_eq!(view.entity(Uuid::from_u128(2)).map(|(r, _)| r.key), Some("t2/a".into()));
    }
}
