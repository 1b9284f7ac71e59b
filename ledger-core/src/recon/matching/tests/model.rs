//! The engine against a deliberately simple reading of the contract: every line compared with
//! every entry, every group found by scanning, no index. Small random statements with many
//! collisions (equal keys, near amounts, shared prefixes) must reconcile exactly alike.

use proptest::prelude::*;

use super::*;
use crate::recon::rule::{Criterion, Field, Operator, Strategy as Shape, Tolerance};

/// A line or an entry as the model reads it.
struct Thing<'a> {
    amount: Decimal,
    currency: &'a str,
    reference: &'a str,
    micros: i64,
    metadata: &'a BTreeMap<String, String>,
}

fn of_line(l: &Line) -> Thing<'_> {
    Thing { amount: l.amount, currency: &l.currency, reference: &l.reference, micros: l.date.0, metadata: &l.metadata }
}

fn of_entry(e: &Entry) -> Thing<'_> {
    Thing { amount: e.amount, currency: &e.currency, reference: &e.reference, micros: e.date.0, metadata: &e.metadata }
}

#[derive(Clone, Copy, PartialEq)]
enum V<'a> {
    Number(Decimal),
    Whole(i64),
    Text(&'a str),
}

fn get<'a>(field: &Field, t: &Thing<'a>) -> Option<V<'a>> {
    Some(match field {
        Field::Amount => V::Number(t.amount),
        Field::Date => V::Whole(t.micros.div_euclid(1_000_000)),
        Field::Reference => V::Text(t.reference),
        Field::Currency => V::Text(t.currency),
        Field::Metadata(key) => V::Text(t.metadata.get(key)?),
    })
}

fn group_key<'a>(field: &Field, t: &Thing<'a>) -> Option<V<'a>> {
    match field {
        Field::Date => Some(V::Whole(t.micros.div_euclid(86_400_000_000))),
        _ => get(field, t),
    }
}

fn compare(c: &Criterion, line: V<'_>, entry: V<'_>) -> bool {
    match (c.operator, line, entry, c.tolerance) {
        (Operator::Equals, l, e, _) => l == e,
        (Operator::Within, V::Number(l), V::Number(e), Some(Tolerance::Amount(t))) => {
            l.checked_sub(e).is_some_and(|d| -t <= d && d <= t)
        }
        (Operator::Within, V::Whole(l), V::Whole(e), Some(Tolerance::Seconds(t))) => {
            l - e <= i64::from(t) && e - l <= i64::from(t)
        }
        (Operator::Contains, V::Text(l), V::Text(e), _) => !e.is_empty() && l.contains(e),
        (Operator::Prefix, V::Text(l), V::Text(e), _) => !e.is_empty() && l.starts_with(e),
        _ => panic!("a checked rule compares like values"),
    }
}

fn holds(c: &Criterion, line: &Thing<'_>, entry: &Thing<'_>) -> bool {
    match (get(&c.field, line), get(&c.field, entry)) {
        (Some(l), Some(e)) => compare(c, l, e),
        _ => false,
    }
}

fn distance(line: &Thing<'_>, entry: &Thing<'_>) -> (bool, Decimal, u64) {
    match line.amount.checked_sub(entry.amount) {
        Some(d) => (false, d.abs(), line.micros.abs_diff(entry.micros)),
        None => (true, Decimal::ZERO, line.micros.abs_diff(entry.micros)),
    }
}

