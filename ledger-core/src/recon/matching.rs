//! The reconciliation matching engine: [`reconcile`] pairs a provider's statement lines with the
//! ledger's entries on that provider's accounts, by the operator's rules. It is pure: same
//! input, same output, no clock, no I/O.
//!
//! # The contract
//!
//! **Values.** A criterion compares a line's value of its field with an entry's. `amount` is an
//! exact decimal (`1.0` equals `1.00`); `date` is compared in whole seconds (the timestamp's
//! microseconds rounded down), so `equals` is "the same second" and `within` is
//! `|line − entry| ≤ tolerance` seconds; `reference`, `currency` and `metadata.<key>` are text,
//! compared exactly (no case folding, no trimming). `within` on amounts is
//! `|line − entry| ≤ tolerance`, exactly. `contains` holds when the line's value contains the
//! entry's, `prefix` when the line's value starts with the entry's; an empty entry value is no
//! evidence and never holds for either. A metadata key missing on either side never holds, for
//! any operator.
//!
//! **Rules in order.** Rules apply in the order given; an item (line or entry) matched by one
//! rule is never matched again, by that rule or a later one.
//!
//! - `one_to_one`: a line and an entry match when every criterion holds between them. Each line
//!   in input order takes, among the still-unmatched entries that satisfy every criterion, the
//!   one with the smallest `|amount difference|`, then the smallest `|date difference|` (in
//!   microseconds), then the earliest in input order.
//! - `one_to_many`: each still-unmatched line in input order is compared with its group: every
//!   still-unmatched entry whose `group_by` value equals the line's (`date` groups by UTC day).
//!   The group matches the line when every non-amount criterion holds between the line and each
//!   entry of the group, and every amount criterion holds between the line's amount and the
//!   group's sum. A group is all of those entries, never a subset; once matched it is gone, so a
//!   later line with the same key finds none. A group whose sum is not representable matches
//!   nothing.
//! - `many_to_one`: the mirror, each still-unmatched entry in input order against the group of
//!   still-unmatched lines sharing its `group_by` value. `contains` and `prefix` still read the
//!   line's value as the one that contains or starts with the entry's.
//!
//! An item without a value for a field the rule uses (a missing metadata key) matches nothing
//! under that rule.
//!
//! **Amount mismatches.** After all rules, for each rule in order that has an amount criterion
//! and at least one other test (a non-amount criterion, or for a group rule its group key: a
//! mismatch of a group rule is a line and an entry sharing the group's key), the
//! still-unmatched lines in input order are paired with the still-unmatched entries that pass
//! every one of those other tests but fail the rule's amount criteria, by the same choice as
//! `one_to_one`; each pair is an [`Outcome::AmountMismatch`] with
//! `difference = line.amount − entry.amount` (negative when the provider shows less). A pair
//! whose difference is not representable is not a mismatch.
//!
//! **Missing.** Every line still unmatched is [`Outcome::MissingInLedger`], every entry
//! [`Outcome::MissingAtProvider`].
//!
//! **Output order.** Every line is in exactly one outcome. The outcomes that name lines come
//! first, ordered by the input position of their first line; within an outcome, lines and
//! entries are in input order. Then [`Outcome::MissingAtProvider`] in entry input order.
//!
//! # Cost
//!
//! `O((lines + entries) · log(lines + entries))` per rule when keys are nearly unique, as
//! statement references and amounts are: no pass compares every line with every entry. For
//! each rule, and each mismatch pass, the untaken entries are indexed once: hashed by the values
//! of the rule's `equals` tests (one bucket when it has none), each bucket sorted by the value of
//! the rule's first `within` test when it has one. A line looks up its bucket, binary-searches
//! its window `[value − tolerance, value + tolerance]` there and walks it, skipping taken entries
//! in amortised near-constant time (a path-compressed "next untaken" link). A rule with neither
//! (only `contains`/`prefix`) indexes the entries by exact value, and a line looks up each of its
//! substrings (or prefixes) whose length some entry's value has. A line's cost is the number of
//! candidates its bucket's window or its substrings hold: one in the common case, the whole
//! bucket for a rule whose only joins are `equals` on a field few values share (`currency`
//! alone), where every candidate competes on amount and date. Groups are built in one pass and
//! summarised once (the sum; per criterion the set of the members' values), so that a single
//! item is checked against a group's least and greatest value for `equals` and `within`, and
//! against its distinct values for `contains` and `prefix`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use uuid::Uuid;

