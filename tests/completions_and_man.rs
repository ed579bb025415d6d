//! `regdns completions` and `regdns man`: the bash completion script, loaded into a real
//! bash, completes `regdns fa<TAB>` to `failover` and `failback` (and flags and values of a
//! subcommand); the zsh and fish scripts are syntax-checked when those shells are installed;
//! every manual page renders with `man -l` without a single warning (the check lintian
//! makes), and that check does see a broken page.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::daemon::run_bounded;
use support::proc::temp_dir;

/// `regdns ARGS` with its stdout written to `out` (scripts are larger than a pipe buffer).
fn regdns_to_file(args: &[&str], out: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args(args);
    let file = std::fs::File::create(out).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("regdns {args:?} ran longer than 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "regdns {args:?}: {status}\n{err}");
}

/// What bash's programmable completion offers for the words `line` (the cursor at the end of
/// the last word) with `script` loaded: the function `complete -p regdns` names is called as
/// readline would call it on TAB, and COMPREPLY is printed one entry a line.
fn complete(script: &Path, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        r#"set -e
source "$1"
spec=$(complete -p regdns)
fn=$(printf '%s\n' "$spec" | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || {{ echo "no completion function in: $spec" >&2; exit 3; }}
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
COMP_KEY=9
prev=""
[ "$COMP_CWORD" -gt 0 ] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
"$fn" regdns "${{COMP_WORDS[COMP_CWORD]}}" "$prev" || true
printf '%s\n' "${{COMPREPLY[@]}}"
"#
    );
    let mut cmd = Command::new("bash");
    cmd.arg("--norc")
        .arg("--noprofile")
        .arg("-c")
        .arg(program)
        .arg("bash")
        .arg(script);
    let out = run_bounded(cmd, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "bash completion of {line:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    let dir = temp_dir("completions");
    let script = dir.path().join("regdns.bash");
    regdns_to_file(&["completions", "bash"], &script);
    assert_eq!(
        complete(&script, &["regdns", "fa"]),
        ["failback", "failover"],
        "regdns fa<TAB>"
    );
    assert_eq!(complete(&script, &["regdns", "rel"]), ["release", "reload"]);
    let flags = complete(&script, &["regdns", "failover", "--t"]);
    for f in ["--to", "--token-file", "--timeout"] {
        assert!(flags.contains(&f.to_string()), "{f} not in {flags:?}");
    }
    let shells = complete(&script, &["regdns", "completions", ""]);
    for s in ["bash", "fish", "zsh"] {
        assert!(shells.contains(&s.to_string()), "{s} not in {shells:?}");
    }
    // Nothing is offered for a prefix no subcommand has.
    assert_eq!(complete(&script, &["regdns", "fz"]), Vec::<String>::new());
}

#[test]
fn zsh_and_fish_scripts_parse_when_those_shells_are_installed() {
    let dir = temp_dir("completions");
    for (shell, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let script = dir.path().join(format!("regdns.{shell}"));
        regdns_to_file(&["completions", shell], &script);
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(
            text.contains("failover") && text.contains("failback"),
            "{shell}"
        );
        let Some(bin) = support::proc::which(shell) else {
            eprintln!("SKIPPED: {shell} is not installed; only the script's content is checked");
            continue;
        };
        let mut cmd = Command::new(bin);
        cmd.args(check).arg(&script);
        let out = run_bounded(cmd, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{shell} rejects its script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `man --warnings -l` of `page`, as lintian runs it: the rendered text and the warnings.
fn render(page: &Path) -> (String, String) {
    let mut cmd = Command::new(support::proc::require("man", "man-db"));
    cmd.args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env("MANROFFSEQ", "")
        .env("MANWIDTH", "80");
    let warnings = run_bounded(cmd, Duration::from_secs(30));
    let mut cmd = Command::new("man");
    cmd.args(["-l"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat");
    let text = run_bounded(cmd, Duration::from_secs(30));
    assert!(text.status.success(), "man -l {}", page.display());
    (
        String::from_utf8_lossy(&text.stdout).to_string(),
        String::from_utf8_lossy(&warnings.stderr).to_string(),
    )
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_man_page_renders_without_warnings() {
    let dir = temp_dir("man");
    let out = dir.path().join("pages");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.args(["man", "--dir"]).arg(&out);
    let o = run_bounded(cmd, Duration::from_secs(20));
    assert!(o.status.success(), "{o:?}");
    let pages = pages(&out);
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for want in [
        "regdns.1",
        "regdns-serve.1",
        "regdns-check.1",
        "regdns-failover.1",
        "regdns-failback.1",
        "regdns-publish-plan.1",
        "regdns-completions.1",
        "regdns-man.1",
    ] {
        assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
    }
    for page in &pages {
        let (text, warnings) = render(page);
        assert!(
            warnings.trim().is_empty(),
            "{} renders with warnings:\n{warnings}",
            page.display()
        );
        assert!(text.contains("NAME"), "{}:\n{text}", page.display());
    }
    let (main, _) = render(&out.join("regdns.1"));
    for section in [
        "SYNOPSIS",
        "SUBCOMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
    ] {
        assert!(main.contains(section), "regdns(1) lacks {section}:\n{main}");
    }
    for sub in ["serve", "failover", "failback", "completions", "man"] {
        assert!(main.contains(&format!("regdns-{sub}(1)")), "{sub}:\n{main}");
    }
    // `regdns man` prints the same regdns(1).
    let printed = dir.path().join("printed.1");
    regdns_to_file(&["man"], &printed);
    assert_eq!(
        std::fs::read(&printed).unwrap(),
        std::fs::read(out.join("regdns.1")).unwrap()
    );
    // Sensitivity: the same check reports a broken page.
    let broken = dir.path().join("broken.1");
    let text = std::fs::read_to_string(out.join("regdns.1")).unwrap();
    std::fs::write(
        &broken,
        text.replace(".SH FILES", ".SH FILES\n.XQ bogus\n\\fQ"),
    )
    .unwrap();
    let (_, warnings) = render(&broken);
    assert!(
        !warnings.trim().is_empty(),
        "a broken page should produce warnings"
    );
}
