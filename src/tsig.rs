//! TSIG (RFC 8945): BIND key files, request verification and response signing, including
//! the chained MACs of a multi-message transfer (§5.3.1). Written on the raw wire bytes
//! (hmac + sha2) instead of hickory-proto's `TSigner`: that one does not check the time,
//! and its multi-message chaining is unverified against Knot/NSD (hickory-dns issue tracker, checked against Knot in `tests/xfr.rs`).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hmac::{Hmac, Mac};

/// Record type of TSIG (RFC 8945 §4.2).
pub const TYPE_TSIG: u16 = 250;

/// Fudge we put in signatures and accept from clients (seconds), as Knot and BIND.
pub const FUDGE: u16 = 300;

/// TSIG error values (RFC 8945 §3).
pub mod err {
    /// BADSIG.
    pub const BADSIG: u16 = 16;
    /// BADKEY.
    pub const BADKEY: u16 = 17;
    /// BADTIME.
    pub const BADTIME: u16 = 18;
}

/// HMAC algorithms supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// hmac-sha256.
    HmacSha256,
    /// hmac-sha384.
    HmacSha384,
    /// hmac-sha512.
    HmacSha512,
}

impl Algorithm {
    /// From a name as written in a key file or on the wire (case-insensitive, dot optional).
    pub fn from_name(s: &str) -> Option<Algorithm> {
        match s.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            "hmac-sha384" => Some(Algorithm::HmacSha384),
            "hmac-sha512" => Some(Algorithm::HmacSha512),
            _ => None,
        }
    }

    /// Name (without the final dot).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn wire(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.push(self.name().len() as u8);
        v.extend_from_slice(self.name().as_bytes());
        v.push(0);
        v
    }

    fn mac(self, secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        macro_rules! run {
            ($h:ty) => {{
                let mut m = <Hmac<$h> as Mac>::new_from_slice(secret).expect("any key length");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }};
        }
        match self {
            Algorithm::HmacSha256 => run!(sha2::Sha256),
            Algorithm::HmacSha384 => run!(sha2::Sha384),
            Algorithm::HmacSha512 => run!(sha2::Sha512),
        }
    }
}

/// One TSIG key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Key name (lower case, fully qualified).
    pub name: Name,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Shared secret.
    pub secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name.to_string())
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A key file that cannot be used, with its place.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub struct KeyFileError {
    /// File.
    pub file: String,
    /// Line (1-based).
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

/// Reads a BIND key file: one or more `key "name" { algorithm hmac-sha256; secret "…"; };`.
pub fn load_key_file(path: &Path) -> Result<Vec<Key>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyFileError {
        file: path.display().to_string(),
        line: 0,
        msg: e.to_string(),
    })?;
    parse_key_file(&text, &path.display().to_string())
}

