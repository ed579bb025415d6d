//! Unit tests of the decision engine: a table of rule scenarios, causes,
//! force layering, expiry wake-ups and duration formatting.

use super::*;

const EP: &str = "cross-region.registry.io.";
const HZ: &str = "hangzhou";
const ZJK: &str = "zhangjiakou";
const SH: &str = "shanghai";
const MIN: u64 = 60_000;

static NO_DIGESTS: BTreeMap<String, SeenDigest> = BTreeMap::new();

fn s(x: &str) -> String {
    x.to_string()
}

fn policy(failback: Failback, hold: u64, views: &[(&str, &[&str])]) -> EndpointPolicy {
    EndpointPolicy {
        name: s(EP),
        failback,
        failback_hold_ms: hold,
        views: views
            .iter()
            .map(|(v, ts)| (s(v), ts.iter().map(|t| s(t)).collect()))
            .collect(),
        replication: None,
    }
}

fn up(since: u64) -> Health {
    Health::Up { since }
}

fn down(since: u64, why: &str) -> Health {
    Health::Down {
        since,
        reason: s(why),
    }
}

fn force(
    id: &str,
    view: Option<&str>,
    inst: &str,
    actor: &str,
    created: u64,
    expires: Option<u64>,
) -> Override {
    Override {
        id: s(id),
        kind: OverrideKind::Force {
            endpoint: s(EP),
            view: view.map(s),
            instance: s(inst),
        },
        reason: s("maintenance"),
        actor: s(actor),
        created,
        expires,
    }
}

fn drain(id: &str, inst: &str) -> Override {
    Override {
        id: s(id),
        kind: OverrideKind::Drain { instance: s(inst) },
        reason: s("upgrade"),
        actor: s("bob"),
        created: 0,
        expires: None,
    }
}

fn prev(active: &str, base: &str) -> Decision {
    Decision {
        active: s(active),
        base: s(base),
        reason: s("previous"),
        since: 1,
        degraded: false,
        forced_by: None,
        failback_pending: None,
        forced_actor: None,
    }
}

fn confirm(view: Option<&str>) -> FailbackConfirmation {
    FailbackConfirmation {
        endpoint: s(EP),
        view: view.map(s),
        actor: s("carol"),
        reason: s("primary verified"),
    }
}

fn run(
    endpoints: &[EndpointPolicy],
    health: &[(&str, Health)],
    overrides: &[Override],
    previous: &[((&str, &str), Decision)],
    confirmations: &[FailbackConfirmation],
    now: u64,
) -> Outcome {
    let health: BTreeMap<String, Health> = health.iter().map(|(i, h)| (s(i), h.clone())).collect();
    let previous: BTreeMap<(String, String), Decision> = previous
        .iter()
        .map(|((e, v), d)| ((s(e), s(v)), d.clone()))
        .collect();
    decide(&Inputs {
        endpoints,
        health: &health,
        view_health: &BTreeMap::new(),
        overrides,
        previous: &previous,
        confirmations,
        digests: &NO_DIGESTS,
        now,
        only: None,
    })
}

