//! The V3 (`ACS3-HMAC-SHA256`) request verifier shared by the strict fakes of Alibaba Cloud
//! RPC services (`fake_pvtz`, `fake_alidns`, `fake_cr`, through `acs_gateway`), per
//! `docs/providers/alibaba-cloud-api.md#10-test-fakes`: it recomputes the signature with its
//! own canonicalization code (not the client's) and compares in constant time, checks the
//! timestamp window against the fake's clock, nonce reuse (recorded only after the signature
//! verified) and STS security tokens. Plus the JSON/error helpers the fakes answer with.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use regdns::aliyun::sign::{format_acs_date, parse_acs_date};

/// Allowed distance between a request's date and the fake's clock.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const REQUIRED: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
];

#[derive(Clone, Debug)]
pub struct Key {
    pub secret: String,
    /// STS keys require this `x-acs-security-token`.
    pub token: Option<String>,
    pub expires: Option<SystemTime>,
}

#[derive(Debug)]
pub struct ApiErr {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub headers: Vec<(String, String)>,
}

pub fn api_err(status: u16, code: &str, message: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        code: code.into(),
        message: message.into(),
        headers: Vec::new(),
    }
}

pub fn json_response(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8");
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// The error body of the RPC services: `RequestId`, `HostId`, `Code`, `Message`, `Recommend`.
pub fn error_response(request_id: &str, host_id: &str, e: &ApiErr) -> Response {
    json_response(
        e.status,
        &json!({
            "RequestId": request_id,
            "HostId": host_id,
            "Code": e.code,
            "Message": e.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", e.code),
        }),
        &e.headers,
    )
}

/// The query of a request as a map (empty on a malformed query).
pub fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    parse_query(uri.query().unwrap_or(""))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}
// ---- the fake's own canonicalization (independent of the client's code) ----

pub fn fake_enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn fake_dec(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'%' => return None,
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

pub fn parse_query(q: &str) -> Result<Vec<(String, String)>, ApiErr> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k =
            fake_dec(k).ok_or_else(|| api_err(400, "InvalidParameter", "bad query encoding"))?;
        let v =
            fake_dec(v).ok_or_else(|| api_err(400, "InvalidParameter", "bad query encoding"))?;
        out.push((k, v));
    }
    Ok(out)
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub struct Auth {
    key_id: String,
    signed: Vec<String>,
    signature: String,
}

pub fn parse_authorization(v: &str) -> Result<Auth, ApiErr> {
    let bad = |m: &str| {
        api_err(
            400,
            "IncompleteSignature",
            format!("malformed Authorization: {m}"),
        )
    };
    let rest = v
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .ok_or_else(|| bad("algorithm must be ACS3-HMAC-SHA256"))?;
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, val) = part.split_once('=').ok_or_else(|| bad("expected k=v"))?;
        match k {
            "Credential" => cred = Some(val.to_string()),
            "SignedHeaders" => signed = Some(val.to_string()),
            "Signature" => sig = Some(val.to_string()),
            other => return Err(bad(&format!("unexpected field {other:?}"))),
        }
    }
    let (Some(key_id), Some(signed), Some(signature)) = (cred, signed, sig) else {
        return Err(bad("Credential, SignedHeaders and Signature are required"));
    };
    if key_id.is_empty() {
        return Err(bad("empty Credential"));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(bad("Signature must be 64 lower-case hex characters"));
    }
    let signed: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed
        .iter()
        .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
    {
        return Err(api_err(
            400,
            "IncompleteSignature",
            "SignedHeaders must be lower-case",
        ));
    }
    if signed.windows(2).any(|w| w[0] >= w[1]) {
        return Err(api_err(
            400,
            "IncompleteSignature",
            "SignedHeaders must be sorted and unique",
        ));
    }
    Ok(Auth {
        key_id,
        signed,
        signature,
    })
}

pub fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Keys, seen nonces and the expected `x-acs-version` of one fake service.
#[derive(Debug)]
pub struct Verifier {
    /// AccessKey id → key.
    pub keys: HashMap<String, Key>,
    /// (key id, nonce) → when first seen.
    pub nonces: HashMap<(String, String), SystemTime>,
    /// The only `x-acs-version` accepted.
    pub version: &'static str,
}

impl Verifier {
    pub fn new(version: &'static str) -> Self {
        Verifier {
            keys: HashMap::new(),
            nonces: HashMap::new(),
            version,
        }
    }

