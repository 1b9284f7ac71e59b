//! Schedules: checked whole, fired once per due time whoever asks, starting the run of that
//! time or recording why none started, then due at their next time.

use super::*;
use crate::recon::run::RunStatus;
use crate::recon::schedule::{SetSchedule, scheduled_run};

/// 2026-12-07T10:00:00Z.
const MONDAY_10: Timestamp = Timestamp(1_796_637_600_000_000);

fn schedule(cron: &str, enabled: bool) -> Command {
    Command::SetSchedule(SetSchedule {
        id: "nightly".into(),
        provider: "psp-a".into(),
        cron: cron.into(),
        rules: vec!["by-ref".into()],
        enabled,
    })
}

fn fire(due: Timestamp) -> Command {
    Command::FireSchedule { id: "nightly".into(), due }
}

fn with_rule() -> AnyState {
    let mut state = funded();
    let spec = crate::recon::rule::RuleSpec {
        strategy: "one_to_one".into(),
        group_by: None,
        criteria: vec![crate::recon::rule::CriterionSpec {
            field: "reference".into(),
            operator: "equals".into(),
            tolerance: None,
        }],
    };
    run(&mut state, Command::SetRule { name: "by-ref".into(), spec }).unwrap();
    state
}

#[test]
fn a_schedule_is_checked_whole_and_due_at_its_next_time() {
    let mut state = with_rule();
    assert_eq!(MONDAY_10.rfc3339(), "2026-12-07T10:00:00Z");
    let mut bad = |c: Command| run_at(&mut state, c, MONDAY_10).unwrap_err();
    let mut id = schedule("0 2 * * *", true);
    if let Command::SetSchedule(s) = &mut id {
        s.id = "a b".into();
    }
    assert_eq!(bad(id), Rejection::InvalidScheduleId);
    let mut other = schedule("0 2 * * *", true);
    if let Command::SetSchedule(s) = &mut other {
        s.provider = "nobody".into();
    }
    assert_eq!(bad(other), Rejection::ProviderNotFound);
    assert_eq!(bad(schedule("0 2 * *", true)), Rejection::InvalidCron);
    let mut no_rules = schedule("0 2 * * *", true);
    if let Command::SetSchedule(s) = &mut no_rules {
        s.rules = vec!["nope".into()];
    }
    assert_eq!(bad(no_rules), Rejection::RuleNotFound);
    let events = run_at(&mut state, schedule("0 2 * * *", true), MONDAY_10).unwrap();
    assert_eq!(types(&events), ["ScheduleSet", "AuditRecorded"]);
    let s = state.recon.schedule("nightly").unwrap();
    assert_eq!(s.next_due.map(Timestamp::rfc3339).as_deref(), Some("2026-12-08T02:00:00Z"));
    assert_eq!(run_at(&mut state, schedule("0 2 * * *", true), MONDAY_10).unwrap(), [], "the same again");
    run_at(&mut state, schedule("0 2 * * *", false), MONDAY_10).unwrap();
    assert_eq!(
        state.recon.schedule("nightly").map(|s| (s.next_due, s.version)),
        Some((None, 2)),
        "disabled: never due"
    );
}

#[test]
fn a_due_time_fires_once_starting_its_run_and_moves_the_schedule_on() {
    let mut state = with_rule();
    run_at(&mut state, schedule("*/5 * * * *", true), MONDAY_10).unwrap();
    let due = MONDAY_10.plus_seconds(300);
    assert_eq!(run_at(&mut state, fire(due), MONDAY_10).unwrap_err(), Rejection::ScheduleNotDue, "not yet");
    assert_eq!(run_at(&mut state, fire(MONDAY_10), due).unwrap_err(), Rejection::ScheduleNotDue, "not its due time");
    let missing = Command::FireSchedule { id: "nobody".into(), due };
    assert_eq!(run_at(&mut state, missing, due).unwrap_err(), Rejection::ScheduleNotFound);
    let later = due.plus_seconds(1);
    let events = run_at(&mut state, fire(due), later).unwrap();
    assert_eq!(types(&events), ["RunStarted", "ScheduleFired"]);
    let run = state.recon.run(scheduled_run("nightly", due)).unwrap();
    assert_eq!((run.as_of, run.schedule.as_deref(), run.status), (due, Some("nightly"), RunStatus::Running));
    let s = state.recon.schedule("nightly").unwrap();
    assert_eq!((s.last_fired, s.last_run, s.next_due), (Some(due), Some(run.id), Some(due.plus_seconds(300))));
    // A second scheduler asking for the same due time is refused: it fired once.
    assert_eq!(run_at(&mut state, fire(due), later).unwrap_err(), Rejection::ScheduleNotDue);
    // Due again while the run is in progress: recorded as skipped, and the schedule moves on.
    let next = due.plus_seconds(300);
    let events = run_at(&mut state, fire(next), next).unwrap();
    assert_eq!(types(&events), ["ScheduleFired"]);
    let s = state.recon.schedule("nightly").unwrap();
    assert_eq!(
        (s.last_run, s.last_skipped.as_deref(), s.next_due),
        (None, Some("run_in_progress"), Some(next.plus_seconds(300)))
    );
    // Rows give back the schedule.
    let mut loaded = State::new(&Currencies::standard());
    for row in state.recon.rows() {
        loaded.load(row).unwrap();
    }
    assert_eq!(loaded, state.recon);
    assert_eq!(state.recon.row(crate::recon::schedule_entity("nightly")).map(|r| r.key), Some("nightly".to_owned()));
}

#[test]
fn a_late_scheduler_fires_the_time_it_missed_then_the_next_after_now() {
    let mut state = with_rule();
    run_at(&mut state, schedule("0 * * * *", true), MONDAY_10).unwrap();
    let due = MONDAY_10.plus_seconds(3600);
    // The scheduler was down for three hours: the missed time fires once, the next is after now.
    let now = MONDAY_10.plus_seconds(4 * 3600 + 60);
    run_at(&mut state, fire(due), now).unwrap();
    let s = state.recon.schedule("nightly").unwrap();
    assert_eq!(s.next_due, Some(MONDAY_10.plus_seconds(5 * 3600)));
}
