//! In-process tests of the controller: operator commands, health transitions and the
//! status projection, on a small model (two instances, one endpoint with two targets in
//! the default view and a second view) and a temporary state directory. Time is explicit:
//! transitions carry their time and timer rounds are run with a given `now`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch};

use super::{Controller, StartState, health_word, until};
use crate::clock::now_ms;
use crate::control::{Command, ControlError, NewOverride, PublisherStatus, Release, Status};
use crate::decide::{Event, FailbackConfirmation, Override, OverrideKind, UnixMillis};
use crate::probe::{CheckResult, DigestSeen, ProbeReport, Transition};
use crate::publish::Published;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::state::journal::{self, Entry, Journal};
use crate::state::{Loaded, StateStore, StateV1};

const EP: &str = "cross-region.registry.test.";
const HZ: &str = "hangzhou";
const ZJK: &str = "zhangjiakou";
const DEFAULT: &str = "default";
const VPC: &str = "vpc";

const ZONE: &str = "$ORIGIN registry.test.\n$TTL 300\n\
@ IN SOA ns1.registry.test. hostmaster.registry.test. 2024010101 3600 600 86400 60\n\
@ IN NS ns1.registry.test.\n\
ns1 IN A 127.0.0.1\n";

/// The test config: `hangzhou` first in `default`, `zhangjiakou` first in `vpc`.
fn config(failback: &str, hold: &str, extra: &str) -> String {
    // A replication rule needs a canary on every target.
    let canary = if extra.contains("replication_max_lag") {
        r#"canary = { repository = "library/canary", reference = "latest" }"#
    } else {
        ""
    };
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
admin = "127.0.0.1:0"
admin_token_file = "admin.token"
state_dir = "state"

[[zone]]
origin = "registry.test."
file = "registry.test.zone"

[[view]]
name = "vpc"
clients = ["127.0.0.2/32"]

[[instance]]
id = "hangzhou"
url = "http://127.0.0.1:9/v2/"
{canary}

[[instance]]
id = "zhangjiakou"
url = "http://127.0.0.1:9/v2/"
{canary}

[[endpoint]]
name = "{EP}"
ttl = 30
failback = "{failback}"
failback_hold = "{hold}"
{extra}

[endpoint.targets]
default = [
  {{ instance = "hangzhou", cname = "a-registry.hangzhou.test." }},
  {{ instance = "zhangjiakou", cname = "b-registry.zhangjiakou.test." }},
]
vpc = [
  {{ instance = "zhangjiakou", a = ["10.1.3.4"] }},
  {{ instance = "hangzhou", a = ["10.94.205.198"] }},
]
"#
    )
}

/// A controller on its own temporary directory, with the channels it reads.
struct Fixture {
    dir: tempfile::TempDir,
    failback: &'static str,
    hold: &'static str,
    extra: &'static str,
    ctl: Controller,
    start: StartState,
    reports: watch::Sender<BTreeMap<String, ProbeReport>>,
}

impl Fixture {
    fn new(failback: &'static str, hold: &'static str) -> Fixture {
        Fixture::with(failback, hold, "")
    }

    /// `extra` is added to the endpoint's table.
    fn with(failback: &'static str, hold: &'static str, extra: &'static str) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ctl, start, reports) = start_in(dir.path(), failback, hold, extra);
        Fixture {
            dir,
            failback,
            hold,
            extra,
            ctl,
            start,
            reports,
        }
    }

    /// Auto failback without a hold.
    fn auto() -> Fixture {
        Fixture::new("auto", "0s")
    }

