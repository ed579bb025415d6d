//! Shared end-to-end test support: child processes (`proc`), a DNS client and response
//! normalizer (`dns`), Knot DNS as the reference server (`knot`), Unbound as the resolver
//! (`unbound`), BIND as a resolver applying response policy zones (`bind`), a real
//! Prometheus and its query API (`prometheus`), and the one place where the server under
//! test is started.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod acs_faults;
pub mod acs_gateway;
pub mod acs_verify;
pub mod bind;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod etcd;
pub mod fake_alidns;
pub mod fake_cr;
pub mod fake_pvtz;
pub mod hub;
pub mod knot;
pub mod netns;
pub mod primary;
pub mod proc;
pub mod prometheus;
pub mod regdns;
pub mod registry;
pub mod tls;
pub mod token_proxy;
pub mod unbound;
pub mod webdriver;
pub mod xfr;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use self::regdns::Regdns;
use config::Config;
use knot::{Knot, Zone};

/// Directory of the test zones (`tests/zones`).
pub fn zones_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones")
}

/// A running server under test. Dropping it stops the server.
pub struct ServerHandle {
    /// Where it answers DNS (UDP and TCP).
    pub addr: SocketAddr,
    /// What it is, for messages ("knot", "regdns").
    pub kind: &'static str,
    /// Keeps the process (and its temp dir) alive.
    guard: Box<dyn std::any::Any>,
}

impl ServerHandle {
    pub fn new(addr: SocketAddr, kind: &'static str, guard: Box<dyn std::any::Any>) -> Self {
        ServerHandle { addr, kind, guard }
    }

    /// Output and logs of the process, for failure messages.
    pub fn logs(&self) -> String {
        if let Some(k) = self.guard.downcast_ref::<Knot>() {
            return k.proc.logs();
        }
        if let Some(p) = self.guard.downcast_ref::<proc::Proc>() {
            return p.logs();
        }
        if let Some(r) = self.guard.downcast_ref::<Regdns>() {
            return r.proc.logs();
        }
        String::new()
    }
}

/// The server under test on 127.0.0.1 (free port), serving `zone_file` as `origin`.
pub fn start_server_under_test(zone_file: &Path, origin: &str) -> ServerHandle {
    let addr = config::free_addr();
    start_server_under_test_on(addr, zone_file, origin)
        .unwrap_or_else(|e| panic!("server under test did not start: {e}"))
}

/// The server under test (regdns) on `addr` (UDP and TCP), serving `zone_file` as
/// `origin`; an error when it cannot start (e.g. `addr` needs a privilege this run lacks).
/// Starts `target/debug/regdns serve` with a minimal config serving the zone.
pub fn start_server_under_test_on(
    addr: SocketAddr,
    zone_file: &Path,
    origin: &str,
) -> std::io::Result<ServerHandle> {
    let zone = std::fs::read(zone_file)?;
    let r = Regdns::launch(Config::on(addr).zone(&knot::fqdn(origin), "zone"))
        .file("zone", zone)
        .ready_soa(origin)
        .try_start()?;
    Ok(ServerHandle::new(addr, "regdns", Box::new(r)))
}

/// The reference server: Knot DNS on 127.0.0.1 (free port) serving `zone_file` as `origin`.
pub fn start_reference(zone_file: &Path, origin: &str) -> Knot {
    Knot::start(&[Zone::from_file(origin, zone_file)])
}
