//! Tokenizer for one logical line of keepalived.conf.
//!
//! keepalived's rules (lib/parser.c): words are separated by blanks; `#` and
//! `!` outside double quotes start a comment (`\#` and `\!` escape them); a
//! double-quoted string is one word; `{` and `}` outside quotes are tokens of
//! their own even when glued to a word, so a block may open, hold statements
//! and close on one line. We treat every Unicode white space as a blank, so
//! U+00A0 (no-break space, common in configs pasted from web pages) and
//! U+3000 separate words as tabs do.

use std::sync::Arc;

use crate::diag::{Diagnostics, Span};

/// A lexical token, with the position of its first character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    Word {
        text: String,
        quoted: bool,
    },
    Open,
    Close,
    /// End of a statement (end of line).
    Eol,
}

#[derive(Clone, Debug)]
pub(crate) struct Tok {
    pub kind: TokKind,
    pub span: Span,
}

/// Whether `c` separates words.
pub(crate) fn is_blank(c: char) -> bool {
    c.is_whitespace()
}

/// Returns `text` up to its first comment start (outside quotes).
pub(crate) fn strip_comment(text: &str) -> &str {
    let mut quote = false;
    let mut prev_backslash = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' if !prev_backslash => quote = !quote,
            '#' | '!' if !quote && !prev_backslash => return &text[..i],
            _ => {}
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    text
}

/// Tokenizes `text`, whose first character is at `line:col` of `file`.
/// A `\n` inside `text` (from a multi-line `$DEFINITION`) ends a statement.
/// Always ends with an [`TokKind::Eol`].
pub(crate) fn tokenize(
    text: &str,
    file: &Arc<str>,
    line: u32,
    col: u32,
    out: &mut Vec<Tok>,
    diags: &mut Diagnostics,
) {
    let mut line = line;
    let mut col = col;
    let mut chars = text.chars().peekable();
    // The word being built and where it started.
    let mut word = String::new();
    let mut word_span: Option<Span> = None;
    let mut quoted = false;
    let mut in_quote: Option<Span> = None;

    fn flush(word: &mut String, span: &mut Option<Span>, quoted: &mut bool, out: &mut Vec<Tok>) {
        if let Some(s) = span.take() {
            out.push(Tok {
                kind: TokKind::Word {
                    text: std::mem::take(word),
                    quoted: *quoted,
                },
                span: s,
            });
        }
        *quoted = false;
    }

    while let Some(c) = chars.next() {
        let here = Span::new(file, line, col);
        col += 1;
        if let Some(qspan) = &in_quote {
            if c != '\n' {
                if c == '"' {
                    in_quote = None;
                } else {
                    word.push(c);
                }
                continue;
            }
            // A quote ends with its line; the line then ends as any other.
            diags.error(
                qspan,
                "unterminated quote: a '\"' opened here is not closed on this line",
            );
            in_quote = None;
        }
        match c {
            '\n' => {
                flush(&mut word, &mut word_span, &mut quoted, out);
                out.push(Tok {
                    kind: TokKind::Eol,
                    span: here,
                });
                line += 1;
                col = 1;
            }
            '#' | '!' => {
                // Comment: the rest of this physical line is ignored.
                flush(&mut word, &mut word_span, &mut quoted, out);
                for c2 in chars.by_ref() {
                    if c2 == '\n' {
                        out.push(Tok {
                            kind: TokKind::Eol,
                            span: Span::new(file, line, col),
                        });
                        line += 1;
                        col = 1;
                        break;
                    }
                    col += 1;
                }
            }
            '\\' if matches!(chars.peek(), Some('#') | Some('!')) => {
                let escaped = chars.next().unwrap_or('#');
                col += 1;
                if word_span.is_none() {
                    word_span = Some(here);
                }
                word.push(escaped);
            }
            '"' => {
                if word_span.is_none() {
                    word_span = Some(here.clone());
                }
                quoted = true;
                in_quote = Some(here);
            }
            '{' | '}' => {
                flush(&mut word, &mut word_span, &mut quoted, out);
                out.push(Tok {
                    kind: if c == '{' {
                        TokKind::Open
                    } else {
                        TokKind::Close
                    },
                    span: here,
                });
            }
            c if is_blank(c) => flush(&mut word, &mut word_span, &mut quoted, out),
            c => {
                if word_span.is_none() {
                    word_span = Some(here);
                }
                word.push(c);
            }
        }
    }
    if let Some(qspan) = &in_quote {
        diags.error(
            qspan,
            "unterminated quote: a '\"' opened here is not closed on this line",
        );
    }
    flush(&mut word, &mut word_span, &mut quoted, out);
    out.push(Tok {
        kind: TokKind::Eol,
        span: Span::new(file, line, col),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens of `s` read as line `line` of a file, and what was reported.
    fn lex(s: &str, line: u32) -> (Vec<Tok>, Diagnostics) {
        let f: Arc<str> = Arc::from("t");
        let mut out = Vec::new();
        let mut d = Diagnostics::new();
        tokenize(s, &f, line, 1, &mut out, &mut d);
        (out, d)
    }

    fn words(s: &str) -> Vec<String> {
        lex(s, 1)
            .0
            .iter()
            .map(|t| match &t.kind {
                TokKind::Word { text, .. } => text.clone(),
                TokKind::Open => "{".into(),
                TokKind::Close => "}".into(),
                TokKind::Eol => ";".into(),
            })
            .collect()
    }

    #[test]
    fn splits_braces_quotes_comments_nbsp() {
        assert_eq!(words("a{b}c"), ["a", "{", "b", "}", "c", ";"]);
        assert_eq!(words("x \"a # b\" # c"), ["x", "a # b", ";"]);
        assert_eq!(words("\u{a0}\u{a0}weight\u{a0}3 ! c"), ["weight", "3", ";"]);
        assert_eq!(words("p a\\#b"), ["p", "a#b", ";"]);
        assert_eq!(words("} #end real_server 1"), ["}", ";"]);
    }

    #[test]
    fn a_quote_ends_with_its_line() {
        let (out, d) = lex("a \"b\nc", 1);
        let kinds: Vec<_> = out.iter().map(|t| (&t.kind, t.span.line)).collect();
        assert!(matches!(kinds[1], (TokKind::Word { text, quoted: true }, 1) if text == "b"));
        assert!(matches!(kinds[2], (TokKind::Eol, 1)));
        assert!(matches!(kinds[3], (TokKind::Word { text, .. }, 2) if text == "c"));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn columns_count_chars() {
        let (out, _) = lex("\u{a0}é x", 3);
        assert_eq!(out[0].span.col, 2);
        assert_eq!(out[1].span.col, 4);
        assert_eq!(out[1].span.line, 3);
    }
}