use super::rule::{Criterion, Field, Operator, Rule, Strategy, Tolerance};
use crate::ids::Timestamp;

/// A line of the provider's statement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    pub id: String,
    pub amount: Decimal,
    pub currency: String,
    pub reference: String,
    pub date: Timestamp,
    pub metadata: BTreeMap<String, String>,
}

/// A ledger transfer on the provider's account, its amount signed as the provider sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub reference: String,
    pub date: Timestamp,
    pub metadata: BTreeMap<String, String>,
}

/// What reconciliation concluded about some lines and entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Matched {
        rule: String,
        lines: Vec<String>,
        entries: Vec<Uuid>,
    },
    /// `difference` is `line.amount − entry.amount`.
    AmountMismatch {
        rule: String,
        line: String,
        entry: Uuid,
        difference: Decimal,
    },
    MissingInLedger {
        line: String,
    },
    MissingAtProvider {
        entry: Uuid,
    },
}

/// Applies `rules` (name, rule) in order to `lines` and `entries`, as the module documents.
pub fn reconcile(lines: &[Line], entries: &[Entry], rules: &[(String, Rule)]) -> Vec<Outcome> {
    let line_items: Vec<Item<'_>> = lines.iter().map(Line::item).collect();
    let entry_items: Vec<Item<'_>> = entries.iter().map(Entry::item).collect();
    let mut line_taken = vec![false; lines.len()];
    let mut entry_taken = vec![false; entries.len()];
    let plans: Vec<Plan<'_>> = rules.iter().map(|(_, rule)| Plan::of(rule)).collect();
    // Each outcome naming lines, beside the input position of its first line.
    let mut found: Vec<(usize, Outcome)> = Vec::new();
    let matched = |rule: &str, ls: &[usize], es: &[usize]| Outcome::Matched {
        rule: rule.to_owned(),
        lines: ls.iter().map(|&l| lines[l].id.clone()).collect(),
        entries: es.iter().map(|&e| entries[e].id).collect(),
    };

    for ((name, rule), plan) in rules.iter().zip(&plans) {
        match rule.strategy() {
            Strategy::OneToOne => {
                let pairs =
                    pair_off(&line_items, &mut line_taken, &entry_items, &mut entry_taken, &plan.all, |_, _| true);
                found.extend(pairs.into_iter().map(|(l, e)| (l, matched(name, &[l], &[e]))));
            }
            Strategy::OneToMany => {
                let groups =
                    match_groups(&line_items, &mut line_taken, &entry_items, &mut entry_taken, plan, Side::Line);
                found.extend(groups.into_iter().map(|(l, es)| (l, matched(name, &[l], &es))));
            }
            Strategy::ManyToOne => {
                let groups =
                    match_groups(&entry_items, &mut entry_taken, &line_items, &mut line_taken, plan, Side::Entry);
                found.extend(groups.into_iter().map(|(e, ls)| (ls[0], matched(name, &ls, &[e]))));
            }
        }
    }

    for ((name, _), plan) in rules.iter().zip(&plans) {
        let tests: Vec<Test<'_>> = plan.others.iter().chain(&plan.key).copied().collect();
        if plan.amount.is_empty() || tests.is_empty() {
            continue;
        }
        let mismatched = |line: &Item<'_>, entry: &Item<'_>| {
            line.amount.checked_sub(entry.amount).is_some() && !plan.amount.iter().all(|t| t.holds_between(line, entry))
        };
        for (l, e) in pair_off(&line_items, &mut line_taken, &entry_items, &mut entry_taken, &tests, mismatched) {
            let difference =
                lines[l].amount.checked_sub(entries[e].amount).expect("a mismatch's difference was checked");
            let outcome = Outcome::AmountMismatch {
                rule: name.clone(),
                line: lines[l].id.clone(),
                entry: entries[e].id,
                difference,
            };
            found.push((l, outcome));
        }
    }

    let missing = line_taken.iter().enumerate().filter(|(_, taken)| !**taken);
    found.extend(missing.map(|(l, _)| (l, Outcome::MissingInLedger { line: lines[l].id.clone() })));
    found.sort_by_key(|(first_line, _)| *first_line);
    let mut outcomes: Vec<Outcome> = found.into_iter().map(|(_, outcome)| outcome).collect();
    let missing = entry_taken.iter().enumerate().filter(|(_, taken)| !**taken);
    outcomes.extend(missing.map(|(e, _)| Outcome::MissingAtProvider { entry: entries[e].id }));
    outcomes
}

