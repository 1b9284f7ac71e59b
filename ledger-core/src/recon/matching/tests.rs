//! Table tests of the contract, one `check(lines, entries, rules, expect)` per case; `model`
//! checks the engine against a deliberately simple quadratic reading of the same contract.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::recon::rule::RuleSpec;

mod model;

const S: i64 = Timestamp::MICROS_PER_SECOND;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

/// A EUR line at `seconds` past the epoch.
fn line(id: &str, amount: &str, reference: &str, seconds: i64) -> Line {
    Line {
        id: id.into(),
        amount: dec(amount),
        currency: "EUR".into(),
        reference: reference.into(),
        date: Timestamp(seconds * S),
        metadata: BTreeMap::new(),
    }
}

/// A EUR entry whose id is `n`.
fn entry(n: u128, amount: &str, reference: &str, seconds: i64) -> Entry {
    Entry {
        id: Uuid::from_u128(n),
        amount: dec(amount),
        currency: "EUR".into(),
        reference: reference.into(),
        date: Timestamp(seconds * S),
        metadata: BTreeMap::new(),
    }
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn rule(body: serde_json::Value) -> Rule {
    let spec: RuleSpec = serde_json::from_value(body).unwrap();
    Rule::check(&spec).unwrap()
}

/// Rules named `r1`, `r2`, … in order.
fn rules(bodies: &[serde_json::Value]) -> Vec<(String, Rule)> {
    bodies.iter().enumerate().map(|(i, body)| (format!("r{}", i + 1), rule(body.clone()))).collect()
}

/// A one-to-one rule with these criteria.
fn one(criteria: serde_json::Value) -> serde_json::Value {
    json!({"strategy": "one_to_one", "criteria": criteria})
}

/// Amount and reference equal: the most common rule.
fn exact() -> serde_json::Value {
    one(json!([{"field": "amount", "operator": "equals"}, {"field": "reference", "operator": "equals"}]))
}

/// An outcome in a line: `r1: a+b = 1+2`, `r1: a ~ 1 (-0.01)`, `ledger lacks a`, `provider lacks 1`.
fn render(outcome: &Outcome) -> String {
    let n = |id: &Uuid| id.as_u128().to_string();
    match outcome {
        Outcome::Matched { rule, lines, entries } => {
            format!("{rule}: {} = {}", lines.join("+"), entries.iter().map(n).collect::<Vec<_>>().join("+"))
        }
        Outcome::AmountMismatch { rule, line, entry, difference } => {
            format!("{rule}: {line} ~ {} ({difference})", n(entry))
        }
        Outcome::MissingInLedger { line } => format!("ledger lacks {line}"),
        Outcome::MissingAtProvider { entry } => format!("provider lacks {}", n(entry)),
    }
}

fn check(lines: &[Line], entries: &[Entry], rules: &[(String, Rule)], expect: &[&str]) {
    let got: Vec<String> = reconcile(lines, entries, rules).iter().map(render).collect();
    assert_eq!(got, expect);
}

#[test]
fn a_line_and_its_entry_match() {
    check(&[line("a", "100.00", "ref-1", 0)], &[entry(1, "100.00", "ref-1", 5)], &rules(&[exact()]), &["r1: a = 1"]);
}

#[test]
fn short_and_over_are_amount_mismatches_signed_line_minus_entry() {
    let lines = [line("short", "99.99", "ref-1", 0), line("over", "100.01", "ref-2", 0)];
    let entries = [entry(1, "100.00", "ref-1", 0), entry(2, "100.00", "ref-2", 0)];
    check(&lines, &entries, &rules(&[exact()]), &["r1: short ~ 1 (-0.01)", "r1: over ~ 2 (0.01)"]);
}

#[test]
fn what_matches_nothing_is_missing_on_its_side() {
    let lines = [line("a", "5", "ref-1", 0), line("b", "7", "ref-3", 0)];
    let entries = [entry(1, "6", "ref-2", 0), entry(2, "7", "ref-3", 0), entry(3, "8", "ref-4", 0)];
    check(
        &lines,
        &entries,
        &rules(&[exact()]),
        &["ledger lacks a", "r1: b = 2", "provider lacks 1", "provider lacks 3"],
    );
    check(
        &lines,
        &entries,
        &[],
        &["ledger lacks a", "ledger lacks b", "provider lacks 1", "provider lacks 2", "provider lacks 3"],
    );
    check(&[], &[], &rules(&[exact()]), &[]);
}

#[test]
fn amounts_are_exact_decimals() {
    let lines = [line("a", "1.0", "x", 0), line("b", "-0", "y", 0)];
    check(
        &lines,
        &[entry(1, "1.00", "x", 0), entry(2, "0.000", "y", 0)],
        &rules(&[exact()]),
        &["r1: a = 1", "r1: b = 2"],
    );
    // A window joins on amounts too: 1.0 within 0 of 1.00.
    let window = one(json!([{"field": "amount", "operator": "within", "tolerance": "0"}]));
    check(&[line("a", "1.0", "x", 0)], &[entry(1, "1.00", "y", 0)], &rules(&[window]), &["r1: a = 1"]);
}

#[test]
fn an_amount_tolerance_holds_at_its_boundary_and_not_one_unit_past() {
    let within = one(json!([
        {"field": "reference", "operator": "equals"},
        {"field": "amount", "operator": "within", "tolerance": "0.01"}]));
    let lines = [
        line("at", "100.01", "r-at", 0),
        line("below", "99.99", "r-below", 0),
        line("past", "100.02", "r-past", 0),
        line("barely", "99.989", "r-barely", 0),
    ];
    let entries = [
        entry(1, "100", "r-at", 0),
        entry(2, "100", "r-below", 0),
        entry(3, "100", "r-past", 0),
        entry(4, "100", "r-barely", 0),
    ];
    check(
        &lines,
        &entries,
        &rules(&[within]),
        &["r1: at = 1", "r1: below = 2", "r1: past ~ 3 (0.02)", "r1: barely ~ 4 (-0.011)"],
    );
}

#[test]
fn an_amount_window_without_equals_holds_at_its_boundary() {
    let within = one(json!([{"field": "amount", "operator": "within", "tolerance": "0.5"}]));
    let lines = [
        line("low", "9.5", "", 0),
        line("high", "20.5", "", 0),
        line("out", "30.51", "", 0),
        line("under", "-0.51", "", 0),
    ];
    let entries = [entry(1, "10", "", 0), entry(2, "20", "", 0), entry(3, "30", "", 0), entry(4, "0", "", 0)];
    check(
        &lines,
        &entries,
        &rules(&[within]),
        &[
            "r1: low = 1",
            "r1: high = 2",
            "ledger lacks out",
            "ledger lacks under",
            "provider lacks 3",
            "provider lacks 4",
        ],
    );
}

#[test]
fn a_window_within_each_bucket() {
    let near = one(
        json!([{"field": "currency", "operator": "equals"}, {"field": "amount", "operator": "within", "tolerance": "0.01"}]),
    );
    let usd = |l: Line| Line { currency: "USD".into(), ..l };
    let lines = [line("eur", "10", "", 0), usd(line("usd", "10", "", 0)), line("far", "10.02", "", 0)];
    let entries = [
        Entry { currency: "USD".into(), ..entry(1, "10.01", "", 0) },
        entry(2, "9.99", "", 0),
        entry(3, "10.04", "", 0),
    ];
    check(&lines, &entries, &rules(&[near]), &["r1: eur = 2", "r1: usd = 1", "r1: far ~ 3 (-0.02)"]);
}

#[test]
fn dates_compare_in_whole_seconds() {
    let at = |id: &str, micros: i64| Line { date: Timestamp(micros), ..line(id, "1", id, 0) };
    let on = |n: u128, reference: &str, micros: i64| Entry { date: Timestamp(micros), ..entry(n, "1", reference, 0) };
    let same_second =
        one(json!([{"field": "reference", "operator": "equals"}, {"field": "date", "operator": "equals"}]));
    let lines = [at("a", 10 * S), at("b", 11 * S - 1), at("c", -1)];
    let entries = [on(1, "a", 11 * S - 1), on(2, "b", 11 * S), on(3, "c", -S)];
    check(&lines, &entries, &rules(&[same_second]), &["r1: a = 1", "ledger lacks b", "r1: c = 3", "provider lacks 2"]);

    let minute = one(
        json!([{"field": "reference", "operator": "equals"}, {"field": "date", "operator": "within", "tolerance": 60}]),
    );
    let lines = [at("at", 0), at("past", 0), at("floored", S - 1), at("before", 100 * S)];
    let entries = [on(1, "at", 60 * S), on(2, "past", 61 * S), on(3, "floored", 61 * S - 1), on(4, "before", 40 * S)];
    check(
        &lines,
        &entries,
        &rules(&[minute]),
        &["r1: at = 1", "ledger lacks past", "r1: floored = 3", "r1: before = 4", "provider lacks 2"],
    );
}

#[test]
fn a_date_window_without_equals_holds_at_its_boundary() {
    let minute = one(json!([{"field": "date", "operator": "within", "tolerance": "60"}]));
    let lines = [line("a", "1", "", 1000), line("b", "1", "", 2000), line("c", "1", "", 3000)];
    let entries = [entry(1, "2", "", 1060), entry(2, "3", "", 1939), entry(3, "4", "", 2940)];
    check(&lines, &entries, &rules(&[minute]), &["r1: a = 1", "ledger lacks b", "r1: c = 3", "provider lacks 2"]);
}

#[test]
fn contains_and_prefix_read_the_line_as_the_longer() {
    let contains =
        one(json!([{"field": "amount", "operator": "equals"}, {"field": "reference", "operator": "contains"}]));
    let lines = [
        line("a", "1", "PAYOUT ref-123 EUR", 0),
        line("b", "2", "ref", 0),
        line("c", "3", "REF-9", 0),
        line("d", "4", "x", 0),
    ];
    let entries =
        [entry(1, "1", "ref-123", 0), entry(2, "2", "ref-1", 0), entry(3, "3", "ref-9", 0), entry(4, "4", "", 0)];
    check(
        &lines,
        &entries,
        &rules(&[contains]),
        &[
            "r1: a = 1",
            "ledger lacks b",
            "ledger lacks c",
            "ledger lacks d",
            "provider lacks 2",
            "provider lacks 3",
            "provider lacks 4",
        ],
    );

    let prefix = one(json!([{"field": "amount", "operator": "equals"}, {"field": "reference", "operator": "prefix"}]));
    let lines = [line("a", "1", "ref-123/1", 0), line("b", "2", "x ref-2", 0), line("c", "3", "ref-3", 0)];
    let entries = [entry(1, "1", "ref-123", 0), entry(2, "2", "ref-2", 0), entry(3, "3", "", 0)];
    check(
        &lines,
        &entries,
        &rules(&[prefix]),
        &["r1: a = 1", "ledger lacks b", "ledger lacks c", "provider lacks 2", "provider lacks 3"],
    );
}

#[test]
fn text_only_rules_find_substrings_and_prefixes() {
    let contains = one(json!([{"field": "reference", "operator": "contains"}]));
    let lines = [line("a", "1", "née ORD-7 paid", 0), line("b", "1", "ORD-77", 0), line("c", "1", "ORD", 0)];
    let entries = [entry(1, "1", "ORD-77", 0), entry(2, "9", "ORD-7", 0), entry(3, "1", "é", 0)];
    // `a` contains both ORD-7 and é, and takes é, the closer amount.
    check(&lines, &entries, &rules(&[contains]), &["r1: a = 3", "r1: b = 1", "ledger lacks c", "provider lacks 2"]);

    let prefix = one(json!([{"field": "metadata.order", "operator": "prefix"}]));
    let with = |l: Line, order: &str| Line { metadata: meta(&[("order", order)]), ..l };
    let on = |e: Entry, order: &str| Entry { metadata: meta(&[("order", order)]), ..e };
    let lines = [with(line("a", "1", "", 0), "O-1/2"), line("b", "1", "", 0), with(line("c", "1", "", 0), "O-2é")];
    let entries = [on(entry(1, "1", "", 0), "O-2é"), on(entry(2, "1", "", 0), "O-1"), entry(3, "1", "", 0)];
    check(&lines, &entries, &rules(&[prefix]), &["r1: a = 2", "ledger lacks b", "r1: c = 1", "provider lacks 3"]);
}

#[test]
fn metadata_criteria_and_missing_keys() {
    let by_order =
        one(json!([{"field": "metadata.order", "operator": "equals"}, {"field": "amount", "operator": "equals"}]));
    let lines = [
        Line { metadata: meta(&[("order", "O-1")]), ..line("a", "5", "", 0) },
        Line { metadata: meta(&[("order", "O-2")]), ..line("b", "5", "", 0) },
        line("c", "5", "", 0),
        Line { metadata: meta(&[("other", "O-4")]), ..line("d", "5", "", 0) },
    ];
    let entries = [
        Entry { metadata: meta(&[("order", "O-1")]), ..entry(1, "5", "", 0) },
        entry(2, "5", "", 0),
        entry(3, "5", "", 0),
        Entry { metadata: meta(&[("order", "O-4")]), ..entry(4, "5", "", 0) },
    ];
    let all = ["r1: a = 1", "ledger lacks b", "ledger lacks c", "ledger lacks d"];
    let expect: Vec<&str> =
        all.into_iter().chain(["provider lacks 2", "provider lacks 3", "provider lacks 4"]).collect();
    check(&lines, &entries, &rules(&[by_order]), &expect);
}

#[test]
fn the_first_rule_wins_and_nothing_matches_twice() {
    let by_reference = exact();
    let by_amount = one(json!([{"field": "amount", "operator": "equals"}]));
    let lines = [line("a", "10", "ref-1", 0), line("b", "10", "ref-9", 0), line("c", "10", "ref-8", 0)];
    let entries = [entry(1, "10", "ref-2", 0), entry(2, "10", "ref-1", 0)];
    // `a` takes entry 2 by reference under r1; r2 then gives entry 1 to `b`, and `c` finds none.
    check(
        &lines,
        &entries,
        &rules(&[by_reference.clone(), by_amount.clone()]),
        &["r1: a = 2", "r2: b = 1", "ledger lacks c"],
    );
    // In the other order the amount rule takes both entries first, in line order.
    check(&lines, &entries, &rules(&[by_amount, by_reference]), &["r1: a = 1", "r1: b = 2", "ledger lacks c"]);
}

#[test]
fn the_closest_candidate_wins_then_the_earliest() {
    let by_reference = one(json!([{"field": "reference", "operator": "equals"}]));
    let lines = [line("a", "10", "x", 100)];
    // Smallest amount difference first, whatever the dates.
    let entries = [entry(1, "12", "x", 100), entry(2, "9", "x", 0), entry(3, "11.5", "x", 100)];
    check(
        &lines,
        &entries,
        &rules(std::slice::from_ref(&by_reference)),
        &["r1: a = 2", "provider lacks 1", "provider lacks 3"],
    );
    // Equal amount differences: the closest date, then the earliest entry.
    let entries = [entry(1, "11", "x", 50), entry(2, "9", "x", 131), entry(3, "11", "x", 70), entry(4, "9", "x", 70)];
    check(
        &lines,
        &entries,
        &rules(std::slice::from_ref(&by_reference)),
        &["r1: a = 3", "provider lacks 1", "provider lacks 2", "provider lacks 4"],
    );
    // Microseconds count in the choice though not in a date criterion.
    let at = |n: u128, micros: i64| Entry { date: Timestamp(micros), ..entry(n, "10", "x", 0) };
    let entries = [at(1, 100 * S + 2), at(2, 100 * S - 1), at(3, 100 * S + 1)];
    check(&lines, &entries, &rules(&[by_reference]), &["r1: a = 2", "provider lacks 1", "provider lacks 3"]);
}

#[test]
fn one_line_against_the_sum_of_its_group() {
    let batch = json!({"strategy": "one_to_many", "group_by": "reference", "criteria": [
        {"field": "amount", "operator": "equals"}, {"field": "currency", "operator": "equals"}]});
    let lines = [line("a", "100.00", "B-1", 0), line("b", "50", "B-2", 0), line("c", "30", "B-1", 0)];
    let entries = [
        entry(1, "60", "B-1", 0),
        entry(2, "20", "B-2", 0),
        entry(3, "40.0", "B-1", 0),
        entry(4, "20", "B-2", 0),
        entry(5, "1", "B-3", 0),
    ];
    // B-2 sums to 40, not 50; the group is all of B-2, never a subset.
    check(
        &lines,
        &entries,
        &rules(std::slice::from_ref(&batch)),
        &["r1: a = 1+3", "r1: b ~ 2 (30)", "ledger lacks c", "provider lacks 4", "provider lacks 5"],
    );
    // A member in another currency breaks its group's currency criterion.
    let entries = [entry(1, "60", "B-1", 0), Entry { currency: "USD".into(), ..entry(3, "40", "B-1", 0) }];
    check(&lines[..1], &entries, &rules(&[batch]), &["r1: a ~ 1 (40.00)", "provider lacks 3"]);
}

#[test]
fn many_lines_against_one_entry() {
    let payout = json!({"strategy": "many_to_one", "group_by": "metadata.payout", "criteria": [
        {"field": "amount", "operator": "within", "tolerance": "0.01"},
        {"field": "reference", "operator": "prefix"}]});
    let tagged = |l: Line, payout: &str| Line { metadata: meta(&[("payout", payout)]), ..l };
    let lines = [
        tagged(line("a", "10.00", "PO-1/a", 0), "P1"),
        tagged(line("b", "5", "PO-2/a", 0), "P2"),
        tagged(line("c", "20.01", "PO-1/b", 0), "P1"),
        line("d", "5", "PO-2/b", 0),
    ];
    let entries = [
        Entry { metadata: meta(&[("payout", "P1")]), ..entry(1, "30", "PO-1", 0) },
        Entry { metadata: meta(&[("payout", "P2")]), ..entry(2, "5", "PO-2", 0) },
    ];
    check(&lines, &entries, &rules(&[payout]), &["r1: a+c = 1", "r1: b = 2", "ledger lacks d"]);
}

#[test]
fn groups_by_day_and_every_member_must_pass() {
    let daily = json!({"strategy": "one_to_many", "group_by": "date", "criteria": [
        {"field": "amount", "operator": "equals"},
        {"field": "date", "operator": "within", "tolerance": 3600},
        {"field": "metadata.batch", "operator": "equals"}]});
    let day = 86_400;
    let b = |e: Entry, batch: &str| Entry { metadata: meta(&[("batch", batch)]), ..e };
    let l = |l: Line| Line { metadata: meta(&[("batch", "K")]), ..l };
    let lines = [
        l(line("a", "3", "", day + 1800)),
        l(line("b", "3", "", 2 * day + 1800)),
        l(line("c", "3", "", 3 * day + 1800)),
    ];
    let entries = [
        b(entry(1, "1", "", day), "K"),
        b(entry(2, "2", "", day + 3600), "K"),
        b(entry(3, "1", "", 2 * day), "K"),
        b(entry(4, "2", "", 2 * day + 5401), "K"), // past the hour
        b(entry(5, "1", "", 3 * day), "K"),
        b(entry(6, "2", "", 3 * day), "L"), // another batch
    ];
    check(
        &lines,
        &entries,
        &rules(&[daily]),
        &["r1: a = 1+2", "r1: b ~ 3 (2)", "r1: c ~ 5 (2)", "provider lacks 4", "provider lacks 6"],
    );
}

#[test]
fn a_group_lacking_a_value_or_a_sum_matches_nothing() {
    let batch = json!({"strategy": "one_to_many", "group_by": "reference", "criteria": [
        {"field": "amount", "operator": "equals"}, {"field": "metadata.k", "operator": "contains"}]});
    let lines = [Line { metadata: meta(&[("k", "xy")]), ..line("a", "3", "G", 0) }];
    let entries = [Entry { metadata: meta(&[("k", "x")]), ..entry(1, "1", "G", 0) }, entry(2, "2", "G", 0)];
    check(&lines, &entries, &rules(std::slice::from_ref(&batch)), &["r1: a ~ 1 (2)", "provider lacks 2"]);
    let entries = [
        Entry { metadata: meta(&[("k", "x")]), ..entry(1, "1", "G", 0) },
        Entry { metadata: meta(&[("k", "y")]), ..entry(2, "2", "G", 0) },
    ];
    check(&lines, &entries, &rules(std::slice::from_ref(&batch)), &["r1: a = 1+2"]);

    let max = Decimal::MAX.to_string();
    let tagged = |e: Entry, k: &str| Entry { metadata: meta(&[("k", k)]), ..e };
    let entries = [tagged(entry(1, &max, "G", 0), "x"), tagged(entry(2, &max, "G", 0), "y")];
    let lines = [Line { metadata: meta(&[("k", "xy")]), ..line("a", &max, "G", 0) }];
    check(&lines, &entries, &rules(&[batch]), &["ledger lacks a", "provider lacks 1", "provider lacks 2"]);
}

#[test]
fn a_mismatch_needs_an_amount_criterion_and_another_test() {
    let amount_only = one(json!([{"field": "amount", "operator": "equals"}]));
    let reference_only =
        one(json!([{"field": "reference", "operator": "equals"}, {"field": "currency", "operator": "equals"}]));
    let lines = [line("a", "1", "x", 0)];
    let entries = [entry(1, "2", "x", 0)];
    check(&lines, &entries, &rules(&[amount_only]), &["ledger lacks a", "provider lacks 1"]);
    check(&lines, &entries, &rules(&[reference_only]), &["r1: a = 1"]);
    // Mismatches follow the rules' order, after every rule has matched.
    let by_reference = exact();
    let by_date = one(json!([{"field": "amount", "operator": "equals"}, {"field": "date", "operator": "equals"}]));
    let lines = [line("a", "1", "x", 7), line("b", "3", "y", 9)];
    let entries = [entry(1, "2", "z", 7), entry(2, "2", "x", 8), entry(3, "3", "w", 9)];
    check(&lines, &entries, &rules(&[by_reference, by_date]), &["r1: a ~ 2 (-1)", "r2: b = 3", "provider lacks 1"]);
}

#[test]
fn an_unrepresentable_difference_is_no_mismatch() {
    let max = Decimal::MAX.to_string();
    let min = Decimal::MIN.to_string();
    check(
        &[line("a", &max, "x", 0)],
        &[entry(1, &min, "x", 0)],
        &rules(&[exact()]),
        &["ledger lacks a", "provider lacks 1"],
    );
    // Nor does it count as within any tolerance.
    let within = one(
        json!([{"field": "reference", "operator": "equals"}, {"field": "amount", "operator": "within", "tolerance": "1"}]),
    );
    check(
        &[line("a", &max, "x", 0)],
        &[entry(1, &min, "x", 0)],
        &rules(&[within]),
        &["ledger lacks a", "provider lacks 1"],
    );
    // As a choice it is the farthest.
    let by_reference = one(json!([{"field": "reference", "operator": "equals"}]));
    let entries = [entry(1, &min, "x", 0), entry(2, "0", "x", 1000)];
    check(&[line("a", &max, "x", 0)], &entries, &rules(&[by_reference]), &["r1: a = 2", "provider lacks 1"]);
}

#[test]
fn extreme_windows_saturate() {
    let max = Decimal::MAX.to_string();
    let min = Decimal::MIN.to_string();
    let wide = one(json!([{"field": "amount", "operator": "within", "tolerance": "1000000000000000000000000"}]));
    let lines = [line("top", &max, "", 0), line("bottom", &min, "", 0)];
    let entries = [entry(1, &min, "", 0), entry(2, &max, "", 0)];
    check(&lines, &entries, &rules(&[wide]), &["r1: top = 2", "r1: bottom = 1"]);
    let month = one(json!([{"field": "date", "operator": "within", "tolerance": 2_678_400}]));
    let at = |id: &str, micros: i64| Line { date: Timestamp(micros), ..line(id, "1", "", 0) };
    let on = |n: u128, micros: i64| Entry { date: Timestamp(micros), ..entry(n, "1", "", 0) };
    check(
        &[at("late", i64::MAX), at("early", i64::MIN)],
        &[on(1, i64::MIN), on(2, i64::MAX)],
        &rules(&[month]),
        &["r1: late = 2", "r1: early = 1"],
    );
}

#[test]
fn the_same_input_gives_the_same_output_in_any_order() {
    let lines: Vec<Line> =
        (0..40).map(|i| line(&format!("l{i}"), &format!("{}.00", i % 7), &format!("ref-{}", i % 11), i * 37)).collect();
    let entries: Vec<Entry> =
        (0..40).map(|i| entry(i, &format!("{}", i % 5), &format!("ref-{}", i % 13), i as i64 * 41)).collect();
    let rules = rules(&[
        exact(),
        one(json!([{"field": "amount", "operator": "within", "tolerance": "0.5"},
        {"field": "date", "operator": "within", "tolerance": 120}])),
    ]);
    let first = reconcile(&lines, &entries, &rules);
    assert_eq!(reconcile(&lines, &entries, &rules), first);
    assert!(first.iter().any(|o| matches!(o, Outcome::Matched { rule, .. } if rule == "r1")));
    assert!(first.iter().any(|o| matches!(o, Outcome::Matched { rule, .. } if rule == "r2")));

    // Unambiguous pairs (unique reference and amount) survive any input order.
    let lines: Vec<Line> = (0..30).map(|i| line(&format!("l{i}"), &format!("{i}"), &format!("ref-{i}"), 0)).collect();
    let entries: Vec<Entry> =
        (0..30).map(|i| entry(i, &format!("{}", if i % 4 == 0 { i + 1 } else { i }), &format!("ref-{i}"), 0)).collect();
    let rules = self::rules(&[exact()]);
    let sorted = |outcomes: Vec<Outcome>| {
        let mut rendered: Vec<String> = outcomes.iter().map(render).collect();
        rendered.sort();
        rendered
    };
    let forward = sorted(reconcile(&lines, &entries, &rules));
    let (mut lines_back, mut entries_back) = (lines.clone(), entries.clone());
    lines_back.reverse();
    entries_back.rotate_left(7);
    assert_eq!(sorted(reconcile(&lines_back, &entries_back, &rules)), forward);
    assert_eq!(forward.iter().filter(|o| o.contains(" = ")).count(), 22);
    assert_eq!(forward.iter().filter(|o| o.contains(" ~ ")).count(), 8);
}

#[test]
fn outcomes_follow_the_first_line_then_the_entries() {
    let batch = json!({"strategy": "many_to_one", "group_by": "reference", "criteria": [{"field": "amount", "operator": "equals"}]});
    let lines = [line("a", "1", "G", 0), line("b", "5", "H", 0), line("c", "2", "G", 0)];
    let entries = [entry(1, "9", "Z", 0), entry(2, "3", "G", 0)];
    check(&lines, &entries, &rules(&[batch]), &["r1: a+c = 2", "ledger lacks b", "provider lacks 1"]);
}
