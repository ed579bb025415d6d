//! DNS client side of the end-to-end tests: a query builder that encodes exactly what it is told
//! (qname case, qclass, opcode, QDCOUNT, EDNS version/DO/payload/options), blocking UDP and TCP
//! exchanges with timeouts, raw byte exchanges, and `normalize`, a deterministic rendering of
//! a response for comparing two servers.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

pub use hickory_proto::op::Message;
use hickory_proto::op::MessageType;
use hickory_proto::rr::rdata::opt::EdnsOption;
pub use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::rr::{RData, Record};

/// Default time to wait for one answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// EDNS(0) OPT record of a query.
#[derive(Clone, Debug)]
pub struct EdnsOpt {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// (option code, option data), in order.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Default for EdnsOpt {
    fn default() -> Self {
        EdnsOpt {
            payload: 1232,
            version: 0,
            dnssec_ok: false,
            options: Vec::new(),
        }
    }
}

/// A query, encoded by hand so that every field is exactly as set (no case folding, any
/// class, opcode or question count).
#[derive(Clone, Debug)]
pub struct Query {
    /// (qname as given, qtype, qclass)
    pub questions: Vec<(String, u16, u16)>,
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    pub edns: Option<EdnsOpt>,
    /// Source address to bind (e.g. 127.0.0.2 to select a view); `None`: the OS picks.
    pub source: Option<IpAddr>,
    pub timeout: Duration,
}

impl Query {
    /// One question `name` (case kept, trailing dot optional) of type `rtype`, class IN,
    /// opcode QUERY, RD clear, no EDNS.
    pub fn new(name: &str, rtype: RecordType) -> Query {
        Query {
            questions: vec![(name.to_string(), u16::from(rtype), 1)],
            id: next_id(),
            opcode: 0,
            rd: false,
            cd: false,
            edns: None,
            source: None,
            timeout: TIMEOUT,
        }
    }

    /// QTYPE by number (e.g. 65280 for a private type).
    pub fn qtype_code(mut self, code: u16) -> Self {
        for q in &mut self.questions {
            q.1 = code;
        }
        self
    }

    pub fn qclass(self, class: DNSClass) -> Self {
        self.qclass_code(u16::from(class))
    }

    /// QCLASS by number (1 IN, 3 CH, 4 HS, 254 NONE, 255 ANY).
    pub fn qclass_code(mut self, code: u16) -> Self {
        for q in &mut self.questions {
            q.2 = code;
        }
        self
    }

    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Header OPCODE (0 QUERY, 1 IQUERY, 2 STATUS, 3 unassigned, 4 NOTIFY, 5 UPDATE).
    pub fn opcode(mut self, opcode: u8) -> Self {
        self.opcode = opcode & 0x0f;
        self
    }

    pub fn rd(mut self, rd: bool) -> Self {
        self.rd = rd;
        self
    }

    pub fn cd(mut self, cd: bool) -> Self {
        self.cd = cd;
        self
    }

    /// Adds an EDNS OPT with this UDP payload size (keeps other EDNS settings).
    pub fn edns(mut self, payload: u16) -> Self {
        self.edns.get_or_insert_with(EdnsOpt::default).payload = payload;
        self
    }

    /// EDNS version (adds OPT with payload 1232 if absent).
    pub fn edns_version(mut self, version: u8) -> Self {
        self.edns.get_or_insert_with(EdnsOpt::default).version = version;
        self
    }

    /// Sets the DO bit (adds OPT with payload 1232 if absent).
    pub fn dnssec_ok(mut self) -> Self {
        self.edns.get_or_insert_with(EdnsOpt::default).dnssec_ok = true;
        self
    }

    /// Adds an arbitrary EDNS option (adds OPT with payload 1232 if absent).
    pub fn edns_option(mut self, code: u16, data: Vec<u8>) -> Self {
        self.edns
            .get_or_insert_with(EdnsOpt::default)
            .options
            .push((code, data));
        self
    }

