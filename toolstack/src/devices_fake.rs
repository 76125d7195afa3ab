//! An in-memory xenstore for host tests of device set-up: nodes with values and
//! permission lists, parents created as xenstored creates them (inheriting their parent's
//! permissions), and a way to make the next commits conflict.

use std::collections::BTreeMap;

use crate::devices_store::{Access, Perm, Store, StoreError};

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: String,
    pub perms: Vec<Perm>,
}

/// The store: every node by path (`/` included).
#[derive(Debug)]
pub struct FakeStore {
    pub nodes: BTreeMap<String, Node>,
    /// Commits still to answer `EAGAIN` (their writes are dropped, as a real conflict).
    pub conflicts: u32,
    /// Transactions started, and committed.
    pub begun: u32,
    pub committed: u32,
    snapshot: Option<BTreeMap<String, Node>>,
}

impl Default for FakeStore {
    fn default() -> Self {
        let root = Node { value: String::new(), perms: vec![Perm { domid: 0, access: Access::None }] };
        FakeStore { nodes: BTreeMap::from([("/".into(), root)]), conflicts: 0, begun: 0, committed: 0, snapshot: None }
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn check(path: &str) -> Result<(), StoreError> {
    if !path.starts_with('/') || path.ends_with('/') && path != "/" || path.contains("//") {
        return Err(StoreError("EINVAL".into()));
    }
    Ok(())
}

impl FakeStore {
    fn create(&mut self, path: &str) {
        if self.nodes.contains_key(path) {
            return;
        }
        let p = parent(path).to_string();
        self.create(&p);
        let perms = self.nodes[&p].perms.clone();
        self.nodes.insert(path.into(), Node { value: String::new(), perms });
    }

    /// Every node at or below `prefix` as `path = value [perms]` lines, sorted.
    pub fn dump(&self, prefix: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, _)| p.as_str() == prefix || p.starts_with(&format!("{prefix}/")))
            .map(|(p, n)| {
                let perms: Vec<String> = n.perms.iter().map(|x| x.to_string()).collect();
                format!("{p} = \"{}\" [{}]", n.value, perms.join(" "))
            })
            .collect()
    }

    /// The value at `path`, for assertions.
    pub fn value(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(|n| n.value.as_str())
    }
}

impl Store for FakeStore {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        check(path)?;
        Ok(self.nodes.get(path).map(|n| n.value.clone()))
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        check(path)?;
        self.create(path);
        if let Some(n) = self.nodes.get_mut(path) {
            n.value = value.into();
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str) -> Result<(), StoreError> {
        check(path)?;
        self.create(path);
        Ok(())
    }

    fn rm(&mut self, path: &str) -> Result<(), StoreError> {
        check(path)?;
        if path == "/" {
            return Err(StoreError("EINVAL".into()));
        }
        let below = format!("{path}/");
        self.nodes.retain(|p, _| p != path && !p.starts_with(&below));
        Ok(())
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        check(path)?;
        let below = if path == "/" { "/".to_string() } else { format!("{path}/") };
        Ok(self
            .nodes
            .keys()
            .filter_map(|p| p.strip_prefix(&below))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(String::from)
            .collect())
    }

    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), StoreError> {
        check(path)?;
        match self.nodes.get_mut(path) {
            Some(n) => {
                n.perms = perms.to_vec();
                Ok(())
            }
            None => Err(StoreError("ENOENT".into())),
        }
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.snapshot.is_some() {
            return Err(StoreError("EBUSY".into()));
        }
        self.begun += 1;
        self.snapshot = Some(self.nodes.clone());
        Ok(())
    }

    fn commit(&mut self, commit: bool) -> Result<(), StoreError> {
        let Some(before) = self.snapshot.take() else { return Err(StoreError("ENOENT".into())) };
        if !commit {
            self.nodes = before;
            return Ok(());
        }
        if self.conflicts > 0 {
            self.conflicts -= 1;
            self.nodes = before;
            return Err(StoreError("EAGAIN".into()));
        }
        self.committed += 1;
        Ok(())
    }
}
