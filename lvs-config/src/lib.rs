//! keepalived.conf: lexer, preprocessor, parser, typed model and linter.
//!
//! ```no_run
//! use lvs_config::{parse_file, ParseOptions};
//! let r = parse_file("/etc/keepalived/keepalived.conf".as_ref(), &ParseOptions::default());
//! for d in &r.diagnostics {
//!     eprintln!("{d}");
//! }
//! std::process::exit(r.exit_code());
//! ```
//!
//! Pipeline: `source` (includes, `@id` conditionals, `$NAME` definitions) →
//! `lexer` (words, quotes, comments, braces) → `tree` (statements and
//! blocks) → `parse` (keyword tables per block, end-of-block validation) →
//! `lint` (cross-block checks) → [`model::Config`].
//!
//! Severity policy (see [`Severity`]): a keyword keepalived knows that we do
//! not support is a warning (the config still means the same to us); an
//! unknown keyword is an error (keepalived's `-t` fails it too, and a typo
//! such as `TCP_CHEK` silently drops a checker), as is a value that parses
//! but is out of range or that keepalived replaces by a default (the item is
//! ignored or defaulted, as keepalived does); a syntax error, a value that
//! does not parse, an unknown top-level block or a missing required item is
//! fatal. Where lvs-xdp deliberately reads something differently from
//! keepalived 2.2.7, a diagnostic at that line says so (README table).

pub mod capability;
pub mod diag;
mod keywords;
mod lexer;
mod lint;
pub mod model;
mod parse;
mod source;
mod tree;

use std::path::Path;
use std::sync::Arc;

pub use diag::{Diagnostic, Diagnostics, Severity, Span, EXIT_CANNOT_RUN, EXIT_ERRORS, EXIT_OK};
pub use model::*;

/// Options of a parse.
#[derive(Clone, Debug)]
pub struct ParseOptions {
    /// keepalived's config id (`-i`): lines `@ID ...` are kept only when it
    /// is `ID`, lines `@^ID ...` only when it is not. [`Default`] takes the
    /// host name, as keepalived does.
    pub config_id: Option<String>,
    /// Definitions set before the file is read (like `$NAME=value` lines).
    pub defines: Vec<(String, String)>,
    /// Whether `include` lines are followed (off for fuzzing).
    pub follow_includes: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            config_id: hostname(),
            defines: Vec::new(),
            follow_includes: true,
        }
    }
}

impl ParseOptions {
    /// Options with an explicit config id.
    pub fn with_config_id(id: impl Into<String>) -> Self {
        ParseOptions {
            config_id: Some(id.into()),
            ..ParseOptions::default()
        }
    }
}

/// The host name (keepalived's default config id), without its domain.
fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = h.trim();
    let short = h.split('.').next().unwrap_or(h);
    (!short.is_empty()).then(|| short.to_string())
}

/// A parsed configuration and everything found wrong with it. The model is
/// always returned (best effort); check [`ParseResult::exit_code`] or
/// [`Diagnostics::has_errors`] before using it.
#[derive(Clone, Debug)]
pub struct ParseResult {
    pub config: Config,
    pub diagnostics: Diagnostics,
}

impl ParseResult {
    /// `keepalived -t` style exit code; see [`Diagnostics::exit_code`].
    pub fn exit_code(&self) -> i32 {
        self.diagnostics.exit_code()
    }

    /// The config, if it has no error or fatal diagnostic.
    pub fn into_result(self) -> Result<(Config, Diagnostics), ConfigError> {
        if self.diagnostics.has_errors() {
            Err(ConfigError::Invalid(self.diagnostics))
        } else {
            Ok((self.config, self.diagnostics))
        }
    }
}

/// A configuration that should not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration:\n{0}")]
    Invalid(Diagnostics),
}

/// Parses a configuration file (and what it includes). Never panics; a file
/// that cannot be read is a fatal diagnostic.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> ParseResult {
    let mut loader = source::Loader::new(opts);
    loader.load_file(path, None);
    finish(loader)
}

/// Parses configuration text; `name` is used in diagnostics and relative
/// `include`s are resolved from its directory.
pub fn parse_str(name: &str, text: &str, opts: &ParseOptions) -> ParseResult {
    let mut loader = source::Loader::new(opts);
    let file: Arc<str> = Arc::from(name);
    let dir = Path::new(name)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    loader.load_text(&file, dir, text);
    finish(loader)
}

fn finish(loader: source::Loader<'_>) -> ParseResult {
    let mut diags = loader.diags;
    let nodes = tree::build(loader.toks, &mut diags);
    let mut p = parse::Parser::new(diags);
    let config = parse::parse_root(&mut p, &nodes);
    let mut diagnostics = p.diags;
    lint::lint(&mut diagnostics, &config);
    ParseResult {
        config,
        diagnostics,
    }
}

/// `keepalived -t`: parses `path`, prints every diagnostic to `out` and
/// returns the exit code.
pub fn config_test(path: &Path, opts: &ParseOptions, out: &mut dyn std::io::Write) -> i32 {
    let r = parse_file(path, opts);
    for d in &r.diagnostics {
        let _ = writeln!(out, "{d}");
    }
    r.exit_code()
}
