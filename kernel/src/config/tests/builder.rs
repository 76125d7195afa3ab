//! A minimal flattened-device-tree writer for tests (Devicetree Specification ch. 5).
//!
//! The tree is kept in memory and written by `finish`, properties before children, so a
//! test may set a property again (the last value wins) or add one after a child node.

use alloc::string::String;
use alloc::vec::Vec;

struct Node {
    name: String,
    props: Vec<(String, Vec<u8>)>,
    children: Vec<usize>,
}

/// `node`/`end` open and close nodes; `prop` and friends set properties of the open node.
pub struct Dtb {
    nodes: Vec<Node>,
    open: Vec<usize>,
}

impl Dtb {
    /// A tree with an open root node.
    pub fn new() -> Self {
        Dtb {
            nodes: alloc::vec![Node { name: String::new(), props: Vec::new(), children: Vec::new() }],
            open: alloc::vec![0],
        }
    }

    pub fn node(&mut self, name: &str) -> &mut Self {
        let id = self.nodes.len();
        self.nodes.push(Node { name: name.into(), props: Vec::new(), children: Vec::new() });
        let parent = *self.open.last().expect("a node is open");
        self.nodes[parent].children.push(id);
        self.open.push(id);
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.open.pop();
        self
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let node = &mut self.nodes[*self.open.last().expect("a node is open")];
        match node.props.iter_mut().find(|(n, _)| n == name) {
            Some(p) => p.1 = value.into(),
            None => node.props.push((name.into(), value.into())),
        }
        self
    }

    pub fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    pub fn str(&mut self, name: &str, s: &str) -> &mut Self {
        self.strs(name, &[s])
    }

    pub fn strs(&mut self, name: &str, list: &[&str]) -> &mut Self {
        let mut bytes = Vec::new();
        for s in list {
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        self.prop(name, &bytes)
    }

    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.prop(name, &[])
    }

    /// Writes the blob (version 17, empty memory reservation map).
    pub fn finish(&self) -> Vec<u8> {
        let (mut structs, mut strings) = (Vec::new(), Vec::new());
        self.write(0, &mut structs, &mut strings);
        structs.extend_from_slice(&9u32.to_be_bytes());
        let rsv = 40u32;
        let off_structs = rsv + 16;
        let off_strings = off_structs + structs.len() as u32;
        let total = off_strings + strings.len() as u32;
        let mut out = Vec::new();
        for w in
            [0xd00d_feed, total, off_structs, off_strings, rsv, 17, 16, 0, strings.len() as u32, structs.len() as u32]
        {
            out.extend_from_slice(&u32::to_be_bytes(w));
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structs);
        out.extend_from_slice(&strings);
        out
    }

    fn write(&self, id: usize, s: &mut Vec<u8>, strings: &mut Vec<u8>) {
        let pad = |s: &mut Vec<u8>| s.resize(s.len().next_multiple_of(4), 0);
        let node = &self.nodes[id];
        s.extend_from_slice(&1u32.to_be_bytes());
        s.extend_from_slice(node.name.as_bytes());
        s.push(0);
        pad(s);
        for (name, value) in &node.props {
            let off = match strings
                .windows(name.len() + 1)
                .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0)
            {
                Some(off) => off,
                None => {
                    strings.extend_from_slice(name.as_bytes());
                    strings.push(0);
                    strings.len() - name.len() - 1
                }
            };
            for w in [3, value.len() as u32, off as u32] {
                s.extend_from_slice(&w.to_be_bytes());
            }
            s.extend_from_slice(value);
            pad(s);
        }
        for &c in &node.children {
            self.write(c, s, strings);
        }
        s.extend_from_slice(&2u32.to_be_bytes());
    }
}
