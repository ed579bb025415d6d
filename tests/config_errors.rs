//! Config and model validation: every error names the key path and says what would be
//! valid. Messages are asserted verbatim: they are part of the operator interface.

use std::path::Path;

use figment::providers::Env;
use regdns::{config, model};

const ZONE: &str = "$ORIGIN registry.io.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.53\ntxt IN TXT \"hello\"\n";

const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:5353"]

[[zone]]
origin = "registry.io."
file = "registry.io.zone"

[[view]]
name = "vpc-bbbbb"
clients = ["10.1.0.0/16"]

[[instance]]
id = "hangzhou"
url = "https://cross-region.registry.io/v2/"

[[instance]]
id = "zhangjiakou"
url = "https://cross-region.registry.io/v2/"

[[endpoint]]
name = "cross-region.registry.io."

[endpoint.targets]
default = [
  { instance = "hangzhou", cname = "a-registry.cn-hangzhou.cr.aliyuncs.com." },
  { instance = "zhangjiakou", cname = "b-registry.cn-zhangjiakou.cr.aliyuncs.com." },
]
vpc-bbbbb = [
  { instance = "zhangjiakou", a = ["10.1.3.4"] },
  { instance = "hangzhou", a = ["10.94.205.198"] },
]
"#;

/// Builds a model from config text with the test zone next to it; returns the error text.
fn build(text: &str) -> Result<model::Model, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    let loaded = config::parse(text, &path, Env::prefixed("REGDNS_TEST_UNUSED_"))
        .map_err(|e| strip(&e.to_string(), dir.path()))?;
    model::build(&loaded).map_err(|e| strip(&e.to_string(), dir.path()))
}

fn strip(s: &str, dir: &Path) -> String {
    s.replace(&format!("{}/", dir.display()), "")
}

fn err(text: &str) -> String {
    build(text).expect_err("config should be rejected")
}

#[test]
fn good_config_builds() {
    let m = build(GOOD).unwrap();
    assert_eq!(m.views.len(), 2);
    assert_eq!(m.views[1].name, "default");
    assert_eq!(m.endpoints[0].targets[0][0].instance, "zhangjiakou");
    assert_eq!(m.endpoints[0].targets[1][0].instance, "hangzhou");
}

#[test]
fn unknown_key() {
    let t = GOOD.replace("[server]\n", "[server]\nlisten_on = 1\n");
    assert_eq!(
        err(&t),
        "regdns.toml: server.listen_on: unknown key; valid keys here: listen, admin, admin_token_file, state_dir, log_format, upstream, max_udp_payload, tcp_idle_timeout, tcp_max_connections, udp_workers, status_public"
    );
}

#[test]
fn bad_address() {
    let t = GOOD.replace("listen = [\"127.0.0.1:5353\"]", "listen = [\"127.0.0.1\"]");
    assert_eq!(
        err(&t),
        "regdns.toml: server.listen[0]: invalid socket address syntax"
    );
}

#[test]
fn bad_cidr() {
    let t = GOOD.replace("10.1.0.0/16", "10.1.0.0/33");
    assert_eq!(
        err(&t),
        "regdns.toml: view[0].clients[0]: invalid IP address syntax"
    );
}

#[test]
fn bad_duration() {
    let t = GOOD.replace(
        "id = \"hangzhou\"\n",
        "id = \"hangzhou\"\ninterval = \"5 parsecs\"\n",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: instance[0].interval: invalid duration \"5 parsecs\": unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (write e.g. \"5s\", \"1250ms\", \"2m\")"
    );
}

#[test]
fn duplicate_instance() {
    let t = GOOD.replace("id = \"zhangjiakou\"", "id = \"hangzhou\"");
    assert_eq!(
        err(&t),
        "regdns.toml: instance[1].id: duplicate instance id \"hangzhou\""
    );
}

#[test]
fn endpoint_outside_zones() {
    let t = GOOD.replace(
        "name = \"cross-region.registry.io.\"",
        "name = \"cross-region.example.com.\"",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].name: cross-region.example.com. is not inside any configured zone (zones: registry.io.) and has no [[endpoint.publish]] or [[endpoint.privatezone]] binding; an endpoint is served (in a [[zone]]), published, or both"
    );
}

#[test]
fn unknown_instance_in_target() {
    let t = GOOD.replace(
        "{ instance = \"hangzhou\", a",
        "{ instance = \"shanghai\", a",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.vpc-bbbbb[1].instance: unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)"
    );
}

#[test]
fn unknown_view_in_targets() {
    let t = GOOD.replace("vpc-bbbbb = [", "vpc-ccccc = [");
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.vpc-ccccc: unknown view \"vpc-ccccc\" (known: vpc-bbbbb, default)"
    );
}

#[test]
fn missing_default_targets() {
    let start = GOOD.find("default = [").unwrap();
    let end = GOOD.find("vpc-bbbbb = [").unwrap();
    let t = format!("{}{}", &GOOD[..start], &GOOD[end..]);
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets: no \"default\" targets; every endpoint needs targets.default, used by clients no view matches"
    );
}

#[test]
fn target_with_both_cname_and_a() {
    let t = GOOD.replace(
        "{ instance = \"zhangjiakou\", a = [\"10.1.3.4\"] }",
        "{ instance = \"zhangjiakou\", a = [\"10.1.3.4\"], cname = \"x.example.\" }",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.vpc-bbbbb[0]: both cname and a/aaaa given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path)"
    );
}