    /// Stops the controller (flushing its state) and starts a new one on the same directory.
    fn restart(&mut self) {
        self.ctl.flush();
        let (ctl, start, reports) = start_in(self.dir.path(), self.failback, self.hold, self.extra);
        self.ctl = ctl;
        self.start = start;
        self.reports = reports;
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// What the state file holds now.
    fn saved(&self) -> StateV1 {
        match StateStore::open(&self.state_dir()).unwrap().load() {
            Loaded::State(s) => *s,
            other => panic!("no readable state file: {other:?}"),
        }
    }

    /// The journal, oldest first.
    fn journal(&self) -> Vec<Entry> {
        journal::read_since(&self.state_dir(), 0, journal::DEFAULT_KEEP)
    }

    /// The journal entries of `kind`.
    fn journaled(&self, kind: &str) -> Vec<Entry> {
        self.journal()
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// A health transition of `instance` at `at` (ms since epoch).
    fn health(&mut self, instance: &str, up: bool, at: UnixMillis) {
        self.ctl.on_transition(Transition {
            instance: instance.into(),
            up,
            at: UNIX_EPOCH + Duration::from_millis(at),
            reason: if up { "HTTP 200" } else { "HTTP 503" }.into(),
        });
    }

    /// Both instances up at `at`.
    fn both_up(&mut self, at: UnixMillis) {
        self.health(HZ, true, at);
        self.health(ZJK, true, at);
    }

    fn add_override(&mut self, o: NewOverride) -> Result<Override, ControlError> {
        let (tx, mut rx) = oneshot::channel();
        self.ctl.on_command(Command::AddOverride(o, tx));
        rx.try_recv().expect("answered before on_command returns")
    }

    fn release(&mut self, id: Option<&str>, reason: &str) -> Result<Vec<Override>, ControlError> {
        let (tx, mut rx) = oneshot::channel();
        let r = Release {
            id: id.map(str::to_string),
            actor: "alice".into(),
            reason: reason.into(),
        };
        self.ctl.on_command(Command::Release(r, tx));
        rx.try_recv().expect("answered before on_command returns")
    }

    fn failback(&mut self, c: FailbackConfirmation) -> Result<Vec<Event>, ControlError> {
        let (tx, mut rx) = oneshot::channel();
        self.ctl.on_command(Command::Failback(c, tx));
        rx.try_recv().expect("answered before on_command returns")
    }

    /// The active instance of the endpoint in `view`, as the status shows it.
    fn active(&self, view: &str) -> String {
        endpoint(&self.ctl.status(), view).active.clone()
    }

    /// The serial of `registry.test.` served in `view`.
    fn serial(&self, view: &str) -> u32 {
        self.ctl
            .status()
            .zones
            .iter()
            .find(|z| z.view == view && z.zone == "registry.test.")
            .unwrap_or_else(|| panic!("no serial for view {view}"))
            .serial
    }
}

fn start_in(
    dir: &std::path::Path,
    failback: &str,
    hold: &str,
    extra: &str,
) -> (
    Controller,
    StartState,
    watch::Sender<BTreeMap<String, ProbeReport>>,
) {
    std::fs::write(dir.join("registry.test.zone"), ZONE).unwrap();
    let path = dir.join("regdns.toml");
    let text = config(failback, hold, extra);
    std::fs::write(&path, &text).unwrap();
    // A prefix no environment sets: the test model is the text above only.
    let env = crate::config::env_provider("REGDNS_CONTROLLER_UNIT_TEST_");
    let loaded = crate::config::parse(&text, &path, env).expect("test config");
    let model = Arc::new(crate::model::build(&loaded).expect("test model"));
    let state_dir = dir.join("state");
    let store = StateStore::open(&state_dir).unwrap();
    let journal = Journal::open(
        &state_dir,
        journal::DEFAULT_MAX_BYTES,
        journal::DEFAULT_KEEP,
    )
    .expect("journal");
    let snap: SnapshotHandle = Arc::new(ArcSwap::from_pointee(Snapshot::empty(
        model.server.max_udp_payload,
    )));
    let (reports_tx, reports_rx) = watch::channel(BTreeMap::new());
    let (_, publishers) = watch::channel(BTreeMap::<String, PublisherStatus>::new());
    let (published, _) = watch::channel(Arc::new(Published {
        model: model.clone(),
        decisions: BTreeMap::new(),
    }));
    let (ctl, start) = Controller::start(
        model, store, journal, snap, reports_rx, publishers, published,
    );
    (ctl, start, reports_tx)
}

fn endpoint<'a>(s: &'a Status, view: &str) -> &'a crate::control::EndpointStatus {
    s.endpoints
        .iter()
        .find(|e| e.endpoint == EP && e.view == view)
        .unwrap_or_else(|| panic!("no status for {EP} in {view}"))
}

fn instance<'a>(s: &'a Status, id: &str) -> &'a crate::control::InstanceStatus {
    s.instances
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no status for instance {id}"))
}

