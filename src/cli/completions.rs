//! `regdns completions SHELL`: the shell completion script for bash, zsh, fish (and the other
//! shells clap_complete knows), generated from the same clap definition the binary parses
//! with, so it never lists a subcommand or flag that does not exist.
//!
//! Where the scripts go: bash `/usr/share/bash-completion/completions/regdns`, zsh
//! `/usr/share/zsh/vendor-completions/_regdns`, fish
//! `/usr/share/fish/vendor_completions.d/regdns.fish` (what the Debian package installs), or
//! `source <(regdns completions bash)` in a shell.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

/// Flags of `regdns completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

pub(super) fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "regdns", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
