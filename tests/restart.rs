//! Restarts: `kill -9` at any moment loses no decision, the persisted decision is served
//! from the first answer on (before any probe concludes), and a truncated state file is
//! survived with a clear log line and the safe default.

mod support;

use std::time::{Duration, Instant};

use regdns::sim::Mode;
use support::regdns::{PRIMARY, SECONDARY, answer, http, registries, start, wait_answer};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_then_restart_serves_the_persisted_decision_at_once() {
    let (hz, zjk, dns) = registries(false).await;
    let r = start(dns, &http(&hz), &http(&zjk), "failback_hold = \"1h\"");
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    hz.set(Mode::Refuse);
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;

    // kill -9, the primary recovers while regdns is down, regdns comes back.
    let stopped = r.kill();
    hz.set(Mode::Healthy);
    let t0 = Instant::now();
    let r = stopped.start();
    eprintln!("first answer {:?} after spawn", t0.elapsed());
    assert!(
        answer(dns, "127.0.0.1").unwrap().contains(SECONDARY),
        "the persisted decision is served at once"
    );
    assert_eq!(
        answer(dns, "127.0.0.2").unwrap(),
        "A 10.1.3.4",
        "in every view"
    );
    // Probes conclude that hangzhou is up, and go on; the 1 h failback hold keeps
    // zhangjiakou.
    tokio::task::block_in_place(|| {
        r.wait_status("hangzhou up", Duration::from_secs(10), |s| {
            s["instances"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|i| i["id"] == "hangzhou" && i["state"] == "up")
            })
        });
        r.wait_probes(2, Duration::from_secs(10));
    });
    assert!(answer(dns, "127.0.0.1").unwrap().contains(SECONDARY));
    let log = r.proc.stderr();
    assert!(
        log.contains("serving the saved decisions until probes conclude"),
        "{log}"
    );
}

/// The answer on the wire never runs ahead of the state file and the journal: as soon as a
/// switch is seen over DNS (queried back to back, no pause), both already hold it, so a
/// `kill -9` at that moment restarts on the decision that was served.
#[tokio::test(flavor = "multi_thread")]
async fn a_switch_is_durable_before_it_is_answered() {
    let (hz, zjk, dns) = registries(false).await;
    let r = start(dns, &http(&hz), &http(&zjk), "failback_hold = \"0s\"");
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    let state_dir = r.state_dir();
    for round in 0..3 {
        for (mode, want, active) in [
            (Mode::Refuse, SECONDARY, "zhangjiakou"),
            (Mode::Healthy, PRIMARY, "hangzhou"),
        ] {
            hz.set(mode);
            let deadline = Instant::now() + Duration::from_secs(10);
            let state_dir = state_dir.clone();
            let (state, journal) = tokio::task::spawn_blocking(move || {
                loop {
                    if answer(dns, "127.0.0.1").is_some_and(|a| a.contains(want)) {
                        // Read at once: what a kill -9 right now would restart on.
                        let state = std::fs::read(state_dir.join("state.json")).unwrap();
                        let journal = regdns::state::journal::read_since(&state_dir, 0, 3);
                        return (state, journal);
                    }
                    assert!(Instant::now() < deadline, "round {round}: never {want}");
                }
            })
            .await
            .unwrap();
            let state = regdns::state::parse(&state).unwrap();
            let saved = &state.decisions[&(
                "cross-region.registry.io.".to_string(),
                "default".to_string(),
            )];
            assert_eq!(
                saved.active, active,
                "round {round}: {want} was answered before the state file held it"
            );
            let last = journal
                .iter()
                .rev()
                .find(|e| e.kind == "switch" && e.view.as_deref() == Some("default"))
                .expect("switch journaled");
            assert_eq!(
                last.to.as_deref(),
                Some(active),
                "round {round}: {want} was answered before the journal held it"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_state_file_is_survived() {
    let (hz, zjk, dns) = registries(false).await;
    let r = start(dns, &http(&hz), &http(&zjk), "failback_hold = \"1h\"");
    hz.set(Mode::Refuse);
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    let state = r.state_dir().join("state.json");
    let stopped = r.kill();
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();

    let r = stopped.start();
    // Safe default: the first target, until probes conclude (hangzhou is still refusing).
    let first = answer(dns, "127.0.0.1").unwrap();
    assert!(
        first.contains(PRIMARY) || first.contains(SECONDARY),
        "{first}"
    );
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    let log = r.proc.stderr();
    assert!(
        log.contains("state file unusable"),
        "a clear log line: {log}"
    );
    let kept = std::fs::read_dir(r.state_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        });
    assert!(kept, "the corrupt file is kept for inspection");
    let fresh = std::fs::read_to_string(r.state_dir().join("state.json")).unwrap();
    assert!(
        regdns::state::parse(fresh.as_bytes()).is_ok(),
        "a valid state file was written again"
    );
}
