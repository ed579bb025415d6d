//! The credentials file source (`ALIBABA_CLOUD_CREDENTIALS_FILE` or
//! `~/.alibabacloud/credentials[.ini]`, one INI profile: `access_key`, `ecs_ram_role` or
//! `oidc_role_arn`), its INI parser, and the aliyun CLI profile step, which regdns does not
//! support and only reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::ecs::{EcsParams, fetch_ecs, metadata_endpoint};
use super::rrsa::{OidcParams, fetch_oidc, session_name, sts_endpoint};
use super::{ChainConfig, Credentials, Outcome, Source};
use crate::config::env::Env;

/// A parsed INI file: section → key → value.
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        let (Some(sec), Some((k, v))) = (&section, line.split_once('=')) else {
            continue;
        };
        let v = v.split('#').next().unwrap_or("").trim();
        out.get_mut(sec)
            .expect("section inserted")
            .insert(k.trim().to_string(), v.to_string());
    }
    out
}

pub(super) async fn file_source(
    env: &Env,
    cfg: &ChainConfig,
    http: &reqwest::Client,
    now: SystemTime,
) -> Outcome {
    let path = match env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Outcome::Failed(format!(
                    "{} (ALIBABA_CLOUD_CREDENTIALS_FILE) not found",
                    p.display()
                ));
            }
            p
        }
        None => {
            let Some(home) = env.get("HOME") else {
                return Outcome::Skip("HOME not set, no default credentials file".into());
            };
            let dir = Path::new(home).join(".alibabacloud");
            let ini = dir.join("credentials.ini");
            let plain = dir.join("credentials");
            if ini.is_file() {
                ini
            } else if plain.is_file() {
                plain
            } else {
                return Outcome::Skip(format!("{} not found", ini.display()));
            }
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("cannot read {}: {e}", path.display())),
    };
    let ini = parse_ini(&text);
    let profile = env.get("ALIBABA_CLOUD_PROFILE").unwrap_or("default");
    let Some(sec) = ini.get(profile) else {
        return Outcome::Failed(format!(
            "profile [{profile}] not found in {}",
            path.display()
        ));
    };
    let at = format!("{} [{profile}]", path.display());
    let field = |k: &str| -> Result<String, String> {
        sec.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("{at}: {k} missing"))
    };
    let name = format!("credentials file (profile {profile})");
    let kind = sec.get("type").map(String::as_str).unwrap_or("");
    match kind {
        "access_key" => match (field("access_key_id"), field("access_key_secret")) {
            (Ok(id), Ok(secret)) => Outcome::Found(Box::new((
                Source::Static,
                name,
                Credentials {
                    access_key_id: id,
                    access_key_secret: secret,
                    security_token: None,
                    expiration: None,
                },
            ))),
            (Err(e), _) | (_, Err(e)) => Outcome::Failed(e),
        },
        "ecs_ram_role" => {
            let params = EcsParams {
                role_name: sec.get("role_name").filter(|v| !v.is_empty()).cloned(),
                imdsv1_disabled: env.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
                endpoint: metadata_endpoint(cfg),
            };
            match fetch_ecs(http, &params).await {
                Ok(c) => Outcome::Found(Box::new((
                    Source::Ecs(params),
                    format!("{name} ecs_ram_role"),
                    c,
                ))),
                Err(e) => Outcome::Failed(format!("{at} ecs_ram_role: {e}")),
            }
        }
        "oidc_role_arn" => {
            let (role_arn, provider_arn, token_file) = match (
                field("role_arn"),
                field("oidc_provider_arn"),
                field("oidc_token_file_path"),
            ) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Outcome::Failed(e),
            };
            let params = OidcParams {
                role_arn,
                provider_arn,
                token_file: PathBuf::from(token_file),
                session_name: sec
                    .get("role_session_name")
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| session_name(env, now)),
                policy: sec.get("policy").filter(|v| !v.is_empty()).cloned(),
                sts_endpoint: sts_endpoint(env, cfg),
            };
            match fetch_oidc(http, &params, now).await {
                Ok(c) => Outcome::Found(Box::new((
                    Source::Oidc(params),
                    format!("{name} oidc_role_arn"),
                    c,
                ))),
                Err(e) => Outcome::Failed(format!("{at} oidc_role_arn: {e}")),
            }
        }
        "ram_role_arn" | "rsa_key_pair" => Outcome::Failed(format!(
            "{at}: type {kind} is not supported by regdns (use access_key, ecs_ram_role or oidc_role_arn)"
        )),
        "" => Outcome::Failed(format!("{at}: type missing")),
        other => Outcome::Failed(format!(
            "{at}: unknown type {other:?} (expected access_key, ecs_ram_role or oidc_role_arn)"
        )),
    }
}

pub(super) fn cli_source(env: &Env) -> Outcome {
    if env.is_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED") {
        return Outcome::Skip("disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED".into());
    }
    let exists = env
        .get("HOME")
        .map(|h| Path::new(h).join(".aliyun/config.json"))
        .filter(|p| p.is_file());
    match exists {
        Some(p) => Outcome::Skip(format!(
            "{} exists but the aliyun CLI profile is not supported by regdns",
            p.display()
        )),
        None => Outcome::Skip("not supported by regdns".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini() {
        let i = parse_ini(
            "# c\n[default]\ntype = access_key # comment\naccess_key_id=AK\n\n[other]\n; x\nrole_name = r\n",
        );
        assert_eq!(i["default"]["type"], "access_key");
        assert_eq!(i["default"]["access_key_id"], "AK");
        assert_eq!(i["other"]["role_name"], "r");
    }
}