#[test]
fn target_with_neither() {
    let t = GOOD.replace(
        "{ instance = \"zhangjiakou\", a = [\"10.1.3.4\"] }",
        "{ instance = \"zhangjiakou\" }",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.vpc-bbbbb[0]: neither cname nor a given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path), or passthrough = true (the public answer of this name)"
    );
}

#[test]
fn access_key_in_config() {
    let t = format!("{GOOD}\n[privatezone]\nregion = \"cn-hangzhou\"\naccess_key_id = \"abc\"\n");
    let e = err(&t);
    assert!(e.starts_with("regdns.toml: privatezone.access_key_id: AccessKeys must not be stored in the config file;"), "{e}");
    assert!(e.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{e}");
    let t = GOOD.replace("name = \"vpc-bbbbb\"", "name = \"LTAI5tAbCdEfGh\"");
    assert!(err(&t).starts_with("regdns.toml: view[0].name: value looks like an AccessKey id;"));
}

#[test]
fn cname_target_conflicting_with_zone_data() {
    let t = GOOD.replace(
        "name = \"cross-region.registry.io.\"",
        "name = \"txt.registry.io.\"",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.default[0].cname: txt.registry.io. also has TXT data (registry.io.zone:6); a CNAME cannot coexist with other data (RFC 1034 §3.6.2): remove it from the zone file or answer with a = [...]"
    );
}

#[test]
fn missing_required_key() {
    let t = GOOD.replace(
        "url = \"https://cross-region.registry.io/v2/\"\n\n[[instance]]",
        "\n[[instance]]",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: instance[0].url: missing required key"
    );
}

#[test]
fn unqualified_names() {
    let t = GOOD.replace(
        "name = \"cross-region.registry.io.\"",
        "name = \"cross-region.registry.io\"",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].name: \"cross-region.registry.io\" must be fully qualified: write \"cross-region.registry.io.\" (with the trailing dot)"
    );
}

#[test]
fn privatezone_ttl_must_be_accepted_by_the_service() {
    let t = GOOD.replace("name = \"cross-region.registry.io.\"\n", "name = \"cross-region.registry.io.\"\nttl = 10\n[[endpoint.privatezone]]\nview = \"vpc-bbbbb\"\nzone_id = \"zone-1\"\n")
        + "\n[privatezone]\nregion = \"cn-hangzhou\"\n";
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].ttl: 10 is not a TTL PrivateZone accepts ([5, 30, 60, 3600, 43200, 86400]); this endpoint is pushed to PrivateZone"
    );
}

#[test]
fn zone_file_errors_carry_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), "$ORIGIN registry.io.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.300\n").unwrap();
    let path = dir.path().join("regdns.toml");
    let loaded = config::parse(GOOD, &path, Env::prefixed("REGDNS_TEST_UNUSED_")).unwrap();
    let e = strip(&model::build(&loaded).unwrap_err().to_string(), dir.path());
    assert!(e.starts_with("registry.io.zone:5: "), "{e}");
    assert!(e.contains("192.0.2.300"), "{e}");
}

#[test]
fn timeout_longer_than_interval() {
    let t = GOOD.replace(
        "id = \"hangzhou\"\n",
        "id = \"hangzhou\"\ninterval = \"1s\"\ntimeout = \"2s\"\n",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: instance[0].timeout: 2s is longer than interval 1s; probes of one instance never overlap, so keep timeout <= interval"
    );
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    figment::Jail::expect_with(|jail| {
        jail.set_env("REGDNS_T1_SERVER__LISTEN", "[\"127.0.0.1:9953\"]");
        let loaded = config::parse(GOOD, &path, Env::prefixed("REGDNS_T1_").split("__")).unwrap();
        assert_eq!(
            loaded.config.server.listen,
            vec!["127.0.0.1:9953".parse().unwrap()]
        );
        Ok(())
    });
}

// ------------------------------------------------------- registry-aware health (§5)

const CANARY: &str = r#"canary = { repository = "regdns/canary", reference = "canary" }"#;

/// GOOD with `line` added to the first instance (hangzhou).
fn hz(line: &str) -> String {
    GOOD.replacen(
        "id = \"hangzhou\"\n",
        &format!("id = \"hangzhou\"\n{line}\n"),
        1,
    )
}

