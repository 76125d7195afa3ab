//! Giving a domain what its passthrough request was checked for: its MMIO ranges mapped
//! as device memory, and a record of who holds which device ranges and interrupts, so
//! no second domain is given them.

use super::check::{check, HostUse};
use super::{Device, Request, PAGE};
use crate::arch::{Arch, Perms};
use crate::domain::Domain;
use crate::mm::{FramePool, GuestPhysAddr, PhysAddr};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Maps every `xen,reg` range of `devices` into `d` as device memory, read-write, not
/// executable. Ranges several devices share (QEMU's virtio transports share a page) are
/// mapped once. Every range must be a hole in `d`'s guest-physical space (the caller
/// checked them with [`check`]); the first that is not is named in the error, and what
/// was mapped before it stays mapped until the domain is destroyed.
pub fn map_mmio<A: Arch>(d: &Domain<A>, pool: &FramePool, devices: &[Device]) -> Result<(), String> {
    for (gpa, hpa, size) in merged(devices) {
        d.map_device(pool, GuestPhysAddr(gpa), PhysAddr(hpa), size, Perms::RW).map_err(|e| {
            format!("cannot map [{hpa:#x}, {:#x}) at guest-physical {gpa:#x}: {e:?}", hpa.saturating_add(size))
        })?;
    }
    Ok(())
}

/// The ranges to map as `(guest, host, size)`, ascending by guest address: ranges that
/// overlap or touch in guest-physical space with the same guest-to-host offset are one
/// range; others are left as they are (mapping them fails where they collide).
pub fn merged(devices: &[Device]) -> Vec<(u64, u64, u64)> {
    let mut all: Vec<(u64, u64, u64)> = devices
        .iter()
        .flat_map(|d| d.mmio.iter())
        .filter(|m| !m.host.is_empty())
        .map(|m| (m.guest, m.host.start, m.host.size()))
        .collect();
    all.sort_unstable();
    let mut out: Vec<(u64, u64, u64)> = Vec::with_capacity(all.len());
    for (gpa, hpa, size) in all {
        if let Some(last) = out.last_mut() {
            let last_end = last.0.saturating_add(last.2);
            let same_offset = last.1.wrapping_sub(last.0) == hpa.wrapping_sub(gpa);
            if same_offset && gpa <= last_end {
                last.2 = last.2.max(gpa.saturating_add(size).saturating_sub(last.0));
                continue;
            }
        }
        out.push((gpa, hpa, size));
    }
    debug_assert!(out.iter().all(|r| r.0 % PAGE == 0 && r.2 % PAGE == 0));
    out
}

/// Who holds which devices: the requests of the domains given devices, one per domain
/// node (a domain rebuilt from the same node, a reboot, takes its own devices back).
#[derive(Debug, Default)]
pub struct Claims {
    held: Vec<Request>,
}

impl Claims {
    pub const fn new() -> Self {
        Claims { held: Vec::new() }
    }

    /// Checks `request` against what Keel uses (`host`) and every other domain's devices
    /// ([`check`]); records it if nothing is in the way, else returns every refusal.
    pub fn claim(&mut self, request: Request, host: &HostUse) -> Result<(), Vec<String>> {
        let mut all: Vec<Request> = self.held.iter().filter(|r| r.node != request.node).cloned().collect();
        all.push(request);
        let last = all.len() - 1;
        let refused: Vec<String> = check(&all, host).into_iter().filter(|(i, _)| *i == last).map(|(_, m)| m).collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        self.held = all;
        Ok(())
    }

    /// Forgets the devices of the domain described by `node` (it was not built).
    pub fn release(&mut self, node: &str) {
        self.held.retain(|r| r.node != node);
    }
}
