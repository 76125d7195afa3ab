//! Keel's crates have no import circles between their files.
//!
//! Every file of a crate is a node; every path a file names (in a `use` or inline) that
//! starts at `crate::`, `super::`, `self::` or a child module is an arrow to the file that
//! defines the item, found by walking the module tree and following `pub use` re-exports.
//! A `pub use` hands a name on and is no arrow of its own; `mod` declarations are none
//! either. A strongly connected set of more than one file is a circle: the files cannot be
//! understood, tested or moved one at a time. A parent that uses a child while the child
//! uses an item the parent defines is such a circle too.
//!
//! No crate may have one: every circle found is printed with its arrows, and fails.
//! Inline paths that start at a child module without `self::` (`child::f()`) are not read:
//! that is a known gap of this reader.

mod graph;
mod source;

use graph::Graph;
use std::fs;
use std::path::Path;

const CRATES: &[&str] =
    &["kernel", "kernel/abi", "arch-aarch64", "arch-x86_64", "host-memory", "toolstack", "xenstore", "xenstored"];

#[test]
fn no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut failures = Vec::new();
    for krate in CRATES {
        let graph = Graph::load(&root.join(krate).join("src"));
        for circle in graph.circles() {
            println!("{krate}: CIRCLE of {} files: {}", circle.len(), circle.join(", "));
            for f in &circle {
                for to in graph.edges.get(f).into_iter().flatten() {
                    if circle.contains(to) {
                        println!("    {f} -> {to}");
                    }
                }
            }
            failures.push(format!("{krate}: {}", circle.join(", ")));
        }
    }
    assert!(failures.is_empty(), "import circles:\n{}", failures.join("\n"));
}

/// The checker finds a circle it is shown (so that it cannot pass by seeing nothing).
#[test]
fn a_circle_is_found() {
    let dir = std::env::temp_dir().join(format!("keel-import-graph-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod f;\npub use a::Thing;\n")
        .unwrap();
    fs::write(dir.join("a/mod.rs"), "mod inner;\npub use inner::Thing;\n").unwrap();
    fs::write(dir.join("a/inner.rs"), "use crate::b::{self, Other};\npub struct Thing;\n").unwrap();
    fs::write(
        dir.join("b.rs"),
        "// use crate::a::Thing;\npub struct Other(crate::Thing);\n#[cfg(test)]\nmod tests {\n    use crate::c::*;\n}\n",
    )
    .unwrap();
    fs::write(dir.join("c.rs"), "use crate::b::{Other};\n").unwrap();
    // A parent that uses its child, and the child naming the parent's item through `super::`.
    fs::create_dir_all(dir.join("d")).unwrap();
    fs::write(dir.join("d/mod.rs"), "mod e;\nuse e::helper;\npub struct Root;\n").unwrap();
    fs::write(dir.join("d/e.rs"), "pub fn helper() -> super::Root { super::Root }\n").unwrap();
    // A re-export alone is no arrow: f/mod.rs hands g's name on, g uses f's item.
    fs::create_dir_all(dir.join("f")).unwrap();
    fs::write(dir.join("f/mod.rs"), "mod g;\npub use g::G;\npub struct F;\n").unwrap();
    fs::write(dir.join("f/g.rs"), "use super::F;\npub struct G(F);\n").unwrap();
    let graph = Graph::load(&dir);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(
        graph.circles(),
        vec![vec!["a/inner.rs".to_string(), "b.rs".to_string()], vec!["d/e.rs".to_string(), "d/mod.rs".to_string()]]
    );
}
