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
    .replace("@ZHANGJIAKOU_PORT@", "5002");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/zones/demo/registry.io.zone"),
        dir.path().join("registry.io.zone"),
    )
    .unwrap();
    let loaded = config::parse(
        &text,
        &dir.path().join("regdns.toml"),
        Env::prefixed("REGDNS_UNUSED_"),
    )
    .unwrap();
    let m = model::build(&loaded).unwrap();
    assert_eq!(m.instances.len(), 2);
}
