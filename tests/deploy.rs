//! The deployment files are valid: the alert rules pass `promtool check rules` and their unit
//! tests, the Prometheus config passes `promtool check config`, the systemd unit passes
//! `systemd-analyze verify` (with no complaint at all) and a security exposure threshold, and
//! the shipped configs pass `regdns check`. A missing tool
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
    assert!(out.contains("SUCCESS: 12 rules found"), "{out}");
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
        regdns::metrics::CLUSTER_ENABLED,
        regdns::metrics::CLUSTER_CONNECTED,
        regdns::metrics::CLUSTER_LEADER,
    ] {
        assert!(rules.contains(name), "{name} has no alert");
    }
}

#[test]
fn prometheus_config_passes_promtool() {
    let text = std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml")).unwrap();
    // What the alert rules and the dashboard rely on.
    for needle in [
        "job_name: regdns",
        "honor_labels: true",
        "target_label: node",
        "- regdns-alerts.yml",
    ] {
        assert!(text.contains(needle), "prometheus.yml lacks {needle}");
    }
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut c = Command::new(&promtool);
    c.args(["check", "config", "prometheus.yml"])
        .current_dir(root().join("deploy/prometheus"));
    let (ok, out, err) = run(c);
    assert!(ok, "{out}{err}");
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
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

//------------ deploy/cluster: three nodes on etcd with TLS ----------------------------------

/// `text` with the etcd client file paths of the cluster examples pointing at files in `dir`.
fn with_credential_files(text: &str, dir: &Path) -> String {
    let mut t = text.to_string();
    for (prefix, names) in [
        (
            "/run/credentials/regdns.service/",
            [
                "etcd-ca.pem",
                "etcd-client.pem",
                "etcd-client-key.pem",
                "etcd-password",
            ],
        ),
        (
            "/etc/regdns-etcd/",
            ["ca.pem", "client.pem", "client-key.pem", "password"],
        ),
    ] {
        for n in names {
            let f = dir.join(n);
            if !f.exists() {
                std::fs::write(&f, "placeholder\n").unwrap();
            }
            t = t.replace(&format!("{prefix}{n}"), &f.display().to_string());
        }
    }
    t
}

#[test]
fn cluster_examples_pass_regdns_check() {
    let tmp = tempfile::tempdir().unwrap();
    let zone = std::fs::read_to_string(root().join("zones/registry.io.zone")).unwrap();
    let cfg = std::fs::read_to_string(root().join("deploy/cluster/regdns.toml")).unwrap();
    assert!(cfg.contains("[cluster]") && cfg.contains("password_file"));
    check_config(&with_credential_files(&cfg, tmp.path()), &zone);
    let cm = std::fs::read_to_string(root().join("deploy/cluster/k8s/configmap.yaml")).unwrap();
    check_config(
        &with_credential_files(&configmap_entry(&cm, "regdns.toml"), tmp.path()),
        &configmap_entry(&cm, "registry.io.zone"),
    );
    let k = root().join("deploy/cluster/k8s");
    let kust = std::fs::read_to_string(k.join("kustomization.yaml")).unwrap();
    for f in std::fs::read_dir(&k).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().to_string();
        if name != "kustomization.yaml" {
            assert!(kust.contains(&name), "{name} not in kustomization.yaml");
        }
    }
    let sts = std::fs::read_to_string(k.join("regdns.yaml")).unwrap();
    for needle in [
        "replicas: 3",
        "name: REGDNS_CLUSTER__NODE",
        "fieldPath: metadata.name",
        "secretName: regdns-etcd-client",
        "topology.kubernetes.io/zone",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(sts.contains(needle), "regdns.yaml lacks {needle}");
    }
    let etcd = std::fs::read_to_string(k.join("etcd.yaml")).unwrap();
    for needle in [
        "ETCD_CLIENT_CERT_AUTH, value: \"true\"",
        "ETCD_PEER_CLIENT_CERT_AUTH, value: \"true\"",
        "https://0.0.0.0:2379",
    ] {
        assert!(etcd.contains(needle), "etcd.yaml lacks {needle}");
    }
}

