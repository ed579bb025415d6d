//! What survives a restart (and a corrupt state file), and the status projection:
//! probe reports, commands that only read, health words, replication lag.

use super::*;

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
        resolved: vec![crate::probe::ResolvedName {
            name: "registry.path.test".into(),
            addresses: vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            resolver: "127.0.0.53:53".parse().unwrap(),
        }],
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
    assert_eq!(hz.resolved.len(), 1);
    assert_eq!(
        (
            hz.resolved[0].name.as_str(),
            hz.resolved[0].addresses.len(),
            hz.resolved[0].resolver.to_string()
        ),
        ("registry.path.test", 2, "127.0.0.53:53".to_string())
    );
    let zjk = instance(&s, ZJK);
    assert_eq!((zjk.last_probe_ms, zjk.checks.len()), (None, 0));
    assert!(zjk.resolved.is_empty());
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
