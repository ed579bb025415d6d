//! Child processes for end-to-end tests: one temp dir per process, output captured to files in
//! it, bounded readiness polling, and a `Drop` that stops the child by its PID (never by name).
//!
//! Set `E2E_KEEP=1` to keep the temp dirs (config, logs, state) of every process after the test.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Default bound for a process to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Interval between two readiness checks.
const POLL: Duration = Duration::from_millis(50);

/// A fresh temp dir whose name starts with `e2e-PREFIX-`.
pub fn temp_dir(prefix: &str) -> TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("e2e-{prefix}-"))
        .tempdir()
        .expect("create temp dir");
    if std::env::var_os("E2E_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("[e2e] keeping {}", dir.path().display());
    }
    dir
}

/// A running child process that owns its temp dir. Dropping it kills the child (SIGKILL by
/// PID, then `wait`) and removes the dir.
pub struct Proc {
    name: String,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
    // Declared last: removed after the child is gone.
    dir: TempDir,
}

impl Proc {
    /// Spawns `cmd` with its stdout and stderr written to `DIR/NAME.stdout` and
    /// `DIR/NAME.stderr` and stdin closed. Does not wait for readiness.
    pub fn spawn(name: &str, mut cmd: Command, dir: TempDir) -> io::Result<Proc> {
        let stdout = dir.path().join(format!("{name}.stdout"));
        let stderr = dir.path().join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?);
        std::fs::write(
            dir.path().join(format!("{name}.command")),
            format!("{cmd:?}\n"),
        )?;
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {name} ({cmd:?}): {e}")))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            stdout,
            stderr,
            dir,
        })
    }

    /// Spawns `cmd` and polls `ready` every 50 ms until it returns true, for at most
    /// `timeout`. On failure (timeout, early exit, spawn error) the child is killed and the
    /// error carries its captured output.
    pub fn start(
        name: &str,
        cmd: Command,
        dir: TempDir,
        timeout: Duration,
        ready: impl FnMut() -> bool,
    ) -> io::Result<Proc> {
        let mut p = Proc::spawn(name, cmd, dir)?;
        p.wait_ready(timeout, ready)?;
        Ok(p)
    }

    /// [`Proc::spawn`] + [`Proc::wait_until`].
    pub fn start_checked(
        name: &str,
        cmd: Command,
        dir: TempDir,
        timeout: Duration,
        check: impl FnMut() -> Result<bool, String>,
    ) -> io::Result<Proc> {
        let mut p = Proc::spawn(name, cmd, dir)?;
        p.wait_until(timeout, check)?;
        Ok(p)
    }

    /// Polls `ready` until it returns true, the child exits, or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> io::Result<()> {
        self.wait_until(timeout, || Ok(ready()))
    }

    /// Like [`Proc::wait_ready`], but `check` may also give up at once with `Err(reason)`
    /// (e.g. a fatal line in the process's log); the child is then killed.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut() -> Result<bool, String>,
    ) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Err(self.failure(&format!("exited before it was ready ({status})")));
            }
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(why) => {
                    let e = self.failure(&format!("failed to start: {why}"));
                    self.kill();
                    return Err(e);
                }
            }
            if Instant::now() >= deadline {
                let e = self.failure(&format!("was not ready after {timeout:?}"));
                self.kill();
                return Err(e);
            }
            thread::sleep(POLL);
        }
    }

    fn failure(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "{} (pid {}) {what}; dir {}\n{}",
            self.name,
            self.pid(),
            self.dir.path().display(),
            self.logs()
        ))
    }

    /// The child's PID (0 once it has been reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process's temp dir (config, state, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Captured stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Captured stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Captured output, plus every `*.log` file in the temp dir, for error messages.
    pub fn logs(&self) -> String {
        let mut s = format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            tail(&self.stdout(), 60),
            self.name,
            tail(&self.stderr(), 60)
        );
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            let mut logs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            logs.sort();
            for log in logs {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                s.push_str(&format!("--- {} ---\n{}", log.display(), tail(&text, 60)));
            }
        }
        s
    }

    /// `Some(status)` once the child has exited (reaps it), `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// True while the child runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_status().is_none()
    }

    /// Sends `signal` (e.g. "TERM", "HUP") to the child by PID with kill(1).
    pub fn signal(&mut self, signal: &str) -> io::Result<()> {
        if !self.is_running() {
            return Err(io::Error::other(format!("{} is not running", self.name)));
        }
        let st = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -{signal} {} failed",
                self.pid()
            )))
        }
    }

    /// SIGTERM, then wait up to `grace` for the exit; SIGKILL after that. Returns the exit
    /// status when the child exited by itself within the grace period.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.signal("TERM").is_ok() {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Some(st) = self.try_status() {
                    self.child = None;
                    return Some(st);
                }
                thread::sleep(POLL);
            }
        }
        self.kill();
        None
    }

    /// SIGKILL by PID and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    let start = v.len().saturating_sub(lines);
    let mut out = v[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Ports handed out by this test process, so that two tests running in parallel in one binary
/// never get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that is free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A port on `ip` that is free for both UDP and TCP right now (never the same twice in one
/// test process). Panics after 100 attempts.
pub fn free_port_on(ip: IpAddr) -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind UDP port 0");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(SocketAddr::new(ip, port)).is_err() {
            continue;
        }
        let mut set = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if set.get_or_insert_with(HashSet::new).insert(port) && reserve_across_processes(port) {
            return port;
        }
    }
    panic!("no free UDP+TCP port on {ip} after 100 attempts");
}

/// nextest runs each test in its own process: a marker file per port in the temp dir keeps
/// two processes from being handed the same port within 10 minutes.
fn reserve_across_processes(port: u16) -> bool {
    let dir = std::env::temp_dir().join("e2e-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true; // best effort
    }
    let path = dir.join(port.to_string());
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .is_ok()
    {
        return true;
    }
    let stale = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(600));
    stale && std::fs::write(&path, b"").is_ok()
}

/// `Ok(())` when `addr` can be bound for both UDP and TCP right now (e.g. port 53 needs root
/// and nothing else listening there). The sockets are closed before returning.
pub fn can_bind(addr: SocketAddr) -> io::Result<()> {
    let _u = UdpSocket::bind(addr)?;
    let _t = TcpListener::bind(addr)?;
    Ok(())
}

/// Full path of `prog` if it is on PATH (or in /usr/sbin, /sbin), else `None`.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Like [`which`] but panics with an install hint.
pub fn require(prog: &str, debian_package: &str) -> PathBuf {
    which(prog).unwrap_or_else(|| {
        panic!("{prog} is not installed (Debian: apt-get install -y {debian_package}; scripts/test does it)")
    })
}
