//! The ECS RAM role source: credentials of the instance's role from the instance metadata
//! service (IMDSv2 token first, [`fetch_ecs`], also used on every refresh).

use std::time::Duration;

use serde::Deserialize;

use super::{ChainConfig, Credentials, Outcome, Source};
use crate::aliyun::sign::{parse_acs_date, percent_encode};
use crate::config::env::Env;
use crate::error_chain::error_chain;

/// Production ECS metadata endpoint (overridable, see [`ChainConfig::metadata_endpoint`]).
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
const ECS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub(super) struct EcsParams {
    pub(super) role_name: Option<String>,
    pub(super) imdsv1_disabled: bool,
    pub(super) endpoint: String,
}

pub(super) fn metadata_endpoint(cfg: &ChainConfig) -> String {
    cfg.metadata_endpoint
        .as_deref()
        .unwrap_or(DEFAULT_METADATA_ENDPOINT)
        .trim_end_matches('/')
        .to_string()
}

pub(super) async fn ecs_source(env: &Env, cfg: &ChainConfig, http: &reqwest::Client) -> Outcome {
    if env.is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
        return Outcome::Skip("disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED".into());
    }
    let params = EcsParams {
        role_name: env.get("ALIBABA_CLOUD_ECS_METADATA").map(str::to_string),
        imdsv1_disabled: env.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        endpoint: metadata_endpoint(cfg),
    };
    match fetch_ecs(http, &params).await {
        Ok(c) => Outcome::Found(Box::new((Source::Ecs(params), "ecs metadata".into(), c))),
        // Reaching metadata is the chain's last resort, so its failure is a plain entry;
        // with ALIBABA_CLOUD_ECS_METADATA set it was explicitly configured.
        Err(e) if env.get("ALIBABA_CLOUD_ECS_METADATA").is_some() => Outcome::Failed(e),
        Err(e) => Outcome::Skip(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

pub(super) async fn fetch_ecs(
    http: &reqwest::Client,
    p: &EcsParams,
) -> Result<Credentials, String> {
    let base = &p.endpoint;
    let unreachable = |e: &reqwest::Error| {
        if e.is_connect() || e.is_timeout() {
            format!("{base} unreachable ({})", error_chain(e))
        } else {
            format!("{base}: {}", error_chain(e))
        }
    };
    // 1. IMDSv2 token.
    let token = match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
        .timeout(ECS_TIMEOUT)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => match r.text().await {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => None,
            Err(e) => return Err(unreachable(&e)),
        },
        Ok(r) => {
            let why = format!("metadata token PUT answered HTTP {}", r.status().as_u16());
            if p.imdsv1_disabled {
                return Err(format!(
                    "{base}: {why} and ALIBABA_CLOUD_IMDSV1_DISABLED=true"
                ));
            }
            tracing::warn!(endpoint = %base, "{why}; falling back to metadata requests without a token (set ALIBABA_CLOUD_IMDSV1_DISABLED=true to forbid)");
            None
        }
        Err(e) => {
            if e.is_connect() || e.is_timeout() || p.imdsv1_disabled {
                return Err(unreachable(&e));
            }
            tracing::warn!(endpoint = %base, error = %error_chain(&e), "metadata token PUT failed; falling back to metadata requests without a token");
            None
        }
    };
    // GET of a metadata path (with the token when there is one): its status and body.
    let get = async |path: String| {
        let mut req = http.get(format!("{base}{path}")).timeout(ECS_TIMEOUT);
        if let Some(t) = &token {
            req = req.header("X-aliyun-ecs-metadata-token", t);
        }
        let r = req.send().await.map_err(|e| unreachable(&e))?;
        let status = r.status();
        let body = r.text().await.map_err(|e| unreachable(&e))?;
        Ok::<_, String>((status, body))
    };
    const PREFIX: &str = "/latest/meta-data/ram/security-credentials/";
    // 2. Role name.
    let role = match &p.role_name {
        Some(r) => r.clone(),
        None => {
            let (status, body) = get(PREFIX.to_string()).await?;
            if !status.is_success() {
                return Err(format!(
                    "{base}: role name lookup answered HTTP {} (no RAM role attached to the instance?)",
                    status.as_u16()
                ));
            }
            let role = body.lines().next().unwrap_or("").trim().to_string();
            if role.is_empty() {
                return Err(format!("{base}: no RAM role attached to the instance"));
            }
            role
        }
    };
    // 3. Credentials.
    let (status, body) = get(format!("{PREFIX}{}", percent_encode(&role))).await?;
    if !status.is_success() {
        return Err(format!(
            "{base}: credentials of role {role} answered HTTP {}",
            status.as_u16()
        ));
    }
    let c: EcsCredentials = serde_json::from_str(&body)
        .map_err(|e| format!("{base}: credentials of role {role}: not JSON ({e})"))?;
    if c.code.as_deref() != Some("Success") {
        return Err(format!(
            "{base}: credentials of role {role}: Code {:?}",
            c.code.unwrap_or_default()
        ));
    }
    let (Some(id), Some(secret), Some(token), Some(exp)) = (
        c.access_key_id,
        c.access_key_secret,
        c.security_token,
        c.expiration,
    ) else {
        return Err(format!(
            "{base}: credentials of role {role}: fields missing"
        ));
    };
    let expiration =
        parse_acs_date(&exp).ok_or_else(|| format!("{base}: bad Expiration {exp:?}"))?;
    Ok(Credentials {
        access_key_id: id,
        access_key_secret: secret,
        security_token: Some(token),
        expiration: Some(expiration),
    })
}
