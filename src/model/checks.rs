//! The key-path error builder ([`Checker`]) and the value checks of one config section at a
//! time (names written in the config included): `[server]`, an `[[instance]]` (its canary
//! included), an endpoint's replication rule, and every file or directory the config names.

use std::collections::BTreeSet;
use std::path::Path;

use hickory_proto::rr::Name;

use super::*;
use crate::config::LoadedConfig;

/// Turns a key path and a message into a [`ModelError`] of one config file.
pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
}

impl Checker<'_> {
    pub(super) fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ModelError {
        ModelError::Invalid {
            file: self.file.to_string(),
            key: key.into(),
            msg: msg.into(),
        }
    }
}

/// Parses a fully qualified domain name written in the config.
pub(super) fn parse_fqdn(c: &Checker<'_>, key: &str, s: &str) -> Result<Name, ModelError> {
    if !s.ends_with('.') {
        return Err(c.err(
            key,
            format!("{s:?} must be fully qualified: write \"{s}.\" (with the trailing dot)"),
        ));
    }
    Name::from_ascii(s)
        .map(|n| n.to_lowercase())
        .map_err(|e| c.err(key, format!("{s:?} is not a valid domain name: {e}")))
}

pub(super) fn check_server(c: &Checker<'_>, s: &ServerConfig) -> Result<(), ModelError> {
    if s.listen.is_empty() {
        return Err(c.err(
            "server.listen",
            "no listen address; write e.g. [\"0.0.0.0:53\", \"[::]:53\"]",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, a) in s.listen.iter().enumerate() {
        if !seen.insert(*a) {
            return Err(c.err(
                format!("server.listen[{i}]"),
                format!("duplicate address {a}"),
            ));
        }
    }
    if !(512..=4096).contains(&s.max_udp_payload) {
        return Err(c.err(
            "server.max_udp_payload",
            format!(
                "{} is outside 512..=4096 (1232 is recommended)",
                s.max_udp_payload
            ),
        ));
    }
    if s.tcp_max_connections == 0 {
        return Err(c.err("server.tcp_max_connections", "must be at least 1"));
    }
    if s.udp_workers == Some(0) {
        return Err(c.err("server.udp_workers", "must be at least 1"));
    }
    Ok(())
}

pub(super) fn check_instance(
    c: &Checker<'_>,
    i: usize,
    inst: &InstanceConfig,
) -> Result<(), ModelError> {
    let k = |f: &str| format!("instance[{i}].{f}");
    if inst.id.is_empty()
        || !inst
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        return Err(c.err(
            k("id"),
            format!(
                "{:?} is not a valid id (letters, digits, '-', '_', '.')",
                inst.id
            ),
        ));
    }
    let url_ok = url::Url::parse(&inst.url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !url_ok {
        return Err(c.err(
            k("url"),
            format!(
                "{:?} is not an http(s) URL; write e.g. \"https://cross-region.registry.io/v2/\"",
                inst.url
            ),
        ));
    }
    if let Some(conn) = &inst.connect {
        check_host_port(c, &k("connect"), conn)?;
    }
    check_path(c, i, inst)?;
    if inst.rise == 0 {
        return Err(c.err(k("rise"), "must be at least 1"));
    }
    if inst.fall == 0 {
        return Err(c.err(k("fall"), "must be at least 1"));
    }
    if inst.interval.is_zero() {
        return Err(c.err(k("interval"), "must be longer than 0s"));
    }
    if inst.timeout.is_zero() {
        return Err(c.err(k("timeout"), "must be longer than 0s"));
    }
    if inst.timeout > inst.interval {
        return Err(c.err(k("timeout"), format!(
            "{} is longer than interval {}; probes of one instance never overlap, so keep timeout <= interval",
            humantime::format_duration(inst.timeout), humantime::format_duration(inst.interval))));
    }
    for (j, x) in inst.extra.iter().enumerate() {
        let key = format!("instance[{i}].extra[{j}]");
        match (&x.url, &x.tcp) {
            (Some(u), None) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(c.err(format!("{key}.url"), format!("{u:?} is not an http(s) URL")));
                }
            }
            (None, Some(t)) => check_host_port(c, &format!("{key}.tcp"), t)?,
            _ => {
                return Err(c.err(
                    key,
                    "give exactly one of url = \"https://...\" or tcp = \"host:port\"",
                ));
            }
        }
    }
    check_canary(c, i, inst)
}

