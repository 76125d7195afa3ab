//! The ACPI tables Keel needs at boot (ACPI 6.5): the RSDP (from the multiboot2 tags, else
//! the BIOS areas), the RSDT/XSDT, the MADT (CPUs, I/O APICs) and the FADT (PM timer,
//! PM1 control for S5 power-off, whose sleep type comes from the DSDT's `\_S5_` package).
//!
//! Tables are read through the early identity map of the low 4 GiB, before Keel's own page
//! tables replace it, and every value Keel keeps is copied out. Each table's checksum and
//! length are checked first; a bad table is skipped with a warning.

use crate::cpu::MAX_CPUS;
use keel_abi::wire::{read_u16_le, read_u32_le, read_u64_le};
use spin::Once;

/// What Keel learned from ACPI.
#[derive(Clone, Copy, Debug)]
pub struct AcpiInfo {
    /// Where the RSDP was found (for the log).
    pub rsdp_source: &'static str,
    /// APIC ids of the enabled CPUs, in MADT order.
    cpus: [u32; MAX_CPUS],
    cpu_count: usize,
    /// Enabled CPUs beyond [`MAX_CPUS`].
    pub cpus_ignored: usize,
    /// The MADT's PCAT_COMPAT flag: a legacy 8259 pair is present.
    pub pcat_compat: bool,
    ioapics: [u64; 8],
    /// The first global system interrupt of each I/O APIC.
    ioapic_gsi_bases: [u32; 8],
    ioapic_count: usize,
    /// The MADT's override of the COM1 line (ISA IRQ 4): its GSI and MPS INTI flags.
    com1_override: Option<(u32, u16)>,
    /// The ACPI PM timer's I/O port and whether it is 32 bits wide (else 24).
    pub pm_timer: Option<(u16, bool)>,
    /// PM1a/PM1b control ports and the S5 sleep types, for ACPI power-off.
    pub pm1a_control: Option<u16>,
    pub pm1b_control: Option<u16>,
    pub s5_sleep_types: Option<(u8, u8)>,
}

impl AcpiInfo {
    const fn empty(rsdp_source: &'static str) -> AcpiInfo {
        AcpiInfo {
            rsdp_source,
            cpus: [0; MAX_CPUS],
            cpu_count: 0,
            cpus_ignored: 0,
            pcat_compat: true,
            ioapics: [0; 8],
            ioapic_gsi_bases: [0; 8],
            ioapic_count: 0,
            com1_override: None,
            pm_timer: None,
            pm1a_control: None,
            pm1b_control: None,
            s5_sleep_types: None,
        }
    }

    /// APIC ids of the enabled CPUs (the boot CPU among them).
    pub fn cpu_apic_ids(&self) -> &[u32] {
        &self.cpus[..self.cpu_count]
    }

    /// Physical addresses of the I/O APICs.
    pub fn ioapics(&self) -> &[u64] {
        &self.ioapics[..self.ioapic_count]
    }

    /// The global system interrupt of ISA IRQ `irq` and whether it is active-low and
    /// level-triggered (an interrupt source override, else ISA's identity, high, edge).
    pub fn isa_irq(&self, irq: u8) -> (u32, bool, bool) {
        match self.com1_override {
            Some((gsi, flags)) if irq == COM1_IRQ => (gsi, flags & 0b11 == 0b11, (flags >> 2) & 0b11 == 0b11),
            _ => (u32::from(irq), false, false),
        }
    }

    /// The I/O APIC that has global system interrupt `gsi`, and the line on it: the one
    /// with the highest base not above `gsi`.
    pub fn ioapic_for(&self, gsi: u32) -> Option<(u64, u32)> {
        (0..self.ioapic_count)
            .filter(|&i| self.ioapic_gsi_bases[i] <= gsi)
            .max_by_key(|&i| self.ioapic_gsi_bases[i])
            .map(|i| (self.ioapics[i], gsi - self.ioapic_gsi_bases[i]))
    }
}

/// COM1's ISA IRQ.
pub const COM1_IRQ: u8 = 4;

static INFO: Once<AcpiInfo> = Once::new();

/// The ACPI facts, once [`init`] ran (`None` without ACPI).
pub fn info() -> Option<&'static AcpiInfo> {
    INFO.get()
}

const FOUR_GIB: u64 = 1 << 32;
const MAX_TABLE: u32 = 1 << 20;