#[test]
fn canary_defaults_and_keys() {
    let m = build(&hz(CANARY)).unwrap();
    let i = &m.instances[0];
    assert!(i.require_api_version);
    assert_eq!(
        model::canary_interval(i),
        std::time::Duration::from_secs(10),
        "at least 10 s by default"
    );
    let m = build(&hz("require_api_version = false")).unwrap();
    assert!(!m.instances[0].require_api_version);
    let t = hz(r#"canary = { repository = "regdns/canary", reference = "canary", every = "1s" }"#);
    assert!(
        err(&t).contains("instance[0].canary.every: unknown key"),
        "{}",
        err(&t)
    );
}

#[test]
fn canary_values_are_checked() {
    assert_eq!(
        err(&hz(
            r#"canary = { repository = "Ops/Canary", reference = "canary" }"#
        )),
        "regdns.toml: instance[0].canary.repository: \"Ops/Canary\" is not a repository name (lower-case path components of [a-z0-9._-], e.g. \"ops/canary\")"
    );
    assert_eq!(
        err(&hz(
            r#"canary = { repository = "ops/canary", reference = "sha256:abc" }"#
        )),
        "regdns.toml: instance[0].canary.reference: \"sha256:abc\" is neither a tag nor a sha256 digest (e.g. \"canary\" or \"sha256:<64 hex>\")"
    );
    assert_eq!(
        err(&hz(
            r#"canary = { repository = "ops/canary", reference = "c", interval = "2s", timeout = "5s" }"#
        )),
        "regdns.toml: instance[0].canary.timeout: 5s is longer than the canary interval 2s; keep timeout <= interval"
    );
    assert_eq!(
        err(&hz(r#"canary_credentials_file = "/nonexistent/pull.json""#)),
        "regdns.toml: instance[0].canary_credentials_file: credentials without a canary; add canary = { repository = \"...\", reference = \"...\" }"
    );
    assert_eq!(
        err(&hz(&format!(
            "{CANARY}\ncanary_credentials = {{ acr_instance = \"i-123\", region = \"cn-hangzhou\" }}"
        ))),
        "regdns.toml: instance[0].canary_credentials.acr_instance: \"i-123\" is not an ACR Enterprise Edition instance id (cri-...)"
    );
}

#[test]
fn canary_credentials_file_must_exist_and_parse() {
    let e = err(&hz(&format!(
        "{CANARY}\ncanary_credentials_file = \"/nonexistent/pull.json\""
    )));
    assert_eq!(
        e,
        "regdns.toml: instance[0].canary_credentials_file: /nonexistent/pull.json: No such file or directory (os error 2)"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pull.json");
    std::fs::write(&f, "{\"user\": \"x\"}").unwrap();
    let e = err(&hz(&format!(
        "{CANARY}\ncanary_credentials_file = \"{}\"",
        f.display()
    )));
    assert!(
        e.starts_with("regdns.toml: instance[0].canary_credentials_file: ")
            && e.contains("expected JSON {\"username\": \"...\", \"password\": \"...\"}"),
        "{e}"
    );
    std::fs::write(&f, "{\"username\": \"robot\", \"password\": \"x\"}").unwrap();
    build(&hz(&format!(
        "{CANARY}\ncanary_credentials_file = \"{}\"",
        f.display()
    )))
    .unwrap();
}

#[test]
fn replication_max_lag_needs_canaries_on_every_target() {
    let t = hz(CANARY).replace(
        "name = \"cross-region.registry.io.\"\n",
        "name = \"cross-region.registry.io.\"\nreplication_max_lag = \"10m\"\n",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].replication_max_lag: needs a canary on every target, and instance \"zhangjiakou\" (instance[1]) has none; add canary = { repository = \"...\", reference = \"...\" } to it"
    );
    let t = t.replacen(
        "id = \"zhangjiakou\"\n",
        &format!("id = \"zhangjiakou\"\n{CANARY}\n"),
        1,
    );
    let m = build(&t).unwrap();
    assert_eq!(
        m.endpoints[0].replication_max_lag,
        Some(std::time::Duration::from_secs(600))
    );
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's signature
fn only_section_key_variables_are_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    figment::Jail::expect_with(|jail| {
        jail.set_env("REGDNS_T2_BIN", "/usr/local/bin/regdns");
        jail.set_env("REGDNS_T2_LOG", "debug");
        jail.set_env("REGDNS_T2_SERVER__LISTEN", "[\"127.0.0.1:9954\"]");
        let loaded = config::parse(GOOD, &path, config::env_provider("REGDNS_T2_")).unwrap();
        assert_eq!(
            loaded.config.server.listen,
            vec!["127.0.0.1:9954".parse().unwrap()]
        );
        // A misspelt key inside a section is still an error.
        jail.set_env("REGDNS_T2_SERVER__LISTN", "x");
        let e = config::parse(GOOD, &path, config::env_provider("REGDNS_T2_")).unwrap_err();
        let e = strip(&e.to_string(), dir.path());
        assert!(
            e.starts_with("regdns.toml: server.listn: unknown key; "),
            "{e}"
        );
        assert!(e.ends_with(" (from the environment)"), "{e}");
        Ok(())
    });
}

/// `regdns check` with `REGDNS_BIN` set (as `bench/regdns-as-cmd.sh` documents) is OK.
#[test]
fn regdns_bin_in_the_environment_is_not_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    std::fs::write(&path, GOOD).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    // Only this test's variable (other tests of this binary set some in its environment).
    for (k, _) in std::env::vars() {
        if k.starts_with("REGDNS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("check")
        .arg("-c")
        .arg(&path)
        .env("REGDNS_BIN", env!("CARGO_BIN_EXE_regdns"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(": OK"), "{text}");
}

/// Builds a model from config text in a temp dir holding the test zone and `files`.
fn build_with(text: &str, files: &[(&str, &str)]) -> Result<model::Model, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let path = dir.path().join("regdns.toml");
    let loaded = config::parse(text, &path, Env::prefixed("REGDNS_TEST_UNUSED_"))
        .map_err(|e| strip(&e.to_string(), dir.path()))?;
    model::build(&loaded).map_err(|e| strip(&e.to_string(), dir.path()))
}

#[test]
fn referenced_files_must_exist() {
    let ca = |v: &str| {
        GOOD.replace(
            "id = \"hangzhou\"\n",
            &format!("id = \"hangzhou\"\nca_file = \"{v}\"\n"),
        )
    };
    assert_eq!(
        err(&ca("/nonexistent/ca.crt")),
        "regdns.toml: instance[0].ca_file: /nonexistent/ca.crt: No such file or directory"
    );
    assert_eq!(
        build_with(&ca("ca.crt"), &[("ca.crt", "not a certificate\n")]).unwrap_err(),
        "regdns.toml: instance[0].ca_file: ca.crt: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)"
    );
    assert_eq!(
        build_with(
            &ca("ca.crt"),
            &[(
                "ca.crt",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
            )]
        )
        .unwrap_err(),
        "regdns.toml: instance[0].ca_file: ca.crt: invalid PEM: base64 decode error: InvalidCharacter(33)"
    );
    assert_eq!(
        err(&GOOD.replace("file = \"registry.io.zone\"", "file = \"absent.zone\"")),
        "regdns.toml: zone[0].file: absent.zone: No such file or directory"
    );
    assert_eq!(
        err(&format!(
            "{GOOD}\n[[tsig_key]]\nfile = \"/nonexistent/xfr.key\"\nview = \"vpc-bbbbb\"\n"
        )),
        "regdns.toml: tsig_key[0].file: /nonexistent/xfr.key: No such file or directory"
    );
    let server = |extra: &str| {
        GOOD.replace(
            "listen = [\"127.0.0.1:5353\"]\n",
            &format!("listen = [\"127.0.0.1:5353\"]\n{extra}\n"),
        )
    };
    assert_eq!(
        err(&server("state_dir = \"registry.io.zone/state\"")),
        "regdns.toml: server.state_dir: registry.io.zone/state: registry.io.zone is not a directory"
    );
    assert_eq!(
        err(&server("state_dir = \"registry.io.zone\"")),
        "regdns.toml: server.state_dir: registry.io.zone: not a directory"
    );
    assert_eq!(
        err(&server(
            "admin_token_file = \"registry.io.zone/sub/admin.token\""
        )),
        "regdns.toml: server.admin_token_file: registry.io.zone/sub/admin.token: registry.io.zone is not a directory"
    );
    // Directories that do not exist yet are created by serve: fine.
    build(&server(
        "state_dir = \"new/state\"\nadmin_token_file = \"new/admin.token\"",
    ))
    .unwrap();
}

/// `regdns check` (and `serve`, which builds the same model) reject a missing file.
#[test]
fn check_and_serve_reject_a_missing_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    let text = GOOD
        .replace(
            "id = \"hangzhou\"\n",
            "id = \"hangzhou\"\nca_file = \"/nonexistent/ca.crt\"\n",
        )
        .replace(
            "listen = [\"127.0.0.1:5353\"]\n",
            "listen = [\"127.0.0.1:5353\"]\nstate_dir = \"state\"\nadmin_token_file = \"admin.token\"\n",
        );
    std::fs::write(&path, text).unwrap();
    for sub in ["check", "serve"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"))
            .arg(sub)
            .arg("-c")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A serve that accepts the config keeps running: stop it (liveness bound, not timing).
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none()
            && t0.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub} accepted it: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: instance[0].ca_file: /nonexistent/ca.crt: No such file or directory",
                path.display()
            )),
            "{sub}: {stderr}"
        );
    }
}