/// `connect_hosts` (host names, or `"*"` alone, and only with `connect`) and `resolver` (an
/// IP address with an optional port) of one instance.
pub(super) fn check_path(
    c: &Checker<'_>,
    i: usize,
    inst: &InstanceConfig,
) -> Result<(), ModelError> {
    let k = |f: &str| format!("instance[{i}].{f}");
    if !inst.connect_hosts.is_empty() && inst.connect.is_none() {
        return Err(c.err(
            k("connect_hosts"),
            "needs connect = \"host:port\" (the address these names are dialled to)",
        ));
    }
    if inst.connect_hosts.len() > 1 && inst.connect_hosts.iter().any(|h| h == "*") {
        return Err(c.err(
            k("connect_hosts"),
            "\"*\" already means every host; give it alone: [\"*\"]",
        ));
    }
    for (j, h) in inst.connect_hosts.iter().enumerate() {
        if h == "*" {
            continue;
        }
        let key = format!("instance[{i}].connect_hosts[{j}]");
        let bare = h.strip_suffix('.').unwrap_or(h);
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Err(c.err(
                key,
                format!(
                    "{h:?} is an IP address; list host names (a URL with an IP address is dialled as written)"
                ),
            ));
        }
        let name_ok = !bare.is_empty()
            && bare.len() <= 253
            && bare.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            });
        if !name_ok {
            return Err(c.err(
                key,
                format!(
                    "{h:?} is not a host name; write e.g. \"auth.docker.io\" (no scheme, no port), or [\"*\"] for every host"
                ),
            ));
        }
    }
    if let Some(r) = &inst.resolver
        && crate::config::instance::parse_resolver(r).is_none()
    {
        return Err(c.err(
            k("resolver"),
            format!(
                "{r:?} is not an IP address with an optional port; write e.g. \"223.5.5.5:53\" or \"223.5.5.5\""
            ),
        ));
    }
    Ok(())
}

/// `canary`, `canary_credentials_file` and `canary_credentials` of one instance.
pub(super) fn check_canary(
    c: &Checker<'_>,
    i: usize,
    inst: &InstanceConfig,
) -> Result<(), ModelError> {
    let k = |f: &str| format!("instance[{i}].{f}");
    let Some(cy) = &inst.canary else {
        for (key, set) in [
            (
                "canary_credentials_file",
                inst.canary_credentials_file.is_some(),
            ),
            ("canary_credentials", inst.canary_credentials.is_some()),
        ] {
            if set {
                return Err(c.err(
                    k(key),
                    "credentials without a canary; add canary = { repository = \"...\", reference = \"...\" }",
                ));
            }
        }
        return Ok(());
    };
    let repo_ok = !cy.repository.is_empty()
        && cy.repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        });
    if !repo_ok {
        return Err(c.err(
            k("canary.repository"),
            format!(
                "{:?} is not a repository name (lower-case path components of [a-z0-9._-], e.g. \"ops/canary\")",
                cy.repository
            ),
        ));
    }
    let tag_ok = |t: &str| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && t.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    };
    let digest_ok = |d: &str| {
        d.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !(tag_ok(&cy.reference) || digest_ok(&cy.reference)) {
        return Err(c.err(
            k("canary.reference"),
            format!(
                "{:?} is neither a tag nor a sha256 digest (e.g. \"canary\" or \"sha256:<64 hex>\")",
                cy.reference
            ),
        ));
    }
    let interval = canary_interval(inst);
    let timeout = cy
        .timeout
        .unwrap_or(crate::config::instance::DEFAULT_CANARY_TIMEOUT);
    if interval.is_zero() {
        return Err(c.err(k("canary.interval"), "must be longer than 0s"));
    }
    if timeout.is_zero() {
        return Err(c.err(k("canary.timeout"), "must be longer than 0s"));
    }
    if timeout > interval {
        return Err(c.err(
            k("canary.timeout"),
            format!(
                "{} is longer than the canary interval {}; keep timeout <= interval",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    if inst.canary_credentials_file.is_some() && inst.canary_credentials.is_some() {
        return Err(c.err(
            k("canary_credentials"),
            "give canary_credentials_file or canary_credentials, not both",
        ));
    }
    if let Some(acr) = &inst.canary_credentials {
        if !acr.acr_instance.starts_with("cri-") {
            return Err(c.err(
                k("canary_credentials.acr_instance"),
                format!(
                    "{:?} is not an ACR Enterprise Edition instance id (cri-...)",
                    acr.acr_instance
                ),
            ));
        }
        if acr.region.trim().is_empty() {
            return Err(c.err(
                k("canary_credentials.region"),
                "empty region; write e.g. \"cn-hangzhou\"",
            ));
        }
        if let Some(u) = &acr.endpoint
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(c.err(
                k("canary_credentials.endpoint"),
                format!("{u:?} is not an http(s) URL"),
            ));
        }
    }
    Ok(())
}

/// The canary interval in force: as configured, else the instance's interval but at
/// least 10 s.
pub fn canary_interval(inst: &InstanceConfig) -> std::time::Duration {
    inst.canary
        .as_ref()
        .and_then(|c| c.interval)
        .unwrap_or_else(|| {
            inst.interval
                .max(crate::config::instance::MIN_DEFAULT_CANARY_INTERVAL)
        })
}

/// `replication_max_lag` needs a canary on every target of the endpoint.
pub(super) fn check_replication(
    c: &Checker<'_>,
    i: usize,
    ep: &Endpoint,
    instances: &[InstanceConfig],
) -> Result<(), ModelError> {
    let Some(lag) = ep.replication_max_lag else {
        return Ok(());
    };
    if lag.is_zero() {
        return Err(c.err(
            format!("endpoint[{i}].replication_max_lag"),
            "must be longer than 0s (e.g. \"10m\")",
        ));
    }
    for t in ep.targets.iter().flatten() {
        if let Some((n, _)) = instances
            .iter()
            .enumerate()
            .find(|(_, x)| x.id == t.instance && x.canary.is_none())
        {
            return Err(c.err(
                format!("endpoint[{i}].replication_max_lag"),
                format!(
                    "needs a canary on every target, and instance {:?} (instance[{n}]) has none; add canary = {{ repository = \"...\", reference = \"...\" }} to it",
                    t.instance
                ),
            ));
        }
    }
    Ok(())
}

/// Every other file and directory the config names exists with the right type (so that
/// `check`, `serve` and `reload` reject what the daemon could not use), with its key path.
/// Files the daemon creates (the admin token, the state directory) need a place to be
/// created: an existing directory, or a path whose nearest existing ancestor is one.
pub(super) fn check_files(c: &Checker<'_>, loaded: &LoadedConfig) -> Result<(), ModelError> {
    let cfg = &loaded.config;
    for (i, inst) in cfg.instances.iter().enumerate() {
        if let Some(ca) = &inst.ca_file {
            check_ca_file(c, &format!("instance[{i}].ca_file"), &loaded.resolve(ca))?;
        }
    }
    for (i, k) in cfg.tsig_keys.iter().enumerate() {
        check_file(c, &format!("tsig_key[{i}].file"), &loaded.resolve(&k.file))?;
    }
    let token = loaded.resolve(&cfg.server.admin_token_file);
    if token.is_dir() {
        return Err(c.err(
            "server.admin_token_file",
            format!("{}: is a directory; name the token file", token.display()),
        ));
    }
    if token.exists() {
        check_file(c, "server.admin_token_file", &token)?;
    } else if let Some(dir) = token.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_creatable_dir(c, "server.admin_token_file", &token, dir)?;
    }
    let state = loaded.resolve(&cfg.server.state_dir);
    check_creatable_dir(c, "server.state_dir", &state, &state)?;
    Ok(())
}

/// An I/O error without the `(os error N)` suffix.
pub(super) fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(pos) if s.ends_with(')') => s[..pos].to_string(),
        _ => s,
    }
}

