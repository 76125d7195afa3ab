//! The ACPI tables a PVH guest gets (ACPI 6.5, chapter 5), as Xen's toolstack gives
//! them: RSDP, RSDT and XSDT, a hardware-reduced FADT (revision 5, no VGA, no CMOS RTC)
//! with an empty DSDT, and a MADT with one local APIC per vCPU whose processor UID and
//! APIC id are the vCPU id (Linux takes a PVH vCPU's Xen id from the UID). No I/O APIC,
//! no legacy PIC.

use crate::layout::LAPIC_BASE;
use alloc::vec;
use alloc::vec::Vec;

const OEM_ID: &[u8; 6] = b"KEEL  ";
const OEM_TABLE_ID: &[u8; 8] = b"KEELPVH ";
const CREATOR_ID: &[u8; 4] = b"KEEL";
const HEADER: usize = 36;
const RSDP_SIZE: usize = 36;
const FADT_SIZE: usize = 268;
/// FADT flags: hardware-reduced ACPI (no PM blocks, no SCI, no FACS).
const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// IAPC_BOOT_ARCH: no VGA (bit 2), no CMOS RTC (bit 5).
const IAPC_NO_VGA: u16 = 1 << 2;
const IAPC_NO_CMOS_RTC: u16 = 1 << 5;
const MADT_LOCAL_APIC: u8 = 0;
const MADT_ENABLED: u32 = 1;

/// The tables laid out for guest-physical address `base`: the bytes to copy there and
/// the RSDP's address (`base` itself).
pub struct Tables {
    pub bytes: Vec<u8>,
    pub rsdp: u64,
}

fn checksum(b: &[u8]) -> u8 {
    0u8.wrapping_sub(b.iter().fold(0u8, |s, &x| s.wrapping_add(x)))
}

/// A table: header with `signature`, `revision` and `body`; the checksum is filled in.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; HEADER];
    t[0..4].copy_from_slice(signature);
    t[4..8].copy_from_slice(&((HEADER + body.len()) as u32).to_le_bytes());
    t[8] = revision;
    t[10..16].copy_from_slice(OEM_ID);
    t[16..24].copy_from_slice(OEM_TABLE_ID);
    t[24..28].copy_from_slice(&1u32.to_le_bytes());
    t[28..32].copy_from_slice(CREATOR_ID);
    t[32..36].copy_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

fn madt(vcpus: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // no PCAT_COMPAT: no 8259 pair
    for id in 0..vcpus {
        body.extend_from_slice(&[MADT_LOCAL_APIC, 8, id as u8, id as u8]);
        body.extend_from_slice(&MADT_ENABLED.to_le_bytes());
    }
    table(b"APIC", 4, &body)
}

fn fadt(dsdt: u64) -> Vec<u8> {
    let mut body = vec![0u8; FADT_SIZE - HEADER];
    let at = |field: usize| field - HEADER;
    body[at(40)..at(44)].copy_from_slice(&(dsdt as u32).to_le_bytes());
    body[at(109)..at(111)].copy_from_slice(&(IAPC_NO_VGA | IAPC_NO_CMOS_RTC).to_le_bytes());
    body[at(112)..at(116)].copy_from_slice(&FADT_HW_REDUCED_ACPI.to_le_bytes());
    body[at(140)..at(148)].copy_from_slice(&dsdt.to_le_bytes());
    table(b"FACP", 5, &body)
}

fn rsdp(rsdt: u64, xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; RSDP_SIZE];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(OEM_ID);
    r[15] = 2;
    r[16..20].copy_from_slice(&(rsdt as u32).to_le_bytes());
    r[20..24].copy_from_slice(&(RSDP_SIZE as u32).to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// Builds the tables for `vcpus` vCPUs at guest-physical `base` (below 4 GiB).
pub fn build(base: u64, vcpus: u32) -> Tables {
    let mut bytes = Vec::new();
    let place = |bytes: &mut Vec<u8>, t: &[u8]| -> u64 {
        bytes.resize(bytes.len().next_multiple_of(16), 0);
        let at = base + bytes.len() as u64;
        bytes.extend_from_slice(t);
        at
    };
    // Lay out the fixed-size tables first so that every address is known.
    let rsdp_at = base;
    bytes.resize(RSDP_SIZE, 0);
    let dsdt = place(&mut bytes, &table(b"DSDT", 2, &[]));
    let fadt_at = place(&mut bytes, &fadt(dsdt));
    let madt_at = place(&mut bytes, &madt(vcpus));
    let entries = [fadt_at, madt_at];
    let rsdt_body: Vec<u8> = entries.iter().flat_map(|a| (*a as u32).to_le_bytes()).collect();
    let xsdt_body: Vec<u8> = entries.iter().flat_map(|a| a.to_le_bytes()).collect();
    let rsdt = place(&mut bytes, &table(b"RSDT", 1, &rsdt_body));
    let xsdt = place(&mut bytes, &table(b"XSDT", 1, &xsdt_body));
    bytes[..RSDP_SIZE].copy_from_slice(&rsdp(rsdt, xsdt));
    Tables { bytes, rsdp: rsdp_at }
}
