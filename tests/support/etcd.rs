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
    /// Its command line and data directory (kept for [`Etcd::restart`]).
    args: Vec<std::ffi::OsString>,
    data: Option<tempfile::TempDir>,
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

    /// `n` members (1 or 3) forming one cluster; tries new ports when one was taken by
    /// another test meanwhile (free ports are only free when picked).
    pub fn start(n: usize) -> Etcd {
        Etcd::start_on(n, &[])
    }

    /// [`Etcd::start`] also listening for clients on `also` (addresses of network
    /// namespaces' host sides), on the same port as on 127.0.0.1.
    pub fn start_on(n: usize, also: &[std::net::IpAddr]) -> Etcd {
        let mut last = String::new();
        for _ in 0..3 {
            match Etcd::try_start(n, also) {
                Ok(e) => return e,
                Err(e) if e.contains("already in use") => last = e,
                Err(e) => panic!("etcd did not start: {e}"),
            }
        }
        panic!("etcd did not start: {last}")
    }

    fn try_start(n: usize, also: &[std::net::IpAddr]) -> Result<Etcd, String> {
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
        let mut members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| {
                let data = proc::temp_dir("etcd-data");
                let dir = proc::temp_dir("etcd");
                let url = format!("http://127.0.0.1:{c}");
                let listen: Vec<String> = std::iter::once(url.clone())
                    .chain(also.iter().map(|ip| format!("http://{ip}:{c}")))
                    .collect();
                let mut cmd = Command::new(&bin);
                cmd.arg("--name")
                    .arg(format!("e{i}"))
                    .arg("--data-dir")
                    .arg(data.path().join("data"))
                    .arg("--listen-client-urls")
                    .arg(listen.join(","))
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
                let args = cmd.get_args().map(|a| a.to_os_string()).collect();
                Member {
                    url,
                    proc: Proc::spawn(&format!("etcd-e{i}"), cmd, dir).expect("etcd"),
                    args,
                    data: Some(data),
                }
            })
            .collect();
        for m in &mut members {
            let url = m.url.clone();
            m.proc
                .wait_ready(Duration::from_secs(20), || healthy(&url))
                .map_err(|e| e.to_string())?;
        }
        Ok(Etcd { members })
    }

    /// Client URLs as a TOML array body: `"http://...", "http://..."`.
    pub fn endpoints_toml(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("\"{}\"", m.url))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// kill -9 of every member (their data stays for [`Etcd::restart`]).
    pub fn kill(&mut self) {
        for m in &mut self.members {
            m.proc.kill();
        }
    }

    /// Starts every member again on its data directory and ports.
    pub fn restart(&mut self) {
        let bin = proc::require("etcd", "etcd-server");
        for (i, m) in self.members.iter_mut().enumerate() {
            let mut cmd = Command::new(&bin);
            cmd.args(&m.args);
            m.proc = Proc::spawn(&format!("etcd-e{i}-again"), cmd, proc::temp_dir("etcd"))
                .expect("etcd");
        }
        for m in &mut self.members {
            let url = m.url.clone();
            m.proc
                .wait_ready(Duration::from_secs(20), || healthy(&url))
                .unwrap_or_else(|e| panic!("etcd did not restart: {e}"));
        }
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

/// Client files for an etcd with TLS and authentication.
pub struct TlsFiles {
    /// Directory holding them.
    pub dir: tempfile::TempDir,
    /// CA certificate (PEM).
    pub ca: std::path::PathBuf,
    /// Client certificate (PEM).
    pub cert: std::path::PathBuf,
    /// Client key (PEM).
    pub key: std::path::PathBuf,
    /// Password file of the `regdns` user.
    pub password: std::path::PathBuf,
}

impl Etcd {
    /// One member serving https with `--client-cert-auth` (a CA, a server and a client
    /// certificate made here) and user authentication enabled: user `regdns` (password in
    /// [`TlsFiles::password`]) may read and write `/regdns/` only.
    pub fn start_tls_auth() -> (Etcd, TlsFiles) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let bin = proc::require("etcd", "etcd-server");
        let etcdctl = proc::require("etcdctl", "etcd-client");
        let files = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "etcd test CA");
        let ca = p.self_signed(&ca_key).unwrap();
        let write = |name: &str, text: String| {
            let path = files.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let leaf = |cn: &str, names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            // etcd's JSON gateway refuses client certificates with a CommonName (CN
            // identities work over gRPC only): clients of the gateway carry none.
            p.distinguished_name = rcgen::DistinguishedName::new();
            if !cn.is_empty() {
                p.distinguished_name.push(DnType::CommonName, cn);
            }
            let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let ca_file = write("ca.pem", ca.pem());
        let (scert, skey) = leaf("etcd", vec!["127.0.0.1".into(), "localhost".into()]);
        let server_cert = write("server.pem", scert);
        let server_key = write("server-key.pem", skey);
        // No CN: access comes from the password.
        let (ccert, ckey) = leaf("", vec![]);
        let cert = write("client.pem", ccert);
        let key = write("client-key.pem", ckey);
        let (rcert, rkey) = leaf("root", vec![]);
        let root_cert = write("root.pem", rcert);
        let root_key = write("root-key.pem", rkey);
        let password = write("password", "s3cret-regdns\n".into());

        let (c, peer) = (proc::free_port(), proc::free_port());
        let url = format!("https://127.0.0.1:{c}");
        let dir = proc::temp_dir("etcd-tls");
        let mut cmd = Command::new(&bin);
        cmd.args(["--name", "t", "--log-level", "warn"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-cluster")
            .arg(format!("t=http://127.0.0.1:{peer}"))
            .arg("--cert-file")
            .arg(&server_cert)
            .arg("--key-file")
            .arg(&server_key)
            .arg("--trusted-ca-file")
            .arg(&ca_file)
            .arg("--client-cert-auth");
        let mut p = Proc::spawn("etcd-tls", cmd, dir).expect("etcd");
        let ctl = |args: &[&str]| {
            let out = Command::new(&etcdctl)
                .env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(&url)
                .arg("--cacert")
                .arg(&ca_file)
                .arg("--cert")
                .arg(&root_cert)
                .arg("--key")
                .arg(&root_key)
                .args(args)
                .output()
                .unwrap();
            (out.status.success(), format!("{out:?}"))
        };
        p.wait_ready(Duration::from_secs(20), || ctl(&["endpoint", "health"]).0)
            .unwrap_or_else(|e| panic!("etcd (tls) did not start: {e}"));
        for args in [
            &["user", "add", "root", "--new-user-password=root-pw"][..],
            &["user", "add", "regdns", "--new-user-password=s3cret-regdns"],
            &["role", "add", "regdns-rw"],
            &[
                "role",
                "grant-permission",
                "regdns-rw",
                "readwrite",
                "--prefix=true",
                "/regdns/",
            ],
            &["user", "grant-role", "regdns", "regdns-rw"],
            &["auth", "enable"],
        ] {
            let (ok, out) = ctl(args);
            assert!(ok, "etcdctl {args:?}: {out}");
        }
        let etcd = Etcd {
            members: vec![Member {
                url,
                proc: p,
                args: Vec::new(),
                data: None,
            }],
        };
        (
            etcd,
            TlsFiles {
                dir: files,
                ca: ca_file,
                cert,
                key,
                password,
            },
        )
    }
}
