//! Replication awareness: a target whose canary digest has been behind the reference's
//! for longer than `max_lag_ms` is not eligible; fail-static applies when nothing is.

use super::super::*;
use std::collections::BTreeMap;

const EP: &str = "cross-region.registry.io.";
const HZ: &str = "hangzhou";
const ZJK: &str = "zhangjiakou";
const SH: &str = "shanghai";
const MIN: u64 = 60_000;
const T0: u64 = 1_700_000_000_000;

fn policy(failback: Failback, targets: &[&str], max_lag_ms: Option<u64>) -> EndpointPolicy {
    EndpointPolicy {
        name: EP.into(),
        failback,
        failback_hold_ms: MIN,
        views: [(
            "default".to_string(),
            targets.iter().map(|t| t.to_string()).collect(),
        )]
        .into(),
        replication: max_lag_ms.map(|m| ReplicationPolicy {
            reference: targets[0].to_string(),
            max_lag_ms: m,
        }),
    }
}

fn seen(digest: &str, first_seen: u64) -> SeenDigest {
    SeenDigest {
        digest: digest.into(),
        first_seen,
    }
}

fn prev(active: &str) -> Decision {
    Decision {
        active: active.into(),
        base: active.into(),
        reason: String::new(),
        since: T0 - 60 * MIN,
        degraded: false,
        forced_by: None,
        failback_pending: None,
        forced_actor: None,
    }
}

struct Case<'a> {
    policy: EndpointPolicy,
    health: &'a [(&'a str, Health)],
    digests: &'a [(&'a str, SeenDigest)],
    previous: Option<&'a str>,
    now: u64,
}

fn run(c: Case<'_>) -> Outcome {
    let health: BTreeMap<String, Health> = c
        .health
        .iter()
        .map(|(i, h)| (i.to_string(), h.clone()))
        .collect();
    let digests: BTreeMap<String, SeenDigest> = c
        .digests
        .iter()
        .map(|(i, d)| (i.to_string(), d.clone()))
        .collect();
    let previous: BTreeMap<(String, String), Decision> = c
        .previous
        .map(|a| ((EP.to_string(), "default".to_string()), prev(a)))
        .into_iter()
        .collect();
    decide(&Inputs {
        endpoints: std::slice::from_ref(&c.policy),
        health: &health,
        view_health: &BTreeMap::new(),
        overrides: &[],
        previous: &previous,
        confirmations: &[],
        digests: &digests,
        now: c.now,
        only: None,
    })
}

fn down() -> Health {
    Health::Down {
        since: T0 - MIN,
        reason: "canary: manifest regdns/canary:canary: HTTP 500".into(),
    }
}

fn up() -> Health {
    Health::Up {
        since: T0 - 60 * MIN,
    }
}

fn decision(o: &Outcome) -> &Decision {
    &o.decisions[&(EP.to_string(), "default".to_string())]
}

