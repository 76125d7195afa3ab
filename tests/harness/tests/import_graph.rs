//! Keel's crates have no import circles between their files.
//!
//! Every file of a crate is a node; every `crate::a::b::...` path a file names (in a `use`
//! or inline) is an arrow to the file that defines the item, found by walking the module
//! tree and following `pub use` re-exports. A strongly connected set of more than one file
//! is a circle: the files cannot be understood, tested or moved one at a time. `super::`
//! and `self::` paths are not arrows (a module and its children are one room).
//!
//! `keel-kernel` and `keel-abi` must have none. The backends' circles that predate this
//! test are listed in [`KNOWN`] (they are printed on every run): a circle with a file that
//! is not listed there fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Files (relative to the crate's `src/`) allowed in a circle for now, per crate. The
/// backends' `cpu.rs` is both a leaf and a composition point (docs/architecture.md); until
/// it is split, its circle is tolerated but may not grow.
const KNOWN: &[(&str, &[&str])] = &[
    ("arch-aarch64", &["boot/mod.rs", "cpu.rs", "irq/mod.rs", "mmu.rs", "smp.rs", "stage2.rs"]),
    (
        "arch-x86_64",
        &[
            "acpi.rs",
            "boot.rs",
            "cpu.rs",
            "exceptions.rs",
            "irq/mod.rs",
            "power.rs",
            "smp.rs",
            "timer.rs",
            "vcpu/mod.rs",
        ],
    ),
];

const CRATES: &[&str] = &["kernel", "kernel/abi", "arch-aarch64", "arch-x86_64"];