/// The bytes at physical `pa`, while the early map covers the low 4 GiB.
fn phys(pa: u64, len: usize) -> Option<&'static [u8]> {
    if pa == 0 || pa.checked_add(len as u64)? > FOUR_GIB {
        return None;
    }
    // SAFETY: the early identity map covers all of the low 4 GiB; ACPI memory is firmware
    // memory Keel never allocates, and the slice is only used during boot-time parsing.
    Some(unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len) })
}

fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x)) == 0
}

/// A validated RSDP: (revision, RSDT address, XSDT address if revision >= 2).
fn check_rsdp(b: &[u8]) -> Option<(u8, u64, u64)> {
    if b.len() < 20 || &b[..8] != b"RSD PTR " || !checksum_ok(&b[..20]) {
        return None;
    }
    let revision = b[15];
    let rsdt = read_u32_le(b, 16) as u64;
    if revision >= 2 && b.len() >= 36 {
        let len = (read_u32_le(b, 20) as usize).clamp(36, b.len());
        if checksum_ok(&b[..len]) {
            return Some((revision, rsdt, read_u64_le(b, 24)));
        }
    }
    Some((revision, rsdt, 0))
}

/// Scans the first KiB of the EBDA and the BIOS ROM area for the RSDP (ACPI 5.2.5.1).
fn scan_bios_areas() -> Option<(u8, u64, u64)> {
    let ebda = phys(0x40e, 2).map(|b| (read_u16_le(b, 0) as u64) << 4).filter(|a| (0x80000..0xa0000).contains(a));
    let areas = [ebda.map(|a| (a, 1024)), Some((0xe0000, 0x20000))];
    for (start, len) in areas.into_iter().flatten() {
        let area = phys(start, len)?;
        for off in (0..len.saturating_sub(36)).step_by(16) {
            if let Some(r) = check_rsdp(&area[off..off + 36]) {
                return Some(r);
            }
        }
    }
    None
}

/// A validated table at `pa`, or `None` (with a warning) if it is unreadable or corrupt.
fn table(pa: u64) -> Option<&'static [u8]> {
    let header = phys(pa, 36)?;
    let len = read_u32_le(header, 4);
    let sig = core::str::from_utf8(&header[..4]).unwrap_or("????");
    if !(36..=MAX_TABLE).contains(&len) {
        log::warn!("ACPI table {sig} at {pa:#x}: length {len} is implausible; ignored");
        return None;
    }
    let t = phys(pa, len as usize)?;
    if !checksum_ok(t) {
        log::warn!("ACPI table {sig} at {pa:#x}: bad checksum; ignored");
        return None;
    }
    Some(t)
}

/// Finds and parses the tables. `rsdp_v2`/`rsdp_v1` are the loader's copies, if any.
pub fn init(rsdp_v2: Option<&[u8]>, rsdp_v1: Option<&[u8]>) -> Option<&'static AcpiInfo> {
    let (source, rsdp) = if let Some(r) = rsdp_v2.and_then(check_rsdp) {
        ("multiboot2 ACPI 2.0 tag", r)
    } else if let Some(r) = rsdp_v1.and_then(check_rsdp) {
        ("multiboot2 ACPI 1.0 tag", r)
    } else if let Some(r) = scan_bios_areas() {
        ("BIOS area scan", r)
    } else {
        log::warn!("no valid ACPI RSDP (no multiboot2 ACPI tag, none in the BIOS areas)");
        return None;
    };
    let (revision, rsdt, xsdt) = rsdp;
    let mut info = AcpiInfo::empty(source);
    let (root, entry_size) = if xsdt != 0 { (table(xsdt), 8) } else { (table(rsdt), 4) };
    let Some(root) = root else {
        log::warn!("ACPI: the {} is unusable", if xsdt != 0 { "XSDT" } else { "RSDT" });
        return None;
    };
    log::debug!("ACPI: RSDP revision {revision} from the {source}, {} entries", (root.len() - 36) / entry_size);
    for entry in root[36..].chunks_exact(entry_size) {
        let pa = if entry_size == 8 { read_u64_le(entry, 0) } else { read_u32_le(entry, 0) as u64 };
        let Some(t) = table(pa) else { continue };
        match &t[..4] {
            b"APIC" => parse_madt(t, &mut info),
            b"FACP" => parse_fadt(t, &mut info),
            _ => {}
        }
    }
    Some(INFO.call_once(|| info))
}

