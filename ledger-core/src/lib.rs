//! The pure double-entry ledger core: money, the domains (the ledger's accounts and transfers
//! first) with their commands, events, rejections, `decide` and `apply`, and the sums of them
//! all that the store and the APIs handle. It performs no I/O and reads no clock; callers pass
//! `now`.

pub mod audit;
pub mod certificates;
pub mod config;
pub mod domain;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod orders;
pub mod payouts;
pub mod permission;
pub mod postings;
pub mod rate_limit;
pub mod recon;
pub mod schema;
pub mod sealed;
pub mod settings;
pub mod text;
pub mod wallet;
pub mod webhook;

pub use domain::{Answer, Command, Entity, EntityRef, EntityRow, Event, Rejection, Replay, State, Subject, Touched};
pub use ids::{
    AccountId, BonusId, CertificateId, DepositId, MovementId, OrderId, PayoutId, PayoutRequestId, RunId, Timestamp,
    TransferId, WithdrawalId,
};
pub use ledger::account::{Account, AccountKind, AccountStatus, BalanceLimit, Balances, Side};
pub use ledger::command::{AccountRef, CreateTransfer, OpenAccount, PostingRequest};
pub use ledger::decide::BatchMode;
pub use ledger::state::LedgerState;
pub use ledger::transfer::{Posting, Transfer, TransferStatus};
pub use money::{Currencies, CurrencyCode, Money};
