//! Health quorum: combines the observers' conclusions about one subject into the one
//! health every node decides on. Pure: values in, values out; same inputs on every node
//! give the same output on every node (observers are taken in name order).

use std::collections::BTreeMap;

use crate::config::HealthQuorum;
use crate::decide::Health;

/// How many of `n` observers must see a subject down for it to be down.
pub fn down_threshold(q: HealthQuorum, n: usize) -> usize {
    match q {
        HealthQuorum::Any => 1,
        HealthQuorum::Majority => n / 2 + 1,
        HealthQuorum::All => n,
    }
}

/// Combines one subject's observations (observer name → what its probes concluded).
/// Observers that have not concluded (`Unknown`) do not count. Down carries the latest
/// `since` of the observers seeing it down and the first one's reason; up carries the
/// latest `since` of the observers seeing it up (a failback hold counts from the last
/// recovery).
pub fn combine(q: HealthQuorum, observations: &BTreeMap<String, Health>) -> Health {
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for (node, h) in observations {
        match h {
            Health::Up { since } => ups.push(*since),
            Health::Down { since, reason } => downs.push((node, *since, reason)),
            Health::Unknown => {}
        }
    }
    let n = ups.len() + downs.len();
    if n == 0 {
        return Health::Unknown;
    }
    if downs.len() >= down_threshold(q, n) {
        let since = downs.iter().map(|d| d.1).max().unwrap_or(0);
        let names: Vec<&str> = downs.iter().map(|d| d.0.as_str()).collect();
        let reason = if n == 1 {
            downs[0].2.clone()
        } else {
            format!(
                "{} (down on {} of {} observers: {}; quorum {q})",
                downs[0].2,
                downs.len(),
                n,
                names.join(", ")
            )
        };
        Health::Down { since, reason }
    } else {
        Health::Up {
            since: ups.iter().copied().max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up(s: u64) -> Health {
        Health::Up { since: s }
    }
    fn down(s: u64) -> Health {
        Health::Down {
            since: s,
            reason: format!("r{s}"),
        }
    }
    fn obs(list: &[Health]) -> BTreeMap<String, Health> {
        list.iter()
            .enumerate()
            .map(|(i, h)| (format!("n{i}"), h.clone()))
            .collect()
    }
    fn is_down(h: &Health) -> bool {
        matches!(h, Health::Down { .. })
    }

    #[test]
    fn table() {
        use HealthQuorum::*;
        let cases = [
            (Majority, vec![up(1), down(2)], false),
            (Any, vec![up(1), down(2)], true),
            (All, vec![up(1), down(2)], false),
            (Majority, vec![up(1), down(2), down(3)], true),
            (All, vec![down(1), down(2), down(3)], true),
            (All, vec![down(1), Health::Unknown], true),
            (Majority, vec![down(1)], true),
            (Majority, vec![up(1), Health::Unknown, down(3)], false),
        ];
        for (q, list, want) in cases {
            assert_eq!(is_down(&combine(q, &obs(&list))), want, "{q} {list:?}");
        }
        assert_eq!(combine(Majority, &obs(&[Health::Unknown])), Health::Unknown);
        assert_eq!(combine(Majority, &obs(&[down(7)])), down(7));
        assert_eq!(combine(Majority, &obs(&[up(3), up(9)])), up(9));
    }

    fn health() -> impl Strategy<Value = Health> {
        prop_oneof![
            Just(Health::Unknown),
            (0u64..100).prop_map(up),
            (0u64..100).prop_map(down),
        ]
    }

    proptest! {
        #[test]
        fn quorums_are_ordered(list in proptest::collection::vec(health(), 0..7)) {
            let o = obs(&list);
            let (a, m, l) = (combine(HealthQuorum::Any, &o), combine(HealthQuorum::Majority, &o), combine(HealthQuorum::All, &o));
            // all down ⇒ majority down ⇒ any down
            prop_assert!(!is_down(&l) || is_down(&m));
            prop_assert!(!is_down(&m) || is_down(&a));
        }

        #[test]
        fn unanimous_nodes_decide(list in proptest::collection::vec(0u64..100, 1..7), isdown in any::<bool>()) {
            let hs: Vec<Health> = list.iter().map(|s| if isdown { down(*s) } else { up(*s) }).collect();
            for q in [HealthQuorum::Any, HealthQuorum::Majority, HealthQuorum::All] {
                prop_assert_eq!(is_down(&combine(q, &obs(&hs))), isdown);
            }
        }

        #[test]
        fn one_dissenter_of_several_does_not_flip_majority(n in 2usize..7, s in 0u64..100) {
            let mut hs: Vec<Health> = (0..n).map(|_| up(s)).collect();
            hs[0] = down(s);
            prop_assert!(!is_down(&combine(HealthQuorum::Majority, &obs(&hs))));
            prop_assert!(is_down(&combine(HealthQuorum::Any, &obs(&hs))));
        }

        #[test]
        fn the_same_observations_give_the_same_health(list in proptest::collection::vec(health(), 0..7)) {
            // Node order of insertion does not matter (every node builds its own map).
            let o = obs(&list);
            let mut rev = BTreeMap::new();
            for (k, v) in o.iter().rev() { rev.insert(k.clone(), v.clone()); }
            prop_assert_eq!(combine(HealthQuorum::Majority, &o), combine(HealthQuorum::Majority, &rev));
        }
    }
}
