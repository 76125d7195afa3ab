//! The store: nodes by absolute path, each with a value, its children's names, its
//! permissions and a generation (the store-wide count at its last change), plus the number
//! of nodes each domain owns (for the entries quota).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::perms::Perms;
use crate::wire::DomId;

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub children: BTreeSet<String>,
    pub perms: Perms,
    /// Set by the store when the node is written; compared to detect transaction conflicts.
    pub generation: u64,
}

impl Node {
    /// A node with no value and no children.
    pub fn empty(perms: Perms) -> Node {
        Node { value: Vec::new(), children: BTreeSet::new(), perms, generation: 0 }
    }

    /// What the node-size quota counts: the value and every child's name with its NUL.
    pub fn size(&self) -> usize {
        self.value.len().saturating_add(self.children.iter().map(|c| c.len().saturating_add(1)).sum::<usize>())
    }
}

/// The committed store.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    next_generation: u64,
    owned: BTreeMap<DomId, u32>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// `/`, `/local` and `/local/domain`, owned by dom0 and closed to everyone else.
    pub fn new() -> Tree {
        let mut t = Tree { nodes: BTreeMap::new(), next_generation: 1, owned: BTreeMap::new() };
        let mut root = Node::empty(Perms::owned_by(0));
        root.children.insert(String::from("local"));
        let mut local = Node::empty(Perms::owned_by(0));
        local.children.insert(String::from("domain"));
        t.put("/", root);
        t.put("/local", local);
        t.put("/local/domain", Node::empty(Perms::owned_by(0)));
        t
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Stores `node` at `path` with a new generation.
    pub fn put(&mut self, path: &str, mut node: Node) {
        node.generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let new_owner = node.perms.owner();
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.disown(old.perms.owner());
        }
        *self.owned.entry(new_owner).or_insert(0) += 1;
    }

    /// Removes the node at `path` (not its children).
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        let old = self.nodes.remove(path)?;
        self.disown(old.perms.owner());
        Some(old)
    }

    fn disown(&mut self, owner: DomId) {
        if let Some(n) = self.owned.get_mut(&owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.owned.remove(&owner);
            }
        }
    }

    /// Nodes `domid` owns.
    pub fn owned(&self, domid: DomId) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// Every node, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the store has no node (never: the root always exists).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
