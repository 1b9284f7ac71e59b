//! Rules and runs: set and checked whole, started one at a time per provider over the period
//! since the previous run, completed with the balances compared against the tolerance.

use super::*;
use crate::RunId;
use crate::recon::command::{CompleteRun, StartRun, Totals};
use crate::recon::rule::{CriterionSpec, RuleSpec};
use crate::recon::run::RunStatus;
use crate::recon::{RULE_KIND, RUN_KIND};

fn spec(strategy: &str, criteria: &[(&str, &str, Option<serde_json::Value>)]) -> RuleSpec {
    RuleSpec {
        strategy: strategy.into(),
        group_by: None,
        criteria: criteria
            .iter()
            .map(|(f, o, t)| CriterionSpec { field: (*f).into(), operator: (*o).into(), tolerance: t.clone() })
            .collect(),
    }
}

fn by_reference() -> RuleSpec {
    spec("one_to_one", &[("reference", "equals", None), ("amount", "within", Some(serde_json::json!("0.05")))])
}

fn set_rule(state: &mut AnyState, name: &str) {
    run(state, Command::SetRule { name: name.into(), spec: by_reference() }).unwrap();
}

fn run_id(n: u128) -> RunId {
    RunId(Uuid::from_u128(7000 + n))
}

fn start(n: u128, as_of: Option<Timestamp>, rules: &[&str]) -> Command {
    Command::StartRun(StartRun {
        id: run_id(n),
        provider: "psp-a".into(),
        as_of,
        rules: rules.iter().map(|r| (*r).to_owned()).collect(),
        schedule: None,
    })
}

fn complete(n: u128, reported: &str, players: &str) -> Command {
    Command::CompleteRun(Box::new(CompleteRun {
        id: run_id(n),
        reported: dec(reported),
        players: dec(players),
        totals: Totals { lines: 3, entries: 3, matched: 3, ..Totals::default() },
        lines_hash: "aa".into(),
        items_hash: format!("items-{n}"),
        duration_ms: 12,
    }))
}

#[test]
fn a_rule_is_checked_whole_stored_canonical_and_audited_when_it_changes() {
    let mut state = fresh();
    for name in ["", "Bad", "-x", &"r".repeat(65)] {
        let refused = run(&mut state, Command::SetRule { name: name.into(), spec: by_reference() }).unwrap_err();
        assert_eq!(refused, Rejection::InvalidRuleName, "{name:?}");
    }
    let unknown = spec("one_to_two", &[("reference", "equals", None)]);
    assert_eq!(
        run(&mut state, Command::SetRule { name: "r".into(), spec: unknown }).unwrap_err(),
        Rejection::InvalidRule
    );
    let events = run(&mut state, Command::SetRule { name: "by-ref".into(), spec: by_reference() }).unwrap();
    assert_eq!(types(&events), ["RuleSet", "AuditRecorded"]);
    let row = state.recon.rule("by-ref").unwrap();
    assert_eq!((row.version, row.spec["strategy"].as_str()), (1, Some("one_to_one")));
    assert!(row.rule().is_some(), "a stored rule reads back checked");
    assert_eq!(run(&mut state, Command::SetRule { name: "by-ref".into(), spec: by_reference() }).unwrap(), []);
    let wider =
        spec("one_to_one", &[("reference", "equals", None), ("amount", "within", Some(serde_json::json!("1")))]);
    let events = run(&mut state, Command::SetRule { name: "by-ref".into(), spec: wider }).unwrap();
    let entry = &events[1].audit().unwrap().recorded().entry;
    assert_eq!(entry.before.as_ref().unwrap()["criteria"][1]["tolerance"], "0.05");
    assert_eq!(state.recon.rule("by-ref").map(|r| r.version), Some(2));
}

