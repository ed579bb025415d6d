//! A small client of etcd's documented v3 JSON gateway (`/v3/kv/*`, `/v3/lease/*`,
//! `/v3/watch`, `/v3/auth/authenticate`) over reqwest: keys and values are base64, 64-bit
//! integers arrive as strings. Several endpoints with failover, TLS (CA, client certificate
//! from files) and user/password auth (password from a file). No protoc, no gRPC stack.
//! Knows etcd, nothing of regdns's keys (their layout is `super::agent::Keys`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::ClusterConfig;

/// Errors of one etcd call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// No endpoint answered.
    #[error("etcd unreachable ({endpoints}): {last}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last transport error.
        last: String,
    },
    /// etcd answered with an error.
    #[error("etcd refused {path}: {message}")]
    Refused {
        /// API path.
        path: String,
        /// etcd's message.
        message: String,
    },
    /// The client could not be set up (TLS files, password file).
    #[error("etcd client: {0}")]
    Setup(String),
    /// An answer that is not what the gateway documents.
    #[error("etcd answer of {path} not understood: {message}")]
    Decode {
        /// API path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// One key-value pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// Key.
    pub key: String,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Revision of the last change.
    pub mod_revision: i64,
    /// Lease the key is attached to (0: none).
    pub lease: i64,
}

/// A comparison of a transaction.
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key's last modification is at this revision.
    ModRevision(String, i64),
    /// The key's value equals this.
    Value(String, Vec<u8>),
}

/// An operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Put a value, attached to a lease when non-zero.
    Put(String, Vec<u8>, i64),
    /// Delete one key.
    Delete(String),
    /// Read one key.
    Get(String),
}

/// The user and password file of `[cluster]`.
#[derive(Debug, Clone)]
struct Credentials {
    user: String,
    password: String,
}

/// A client of one etcd cluster.
#[derive(Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
    endpoints: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
    credentials: Option<Arc<Credentials>>,
    token: Arc<Mutex<Option<String>>>,
    timeout: Duration,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

