//! `regdns demo`: the whole product on one machine with no setup. Writes the example
//! config and zone from `zones/demo/` into a working directory and serves DNS on
//! 127.0.0.1:5353, printing the commands to try.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::daemon::{self, RunOptions};
use crate::model;

const DEMO_CONFIG: &str = include_str!("../../zones/demo/regdns.toml");
const DEMO_ZONE: &str = include_str!("../../zones/demo/registry.io.zone");

/// Writes the demo files into `dir`; returns the config path.
pub(crate) fn write_files(
    dir: &Path,
    listen: SocketAddr,
    ports: (u16, u16),
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let cfg = DEMO_CONFIG
        .replace(
            "listen = [\"127.0.0.1:5353\"]",
            &format!("listen = [\"{listen}\"]"),
        )
        .replace("@HANGZHOU_PORT@", &ports.0.to_string())
        .replace("@ZHANGJIAKOU_PORT@", &ports.1.to_string());
    let path = dir.join("regdns.toml");
    std::fs::write(&path, cfg)?;
    std::fs::write(dir.join("registry.io.zone"), DEMO_ZONE)?;
    Ok(path)
}

pub(super) fn run(listen: SocketAddr, dir: Option<PathBuf>) -> ExitCode {
    super::init_logging(crate::config::LogFormat::Text);
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = std::env::temp_dir().join(format!("regdns-demo-{}", std::process::id()));
            tmp
        }
    };
    let config = match write_files(&dir, listen, (5001, 5002)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: cannot write the demo files into {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let m = match model::load(&config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: demo config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("regdns demo: files in {}", dir.display());
    println!(
        "NOTE: health checks are not wired in yet: the demo serves fixed decisions (the first target of each view)."
    );
    println!();
    println!("Try, in another terminal:");
    println!(
        "  dig @{} -p {} cross-region.registry.io A          # default view: CNAME of the public name",
        listen.ip(),
        listen.port()
    );
    println!(
        "  dig -b 127.0.0.2 @{} -p {} cross-region.registry.io A   # vpc-demo view: A of the internal address",
        listen.ip(),
        listen.port()
    );
    println!(
        "  dig @{} -p {} registry.io SOA +tcp",
        listen.ip(),
        listen.port()
    );
    println!("  regdns check -c {}", config.display());
    println!("  regdns status -c {}", config.display());
    println!(
        "  regdns failover cross-region.registry.io --to zhangjiakou --for 5m --reason test -c {}",
        config.display()
    );
    println!("  regdns release --all -c {}", config.display());
    println!("  curl -s http://127.0.0.1:8053/metrics | grep ^regdns_");
    println!("Ctrl-C stops the demo.");
    let opts = RunOptions {
        listen: Some(vec![listen]),
    };
    let res = rt.block_on(daemon::run(m, config, opts));
    if dir.starts_with(std::env::temp_dir()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