/// Parses the text of a BIND key file (`file` names it in errors).
pub fn parse_key_file(text: &str, file: &str) -> Result<Vec<Key>, KeyFileError> {
    // Tokens with their line: words, quoted strings, `{`, `}`, `;`. Comments: #, //, /* */.
    let mut toks: Vec<(String, usize, bool)> = Vec::new();
    let err = |line: usize, msg: String| KeyFileError {
        file: file.to_string(),
        line,
        msg,
    };
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line) = (0usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\n' {
                    line += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(start, "unterminated string".into()));
            }
            i += 1;
            toks.push((s, start, true));
        } else if matches!(c, '{' | '}' | ';') {
            toks.push((c.to_string(), line, false));
            i += 1;
        } else {
            let mut s = String::new();
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '{' | '}' | ';' | '"')
            {
                s.push(chars[i]);
                i += 1;
            }
            toks.push((s, line, false));
        }
    }
    let last_line = line;
    let mut keys = Vec::new();
    let mut p = 0usize;
    let tok = |p: usize| toks.get(p).map(|(s, l, q)| (s.as_str(), *l, *q));
    let expect = |p: usize, want: &str| -> Result<(), KeyFileError> {
        match tok(p) {
            Some((s, _, false)) if s == want => Ok(()),
            Some((s, l, _)) => Err(err(l, format!("expected \"{want}\", found \"{s}\""))),
            None => Err(err(
                last_line,
                format!("expected \"{want}\" before the end"),
            )),
        }
    };
    while let Some((kw, kline, _)) = tok(p) {
        if !kw.eq_ignore_ascii_case("key") {
            return Err(err(
                kline,
                format!("expected `key \"name\" {{ ... }};`, found \"{kw}\""),
            ));
        }
        let Some((name, nline, _)) = tok(p + 1) else {
            return Err(err(kline, "key without a name".into()));
        };
        let name = Name::from_ascii(name)
            .ok()
            .filter(|_| !name.is_empty())
            .map(|mut n| {
                n.set_fqdn(true);
                n.to_lowercase()
            })
            .ok_or_else(|| err(nline, format!("\"{name}\" is not a valid key name")))?;
        expect(p + 2, "{")?;
        p += 3;
        let (mut alg, mut secret) = (None, None);
        loop {
            let Some((field, fline, _)) = tok(p) else {
                return Err(err(last_line, "missing \"}\" at the end of the key".into()));
            };
            if field == "}" {
                p += 1;
                break;
            }
            let Some((value, vline, _)) = tok(p + 1) else {
                return Err(err(fline, format!("\"{field}\" without a value")));
            };
            match field.to_ascii_lowercase().as_str() {
                "algorithm" => {
                    alg = Some(Algorithm::from_name(value).ok_or_else(|| {
                        err(
                            vline,
                            format!(
                                "unsupported algorithm \"{value}\"; use hmac-sha256, hmac-sha384 or hmac-sha512"
                            ),
                        )
                    })?)
                }
                "secret" => {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .map_err(|_| err(vline, "secret is not valid base64".into()))?;
                    if b.is_empty() {
                        return Err(err(vline, "secret is empty".into()));
                    }
                    secret = Some(b);
                }
                other => {
                    return Err(err(
                        fline,
                        format!("unknown key field \"{other}\"; expected algorithm or secret"),
                    ));
                }
            }
            expect(p + 2, ";")?;
            p += 3;
        }
        if tok(p).map(|t| t.0) == Some(";") {
            p += 1;
        }
        let algorithm = alg.ok_or_else(|| err(kline, format!("key {name} has no algorithm")))?;
        let secret = secret.ok_or_else(|| err(kline, format!("key {name} has no secret")))?;
        keys.push(Key {
            name,
            algorithm,
            secret,
        });
    }
    if keys.is_empty() {
        return Err(err(1, "no key in the file".into()));
    }
    Ok(keys)
}

/// The TSIG record of a message, located.
#[derive(Debug, Clone)]
pub struct TsigRecord {
    /// Offset of the record's owner name (the message without TSIG ends here).
    pub start: usize,
    /// Key name (lower case).
    pub key_name: Name,
    /// Algorithm name as sent (lower case, no final dot).
    pub algorithm: String,
    /// Time signed.
    pub time: u64,
    /// Fudge.
    pub fudge: u16,
    /// MAC.
    pub mac: Vec<u8>,
    /// Original ID.
    pub original_id: u16,
    /// Error.
    pub error: u16,
    /// Other data.
    pub other: Vec<u8>,
}

