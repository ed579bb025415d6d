//! The token-service (`auth`) check: GET the Bearer realm of the `/v2/` challenge
//! anonymously, as a client would before pulling.

use std::time::Instant;

use super::CheckResult;
use super::challenge::{Challenge, token_url};
use super::http::Prober;

impl Prober {
    /// The `auth` check: GET the Bearer realm anonymously; the token service
    /// must answer 200, 401 or 403 with a non-empty body.
    pub async fn check_auth(&self, v2_url: &url::Url, ch: &Challenge) -> CheckResult {
        let start = Instant::now();
        let realm = ch.param("realm").unwrap_or_default().to_string();
        let (ok, detail) = match token_url(v2_url, ch) {
            Err(e) => (false, e),
            Ok(u) => match self.get(&u).await {
                Err(reason) => (false, format!("token service {realm}: {reason}")),
                Ok(resp) => {
                    let code = resp.status.as_u16();
                    if !matches!(code, 200 | 401 | 403) {
                        (false, format!("token service {realm} answered {code}"))
                    } else if resp.body.iter().all(u8::is_ascii_whitespace) {
                        (
                            false,
                            format!("token service {realm} answered {code} with an empty body"),
                        )
                    } else {
                        (true, format!("token service {code}"))
                    }
                }
            },
        };
        CheckResult {
            check: "auth".into(),
            ok,
            latency: start.elapsed(),
            detail,
        }
    }
}