fn force(view: Option<&str>, instance: &str) -> NewOverride {
    NewOverride {
        kind: OverrideKind::Force {
            endpoint: EP.into(),
            view: view.map(str::to_string),
            instance: instance.into(),
        },
        reason: "maintenance".into(),
        actor: "alice".into(),
        expires: None,
    }
}

fn drain(instance: &str) -> NewOverride {
    NewOverride {
        kind: OverrideKind::Drain {
            instance: instance.into(),
        },
        reason: "upgrade".into(),
        actor: "bob".into(),
        expires: None,
    }
}

fn confirm(endpoint: &str, view: Option<&str>) -> FailbackConfirmation {
    FailbackConfirmation {
        endpoint: endpoint.into(),
        view: view.map(str::to_string),
        actor: "carol".into(),
        reason: "primary verified".into(),
    }
}

/// A start time a little in the past, so that transitions are not in the future.
fn t0() -> UnixMillis {
    now_ms() - 600_000
}

#[test]
fn fresh_start_serves_the_first_target_of_each_view_and_saves_it() {
    let f = Fixture::auto();
    assert!(matches!(f.start, StartState::Fresh), "{:?}", f.start);
    let s = f.ctl.status();
    assert_eq!(s.generation, 1);
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.answer.as_str()),
        (HZ, "CNAME a-registry.hangzhou.test.")
    );
    assert!(
        d.reason.starts_with("startup: hangzhou assumed"),
        "{}",
        d.reason
    );
    let v = endpoint(&s, VPC);
    assert_eq!((v.active.as_str(), v.answer.as_str()), (ZJK, "A 10.1.3.4"));
    assert_eq!(s.endpoints.len(), 2);
    for id in [HZ, ZJK] {
        let i = instance(&s, id);
        assert_eq!(
            (i.state.as_str(), i.since_ms, i.drained),
            ("unknown", None, false)
        );
    }
    assert!(s.overrides.is_empty());
    // The first decisions and serials are durable before anything is served.
    let saved = f.saved();
    assert_eq!(saved.decisions[&(EP.into(), DEFAULT.into())].active, HZ);
    assert_eq!(saved.decisions[&(EP.into(), VPC.into())].active, ZJK);
    assert_eq!(saved.serials.len(), 2, "{:?}", saved.serials);
    for z in &s.zones {
        let e = saved
            .serials
            .iter()
            .find(|e| e.view == z.view)
            .expect("saved serial of every view");
        assert_eq!(e.serial, z.serial, "view {}", z.view);
    }
    assert_eq!(f.ctl.snapshot().load().generation, 1);
}

#[test]
fn primary_down_fails_over_journals_and_moves_only_that_views_serial() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let (default_serial, vpc_serial) = (f.serial(DEFAULT), f.serial(VPC));
    let generation = f.ctl.status().generation;
    f.health(HZ, false, t + 1_000);

    let s = f.ctl.status();
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.answer.as_str()),
        (ZJK, "CNAME b-registry.zhangjiakou.test.")
    );
    assert!(d.since_ms >= t + 1_000, "since the switch: {}", d.since_ms);
    assert!(!d.degraded);
    assert_eq!(
        endpoint(&s, VPC).active,
        ZJK,
        "vpc already served zhangjiakou"
    );
    let hz = instance(&s, HZ);
    assert_eq!(hz.state, "down");
    assert_eq!(hz.since_ms, Some(t + 1_000));
    assert_eq!(hz.reason.as_deref(), Some("HTTP 503"));
    assert_eq!(instance(&s, ZJK).state, "up");
    assert_eq!(s.generation, generation + 1, "one new snapshot");
    assert!(
        crate::snapshot::serial_gt(f.serial(DEFAULT), default_serial),
        "the default view's answer changed"
    );
    assert_eq!(f.serial(VPC), vpc_serial, "the vpc view's answer did not");

    let health = f.journaled("health");
    let last = health.last().unwrap();
    assert_eq!(
        (
            last.instance.as_deref(),
            last.from.as_deref(),
            last.to.as_deref()
        ),
        (Some(HZ), Some("up"), Some("down"))
    );
    let switches = f.journaled("switch");
    let last = switches.last().unwrap();
    assert_eq!(
        (
            last.endpoint.as_deref(),
            last.view.as_deref(),
            last.from.as_deref(),
            last.to.as_deref(),
            last.actor.as_str()
        ),
        (Some(EP), Some(DEFAULT), Some(HZ), Some(ZJK), "regdns")
    );
    let saved = f.saved();
    assert_eq!(saved.decisions[&(EP.into(), DEFAULT.into())].active, ZJK);
    assert!(
        matches!(saved.health[HZ], crate::decide::Health::Down { since, .. } if since == t + 1_000)
    );
}