fn parse_madt(t: &[u8], info: &mut AcpiInfo) {
    if t.len() < 44 {
        return;
    }
    info.pcat_compat = read_u32_le(t, 40) & 1 != 0;
    let mut off = 44;
    while off + 2 <= t.len() {
        let (ty, len) = (t[off], t[off + 1] as usize);
        if len < 2 || off + len > t.len() {
            log::warn!("MADT entry type {ty} at offset {off} has bad length {len}; rest of MADT ignored");
            break;
        }
        let e = &t[off..off + len];
        match ty {
            // Processor Local APIC: enabled if flags bit 0 (bit 1 = online-capable, hot-plug).
            0 if len >= 8 && read_u32_le(e, 4) & 1 != 0 => add_cpu(info, e[3] as u32),
            // I/O APIC.
            1 if len >= 12 && info.ioapic_count < info.ioapics.len() => {
                info.ioapics[info.ioapic_count] = read_u32_le(e, 4) as u64;
                info.ioapic_gsi_bases[info.ioapic_count] = read_u32_le(e, 8);
                info.ioapic_count += 1;
            }
            // Interrupt Source Override (bus 0 = ISA): only COM1's line matters to Keel.
            2 if len >= 10 && e[2] == 0 && e[3] == COM1_IRQ => {
                info.com1_override = Some((read_u32_le(e, 4), read_u16_le(e, 8)));
            }
            // Processor Local x2APIC.
            9 if len >= 16 && read_u32_le(e, 8) & 1 != 0 => add_cpu(info, read_u32_le(e, 4)),
            _ => {}
        }
        off += len;
    }
}

fn add_cpu(info: &mut AcpiInfo, apic_id: u32) {
    if info.cpus[..info.cpu_count].contains(&apic_id) {
        return;
    }
    if info.cpu_count == MAX_CPUS {
        info.cpus_ignored += 1;
        return;
    }
    info.cpus[info.cpu_count] = apic_id;
    info.cpu_count += 1;
}

/// An I/O port from a FADT legacy block field (`legacy`) or its Generic Address Structure
/// (`gas`), if either names one.
fn io_port(t: &[u8], legacy: usize, gas: usize) -> Option<u16> {
    const SPACE_IO: u8 = 1;
    if t.len() >= gas + 12 && t[gas] == SPACE_IO {
        let a = read_u64_le(t, gas + 4);
        if a != 0 && a <= u16::MAX as u64 {
            return Some(a as u16);
        }
    }
    let a = if t.len() >= legacy + 4 { read_u32_le(t, legacy) } else { 0 };
    (a != 0 && a <= u16::MAX as u32).then_some(a as u16)
}

fn parse_fadt(t: &[u8], info: &mut AcpiInfo) {
    const FLAGS: usize = 112;
    const TMR_VAL_EXT: u32 = 1 << 8;
    if t.len() < 116 {
        return;
    }
    info.pm1a_control = io_port(t, 64, 172);
    info.pm1b_control = io_port(t, 68, 184);
    if t[91] == 4 {
        info.pm_timer = io_port(t, 76, 208).map(|p| (p, read_u32_le(t, FLAGS) & TMR_VAL_EXT != 0));
    }
    let x_dsdt = if t.len() >= 148 { read_u64_le(t, 140) } else { 0 };
    let dsdt = if x_dsdt != 0 { x_dsdt } else { read_u32_le(t, 40) as u64 };
    info.s5_sleep_types = table(dsdt).and_then(find_s5);
}

/// The sleep types of the DSDT's `\_S5_` package: `Name (_S5, Package () { a, b, ... })`.
fn find_s5(dsdt: &[u8]) -> Option<(u8, u8)> {
    const NAME_OP: u8 = 0x08;
    const PACKAGE_OP: u8 = 0x12;
    let at = dsdt.windows(4).position(|w| w == b"_S5_")?;
    let named = at >= 1 && (dsdt[at - 1] == NAME_OP || (at >= 2 && dsdt[at - 1] == b'\\' && dsdt[at - 2] == NAME_OP));
    let mut p = at + 4;
    if !named || *dsdt.get(p)? != PACKAGE_OP {
        return None;
    }
    p += 1;
    p += 1 + (*dsdt.get(p)? >> 6) as usize; // PkgLength: lead byte plus 0..3 more
    p += 1; // NumElements
    let mut element = || -> Option<u8> {
        let v = match *dsdt.get(p)? {
            0x0a => {
                p += 1;
                *dsdt.get(p)? // BytePrefix value
            }
            0x00 => 0, // ZeroOp
            0x01 => 1, // OneOp
            _ => return None,
        };
        p += 1;
        Some(v)
    };
    let a = element()?;
    let b = element().unwrap_or(0);
    Some((a, b))
}