    /// Adds an EDNS Client Subnet option (RFC 7871) from "ADDR/PREFIX", e.g. "10.1.0.0/16"
    /// or "2001:db8::/56"; scope prefix 0; the address is truncated to the prefix.
    pub fn ecs(self, subnet: &str) -> Self {
        let (addr, prefix) = subnet
            .split_once('/')
            .unwrap_or_else(|| panic!("ECS subnet {subnet:?} is not ADDR/PREFIX"));
        let addr: IpAddr = addr.parse().expect("ECS address");
        let prefix: u8 = prefix.parse().expect("ECS prefix");
        let (family, bytes): (u16, Vec<u8>) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let n = usize::from(prefix).div_ceil(8).min(bytes.len());
        let mut addr_bytes = bytes[..n].to_vec();
        if !prefix.is_multiple_of(8) && n > 0 {
            addr_bytes[n - 1] &= 0xffu8 << (8 - prefix % 8);
        }
        let mut data = Vec::new();
        data.extend_from_slice(&family.to_be_bytes());
        data.push(prefix);
        data.push(0);
        data.extend_from_slice(&addr_bytes);
        self.edns_option(8, data)
    }

    /// Binds this source address (UDP and TCP), e.g. 127.0.0.2.
    pub fn source(mut self, ip: IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Removes every question (QDCOUNT=0).
    pub fn no_question(mut self) -> Self {
        self.questions.clear();
        self
    }

    /// Appends another question (QDCOUNT>1).
    pub fn add_question(mut self, name: &str, rtype: RecordType) -> Self {
        self.questions.push((name.to_string(), u16::from(rtype), 1));
        self
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&self.id.to_be_bytes());
        let mut flags: u16 = u16::from(self.opcode) << 11;
        if self.rd {
            flags |= 0x0100;
        }
        if self.cd {
            flags |= 0x0010;
        }
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&(self.questions.len() as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        for (name, qtype, qclass) in &self.questions {
            encode_name(&mut b, name);
            b.extend_from_slice(&qtype.to_be_bytes());
            b.extend_from_slice(&qclass.to_be_bytes());
        }
        if let Some(e) = &self.edns {
            b.push(0); // root owner
            b.extend_from_slice(&41u16.to_be_bytes());
            b.extend_from_slice(&e.payload.to_be_bytes());
            b.push(0); // extended rcode
            b.push(e.version);
            let f: u16 = if e.dnssec_ok { 0x8000 } else { 0 };
            b.extend_from_slice(&f.to_be_bytes());
            let rdlen: usize = e.options.iter().map(|(_, d)| 4 + d.len()).sum();
            b.extend_from_slice(&(rdlen as u16).to_be_bytes());
            for (code, data) in &e.options {
                b.extend_from_slice(&code.to_be_bytes());
                b.extend_from_slice(&(data.len() as u16).to_be_bytes());
                b.extend_from_slice(data);
            }
        }
        b
    }

    /// Sends over UDP, returns the datagram whose ID matches, or `None` after the timeout.
    pub fn udp_raw(&self, addr: SocketAddr) -> Option<Vec<u8>> {
        udp_exchange(
            addr,
            &self.to_bytes(),
            self.source,
            self.timeout,
            Some(self.id),
        )
    }

    /// Sends over TCP (one connection), returns the first message, or `None` on
    /// timeout/close.
    pub fn tcp_raw(&self, addr: SocketAddr) -> Option<Vec<u8>> {
        send_tcp_raw_from(addr, &self.to_bytes(), self.source, self.timeout)
    }

    /// Over UDP, decoded; an error on timeout or undecodable answer.
    pub fn udp(&self, addr: SocketAddr) -> io::Result<Message> {
        decode(self.udp_raw(addr), "UDP", addr, self)
    }

    /// Over TCP, decoded; an error on timeout or undecodable answer.
    pub fn tcp(&self, addr: SocketAddr) -> io::Result<Message> {
        decode(self.tcp_raw(addr), "TCP", addr, self)
    }

    /// Over the given transport, raw.
    pub fn send_raw(&self, addr: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
        match transport {
            Transport::Udp => self.udp_raw(addr),
            Transport::Tcp => self.tcp_raw(addr),
        }
    }

    /// Short text for tables: `name TYPE [CLASS] [opcode N] [+flags]`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.questions.is_empty() {
            s.push_str("(no question)");
        }
        for (i, (n, t, c)) in self.questions.iter().enumerate() {
            if i > 0 {
                s.push_str(" + ");
            }
            let _ = write!(s, "{n} {}", RecordType::from(*t));
            if *c != 1 {
                let _ = write!(s, " {}", class_name(*c));
            }
        }
        if self.opcode != 0 {
            let _ = write!(s, " opcode={}", self.opcode);
        }
        if let Some(e) = &self.edns {
            let _ = write!(s, " edns(v{} bufsize={}", e.version, e.payload);
            if e.dnssec_ok {
                s.push_str(" do");
            }
            for (c, _) in &e.options {
                let _ = write!(s, " opt{c}");
            }
            s.push(')');
        }
        if let Some(src) = self.source {
            let _ = write!(s, " from {src}");
        }
        s
    }
}