#[test]
fn a_repeated_transition_changes_nothing() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let (generation, entries) = (f.ctl.status().generation, f.journal().len());
    f.health(HZ, true, t + 5_000);
    assert_eq!(f.ctl.status().generation, generation);
    assert_eq!(f.journal().len(), entries);
    assert_eq!(
        instance(&f.ctl.status(), HZ).since_ms,
        Some(t),
        "since kept"
    );
}

#[test]
fn both_down_is_fail_static_and_degraded() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    f.health(HZ, false, t + 1_000);
    f.health(ZJK, false, t + 2_000);
    let s = f.ctl.status();
    let d = endpoint(&s, DEFAULT);
    assert_eq!(d.active, ZJK, "keeps the last answer");
    assert!(d.degraded);
    assert!(endpoint(&s, VPC).degraded);
}

#[test]
fn auto_failback_waits_for_the_hold_then_returns_on_the_timer() {
    let mut f = Fixture::new("auto", "1m");
    let t = now_ms() - 10_000;
    f.both_up(t - 120_000);
    f.health(HZ, false, t - 60_000);
    f.health(HZ, true, t);

    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!(d.active, ZJK, "hangzhou is in its hold");
    assert!(
        d.reason.contains("failback to hangzhou held"),
        "{}",
        d.reason
    );
    assert_eq!(f.ctl.next_wakeup(), Some(t + 60_000));
    // One millisecond early: still held.
    assert!(f.ctl.decide_and_apply(t + 59_999, &[], false).is_empty());
    assert_eq!(f.active(DEFAULT), ZJK);

    let events = f.ctl.decide_and_apply(t + 60_000, &[], false);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].view.as_str(), events[0].to.as_str()),
        (DEFAULT, HZ)
    );
    assert_eq!(f.active(DEFAULT), HZ);
    assert_eq!(f.active(VPC), ZJK);
    assert_eq!(f.ctl.next_wakeup(), None);
    assert_eq!(f.saved().decisions[&(EP.into(), DEFAULT.into())].active, HZ);
}

#[test]
fn manual_failback_is_pending_until_confirmed() {
    let mut f = Fixture::new("manual", "0s");
    let t = t0();
    f.both_up(t);
    f.health(HZ, false, t + 1_000);
    f.health(HZ, true, t + 2_000);
    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!(d.active, ZJK);
    assert_eq!(d.failback_pending.as_deref(), Some(HZ));
    assert_eq!(endpoint(&f.ctl.status(), VPC).failback_pending, None);
    assert_eq!(
        f.saved().decisions[&(EP.into(), DEFAULT.into())]
            .failback_pending
            .as_deref(),
        Some(HZ)
    );

    let events = f.failback(confirm(EP, Some(DEFAULT))).expect("accepted");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (
            e.view.as_str(),
            e.from.as_deref(),
            e.to.as_str(),
            e.actor.as_str()
        ),
        (DEFAULT, Some(ZJK), HZ, "carol")
    );
    let d = endpoint(&f.ctl.status(), DEFAULT).clone();
    assert_eq!((d.active.as_str(), d.failback_pending), (HZ, None));
    let fb = f.journaled("failback");
    assert_eq!(fb.len(), 1);
    assert_eq!(
        (
            fb[0].endpoint.as_deref(),
            fb[0].view.as_deref(),
            fb[0].actor.as_str(),
            fb[0].reason.as_str()
        ),
        (Some(EP), Some(DEFAULT), "carol", "primary verified")
    );
    assert_eq!(f.journaled("switch").last().unwrap().actor, "carol");
    assert_eq!(f.saved().decisions[&(EP.into(), DEFAULT.into())].active, HZ);

    // Nothing is pending any more.
    assert_eq!(
        f.failback(confirm(EP, None)),
        Err(ControlError::Invalid(format!(
            "no failback is pending for {EP}"
        )))
    );
}

