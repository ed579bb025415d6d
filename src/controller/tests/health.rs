//! Health transitions: failover, fail-static, automatic and manual failback, and the
//! validation of failback confirmations.

use super::*;

#[test]
fn fresh_start_serves_the_first_target_of_each_view_and_saves_it() {
    let f = Fixture::auto();
    assert!(matches!(f.start, StartState::Fresh), "{:?}", f.start);
    let s = f.ctl.status();
    assert_eq!(s.generation, 1);
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.answer.as_str()),
        (HZ, "CNAME a-registry.hangzhou.test.")
    );
    assert!(
        d.reason.starts_with("startup: hangzhou assumed"),
        "{}",
        d.reason
    );
    let v = endpoint(&s, VPC);
    assert_eq!((v.active.as_str(), v.answer.as_str()), (ZJK, "A 10.1.3.4"));
    assert_eq!(s.endpoints.len(), 2);
    for id in [HZ, ZJK] {
        let i = instance(&s, id);
        assert_eq!(
            (i.state.as_str(), i.since_ms, i.drained),
            ("unknown", None, false)
        );
    }
    assert!(s.overrides.is_empty());
    // The first decisions and serials are durable before anything is served.
    let saved = f.saved();
    assert_eq!(saved.decisions[&(EP.into(), DEFAULT.into())].active, HZ);
    assert_eq!(saved.decisions[&(EP.into(), VPC.into())].active, ZJK);
    assert_eq!(saved.serials.len(), 2, "{:?}", saved.serials);
    for z in &s.zones {
        let e = saved
            .serials
            .iter()
            .find(|e| e.view == z.view)
            .expect("saved serial of every view");
        assert_eq!(e.serial, z.serial, "view {}", z.view);
    }
    assert_eq!(f.ctl.snapshot().load().generation, 1);
}

#[test]
fn primary_down_fails_over_journals_and_moves_only_that_views_serial() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let (default_serial, vpc_serial) = (f.serial(DEFAULT), f.serial(VPC));
    let generation = f.ctl.status().generation;
    f.health(HZ, false, t + 1_000);

    let s = f.ctl.status();
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.answer.as_str()),
        (ZJK, "CNAME b-registry.zhangjiakou.test.")
    );
    assert!(d.since_ms >= t + 1_000, "since the switch: {}", d.since_ms);
    assert!(!d.degraded);
    assert_eq!(
        endpoint(&s, VPC).active,
        ZJK,
        "vpc already served zhangjiakou"
    );
    let hz = instance(&s, HZ);
    assert_eq!(hz.state, "down");
    assert_eq!(hz.since_ms, Some(t + 1_000));
    assert_eq!(hz.reason.as_deref(), Some("HTTP 503"));
    assert_eq!(instance(&s, ZJK).state, "up");
    assert_eq!(s.generation, generation + 1, "one new snapshot");
    assert!(
        crate::snapshot::serial_gt(f.serial(DEFAULT), default_serial),
        "the default view's answer changed"
    );
    assert_eq!(f.serial(VPC), vpc_serial, "the vpc view's answer did not");

    let health = f.journaled("health");
    let last = health.last().unwrap();
    assert_eq!(
        (
            last.instance.as_deref(),
            last.from.as_deref(),
            last.to.as_deref()
        ),
        (Some(HZ), Some("up"), Some("down"))
    );
    let switches = f.journaled("switch");
    let last = switches.last().unwrap();
    assert_eq!(
        (
            last.endpoint.as_deref(),
            last.view.as_deref(),
            last.from.as_deref(),
            last.to.as_deref(),
            last.actor.as_str()
        ),
        (Some(EP), Some(DEFAULT), Some(HZ), Some(ZJK), "regdns")
    );
    let saved = f.saved();
    assert_eq!(saved.decisions[&(EP.into(), DEFAULT.into())].active, ZJK);
    assert!(
        matches!(saved.health[HZ], crate::decide::Health::Down { since, .. } if since == t + 1_000)
    );
}

#[test]
fn a_repeated_transition_changes_nothing() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let (generation, entries) = (f.ctl.status().generation, f.journal().len());
    f.health(HZ, true, t + 5_000);
    assert_eq!(f.ctl.status().generation, generation);
    assert_eq!(f.journal().len(), entries);
    assert_eq!(
        instance(&f.ctl.status(), HZ).since_ms,
        Some(t),
        "since kept"
    );
}