/// UDP or TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

fn decode(raw: Option<Vec<u8>>, how: &str, addr: SocketAddr, q: &Query) -> io::Result<Message> {
    let raw = raw.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no {how} answer from {addr} to {} within {:?}",
                q.describe(),
                q.timeout
            ),
        )
    })?;
    Message::from_vec(&raw).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("undecodable {how} answer from {addr}: {e}: {}", hex(&raw)),
        )
    })
}

fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(0x1000);
    ID.fetch_add(1, Ordering::Relaxed)
}

/// Appends `name` in wire form: labels split on '.', bytes as given (case kept, no escapes).
pub fn encode_name(b: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        assert!(label.len() < 64, "label too long: {label}");
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
}

/// One UDP query (IN class, no EDNS, RD clear); panics with the reason when there is no
/// decodable answer within 2 s.
pub fn query_udp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    Query::new(name, rtype)
        .udp(addr)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One TCP query (IN class, no EDNS, RD clear); panics when there is no decodable answer.
pub fn query_tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    Query::new(name, rtype)
        .tcp(addr)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends arbitrary bytes in one datagram and returns the first datagram back from `addr`, or
/// `None` after `timeout`.
pub fn send_udp_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    udp_exchange(addr, bytes, None, timeout, None)
}

/// Like [`send_udp_raw`] but from a chosen source address.
pub fn send_udp_raw_from(
    addr: SocketAddr,
    bytes: &[u8],
    source: Option<IpAddr>,
    timeout: Duration,
) -> Option<Vec<u8>> {
    udp_exchange(addr, bytes, source, timeout, None)
}

fn unspecified_for(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn udp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    source: Option<IpAddr>,
    timeout: Duration,
    want_id: Option<u16>,
) -> Option<Vec<u8>> {
    let src = SocketAddr::new(source.unwrap_or_else(|| unspecified_for(addr)), 0);
    let sock = UdpSocket::bind(src).unwrap_or_else(|e| panic!("bind UDP {src}: {e}"));
    sock.connect(addr).ok()?;
    sock.send(bytes).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                let got = &buf[..n];
                match want_id {
                    Some(id) if n < 2 || u16::from_be_bytes([got[0], got[1]]) != id => continue,
                    _ => return Some(got.to_vec()),
                }
            }
            // ICMP port unreachable surfaces as ConnectionRefused on a connected socket.
            Err(_) => return None,
        }
    }
}

/// Sends arbitrary bytes as one length-prefixed TCP message and returns the first message
/// back, or `None` on timeout, reset or close.
pub fn send_tcp_raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    send_tcp_raw_from(addr, bytes, None, timeout)
}

/// Like [`send_tcp_raw`] but from a chosen source address.
pub fn send_tcp_raw_from(
    addr: SocketAddr,
    bytes: &[u8],
    source: Option<IpAddr>,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let mut s = tcp_connect(addr, source, timeout).ok()?;
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
    s.write_all(&out).ok()?;
    read_tcp_message(&mut s)
}

