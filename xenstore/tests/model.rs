//! The store against a simple reference model: random operations from dom0 and two guests,
//! in and out of transactions; every reply and the final tree must agree.
mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use keel_xenstore::{ConnId, MsgType, Xenstore, XsError};
use proptest::prelude::*;

/// A node as compared: value, permissions, children.
type Flat = BTreeMap<String, (Vec<u8>, Vec<u8>, Vec<String>)>;

#[derive(Clone, Debug, PartialEq)]
struct MNode {
    value: Vec<u8>,
    perms: Vec<(u8, u16)>,
    children: BTreeSet<String>,
    gen: u64,
}

#[derive(Clone, Debug, Default)]
struct MTx {
    // First-access copies: (generation then, node now, modified).
    nodes: BTreeMap<String, (Option<u64>, Option<MNode>, bool)>,
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    gen: u64,
    tx: BTreeMap<u16, MTx>,
}

fn parent_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => unreachable!(),
    }
}

fn name_of(p: &str) -> String {
    p[p.rfind('/').unwrap() + 1..].into()
}

fn rights(perms: &[(u8, u16)], dom: u16) -> (bool, bool, bool) {
    if dom == 0 || perms[0].1 == dom {
        return (true, true, true);
    }
    let l = perms[1..].iter().find(|p| p.1 == dom).unwrap_or(&perms[0]).0;
    (l == b'r' || l == b'b', l == b'w' || l == b'b', false)
}

impl Model {
    fn new() -> Model {
        let mut m = Model::default();
        for p in ["/", "/local", "/local/domain"] {
            m.put(None, p, Some(MNode { value: vec![], perms: vec![(b'n', 0)], children: BTreeSet::new(), gen: 0 }));
        }
        m.link("/", "local");
        m.link("/local", "domain");
        m
    }

    fn link(&mut self, parent: &str, name: &str) {
        self.nodes.get_mut(parent).unwrap().children.insert(name.into());
    }

    fn get(&mut self, tx: Option<u16>, p: &str) -> Option<MNode> {
        match tx {
            None => self.nodes.get(p).cloned(),
            Some(d) => {
                let base = self.nodes.get(p).cloned();
                let t = self.tx.get_mut(&d).unwrap();
                t.nodes.entry(p.into()).or_insert_with(|| (base.as_ref().map(|n| n.gen), base, false)).1.clone()
            }
        }
    }

    fn put(&mut self, tx: Option<u16>, p: &str, n: Option<MNode>) {
        match tx {
            None => {
                self.gen += 1;
                match n {
                    Some(mut n) => {
                        n.gen = self.gen;
                        self.nodes.insert(p.into(), n);
                    }
                    None => {
                        self.nodes.remove(p);
                    }
                }
            }
            Some(d) => {
                self.get(tx, p);
                let e = self.tx.get_mut(&d).unwrap().nodes.get_mut(p).unwrap();
                e.1 = n;
                e.2 = true;
            }
        }
    }

    fn read(&mut self, tx: Option<u16>, dom: u16, p: &str) -> Result<Vec<u8>, XsError> {
        let n = self.get(tx, p).ok_or(XsError::Enoent)?;
        if !rights(&n.perms, dom).0 {
            return Err(XsError::Eacces);
        }
        Ok(n.value)
    }

    fn write(&mut self, tx: Option<u16>, dom: u16, p: &str, v: Option<&[u8]>) -> Result<Vec<u8>, XsError> {
        if let Some(mut n) = self.get(tx, p) {
            if !rights(&n.perms, dom).1 {
                return Err(XsError::Eacces);
            }
            if let Some(v) = v {
                n.value = v.to_vec();
                self.put(tx, p, Some(n));
            }
            return Ok(b"OK\0".to_vec());
        }
        let mut chain = vec![p.to_string()];
        loop {
            let up = parent_of(chain.last().unwrap());
            if let Some(a) = self.get(tx, &up) {
                if !rights(&a.perms, dom).1 {
                    return Err(XsError::Eacces);
                }
                break;
            }
            chain.push(up);
        }
        for c in chain.iter().rev() {
            let up = parent_of(c);
            let mut parent = self.get(tx, &up).unwrap();
            parent.children.insert(name_of(c));
            let mut perms = parent.perms.clone();
            if dom != 0 {
                perms[0].1 = dom;
            }
            self.put(tx, &up, Some(parent));
            let value = if c == p { v.unwrap_or(b"").to_vec() } else { vec![] };
            self.put(tx, c, Some(MNode { value, perms, children: BTreeSet::new(), gen: 0 }));
        }
        Ok(b"OK\0".to_vec())
    }

