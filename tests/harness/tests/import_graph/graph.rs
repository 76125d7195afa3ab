//! The graph of a crate's files: nodes, arrows resolved through the module tree and
//! `pub use` re-exports, and its strongly connected sets.

use crate::source::{expand, inline_paths, strip, use_trees, without_test_modules};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A crate's files and the arrows between them.
pub struct Graph {
    /// Module path (`a::b`, empty for the root) to file (relative to `src/`).
    modules: BTreeMap<String, String>,
    /// File to the `pub use` items it re-exports: name -> absolute module-path segments.
    reexports: BTreeMap<String, Vec<(String, Vec<String>)>>,
    /// File to the files it imports.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn load(src: &Path) -> Graph {
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
                    if !graph.names_crate_item(&module, &path) {
                        continue;
                    }
                    let Some(p) = absolute(&module, &path) else { continue };
                    if public {
                        // A re-export hands a name on: whoever names it is resolved through
                        // to the defining file, and the re-exporting file gets no arrow.
                        graph.reexports.entry(f.clone()).or_default().push((alias, p));
                    } else {
                        abs.push(p);
                    }
                }
            }
            abs.extend(inline_paths(&text).iter().filter_map(|p| absolute(&module, p)));
            paths.insert(f.clone(), abs);
        }
        for (f, list) in paths {
            let targets: BTreeSet<String> = list.iter().map(|p| graph.resolve(p, 0)).filter(|t| *t != f).collect();
            graph.edges.insert(f, targets);
        }
        graph
    }

    /// Whether `path`, written in `module`, names something of this crate: it starts at
    /// `crate`, `self` or `super`, or at a child module (otherwise it names another crate).
    fn names_crate_item(&self, module: &[String], path: &[String]) -> bool {
        match path.first().map(String::as_str) {
            None => false,
            Some("crate" | "self" | "super") => true,
            Some(first) => {
                let child: Vec<&str> = module.iter().map(String::as_str).chain([first]).collect();
                self.modules.contains_key(&child.join("::"))
            }
        }
    }

    /// The file defining the item at absolute path `p` (segments after `crate`).
    pub fn resolve(&self, p: &[String], depth: u32) -> String {
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
    pub fn circles(&self) -> Vec<Vec<String>> {
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
