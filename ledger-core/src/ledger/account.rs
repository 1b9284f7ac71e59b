//! Accounts and their balances.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, Timestamp};
use crate::money::CurrencyCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
}

/// The kind of an account fixes its normal side: assets and expenses grow with debits;
/// liabilities, equity and income grow with credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl AccountKind {
    pub fn normal_side(self) -> Side {
        match self {
            AccountKind::Asset | AccountKind::Expense => Side::Debit,
            AccountKind::Liability | AccountKind::Equity | AccountKind::Income => Side::Credit,
        }
    }

    /// The limit that keeps the balance from going below zero on this kind's normal side.
    pub fn no_overdraft_limit(self) -> BalanceLimit {
        match self.normal_side() {
            Side::Debit => BalanceLimit::CreditsMustNotExceedDebits,
            Side::Credit => BalanceLimit::DebitsMustNotExceedCredits,
        }
    }
}

/// An optional no-overdraft rule, checked against posted plus pending amounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalanceLimit {
    None,
    /// `debits_posted + debits_pending <= credits_posted`
    DebitsMustNotExceedCredits,
    /// `credits_posted + credits_pending <= debits_posted`
    CreditsMustNotExceedDebits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Open,
    Frozen,
    Closed,
}

/// The four running totals of an account. All are non-negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub debits_posted: Decimal,
    pub credits_posted: Decimal,
    pub debits_pending: Decimal,
    pub credits_pending: Decimal,
}

impl Balances {
    /// Posted balance, signed on the normal side.
    pub fn balance(&self, normal: Side) -> Decimal {
        match normal {
            Side::Debit => self.debits_posted - self.credits_posted,
            Side::Credit => self.credits_posted - self.debits_posted,
        }
    }

    /// Posted balance less the pending holds against it.
    pub fn available(&self, normal: Side) -> Decimal {
        match normal {
            Side::Debit => self.debits_posted - self.credits_posted - self.credits_pending,
            Side::Credit => self.credits_posted - self.debits_posted - self.debits_pending,
        }
    }

    pub fn within(&self, limit: BalanceLimit) -> bool {
        match limit {
            BalanceLimit::None => true,
            BalanceLimit::DebitsMustNotExceedCredits => self.debits_posted + self.debits_pending <= self.credits_posted,
            BalanceLimit::CreditsMustNotExceedDebits => {
                self.credits_posted + self.credits_pending <= self.debits_posted
            }
        }
    }

    pub fn is_zero(&self) -> bool {
        self.debits_posted == self.credits_posted && self.debits_pending.is_zero() && self.credits_pending.is_zero()
    }
}

/// Signed changes to an account's four totals, produced by one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceDelta {
    pub debits_posted: Decimal,
    pub credits_posted: Decimal,
    pub debits_pending: Decimal,
    pub credits_pending: Decimal,
}

impl BalanceDelta {
    pub fn add(&mut self, side: Side, posted: bool, amount: Decimal) {
        let slot = match (side, posted) {
            (Side::Debit, true) => &mut self.debits_posted,
            (Side::Credit, true) => &mut self.credits_posted,
            (Side::Debit, false) => &mut self.debits_pending,
            (Side::Credit, false) => &mut self.credits_pending,
        };
        // Deltas are sums of checked amounts (each at most 10^24) over a bounded number of postings.
        *slot += amount;
    }

    /// The totals after this delta, or `None` on overflow or a negative total.
    pub fn applied_to(&self, b: &Balances) -> Option<Balances> {
        let next = |total: Decimal, delta: Decimal| {
            total.checked_add(delta).filter(|v| *v >= Decimal::ZERO && *v <= crate::money::max_total())
        };
        Some(Balances {
            debits_posted: next(b.debits_posted, self.debits_posted)?,
            credits_posted: next(b.credits_posted, self.credits_posted)?,
            debits_pending: next(b.debits_pending, self.debits_pending)?,
            credits_pending: next(b.credits_pending, self.credits_pending)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub code: String,
    pub currency: CurrencyCode,
    pub kind: AccountKind,
    pub limit: BalanceLimit,
    pub status: AccountStatus,
    pub metadata: serde_json::Value,
    pub balances: Balances,
    /// Number of events in this account's stream.
    pub version: u32,
    pub opened_at: Timestamp,
}

impl Account {
    pub fn balance(&self) -> Decimal {
        self.balances.balance(self.kind.normal_side())
    }

    pub fn available(&self) -> Decimal {
        self.balances.available(self.kind.normal_side())
    }

    /// The payment provider holding this liability's money (`metadata.provider`), if any: what
    /// reconciliation sums per provider as the players' balances it must cover.
    pub fn attributed_provider(&self) -> Option<&str> {
        if self.kind != AccountKind::Liability {
            return None;
        }
        self.metadata.get("provider").and_then(serde_json::Value::as_str)
    }
}

/// The JSON Schema pattern of [`valid_account_code`].
pub const ACCOUNT_CODE_PATTERN: &str = "^[A-Za-z0-9:._@/-]{1,128}$";

/// Account codes: 1 to 128 characters from `A-Za-z0-9` and `:._-@/`, e.g. `player:42:main`
/// ([`ACCOUNT_CODE_PATTERN`]).
pub fn valid_account_code(code: &str) -> bool {
    (1..=128).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-@/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_code_and_its_schema_agree() {
        let inputs = ["", "player:42:main", "a/b@c.d_e-f", "a b", "é", &"a".repeat(128), &"a".repeat(129)];
        crate::text::agree::check(valid_account_code, crate::text::agree::schema(ACCOUNT_CODE_PATTERN, 128), &inputs);
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn balances(dp: &str, cp: &str, dh: &str, ch: &str) -> Balances {
        Balances { debits_posted: dec(dp), credits_posted: dec(cp), debits_pending: dec(dh), credits_pending: dec(ch) }
    }

    #[test]
    fn available_is_the_posted_balance_less_the_holds_against_the_normal_side() {
        let b = balances("10", "100", "7", "3");
        // A credit-normal account (a wallet): 90 posted, 7 held by pending debits.
        assert_eq!((b.balance(Side::Credit), b.available(Side::Credit)), (dec("90"), dec("83")));
        // A debit-normal account: -90 posted, 3 held by pending credits.
        assert_eq!((b.balance(Side::Debit), b.available(Side::Debit)), (dec("-90"), dec("-93")));
    }

    #[test]
    fn a_delta_applies_only_while_every_total_stays_between_zero_and_the_maximum() {
        let b = balances("10", "20", "0", "0");
        let delta = |dp: &str| BalanceDelta { debits_posted: dec(dp), ..BalanceDelta::default() };
        assert_eq!(delta("5").applied_to(&b), Some(balances("15", "20", "0", "0")));
        assert_eq!(delta("-10").applied_to(&b), Some(balances("0", "20", "0", "0")));
        assert_eq!(delta("-11").applied_to(&b), None, "a negative total");
        let max = crate::money::max_total();
        assert_eq!(delta(&(max - dec("10")).to_string()).applied_to(&b).map(|n| n.debits_posted), Some(max));
        assert_eq!(delta(&(max - dec("9")).to_string()).applied_to(&b), None, "past the maximum");
    }
}
