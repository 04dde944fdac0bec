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

pub(crate) struct Loader<'a> {
    opts: &'a ParseOptions,
    defs: HashMap<String, String>,
    pub diags: Diagnostics,
    pub toks: Vec<Tok>,
    stack: Vec<PathBuf>,
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
        let mut pending: Option<PendingDef> = None;
        for (idx, raw) in text.split('\n').enumerate() {
            let lineno = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let raw = raw.strip_suffix('\r').unwrap_or(raw);

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
            let mut col = 1 + raw[..start].chars().count() as u32;
            let mut line: &str = &raw[start..];
            if strip_comment(line).trim_matches(is_blank).is_empty() {
                continue;
            }

            // `@id rest` keeps `rest` only when our config id is `id`;
            // `@^id rest` only when it is not.
            if let Some(cond) = line.strip_prefix('@') {
                let (negate, cond) = match cond.strip_prefix('^') {
                    Some(c) => (true, c),
                    None => (false, cond),
                };
                let Some(end) = cond.find(is_blank) else {
                    continue; // nothing after the id: keepalived drops the line
                };
                let id = &cond[..end];
                let matches = self.opts.config_id.as_deref() == Some(id);
                if matches == negate {
                    continue;
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
                        pending = Some(PendingDef {
                            name: dname.to_string(),
                            value: v.trim_end_matches(is_blank).to_string(),
                        })
                    }
                    None => {
                        self.defs.insert(dname.to_string(), value.to_string());
                    }
                }
                continue;
            }

            let here = Span::new(name, lineno, col);
            let substituted;
            if line.contains('$') {
                substituted = self.substitute(line, &here);
                line = &substituted;
            }

            let first = self.toks.len();
            tokenize(line, name, lineno, col, &mut self.toks, &mut self.diags);
            self.maybe_include(first, dir);
        }
        if let Some(def) = pending {
            self.defs.insert(def.name, def.value);
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
                match self.defs.get(name).filter(|_| !name.is_empty()) {
                    Some(v) => {
                        out.push_str(v);
                        changed = true;
                    }
                    None => {
                        if !name.is_empty() {
                            self.diags.add(
                                crate::diag::Severity::Warning,
                                span,
                                format!("`${name}` is not defined; left as it is"),
                                Some(format!("define it first with a line `${name}=value`")),
                            );
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
        if !self.opts.follow_includes {
            self.diags.warn(
                &span,
                format!("include of `{pattern}` not followed (disabled)"),
            );
            return;
        }
        let full = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            dir.unwrap_or(Path::new(".")).join(&pattern)
        };
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(p) => p,
            Err(e) => {
                self.diags
                    .error(&span, format!("bad include pattern `{pattern}`: {e}"));
                return;
            }
        };
        let mut matched: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        matched.sort();
        if matched.is_empty() {
            self.diags.add(
                crate::diag::Severity::Error,
                &span,
                format!("no file matches include `{pattern}`"),
                Some(format!(
                    "relative patterns are resolved from {}",
                    dir.unwrap_or(Path::new(".")).display()
                )),
            );
            return;
        }
        for p in matched {
            self.load_file(&p, Some(&span));
        }
    }
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
