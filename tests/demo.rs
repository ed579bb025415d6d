//! `regdns demo --exit-after-tour`: the README's main command runs its guided failover and
//! failback end to end on loopback (on free ports, so it can run beside a real demo).

mod support;

use std::process::Command;
use std::time::Duration;

use support::proc;

#[test]
fn demo_tour_fails_over_and_back() {
    let dns = format!("127.0.0.1:{}", proc::free_port());
    let admin = format!("127.0.0.1:{}", proc::free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args([
        "demo",
        "--exit-after-tour",
        "--listen",
        &dns,
        "--admin",
        &admin,
    ]);
    let mut p = proc::Proc::spawn("demo", cmd, proc::temp_dir("demo")).unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = p.try_status() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "demo did not finish: {}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = p.stdout();
    assert!(status.success(), "{}", p.logs());
    assert!(
        out.contains("Failover: the answer moved to zhangjiakou"),
        "{out}"
    );
    assert!(
        out.contains("Failback: the answer returned to hangzhou"),
        "{out}"
    );
    assert!(
        out.contains("vpc-demo view (from 127.0.0.2): A 10.1.3.4"),
        "{out}"
    );
    assert!(
        out.contains(&format!("status page: http://{admin}/")),
        "{out}"
    );
}
