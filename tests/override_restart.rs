//! `kill -9` right after an acknowledged override: restarted on the same state directory,
//! regdns serves the override from its first answer on, and status shows it.

mod support;

use std::time::Duration;

use support::daemon::{Daemon, Registries, ZJK_CNAME, config};

#[test]
fn acknowledged_override_survives_kill_9() {
    let regs = Registries::start();
    let mut d = Daemon::start(config(&regs, "auto"));
    d.wait_both_up();

    let (s, o) = d.call(
        "POST",
        "/overrides",
        Some(r#"{"type":"force","endpoint":"cross-region.registry.test","instance":"zhangjiakou","reason":"kill test","actor":"alice"}"#),
    );
    assert_eq!(s, 201, "{o:#}");
    let id = o["id"].as_str().unwrap().to_string();
    // SIGKILL by PID the moment the 201 is in: no chance to flush anything more.
    let pid = d.proc.pid();
    let st = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while d.proc.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = d.proc.try_status();
    assert!(
        status.is_none_or(|s| !s.success()),
        "killed, not exited: {status:?}"
    );

    // Same config, same state dir; both registries up, so only the override explains
    // zhangjiakou in the default view (hangzhou is preferred there).
    let d = d.restart();
    // The very first answer, before any probe concluded.
    assert_eq!(d.answer(false), vec![ZJK_CNAME.to_string()], "first answer");
    assert_eq!(d.answer(true), vec!["10.1.3.4".to_string()]);
    let (s, st) = d.call("GET", "/status", None);
    assert_eq!(s, 200);
    assert_eq!(st["overrides"][0]["id"], id.as_str(), "{st:#}");
    assert_eq!(st["overrides"][0]["actor"], "alice");
    // And it stays in force after the probes conclude.
    d.wait_both_up();
    assert_eq!(d.answer(false), vec![ZJK_CNAME.to_string()]);
    let (_, st) = d.call("GET", "/status", None);
    let default = st["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["view"] == "default")
        .unwrap()
        .clone();
    assert_eq!(default["forced_by"], id.as_str(), "{st:#}");
    assert_eq!(default["active"], "zhangjiakou");
}
