//! Source loading and preprocessing: `include` with globs, `@id` / `@^id`
//! conditional lines, `$NAME=value` definitions and `$NAME` / `${NAME}`
//! substitution. The output is one token stream for the tree builder.
//!
//! Order of operations per line follows keepalived's `read_line`
//! (lib/parser.c): strip the `@config_id` prefix (or drop the line), record a
//! definition, substitute definitions, then recognise `include`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostics, Span};
use crate::lexer::{is_blank, strip_comment, tokenize, Tok, TokKind};
use crate::ParseOptions;

/// How deep `include`s may nest before we assume a loop.
const MAX_INCLUDE_DEPTH: usize = 16;
/// How many rounds of `$NAME` substitution a line may take (definitions may
/// refer to definitions).
const MAX_SUBST_ROUNDS: usize = 8;
/// Upper bound of a line after substitution, so `$A=$A$A` cannot explode.
const MAX_LINE_LEN: usize = 64 * 1024;
/// How deep `~SEQ`/`~LST` may nest on one line.
const MAX_SEQ_DEPTH: usize = 8;
/// How many values one `~SEQ`/`~LST` may give.
const MAX_SEQ_VALUES: usize = 20_000;
/// How many lines all `~SEQ`/`~LST` of a parse may produce (nested ones
/// multiply).
const MAX_SEQ_LINES: usize = 20_000;

pub(crate) struct Loader<'a> {
    opts: &'a ParseOptions,
    defs: HashMap<String, String>,
    pub diags: Diagnostics,
    pub toks: Vec<Tok>,
    stack: Vec<PathBuf>,
    /// The directory of the file being read (`${_PWD}`).
    dir: Option<PathBuf>,
    /// Lines produced by `~SEQ`/`~LST` so far.
    seq_lines: usize,
}

/// A definition being continued on the next line (value ends with `\`).
struct PendingDef {
    name: String,
    value: String,
}

impl<'a> Loader<'a> {
    pub fn new(opts: &'a ParseOptions) -> Self {
        let mut defs = HashMap::new();
        for (k, v) in &opts.defines {
            defs.insert(k.clone(), v.clone());
        }
        Loader {
            opts,
            defs,
            diags: Diagnostics::new(),
            toks: Vec::new(),
            stack: Vec::new(),
            dir: None,
            seq_lines: 0,
        }
    }

    /// Reads and preprocesses a file; `from` is the `include` line, if any.
    pub fn load_file(&mut self, path: &Path, from: Option<&Span>) {
        let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let anchor = from.cloned().unwrap_or_else(|| Span::new(&name, 1, 1));
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canon) {
            self.diags.fatal(
                &anchor,
                format!("include loop: {} includes itself", path.display()),
            );
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags.fatal(
                &anchor,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
            );
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.diags
                    .fatal(&anchor, format!("cannot read {}: {e}", path.display()));
                return;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        self.stack.push(canon);
        let dir = path.parent().map(Path::to_path_buf);
        self.load_text(&name, dir.as_deref(), &text);
        self.stack.pop();
    }

    /// Preprocesses `text` named `name`; relative includes resolve in `dir`.
    pub fn load_text(&mut self, name: &Arc<str>, dir: Option<&Path>, text: &str) {
        let outer_dir = std::mem::replace(&mut self.dir, dir.map(Path::to_path_buf));
        self.load_lines(name, dir, text);
        self.dir = outer_dir;
    }

