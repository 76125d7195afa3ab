//! Path rules (`docs/misc/xenstore.txt`): absolute paths start with `/`, relative ones are
//! resolved against `/local/domain/<domid>`; the characters are ASCII letters and digits and
//! `-/_@`; no empty component, no trailing `/` except the root; at most
//! [`ABS_PATH_MAX`] bytes absolute and [`REL_PATH_MAX`] relative.

use alloc::format;
use alloc::string::String;

use crate::wire::{DomId, XsError, ABS_PATH_MAX, REL_PATH_MAX};

/// The home of domain `domid`: `/local/domain/<domid>`.
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

fn well_formed(p: &str) -> bool {
    p.bytes().all(allowed) && !p.contains("//") && (p == "/" || !p.ends_with('/'))
}

/// A path from a request, resolved to an absolute one for domain `domid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The absolute path.
    pub abs: String,
    /// Whether the caller gave it relative (watch events then carry it relative).
    pub relative: bool,
}

/// Checks `raw` (without its NUL) and resolves it for domain `domid`.
///
/// Errors: `EINVAL` for an empty, malformed or too long path.
pub fn resolve(raw: &[u8], domid: DomId) -> Result<Resolved, XsError> {
    let p = core::str::from_utf8(raw).map_err(|_| XsError::Einval)?;
    if p.is_empty() || !well_formed(p) {
        return Err(XsError::Einval);
    }
    if p.starts_with('/') {
        if p.len() > ABS_PATH_MAX {
            return Err(XsError::Einval);
        }
        return Ok(Resolved { abs: String::from(p), relative: false });
    }
    if p.len() > REL_PATH_MAX {
        return Err(XsError::Einval);
    }
    let abs = format!("{}/{p}", domain_path(domid));
    if abs.len() > ABS_PATH_MAX {
        return Err(XsError::Einval);
    }
    Ok(Resolved { abs, relative: true })
}

/// The parent of an absolute path (`None` for the root).
pub fn parent(abs: &str) -> Option<&str> {
    if abs == "/" {
        return None;
    }
    match abs.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&abs[..i]),
        None => None,
    }
}

/// The last component of an absolute path (empty for the root).
pub fn basename(abs: &str) -> &str {
    abs.rfind('/').map_or(abs, |i| &abs[i + 1..])
}

/// `parent/name`, for an absolute `parent`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether `path` is `ancestor` or lies below it.
pub fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path == ancestor || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// `abs` as domain `domid` would see it relatively, if it lies below the domain's home.
pub fn relative_to_domain(abs: &str, domid: DomId) -> Option<String> {
    let home = domain_path(domid);
    let rest = abs.strip_prefix(home.as_str())?.strip_prefix('/')?;
    Some(String::from(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_to_the_domain_home() {
        let r = resolve(b"device/vbd", 3).unwrap();
        assert_eq!(r.abs, "/local/domain/3/device/vbd");
        assert!(r.relative);
        assert_eq!(relative_to_domain(&r.abs, 3).as_deref(), Some("device/vbd"));
        assert_eq!(relative_to_domain(&r.abs, 4), None);
    }

    #[test]
    fn malformed_paths_are_einval() {
        for bad in [&b""[..], b"/a//b", b"/a/", b"a b", b"/a\0b", b"/\xff", b"/a.b"] {
            assert_eq!(resolve(bad, 1), Err(XsError::Einval), "{bad:?}");
        }
        assert!(resolve(b"/", 1).is_ok());
        assert!(resolve(b"/a-b/_c@d/9", 1).is_ok());
    }

    #[test]
    fn length_limits_are_xens() {
        let long_abs = format!("/{}", "a".repeat(ABS_PATH_MAX - 1));
        assert!(resolve(long_abs.as_bytes(), 0).is_ok());
        let too_long = format!("/{}", "a".repeat(ABS_PATH_MAX));
        assert_eq!(resolve(too_long.as_bytes(), 0), Err(XsError::Einval));
        assert!(resolve("a".repeat(REL_PATH_MAX).as_bytes(), 0).is_ok());
        assert_eq!(resolve("a".repeat(REL_PATH_MAX + 1).as_bytes(), 0), Err(XsError::Einval));
    }

    #[test]
    fn parents_and_prefixes() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(basename("/a/b"), "b");
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/ab", "/"));
        assert_eq!(join("/", "x"), "/x");
    }
}
