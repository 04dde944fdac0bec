//! Builds the statement tree from tokens: a statement is the words of one
//! line; a statement followed by `{` (on the same line or on a line of its
//! own) owns the statements up to the matching `}`.

use crate::diag::{Diagnostics, Span};
use crate::lexer::{Tok, TokKind};

/// A word of a statement.
#[derive(Clone, Debug)]
pub(crate) struct Word {
    pub text: String,
    pub span: Span,
}

/// A statement, with its block if it has one.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub words: Vec<Word>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        self.words.first().map(|w| w.text.as_str()).unwrap_or("")
    }
    pub fn span(&self) -> &Span {
        &self.words[0].span
    }
    /// The span just after the last word, for "missing value" diagnostics.
    pub fn end_span(&self) -> Span {
        let w = self.words.last().expect("statements have words");
        let mut s = w.span.clone();
        s.col += w.text.chars().count() as u32 + 1;
        s
    }
    /// The statements of the block (none for a statement without one).
    pub fn body(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

struct Open {
    header: Vec<Word>,
    brace: Span,
    children: Vec<Node>,
}

pub(crate) fn build(toks: Vec<Tok>, diags: &mut Diagnostics) -> Vec<Node> {
    let mut root: Vec<Node> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut pending: Vec<Word> = Vec::new();
    // The pending statement's line has ended: a `{` may still follow on a
    // later line, but a new word starts a new statement.
    let mut pending_done = false;

    fn children<'a>(root: &'a mut Vec<Node>, stack: &'a mut [Open]) -> &'a mut Vec<Node> {
        match stack.last_mut() {
            Some(o) => &mut o.children,
            None => root,
        }
    }
    fn close(root: &mut Vec<Node>, stack: &mut Vec<Open>) {
        if let Some(o) = stack.pop() {
            let node = Node {
                words: o.header,
                block: Some(o.children),
            };
            children(root, stack).push(node);
        }
    }

    for tok in toks {
        match tok.kind {
            TokKind::Word { text, .. } => {
                if pending_done && !pending.is_empty() {
                    let words = std::mem::take(&mut pending);
                    children(&mut root, &mut stack).push(Node { words, block: None });
                }
                pending_done = false;
                pending.push(Word {
                    text,
                    span: tok.span,
                });
            }
            TokKind::Eol => pending_done = true,
            TokKind::Open => {
                let header = std::mem::take(&mut pending);
                pending_done = false;
                if header.is_empty() {
                    diags
                        .error(&tok.span, "unexpected '{' without a keyword before it")
                        .help("put the block's keyword before '{', e.g. `virtual_ipaddress {`");
                    // Keep braces balanced; the anonymous block is dropped below.
                    stack.push(Open {
                        header: vec![Word {
                            text: String::new(),
                            span: tok.span.clone(),
                        }],
                        brace: tok.span,
                        children: Vec::new(),
                    });
                    continue;
                }
                if !stack.is_empty()
                    && crate::keywords::root_keyword(&header[0].text)
                        .is_some_and(|k| k.root_only_block)
                {
                    let outer = &stack[0];
                    diags
                        .fatal(
                            &outer.header[0].span,
                            format!(
                            "missing '}}': block `{}` opened here is not closed before `{}` at {}",
                            outer
                                .header
                                .iter()
                                .map(|w| w.text.as_str())
                                .collect::<Vec<_>>()
                                .join(" "),
                            header[0].text,
                            header[0].span
                        ),
                        )
                        .help("add the missing '}' where the block should end");
                    while !stack.is_empty() {
                        close(&mut root, &mut stack);
                    }
                }
                stack.push(Open {
                    header,
                    brace: tok.span,
                    children: Vec::new(),
                });
            }
            TokKind::Close => {
                if !pending.is_empty() {
                    let words = std::mem::take(&mut pending);
                    children(&mut root, &mut stack).push(Node { words, block: None });
                }
                pending_done = false;
                if stack.is_empty() {
                    diags
                        .fatal(&tok.span, "extra '}' with no open block")
                        .help("remove it, or add the block it should close");
                } else {
                    close(&mut root, &mut stack);
                }
            }
        }
    }
    if !pending.is_empty() {
        children(&mut root, &mut stack).push(Node {
            words: pending,
            block: None,
        });
    }
    if let Some(outer) = stack.first() {
        diags
            .fatal(
                &outer.header[0].span,
                format!(
                    "missing '}}': block `{}` opened here (its '{{' at {}) is not closed at end of file",
                    outer.header.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
                    outer.brace
                ),
            )
            .help("add the missing '}'");
    }
    while !stack.is_empty() {
        close(&mut root, &mut stack);
    }
    strip_anonymous(&mut root);
    root
}

/// Drops the placeholder blocks of stray `{`.
fn strip_anonymous(nodes: &mut Vec<Node>) {
    nodes.retain(|n| !n.words[0].text.is_empty());
    for n in nodes {
        if let Some(b) = &mut n.block {
            strip_anonymous(b);
        }
    }
}
