//! Gift certificates (seed 004): issued from uploaded rows, activated when paid for, spent by
//! authorizations and captures, voided, refunded, cancelled or expired. Chart of accounts, per
//! currency: one liability account per certificate (`certificate:{code}`, no overdraft), a sales
//! clearing account (`certificates:sales_clearing:{currency}`) and a breakage income account
//! (`certificates:breakage:{currency}`). A certificate's balance is its liability account's
//! balance; every movement is a ledger transfer between these accounts, made through
//! [`crate::postings::Postings`] in the same command as the certificate's own event.

pub mod command;
pub mod decide;
pub mod event;
pub mod rejection;
pub mod state;

pub use command::Command;
pub use event::Event;
pub use rejection::Rejection;
pub use state::State;

use uuid::Uuid;

use crate::domain::{Answer, DomainCommand, DomainRejection, EntityRef, Replay, Subject};
use crate::ids::{AccountId, CertificateId, Timestamp, TransferId};
use crate::money::CurrencyCode;

/// The permissions the certificates' handlers ask for (see `crate::permission`).
pub mod scope {
    use crate::permission::Need;

    /// Loaders: upload certificates.
    pub const UPLOAD: Need<'static> = Need::new("certificates", "upload");
    /// Payments: activate and refund certificates.
    pub const ACTIVATE: Need<'static> = Need::new("certificates", "activate");
    /// Online store and POS: authorize, capture, void.
    pub const REDEEM: Need<'static> = Need::new("certificates", "redeem");
    /// Operators: cancel certificates.
    pub const ADMIN: Need<'static> = Need::new("certificates", "admin");
    /// Balances and the audit trail.
    pub const READ: Need<'static> = Need::read("certificates");
}

/// Every permission the domain declares.
pub const SCOPES: &[crate::permission::Need<'static>] =
    &[scope::UPLOAD, scope::ACTIVATE, scope::REDEEM, scope::ADMIN, scope::READ];

/// The kind of entity a certificate is in the store's generic rows, and its stream prefix.
pub const KIND: &str = "certificate";
/// Wrong CVCs in a row that lock a certificate against authorizations.
pub const CVC_ATTEMPTS: u32 = 5;
/// How long a locked certificate refuses authorizations.
pub const CVC_LOCK_SECONDS: u32 = 15 * 60;
/// At most this many certificates expire in one `ExpireDue`.
pub const MAX_EXPIRED_PER_COMMAND: usize = 256;

/// The namespace of the certificates domain's derived ids (UUIDv5).
const NAMESPACE: Uuid = Uuid::from_u128(0x9f1c_55a2_7d0e_4b8a_a1e3_0c6f_2b9d_4e71);

impl CertificateId {
    /// A certificate's id, derived from its code.
    pub fn of(code: &str) -> CertificateId {
        CertificateId(Uuid::new_v5(&NAMESPACE, code.as_bytes()))
    }
}

/// The certificate's liability account: id and code.
pub fn certificate_account(id: CertificateId, code: &str) -> (AccountId, String) {
    (AccountId(Uuid::new_v5(&id.0, b"account")), format!("certificate:{code}"))
}

/// The sales clearing account of a currency: id and code.
pub fn sales_clearing(currency: &CurrencyCode) -> (AccountId, String) {
    let code = format!("certificates:sales_clearing:{currency}");
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

/// The breakage income account of a currency: id and code.
pub fn breakage(currency: &CurrencyCode) -> (AccountId, String) {
    let code = format!("certificates:breakage:{currency}");
    (AccountId(Uuid::new_v5(&NAMESPACE, code.as_bytes())), code)
}

/// Why a certificate moves money: each operation's ledger transfer has an id derived from the
/// certificate, the purpose and the operation id, so a retried operation names the same
/// transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    Hold,
    Reversal,
    Refund,
    Cancellation,
    Expiry,
}

impl Purpose {
    pub fn transfer(self, id: CertificateId, operation_id: &str) -> TransferId {
        let purpose = match self {
            Purpose::Activation => "activation",
            Purpose::Hold => "hold",
            Purpose::Reversal => "reversal",
            Purpose::Refund => "refund",
            Purpose::Cancellation => "cancellation",
            Purpose::Expiry => "expiry",
        };
        TransferId(Uuid::new_v5(&id.0, format!("{purpose}:{operation_id}").as_bytes()))
    }
}

impl DomainCommand for Command {
    type Rejection = Rejection;

    fn execute(&self, state: &mut crate::State, now: Timestamp) -> Result<Vec<crate::Event>, Rejection> {
        crate::postings::execute(state, |state, postings| decide::decide(&state.certificates, postings, self, now))
    }

    fn transfer_ids(&self) -> Vec<TransferId> {
        let Some(id) = self.code().map(CertificateId::of) else { return Vec::new() };
        match self {
            Command::Issue(_) | Command::ExpireDue => Vec::new(),
            Command::Activate(_) => vec![Purpose::Activation.transfer(id, "")],
            Command::Authorize { operation_id, .. }
            | Command::RefuseCvc { operation_id, .. }
            | Command::Capture { operation_id, .. } => vec![Purpose::Hold.transfer(id, operation_id)],
            Command::Void { operation_id, .. } => {
                vec![Purpose::Hold.transfer(id, operation_id), Purpose::Reversal.transfer(id, operation_id)]
            }
            Command::Refund { operation_id, .. } => vec![Purpose::Refund.transfer(id, operation_id)],
            Command::Cancel { operation_id, .. } => vec![Purpose::Cancellation.transfer(id, operation_id)],
        }
    }

    fn answer(&self) -> Option<Answer> {
        let code = self.code()?;
        let subject = Subject::Entity(EntityRef { kind: KIND, id: CertificateId::of(code).0 });
        let replay = if matches!(self, Command::Issue(_)) { Replay::First } else { Replay::Last };
        Some(Answer { subject, replay })
    }
}

impl DomainRejection for Rejection {
    fn code(self) -> &'static str {
        Rejection::code(self)
    }
}