/// Every event carries its cause as a value, whatever the reason text says.
#[test]
fn events_carry_their_cause() {
    let p = [policy(Failback::Auto, MIN, &[("default", &[HZ, ZJK])])];
    let cause = |out: &Outcome| out.events.first().map(|e| e.cause);
    let key = (EP, "default");
    // Startup.
    let out = run(&p, &[(HZ, up(0)), (ZJK, up(0))], &[], &[], &[], 10);
    assert_eq!(cause(&out), Some(Cause::Startup));
    // Health: the active target goes down.
    let out = run(
        &p,
        &[(HZ, down(5, "refused")), (ZJK, up(0))],
        &[],
        &[(key, prev(HZ, HZ))],
        &[],
        10,
    );
    assert_eq!(cause(&out), Some(Cause::Health));
    // Failback after the hold.
    let out = run(
        &p,
        &[(HZ, up(0)), (ZJK, up(0))],
        &[],
        &[(key, prev(ZJK, ZJK))],
        &[],
        2 * MIN,
    );
    assert_eq!(cause(&out), Some(Cause::Failback));
    // Drain of the active target.
    let out = run(
        &p,
        &[(HZ, up(0)), (ZJK, up(0))],
        &[drain("d1", HZ)],
        &[(key, prev(HZ, HZ))],
        &[],
        10,
    );
    assert_eq!(cause(&out), Some(Cause::Drain));
    // Force, then its release.
    let f = force("f1", None, ZJK, "alice", 1, None);
    let out = run(
        &p,
        &[(HZ, up(0)), (ZJK, up(0))],
        &[f],
        &[(key, prev(HZ, HZ))],
        &[],
        10,
    );
    assert_eq!(cause(&out), Some(Cause::Force));
    let forced = out.decisions[&(s(EP), s("default"))].clone();
    let out = run(
        &p,
        &[(HZ, up(0)), (ZJK, up(0))],
        &[],
        &[(key, forced)],
        &[],
        20,
    );
    assert_eq!(cause(&out), Some(Cause::Release));
    // Manual failback confirmed by an operator.
    let m = [policy(Failback::Manual, 0, &[("default", &[HZ, ZJK])])];
    let out = run(
        &m,
        &[(HZ, up(0)), (ZJK, up(0))],
        &[],
        &[(key, prev(ZJK, ZJK))],
        &[confirm(None)],
        10,
    );
    assert_eq!(cause(&out), Some(Cause::Failback));
    assert_eq!(out.events[0].actor, "carol");
}

/// One row of the single-view table: endpoint EP, view "default",
/// targets [hangzhou, zhangjiakou, shanghai].
struct Case {
    name: &'static str,
    failback: Failback,
    hold: u64,
    health: Vec<(&'static str, Health)>,
    overrides: Vec<Override>,
    previous: Option<Decision>,
    confirmations: Vec<FailbackConfirmation>,
    now: u64,
    // expectations
    active: &'static str,
    base: &'static str,
    degraded: bool,
    pending: Option<&'static str>,
    forced_by: Option<&'static str>,
    /// (from, to, actor); None = no event expected.
    event: Option<(Option<&'static str>, &'static str, &'static str)>,
    wakeup: Option<u64>,
    expired: Vec<&'static str>,
    reason: &'static str,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            failback: Failback::Auto,
            hold: 2 * MIN,
            health: vec![],
            overrides: vec![],
            previous: None,
            confirmations: vec![],
            now: 10 * MIN,
            active: "",
            base: "",
            degraded: false,
            pending: None,
            forced_by: None,
            event: None,
            wakeup: None,
            expired: vec![],
            reason: "",
        }
    }
}

