//! The hypervisor heap: Rust objects (`Box`, `Vec`, ...). Guest memory and translation
//! tables come from the frame pool instead.

use buddy_system_allocator::LockedHeap;
use keel_kernel::mm::MemoryMap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

const MIB: u64 = 1 << 20;

/// Takes the heap out of `free` (an eighth of free RAM, between 8 and 128 MiB).
pub fn init(free: &mut MemoryMap) {
    let size = (free.total() / 8).clamp(8 * MIB, 128 * MIB) & !(2 * MIB - 1);
    let Some(r) = free.take(size, 2 * MIB) else {
        panic!("no room for a {} MiB heap in {} MiB of free RAM", size / MIB, free.total() / MIB);
    };
    // SAFETY: `r` was free RAM (not Keel's image, the device tree, a module or firmware
    // memory) and is now removed from `free`, so nothing else will use it; the backend
    // maps all RAM identity, read-write, so the addresses are valid pointers.
    unsafe { HEAP.lock().init(r.start as usize, r.size() as usize) };
    log::info!("heap: {} MiB at {:#x}", r.size() / MIB, r.start);
}
