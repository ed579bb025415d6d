//! The CLI end to end: the real binary's operator commands against a running daemon with two
//! fake registries, checked on the wire with DNS queries, plus exit codes.

mod support;

use std::process::Output;
use std::time::Duration;

use support::daemon::{Daemon, HZ_CNAME, Registries, ZJK_CNAME, config, run_bounded};

const WAIT: Duration = Duration::from_secs(5);

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The override id printed by `failover`/`drain` ("ovr-…: …").
fn override_id(o: &Output) -> String {
    stdout(o)
        .split(':')
        .next()
        .filter(|s| s.starts_with("ovr-"))
        .unwrap_or_else(|| panic!("no override id in {:?}", stdout(o)))
        .to_string()
}

#[test]
fn operator_commands_change_the_answers_on_the_wire() {
    let regs = Registries::start();
    let d = Daemon::start(config(&regs, "auto"));
    let dir = d.dir.path().to_path_buf();
    let admin = d.admin;
    d.wait_both_up();
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
    assert_eq!(d.answer(true), vec!["10.1.3.4".to_string()]);

    // status --json: parsed and asserted.
    let o = d.cli(&["status", "--json"]);
    assert_exit(&o, 0);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("status JSON");
    let eps = s["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2);
    let default = eps.iter().find(|e| e["view"] == "default").unwrap();
    assert_eq!(default["active"], "hangzhou");
    assert_eq!(default["answer"], format!("CNAME {HZ_CNAME}"));
    assert_eq!(default["degraded"], false);
    assert!(
        s["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "up")
    );

    // failover → the new answer on the wire.
    let o = d.cli(&[
        "failover",
        "cross-region.registry.test",
        "--to",
        "zhangjiakou",
        "--view",
        "default",
        "--for",
        "30m",
        "--reason",
        "maintenance in hangzhou",
    ]);
    assert_exit(&o, 0);
    let id = override_id(&o);
    assert!(stdout(&o).contains("regdns release"), "{}", stdout(&o));
    d.wait_answer(false, ZJK_CNAME, WAIT);
    assert_eq!(
        d.answer(true),
        vec!["10.1.3.4".to_string()],
        "vpc untouched"
    );

    // status (text): tables with the override.
    let o = d.cli(&["status"]);
    assert_exit(&o, 0);
    let text = stdout(&o);
    for needle in [
        "INSTANCES",
        "ENDPOINTS",
        "OVERRIDES",
        "SERIALS",
        "PUBLISHERS",
        &id,
        "maintenance in hangzhou",
        "tester",
        "FAILBACK PENDING",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // release → back to hangzhou (auto failback, hold 0s).
    let o = d.cli(&["release", &id, "--reason", "done"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!("released {id}")),
        "{}",
        stdout(&o)
    );
    d.wait_answer(false, HZ_CNAME, WAIT);

    // drain → vpc moves to hangzhou; release --all → back.
    let o = d.cli(&[
        "drain",
        "zhangjiakou",
        "--reason",
        "patching",
        "--for",
        "10m",
    ]);
    assert_exit(&o, 0);
    let drain_id = override_id(&o);
    d.wait_answer(true, "10.94.205.198", WAIT);
    let o = d.cli(&["release", "--all", "--reason", "patched"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains(&drain_id), "{}", stdout(&o));
    d.wait_answer(true, "10.1.3.4", WAIT);

    // events: the journal shows what happened, with the actor.
    let o = d.cli(&["events", "--since", "1h"]);
    assert_exit(&o, 0);
    let text = stdout(&o);
    for needle in ["override-added", "override-released", "switch", "tester"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let o = d.cli(&["events", "--json"]);
    assert_exit(&o, 0);
    let ev: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(ev["events"].as_array().unwrap().len() >= 4);

    // reload.
    let o = d.cli(&["reload"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("reloaded"), "{}", stdout(&o));

    // failback with nothing pending: refused by the daemon (1).
    let o = d.cli(&[
        "failback",
        "cross-region.registry.test",
        "--reason",
        "check",
    ]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("no failback is pending"),
        "{}",
        stderr(&o)
    );

    // Not found: 4, with the daemon's message.
    let o = d.cli(&[
        "failover",
        "nope.registry.test",
        "--to",
        "hangzhou",
        "--reason",
        "x",
    ]);
    assert_exit(&o, 4);
    assert!(
        stderr(&o).contains("unknown endpoint \"nope.registry.test.\""),
        "{}",
        stderr(&o)
    );
    let o = d.cli(&["release", "ovr-nope"]);
    assert_exit(&o, 4);
    let o = d.cli(&["drain", "shanghai", "--reason", "x"]);
    assert_exit(&o, 4);
    assert!(
        stderr(&o).contains("known: hangzhou, zhangjiakou"),
        "{}",
        stderr(&o)
    );

    // Usage: 2 (missing --reason; release without id or --all; bad --for is the daemon's 1).
    let o = d.cli(&["failover", "cross-region.registry.test", "--to", "hangzhou"]);
    assert_exit(&o, 2);
    let o = d.cli(&["release"]);
    assert_exit(&o, 2);
    let o = d.cli(&["drain", "hangzhou", "--reason", "x", "--for", "soon"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("is not a duration"), "{}", stderr(&o));

    // Wrong token: 2 (fix the configuration); unreachable daemon: 3.
    let bad = dir.as_path().join("bad.token");
    std::fs::write(&bad, "wrong\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args([
        "status",
        "--admin",
        &format!("http://{admin}"),
        "--token-file",
    ])
    .arg(&bad);
    let o = run_bounded(cmd, Duration::from_secs(20));
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("wrong bearer token"), "{}", stderr(&o));
    let dead = support::proc::free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args([
        "status",
        "--admin",
        &format!("http://127.0.0.1:{dead}"),
        "--token-file",
    ])
    .arg(&bad);
    let o = run_bounded(cmd, Duration::from_secs(20));
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("cannot reach regdns"), "{}", stderr(&o));
    // Unreadable config: 2.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args(["status", "-c", "/nonexistent/regdns.toml"]);
    let o = run_bounded(cmd, Duration::from_secs(20));
    assert_exit(&o, 2);

    // Degraded: both registries down → status exits 5 and says so.
    // zhangjiakou first, so hangzhou is the last answer of both views.
    regs.zjk.set_up(false);
    d.wait_answer(true, "10.94.205.198", WAIT);
    regs.hz.set_up(false);
    d.wait_status("degraded", WAIT, |s| {
        s["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["degraded"] == true)
    });
    let o = d.cli(&["status"]);
    assert_exit(&o, 5);
    assert!(stdout(&o).contains("DEGRADED"), "{}", stdout(&o));
    assert!(stderr(&o).contains("degraded"), "{}", stderr(&o));
    let o = d.cli(&["status", "--json"]);
    assert_exit(&o, 5);
    // Fail-static: the last answer is still served.
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
    assert_eq!(d.answer(true), vec!["10.94.205.198".to_string()]);
}

#[test]
fn status_help_documents_exit_5() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args(["status", "--help"]);
    let o = run_bounded(cmd, Duration::from_secs(10));
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("5 when any endpoint is degraded"),
        "{}",
        stdout(&o)
    );
}