/// A readable regular file.
pub(super) fn check_file(c: &Checker<'_>, key: &str, path: &Path) -> Result<(), ModelError> {
    let f = std::fs::File::open(path)
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    let meta = f
        .metadata()
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    if !meta.is_file() {
        return Err(c.err(key, format!("{}: is not a regular file", path.display())));
    }
    Ok(())
}

/// A readable file of PEM certificates (at least one), as the prober loads it.
pub(super) fn check_ca_file(c: &Checker<'_>, key: &str, path: &Path) -> Result<(), ModelError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    check_file(c, key, path)?;
    let pem = std::fs::read(path)
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| c.err(key, format!("{}: invalid PEM: {e}", path.display())))?;
        n += 1;
    }
    if n == 0 {
        return Err(c.err(
            key,
            format!(
                "{}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// A directory that exists, or can be created: its nearest existing ancestor is a directory.
/// `shown` is the configured path (the directory itself, or the file to create in it).
pub(super) fn check_creatable_dir(
    c: &Checker<'_>,
    key: &str,
    shown: &Path,
    dir: &Path,
) -> Result<(), ModelError> {
    let mut p = Some(dir);
    while let Some(d) = p {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if d == shown => {
                return Err(c.err(key, format!("{}: not a directory", shown.display())));
            }
            Ok(_) => {
                return Err(c.err(
                    key,
                    format!("{}: {} is not a directory", shown.display(), d.display()),
                ));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                p = d.parent().filter(|x| !x.as_os_str().is_empty());
            }
            Err(e) => {
                return Err(c.err(
                    key,
                    format!("{}: {}: {}", shown.display(), d.display(), io_msg(&e)),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn check_host_port(c: &Checker<'_>, key: &str, s: &str) -> Result<(), ModelError> {
    let ok = s
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(c.err(
            key,
            format!("{s:?} is not host:port (e.g. \"a-registry.cn-hangzhou.cr.aliyuncs.com:443\")"),
        ))
    }
}