#[test]
fn both_down_is_fail_static_and_degraded() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    f.health(HZ, false, t + 1_000);
    f.health(ZJK, false, t + 2_000);
    let s = f.ctl.status();
    let d = endpoint(&s, DEFAULT);
    assert_eq!(d.active, ZJK, "keeps the last answer");
    assert!(d.degraded);
    assert!(endpoint(&s, VPC).degraded);
}

#[test]
fn auto_failback_waits_for_the_hold_then_returns_on_the_timer() {
    let mut f = Fixture::new("auto", "1m");
    let t = now_ms() - 10_000;
    f.both_up(t - 120_000);
    f.health(HZ, false, t - 60_000);
    f.health(HZ, true, t);

    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!(d.active, ZJK, "hangzhou is in its hold");
    assert!(
        d.reason.contains("failback to hangzhou held"),
        "{}",
        d.reason
    );
    assert_eq!(f.ctl.next_wakeup(), Some(t + 60_000));
    // One millisecond early: still held.
    assert!(f.ctl.decide_and_apply(t + 59_999, &[], false).is_empty());
    assert_eq!(f.active(DEFAULT), ZJK);

    let events = f.ctl.decide_and_apply(t + 60_000, &[], false);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].view.as_str(), events[0].to.as_str()),
        (DEFAULT, HZ)
    );
    assert_eq!(f.active(DEFAULT), HZ);
    assert_eq!(f.active(VPC), ZJK);
    assert_eq!(f.ctl.next_wakeup(), None);
    assert_eq!(f.saved().decisions[&(EP.into(), DEFAULT.into())].active, HZ);
}

#[test]
fn manual_failback_is_pending_until_confirmed() {
    let mut f = Fixture::new("manual", "0s");
    let t = t0();
    f.both_up(t);
    f.health(HZ, false, t + 1_000);
    f.health(HZ, true, t + 2_000);
    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!(d.active, ZJK);
    assert_eq!(d.failback_pending.as_deref(), Some(HZ));
    assert_eq!(endpoint(&f.ctl.status(), VPC).failback_pending, None);
    assert_eq!(
        f.saved().decisions[&(EP.into(), DEFAULT.into())]
            .failback_pending
            .as_deref(),
        Some(HZ)
    );

    let events = f.failback(confirm(EP, Some(DEFAULT))).expect("accepted");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (
            e.view.as_str(),
            e.from.as_deref(),
            e.to.as_str(),
            e.actor.as_str()
        ),
        (DEFAULT, Some(ZJK), HZ, "carol")
    );
    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!((d.active.as_str(), d.failback_pending), (HZ, None));
    let fb = f.journaled("failback");
    assert_eq!(fb.len(), 1);
    assert_eq!(
        (
            fb[0].endpoint.as_deref(),
            fb[0].view.as_deref(),
            fb[0].actor.as_str(),
            fb[0].reason.as_str()
        ),
        (Some(EP), Some(DEFAULT), "carol", "primary verified")
    );
    assert_eq!(f.journaled("switch").last().unwrap().actor, "carol");
    assert_eq!(f.saved().decisions[&(EP.into(), DEFAULT.into())].active, HZ);

    // Nothing is pending any more.
    assert_eq!(
        f.failback(confirm(EP, None)),
        Err(ControlError::Invalid(format!(
            "no failback is pending for {EP}"
        )))
    );
}

#[test]
fn failback_confirmations_are_validated() {
    let mut f = Fixture::new("manual", "0s");
    assert_eq!(
        f.failback(confirm("nope.registry.test.", None)),
        Err(ControlError::NotFound(
            "unknown endpoint \"nope.registry.test.\"".into()
        ))
    );
    assert_eq!(
        f.failback(confirm(EP, Some("office"))),
        Err(ControlError::NotFound(
            "unknown view \"office\" (known: default, vpc)".into()
        ))
    );
    let mut c = confirm(EP, None);
    c.actor = " ".into();
    assert_eq!(
        f.failback(c),
        Err(ControlError::Invalid(
            "reason and actor are required".into()
        ))
    );
    assert_eq!(
        f.failback(confirm(EP, None)),
        Err(ControlError::Invalid(format!(
            "no failback is pending for {EP}"
        )))
    );
    assert!(f.journaled("failback").is_empty(), "nothing journaled");
}
