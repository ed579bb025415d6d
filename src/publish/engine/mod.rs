//! The reconcile engine shared by every DNS provider (docs/design.md#8-publishers; ExternalDNS's plan/provider
//! split). The engine owns the policy; a [`Provider`] only reads and executes.
//!
//! - [`plan`]: the pure diff (current records + desired answer → changes), touching only
//!   the managed RRsets at the managed name.
//! - [`mod@reconcile`]: read → plan → execute → confirm, retries with backoff and jitter.
//! - [`task`]: one task per binding: follows the decisions, retries until converged,
//!   checks for drift periodically and repairs it, journals, status and metrics, dry run.
//! - [`provider`]: the trait providers implement.
//! - [`error`]: the classified error providers return.

pub mod error;
pub mod plan;
pub mod provider;
pub mod reconcile;
pub mod task;

#[cfg(test)]
mod engine_tests;

use std::collections::BTreeMap;

pub use error::{ErrorKind, PublishError, Service};
pub use plan::{Conflict, Desired, Op, Plan, RecordInfo};
pub use provider::{Change, Provider};
pub use reconcile::{AppliedChange, ReconcileOptions, ReconcileReport, reconcile};

use crate::decide::Decision;
use crate::model::{Endpoint, Model, TargetAnswer};

/// One binding and the answer it should hold under the given decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingTarget<B> {
    /// Status name: `<provider>:<where>` (e.g. `privatezone:zone-1/@`).
    pub name: String,
    /// Endpoint name (fully qualified).
    pub endpoint: String,
    /// View whose decision is pushed.
    pub view: String,
    /// Active instance of that view.
    pub instance: String,
    /// Where the records live at the provider.
    pub binding: B,
    /// The records wanted (`desired.rr` is the binding's name relative to its zone).
    pub desired: Desired,
}

impl<B> BindingTarget<B> {
    /// `binding` (shown in status as `name`) of endpoint `ep`, publishing `view` at `rr`, with
    /// the answer it should hold under `decisions` ([`view_answer`]); None for an unknown view.
    pub fn resolve(
        model: &Model,
        decisions: &BTreeMap<(String, String), Decision>,
        ep: &Endpoint,
        view: &str,
        rr: &str,
        binding: B,
        name: String,
    ) -> Option<Self> {
        let (instance, desired) = view_answer(model, decisions, ep, view, rr)?;
        Some(BindingTarget {
            name,
            endpoint: ep.name.to_string(),
            view: view.to_string(),
            instance,
            binding,
            desired,
        })
    }
}

/// The records of a target answer: a CNAME (without the trailing dot), or A and AAAA; none
/// for a passthrough target (the managed record is deleted, so the name resolves publicly).
pub fn desired_records(answer: &TargetAnswer) -> Vec<(String, String)> {
    match answer {
        TargetAnswer::Passthrough => Vec::new(),
        TargetAnswer::Cname(n) => {
            let s = n.to_string();
            vec![("CNAME".into(), s.trim_end_matches('.').to_string())]
        }
        TargetAnswer::Addrs { a, aaaa } => a
            .iter()
            .map(|x| ("A".to_string(), x.to_string()))
            .chain(aaaa.iter().map(|x| ("AAAA".to_string(), x.to_string())))
            .collect(),
    }
}

/// The active instance and answer of `view` of `ep` under `decisions`; views without a
/// decision use their first target (as DNS does). None for an unknown view. One map lookup:
/// every binding task calls this on every decision change.
pub fn view_answer(
    model: &Model,
    decisions: &BTreeMap<(String, String), Decision>,
    ep: &Endpoint,
    view: &str,
    rr: &str,
) -> Option<(String, Desired)> {
    let vi = model.view_index(view)?;
    let list = ep.targets.get(vi)?;
    let active = decisions
        .get(&(ep.name.to_string(), view.to_string()))
        .and_then(|d| list.iter().find(|t| t.instance == d.active));
    let target = active.or_else(|| list.first())?;
    Some((
        target.instance.clone(),
        Desired {
            rr: rr.to_string(),
            records: desired_records(&target.answer),
            ttl: ep.ttl,
        },
    ))
}

pub use crate::clock::clock_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_answers() {
        let n = hickory_proto::rr::Name::from_ascii("b-registry.example.com.").unwrap();
        assert_eq!(
            desired_records(&TargetAnswer::Cname(n)),
            vec![("CNAME".to_string(), "b-registry.example.com".to_string())]
        );
        let r = desired_records(&TargetAnswer::Addrs {
            a: vec!["10.1.3.4".parse().unwrap()],
            aaaa: vec!["2001:db8::1".parse().unwrap()],
        });
        assert_eq!(
            r,
            vec![
                ("A".to_string(), "10.1.3.4".to_string()),
                ("AAAA".to_string(), "2001:db8::1".to_string())
            ]
        );
    }
}