#[test]
fn a_run_starts_with_its_rules_as_they_stand_and_the_players_sum_of_that_moment() {
    let mut state = funded();
    set_rule(&mut state, "by-ref");
    let missing = Command::StartRun(StartRun {
        provider: "nobody".into(),
        ..match start(1, None, &["by-ref"]) {
            Command::StartRun(s) => s,
            _ => unreachable!(),
        }
    });
    assert_eq!(run(&mut state, missing).unwrap_err(), Rejection::ProviderNotFound);
    let seventeen: Vec<String> = (0..17).map(|n| format!("r{n}")).collect();
    let seventeen: Vec<&str> = seventeen.iter().map(String::as_str).collect();
    for rules in [&[][..], &["by-ref", "by-ref"], &seventeen] {
        assert_eq!(run(&mut state, start(1, None, rules)).unwrap_err(), Rejection::InvalidRules, "{rules:?}");
    }
    assert_eq!(run(&mut state, start(1, None, &["by-ref", "nope"])).unwrap_err(), Rejection::RuleNotFound);
    assert_eq!(run(&mut state, start(1, Some(T0.plus_seconds(1)), &["by-ref"])).unwrap_err(), Rejection::InvalidAsOf);
    let events = run(&mut state, start(1, None, &["by-ref"])).unwrap();
    assert_eq!(types(&events), ["RunStarted"]);
    let r = state.recon.run(run_id(1)).unwrap();
    assert_eq!((r.status, r.as_of, r.from, r.players_at_start), (RunStatus::Running, T0, None, Some(dec("1000"))));
    assert_eq!(r.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["by-ref"]);
    assert_eq!(r.rules[0].spec, state.recon.rule("by-ref").unwrap().spec);
    // One run at a time per provider; the same start again is the same run.
    assert_eq!(run(&mut state, start(2, None, &["by-ref"])).unwrap_err(), Rejection::RunInProgress);
    assert_eq!(run(&mut state, start(1, None, &["by-ref"])).unwrap(), []);
    set_rule(&mut state, "other");
    assert_eq!(run(&mut state, start(1, None, &["other"])).unwrap_err(), Rejection::RunExists);
    // A run as of an earlier time takes the players' sum from the balances' history.
    run(&mut state, Command::FailRun { id: run_id(1), reason: "provider unreachable".into() }).unwrap();
    run(&mut state, start(3, Some(Timestamp(10)), &["by-ref"])).unwrap();
    assert_eq!(state.recon.run(run_id(3)).unwrap().players_at_start, None);
}

#[test]
fn a_completed_run_compares_the_balances_within_the_tolerance_and_alerts_beyond_it() {
    let mut state = funded();
    set_rule(&mut state, "by-ref");
    run(&mut state, start(1, None, &["by-ref"])).unwrap();
    // Tolerance 0.50: exactly at it is matched.
    let events = run(&mut state, complete(1, "1000.50", "1000")).unwrap();
    assert_eq!(types(&events), ["RunCompleted"]);
    let r = state.recon.run(run_id(1)).unwrap();
    assert_eq!((r.status, r.balanced, r.difference), (RunStatus::Completed, Some(true), Some(dec("0.50"))));
    assert_eq!((r.totals.map(|t| t.matched), r.duration_ms, r.version), (Some(3), Some(12), 2));
    assert_eq!(run(&mut state, complete(1, "1000.50", "1000")).unwrap(), [], "the same completion again");
    assert_eq!(run(&mut state, complete(9, "1", "1")).unwrap_err(), Rejection::RunNotFound);
    // The next run's period starts at this one's time, and cannot end before it.
    let later = T0.plus_seconds(60);
    assert_eq!(
        run_at(&mut state, start(2, Some(Timestamp(T0.0 - 1)), &["by-ref"]), later).unwrap_err(),
        Rejection::InvalidAsOf
    );
    run_at(&mut state, start(2, None, &["by-ref"]), later).unwrap();
    assert_eq!(state.recon.run(run_id(2)).map(|r| (r.from, r.as_of)), Some((Some(T0), later)));
    // One cent past the tolerance, either way: a discrepancy, alerted.
    let events = run_at(&mut state, complete(2, "999.49", "1000"), later).unwrap();
    assert_eq!(types(&events), ["RunCompleted", "Discrepancy", "AuditRecorded"]);
    assert_eq!(audit_entries(&events), [("recon.discrepancy".to_owned(), Level::Critical)]);
    let Some(crate::recon::Event::Discrepancy(d)) = events[1].recon() else { panic!("{events:?}") };
    assert_eq!((d.difference, d.tolerance, d.provider.as_str()), (dec("-0.51"), dec("0.50"), "psp-a"));
    assert_eq!(state.recon.run(run_id(2)).unwrap().balanced, Some(false));
    assert_eq!(webhook_type(&events[1]), "recon.discrepancy");
}

fn webhook_type(event: &AnyEvent) -> String {
    let payload: serde_json::Value = serde_json::from_str(&event.payload()).unwrap();
    crate::webhook::message_type("recon", event.event_type(), &payload).unwrap()
}