fn table() -> Vec<Case> {
    let now = 10 * MIN;
    vec![
        // --- priority ---
        Case {
            name: "priority: all up picks the first",
            health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
            active: HZ,
            base: HZ,
            event: Some((None, HZ, "regdns")),
            reason: "startup: hangzhou is the highest-priority target and is up",
            ..Case::default()
        },
        Case {
            name: "priority: stays on primary, no event",
            health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
            previous: Some(prev(HZ, HZ)),
            active: HZ,
            base: HZ,
            reason: "hangzhou is the highest-priority target and is up",
            ..Case::default()
        },
        Case {
            name: "priority: skips down primary at startup",
            health: vec![(HZ, down(0, "timeout")), (ZJK, up(0)), (SH, up(0))],
            active: ZJK,
            base: ZJK,
            event: Some((None, ZJK, "regdns")),
            reason: "hangzhou down (timeout); zhangjiakou is the highest-priority up target",
            ..Case::default()
        },
        // --- failover ---
        Case {
            name: "failover: current down switches at once, no hold",
            health: vec![
                (HZ, down(now - 1000, "connection refused")),
                (ZJK, up(now - 1000)),
                (SH, up(0)),
            ],
            previous: Some(prev(HZ, HZ)),
            active: ZJK,
            base: ZJK,
            event: Some((Some(HZ), ZJK, "regdns")),
            reason: "hangzhou down (connection refused); zhangjiakou is the highest-priority up target",
            ..Case::default()
        },
        Case {
            name: "failover: skips down secondary",
            health: vec![(HZ, down(0, "timeout")), (ZJK, down(0, "503")), (SH, up(0))],
            previous: Some(prev(HZ, HZ)),
            active: SH,
            base: SH,
            event: Some((Some(HZ), SH, "regdns")),
            ..Case::default()
        },
        // --- auto failback ---
        Case {
            name: "auto failback: before hold stays, wakeup at since+hold",
            health: vec![(HZ, up(now - 30_000)), (ZJK, up(0)), (SH, up(0))],
            previous: Some(prev(ZJK, ZJK)),
            active: ZJK,
            base: ZJK,
            wakeup: Some(now - 30_000 + 2 * MIN),
            reason: "zhangjiakou is up; failback to hangzhou held: up for 30s of 2m0s hold, failback in 1m30s",
            ..Case::default()
        },
        Case {
            name: "auto failback: exactly at hold switches",
            health: vec![(HZ, up(now - 2 * MIN)), (ZJK, up(0)), (SH, up(0))],
            previous: Some(prev(ZJK, ZJK)),
            active: HZ,
            base: HZ,
            event: Some((Some(ZJK), HZ, "regdns")),
            reason: "failback to hangzhou: up for 2m0s (hold 2m0s)",
            ..Case::default()
        },
        Case {
            name: "auto failback: to the best ready target, wakeup for the one still held",
            health: vec![
                (HZ, up(now - 10_000)),
                (ZJK, up(now - 5 * MIN)),
                (SH, up(0)),
            ],
            previous: Some(prev(SH, SH)),
            active: ZJK,
            base: ZJK,
            event: Some((Some(SH), ZJK, "regdns")),
            wakeup: Some(now - 10_000 + 2 * MIN),
            reason: "failback to zhangjiakou: up for 5m0s (hold 2m0s)",
            ..Case::default()
        },
        Case {
            name: "auto failback: hold 0 switches immediately",
            hold: 0,
            health: vec![(HZ, up(now)), (ZJK, up(0))],
            previous: Some(prev(ZJK, ZJK)),
            active: HZ,
            base: HZ,
            event: Some((Some(ZJK), HZ, "regdns")),
            reason: "failback to hangzhou: up for 0s (hold 0s)",
            ..Case::default()
        },
        // --- manual failback ---
        Case {
            name: "manual failback: pending without confirmation",
            failback: Failback::Manual,
            health: vec![(HZ, up(now - 10 * MIN)), (ZJK, up(0))],
            previous: Some(prev(ZJK, ZJK)),
            active: ZJK,
            base: ZJK,
            pending: Some(HZ),
            reason: "waiting for operator confirmation to return to hangzhou",
            ..Case::default()
        },
        Case {
            name: "manual failback: confirmation switches with the operator as actor",
            failback: Failback::Manual,
            health: vec![(HZ, up(now - 10 * MIN)), (ZJK, up(0))],
            previous: Some(Decision {
                failback_pending: Some(s(HZ)),
                ..prev(ZJK, ZJK)
            }),
            confirmations: vec![confirm(Some("default"))],
            active: HZ,
            base: HZ,
            event: Some((Some(ZJK), HZ, "carol")),
            reason: "failback to hangzhou (hangzhou up for 10m0s) confirmed by carol (primary verified)",
            ..Case::default()
        },
        Case {
            name: "manual failback: confirmation for another view is ignored",
            failback: Failback::Manual,
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            previous: Some(prev(ZJK, ZJK)),
            confirmations: vec![confirm(Some("vpc-bbbbb"))],
            active: ZJK,
            base: ZJK,
            pending: Some(HZ),
            ..Case::default()
        },
        Case {
            name: "manual failback: failover itself is immediate",
            failback: Failback::Manual,
            health: vec![(HZ, down(0, "timeout")), (ZJK, up(0))],
            previous: Some(prev(HZ, HZ)),
            active: ZJK,
            base: ZJK,
            event: Some((Some(HZ), ZJK, "regdns")),
            ..Case::default()
        },
        // --- fail-static ---
        Case {
            name: "fail-static: nothing up keeps current, degraded",
            health: vec![
                (HZ, down(0, "timeout")),
                (ZJK, down(0, "503")),
                (SH, down(0, "")),
            ],
            previous: Some(prev(ZJK, ZJK)),
            active: ZJK,
            base: ZJK,
            degraded: true,
            reason: "fail-static: no target up (hangzhou down: timeout, zhangjiakou down: 503, shanghai down); keeping zhangjiakou",
            ..Case::default()
        },
        Case {
            name: "fail-static: at startup uses the first target",
            health: vec![
                (HZ, down(0, "timeout")),
                (ZJK, down(0, "503")),
                (SH, down(0, "x")),
            ],
            active: HZ,
            base: HZ,
            degraded: true,
            event: Some((None, HZ, "regdns")),
            reason: "no previous answer, using hangzhou",
            ..Case::default()
        },
        Case {
            name: "fail-static: current down, other unknown: keep current",
            health: vec![(HZ, down(0, "timeout"))],
            previous: Some(prev(HZ, HZ)),
            active: HZ,
            base: HZ,
            degraded: true,
            reason: "fail-static: no target up (hangzhou down: timeout, zhangjiakou unknown, shanghai unknown)",
            ..Case::default()
        },
        // --- drain ---
        Case {
            name: "drain: drained primary is left at once",
            health: vec![(HZ, up(0)), (ZJK, up(now)), (SH, up(0))],
            overrides: vec![drain("d1", HZ)],
            previous: Some(prev(HZ, HZ)),
            active: ZJK,
            base: ZJK,
            event: Some((Some(HZ), ZJK, "regdns")),
            reason: "hangzhou drained by bob (override d1: upgrade); zhangjiakou is the highest-priority up target",
            ..Case::default()
        },
        Case {
            name: "drain: drained instance used when nothing else is up",
            health: vec![(HZ, up(0)), (ZJK, down(0, "503")), (SH, down(0, "timeout"))],
            overrides: vec![drain("d1", HZ)],
            previous: Some(prev(ZJK, ZJK)),
            active: HZ,
            base: HZ,
            event: Some((Some(ZJK), HZ, "regdns")),
            reason: "using hangzhou, the highest-priority up target, although drained",
            ..Case::default()
        },
        Case {
            name: "drain: drained current kept when nothing else is up",
            health: vec![(HZ, up(0)), (ZJK, down(0, "503")), (SH, down(0, "timeout"))],
            overrides: vec![drain("d1", HZ)],
            previous: Some(prev(HZ, HZ)),
            active: HZ,
            base: HZ,
            reason: "keeping hangzhou, up although drained",
            ..Case::default()
        },
        Case {
            name: "drain: no failback to a drained higher-priority target",
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            overrides: vec![drain("d1", HZ)],
            previous: Some(prev(ZJK, ZJK)),
            active: ZJK,
            base: ZJK,
            ..Case::default()
        },
        Case {
            name: "drain: expired drain no longer applies",
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            overrides: vec![Override {
                expires: Some(now),
                ..drain("d1", HZ)
            }],
            previous: Some(prev(HZ, HZ)),
            active: HZ,
            base: HZ,
            expired: vec!["d1"],
            ..Case::default()
        },
        // --- force ---
        Case {
            name: "force: forced to a down instance, base keeps evolving",
            health: vec![(HZ, up(0)), (ZJK, down(0, "timeout"))],
            overrides: vec![force("f1", None, ZJK, "ops", 5, Some(now + MIN))],
            previous: Some(prev(HZ, HZ)),
            active: ZJK,
            base: HZ,
            forced_by: Some("f1"),
            event: Some((Some(HZ), ZJK, "ops")),
            wakeup: Some(now + MIN),
            reason: "forced by ops (override f1: maintenance); note: zhangjiakou is down (timeout); without the force: hangzhou",
            ..Case::default()
        },
        Case {
            name: "force: expiry returns to base, reported as expired",
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            overrides: vec![force("f1", None, ZJK, "ops", 5, Some(now))],
            previous: Some(Decision {
                forced_by: Some(s("f1")),
                forced_actor: Some(s("ops")),
                ..prev(ZJK, HZ)
            }),
            active: HZ,
            base: HZ,
            event: Some((Some(ZJK), HZ, "ops")),
            expired: vec!["f1"],
            reason: "force f1 expired; back to hangzhou",
            ..Case::default()
        },
        Case {
            name: "force: release to primary base (manual) arms no pending failback",
            failback: Failback::Manual,
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            previous: Some(Decision {
                forced_by: Some(s("f1")),
                forced_actor: Some(s("ops")),
                ..prev(ZJK, HZ)
            }),
            active: HZ,
            base: HZ,
            pending: None,
            event: Some((Some(ZJK), HZ, "ops")),
            reason: "force f1 released; back to hangzhou",
            ..Case::default()
        },
        Case {
            name: "force: forcing to primary while base on secondary, manual",
            failback: Failback::Manual,
            health: vec![(HZ, up(0)), (ZJK, up(0))],
            overrides: vec![force("f1", None, HZ, "ops", 5, None)],
            previous: Some(prev(ZJK, ZJK)),
            active: HZ,
            base: ZJK,
            forced_by: Some("f1"),
            pending: Some(HZ),
            event: Some((Some(ZJK), HZ, "ops")),
            ..Case::default()
        },
        Case {
            name: "force: naming a non-target instance does not apply",
            health: vec![(HZ, up(0))],
            overrides: vec![force("f1", None, "beijing", "ops", 5, None)],
            previous: Some(prev(HZ, HZ)),
            active: HZ,
            base: HZ,
            ..Case::default()
        },
        Case {
            name: "force: newest of equals wins",
            health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
            overrides: vec![
                force("f-new", None, SH, "dave", 20, None),
                force("f-old", None, ZJK, "ops", 10, None),
            ],
            previous: Some(prev(HZ, HZ)),
            active: SH,
            base: HZ,
            forced_by: Some("f-new"),
            event: Some((Some(HZ), SH, "dave")),
            ..Case::default()
        },
        // --- unknown health ---
        Case {
            name: "unknown: startup assumes the first target",
            health: vec![],
            active: HZ,
            base: HZ,
            degraded: true,
            event: Some((None, HZ, "regdns")),
            reason: "startup: hangzhou assumed until probes conclude",
            ..Case::default()
        },
        Case {
            name: "unknown: never chosen as new target over an up one",
            health: vec![(ZJK, up(0))],
            active: ZJK,
            base: ZJK,
            event: Some((None, ZJK, "regdns")),
            reason: "startup: hangzhou health unknown; zhangjiakou is the highest-priority up target",
            ..Case::default()
        },
        Case {
            name: "unknown: startup skips a known-down target",
            health: vec![(HZ, down(0, "timeout"))],
            active: ZJK,
            base: ZJK,
            degraded: true,
            event: Some((None, ZJK, "regdns")),
            reason: "startup: zhangjiakou assumed until probes conclude",
            ..Case::default()
        },
        Case {
            name: "unknown: previous target kept while unknown even if others are up",
            health: vec![(ZJK, up(0)), (HZ, up(0))],
            previous: Some(prev(SH, SH)),
            active: SH,
            base: SH,
            reason: "shanghai health unknown (probes not concluded); keeping shanghai",
            ..Case::default()
        },
        Case {
            name: "previous base no longer a target is recomputed",
            health: vec![(HZ, up(0))],
            previous: Some(prev("beijing", "beijing")),
            active: HZ,
            base: HZ,
            event: Some((Some("beijing"), HZ, "regdns")),
            reason: "beijing is no longer a target of this view",
            ..Case::default()
        },
    ]
}

