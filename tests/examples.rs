//! The shipped example configurations stay valid: `zones/regdns.toml` (the real-case
//! example) and the demo's config.

use figment::providers::Env;
use regdns::{config, model};

#[test]
fn real_case_example_is_valid() {
    let m = model::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/zones/regdns.toml"
    )))
    .unwrap();
    assert_eq!(m.zones.len(), 7);
    assert_eq!(
        m.views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["vpc-aaaaa", "vpc-bbbbb", "onprem", "default"]
    );
    let privatezone = m.endpoints[0]
        .publish
        .iter()
        .filter(|p| matches!(p, regdns::model::PublishTarget::PrivateZone { .. }))
        .count();
    assert_eq!(privatezone, 2);
}

#[test]
fn demo_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/zones/demo/regdns.toml"
    ))
    .unwrap()
    .replace("@HANGZHOU_PORT@", "5001")
    .replace("@ZHANGJIAKOU_PORT@", "5002")
    .replace("@GA_PORT@", "5003")
    .replace("@DIRECT_PORT@", "5004")
    .replace("@PUBLIC_DNS_PORT@", "5005");
    assert!(
        !text.contains("_PORT@/") && !text.contains("_PORT@\""),
        "every placeholder in a value replaced"
    );
    for zone in ["registry.io.zone", "docker.io.zone"] {
        std::fs::copy(
            format!("{}/zones/demo/{zone}", env!("CARGO_MANIFEST_DIR")),
            dir.path().join(zone),
        )
        .unwrap();
    }
    let loaded = config::parse(
        &text,
        &dir.path().join("regdns.toml"),
        Env::prefixed("REGDNS_UNUSED_"),
    )
    .unwrap();
    let m = model::build(&loaded).unwrap();
    assert_eq!(m.instances.len(), 4);
    assert!(
        m.endpoints[1].targets[0]
            .iter()
            .any(|t| t.answer == model::TargetAnswer::Passthrough),
        "the demo's third path passes through to the public answer"
    );
}

#[test]
fn dockerhub_ga_example_is_valid() {
    let m = model::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/zones/examples/dockerhub-ga/regdns.toml"
    )))
    .unwrap();
    let ga = m.instance("ga").unwrap();
    assert!(ga.connect.is_some());
    assert_eq!(ga.connect_hosts, ["*"], "every host of a pull through GA");
    let c = ga.canary.as_ref().unwrap();
    assert_eq!(
        (c.manifest, c.blob_every),
        (config::instance::CanaryManifest::Head, Some(10))
    );
    let direct = m.instance("direct").unwrap();
    assert_eq!(direct.resolver.as_deref(), Some("223.5.5.5:53"));
    assert_eq!(m.endpoints.len(), 4);
}
