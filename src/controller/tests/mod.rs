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

mod commands;
mod health;
mod restart_and_status;