#[test]
fn tsig_key_files() {
    let with_key = |view: &str, acl: &str| {
        GOOD.replace(
            "file = \"registry.io.zone\"\n",
            &format!("file = \"registry.io.zone\"\nallow_transfer = [{acl}]\n"),
        ) + &format!("\n[[tsig_key]]\nfile = \"xfr.key\"\nview = \"{view}\"\n")
    };
    let good_key =
        "key \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0\";\n};\n";
    let m = build_with(
        &with_key("vpc-bbbbb", "\"key:xfr-key.\""),
        &[("xfr.key", good_key)],
    )
    .unwrap();
    assert_eq!(m.tsig_keys.len(), 1);
    assert_eq!(m.tsig_keys[0].key.name.to_string(), "xfr-key.");
    assert_eq!(m.tsig_keys[0].view, 0);
    assert_eq!(
        build_with(
            &with_key("nope", "\"key:xfr-key.\""),
            &[("xfr.key", good_key)]
        )
        .unwrap_err(),
        "regdns.toml: tsig_key[0].view: no view \"nope\"; views are vpc-bbbbb, default"
    );
    assert_eq!(
        build_with(
            &with_key("default", "\"key:other.\""),
            &[("xfr.key", good_key)]
        )
        .unwrap_err(),
        "regdns.toml: zone[0].allow_transfer[0]: no [[tsig_key]] defines key other."
    );
    assert_eq!(
        build_with(
            &with_key("default", "\"key:xfr-key.\""),
            &[("xfr.key", &good_key.replace("hmac-sha256", "hmac-md5"))]
        )
        .unwrap_err(),
        "xfr.key:2: unsupported algorithm \"hmac-md5\"; use hmac-sha256, hmac-sha384 or hmac-sha512"
    );
    assert_eq!(
        build_with(
            &with_key("default", "\"key:xfr-key.\""),
            &[("xfr.key", &good_key.replace("secret", "secrett"))]
        )
        .unwrap_err(),
        "xfr.key:3: unknown key field \"secrett\"; expected algorithm or secret"
    );
    assert_eq!(
        build_with(
            &with_key("default", "\"key:xfr-key.\""),
            &[("xfr.key", &good_key.replace(";\n};", "\n};"))]
        )
        .unwrap_err(),
        "xfr.key:4: expected \";\", found \"}\""
    );
    let with_secondary = |sec: &str| {
        with_key("default", "\"key:xfr-key.\"").replace(
            "allow_transfer = [",
            &format!("secondaries = [\"{sec}\"]\nallow_transfer = ["),
        )
    };
    let m = build_with(
        &with_secondary("192.0.2.53:53 key:xfr-key."),
        &[("xfr.key", good_key)],
    )
    .unwrap();
    assert_eq!(m.zones[0].secondaries[0].addr.to_string(), "192.0.2.53:53");
    assert_eq!(
        build_with(&with_secondary("192.0.2.53"), &[("xfr.key", good_key)]).unwrap_err(),
        "regdns.toml: zone[0].secondaries[0]: \"192.0.2.53\" is not \"ADDR:PORT\" or \"ADDR:PORT key:NAME.\" (e.g. \"192.0.2.53:53 key:xfr-key.\")"
    );
    assert_eq!(
        build_with(
            &with_secondary("192.0.2.53:53 key:nope."),
            &[("xfr.key", good_key)]
        )
        .unwrap_err(),
        "regdns.toml: zone[0].secondaries[0]: no [[tsig_key]] defines key nope."
    );
}

