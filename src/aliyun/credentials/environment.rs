//! The environment source: a long-lived AccessKey (or an STS token) in
//! `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` (/ `ALIBABA_CLOUD_SECURITY_TOKEN`).

use super::{Credentials, Outcome, Source};
use crate::config::env::Env;

pub(super) fn env_source(env: &Env) -> Outcome {
    const ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
    const SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
    match (env.get(ID), env.get(SECRET)) {
        (None, None) => Outcome::Skip(format!("{ID} not set")),
        (Some(_), None) => Outcome::Failed(format!("{SECRET} not set (but {ID} is)")),
        (None, Some(_)) => Outcome::Failed(format!("{ID} not set (but {SECRET} is)")),
        (Some(id), Some(secret)) => {
            let token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN").map(str::to_string);
            let name = if token.is_some() {
                "environment (sts token)"
            } else {
                "environment"
            };
            Outcome::Found(Box::new((
                Source::Static,
                name.into(),
                Credentials {
                    access_key_id: id.into(),
                    access_key_secret: secret.into(),
                    security_token: token,
                    expiration: None,
                },
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_partial_is_a_configured_failure() {
        let env = Env::from_pairs([("ALIBABA_CLOUD_ACCESS_KEY_ID", "x")]);
        assert!(matches!(env_source(&env), Outcome::Failed(_)));
    }
}
