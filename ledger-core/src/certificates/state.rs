//! Gift certificates as the writer holds them, and as the store keeps them: one entity row per
//! certificate (`kind = "certificate"`, keyed by code). An authorization is its hold transfer
//! (its id derived from the certificate and the operation id): what was held, captured, voided
//! or reversed is read from that transfer, which the ledger keeps (and a store loads back when
//! a command names it). The certificate itself keeps only its open authorizations and the
//! operation that closed it, so neither its row nor the writer's memory grows with its history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::SealedCvc;
use super::event::Event;
use super::{KIND, Purpose};
use crate::domain::{DomainState, EntityRef, EntityRow, Touched, Typed};
use crate::ids::{AccountId, CertificateId, Timestamp, TransferId};
use crate::ledger::state::LedgerState;
use crate::ledger::transfer::TransferStatus;
use crate::ledger::transfer::{Posting, Transfer};
use crate::money::{Currencies, CurrencyCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Issued,
    Active,
    PartiallyRedeemed,
    Redeemed,
    Refunded,
    Cancelled,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Issued => "issued",
            Status::Active => "active",
            Status::PartiallyRedeemed => "partially_redeemed",
            Status::Redeemed => "redeemed",
            Status::Refunded => "refunded",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
        }
    }

    /// Refunded, cancelled and expired certificates never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Refunded | Status::Cancelled | Status::Expired)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Authorization,
    Refund,
    Cancellation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// An authorization holding its amount.
    Open,
    Captured,
    /// An authorization released before capture.
    Voided,
    /// A captured amount returned to the certificate.
    CaptureVoided,
    /// A refund or a cancellation.
    Done,
}

/// One operation on a certificate, by its `operation_id`: an authorization as its hold transfer
/// shows it, or the refund or cancellation that closed the certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub kind: OperationKind,
    /// Held (authorization), refunded or written off.
    pub amount: Decimal,
    /// What a capture posted (at most the amount held).
    pub captured: Option<Decimal>,
    pub status: OperationStatus,
    pub transfer: Option<TransferId>,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// The refund or cancellation that closed a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub kind: OperationKind,
    pub operation_id: String,
    pub amount: Decimal,
    pub transfer: Option<TransferId>,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// A stored row holds exactly these fields: one with others (a row written before operations
/// had rows of their own held them here) is refused at load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub id: CertificateId,
    pub code: String,
    pub nominal: Decimal,
    pub currency: CurrencyCode,
    pub expires_at: Option<Timestamp>,
    pub campaign: Option<String>,
    /// The phone of the upload row.
    pub phone: Option<String>,
    pub account: AccountId,
    pub status: Status,
    /// Where the CVC was sent on activation.
    pub cvc_phone: Option<String>,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    /// The buyer named by the activating order.
    #[serde(default)]
    pub client_id: Option<String>,
    pub cvc: Option<SealedCvc>,
    pub failed_cvc_attempts: u32,
    pub locked_until: Option<Timestamp>,
    /// Authorizations still holding money: the amount held, by operation id.
    #[serde(default)]
    pub open: BTreeMap<String, Decimal>,
    /// The refund or cancellation that closed the certificate.
    #[serde(default)]
    pub closing: Option<Closing>,
    pub issued_at: Timestamp,
    pub version: u32,
}

impl Certificate {
    /// An operation by id: the closing, or an authorization as its hold transfer in `ledger`
    /// shows it (a store loads the transfers a command names before deciding it).
    pub fn operation(&self, ledger: &LedgerState, operation_id: &str) -> Option<Operation> {
        self.operation_with(operation_id, |id| ledger.transfer(id))
    }

    /// `operation`, with the transfers looked up by `transfer`.
    pub fn operation_with<'a>(
        &self,
        operation_id: &str,
        transfer: impl FnOnce(TransferId) -> Option<&'a Transfer>,
    ) -> Option<Operation> {
        if let Some(c) = self.closing.as_ref().filter(|c| c.operation_id == operation_id) {
            return Some(Operation {
                kind: c.kind,
                amount: c.amount,
                captured: None,
                status: OperationStatus::Done,
                transfer: c.transfer,
                reason: c.reason.clone(),
                at: c.at,
            });
        }
        transfer(Purpose::Hold.transfer(self.id, operation_id)).map(authorization)
    }

    pub fn entity(&self) -> EntityRef {
        EntityRef { kind: KIND, id: self.id.0 }
    }
}

/// An authorization as its hold transfer shows it: the amount held, and what was posted of it
/// (a hold is one posting from the certificate's account and one to sales clearing, of the
/// same amount).
fn authorization(hold: &Transfer) -> Operation {
    let on_account = |postings: &[Posting]| postings.first().map_or(Decimal::ZERO, |p| p.amount);
    let status = match (hold.status, hold.reversed_by) {
        (TransferStatus::Pending, _) => OperationStatus::Open,
        (TransferStatus::Posted, None) => OperationStatus::Captured,
        (TransferStatus::Posted, Some(_)) => OperationStatus::CaptureVoided,
        _ => OperationStatus::Voided,
    };
    Operation {
        kind: OperationKind::Authorization,
        amount: on_account(&hold.postings),
        captured: hold.posted.as_deref().map(on_account),
        status,
        transfer: Some(hold.id),
        reason: None,
        at: hold.created_at,
    }
}