/// Sends `bytes` as one TCP message and reads up to `max` messages back (e.g. an AXFR
/// stream), stopping at close, timeout or `max`.
pub fn send_tcp_raw_multi(
    addr: SocketAddr,
    bytes: &[u8],
    source: Option<IpAddr>,
    timeout: Duration,
    max: usize,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let Ok(mut s) = tcp_connect(addr, source, timeout) else {
        return got;
    };
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
    if s.write_all(&out).is_err() {
        return got;
    }
    while got.len() < max {
        match read_tcp_message(&mut s) {
            Some(m) => got.push(m),
            None => break,
        }
    }
    got
}

/// A TCP connection with read/write timeouts, bound to `source` when given.
pub fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = match source {
        None => TcpStream::connect_timeout(&addr, timeout)?,
        Some(ip) => connect_from(addr, ip, timeout)?,
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// std cannot bind before connect; tokio's TcpSocket can, on a throwaway runtime.
fn connect_from(addr: SocketAddr, ip: IpAddr, timeout: Duration) -> io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let stream = rt.block_on(async {
        let sock = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        sock.bind(SocketAddr::new(ip, 0))?;
        tokio::time::timeout(timeout, sock.connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))?
    })?;
    let std = stream.into_std()?;
    std.set_nonblocking(false)?;
    Ok(std)
}

/// Reads one length-prefixed message.
pub fn read_tcp_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

// ---------------------------------------------------------------------------------------------
// normalize

/// Field names produced by [`normalize_fields`], in order. `opt` is absent from a response
/// without OPT; a missing response has only `reply`.
pub const FIELDS: &[&str] = &[
    "reply",
    "rcode",
    "opcode",
    "flags",
    "question",
    "answer",
    "authority",
    "additional",
    "opt",
    "tsig",
];

/// Deterministic rendering of a response, one field per line group, for comparisons.
pub fn normalize(msg: &Message) -> String {
    render_fields(&normalize_fields(msg))
}

/// Joins fields as `name: value` (multi-line values indented).
pub fn render_fields(fields: &[(&'static str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        if v.contains('\n') {
            let _ = writeln!(s, "{k}:");
            for l in v.lines() {
                let _ = writeln!(s, "  {l}");
            }
        } else {
            let _ = writeln!(s, "{k}: {v}");
        }
    }
    s
}

/// [`normalize_fields`] for a raw reply: `reply: none` when there was no answer,
/// `reply: undecodable ...` when hickory cannot decode it.
pub fn normalize_reply(reply: Option<&[u8]>) -> Vec<(&'static str, String)> {
    match reply {
        None => vec![("reply", "none".to_string())],
        Some(raw) => match Message::from_vec(raw) {
            Ok(m) => normalize_fields(&m),
            Err(e) => vec![("reply", format!("undecodable ({e}): {}", hex(raw)))],
        },
    }
}

