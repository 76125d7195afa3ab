//! [`HostMemory`](keel_kernel::arch::HostMemory) of this backend: the shared implementation
//! over identity-mapped frame-pool memory ([`keel_host_memory::PoolMemory`]) with x86's
//! string instructions for runs of words.

use keel_host_memory::{PoolMemory, WordMoves};
use keel_kernel::mm::PhysAddr;
use keel_kernel::mm::FRAME_POOL;

/// The [`HostMemory`](keel_kernel::arch::HostMemory) of this backend.
pub type X86Memory = PoolMemory<StringMoves>;

/// Runs of words moved with `rep movsq`/`rep stosq`: every quadword is one element of the
/// string instruction, which x86 performs as one 8-byte access (atomic when aligned: SDM
/// vol. 3, "Guaranteed Atomic Operations"; fast-string operation may reorder the elements,
/// "Fast-String Operation and Out-of-Order Stores", which the contract allows), so a guest
/// racing on a word sees the old or the new one. `copy_nonoverlapping` and `write_bytes`
/// promise no access size. The string instructions keep bulk copies fast: Linux's RAM and
/// images are megabytes, and emulators run a `rep` as one instruction. Caches are coherent
/// with every reader of memory, so a write needs nothing afterwards.
pub struct StringMoves;

/// Copies `words` quadwords from `from` to `to` with `rep movsq`.
///
/// # Safety
/// Both ranges must be valid for `8 * words` bytes and not overlap.
unsafe fn move_words(from: *const u8, to: *mut u8, words: usize) {
    // SAFETY: the caller vouches for both ranges; the direction flag is clear (Rust's ABI).
    unsafe {
        core::arch::asm!(
            "rep movsq",
            inout("rcx") words => _,
            inout("rsi") from => _,
            inout("rdi") to => _,
            options(nostack, preserves_flags),
        )
    };
}

impl WordMoves for StringMoves {
    #[inline]
    unsafe fn read_words(from: *const u64, to: *mut u8, words: usize) {
        // SAFETY: the caller's promise is `move_words`'s.
        unsafe { move_words(from.cast(), to, words) }
    }

    #[inline]
    unsafe fn write_words(from: *const u8, to: *mut u64, words: usize) {
        // SAFETY: as in `read_words`.
        unsafe { move_words(from, to.cast(), words) }
    }

    #[inline]
    unsafe fn zero_words(to: *mut u64, words: usize) {
        // SAFETY: the caller vouches for the range; the direction flag is clear.
        unsafe {
            core::arch::asm!(
                "rep stosq",
                inout("rcx") words => _,
                inout("rdi") to => _,
                in("rax") 0u64,
                options(nostack, preserves_flags),
            )
        };
    }
}

/// The bytes of a staging block of the frame pool in which the domain builder holds a
/// module (`LoadRequest::staged`), if `region` lies in the pool.
pub fn staged_bytes(region: keel_kernel::mm::Region) -> Option<&'static [u8]> {
    let len = usize::try_from(region.size()).ok().filter(|&n| n != 0)?;
    if !FRAME_POOL.contains(PhysAddr(region.start), region.size()) {
        return None;
    }
    // SAFETY: pool memory is identity-mapped; the builder owns the block for the whole
    // load and nothing else writes it meanwhile.
    Some(unsafe { core::slice::from_raw_parts(region.start as usize as *const u8, len) })
}

#[cfg(test)]
mod tests {
    use super::StringMoves;
    use keel_host_memory::contract;

    #[test]
    fn keeps_the_host_memory_contract() {
        contract::keeps_the_host_memory_contract::<StringMoves>();
    }

    #[test]
    fn racing_copies_never_tear_a_word() {
        contract::racing_copies_never_tear_a_word::<StringMoves>();
    }

    #[test]
    fn large_copies_arrive_whole() {
        contract::large_copies_arrive_whole::<StringMoves>();
    }
}