#[test]
fn cluster_systemd_dropin_verifies() {
    let dropin =
        std::fs::read_to_string(root().join("deploy/cluster/regdns.service.d/cluster.conf"))
            .unwrap();
    let cfg = std::fs::read_to_string(root().join("deploy/cluster/regdns.toml")).unwrap();
    // Every credential the config names is one the drop-in loads.
    for line in cfg.lines().filter(|l| l.contains("/run/credentials/")) {
        let name = line
            .split("/run/credentials/regdns.service/")
            .nth(1)
            .unwrap();
        let name = name.trim_end_matches('"');
        assert!(
            dropin.contains(&format!("LoadCredential={name}:")),
            "{name} is not loaded by the drop-in"
        );
    }
    let Some(sa) = tool("systemd-analyze") else {
        return;
    };
    let verify = |dropin: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let unit = unit_copy(tmp.path(), |t| t);
        std::fs::create_dir(tmp.path().join("regdns.service.d")).unwrap();
        std::fs::write(tmp.path().join("regdns.service.d/cluster.conf"), dropin).unwrap();
        let mut c = Command::new(&sa);
        c.arg("verify").arg(&unit);
        run(c)
    };
    let (ok, out, err) = verify(&dropin);
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "{out}{err}"
    );
    // Sensitivity: a broken drop-in line is reported, so the drop-in is read.
    let (_, out, err) = verify(&dropin.replace("LoadCredential=", "LoadCredentialz="));
    assert!(
        format!("{out}{err}").contains("LoadCredentialz"),
        "a broken drop-in should be reported: {out}{err}"
    );
}

/// The Debian package's drop-in (`deploy/debian/regdns.service.d/debian.conf`) verifies with
/// the unit and keeps it within the exposure threshold; the maintainer scripts parse and keep
/// the `#DEBHELPER#` token cargo-deb fills in. (`scripts/package` builds and installs the
/// package itself.)
#[test]
fn debian_packaging_files_are_valid() {
    let dir = root().join("deploy/debian");
    for script in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(dir.join(script)).unwrap();
        assert!(text.contains("#DEBHELPER#"), "{script}");
        let mut c = Command::new("sh");
        c.arg("-n").arg(dir.join(script));
        let (ok, out, err) = run(c);
        assert!(ok, "{script}: {out}{err}");
    }
    let dropin = std::fs::read_to_string(dir.join("regdns.service.d/debian.conf")).unwrap();
    for line in [
        "ExecStart=",
        "ExecStart=/usr/bin/regdns serve -c /etc/regdns/regdns.toml",
        "DynamicUser=no",
        "User=regdns",
    ] {
        assert!(dropin.lines().any(|l| l == line), "{line} missing");
    }
    let Some(sa) = tool("systemd-analyze") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_copy(tmp.path(), |t| t);
    std::fs::create_dir(tmp.path().join("regdns.service.d")).unwrap();
    std::fs::write(
        tmp.path().join("regdns.service.d/debian.conf"),
        dropin.replace("/usr/bin/regdns", env!("CARGO_BIN_EXE_regdns")),
    )
    .unwrap();
    let mut c = Command::new(&sa);
    c.arg("verify").arg(&unit);
    let (ok, out, err) = run(c);
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "{out}{err}"
    );
    let mut c = Command::new(&sa);
    c.args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit);
    let (ok, out, err) = run(c);
    assert!(
        ok,
        "exposure above 2.0 with the package's drop-in:\n{out}{err}"
    );
}