fn read_pem_certs(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, EtcdError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem =
        std::fs::read(path).map_err(|e| EtcdError::Setup(format!("{}: {e}", path.display())))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| EtcdError::Setup(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(EtcdError::Setup(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn tls_config(c: &ClusterConfig) -> Result<rustls::ClientConfig, EtcdError> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &c.ca_file {
        Some(ca) => {
            for cert in read_pem_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| EtcdError::Setup(format!("{}: {e}", ca.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EtcdError::Setup(e.to_string()))?
        .with_root_certificates(roots);
    let mut cfg = match (&c.cert_file, &c.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_pem_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| EtcdError::Setup(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| EtcdError::Setup(format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// An int64 of the gateway: a JSON string or number, absent = 0.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The end of the range of every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn kvs(path: &str, v: &Value) -> Result<Vec<Kv>, EtcdError> {
    let Some(list) = v.get("kvs").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|kv| {
            let dec = |f: &str| {
                kv.get(f)
                    .and_then(Value::as_str)
                    .map(|s| B64.decode(s))
                    .transpose()
                    .map_err(|e| EtcdError::Decode {
                        path: path.into(),
                        message: format!("{f}: {e}"),
                    })
                    .map(Option::unwrap_or_default)
            };
            Ok(Kv {
                key: String::from_utf8_lossy(&dec("key")?).into_owned(),
                value: dec("value")?,
                mod_revision: int(&kv["mod_revision"]),
                lease: int(&kv["lease"]),
            })
        })
        .collect()
}

impl EtcdClient {
    /// A client for `[cluster]` (reads the TLS files and the password file now).
    pub fn new(c: &ClusterConfig) -> Result<EtcdClient, EtcdError> {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(c.request_timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("regdns/", env!("CARGO_PKG_VERSION")));
        if c.etcd.iter().any(|u| u.starts_with("https://")) {
            b = b.use_preconfigured_tls(tls_config(c)?);
        }
        let credentials = match (&c.username, &c.password_file) {
            (Some(user), Some(f)) => {
                let password = std::fs::read_to_string(f)
                    .map_err(|e| EtcdError::Setup(format!("{}: {e}", f.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                Some(Arc::new(Credentials {
                    user: user.clone(),
                    password,
                }))
            }
            _ => None,
        };
        Ok(EtcdClient {
            http: b.build().map_err(|e| EtcdError::Setup(e.to_string()))?,
            endpoints: Arc::new(
                c.etcd
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_string())
                    .collect(),
            ),
            current: Arc::new(AtomicUsize::new(0)),
            credentials,
            token: Arc::new(Mutex::new(None)),
            timeout: c.request_timeout,
        })
    }

    /// Sends one request to the first endpoint that answers, starting from the last good
    /// one. `timeout` None: no overall timeout (watch streams).
    async fn send(
        &self,
        path: &str,
        body: &Value,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, EtcdError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let url = format!("{}{path}", self.endpoints[idx]);
            let mut req = self.http.post(&url).json(body);
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            if let Some(t) = self.token.lock().await.clone() {
                req = req.header("Authorization", t);
            }
            match req.send().await {
                Ok(r) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(e) => {
                    last = format!("{}: {}", self.endpoints[idx], error_chain(&e));
                }
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(", "),
            last,
        })
    }

    async fn authenticate(&self) -> Result<(), EtcdError> {
        let Some(c) = &self.credentials else {
            return Ok(());
        };
        *self.token.lock().await = None;
        let path = "/v3/auth/authenticate";
        let v = self
            .call_once(path, &json!({"name": c.user, "password": c.password}))
            .await?;
        let token = v
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| EtcdError::Decode {
                path: path.into(),
                message: "no token".into(),
            })?;
        *self.token.lock().await = Some(token.to_string());
        Ok(())
    }

    async fn call_once(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let r = self.send(path, body, Some(self.timeout)).await?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| EtcdError::Unreachable {
            endpoints: self.endpoints.join(", "),
            last: format!("reading the answer of {path}: {}", error_chain(&e)),
        })?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| EtcdError::Decode {
            path: path.into(),
            message: format!(
                "HTTP {}: {e}: {:?}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        })?;
        if !status.is_success()
            || v.get("error").is_some()
            || v.get("code").is_some_and(|c| int(c) != 0)
        {
            let message = v
                .get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string();
            return Err(EtcdError::Refused {
                path: path.into(),
                message: format!("{message} (HTTP {})", status.as_u16()),
            });
        }
        Ok(v)
    }

    /// One unary call; authenticates first (and again once when the token was refused).
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        if self.credentials.is_some() && self.token.lock().await.is_none() {
            self.authenticate().await?;
        }
        match self.call_once(path, &body).await {
            Err(EtcdError::Refused { message, .. })
                if self.credentials.is_some()
                    && (message.contains("token") || message.contains("authentication")) =>
            {
                self.authenticate().await?;
                self.call_once(path, &body).await
            }
            other => other,
        }
    }

    /// Every key under `prefix`, and the store's revision.
    pub async fn range_prefix(&self, prefix: &str) -> Result<(Vec<Kv>, i64), EtcdError> {
        let path = "/v3/kv/range";
        let v = self
            .call(
                path,
                json!({"key": b64(prefix), "range_end": B64.encode(prefix_end(prefix))}),
            )
            .await?;
        Ok((kvs(path, &v)?, int(&v["header"]["revision"])))
    }

    /// Keys in `[start, end)`, newest last, at most `limit` (0: all) taken from the end
    /// when `newest` is set.
    pub async fn range(
        &self,
        start: &str,
        end: &[u8],
        limit: i64,
        newest: bool,
    ) -> Result<Vec<Kv>, EtcdError> {
        let path = "/v3/kv/range";
        let mut body = json!({"key": b64(start), "range_end": B64.encode(end), "limit": limit});
        if newest {
            body["sort_order"] = json!("DESCEND");
            body["sort_target"] = json!("KEY");
        }
        let mut out = kvs(path, &self.call(path, body).await?)?;
        if newest {
            out.reverse();
        }
        Ok(out)
    }

    /// Puts a value (attached to `lease` when non-zero).
    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<i64, EtcdError> {
        let mut body = json!({"key": b64(key), "value": B64.encode(value)});
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        let v = self.call("/v3/kv/put", body).await?;
        Ok(int(&v["header"]["revision"]))
    }

    /// Deletes every key in `[start, end)` (one key when `end` is None).
    pub async fn delete(&self, start: &str, end: Option<&[u8]>) -> Result<(), EtcdError> {
        let mut body = json!({"key": b64(start)});
        if let Some(end) = end {
            body["range_end"] = json!(B64.encode(end));
        }
        self.call("/v3/kv/deleterange", body).await.map(|_| ())
    }

    /// A transaction: `success` when every comparison holds, else `failure`. Returns
    /// whether it succeeded and the keys read by `Get` operations of the branch taken.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<(bool, Vec<Kv>), EtcdError> {
        let cmp: Vec<Value> = compare
            .iter()
            .map(|c| match c {
                Compare::Absent(k) => json!({"key": b64(k), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}),
                Compare::ModRevision(k, r) => json!({"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": r.to_string()}),
                Compare::Value(k, v) => json!({"key": b64(k), "target": "VALUE", "result": "EQUAL", "value": B64.encode(v)}),
            })
            .collect();
        let ops = |ops: &[Op]| -> Vec<Value> {
            ops.iter()
                .map(|o| match o {
                    Op::Put(k, v, lease) => {
                        let mut p = json!({"key": b64(k), "value": B64.encode(v)});
                        if *lease != 0 {
                            p["lease"] = json!(lease.to_string());
                        }
                        json!({"request_put": p})
                    }
                    Op::Delete(k) => json!({"request_delete_range": {"key": b64(k)}}),
                    Op::Get(k) => json!({"request_range": {"key": b64(k)}}),
                })
                .collect()
        };
        let path = "/v3/kv/txn";
        let v = self
            .call(
                path,
                json!({"compare": cmp, "success": ops(success), "failure": ops(failure)}),
            )
            .await?;
        let succeeded = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        let mut read = Vec::new();
        for r in v
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(rr) = r.get("response_range") {
                read.extend(kvs(path, rr)?);
            }
        }
        Ok((succeeded, read))
    }

    /// Grants a lease of `ttl` (whole seconds); returns its id.
    pub async fn lease_grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let path = "/v3/lease/grant";
        let v = self
            .call(path, json!({"TTL": ttl.as_secs().to_string()}))
            .await?;
        match int(&v["ID"]) {
            0 => Err(EtcdError::Decode {
                path: path.into(),
                message: "no lease id".into(),
            }),
            id => Ok(id),
        }
    }

    /// Renews a lease; `false` when it no longer exists (expired or revoked).
    pub async fn lease_keepalive(&self, id: i64) -> Result<bool, EtcdError> {
        let v = self
            .call("/v3/lease/keepalive", json!({"ID": id.to_string()}))
            .await?;
        Ok(int(&v["result"]["TTL"]) > 0)
    }

    /// Revokes a lease (its keys go at once).
    pub async fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({"ID": id.to_string()}))
            .await
            .map(|_| ())
    }

    /// Opens a watch on every key under `prefix` from `start_revision`.
    pub async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<Watch, EtcdError> {
        if self.credentials.is_some() && self.token.lock().await.is_none() {
            self.authenticate().await?;
        }
        let body = json!({"create_request": {
            "key": b64(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let r = self.send("/v3/watch", &body, None).await?;
        if !r.status().is_success() {
            return Err(EtcdError::Refused {
                path: "/v3/watch".into(),
                message: format!("HTTP {}", r.status().as_u16()),
            });
        }
        Ok(Watch {
            response: r,
            buf: Vec::new(),
        })
    }
}

/// A watch stream: one JSON message per line.
#[derive(Debug)]
pub struct Watch {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl Watch {
    /// Waits for the next message with events; returns the revision it carries.
    /// `Err` when the stream ended or failed (the caller re-reads and watches again).
    pub async fn next_change(&mut self) -> Result<i64, EtcdError> {
        loop {
            while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let result = &v["result"];
                if v.get("error").is_some()
                    || result.get("canceled").and_then(Value::as_bool) == Some(true)
                {
                    return Err(EtcdError::Refused {
                        path: "/v3/watch".into(),
                        message: v.to_string(),
                    });
                }
                if result
                    .get("events")
                    .and_then(Value::as_array)
                    .is_some_and(|e| !e.is_empty())
                {
                    return Ok(int(&result["header"]["revision"]));
                }
            }
            match self.response.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => {
                    return Err(EtcdError::Unreachable {
                        endpoints: "watch".into(),
                        last: "the watch stream ended".into(),
                    });
                }
                Err(e) => {
                    return Err(EtcdError::Unreachable {
                        endpoints: "watch".into(),
                        last: error_chain(&e),
                    });
                }
            }
        }
    }
}

use crate::error_chain::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), vec![b'a', 0x80]);
    }

    #[test]
    fn ints_come_as_strings_or_numbers() {
        assert_eq!(int(&json!("42")), 42);
        assert_eq!(int(&json!(42)), 42);
        assert_eq!(int(&Value::Null), 0);
    }

    #[test]
    fn kvs_decode() {
        let v =
            json!({"kvs": [{"key": "Zm9v", "value": "YmFy", "mod_revision": "7", "lease": "9"}]});
        assert_eq!(
            kvs("/v3/kv/range", &v).unwrap(),
            vec![Kv {
                key: "foo".into(),
                value: b"bar".to_vec(),
                mod_revision: 7,
                lease: 9
            }]
        );
        assert!(kvs("/x", &json!({"kvs": [{"key": "%%%"}]})).is_err());
    }
}
