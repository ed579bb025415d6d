//! Reload: a broken zone file is rejected with its `file:line` (POST /reload → 422, SIGHUP →
//! logged) and the old answers stay; a good one is applied. SIGTERM exits 0 after saving the
//! state.

mod support;

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use support::daemon::{Daemon, HZ_CNAME, Registries, ZONE, config};
use support::dns;

fn www(d: &Daemon) -> Vec<String> {
    dns::answer_rdata(
        &dns::Query::new("www.registry.test.", RecordType::A)
            .udp(d.dns)
            .expect("answer"),
    )
}

#[test]
fn broken_zone_is_rejected_with_file_line_and_old_answers_kept() {
    let regs = Registries::start();
    let mut d = Daemon::start(config(&regs, "auto"));
    let dir = d.dir.path().to_path_buf();
    assert_eq!(www(&d), vec!["192.0.2.80".to_string()]);
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);

    // The line after the last one of ZONE is broken.
    let bad_at = format!("registry.test.zone:{}", ZONE.lines().count() + 1);
    let zone = dir.as_path().join("registry.test.zone");
    std::fs::write(
        &zone,
        format!("{ZONE}www2 IN A 999.1.2.3\n").replace("192.0.2.80", "192.0.2.81"),
    )
    .unwrap();
    let (s, v) = d.call("POST", "/reload", None);
    assert_eq!(s, 422, "{v:#}");
    assert_eq!(v["error"], "reload_rejected");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(&bad_at), "{bad_at} in {msg:?}");
    assert!(
        msg.contains("still running the previous configuration"),
        "{msg}"
    );
    assert_eq!(www(&d), vec!["192.0.2.80".to_string()], "old answers kept");
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);

    // The CLI says the same and exits 1.
    let o = d.cli(&["reload"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&bad_at),
        "{o:?}"
    );

    // SIGHUP with the broken file: logged, still serving.
    d.proc.signal("HUP").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.proc.stderr().contains("reload rejected") {
        assert!(Instant::now() < deadline, "{}", d.proc.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.proc.is_running());
    assert_eq!(www(&d), vec!["192.0.2.80".to_string()]);

    // A broken config is rejected the same way.
    let cfg = dir.as_path().join("regdns.toml");
    let good_cfg = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good_cfg.replace("ttl = 30", "ttl = \"thirty\"")).unwrap();
    let (s, v) = d.call("POST", "/reload", None);
    assert_eq!(s, 422, "{v:#}");
    assert!(v["message"].as_str().unwrap().contains("ttl"), "{v:#}");
    std::fs::write(&cfg, &good_cfg).unwrap();

    // A config naming a file that does not exist is rejected too (with a good zone).
    std::fs::write(&zone, ZONE.replace("192.0.2.80", "192.0.2.81")).unwrap();
    std::fs::write(
        &cfg,
        good_cfg.replace(
            "id = \"hangzhou\"\n",
            "id = \"hangzhou\"\nca_file = \"/nonexistent/ca.crt\"\n",
        ),
    )
    .unwrap();
    let (s, v) = d.call("POST", "/reload", None);
    assert_eq!(s, 422, "{v:#}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("instance[0].ca_file: /nonexistent/ca.crt: No such file or directory"),
        "{v:#}"
    );
    assert_eq!(www(&d), vec!["192.0.2.80".to_string()], "old answers kept");

    // Fixed: applied.
    std::fs::write(&cfg, &good_cfg).unwrap();
    let (s, v) = d.call("POST", "/reload", None);
    assert_eq!(s, 200, "{v:#}");
    assert_eq!(www(&d), vec!["192.0.2.81".to_string()]);
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
}

#[test]
fn sigterm_exits_0_after_saving_state() {
    let regs = Registries::start();
    let mut d = Daemon::start(config(&regs, "auto"));
    let dir = d.dir.path().to_path_buf();
    d.wait_both_up();
    let state = dir.as_path().join("state/state.json");
    let before = std::fs::metadata(&state).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let status = d.proc.terminate(Duration::from_secs(10));
    let status = status.unwrap_or_else(|| panic!("no clean exit\n{}", d.proc.logs()));
    assert_eq!(status.code(), Some(0), "{}", d.proc.logs());
    let after = std::fs::metadata(&state).unwrap().modified().unwrap();
    assert!(after > before, "state saved on the way out");
    let text = std::fs::read_to_string(&state).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["decisions"].as_array().is_some_and(|d| !d.is_empty()),
        "{v:#}"
    );
    assert!(
        d.proc.stderr().contains("shutting down"),
        "{}",
        d.proc.logs()
    );
}