/// `[[endpoint.publish]]`: keys per provider, references, published-only endpoints.
#[test]
fn publish_bindings() {
    let key =
        "key \"update-key.\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0\";\n};\n";
    let published = |binding: &str| {
        GOOD.replace(
            "name = \"cross-region.registry.io.\"",
            "name = \"cr.example.net.\"",
        ) + "\n[[tsig_key]]\nfile = \"update.key\"\n\n[[endpoint.publish]]\n"
            + binding
    };
    let rfc = "provider = \"rfc2136\"\nview = \"default\"\nserver = \"192.0.2.1:53\"\nzone = \"example.net.\"\ntsig_key = \"update-key.\"\n";
    // Published only: the endpoint is in no [[zone]].
    let m = build_with(&published(rfc), &[("update.key", key)]).unwrap();
    let ep = &m.endpoints[0];
    assert!(ep.zone.is_none());
    assert_eq!(
        m.update_keys.len(),
        1,
        "a key without view signs updates only"
    );
    assert!(m.tsig_keys.is_empty(), "and is no transfer key");
    match &ep.publish[0] {
        model::PublishTarget::Rfc2136 {
            server, rr, tcp, ..
        } => {
            assert_eq!(server.to_string(), "192.0.2.1:53");
            assert_eq!(rr, "cr");
            assert!(!tcp);
        }
        other => panic!("{other:?}"),
    }
    let alidns = "provider = \"alidns\"\nview = \"default\"\ndomain = \"example.net\"\n";
    let m = build_with(&published(alidns), &[("update.key", key)]).unwrap();
    assert_eq!(
        m.endpoints[0].publish[0],
        model::PublishTarget::Alidns {
            view: "default".into(),
            domain: "example.net".into(),
            rr: "cr".into()
        }
    );
    let cases = [
        (
            rfc.replace("tsig_key = \"update-key.\"", "tsig_key = \"other.\""),
            "regdns.toml: endpoint[0].publish[0].tsig_key: no [[tsig_key]] defines key other. (known: update-key.); add [[tsig_key]] file = \"keys/update.key\" (a key without view signs updates only)",
        ),
        (
            rfc.replace("server = \"192.0.2.1:53\"", "server = \"primary:53\""),
            "regdns.toml: endpoint[0].publish[0].server: \"primary:53\" is not an address; write \"ADDR:PORT\" (e.g. \"192.0.2.1:53\" or \"[2001:db8::1]:53\")",
        ),
        (
            rfc.replace("zone = \"example.net.\"", "zone = \"example.org.\""),
            "regdns.toml: endpoint[0].publish[0].zone: the endpoint cr.example.net. is not inside zone example.org.",
        ),
        (
            rfc.replace("zone = \"example.net.\"\n", ""),
            "regdns.toml: endpoint[0].publish[0].zone: provider \"rfc2136\" needs zone (e.g. zone = \"example.net.\")",
        ),
        (
            format!("{alidns}server = \"192.0.2.1:53\"\n"),
            "regdns.toml: endpoint[0].publish[0].server: not a key of provider \"alidns\" (its keys: provider, view, domain, rr)",
        ),
        (
            alidns.replace("example.net", "example.org"),
            "regdns.toml: endpoint[0].publish[0].domain: the endpoint cr.example.net. is not inside domain example.org",
        ),
        (
            format!("{alidns}rr = \"www\"\n"),
            "regdns.toml: endpoint[0].publish[0].rr: \"www\" in domain example.net is not the endpoint cr.example.net. (that is rr = \"cr\"); omit rr to compute it",
        ),
        (
            alidns.replace("view = \"default\"", "view = \"nope\""),
            "regdns.toml: endpoint[0].publish[0].view: unknown view \"nope\" (known: vpc-bbbbb, default)",
        ),
        (
            "provider = \"route53\"\nview = \"default\"\n".to_string(),
            "",
        ),
    ];
    // A CNAME cannot be published at a zone apex.
    let apex = published(&rfc.replace("zone = \"example.net.\"", "zone = \"cr.example.net.\""));
    assert_eq!(
        build_with(&apex, &[("update.key", key)]).unwrap_err(),
        "regdns.toml: endpoint[0].publish[0].zone: cr.example.net. is the apex of cr.example.net., where a CNAME cannot sit (SOA and NS live there), and view default answers with a CNAME; publish a name below the apex or give that view a = [...] targets"
    );
    for (binding, want) in cases {
        let got = build_with(&published(&binding), &[("update.key", key)]).unwrap_err();
        if want.is_empty() {
            assert!(
                got.contains("endpoint") && got.contains("provider"),
                "{got}"
            );
        } else {
            assert_eq!(got, want);
        }
    }
}

