//! RFC 2136 provider: keeps the managed RRsets of one name on any standard primary (BIND,
//! Knot, PowerDNS) equal to a view's answer with TSIG-signed dynamic updates.
//!
//! Reads are plain queries to the primary (CNAME, A, AAAA at the name; authoritative
//! answers required). A plan is executed as ONE UPDATE ([`wire::update`]) whose
//! prerequisites are the RRsets as read: a concurrent manual edit makes the primary answer
//! NXRRSET/YXRRSET, and the engine re-reads and re-plans. The response's TSIG is verified.
//! UDP with TCP fallback on truncation, or TCP only. The SOA serial is the primary's.

pub mod transport;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::config::env::Env;
use crate::decide::Decision;
use crate::model::{Model, PublishTarget};
use crate::publish::engine::{
    BindingTarget, Change, ErrorKind, Op, Provider, PublishError, RecordInfo, Service,
};
use crate::tsig;

/// Service name in messages.
pub const SERVICE: &str = "RFC 2136";
/// RFC 2136, for errors (auth advice: the TSIG key and the primary's ACL).
pub static SERVICE_INFO: Service = Service {
    name: SERVICE,
    ram: None,
};
/// Default time allowed for one exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One RFC 2136 binding: a name in a zone on a primary, and the key that signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rfc2136Binding {
    /// The primary.
    pub server: SocketAddr,
    /// The zone.
    pub zone: Name,
    /// The managed name.
    pub name: Name,
    /// The name relative to the zone (`@` for the apex).
    pub rr: String,
    /// The signing key.
    pub key: tsig::Key,
    /// TCP only.
    pub tcp: bool,
}

impl fmt::Display for Rfc2136Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in zone {} at {}", self.name, self.zone, self.server)
    }
}

/// Status name of a binding: `rfc2136:<server>/<name>`.
pub fn status_name(b: &Rfc2136Binding) -> String {
    format!("rfc2136:{}/{}", b.server, b.name)
}

/// The RFC 2136 provider (stateless apart from its timeout).
#[derive(Clone, Debug)]
pub struct Rfc2136Provider {
    /// Time allowed for one exchange.
    pub timeout: Duration,
}

fn err(kind: ErrorKind, code: &str, action: &str, message: impl Into<String>) -> PublishError {
    PublishError {
        action: action.into(),
        ..PublishError::local(kind, code, message).of(&SERVICE_INFO)
    }
}

/// Classifies a response code of an UPDATE (`tsig_error` from the response's TSIG record).
pub fn classify(rcode: ResponseCode, tsig_error: Option<u16>) -> (ErrorKind, bool, String) {
    let name = match tsig_error {
        Some(tsig::err::BADSIG) => format!("{rcode}/BADSIG"),
        Some(tsig::err::BADKEY) => format!("{rcode}/BADKEY"),
        Some(tsig::err::BADTIME) => format!("{rcode}/BADTIME"),
        _ => format!("{rcode}"),
    };
    let (kind, reread) = match rcode {
        ResponseCode::NXRRSet
        | ResponseCode::YXRRSet
        | ResponseCode::NXDomain
        | ResponseCode::YXDomain => (ErrorKind::Config, true),
        ResponseCode::ServFail => (ErrorKind::Transient, false),
        ResponseCode::NotAuth if tsig_error == Some(tsig::err::BADTIME) => {
            (ErrorKind::Clock, false)
        }
        ResponseCode::NotAuth | ResponseCode::Refused => (ErrorKind::Auth, false),
        _ => (ErrorKind::Config, false),
    };
    (kind, reread, name)
}

fn advice(rcode: ResponseCode, tsig_error: Option<u16>) -> &'static str {
    match (rcode, tsig_error) {
        (ResponseCode::NXRRSet | ResponseCode::YXRRSet, _) => {
            "the records changed since they were read (prerequisite failed); re-reading"
        }
        (_, Some(tsig::err::BADKEY)) => "the primary does not know this key name/algorithm",
        (_, Some(tsig::err::BADSIG)) => "the primary rejects the signature: wrong secret",
        (_, Some(tsig::err::BADTIME)) => "the clocks of regdns and the primary differ",
        (ResponseCode::Refused, _) => {
            "the primary refuses the update (its ACL does not allow this key to update this zone)"
        }
        (ResponseCode::NotAuth, _) => {
            "the primary is not authoritative for the zone, or refuses the key"
        }
        (ResponseCode::NotZone, _) => "the name is not inside the zone",
        (ResponseCode::ServFail, _) => "the primary failed to apply the update",
        _ => "the primary rejected the update",
    }
}

