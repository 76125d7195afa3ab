//! Writing a flattened device tree (version 17), node by node: what Keel gives its
//! guests (the arm64 loader generates each guest's tree with it).
//!
//! Properties of a node must come before its child nodes, as the format requires. A
//! misuse (a property after a child, an unbalanced `end_node`, a name with a NUL) is
//! remembered and reported by [`FdtWriter::finish`], so building a tree never panics.

use super::header::{HEADER_LEN, MAX_SIZE, VERSION};
use super::token::*;
use super::MAGIC;
use alloc::vec::Vec;
use core::fmt;

/// Why [`FdtWriter::finish`] refused the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// A property was added after a child node of the same node.
    PropertyAfterChild,
    /// A property or `end_node` with no node open.
    NoOpenNode,
    /// A second root node.
    SecondRoot,
    /// A node or property name that is empty (not the root) or contains a NUL byte.
    BadName,
    /// `finish` with this many nodes still open.
    OpenNodes(usize),
    /// No root node at all.
    Empty,
    /// The tree would exceed the size limit.
    TooLarge(usize),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WriteError::PropertyAfterChild => write!(f, "a property after a child node"),
            WriteError::NoOpenNode => write!(f, "a property or end_node outside any node"),
            WriteError::SecondRoot => write!(f, "a second root node"),
            WriteError::BadName => write!(f, "an empty name or a name with a NUL byte"),
            WriteError::OpenNodes(n) => write!(f, "{n} node(s) left open"),
            WriteError::Empty => write!(f, "no root node"),
            WriteError::TooLarge(n) => write!(f, "{n} bytes exceeds the {MAX_SIZE}-byte limit"),
        }
    }
}

/// Builds a tree in memory; [`FdtWriter::finish`] returns the blob.
#[derive(Debug, Default)]
pub struct FdtWriter {
    structs: Vec<u8>,
    strings: Vec<u8>,
    reservations: Vec<(u64, u64)>,
    /// Per open node: whether it has a child node already.
    open: Vec<bool>,
    root_done: bool,
    error: Option<WriteError>,
}

impl FdtWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, e: WriteError) {
        self.error.get_or_insert(e);
    }

    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }

    fn pad(&mut self) {
        self.structs.resize(self.structs.len().next_multiple_of(4), 0);
    }

    /// Adds an entry to the memory-reservation block.
    pub fn reserve(&mut self, address: u64, size: u64) -> &mut Self {
        self.reservations.push((address, size));
        self
    }

    /// Opens a node; the first one is the root (name `""`).
    pub fn begin_node(&mut self, name: &str) -> &mut Self {
        let root = self.open.is_empty();
        if root && self.root_done {
            self.fail(WriteError::SecondRoot);
        }
        if name.as_bytes().contains(&0) || (!root && name.is_empty()) {
            self.fail(WriteError::BadName);
        }
        if let Some(parent) = self.open.last_mut() {
            *parent = true;
        }
        self.open.push(false);
        self.word(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> &mut Self {
        if self.open.pop().is_none() {
            self.fail(WriteError::NoOpenNode);
            return self;
        }
        self.root_done |= self.open.is_empty();
        self.word(END_NODE);
        self
    }

    /// The offset of `name` in the strings block, added if new.
    fn name_offset(&mut self, name: &str) -> u32 {
        let n = name.as_bytes();
        let mut at = 0;
        while at < self.strings.len() {
            let end = self.strings[at..].iter().position(|&b| b == 0).map_or(self.strings.len(), |p| at + p);
            if &self.strings[at..end] == n {
                return u32::try_from(at).unwrap_or(u32::MAX);
            }
            at = end + 1;
        }
        // Beyond 4 GiB `finish` refuses the blob (MAX_SIZE) before the offset matters.
        let off = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.extend_from_slice(n);
        self.strings.push(0);
        off
    }

    /// Adds a property with raw bytes to the open node.
    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        match self.open.last() {
            None => self.fail(WriteError::NoOpenNode),
            Some(true) => self.fail(WriteError::PropertyAfterChild),
            Some(false) => {}
        }
        if name.is_empty() || name.as_bytes().contains(&0) {
            self.fail(WriteError::BadName);
        }
        let off = self.name_offset(name);
        self.word(PROP);
        let len = match u32::try_from(value.len()) {
            Ok(len) => len,
            Err(_) => {
                self.fail(WriteError::TooLarge(value.len()));
                0
            }
        };
        self.word(len);
        self.word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    /// A property without a value (a flag such as `interrupt-controller`).
    pub fn prop_empty(&mut self, name: &str) -> &mut Self {
        self.prop(name, &[])
    }

    /// One 32-bit cell.
    pub fn prop_u32(&mut self, name: &str, v: u32) -> &mut Self {
        self.prop(name, &v.to_be_bytes())
    }

    /// A 64-bit value in two cells.
    pub fn prop_u64(&mut self, name: &str, v: u64) -> &mut Self {
        self.prop(name, &v.to_be_bytes())
    }

    /// A list of 32-bit cells.
    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    /// A NUL-terminated string.
    pub fn prop_str(&mut self, name: &str, s: &str) -> &mut Self {
        self.prop_strs(name, &[s])
    }

    /// A string list (`compatible`).
    pub fn prop_strs(&mut self, name: &str, list: &[&str]) -> &mut Self {
        let mut bytes = Vec::new();
        for s in list {
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        self.prop(name, &bytes)
    }

    /// `reg`-style (address, size) pairs, each with two cells (`#address-cells =
    /// #size-cells = 2`, as Keel writes every guest tree).
    pub fn prop_regs(&mut self, name: &str, regs: &[(u64, u64)]) -> &mut Self {
        let bytes: Vec<u8> =
            regs.iter().flat_map(|&(a, s)| a.to_be_bytes().into_iter().chain(s.to_be_bytes())).collect();
        self.prop(name, &bytes)
    }

    /// The finished blob: header, memory-reservation block, structure and strings.
    pub fn finish(mut self) -> Result<Vec<u8>, WriteError> {
        if !self.open.is_empty() {
            self.fail(WriteError::OpenNodes(self.open.len()));
        }
        if !self.root_done {
            self.fail(WriteError::Empty);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        self.word(END);
        let rsv_off = HEADER_LEN.next_multiple_of(8);
        let rsv_len = (self.reservations.len() + 1) * 16;
        let structs_off = rsv_off + rsv_len;
        let strings_off = structs_off + self.structs.len();
        let total = strings_off + self.strings.len();
        if total > MAX_SIZE {
            return Err(WriteError::TooLarge(total));
        }
        let mut out = Vec::with_capacity(total);
        let word = |n: usize| u32::try_from(n).map_err(|_| WriteError::TooLarge(total));
        let header = [
            MAGIC,
            word(total)?,
            word(structs_off)?,
            word(strings_off)?,
            word(rsv_off)?,
            VERSION,
            16,
            0, // boot_cpuid_phys
            word(self.strings.len())?,
            word(self.structs.len())?,
        ];
        for w in header {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.resize(rsv_off, 0);
        for (a, s) in self.reservations.iter().chain(&[(0, 0)]) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&self.structs);
        out.extend_from_slice(&self.strings);
        Ok(out)
    }
}
