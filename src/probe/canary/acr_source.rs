//! Where the pull credentials of a canary with `CanaryAuth::Acr` come from: a temporary
//! registry login of an ACR Enterprise Edition instance ([`crate::probe::acr`]), cached
//! and refreshed.

use super::{CanaryAuth, PullCredentials};

/// Temporary pull credentials of an ACR Enterprise Edition instance, from the Container
/// Registry API (`GetAuthorizationToken`, [`crate::probe::acr`]): the login is built from the
/// Alibaba Cloud credential chain on first use (and again after a failure), cached and
/// refreshed before it expires. No registry password is stored on the host.
pub struct AcrSource {
    cfg: crate::probe::acr::AcrLoginConfig,
    login: tokio::sync::Mutex<Option<crate::probe::acr::AcrLogin>>,
}

impl std::fmt::Debug for AcrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrSource")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl AcrSource {
    /// A source for the instance named by `auth` (`None` for other kinds of auth).
    pub fn for_auth(auth: &CanaryAuth) -> Option<AcrSource> {
        match auth {
            CanaryAuth::Acr {
                instance_id,
                region,
                endpoint,
            } => Some(AcrSource {
                cfg: crate::probe::acr::AcrLoginConfig {
                    instance_id: instance_id.clone(),
                    region: region.clone(),
                    endpoint: endpoint.clone(),
                },
                login: tokio::sync::Mutex::new(None),
            }),
            _ => None,
        }
    }

    /// A source around an existing login (tests, or a login shared by several instances).
    pub fn from_login(login: crate::probe::acr::AcrLogin) -> AcrSource {
        AcrSource {
            cfg: login.config().clone(),
            login: tokio::sync::Mutex::new(Some(login)),
        }
    }

    /// The current registry login as pull credentials.
    pub async fn credentials(&self) -> Result<Option<PullCredentials>, String> {
        let mut guard = self.login.lock().await;
        if guard.is_none() {
            let env = crate::config::env::Env::from_process();
            let login = crate::probe::acr::AcrLogin::from_chain(self.cfg.clone(), &env)
                .await
                .map_err(|e| format!("ACR login: {e}"))?;
            *guard = Some(login);
        }
        let Some(login) = guard.as_ref() else {
            return Err("ACR login: not available".into());
        };
        let l = login.login().await.map_err(|e| format!("ACR login: {e}"))?;
        Ok(Some(PullCredentials {
            username: l.username,
            password: l.password,
        }))
    }
}
