//! Payout requests and payouts as the writer holds them, and as the store keeps them: one
//! entity row each (`payout_request`, `payout`, keyed by id). The `new` ones are queued in the
//! order they arrived, for the gates.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::event::Event;
use super::{PAYOUT_KIND, REQUEST_KIND};
use crate::domain::{DomainState, EntityRef, EntityRow, Touched, Typed};
use crate::ids::{AccountId, PayoutId, PayoutRequestId, Timestamp, TransferId};
use crate::money::{Currencies, CurrencyCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    New,
    Done,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    New,
    Sent,
    Failed,
    Paid,
    Rejected,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::New => "new",
            PayoutStatus::Sent => "sent",
            PayoutStatus::Failed => "failed",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: PayoutRequestId,
    pub client_id: String,
    pub status: RequestStatus,
    pub error: Option<String>,
    pub payouts: Vec<PayoutId>,
    /// Its place in the order requests arrived.
    pub seq: u64,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub id: PayoutId,
    pub request: PayoutRequestId,
    pub client_id: String,
    pub account: AccountId,
    pub amount: Decimal,
    pub currency: CurrencyCode,
    pub status: PayoutStatus,
    /// Why it failed or was rejected.
    pub reason: Option<String>,
    /// Set when sent: the cash-payment-fact, the `payout_sent` account and when.
    pub cash_payment_fact: Option<uuid::Uuid>,
    pub sent_account: Option<AccountId>,
    pub sent_at: Option<Timestamp>,
    /// The transfer that returned a rejected payout.
    pub returned_by: Option<TransferId>,
    pub seq: u64,
    pub at: Timestamp,
    pub version: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    requests: HashMap<PayoutRequestId, Request>,
    payouts: HashMap<PayoutId, Payout>,
    new_requests: BTreeMap<u64, PayoutRequestId>,
    new_payouts: BTreeMap<u64, PayoutId>,
    /// What the `new` payouts of each account will take from it: the request gate pays out
    /// only the rest, so money already on its way is never paid out twice.
    planned: HashMap<AccountId, Decimal>,
}

impl State {
    pub fn request(&self, id: PayoutRequestId) -> Option<&Request> {
        self.requests.get(&id)
    }

    pub fn payout(&self, id: PayoutId) -> Option<&Payout> {
        self.payouts.get(&id)
    }

    /// What the account's payouts not yet sent will take from it.
    pub fn planned(&self, account: AccountId) -> Decimal {
        self.planned.get(&account).copied().unwrap_or_default()
    }

    /// The oldest requests still `new`.
    pub fn new_requests(&self) -> impl Iterator<Item = &Request> {
        self.new_requests.values().map(|id| &self.requests[id])
    }

    /// The oldest payouts still `new`.
    pub fn new_payouts(&self) -> impl Iterator<Item = &Payout> {
        self.new_payouts.values().map(|id| &self.payouts[id])
    }

    fn insert_request(&mut self, request: Request) {
        if request.status == RequestStatus::New {
            self.new_requests.insert(request.seq, request.id);
        }
        self.requests.insert(request.id, request);
    }

    fn insert_payout(&mut self, payout: Payout) {
        if payout.status == PayoutStatus::New {
            self.new_payouts.insert(payout.seq, payout.id);
            *self.planned.entry(payout.account).or_default() += payout.amount;
        }
        self.payouts.insert(payout.id, payout);
    }

    fn request_mut(&mut self, id: PayoutRequestId) -> &mut Request {
        let r = self.requests.get_mut(&id).expect("events name requests in memory");
        r.version += 1;
        self.new_requests.remove(&r.seq);
        r
    }

    fn payout_mut(&mut self, id: PayoutId) -> &mut Payout {
        let p = self.payouts.get_mut(&id).expect("events name payouts in memory");
        p.version += 1;
        if self.new_payouts.remove(&p.seq).is_some() {
            let planned = self.planned.get_mut(&p.account).expect("new payouts are planned");
            *planned -= p.amount;
            if planned.is_zero() {
                self.planned.remove(&p.account);
            }
        }
        p
    }
}

impl DomainState for State {
    type Event = Event;

