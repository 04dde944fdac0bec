//! From the statement tree to the typed model. Each block kind has a keyword
//! table (keyword → handler, as keepalived's `install_keyword`); unknown and
//! unsupported keywords are reported here, and each block is validated when
//! it ends.

mod announce;
mod check;
mod global;
mod values;
mod vrrp;

use std::collections::HashSet;

use crate::capability::{self, Support};
use crate::diag::{suggest, Diagnostics, Severity};
use crate::keywords::{self, RootKind};
use crate::model::Config;
use crate::tree::Node;

/// A keyword handler: applies statement `n` to the block being built.
pub(crate) type Handler<T> = fn(&mut Parser, &mut T, &Node);

/// One keyword of a block.
pub(crate) struct Kw<T: 'static> {
    pub name: &'static str,
    /// Whether the keyword takes a `{ }` block.
    pub block: bool,
    pub h: Handler<T>,
}

/// A leaf keyword (no block).
pub(crate) const fn leaf<T>(name: &'static str, h: Handler<T>) -> Kw<T> {
    Kw {
        name,
        block: false,
        h,
    }
}

/// A keyword that opens a block.
pub(crate) const fn block<T>(name: &'static str, h: Handler<T>) -> Kw<T> {
    Kw {
        name,
        block: true,
        h,
    }
}

pub(crate) struct Parser {
    pub diags: Diagnostics,
    /// "ctx/keyword" pairs already warned about (one warning each).
    warned: HashSet<String>,
}

impl Parser {
    pub fn new(diags: Diagnostics) -> Self {
        Parser {
            diags,
            warned: HashSet::new(),
        }
    }

    /// Adds the block `n` named `name` to `list`, unless `list` has one of
    /// that name already: then an error, and the second is ignored.
    pub fn add_named<T>(
        &mut self,
        n: &Node,
        what: &str,
        list: &mut Vec<T>,
        item: T,
        name: impl Fn(&T) -> &str,
    ) {
        let new = name(&item);
        if list.iter().any(|x| name(x) == new) {
            self.diags.error(
                n.span(),
                format!("{what} `{new}` defined twice; the second is ignored"),
            );
            return;
        }
        list.push(item);
    }

    /// The keyword's one value (more words are reported and ignored).
    pub fn one_string(&mut self, n: &Node) -> Option<String> {
        let v = self.string(n, 1);
        self.extra(n, 1);
        v
    }

    /// Emits a warning only the first time `key` is seen.
    pub fn warn_once(&mut self, key: &str, n: &Node, msg: String, help: Option<String>) {
        if self.warned.insert(key.to_string()) {
            self.diags.add(Severity::Warning, n.span(), msg, help);
        }
    }

    /// The capability table's warning for a keyword lvsd accepts but does
    /// not act on (once per block kind and keyword); whether it had one.
    fn warn_if_ignored_by_lvsd(&mut self, ctx: &str, n: &Node) -> bool {
        let kw = n.keyword();
        let value = n.words.get(1).map(|w| w.text.as_str());
        match capability::lookup(ctx, kw, value) {
            Some(Support::Ignored(what)) => {
                self.warn_once(
                    &format!("ignored/{ctx}/{kw}"),
                    n,
                    match ctx {
                        "root" => format!("`{kw}` is accepted but not run by lvsd: {what}"),
                        _ => format!("`{kw}` in {ctx} is accepted but not run by lvsd: {what}"),
                    },
                    None,
                );
                true
            }
            _ => false,
        }
    }

    /// Applies `nodes` to `target` with the keyword tables `tables`.
    /// `ctx` names the block for messages; `ignored` lists keywords
    /// keepalived knows in this block that we do not model.
    pub fn dispatch<T>(
        &mut self,
        ctx: &'static str,
        tables: &[&'static [Kw<T>]],
        ignored: &[&str],
        target: &mut T,
        nodes: &[Node],
    ) {
        for n in nodes {
            let kw = n.keyword();
            if let Some(k) = tables.iter().flat_map(|t| t.iter()).find(|k| k.name == kw) {
                if k.block && n.block.is_none() {
                    self.diags
                        .error(n.span(), format!("`{kw}` needs a block; ignored"))
                        .help(format!("write `{kw} {{ ... }}`"));
                    continue;
                }
                if !k.block && n.block.is_some() {
                    self.diags
                        .error(
                            n.span(),
                            format!("`{kw}` does not take a block; the block is ignored"),
                        )
                        .help("remove the braces");
                }
                (k.h)(self, target, n);
                self.warn_if_ignored_by_lvsd(ctx, n);
            } else if ignored.contains(&kw) {
                if self.warn_if_ignored_by_lvsd(ctx, n) {
                    continue;
                }
                self.warn_once(
                    &format!("ignored/{ctx}/{kw}"),
                    n,
                    format!("`{kw}` in {ctx} is not supported yet, ignored"),
                    None,
                );
            } else {
                // keepalived's -t fails every unknown keyword ("Unknown
                // keyword"): a misspelt `TCP_CHEK` or `real_sever` silently
                // drops a checker or a server, so it is an error here too.
                let names = tables.iter().flat_map(|t| t.iter()).map(|k| k.name);
                let help = suggest(kw, names.chain(ignored.iter().copied()))
                    .map(|s| format!("did you mean `{s}`?"));
                let what = if n.block.is_some() {
                    "; the keyword and its block are ignored"
                } else {
                    "; ignored"
                };
                self.diags.add(
                    Severity::Error,
                    n.span(),
                    format!("Unknown keyword '{kw}' in {ctx}{what}"),
                    help,
                );
            }
        }
    }
}

/// Parses the top level of a configuration.
pub(crate) fn parse_root(p: &mut Parser, nodes: &[Node]) -> Config {
    let mut cfg = Config::default();
    // keepalived applies global_defs wherever it is written (instances take
    // their defaults from it when the whole file has been read), so it is
    // read first.
    for n in nodes.iter().filter(|n| n.keyword() == "global_defs") {
        global::parse(p, &mut cfg, n);
    }
    for n in nodes {
        let kw = n.keyword();
        match kw {
            "global_defs" => {}
            "vrrp_script" => vrrp::parse_script(p, &mut cfg, n),
            "vrrp_track_process" => vrrp::parse_track_process(p, &mut cfg, n),
            "vrrp_sync_group" => {
                vrrp::parse_sync_group(p, &mut cfg, n);
                p.warn_if_ignored_by_lvsd("root", n);
            }
            "vrrp_instance" => vrrp::parse_instance(p, &mut cfg, n),
            "virtual_server_group" => check::parse_vsg(p, &mut cfg, n),
            "virtual_server" => check::parse_vs(p, &mut cfg, n),
            "track_file" | "vrrp_track_file" => check::parse_track_file(p, &mut cfg, n),
            "bgp_announce" => announce::parse(p, &mut cfg, n),
            _ if keywords::root_keyword(kw).is_some_and(|k| k.kind == RootKind::Ignored) => p
                .warn_once(
                    &format!("ignored/root/{kw}"),
                    n,
                    format!("`{kw}` is not supported yet, ignored"),
                    None,
                ),
            _ => {
                let help = suggest(kw, keywords::ROOT.iter().map(|k| k.name))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| {
                        Some(format!(
                            "top-level blocks are {}",
                            keywords::root_names(RootKind::Modelled)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    });
                p.diags.add(
                    Severity::Fatal,
                    n.span(),
                    format!("unknown top-level keyword `{kw}`"),
                    help,
                );
            }
        }
    }
    check::resolve_file_checks(p, &mut cfg);
    vrrp::resolve_sync_group_states(p, &mut cfg);
    cfg
}