fn model(lines: &[Line], entries: &[Entry], rules: &[(String, Rule)]) -> Vec<Outcome> {
    let ls: Vec<Thing<'_>> = lines.iter().map(of_line).collect();
    let es: Vec<Thing<'_>> = entries.iter().map(of_entry).collect();
    let mut line_taken = vec![false; ls.len()];
    let mut entry_taken = vec![false; es.len()];
    let mut found: Vec<(usize, Outcome)> = Vec::new();
    let is_amount = |c: &&Criterion| c.field == Field::Amount;
    for (name, rule) in rules {
        let (amounts, others): (Vec<&Criterion>, Vec<&Criterion>) = rule.criteria().iter().partition(is_amount);
        match rule.strategy() {
            Shape::OneToOne => {
                for l in 0..ls.len() {
                    let best = (0..es.len())
                        .filter(|&e| !line_taken[l] && !entry_taken[e])
                        .filter(|&e| rule.criteria().iter().all(|c| holds(c, &ls[l], &es[e])))
                        .min_by_key(|&e| (distance(&ls[l], &es[e]), e));
                    if let Some(e) = best {
                        line_taken[l] = true;
                        entry_taken[e] = true;
                        let outcome = Outcome::Matched {
                            rule: name.clone(),
                            lines: vec![lines[l].id.clone()],
                            entries: vec![entries[e].id],
                        };
                        found.push((l, outcome));
                    }
                }
            }
            Shape::OneToMany => {
                let field = rule.group_by().unwrap();
                for l in 0..ls.len() {
                    let Some(k) = group_key(field, &ls[l]).filter(|_| !line_taken[l]) else { continue };
                    let group: Vec<usize> =
                        (0..es.len()).filter(|&e| !entry_taken[e] && group_key(field, &es[e]) == Some(k)).collect();
                    let sum = group.iter().try_fold(Decimal::ZERO, |s, &e| s.checked_add(es[e].amount));
                    let ok = !group.is_empty()
                        && sum.is_some_and(|sum| {
                            amounts.iter().all(|c| compare(c, V::Number(ls[l].amount), V::Number(sum)))
                        })
                        && group.iter().all(|&e| others.iter().all(|c| holds(c, &ls[l], &es[e])));
                    if ok {
                        line_taken[l] = true;
                        group.iter().for_each(|&e| entry_taken[e] = true);
                        let ids = group.iter().map(|&e| entries[e].id).collect();
                        found.push((
                            l,
                            Outcome::Matched { rule: name.clone(), lines: vec![lines[l].id.clone()], entries: ids },
                        ));
                    }
                }
            }
            Shape::ManyToOne => {
                let field = rule.group_by().unwrap();
                for e in 0..es.len() {
                    let Some(k) = group_key(field, &es[e]).filter(|_| !entry_taken[e]) else { continue };
                    let group: Vec<usize> =
                        (0..ls.len()).filter(|&l| !line_taken[l] && group_key(field, &ls[l]) == Some(k)).collect();
                    let sum = group.iter().try_fold(Decimal::ZERO, |s, &l| s.checked_add(ls[l].amount));
                    let ok = !group.is_empty()
                        && sum.is_some_and(|sum| {
                            amounts.iter().all(|c| compare(c, V::Number(sum), V::Number(es[e].amount)))
                        })
                        && group.iter().all(|&l| others.iter().all(|c| holds(c, &ls[l], &es[e])));
                    if ok {
                        entry_taken[e] = true;
                        group.iter().for_each(|&l| line_taken[l] = true);
                        let ids = group.iter().map(|&l| lines[l].id.clone()).collect();
                        found.push((
                            group[0],
                            Outcome::Matched { rule: name.clone(), lines: ids, entries: vec![entries[e].id] },
                        ));
                    }
                }
            }
        }
    }
    for (name, rule) in rules {
        let (amounts, others): (Vec<&Criterion>, Vec<&Criterion>) = rule.criteria().iter().partition(is_amount);
        if amounts.is_empty() || (others.is_empty() && rule.group_by().is_none()) {
            continue;
        }
        let same_key = |l: &Thing<'_>, e: &Thing<'_>| match rule.group_by() {
            Some(field) => group_key(field, l).is_some_and(|k| group_key(field, e) == Some(k)),
            None => true,
        };
        for l in 0..ls.len() {
            let best = (0..es.len())
                .filter(|&e| !line_taken[l] && !entry_taken[e])
                .filter(|&e| others.iter().all(|c| holds(c, &ls[l], &es[e])) && same_key(&ls[l], &es[e]))
                .filter(|&e| ls[l].amount.checked_sub(es[e].amount).is_some())
                .filter(|&e| !amounts.iter().all(|c| holds(c, &ls[l], &es[e])))
                .min_by_key(|&e| (distance(&ls[l], &es[e]), e));
            if let Some(e) = best {
                line_taken[l] = true;
                entry_taken[e] = true;
                let difference = lines[l].amount - entries[e].amount;
                let outcome = Outcome::AmountMismatch {
                    rule: name.clone(),
                    line: lines[l].id.clone(),
                    entry: entries[e].id,
                    difference,
                };
                found.push((l, outcome));
            }
        }
    }
    for l in (0..ls.len()).filter(|&l| !line_taken[l]) {
        found.push((l, Outcome::MissingInLedger { line: lines[l].id.clone() }));
    }
    found.sort_by_key(|(l, _)| *l);
    let mut out: Vec<Outcome> = found.into_iter().map(|(_, o)| o).collect();
    out.extend((0..es.len()).filter(|&e| !entry_taken[e]).map(|e| Outcome::MissingAtProvider { entry: entries[e].id }));
    out
}