#[test]
fn a_failed_run_frees_the_provider_and_completes_no_more() {
    let mut state = funded();
    set_rule(&mut state, "by-ref");
    run(&mut state, start(1, None, &["by-ref"])).unwrap();
    let blank = Command::FailRun { id: run_id(1), reason: " ".into() };
    assert_eq!(run(&mut state, blank).unwrap_err(), Rejection::InvalidReason);
    let events = run(&mut state, Command::FailRun { id: run_id(1), reason: "statement: 503".into() }).unwrap();
    assert_eq!(types(&events), ["RunFailed"]);
    assert_eq!(run(&mut state, Command::FailRun { id: run_id(1), reason: "statement: 503".into() }).unwrap(), []);
    assert_eq!(run(&mut state, complete(1, "1", "1")).unwrap_err(), Rejection::RunNotRunning);
    let r = state.recon.run(run_id(1)).unwrap();
    assert_eq!((r.status, r.reason.as_deref()), (RunStatus::Failed, Some("statement: 503")));
    run(&mut state, start(2, None, &["by-ref"])).unwrap();
    assert_eq!(state.recon.run(run_id(2)).unwrap().from, None, "a failed run ends no period");
}

#[test]
fn runs_and_rules_come_back_from_their_rows_with_the_run_in_progress() {
    let mut state = funded();
    set_rule(&mut state, "by-ref");
    run(&mut state, start(1, None, &["by-ref"])).unwrap();
    run(&mut state, complete(1, "1000", "1000")).unwrap();
    run(&mut state, start(2, None, &["by-ref"])).unwrap();
    let rows = state.recon.rows();
    let run_rows: Vec<_> = rows.iter().filter(|r| r.kind == RUN_KIND).collect();
    assert_eq!(run_rows.len(), 2);
    assert!(run_rows.iter().all(|r| r.key.starts_with("psp-a/")), "a provider's runs are one key range");
    let rule = rows.iter().find(|r| r.kind == RULE_KIND).unwrap();
    assert_eq!((rule.key.as_str(), rule.id), ("by-ref", crate::recon::rule_entity("by-ref").id));
    assert_eq!(state.recon.row(crate::recon::rule_entity("by-ref")).map(|r| r.version), Some(1));
    let mut loaded = State::new(&Currencies::standard());
    for row in rows {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.recon);
    let mut reloaded = state.clone();
    reloaded.recon = loaded;
    assert_eq!(run(&mut reloaded, start(3, None, &["by-ref"])).unwrap_err(), Rejection::RunInProgress);
    assert_eq!(reloaded.recon.last_as_of("psp-a"), Some(T0));
}

fn resolve(item: u128, status: &str, action: crate::recon::Resolution, reason: &str) -> Command {
    Command::ResolveItem(Box::new(crate::recon::ResolveItem {
        item: Uuid::from_u128(item),
        run: run_id(1),
        provider: "psp-a".into(),
        status: status.into(),
        action,
        counterpart: None,
        reason: reason.into(),
    }))
}

#[test]
fn an_open_item_is_resolved_once_audited_and_a_closed_one_never() {
    use crate::recon::Resolution::{Dismiss, Match};
    let mut state = funded();
    assert_eq!(run(&mut state, resolve(1, "matched", Dismiss, "duplicate")).unwrap_err(), Rejection::ItemClosed);
    assert_eq!(run(&mut state, resolve(1, "open", Dismiss, " ")).unwrap_err(), Rejection::InvalidReason);
    let mut bad = resolve(1, "open", Match, "found by hand");
    if let Command::ResolveItem(c) = &mut bad {
        c.counterpart = Some("a\nb".into());
    }
    assert_eq!(run(&mut state, bad).unwrap_err(), Rejection::InvalidCounterpart);
    let events = run(&mut state, resolve(1, "open", Dismiss, "bank fee, booked elsewhere")).unwrap();
    assert_eq!(types(&events), ["ItemResolved", "AuditRecorded"]);
    assert_eq!(audit_entries(&events), [("recon.item.dismiss".to_owned(), Level::Info)]);
    let r = state.recon.resolution(Uuid::from_u128(1)).unwrap();
    assert_eq!((r.status(), r.reason.as_str()), ("dismissed", "bank fee, booked elsewhere"));
    // The same again is the same resolution; another is refused, whatever the store says.
    assert_eq!(run(&mut state, resolve(1, "dismissed", Dismiss, "bank fee, booked elsewhere")).unwrap(), []);
    assert_eq!(run(&mut state, resolve(1, "open", Match, "x")).unwrap_err(), Rejection::ItemClosed);
    let events = run(&mut state, resolve(2, "open", Match, "paired with the bank's statement")).unwrap();
    assert_eq!(audit_entries(&events), [("recon.item.match".to_owned(), Level::Info)]);
    assert_eq!(state.recon.resolution(Uuid::from_u128(2)).map(|r| r.status()), Some("matched_by_hand"));
    let rows = state.recon.rows();
    let mut loaded = State::new(&Currencies::standard());
    for row in rows {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.recon);
    let entity = crate::recon::resolution_entity(Uuid::from_u128(2));
    assert_eq!(state.recon.row(entity).map(|r| r.key), Some(Uuid::from_u128(2).to_string()));
}
