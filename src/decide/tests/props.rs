//! Property tests of the decision engine over random worlds.

use super::super::*;
use proptest::prelude::*;

const INSTANCES: [&str; 4] = ["i0", "i1", "i2", "i3"];
const VIEWS: [&str; 3] = ["default", "v1", "v2"];
const NOW: u64 = 100_000;

#[derive(Debug, Clone)]
struct World {
    endpoints: Vec<EndpointPolicy>,
    health: BTreeMap<String, Health>,
    /// Empty in random worlds: the properties read `health`; per-view health has its
    /// own property below.
    view_health: BTreeMap<String, BTreeMap<String, Health>>,
    overrides: Vec<Override>,
    previous: BTreeMap<(String, String), Decision>,
    confirmations: Vec<FailbackConfirmation>,
}

static NO_DIGESTS: BTreeMap<String, SeenDigest> = BTreeMap::new();

impl World {
    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            endpoints: &self.endpoints,
            health: &self.health,
            view_health: &self.view_health,
            overrides: &self.overrides,
            previous: &self.previous,
            confirmations: &self.confirmations,
            digests: &NO_DIGESTS,
            now: NOW,
            only: None,
        }
    }
}

fn ep_name(i: usize) -> String {
    format!("e{i}.registry.io.")
}

fn targets() -> impl Strategy<Value = Vec<String>> {
    // A random non-empty ordered subset of the instances.
    Just(INSTANCES.to_vec())
        .prop_shuffle()
        .prop_flat_map(|v| (Just(v), 1..=4usize))
        .prop_map(|(v, n)| v[..n].iter().map(|s| s.to_string()).collect())
}

fn policy(i: usize) -> impl Strategy<Value = EndpointPolicy> {
    (
        prop_oneof![Just(Failback::Auto), Just(Failback::Manual)],
        prop_oneof![Just(0u64), Just(1_000), Just(30_000)],
        proptest::collection::btree_map(
            proptest::sample::select(VIEWS.to_vec()).prop_map(String::from),
            targets(),
            1..=3,
        ),
    )
        .prop_map(move |(failback, hold, views)| EndpointPolicy {
            name: ep_name(i),
            failback,
            failback_hold_ms: hold,
            views,
            replication: None,
        })
}

fn time() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(NOW), NOW - 40_000..=NOW]
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        1 => Just(Health::Unknown),
        3 => time().prop_map(|since| Health::Up { since }),
        2 => (time(), "[a-z]{0,3}").prop_map(|(since, reason)| Health::Down { since, reason }),
    ]
}

fn instance() -> impl Strategy<Value = String> {
    proptest::sample::select(INSTANCES.to_vec()).prop_map(String::from)
}

fn view_opt() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::sample::select(VIEWS.to_vec()).prop_map(String::from))
}

fn an_override() -> impl Strategy<Value = Override> {
    let kind = prop_oneof![
        (0..4usize, view_opt(), instance()).prop_map(|(e, view, instance)| {
            OverrideKind::Force {
                endpoint: ep_name(e),
                view,
                instance,
            }
        }),
        instance().prop_map(|instance| OverrideKind::Drain { instance }),
    ];
    (
        0..6u32,
        kind,
        0..NOW,
        proptest::option::of(NOW - 10..NOW + 10),
    )
        .prop_map(|(id, kind, created, expires)| Override {
            id: format!("o{id}"),
            kind,
            reason: "r".into(),
            actor: format!("actor{id}"),
            created,
            expires,
        })
}

fn a_decision() -> impl Strategy<Value = Decision> {
    (
        instance(),
        instance(),
        proptest::option::of(0..6u32),
        any::<bool>(),
    )
        .prop_map(|(active, base, forced, same)| Decision {
            active: if same { base.clone() } else { active },
            base,
            reason: "prev".into(),
            since: 1,
            degraded: false,
            forced_by: forced.map(|i| format!("o{i}")),
            failback_pending: None,
            forced_actor: forced.map(|i| format!("actor{i}")),
        })
}

fn world() -> impl Strategy<Value = World> {
    (1..=3usize)
        .prop_flat_map(|n| {
            let policies: Vec<_> = (0..n).map(policy).collect();
            (
                policies,
                // Every instance gets a health (possibly Unknown);
                // a missing entry is covered by the unit tests.
                proptest::collection::vec(health(), 4)
                    .prop_map(|hs| INSTANCES.iter().map(|i| i.to_string()).zip(hs).collect()),
                proptest::collection::vec(an_override(), 0..=4),
                proptest::collection::btree_map(
                    (
                        // Mostly existing endpoints, some removed ones.
                        (0..=n).prop_map(ep_name),
                        proptest::sample::select(VIEWS.to_vec()).prop_map(String::from),
                    ),
                    a_decision(),
                    0..=9,
                ),
                proptest::collection::vec(
                    (0..4usize, view_opt()).prop_map(|(e, view)| FailbackConfirmation {
                        endpoint: ep_name(e),
                        view,
                        actor: "op".into(),
                        reason: "ok".into(),
                    }),
                    0..=2,
                ),
            )
        })
        .prop_map(
            |(endpoints, health, overrides, previous, confirmations)| World {
                endpoints,
                health,
                view_health: BTreeMap::new(),
                overrides,
                previous,
                confirmations,
            },
        )
}