#[test]
fn failback_confirmations_are_validated() {
    let mut f = Fixture::new("manual", "0s");
    assert_eq!(
        f.failback(confirm("nope.registry.test.", None)),
        Err(ControlError::NotFound(
            "unknown endpoint \"nope.registry.test.\"".into()
        ))
    );
    assert_eq!(
        f.failback(confirm(EP, Some("office"))),
        Err(ControlError::NotFound(
            "unknown view \"office\" (known: default, vpc)".into()
        ))
    );
    let mut c = confirm(EP, None);
    c.actor = " ".into();
    assert_eq!(
        f.failback(c),
        Err(ControlError::Invalid(
            "reason and actor are required".into()
        ))
    );
    assert_eq!(
        f.failback(confirm(EP, None)),
        Err(ControlError::Invalid(format!(
            "no failback is pending for {EP}"
        )))
    );
    assert!(f.journaled("failback").is_empty(), "nothing journaled");
}

#[test]
fn force_moves_one_view_is_durable_and_journaled() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let ov = f.add_override(force(Some(DEFAULT), ZJK)).expect("accepted");
    assert!(ov.id.starts_with("ovr-") && ov.id.len() == 12, "{}", ov.id);
    assert_eq!(
        (ov.actor.as_str(), ov.reason.as_str()),
        ("alice", "maintenance")
    );

    // Durable before the answer: in the state file when the reply arrived.
    assert_eq!(f.saved().overrides, vec![ov.clone()]);
    let s = f.ctl.status();
    assert_eq!(s.overrides, vec![ov.clone()]);
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.forced_by.as_deref()),
        (ZJK, Some(ov.id.as_str()))
    );
    let v = endpoint(&s, VPC);
    assert_eq!((v.active.as_str(), v.forced_by.as_deref()), (ZJK, None));

    let added = f.journaled("override-added");
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].override_id.as_deref(),
            added[0].endpoint.as_deref(),
            added[0].view.as_deref(),
            added[0].to.as_deref(),
            added[0].actor.as_str()
        ),
        (
            Some(ov.id.as_str()),
            Some(EP),
            Some(DEFAULT),
            Some(ZJK),
            "alice"
        )
    );
    let kinds: Vec<String> = f.journal().into_iter().map(|e| e.kind).collect();
    let at = kinds.iter().position(|k| k == "override-added").unwrap();
    assert_eq!(kinds[at + 1..], ["switch".to_string()], "{kinds:?}");
    assert_eq!(f.journaled("switch").last().unwrap().actor, "alice");
}

#[test]
fn force_of_every_view_and_its_release() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let ov = f.add_override(force(None, HZ)).expect("accepted");
    assert_eq!(f.active(DEFAULT), HZ);
    assert_eq!(f.active(VPC), HZ);
    assert_eq!(
        endpoint(&f.ctl.status(), VPC).answer,
        "A 10.94.205.198",
        "the vpc view's own answer for hangzhou"
    );

    let removed = f.release(Some(&ov.id), "").expect("released");
    assert_eq!(removed, vec![ov.clone()]);
    assert!(f.ctl.status().overrides.is_empty());
    assert!(f.saved().overrides.is_empty());
    assert_eq!(f.active(VPC), ZJK, "back to the vpc view's first target");
    assert_eq!(endpoint(&f.ctl.status(), VPC).forced_by, None);
    let released = f.journaled("override-released");
    assert_eq!(released.len(), 1);
    assert_eq!(
        (
            released[0].override_id.as_deref(),
            released[0].reason.as_str(),
            released[0].actor.as_str()
        ),
        (Some(ov.id.as_str()), "released", "alice")
    );
}

#[test]
fn force_names_are_checked() {
    let mut f = Fixture::auto();
    let mut o = force(None, HZ);
    o.kind = OverrideKind::Force {
        endpoint: "nope.registry.test.".into(),
        view: None,
        instance: HZ.into(),
    };
    assert_eq!(
        f.add_override(o),
        Err(ControlError::NotFound(format!(
            "unknown endpoint \"nope.registry.test.\" (known: {EP})"
        )))
    );
    assert_eq!(
        f.add_override(force(Some("office"), HZ)),
        Err(ControlError::NotFound(
            "unknown view \"office\" (known: default, vpc)".into()
        ))
    );
    assert_eq!(
        f.add_override(force(None, "shanghai")),
        Err(ControlError::NotFound(
            "unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)".into()
        ))
    );
    assert_eq!(
        f.add_override(drain("shanghai")),
        Err(ControlError::NotFound(
            "unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)".into()
        ))
    );
    assert!(f.ctl.status().overrides.is_empty());
    assert!(f.saved().overrides.is_empty());
    assert!(f.journaled("override-added").is_empty());
}

