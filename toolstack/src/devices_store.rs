//! The xenstore operations device set-up needs, as a trait: keelctl's device commands and
//! the hotplug agent ([`crate::devd`]) are written against it. The client that speaks
//! xenstore's wire protocol over `/dev/xen/xenbus` implements it; host tests use
//! [`crate::devices_fake::FakeStore`].

use std::fmt;

pub use crate::control::DomId;

/// One entry of a node's permission list (`xenstore.txt`: the first names the owner,
/// with the access everyone else not listed gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub domid: DomId,
    pub access: Access,
}

/// `n`, `r`, `w` or `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        };
        write!(f, "{c}{}", self.domid)
    }
}

/// A failed xenstore request: the error name xenstore answered (`ENOENT`, `EACCES`,
/// `EAGAIN`, ...) or a transport failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xenstore: {}", self.0)
    }
}

impl StoreError {
    /// Whether xenstore answered `EAGAIN` (a transaction conflict: try again).
    pub fn is_conflict(&self) -> bool {
        self.0 == "EAGAIN"
    }
}

/// xenstore as a client sees it. Paths are absolute. Requests made between
/// [`Store::begin`] and [`Store::commit`] belong to one transaction.
pub trait Store {
    /// The node's value, `None` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError>;
    /// Writes a node, creating missing parents (which inherit their parent's permissions).
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError>;
    /// Creates a node with an empty value if it does not exist.
    fn mkdir(&mut self, path: &str) -> Result<(), StoreError>;
    /// Removes a node and everything below it; an absent node is not an error.
    fn rm(&mut self, path: &str) -> Result<(), StoreError>;
    /// The names of the node's children; an absent node has none.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError>;
    /// Replaces the node's permission list.
    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), StoreError>;
    /// Starts a transaction.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Ends the transaction: commits it (`true`) or aborts it. A conflicting commit is
    /// `Err` with [`StoreError::is_conflict`].
    fn commit(&mut self, commit: bool) -> Result<(), StoreError>;
}

/// Runs `f` in a transaction, again while the commit conflicts (at most `tries` times).
pub fn transaction<T>(
    store: &mut dyn Store,
    tries: u32,
    mut f: impl FnMut(&mut dyn Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut last = StoreError("EAGAIN".into());
    for _ in 0..tries {
        store.begin()?;
        let v = match f(store) {
            Ok(v) => v,
            Err(e) => {
                let _ = store.commit(false);
                return Err(e);
            }
        };
        match store.commit(true) {
            Ok(()) => return Ok(v),
            Err(e) if e.is_conflict() => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A [`Store`] that also delivers watch events (the hotplug agent waits on them).
pub trait Watching: Store {
    /// Watches `path` and everything below it; the store fires one event at once.
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Waits for the next event; the path that changed.
    fn wait_event(&mut self) -> Result<String, StoreError>;
}