/// What the engine reads of a line or an entry.
#[derive(Clone, Copy)]
struct Item<'a> {
    amount: Decimal,
    currency: &'a str,
    reference: &'a str,
    date: Timestamp,
    metadata: &'a BTreeMap<String, String>,
}

impl Line {
    fn item(&self) -> Item<'_> {
        let Line { id: _, amount, currency, reference, date, metadata } = self;
        Item { amount: *amount, currency, reference, date: *date, metadata }
    }
}

impl Entry {
    fn item(&self) -> Item<'_> {
        let Entry { id: _, amount, currency, reference, date, metadata } = self;
        Item { amount: *amount, currency, reference, date: *date, metadata }
    }
}

/// A field's value as a test compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Value<'a> {
    Amount(Decimal),
    /// Whole seconds since the epoch.
    Seconds(i64),
    /// The UTC day, in days since the epoch.
    Day(i64),
    Text(&'a str),
}

/// How a test compares: a criterion's operator, or a group key's equality (by day for dates).
#[derive(Clone, Copy, Debug)]
enum Check {
    Equals,
    SameDay,
    Within(Tolerance),
    Contains,
    Prefix,
}

/// One comparison between a line and an entry.
#[derive(Clone, Copy, Debug)]
struct Test<'a> {
    field: &'a Field,
    check: Check,
}

impl<'a> Test<'a> {
    fn of(criterion: &'a Criterion) -> Test<'a> {
        let check = match criterion.operator {
            Operator::Equals => Check::Equals,
            Operator::Within => Check::Within(criterion.tolerance.expect("a checked within has a tolerance")),
            Operator::Contains => Check::Contains,
            Operator::Prefix => Check::Prefix,
        };
        Test { field: &criterion.field, check }
    }

    fn group_key(field: &'a Field) -> Test<'a> {
        Test { field, check: if *field == Field::Date { Check::SameDay } else { Check::Equals } }
    }

    fn is_equality(&self) -> bool {
        matches!(self.check, Check::Equals | Check::SameDay)
    }

    fn value<'i>(&self, item: &Item<'i>) -> Option<Value<'i>> {
        match self.field {
            Field::Amount => Some(Value::Amount(item.amount)),
            Field::Reference => Some(Value::Text(item.reference)),
            Field::Currency => Some(Value::Text(item.currency)),
            Field::Date if matches!(self.check, Check::SameDay) => Some(Value::Day(item.date.day())),
            Field::Date => Some(Value::Seconds(item.date.micros().div_euclid(Timestamp::MICROS_PER_SECOND))),
            Field::Metadata(key) => item.metadata.get(key).map(|value| Value::Text(value)),
        }
    }

    /// Whether the test holds between a line's value and an entry's.
    fn holds(&self, line: Value<'_>, entry: Value<'_>) -> bool {
        match (self.check, line, entry) {
            (Check::Equals | Check::SameDay, line, entry) => line == entry,
            (Check::Within(Tolerance::Amount(tolerance)), Value::Amount(line), Value::Amount(entry)) => {
                line.checked_sub(entry).is_some_and(|difference| difference.abs() <= tolerance)
            }
            (Check::Within(Tolerance::Seconds(tolerance)), Value::Seconds(line), Value::Seconds(entry)) => {
                line.abs_diff(entry) <= u64::from(tolerance)
            }
            (Check::Contains, Value::Text(line), Value::Text(entry)) => !entry.is_empty() && line.contains(entry),
            (Check::Prefix, Value::Text(line), Value::Text(entry)) => !entry.is_empty() && line.starts_with(entry),
            (check, line, entry) => unreachable!("a checked rule compares like values: {check:?} {line:?} {entry:?}"),
        }
    }

    fn holds_between(&self, line: &Item<'_>, entry: &Item<'_>) -> bool {
        match (self.value(line), self.value(entry)) {
            (Some(line), Some(entry)) => self.holds(line, entry),
            _ => false,
        }
    }
}

