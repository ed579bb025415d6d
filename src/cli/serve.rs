//! `regdns serve -c FILE`: load, validate, serve until SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use crate::daemon::{self, RunOptions};
use crate::model;

pub(super) fn run(config: &Path, listen: Vec<SocketAddr>) -> ExitCode {
    let m = match model::load(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    super::init_logging(m.server.log_format);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        listen: (!listen.is_empty()).then_some(listen),
    };
    let result = rt.block_on(daemon::run(m, config.to_path_buf(), opts));
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