/// `probe`, `health_quorum`, `cluster.views` and `[agent]` (health as each network sees it).
#[test]
fn per_view_health_keys_are_checked() {
    let view = "clients = [\"10.1.0.0/16\"]";
    let probed = GOOD.replace(
        view,
        &format!("{view}\nprobe = \"addresses\"\nhealth_quorum = \"any\""),
    );
    let m = build(&probed).unwrap();
    assert_eq!(m.views[0].probe, config::ViewProbe::Addresses);
    assert_eq!(m.views[0].health_quorum, Some(config::HealthQuorum::Any));
    let e = err(&GOOD.replace(view, &format!("{view}\nprobe = \"address\"")));
    assert!(e.starts_with("regdns.toml: view[0].probe: "), "{e}");
    assert!(e.contains("address") && e.contains("addresses"), "{e}");
    let e = err(&GOOD.replace(view, &format!("{view}\nhealth_quorum = \"most\"")));
    assert!(e.starts_with("regdns.toml: view[0].health_quorum: "), "{e}");
    let cluster = "\n[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nnode = \"n1\"\n";
    assert_eq!(
        err(&format!("{GOOD}{cluster}views = [\"vpc-ccccc\"]\n")),
        "regdns.toml: cluster.views[0]: no view \"vpc-ccccc\"; views are vpc-bbbbb, default"
    );
    assert_eq!(
        err(&format!(
            "{GOOD}{cluster}views = [\"default\", \"default\"]\n"
        )),
        "regdns.toml: cluster.views[1]: view \"default\" is listed twice"
    );
    assert_eq!(
        err(&format!("{GOOD}\n[agent]\nviews = []\n")),
        "regdns.toml: agent.views: an agent observes at least one view: name the views whose network it runs in, e.g. [\"vpc-bbbbb\"]"
    );
    assert_eq!(
        err(&format!("{GOOD}\n[agent]\nviews = [\"vpc-b\"]\n")),
        "regdns.toml: agent.views[0]: no view \"vpc-b\"; views are vpc-bbbbb, default"
    );
    let e = err(&format!(
        "{GOOD}\n[agent]\nviews = [\"vpc-bbbbb\"]\nresolver = \"100.100.2.136\"\n"
    ));
    assert!(e.starts_with("regdns.toml: agent.resolver: "), "{e}");
}

/// In a `probe = "addresses"` view an instance is probed at one set of addresses.
#[test]
fn an_instance_has_one_set_of_probed_addresses_per_view() {
    let second = r#"
[[endpoint]]
name = "mirror.registry.io."

[endpoint.targets]
default = [{ instance = "hangzhou", cname = "a-registry.cn-hangzhou.cr.aliyuncs.com." }]
vpc-bbbbb = [{ instance = "hangzhou", a = ["10.94.205.199"] }]
"#;
    let view = "clients = [\"10.1.0.0/16\"]";
    let t = format!("{GOOD}{second}");
    assert!(
        build(&t).is_ok(),
        "without probe = \"addresses\" it is fine"
    );
    let t = t.replace(view, &format!("{view}\nprobe = \"addresses\""));
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[1].targets.vpc-bbbbb[0]: view \"vpc-bbbbb\" has probe = \"addresses\": instance \"hangzhou\" is probed at A 10.94.205.198 (endpoint cross-region.registry.io.), so every endpoint must answer it with the same addresses in this view, not A 10.94.205.199"
    );
}

/// Passthrough targets: no other answer beside them, and not on a provider that owns its
/// zone.
#[test]
fn passthrough_misuse_names_the_key() {
    let t = GOOD.replace(
        "{ instance = \"zhangjiakou\", cname = \"b-registry.cn-zhangjiakou.cr.aliyuncs.com.\" },",
        "{ instance = \"zhangjiakou\", passthrough = true, cname = \"b.example.\" },",
    );
    assert_eq!(
        err(&t),
        "regdns.toml: endpoint[0].targets.default[1].passthrough: a passthrough target answers the public answer of this very name: give it no cname, a or aaaa"
    );
    let t = GOOD.replace(
        "{ instance = \"zhangjiakou\", cname = \"b-registry.cn-zhangjiakou.cr.aliyuncs.com.\" },",
        "{ instance = \"zhangjiakou\", passthrough = true },",
    );
    let m = build(&t).unwrap();
    assert_eq!(
        m.endpoints[0].targets[1][1].answer,
        model::TargetAnswer::Passthrough
    );
    let alidns = format!(
        "{t}\n[[endpoint.publish]]\nprovider = \"alidns\"\nview = \"default\"\ndomain = \"registry.io\"\n"
    );
    assert_eq!(
        err(&alidns),
        "regdns.toml: endpoint[0].publish[0].provider: view default has a passthrough target (endpoint[0].targets.default[1]): Alidns owns its zone, so there is no public answer to pass through to; publish another view, or use PrivateZone (a RECORD zone) or RPZ for names you do not own"
    );
}

//------------ Response policy zones (kind = "rpz") ------------------------------------------

const RPZ_ZONE: &str = "$ORIGIN rpz.regdns.\n$TTL 60\n@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n  IN NS localhost.\n";

/// [`GOOD`] plus the policy zone `rpz.regdns.` (zone[1], `zone_lines`) and the trigger
/// endpoint `name` (endpoint[1]) with `body` (its keys and sub-tables).
fn rpz_config(zone_lines: &str, name: &str, body: &str) -> String {
    format!(
        "{GOOD}\n[[zone]]\norigin = \"rpz.regdns.\"\nfile = \"rpz.zone\"\nkind = \"rpz\"\n{zone_lines}\n\n[[endpoint]]\nname = \"{name}\"\n{body}\n"
    )
}