/// A rule's tests, sorted for the engine.
struct Plan<'a> {
    /// Every criterion, in the rule's order.
    all: Vec<Test<'a>>,
    /// The criteria on `amount`.
    amount: Vec<Test<'a>>,
    /// The other criteria.
    others: Vec<Test<'a>>,
    /// A group rule's key.
    key: Option<Test<'a>>,
}

impl<'a> Plan<'a> {
    fn of(rule: &'a Rule) -> Plan<'a> {
        let all: Vec<Test<'a>> = rule.criteria().iter().map(Test::of).collect();
        let (amount, others) = all.iter().partition(|test| *test.field == Field::Amount);
        Plan { all, amount, others, key: rule.group_by().map(Test::group_key) }
    }
}

/// How far apart a line and an entry are, to choose among candidates: the amount difference (an
/// unrepresentable one farthest), then the date difference in microseconds.
fn distance(line: &Item<'_>, entry: &Item<'_>) -> (bool, Decimal, u64) {
    let amount = line.amount.checked_sub(entry.amount).map(|difference| difference.abs());
    (amount.is_none(), amount.unwrap_or(Decimal::ZERO), line.date.micros().abs_diff(entry.date.micros()))
}

/// Pairs each untaken line, in input order, with the closest untaken entry that passes every test
/// and `accept` (ties to the earliest entry), and marks both taken.
fn pair_off<'a>(
    lines: &[Item<'a>],
    line_taken: &mut [bool],
    entries: &[Item<'a>],
    entry_taken: &mut [bool],
    tests: &[Test<'a>],
    accept: impl Fn(&Item<'a>, &Item<'a>) -> bool,
) -> Vec<(usize, usize)> {
    let mut index = Index::build(tests, entries, entry_taken);
    // What the index found passes the tests it was built on: a hash bucket holds only entries
    // equal to the line on every equality test, and a text lookup only entries whose value is
    // a part (or a prefix) of the line's. The others are left to check.
    let checks: Vec<Test<'a>> = match index {
        Index::Keyed { .. } => tests.iter().filter(|t| !t.is_equality()).copied().collect(),
        Index::Text { .. } => tests[1..].to_vec(),
    };
    let mut pairs = Vec::new();
    let mut candidates = Vec::new();
    for (l, line) in lines.iter().enumerate() {
        if line_taken[l] {
            continue;
        }
        candidates.clear();
        index.candidates(line, &mut candidates);
        // The index holds untaken entries only: taken ones leave it.
        let passing = candidates
            .iter()
            .copied()
            .filter(|&e| checks.iter().all(|t| t.holds_between(line, &entries[e])) && accept(line, &entries[e]));
        if let Some(e) = passing.min_by_key(|&e| (distance(line, &entries[e]), e)) {
            index.remove(e, &entries[e]);
            line_taken[l] = true;
            entry_taken[e] = true;
            pairs.push((l, e));
        }
    }
    pairs
}

/// The untaken entries of one pass, indexed by the tests so that a line finds its few candidates.
enum Index<'a> {
    /// By the values of the equality tests (all in one bucket when there are none), each bucket
    /// sorted by the value of the first `within` test when there is one.
    Keyed { equalities: Vec<Test<'a>>, window: Option<Test<'a>>, buckets: HashMap<Vec<Value<'a>>, Bucket<'a>> },
    /// By the exact value of a `contains` or `prefix` test, with the byte lengths those values have.
    Text { test: Test<'a>, buckets: HashMap<&'a str, Vec<usize>>, lengths: Vec<usize> },
}

/// Entries sorted by their window value (none without a window test), then input position;
/// `next[p]` leads to the first position at or after `p` still in the bucket (`sorted.len()`
/// past the end).
struct Bucket<'a> {
    sorted: Vec<(Option<Value<'a>>, usize)>,
    next: Vec<usize>,
}

impl<'a> Index<'a> {
    fn build(tests: &[Test<'a>], entries: &[Item<'a>], taken: &[bool]) -> Index<'a> {
        let untaken = || entries.iter().enumerate().filter(|(e, _)| !taken[*e]);
        let equalities: Vec<Test<'a>> = tests.iter().filter(|t| t.is_equality()).copied().collect();
        let window = tests.iter().find(|t| matches!(t.check, Check::Within(_))).copied();
        if !equalities.is_empty() || window.is_some() {
            let mut members: HashMap<Vec<Value<'a>>, Vec<(Option<Value<'a>>, usize)>> = HashMap::new();
            for (e, entry) in untaken() {
                if let Some(key) = key(&equalities, entry) {
                    members.entry(key).or_default().push((window.and_then(|w| w.value(entry)), e));
                }
            }
            let buckets = members
                .into_iter()
                .map(|(key, mut sorted)| {
                    sorted.sort_unstable();
                    let next = (0..=sorted.len()).collect();
                    (key, Bucket { sorted, next })
                })
                .collect();
            return Index::Keyed { equalities, window, buckets };
        }
        // The first test, as `pair_off` knows.
        let test = *tests.first().expect("a pass has at least one test");
        let mut buckets: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (e, entry) in untaken() {
            if let Some(Value::Text(value)) = test.value(entry).filter(|v| *v != Value::Text("")) {
                buckets.entry(value).or_default().push(e);
            }
        }
        let lengths: BTreeSet<usize> = buckets.keys().map(|value| value.len()).collect();
        Index::Text { test, buckets, lengths: lengths.into_iter().collect() }
    }

    /// Pushes onto `out` the entries `line` may match (maybe some twice).
    fn candidates(&mut self, line: &Item<'a>, out: &mut Vec<usize>) {
        match self {
            Index::Keyed { equalities, window, buckets } => {
                let Some(Bucket { sorted, next }) = key(equalities, line).and_then(|k| buckets.get_mut(&k)) else {
                    return;
                };
                let (start, end) = match window {
                    Some(test) => {
                        let Some((low, high)) = test.value(line).map(|value| bounds(test.check, value)) else { return };
                        let start = sorted.partition_point(|(value, _)| *value < Some(low));
                        (start, sorted.partition_point(|(value, _)| *value <= Some(high)))
                    }
                    None => (0, sorted.len()),
                };
                let mut p = alive(next, start);
                while p < end {
                    out.push(sorted[p].1);
                    p = alive(next, p + 1);
                }
            }
            Index::Text { test, buckets, lengths } => {
                let Some(Value::Text(text)) = test.value(line) else { return };
                let starts: Vec<usize> = match test.check {
                    Check::Prefix => vec![0],
                    _ => (0..text.len()).filter(|&start| text.is_char_boundary(start)).collect(),
                };
                for start in starts {
                    let ends = lengths.iter().map(|length| start + length).take_while(|&end| end <= text.len());
                    for end in ends.filter(|&end| text.is_char_boundary(end)) {
                        out.extend(buckets.get(&text[start..end]).into_iter().flatten());
                    }
                }
            }
        }
    }

    /// Takes entry `e` out of the index.
    fn remove(&mut self, e: usize, entry: &Item<'a>) {
        match self {
            Index::Keyed { equalities, window, buckets } => {
                let bucket = key(equalities, entry).and_then(|k| buckets.get_mut(&k));
                let Bucket { sorted, next } = bucket.expect("an indexed entry is in its bucket");
                let value = window.and_then(|w| w.value(entry));
                let p = sorted.binary_search(&(value, e)).expect("an indexed entry is in its bucket");
                next[p] = p + 1;
            }
            Index::Text { test, buckets, .. } => {
                let Some(Value::Text(value)) = test.value(entry) else {
                    unreachable!("an indexed entry has the value")
                };
                let bucket = buckets.get_mut(value).expect("an indexed entry is in its bucket");
                let at = bucket.iter().position(|&x| x == e).expect("an indexed entry is in its bucket");
                bucket.swap_remove(at);
            }
        }
    }
}

