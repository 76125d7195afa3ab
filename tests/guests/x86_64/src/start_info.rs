//! What Keel hands a PVH guest: `hvm_start_info` (command line, memory map) and the ACPI
//! tables it points at (the MADT lists the vCPUs). All of it lies in identity-mapped
//! guest memory that nothing reuses.

use keel_abi::start_info::{
    HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, HVM_MEMMAP_TYPE_RAM, HVM_START_MAGIC_VALUE,
};
use keel_abi::Wire;

/// What the guest learned at boot.
#[derive(Clone, Copy, Debug)]
pub struct Boot {
    pub cmdline: &'static str,
    /// The end of the RAM below 4 GiB.
    pub ram_end: u64,
    pub cpus: u32,
    /// The first module (the ramdisk): guest-physical address and size; (0, 0) if none.
    pub module: (u64, u64),
}

/// `len` bytes of guest-physical memory at `pa` (identity-mapped).
fn bytes(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: Keel's boot tables lie in the guest's reserved window, identity-mapped and
    // never written after boot.
    unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len) }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads `hvm_start_info` at `pa`; `Err` says what is wrong with it.
pub fn read(pa: u64) -> Result<Boot, &'static str> {
    let info = HvmStartInfo::from_bytes(bytes(pa, HvmStartInfo::SIZE)).ok_or("no start info")?;
    if info.magic != HVM_START_MAGIC_VALUE || info.version < 1 {
        return Err("bad hvm_start_info magic or version");
    }
    let cmdline = if info.cmdline_paddr == 0 {
        ""
    } else {
        let raw = bytes(info.cmdline_paddr, 4096);
        let len = raw.iter().position(|&b| b == 0).unwrap_or(0);
        core::str::from_utf8(&raw[..len]).map_err(|_| "command line is not UTF-8")?
    };
    let map = bytes(info.memmap_paddr, info.memmap_entries as usize * HvmMemmapTableEntry::SIZE);
    let ram_end = map
        .chunks(HvmMemmapTableEntry::SIZE)
        .filter_map(HvmMemmapTableEntry::from_bytes)
        .filter(|e| e.kind == HVM_MEMMAP_TYPE_RAM && e.addr + e.size <= 1 << 32)
        .map(|e| e.addr + e.size)
        .max()
        .ok_or("no RAM in the memory map")?;
    let module = if info.nr_modules == 0 || info.modlist_paddr == 0 {
        (0, 0)
    } else {
        let m =
            HvmModlistEntry::from_bytes(bytes(info.modlist_paddr, HvmModlistEntry::SIZE)).ok_or("no module list")?;
        if m.paddr.checked_add(m.size).is_none_or(|end| end > ram_end) {
            return Err("the first module lies outside the RAM below 4 GiB");
        }
        (m.paddr, m.size)
    };
    Ok(Boot { cmdline, ram_end, cpus: madt_cpus(info.rsdp_paddr).ok_or("no usable MADT")?, module })
}

/// The enabled local APICs the MADT lists, through the RSDP's XSDT.
fn madt_cpus(rsdp: u64) -> Option<u32> {
    let r = bytes(rsdp, 36);
    if &r[..8] != b"RSD PTR " {
        return None;
    }
    let xsdt = u64::from_le_bytes(r[24..32].try_into().ok()?);
    let header = bytes(xsdt, 36);
    let x = bytes(xsdt, u32_at(header, 4) as usize);
    for entry in x[36..].chunks(8) {
        let table = u64::from_le_bytes(entry.try_into().ok()?);
        let t = bytes(table, 36);
        if &t[..4] != b"APIC" {
            continue;
        }
        let madt = bytes(table, u32_at(t, 4) as usize);
        let mut at = 44;
        let mut cpus = 0;
        while at + 2 <= madt.len() && madt[at + 1] >= 2 {
            if madt[at] == 0 && madt[at + 1] == 8 && u32_at(madt, at + 4) & 1 != 0 {
                cpus += 1;
            }
            at += madt[at + 1] as usize;
        }
        return Some(cpus);
    }
    None
}
