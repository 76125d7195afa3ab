//! Reading Rust source text: comments and literals stripped, `use` trees expanded, inline
//! `crate::` paths found.

/// The text without comments, string and character literals.
pub fn strip(text: &str) -> String {
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
pub fn without_test_modules(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let mut t = after.trim_start();
        // Other attributes may stand between `#[cfg(test)]` and the `mod`.
        while t.starts_with("#[") {
            t = t[t.find(']').map_or(t.len(), |e| e + 1)..].trim_start();
        }
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
pub fn use_trees(text: &str) -> Vec<(bool, String)> {
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
pub fn expand(tree: &str) -> Vec<(Vec<String>, String)> {
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

/// `crate::a::b`, `super::a::b` and `self::a::b` paths written outside `use` items, as
/// written (first segment included; the `use` items are read separately, and reading them
/// again here is harmless).
pub fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let head = ["crate", "super", "self"].into_iter().find(|w| {
            let end = i + w.len();
            end + 2 <= b.len()
                && b[i..end].iter().copied().eq(w.chars())
                && b[end] == ':'
                && b[end + 1] == ':'
                && !ident_char(b.get(i.wrapping_sub(1)))
                && b.get(i.wrapping_sub(1)) != Some(&'$')
                && b.get(i.wrapping_sub(1)) != Some(&':')
        });
        let Some(head) = head else {
            i += 1;
            continue;
        };
        let mut j = i + head.len() + 2;
        let mut segs = vec![head.to_string()];
        let mut tree = false;
        loop {
            let s = j;
            while j < b.len() && (b[j].is_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j == s {
                // `crate::a::{...}` or `super::*`: a use tree, read by `use_trees`.
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
    }
    out
}
