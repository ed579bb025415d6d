//! Client networks as network namespaces (root, `ip`): each "VPC" is a namespace with a
//! veth to the host; each "region" is an address on the host's loopback interface that only
//! a route in the namespace reaches (its "CEN link"; a `/32` on `lo` because not every
//! kernel has the dummy interface), so deleting that route cuts one
//! network's path to one region and nothing else. Addresses are in 10.231.0.0/16, inside
//! what the test creates; everything is removed on drop (and leftovers of a crashed run
//! with the same names at creation).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// Runs `ip ARGS`, panicking with its output on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

/// Panics with a clear message unless the test can create namespaces.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test creates network namespaces (ip netns, veth): run it as root, as CI does"
    );
}

/// A region: `10.231.N.1/32` on the host's `lo`, reached from a network by `10.231.N.0/24`.
pub struct Region {
    /// Its address.
    pub addr: Ipv4Addr,
    net: String,
}

/// A client network: namespace `name`, host side `10.231.N.1`, inside `10.231.N.2`.
pub struct Vpc {
    /// Namespace name.
    pub name: String,
    link: String,
    /// The host's address on this network's veth (reachable without any region route).
    pub host: Ipv4Addr,
}

/// Regions and networks of one test (`tag`: a short unique word, `base`: its third octet
/// range base, so tests running at once never share addresses).
pub struct Lab {
    tag: String,
    base: u8,
    /// The regions, in creation order.
    pub regions: Vec<Region>,
    /// The networks, in creation order.
    pub vpcs: Vec<Vpc>,
}

impl Lab {
    /// An empty lab; removes what a crashed run with the same tag left.
    pub fn new(tag: &str, base: u8) -> Lab {
        require_root();
        assert!(tag.len() <= 6, "interface names are at most 15 bytes");
        let lab = Lab {
            tag: tag.into(),
            base,
            regions: Vec::new(),
            vpcs: Vec::new(),
        };
        for i in 0..10 {
            ip_quiet(&["netns", "del", &lab.ns_name(i)]);
            ip_quiet(&["link", "del", &format!("rv{}{i}", lab.tag)]);
            let n = base + 100 + i as u8;
            ip_quiet(&["addr", "del", &format!("10.231.{n}.1/32"), "dev", "lo"]);
        }
        lab
    }

    fn ns_name(&self, i: usize) -> String {
        format!("regdns-{}-{i}", self.tag)
    }

    /// Adds a region; returns its address.
    pub fn region(&mut self) -> IpAddr {
        let i = self.regions.len();
        let n = self.base + 100 + i as u8;
        let addr = Ipv4Addr::new(10, 231, n, 1);
        ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"]);
        self.regions.push(Region {
            addr,
            net: format!("10.231.{n}.0/24"),
        });
        IpAddr::V4(addr)
    }

    /// Adds a network with a route to every region so far; returns its index.
    pub fn vpc(&mut self) -> usize {
        let i = self.vpcs.len();
        let name = self.ns_name(i);
        let link = format!("rv{}{i}", self.tag);
        let inner = format!("{link}i");
        let n = self.base + i as u8;
        let host = Ipv4Addr::new(10, 231, n, 1);
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &inner]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&["addr", "add", &format!("{host}/24"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("10.231.{n}.2/24"),
            "dev",
            &inner,
        ]);
        ip(&["-n", &name, "link", "set", &inner, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        for r in &self.regions {
            ip(&[
                "-n",
                &name,
                "route",
                "add",
                &r.net,
                "via",
                &host.to_string(),
            ]);
        }
        self.vpcs.push(Vpc { name, link, host });
        i
    }

    /// Cuts network `vpc`'s path to `region` (deletes its route).
    pub fn cut(&self, vpc: usize, region: usize) {
        let v = &self.vpcs[vpc];
        ip(&["-n", &v.name, "route", "del", &self.regions[region].net]);
    }

    /// Restores network `vpc`'s path to `region`.
    pub fn restore(&self, vpc: usize, region: usize) {
        let v = &self.vpcs[vpc];
        ip(&[
            "-n",
            &v.name,
            "route",
            "add",
            &self.regions[region].net,
            "via",
            &v.host.to_string(),
        ]);
    }

    /// `ip netns exec NS` + `program`.
    pub fn command(&self, vpc: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.vpcs[vpc].name]).arg(program);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for v in &self.vpcs {
            ip_quiet(&["netns", "del", &v.name]);
            ip_quiet(&["link", "del", &v.link]);
        }
        for r in &self.regions {
            ip_quiet(&["addr", "del", &format!("{}/32", r.addr), "dev", "lo"]);
        }
    }
}
