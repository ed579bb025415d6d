//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1) and the token request a Bearer
//! challenge leads to. Pure: no I/O.

/// One authentication challenge: `Bearer realm="…",service="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// As sent (`Bearer`, `Basic`, …).
    pub scheme: String,
    /// Parameters in order, names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether the scheme is `Bearer` (case-insensitive).
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// Value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the first challenge of a `WWW-Authenticate` value (RFC 9110
/// §11.6.1: `scheme [token68 | param *("," param)]`). A second challenge in
/// the same value ends the parameters. `None` for an empty value.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    parse_one(value).map(|(c, _)| c)
}

/// Parses every challenge of a `WWW-Authenticate` value, in order
/// (`Basic realm="x", Bearer realm="y",service="z"` gives two). A token68
/// (`Negotiate abc==`) is kept as the parameter `token68`.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = value;
    // Each round consumes at least the scheme, so this ends; the bound is a guard.
    for _ in 0..32 {
        match parse_one(rest) {
            Some((c, r)) => {
                out.push(c);
                rest = r;
            }
            None => break,
        }
    }
    out
}

/// Every challenge of every `WWW-Authenticate` header of a response.
pub fn challenges_of(headers: &reqwest::header::HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// One challenge and the text after it (the next challenge, if any).
fn parse_one(value: &str) -> Option<(Challenge, &str)> {
    let s = value.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
    let end = s
        .find(|c: char| c.is_ascii_whitespace() || c == ',')
        .unwrap_or(s.len());
    let scheme = &s[..end];
    if scheme.is_empty() {
        return None;
    }
    let mut rest = &s[end..];
    let mut params = Vec::new();
    if let Some((token68, after)) = token68(rest) {
        params.push(("token68".to_string(), token68.to_string()));
        return Some((
            Challenge {
                scheme: scheme.to_string(),
                params,
            },
            after,
        ));
    }
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        if name.is_empty()
            || name.contains(|c: char| c.is_ascii_whitespace() || c == ',')
            || after.is_empty()
            || after.starts_with('=')
        {
            // The next challenge's scheme: stop here.
            break;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut consumed = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        consumed = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            value = v;
            rest = &q[consumed..];
        } else {
            let e = rest.find(',').unwrap_or(rest.len());
            value = rest[..e].trim().to_string();
            rest = &rest[e..];
        }
        params.push((name.to_ascii_lowercase(), value));
    }
    Some((
        Challenge {
            scheme: scheme.to_string(),
            params,
        },
        rest,
    ))
}

/// A token68 right after the scheme (`abc==`), followed by the end or a comma; returns
/// it and the text after it.
fn token68(rest: &str) -> Option<(&str, &str)> {
    let t = rest.trim_start();
    if t.len() == rest.len() && !rest.is_empty() {
        return None; // no space after the scheme: not a token68
    }
    let end = t
        .find(|c: char| c.is_ascii_whitespace() || c == ',')
        .unwrap_or(t.len());
    let tok = &t[..end];
    let body = tok.trim_end_matches('=');
    let is_token68 = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
    let next = t[end..].trim_start();
    if is_token68 && (next.is_empty() || next.starts_with(',')) {
        Some((tok, next))
    } else {
        None
    }
}

/// The anonymous token request registries answer: `realm?service=…&scope=`.
pub(super) fn token_url(base: &url::Url, ch: &Challenge) -> Result<url::Url, String> {
    token_request(base, ch, "")
}

/// The token request of a Bearer challenge: `realm?service=…&scope=<scope>` (the realm may be
/// relative to `base`).
pub(super) fn token_request(
    base: &url::Url,
    ch: &Challenge,
    scope: &str,
) -> Result<url::Url, String> {
    let realm = ch
        .param("realm")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| "Bearer challenge without realm".to_string())?;
    let mut u = base
        .join(realm)
        .map_err(|e| format!("invalid realm {realm:?}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("invalid realm {realm:?}: not http(s)"));
    }
    {
        let mut q = u.query_pairs_mut();
        if let Some(service) = ch.param("service") {
            q.append_pair("service", service);
        }
        q.append_pair("scope", scope);
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_bearer() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        )
        .unwrap();
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
    }

    #[test]
    fn parses_spaces_unquoted_and_escapes() {
        let c = parse_challenge(r#"  bearer  Realm = "a\"b" , service=svc ,scope="x,y""#).unwrap();
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("a\"b"));
        assert_eq!(c.param("service"), Some("svc"));
        assert_eq!(c.param("scope"), Some("x,y"));
    }

    #[test]
    fn basic_and_second_challenge() {
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert!(!c.is_bearer());
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));

        let c = parse_challenge(r#"Basic realm="x", Bearer realm="y""#).unwrap();
        assert_eq!(c.params, vec![("realm".to_string(), "x".to_string())]);

        let c = parse_challenge("Negotiate abc==").unwrap();
        assert_eq!(c.scheme, "Negotiate");
        assert_eq!(c.param("token68"), Some("abc=="));
        assert!(parse_challenge("  ").is_none());
    }

    #[test]
    fn several_challenges_in_one_value() {
        let cs = parse_challenges(
            r#"Basic realm="a, b", Bearer realm="https://t/token",service="s, t",scope="repository:x:pull""#,
        );
        assert_eq!(cs.len(), 2, "{cs:?}");
        assert_eq!(cs[0].scheme, "Basic");
        assert_eq!(cs[0].param("realm"), Some("a, b"));
        assert!(cs[1].is_bearer());
        assert_eq!(cs[1].param("service"), Some("s, t"));
        assert_eq!(cs[1].param("scope"), Some("repository:x:pull"));
        let cs = parse_challenges(r#"Negotiate abc==, Bearer realm="r""#);
        assert_eq!(cs.len(), 2, "{cs:?}");
        assert_eq!(cs[1].param("realm"), Some("r"));
        assert!(parse_challenges("").is_empty());
        let cs = parse_challenges("Basic, Bearer");
        assert_eq!(
            cs.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["Basic", "Bearer"]
        );
    }

    #[test]
    fn missing_realm_and_empty_values() {
        let c = parse_challenge(r#"Bearer service="registry""#).unwrap();
        assert_eq!(c.param("realm"), None);
        let c = parse_challenge(r#"Bearer realm="""#).unwrap();
        assert_eq!(c.param("realm"), Some(""));
    }

    #[test]
    fn unterminated_quote_takes_the_rest() {
        let c = parse_challenge(r#"Bearer realm="http://x/token"#).unwrap();
        assert_eq!(c.param("realm"), Some("http://x/token"));
    }

    #[test]
    fn token_url_adds_service_and_empty_scope() {
        let base: url::Url = "https://r.example/v2/".parse().unwrap();
        let c = parse_challenge(r#"Bearer realm="https://auth.example/token?x=1",service="r e""#)
            .unwrap();
        assert_eq!(
            token_url(&base, &c).unwrap().as_str(),
            "https://auth.example/token?x=1&service=r+e&scope="
        );
        let rel = parse_challenge(r#"Bearer realm="/token""#).unwrap();
        assert_eq!(
            token_url(&base, &rel).unwrap().as_str(),
            "https://r.example/token?scope="
        );
        let none = parse_challenge(r#"Bearer service="x""#).unwrap();
        assert!(token_url(&base, &none).is_err());
        let ftp = parse_challenge(r#"Bearer realm="ftp://x/""#).unwrap();
        assert!(token_url(&base, &ftp).is_err());
    }
}