/// Rules that between them use every index (hash, window, substrings, prefixes) and strategy.
fn catalogue() -> Vec<serde_json::Value> {
    let c = |field: &str, operator: &str| json!({"field": field, "operator": operator});
    let within = |field: &str, tolerance: serde_json::Value| json!({"field": field, "operator": "within", "tolerance": tolerance});
    let group = |strategy: &str, by: &str, criteria: serde_json::Value| json!({"strategy": strategy, "group_by": by, "criteria": criteria});
    vec![
        one(json!([c("amount", "equals"), c("reference", "equals")])),
        one(json!([c("reference", "equals"), within("amount", json!("0.5"))])),
        one(json!([within("amount", json!("0.01")), within("date", json!(1))])),
        one(json!([within("date", json!(2)), c("currency", "equals")])),
        one(json!([within("date", json!(0)), c("amount", "equals"), c("metadata.k", "contains")])),
        one(json!([c("reference", "contains")])),
        one(json!([c("metadata.k", "prefix"), within("amount", json!("1"))])),
        one(json!([c("amount", "equals"), c("reference", "prefix")])),
        one(json!([c("date", "equals")])),
        one(json!([c("currency", "equals"), within("amount", json!("0.5"))])),
        group("one_to_many", "reference", json!([c("amount", "equals"), c("currency", "equals")])),
        group(
            "one_to_many",
            "date",
            json!([within("amount", json!("0.01")), within("date", json!(2)), c("reference", "prefix")]),
        ),
        group("many_to_one", "metadata.k", json!([c("amount", "equals"), c("reference", "contains")])),
        group("many_to_one", "currency", json!([within("amount", json!("1")), c("metadata.k", "equals")])),
    ]
}

const REFERENCES: [&str; 7] = ["", "A", "AB", "B", "xAB", "é", "Aé"];

/// Parts of a line or an entry: amount in hundredths, its scale, currency, reference, date, `k`.
type Parts = (i64, u32, bool, usize, i64, Option<usize>);

fn parts() -> impl proptest::strategy::Strategy<Value = Parts> {
    (-2i64..8, 1u32..3, proptest::bool::weighted(0.8), 0..REFERENCES.len(), 0i64..6, proptest::option::of(0..3usize))
}

fn thing(parts: &Parts) -> (Decimal, String, String, Timestamp, BTreeMap<String, String>) {
    let (hundredths, scale, euro, reference, slot, k) = *parts;
    let amount = Decimal::new(hundredths * 10i64.pow(scale), scale + 2);
    // Slots a second and a half apart, a day apart after the third.
    let date = Timestamp(slot * 1_500_000 + if slot > 2 { 86_400 * S } else { 0 });
    let metadata = k.map(|k| meta(&[("k", ["", "x", "xy"][k])])).unwrap_or_default();
    (amount, if euro { "EUR" } else { "USD" }.into(), REFERENCES[reference].into(), date, metadata)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn the_engine_agrees_with_the_model(
        line_parts in proptest::collection::vec(parts(), 0..9),
        entry_parts in proptest::collection::vec(parts(), 0..9),
        picks in proptest::collection::vec(0..14usize, 1..4),
    ) {
        let lines: Vec<Line> = line_parts.iter().enumerate().map(|(i, p)| {
            let (amount, currency, reference, date, metadata) = thing(p);
            Line { id: format!("l{i}"), amount, currency, reference, date, metadata }
        }).collect();
        let entries: Vec<Entry> = entry_parts.iter().enumerate().map(|(i, p)| {
            let (amount, currency, reference, date, metadata) = thing(p);
            Entry { id: Uuid::from_u128(u128::try_from(i).unwrap()), amount, currency, reference, date, metadata }
        }).collect();
        let catalogue = catalogue();
        let rules = rules(&picks.iter().map(|&p| catalogue[p].clone()).collect::<Vec<_>>());
        prop_assert_eq!(reconcile(&lines, &entries, &rules), model(&lines, &entries, &rules));
    }
}