    fn load_lines(&mut self, name: &Arc<str>, dir: Option<&Path>, text: &str) {
        let mut pending: Option<PendingDef> = None;
        let mut odd_blanks: Option<(Span, char, usize)> = None;
        for (idx, raw) in text.split('\n').enumerate() {
            let lineno = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            // keepalived separates words by ASCII blanks only; we also
            // take U+00A0 and other Unicode spaces (README: differences).
            if let Some((col, c)) = strip_comment(raw)
                .chars()
                .enumerate()
                .find(|(_, c)| is_blank(*c) && !c.is_ascii())
            {
                match &mut odd_blanks {
                    Some((_, _, n)) => *n += 1,
                    None => odd_blanks = Some((Span::new(name, lineno, col as u32 + 1), c, 1)),
                }
            }

            if let Some(mut def) = pending.take() {
                // Continuation of a multi-line definition.
                let body = strip_comment(raw).trim_matches(is_blank);
                let (body, more) = match body.strip_suffix('\\') {
                    Some(b) => (b.trim_end_matches(is_blank), true),
                    None => (body, false),
                };
                if !body.is_empty() {
                    def.value.push('\n');
                    def.value.push_str(body);
                }
                if more {
                    pending = Some(def);
                } else {
                    self.defs.insert(def.name, def.value);
                }
                continue;
            }

            // Leading blanks; `col` is the 1-based column of `line`'s start.
            let start = raw.len() - raw.trim_start_matches(is_blank).len();
            let col = 1 + raw[..start].chars().count() as u32;
            let line: &str = &raw[start..];
            if strip_comment(line).trim_matches(is_blank).is_empty() {
                continue;
            }

            self.line(name, dir, lineno, col, line, &mut pending, 0);
        }
        if let Some(def) = pending {
            self.defs.insert(def.name, def.value);
        }
        if let Some((span, c, n)) = odd_blanks {
            let more = if n > 1 {
                format!(" (and on {} more lines)", n - 1)
            } else {
                String::new()
            };
            self.diags
                .warn(
                    &span,
                    format!(
                        "U+{:04X} separates words here{more}: lvs-xdp reads it as a space, keepalived 2.2.7 reads it as part of a word (and rejects the line)",
                        u32::from(c)
                    ),
                )
                .help("replace it with a space or a tab so keepalived reads the file the same way");
        }
    }

