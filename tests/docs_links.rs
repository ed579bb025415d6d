//! Documentation link check (std only): the repository must stand on its own.
//!
//! (a) Every relative link `[x](path#anchor)` in every `*.md` file resolves to an existing
//!     file or directory, and for a `.md` target with an anchor, a heading of that target
//!     produces the anchor (GitHub's rules; a bare `#anchor` is checked in the same file).
//! (b) Every `docs/….md#anchor` reference in the files under `src/`, `tests/`, `deploy/`,
//!     `examples/`, `bench/` and `scripts/` resolves likewise, from the repository root.
//! (c) No text file of the repository points outside it: no ".." + "/shared", no "design" + " §"
//!     (the section references of a design document that is not in the repository).
//!
//! `target/` and `.git/` are skipped everywhere.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The strings (c) forbids, built so that this file does not contain them itself.
fn forbidden() -> [String; 2] {
    [format!("..{}shared", '/'), format!("design{}", " §")]
}

/// Directories whose files are searched for `docs/….md` references (b).
const CODE_DIRS: [&str; 6] = ["src", "tests", "deploy", "examples", "bench", "scripts"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, skipping `target/` and `.git/` directories, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != "target" && name != ".git" {
                    stack.push(p);
                }
            } else if ft.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The anchor GitHub gives a heading: lower case; letters, digits, `-`, `_` and spaces kept,
/// everything else (punctuation, backticks, `§`, `×`) dropped; spaces become `-`.
fn github_anchor(heading: &str) -> String {
    let text = render_links(heading);
    let mut out = String::new();
    for c in text.trim().chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            out.extend(c.to_lowercase());
        } else if c == ' ' {
            out.push('-');
        }
    }
    out
}

/// `[text](url)` → `text` (what a heading with a link renders as).
fn render_links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("](") {
        match rest[i + 2..].find(')') {
            Some(j) => {
                out.push_str(&rest[..i]);
                rest = &rest[i + 2 + j + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out.replace('[', "")
}

/// Lines of a markdown text outside fenced code blocks, with their line numbers (1-based).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let marker = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// Every anchor the headings of a markdown text produce (duplicates get `-1`, `-2`, …).
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        let t = line.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        let after = &t[hashes..];
        if hashes > 6 || !(after.is_empty() || after.starts_with(' ')) {
            continue;
        }
        let base = github_anchor(after.trim().trim_end_matches('#'));
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Removes inline code spans (`` `…` ``) from one line.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// Relative link targets of a markdown text, with line numbers: `[x](target)` outside code
/// blocks and code spans; URLs with a scheme (`https:`, `mailto:`) are not relative.
fn md_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = strip_code_spans(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            let is_url = target
                .split_once(':')
                .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/'));
            if !target.is_empty() && !is_url {
                out.push((n, target.to_string()));
            }
            rest = &after[end..];
        }
    }
    out
}

/// `docs/[A-Za-z0-9_./-]+\.md(#[a-z0-9-]+)?` in any text, as (path, anchor).
fn code_refs(text: &str) -> Vec<(String, Option<String>)> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let is_anchor = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("docs/") {
        let start = from + i;
        let run_len = text[start + 5..]
            .find(|c: char| !is_path(c))
            .unwrap_or(text.len() - start - 5);
        let run = &text[start..start + 5 + run_len];
        // The regex is greedy with backtracking: the longest prefix ending in `.md`, with at
        // least one path character between `docs/` and `.md`.
        match run.rfind(".md").filter(|&j| j > 5) {
            Some(j) => {
                let path = &run[..j + 3];
                let tail = &text[start + j + 3..];
                let anchor = tail.strip_prefix('#').and_then(|t| {
                    let n = t.find(|c: char| !is_anchor(c)).unwrap_or(t.len());
                    (n > 0).then(|| t[..n].to_string())
                });
                out.push((path.to_string(), anchor));
                from = start + j + 3;
            }
            None => from = start + 5,
        }
    }
    out
}

/// `base/rel` with `.` and `..` resolved lexically.
fn join(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks one link target (path and optional anchor) resolved against `base`; `None` when it
/// resolves. `file` is the file the link is in (for a bare `#anchor`).
fn check_target(file: &Path, base: &Path, target: &str) -> Option<String> {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        join(base, path)
    };
    if !dest.exists() {
        return Some(format!("{target}: {} does not exist", dest.display()));
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if dest.extension().is_some_and(|e| e == "md") {
        let text = fs::read_to_string(&dest).unwrap_or_default();
        if !anchors(&text).iter().any(|a| a == anchor) {
            return Some(format!(
                "{target}: no heading of {} produces #{anchor}",
                dest.display()
            ));
        }
    }
    None
}

fn rel<'a>(root: &Path, p: &'a Path) -> std::borrow::Cow<'a, str> {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy()
}

/// (a) for every `*.md` under `root`.
fn check_markdown(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for f in walk(root) {
        if f.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let base = f.parent().unwrap_or(root);
        for (line, target) in md_links(&text) {
            if let Some(p) = check_target(&f, base, &target) {
                problems.push(format!("{}:{line}: {p}", rel(root, &f)));
            }
        }
    }
    problems
}