/// The three etcd member files of deploy/cluster/etcd form a TLS cluster (on loopback, with
/// certificates made here at the paths they name), setup-auth.sh creates the `regdns` user,
/// and regdns's own client, configured by deploy/cluster/regdns.toml, reads and writes its
/// prefix and is refused outside it.
#[test]
fn cluster_etcd_example_forms_a_tls_cluster_regdns_can_use() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let (Some(etcd), Some(_)) = (tool("etcd"), tool("etcdctl")) else {
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "etcd CA");
    let ca = p.self_signed(&ca_key).unwrap();
    std::fs::write(pki.path().join("ca.pem"), ca.pem()).unwrap();
    let leaf = |file: &str, cn: Option<&str>, sans: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(pki.path().join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(
            pki.path().join(format!("{file}-key.pem")),
            key.serialize_pem(),
        )
        .unwrap();
    };
    let members = [
        ("hz-1", "10.0.0.5"),
        ("zjk-1", "10.1.0.5"),
        ("sh-1", "10.2.0.5"),
    ];
    // Each member's client and peer address moves to a free loopback port.
    let mut addr_map = Vec::new();
    for (_, ip) in members {
        for port in [2379, 2380] {
            addr_map.push((
                format!("{ip}:{port}"),
                format!("127.0.0.1:{}", support::proc::free_port()),
            ));
        }
    }
    let moved = |s: &str| {
        let mut s = s.replace("/etc/etcd/pki/", &format!("{}/", pki.path().display()));
        for (from, to) in &addr_map {
            s = s.replace(from, to);
        }
        s
    };
    let mut procs = Vec::new();
    for (name, _) in members {
        leaf(name, Some(name), vec!["127.0.0.1".into()]);
        let text =
            std::fs::read_to_string(root().join(format!("deploy/cluster/etcd/etcd-{name}.env")))
                .unwrap();
        let dir = support::proc::temp_dir("etcd-example");
        let mut c = Command::new(&etcd);
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
        {
            let (k, v) = line.split_once('=').unwrap();
            let v = if k == "ETCD_DATA_DIR" {
                dir.path().join("data").display().to_string()
            } else {
                moved(v)
            };
            c.env(k, v);
        }
        c.env("ETCD_LOG_LEVEL", "warn");
        procs.push(support::proc::Proc::spawn(name, c, dir).expect("etcd"));
    }
    leaf("root", Some("root"), vec![]);
    leaf("client", None, vec![]);
    let endpoints: Vec<String> = addr_map
        .iter()
        .filter(|(f, _)| f.ends_with(":2379"))
        .map(|(_, t)| format!("https://{t}"))
        .collect();
    std::fs::write(pki.path().join("root-password"), "root-pw\n").unwrap();
    std::fs::write(pki.path().join("password"), "regdns-pw\n").unwrap();
    let etcdctl_env = |c: &mut Command| {
        c.env("ETCDCTL_API", "3")
            .env("ETCDCTL_ENDPOINTS", endpoints.join(","))
            .env("ETCDCTL_CACERT", pki.path().join("ca.pem"))
            .env("ETCDCTL_CERT", pki.path().join("root.pem"))
            .env("ETCDCTL_KEY", pki.path().join("root-key.pem"));
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Command::new("etcdctl");
        etcdctl_env(&mut c);
        c.args(["endpoint", "health"]);
        let (ok, out, err) = run(c);
        if ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the example etcd cluster never became healthy: {out}{err}\n{}",
            procs
                .iter()
                .map(|p| p.logs())
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut c = Command::new("sh");
    c.arg(root().join("deploy/cluster/etcd/setup-auth.sh"));
    etcdctl_env(&mut c);
    c.env("ROOT_PASSWORD_FILE", pki.path().join("root-password"))
        .env("REGDNS_ETCD_PASSWORD_FILE", pki.path().join("password"));
    let (ok, out, err) = run(c);
    assert!(ok, "setup-auth.sh: {out}{err}");

    // regdns's client with the [cluster] section of the example.
    let cfg = std::fs::read_to_string(root().join("deploy/cluster/regdns.toml")).unwrap();
    let mut cfg = moved(&cfg);
    for (from, to) in [
        ("etcd-ca.pem", "ca.pem"),
        ("etcd-client.pem", "client.pem"),
        ("etcd-client-key.pem", "client-key.pem"),
        ("etcd-password", "password"),
    ] {
        cfg = cfg.replace(
            &format!("/run/credentials/regdns.service/{from}"),
            &pki.path().join(to).display().to_string(),
        );
    }
    let loaded = regdns::config::parse(
        &cfg,
        Path::new("regdns.toml"),
        regdns::config::env_provider("REGDNS_TEST_NONE_"),
    )
    .unwrap();
    let cluster = loaded.config.cluster.expect("[cluster]");
    cluster.validate().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = regdns::cluster::etcd::EtcdClient::new(&cluster).unwrap();
        client.put("/regdns/prod/probe", b"ok", 0).await.unwrap();
        let (kvs, _) = client.range_prefix("/regdns/prod/").await.unwrap();
        assert_eq!(kvs.len(), 1);
        let refused = client.put("/elsewhere", b"x", 0).await.unwrap_err();
        assert!(
            refused.to_string().contains("permission denied"),
            "{refused}"
        );
    });
}

