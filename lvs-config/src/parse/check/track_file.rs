//! `track_file` at the top level (keepalived's track_file.c) and the
//! FILE_CHECKs that name one.

use crate::model::{Checker, Config, TrackFile};
use crate::parse::{leaf, Kw, Parser};
use crate::tree::Node;

/// `track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }`.
pub(in crate::parse) fn parse_track_file(p: &mut Parser, cfg: &mut Config, n: &Node) {
    let Some(name) = p.string(n, 1) else { return };
    if n.keyword() == "vrrp_track_file" {
        p.warn_once(
            "deprecated/vrrp_track_file",
            n,
            "\"vrrp_track_file\" is deprecated, please use \"track_file\"".into(),
            None,
        );
    }
    let Some(body) = &n.block else {
        p.diags.fatal(n.span(), "`track_file` needs a block");
        return;
    };
    let mut t = TrackFile {
        span: n.span().clone(),
        name,
        file: String::new(),
        weight: 1,
        weight_reverse: false,
        init_file: None,
    };
    p.dispatch("track_file", &[TRACK_FILE_KW], &[], &mut t, body);
    if t.file.is_empty() {
        p.diags
            .error(
                n.span(),
                format!("No file set for track_file {} - ignoring", t.name),
            )
            .help("add `file /path/to/file`");
        return;
    }
    p.add_named(n, "track_file", &mut cfg.track_files, t, |t| &t.name);
}

static TRACK_FILE_KW: &[Kw<TrackFile>] = &[
    leaf("file", |p, t, n| {
        if let Some(f) = p.string(n, 1) {
            t.file = f;
        }
    }),
    leaf("weight", |p, t, n| {
        if let Some(w) = p.number(n, 1, -254, 254) {
            t.weight = w;
        }
        match n.words.get(2).map(|w| w.text.as_str()) {
            None => {}
            Some("reverse") => t.weight_reverse = true,
            Some(other) => {
                p.diags.error(
                    &n.words[2].span,
                    format!("track_file {} unknown weight option {other}", t.name),
                );
            }
        }
    }),
    leaf("init_file", |p, t, n| {
        let mut value = 0;
        let mut overwrite = false;
        for w in &n.words[1..] {
            if w.text == "overwrite" {
                overwrite = true;
            } else if let Some(v) = p.number_word("init_file", w, -254, 254) {
                value = v;
            }
        }
        t.init_file = Some((value, overwrite));
    }),
];

/// After the whole file: FILE_CHECKs name existing `track_file`s
/// (keepalived looks them up when it reads the checker).
pub(in crate::parse) fn resolve_file_checks(p: &mut Parser, cfg: &mut Config) {
    let names: Vec<String> = cfg.track_files.iter().map(|t| t.name.clone()).collect();
    for vs in &mut cfg.virtual_servers {
        for rs in &mut vs.real_servers {
            rs.checkers.retain(|c| {
                let Checker::File(f) = c else { return true };
                if names.contains(&f.track_file) {
                    return true;
                }
                p.diags
                    .error(
                        &f.span,
                        format!("track_file {} not found; FILE_CHECK ignored", f.track_file),
                    )
                    .help("define it with `track_file NAME { file PATH }` at the top level");
                false
            });
        }
    }
}
