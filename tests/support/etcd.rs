//! Real etcd on loopback (Debian's `etcd-server`): one member or a three-member cluster,
//! each a child process on ports of its own, stopped by PID. `pause`/`resume` (SIGSTOP/
//! SIGCONT) make it unreachable without losing data.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use super::proc::{self, Proc};

/// One etcd member.
pub struct Member {
    /// Client URL.
    pub url: String,
    /// The process.
    pub proc: Proc,
}

/// An etcd cluster under test.
pub struct Etcd {
    /// Members (one or three).
    pub members: Vec<Member>,
}

fn healthy(url: &str) -> bool {
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("addr");
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let body = r#"{"key":"aGVhbHRo"}"#;
    let req = format!(
        "POST /v3/kv/range HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
}

impl Etcd {
    /// A single member.
    pub fn start_one() -> Etcd {
        Etcd::start(1)
    }

    /// `n` members (1 or 3) forming one cluster.
    pub fn start(n: usize) -> Etcd {
        let bin = proc::require("etcd", "etcd-server");
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| (proc::free_port(), proc::free_port()))
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("e{i}=http://127.0.0.1:{p}"))
            .collect();
        let token = format!("regdns-test-{}", ports[0].0);
        let procs: Vec<(String, Proc)> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| {
                let dir = proc::temp_dir("etcd");
                let url = format!("http://127.0.0.1:{c}");
                let mut cmd = Command::new(&bin);
                cmd.arg("--name")
                    .arg(format!("e{i}"))
                    .arg("--data-dir")
                    .arg(dir.path().join("data"))
                    .arg("--listen-client-urls")
                    .arg(&url)
                    .arg("--advertise-client-urls")
                    .arg(&url)
                    .arg("--listen-peer-urls")
                    .arg(format!("http://127.0.0.1:{p}"))
                    .arg("--initial-advertise-peer-urls")
                    .arg(format!("http://127.0.0.1:{p}"))
                    .arg("--initial-cluster")
                    .arg(initial.join(","))
                    .arg("--initial-cluster-state")
                    .arg("new")
                    .arg("--initial-cluster-token")
                    .arg(&token)
                    .arg("--log-level")
                    .arg("warn");
                (
                    url,
                    Proc::spawn(&format!("etcd-e{i}"), cmd, dir).expect("etcd"),
                )
            })
            .collect();
        let mut members: Vec<Member> = procs
            .into_iter()
            .map(|(url, proc)| Member { url, proc })
            .collect();
        for m in &mut members {
            let url = m.url.clone();
            m.proc
                .wait_ready(Duration::from_secs(20), || healthy(&url))
                .unwrap_or_else(|e| panic!("etcd did not start: {e}"));
        }
        Etcd { members }
    }

    /// Client URLs as a TOML array body: `"http://...", "http://..."`.
    pub fn endpoints_toml(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("\"{}\"", m.url))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// SIGSTOP every member: etcd stops answering, nothing is lost.
    pub fn pause(&mut self) {
        for m in &mut self.members {
            m.proc.signal("STOP").expect("SIGSTOP etcd");
        }
    }

    /// SIGCONT every member.
    pub fn resume(&mut self) {
        for m in &mut self.members {
            m.proc.signal("CONT").expect("SIGCONT etcd");
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // A stopped process does not die of SIGTERM until continued.
        for m in &mut self.members {
            let _ = m.proc.signal("CONT");
        }
    }
}
