//! A run's itemised result, from the matching's outcomes: one item per outcome, the items of
//! earlier runs still open carried over into it, the run's totals, and the hashes of what it
//! read and found. Pure: the runtime hands in the statement lines, the ledger's entries and the
//! open items, stores what comes out beside the log, and records the totals and hashes in the
//! run's `RunCompleted` event, so the result can be recomputed and checked.
//!
//! Carry-over: an open item's lines and entries join the run's inputs. An outcome that matches
//! any of them closes those items as matched late, by this run (`late`), and is an item of this
//! run naming them (`carried`). An outcome left unmatched whose inputs all come from one open
//! item, as that item had them, leaves the item open as it was (nothing new is written for it).
//! Any other outcome touching an open item's inputs supersedes that item: it is closed, and the
//! new item of this run (open) names it. A new line or entry with the id of one an open item
//! holds is the same one reported again: the open item's copy stands.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::command::Totals;
use super::matching::{Entry, Line, Outcome, reconcile};
use super::rule::Rule;
use crate::ids::RunId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Matched,
    AmountMismatch,
    MissingInLedger,
    MissingAtProvider,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Matched => "matched",
            ItemKind::AmountMismatch => "amount_mismatch",
            ItemKind::MissingInLedger => "missing_in_ledger",
            ItemKind::MissingAtProvider => "missing_at_provider",
        }
    }
}

/// An item of an earlier run still open: its lines and entries as it holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenItem {
    pub id: Uuid,
    pub kind: ItemKind,
    pub lines: Vec<Line>,
    pub entries: Vec<Entry>,
}

/// An item a run found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: Uuid,
    /// Its place in the run's result, from 0.
    pub seq: u32,
    pub kind: ItemKind,
    /// The rule that matched (or nearly matched) it.
    pub rule: Option<String>,
    pub lines: Vec<Line>,
    pub entries: Vec<Entry>,
    /// `line − entry` of an amount mismatch.
    pub difference: Option<Decimal>,
    /// The open items of earlier runs it matched late or superseded.
    pub carried: Vec<Uuid>,
}

impl Item {
    /// Whether it waits for a later run or an operator (everything but a match).
    pub fn open(&self) -> bool {
        self.kind != ItemKind::Matched
    }
}

/// What becomes of an open item of an earlier run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// Matched late by this run.
    Matched,
    /// Replaced by an item of this run.
    Superseded,
}

/// A run's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Assembled {
    pub items: Vec<Item>,
    /// Open items of earlier runs closed by this run, with the item of this run that did it.
    pub closed: Vec<(Uuid, Closed, Uuid)>,
    pub totals: Totals,
    pub lines_hash: String,
    pub items_hash: String,
}

/// The id of a run's `seq`-th item.
pub fn item_id(run: RunId, seq: u32) -> Uuid {
    Uuid::new_v5(&run.0, format!("item:{seq}").as_bytes())
}

/// Which open item an input came from (none: this run's own).
#[derive(Clone, Copy)]
enum Source {
    New,
    Carried(usize),
}

