//! Operator overrides: force and drain (durable and journaled before the reply), their
//! validation, release, expiry, and refusal when the state cannot be saved.

use super::*;

#[test]
fn force_moves_one_view_is_durable_and_journaled() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let ov = f.add_override(force(Some(DEFAULT), ZJK)).expect("accepted");
    assert!(ov.id.starts_with("ovr-") && ov.id.len() == 12, "{}", ov.id);
    assert_eq!(
        (ov.actor.as_str(), ov.reason.as_str()),
        ("alice", "maintenance")
    );

    // Durable before the answer: in the state file when the reply arrived.
    assert_eq!(f.saved().overrides, vec![ov.clone()]);
    let s = f.ctl.status();
    assert_eq!(s.overrides, vec![ov.clone()]);
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.forced_by.as_deref()),
        (ZJK, Some(ov.id.as_str()))
    );
    let v = endpoint(&s, VPC);
    assert_eq!((v.active.as_str(), v.forced_by.as_deref()), (ZJK, None));

    let added = f.journaled("override-added");
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].override_id.as_deref(),
            added[0].endpoint.as_deref(),
            added[0].view.as_deref(),
            added[0].to.as_deref(),
            added[0].actor.as_str()
        ),
        (
            Some(ov.id.as_str()),
            Some(EP),
            Some(DEFAULT),
            Some(ZJK),
            "alice"
        )
    );
    let kinds: Vec<String> = f.journal().into_iter().map(|e| e.kind).collect();
    let at = kinds.iter().position(|k| k == "override-added").unwrap();
    assert_eq!(kinds[at + 1..], ["switch".to_string()], "{kinds:?}");
    assert_eq!(f.journaled("switch").last().unwrap().actor, "alice");
}

#[test]
fn force_of_every_view_and_its_release() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let ov = f.add_override(force(None, HZ)).expect("accepted");
    assert_eq!(f.active(DEFAULT), HZ);
    assert_eq!(f.active(VPC), HZ);
    assert_eq!(
        endpoint(&f.ctl.status(), VPC).answer,
        "A 10.94.205.198",
        "the vpc view's own answer for hangzhou"
    );

    let removed = f.release(Some(&ov.id), "").expect("released");
    assert_eq!(removed, vec![ov.clone()]);
    assert!(f.ctl.status().overrides.is_empty());
    assert!(f.saved().overrides.is_empty());
    assert_eq!(f.active(VPC), ZJK, "back to the vpc view's first target");
    assert_eq!(endpoint(&f.ctl.status(), VPC).forced_by, None);
    let released = f.journaled("override-released");
    assert_eq!(released.len(), 1);
    assert_eq!(
        (
            released[0].override_id.as_deref(),
            released[0].reason.as_str(),
            released[0].actor.as_str()
        ),
        (Some(ov.id.as_str()), "released", "alice")
    );
}

#[test]
fn force_names_are_checked() {
    let mut f = Fixture::auto();
    let mut o = force(None, HZ);
    o.kind = OverrideKind::Force {
        endpoint: "nope.registry.test.".into(),
        view: None,
        instance: HZ.into(),
    };
    assert_eq!(
        f.add_override(o),
        Err(ControlError::NotFound(format!(
            "unknown endpoint \"nope.registry.test.\" (known: {EP})"
        )))
    );
    assert_eq!(
        f.add_override(force(Some("office"), HZ)),
        Err(ControlError::NotFound(
            "unknown view \"office\" (known: default, vpc)".into()
        ))
    );
    assert_eq!(
        f.add_override(force(None, "shanghai")),
        Err(ControlError::NotFound(
            "unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)".into()
        ))
    );
    assert_eq!(
        f.add_override(drain("shanghai")),
        Err(ControlError::NotFound(
            "unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)".into()
        ))
    );
    assert!(f.ctl.status().overrides.is_empty());
    assert!(f.saved().overrides.is_empty());
    assert!(f.journaled("override-added").is_empty());
}

