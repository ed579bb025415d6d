//! `regdns agent -c FILE`: load, check that `[cluster]` and `[agent]` are there, observe
//! until SIGTERM. A single-threaded runtime: an agent only probes and talks to etcd, and
//! stays small (docs/health-checks.md#agents).

use std::path::Path;
use std::process::ExitCode;

use crate::daemon::agent;
use crate::model;

pub(super) fn run(config: &Path) -> ExitCode {
    let m = match model::load(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    if let Err(e) = agent::check(&m) {
        eprintln!("error: {}: {e}", config.display());
        return ExitCode::from(super::EXIT_CONFIG);
    }
    super::init_logging(m.server.log_format);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(agent::run(m, config.to_path_buf()));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
