//! RFC 1035 master files -> records, with `file:line` on every error.
//! A small tokenizer handles entries, directives and `$INCLUDE`; RDATA is parsed by hickory-proto.
//! Does no I/O beyond reading the zone file and the files it `$INCLUDE`s.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::{ParseError, Parser};

/// Where a record (or an error) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    /// The zone file, or the `$INCLUDE`d file, as its path was given or joined.
    pub file: PathBuf,
    /// 1-based line where the entry starts (the first line of a `( ... )` group).
    pub line: usize,
}

/// One record of the zone with the place where it was written.
#[derive(Debug, Clone)]
pub struct ZoneRecord {
    /// The record: lower-cased absolute owner, class IN, TTL resolved, RDATA as parsed.
    pub record: Record,
    /// Where the record was written.
    pub pos: SourcePos,
}

/// A parsed and validated zone: records in file order, owner names lower-cased.
#[derive(Debug, Clone)]
pub struct ZoneData {
    /// The zone apex (lower-cased, fully qualified).
    pub origin: Name,
    /// Records in file order, identical duplicates merged, each RRset with one TTL.
    pub records: Vec<ZoneRecord>,
}

/// Why a zone could not be loaded; `Display` always starts with `file:` or `file:line:`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// The top-level zone file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The path, as displayed.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A problem with one entry (including an unreadable `$INCLUDE`, reported at its line).
    #[error("{file}:{line}: {msg}")]
    Syntax {
        /// The file holding the entry, as displayed.
        file: String,
        /// 1-based line where the entry starts.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Whole-zone problems that no single line is responsible for (e.g. no SOA).
    #[error("{file}: {msg}")]
    Zone {
        /// The top-level zone file, as displayed.
        file: String,
        /// What is wrong.
        msg: String,
    },
}

/// Largest TTL allowed by RFC 2181 §8.
const MAX_TTL: u32 = 0x7fff_ffff;
/// Deepest allowed `$INCLUDE` nesting (the top-level file is level 0).
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads and parses the zone file at `path`, with `origin` as the initial `$ORIGIN`.
pub fn load_zone(path: &Path, origin: &Name) -> Result<ZoneData, ZoneError> {
    let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Io {
        file: path.display().to_string(),
        source,
    })?;
    parse_zone(&text, path, origin)
}

/// Parses zone text; `path` is used in messages and to resolve relative `$INCLUDE`s.
pub fn parse_zone(text: &str, path: &Path, origin: &Name) -> Result<ZoneData, ZoneError> {
    let mut origin = origin.to_lowercase();
    origin.set_fqdn(true);
    let mut loader = Loader {
        records: Vec::new(),
        default_ttl: None,
        soa_minimum: None,
        include_stack: vec![normalize(path)],
    };
    loader.load_text(text, path, origin.clone())?;
    let records = validate(&origin, loader.records, path)?;
    Ok(ZoneData { origin, records })
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

/// One token as written (quotes and backslashes kept).
#[derive(Debug)]
struct Tok {
    text: String,
    quoted: bool,
}

/// One logical entry (a directive or a record), possibly spanning lines via `( )`.
#[derive(Debug)]
struct Entry {
    line: usize,
    blank_owner: bool,
    toks: Vec<Tok>,
}

fn syntax(file: &Path, line: usize, msg: impl Into<String>) -> ZoneError {
    ZoneError::Syntax {
        file: file.display().to_string(),
        line,
        msg: msg.into(),
    }
}

struct Tokenizer<'a> {
    file: &'a Path,
    entries: Vec<Entry>,
    cur: Option<Entry>,
    tok: Option<String>,
    line: usize,
    line_starts_blank: bool,
}

impl Tokenizer<'_> {
    fn start_entry(&mut self) {
        if self.cur.is_none() {
            self.cur = Some(Entry {
                line: self.line,
                blank_owner: self.line_starts_blank,
                toks: Vec::new(),
            });
        }
    }

    fn push_tok(&mut self, text: String, quoted: bool) {
        self.start_entry();
        if let Some(entry) = self.cur.as_mut() {
            entry.toks.push(Tok { text, quoted });
        }
    }

    fn flush_tok(&mut self) {
        if let Some(text) = self.tok.take() {
            self.push_tok(text, false);
        }
    }

    fn tok_char(&mut self, c: char) {
        self.tok.get_or_insert_with(String::new).push(c);
    }

    fn finish_entry(&mut self) {
        if let Some(entry) = self.cur.take()
            && !entry.toks.is_empty()
        {
            self.entries.push(entry);
        }
    }
}

