//! The deployment files are valid: the alert rules pass `promtool check rules` and their unit
//! tests, the systemd unit passes `systemd-analyze verify` (with no complaint at all) and a
//! security exposure threshold, and the shipped configs pass `regdns check`. A missing tool
//! skips its part with a message.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::daemon::run_bounded;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Option<PathBuf> {
    let p = support::proc::which(name);
    if p.is_none() {
        eprintln!("SKIPPED: {name} is not installed");
    }
    p
}

fn run(cmd: Command) -> (bool, String, String) {
    let o = run_bounded(cmd, Duration::from_secs(60));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dir = root().join("deploy/prometheus");
    let mut c = Command::new(&promtool);
    c.args(["check", "rules", "regdns-alerts.yml"])
        .current_dir(&dir);
    let (ok, out, err) = run(c);
    assert!(ok, "{out}{err}");
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
    let mut c = Command::new(&promtool);
    c.args(["test", "rules", "regdns-alerts.test.yml"])
        .current_dir(&dir);
    let (ok, out, err) = run(c);
    assert!(ok, "alert unit tests:\n{out}{err}");
    // Every metric the rules use is one regdns exports.
    let rules = std::fs::read_to_string(dir.join("regdns-alerts.yml")).unwrap();
    for name in [
        regdns::metrics::ENDPOINT_DEGRADED,
        regdns::metrics::FAILOVERS_TOTAL,
        regdns::metrics::INSTANCE_UP,
        regdns::metrics::PRIVATEZONE_SYNC_TOTAL,
        regdns::metrics::PUBLISH_SYNC_TOTAL,
        regdns::metrics::STATE_WRITE_ERRORS_TOTAL,
        regdns::metrics::FAILBACK_PENDING,
        regdns::metrics::REPLICATION_LAG_SECONDS,
    ] {
        assert!(rules.contains(name), "{name} has no alert");
    }
}

/// The unit with ExecStart pointing at the binary under test (verify needs it to exist).
fn unit_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("deploy/regdns.service")).unwrap();
    let text = edit(text.replace("/usr/local/bin/regdns", env!("CARGO_BIN_EXE_regdns")));
    let path = dir.join("regdns.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let text = std::fs::read_to_string(root().join("deploy/regdns.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "StateDirectory=regdns",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/regdns",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing");
    }
    let Some(sa) = tool("systemd-analyze") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_copy(tmp.path(), |t| t);
    let mut c = Command::new(&sa);
    c.arg("verify").arg(&unit);
    let (ok, out, err) = run(c);
    assert!(ok, "{out}{err}");
    // verify exits 0 even on ignored settings: it must not complain at all.
    assert!(
        err.trim().is_empty() && out.trim().is_empty(),
        "systemd-analyze verify complained:\n{out}{err}"
    );
    // Sensitivity check: the same command does notice a broken setting.
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = unit_copy(bad_dir.path(), |t| {
        t.replace("ProtectSystem=strict", "ProtectSystem=very")
    });
    let mut c = Command::new(&sa);
    c.arg("verify").arg(&bad);
    let (_, out, err) = run(c);
    assert!(
        format!("{out}{err}").contains("ProtectSystem")
            || format!("{out}{err}").contains("protect system"),
        "a broken unit should be reported: {out}{err}"
    );
    // Exposure at most 2.0 ("OK") in systemd's own scoring (threshold is ×10).
    let mut c = Command::new(&sa);
    c.args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit);
    let (ok, out, err) = run(c);
    assert!(ok, "exposure above 2.0:\n{out}{err}");
}

fn check_config(config: &str, zone: &str) {
    let tmp = support::proc::temp_dir("deploy-check");
    std::fs::write(tmp.path().join("regdns.toml"), config).unwrap();
    std::fs::write(tmp.path().join("registry.io.zone"), zone).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_regdns"));
    c.arg("check").arg("-c").arg(tmp.path().join("regdns.toml"));
    let (ok, out, err) = run(c);
    assert!(ok, "regdns check failed:\n{out}{err}");
}