/// The response as (field, value) pairs: `reply` (response/query), `rcode` (name, extended
/// rcode merged), `opcode`, `flags` (aa tc rd ra ad cd, set ones only), `question`,
/// `answer`, `authority`, `additional` (one record per line `owner ttl class type rdata`,
/// owner as on the wire with its case, records sorted within each RRset, RRsets in order of
/// first appearance), `opt` (version, do, payload, options), `tsig` (present or not).
pub fn normalize_fields(msg: &Message) -> Vec<(&'static str, String)> {
    let md = &msg.metadata;
    let mut f = Vec::new();
    f.push((
        "reply",
        match md.message_type {
            MessageType::Response => "response",
            MessageType::Query => "query (QR clear!)",
        }
        .to_string(),
    ));
    f.push(("rcode", rcode_name(u16::from(md.response_code))));
    f.push(("opcode", u8::from(md.op_code).to_string()));
    let mut flags = Vec::new();
    for (set, name) in [
        (md.authoritative, "aa"),
        (md.truncation, "tc"),
        (md.recursion_desired, "rd"),
        (md.recursion_available, "ra"),
        (md.authentic_data, "ad"),
        (md.checking_disabled, "cd"),
    ] {
        if set {
            flags.push(name);
        }
    }
    f.push(("flags", flags.join(" ")));
    let qs: Vec<String> = msg
        .queries
        .iter()
        .map(|q| {
            format!(
                "{} {} {}",
                q.name,
                class_name(u16::from(q.query_class)),
                q.query_type
            )
        })
        .collect();
    f.push(("question", qs.join("\n")));
    f.push(("answer", render_section(&msg.answers)));
    f.push(("authority", render_section(&msg.authorities)));
    f.push(("additional", render_section(&msg.additionals)));
    if let Some(e) = &msg.edns {
        let mut s = format!(
            "version={} do={} payload={}",
            e.version(),
            u8::from(e.flags().dnssec_ok),
            e.max_payload()
        );
        if e.flags().z != 0 {
            let _ = write!(s, " z={:#x}", e.flags().z);
        }
        let mut opts: Vec<String> = e
            .options()
            .options
            .iter()
            .map(|(code, opt)| match opt {
                EdnsOption::Subnet(cs) => format!(
                    "ecs={}/{}/{}",
                    cs.addr(),
                    cs.source_prefix(),
                    cs.scope_prefix()
                ),
                EdnsOption::Unknown(15, data) if data.len() >= 2 => format!(
                    "ede={}{}",
                    u16::from_be_bytes([data[0], data[1]]),
                    if data.len() > 2 {
                        format!(":{:?}", String::from_utf8_lossy(&data[2..]))
                    } else {
                        String::new()
                    }
                ),
                other => format!(
                    "{}={}",
                    u16::from(*code),
                    Vec::<u8>::try_from(other)
                        .map(|b| hex(&b))
                        .unwrap_or_default()
                ),
            })
            .collect();
        opts.sort();
        let _ = write!(s, " options=[{}]", opts.join(","));
        f.push(("opt", s));
    }
    if msg.signature.is_some() {
        f.push(("tsig", "present".to_string()));
    }
    f
}

fn render_section(records: &[Record]) -> String {
    // Group into RRsets (owner case-insensitively, class, type) in order of first appearance;
    // sort the records of each RRset.
    let mut sets: Vec<((String, u16, u16), Vec<String>)> = Vec::new();
    for r in records {
        let key = (
            r.name.to_ascii().to_ascii_lowercase(),
            u16::from(r.dns_class),
            u16::from(r.record_type()),
        );
        let line = format!(
            "{} {} {} {} {}",
            r.name,
            r.ttl,
            class_name(u16::from(r.dns_class)),
            r.record_type(),
            rdata_string(&r.data)
        );
        match sets.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(line),
            None => sets.push((key, vec![line])),
        }
    }
    let mut out = Vec::new();
    for (_, mut v) in sets {
        v.sort();
        out.extend(v);
    }
    out.join("\n")
}

/// RDATA in presentation form; TXT as quoted character-strings (so splits are visible).
pub fn rdata_string(d: &RData) -> String {
    match d {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| {
                let mut q = String::from("\"");
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            q.push('\\');
                            q.push(b as char);
                        }
                        0x20..=0x7e => q.push(b as char),
                        _ => {
                            let _ = write!(q, "\\{b:03}");
                        }
                    }
                }
                q.push('"');
                q
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// RCODE mnemonic (with the number for unusual ones).
pub fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

/// Class mnemonic.
pub fn class_name(code: u16) -> String {
    match code {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        n => format!("CLASS{n}"),
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// small helpers for assertions

/// RCODE of a message, as a mnemonic.
pub fn rcode(msg: &Message) -> String {
    rcode_name(u16::from(msg.metadata.response_code))
}

/// The answer section's RDATA strings (sorted), e.g. `["10.0.0.1", "10.0.0.2"]`.
pub fn answer_rdata(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg.answers.iter().map(|r| rdata_string(&r.data)).collect();
    v.sort();
    v
}

/// RDATA strings of the answer records of type `rtype` (sorted).
pub fn answer_rdata_of(msg: &Message, rtype: RecordType) -> Vec<String> {
    let mut v: Vec<String> = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| rdata_string(&r.data))
        .collect();
    v.sort();
    v
}
