//! Node permissions (`docs/misc/xenstore.txt`): a list of `<letter><domid>` entries, `n`
//! none, `r` read, `w` write, `b` both. The first entry names the owner, whose letter is the
//! access of every domain not listed; the owner itself, dom0 and privileged domains may do
//! everything.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::wire::{DomId, XsError};

/// What one entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    /// Whether the entry lets a domain read.
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    /// Whether the entry lets a domain write.
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One entry of a permission list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub domid: DomId,
    pub access: Access,
}

impl Perm {
    /// Parses `r5`, `n0`, … (without NUL). `EINVAL` for anything else.
    pub fn parse(s: &[u8]) -> Result<Perm, XsError> {
        let (&letter, digits) = s.split_first().ok_or(XsError::Einval)?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return Err(XsError::Einval),
        };
        let domid = parse_domid(digits)?;
        Ok(Perm { domid, access })
    }
}

/// Parses a decimal domain id (`EINVAL` if not a number below 65536).
pub fn parse_domid(digits: &[u8]) -> Result<DomId, XsError> {
    parse_decimal(digits).and_then(|n| DomId::try_from(n).map_err(|_| XsError::Einval))
}

/// Parses a decimal number of at most 20 digits without overflow (`EINVAL` otherwise).
pub fn parse_decimal(digits: &[u8]) -> Result<u64, XsError> {
    if digits.is_empty() || digits.len() > 20 {
        return Err(XsError::Einval);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return Err(XsError::Einval);
        }
        acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(d - b'0'))).ok_or(XsError::Einval)
    })
}

/// A node's permission list; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms(Vec<Perm>);

/// What a caller may do with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
    /// Owner rights: change the permissions.
    pub owner: bool,
}

impl Rights {
    /// Every right (dom0, privileged domains, the owner for read/write).
    pub const ALL: Rights = Rights { read: true, write: true, owner: true };
}

/// Who asks: a domain, whether it is privileged, and the domain it acts for (`SET_TARGET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub domid: DomId,
    pub privileged: bool,
    pub target: Option<DomId>,
}

impl Perms {
    /// A list from its entries; `EINVAL` if empty.
    pub fn new(entries: Vec<Perm>) -> Result<Perms, XsError> {
        if entries.is_empty() {
            return Err(XsError::Einval);
        }
        Ok(Perms(entries))
    }

    /// `owner` owns it and nobody else may do anything (`n<owner>`).
    pub fn owned_by(owner: DomId) -> Perms {
        Perms(alloc::vec![Perm { domid: owner, access: Access::None }])
    }

    /// The owning domain.
    pub fn owner(&self) -> DomId {
        self.0[0].domid
    }

    /// The entries, owner first.
    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    /// The same list with `owner` as owner.
    pub fn with_owner(&self, owner: DomId) -> Perms {
        let mut p = self.0.clone();
        p[0].domid = owner;
        Perms(p)
    }

    /// Parses the NUL-separated entries of a `SET_PERMS` request (after the path).
    pub fn parse_list(bytes: &[u8]) -> Result<Perms, XsError> {
        let body = bytes.strip_suffix(&[0]).ok_or(XsError::Einval)?;
        let entries = body.split(|&b| b == 0).map(Perm::parse).collect::<Result<Vec<_>, _>>()?;
        Perms::new(entries)
    }

    /// The `GET_PERMS` reply: every entry followed by a NUL.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut s = String::new();
        for p in &self.0 {
            let _ = write!(s, "{}{}", p.access.letter(), p.domid);
            s.push('\0');
        }
        s.into_bytes()
    }

    /// What `caller` may do with a node carrying these permissions.
    pub fn rights(&self, caller: &Caller) -> Rights {
        if caller.privileged || caller.domid == 0 {
            return Rights::ALL;
        }
        let is_me = |d: DomId| d == caller.domid || caller.target == Some(d);
        if is_me(self.owner()) {
            return Rights::ALL;
        }
        let access = self.0[1..].iter().find(|p| is_me(p.domid)).map_or(self.0[0].access, |p| p.access);
        Rights { read: access.reads(), write: access.writes(), owner: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(domid: DomId) -> Caller {
        Caller { domid, privileged: false, target: None }
    }

    #[test]
    fn parse_and_format() {
        let p = Perms::parse_list(b"n5\0r7\0b0\0").unwrap();
        assert_eq!(p.owner(), 5);
        assert_eq!(p.to_wire(), b"n5\0r7\0b0\0");
        for bad in [&b""[..], b"\0", b"x5\0", b"r\0", b"r70000\0", b"r5", b"r-1\0"] {
            assert_eq!(Perms::parse_list(bad), Err(XsError::Einval), "{bad:?}");
        }
    }

    #[test]
    fn owner_default_and_listed_domains() {
        let p = Perms::parse_list(b"r5\0w7\0n8\0").unwrap();
        assert_eq!(p.rights(&caller(5)), Rights::ALL);
        assert_eq!(p.rights(&caller(0)), Rights::ALL);
        assert_eq!(p.rights(&caller(7)), Rights { read: false, write: true, owner: false });
        assert_eq!(p.rights(&caller(8)), Rights { read: false, write: false, owner: false });
        assert_eq!(p.rights(&caller(9)), Rights { read: true, write: false, owner: false });
        let privileged = Caller { domid: 9, privileged: true, target: None };
        assert_eq!(p.rights(&privileged), Rights::ALL);
        let device_model = Caller { domid: 9, privileged: false, target: Some(5) };
        assert_eq!(p.rights(&device_model), Rights::ALL);
    }

    #[test]
    fn decimal_never_overflows() {
        assert_eq!(parse_decimal(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), Err(XsError::Einval));
        assert_eq!(parse_decimal(b"99999999999999999999999"), Err(XsError::Einval));
    }
}