    fn rm(&mut self, tx: Option<u16>, dom: u16, p: &str) -> Result<Vec<u8>, XsError> {
        let Some(n) = self.get(tx, p) else {
            return self.get(tx, &parent_of(p)).map(|_| b"OK\0".to_vec()).ok_or(XsError::Enoent);
        };
        if !rights(&n.perms, dom).1 {
            return Err(XsError::Eacces);
        }
        // A transaction may hold a stale copy of a child (its commit then fails): skip it.
        fn drop_tree(m: &mut Model, tx: Option<u16>, p: &str) {
            let Some(n) = m.get(tx, p) else { return };
            for c in &n.children {
                drop_tree(m, tx, &format!("{p}/{c}"));
            }
            m.put(tx, p, None);
        }
        let up = parent_of(p);
        let mut parent = self.get(tx, &up).ok_or(XsError::Enoent)?;
        for c in &n.children {
            drop_tree(self, tx, &format!("{p}/{c}"));
        }
        self.put(tx, p, None);
        parent.children.remove(&name_of(p));
        self.put(tx, &up, Some(parent));
        Ok(b"OK\0".to_vec())
    }

    fn directory(&mut self, tx: Option<u16>, dom: u16, p: &str) -> Result<Vec<u8>, XsError> {
        let n = self.get(tx, p).ok_or(XsError::Enoent)?;
        if !rights(&n.perms, dom).0 {
            return Err(XsError::Eacces);
        }
        Ok(n.children.iter().flat_map(|c| c.bytes().chain([0])).collect())
    }

    fn get_perms(&mut self, tx: Option<u16>, dom: u16, p: &str) -> Result<Vec<u8>, XsError> {
        let n = self.get(tx, p).ok_or(XsError::Enoent)?;
        if !rights(&n.perms, dom).0 {
            return Err(XsError::Eacces);
        }
        Ok(n.perms.iter().flat_map(|(l, d)| format!("{}{d}\0", *l as char).into_bytes()).collect())
    }

    fn set_perms(&mut self, tx: Option<u16>, dom: u16, p: &str, perms: &[(u8, u16)]) -> Result<Vec<u8>, XsError> {
        let mut n = self.get(tx, p).ok_or(XsError::Enoent)?;
        if !rights(&n.perms, dom).2 {
            return Err(XsError::Eacces);
        }
        if dom != 0 && perms[0].1 != n.perms[0].1 {
            return Err(XsError::Eperm);
        }
        n.perms = perms.to_vec();
        self.put(tx, p, Some(n));
        Ok(b"OK\0".to_vec())
    }

    fn end(&mut self, dom: u16, commit: bool) -> Result<Vec<u8>, XsError> {
        let t = self.tx.remove(&dom).unwrap();
        if commit {
            if t.nodes.iter().any(|(p, e)| self.nodes.get(p).map(|n| n.gen) != e.0) {
                return Err(XsError::Eagain);
            }
            for (p, (_, n, modified)) in t.nodes {
                if modified {
                    self.put(None, &p, n);
                }
            }
        }
        Ok(b"OK\0".to_vec())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write(usize, usize, Vec<u8>),
    Mkdir(usize, usize),
    Rm(usize, usize),
    Read(usize, usize),
    Directory(usize, usize),
    GetPerms(usize, usize),
    SetPerms(usize, usize, Vec<(u8, u16)>),
    TxStart(usize),
    TxEnd(usize, bool),
}

const DOMS: [u16; 3] = [0, 1, 2];
const PATHS: [&str; 10] = [
    "/local/domain/1/a",
    "/local/domain/1/a/b",
    "/local/domain/1/c",
    "/local/domain/2/a",
    "/local/domain/2/a/b/c",
    "/local/domain/2",
    "/x",
    "/x/y",
    "/x/y/z",
    "/local/domain/1",
];

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DOMS.len();
    let p = 0..PATHS.len();
    let perm = (prop::sample::select(vec![b'n', b'r', b'w', b'b']), prop::sample::select(DOMS.to_vec()));
    prop_oneof![
        4 => (d.clone(), p.clone(), prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(d, p, v)| Op::Write(d, p, v)),
        1 => (d.clone(), p.clone()).prop_map(|(d, p)| Op::Mkdir(d, p)),
        2 => (d.clone(), p.clone()).prop_map(|(d, p)| Op::Rm(d, p)),
        3 => (d.clone(), p.clone()).prop_map(|(d, p)| Op::Read(d, p)),
        2 => (d.clone(), p.clone()).prop_map(|(d, p)| Op::Directory(d, p)),
        1 => (d.clone(), p.clone()).prop_map(|(d, p)| Op::GetPerms(d, p)),
        2 => (d.clone(), p.clone(), prop::collection::vec(perm, 1..4)).prop_map(|(d, p, v)| Op::SetPerms(d, p, v)),
        2 => d.clone().prop_map(Op::TxStart),
        2 => (d, any::<bool>()).prop_map(|(d, c)| Op::TxEnd(d, c)),
    ]
}