/// The block of `key: |` in a ConfigMap, unindented.
fn configmap_entry(yaml: &str, key: &str) -> String {
    let head = format!("  {key}: |");
    let mut lines = yaml.lines().skip_while(|l| *l != head);
    assert!(lines.next().is_some(), "{key} not in the ConfigMap");
    lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn shipped_configs_pass_regdns_check() {
    let zone = std::fs::read_to_string(root().join("zones/registry.io.zone")).unwrap();
    let cfg = std::fs::read_to_string(root().join("deploy/regdns.toml")).unwrap();
    check_config(&cfg, &zone);
    let cm = std::fs::read_to_string(root().join("deploy/k8s/configmap.yaml")).unwrap();
    check_config(
        &configmap_entry(&cm, "regdns.toml"),
        &configmap_entry(&cm, "registry.io.zone"),
    );
}

#[test]
fn kubernetes_manifests_keep_their_promises() {
    let k = root().join("deploy/k8s");
    let read = |f: &str| std::fs::read_to_string(k.join(f)).unwrap();
    let dep = read("deployment.yaml");
    for needle in [
        "path: /readyz",
        "path: /healthz",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "add: [\"NET_BIND_SERVICE\"]",
        "drop: [\"ALL\"]",
        "serviceAccountName: regdns",
    ] {
        assert!(dep.contains(needle), "deployment.yaml lacks {needle}");
    }
    let svc = read("service.yaml");
    assert!(svc.contains("protocol: UDP") && svc.contains("protocol: TCP"));
    assert!(read("namespace.yaml").contains("pod-identity.alibabacloud.com/injection: \"on\""));
    assert!(read("serviceaccount.yaml").contains("pod-identity.alibabacloud.com/role-name"));
    for f in ["configmap.yaml", "deployment.yaml", "kustomization.yaml"] {
        let t = read(f).to_lowercase();
        for secret in [
            "accesskeyid",
            "access_key_id",
            "accesskeysecret",
            "access_key_secret",
        ] {
            assert!(!t.contains(secret), "{f} mentions {secret}");
        }
    }
    let kust = read("kustomization.yaml");
    for f in std::fs::read_dir(&k).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().to_string();
        if name != "kustomization.yaml" {
            assert!(kust.contains(&name), "{name} not in kustomization.yaml");
        }
    }
    let docker = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    for needle in [
        "FROM rust:1-bookworm AS build",
        "FROM debian:bookworm-slim",
        "ca-certificates",
        "USER 10053:10053",
        "EXPOSE 53/udp 53/tcp 8053",
    ] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle}");
    }
}

/// `deploy/secondaries/`: the key files load, every NSD/Knot/BIND secondary config carries
/// the secret of its view's key, the primary fragment names the keys it ships, and NSD's and
/// Knot's own checkers accept their configs.
#[test]
fn secondary_configs_match_the_keys() {
    let dir = root().join("deploy/secondaries");
    let primary = std::fs::read_to_string(dir.join("regdns-primary.toml")).unwrap();
    for view in ["vpc-bbbbb", "default"] {
        let keys = regdns::tsig::load_key_file(&dir.join(format!("keys/xfr-{view}.key"))).unwrap();
        let secret = base64_of(&keys[0].secret);
        assert_eq!(keys[0].name.to_string(), format!("xfr-{view}."));
        assert!(primary.contains(&format!("key:xfr-{view}.")), "{primary}");
        assert!(
            primary.contains(&format!("keys/xfr-{view}.key")),
            "{primary}"
        );
        for server in ["nsd", "knot", "bind"] {
            let f = dir.join(format!("{server}-{view}.conf"));
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                text.contains(&secret),
                "{} lacks the key of {view}",
                f.display()
            );
            assert!(text.contains(&format!("xfr-{view}.")), "{}", f.display());
        }
        if let Some(nsd) = tool("nsd-checkconf") {
            let mut c = Command::new(nsd);
            c.arg(dir.join(format!("nsd-{view}.conf")));
            let (ok, out, err) = run(c);
            assert!(ok, "nsd-checkconf: {out}{err}");
        }
        if let Some(knotc) = tool("knotc") {
            let mut c = Command::new(knotc);
            c.arg("-c")
                .arg(dir.join(format!("knot-{view}.conf")))
                .arg("conf-check");
            let (ok, out, err) = run(c);
            assert!(ok, "knotc conf-check: {out}{err}");
        }
    }
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
