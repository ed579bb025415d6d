//! A Knot DNS primary that accepts TSIG-signed RFC 2136 updates for `example.net` (the
//! recipe of `CONTRIBUTING.md#test-recipes`), and helpers to read it and edit it by hand with
//! `knsupdate` (an independent client).

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};

use super::dns::Query;
use super::knot::{Knot, Zone};
use super::proc::require;

/// The zone the primary serves.
pub const ZONE: &str = "example.net.";
/// Name of the update key.
pub const KEY_NAME: &str = "update-key.";
/// Its secret (base64 of 32 bytes).
pub const SECRET: &str = "dXBkYXRlLWtleS1zZWNyZXQtZm9yLXRlc3RzLTAwMDA=";
/// Another secret under the same key name (a wrong key).
pub const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0wMDAwMDA=";

/// The initial zone: stale answers at `cr` and `vpc` for regdns to replace, and records
/// regdns must never touch (other names, other types at a managed name).
pub const ZONE_TEXT: &str = "$ORIGIN example.net.\n$TTL 300\n\
@ IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 86400 60\n\
@ IN NS ns1.example.net.\n\
ns1 IN A 127.0.0.1\n\
cr IN CNAME old-registry.example.com.\n\
vpc IN A 10.0.0.9\n\
vpc IN TXT \"owner=platform-team\"\n\
vpc IN MX 10 mail.example.net.\n\
other IN A 192.0.2.7\n";

/// BIND key file text for `secret`.
pub fn key_file(secret: &str) -> String {
    format!("key \"{KEY_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n")
}

/// Knot with an update ACL that requires the key.
pub fn start() -> Knot {
    Knot::builder()
        .zone(Zone::new(ZONE, ZONE_TEXT))
        .extra_config(&format!(
            "key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\n\
             acl:\n  - id: upd\n    key: {KEY_NAME}\n    action: update\n"
        ))
        .zone_line("acl: upd")
        .start()
        .unwrap_or_else(|e| panic!("knot: {e}"))
}

/// `(rdata, ttl)` of the records of `rtype` owned by `name`, sorted. A lost or late answer
/// is asked again over TCP (a loaded machine must not turn into an empty RRset); panics
/// when the primary does not answer at all.
pub fn rrset(addr: SocketAddr, name: &str, rtype: RecordType) -> Vec<(String, u32)> {
    let q = Query::new(name, rtype).timeout(Duration::from_secs(2));
    let m = q
        .udp(addr)
        .or_else(|_| q.tcp(addr))
        .unwrap_or_else(|e| panic!("the primary does not answer {name} {rtype}: {e}"));
    let mut v: Vec<(String, u32)> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype && r.name.to_ascii().eq_ignore_ascii_case(name))
        .map(|r| {
            let s = match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                RData::CNAME(c) => c.0.to_ascii(),
                other => other.to_string(),
            };
            (s, r.ttl)
        })
        .collect();
    v.sort();
    v
}

/// The zone's SOA serial.
pub fn serial(addr: SocketAddr) -> u32 {
    let m = Query::new(ZONE, RecordType::SOA).udp(addr).expect("SOA");
    match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

/// Runs an update script with `knsupdate` signed with the right key (a manual edit).
pub fn knsupdate(addr: SocketAddr, lines: &[&str]) {
    let bin = require("knsupdate", "knot-dnsutils");
    let mut child = Command::new(bin)
        .arg("-y")
        .arg(format!("hmac-sha256:{KEY_NAME}:{SECRET}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("knsupdate");
    let mut script = format!("server {} {}\nzone {ZONE}\n", addr.ip(), addr.port());
    for l in lines {
        script.push_str(l);
        script.push('\n');
    }
    script.push_str("send\nquit\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "knsupdate failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
