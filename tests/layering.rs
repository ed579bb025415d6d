//! The layering of `src/` (std only): the top-level modules form no import cycle, and each
//! uses only the modules of lower layers, as listed in CONTRIBUTING.md ("Layering").
//!
//! A module's dependencies are the `crate::NAME` paths in the code of its files (comments,
//! doc comments and string literals are skipped: a doc link to a higher layer is fine), with
//! `use crate::{a, b::c}` groups expanded. `#[cfg(test)]` code counts like any other.
//! When this test fails it prints the offending edges with the files that make them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module → (module it uses → files that use it).
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The code of a Rust file with comments, string and char literals blanked out (so that
/// paths in them are not read as dependencies). Raw strings are handled; nesting of block
/// comments too.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map(|n| i + n).unwrap_or(b.len());
            i = end;
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            i = src[body..]
                .find(&close)
                .map(|n| body + n + close.len())
                .unwrap_or(b.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(rest) {
            let end = rest[1..].find('\'').map(|n| i + n + 2).unwrap_or(b.len());
            i = end;
            out.push_str("' '");
        } else {
            let ch = rest.chars().next().expect("not at the end");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br##"` …: the number of hashes of a raw string starting here.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s);
    let s = s.strip_prefix('r')?;
    let hashes = s.bytes().take_while(|&c| c == b'#').count();
    (s.as_bytes().get(hashes) == Some(&b'"')).then_some(hashes)
}

/// A char literal (`'a'`, `'\n'`, `'\''`), not a lifetime (`'a`).
fn is_char_literal(s: &str) -> bool {
    let b = s.as_bytes();
    match b.get(1) {
        Some(b'\\') => true,
        Some(_) => {
            let c = s[1..].chars().next().expect("checked");
            s[1 + c.len_utf8()..].starts_with('\'')
        }
        None => false,
    }
}

/// The top-level modules named by `crate::…` paths in `code` (groups expanded).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `regdns_crate::` and the like
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of each top-level item of the group (split at depth-0 commas).
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for it in items {
                let name: String = it
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The dependency graph of the top-level modules of `src/`.
fn graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(src).ok()?))
        .collect();
    let mut g = Graph::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        let Some(m) = module_of(rel) else { continue };
        let text = fs::read_to_string(f).expect("read source");
        let entry = g.entry(m.clone()).or_default();
        for dep in crate_refs(&code_only(&text)) {
            if dep != m && modules.contains(&dep) {
                entry
                    .entry(dep)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    g
}

/// A cycle of the graph (its modules in order, the first repeated at the end), if any.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        m: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path
                    .iter()
                    .position(|p| p == m)
                    .expect("open is on the path");
                let mut cycle = path[from..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(m.to_string(), Mark::Open);
        path.push(m.to_string());
        for dep in g.get(m).into_iter().flat_map(|d| d.keys()) {
            if let Some(c) = visit(g, dep, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in g.keys() {
        if let Some(c) = visit(g, m, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// The layers of CONTRIBUTING.md's "Layering" list: `N. `mod`, `mod`: what they are`.
/// Returns module → layer number (1 is the lowest).
fn layers(contributing: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let section = contributing
        .split("\n## ")
        .find(|s| s.starts_with("Layering"))
        .expect("CONTRIBUTING.md has a \"## Layering\" section");
    for line in section.lines() {
        let Some((num, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(n) = num.trim().parse::<usize>() else {
            continue;
        };
        let names = rest.split(':').next().unwrap_or("");
        for part in names.split(',') {
            let name = part.trim().trim_matches('`');
            if !name.is_empty() {
                out.insert(name.to_string(), n);
            }
        }
    }
    out
}

/// Every edge that does not go strictly down the layers, and every module with no layer.
fn violations(g: &Graph, layer: &BTreeMap<String, usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (m, deps) in g {
        let Some(&lm) = layer.get(m) else {
            out.push(format!(
                "module {m} is not in CONTRIBUTING.md's layering list"
            ));
            continue;
        };
        for (d, files) in deps {
            let ld = layer.get(d).copied().unwrap_or(usize::MAX);
            if ld >= lm {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                out.push(format!(
                    "{m} (layer {lm}) uses {d} (layer {ld}) in {}",
                    files.join(", ")
                ));
            }
        }
    }
    out
}

#[test]
fn top_level_modules_have_no_cycle_and_follow_the_layers() {
    let g = graph(&root().join("src"));
    assert!(g.len() > 10, "read the modules of src/: {:?}", g.keys());
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle between top-level modules: {}", c.join(" -> "));
    }
    let contributing = fs::read_to_string(root().join("CONTRIBUTING.md")).expect("CONTRIBUTING");
    let layer = layers(&contributing);
    let bad = violations(&g, &layer);
    assert!(
        bad.is_empty(),
        "layering violations:\n  {}",
        bad.join("\n  ")
    );
    for listed in layer.keys() {
        assert!(
            g.contains_key(listed),
            "CONTRIBUTING.md lists {listed}, which is no module of src/"
        );
    }
}

#[cfg(test)]
mod checks_can_fail {
    use super::*;

    fn planted(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string())
                .or_default()
                .entry(b.to_string())
                .or_default()
                .insert(format!("{a}.rs"));
            g.entry(b.to_string()).or_default();
        }
        g
    }

    #[test]
    fn a_planted_cycle_is_found() {
        let g = planted(&[("dns", "snapshot"), ("snapshot", "model"), ("model", "dns")]);
        let c = find_cycle(&g).expect("cycle");
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(find_cycle(&planted(&[("dns", "snapshot"), ("snapshot", "model")])).is_none());
    }

    #[test]
    fn a_planted_upward_edge_is_reported_with_its_file() {
        let layer = layers(
            "# x\n\n## Layering\n\n1. `model`: data\n2. `snapshot`, `probe`: uses model\n3. `dns`: serving\n",
        );
        assert_eq!(layer["probe"], 2);
        let ok = planted(&[("dns", "snapshot"), ("snapshot", "model")]);
        assert!(violations(&ok, &layer).is_empty());
        let bad = planted(&[
            ("snapshot", "dns"),
            ("snapshot", "probe"),
            ("extra", "model"),
        ]);
        assert_eq!(
            violations(&bad, &layer),
            [
                "module extra is not in CONTRIBUTING.md's layering list",
                "snapshot (layer 2) uses dns (layer 3) in snapshot.rs",
                "snapshot (layer 2) uses probe (layer 2) in snapshot.rs",
            ]
        );
    }

    #[test]
    fn paths_in_code_count_and_paths_in_comments_and_strings_do_not() {
        let src = r##"
//! See [`crate::daemon`].
use crate::{clock::now_ms, model::{self, Model}, snapshot};
use crate::dns::respond;
/* crate::admin */
fn f() -> String { let _ = crate::tsig::now(); format!("crate::cli {}", r#"crate::sim"#) }
fn g<'a>(x: &'a str) -> char { let _ = crate::zone::load; 'c' }
"##;
        let refs = crate_refs(&code_only(src));
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        assert_eq!(refs, ["clock", "dns", "model", "snapshot", "tsig", "zone"]);
    }
}
