//! A run's items: one per outcome, open items carried over and matched late or superseded or
//! left as they were, the totals, and hashes that change with what was read and found.

use std::str::FromStr;

use super::*;
use crate::ids::Timestamp;
use crate::recon::rule::{CriterionSpec, RuleSpec};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn line(id: &str, amount: &str, reference: &str) -> Line {
    Line {
        id: id.into(),
        amount: dec(amount),
        currency: "EUR".into(),
        reference: reference.into(),
        date: Timestamp(1_000_000),
        metadata: Default::default(),
    }
}

fn entry(n: u128, amount: &str, reference: &str) -> Entry {
    Entry {
        id: Uuid::from_u128(n),
        amount: dec(amount),
        currency: "EUR".into(),
        reference: reference.into(),
        date: Timestamp(1_000_000),
        metadata: Default::default(),
    }
}

/// Reference equal and amount within 0.01.
fn rules() -> Vec<(String, Rule)> {
    let spec = RuleSpec {
        strategy: "one_to_one".into(),
        group_by: None,
        criteria: vec![
            CriterionSpec { field: "reference".into(), operator: "equals".into(), tolerance: None },
            CriterionSpec { field: "amount".into(), operator: "within".into(), tolerance: Some("0.01".into()) },
        ],
    };
    vec![("by-ref".to_owned(), Rule::check(&spec).unwrap())]
}

fn run(n: u128) -> RunId {
    RunId(Uuid::from_u128(900 + n))
}

fn kinds(a: &Assembled) -> Vec<ItemKind> {
    a.items.iter().map(|i| i.kind).collect()
}

#[test]
fn each_outcome_is_one_item_counted_in_the_totals() {
    let lines = [line("l1", "10.00", "r1"), line("l2", "5.00", "r2"), line("l3", "7.00", "r3")];
    let entries = [entry(1, "10.01", "r1"), entry(2, "4.90", "r2"), entry(4, "3.00", "r4")];
    let a = assemble(run(1), &lines, &entries, &[], &rules());
    assert_eq!(
        kinds(&a),
        [ItemKind::Matched, ItemKind::AmountMismatch, ItemKind::MissingInLedger, ItemKind::MissingAtProvider]
    );
    assert_eq!(a.items[1].difference, Some(dec("0.10")));
    assert_eq!(a.items[0].rule.as_deref(), Some("by-ref"));
    assert_eq!((a.items[2].rule.clone(), a.items[3].entries[0].id), (None, Uuid::from_u128(4)));
    let t = a.totals;
    assert_eq!((t.lines, t.entries, t.matched, t.amount_mismatch), (3, 3, 1, 1));
    assert_eq!((t.missing_in_ledger, t.missing_at_provider, t.carried_over, t.late_matched), (1, 1, 0, 0));
    assert_eq!(
        a.items.iter().map(|i| (i.seq, i.id)).collect::<Vec<_>>(),
        (0..4).map(|s| (s, item_id(run(1), s))).collect::<Vec<_>>()
    );
    assert_eq!(a.items.iter().map(Item::open).collect::<Vec<_>>(), [false, true, true, true]);
    assert!(a.closed.is_empty());
}

#[test]
fn an_open_item_matched_by_a_later_run_is_closed_as_matched_by_it() {
    let first = assemble(run(1), &[line("l1", "10.00", "r1")], &[], &[], &rules());
    let open = OpenItem {
        id: first.items[0].id,
        kind: ItemKind::MissingInLedger,
        lines: first.items[0].lines.clone(),
        entries: vec![],
    };
    let second = assemble(run(2), &[], &[entry(1, "10.00", "r1")], std::slice::from_ref(&open), &rules());
    assert_eq!(kinds(&second), [ItemKind::Matched]);
    assert_eq!(second.items[0].carried, [open.id]);
    assert_eq!(second.closed, [(open.id, Closed::Matched, second.items[0].id)]);
    let t = second.totals;
    assert_eq!((t.lines, t.entries, t.matched, t.carried_over, t.late_matched), (0, 1, 1, 1, 1));
}

#[test]
fn an_open_item_still_unmatched_stays_as_it_was_and_one_changed_is_superseded() {
    let open = OpenItem {
        id: Uuid::from_u128(77),
        kind: ItemKind::MissingInLedger,
        lines: vec![line("l1", "10.00", "r1")],
        entries: vec![],
    };
    let still = assemble(run(2), &[line("l2", "1.00", "r2")], &[], std::slice::from_ref(&open), &rules());
    assert_eq!(kinds(&still), [ItemKind::MissingInLedger], "only the new line is a new item");
    assert_eq!(still.items[0].lines[0].id, "l2");
    assert!(still.closed.is_empty());
    assert_eq!((still.totals.carried_over, still.totals.late_matched, still.totals.missing_in_ledger), (1, 0, 1));
    // The line now nearly matches an entry: an amount mismatch of this run supersedes it.
    let changed = assemble(run(3), &[], &[entry(1, "9.00", "r1")], std::slice::from_ref(&open), &rules());
    assert_eq!(kinds(&changed), [ItemKind::AmountMismatch]);
    assert_eq!(changed.closed, [(open.id, Closed::Superseded, changed.items[0].id)]);
    assert_eq!((changed.totals.late_matched, changed.items[0].carried.clone()), (0, vec![open.id]));
}

#[test]
fn a_line_reported_again_is_the_open_items_and_read_once() {
    let open = OpenItem {
        id: Uuid::from_u128(77),
        kind: ItemKind::MissingInLedger,
        lines: vec![line("l1", "10.00", "r1")],
        entries: vec![],
    };
    let again = assemble(run(2), &[line("l1", "10.00", "r1")], &[], std::slice::from_ref(&open), &rules());
    assert!(again.items.is_empty(), "{again:?}");
    assert_eq!(again.totals.lines, 0);
    let entry_open = OpenItem {
        id: Uuid::from_u128(78),
        kind: ItemKind::MissingAtProvider,
        lines: vec![],
        entries: vec![entry(5, "2.00", "r5")],
    };
    let again = assemble(run(3), &[], &[entry(5, "2.00", "r5")], std::slice::from_ref(&entry_open), &rules());
    assert!(again.items.is_empty() && again.totals.entries == 0, "{again:?}");
}

#[test]
fn the_hashes_follow_what_was_read_and_found() {
    let lines = [line("l1", "10.00", "r1")];
    let entries = [entry(1, "10.00", "r1")];
    let a = assemble(run(1), &lines, &entries, &[], &rules());
    let b = assemble(run(1), &lines, &entries, &[], &rules());
    assert_eq!((a.lines_hash.len(), &a.lines_hash, &a.items_hash), (64, &b.lines_hash, &b.items_hash));
    let other = assemble(run(1), &[line("l1", "10.01", "r1")], &entries, &[], &rules());
    assert_ne!(other.lines_hash, a.lines_hash);
    assert_ne!(other.items_hash, a.items_hash);
    assert_ne!(assemble(run(2), &lines, &entries, &[], &rules()).items_hash, a.items_hash, "item ids are the run's");
    assert_eq!(lines_hash(&[]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let closed = [(Uuid::from_u128(1), Closed::Matched, Uuid::from_u128(2))];
    assert_ne!(items_hash(&a.items, &closed), a.items_hash);
    assert_eq!(ids(&a.items[0]), (vec!["l1"], vec![Uuid::from_u128(1)]));
    assert_eq!(ItemKind::AmountMismatch.as_str(), "amount_mismatch");
}
