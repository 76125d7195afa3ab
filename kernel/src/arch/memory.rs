//! Access to host physical memory.

use crate::addr::PhysAddr;

/// Reads and writes host physical memory that the frame pool handed out (guest RAM,
/// translation tables, shared pages). Rust objects never live there, so these safe
/// functions cannot break the hypervisor's own memory; a backend refuses (panics on)
/// any address outside the pool, which would be a bug in the core.
///
/// Word accesses are single-copy atomic, so a guest racing on the same memory sees
/// either the old or the new value, never a torn one.
pub trait HostMemory {
    /// Copies `dst.len()` bytes from `pa` into `dst`.
    fn read(pa: PhysAddr, dst: &mut [u8]);
    /// Copies `src` to `pa`.
    fn write(pa: PhysAddr, src: &[u8]);
    /// Sets `len` bytes at `pa` to zero.
    fn zero(pa: PhysAddr, len: usize);
    /// Atomically loads the naturally aligned 64-bit word at `pa`.
    fn load_u64(pa: PhysAddr) -> u64;
    /// Atomically stores the naturally aligned 64-bit word at `pa`.
    fn store_u64(pa: PhysAddr, value: u64);
    /// Atomically compares the naturally aligned 32-bit word at `pa` with `current`
    /// and, if equal, replaces it with `new`. Returns the value found.
    fn compare_exchange_u32(pa: PhysAddr, current: u32, new: u32) -> u32;
    /// Atomically compares the naturally aligned 64-bit word at `pa` with `current`
    /// and, if equal, replaces it with `new`. Returns the value found.
    fn compare_exchange_u64(pa: PhysAddr, current: u64, new: u64) -> u64;
}
