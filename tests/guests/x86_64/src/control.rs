//! `keel.test=control-registers`: what a guest may put in CR0, CR4 and EFER, checked as
//! Xen 4.17 checks it (`hvm_cr4_guest_valid_bits`, `hvm_set_cr0`, `hvm_efer_valid`):
//! every CR4 bit the guest's own CPUID does not offer (UMIP when UMIP is hidden, VMXE,
//! SMXE, OSXSAVE without XSAVE, reserved bits, ...) gets #GP, as do CR0 and EFER values
//! no processor takes; bits it offers can be set and cleared.

use crate::cpu::{cpuid, read_cr0, read_cr3, read_cr4};
use crate::traps::{self, write_cr0, write_cr4};
use keel_test_guest::{ensure, fail, say, Outcome, Platform};

const GP: u8 = 13;
const EFER: u32 = 0xc000_0080;

/// The CR4 bits Xen 4.17 lets a guest with this CPUID set (`hvm_cr4_guest_valid_bits`:
/// VMXE only with nested virtualisation, which Keel never offers).
fn cr4_valid_bits() -> u64 {
    let l1 = cpuid(1, 0);
    let (l7b, l7c, l7d) = if cpuid(0, 0).eax >= 7 {
        let l7 = cpuid(7, 0);
        (l7.ebx, l7.ecx, l7.edx)
    } else {
        (0, 0, 0)
    };
    let has = |reg: u32, bit: u32| reg & (1 << bit) != 0;
    let rules: [(bool, u64); 19] = [
        (has(l1.edx, 1), 1 << 0 | 1 << 1),           // VME: VME, PVI
        (has(l1.edx, 4), 1 << 2),                    // TSC: TSD
        (has(l1.edx, 2), 1 << 3),                    // DE
        (has(l1.edx, 3), 1 << 4),                    // PSE
        (has(l1.edx, 6), 1 << 5),                    // PAE
        (has(l1.edx, 7) || has(l1.edx, 14), 1 << 6), // MCE or MCA: MCE
        (has(l1.edx, 13), 1 << 7),                   // PGE
        (true, 1 << 8),                              // PCE
        (has(l1.edx, 24), 1 << 9),                   // FXSR: OSFXSR
        (has(l1.edx, 25), 1 << 10),                  // SSE: OSXMMEXCPT
        (has(l7c, 2), 1 << 11),                      // UMIP
        (has(l7c, 16), 1 << 12),                     // LA57
        (has(l7b, 0), 1 << 16),                      // FSGSBASE
        (has(l1.ecx, 17), 1 << 17),                  // PCID: PCIDE
        (has(l1.ecx, 26), 1 << 18),                  // XSAVE: OSXSAVE
        (has(l7b, 7), 1 << 20),                      // SMEP
        (has(l7b, 20), 1 << 21),                     // SMAP
        (has(l7c, 3), 1 << 22),                      // PKU: PKE
        (has(l7c, 7) || has(l7d, 20), 1 << 23),      // CET (shadow stacks or IBT)
    ];
    let pks = if has(l7c, 31) { 1 << 24 } else { 0 };
    rules.iter().filter(|(offered, _)| *offered).fold(pks, |bits, (_, b)| bits | b)
}

/// A CR4 write that must fault; the guest's CR4 is put back if it did not.
fn refused_cr4(value: u64, original: u64, what: &str) -> Outcome {
    match write_cr4(value) {
        Err(GP) => Ok(()),
        Err(v) => fail!("CR4 = {value:#x} ({what}) raised vector {v}, not #GP"),
        Ok(()) => {
            let _ = write_cr4(original);
            fail!("CR4 = {value:#x} ({what}) was accepted; Xen gives #GP")
        }
    }
}

