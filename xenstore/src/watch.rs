//! Watches: a path (or one of the special paths `@introduceDomain`, `@releaseDomain`) and
//! a token; they fire when the node, or a node below it, changes.

use alloc::string::String;
use alloc::vec::Vec;

use crate::path::{is_at_or_below, relative_to_domain, resolve};
use crate::wire::{DomId, XsError};

/// Fires when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Fires when a domain is released or dies.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The absolute path, or a special path.
    pub abs: String,
    /// Whether the client gave the path relative (its events then name paths relatively).
    pub relative: bool,
    pub token: Vec<u8>,
}

impl Watch {
    /// Parses a WATCH or UNWATCH path for domain `domid`.
    pub fn new(raw_path: &[u8], token: &[u8], domid: DomId) -> Result<Watch, XsError> {
        if raw_path == INTRODUCE_DOMAIN.as_bytes() || raw_path == RELEASE_DOMAIN.as_bytes() {
            let abs = String::from(core::str::from_utf8(raw_path).map_err(|_| XsError::Einval)?);
            return Ok(Watch { abs, relative: false, token: Vec::from(token) });
        }
        if raw_path.first() == Some(&b'@') {
            return Err(XsError::Einval);
        }
        let r = resolve(raw_path, domid)?;
        Ok(Watch { abs: r.abs, relative: r.relative, token: Vec::from(token) })
    }

    /// Whether a change at `path` fires this watch (`exact`: only a watch on that path).
    pub fn fires_for(&self, path: &str, exact: bool) -> bool {
        if self.abs.starts_with('@') {
            return false;
        }
        if exact {
            self.abs == path
        } else {
            is_at_or_below(path, &self.abs)
        }
    }

    /// The `XS_WATCH_EVENT` payload for a change at `path`, seen by domain `domid`.
    pub fn event(&self, path: &str, domid: DomId) -> Vec<u8> {
        let shown = if self.relative { relative_to_domain(path, domid) } else { None };
        let mut out = Vec::from(shown.as_deref().unwrap_or(path).as_bytes());
        out.push(0);
        out.extend_from_slice(&self.token);
        out.push(0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_watches_get_relative_events() {
        let w = Watch::new(b"device", b"tok", 4).unwrap();
        assert!(w.fires_for("/local/domain/4/device/vif/0", false));
        assert!(!w.fires_for("/local/domain/4/devices", false));
        assert_eq!(w.event("/local/domain/4/device/vif/0", 4), b"device/vif/0\0tok\0");
    }

    #[test]
    fn special_paths() {
        let w = Watch::new(b"@releaseDomain", b"t", 0).unwrap();
        assert!(!w.fires_for("/", false));
        assert_eq!(Watch::new(b"@other", b"t", 0), Err(XsError::Einval));
    }
}