#[test]
fn lagging_secondary_is_skipped_and_fail_static_keeps_the_primary() {
    // hangzhou got a new canary 14 minutes ago; zhangjiakou still has the old one.
    let o = run(Case {
        policy: policy(Failback::Auto, &[HZ, ZJK], Some(10 * MIN)),
        health: &[(HZ, down()), (ZJK, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 14 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
        ],
        previous: Some(HZ),
        now: T0,
    });
    let d = decision(&o);
    assert_eq!(d.active, HZ);
    assert!(d.degraded);
    assert!(
        d.reason
            .contains("zhangjiakou skipped: canary digest behind hangzhou's for 14m0s (max 10m0s)"),
        "{}",
        d.reason
    );
    assert!(
        d.reason.starts_with("fail-static: no target up"),
        "{}",
        d.reason
    );
    assert!(o.events.is_empty());
    assert!(o.lagging.contains(&(EP.to_string(), ZJK.to_string())));
}

#[test]
fn lag_within_the_limit_is_eligible_and_the_crossing_is_a_wakeup() {
    let o = run(Case {
        policy: policy(Failback::Auto, &[HZ, ZJK], Some(10 * MIN)),
        health: &[(HZ, up()), (ZJK, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 4 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
        ],
        previous: Some(HZ),
        now: T0,
    });
    assert!(o.lagging.is_empty());
    assert_eq!(o.next_wakeup, Some(T0 - 4 * MIN + 10 * MIN + 1));
    // Primary fails within the limit: failover to the replica.
    let o = run(Case {
        policy: policy(Failback::Auto, &[HZ, ZJK], Some(10 * MIN)),
        health: &[(HZ, down()), (ZJK, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 4 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
        ],
        previous: Some(HZ),
        now: T0,
    });
    assert_eq!(decision(&o).active, ZJK);
    assert_eq!(o.events.len(), 1);
}

#[test]
fn equal_or_unknown_digests_are_eligible() {
    for digests in [
        vec![
            (HZ, seen("sha256:same", T0 - 99 * MIN)),
            (ZJK, seen("sha256:same", T0 - MIN)),
        ],
        vec![(HZ, seen("sha256:new", T0 - 99 * MIN))],
        vec![(ZJK, seen("sha256:old", T0 - 99 * MIN))],
        vec![],
    ] {
        let o = run(Case {
            policy: policy(Failback::Auto, &[HZ, ZJK], Some(MIN)),
            health: &[(HZ, down()), (ZJK, up())],
            digests: &digests,
            previous: Some(HZ),
            now: T0,
        });
        assert_eq!(decision(&o).active, ZJK, "{digests:?}");
        assert!(o.lagging.is_empty());
        assert_eq!(o.next_wakeup, None);
    }
}

#[test]
fn without_the_rule_lag_is_ignored() {
    let o = run(Case {
        policy: policy(Failback::Auto, &[HZ, ZJK], None),
        health: &[(HZ, down()), (ZJK, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 99 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
        ],
        previous: Some(HZ),
        now: T0,
    });
    assert_eq!(decision(&o).active, ZJK);
    assert!(o.lagging.is_empty());
}

#[test]
fn the_next_in_sync_target_is_chosen_over_a_lagging_one() {
    let o = run(Case {
        policy: policy(Failback::Auto, &[HZ, ZJK, SH], Some(10 * MIN)),
        health: &[(HZ, down()), (ZJK, up()), (SH, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 30 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
            (SH, seen("sha256:new", T0 - 25 * MIN)),
        ],
        previous: Some(HZ),
        now: T0,
    });
    let d = decision(&o);
    assert_eq!(d.active, SH);
    assert!(!d.degraded);
    assert!(
        d.reason
            .contains("zhangjiakou skipped: canary digest behind hangzhou's for 30m0s"),
        "{}",
        d.reason
    );
}

#[test]
fn an_active_replica_that_falls_behind_is_left_for_the_recovered_primary() {
    // Manual failback would normally keep zhangjiakou; lagging makes it ineligible.
    let o = run(Case {
        policy: policy(Failback::Manual, &[HZ, ZJK], Some(10 * MIN)),
        health: &[(HZ, up()), (ZJK, up())],
        digests: &[
            (HZ, seen("sha256:new", T0 - 11 * MIN)),
            (ZJK, seen("sha256:old", T0 - 300 * MIN)),
        ],
        previous: Some(ZJK),
        now: T0,
    });
    let d = decision(&o);
    assert_eq!(d.active, HZ);
    assert_eq!(d.failback_pending, None);
    assert!(d.reason.contains("zhangjiakou skipped"), "{}", d.reason);
}

#[test]
fn the_difference_starts_at_the_later_first_seen() {
    // zhangjiakou got a different digest after hangzhou's: behind since then.
    assert_eq!(
        replication_lag(
            Some(&seen("sha256:a", T0 - 20 * MIN)),
            Some(&seen("sha256:b", T0 - 5 * MIN)),
            T0
        ),
        Some((T0 - 5 * MIN, 5 * MIN))
    );
    assert_eq!(
        replication_lag(Some(&seen("sha256:a", T0)), Some(&seen("sha256:a", T0)), T0),
        None
    );
    assert_eq!(replication_lag(None, Some(&seen("sha256:a", T0)), T0), None);
}