fn tokenize(text: &str, file: &Path) -> Result<Vec<Entry>, ZoneError> {
    let mut t = Tokenizer {
        file,
        entries: Vec::new(),
        cur: None,
        tok: None,
        line: 1,
        line_starts_blank: false,
    };
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    let mut at_line_start = true;
    let mut chars = text.chars().peekable();

    while let Some(c) = chars.next() {
        if c == '\n' {
            t.flush_tok();
            if depth == 0 {
                t.finish_entry();
            }
            t.line += 1;
            at_line_start = true;
            continue;
        }
        if at_line_start {
            t.line_starts_blank = c.is_whitespace();
            at_line_start = false;
        }
        match c {
            ';' => {
                t.flush_tok();
                while chars.next_if(|&c| c != '\n').is_some() {}
            }
            '(' => {
                t.flush_tok();
                t.start_entry();
                if depth == 0 {
                    paren_line = t.line;
                }
                depth += 1;
            }
            ')' => {
                t.flush_tok();
                if depth == 0 {
                    return Err(syntax(t.file, t.line, "\")\" without a matching \"(\""));
                }
                depth -= 1;
            }
            '"' => {
                t.flush_tok();
                let mut s = String::from('"');
                loop {
                    match chars.peek().copied() {
                        None | Some('\n') => {
                            return Err(syntax(t.file, t.line, "unterminated quoted string"));
                        }
                        Some('\\') => {
                            chars.next();
                            s.push('\\');
                            match chars.peek().copied() {
                                None | Some('\n') => {
                                    return Err(syntax(
                                        t.file,
                                        t.line,
                                        "unterminated quoted string",
                                    ));
                                }
                                Some(e) => {
                                    chars.next();
                                    s.push(e);
                                }
                            }
                        }
                        Some('"') => {
                            chars.next();
                            s.push('"');
                            break;
                        }
                        Some(o) => {
                            chars.next();
                            s.push(o);
                        }
                    }
                }
                t.push_tok(s, true);
            }
            '\\' => match chars.peek().copied() {
                None | Some('\n') => {
                    return Err(syntax(t.file, t.line, "backslash at the end of a line"));
                }
                Some(e) => {
                    chars.next();
                    t.tok_char('\\');
                    t.tok_char(e);
                }
            },
            c if c.is_whitespace() => t.flush_tok(),
            c if c.is_control() => {
                return Err(syntax(
                    t.file,
                    t.line,
                    format!("invalid control character U+{:04X}", c as u32),
                ));
            }
            c => t.tok_char(c),
        }
    }
    t.flush_tok();
    if depth > 0 {
        return Err(syntax(
            t.file,
            paren_line,
            "unterminated \"(\": no matching \")\" before the end of the file",
        ));
    }
    t.finish_entry();
    Ok(t.entries)
}

// ---------------------------------------------------------------------------
// Entries -> records
// ---------------------------------------------------------------------------

struct Loader {
    records: Vec<ZoneRecord>,
    default_ttl: Option<u32>,
    soa_minimum: Option<u32>,
    include_stack: Vec<PathBuf>,
}

/// Lexically normalizes a path (no file system access) for include-loop detection.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn parse_ttl(text: &str) -> Option<u32> {
    hickory_proto::serialize::txt::parse_ttl(text)
        .ok()
        .filter(|&ttl| ttl <= MAX_TTL)
}

