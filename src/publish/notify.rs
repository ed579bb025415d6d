//! NOTIFY (RFC 1996) to each zone's `secondaries` whenever the serial of the view a
//! secondary transfers changes (the view of its key, else of its address), signed with
//! that key when it has one. Retried with exponential backoff (1 s doubling to 60 s) until
//! a secondary acknowledges the current serial; a newer serial replaces a pending one.
//! Reads only the serving snapshot; state per secondary is shown in `regdns status`
//! (publishers `notify:ZONE ADDR`) and counted in `regdns_notify_total`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::control::PublisherStatus;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::tsig;

/// How long one NOTIFY waits for its acknowledgement.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// One (zone, secondary) and where it stands.
#[derive(Debug)]
struct Target {
    zone: Name,
    addr: SocketAddr,
    key: Option<tsig::Key>,
    view: String,
    /// Serial to announce.
    serial: u32,
    /// Its SOA record (sent in the answer section, RFC 1996 §3.7).
    soa: hickory_proto::rr::Record,
    acked: Option<u32>,
    attempts: u32,
    next_at: Instant,
    in_flight: bool,
    last_error: String,
    last_ok_ms: Option<u64>,
}

type TargetId = (String, SocketAddr);

struct Done {
    id: TargetId,
    serial: u32,
    result: Result<(), String>,
}