/// The agent's unit verifies cleanly, runs `regdns agent`, and holds no capability.
#[test]
fn agent_unit_verifies_and_holds_no_capability() {
    let text = std::fs::read_to_string(root().join("deploy/regdns-agent.service")).unwrap();
    for line in [
        "ExecStart=/usr/local/bin/regdns agent -c /etc/regdns/regdns.toml",
        "DynamicUser=yes",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing");
    }
    assert!(
        !text.contains("AmbientCapabilities"),
        "an agent binds no port 53"
    );
    let Some(sa) = tool("systemd-analyze") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let unit = tmp.path().join("regdns-agent.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/regdns", env!("CARGO_BIN_EXE_regdns")),
    )
    .unwrap();
    let mut c = Command::new(&sa);
    c.arg("verify").arg(&unit);
    let (ok, out, err) = run(c);
    assert!(
        ok && err.trim().is_empty() && out.trim().is_empty(),
        "{out}{err}"
    );
}

/// The agents' example (deploy/cluster/agent): exactly the nodes' config plus `[agent]`,
/// accepted by `regdns check`, and a Deployment that runs `regdns agent` with no capability.
#[test]
fn agent_example_is_the_nodes_config_plus_an_agent_section() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = std::fs::read_to_string(root().join("deploy/cluster/k8s/configmap.yaml")).unwrap();
    let agents =
        std::fs::read_to_string(root().join("deploy/cluster/agent/configmap.yaml")).unwrap();
    let (n, a) = (
        configmap_entry(&nodes, "regdns.toml"),
        configmap_entry(&agents, "regdns.toml"),
    );
    let rest = a
        .strip_prefix(n.trim_end())
        .unwrap_or_else(|| panic!("the agents' config drifted from the nodes':\n{a}"));
    assert!(rest.trim_start().starts_with("[agent]"), "{rest}");
    assert_eq!(
        configmap_entry(&nodes, "registry.io.zone"),
        configmap_entry(&agents, "registry.io.zone")
    );
    check_config(
        &with_credential_files(&a, tmp.path()),
        &configmap_entry(&agents, "registry.io.zone"),
    );
    let dep = std::fs::read_to_string(root().join("deploy/cluster/agent/agent.yaml")).unwrap();
    for needle in [
        "args: [\"agent\", \"-c\", \"/etc/regdns/regdns.toml\"]",
        "name: REGDNS_CLUSTER__NODE",
        "name: REGDNS_CLUSTER__ETCD",
        "readOnlyRootFilesystem: true",
        "drop: [\"ALL\"]",
        "path: /healthz",
    ] {
        assert!(dep.contains(needle), "agent.yaml lacks {needle}");
    }
    assert!(
        !dep.contains("NET_BIND_SERVICE"),
        "an agent binds no port 53"
    );
    let kust =
        std::fs::read_to_string(root().join("deploy/cluster/agent/kustomization.yaml")).unwrap();
    assert!(kust.contains("configmap.yaml") && kust.contains("agent.yaml"));
}