    /// Preprocesses one line (or a line a `~SEQ` repeats): `@id`, a
    /// definition, `~SEQ`/`~LST`, substitution, tokens, `include`.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        name: &Arc<str>,
        dir: Option<&Path>,
        lineno: u32,
        mut col: u32,
        mut line: &str,
        pending: &mut Option<PendingDef>,
        depth: usize,
    ) {
        // `@id rest` keeps `rest` only when our config id is `id`;
        // `@^id rest` only when it is not.
        if let Some(cond) = line.strip_prefix('@') {
            let (negate, cond) = match cond.strip_prefix('^') {
                Some(c) => (true, c),
                None => (false, cond),
            };
            let Some(end) = cond.find(is_blank) else {
                return; // nothing after the id: keepalived drops the line
            };
            let id = &cond[..end];
            let matches = self.opts.config_id.as_deref() == Some(id);
            if matches == negate {
                return;
            }
            let rest = &cond[end..];
            let skipped = rest.len() - rest.trim_start_matches(is_blank).len();
            let consumed = line.len() - rest.len() + skipped;
            col += line[..consumed].chars().count() as u32;
            line = &rest[skipped..];
        }

        // `$NAME=value` defines; a trailing `\` continues on the next line.
        if let Some((dname, value)) = parse_definition(line) {
            let value = strip_comment(value).trim_matches(is_blank);
            match value.strip_suffix('\\') {
                Some(v) => {
                    *pending = Some(PendingDef {
                        name: dname.to_string(),
                        value: v.trim_end_matches(is_blank).to_string(),
                    })
                }
                None => {
                    self.defs.insert(dname.to_string(), value.to_string());
                }
            }
            return;
        }

        // `~SEQ(VAR, START, STEP, END) TEXT` and `~LST(...) TEXT` repeat TEXT
        // once per value, with VAR defined (keepalived's add_seq/add_lst).
        if line.starts_with("~SEQ") || line.starts_with("~LST") {
            self.repeat(name, dir, lineno, col, line, depth);
            return;
        }

        let here = Span::new(name, lineno, col);
        let substituted;
        let line: &str = if line.contains('$') {
            substituted = self.substitute(line, &here);
            &substituted
        } else {
            line
        };
        // `include a/{b,c}.conf`: the braces are a glob, not a block.
        if let Some(rest) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with(is_blank))
        {
            let pat = strip_comment(rest).trim_matches(is_blank);
            if pat.contains('{') && !pat.contains(is_blank) {
                self.include(pat, here, dir);
                return;
            }
        }

        let first = self.toks.len();
        tokenize(line, name, lineno, col, &mut self.toks, &mut self.diags);
        self.maybe_include(first, dir);
    }

    /// `~SEQ` / `~LST`: defines the variables for each value in turn and
    /// preprocesses the rest of the line with them.
    fn repeat(
        &mut self,
        name: &Arc<str>,
        dir: Option<&Path>,
        lineno: u32,
        col: u32,
        line: &str,
        depth: usize,
    ) {
        let span = Span::new(name, lineno, col);
        let seq = line.starts_with("~SEQ");
        let what = if seq { "~SEQ" } else { "~LST" };
        if depth >= MAX_SEQ_DEPTH {
            self.diags.error(
                &span,
                format!("{what} nested deeper than {MAX_SEQ_DEPTH}; line ignored"),
            );
            return;
        }
        // The parameters may use definitions.
        let Some(close) = line.find(')') else {
            self.bad_repeat(&span, what, line);
            return;
        };
        let params = if line[..close].contains('$') {
            self.substitute(&line[..close], &span)
        } else {
            line[..close].to_string()
        };
        let spec = if seq {
            parse_seq(&params[4..])
        } else {
            parse_lst(&params[4..])
        };
        let Some(sets) = spec else {
            self.bad_repeat(&span, what, line);
            return;
        };
        if sets.len() > MAX_SEQ_VALUES {
            self.diags.error(
                &span,
                format!("{what} gives more than {MAX_SEQ_VALUES} values; line ignored"),
            );
            return;
        }
        let after = &line[close + 1..];
        let text = after.trim_start_matches(is_blank);
        let text_col = col + line[..line.len() - text.len()].chars().count() as u32;
        for set in sets {
            self.seq_lines += 1;
            if self.seq_lines > MAX_SEQ_LINES {
                if self.seq_lines == MAX_SEQ_LINES + 1 {
                    self.diags.error(
                        &span,
                        format!("{what}: more than {MAX_SEQ_LINES} lines produced in all; the rest is ignored"),
                    );
                }
                return;
            }
            for (var, value) in set {
                self.defs.insert(var, value);
            }
            let mut pending = None;
            self.line(name, dir, lineno, text_col, text, &mut pending, depth + 1);
        }
    }

    fn bad_repeat(&mut self, span: &Span, what: &str, line: &str) {
        self.diags
            .error(
                span,
                format!("Invalid {what} specification '{line}'; line ignored"),
            )
            .help(if what == "~SEQ" {
                "write `~SEQ(VAR, END)`, `~SEQ(VAR, START, END)` or `~SEQ(VAR, START, STEP, END)` before the text to repeat"
                } else {
                "write `~LST(VAR, V1, V2, ...)` or `~LST({A, B}, {a1, b1}, {a2, b2})` before the text to repeat"
            });
    }

    /// keepalived's built-in definitions: `${_PWD}` (the directory of the
    /// file being read), `${_INSTANCE}` (the config id), `${_HASH}` (#),
    /// `${_BANG}` (!), `${_RANDOM [MIN [MAX]]}` (0..=32767 by default).
    fn builtin(&self, name: &str, dir: Option<&Path>) -> Option<String> {
        let mut words = name.split(' ').filter(|w| !w.is_empty());
        let base = words.next()?;
        let params: Vec<&str> = words.collect();
        match (base, params.len()) {
            ("_PWD", 0) => {
                let d = dir.map(Path::to_path_buf).unwrap_or_default();
                let d = std::path::absolute(&d).unwrap_or(d);
                Some(d.to_string_lossy().into_owned())
            }
            ("_INSTANCE", 0) => Some(self.opts.config_id.clone().unwrap_or_default()),
            ("_HASH", 0) => Some("#".into()),
            ("_BANG", 0) => Some("!".into()),
            ("_RANDOM", 0..=2) => {
                let nums: Option<Vec<u64>> = params.iter().map(|p| p.parse().ok()).collect();
                let nums = nums?;
                let (min, max) = match nums[..] {
                    [] => (0, 32767),
                    [min] => (min, 32767),
                    [min, max] => (min, max),
                    _ => return None,
                };
                if max < min {
                    return None;
                }
                Some((min + random_u64() % (max - min + 1)).to_string())
            }
            _ => None,
        }
    }

    /// Replaces `$NAME` and `${NAME}` by known definitions. Unknown names are
    /// left as they are, with a warning.
    fn substitute(&mut self, line: &str, span: &Span) -> String {
        let mut cur = line.to_string();
        for _ in 0..MAX_SUBST_ROUNDS {
            let mut out = String::with_capacity(cur.len());
            let mut changed = false;
            let mut rest = cur.as_str();
            while let Some(pos) = rest.find('$') {
                out.push_str(&rest[..pos]);
                let after = &rest[pos + 1..];
                let (name, consumed) = if let Some(b) = after.strip_prefix('{') {
                    match b.find('}') {
                        Some(e) => (&b[..e], e + 2),
                        None => ("", 0),
                    }
                } else {
                    let n = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..n], n)
                };
                let value = self
                    .defs
                    .get(name)
                    .filter(|_| !name.is_empty())
                    .cloned()
                    .or_else(|| self.builtin(name, self.dir.as_deref()));
                match value {
                    Some(v) => {
                        out.push_str(&v);
                        changed = true;
                    }
                    None => {
                        if !name.is_empty() {
                            self.diags
                                .warn(span, format!("`${name}` is not defined; left as it is"))
                                .help(format!("define it first with a line `${name}=value`"));
                        }
                        out.push('$');
                        out.push_str(&after[..consumed]);
                    }
                }
                rest = &after[consumed..];
                if out.len() > MAX_LINE_LEN {
                    self.diags
                        .error(span, "definition expands to a line that is too long");
                    return line.to_string();
                }
            }
            out.push_str(rest);
            cur = out;
            if !changed {
                break;
            }
        }
        cur
    }

    /// If the statement just tokenized (from `first`) is `include PATTERN`,
    /// replaces it by the tokens of the matching files.
    fn maybe_include(&mut self, first: usize, dir: Option<&Path>) {
        let words: Vec<(&str, &Span)> = self.toks[first..]
            .iter()
            .filter_map(|t| match &t.kind {
                TokKind::Word { text, .. } => Some((text.as_str(), &t.span)),
                _ => None,
            })
            .collect();
        if words.first().map(|w| w.0) != Some("include") {
            return;
        }
        // Only a plain `include x` line; `include` inside a braces line is
        // not an include.
        if self.toks[first..]
            .iter()
            .any(|t| matches!(t.kind, TokKind::Open | TokKind::Close))
        {
            return;
        }
        let span = words[0].1.clone();
        if words.len() != 2 {
            self.diags.error(
                &span,
                "`include` takes exactly one file name or glob pattern",
            );
            self.toks.truncate(first);
            return;
        }
        let pattern = words[1].0.to_string();
        self.toks.truncate(first);
        self.include(&pattern, span, dir);
    }

    /// Reads the files `include PATTERN` names.
    fn include(&mut self, pattern: &str, span: Span, dir: Option<&Path>) {
        if !self.opts.follow_includes {
            self.diags.warn(
                &span,
                format!("include of `{pattern}` not followed (disabled)"),
            );
            return;
        }
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            dir.unwrap_or(Path::new(".")).join(pattern)
        };
        // keepalived globs with GLOB_BRACE: `{a,b}` alternatives are
        // expanded first, each globbed (and sorted) in turn.
        let mut matched: Vec<PathBuf> = Vec::new();
        for alt in expand_braces(&full.to_string_lossy()) {
            let paths = match glob::glob(&alt) {
                Ok(p) => p,
                Err(e) => {
                    self.diags
                        .error(&span, format!("bad include pattern `{pattern}`: {e}"));
                    return;
                }
            };
            let mut found: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            matched.extend(found);
        }
        // keepalived reads only regular, non-executable files.
        matched.retain(|p| {
            if is_executable(p) {
                self.diags.warn(
                    &span,
                    format!(
                        "Configuration file '{}' is not a regular non-executable file - skipping",
                        p.display()
                    ),
                );
                false
            } else {
                true
            }
        });
        if matched.is_empty() {
            self.diags
                .error(
                    &span,
                    format!("no file matches include `{pattern}` (keepalived reads on without it; lvs-xdp reports it)"),
                )
                .help(format!(
                    "relative patterns are resolved from {}",
                    dir.unwrap_or(Path::new(".")).display()
                ));
            return;
        }
        for p in matched {
            self.load_file(&p, Some(&span));
        }
    }
}