/// The values of `tests` on `item`, or `None` when it lacks one.
fn key<'i>(tests: &[Test<'_>], item: &Item<'i>) -> Option<Vec<Value<'i>>> {
    tests.iter().map(|t| t.value(item)).collect()
}

/// The least and greatest value within a `within` check's tolerance of `value`.
fn bounds(check: Check, value: Value<'_>) -> (Value<'_>, Value<'_>) {
    match (check, value) {
        (Check::Within(Tolerance::Amount(tolerance)), Value::Amount(amount)) => (
            Value::Amount(amount.checked_sub(tolerance).unwrap_or(Decimal::MIN)),
            Value::Amount(amount.checked_add(tolerance).unwrap_or(Decimal::MAX)),
        ),
        (Check::Within(Tolerance::Seconds(tolerance)), Value::Seconds(seconds)) => {
            let tolerance = i64::from(tolerance);
            (Value::Seconds(seconds.saturating_sub(tolerance)), Value::Seconds(seconds.saturating_add(tolerance)))
        }
        (check, value) => unreachable!("a window is a within check on its kind of value: {check:?} {value:?}"),
    }
}

/// The first position at or after `p` still in a window index, shortening the paths it walks.
fn alive(next: &mut [usize], p: usize) -> usize {
    let mut root = p;
    while next[root] != root {
        root = next[root];
    }
    let mut at = p;
    while next[at] != root {
        let following = next[at];
        next[at] = root;
        at = following;
    }
    root
}