    const KINDS: &'static [&'static str] = &[REQUEST_KIND, PAYOUT_KIND];

    fn new(_: &Currencies) -> State {
        State::default()
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Requested(e) => {
                assert!(!self.requests.contains_key(&e.id), "payout request {} made twice", e.id);
                let seq = self.requests.len() as u64;
                self.insert_request(Request {
                    id: e.id,
                    client_id: e.client_id.clone(),
                    status: RequestStatus::New,
                    error: None,
                    payouts: Vec::new(),
                    seq,
                    at: e.at,
                    version: 1,
                });
            }
            Event::RequestDone(e) => {
                let r = self.request_mut(e.id);
                r.status = RequestStatus::Done;
                r.payouts.clone_from(&e.payouts);
            }
            Event::RequestFailed(e) => {
                let r = self.request_mut(e.id);
                r.status = RequestStatus::Error;
                r.error = Some(e.error.clone());
            }
            Event::Created(e) => {
                assert!(!self.payouts.contains_key(&e.id), "payout {} made twice", e.id);
                let seq = self.payouts.len() as u64;
                self.insert_payout(Payout {
                    id: e.id,
                    request: e.request,
                    client_id: e.client_id.clone(),
                    account: e.account,
                    amount: e.amount,
                    currency: e.currency.clone(),
                    status: PayoutStatus::New,
                    reason: None,
                    cash_payment_fact: None,
                    sent_account: None,
                    sent_at: None,
                    returned_by: None,
                    seq,
                    at: e.at,
                    version: 1,
                });
            }
            Event::Sent(e) => {
                let p = self.payout_mut(e.id);
                p.status = PayoutStatus::Sent;
                p.cash_payment_fact = Some(e.cash_payment_fact);
                p.sent_account = Some(e.sent_account);
                p.sent_at = Some(e.at);
            }
            Event::Failed(e) => {
                let p = self.payout_mut(e.id);
                p.status = PayoutStatus::Failed;
                p.reason.clone_from(&e.reason);
            }
            Event::Paid(e) => {
                let p = self.payout_mut(e.id);
                p.status = PayoutStatus::Paid;
                p.reason.clone_from(&e.reason);
            }
            Event::Rejected(e) => {
                let p = self.payout_mut(e.id);
                p.status = PayoutStatus::Rejected;
                p.reason.clone_from(&e.reason);
                p.returned_by = e.transfer;
            }
        }
    }

    /// A request's or payout's events change only its own row.
    fn touched(&self, _: &Event, _: &mut Vec<Touched>) {}

    fn version(&self, entity: EntityRef) -> Option<u32> {
        match entity.kind {
            REQUEST_KIND => self.request(PayoutRequestId(entity.id)).map(|r| r.version),
            _ => self.payout(PayoutId(entity.id)).map(|p| p.version),
        }
    }

    fn row(&self, entity: EntityRef) -> Option<EntityRow> {
        match entity.kind {
            REQUEST_KIND => self.request(PayoutRequestId(entity.id)).map(request_row),
            _ => self.payout(PayoutId(entity.id)).map(payout_row),
        }
    }

    fn rows(&self) -> Vec<EntityRow> {
        self.requests.values().map(request_row).chain(self.payouts.values().map(payout_row)).collect()
    }

    fn load(&mut self, stored: EntityRow) -> Result<(), String> {
        let matches = |id: uuid::Uuid, version: u32| {
            (id == stored.id && id.to_string() == stored.key && version == stored.version)
                .then_some(())
                .ok_or_else(|| format!("row {} does not match the {} it holds", stored.key, stored.kind))
        };
        if stored.kind == REQUEST_KIND {
            let request: Request = stored.parse().map_err(|e| e.to_string())?;
            matches(request.id.0, request.version)?;
            self.insert_request(request);
        } else {
            let payout: Payout = stored.parse().map_err(|e| e.to_string())?;
            matches(payout.id.0, payout.version)?;
            self.insert_payout(payout);
        }
        Ok(())
    }
}

fn request_row(r: &Request) -> EntityRow {
    EntityRow {
        kind: REQUEST_KIND.to_owned(),
        id: r.id.0,
        key: r.id.to_string(),
        version: r.version,
        // A struct of strings, numbers and ids always serializes.
        state: serde_json::to_string(r).expect("requests serialize").into(),
        typed: Typed::of(r.clone()),
    }
}

fn payout_row(p: &Payout) -> EntityRow {
    EntityRow {
        kind: PAYOUT_KIND.to_owned(),
        id: p.id.0,
        key: p.id.to_string(),
        version: p.version,
        state: serde_json::to_string(p).expect("payouts serialize").into(),
        typed: Typed::of(p.clone()),
    }
}
