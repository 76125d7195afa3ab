//! Updating a granter's `grant_entry_v1` flags, which the granting guest may change at
//! any moment (to revoke, or to flip `GTF_readonly`).
//!
//! The first 32 bits of an entry are `flags` (low half) and `domid` (high half); Keel
//! updates them together with compare-and-swap, at most five attempts, as Xen does.

use crate::arch::Arch;
use crate::guest_memory::GuestWord32;
use keel_abi::grant::*;

/// Attempts before a grant entry is declared unstable.
const RETRIES: u32 = 5;

/// Sets `GTF_reading` (and `GTF_writing` unless `readonly`) in the entry whose first word
/// is `word`, for domain `ldomid`. If the entry is not pinned yet (`pinned == false`) it
/// must permit access to `ldomid` (and, for a mapping, not be a sub-page grant).
/// Returns the `GNTST_*` failure.
pub fn acquire<A: Arch>(
    word: &GuestWord32<A>,
    pinned: bool,
    readonly: bool,
    mapping: bool,
    ldomid: u16,
) -> Result<(), i16> {
    let mask = GTF_TYPE_MASK | if mapping { GTF_SUB_PAGE } else { 0 };
    let mut seen = word.load();
    for _ in 0..RETRIES {
        let flags = (seen & 0xffff) as u16;
        let domid = (seen >> 16) as u16;
        if !pinned && (flags & mask != GTF_PERMIT_ACCESS || domid != ldomid) {
            return Err(GNTST_GENERAL_ERROR);
        }
        let mut new = flags | GTF_READING;
        if !readonly {
            if flags & GTF_READONLY != 0 {
                return Err(GNTST_GENERAL_ERROR);
            }
            new |= GTF_WRITING;
        }
        let found = word.compare_exchange(seen, (seen & 0xffff_0000) | new as u32);
        if found == seen {
            return Ok(());
        }
        seen = found;
    }
    Err(GNTST_GENERAL_ERROR)
}

/// Clears `bits` (`GTF_reading`/`GTF_writing`) in the entry's flags. If the guest keeps
/// the word changing, the bits are cleared with a plain store of the last value seen.
pub fn clear<A: Arch>(word: &GuestWord32<A>, bits: u16) {
    if word.fetch_clear(bits as u32).is_err() {
        word.store(word.load() & !(bits as u32));
    }
}
