//! Alibaba Cloud request signing, V3 (`ACS3-HMAC-SHA256`), see `docs/providers/alibaba-cloud-api.md#4-signing-acs3-hmac-sha256`.
//!
//! Everything here is pure: the date and the nonce are inputs, so the §4 test vectors can be
//! replayed exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Signature algorithm name, also the prefix of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Lower-case hex SHA-256 of the empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Percent-encodes the UTF-8 bytes of `s`: `A–Z a–z 0–9 - _ . ~` are kept, every other byte
/// becomes `%XX` with upper-case hex (space is `%20`, never `+`).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
    }
    out
}

/// True for the bytes [`percent_encode`] leaves as they are.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Decodes `%XX` escapes (either hex case). With `plus_as_space`, `+` decodes to a space
/// (form encoding). Returns `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = (*bytes.get(i + 1)? as char).to_digit(16)?;
                let lo = (*bytes.get(i + 2)? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Canonical query string: parameters sorted by name (byte order; equal names by value),
/// each as `enc(name)=enc(value)`, joined with `&`. Empty input gives an empty string.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-case hex HMAC-SHA256.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ` (UTC), the format of `x-acs-date`, STS
/// `Timestamp` and credential `Expiration`. Sub-second parts are dropped; a time before
/// the Unix epoch formats as the epoch, one after the year 9999 as its last second.
pub fn format_acs_date(t: SystemTime) -> String {
    let t = t.clamp(
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(LAST_ACS_SECOND),
    );
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `9999-12-31T23:59:59Z`: the last time with a four-digit year.
const LAST_ACS_SECOND: u64 = 253_402_300_799;

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ` (UTC, 1970 to 9999). Anything else is `None`:
/// fractional seconds, `+00:00`, a leap second or an invalid date.
pub fn parse_acs_date(s: &str) -> Option<SystemTime> {
    let t = humantime::parse_rfc3339(s).ok()?;
    // humantime also takes fractions, `+00:00` and second 60: only the canonical form of
    // the time it read is an ACS date.
    (format_acs_date(t) == s).then_some(t)
}

/// A fresh signature nonce: 32 lower-case hex characters from the thread CSPRNG.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Everything a V3 signature depends on. Clock (`date`) and `nonce` are injected.
#[derive(Clone, Copy)]
pub struct SignInput<'a> {
    /// `POST` for every pvtz action.
    pub method: &'a str,
    /// `/` for RPC-style APIs.
    pub path: &'a str,
    /// The host (and `:port` when not the scheme's default) actually connected to.
    pub host: &'a str,
    /// `x-acs-action`, e.g. `UpdateZoneRecord`.
    pub action: &'a str,
    /// `x-acs-version`, `2018-01-01` for pvtz.
    pub version: &'a str,
    /// Query parameters (not yet encoded).
    pub params: &'a [(String, String)],
    /// Request body bytes (empty for pvtz).
    pub body: &'a [u8],
    /// AccessKey id, sent in `Credential=`.
    pub access_key_id: &'a str,
    /// AccessKey secret: the HMAC key.
    pub access_key_secret: &'a str,
    /// STS token: sent and signed as `x-acs-security-token`.
    pub security_token: Option<&'a str>,
    /// Becomes `x-acs-date`.
    pub date: SystemTime,
    /// Becomes `x-acs-signature-nonce`; use [`new_nonce`], fresh for every request.
    pub nonce: &'a str,
    /// Further headers to send and sign (e.g. `accept`, `user-agent`).
    pub extra_headers: &'a [(&'a str, &'a str)],
}

/// Result of [`sign_v3`]: send `headers` (all signed; they include `host` and
/// `authorization`) and `query_string` exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// Lower-case names, sorted; includes `authorization`.
    pub headers: Vec<(String, String)>,
    /// Canonical query string, to put on the wire as is.
    pub query_string: String,
    /// Value of the `Authorization` header.
    pub authorization: String,
    /// For debugging and tests; contains no secret.
    pub canonical_request: String,
    /// For debugging and tests; contains no secret.
    pub string_to_sign: String,
}

/// Signs a request with ACS3-HMAC-SHA256 (`docs/providers/alibaba-cloud-api.md#v3-step-by-step`).
pub fn sign_v3(input: &SignInput<'_>) -> SignedRequest {
    let body_hash = sha256_hex(input.body);
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), input.host.trim().into()),
        ("x-acs-action".into(), input.action.into()),
        ("x-acs-version".into(), input.version.into()),
        ("x-acs-date".into(), format_acs_date(input.date)),
        ("x-acs-signature-nonce".into(), input.nonce.into()),
        ("x-acs-content-sha256".into(), body_hash.clone()),
    ];
    if let Some(token) = input.security_token {
        headers.push(("x-acs-security-token".into(), token.into()));
    }
    for (name, value) in input.extra_headers {
        let name = name.to_ascii_lowercase();
        if !headers.iter().any(|(n, _)| *n == name) {
            headers.push((name, value.trim().to_string()));
        }
    }
    headers.sort();

    let query_string = canonical_query(input.params);
    let canonical_headers: String = headers
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method, input.path, query_string, canonical_headers, signed_headers, body_hash
    );
    let string_to_sign = format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()));
    let signature = hmac_sha256_hex(
        input.access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    );
    let authorization = format!(
        "{ALGORITHM} Credential={},SignedHeaders={signed_headers},Signature={signature}",
        input.access_key_id
    );
    headers.push(("authorization".into(), authorization.clone()));
    headers.sort();
    SignedRequest {
        headers,
        query_string,
        authorization,
        canonical_request,
        string_to_sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vector_date() -> SystemTime {
        parse_acs_date("2026-01-02T03:04:05Z").unwrap()
    }

    const NONCE: &str = "6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d";
    const SDK_EXTRA: &[(&str, &str)] = &[
        ("accept", "application/json"),
        ("user-agent", "regdns-vectors/1"),
        ("x-acs-credentials-provider", "static_ak"),
    ];

    fn dzr() -> Vec<(String, String)> {
        p(&[
            ("Lang", "en"),
            ("PageNumber", "1"),
            ("PageSize", "100"),
            ("ZoneId", "zone-0123abcd"),
        ])
    }
    fn uzr() -> Vec<(String, String)> {
        p(&[
            ("Lang", "en"),
            ("RecordId", "5809"),
            ("Rr", "cr"),
            ("Ttl", "60"),
            ("Type", "CNAME"),
            ("Value", "reg-b.cn-shanghai.cr.aliyuncs.com"),
        ])
    }
    fn enc() -> Vec<(String, String)> {
        // Deliberately unsorted: the signer sorts.
        p(&[
            ("Value", "v=1 a*b~c/d+é"),
            ("Type", "TXT"),
            ("Ttl", "30"),
            ("Rr", "_txt"),
            ("RecordId", "5810"),
        ])
    }

    fn sign(action: &str, params: &[(String, String)], extra: &[(&str, &str)]) -> SignedRequest {
        sign_v3(&SignInput {
            method: "POST",
            path: "/",
            host: "pvtz.aliyuncs.com",
            action,
            version: "2018-01-01",
            params,
            body: b"",
            access_key_id: "testid",
            access_key_secret: "testsecret",
            security_token: None,
            date: vector_date(),
            nonce: NONCE,
            extra_headers: extra,
        })
    }

    fn signature_of(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn v3_1_minimal_headers() {
        let s = sign("UpdateZoneRecord", &uzr(), &[]);
        let expected_cr = "POST\n/\n\
Lang=en&RecordId=5809&Rr=cr&Ttl=60&Type=CNAME&Value=reg-b.cn-shanghai.cr.aliyuncs.com\n\
host:pvtz.aliyuncs.com\n\
x-acs-action:UpdateZoneRecord\n\
x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
x-acs-date:2026-01-02T03:04:05Z\n\
x-acs-signature-nonce:6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d\n\
x-acs-version:2018-01-01\n\
\n\
host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(s.canonical_request, expected_cr);
        assert_eq!(
            sha256_hex(s.canonical_request.as_bytes()),
            "7bafb40cc710c428d6a9bf8bf54a989e578b325b6bd6113f228dddd73738e1bd"
        );
        assert_eq!(
            s.string_to_sign,
            "ACS3-HMAC-SHA256\n7bafb40cc710c428d6a9bf8bf54a989e578b325b6bd6113f228dddd73738e1bd"
        );
        assert_eq!(
            s.authorization,
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=f196c66f21196148384cd76eebc920bcc662330204f524024b0a6ff84e320570"
        );
        assert_eq!(
            s.query_string,
            "Lang=en&RecordId=5809&Rr=cr&Ttl=60&Type=CNAME&Value=reg-b.cn-shanghai.cr.aliyuncs.com"
        );
        let names: Vec<&str> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "host",
                "x-acs-action",
                "x-acs-content-sha256",
                "x-acs-date",
                "x-acs-signature-nonce",
                "x-acs-version"
            ]
        );
    }

    const SDK_SIGNED: &str = "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version";

    fn check_sdk_vector(
        s: &SignedRequest,
        query: &str,
        cr_hash: &str,
        signature: &str,
        action: &str,
    ) {
        let expected_cr = format!(
            "POST\n/\n{query}\n\
accept:application/json\n\
host:pvtz.aliyuncs.com\n\
user-agent:regdns-vectors/1\n\
x-acs-action:{action}\n\
x-acs-content-sha256:{EMPTY_SHA256}\n\
x-acs-credentials-provider:static_ak\n\
x-acs-date:2026-01-02T03:04:05Z\n\
x-acs-signature-nonce:{NONCE}\n\
x-acs-version:2018-01-01\n\
\n\
{SDK_SIGNED}\n\
{EMPTY_SHA256}"
        );
        assert_eq!(s.query_string, query);
        assert_eq!(s.canonical_request, expected_cr);
        assert_eq!(sha256_hex(s.canonical_request.as_bytes()), cr_hash);
        assert_eq!(s.string_to_sign, format!("ACS3-HMAC-SHA256\n{cr_hash}"));
        assert_eq!(signature_of(&s.authorization), signature);
        assert_eq!(
            s.authorization,
            format!(
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={SDK_SIGNED},Signature={signature}"
            )
        );
    }

    #[test]
    fn v3_2_describe_zone_records_sdk_headers() {
        let s = sign("DescribeZoneRecords", &dzr(), SDK_EXTRA);
        check_sdk_vector(
            &s,
            "Lang=en&PageNumber=1&PageSize=100&ZoneId=zone-0123abcd",
            "27a4a3f522c8aa38a9b24e82866a0ab514bf8f97b7345aafe70a9db4f8b61ec0",
            "f8b6bd2c14abc1f4f5bc1daedb4e79940fbf89e7871a81f11610e04d0bfa46ae",
            "DescribeZoneRecords",
        );
    }

    #[test]
    fn v3_3_update_zone_record_sdk_headers() {
        let s = sign("UpdateZoneRecord", &uzr(), SDK_EXTRA);
        check_sdk_vector(
            &s,
            "Lang=en&RecordId=5809&Rr=cr&Ttl=60&Type=CNAME&Value=reg-b.cn-shanghai.cr.aliyuncs.com",
            "84758d1108f6963d2c733767b3ae467c2eedec7112664a1952fb2742c180788c",
            "a2b4d0b73b24b8faa2de94a13587086d273abb4e7a5cb16d35a7ef1878b5e0ac",
            "UpdateZoneRecord",
        );
    }

    #[test]
    fn v3_4_encoding_edge_cases_sdk_headers() {
        let s = sign("UpdateZoneRecord", &enc(), SDK_EXTRA);
        check_sdk_vector(
            &s,
            "RecordId=5810&Rr=_txt&Ttl=30&Type=TXT&Value=v%3D1%20a%2Ab~c%2Fd%2B%C3%A9",
            "37ab5ebc257ea5370b74bb199cb20e7c075ae649653221dbeb8277187d2d038a",
            "9f0831e6a19fb8fbe7b64972d87014734613b073d0ae44238c17b9d903ac2ee5",
            "UpdateZoneRecord",
        );
    }

    #[test]
    fn security_token_is_sent_and_signed() {
        let params = dzr();
        let s = sign_v3(&SignInput {
            method: "POST",
            path: "/",
            host: "127.0.0.1:8080",
            action: "DescribeZoneRecords",
            version: "2018-01-01",
            params: &params,
            body: b"",
            access_key_id: "STS.abc",
            access_key_secret: "s",
            security_token: Some("tok"),
            date: vector_date(),
            nonce: NONCE,
            extra_headers: &[],
        });
        assert!(
            s.headers
                .contains(&("x-acs-security-token".into(), "tok".into()))
        );
        assert!(
            s.headers
                .contains(&("host".into(), "127.0.0.1:8080".into()))
        );
        assert!(s.authorization.contains(
            "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,"
        ));
    }

    #[test]
    fn encoding_examples() {
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("="), "%3D");
        assert_eq!(percent_encode(":"), "%3A");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("~-_.aZ09"), "~-_.aZ09");
        assert_eq!(canonical_query(&[]), "");
        assert_eq!(canonical_query(&p(&[("b", ""), ("a", "x")])), "a=x&b=");
    }

    #[test]
    fn dates() {
        let t = vector_date();
        assert_eq!(format_acs_date(t), "2026-01-02T03:04:05Z");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_767_323_045
        );
        assert_eq!(format_acs_date(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_acs_date(t + Duration::from_millis(999)),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            parse_acs_date("9999-12-31T23:59:59Z").map(format_acs_date),
            Some("9999-12-31T23:59:59Z".into())
        );
        assert_eq!(
            parse_acs_date("2024-02-29T23:59:59Z").map(format_acs_date),
            Some("2024-02-29T23:59:59Z".into())
        );
        for bad in [
            "2026-01-02 03:04:05Z",
            "2026-01-02T03:04:05",
            "2026-13-02T03:04:05Z",
            "2025-02-29T03:04:05Z",
            "2026-01-02T24:04:05Z",
            "+026-01-02T03:04:05Z",
            "2026-01-02T03:04:60Z",
            "2026-01-02T03:04:05.5Z",
            "2026-01-02T03:04:05+00:00",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse_acs_date(bad), None, "{bad}");
        }
        let n = new_nonce();
        assert_eq!(n.len(), 32);
        assert_ne!(n, new_nonce());
    }

    proptest! {
        #[test]
        fn percent_encode_round_trips(s in any::<String>()) {
            let e = percent_encode(&s);
            let decoded = percent_decode(&e, false);
            prop_assert_eq!(decoded.as_deref(), Some(s.as_str()));
            // Only unreserved characters and %XX (upper-case hex) remain.
            let b = e.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    prop_assert!(i + 2 < b.len());
                    let (h, l) = (b[i + 1], b[i + 2]);
                    prop_assert!(h.is_ascii_digit() || (b'A'..=b'F').contains(&h));
                    prop_assert!(l.is_ascii_digit() || (b'A'..=b'F').contains(&l));
                    // An escaped byte is never an unreserved one.
                    let byte = u8::from_str_radix(&e[i + 1..i + 3], 16).unwrap();
                    prop_assert!(!is_unreserved(byte));
                    i += 3;
                } else {
                    prop_assert!(is_unreserved(b[i]));
                    i += 1;
                }
            }
        }

        #[test]
        fn every_reserved_ascii_is_escaped(c in 0u8..128) {
            let s = (c as char).to_string();
            let e = percent_encode(&s);
            if is_unreserved(c) {
                prop_assert_eq!(e, s);
            } else {
                prop_assert_eq!(e, format!("%{c:02X}"));
            }
        }

        #[test]
        fn dates_round_trip(secs in 0u64..253_402_300_799) {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            prop_assert_eq!(parse_acs_date(&format_acs_date(t)), Some(t));
        }
    }
}
