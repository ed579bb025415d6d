//! Tests of the plan (which subject judges each target in each view) and of the per-view
//! combination of observers' conclusions.

use super::*;
use proptest::prelude::*;

const ZONE: &str = "$ORIGIN registry.test.\n$TTL 300\n\
@ IN SOA ns1.registry.test. hostmaster.registry.test. 1 3600 600 86400 60\n\
@ IN NS ns1.registry.test.\nns1 IN A 127.0.0.1\n";

/// Two instances; `vpc-a` answered with addresses and probed at them (quorum from
/// `vpc_quorum`), `vpc-b` answered with addresses but probed as instances, `default` CNAMEs.
fn model(vpc_quorum: &str) -> Model {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), ZONE).unwrap();
    let text = format!(
        r#"[server]
state_dir = "state"
admin_token_file = "t"
[[zone]]
origin = "registry.test."
file = "z.zone"
[[view]]
name = "vpc-a"
clients = ["10.1.0.0/16"]
probe = "addresses"
{vpc_quorum}
[[view]]
name = "vpc-b"
clients = ["10.2.0.0/16"]
[[instance]]
id = "hz"
url = "https://r.registry.test/v2/"
[[instance]]
id = "zjk"
url = "https://r.registry.test/v2/"
[[instance]]
id = "unused"
url = "https://r.registry.test/v2/"
[[endpoint]]
name = "r.registry.test."
[endpoint.targets]
default = [{{ instance = "hz", cname = "hz.example." }}, {{ instance = "zjk", cname = "zjk.example." }}]
vpc-a = [{{ instance = "hz", a = ["10.1.0.5", "10.1.0.6"], aaaa = ["fd00::5"] }}, {{ instance = "zjk", cname = "zjk.example." }}]
vpc-b = [{{ instance = "zjk", a = ["10.2.0.5"] }}, {{ instance = "hz", a = ["10.2.0.6"] }}]
"#
    );
    let path = dir.path().join("regdns.toml");
    let env = crate::config::env_provider("REGDNS_VANTAGE_UNIT_TEST_");
    let loaded = crate::config::parse(&text, &path, env).expect("config");
    crate::model::build(&loaded).expect("model")
}

fn up(s: u64) -> Health {
    Health::Up { since: s }
}
fn down(s: u64) -> Health {
    Health::Down {
        since: s,
        reason: format!("r{s}"),
    }
}
fn obs(list: &[(&str, Health)]) -> BTreeMap<String, Health> {
    list.iter()
        .map(|(k, h)| (k.to_string(), h.clone()))
        .collect()
}

#[test]
fn keys_round_trip() {
    assert_eq!(address_key("hz", "vpc-a"), "hz@vpc-a");
    assert_eq!(split_key("hz@vpc-a"), ("hz", Some("vpc-a")));
    assert_eq!(split_key("hz"), ("hz", None));
}

#[test]
fn the_plan_probes_addresses_only_where_the_view_asks() {
    let p = Plan::new(&model(""));
    let keys: Vec<&str> = p.subjects.keys().map(String::as_str).collect();
    assert_eq!(keys, ["hz", "hz@vpc-a", "unused", "zjk"]);
    let s = &p.subjects["hz@vpc-a"];
    assert_eq!(s.instance, "hz");
    assert_eq!(s.view.as_deref(), Some("vpc-a"));
    let addrs: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["10.1.0.5", "10.1.0.6", "fd00::5"]);
    // A CNAME target in an addresses view keeps the instance's own checks.
    assert_eq!(p.judged_by["vpc-a"]["zjk"], "zjk");
    assert_eq!(p.judged_by["vpc-a"]["hz"], "hz@vpc-a");
    // probe = "instance" (the default) even for address answers.
    assert_eq!(p.judged_by["vpc-b"]["hz"], "hz");
    assert_eq!(p.judged_by["default"]["hz"], "hz");
    assert!(!p.judged_by["default"].contains_key("unused"));
}

#[test]
fn an_agent_probes_its_views_targets_and_their_addresses() {
    let p = Plan::new(&model(""));
    let keys = |views: Option<&[String]>| -> Vec<String> {
        p.subjects_for(views)
            .iter()
            .map(|s| s.key.clone())
            .collect()
    };
    assert_eq!(keys(None), ["hz", "hz@vpc-a", "unused", "zjk"]);
    assert_eq!(keys(Some(&["vpc-a".into()])), ["hz", "hz@vpc-a", "zjk"]);
    assert_eq!(keys(Some(&["vpc-b".into()])), ["hz", "zjk"]);
}

