//! Memory: addresses, the boot memory map, the frame pool, guest translation tables.

mod frame;
mod page_table;
mod region;
mod remote_flush;

pub use crate::addr::{bytes_to_page_end, GuestPhysAddr, PhysAddr, Region, PAGE_BYTES, PAGE_SIZE};
pub use frame::{FramePool, PoolStats, ReserveError, FRAME_POOL};
pub use page_table::{translate, MapError, PageTable};
pub use region::MemoryMap;
pub use remote_flush::FlushGate;