/// Runs the notifier until `stop` turns true. It wakes when `served` says a new snapshot is
/// served, when an answer comes back, or when a retry is due; never on a timer otherwise.
pub fn spawn(
    snap: SnapshotHandle,
    mut served: watch::Receiver<u64>,
    status: watch::Sender<BTreeMap<String, PublisherStatus>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut targets: BTreeMap<TargetId, Target> = BTreeMap::new();
        let (done_tx, mut done_rx) = mpsc::channel::<Done>(64);
        let mut seen_generation = u64::MAX;
        loop {
            // Marked before loading, so a snapshot served meanwhile wakes the next select.
            served.mark_unchanged();
            let s = snap.load_full();
            if s.generation != seen_generation {
                seen_generation = s.generation;
                refresh(&s, &mut targets, &status);
            }
            let now = Instant::now();
            for (id, t) in targets.iter_mut() {
                if t.in_flight || t.acked == Some(t.serial) || t.next_at > now {
                    continue;
                }
                t.in_flight = true;
                t.attempts += 1;
                let (zone, addr, key, soa) = (t.zone.clone(), t.addr, t.key.clone(), t.soa.clone());
                let serial = t.serial;
                let (id, tx) = (id.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let result = send(&zone, addr, key.as_ref(), soa).await;
                    let _ = tx.send(Done { id, serial, result }).await;
                });
            }
            tokio::select! {
                Some(d) = done_rx.recv() => {
                    if let Some(t) = targets.get_mut(&d.id) {
                        finish(t, d, &status);
                    }
                }
                r = served.changed() => if r.is_err() { return },
                _ = retry_due(&targets) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

/// Resolves when the earliest retry of a target still waiting for its acknowledgement is
/// due; never when none is.
async fn retry_due(targets: &BTreeMap<TargetId, Target>) {
    let next = targets
        .values()
        .filter(|t| !t.in_flight && t.acked != Some(t.serial))
        .map(|t| t.next_at)
        .min();
    match next {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn status_name(zone: &Name, addr: SocketAddr) -> String {
    format!("notify:{zone} {addr}")
}

fn set_status(board: &watch::Sender<BTreeMap<String, PublisherStatus>>, t: &Target) {
    let (state, detail) = if t.acked == Some(t.serial) {
        (
            "ok",
            format!("serial {} acknowledged (view {})", t.serial, t.view),
        )
    } else if t.attempts > 1 || !t.last_error.is_empty() {
        (
            "failing",
            format!(
                "serial {} not acknowledged after {} attempts: {} (view {})",
                t.serial, t.attempts, t.last_error, t.view
            ),
        )
    } else {
        ("pending", format!("serial {} (view {})", t.serial, t.view))
    };
    let st = PublisherStatus {
        name: status_name(&t.zone, t.addr),
        state: state.into(),
        detail,
        last_ok_ms: t.last_ok_ms,
        failures: if state == "failing" {
            t.attempts.saturating_sub(1)
        } else {
            0
        },
    };
    board.send_if_modified(|m| {
        if m.get(&st.name) == Some(&st) {
            return false;
        }
        m.insert(st.name.clone(), st);
        true
    });
}

/// Brings the targets in line with a new snapshot: new secondaries, new serials.
fn refresh(
    s: &Snapshot,
    targets: &mut BTreeMap<TargetId, Target>,
    board: &watch::Sender<BTreeMap<String, PublisherStatus>>,
) {
    let mut live = Vec::new();
    for acl in &s.transfer.zones {
        for sec in &acl.secondaries {
            let key = sec
                .key
                .as_ref()
                .and_then(|k| s.transfer.keys.iter().find(|x| &x.name == k).cloned());
            let view = sec
                .key
                .as_ref()
                .and_then(|k| s.transfer.view_of_key(k))
                .unwrap_or_else(|| s.selector.by_addr(sec.addr.ip()));
            let Some(v) = s.views.get(view) else { continue };
            let Some(z) = v.zones.iter().find(|z| z.origin == acl.origin) else {
                continue;
            };
            let id = (acl.origin.to_string(), sec.addr);
            live.push(id.clone());
            let t = targets.entry(id).or_insert_with(|| Target {
                zone: acl.origin.clone(),
                addr: sec.addr,
                key: None,
                view: v.name.clone(),
                serial: z.serial,
                soa: z.soa.clone(),
                acked: None,
                attempts: 0,
                next_at: Instant::now(),
                in_flight: false,
                last_error: String::new(),
                last_ok_ms: None,
            });
            t.key = key;
            t.view = v.name.clone();
            if t.serial != z.serial {
                t.serial = z.serial;
                t.soa = z.soa.clone();
                t.attempts = 0;
                t.next_at = Instant::now();
                t.last_error.clear();
            }
            set_status(board, t);
        }
    }
    targets.retain(|id, t| {
        let keep = live.contains(id);
        if !keep {
            let name = status_name(&t.zone, t.addr);
            board.send_if_modified(|m| m.remove(&name).is_some());
        }
        keep
    });
}

fn finish(t: &mut Target, d: Done, board: &watch::Sender<BTreeMap<String, PublisherStatus>>) {
    t.in_flight = false;
    let zone = t.zone.to_string();
    let secondary = t.addr.to_string();
    match d.result {
        Ok(()) => {
            crate::metrics::notify(&zone, &secondary, "ack");
            tracing::info!(zone = %t.zone, secondary = %t.addr, serial = d.serial, view = %t.view, "NOTIFY acknowledged");
            t.acked = Some(d.serial);
            t.last_error.clear();
            t.last_ok_ms = Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|x| x.as_millis() as u64)
                    .unwrap_or(0),
            );
            if d.serial != t.serial {
                t.next_at = Instant::now(); // a newer serial came meanwhile
                t.attempts = 0;
            }
        }
        Err(e) => {
            crate::metrics::notify(&zone, &secondary, "error");
            let backoff = FIRST_RETRY
                .saturating_mul(1 << t.attempts.saturating_sub(1).min(6))
                .min(MAX_RETRY);
            tracing::warn!(zone = %t.zone, secondary = %t.addr, serial = d.serial, attempt = t.attempts, error = %e, retry_in = ?backoff, "NOTIFY not acknowledged");
            t.last_error = e;
            if d.serial == t.serial {
                t.next_at = Instant::now() + backoff;
            } else {
                t.next_at = Instant::now();
                t.attempts = 0;
            }
        }
    }
    set_status(board, t);
}

/// Sends one NOTIFY over UDP and waits for its acknowledgement.
async fn send(
    zone: &Name,
    addr: SocketAddr,
    key: Option<&tsig::Key>,
    soa: hickory_proto::rr::Record,
) -> Result<(), String> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(zone.clone(), RecordType::SOA));
    m.add_answer(soa);
    let mut wire = m.to_vec().map_err(|e| e.to_string())?;
    let mac = key.map(|k| tsig::sign(&mut wire, k, None, tsig::now(), 0, &[]));
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.connect(addr).await.map_err(|e| e.to_string())?;
    sock.send(&wire).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer within {ANSWER_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let r = &buf[..n];
        if n < 12 || u16::from_be_bytes([r[0], r[1]]) != id || r[2] & 0x80 == 0 {
            continue;
        }
        let rcode = r[3] & 0x0f;
        let opcode = (r[2] >> 3) & 0x0f;
        if opcode != 4 {
            return Err(format!("answer with opcode {opcode}"));
        }
        if rcode != 0 {
            let name = hickory_proto::op::ResponseCode::from(0, rcode);
            return Err(format!("answered {name}"));
        }
        if let (Some(k), Some(mac)) = (key, mac.as_ref())
            && !tsig::verify_response(r, k, mac)
        {
            return Err("acknowledgement fails TSIG verification".into());
        }
        return Ok(());
    }
}
