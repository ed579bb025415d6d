//! The probe tasks of a process: one per subject of the [`Plan`] this process observes
//! (every instance and view address for a node, its views' targets for an agent), kept in
//! step with the model across reloads.

use std::collections::BTreeMap;

use tokio::task::JoinHandle;

use crate::config::InstanceConfig;
use crate::model::Model;
use crate::probe::{
    self, CanaryAuth, CanarySpec, ExtraCheck, InstanceSpec, ManifestCheck, SchedCtx,
};
use crate::vantage::Plan;

/// The prober's view of an instance.
pub fn instance_spec(i: &InstanceConfig) -> Result<InstanceSpec, String> {
    let url =
        url::Url::parse(&i.url).map_err(|e| format!("instance {}: url {:?}: {e}", i.id, i.url))?;
    let mut extra = Vec::new();
    for x in &i.extra {
        match (&x.url, &x.tcp) {
            (Some(u), _) => extra.push(ExtraCheck::Http {
                name: x.name.clone(),
                url: url::Url::parse(u)
                    .map_err(|e| format!("instance {} extra {}: {e}", i.id, x.name))?,
            }),
            (None, Some(t)) => extra.push(ExtraCheck::Tcp {
                name: x.name.clone(),
                addr: t.clone(),
            }),
            (None, None) => {}
        }
    }
    Ok(InstanceSpec {
        id: i.id.clone(),
        url,
        connect: i.connect.clone(),
        connect_hosts: i.connect_hosts.clone(),
        resolver: match &i.resolver {
            None => None,
            Some(r) => {
                Some(crate::config::instance::parse_resolver(r).ok_or_else(|| {
                    format!("instance {}: resolver {r:?}: not an IP address", i.id)
                })?)
            }
        },
        interval: i.interval,
        timeout: i.timeout,
        rise: i.rise,
        fall: i.fall,
        fast_interval: i.fast_interval,
        ca_file: i.ca_file.clone(),
        insecure_skip_verify: i.insecure_skip_verify,
        auth_check: i.auth_check,
        extra,
        require_api_version: i.require_api_version,
        canary: i.canary.as_ref().map(|c| CanarySpec {
            repository: c.repository.clone(),
            reference: c.reference.clone(),
            interval: crate::model::canary_interval(i),
            timeout: c
                .timeout
                .unwrap_or(crate::config::instance::DEFAULT_CANARY_TIMEOUT),
            auth: match (&i.canary_credentials_file, &i.canary_credentials) {
                (Some(f), _) => CanaryAuth::File(f.clone()),
                (None, Some(a)) => CanaryAuth::Acr {
                    instance_id: a.acr_instance.clone(),
                    region: a.region.clone(),
                    endpoint: a.endpoint.clone(),
                },
                (None, None) => CanaryAuth::Anonymous,
            },
            manifest: match c.manifest {
                crate::config::instance::CanaryManifest::Get => ManifestCheck::Get,
                crate::config::instance::CanaryManifest::Head => ManifestCheck::Head,
            },
            blob_every: c
                .blob_every
                .unwrap_or(crate::config::instance::DEFAULT_BLOB_EVERY),
        }),
        addresses: Vec::new(),
    })
}

/// Prober tasks per subject, so a reload restarts only what changed.
pub(crate) struct Probers {
    tasks: BTreeMap<String, (InstanceSpec, Vec<JoinHandle<()>>)>,
    ctx: SchedCtx,
    /// An agent's views (it probes only their targets); `None` for a full node.
    agent_views: Option<Vec<String>>,
}

/// The specs of every subject an observer probes (`agent_views`: see [`Plan::subjects_for`]).
pub fn subject_specs(
    model: &Model,
    agent_views: Option<&[String]>,
) -> BTreeMap<String, InstanceSpec> {
    let plan = Plan::new(model);
    let mut want = BTreeMap::new();
    for subject in plan.subjects_for(agent_views) {
        let Some(i) = model.instance(&subject.instance) else {
            continue;
        };
        match instance_spec(i) {
            Ok(mut s) => {
                s.id = subject.key.clone();
                s.addresses = subject.addresses.clone();
                want.insert(subject.key.clone(), s);
            }
            Err(e) => tracing::error!(error = %e, "instance not probed"),
        }
    }
    want
}

impl Probers {
    /// No tasks yet; `agent_views` as in [`subject_specs`].
    pub(crate) fn new(ctx: SchedCtx, agent_views: Option<Vec<String>>) -> Probers {
        Probers {
            tasks: BTreeMap::new(),
            ctx,
            agent_views,
        }
    }

    /// Starts tasks for new or changed subjects, stops removed ones. Returns the keys
    /// whose probe settings did not change (their health carries over).
    pub(crate) fn sync(&mut self, model: &Model) -> Vec<String> {
        let want = subject_specs(model, self.agent_views.as_deref());
        let mut kept = Vec::new();
        self.tasks.retain(|id, (spec, handles)| {
            let same = want.get(id) == Some(spec);
            if same {
                kept.push(id.clone());
            } else {
                handles.iter().for_each(|h| h.abort());
            }
            same
        });
        for (id, spec) in want {
            if !self.tasks.contains_key(&id) {
                let handles = probe::spawn_prober_with(vec![spec.clone()], self.ctx.clone());
                self.tasks.insert(id, (spec, handles));
            }
        }
        kept
    }

    pub(crate) fn stop(&mut self) {
        for (_, (_, hs)) in std::mem::take(&mut self.tasks) {
            hs.iter().for_each(|h| h.abort());
        }
    }
}