#[test]
fn an_override_needs_a_reason_an_actor_and_a_future_expiry() {
    let mut f = Fixture::auto();
    let mut o = force(None, HZ);
    o.reason = "  ".into();
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "a reason is required (it is journaled)".into()
        ))
    );
    let mut o = drain(HZ);
    o.actor = String::new();
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "an actor is required (who is doing this)".into()
        ))
    );
    let mut o = drain(HZ);
    o.expires = Some(now_ms() - 1);
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "the expiry is in the past; give a future time or a duration like 30m".into()
        ))
    );
    assert!(f.saved().overrides.is_empty());
}

#[test]
fn drain_moves_away_and_status_marks_the_instance_drained() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let ov = f.add_override(drain(HZ)).expect("accepted");
    let s = f.ctl.status();
    assert!(instance(&s, HZ).drained);
    assert!(!instance(&s, ZJK).drained);
    assert_eq!(endpoint(&s, DEFAULT).active, ZJK);
    assert_eq!(endpoint(&s, VPC).active, ZJK);
    let added = f.journaled("override-added");
    assert_eq!(added[0].instance.as_deref(), Some(HZ));
    assert_eq!(added[0].endpoint, None);

    // Draining both leaves the highest-priority up target, although drained.
    let ov2 = f.add_override(drain(ZJK)).expect("accepted");
    assert_eq!(f.active(DEFAULT), ZJK);

    // Release everything: both overrides, one journal entry each.
    let removed = f.release(None, "upgrade done").expect("released");
    assert_eq!(removed, vec![ov, ov2]);
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert!(!instance(&s, HZ).drained);
    assert_eq!(endpoint(&s, DEFAULT).active, HZ, "auto failback, no hold");
    let released = f.journaled("override-released");
    assert_eq!(released.len(), 2);
    assert!(released.iter().all(|e| e.reason == "upgrade done"));
}

#[test]
fn releasing_an_unknown_override_is_not_found() {
    let mut f = Fixture::auto();
    assert_eq!(
        f.release(Some("ovr-00000000"), "x"),
        Err(ControlError::NotFound(
            "no override \"ovr-00000000\" (active: none)".into()
        ))
    );
    let ov = f.add_override(drain(HZ)).unwrap();
    assert_eq!(
        f.release(Some("ovr-00000000"), "x"),
        Err(ControlError::NotFound(format!(
            "no override \"ovr-00000000\" (active: {})",
            ov.id
        )))
    );
    assert_eq!(f.ctl.status().overrides, vec![ov]);
    // Releasing all when there is none is not an error.
    let mut g = Fixture::auto();
    assert_eq!(g.release(None, ""), Ok(vec![]));
}

#[test]
fn an_override_that_cannot_be_saved_is_refused_and_not_applied() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    // The state file's temporary name taken by a directory: the save fails.
    let blocker = f
        .state_dir()
        .join(format!(".state.json.tmp-{}", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    let r = f.add_override(force(Some(DEFAULT), ZJK));
    assert!(matches!(&r, Err(ControlError::Persist(_))), "{r:?}");
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert_eq!(endpoint(&s, DEFAULT).active, HZ, "nothing served");
    assert!(
        f.journaled("override-added").is_empty(),
        "nothing journaled"
    );

    std::fs::remove_dir(&blocker).unwrap();
    let ov = f
        .add_override(force(Some(DEFAULT), ZJK))
        .expect("saved now");
    assert_eq!(f.saved().overrides, vec![ov]);
    assert_eq!(f.active(DEFAULT), ZJK);
}

#[test]
fn an_override_expires_on_the_timer() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let expires = now_ms() + 3_600_000;
    let mut o = force(Some(DEFAULT), ZJK);
    o.expires = Some(expires);
    let ov = f.add_override(o).unwrap();
    assert_eq!(f.active(DEFAULT), ZJK);
    assert_eq!(f.ctl.next_wakeup(), Some(expires));

    let events = f.ctl.decide_and_apply(expires, &[], false);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].to, HZ);
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert_eq!(endpoint(&s, DEFAULT).forced_by, None);
    assert!(f.saved().overrides.is_empty());
    let expired = f.journaled("override-expired");
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (
            expired[0].override_id.as_deref(),
            expired[0].reason.as_str()
        ),
        (Some(ov.id.as_str()), "expired: maintenance")
    );
}