/// (b) for every file under the code directories of `root`.
fn check_code_refs(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in CODE_DIRS {
        for f in walk(&root.join(dir)) {
            let Ok(text) = fs::read_to_string(&f) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                for (path, anchor) in code_refs(line) {
                    let target = match &anchor {
                        Some(a) => format!("{path}#{a}"),
                        None => path.clone(),
                    };
                    if let Some(p) = check_target(&f, root, &target) {
                        problems.push(format!("{}:{}: {p}", rel(root, &f), n + 1));
                    }
                }
            }
        }
    }
    problems
}

/// (c) for every text file under `root`.
fn check_forbidden(root: &Path) -> Vec<String> {
    let needles = forbidden();
    let mut problems = Vec::new();
    for f in walk(root) {
        let Ok(text) = fs::read_to_string(&f) else {
            continue; // not text
        };
        for (n, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    problems.push(format!(
                        "{}:{}: points outside the repository ({needle:?}): {}",
                        rel(root, &f),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    problems
}

fn report(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s)\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn markdown_links_resolve() {
    report("markdown links", check_markdown(&root()));
}

#[test]
fn docs_references_in_code_resolve() {
    report("docs/ references in code", check_code_refs(&root()));
}

#[test]
fn nothing_points_outside_the_repository() {
    report(
        "references outside the repository",
        check_forbidden(&root()),
    );
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        github_anchor("11. Performance targets"),
        "11-performance-targets"
    );
    assert_eq!(github_anchor("The `/v2/` probe"), "the-v2-probe");
    assert_eq!(
        github_anchor("`[alidns]` and `[rfc2136]`"),
        "alidns-and-rfc2136"
    );
    assert_eq!(
        github_anchor(
            "Transfers, TSIG and NOTIFY: hidden primary with NSD, Knot or BIND secondaries"
        ),
        "transfers-tsig-and-notify-hidden-primary-with-nsd-knot-or-bind-secondaries"
    );
    assert_eq!(github_anchor("A § B × c_d"), "a--b--c_d");
    assert_eq!(
        github_anchor("See [the page](x.md) now"),
        "see-the-page-now"
    );
    let text = "# Top\n## Same\n```\n# not a heading\n```\n## Same\n#nospace\n";
    assert_eq!(anchors(text), ["top", "same", "same-1"]);
}

#[test]
fn link_extractor_finds_relative_links_only() {
    let text = "See [a](a.md#x) and [`b`](../b.md \"title\") and [web](https://x.org/y.md).\n\
                `[code](c.md)` is code, [anchor](#here), [mail](mailto:a@b)\n\
                ```\n[fenced](d.md)\n```\n";
    let links: Vec<String> = md_links(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(links, ["a.md#x", "../b.md", "#here"]);
    assert_eq!(md_links("x\n[y](z.md)")[0].0, 2);
}

/// `docs` written so that this file holds no `docs/` reference of its own for check (b).
const D: &str = "doc";

#[test]
fn code_reference_extractor_matches_the_pattern() {
    let refs = code_refs(&format!(
        "//! see {D}s/design.md#5-health-of-an-instance. and ({D}s/providers/alidns.md)"
    ));
    assert_eq!(
        refs,
        [
            (
                format!("{D}s/design.md"),
                Some("5-health-of-an-instance".to_string())
            ),
            (format!("{D}s/providers/alidns.md"), None),
        ]
    );
    assert!(code_refs(&format!("{D}s/ and {D}s/.md and {D}s/readme.txt")).is_empty());
    assert_eq!(
        code_refs(&format!("../{D}s/a.md#B"))[0],
        (format!("{D}s/a.md"), None)
    );
}

#[test]
fn planted_broken_links_are_reported() {
    let dir = std::env::temp_dir().join(format!("regdns-docs-links-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(format!("{D}s"))).unwrap();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join(format!("{D}s/b.md")), "# Yes here\n").unwrap();
    fs::write(
        dir.join("a.md"),
        format!(
            "[ok]({D}s/b.md#yes-here) [gone](missing.md) [bad]({D}s/b.md#nope) [self](#none)\n"
        ),
    )
    .unwrap();
    let outside = format!("//! see {}/{D}s/x.md and {D}s/b.md#nope\n", forbidden()[0]);
    fs::write(dir.join("src/lib.rs"), outside).unwrap();

    let md = check_markdown(&dir);
    let code = check_code_refs(&dir);
    let out = check_forbidden(&dir);
    let _ = fs::remove_dir_all(&dir);

    assert_eq!(md.len(), 3, "{md:?}");
    assert!(md[0].starts_with("a.md:1: missing.md:"), "{md:?}");
    assert!(md[1].contains("b.md#nope: no heading"), "{md:?}");
    assert!(md[2].contains("#none: no heading"), "{md:?}");
    assert_eq!(code.len(), 2, "{code:?}");
    assert!(
        code[0].starts_with(&format!("src/lib.rs:1: {D}s/x.md:")),
        "{code:?}"
    );
    assert!(code[1].contains("b.md#nope: no heading"), "{code:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("src/lib.rs:1: points outside"),
        "{out:?}"
    );
}