const RPZ_ACL: &str = "allow_transfer = [\"127.0.0.1/32\"]";
const RPZ_TARGETS: &str = "[endpoint.targets]\ndefault = [\n  { instance = \"hangzhou\", cname = \"ga.accel.test.\" },\n  { instance = \"zhangjiakou\", passthrough = true },\n]\n";

fn build_rpz(text: &str) -> Result<model::Model, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    std::fs::write(dir.path().join("rpz.zone"), RPZ_ZONE).unwrap();
    let path = dir.path().join("regdns.toml");
    let loaded = config::parse(text, &path, Env::prefixed("REGDNS_TEST_UNUSED_"))
        .map_err(|e| strip(&e.to_string(), dir.path()))?;
    model::build(&loaded).map_err(|e| strip(&e.to_string(), dir.path()))
}

fn rpz_err(text: &str) -> String {
    build_rpz(text).expect_err("config should be rejected")
}

#[test]
fn rpz_zone_and_trigger_build() {
    let m = build_rpz(&rpz_config(
        RPZ_ACL,
        "registry-1.docker.io.rpz.regdns.",
        RPZ_TARGETS,
    ))
    .unwrap();
    assert_eq!(m.zones[0].kind, config::ZoneKind::Zone);
    assert!(m.zones[1].is_rpz());
    let e = &m.endpoints[1];
    assert_eq!(e.zone, Some(1));
    assert!(e.in_rpz(&m) && !m.endpoints[0].in_rpz(&m));
    assert_eq!(
        e.rpz_trigger(&m).map(|n| n.to_string()).as_deref(),
        Some("registry-1.docker.io.")
    );
    assert_eq!(m.endpoints[0].rpz_trigger(&m), None);
}

#[test]
fn rpz_misuse_is_refused_with_its_key_path() {
    let ep = "registry-1.docker.io.rpz.regdns.";
    let e = rpz_err(
        &rpz_config(RPZ_ACL, ep, RPZ_TARGETS).replace("kind = \"rpz\"", "kind = \"policy\""),
    );
    assert!(e.starts_with("regdns.toml: zone[1].kind: "), "{e}");
    assert!(e.contains("zone") && e.contains("rpz"), "{e}");
    assert_eq!(
        rpz_err(&rpz_config("", ep, RPZ_TARGETS)),
        "regdns.toml: zone[1].allow_transfer: an RPZ zone is answered only to the resolvers allowed to transfer it, and none is: list their addresses (\"192.0.2.53/32\") or keys (\"key:NAME.\")"
    );
    assert_eq!(
        rpz_err(&rpz_config(RPZ_ACL, "rpz.regdns.", RPZ_TARGETS)),
        "regdns.toml: endpoint[1].name: rpz.regdns. is the origin of the RPZ zone rpz.regdns., where its SOA and NS live; a trigger is the overridden name written below it (e.g. registry-1.docker.io.rpz.regdns.)"
    );
    assert_eq!(
        rpz_err(&rpz_config(
            RPZ_ACL,
            "32.1.0.0.10.rpz-ip.rpz.regdns.",
            RPZ_TARGETS
        )),
        "regdns.toml: endpoint[1].name: 32.1.0.0.10.rpz-ip.rpz.regdns. is an rpz-ip trigger; regdns writes QNAME triggers only: the overridden name followed by the zone origin (e.g. registry-1.docker.io.rpz.regdns.)"
    );
    let publish = format!(
        "{RPZ_TARGETS}\n[[endpoint.publish]]\nprovider = \"rfc2136\"\nview = \"default\"\nserver = \"192.0.2.1:53\"\nzone = \"docker.io.\"\ntsig_key = \"update-key.\"\n"
    );
    assert_eq!(
        rpz_err(&rpz_config(RPZ_ACL, ep, &publish)),
        "regdns.toml: endpoint[1].publish[0].provider: registry-1.docker.io.rpz.regdns. is an RPZ trigger (it overrides registry-1.docker.io. for the resolvers that load rpz.regdns.), not a name anyone resolves: there is nothing to publish to PrivateZone, Alidns or RFC 2136; to push that answer too, add an endpoint named registry-1.docker.io. with this binding"
    );
    let pvtz = format!(
        "{RPZ_TARGETS}\n[[endpoint.privatezone]]\nview = \"default\"\nzone_id = \"zone-1\"\n"
    );
    assert_eq!(
        rpz_err(&rpz_config(RPZ_ACL, ep, &pvtz)),
        "regdns.toml: endpoint[1].privatezone[0]: registry-1.docker.io.rpz.regdns. is an RPZ trigger (it overrides registry-1.docker.io. for the resolvers that load rpz.regdns.), not a name anyone resolves: there is nothing to publish to PrivateZone, Alidns or RFC 2136; to push that answer too, add an endpoint named registry-1.docker.io. with this binding"
    );
}