#[test]
fn an_override_needs_a_reason_an_actor_and_a_future_expiry() {
    let mut f = Fixture::auto();
    let mut o = force(None, HZ);
    o.reason = "  ".into();
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "a reason is required (it is journaled)".into()
        ))
    );
    let mut o = drain(HZ);
    o.actor = String::new();
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "an actor is required (who is doing this)".into()
        ))
    );
    let mut o = drain(HZ);
    o.expires = Some(now_ms() - 1);
    assert_eq!(
        f.add_override(o),
        Err(ControlError::Invalid(
            "the expiry is in the past; give a future time or a duration like 30m".into()
        ))
    );
    assert!(f.saved().overrides.is_empty());
}

#[test]
fn drain_moves_away_and_status_marks_the_instance_drained() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let ov = f.add_override(drain(HZ)).expect("accepted");
    let s = f.ctl.status();
    assert!(instance(&s, HZ).drained);
    assert!(!instance(&s, ZJK).drained);
    assert_eq!(endpoint(&s, DEFAULT).active, ZJK);
    assert_eq!(endpoint(&s, VPC).active, ZJK);
    let added = f.journaled("override-added");
    assert_eq!(added[0].instance.as_deref(), Some(HZ));
    assert_eq!(added[0].endpoint, None);

    // Draining both leaves the highest-priority up target, although drained.
    let ov2 = f.add_override(drain(ZJK)).expect("accepted");
    assert_eq!(f.active(DEFAULT), ZJK);

    // Release everything: both overrides, one journal entry each.
    let removed = f.release(None, "upgrade done").expect("released");
    assert_eq!(removed, vec![ov, ov2]);
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert!(!instance(&s, HZ).drained);
    assert_eq!(endpoint(&s, DEFAULT).active, HZ, "auto failback, no hold");
    let released = f.journaled("override-released");
    assert_eq!(released.len(), 2);
    assert!(released.iter().all(|e| e.reason == "upgrade done"));
}

#[test]
fn releasing_an_unknown_override_is_not_found() {
    let mut f = Fixture::auto();
    assert_eq!(
        f.release(Some("ovr-00000000"), "x"),
        Err(ControlError::NotFound(
            "no override \"ovr-00000000\" (active: none)".into()
        ))
    );
    let ov = f.add_override(drain(HZ)).unwrap();
    assert_eq!(
        f.release(Some("ovr-00000000"), "x"),
        Err(ControlError::NotFound(format!(
            "no override \"ovr-00000000\" (active: {})",
            ov.id
        )))
    );
    assert_eq!(f.ctl.status().overrides, vec![ov]);
    // Releasing all when there is none is not an error.
    let mut g = Fixture::auto();
    assert_eq!(g.release(None, ""), Ok(vec![]));
}

#[test]
fn an_override_that_cannot_be_saved_is_refused_and_not_applied() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    // The state file's temporary name taken by a directory: the save fails.
    let blocker = f
        .state_dir()
        .join(format!(".state.json.tmp-{}", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    let r = f.add_override(force(Some(DEFAULT), ZJK));
    assert!(matches!(&r, Err(ControlError::Persist(_))), "{r:?}");
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert_eq!(endpoint(&s, DEFAULT).active, HZ, "nothing served");
    assert!(
        f.journaled("override-added").is_empty(),
        "nothing journaled"
    );

    std::fs::remove_dir(&blocker).unwrap();
    let ov = f
        .add_override(force(Some(DEFAULT), ZJK))
        .expect("saved now");
    assert_eq!(f.saved().overrides, vec![ov]);
    assert_eq!(f.active(DEFAULT), ZJK);
}

#[test]
fn an_override_expires_on_the_timer() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let expires = now_ms() + 3_600_000;
    let mut o = force(Some(DEFAULT), ZJK);
    o.expires = Some(expires);
    let ov = f.add_override(o).unwrap();
    assert_eq!(f.active(DEFAULT), ZJK);
    assert_eq!(f.ctl.next_wakeup(), Some(expires));

    let events = f.ctl.decide_and_apply(expires, &[], false);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].to, HZ);
    let s = f.ctl.status();
    assert!(s.overrides.is_empty());
    assert_eq!(endpoint(&s, DEFAULT).forced_by, None);
    assert!(f.saved().overrides.is_empty());
    let expired = f.journaled("override-expired");
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (
            expired[0].override_id.as_deref(),
            expired[0].reason.as_str()
        ),
        (Some(ov.id.as_str()), "expired: maintenance")
    );
}

