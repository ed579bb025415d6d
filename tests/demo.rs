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

/// SIGINT or SIGTERM at any point of the demo ends it at once, saying so: never a tour that
/// goes on against a stopped server ("did not move", "no answer").
#[test]
fn a_signal_ends_the_demo_at_once() {
    // (signal, extra args, stdout line after which it is sent)
    let cases: [(&str, &[&str], &str); 4] = [
        ("INT", &[], "Breaking hangzhou"),
        ("TERM", &[], "== Guided tour =="),
        ("INT", &[], "Healing hangzhou"),
        ("INT", &["--no-tour"], "Ctrl-C stops the demo."),
    ];
    for (signal, extra, after) in cases {
        let dns = format!("127.0.0.1:{}", proc::free_port());
        let admin = format!("127.0.0.1:{}", proc::free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
        cmd.args(["demo", "--listen", &dns, "--admin", &admin])
            .args(extra)
            .stdin(std::process::Stdio::null());
        let mut p = proc::Proc::spawn("demo", cmd, proc::temp_dir("demo")).unwrap();
        let t0 = std::time::Instant::now();
        while !p.stdout().contains(after) {
            assert!(
                p.is_running() && t0.elapsed() < Duration::from_secs(60),
                "never reached {after:?}: {}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p.signal(signal).unwrap();
        let sent = std::time::Instant::now();
        // A liveness bound, generous for a loaded machine; the demo itself takes ~1 s.
        let status = loop {
            if let Some(s) = p.try_status() {
                break s;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "SIG{signal} after {after:?}: the demo still runs {:?} later: {}",
                sent.elapsed(),
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = p.stdout();
        assert!(status.success(), "SIG{signal}: {status:?} {}", p.logs());
        assert!(
            out.contains(&format!("nterrupted (SIG{signal})")),
            "SIG{signal} after {after:?}: {out}"
        );
        for bad in ["did not move", "No failback", "no answer", "End of tour"] {
            assert!(
                !out.contains(bad),
                "SIG{signal} after {after:?}: {bad:?}: {out}"
            );
        }
    }
}

/// The commands the demo prints work when pasted into a shell, whether or not `regdns` is on
/// PATH (after `cargo run` it is not).
#[test]
fn printed_commands_run_as_printed() {
    let dns = format!("127.0.0.1:{}", proc::free_port());
    let admin = format!("127.0.0.1:{}", proc::free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args(["demo", "--no-tour", "--listen", &dns, "--admin", &admin])
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null());
    let mut p = proc::Proc::spawn("demo", cmd, proc::temp_dir("demo")).unwrap();
    let t0 = std::time::Instant::now();
    while !p.stdout().contains("Ctrl-C stops the demo.") {
        assert!(
            p.is_running() && t0.elapsed() < Duration::from_secs(60),
            "demo did not start: {}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p.stdout();
    // check exits 0; status may exit 5 (degraded) while the first probes conclude: what
    // matters is that the shell found the command and it talked to the demo.
    for (sub, shows) in [(" check -c ", ": OK"), (" status -c ", "INSTANCES")] {
        let line = out
            .lines()
            .find(|l| l.contains(sub))
            .unwrap_or_else(|| panic!("no{sub}line: {out}"))
            .trim();
        let run = Command::new("sh")
            .args(["-c", line])
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.code().is_some_and(|c| c != 126 && c != 127) && text.contains(shows),
            "{line:?}: {:?} {text}{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // Let it remove its temporary directory on the way out.
    p.signal("INT").unwrap();
    let t0 = std::time::Instant::now();
    while p.try_status().is_none() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The demo's third path: `fail ga` makes the stand-in accelerator refuse, and
/// registry-1.docker.io passes through to the public answer; `heal ga` brings the
/// accelerator's answer back after the hold.
#[test]
fn fail_ga_passes_through_to_the_public_answer() {
    use std::io::Write;
    use support::dns::{Query, RecordType, answer_rdata};
    let dns: std::net::SocketAddr = format!("127.0.0.1:{}", proc::free_port()).parse().unwrap();
    let admin = format!("127.0.0.1:{}", proc::free_port());
    let dir = proc::temp_dir("demo-ga");
    let out_path = dir.path().join("stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regdns"))
        .args([
            "demo",
            "--no-tour",
            "--listen",
            &dns.to_string(),
            "--admin",
            &admin,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let ask = || {
        Query::new("registry-1.docker.io.", RecordType::A)
            .timeout(Duration::from_millis(300))
            .udp(dns)
            .map(|m| answer_rdata(&m).join(","))
            .unwrap_or_default()
    };
    let wait = |want: &str, within: Duration| {
        let t0 = std::time::Instant::now();
        loop {
            let a = ask();
            if a.contains(want) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < within,
                "registry-1.docker.io answers {a:?}, not {want}\n{}\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("ga-demo.aliyunga0019.com.", Duration::from_secs(30));
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "fail ga").unwrap();
    wait("127.0.0.31", Duration::from_secs(10));
    writeln!(stdin, "heal ga").unwrap();
    let back = wait("ga-demo.aliyunga0019.com.", Duration::from_secs(30));
    assert!(
        back >= Duration::from_secs(10),
        "failback waited the 10 s hold ({back:?})"
    );
    let out = std::fs::read_to_string(&out_path).unwrap();
    assert!(out.contains("public answer (127.0.0.31)"), "{out}");
    let _ = child.kill();
    let _ = child.wait();
}