/// CNAME targets of an RPZ endpoint are rewrites: nothing RPZ reads otherwise.
#[test]
fn rpz_targets_must_be_expressible_as_policy() {
    let ep = "registry-1.docker.io.rpz.regdns.";
    let with = |cname: &str| {
        rpz_err(&rpz_config(
            RPZ_ACL,
            ep,
            &RPZ_TARGETS.replace("ga.accel.test.", cname),
        ))
    };
    assert_eq!(
        with("rpz-passthru."),
        "regdns.toml: endpoint[1].targets.default[0].cname: rpz-passthru. is read by RPZ resolvers as the policy action PASSTHRU (write passthrough = true), not as a rewrite to that name; a target of an RPZ endpoint rewrites to a real name (cname), answers addresses (a/aaaa) or passes through (passthrough = true)"
    );
    assert_eq!(
        with("."),
        "regdns.toml: endpoint[1].targets.default[0].cname: . is read by RPZ resolvers as the policy action NXDOMAIN (CNAME .), not as a rewrite to that name; a target of an RPZ endpoint rewrites to a real name (cname), answers addresses (a/aaaa) or passes through (passthrough = true)"
    );
    assert_eq!(
        with("*.garden.example."),
        "regdns.toml: endpoint[1].targets.default[0].cname: *.garden.example. is read by RPZ resolvers as the policy action wildcard substitution (CNAME *.NAME puts the query name in place of *), not as a rewrite to that name; a target of an RPZ endpoint rewrites to a real name (cname), answers addresses (a/aaaa) or passes through (passthrough = true)"
    );
    assert_eq!(
        with("registry-1.docker.io."),
        "regdns.toml: endpoint[1].targets.default[0].cname: a CNAME to the overridden name itself (registry-1.docker.io.) is the old RPZ spelling of passthrough; write { instance = \"hangzhou\", passthrough = true }"
    );
    assert_eq!(
        with("x.rpz.regdns."),
        "regdns.toml: endpoint[1].targets.default[0].cname: x.rpz.regdns. is inside the RPZ zone rpz.regdns., which is not answered to ordinary queries (only to its transfer clients): rewrite to a name resolvers can resolve"
    );
}

/// Issue 22: probing a path (`connect_hosts`, `resolver`) and the Docker Hub canary
/// (`canary.manifest`, `canary.blob_every`).
#[test]
fn path_keys_and_the_head_canary_build() {
    let m = build(&hz(
        r#"connect = "ga-1.example:443"
connect_hosts = ["auth.docker.io", "production.cloudflare.docker.com"]
resolver = "223.5.5.5"
canary = { repository = "library/busybox", reference = "latest", manifest = "head", blob_every = 10 }"#,
    ))
    .unwrap();
    let i = &m.instances[0];
    assert_eq!(
        i.connect_hosts,
        ["auth.docker.io", "production.cloudflare.docker.com"]
    );
    assert_eq!(i.resolver.as_deref(), Some("223.5.5.5"));
    let c = i.canary.as_ref().unwrap();
    assert_eq!(c.manifest, config::instance::CanaryManifest::Head);
    assert_eq!(c.blob_every, Some(10));
    let m = build(&hz(
        "connect = \"ga-1.example:443\"\nconnect_hosts = [\"*\"]\nresolver = \"[fd00::53]:5353\"",
    ))
    .unwrap();
    assert_eq!(m.instances[0].connect_hosts, ["*"]);
    let m = build(&hz(CANARY)).unwrap();
    let c = m.instances[0].canary.as_ref().unwrap();
    assert_eq!(
        (c.manifest, c.blob_every),
        (config::instance::CanaryManifest::Get, None),
        "today's pull by default"
    );
}

#[test]
fn path_keys_are_checked() {
    assert_eq!(
        err(&hz(r#"connect_hosts = ["auth.docker.io"]"#)),
        "regdns.toml: instance[0].connect_hosts: needs connect = \"host:port\" (the address these names are dialled to)"
    );
    let connect = "connect = \"ga-1.example:443\"";
    assert_eq!(
        err(&hz(&format!(
            "{connect}\nconnect_hosts = [\"*\", \"auth.docker.io\"]"
        ))),
        "regdns.toml: instance[0].connect_hosts: \"*\" already means every host; give it alone: [\"*\"]"
    );
    assert_eq!(
        err(&hz(&format!(
            "{connect}\nconnect_hosts = [\"auth.docker.io\", \"https://production.cloudflare.docker.com\"]"
        ))),
        "regdns.toml: instance[0].connect_hosts[1]: \"https://production.cloudflare.docker.com\" is not a host name; write e.g. \"auth.docker.io\" (no scheme, no port), or [\"*\"] for every host"
    );
    assert_eq!(
        err(&hz(&format!("{connect}\nconnect_hosts = [\"10.0.0.7\"]"))),
        "regdns.toml: instance[0].connect_hosts[0]: \"10.0.0.7\" is an IP address; list host names (a URL with an IP address is dialled as written)"
    );
    assert_eq!(
        err(&hz(r#"resolver = "dns.example:53""#)),
        "regdns.toml: instance[0].resolver: \"dns.example:53\" is not an IP address with an optional port; write e.g. \"223.5.5.5:53\" or \"223.5.5.5\""
    );
    assert_eq!(
        err(&hz(r#"resolver = "223.5.5.5:0""#)),
        "regdns.toml: instance[0].resolver: \"223.5.5.5:0\" is not an IP address with an optional port; write e.g. \"223.5.5.5:53\" or \"223.5.5.5\""
    );
    assert_eq!(
        err(&hz(
            r#"canary = { repository = "library/busybox", reference = "latest", manifest = "options" }"#
        )),
        "regdns.toml: instance[0].canary.manifest: \"options\" is not a way to check a manifest; write \"get\" (read it every run) or \"head\" (HEAD, a read only when a blob is due)"
    );
    assert_eq!(
        err(&hz(
            r#"canary = { repository = "library/busybox", reference = "latest", blob_every = -1 }"#
        )),
        "regdns.toml: instance[0].canary.blob_every: invalid value signed int `-1`, expected u32"
    );
}