impl Rfc2136Provider {
    async fn exchange(
        &self,
        b: &Rfc2136Binding,
        wire: &[u8],
        id: u16,
        action: &str,
    ) -> Result<Vec<u8>, PublishError> {
        let r = if b.tcp {
            transport::tcp(b.server, wire, id, self.timeout).await
        } else {
            transport::udp_then_tcp(b.server, wire, id, self.timeout).await
        };
        r.map_err(|e| {
            err(
                ErrorKind::Transport,
                "Transport",
                action,
                format!("{}: {e}", b.server),
            )
        })
    }

    async fn read_type(
        &self,
        b: &Rfc2136Binding,
        rtype: RecordType,
    ) -> Result<Vec<wire::Rr>, PublishError> {
        let action = "QUERY";
        let id: u16 = rand::random();
        let q = wire::query(id, &b.name, rtype)
            .map_err(|e| err(ErrorKind::Config, "Regdns.Encode", action, e.to_string()))?;
        let resp = self.exchange(b, &q, id, action).await?;
        let msg = Message::from_vec(&resp).map_err(|e| {
            err(
                ErrorKind::Transient,
                "InvalidResponse",
                action,
                format!("undecodable answer: {e}"),
            )
        })?;
        let rcode = msg.metadata.response_code;
        match rcode {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            ResponseCode::ServFail => {
                return Err(err(
                    ErrorKind::Transient,
                    "SERVFAIL",
                    action,
                    format!("{} {rtype}: SERVFAIL", b.name),
                ));
            }
            other => {
                return Err(err(
                    ErrorKind::Config,
                    &other.to_string(),
                    action,
                    format!(
                        "{} {rtype}: the primary answered {other}; is {} authoritative for {}?",
                        b.name, b.server, b.zone
                    ),
                ));
            }
        }
        if !msg.metadata.authoritative {
            return Err(err(
                ErrorKind::Config,
                "NotAuthoritative",
                action,
                format!(
                    "{} does not answer authoritatively for {} (AA clear): point server at the zone's primary",
                    b.server, b.zone
                ),
            ));
        }
        Ok(wire::answer_records(&msg, &b.name, rtype))
    }
}

impl Provider for Rfc2136Provider {
    type Binding = Rfc2136Binding;
    const NAME: &'static str = "rfc2136";
    const SERVICE: &'static str = SERVICE;
    const ATOMIC: bool = true;