/// Which side the single item of a group match is on.
#[derive(Clone, Copy)]
enum Side {
    Line,
    Entry,
}

/// A group of members sharing a key, summarised once.
struct Group<'a> {
    members: Vec<usize>,
    /// The members' amounts added up, `None` when the sum is not representable.
    sum: Option<Decimal>,
    /// For each of the plan's non-amount tests, the members' values, `None` when one lacks it.
    values: Vec<Option<BTreeSet<Value<'a>>>>,
}

/// Matches each untaken single, in input order, with the group of untaken members sharing its key
/// (the module's `one_to_many` on lines, `many_to_one` on entries); marks them taken.
fn match_groups<'a>(
    singles: &[Item<'a>],
    single_taken: &mut [bool],
    members: &[Item<'a>],
    member_taken: &mut [bool],
    plan: &Plan<'a>,
    side: Side,
) -> Vec<(usize, Vec<usize>)> {
    let key = plan.key.expect("a group rule has a group key");
    let mut by_key: HashMap<Value<'a>, Vec<usize>> = HashMap::new();
    for (m, member) in members.iter().enumerate().filter(|(m, _)| !member_taken[*m]) {
        if let Some(value) = key.value(member) {
            by_key.entry(value).or_default().push(m);
        }
    }
    let mut groups: HashMap<Value<'a>, Group<'a>> = by_key
        .into_iter()
        .map(|(value, ms)| {
            let sum = ms.iter().try_fold(Decimal::ZERO, |sum, &m| sum.checked_add(members[m].amount));
            let values = plan.others.iter().map(|t| ms.iter().map(|&m| t.value(&members[m])).collect()).collect();
            (value, Group { members: ms, sum, values })
        })
        .collect();

    let mut matched = Vec::new();
    for (s, single) in singles.iter().enumerate() {
        let Some(value) = key.value(single).filter(|_| !single_taken[s]) else { continue };
        if groups.get(&value).is_some_and(|group| group_holds(plan, single, group, side)) {
            let group = groups.remove(&value).expect("the group was just found");
            single_taken[s] = true;
            for &m in &group.members {
                member_taken[m] = true;
            }
            matched.push((s, group.members));
        }
    }
    matched
}

/// Whether `single` matches `group`: every amount criterion between its amount and the group's
/// sum, every other criterion between it and each member.
fn group_holds(plan: &Plan<'_>, single: &Item<'_>, group: &Group<'_>, side: Side) -> bool {
    let holds = |test: &Test<'_>, single: Value<'_>, member: Value<'_>| match side {
        Side::Line => test.holds(single, member),
        Side::Entry => test.holds(member, single),
    };
    let Some(sum) = group.sum else { return false };
    let amounts = plan.amount.iter().all(|t| holds(t, Value::Amount(single.amount), Value::Amount(sum)));
    amounts
        && plan.others.iter().zip(&group.values).all(|(test, values)| {
            let (Some(value), Some(values)) = (test.value(single), values) else { return false };
            match test.check {
                // Between the least and the greatest lie all the others.
                Check::Equals | Check::SameDay | Check::Within(_) => {
                    let least = *values.first().expect("a group has members");
                    let greatest = *values.last().expect("a group has members");
                    holds(test, value, least) && holds(test, value, greatest)
                }
                Check::Contains | Check::Prefix => values.iter().all(|member| holds(test, value, *member)),
            }
        })
}

#[cfg(test)]
mod tests;