/// Matches `lines` and `entries` (this run's) with the open items' by `rules`, as the module
/// documents.
pub fn assemble(
    run: RunId,
    lines: &[Line],
    entries: &[Entry],
    open: &[OpenItem],
    rules: &[(String, Rule)],
) -> Assembled {
    let mut all_lines: Vec<Line> = Vec::with_capacity(lines.len());
    let mut all_entries: Vec<Entry> = Vec::with_capacity(entries.len());
    let mut line_from: HashMap<String, Source> = HashMap::new();
    let mut entry_from: HashMap<Uuid, Source> = HashMap::new();
    for (n, item) in open.iter().enumerate() {
        for l in &item.lines {
            if line_from.insert(l.id.clone(), Source::Carried(n)).is_none() {
                all_lines.push(l.clone());
            }
        }
        for e in &item.entries {
            if entry_from.insert(e.id, Source::Carried(n)).is_none() {
                all_entries.push(e.clone());
            }
        }
    }
    let mut new_lines = 0u64;
    for l in lines {
        if !line_from.contains_key(&l.id) {
            line_from.insert(l.id.clone(), Source::New);
            all_lines.push(l.clone());
            new_lines += 1;
        }
    }
    let mut new_entries = 0u64;
    for e in entries {
        if let std::collections::hash_map::Entry::Vacant(v) = entry_from.entry(e.id) {
            v.insert(Source::New);
            all_entries.push(e.clone());
            new_entries += 1;
        }
    }
    let by_line: HashMap<&str, &Line> = all_lines.iter().map(|l| (l.id.as_str(), l)).collect();
    let by_entry: HashMap<Uuid, &Entry> = all_entries.iter().map(|e| (e.id, e)).collect();

    let mut items = Vec::new();
    let mut closed = Vec::new();
    let mut totals =
        Totals { lines: new_lines, entries: new_entries, carried_over: open.len() as u64, ..Totals::default() };
    for outcome in reconcile(&all_lines, &all_entries, rules) {
        let (kind, rule, line_ids, entry_ids, difference) = match outcome {
            Outcome::Matched { rule, lines, entries } => (ItemKind::Matched, Some(rule), lines, entries, None),
            Outcome::AmountMismatch { rule, line, entry, difference } => {
                (ItemKind::AmountMismatch, Some(rule), vec![line], vec![entry], Some(difference))
            }
            Outcome::MissingInLedger { line } => (ItemKind::MissingInLedger, None, vec![line], Vec::new(), None),
            Outcome::MissingAtProvider { entry } => (ItemKind::MissingAtProvider, None, Vec::new(), vec![entry], None),
        };
        let sources: Vec<Source> =
            line_ids.iter().map(|l| line_from[l.as_str()]).chain(entry_ids.iter().map(|e| entry_from[e])).collect();
        let mut carried: Vec<usize> = sources
            .iter()
            .filter_map(|s| match s {
                Source::Carried(n) => Some(*n),
                Source::New => None,
            })
            .collect();
        carried.sort_unstable();
        carried.dedup();
        // Left as it was: unmatched, every input from one open item, which holds just these.
        if kind != ItemKind::Matched
            && let [n] = carried[..]
            && sources.iter().all(|s| matches!(s, Source::Carried(_)))
            && open[n].kind == kind
            && open[n].lines.len() == line_ids.len()
            && open[n].entries.len() == entry_ids.len()
        {
            continue;
        }
        let seq = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let id = item_id(run, seq);
        let how = if kind == ItemKind::Matched { Closed::Matched } else { Closed::Superseded };
        for &n in &carried {
            closed.push((open[n].id, how, id));
        }
        if how == Closed::Matched {
            totals.late_matched += carried.len() as u64;
        }
        match kind {
            ItemKind::Matched => totals.matched += 1,
            ItemKind::AmountMismatch => totals.amount_mismatch += 1,
            ItemKind::MissingInLedger => totals.missing_in_ledger += 1,
            ItemKind::MissingAtProvider => totals.missing_at_provider += 1,
        }
        items.push(Item {
            id,
            seq,
            kind,
            rule,
            lines: line_ids.iter().map(|l| by_line[l.as_str()].clone()).collect(),
            entries: entry_ids.iter().map(|e| by_entry[e].clone()).collect(),
            difference,
            carried: carried.iter().map(|&n| open[n].id).collect(),
        });
    }
    let items_hash = items_hash(&items, &closed);
    Assembled { items, closed, totals, lines_hash: lines_hash(lines), items_hash }
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the statement lines a run read, in the order read: one canonical JSON line each.
pub fn lines_hash(lines: &[Line]) -> String {
    let mut h = Sha256::new();
    for l in lines {
        // Lines are strings, decimals and a map of strings: they always serialize.
        h.update(serde_json::to_vec(l).expect("lines serialize"));
        h.update(b"\n");
    }
    hex(h.finalize())
}

/// SHA-256 of a run's items and of the open items it closed, as canonical JSON lines.
pub fn items_hash(items: &[Item], closed: &[(Uuid, Closed, Uuid)]) -> String {
    let mut h = Sha256::new();
    for item in items {
        h.update(serde_json::to_vec(item).expect("items serialize"));
        h.update(b"\n");
    }
    let closed: BTreeMap<Uuid, (Closed, Uuid)> = closed.iter().map(|(a, c, b)| (*a, (*c, *b))).collect();
    h.update(serde_json::to_vec(&closed).expect("closings serialize"));
    hex(h.finalize())
}

/// The ids of an item's lines and entries, for a reader's filters and the CSV report.
pub fn ids(item: &Item) -> (Vec<&str>, Vec<Uuid>) {
    (item.lines.iter().map(|l| l.id.as_str()).collect(), item.entries.iter().map(|e| e.id).collect())
}

#[cfg(test)]
mod tests;