fn setup() -> (Xenstore, Vec<ConnId>, Model) {
    let mut xs = Xenstore::new(Default::default());
    let dom0 = xs.connect(0, true);
    let mut m = Model::new();
    let mut conns = vec![dom0];
    for d in [1u16, 2] {
        let home = format!("/local/domain/{d}");
        let set = format!("{home}\0n{d}\0r0\0");
        req(&mut xs, dom0, MsgType::Mkdir, 0, &nul(&home)).unwrap();
        req(&mut xs, dom0, MsgType::SetPerms, 0, set.as_bytes()).unwrap();
        m.write(None, 0, &home, None).unwrap();
        m.set_perms(None, 0, &home, &[(b'n', d), (b'r', 0)]).unwrap();
        req(&mut xs, dom0, MsgType::Introduce, 0, format!("{d}\x001\x001\x00").as_bytes()).unwrap();
        conns.push(xs.domains()[&d].conn);
    }
    (xs, conns, m)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        let (mut xs, conns, mut m) = setup();
        let mut open: BTreeMap<u16, u32> = BTreeMap::new();
        for op in ops {
            let (d, path) = match &op {
                Op::Write(d, p, _) | Op::Mkdir(d, p) | Op::Rm(d, p) | Op::Read(d, p) | Op::Directory(d, p)
                | Op::GetPerms(d, p) | Op::SetPerms(d, p, _) => (*d, PATHS[*p]),
                Op::TxStart(d) | Op::TxEnd(d, _) => (*d, ""),
            };
            let dom = DOMS[d];
            let c = conns[d];
            let tx_id = open.get(&dom).copied().unwrap_or(0);
            let mtx = open.contains_key(&dom).then_some(dom);
            let (real, model) = match op {
                Op::Write(_, _, v) => {
                    let mut p = nul(path);
                    p.extend_from_slice(&v);
                    (req(&mut xs, c, MsgType::Write, tx_id, &p), m.write(mtx, dom, path, Some(&v)))
                }
                Op::Mkdir(..) => (req(&mut xs, c, MsgType::Mkdir, tx_id, &nul(path)), m.write(mtx, dom, path, None)),
                Op::Rm(..) => (req(&mut xs, c, MsgType::Rm, tx_id, &nul(path)), m.rm(mtx, dom, path)),
                Op::Read(..) => (req(&mut xs, c, MsgType::Read, tx_id, &nul(path)), m.read(mtx, dom, path)),
                Op::Directory(..) => {
                    (req(&mut xs, c, MsgType::Directory, tx_id, &nul(path)), m.directory(mtx, dom, path))
                }
                Op::GetPerms(..) => (req(&mut xs, c, MsgType::GetPerms, tx_id, &nul(path)), m.get_perms(mtx, dom, path)),
                Op::SetPerms(_, _, perms) => {
                    let mut p = nul(path);
                    for (l, pd) in &perms {
                        p.extend_from_slice(format!("{}{pd}\0", *l as char).as_bytes());
                    }
                    (req(&mut xs, c, MsgType::SetPerms, tx_id, &p), m.set_perms(mtx, dom, path, &perms))
                }
                Op::TxStart(_) => {
                    if open.contains_key(&dom) {
                        continue;
                    }
                    let r = req(&mut xs, c, MsgType::TransactionStart, 0, b"\0").unwrap();
                    let id: u32 = std::str::from_utf8(&r[..r.len() - 1]).unwrap().parse().unwrap();
                    open.insert(dom, id);
                    m.tx.insert(dom, MTx::default());
                    continue;
                }
                Op::TxEnd(_, commit) => {
                    if tx_id == 0 {
                        continue;
                    }
                    open.remove(&dom);
                    let verdict = if commit { b"T\0" } else { b"F\0" };
                    (req(&mut xs, c, MsgType::TransactionEnd, tx_id, verdict), m.end(dom, commit))
                }
            };
            prop_assert_eq!(real, model);
        }
        // Same tree: paths, values, permissions, children.
        let real: Flat = xs
            .tree()
            .iter()
            .map(|(p, n)| (p.clone(), (n.value.clone(), n.perms.to_wire(), n.children.iter().cloned().collect())))
            .collect();
        let model: Flat = m
            .nodes
            .iter()
            .map(|(p, n)| {
                let perms = n.perms.iter().flat_map(|(l, d)| format!("{}{d}\0", *l as char).into_bytes()).collect();
                (p.clone(), (n.value.clone(), perms, n.children.iter().cloned().collect()))
            })
            .collect();
        prop_assert_eq!(real, model);
        // Ownership counts match a recount.
        for d in DOMS {
            let count = m.nodes.values().filter(|n| n.perms[0].1 == d).count() as u32;
            prop_assert_eq!(xs.tree().owned(d), count);
        }
    }
}