    /// Verifies a V3 request; returns the key id.
    pub fn authenticate(
        &mut self,
        now: SystemTime,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, (Option<String>, ApiErr)> {
        let auth_header = header_str(headers, "authorization").ok_or((
            None,
            api_err(400, "IncompleteSignature", "Authorization header missing"),
        ))?;
        let auth = parse_authorization(auth_header).map_err(|e| (None, e))?;
        let kid = Some(auth.key_id.clone());
        let fail = |e: ApiErr| (kid.clone(), e);
        for h in REQUIRED {
            if header_str(headers, h).is_none_or(|v| v.trim().is_empty()) {
                return Err(fail(api_err(
                    400,
                    "IncompleteSignature",
                    format!("required header {h} missing"),
                )));
            }
            if !auth.signed.iter().any(|s| s == h) {
                return Err(fail(api_err(
                    400,
                    "IncompleteSignature",
                    format!("required header {h} is not signed"),
                )));
            }
        }
        for name in headers.keys() {
            let n = name.as_str();
            if n.starts_with("x-acs-") && !auth.signed.iter().any(|s| s == n) {
                return Err(fail(api_err(
                    400,
                    "IncompleteSignature",
                    format!("header {n} is sent but not signed"),
                )));
            }
        }
        for s in &auth.signed {
            if headers.get(s.as_str()).is_none() {
                return Err(fail(api_err(
                    400,
                    "IncompleteSignature",
                    format!("signed header {s} is not in the request"),
                )));
            }
        }
        if header_str(headers, "x-acs-version") != Some(self.version) {
            return Err(fail(api_err(
                400,
                "InvalidVersion",
                format!("x-acs-version must be {}", self.version),
            )));
        }
        let body_hash = sha256_hex(body);
        if header_str(headers, "x-acs-content-sha256") != Some(body_hash.as_str()) {
            return Err(fail(api_err(
                400,
                "SignatureDoesNotMatch",
                "x-acs-content-sha256 does not match the SHA-256 of the body",
            )));
        }
        let date = header_str(headers, "x-acs-date").unwrap_or("");
        let t = parse_acs_date(date).ok_or_else(|| {
            fail(api_err(
                400,
                "InvalidTimeStamp.Format",
                format!("x-acs-date {date:?} is not YYYY-MM-DDTHH:MM:SSZ"),
            ))
        })?;
        let skew = now.duration_since(t).unwrap_or_else(|e| e.duration());
        if skew > WINDOW {
            return Err(fail(api_err(
                400,
                "InvalidTimeStamp.Expired",
                format!(
                    "Specified time stamp or date value is expired: {date}, server time {}",
                    format_acs_date(now)
                ),
            )));
        }
        let key = self.keys.get(&auth.key_id).cloned().ok_or_else(|| {
            fail(api_err(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ))
        })?;

        // Canonical request, recomputed.
        let mut q = parse_query(uri.query().unwrap_or("")).map_err(&fail)?;
        q.sort();
        let canonical_query = q
            .iter()
            .map(|(k, v)| format!("{}={}", fake_enc(k), fake_enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut canonical_headers = String::new();
        for s in &auth.signed {
            let mut vals: Vec<String> = headers
                .get_all(s.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
                .collect();
            vals.sort();
            canonical_headers.push_str(&format!("{s}:{}\n", vals.join(",")));
        }
        let canonical = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            method.as_str(),
            uri.path(),
            canonical_query,
            canonical_headers,
            auth.signed.join(";"),
            body_hash
        );
        let string_to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(key.secret.as_bytes()).unwrap();
        mac.update(string_to_sign.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            return Err(fail(api_err(
                400,
                "SignatureDoesNotMatch",
                format!(
                    "Specified signature does not match our calculation. server string to sign is:{string_to_sign}"
                ),
            )));
        }
        // STS credentials.
        if let Some(tok) = &key.token {
            match header_str(headers, "x-acs-security-token") {
                None => {
                    return Err(fail(api_err(
                        400,
                        "InvalidSecurityToken.Missing",
                        "this AccessKey requires x-acs-security-token",
                    )));
                }
                Some(sent) if !bool::from(sent.as_bytes().ct_eq(tok.as_bytes())) => {
                    return Err(fail(api_err(
                        400,
                        "InvalidSecurityToken.MismatchWithAccessKey",
                        "the security token does not belong to this AccessKey",
                    )));
                }
                Some(_) => {}
            }
            if key.expires.is_some_and(|e| e <= now) {
                return Err(fail(api_err(
                    400,
                    "InvalidSecurityToken.Expired",
                    "Specified SecurityToken is expired.",
                )));
            }
        }
        // Nonce: only after the signature verified.
        let nonce = header_str(headers, "x-acs-signature-nonce")
            .unwrap_or("")
            .to_string();
        self.nonces
            .retain(|_, seen| now.duration_since(*seen).map_or(true, |d| d <= WINDOW * 2));
        let nk = (auth.key_id.clone(), nonce);
        if self.nonces.contains_key(&nk) {
            return Err(fail(api_err(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            )));
        }
        self.nonces.insert(nk, now);
        Ok(auth.key_id)
    }
}