fn is_class(upper: &str) -> bool {
    matches!(
        upper,
        "IN" | "CS" | "CH" | "CHAOS" | "HS" | "HESIOD" | "NONE"
    ) || upper
        .strip_prefix("CLASS")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Turns hickory's parse error into a short human message.
fn describe(err: &ParseError) -> String {
    match err {
        ParseError::AddrParse(e) => e.to_string(),
        ParseError::Message(m) => (*m).to_string(),
        ParseError::Msg(m) => m.clone(),
        ParseError::MissingToken(t) => format!("missing {t}"),
        ParseError::ParseInt(e) => format!("bad number: {e}"),
        ParseError::CharToInt(c) => format!("bad number: unexpected character {c:?}"),
        ParseError::ParseTime(t) => format!("bad time value {t:?}"),
        ParseError::Proto(e) => e.to_string(),
        ParseError::Lexer(e) => e.to_string(),
        ParseError::UnsupportedRecordType(t) => {
            format!("hickory-proto cannot read {t} records from text")
        }
        other => other.to_string(),
    }
}

impl Loader {
    fn load_text(&mut self, text: &str, path: &Path, mut origin: Name) -> Result<(), ZoneError> {
        let entries = tokenize(text, path)?;
        let mut last_owner: Option<Name> = None;
        for entry in entries {
            let first = &entry.toks[0];
            if !entry.blank_owner && !first.quoted && first.text.starts_with('$') {
                self.directive(&entry, path, &mut origin)?;
            } else {
                self.record(&entry, path, &origin, &mut last_owner)?;
            }
        }
        Ok(())
    }

    fn directive(
        &mut self,
        entry: &Entry,
        path: &Path,
        origin: &mut Name,
    ) -> Result<(), ZoneError> {
        let line = entry.line;
        let name = entry.toks[0].text.to_ascii_uppercase();
        let args = &entry.toks[1..];
        match name.as_str() {
            "$ORIGIN" => {
                let [arg] = args else {
                    return Err(syntax(path, line, "$ORIGIN needs exactly one domain name"));
                };
                *origin = parse_name(&arg.text, arg.quoted, origin).map_err(|e| {
                    syntax(path, line, format!("bad $ORIGIN name {:?}: {e}", arg.text))
                })?;
            }
            "$TTL" => {
                let [arg] = args else {
                    return Err(syntax(path, line, "$TTL needs exactly one TTL value"));
                };
                let ttl = parse_ttl(&arg.text)
                    .filter(|_| !arg.quoted)
                    .ok_or_else(|| syntax(path, line, format!("bad TTL {:?}", arg.text)))?;
                self.default_ttl = Some(ttl);
            }
            "$INCLUDE" => {
                let (file, inc_origin) = match args {
                    [file] => (file, origin.clone()),
                    [file, o] => {
                        let inc_origin = parse_name(&o.text, o.quoted, origin).map_err(|e| {
                            syntax(path, line, format!("bad $INCLUDE origin {:?}: {e}", o.text))
                        })?;
                        (file, inc_origin)
                    }
                    _ => {
                        return Err(syntax(
                            path,
                            line,
                            "$INCLUDE needs a file name and an optional origin",
                        ));
                    }
                };
                let file_name = if file.quoted {
                    file.text[1..file.text.len() - 1].to_string()
                } else {
                    file.text.clone()
                };
                // Relative to the including file's directory; `components()` drops the
                // interior `.` parts (purely cosmetic, `..` is left alone).
                let target: PathBuf = path
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&file_name)
                    .components()
                    .collect();
                let key = normalize(&target);
                if self.include_stack.contains(&key) {
                    return Err(syntax(
                        path,
                        line,
                        format!("$INCLUDE loop: {} is already being read", target.display()),
                    ));
                }
                if self.include_stack.len() > MAX_INCLUDE_DEPTH {
                    return Err(syntax(
                        path,
                        line,
                        format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} levels deep"),
                    ));
                }
                let text = std::fs::read_to_string(&target).map_err(|e| {
                    syntax(
                        path,
                        line,
                        format!("cannot read $INCLUDE file {}: {e}", target.display()),
                    )
                })?;
                self.include_stack.push(key);
                let result = self.load_text(&text, &target, inc_origin);
                self.include_stack.pop();
                result?;
            }
            _ => {
                return Err(syntax(
                    path,
                    line,
                    format!("unknown directive {:?}", entry.toks[0].text),
                ));
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        entry: &Entry,
        path: &Path,
        origin: &Name,
        last_owner: &mut Option<Name>,
    ) -> Result<(), ZoneError> {
        let line = entry.line;
        let toks = &entry.toks;
        let mut idx = 0;
        let owner = if entry.blank_owner {
            last_owner.clone().ok_or_else(|| {
                syntax(
                    path,
                    line,
                    "no owner name: the first record of a file must name its owner",
                )
            })?
        } else {
            idx = 1;
            let tok = &toks[0];
            let owner = parse_name(&tok.text, tok.quoted, origin)
                .map_err(|e| syntax(path, line, format!("bad owner name {:?}: {e}", tok.text)))?;
            *last_owner = Some(owner.clone());
            owner
        };

        // [ttl] [class] type, TTL and class in either order.
        let mut ttl = None;
        let mut class_seen = false;
        let rtype = loop {
            let Some(tok) = toks.get(idx) else {
                return Err(syntax(path, line, "missing record type"));
            };
            idx += 1;
            if tok.quoted {
                return Err(syntax(
                    path,
                    line,
                    format!(
                        "unexpected quoted string {} before the record type",
                        tok.text
                    ),
                ));
            }
            if ttl.is_none() && tok.text.starts_with(|c: char| c.is_ascii_digit()) {
                let value = parse_ttl(&tok.text)
                    .ok_or_else(|| syntax(path, line, format!("bad TTL {:?}", tok.text)))?;
                ttl = Some(value);
                continue;
            }
            let upper = tok.text.to_ascii_uppercase();
            if !class_seen && is_class(&upper) {
                if upper != "IN" {
                    return Err(syntax(
                        path,
                        line,
                        format!("unsupported class {:?}: only IN is allowed", tok.text),
                    ));
                }
                class_seen = true;
                continue;
            }
            match upper.parse::<RecordType>() {
                Ok(RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT)
                | Ok(RecordType::TSIG)
                | Err(_) => {
                    return Err(syntax(
                        path,
                        line,
                        format!("unknown record type {:?}", tok.text),
                    ));
                }
                Ok(t) => break t,
            }
        };

        let origin_text = origin.to_ascii();
        let mut parts = Vec::with_capacity(toks.len() - idx);
        for tok in &toks[idx..] {
            parts.push(rdata_token(tok, &origin_text).map_err(|msg| syntax(path, line, msg))?);
        }
        let rdata_text = parts.join(" ");

        let ttl = match ttl.or(self.default_ttl).or(self.soa_minimum) {
            Some(ttl) => Some(ttl),
            None if rtype == RecordType::SOA => None, // use its own MINIMUM below
            None => {
                return Err(syntax(
                    path,
                    line,
                    "no TTL for this record: add `$TTL 300` at the top of the file or a TTL on the record",
                ));
            }
        };

        let text = format!(
            "{} {} IN {} {}\n",
            owner.to_ascii(),
            ttl.unwrap_or(0),
            rtype,
            rdata_text
        );
        let bad = |detail: String| {
            syntax(
                path,
                line,
                format!("bad {rtype} record data {rdata_text:?}: {detail}"),
            )
        };
        let (_, sets) = Parser::new(text, None, Some(origin.clone()))
            .parse()
            .map_err(|e| bad(describe(&e)))?;
        let mut parsed = sets.into_values().flat_map(|set| set.into_parts().records);
        let (Some(parsed), None) = (parsed.next(), parsed.next()) else {
            return Err(bad("expected exactly one record".to_string()));
        };
        if parsed.record_type() != rtype {
            return Err(bad(format!("parsed as a {} record", parsed.record_type())));
        }

        let rdata: RData = parsed.data;
        let soa_minimum = match &rdata {
            RData::SOA(soa) => Some(soa.minimum),
            _ => None,
        };
        let ttl = match (ttl, soa_minimum) {
            (Some(ttl), _) => ttl,
            (None, Some(min)) => min.min(MAX_TTL),
            (None, None) => 0,
        };
        if self.soa_minimum.is_none() {
            self.soa_minimum = soa_minimum.map(|m| m.min(MAX_TTL));
        }
        self.records.push(ZoneRecord {
            record: Record::from_rdata(owner, ttl, rdata),
            pos: SourcePos {
                file: path.to_path_buf(),
                line,
            },
        });
        Ok(())
    }
}

/// Prepares one RDATA token for hickory's own lexer, which differs from RFC 1035 in a few
/// places: a lone `@` is not a name there, an escaped delimiter outside quotes would split
/// the token, and `\DDD` inside quotes is decoded wrongly. Everything else passes as written.
fn rdata_token<'a>(tok: &'a Tok, origin_text: &'a str) -> Result<Cow<'a, str>, String> {
    let text = tok.text.as_str();
    if !tok.quoted {
        if text == "@" {
            return Ok(Cow::Borrowed(origin_text));
        }
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(e) if e.is_whitespace() || e == ';' || e == ')' => {
                        return Err(format!(
                            "escaped {e:?} in {text:?} is only supported inside a quoted string"
                        ));
                    }
                    _ => {}
                }
            }
        }
        return Ok(Cow::Borrowed(text));
    }
    if !text.contains('\\') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        if !e.is_ascii_digit() {
            out.push('\\');
            out.push(e);
            continue;
        }
        let mut value = e.to_digit(10).unwrap_or(0);
        for _ in 0..2 {
            match chars.next_if(char::is_ascii_digit) {
                Some(d) => value = value * 10 + d.to_digit(10).unwrap_or(0),
                None => return Err(format!("bad escape in {text}: \\DDD needs three digits")),
            }
        }
        match char::from_u32(value).filter(char::is_ascii) {
            Some(ch @ ('"' | '\\')) => {
                out.push('\\');
                out.push(ch);
            }
            Some(ch) => out.push(ch),
            None => {
                return Err(format!(
                    "escape \\{value:03} in {text} is not supported: only \\000 to \\127"
                ));
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Parses an owner-style name (`@`, relative or absolute) and lower-cases it.
fn parse_name(text: &str, quoted: bool, origin: &Name) -> Result<Name, String> {
    if quoted {
        return Err("a domain name cannot be a quoted string".to_string());
    }
    let mut name = if text == "@" {
        origin.clone()
    } else {
        Name::parse(text, Some(origin)).map_err(|e| e.to_string())?
    };
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

// ---------------------------------------------------------------------------
// Whole-zone validation
// ---------------------------------------------------------------------------

fn at(pos: &SourcePos, msg: String) -> ZoneError {
    ZoneError::Syntax {
        file: pos.file.display().to_string(),
        line: pos.line,
        msg,
    }
}

fn validate(
    origin: &Name,
    records: Vec<ZoneRecord>,
    path: &Path,
) -> Result<Vec<ZoneRecord>, ZoneError> {
    let zone_err = |msg: String| ZoneError::Zone {
        file: path.display().to_string(),
        msg,
    };

    for r in &records {
        if !origin.zone_of(&r.record.name) {
            return Err(at(
                &r.pos,
                format!("name {} is outside the zone origin {origin}", r.record.name),
            ));
        }
    }

    // Merge identical records (keep the first) and give each RRset the TTL of its first record.
    let mut rrsets: HashMap<(Name, RecordType), (u32, Vec<usize>)> = HashMap::new();
    let mut out: Vec<ZoneRecord> = Vec::with_capacity(records.len());
    for mut r in records {
        let key = (r.record.name.clone(), r.record.record_type());
        let (ttl, members) = rrsets
            .entry(key)
            .or_insert_with(|| (r.record.ttl, Vec::new()));
        if members.iter().any(|&i| out[i].record.data == r.record.data) {
            continue;
        }
        r.record.ttl = *ttl;
        members.push(out.len());
        out.push(r);
    }

    let mut soa_count = 0;
    let mut first_soa: Option<&SourcePos> = None;
    for r in out
        .iter()
        .filter(|r| r.record.record_type() == RecordType::SOA)
    {
        if r.record.name != *origin {
            return Err(at(
                &r.pos,
                format!(
                    "SOA record must be at the zone apex {origin}, not at {}",
                    r.record.name
                ),
            ));
        }
        soa_count += 1;
        if let Some(first) = first_soa {
            return Err(at(
                &r.pos,
                format!(
                    "second SOA record for {origin} (the first is at {}:{})",
                    first.file.display(),
                    first.line
                ),
            ));
        }
        first_soa = Some(&r.pos);
    }
    if soa_count == 0 {
        return Err(zone_err(format!("no SOA record at the zone apex {origin}")));
    }
    if !out
        .iter()
        .any(|r| r.record.record_type() == RecordType::NS && r.record.name == *origin)
    {
        return Err(zone_err(format!("no NS records at the zone apex {origin}")));
    }

    // A CNAME must be alone at its owner (RRSIG/NSEC aside, RFC 2181 §10.1, RFC 4035 §2.5).
    let mut seen: HashMap<&Name, (bool, bool)> = HashMap::new(); // (has CNAME, has other)
    for r in &out {
        let rtype = r.record.record_type();
        if matches!(rtype, RecordType::RRSIG | RecordType::NSEC) {
            continue;
        }
        let (has_cname, has_other) = seen.entry(&r.record.name).or_default();
        if rtype == RecordType::CNAME {
            if *has_cname {
                return Err(at(
                    &r.pos,
                    format!("more than one CNAME at {}", r.record.name),
                ));
            }
            if *has_other {
                return Err(at(
                    &r.pos,
                    format!("CNAME and other data at {}", r.record.name),
                ));
            }
            *has_cname = true;
        } else {
            if *has_cname {
                return Err(at(
                    &r.pos,
                    format!("CNAME and other data at {}", r.record.name),
                ));
            }
            *has_other = true;
        }
    }

    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn parse(text: &str) -> Result<ZoneData, ZoneError> {
        parse_zone(
            text,
            Path::new("zones/registry.io.zone"),
            &name("registry.io."),
        )
    }

    fn rows(zone: &ZoneData) -> Vec<String> {
        zone.records
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} @{}",
                    r.record.name,
                    r.record.ttl,
                    r.record.record_type(),
                    r.record.data,
                    r.pos.line
                )
            })
            .collect()
    }

    const REALISTIC: &str = r#"; registry.io. -- production zone
