//! Gift certificates as the writer holds them, and as the store keeps them: one entity row per
//! certificate (`kind = "certificate"`, keyed by code) and one per operation
//! (`kind = "certificate_operation"`, keyed by code and operation id), so what a command
//! writes does not grow with the certificate's history.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::SealedCvc;
use super::event::Event;
use super::{KIND, OPERATION_KIND, operation_ref};
use crate::domain::{DomainState, EntityRef, EntityRow, Subject, Touched};
use crate::ids::{AccountId, CertificateId, Timestamp, TransferId};
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

/// One operation on a certificate, by its `operation_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How many events changed the operation.
    pub version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// In memory, every operation by id; stored in rows of their own (a certificate row that
    /// still carries them was written before that, and is refused at load).
    #[serde(default, skip_serializing)]
    pub operations: BTreeMap<String, Operation>,
    pub issued_at: Timestamp,
    pub version: u32,
}

impl Certificate {
    /// Authorizations still holding money.
    pub fn open_authorizations(&self) -> impl Iterator<Item = (&String, &Operation)> {
        self.operations.iter().filter(|(_, op)| op.status == OperationStatus::Open)
    }

    pub fn entity(&self) -> EntityRef {
        EntityRef { kind: KIND, id: self.id.0 }
    }
}

/// A stored operation row: the operation with its certificate and id.
#[derive(Serialize)]
struct OperationRowOut<'a> {
    certificate: CertificateId,
    operation_id: &'a str,
    operation: &'a Operation,
}

#[derive(Deserialize)]
struct OperationRowIn {
    certificate: CertificateId,
    operation_id: String,
    operation: Operation,
}

/// Every certificate, with the expiry deadlines of those not yet final.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    certificates: HashMap<CertificateId, Certificate>,
    deadlines: BTreeSet<(Timestamp, CertificateId)>,
    /// Each operation's entity id: its certificate and operation id.
    operations: HashMap<uuid::Uuid, (CertificateId, String)>,
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

    const KINDS: &'static [&'static str] = &[KIND, OPERATION_KIND];

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
                operations: BTreeMap::new(),
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
                c.operations.insert(
                    e.operation_id.clone(),
                    Operation {
                        kind: OperationKind::Authorization,
                        amount: e.amount,
                        captured: None,
                        status: OperationStatus::Open,
                        transfer: e.transfer,
                        reason: None,
                        at: e.at,
                        version: 1,
                    },
                );
                self.operations.insert(operation_ref(id, &e.operation_id).id, (id, e.operation_id.clone()));
            }
            Event::Captured(e) => {
                let op = c.operations.get_mut(&e.operation_id).expect("captures name authorizations");
                op.status = OperationStatus::Captured;
                op.captured = Some(e.amount);
                op.version += 1;
            }
            Event::AuthorizationVoided(e) => {
                let op = c.operations.get_mut(&e.operation_id).expect("voids name authorizations");
                op.status = OperationStatus::Voided;
                op.version += 1;
            }
            Event::CaptureVoided(e) => {
                let op = c.operations.get_mut(&e.operation_id).expect("voids name authorizations");
                op.status = OperationStatus::CaptureVoided;
                op.version += 1;
            }
            Event::Refunded(e) | Event::Cancelled(e) => {
                let kind = if matches!(event, Event::Refunded(_)) {
                    OperationKind::Refund
                } else {
                    OperationKind::Cancellation
                };
                c.operations.insert(
                    e.operation_id.clone(),
                    Operation {
                        kind,
                        amount: e.amount,
                        captured: None,
                        status: OperationStatus::Done,
                        transfer: e.transfer,
                        reason: e.reason.clone(),
                        at: e.at,
                        version: 1,
                    },
                );
                self.operations.insert(operation_ref(id, &e.operation_id).id, (id, e.operation_id.clone()));
            }
            Event::Expired(_) => {}
        }
        if c.status.is_final()
            && let Some(at) = c.expires_at
        {
            self.deadlines.remove(&(at, id));
        }
    }

    /// An event about an operation changes the operation's row too.
    fn touched(&self, event: &Event, out: &mut Vec<Touched>) {
        if let (Some(operation_id), false) = (event.operation_id(), matches!(event, Event::CvcRefused(_))) {
            out.push(Touched {
                subject: Subject::Entity(operation_ref(event.certificate(), operation_id)),
                moves: true,
            });
        }
    }

    fn version(&self, entity: EntityRef) -> Option<u32> {
        match entity.kind {
            OPERATION_KIND => self.operation(entity.id).map(|(_, _, op)| op.version),
            _ => self.get(CertificateId(entity.id)).map(|c| c.version),
        }
    }

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            OPERATION_KIND => self.operation(entity.id).map(|(c, id, op)| operation_row(c, id, op)),
            _ => self.get(CertificateId(entity.id)).map(row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        let operations =
            self.certificates.values().flat_map(|c| c.operations.iter().map(move |(id, op)| operation_row(c, id, op)));
        self.certificates.values().map(row).chain(operations).collect()
    }

    /// Rows come back in the order their entities were created, so a certificate before its
    /// operations.
    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        if stored.kind == OPERATION_KIND {
            let row: OperationRowIn = stored.parse().map_err(|e| e.to_string())?;
            let entity = operation_ref(row.certificate, &row.operation_id);
            let Some(c) = self.certificates.get_mut(&row.certificate) else {
                return Err(format!("operation {} of a certificate not loaded before it", stored.key));
            };
            if entity.id != stored.id
                || stored.key != operation_key(&c.code, &row.operation_id)
                || row.operation.version != stored.version
            {
                return Err(format!("row {} does not match the operation it holds", stored.key));
            }
            c.operations.insert(row.operation_id.clone(), row.operation);
            self.operations.insert(entity.id, (row.certificate, row.operation_id));
            return Ok(());
        }
        let certificate: Certificate = stored.parse().map_err(|e| e.to_string())?;
        if certificate.id.0 != stored.id || certificate.code != stored.key || certificate.version != stored.version {
            return Err(format!("row {} does not match the certificate it holds", stored.key));
        }
        if !certificate.operations.is_empty() {
            return Err(format!("row {} holds its operations: written before they had rows of their own", stored.key));
        }
        self.insert(certificate);
        Ok(())
    }
}

impl State {
    /// An operation by its entity id: its certificate, operation id and state.
    fn operation(&self, entity: uuid::Uuid) -> Option<(&Certificate, &str, &Operation)> {
        let (certificate, operation_id) = self.operations.get(&entity)?;
        let c = self.certificates.get(certificate)?;
        c.operations.get(operation_id).map(|op| (c, operation_id.as_str(), op))
    }
}

/// An operation's natural key: its certificate's code and its id.
fn operation_key(code: &str, operation_id: &str) -> String {
    format!("{code}/{operation_id}")
}

fn operation_row(c: &Certificate, operation_id: &str, op: &Operation) -> EntityRow {
    let stored = OperationRowOut { certificate: c.id, operation_id, operation: op };
    EntityRow {
        kind: OPERATION_KIND.to_owned(),
        id: operation_ref(c.id, operation_id).id,
        key: operation_key(&c.code, operation_id),
        version: op.version,
        // A struct of strings and numbers always serializes.
        state: serde_json::to_string(&stored).expect("operations serialize").into(),
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
    }
}