#[test]
fn declared_observers_decide_their_view_and_everyone_decides_the_rest() {
    let p = Plan::new(&model(""));
    let node = obs(&[("hz", up(1)), ("hz@vpc-a", up(1)), ("zjk", up(1))]);
    // The agent in vpc-a cannot reach hz's internal addresses.
    let agent = obs(&[("hz", up(2)), ("hz@vpc-a", down(2)), ("zjk", up(2))]);
    let vpc_a = vec!["vpc-a".to_string()];
    let observers = [
        Observer {
            name: "node-1",
            views: &[],
            health: &node,
        },
        Observer {
            name: "agent-a",
            views: &vpc_a,
            health: &agent,
        },
    ];
    let c = combine(&p, &observers);
    assert!(matches!(c.views["vpc-a"]["hz"], Health::Down { .. }));
    assert_eq!(c.views["vpc-a"]["zjk"], up(2));
    // vpc-b and default: nobody declares them, both observers count (majority of 2 up).
    assert_eq!(c.views["vpc-b"]["hz"], up(2));
    assert_eq!(c.views["default"]["hz"], up(2));
    assert_eq!(c.instances["hz"], up(2));
    let (who, declared) = deciders("vpc-a", &observers);
    assert!(declared);
    assert_eq!(who.len(), 1);
    let (who, declared) = deciders("vpc-b", &observers);
    assert!(!declared);
    assert_eq!(who.len(), 2);
}

#[test]
fn each_view_has_its_own_quorum() {
    let three = ["vpc-a".to_string()];
    let (a, b) = (obs(&[("hz@vpc-a", up(1))]), obs(&[("hz@vpc-a", up(1))]));
    let cut = obs(&[("hz@vpc-a", down(3))]);
    let o = [("a1", &a), ("a2", &b), ("a3", &cut)].map(|(name, health)| Observer {
        name,
        views: &three,
        health,
    });
    let maj = Plan::new(&model("health_quorum = \"majority\""));
    let any = Plan::new(&model("health_quorum = \"any\""));
    let all = Plan::new(&model("health_quorum = \"all\""));
    assert_eq!(combine(&maj, &o).views["vpc-a"]["hz"], up(1));
    assert!(matches!(
        combine(&any, &o).views["vpc-a"]["hz"],
        Health::Down { .. }
    ));
    assert_eq!(combine(&all, &o).views["vpc-a"]["hz"], up(1));
    // The other views keep the cluster's quorum (majority by default).
    assert_eq!(any.quorum("vpc-b"), HealthQuorum::Majority);
}

#[test]
fn every_view_of_the_plan_has_an_entry_even_before_any_conclusion() {
    let p = Plan::new(&model(""));
    let c = combine(&p, &[]);
    assert_eq!(
        c.views.keys().map(String::as_str).collect::<Vec<_>>(),
        ["default", "vpc-a", "vpc-b"]
    );
    assert!(c.views.values().all(|m| m.is_empty()));
}

#[test]
fn changed_names_instances_that_moved_in_any_view() {
    let p = Plan::new(&model(""));
    let before = obs(&[("hz", up(1)), ("hz@vpc-a", up(1))]);
    let after = obs(&[("hz", up(1)), ("hz@vpc-a", down(2))]);
    let one = |h| {
        [Observer {
            name: "n",
            views: &[],
            health: h,
        }]
    };
    let (x, y) = (combine(&p, &one(&before)), combine(&p, &one(&after)));
    assert_eq!(changed(&x, &y).into_iter().collect::<Vec<_>>(), ["hz"]);
    assert!(changed(&x, &x).is_empty());
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        Just(Health::Unknown),
        (0u64..50).prop_map(up),
        (0u64..50).prop_map(down)
    ]
}

proptest! {
    /// Without `probe = "addresses"`, declared views or a view quorum, every view sees each
    /// target exactly as the instance health: the behaviour before per-view health.
    #[test]
    fn undeclared_instance_views_see_the_instance_health(
        per_node in proptest::collection::vec((health(), health()), 1..5)
    ) {
        let p = Plan::new(&model(""));
        let maps: Vec<BTreeMap<String, Health>> = per_node
            .iter()
            .map(|(h, z)| obs(&[("hz", h.clone()), ("zjk", z.clone())]))
            .collect();
        let names: Vec<String> = (0..maps.len()).map(|i| format!("n{i}")).collect();
        let observers: Vec<Observer<'_>> = maps
            .iter()
            .zip(&names)
            .map(|(h, n)| Observer { name: n, views: &[], health: h })
            .collect();
        let c = combine(&p, &observers);
        for view in ["default", "vpc-b"] {
            for i in ["hz", "zjk"] {
                prop_assert_eq!(c.views[view].get(i), c.instances.get(i));
            }
        }
    }

    /// An observer that does not declare a declared view never changes that view's health.
    #[test]
    fn outsiders_do_not_move_a_declared_view(inside in health(), outside in health()) {
        let p = Plan::new(&model(""));
        let vpc_a = vec!["vpc-a".to_string()];
        let i = obs(&[("hz@vpc-a", inside.clone())]);
        let o = obs(&[("hz@vpc-a", outside)]);
        let c = combine(&p, &[
            Observer { name: "agent", views: &vpc_a, health: &i },
            Observer { name: "node", views: &[], health: &o },
        ]);
        prop_assert_eq!(c.views["vpc-a"].get("hz").cloned().unwrap_or_default(), inside);
    }
}
