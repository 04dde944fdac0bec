//! Diagnostics: source spans, graded severities and keepalived-compatible
//! config-test exit codes.

use std::fmt;
use std::sync::Arc;

/// A position in a configuration file (1-based line and column; columns count
/// Unicode scalar values, so a U+00A0 or a CJK character is one column).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file name as it was given (or as an `include` resolved it).
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: &Arc<str>, line: u32, col: u32) -> Self {
        Span {
            file: Arc::clone(file),
            line,
            col,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// How bad a diagnostic is. Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The config runs as written; something is odd, deprecated, ignored or
    /// not supported by lvs-xdp.
    Warning,
    /// The config runs, but an item is ignored or replaced by its default
    /// (keepalived's "configuration errors, but keepalived will still run").
    Error,
    /// The config cannot be used: syntax (braces, quotes), unparsable values,
    /// unknown top-level blocks, missing files.
    Fatal,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        })
    }
}

/// One finding, always with the place it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// What to write instead, when we know.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Adds what to write instead.
    pub(crate) fn help(&mut self, help: impl Into<String>) {
        self.help = Some(help.into());
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: severity: message (hint: help)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.span, self.severity, self.message)?;
        if let Some(h) = &self.help {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// `keepalived -t` exit code: the configuration is fine (warnings allowed).
pub const EXIT_OK: i32 = 0;
/// `lvsd -t` exit code when the configuration cannot be run: 3, keepalived's
/// `KEEPALIVED_EXIT_FATAL`. (keepalived 2.2's own `-t` returns 4 here and 5
/// for "errors but would run"; lvs-xdp keeps the 0/3/4 scale its operators
/// were promised, where 4 is keepalived's `KEEPALIVED_EXIT_CONFIG`.)
pub const EXIT_CANNOT_RUN: i32 = 3;
/// `lvsd -t` exit code when there are errors but the configuration would
/// still run: 4, keepalived's `KEEPALIVED_EXIT_CONFIG`.
pub const EXIT_ERRORS: i32 = 4;

/// The diagnostics of one parse, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// A finding at `span`, with what to write instead when we know.
    pub(crate) fn add(
        &mut self,
        severity: Severity,
        span: &Span,
        message: impl Into<String>,
        help: Option<String>,
    ) -> &mut Diagnostic {
        self.items.push(Diagnostic {
            severity,
            span: span.clone(),
            message: message.into(),
            help,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// A warning at `span`; chain [`Diagnostic::help`] to say what to write.
    pub(crate) fn warn(&mut self, span: &Span, message: impl Into<String>) -> &mut Diagnostic {
        self.add(Severity::Warning, span, message, None)
    }

    /// An error at `span`; chain [`Diagnostic::help`] to say what to write.
    pub(crate) fn error(&mut self, span: &Span, message: impl Into<String>) -> &mut Diagnostic {
        self.add(Severity::Error, span, message, None)
    }

    /// A fatal error at `span`; chain [`Diagnostic::help`] to say what to write.
    pub(crate) fn fatal(&mut self, span: &Span, message: impl Into<String>) -> &mut Diagnostic {
        self.add(Severity::Fatal, span, message, None)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The most severe diagnostic, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.items.iter().map(|d| d.severity).max()
    }

    /// True when at least one error or fatal diagnostic was found.
    pub fn has_errors(&self) -> bool {
        self.worst() >= Some(Severity::Error)
    }

    /// The config-test exit code, following `keepalived -t`
    /// (see the constants): [`EXIT_OK`] (0) with only warnings,
    /// [`EXIT_ERRORS`] (4) when some item is wrong but the config would run,
    /// [`EXIT_CANNOT_RUN`] (3) when it cannot be used at all.
    /// Unlike keepalived, warnings (unknown or unsupported keywords, lints)
    /// keep the exit code at 0.
    pub fn exit_code(&self) -> i32 {
        match self.worst() {
            None | Some(Severity::Warning) => EXIT_OK,
            Some(Severity::Error) => EXIT_ERRORS,
            Some(Severity::Fatal) => EXIT_CANNOT_RUN,
        }
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a typo.
/// Case is ignored (`tcp_check` is `TCP_CHECK` written in the wrong case).
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let word = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
