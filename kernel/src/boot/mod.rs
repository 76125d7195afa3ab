//! What a backend learned at boot, in portable form, and Keel's command line.

mod cmdline;

pub use cmdline::{LogLevel, Options};

use crate::mm::{MemoryMap, Region};

/// A file the boot loader placed in memory next to Keel (guest kernel, initrd, device tree).
#[derive(Clone, Copy, Debug)]
pub struct BootModule {
    pub region: Region,
    /// The loader's string for the module (multiboot2 command line, DT node name).
    pub cmdline: &'static str,
}

/// Everything the portable core needs from the boot path.
#[derive(Clone, Debug)]
pub struct BootInfo {
    /// Who started Keel ("GRUB 2.06", "device tree") as far as the backend can tell.
    pub loader: &'static str,
    /// Keel's own command line.
    pub cmdline: &'static str,
    /// Bytes of RAM the firmware described.
    pub ram_bytes: u64,
    /// RAM that nothing uses yet: not Keel's image, not firmware-reserved, not the device
    /// tree, not a module.
    pub free_memory: MemoryMap,
    /// Modules, in the loader's order.
    pub modules: [Option<BootModule>; 16],
    /// The device tree describing domains (arm64: the boot DT; x86: a DTB module).
    pub device_tree: Option<&'static [u8]>,
}

impl BootInfo {
    pub fn modules(&self) -> impl Iterator<Item = &BootModule> {
        self.modules.iter().flatten()
    }
}