/// A `~SEQ` value list: `[x](VAR, END)`, `(VAR, START, END)` or
/// `(VAR, START, STEP, END)` (C integers: `0x` hex, leading-0 octal), as
/// keepalived's add_seq. `x` writes the values in hex.
fn parse_seq(spec: &str) -> Option<Vec<Vec<(String, String)>>> {
    let (hex, spec) = match spec.strip_prefix('x') {
        Some(s) => (true, s),
        None => (false, spec),
    };
    let inner = spec.trim_start_matches([' ', '\t']).strip_prefix('(')?;
    let mut parts = inner.split(',').map(|p| p.trim_matches([' ', '\t']));
    let var = parts.next().filter(|v| !v.is_empty())?;
    let nums: Vec<i64> = parts.map(c_long).collect::<Option<_>>()?;
    let (start, step, end) = match nums[..] {
        [end] => (
            if end < 0 { -1 } else { 1 },
            if end < 1 { -1 } else { 1 },
            end,
        ),
        [start, end] => (start, if start <= end { 1 } else { -1 }, end),
        [start, step, end] => {
            if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                return None;
            }
            (start, step, end)
        }
        _ => return None,
    };
    if hex && (start < 0 || end < 0) {
        return None;
    }
    let mut out = Vec::new();
    let mut next = start;
    loop {
        let v = if hex {
            format!("{next:x}")
        } else {
            next.to_string()
        };
        out.push(vec![(var.to_string(), v)]);
        if out.len() > MAX_SEQ_VALUES {
            break;
        }
        next = next.checked_add(step)?;
        if (step > 0 && next > end) || (step < 0 && next < end) {
            break;
        }
    }
    Some(out)
}