#[test]
fn a_restart_restores_decisions_overrides_and_serials() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    f.health(HZ, false, t + 1_000);
    let ov = f.add_override(drain(ZJK)).unwrap();
    let serial = f.serial(DEFAULT);
    let before = endpoint(&f.ctl.status(), DEFAULT).clone();

    f.restart();
    assert!(matches!(f.start, StartState::Restored), "{:?}", f.start);
    let s = f.ctl.status();
    assert_eq!(s.overrides, vec![ov]);
    let d = endpoint(&s, DEFAULT);
    assert_eq!(
        (d.active.as_str(), d.since_ms),
        (before.active.as_str(), before.since_ms),
        "the saved decision stands until probes conclude"
    );
    assert_eq!(instance(&s, HZ).state, "unknown", "probes re-conclude");
    assert!(instance(&s, ZJK).drained);
    assert_eq!(f.serial(DEFAULT), serial, "no serial goes back");
}

#[test]
fn a_corrupt_state_file_starts_from_defaults() {
    let mut f = Fixture::auto();
    std::fs::write(f.state_dir().join("state.json"), b"{not json").unwrap();
    f.restart_without_flush();
    let StartState::Corrupt(reason) = &f.start else {
        panic!("{:?}", f.start)
    };
    assert!(reason.contains("not a regdns state file"), "{reason}");
    assert!(reason.contains("the bad file was kept as"), "{reason}");
    assert_eq!(f.active(DEFAULT), HZ);
}

impl Fixture {
    /// Starts a new controller on the same directory without saving first.
    fn restart_without_flush(&mut self) {
        let (ctl, start, reports) = start_in(self.dir.path(), self.failback, self.hold, self.extra);
        self.ctl = ctl;
        self.start = start;
        self.reports = reports;
    }
}

#[test]
fn status_projects_the_last_probe_reports() {
    let mut f = Fixture::auto();
    let t = t0();
    f.both_up(t);
    let report = ProbeReport {
        instance: HZ.into(),
        ok: false,
        checks: vec![
            CheckResult {
                check: "v2".into(),
                ok: true,
                latency: Duration::from_micros(1_500),
                detail: "HTTP 200".into(),
            },
            CheckResult {
                check: "auth".into(),
                ok: false,
                latency: Duration::from_millis(3),
                detail: "HTTP 500".into(),
            },
        ],
        at: UNIX_EPOCH + Duration::from_millis(t + 42),
    };
    f.reports
        .send_replace(BTreeMap::from([(HZ.into(), report)]));
    let s = f.ctl.status();
    let hz = instance(&s, HZ);
    assert_eq!(hz.last_probe_ms, Some(t + 42));
    assert_eq!(hz.checks.len(), 2);
    assert_eq!((hz.checks[0].check.as_str(), hz.checks[0].ok), ("v2", true));
    assert!(
        (hz.checks[0].latency_ms - 1.5).abs() < 1e-9,
        "{}",
        hz.checks[0].latency_ms
    );
    assert_eq!(
        (
            hz.checks[1].check.as_str(),
            hz.checks[1].ok,
            hz.checks[1].detail.as_str()
        ),
        ("auth", false, "HTTP 500")
    );
    let zjk = instance(&s, ZJK);
    assert_eq!((zjk.last_probe_ms, zjk.checks.len()), (None, 0));
    assert_eq!(s.cluster, None);
    assert_eq!(s.publishers.len(), 1);
    assert_eq!(
        (
            s.publishers[0].name.as_str(),
            s.publishers[0].detail.clone()
        ),
        ("dns", format!("snapshot generation {}", s.generation))
    );
}

