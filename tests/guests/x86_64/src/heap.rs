//! The heap of the programs that allocate (the xenstore domain); the scenarios do not.

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Bytes of the heap (in .bss, so the image's declared size covers it).
const SIZE: usize = 8 << 20;

#[repr(C, align(4096))]
struct Space([u8; SIZE]);

static mut SPACE: Space = Space([0; SIZE]);

/// Gives the heap its space; call once, on the boot CPU, before anything allocates.
pub fn init() {
    // SAFETY: called once before any allocation; SPACE is used by nothing else and is
    // mapped read-write (it is in the image's .bss, inside RAM).
    unsafe { HEAP.lock().init(&raw mut SPACE as usize, SIZE) };
}