fn cr4(p: &impl Platform) -> Outcome {
    let original = read_cr4();
    let valid = cr4_valid_bits();
    let mut refused = 0;
    for bit in 0..64 {
        if valid & 1 << bit == 0 && original & 1 << bit == 0 {
            refused_cr4(original | 1 << bit, original, "a bit the guest's CPUID does not offer")?;
            refused += 1;
        }
    }
    let umip = if valid & 1 << 11 == 0 { "UMIP hidden and refused" } else { "UMIP offered" };
    refused_cr4(original & !(1 << 5), original, "PAE cleared in long mode")?;
    ensure!(read_cr4() == original, "CR4 is {:#x} after refused writes, was {original:#x}", read_cr4());
    let mut toggled = 0;
    for bit in [2, 3, 8] {
        if valid & 1 << bit == 0 || original & 1 << bit != 0 {
            continue;
        }
        let set = original | 1 << bit;
        ensure!(write_cr4(set).is_ok(), "CR4 bit {bit}, which CPUID offers, could not be set");
        ensure!(read_cr4() == set, "CR4 reads {:#x} after writing {set:#x}", read_cr4());
        ensure!(write_cr4(original).is_ok(), "CR4 bit {bit} could not be cleared");
        toggled += 1;
    }
    ensure!(read_cr4() == original, "CR4 is {:#x}, was {original:#x}", read_cr4());
    say!(p, "control-registers: CR4 {original:#x}, {refused} bits not offered each #GP ({umip}), {toggled} offered bits set and cleared");
    Ok(())
}

fn cr0(p: &impl Platform) -> Outcome {
    let original = read_cr0();
    let (pe, nw, cd, pg) = (1u64, 1u64 << 29, 1u64 << 30, 1u64 << 31);
    let cases = [
        (original | 1 << 32, "a bit above 31"),
        ((original | nw) & !cd, "NW without CD"),
        (original & !pe, "PG without PE"),
        (original & !pg, "paging off in 64-bit mode"),
    ];
    for (value, what) in cases {
        match write_cr0(value) {
            Err(GP) => {}
            Err(v) => fail!("CR0 = {value:#x} ({what}) raised vector {v}, not #GP"),
            Ok(()) => fail!("CR0 = {value:#x} ({what}) was accepted; Xen gives #GP"),
        }
    }
    ensure!(read_cr0() == original, "CR0 is {:#x}, was {original:#x}", read_cr0());
    say!(p, "control-registers: CR0 {original:#x}, {} invalid values each #GP", cases.len());
    Ok(())
}

fn efer(p: &impl Platform) -> Outcome {
    let original = traps::rdmsr(EFER).map_err(|v| keel_test_guest::Failure::new(format_args!("RDMSR EFER: {v}")))?;
    let nx = cpuid(0x8000_0000, 0).eax >= 0x8000_0001 && cpuid(0x8000_0001, 0).edx & 1 << 20 != 0;
    let (sce, lme, lma, nxe) = (1u64, 1u64 << 8, 1u64 << 10, 1u64 << 11);
    let valid = sce | lme | lma | if nx { nxe } else { 0 };
    let mut refused = 0;
    for bit in 0..64 {
        if valid & 1 << bit != 0 {
            continue;
        }
        let value = original | 1 << bit;
        match traps::wrmsr(EFER, value) {
            Err(GP) => refused += 1,
            Err(v) => fail!("EFER = {value:#x} raised vector {v}, not #GP"),
            Ok(()) => {
                let _ = traps::wrmsr(EFER, original);
                fail!("EFER bit {bit} ({value:#x}) was accepted; Xen gives #GP")
            }
        }
    }
    match traps::wrmsr(EFER, original & !lme) {
        Err(GP) => {}
        other => fail!("clearing EFER.LME with paging on gave {other:?}, not #GP"),
    }
    if nx && original & nxe != 0 {
        ensure!(traps::wrmsr(EFER, original & !nxe).is_ok(), "EFER.NXE could not be cleared");
        ensure!(traps::wrmsr(EFER, original).is_ok(), "EFER.NXE could not be set again");
    }
    ensure!(traps::rdmsr(EFER) == Ok(original), "EFER changed to {:?}", traps::rdmsr(EFER));
    say!(
        p,
        "control-registers: EFER {original:#x}, {refused} bits not offered each #GP (NX {})",
        if nx { "offered" } else { "hidden" }
    );
    Ok(())
}

/// `keel.test=control-registers`.
pub fn run(p: &impl Platform) -> Outcome {
    ensure!(read_cr3() & 0xfff == 0, "CR3 {:#x} has flags", read_cr3());
    cr4(p)?;
    cr0(p)?;
    efer(p)
}
