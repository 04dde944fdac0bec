//! The README's feature table is the capability table `lvsd -t` reads:
//! `UPDATE_README=1 cargo test -p lvs-config --test capability_readme`
//! rewrites the README's copy after a change to lvs-config/src/capability.rs.

use lvs_config::capability;

const START: &str = "<!-- capability-table: generated from lvs-config/src/capability.rs (UPDATE_README=1 cargo test -p lvs-config --test capability_readme) -->\n";
const END: &str = "<!-- /capability-table -->";

#[test]
fn readme_feature_table_is_the_capability_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let a = readme
        .find(START)
        .expect("README has the capability-table marker")
        + START.len();
    let b = a + readme[a..].find(END).expect("README has the end marker");
    let want = capability::markdown_table();
    if std::env::var_os("UPDATE_README").is_some_and(|v| v == "1") {
        let new = format!("{}{want}{}", &readme[..a], &readme[b..]);
        std::fs::write(path, new).expect("write README.md");
        return;
    }
    assert_eq!(
        &readme[a..b],
        want,
        "README's feature table differs from lvs-config/src/capability.rs (UPDATE_README=1 to rewrite)"
    );
    // Every refused or ignored row says what happens, in the README too.
    for c in capability::CAPABILITIES {
        assert!(readme[a..b].contains(&format!("`{}", c.keyword)), "{c:?}");
    }
}
