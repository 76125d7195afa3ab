//! Every boot fact Keel's sources print is documented in the README's boot-facts table.
//!
//! Keys come from two kinds of call: `console::fact("key", ...)` anywhere in the core, and
//! the `("key", value)` pairs an architecture's `fn facts()` returns (the core prints
//! them). The README's table is the section `## Boot facts`; a key is documented when it
//! appears in backquotes in the first column of one of its rows.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const SOURCES: &[&str] = &["kernel/src", "arch-aarch64/src", "arch-x86_64/src", "platform/src"];

#[test]
fn every_printed_fact_is_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut printed = BTreeSet::new();
    for dir in SOURCES {
        for file in rust_files(&root.join(dir)) {
            printed.extend(printed_keys(&fs::read_to_string(&file).unwrap()));
        }
    }
    // The scan must see what every boot prints, else it checks nothing.
    for key in ["version", "arch", "memory-mib", "el2", "virtualization", "pause-filter"] {
        assert!(printed.contains(key), "the source scan missed the fact `{key}`; found {printed:?}");
    }
    let documented = readme_keys(&fs::read_to_string(root.join("README.md")).unwrap());
    let missing: Vec<&String> = printed.iter().filter(|k| !documented.contains(*k)).collect();
    assert!(missing.is_empty(), "boot facts printed but missing from README.md's table: {missing:?}");
}

#[test]
fn the_scanners_read_what_they_are_shown() {
    let src = r#"
        console::fact("alpha", 1);
        fn facts() -> Vec<(&'static str, String)> {
            let mut f = Vec::new();
            f.push(("beta", x));
            vec![("gamma", y), ("delta", z)]
        }
        fn other() { let t = ("not-a-fact", 3); }
        fn facts() { let c = x.map_or("none", |c| c.name()); }
    "#;
    let keys: Vec<String> = printed_keys(src).into_iter().collect();
    assert_eq!(keys, ["alpha", "beta", "delta", "gamma"]);
    let readme =
        "## Boot facts\n\n| key | value |\n|---|---|\n| `a` | x |\n| x86: `b`, `c` | `no` |\n\n## Next\n| `d` | |\n";
    let keys: Vec<String> = readme_keys(readme).into_iter().collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The string literal starting at `s` (just after its opening quote), if it is a plain one.
fn literal(s: &str) -> Option<&str> {
    let end = s.find('"')?;
    let key = &s[..end];
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')).then_some(key)
}

fn printed_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (at, _) in text.match_indices("fact(\"") {
        if let Some(k) = literal(&text[at + "fact(\"".len()..]) {
            keys.insert(k.to_string());
        }
    }
    // The bodies of `fn facts()`: every `("key", ...)` pair.
    for (at, _) in text.match_indices("fn facts()") {
        let Some(open) = text[at..].find('{').map(|o| at + o) else { continue };
        let mut depth = 0;
        let mut end = text.len();
        for (k, ch) in text[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &text[open..end];
        for (p, _) in body.match_indices("(\"") {
            // A pair opens a list element (`[`, `,`) or a `push(`, not a call's arguments.
            let before = body[..p].trim_end();
            if !(before.ends_with('[') || before.ends_with(',') || before.ends_with("push(")) {
                continue;
            }
            let rest = &body[p + 2..];
            if let Some(k) = literal(rest) {
                if rest[k.len() + 1..].trim_start().starts_with(',') {
                    keys.insert(k.to_string());
                }
            }
        }
    }
    keys
}

fn readme_keys(readme: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let Some(start) = readme.find("## Boot facts") else { return keys };
    let section = &readme[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let first = line.split('|').nth(1).unwrap_or("");
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                keys.insert(part.to_string());
            }
        }
    }
    keys
}