fn is_up(w: &World, i: &str) -> bool {
    matches!(w.health.get(i), Some(Health::Up { .. }))
}

fn is_unknown(w: &World, i: &str) -> bool {
    matches!(w.health.get(i), None | Some(Health::Unknown))
}

fn drained(w: &World, i: &str) -> bool {
    w.overrides.iter().any(|o| {
        matches!(&o.kind, OverrideKind::Drain { instance } if instance == i)
            && o.expires.is_none_or(|t| t > NOW)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// (a) while an up, undrained target exists, neither a down nor
    /// an unknown target is picked, unless forced (or it is the
    /// previous base kept while its health is unknown).
    #[test]
    fn prefers_up_undrained(w in world()) {
        let out = decide(&w.inputs());
        for ((e, v), d) in &out.decisions {
            let policy = w.endpoints.iter().find(|p| &p.name == e).unwrap();
            let targets = &policy.views[v];
            let any_usable = targets.iter().any(|t| is_up(&w, t) && !drained(&w, t));
            if d.forced_by.is_none() {
                prop_assert_eq!(&d.active, &d.base);
            }
            if any_usable {
                let kept_unknown = is_unknown(&w, &d.base)
                    && !drained(&w, &d.base)
                    && w.previous.get(&(e.clone(), v.clone())).is_some_and(|p| p.base == d.base);
                prop_assert!(
                    (is_up(&w, &d.base) && !drained(&w, &d.base)) || kept_unknown,
                    "base {} for {}/{}: {}", d.base, e, v, d.reason
                );
            }
            prop_assert_eq!(d.degraded, !targets.iter().any(|t| is_up(&w, t)));
        }
    }

    /// (b) determinism.
    #[test]
    fn deterministic(w in world()) {
        prop_assert_eq!(decide(&w.inputs()), decide(&w.inputs()));
    }

    /// (c) idempotence: feeding the decisions back yields no events.
    #[test]
    fn idempotent(w in world()) {
        let first = decide(&w.inputs());
        let mut w2 = w.clone();
        w2.previous = first.decisions.clone();
        let second = decide(&w2.inputs());
        prop_assert!(second.events.is_empty(), "{:?}", second.events);
        prop_assert_eq!(
            second.decisions.values().map(|d| (&d.active, &d.base)).collect::<Vec<_>>(),
            first.decisions.values().map(|d| (&d.active, &d.base)).collect::<Vec<_>>()
        );
    }

    /// (d) no flapping: leaving a usable base for a higher-priority
    /// target happens only once its hold is over (auto) or on
    /// confirmation (manual).
    #[test]
    fn no_early_failback(w in world()) {
        let out = decide(&w.inputs());
        for ((e, v), d) in &out.decisions {
            let Some(p) = w.previous.get(&(e.clone(), v.clone())) else { continue };
            let policy = w.endpoints.iter().find(|x| &x.name == e).unwrap();
            let targets = &policy.views[v];
            let pos = |i: &str| targets.iter().position(|t| t == i);
            let (Some(old), Some(new)) = (pos(&p.base), pos(&d.base)) else { continue };
            if new >= old || !is_up(&w, &p.base) || drained(&w, &p.base) {
                continue;
            }
            match policy.failback {
                Failback::Auto => {
                    let Some(Health::Up { since }) = w.health.get(&d.base) else {
                        return Err(TestCaseError::fail("failback to a target not up"));
                    };
                    prop_assert!(since + policy.failback_hold_ms <= NOW);
                }
                Failback::Manual => {
                    prop_assert!(w.confirmations.iter().any(|c| &c.endpoint == e
                        && c.view.as_ref().is_none_or(|cv| cv == v)));
                }
            }
        }
    }

    /// (e) active and base are always targets of the view; the
    /// wake-up is in the future.
    #[test]
    fn active_is_a_target(w in world()) {
        let out = decide(&w.inputs());
        for ((e, v), d) in &out.decisions {
            let policy = w.endpoints.iter().find(|x| &x.name == e).unwrap();
            prop_assert!(policy.views[v].contains(&d.active));
            prop_assert!(policy.views[v].contains(&d.base));
        }
        if let Some(t) = out.next_wakeup {
            prop_assert!(t > NOW);
        }
    }
}

/// A world decided once (the previous run), then a health change of some instances
/// `dt` ms later: the full run and the run restricted to the endpoints using a changed
/// instance agree.
fn world_and_change() -> impl Strategy<Value = (World, Vec<Option<Health>>, u64)> {
    (
        world(),
        proptest::collection::vec(proptest::option::of(health()), 4),
        0..60_000u64,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Re-deciding only the endpoints that use an instance whose health changed gives
    /// what re-deciding everything gives (decisions, events, expiries, lagging), apart from
    /// the time-dependent wording of the carried-over reasons; the wake-up is never later.
    #[test]
    fn restricted_run_equals_full_run((mut w, change, dt) in world_and_change()) {
        w.confirmations.clear();
        let first = decide(&w.inputs());
        // The caller drops what expired (ids may repeat in random worlds: drop by expiry).
        w.overrides.retain(|o| o.expires.is_none_or(|t| t > NOW));
        let previous = first.decisions.clone();
        let mut now = NOW + dt;
        if let Some(t) = first.next_wakeup {
            // A due timer means a full run; the restriction is only for runs before it.
            now = now.min(t.saturating_sub(1)).max(NOW);
        }
        let mut health = w.health.clone();
        let mut changed = BTreeSet::new();
        for (i, h) in INSTANCES.iter().zip(change) {
            if let Some(h) = h {
                let h = match h {
                    Health::Up { since } => Health::Up { since: since.max(NOW) },
                    Health::Down { since, reason } => Health::Down { since: since.max(NOW), reason },
                    Health::Unknown => Health::Unknown,
                };
                if health.get(*i) != Some(&h) {
                    changed.insert(i.to_string());
                    health.insert(i.to_string(), h);
                }
            }
        }
        let dirty = endpoints_using(&w.endpoints, &changed);
        let base = Inputs {
            endpoints: &w.endpoints,
            health: &health,
            view_health: &BTreeMap::new(),
            overrides: &w.overrides,
            previous: &previous,
            confirmations: &[],
            digests: &NO_DIGESTS,
            now,
            only: None,
        };
        let full = decide(&base);
        let part = decide(&Inputs { only: Some(&dirty), ..base });
        let mut merged = previous.clone();
        for (k, d) in &part.decisions {
            prop_assert!(dirty.contains(&k.0) || !previous.contains_key(k));
            merged.insert(k.clone(), d.clone());
        }
        prop_assert_eq!(merged.len(), full.decisions.len());
        for (k, f) in &full.decisions {
            let m = &merged[k];
            if part.decisions.contains_key(k) {
                prop_assert_eq!(m, f);
            } else {
                prop_assert_eq!(&Decision { reason: f.reason.clone(), ..m.clone() }, f);
            }
        }
        prop_assert_eq!(&part.events, &full.events);
        prop_assert_eq!(&part.expired_overrides, &full.expired_overrides);
        prop_assert_eq!(&part.lagging, &full.lagging);
        let kept = first.next_wakeup.filter(|t| *t > now);
        let combined = match (part.next_wakeup, kept) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(f) = full.next_wakeup {
            prop_assert!(combined.is_some_and(|c| c <= f), "wake-up {:?} later than {}", combined, f);
        }
    }
}

fn health_map() -> impl Strategy<Value = BTreeMap<String, Health>> {
    proptest::collection::vec(proptest::option::of(health()), 4).prop_map(|hs| {
        INSTANCES
            .iter()
            .zip(hs)
            .filter_map(|(i, h)| Some((i.to_string(), h?)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// A view given its own health (health as its network sees it) is decided exactly as
    /// the whole world would be with that health, and the other views as with the
    /// instance health: one network's view of a target never moves another view.
    #[test]
    fn a_view_is_decided_on_its_own_health(w in world(), own in health_map(), which in 0..3usize) {
        let view = VIEWS[which];
        let per_view: BTreeMap<String, BTreeMap<String, Health>> =
            [(view.to_string(), own.clone())].into_iter().collect();
        let split = decide(&Inputs { view_health: &per_view, ..w.inputs() });
        let with_own = decide(&Inputs { health: &own, ..w.inputs() });
        let plain = decide(&w.inputs());
        for (k, d) in &split.decisions {
            let want = if k.1 == view { &with_own.decisions[k] } else { &plain.decisions[k] };
            prop_assert_eq!(d, want, "{:?}", k);
        }
        prop_assert_eq!(split.decisions.len(), plain.decisions.len());
    }
}
