//! The node operations (READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET_PERMS,
//! SET_PERMS) over a [`View`], with permission and quota checks made before anything
//! changes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::path::{basename, join, parent};
use crate::perms::{parse_decimal, Caller, Perms};
use crate::quota::Quotas;
use crate::transaction::View;
use crate::tree::Node;
use crate::wire::{XsError, PAYLOAD_MAX};

/// The reply payload of operations that return no data.
pub const OK: &[u8] = b"OK\0";

fn readable(v: &mut View, caller: &Caller, path: &str) -> Result<Node, XsError> {
    let node = v.get(path)?.ok_or(XsError::Enoent)?;
    if !node.perms.rights(caller).read {
        return Err(XsError::Eacces);
    }
    Ok(node)
}

fn unprivileged(caller: &Caller) -> bool {
    !caller.privileged && caller.domid != 0
}

pub fn read(v: &mut View, caller: &Caller, path: &str) -> Result<Vec<u8>, XsError> {
    Ok(readable(v, caller, path)?.value)
}

/// WRITE (`value` given) or MKDIR (`None`: an existing node is left as it is).
pub fn write(v: &mut View, caller: &Caller, q: &Quotas, path: &str, value: Option<&[u8]>) -> Result<(), XsError> {
    if let Some(mut node) = v.get(path)? {
        // MKDIR of an existing node changes nothing but still needs write permission.
        if !node.perms.rights(caller).write {
            return Err(XsError::Eacces);
        }
        let Some(value) = value else { return Ok(()) };
        node.value = Vec::from(value);
        if unprivileged(caller) && node.size() > q.node_size {
            return Err(XsError::Enospc);
        }
        let perms = node.perms.clone();
        v.set(path, Some(node))?;
        v.changed(path, false, &perms);
        return Ok(());
    }
    // Find the nearest existing ancestor; everything below it is created.
    let mut missing = alloc::vec![String::from(path)];
    let mut ancestor_path = parent(path).ok_or(XsError::Einval)?;
    let mut ancestor = loop {
        if let Some(n) = v.get(ancestor_path)? {
            break n;
        }
        missing.push(String::from(ancestor_path));
        ancestor_path = parent(ancestor_path).ok_or(XsError::Einval)?;
    };
    if !ancestor.perms.rights(caller).write {
        return Err(XsError::Eacces);
    }
    let value = value.unwrap_or(&[]);
    if unprivileged(caller) {
        let new = i64::try_from(missing.len()).unwrap_or(i64::MAX);
        if v.owned(caller.domid).saturating_add(new) > i64::from(q.entries_per_domain) {
            return Err(XsError::Enospc);
        }
        let top = missing.last().map_or("", |p| basename(p));
        if value.len() > q.node_size || ancestor.size().saturating_add(top.len()).saturating_add(1) > q.node_size {
            return Err(XsError::Enospc);
        }
    }
    // Create top down; each new node inherits its parent's permissions, and an
    // unprivileged creator owns what it creates (as in the C xenstored).
    let mut parent_path = String::from(ancestor_path);
    for p in missing.iter().rev() {
        ancestor.children.insert(String::from(basename(p)));
        let perms = if unprivileged(caller) { ancestor.perms.with_owner(caller.domid) } else { ancestor.perms.clone() };
        v.set(&parent_path, Some(ancestor))?;
        let mut node = Node::empty(perms);
        if p == path {
            node.value = Vec::from(value);
        }
        v.set(p, Some(node.clone()))?;
        parent_path.clone_from(p);
        ancestor = node;
    }
    v.changed(path, false, &ancestor.perms);
    Ok(())
}

pub fn rm(v: &mut View, caller: &Caller, path: &str) -> Result<(), XsError> {
    let parent_path = parent(path).ok_or(XsError::Einval)?;
    let Some(node) = v.get(path)? else {
        // Removing what is not there succeeds if its parent exists.
        return match v.get(parent_path)? {
            Some(_) => Ok(()),
            None => Err(XsError::Enoent),
        };
    };
    if !node.perms.rights(caller).write {
        return Err(XsError::Eacces);
    }
    let mut parent_node = v.get(parent_path)?.ok_or(XsError::Enoent)?;
    let mut stack: Vec<(String, Node)> = alloc::vec![];
    for c in &node.children {
        let p = join(path, c);
        if let Some(n) = v.get(&p)? {
            stack.push((p, n));
        }
    }
    while let Some((p, n)) = stack.pop() {
        for c in &n.children {
            let cp = join(&p, c);
            if let Some(cn) = v.get(&cp)? {
                stack.push((cp, cn));
            }
        }
        v.set(&p, None)?;
        v.changed(&p, true, &n.perms);
    }
    v.set(path, None)?;
    v.changed(path, false, &node.perms);
    parent_node.children.remove(basename(path));
    v.set(parent_path, Some(parent_node))?;
    Ok(())
}

fn children_bytes(node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    for c in &node.children {
        out.extend_from_slice(c.as_bytes());
        out.push(0);
    }
    out
}

pub fn directory(v: &mut View, caller: &Caller, path: &str) -> Result<Vec<u8>, XsError> {
    let out = children_bytes(&readable(v, caller, path)?);
    if out.len() > PAYLOAD_MAX {
        return Err(XsError::E2big);
    }
    Ok(out)
}

/// DIRECTORY_PART: the node's generation and NUL, then the children from byte `offset` of
/// the NUL-separated list, whole names only, as many as fit; an extra NUL ends the list.
pub fn directory_part(v: &mut View, caller: &Caller, path: &str, offset: &[u8]) -> Result<Vec<u8>, XsError> {
    let node = readable(v, caller, path)?;
    let offset = usize::try_from(parse_decimal(offset)?).map_err(|_| XsError::Einval)?;
    let all = children_bytes(&node);
    let rest = all.get(offset..).ok_or(XsError::Einval)?;
    let mut out = format!("{}", node.generation).into_bytes();
    out.push(0);
    let room = PAYLOAD_MAX.saturating_sub(out.len()).saturating_sub(1);
    let mut taken = 0;
    for name in rest.split_inclusive(|&b| b == 0) {
        if taken + name.len() > room {
            break;
        }
        taken += name.len();
    }
    out.extend_from_slice(&rest[..taken]);
    if taken == rest.len() {
        out.push(0);
    } else if taken == 0 {
        return Err(XsError::E2big);
    }
    Ok(out)
}

pub fn get_perms(v: &mut View, caller: &Caller, path: &str) -> Result<Vec<u8>, XsError> {
    Ok(readable(v, caller, path)?.perms.to_wire())
}

pub fn set_perms(v: &mut View, caller: &Caller, q: &Quotas, path: &str, perms: Perms) -> Result<(), XsError> {
    let mut node = v.get(path)?.ok_or(XsError::Enoent)?;
    if !node.perms.rights(caller).owner {
        return Err(XsError::Eacces);
    }
    if unprivileged(caller) {
        if perms.owner() != node.perms.owner() {
            return Err(XsError::Eperm);
        }
        if perms.entries().len() > q.perms_per_node {
            return Err(XsError::Enospc);
        }
    }
    let old = core::mem::replace(&mut node.perms, perms);
    let new = node.perms.clone();
    v.set(path, Some(node))?;
    v.perms_changed(path, old, &new);
    Ok(())
}
