//! The pure double-entry ledger core: money, accounts, transfers, commands, events,
//! `decide` and `apply`. It performs no I/O and reads no clock; callers pass `now`.

pub mod account;
pub mod command;
pub mod decide;
pub mod event;
pub mod ids;
pub mod money;
pub mod rejection;
pub mod schema;
pub mod state;
pub mod transfer;

pub use account::{Account, AccountKind, AccountStatus, BalanceLimit, Balances, Side};
pub use command::{AccountRef, Command, CreateTransfer, OpenAccount, PostingRequest};
pub use decide::{BatchMode, decide, execute, execute_batch};
pub use event::{Event, Subject};
pub use ids::{AccountId, Timestamp, TransferId};
pub use money::{Currencies, CurrencyCode, Money};
pub use rejection::Rejection;
pub use state::LedgerState;
pub use transfer::{Posting, Transfer, TransferStatus};