#[test]
fn the_status_and_reload_commands() {
    let mut f = Fixture::auto();
    f.both_up(t0());
    let (tx, mut rx) = oneshot::channel();
    f.ctl.on_command(Command::Status(tx));
    let s = rx.try_recv().expect("answered");
    let direct = f.ctl.status();
    assert_eq!(s.endpoints, direct.endpoints);
    assert_eq!(s.instances, direct.instances);
    assert_eq!(s.generation, direct.generation);

    let (tx, mut rx) = oneshot::channel();
    f.ctl.on_command(Command::Reload(tx));
    assert_eq!(
        rx.try_recv().expect("answered"),
        Err(ControlError::Invalid(
            "reload is handled by the daemon".into()
        ))
    );
}

#[test]
fn health_words_and_timer_sleeps() {
    assert_eq!(health_word(&crate::decide::Health::Unknown), "unknown");
    assert_eq!(health_word(&crate::decide::Health::Up { since: 1 }), "up");
    assert_eq!(
        health_word(&crate::decide::Health::Down {
            since: 1,
            reason: String::new()
        }),
        "down"
    );
    assert_eq!(until(None), Duration::from_secs(3600));
    assert_eq!(until(Some(0)), Duration::ZERO, "a time already past");
    assert_eq!(
        until(Some(now_ms() + 10 * 3_600_000)),
        Duration::from_secs(3600),
        "at most one hour"
    );
    assert!(until(Some(now_ms() + 60_000)) <= Duration::from_secs(60));
}

#[test]
fn replication_lag_is_journaled_and_projected() {
    let mut f = Fixture::with("auto", "0s", "replication_max_lag = \"1m\"");
    let t = t0();
    f.both_up(t);
    let digest = |f: &mut Fixture, instance: &str, digest: &str, at: UnixMillis| {
        f.ctl.on_digest(DigestSeen {
            instance: instance.into(),
            digest: digest.into(),
            at: UNIX_EPOCH + Duration::from_millis(at),
        })
    };
    let (a, b) = (
        format!("sha256:{}", "a".repeat(64)),
        format!("sha256:{}", "b".repeat(64)),
    );
    digest(&mut f, HZ, &a, t);
    digest(&mut f, ZJK, &b, t);

    let s = f.ctl.status();
    let hz = instance(&s, HZ);
    assert_eq!(
        (
            hz.replication_reference.as_deref(),
            hz.replication_lag_ms,
            hz.replication_behind
        ),
        (Some(HZ), Some(0), false),
        "the primary is its own reference"
    );
    assert_eq!(hz.canary_digest.as_deref(), Some(a.as_str()));
    assert_eq!(hz.canary_digest_since_ms, Some(t));
    let zjk = instance(&s, ZJK);
    assert_eq!(zjk.replication_reference.as_deref(), Some(HZ));
    assert!(zjk.replication_lag_ms.unwrap() >= 600_000, "{zjk:?}");
    assert!(zjk.replication_behind);
    let behind = f.journaled("replication-behind");
    assert_eq!(behind.len(), 1);
    assert_eq!(behind[0].instance.as_deref(), Some(ZJK));
    assert!(
        behind[0]
            .reason
            .ends_with(&format!("not eligible for {EP}")),
        "{}",
        behind[0].reason
    );
    let saved = f.saved();
    assert_eq!(saved.canary_digests[ZJK].digest, b);
    assert_eq!(saved.canary_digests[ZJK].first_seen, t);

    // The same digest again changes nothing; the reference's catches up.
    let entries = f.journal().len();
    digest(&mut f, ZJK, &b, t + 1);
    assert_eq!(f.journal().len(), entries);
    digest(&mut f, ZJK, &a, t + 2_000);
    let s = f.ctl.status();
    let zjk = instance(&s, ZJK);
    assert_eq!(
        (zjk.replication_lag_ms, zjk.replication_behind),
        (Some(0), false)
    );
    let caught_up = f.journaled("replication-caught-up");
    assert_eq!(caught_up.len(), 1);
    assert!(
        caught_up[0]
            .reason
            .starts_with("zhangjiakou caught up with hangzhou"),
        "{}",
        caught_up[0].reason
    );
    assert_eq!(f.journaled("canary-digest").len(), 3);
}
