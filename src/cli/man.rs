//! `regdns man`: the manual pages, generated from the clap definition (clap_mangen) plus the
//! sections clap does not know (exit status, environment, files, see also). Without
//! `--dir` it prints `regdns(1)`; with `--dir DIR` it writes `regdns.1` and one page per
//! subcommand (`regdns-failover.1`, `regdns-publish-plan.1`, …) there, as the Debian package
//! installs them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

/// Flags of `regdns man`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write regdns.1 and a page per subcommand into this directory instead of printing
    /// regdns(1).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Roff of the sections of `regdns(1)` that clap does not generate.
const MAIN_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
success (\fBstatus\fR: and no endpoint is degraded)
.TP
\fB1\fR
runtime or API error (refused as invalid, could not persist, reload rejected)
.TP
\fB2\fR
usage or configuration error (bad flags, unreadable config, missing or wrong token)
.TP
\fB3\fR
the daemon could not be reached
.TP
\fB4\fR
not found (endpoint, view, instance, override)
.TP
\fB5\fR
\fBstatus\fR only: at least one endpoint is degraded, or the cluster is degraded
.SH ENVIRONMENT
.TP
\fBREGDNS_ADMIN_URL\fR, \fBREGDNS_TOKEN_FILE\fR
the admin API and its token file for the operator commands (instead of \fB\-c\fR)
.TP
\fBREGDNS_\fISECTION\fB__\fIKEY\fR
overrides the configuration key \fIsection.key\fR, e.g. \fBREGDNS_SERVER__LOG_FORMAT=json\fR
.TP
\fBRUST_LOG\fR
log filter of \fBserve\fR (default \fBinfo\fR)
.SH FILES
.TP
\fI/etc/regdns/regdns.toml\fR
the configuration (default of \fB\-c\fR)
.TP
\fI/var/lib/regdns/\fR
the state directory: \fIstate.json\fR (decisions, overrides), \fIevents.jsonl\fR (the journal) and, with the shipped configuration, \fIadmin.token\fR
.TP
\fI/usr/lib/systemd/system/regdns.service\fR
the systemd unit of the Debian package, with its drop\-in \fIregdns.service.d/debian.conf\fR (\fBsystemctl reload regdns\fR sends SIGHUP)
.SH "SEE ALSO"
.BR regdns\-serve (1),
.BR regdns\-check (1),
.BR regdns\-status (1),
.BR regdns\-failover (1),
.BR regdns\-events (1);
the admin API description at \fIhttp://127.0.0.1:8053/api/openapi.json\fR;
\fI/usr/share/doc/regdns/\fR
"#;

pub(super) fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    match a.dir {
        None => {
            let mut out = Vec::new();
            render_main(&cmd, &mut out)?;
            std::io::stdout()
                .write_all(&out)
                .context("cannot write to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut main = Vec::new();
            render_main(&cmd, &mut main)?;
            write(&dir, "regdns.1", &main)?;
            for sub in cmd.get_subcommands() {
                write_sub(&dir, sub)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn man(cmd: &clap::Command) -> Man {
    Man::new(cmd.clone())
        .source(format!("regdns {}", env!("CARGO_PKG_VERSION")))
        .manual("regdns manual")
}

/// `regdns(1)`: clap's page with [`MAIN_EXTRA`] before its VERSION section.
fn render_main(cmd: &clap::Command, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut page = Vec::new();
    man(cmd).render(&mut page)?;
    let page = String::from_utf8(page).context("clap_mangen wrote invalid UTF-8")?;
    let at = page.find(".SH VERSION").unwrap_or(page.len());
    out.extend_from_slice(&page.as_bytes()[..at]);
    out.extend_from_slice(MAIN_EXTRA.as_bytes());
    out.extend_from_slice(&page.as_bytes()[at..]);
    Ok(())
}

/// The page of `sub` (and of its own subcommands), with a SEE ALSO back to `regdns(1)`.
fn write_sub(dir: &Path, sub: &clap::Command) -> anyhow::Result<()> {
    let m = man(sub);
    let mut page = Vec::new();
    m.render(&mut page)?;
    page.extend_from_slice(b".SH \"SEE ALSO\"\n.BR regdns (1)\n");
    write(dir, &m.get_filename(), &page)?;
    for nested in sub.get_subcommands() {
        write_sub(dir, nested)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, page: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}