    fn service() -> &'static Service {
        &SERVICE_INFO
    }

    fn targets(
        model: &Model,
        decisions: &BTreeMap<(String, String), Decision>,
    ) -> Vec<BindingTarget<Rfc2136Binding>> {
        let mut out = Vec::new();
        for ep in &model.endpoints {
            for p in &ep.publish {
                let PublishTarget::Rfc2136 {
                    view,
                    server,
                    zone,
                    rr,
                    key,
                    tcp,
                } = p
                else {
                    continue;
                };
                let binding = Rfc2136Binding {
                    server: *server,
                    zone: zone.clone(),
                    name: ep.name.clone(),
                    rr: rr.clone(),
                    key: (**key).clone(),
                    tcp: *tcp,
                };
                let name = status_name(&binding);
                out.extend(BindingTarget::resolve(
                    model, decisions, ep, view, rr, binding, name,
                ));
            }
        }
        out
    }

    async fn connect(model: &Model, _env: &Env) -> Result<Self, String> {
        Ok(Rfc2136Provider {
            timeout: model
                .rfc2136
                .as_ref()
                .and_then(|c| c.timeout)
                .unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    async fn read(&self, b: &Rfc2136Binding) -> Result<Vec<RecordInfo>, PublishError> {
        // The managed types and the common others, queried concurrently (one round trip).
        let types = [RecordType::CNAME, RecordType::A, RecordType::AAAA]
            .into_iter()
            .chain(wire::OTHER_TYPES);
        let answers = futures_util::future::join_all(types.map(|t| self.read_type(b, t))).await;
        let mut out = Vec::new();
        for rrs in answers {
            for r in rrs? {
                out.push(RecordInfo {
                    record_id: wire::record_id(&r.rtype, &r.value),
                    rr: b.rr.clone(),
                    rtype: r.rtype,
                    value: r.value,
                    ttl: r.ttl,
                    status: None,
                    line: None,
                    weight: None,
                    priority: None,
                });
            }
        }
        Ok(out)
    }

    async fn execute(
        &self,
        b: &Rfc2136Binding,
        ops: &[Op],
        found: &[RecordInfo],
        _token: &str,
    ) -> Result<Vec<Change>, PublishError> {
        let action = "UPDATE";
        let before = wire::apply_ops(found, &[])
            .map_err(|e| err(ErrorKind::Config, "Regdns.Plan", action, e.to_string()))?;
        let after = wire::apply_ops(found, ops)
            .map_err(|e| err(ErrorKind::Config, "Regdns.Plan", action, e.to_string()))?;
        let id: u16 = rand::random();
        let request_id = format!("UPDATE {id:#06x}");
        let changes = || {
            ops.iter()
                .map(|op| Change {
                    record_id: match op {
                        Op::Add { rtype, value, .. } | Op::Update { rtype, value, .. } => {
                            wire::record_id(rtype, value)
                        }
                        Op::Delete { record_id } => record_id.clone(),
                    },
                    request_id: request_id.clone(),
                })
                .collect::<Vec<_>>()
        };
        let Some(msg) = wire::update(id, &b.zone, &b.name, &before, &after)
            .map_err(|e| err(ErrorKind::Config, "Regdns.Encode", action, e.to_string()))?
        else {
            return Ok(changes());
        };
        let mut bytes = msg
            .to_vec()
            .map_err(|e| err(ErrorKind::Config, "Regdns.Encode", action, e.to_string()))?;
        let mac = tsig::sign(&mut bytes, &b.key, None, tsig::now(), 0, &[]);
        let resp = self.exchange(b, &bytes, id, action).await?;
        if resp.len() < 12 {
            return Err(err(
                ErrorKind::Transient,
                "InvalidResponse",
                action,
                "short answer",
            ));
        }
        let rcode = ResponseCode::from(0, resp[3] & 0x0f);
        let tsig_rec = tsig::find(&resp);
        let tsig_error = tsig_rec.as_ref().map(|t| t.error).filter(|e| *e != 0);
        if rcode != ResponseCode::NoError || tsig_error.is_some() {
            let (kind, reread, code) = classify(rcode, tsig_error);
            let mut e = err(
                kind,
                &code,
                action,
                format!("{b}: {}", advice(rcode, tsig_error)),
            );
            e.reread = reread;
            e.request_id = Some(request_id.into());
            return Err(e);
        }
        if !tsig::verify_response(&resp, &b.key, &mac) {
            let mut e = err(
                ErrorKind::Auth,
                "BadResponseSignature",
                action,
                format!(
                    "{b}: the answer is not signed with {} (the update may have been applied; it is re-read on the next sync)",
                    b.key.name
                ),
            );
            e.request_id = Some(request_id.into());
            return Err(e);
        }
        tracing::info!(binding = %b, request_id = %request_id, "RFC 2136 update applied");
        Ok(changes())
    }

    fn dry_run(model: &Model) -> bool {
        model.rfc2136.as_ref().is_some_and(|c| c.dry_run)
    }

    fn drift_interval(model: &Model) -> Duration {
        model
            .rfc2136
            .as_ref()
            .map(|c| c.drift())
            .unwrap_or(crate::config::privatezone::DEFAULT_DRIFT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcodes() {
        let c = |r, t| {
            let (k, reread, code) = classify(r, t);
            (k, reread, code)
        };
        assert!(c(ResponseCode::NXRRSet, None).1);
        assert!(c(ResponseCode::YXRRSet, None).1);
        assert_eq!(c(ResponseCode::ServFail, None).0, ErrorKind::Transient);
        let bad = c(ResponseCode::NotAuth, Some(tsig::err::BADSIG));
        assert_eq!(bad.0, ErrorKind::Auth);
        assert!(bad.2.ends_with("/BADSIG"), "{}", bad.2);
        assert_eq!(
            c(ResponseCode::NotAuth, Some(tsig::err::BADTIME)).0,
            ErrorKind::Clock
        );
        assert_eq!(c(ResponseCode::Refused, None).0, ErrorKind::Auth);
        assert_eq!(c(ResponseCode::NotZone, None).0, ErrorKind::Config);
    }
}
