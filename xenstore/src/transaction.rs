//! Transactions and the view operations work through.
//!
//! A transaction copies each node the first time it touches it, remembering the node's
//! generation then (or that it was absent). Its reads and writes go to these copies; on
//! commit, if any touched node's generation changed in the store meanwhile, the
//! transaction fails with `EAGAIN` (as the C xenstored does), otherwise its modified copies
//! are written to the store and its watch events fire.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::perms::Perms;
use crate::tree::{Node, Tree};
use crate::wire::{DomId, XsError};

/// A change that fires watches: at `path`, whose permissions (after the change, or before
/// a removal) decide who may see the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// Only watches on exactly this path fire (a node removed below the removal's root).
    pub exact: bool,
    pub perms: Perms,
    /// A permission change: the permissions before it (a watcher that could read the
    /// node under either hears of it, as in the C xenstored).
    pub old_perms: Option<Perms>,
}

#[derive(Clone, Debug)]
struct Entry {
    base_generation: Option<u64>,
    node: Option<Node>,
    modified: bool,
}

/// An open transaction.
#[derive(Clone, Debug, Default)]
pub struct Transaction {
    nodes: BTreeMap<String, Entry>,
    owned_delta: BTreeMap<DomId, i64>,
    changes: Vec<Change>,
}

impl Transaction {
    /// A transaction that has touched nothing yet.
    pub fn new() -> Transaction {
        Transaction::default()
    }

    /// Commits to `tree`: `EAGAIN` if a node it touched changed since; else the changes
    /// whose watches now fire.
    pub fn commit(self, tree: &mut Tree) -> Result<Vec<Change>, XsError> {
        for (path, e) in &self.nodes {
            if tree.get(path).map(|n| n.generation) != e.base_generation {
                return Err(XsError::Eagain);
            }
        }
        for (path, e) in self.nodes {
            if e.modified {
                match e.node {
                    Some(n) => tree.put(&path, n),
                    None => {
                        tree.remove(&path);
                    }
                }
            }
        }
        Ok(self.changes)
    }
}

/// The store as one request sees it: the committed tree, or a transaction over it.
pub struct View<'a> {
    tree: &'a mut Tree,
    tx: Option<&'a mut Transaction>,
    tx_node_limit: usize,
    changes: Vec<Change>,
}

impl<'a> View<'a> {
    /// A view of `tree`, through `tx` if given (touching at most `tx_node_limit` nodes).
    pub fn new(tree: &'a mut Tree, tx: Option<&'a mut Transaction>, tx_node_limit: usize) -> View<'a> {
        View { tree, tx, tx_node_limit, changes: Vec::new() }
    }

    fn entry(&mut self, path: &str) -> Result<Option<&mut Entry>, XsError> {
        let Some(tx) = self.tx.as_deref_mut() else { return Ok(None) };
        if !tx.nodes.contains_key(path) {
            if tx.nodes.len() >= self.tx_node_limit {
                return Err(XsError::Enospc);
            }
            let node = self.tree.get(path).cloned();
            let base_generation = node.as_ref().map(|n| n.generation);
            tx.nodes.insert(String::from(path), Entry { base_generation, node, modified: false });
        }
        Ok(tx.nodes.get_mut(path))
    }

    /// The node at `path` (`ENOSPC` if a transaction would touch too many nodes).
    pub fn get(&mut self, path: &str) -> Result<Option<Node>, XsError> {
        match self.entry(path)? {
            Some(e) => Ok(e.node.clone()),
            None => Ok(self.tree.get(path).cloned()),
        }
    }

    /// Writes `node` at `path` (`None` removes it; children are the caller's business).
    pub fn set(&mut self, path: &str, node: Option<Node>) -> Result<(), XsError> {
        if self.tx.is_none() {
            match node {
                Some(n) => self.tree.put(path, n),
                None => {
                    self.tree.remove(path);
                }
            }
            return Ok(());
        }
        let old_owner = self.entry(path)?.and_then(|e| e.node.as_ref().map(|n| n.perms.owner()));
        let new_owner = node.as_ref().map(|n| n.perms.owner());
        if let Some(tx) = self.tx.as_deref_mut() {
            if let Some(o) = old_owner {
                *tx.owned_delta.entry(o).or_insert(0) -= 1;
            }
            if let Some(o) = new_owner {
                *tx.owned_delta.entry(o).or_insert(0) += 1;
            }
            if let Some(e) = tx.nodes.get_mut(path) {
                e.node = node;
                e.modified = true;
            }
        }
        Ok(())
    }

    /// Nodes `domid` owns as this view sees them.
    pub fn owned(&self, domid: DomId) -> i64 {
        let delta = self.tx.as_deref().and_then(|t| t.owned_delta.get(&domid).copied()).unwrap_or(0);
        i64::from(self.tree.owned(domid)).saturating_add(delta)
    }

    /// Records a change for the watches.
    pub fn changed(&mut self, path: &str, exact: bool, perms: &Perms) {
        self.changes.push(Change { path: String::from(path), exact, perms: perms.clone(), old_perms: None });
    }

    /// Records a permission change for the watches.
    pub fn perms_changed(&mut self, path: &str, old: Perms, new: &Perms) {
        self.changes.push(Change { path: String::from(path), exact: false, perms: new.clone(), old_perms: Some(old) });
    }

    /// Ends the request: the changes whose watches fire now (none inside a transaction,
    /// whose changes fire when it commits).
    pub fn finish(self) -> Vec<Change> {
        match self.tx {
            Some(tx) => {
                tx.changes.extend(self.changes);
                Vec::new()
            }
            None => self.changes,
        }
    }
}