#[test]
fn no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut failures = Vec::new();
    for krate in CRATES {
        let graph = Graph::load(&root.join(krate).join("src"));
        let allowed: BTreeSet<&str> =
            KNOWN.iter().filter(|(k, _)| k == krate).flat_map(|(_, files)| files.iter().copied()).collect();
        for circle in graph.circles() {
            let new: Vec<&String> = circle.iter().filter(|f| !allowed.contains(f.as_str())).collect();
            let tag = if new.is_empty() { "known circle" } else { "CIRCLE" };
            println!("{krate}: {tag} of {} files: {}", circle.len(), circle.join(", "));
            for f in &circle {
                for to in graph.edges.get(f).into_iter().flatten() {
                    if circle.contains(to) {
                        println!("    {f} -> {to}");
                    }
                }
            }
            if !new.is_empty() {
                failures.push(format!("{krate}: {}", circle.join(", ")));
            }
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
    fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\npub use a::Thing;\n").unwrap();
    fs::write(dir.join("a/mod.rs"), "mod inner;\npub use inner::Thing;\n").unwrap();
    fs::write(dir.join("a/inner.rs"), "use crate::b::{self, Other};\npub struct Thing;\n").unwrap();
    fs::write(
        dir.join("b.rs"),
        "// use crate::a::Thing;\npub struct Other(crate::Thing);\n#[cfg(test)]\nmod tests {\n    use crate::c::*;\n}\n",
    )
    .unwrap();
    fs::write(dir.join("c.rs"), "use crate::b::{Other};\n").unwrap();
    let graph = Graph::load(&dir);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(graph.circles(), vec![vec!["a/inner.rs".to_string(), "b.rs".to_string()]]);
}

/// A crate's files and the arrows between them.
struct Graph {
    /// Module path (`a::b`, empty for the root) to file (relative to `src/`).
    modules: BTreeMap<String, String>,
    /// File to the `pub use` items it re-exports: name -> absolute module-path segments.
    reexports: BTreeMap<String, Vec<(String, Vec<String>)>>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn load(src: &Path) -> Graph {
        let mut files = Vec::new();
        collect(src, src, &mut files);
        let mut modules = BTreeMap::new();
        for f in &files {
            modules.insert(module_of(f), f.clone());
        }
        let mut graph = Graph { modules, reexports: BTreeMap::new(), edges: BTreeMap::new() };
        let mut paths = BTreeMap::new();
        for f in &files {
            let text = without_test_modules(&strip(&fs::read_to_string(src.join(f)).unwrap()));
            let module: Vec<String> = split(&module_of(f));
            let mut abs = Vec::new();
            for (public, tree) in use_trees(&text) {
                for (path, alias) in expand(&tree) {
                    let Some(p) = absolute(&module, &path) else { continue };
                    if public {
                        graph.reexports.entry(f.clone()).or_default().push((alias, p.clone()));
                    }
                    if path.first().map(String::as_str) == Some("crate") {
                        abs.push(p);
                    }
                }
            }
            abs.extend(inline_crate_paths(&text));
            paths.insert(f.clone(), abs);
        }
        for (f, list) in paths {
            let targets: BTreeSet<String> = list.iter().map(|p| graph.resolve(p, 0)).filter(|t| *t != f).collect();
            graph.edges.insert(f, targets);
        }
        graph
    }

    /// The file defining the item at absolute path `p` (segments after `crate`).
    fn resolve(&self, p: &[String], depth: u32) -> String {
        let mut module = String::new();
        let mut i = 0;
        while i < p.len() {
            let next = if module.is_empty() { p[i].clone() } else { format!("{module}::{}", p[i]) };
            if !self.modules.contains_key(&next) {
                break;
            }
            module = next;
            i += 1;
        }
        let file = self.modules[&module].clone();
        if i < p.len() && depth < 8 {
            for (name, target) in self.reexports.get(&file).into_iter().flatten() {
                if *name == p[i] {
                    let mut t = target.clone();
                    t.extend_from_slice(&p[i + 1..]);
                    return self.resolve(&t, depth + 1);
                }
            }
            for (name, target) in self.reexports.get(&file).into_iter().flatten() {
                if name == "*" {
                    let mut t = target.clone();
                    t.extend_from_slice(&p[i..]);
                    let found = self.resolve(&t, depth + 1);
                    if found != self.modules[&target_module(self, target)] {
                        return found;
                    }
                }
            }
        }
        file
    }

    /// Strongly connected sets of more than one file (Tarjan), each sorted, in file order.
    fn circles(&self) -> Vec<Vec<String>> {
        let nodes: Vec<&String> = self.edges.keys().collect();
        let index_of: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut t = Tarjan {
            index: vec![None; nodes.len()],
            low: vec![0; nodes.len()],
            on_stack: vec![false; nodes.len()],
            stack: Vec::new(),
            next: 0,
            sets: Vec::new(),
        };
        let succ: Vec<Vec<usize>> =
            nodes.iter().map(|n| self.edges[*n].iter().filter_map(|m| index_of.get(m).copied()).collect()).collect();
        for v in 0..nodes.len() {
            if t.index[v].is_none() {
                t.visit(v, &succ);
            }
        }
        let mut out: Vec<Vec<String>> = t
            .sets
            .into_iter()
            .filter(|s| s.len() > 1)
            .map(|s| {
                let mut names: Vec<String> = s.into_iter().map(|i| nodes[i].clone()).collect();
                names.sort();
                names
            })
            .collect();
        out.sort();
        out
    }
}

fn target_module(g: &Graph, p: &[String]) -> String {
    let mut module = String::new();
    for s in p {
        let next = if module.is_empty() { s.clone() } else { format!("{module}::{s}") };
        if !g.modules.contains_key(&next) {
            break;
        }
        module = next;
    }
    module
}

struct Tarjan {
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    sets: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, v: usize, succ: &[Vec<usize>]) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &succ[v] {
            match self.index[w] {
                None => {
                    self.visit(w, succ);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut set = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            self.sets.push(set);
        }
    }
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(base, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` -> `a::b`; `lib.rs`, `main.rs` -> the root.
fn module_of(file: &str) -> String {
    let f = file.strip_suffix(".rs").unwrap();
    let f = f.strip_suffix("/mod").unwrap_or(f);
    if f == "lib" || f == "main" {
        String::new()
    } else {
        f.replace('/', "::")
    }
}

fn split(module: &str) -> Vec<String> {
    module.split("::").filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `path` (as written in `module`) as segments after `crate`; `None` for other crates.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "self" => Some(module.iter().chain(&path[1..]).cloned().collect()),
        "super" => {
            let mut m = module.to_vec();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                m.pop();
                rest = &rest[1..];
            }
            Some(m.into_iter().chain(rest.iter().cloned()).collect())
        }
        // A child module (2018 paths); an external crate does not resolve to a file.
        _ => Some(module.iter().chain(path).cloned().collect()),
    }
}

/// The text without comments, string and character literals.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char(b.get(i.wrapping_sub(1))) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The text without inline `#[cfg(test)] mod name { ... }` blocks: host tests may import
/// anything (the mock architecture, the hypervisor) without being part of the layering.
fn without_test_modules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let t = after.trim_start();
        let is_inline_mod = t.starts_with("mod ") && t.find('{').is_some_and(|o| t.find(';').is_none_or(|sc| o < sc));
        if !is_inline_mod {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let open = after.find('{').unwrap_or(after.len());
        let mut depth = 0;
        let mut end = after.len();
        for (k, ch) in after[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Every `use` item in the text: (whether it is `pub`, the tree text after `use`).
fn use_trees(text: &str) -> Vec<(bool, String)> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < b.len() {
        let word = b[i] == 'u' && b[i + 1] == 's' && b[i + 2] == 'e' && b[i + 3].is_whitespace();
        if word && !ident_char(b.get(i.wrapping_sub(1))) {
            let before: String = b[..i].iter().collect();
            let before = before.trim_end();
            let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
            let end = (i..b.len()).find(|&j| b[j] == ';').unwrap_or(b.len());
            out.push((public, b[i + 4..end].iter().collect::<String>()));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// A use tree (`a::{b, c::{d as e, self}}`) as paths with the name each brings in.
fn expand(tree: &str) -> Vec<(Vec<String>, String)> {
    // One space between words, none around punctuation: `a::{b as c, d}` -> `a::{b as c,d}`.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut tree = words.join(" ");
    for p in ["::", "{", "}", ","] {
        tree = tree.replace(&format!(" {p}"), p).replace(&format!("{p} "), p);
    }
    let mut out = Vec::new();
    expand_into(&[], tree.trim_start_matches("::"), &mut out);
    out
}

fn expand_into(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open].split("::").filter(|s| !s.is_empty()).map(String::from).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut p = prefix.to_vec();
        p.extend(head);
        let mut depth = 0;
        let mut start = 0;
        let chars: Vec<char> = inner.chars().collect();
        for (k, ch) in chars.iter().enumerate() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let part: String = chars[start..k].iter().collect();
                    expand_into(&p, &part, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        let part: String = chars[start..].iter().collect();
        expand_into(&p, &part, out);
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim())),
        None => (tree.trim(), None),
    };
    if path.is_empty() {
        return;
    }
    let mut p = prefix.to_vec();
    for s in path.split("::") {
        if s == "self" && !p.is_empty() {
            continue;
        }
        p.push(s.to_string());
    }
    let name = alias.map(String::from).unwrap_or_else(|| p.last().cloned().unwrap_or_default());
    if p.last().map(String::as_str) == Some("*") {
        p.pop();
        out.push((p, "*".into()));
    } else {
        out.push((p, name));
    }
}

/// `crate::a::b` paths written outside `use` items (the `use` items are read separately;
/// reading them again here is harmless).
fn inline_crate_paths(text: &str) -> Vec<Vec<String>> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= b.len() {
        let at: String = b[i..i + 7].iter().collect();
        if at == "crate::" && !ident_char(b.get(i.wrapping_sub(1))) && b.get(i.wrapping_sub(1)) != Some(&'$') {
            let mut j = i + 7;
            let mut segs = Vec::new();
            let mut tree = false;
            loop {
                let s = j;
                while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_') {
                    j += 1;
                }
                if j == s {
                    // `crate::a::{...}` or `crate::a::*`: a use tree, read by `use_trees`.
                    tree = true;
                    break;
                }
                segs.push(b[s..j].iter().collect::<String>());
                if j + 1 < b.len() && b[j] == ':' && b[j + 1] == ':' {
                    j += 2;
                } else {
                    break;
                }
            }
            if !tree {
                out.push(segs);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}