/// A C `strtol(s, _, 0)` number that is the whole of `s`.
fn c_long(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A `~LST` list: `(VAR, V1, V2, ...)` or `({A, B}, {a1, b1}, {a2, b2})`;
/// missing values of a set are empty (keepalived's add_lst).
fn parse_lst(spec: &str) -> Option<Vec<Vec<(String, String)>>> {
    let inner = spec.trim_start_matches([' ', '\t']).strip_prefix('(')?;
    // Split at top-level commas, keeping `{...}` groups whole.
    let mut items = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in inner.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    let group = |s: &str| -> Vec<String> {
        let s = s.trim_matches([' ', '\t']);
        match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(g) => g
                .split(',')
                .map(|v| v.trim_matches([' ', '\t']).to_string())
                .collect(),
            None => vec![s.to_string()],
        }
    };
    let mut items = items.iter();
    let vars = group(items.next()?);
    if vars.iter().any(String::is_empty) {
        return None;
    }
    let mut out = Vec::new();
    for it in items {
        let mut vals = group(it);
        if vals.len() > vars.len() {
            return None;
        }
        vals.resize(vars.len(), String::new());
        out.push(vars.iter().cloned().zip(vals).collect());
    }
    (!out.is_empty()).then_some(out)
}

/// A pseudo-random number for `${_RANDOM}` (no need for a good one).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Whether any execute bit of `p` is set.
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Expands shell braces: `a{b,c}d` → `abd`, `acd` (nested braces too).
/// A `{` without a matching `}` or without a `,` is literal, as in glob(3).
pub(crate) fn expand_braces(pattern: &str) -> Vec<String> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            // Find the matching `}` and the top-level commas.
            let mut depth = 0;
            let mut commas = Vec::new();
            let mut close = None;
            for (j, &c) in b.iter().enumerate().skip(i) {
                match c {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    b',' if depth == 1 => commas.push(j),
                    _ => {}
                }
            }
            if let Some(close) = close.filter(|_| !commas.is_empty()) {
                let (pre, post) = (&pattern[..i], &pattern[close + 1..]);
                let mut bounds = vec![i];
                bounds.extend(&commas);
                bounds.push(close);
                let mut out = Vec::new();
                for w in bounds.windows(2) {
                    let alt = &pattern[w[0] + 1..w[1]];
                    out.extend(expand_braces(&format!("{pre}{alt}{post}")));
                }
                return out;
            }
        }
        i += 1;
    }
    vec![pattern.to_string()]
}

