//! The RRSA source (OIDC): a service-account token file exchanged for STS credentials with
//! `AssumeRoleWithOIDC` ([`fetch_oidc`], also used on every refresh), and the STS endpoint
//! and session name shared with the credentials file's `oidc_role_arn` profiles.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{ChainConfig, Credentials, Outcome, Source};
use crate::aliyun::sign::{format_acs_date, parse_acs_date, percent_encode};
use crate::config::env::Env;
use crate::error_chain::error_chain;

/// Production STS endpoint (overridable, see [`ChainConfig::sts_endpoint`]).
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
const OIDC_DURATION_SECONDS: u64 = 3600;

#[derive(Clone, Debug)]
pub(super) struct OidcParams {
    pub(super) role_arn: String,
    pub(super) provider_arn: String,
    pub(super) token_file: PathBuf,
    pub(super) session_name: String,
    pub(super) policy: Option<String>,
    pub(super) sts_endpoint: String,
}

pub(super) fn sts_endpoint(env: &Env, cfg: &ChainConfig) -> String {
    if let Some(e) = &cfg.sts_endpoint {
        return e.trim_end_matches('/').to_string();
    }
    match env.get("ALIBABA_CLOUD_STS_REGION") {
        Some(r) if env.is_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") => {
            format!("https://sts-vpc.{r}.aliyuncs.com")
        }
        Some(r) => format!("https://sts.{r}.aliyuncs.com"),
        None => DEFAULT_STS_ENDPOINT.into(),
    }
}

pub(super) fn session_name(env: &Env, now: SystemTime) -> String {
    env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME")
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "regdns-{}",
                now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
            )
        })
}

pub(super) async fn rrsa_source(
    env: &Env,
    cfg: &ChainConfig,
    http: &reqwest::Client,
    now: SystemTime,
) -> Outcome {
    const VARS: [&str; 3] = [
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    ];
    let vals: Vec<Option<&str>> = VARS.iter().map(|v| env.get(v)).collect();
    let set: Vec<&str> = VARS
        .iter()
        .zip(&vals)
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
    let missing: Vec<&str> = VARS
        .iter()
        .zip(&vals)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if set.is_empty() {
        return Outcome::Skip(format!("{} not set", VARS[0]));
    }
    if !missing.is_empty() {
        return Outcome::Failed(format!(
            "{} not set (but {} set)",
            missing.join(", "),
            set.join(", ")
        ));
    }
    let [Some(role_arn), Some(provider_arn), Some(token_file)] = vals[..] else {
        return Outcome::Failed("RRSA variables incomplete".into()); // checked just above
    };
    let params = OidcParams {
        role_arn: role_arn.into(),
        provider_arn: provider_arn.into(),
        token_file: PathBuf::from(token_file),
        session_name: session_name(env, now),
        policy: None,
        sts_endpoint: sts_endpoint(env, cfg),
    };
    match fetch_oidc(http, &params, now).await {
        Ok(c) => Outcome::Found(Box::new((Source::Oidc(params), "rrsa".into(), c))),
        Err(e) => Outcome::Failed(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsResponse {
    credentials: Option<StsCredentials>,
    #[serde(default, alias = "code")]
    code: Option<String>,
    #[serde(default, alias = "message")]
    message: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

pub(super) async fn fetch_oidc(
    http: &reqwest::Client,
    p: &OidcParams,
    now: SystemTime,
) -> Result<Credentials, String> {
    // Re-read on every call: the kubelet rotates the token.
    let token = std::fs::read_to_string(&p.token_file).map_err(|e| {
        format!(
            "cannot read OIDC token file {}: {e}",
            p.token_file.display()
        )
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(format!(
            "OIDC token file {} is empty",
            p.token_file.display()
        ));
    }
    let query = [
        ("Action", "AssumeRoleWithOIDC".to_string()),
        ("Format", "JSON".to_string()),
        ("Timestamp", format_acs_date(now)),
        ("Version", "2015-04-01".to_string()),
    ];
    let mut form = vec![
        ("DurationSeconds", OIDC_DURATION_SECONDS.to_string()),
        ("OIDCProviderArn", p.provider_arn.clone()),
        ("OIDCToken", token.to_string()),
        ("RoleArn", p.role_arn.clone()),
        ("RoleSessionName", p.session_name.clone()),
    ];
    if let Some(policy) = &p.policy {
        form.push(("Policy", policy.clone()));
    }
    let enc = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let url = format!("{}/?{}", p.sts_endpoint, enc(&query));
    let what = format!("STS AssumeRoleWithOIDC at {}", p.sts_endpoint);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(enc(&form))
        .send()
        .await
        .map_err(|e| format!("{what}: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("{what}: reading response: {}", error_chain(&e)))?;
    let parsed: Option<StsResponse> = serde_json::from_str(&body).ok();
    match parsed {
        Some(StsResponse {
            credentials: Some(c),
            ..
        }) if status.is_success() => {
            let expiration = parse_acs_date(&c.expiration)
                .ok_or_else(|| format!("{what}: bad Expiration {:?}", c.expiration))?;
            Ok(Credentials {
                access_key_id: c.access_key_id,
                access_key_secret: c.access_key_secret,
                security_token: Some(c.security_token),
                expiration: Some(expiration),
            })
        }
        Some(r) => Err(format!(
            "{what}: HTTP {} {}: {} (RequestId {})",
            status.as_u16(),
            r.code.as_deref().unwrap_or("no Credentials in response"),
            r.message.as_deref().unwrap_or(""),
            r.request_id.as_deref().unwrap_or("-")
        )),
        None => Err(format!(
            "{what}: HTTP {} with a body that is not STS JSON",
            status.as_u16()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_endpoint_rules() {
        let cfg = ChainConfig::default();
        assert_eq!(sts_endpoint(&Env::default(), &cfg), DEFAULT_STS_ENDPOINT);
        let env = Env::from_pairs([("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou")]);
        assert_eq!(
            sts_endpoint(&env, &cfg),
            "https://sts.cn-hangzhou.aliyuncs.com"
        );
        let env = Env::from_pairs([
            ("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"),
            ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"),
        ]);
        assert_eq!(
            sts_endpoint(&env, &cfg),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com"
        );
    }
}