/// Finds and decodes the TSIG record, which must be the last record of the message.
pub fn find(msg: &[u8]) -> Option<TsigRecord> {
    if msg.len() < 12 {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if ar == 0 {
        return None;
    }
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut last = pos;
    for _ in 0..(an + ns + ar) {
        last = pos;
        pos = skip_rr(msg, pos)?;
    }
    if pos != msg.len() {
        return None;
    }
    let mut d = BinDecoder::new(msg);
    d.read_slice(last).ok()?;
    let key_name = Name::read(&mut d).ok()?.to_lowercase();
    let p = d.index();
    let rtype = u16::from_be_bytes([*msg.get(p)?, *msg.get(p + 1)?]);
    if rtype != TYPE_TSIG {
        return None;
    }
    let mut r = p + 10;
    let mut d = BinDecoder::new(msg);
    d.read_slice(r).ok()?;
    let alg = Name::read(&mut d).ok()?.to_lowercase();
    r = d.index();
    let rd = |at: usize, n: usize| msg.get(at..at + n);
    let t = rd(r, 6)?;
    let time = t.iter().fold(0u64, |a, b| (a << 8) | *b as u64);
    let fudge = u16::from_be_bytes(rd(r + 6, 2)?.try_into().ok()?);
    let mac_len = u16::from_be_bytes(rd(r + 8, 2)?.try_into().ok()?) as usize;
    let mac = rd(r + 10, mac_len)?.to_vec();
    let q = r + 10 + mac_len;
    let original_id = u16::from_be_bytes(rd(q, 2)?.try_into().ok()?);
    let error = u16::from_be_bytes(rd(q + 2, 2)?.try_into().ok()?);
    let olen = u16::from_be_bytes(rd(q + 4, 2)?.try_into().ok()?) as usize;
    let other = rd(q + 6, olen)?.to_vec();
    let algorithm = alg.to_ascii().trim_end_matches('.').to_string();
    Some(TsigRecord {
        start: last,
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

fn skip_name(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let l = *b.get(pos)? as usize;
        match l & 0xc0 {
            0 if l == 0 => return Some(pos + 1),
            0 => pos += 1 + l,
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

fn skip_rr(b: &[u8], pos: usize) -> Option<usize> {
    let p = skip_name(b, pos)?;
    let rdlen = u16::from_be_bytes([*b.get(p + 8)?, *b.get(p + 9)?]) as usize;
    let end = p + 10 + rdlen;
    (end <= b.len()).then_some(end)
}

/// How a signed request was judged.
#[derive(Debug)]
pub enum Verdict<'k> {
    /// Valid: the key and the request MAC (to chain the response on).
    Valid {
        /// The key.
        key: &'k Key,
        /// The request's MAC.
        mac: Vec<u8>,
    },
    /// BADKEY, BADSIG or BADTIME (RFC 8945 §5.2): answer NOTAUTH with this TSIG error.
    Invalid {
        /// TSIG error code.
        error: u16,
        /// The key, for BADTIME (the error response is signed then).
        key: Option<&'k Key>,
        /// The request MAC (BADTIME only).
        mac: Vec<u8>,
        /// The request's TSIG (key name, algorithm) to echo.
        tsig: TsigRecord,
    },
}

fn vars(
    key_name: &Name,
    algorithm: Algorithm,
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    push_name(&mut v, key_name);
    v.extend_from_slice(&255u16.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&algorithm.wire());
    v.extend_from_slice(&time.to_be_bytes()[2..]);
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&(other.len() as u16).to_be_bytes());
    v.extend_from_slice(other);
    v
}

fn push_name(v: &mut Vec<u8>, n: &Name) {
    for l in n.iter() {
        v.push(l.len() as u8);
        v.extend(l.iter().map(|c| c.to_ascii_lowercase()));
    }
    v.push(0);
}

/// The message as it was before signing: ARCOUNT minus one, the original ID, no TSIG.
fn unsigned_part(msg: &[u8], t: &TsigRecord) -> Vec<u8> {
    let mut m = msg[..t.start].to_vec();
    m[0..2].copy_from_slice(&t.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([m[10], m[11]]).wrapping_sub(1);
    m[10..12].copy_from_slice(&ar.to_be_bytes());
    m
}

/// Verifies a signed request against `keys` at `now` (seconds since the epoch).
pub fn verify<'k>(msg: &[u8], t: &TsigRecord, keys: &'k [Key], now: u64) -> Verdict<'k> {
    let invalid = |error, key, mac: Vec<u8>| Verdict::Invalid {
        error,
        key,
        mac,
        tsig: t.clone(),
    };
    let alg = Algorithm::from_name(&t.algorithm);
    let Some(key) = keys
        .iter()
        .find(|k| k.name == t.key_name && Some(k.algorithm) == alg)
    else {
        return invalid(err::BADKEY, None, Vec::new());
    };
    let body = unsigned_part(msg, t);
    let v = vars(
        &t.key_name,
        key.algorithm,
        t.time,
        t.fudge,
        t.error,
        &t.other,
    );
    let want = key.algorithm.mac(&key.secret, &[&body, &v]);
    use subtle::ConstantTimeEq;
    if t.mac.len() != want.len() || !bool::from(t.mac.ct_eq(&want)) {
        return invalid(err::BADSIG, None, Vec::new());
    }
    if now.abs_diff(t.time) > t.fudge as u64 {
        return invalid(err::BADTIME, Some(key), t.mac.clone());
    }
    Verdict::Valid {
        key,
        mac: t.mac.clone(),
    }
}

/// Appends a TSIG record to `msg` and bumps ARCOUNT.
fn append(msg: &mut Vec<u8>, key_name: &Name, algorithm: Algorithm, f: Fields<'_>) {
    let id = [msg[0], msg[1]];
    push_name(msg, key_name);
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&255u16.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let alg = algorithm.wire();
    let rdlen = alg.len() + 6 + 2 + 2 + f.mac.len() + 2 + 2 + 2 + f.other.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(&alg);
    msg.extend_from_slice(&f.time.to_be_bytes()[2..]);
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(f.mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(f.mac);
    msg.extend_from_slice(&id);
    msg.extend_from_slice(&f.error.to_be_bytes());
    msg.extend_from_slice(&(f.other.len() as u16).to_be_bytes());
    msg.extend_from_slice(f.other);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

struct Fields<'a> {
    time: u64,
    mac: &'a [u8],
    error: u16,
    other: &'a [u8],
}

fn with_len(mac: &[u8]) -> Vec<u8> {
    let mut v = (mac.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(mac);
    v
}

/// Signs a request (no prior MAC) or the first response to a signed request (`request_mac`).
/// Returns the MAC, to chain the next message of a multi-message response on.
pub fn sign(
    msg: &mut Vec<u8>,
    key: &Key,
    request_mac: Option<&[u8]>,
    now: u64,
    error: u16,
    other: &[u8],
) -> Vec<u8> {
    let prior = request_mac.map(with_len).unwrap_or_default();
    let v = vars(&key.name, key.algorithm, now, FUDGE, error, other);
    let mac = key.algorithm.mac(&key.secret, &[&prior, msg, &v]);
    append(
        msg,
        &key.name,
        key.algorithm,
        Fields {
            time: now,
            mac: &mac,
            error,
            other,
        },
    );
    mac
}

/// Signs a later message of a multi-message response (RFC 8945 §5.3.1): prior MAC, the
/// message, the timers only.
pub fn sign_next(msg: &mut Vec<u8>, key: &Key, prior_mac: &[u8], now: u64) -> Vec<u8> {
    let prior = with_len(prior_mac);
    let mut timers = now.to_be_bytes()[2..].to_vec();
    timers.extend_from_slice(&FUDGE.to_be_bytes());
    let mac = key.algorithm.mac(&key.secret, &[&prior, msg, &timers]);
    append(
        msg,
        &key.name,
        key.algorithm,
        Fields {
            time: now,
            mac: &mac,
            error: 0,
            other: &[],
        },
    );
    mac
}

/// An unsigned TSIG carrying an error (BADKEY, BADSIG): MAC empty (RFC 8945 §5.3.2).
pub fn append_unsigned_error(msg: &mut Vec<u8>, t: &TsigRecord, error: u16) {
    let alg = Algorithm::from_name(&t.algorithm);
    let id = [msg[0], msg[1]];
    push_name(msg, &t.key_name);
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&255u16.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let alg_wire = match alg {
        Some(a) => a.wire(),
        None => {
            let mut v = Vec::new();
            let n = Name::from_ascii(format!("{}.", t.algorithm)).unwrap_or_else(|_| Name::root());
            push_name(&mut v, &n);
            v
        }
    };
    let rdlen = alg_wire.len() + 16;
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(&alg_wire);
    msg.extend_from_slice(&t.time.to_be_bytes()[2..]);
    msg.extend_from_slice(&t.fudge.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    msg.extend_from_slice(&id);
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Verifies a response to a request we signed (NOTIFY acknowledgements): the MAC over the
/// request MAC, the response and its variables.
pub fn verify_response(msg: &[u8], key: &Key, request_mac: &[u8]) -> bool {
    let Some(t) = find(msg) else { return false };
    if t.key_name != key.name || t.error != 0 {
        return false;
    }
    let body = unsigned_part(msg, &t);
    let v = vars(
        &t.key_name,
        key.algorithm,
        t.time,
        t.fudge,
        t.error,
        &t.other,
    );
    let want = key
        .algorithm
        .mac(&key.secret, &[&with_len(request_mac), &body, &v]);
    use subtle::ConstantTimeEq;
    t.mac.len() == want.len() && bool::from(t.mac.ct_eq(&want))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# tsig-keygen\nkey \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\";\n};\n";

    #[test]
    fn parses_bind_key_files() {
        let k = parse_key_file(FILE, "k.key").unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].name.to_string(), "xfr-key.");
        assert_eq!(k[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(k[0].secret, b"secretsecretsecretsecret");
        let e = parse_key_file(&FILE.replace("sha256", "md5"), "k.key").unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.key:3: unsupported algorithm \"hmac-md5\"; use hmac-sha256, hmac-sha384 or hmac-sha512"
        );
        let e = parse_key_file(&FILE.replace("c2Vj", "!!"), "k.key").unwrap_err();
        assert_eq!(e.to_string(), "k.key:4: secret is not valid base64");
        let e = parse_key_file("key \"a\" {\n algorithm hmac-sha256;\n};", "k.key").unwrap_err();
        assert_eq!(e.to_string(), "k.key:1: key a. has no secret");
        let e = parse_key_file("\n\n", "k.key").unwrap_err();
        assert_eq!(e.to_string(), "k.key:1: no key in the file");
    }

    #[test]
    fn sign_then_verify_and_errors() {
        let key = parse_key_file(FILE, "k").unwrap().remove(0);
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[3, b'f', b'o', b'o', 0, 0, 252, 0, 1]);
        sign(&mut q, &key, None, 1000, 0, &[]);
        let t = find(&q).unwrap();
        let keys = [key.clone()];
        assert!(matches!(verify(&q, &t, &keys, 1100), Verdict::Valid { .. }));
        assert!(matches!(
            verify(&q, &t, &keys, 2000),
            Verdict::Invalid {
                error: err::BADTIME,
                ..
            }
        ));
        let mut bad = q.clone();
        let n = bad.len();
        bad[n - 10] ^= 1; // inside the MAC
        let t2 = find(&bad).unwrap();
        assert!(matches!(
            verify(&bad, &t2, &keys, 1000),
            Verdict::Invalid {
                error: err::BADSIG,
                ..
            }
        ));
        let other = Key {
            name: Name::from_ascii("other.").unwrap(),
            ..key.clone()
        };
        assert!(matches!(
            verify(&q, &t, &[other], 1000),
            Verdict::Invalid {
                error: err::BADKEY,
                ..
            }
        ));
        // A response chained on the request MAC verifies as one.
        let mut r = q[..t.start].to_vec();
        r[2] |= 0x80;
        r[10..12].copy_from_slice(&0u16.to_be_bytes());
        sign(&mut r, &key, Some(&t.mac), 1000, 0, &[]);
        assert!(verify_response(&r, &key, &t.mac));
        assert!(!verify_response(&r, &key, &[0; 32]));
    }
}