/// Splits `$NAME=value` into name and value.
fn parse_definition(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('$')?;
    let n = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if n == 0 || !rest.as_bytes()[0].is_ascii_alphabetic() && rest.as_bytes()[0] != b'_' {
        return None;
    }
    let after = rest[n..].trim_start_matches(is_blank);
    let value = after.strip_prefix('=')?;
    Some((&rest[..n], value))
}

#[cfg(test)]
mod tests {
    use super::{expand_braces, parse_lst, parse_seq};

    #[test]
    fn braces() {
        assert_eq!(
            expand_braces("sub/{a,b}.conf"),
            ["sub/a.conf", "sub/b.conf"]
        );
        assert_eq!(expand_braces("{x,y{1,2}}z"), ["xz", "y1z", "y2z"]);
        assert_eq!(expand_braces("a{b}c"), ["a{b}c"]);
        assert_eq!(expand_braces("a{b,c"), ["a{b,c"]);
    }

    #[test]
    fn seq_and_lst() {
        let vals = |v: Option<Vec<Vec<(String, String)>>>| -> Vec<String> {
            v.unwrap()
                .into_iter()
                .map(|s| {
                    s.into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        assert_eq!(vals(parse_seq("(i, 3")), ["i=1", "i=2", "i=3"]);
        assert_eq!(vals(parse_seq("(i, 11, 13")), ["i=11", "i=12", "i=13"]);
        assert_eq!(vals(parse_seq("(i, 10, -5, 0")), ["i=10", "i=5", "i=0"]);
        assert_eq!(vals(parse_seq("x(i, 9, 11")), ["i=9", "i=a", "i=b"]);
        assert_eq!(vals(parse_seq("(i, 0x10, 0x11")), ["i=16", "i=17"]);
        assert!(parse_seq("(i, 1, -1, 5").is_none());
        assert!(parse_seq("(, 3").is_none());
        assert_eq!(vals(parse_lst("(h, a, b")), ["h=a", "h=b"]);
        assert_eq!(
            vals(parse_lst("({ip, w}, {1.2.3.4, 2}, {1.2.3.5}")),
            ["ip=1.2.3.4 w=2", "ip=1.2.3.5 w="]
        );
        assert!(parse_lst("({a}, {1, 2}").is_none());
    }
}