#[test]
fn rules_table() {
    let mut failures = Vec::new();
    for c in table() {
        let p = policy(c.failback, c.hold, &[("default", &[HZ, ZJK, SH])]);
        let previous: Vec<((&str, &str), Decision)> = c
            .previous
            .iter()
            .map(|d| ((EP, "default"), d.clone()))
            .collect();
        let out = run(
            &[p],
            &c.health,
            &c.overrides,
            &previous,
            &c.confirmations,
            c.now,
        );
        let d = &out.decisions[&(s(EP), s("default"))];
        let mut errs = Vec::new();
        if d.active != c.active {
            errs.push(format!("active {} != {}", d.active, c.active));
        }
        if d.base != c.base {
            errs.push(format!("base {} != {}", d.base, c.base));
        }
        if d.degraded != c.degraded {
            errs.push(format!("degraded {} != {}", d.degraded, c.degraded));
        }
        if d.failback_pending.as_deref() != c.pending {
            errs.push(format!(
                "pending {:?} != {:?}",
                d.failback_pending, c.pending
            ));
        }
        if d.forced_by.as_deref() != c.forced_by {
            errs.push(format!("forced_by {:?} != {:?}", d.forced_by, c.forced_by));
        }
        let ev: Vec<(Option<&str>, &str, &str)> = out
            .events
            .iter()
            .map(|e| (e.from.as_deref(), e.to.as_str(), e.actor.as_str()))
            .collect();
        let want_ev: Vec<_> = c.event.into_iter().collect();
        if ev != want_ev {
            errs.push(format!("events {ev:?} != {want_ev:?}"));
        }
        if out.next_wakeup != c.wakeup {
            errs.push(format!("wakeup {:?} != {:?}", out.next_wakeup, c.wakeup));
        }
        if out.expired_overrides != c.expired {
            errs.push(format!(
                "expired {:?} != {:?}",
                out.expired_overrides, c.expired
            ));
        }
        if !d.reason.contains(c.reason) {
            errs.push(format!("reason {:?} lacks {:?}", d.reason, c.reason));
        }
        for e in &out.events {
            if e.reason != d.reason || e.time != c.now {
                errs.push(format!("event {e:?} disagrees with decision"));
            }
        }
        let want_since = match &c.previous {
            Some(p) if p.active == d.active => p.since,
            _ => c.now,
        };
        if d.since != want_since {
            errs.push(format!("since {} != {want_since}", d.since));
        }
        if !errs.is_empty() {
            failures.push(format!("{}: {}", c.name, errs.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn force_view_specific_beats_all_views() {
    let p = policy(
        Failback::Auto,
        0,
        &[("default", &[HZ, ZJK, SH]), ("vpc-bbbbb", &[HZ, ZJK, SH])],
    );
    let health = [(HZ, up(0)), (ZJK, up(0)), (SH, up(0))];
    // The all-views force is newer, the view-specific one still wins.
    let overrides = [
        force("all", None, ZJK, "ops", 20, None),
        force("vpc", Some("vpc-bbbbb"), SH, "erin", 10, None),
    ];
    let out = run(&[p], &health, &overrides, &[], &[], 100);
    let dflt = &out.decisions[&(s(EP), s("default"))];
    let vpc = &out.decisions[&(s(EP), s("vpc-bbbbb"))];
    assert_eq!(
        (dflt.active.as_str(), dflt.forced_by.as_deref()),
        (ZJK, Some("all"))
    );
    assert_eq!(
        (vpc.active.as_str(), vpc.forced_by.as_deref()),
        (SH, Some("vpc"))
    );
    assert_eq!(dflt.base, HZ);
    assert_eq!(vpc.base, HZ);
    let actors: Vec<_> = out
        .events
        .iter()
        .map(|e| (e.view.as_str(), e.to.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actors,
        vec![("default", ZJK, "ops"), ("vpc-bbbbb", SH, "erin")]
    );
}

#[test]
fn base_evolves_under_force_and_release_returns_to_it() {
    let p = policy(Failback::Auto, 2 * MIN, &[("default", &[HZ, ZJK])]);
    let f = force("f1", None, HZ, "ops", 0, None);
    // Primary fails while forced to it: base fails over, active stays.
    let out = run(
        std::slice::from_ref(&p),
        &[(HZ, down(0, "timeout")), (ZJK, up(0))],
        std::slice::from_ref(&f),
        &[(
            (EP, "default"),
            Decision {
                forced_by: Some(s("f1")),
                forced_actor: Some(s("ops")),
                ..prev(HZ, HZ)
            },
        )],
        &[],
        MIN,
    );
    let d = out.decisions[&(s(EP), s("default"))].clone();
    assert_eq!((d.active.as_str(), d.base.as_str()), (HZ, ZJK));
    assert!(out.events.is_empty());
    assert!(
        d.reason.contains("note: hangzhou is down (timeout)"),
        "{}",
        d.reason
    );
    // Primary back up 1 minute later; hold still running; force released.
    let out = run(
        std::slice::from_ref(&p),
        &[(HZ, up(2 * MIN)), (ZJK, up(0))],
        &[],
        &[((EP, "default"), d)],
        &[],
        3 * MIN,
    );
    let d = &out.decisions[&(s(EP), s("default"))];
    assert_eq!((d.active.as_str(), d.base.as_str()), (ZJK, ZJK));
    assert_eq!(out.next_wakeup, Some(4 * MIN));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].actor, "ops");
    assert!(
        out.events[0]
            .reason
            .starts_with("force f1 released; back to zhangjiakou")
    );
}

#[test]
fn removed_views_and_endpoints_are_dropped_without_events() {
    let p = policy(Failback::Auto, 0, &[("default", &[HZ])]);
    let out = run(
        &[p],
        &[(HZ, up(0))],
        &[],
        &[
            ((EP, "default"), prev(HZ, HZ)),
            ((EP, "gone-view"), prev(HZ, HZ)),
            (("gone.endpoint.", "default"), prev(HZ, HZ)),
        ],
        &[],
        5,
    );
    assert_eq!(out.decisions.len(), 1);
    assert!(out.events.is_empty());
}

#[test]
fn override_expiry_drives_next_wakeup() {
    let p = policy(Failback::Auto, 0, &[("default", &[HZ, ZJK])]);
    let overrides = [
        force("f1", None, ZJK, "ops", 0, Some(500)),
        drain("d1", SH),
        Override {
            expires: Some(300),
            ..drain("d2", SH)
        },
        Override {
            expires: Some(50),
            ..drain("old", SH)
        },
    ];
    let out = run(
        &[p],
        &[(HZ, up(0)), (ZJK, up(0))],
        &overrides,
        &[],
        &[],
        100,
    );
    assert_eq!(out.next_wakeup, Some(300));
    assert_eq!(out.expired_overrides, vec![s("old")]);
}

#[test]
fn manual_confirmation_for_all_views() {
    let p = policy(
        Failback::Manual,
        0,
        &[("default", &[HZ, ZJK]), ("vpc-bbbbb", &[HZ, ZJK])],
    );
    let previous = [
        ((EP, "default"), prev(ZJK, ZJK)),
        ((EP, "vpc-bbbbb"), prev(ZJK, ZJK)),
    ];
    let health = [(HZ, up(0)), (ZJK, up(0))];
    let out = run(std::slice::from_ref(&p), &health, &[], &previous, &[], 10);
    assert!(out.events.is_empty());
    assert!(
        out.decisions
            .values()
            .all(|d| d.failback_pending.as_deref() == Some(HZ))
    );
    let out = run(&[p], &health, &[], &previous, &[confirm(None)], 10);
    assert_eq!(out.events.len(), 2);
    assert!(out.events.iter().all(|e| e.actor == "carol" && e.to == HZ));
    assert!(out.decisions.values().all(|d| d.failback_pending.is_none()));
}

#[test]
fn durations() {
    assert_eq!(format_duration(0), "0s");
    assert_eq!(format_duration(250), "250ms");
    assert_eq!(format_duration(1500), "1.5s");
    assert_eq!(format_duration(120_000), "2m0s");
    assert_eq!(format_duration(3_605_000), "1h0m5s");
}

mod props;
mod replication;