/// Every certificate, with the expiry deadlines of those not yet final.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    certificates: HashMap<CertificateId, Certificate>,
    deadlines: BTreeSet<(Timestamp, CertificateId)>,
}

impl State {
    pub fn get(&self, id: CertificateId) -> Option<&Certificate> {
        self.certificates.get(&id)
    }

    pub fn by_code(&self, code: &str) -> Option<&Certificate> {
        self.get(CertificateId::of(code))
    }

    /// Certificates past their expiry and not yet final, earliest first.
    pub fn due(&self, now: Timestamp) -> impl Iterator<Item = CertificateId> + '_ {
        self.deadlines.iter().take_while(move |(at, _)| *at <= now).map(|(_, id)| *id)
    }

    fn insert(&mut self, certificate: Certificate) {
        if let (Some(at), false) = (certificate.expires_at, certificate.status.is_final()) {
            self.deadlines.insert((at, certificate.id));
        }
        self.certificates.insert(certificate.id, certificate);
    }
}

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] = &[KIND];

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        if let Event::Issued(e) = event {
            assert!(!self.certificates.contains_key(&e.id), "certificate {} issued twice", e.code);
            self.insert(Certificate {
                id: e.id,
                code: e.code.clone(),
                nominal: e.nominal,
                currency: e.currency.clone(),
                expires_at: e.expires_at,
                campaign: e.campaign.clone(),
                phone: e.phone.clone(),
                account: e.account,
                status: e.state,
                cvc_phone: None,
                order_id: None,
                payment_id: None,
                client_id: None,
                cvc: None,
                failed_cvc_attempts: 0,
                locked_until: None,
                open: BTreeMap::new(),
                closing: None,
                issued_at: e.at,
                version: 1,
            });
            return;
        }
        let id = event.certificate();
        let c = self.certificates.get_mut(&id).expect("events name issued certificates");
        c.version += 1;
        c.status = event.state();
        match event {
            Event::Issued(_) => unreachable!("handled above"),
            Event::Activated(e) => {
                c.order_id = Some(e.order_id.clone());
                c.payment_id = Some(e.payment_id.clone());
                c.client_id = e.client_id.clone();
                c.cvc_phone = Some(e.phone.clone());
                c.cvc = Some(e.cvc.clone());
            }
            Event::CvcRefused(e) => {
                c.failed_cvc_attempts = e.failed_attempts;
                c.locked_until = e.locked_until.or(c.locked_until);
            }
            Event::Authorized(e) => {
                c.failed_cvc_attempts = 0;
                c.open.insert(e.operation_id.clone(), e.amount);
            }
            Event::Captured(e) | Event::AuthorizationVoided(e) => {
                c.open.remove(&e.operation_id);
            }
            Event::CaptureVoided(_) => {}
            Event::Refunded(e) | Event::Cancelled(e) => {
                let kind = if matches!(event, Event::Refunded(_)) {
                    OperationKind::Refund
                } else {
                    OperationKind::Cancellation
                };
                c.closing = Some(Closing {
                    kind,
                    operation_id: e.operation_id.clone(),
                    amount: e.amount,
                    transfer: e.transfer,
                    reason: e.reason.clone(),
                    at: e.at,
                });
            }
            Event::Expired(_) => {}
        }
        if c.status.is_final()
            && let Some(at) = c.expires_at
        {
            self.deadlines.remove(&(at, id));
        }
    }

    /// A certificate's events change its own row only.
    fn touched(&self, _: &Event, _: &mut Vec<Touched>) {}

    fn version(&self, entity: EntityRef) -> Option<u32> {
        self.get(CertificateId(entity.id)).map(|c| c.version)
    }

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        self.get(CertificateId(entity.id)).map(row)
    }

    fn rows(&self) -> Vec<EntityRow> {
        self.certificates.values().map(row).collect()
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let certificate: Certificate = stored.parse().map_err(|e| e.to_string())?;
        if certificate.id.0 != stored.id || certificate.code != stored.key || certificate.version != stored.version {
            return Err(format!("row {} does not match the certificate it holds", stored.key));
        }
        self.insert(certificate);
        Ok(())
    }
}

fn row(c: &Certificate) -> EntityRow {
    EntityRow {
        kind: KIND.to_owned(),
        id: c.id.0,
        key: c.code.clone(),
        version: c.version,
        // A struct of strings, numbers and maps always serializes.
        state: serde_json::to_string(c).expect("certificates serialize").into(),
        typed: Typed::of(c.clone()),
    }
}