$TTL 1h
@   IN  SOA ns1.registry.io. hostmaster.registry.io. (
        2024010101 ; serial
        2h         ; refresh
        1h         ; retry
        2w         ; expire
        300 )      ; minimum
    IN  NS  ns1
    NS  ns2.registry.io.
ns1 300 IN A 192.0.2.53
ns2 IN 300 A 192.0.2.54
@ A 192.0.2.1
  AAAA 2001:db8::1
WWW CNAME @
api 60 IN A 192.0.2.10
    IN AAAA 2001:DB8::10
txt TXT "v=spf1 include:_spf.registry.io ~all" "semi;colon (paren) \"quoted\""
@ MX 10 mail
  MX ( 20
       mail.backup.example. ) ; backup
mail A 192.0.2.25
_https._tcp SRV 10 5 443 api
*.oss A 192.0.2.80
@ CAA 0 issue "letsencrypt.org"
$ORIGIN eu
@ 1d2h NS ns1.registry.io.
cross-region 5m CNAME api.registry.io.
api A 198.51.100.10
www CNAME api
"#;

    #[test]
    fn realistic_zone() {
        let z = parse(REALISTIC).unwrap();
        assert_eq!(z.origin, name("registry.io."));
        let expected = [
            "registry.io. 3600 SOA ns1.registry.io. hostmaster.registry.io. 2024010101 7200 3600 1209600 300 @3",
            "registry.io. 3600 NS ns1.registry.io. @9",
            "registry.io. 3600 NS ns2.registry.io. @10",
            "ns1.registry.io. 300 A 192.0.2.53 @11",
            "ns2.registry.io. 300 A 192.0.2.54 @12",
            "registry.io. 3600 A 192.0.2.1 @13",
            "registry.io. 3600 AAAA 2001:db8::1 @14",
            "www.registry.io. 3600 CNAME registry.io. @15",
            "api.registry.io. 60 A 192.0.2.10 @16",
            "api.registry.io. 3600 AAAA 2001:db8::10 @17",
            "txt.registry.io. 3600 TXT v=spf1 include:_spf.registry.io ~allsemi;colon (paren) \"quoted\" @18",
            "registry.io. 3600 MX 10 mail.registry.io. @19",
            "registry.io. 3600 MX 20 mail.backup.example. @20",
            "mail.registry.io. 3600 A 192.0.2.25 @22",
            "_https._tcp.registry.io. 3600 SRV 10 5 443 api.registry.io. @23",
            "*.oss.registry.io. 3600 A 192.0.2.80 @24",
            "registry.io. 3600 CAA 0 issue \"letsencrypt.org\" @25",
            "eu.registry.io. 93600 NS ns1.registry.io. @27",
            "cross-region.eu.registry.io. 300 CNAME api.registry.io. @28",
            "api.eu.registry.io. 3600 A 198.51.100.10 @29",
            "www.eu.registry.io. 3600 CNAME api.eu.registry.io. @30",
        ];
        assert_eq!(rows(&z), expected);

        // Structured checks on a few records, not just their text form.
        let txt = &z.records[10];
        assert_eq!(txt.pos.file, Path::new("zones/registry.io.zone"));
        let RData::TXT(data) = &txt.record.data else {
            panic!("not TXT: {txt:?}")
        };
        let strings: Vec<&[u8]> = data.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(
            strings,
            [
                &b"v=spf1 include:_spf.registry.io ~all"[..],
                &b"semi;colon (paren) \"quoted\""[..]
            ]
        );
        let RData::SRV(srv) = &z.records[14].record.data else {
            panic!("not SRV")
        };
        assert_eq!((srv.priority, srv.weight, srv.port), (10, 5, 443));
        assert_eq!(srv.target, name("api.registry.io."));
        let RData::A(a) = &z.records[15].record.data else {
            panic!("not A")
        };
        assert_eq!(a.0, std::net::Ipv4Addr::new(192, 0, 2, 80));
        assert!(z.records[15].record.name.is_wildcard());
        // Owner names are lower-cased ("WWW" in the file).
        assert!(z.records[7].record.name.eq_case(&name("www.registry.io.")));
        assert!(
            z.records
                .iter()
                .all(|r| r.record.dns_class == hickory_proto::rr::DNSClass::IN)
        );
    }

    const HEAD: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n NS ns1\n";

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(z) => panic!("unexpected success: {:?}", rows(&z)),
            Err(e) => e.to_string(),
        }
    }

    fn with_head(body: &str) -> String {
        err(&format!("{HEAD}{body}"))
    }

    #[test]
    fn error_messages_verbatim() {
        let f = "zones/registry.io.zone";
        let cases: Vec<(String, String)> = vec![
            (
                with_head("ns1 A 192.0.2.53\nwww A 10.0.0.300\n"),
                format!("{f}:5: bad A record data \"10.0.0.300\": invalid IPv4 address syntax"),
            ),
            (
                with_head("www 60 IN FOO 1 2 3\n"),
                format!("{f}:4: unknown record type \"FOO\""),
            ),
            (
                err("www A 10.0.0.1\n"),
                format!(
                    "{f}:1: no TTL for this record: add `$TTL 300` at the top of the file or a TTL on the record"
                ),
            ),
            (
                with_head("version CHAOS TXT \"1.0\"\n"),
                format!("{f}:4: unsupported class \"CHAOS\": only IN is allowed"),
            ),
            (
                with_head("ns1 A 192.0.2.53\nwww.example.com. A 10.0.0.1\n"),
                format!("{f}:5: name www.example.com. is outside the zone origin registry.io."),
            ),
            (
                err("$TTL 300\n@ NS ns1\nns1 A 192.0.2.53\n"),
                format!("{f}: no SOA record at the zone apex registry.io."),
            ),
            (
                with_head("ns1 A 192.0.2.53\n@ SOA ns1 hostmaster 2 7200 3600 1209600 300\n"),
                format!("{f}:5: second SOA record for registry.io. (the first is at {f}:2)"),
            ),
            (
                with_head(
                    "ns1 A 192.0.2.53\ncross-region CNAME api\nCross-Region.registry.io. A 10.0.0.1\n",
                ),
                format!("{f}:6: CNAME and other data at cross-region.registry.io."),
            ),
            (
                with_head("ns1 A 192.0.2.53\ncross-region TXT \"x\"\ncross-region CNAME api\n"),
                format!("{f}:6: CNAME and other data at cross-region.registry.io."),
            ),
            (
                with_head("ns1 A 192.0.2.53\nwww CNAME a\nwww CNAME b\n"),
                format!("{f}:6: more than one CNAME at www.registry.io."),
            ),
            (
                with_head(
                    "ns1 A 192.0.2.53\nmx MX ( 10\n   mail\n; no closing parenthesis\nother A 10.0.0.1\n",
                ),
                format!("{f}:5: unterminated \"(\": no matching \")\" before the end of the file"),
            ),
            (
                with_head("ns1 A 192.0.2.53\ntxt TXT \"never closed ; ( \\\"\nnext A 10.0.0.1\n"),
                format!("{f}:5: unterminated quoted string"),
            ),
            (
                with_head("ns1 A 192.0.2.53\n$INCLUDE missing.inc\n"),
                format!(
                    "{f}:5: cannot read $INCLUDE file zones/missing.inc: No such file or directory (os error 2)"
                ),
            ),
            (
                err("$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\nns1 A 192.0.2.53\n"),
                format!("{f}: no NS records at the zone apex registry.io."),
            ),
            (
                with_head("ns1 A 192.0.2.53\nsub SOA ns1 hostmaster 1 7200 3600 1209600 300\n"),
                format!(
                    "{f}:5: SOA record must be at the zone apex registry.io., not at sub.registry.io."
                ),
            ),
            (
                with_head("a A 10.0.0.1 )\n"),
                format!("{f}:4: \")\" without a matching \"(\""),
            ),
            (
                with_head("$GENERATE 1-10 host$ A 10.0.0.$\n"),
                format!("{f}:4: unknown directive \"$GENERATE\""),
            ),
            (
                with_head("mx MX ten mail\n"),
                format!(
                    "{f}:4: bad MX record data \"ten mail\": bad number: invalid digit found in string"
                ),
            ),
            (
                with_head("a 1x A 10.0.0.1\n"),
                format!("{f}:4: bad TTL \"1x\""),
            ),
            (
                err(" A 10.0.0.1\n"),
                format!("{f}:1: no owner name: the first record of a file must name its owner"),
            ),
            (
                with_head("a 300 IN\n"),
                format!("{f}:4: missing record type"),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn load_zone_reports_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.zone");
        let e = load_zone(&path, &name("registry.io.")).unwrap_err();
        assert!(matches!(e, ZoneError::Io { .. }));
        assert_eq!(
            e.to_string(),
            format!("{}: No such file or directory (os error 2)", path.display())
        );
    }

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn include_relative_to_including_file() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.zone");
        write(
            &main,
            "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n  NS ns1\nns1 A 192.0.2.53\n\
             $INCLUDE sub/internal.inc internal\n  A 192.0.2.99\nafter A 192.0.2.98\n",
        );
        write(
            &dir.path().join("sub/internal.inc"),
            "; included with origin internal.registry.io.\n@ A 10.0.0.1\ndb A 10.0.0.5\n$INCLUDE \"more.inc\"\n",
        );
        write(&dir.path().join("sub/more.inc"), "cache 60 A 10.0.0.6\n");
        let z = load_zone(&main, &name("Registry.IO")).unwrap();
        assert_eq!(z.origin, name("registry.io."));
        let got: Vec<(String, String, u32, PathBuf, usize)> = z
            .records
            .iter()
            .map(|r| {
                (
                    r.record.name.to_string(),
                    r.record.data.to_string(),
                    r.record.ttl,
                    r.pos.file.strip_prefix(dir.path()).unwrap().to_path_buf(),
                    r.pos.line,
                )
            })
            .collect();
        let row = |n: &str, d: &str, ttl: u32, f: &str, l: usize| {
            (n.to_string(), d.to_string(), ttl, PathBuf::from(f), l)
        };
        assert_eq!(
            got,
            [
                row(
                    "registry.io.",
                    "ns1.registry.io. hostmaster.registry.io. 1 7200 3600 1209600 300",
                    300,
                    "main.zone",
                    2
                ),
                row("registry.io.", "ns1.registry.io.", 300, "main.zone", 3),
                row("ns1.registry.io.", "192.0.2.53", 300, "main.zone", 4),
                row(
                    "internal.registry.io.",
                    "10.0.0.1",
                    300,
                    "sub/internal.inc",
                    2
                ),
                row(
                    "db.internal.registry.io.",
                    "10.0.0.5",
                    300,
                    "sub/internal.inc",
                    3
                ),
                row(
                    "cache.internal.registry.io.",
                    "10.0.0.6",
                    60,
                    "sub/more.inc",
                    1
                ),
                // After the include, origin and previous owner are those of main.zone again.
                row("ns1.registry.io.", "192.0.2.99", 300, "main.zone", 6),
                row("after.registry.io.", "192.0.2.98", 300, "main.zone", 7),
            ]
        );
    }

    #[test]
    fn include_errors_name_the_included_file() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.zone");
        write(&main, &format!("{HEAD}$INCLUDE sub/bad.inc\n"));
        let bad = dir.path().join("sub/bad.inc");
        write(&bad, "ok A 10.0.0.1\n\nbroken A 10.0.0.300\n");
        let e = load_zone(&main, &name("registry.io.")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:3: bad A record data \"10.0.0.300\": invalid IPv4 address syntax",
                bad.display()
            )
        );

        write(
            &main,
            &format!("{HEAD}ns1 A 192.0.2.53\n$INCLUDE nope.inc\n"),
        );
        let e = load_zone(&main, &name("registry.io.")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:5: cannot read $INCLUDE file {}: No such file or directory (os error 2)",
                main.display(),
                dir.path().join("nope.inc").display()
            )
        );
    }

    #[test]
    fn include_loops_and_depth() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.zone");
        write(&main, &format!("{HEAD}$INCLUDE loop/a.inc\n"));
        let a = dir.path().join("loop/a.inc");
        write(&a, "x A 10.0.0.1\n$INCLUDE ./b.inc\n");
        let b = dir.path().join("loop/b.inc");
        write(&b, "$INCLUDE ../loop/a.inc\n");
        let e = load_zone(&main, &name("registry.io.")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:1: $INCLUDE loop: {} is already being read",
                b.display(),
                dir.path().join("loop/../loop/a.inc").display()
            )
        );

        // A chain of 8 nested includes is fine, 9 is too deep.
        for (levels, ok) in [(8, true), (9, false)] {
            let dir = tempfile::tempdir().unwrap();
            let main = dir.path().join("main.zone");
            write(&main, &format!("{HEAD}ns1 A 192.0.2.53\n$INCLUDE d1.inc\n"));
            for i in 1..=levels {
                let next = if i < levels {
                    format!("$INCLUDE d{}.inc\n", i + 1)
                } else {
                    String::new()
                };
                write(
                    &dir.path().join(format!("d{i}.inc")),
                    &format!("h{i} A 10.0.0.{i}\n{next}"),
                );
            }
            let result = load_zone(&main, &name("registry.io."));
            if ok {
                assert_eq!(result.unwrap().records.len(), 3 + 8);
            } else {
                assert_eq!(
                    result.unwrap_err().to_string(),
                    format!(
                        "{}:2: $INCLUDE nested more than 8 levels deep",
                        dir.path().join("d8.inc").display()
                    )
                );
            }
        }
    }

    #[test]
    fn ttl_rules() {
        // SOA MINIMUM is the fallback once an SOA was read; the SOA itself uses its MINIMUM.
        let z =
            parse("@ SOA ns1 hostmaster 1 2h 1h 2w 1d2h\n NS ns1\nns1 10m A 192.0.2.53\n").unwrap();
        let ttls: Vec<u32> = z.records.iter().map(|r| r.record.ttl).collect();
        assert_eq!(ttls, [93600, 93600, 600]);

        // $TTL beats the SOA minimum; explicit beats $TTL; RRsets take the TTL of their first record.
        let z = parse(&format!(
            "{HEAD}ns1 A 192.0.2.53\nweb 60 A 10.0.0.1\nweb 120 A 10.0.0.2\nweb AAAA ::1\n$TTL 1d\nweb A 10.0.0.3\n"
        ))
        .unwrap();
        let web: Vec<(String, u32)> = z.records[3..]
            .iter()
            .map(|r| (r.record.data.to_string(), r.record.ttl))
            .collect();
        assert_eq!(
            web,
            [
                ("10.0.0.1".to_string(), 60),
                ("10.0.0.2".to_string(), 60),
                ("::1".to_string(), 300),
                ("10.0.0.3".to_string(), 60),
            ]
        );
    }

    #[test]
    fn duplicates_are_merged_keeping_the_first() {
        let z = parse(&format!(
            "{HEAD}ns1 A 192.0.2.53\nWeb A 10.0.0.1\nweb.registry.io. 600 A 10.0.0.1\nweb A 10.0.0.2\n NS ns1.registry.io.\n"
        ))
        .unwrap();
        let got: Vec<String> = rows(&z);
        assert_eq!(
            got,
            [
                "registry.io. 300 SOA ns1.registry.io. hostmaster.registry.io. 1 7200 3600 1209600 300 @2",
                "registry.io. 300 NS ns1.registry.io. @3",
                "ns1.registry.io. 300 A 192.0.2.53 @4",
                "web.registry.io. 300 A 10.0.0.1 @5",
                "web.registry.io. 300 A 10.0.0.2 @7",
                "web.registry.io. 300 NS ns1.registry.io. @8",
            ]
        );
    }

    #[test]
    fn origin_directive_and_escapes() {
        let z = parse(&format!(
            "{HEAD}ns1 A 192.0.2.53\n$ORIGIN Svc.Registry.IO.\nmx MX 10 @\n$ORIGIN a.b\nx\\.y TXT \"a \\\"b\\\" ; c\" plain\n$ORIGIN @\nback A 10.0.0.9\n"
        ));
        // `$ORIGIN @` is not a name: `@` only means the origin in owner position; we accept it too.
        let z = z.unwrap();
        let got = rows(&z);
        assert_eq!(
            &got[3..],
            [
                "mx.svc.registry.io. 300 MX 10 svc.registry.io. @6",
                "x\\.y.a.b.svc.registry.io. 300 TXT a \"b\" ; cplain @8",
                "back.a.b.svc.registry.io. 300 A 10.0.0.9 @10",
            ]
        );
    }

    #[test]
    fn quoted_escapes_are_decoded_per_rfc1035() {
        let z = parse(&format!(
            "{HEAD}ns1 A 192.0.2.53\nt TXT \"\\065\\066 \\\"q\\\" \\\\ \\092 \\034;\"\n"
        ))
        .unwrap();
        let RData::TXT(txt) = &z.records[3].record.data else {
            panic!("not TXT")
        };
        assert_eq!(&txt.txt_data[0][..], br#"AB "q" \ \ ";"#);
        assert_eq!(
            err(&format!("{HEAD}t TXT \"\\200\"\n")),
            "zones/registry.io.zone:4: escape \\200 in \"\\200\" is not supported: only \\000 to \\127"
        );
        assert_eq!(
            err(&format!("{HEAD}t TXT a\\;b\n")),
            "zones/registry.io.zone:4: escaped ';' in \"a\\\\;b\" is only supported inside a quoted string"
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn fuzz_parse(text: &str) {
            let _ = parse_zone(
                text,
                Path::new("/nonexistent-regdns-fuzz/zone.db"),
                &name("registry.io."),
            );
        }

        const TYPES: &[&str] = &[
            "A",
            "AAAA",
            "NS",
            "CNAME",
            "SOA",
            "TXT",
            "MX",
            "SRV",
            "PTR",
            "CAA",
            "HINFO",
            "NAPTR",
            "SSHFP",
            "TLSA",
            "SVCB",
            "HTTPS",
            "OPENPGPKEY",
            "CSYNC",
            "CERT",
            "SMIMEA",
            "ANAME",
            "DNAME",
            "NULL",
            "DS",
            "NSEC",
            "RRSIG",
            "TYPE1",
        ];

        proptest! {
            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                fuzz_parse(&String::from_utf8_lossy(&bytes));
            }

            #[test]
            fn random_text_never_panics(text in "[ -~\t\n();\"\\\\@$]{0,300}") {
                fuzz_parse(&text);
            }

            #[test]
            fn mutated_zone_never_panics(
                edits in proptest::collection::vec((any::<usize>(), 0u8..3, prop::sample::select(
                    b" \t\n();\"\\@$.*0123456789aZ:-_\x00\xff".to_vec())), 1..10)
            ) {
                let mut bytes = REALISTIC.as_bytes().to_vec();
                for (at, op, b) in edits {
                    let at = at % (bytes.len() + 1);
                    match op {
                        0 => bytes.insert(at, b),
                        1 if at < bytes.len() => { bytes.remove(at); }
                        _ if at < bytes.len() => bytes[at] = b,
                        _ => {}
                    }
                }
                fuzz_parse(&String::from_utf8_lossy(&bytes));
            }

            #[test]
            fn random_rdata_never_panics(
                rtype in prop::sample::select(TYPES),
                prefix in prop::sample::select(&[
                    "", "1 ", "0 issue ", "128 iodef ", "1 . ", "1 svc.example. ", "1 1 ",
                    "10 5 443 ", "3 1 1 ", "100 10 \"S\" \"SIP+D2U\" \"\" ",
                ][..]),
                rdata in "([0-9a-fA-Z.:=,;()@*/+\\-_\\\\\"]{0,12} ?){0,8}",
            ) {
                fuzz_parse(&format!("{HEAD}x {rtype} {prefix}{rdata}\n"));
            }
        }
    }
}
