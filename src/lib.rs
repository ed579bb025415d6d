//! regdns: a DNS failover controller for container-registry custom endpoints.
//!
//! `main.rs` is only a tiny frontend; the library is a pipeline in three stages, built in
//! layers (CONTRIBUTING.md "Layering", enforced by `tests/layering.rs`).
//!
//! **Gather.** [`config`] reads the TOML file (plus `REGDNS_*` environment overrides) and
//! [`zone`] the RFC 1035 zone files; [`model`] checks every cross-reference and produces
//! the immutable [`model::Model`]: zones, views, instances, endpoints, their targets and
//! their publish bindings. [`flatten`] resolves CNAME targets that must be served as
//! addresses at a zone apex.
//!
//! **Decide.** [`probe`] health-checks every instance (`GET /v2/`, the canary pull, the ACR
//! login it may need; rise/fall hysteresis) and reports only transitions; [`decide`] is the
//! pure engine that picks the active target of every endpoint and view from health,
//! overrides and the previous decisions; [`controller`] runs it on every input, journals and
//! persists the outcome ([`state`]). With `[cluster]`, [`cluster`] shares overrides, health
//! observations, serials, the journal and the publishers' leadership with the other nodes
//! through etcd; [`vantage`] says which checks judge each target in each view (a VPC view
//! can be judged at the internal addresses it is answered, by agents inside that VPC) and
//! combines the observers' conclusions per view by quorum, which the controller feeds the
//! engine. Given the active target of every endpoint and view, [`snapshot::build`] builds
//! the next [`snapshot::Snapshot`]: the final records of each zone per view, SOA serials
//! that move only when content changes, and pre-encoded responses for the common queries.
//!
//! **Serve and publish.** [`dns`] answers UDP and TCP queries from the current snapshot
//! only (an `ArcSwap`): the fast path copies pre-encoded bytes and patches ID, flags, QNAME
//! case and EDNS; everything else goes through the snapshot's authoritative lookup encoded
//! by hickory-proto ([`snapshot::answer`]). The DNS providers push the same decisions into
//! records kept elsewhere, each binding in its own task, all on one reconcile engine
//! ([`publish::engine`]: plan, retries ([`retry`]), drift repair, status, metrics):
//! [`publish::privatezone`] (Alibaba Cloud PrivateZone, per VPC), [`publish::alidns`]
//! (Alibaba Cloud DNS, the public zone) and [`publish::rfc2136`] (TSIG-signed dynamic
//! updates to any standard primary); [`publish::notify`] tells secondaries. [`aliyun`] is
//! what the Alibaba Cloud clients share: V3 signing, the RPC call, the credential chain.
//! [`daemon`] wires the stages together and handles signals.
//!
//! **Operate.** [`admin`] is the HTTP API (status, events, overrides, failback, reload,
//! health) and the status page over the [`control`] contract; [`metrics`] defines every
//! Prometheus metric; the operator commands in [`cli`] are clients of the admin API.
//! Small shared pieces: [`clock`] (time in ms), [`error_chain`] (an error with its causes).

#![warn(missing_docs, unreachable_pub, rust_2018_idioms, clippy::dbg_macro)]

pub mod admin;
pub mod aliyun;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod controller;
pub mod daemon;
pub mod decide;
pub mod dns;
pub mod error_chain;
pub mod flatten;
pub mod metrics;
pub mod model;
pub mod probe;
pub mod publish;
pub mod retry;
pub mod sim;
pub mod snapshot;
pub mod state;
pub mod tsig;
pub mod vantage;
pub mod zone;
