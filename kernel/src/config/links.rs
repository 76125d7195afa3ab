//! Checks across domains: unique names, at most one hardware and one xenstore domain,
//! modules inside RAM and disjoint, and static event channels that pair up.

use super::children::EvtchnEnd;
use super::domain::Outcome;
use super::types::{Capabilities, DomainConfig, Limits, StaticEventChannel};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A domain being read: its node path and what was found (errors, warnings).
pub(super) type Found = (String, Outcome);

/// Marks domain `i` as failed with `message`.
fn fail(found: &mut [Found], i: usize, message: String) {
    let r = &mut found[i].1;
    match r {
        Ok(d) => *r = Err((alloc::vec![message], core::mem::take(&mut d.warnings))),
        Err((errors, _)) => errors.push(message),
    }
}

fn ok(found: &[Found], i: usize) -> Option<&DomainConfig> {
    found.get(i).and_then(|(_, r)| r.as_ref().ok())
}

pub(super) fn check(found: &mut [Found], ends: &[EvtchnEnd], limits: &Limits<'_>) {
    unique_names_and_roles(found);
    modules(found, limits);
    static_memory(found, limits);
    event_channels(found, ends);
}

/// `direct-map` RAM (`xen,static-mem`): inside the RAM the caller knows of, clear of
/// every module and of every other domain's.
fn static_memory(found: &mut [Found], limits: &Limits<'_>) {
    let mut failures = Vec::new();
    let banks: Vec<(usize, &DomainConfig, crate::mm::Region)> = (0..found.len())
        .filter_map(|i| ok(found, i).map(|d| (i, d)))
        .flat_map(|(i, d)| d.direct_map.iter().flatten().map(move |b| (i, d, *b)))
        .collect();
    let modules: Vec<&super::Module> =
        (0..found.len()).filter_map(|i| ok(found, i)).flat_map(|d| d.modules()).collect();
    for (k, &(i, d, b)) in banks.iter().enumerate() {
        let what = format!("{}: xen,static-mem [{:#x}, {:#x})", d.node, b.start, b.end);
        if !limits.ram.is_empty() && !limits.ram.iter().any(|ram| ram.start <= b.start && b.end <= ram.end) {
            failures.push((i, format!("{what} is not inside RAM")));
        }
        for m in modules.iter().filter(|m| m.region.start < b.end && b.start < m.region.end) {
            failures.push((i, format!("{what} is not free: it overlaps the module {}", m.node)));
        }
        for &(j, e, o) in &banks[..k] {
            if j != i && o.start < b.end && b.start < o.end {
                failures.push((i, format!("{what} is given to {} as well", e.node)));
                failures.push((
                    j,
                    format!("{}: xen,static-mem [{:#x}, {:#x}) is given to {} as well", e.node, o.start, o.end, d.node),
                ));
            }
        }
    }
    for (i, m) in failures {
        fail(found, i, m);
    }
}

fn unique_names_and_roles(found: &mut [Found]) {
    let mut failures = Vec::new();
    for i in 0..found.len() {
        let Some(d) = ok(found, i) else { continue };
        for j in 0..i {
            let Some(e) = ok(found, j) else { continue };
            if d.name == e.name {
                failures.push((i, format!("{}: the name \"{}\" is taken by {}", d.node, d.name, e.node)));
            }
            for (bit, role) in [(Capabilities::HARDWARE, "hardware"), (Capabilities::XENSTORE, "xenstore")] {
                if d.capabilities.has(bit) && e.capabilities.has(bit) {
                    failures.push((i, format!("{}: a second {role} domain (the first is {})", d.node, e.node)));
                }
            }
        }
    }
    for (i, m) in failures {
        fail(found, i, m);
    }
}

fn modules(found: &mut [Found], limits: &Limits<'_>) {
    let mut failures = Vec::new();
    let all: Vec<(usize, _)> = (0..found.len())
        .filter_map(|i| ok(found, i).map(|d| (i, d)))
        .flat_map(|(i, d)| d.modules().map(move |m| (i, m)))
        .collect();
    for (k, &(i, m)) in all.iter().enumerate() {
        let r = m.region;
        if !limits.ram.is_empty() && !limits.ram.iter().any(|ram| ram.start <= r.start && r.end <= ram.end) {
            failures.push((i, format!("{}: [{:#x}, {:#x}) is not inside RAM", m.node, r.start, r.end)));
        }
        for &(j, other) in &all[..k] {
            let o = other.region;
            if r.start < o.end && o.start < r.end {
                let msg = |a: &super::Module, b: &super::Module| {
                    format!("{}: [{:#x}, {:#x}) overlaps {}", a.node, a.region.start, a.region.end, b.node)
                };
                failures.push((i, msg(m, other)));
                if j != i {
                    failures.push((j, msg(other, m)));
                }
            }
        }
    }
    for (i, m) in failures {
        fail(found, i, m);
    }
}

fn event_channels(found: &mut [Found], ends: &[EvtchnEnd]) {
    let mut by_phandle = BTreeMap::new();
    let mut failures = Vec::new();
    for (k, e) in ends.iter().enumerate() {
        if let Some(p) = e.phandle {
            if let Some(&first) = by_phandle.get(&p) {
                let first: &EvtchnEnd = &ends[first];
                failures.push((e.owner, format!("{}: phandle {p:#x} is also used by {}", e.path, first.path)));
            }
            // The first node keeps the phandle: its peer pairs with it, not with the
            // refused duplicate.
            by_phandle.entry(p).or_insert(k);
        }
    }
    let mut pairs = Vec::new();
    for e in ends {
        let Some(remote) = by_phandle.get(&e.remote).map(|&k| &ends[k]) else {
            failures.push((
                e.owner,
                format!("{}: links to phandle {:#x}, which is no xen,evtchn-v1 node", e.path, e.remote),
            ));
            continue;
        };
        if e.phandle.is_none() || remote.remote != e.phandle.unwrap_or(0) {
            failures.push((e.owner, format!("{}: the other end {} does not link back to it", e.path, remote.path)));
            continue;
        }
        if let Some(dup) = ends.iter().find(|o| o.owner == e.owner && o.port == e.port && o.path < e.path) {
            failures.push((e.owner, format!("{}: port {} is also used by {}", e.path, e.port, dup.path)));
            continue;
        }
        pairs.push((e, remote));
    }
    for (i, m) in failures {
        fail(found, i, m);
    }
    for (e, remote) in pairs {
        let Some(remote_name) = ok(found, remote.owner).map(|d| d.name.clone()) else {
            if let Some((_, Ok(d))) = found.get_mut(e.owner) {
                d.warnings
                    .push(format!("{}: dropped: the domain at the other end ({}) has errors", e.path, remote.path));
            }
            continue;
        };
        if let Some((_, Ok(d))) = found.get_mut(e.owner) {
            d.event_channels.push(StaticEventChannel {
                local_port: e.port,
                remote_domain: remote_name,
                remote_port: remote.port,
            });
        }
    }
}
