//! Instructions both vendors intercept and Keel emulates the same way: CPUID, RDMSR,
//! WRMSR and port I/O. A vendor decodes its exit into an [`Intercept`] and hands its
//! vCPU over as a [`GuestCpu`].

use super::common::{Common, StageFault};
use super::cpuid::{self, Context};
use super::extension::{extension, Extension};
use super::guest::gpr;
use super::guest_cpu::{gva_to_gpa, read_virt, GuestCpu, Segment, GP};
use super::msr::{self, Msr, StateMsr};
use super::task_switch::Delivering;
use super::walk::Access;
use super::{interrupts, io};
use crate::regs::cpuid as host_cpuid;
use keel_kernel::arch::{MemoryAccess, VmExit};
use keel_kernel::mm::GuestPhysAddr;

/// Iterations of a string I/O instruction per exit; the rest re-executes.
const STRING_BATCH: u64 = 1024;

/// A port access: `size` bytes (1, 2, 4), `input` for IN/INS; string instructions give
/// their address size (2, 4, 8 bytes) and, for OUTS, the source segment.
#[derive(Clone, Copy, Debug)]
pub struct Io {
    pub port: u16,
    pub size: u8,
    pub input: bool,
    pub string: bool,
    pub rep: bool,
    pub address_size: u8,
    pub segment: Segment,
}

/// An intercepted instruction Keel emulates for both vendors.
#[derive(Clone, Copy, Debug)]
pub enum Intercept {
    Cpuid,
    Rdmsr,
    Wrmsr,
    Io(Io),
}

/// A guest access the EPT/NPT refused: the xAPIC page is emulated at once; anything else
/// is reported to the core ([`VmExit::StageFault`]), which looks the page up in the P2M
/// under the domain's memory lock: the tables may have been changing under the access
/// (a block replaced by a table with break-before-make on another CPU). The guest's RIP
/// stays at the access; the core's answer ([`keel_kernel::arch::Vcpu::settle_stage_fault`])
/// has it executed again, or performed by [`memory_fault`].
pub fn stage_fault(
    cpu: &mut dyn GuestCpu,
    common: &mut Common,
    gpa: u64,
    access: MemoryAccess,
    delivering: bool,
) -> Option<VmExit> {
    if !delivering && super::mmio::is_device(common, gpa) {
        return memory_fault(cpu, common, gpa, access, false);
    }
    common.stage_fault = Some(StageFault { gpa, access, delivering });
    Some(VmExit::StageFault { gpa: GuestPhysAddr(gpa), access })
}

/// A guest access the EPT/NPT refused: the xAPIC page, unbacked guest-physical space
/// (reads all ones, writes dropped) or a write to a read-only grant mapping (#GP, as Xen
/// gives), which [`super::mmio`] performs or refuses. If the access happened while an
/// event was being delivered (its IDT, stack or TSS outside RAM), the guest cannot be
/// helped and the domain is crashed.
pub fn memory_fault(
    cpu: &mut dyn GuestCpu,
    common: &mut Common,
    gpa: u64,
    access: MemoryAccess,
    delivering: bool,
) -> Option<VmExit> {
    if delivering {
        let what = match access {
            MemoryAccess::Read => "read",
            MemoryAccess::Write => "write",
            MemoryAccess::Execute => "instruction fetch",
        };
        log::warn!("{what} at GPA {gpa:#x} outside RAM while delivering an event (RIP {:#x})", cpu.rip());
        return Some(VmExit::GuestCrash);
    }
    super::mmio::access(cpu, common, gpa, access);
    None
}

/// Emulates `what`; on success the guest resumes at `next_rip`.
pub fn handle(cpu: &mut dyn GuestCpu, common: &mut Common, what: Intercept, next_rip: u64) {
    let done = match what {
        Intercept::Cpuid => cpuid(cpu, common),
        Intercept::Rdmsr => rdmsr(cpu, common),
        Intercept::Wrmsr => wrmsr(cpu, common),
        Intercept::Io(io) => port_io(cpu, common, io),
    };
    match done {
        Ok(true) => cpu.set_rip(next_rip),
        Ok(false) => {} // more string iterations: re-execute
        Err(vector) => cpu.inject(vector, (vector == GP).then_some(0)),
    }
}

fn low32(v: u64) -> u64 {
    v & 0xffff_ffff
}

fn cpuid(cpu: &mut dyn GuestCpu, common: &Common) -> Result<bool, u8> {
    let ctx = Context {
        vcpu_id: common.vcpu_id,
        domain_id: common.domain.init().id,
        tsc_khz: (crate::timer::tsc_hz() / 1000) as u32,
        x2apic: true,
        tsc_deadline: true,
        upcall_vector: true,
    };
    let r = cpu.regs();
    let (leaf, subleaf) = (r.gpr[gpr::RAX] as u32, r.gpr[gpr::RCX] as u32);
    let [a, b, c, d] = cpuid::leaf(leaf, subleaf, &ctx, &host_cpuid);
    r.gpr[gpr::RAX] = a as u64;
    r.gpr[gpr::RBX] = b as u64;
    r.gpr[gpr::RCX] = c as u64;
    r.gpr[gpr::RDX] = d as u64;
    Ok(true)
}

fn rdmsr(cpu: &mut dyn GuestCpu, common: &Common) -> Result<bool, u8> {
    let index = cpu.regs().gpr[gpr::RCX] as u32;
    let value = if interrupts::msr::claims(index) {
        interrupts::msr::read(common, index).ok_or(GP)?
    } else {
        ordinary_rdmsr(cpu, common, index)?
    };
    let r = cpu.regs();
    r.gpr[gpr::RAX] = low32(value);
    r.gpr[gpr::RDX] = value >> 32;
    Ok(true)
}

fn ordinary_rdmsr(cpu: &mut dyn GuestCpu, common: &Common, index: u32) -> Result<u64, u8> {
    Ok(match msr::classify(index).ok_or(GP)? {
        Msr::State(StateMsr::Efer) => cpu.read_state_msr(StateMsr::Efer) & !crate::regs::efer::SVME,
        Msr::State(m) => cpu.read_state_msr(m),
        Msr::Tsc => crate::regs::rdtsc(),
        Msr::ApicBase => common.vlapic.base(),
        Msr::FeatureControl => msr::FEATURE_CONTROL_LOCKED,
        Msr::HypercallPage => return Err(GP),
        Msr::Fixed(v) => v,
    })
}

fn wrmsr(cpu: &mut dyn GuestCpu, common: &mut Common) -> Result<bool, u8> {
    let r = cpu.regs();
    let index = r.gpr[gpr::RCX] as u32;
    let value = low32(r.gpr[gpr::RAX]) | low32(r.gpr[gpr::RDX]) << 32;
    if interrupts::msr::claims(index) {
        return interrupts::msr::write(cpu, common, index, value).map(|()| true).ok_or(GP);
    }
    match msr::classify(index).ok_or(GP)? {
        Msr::State(m) => {
            let p = cpu.paging();
            let nx = crate::cpu::features().nx;
            let v = msr::check_state_write(m, value, p.efer, p.cr0, nx).ok_or(GP)?;
            cpu.write_state_msr(m, v);
        }
        Msr::ApicBase => {
            let irr = common.domain.irr(common.vcpu_id).ok_or(GP)?;
            if !common.vlapic.write_base(value, irr) {
                return Err(GP);
            }
        }
        Msr::FeatureControl => return Err(GP),
        Msr::HypercallPage => fill_hypercall_page(common, value, !cpu.in_64bit_code())?,
        Msr::Tsc | Msr::Fixed(_) => {}
    }
    Ok(true)
}

/// Xen's hypercall MSR: bits 63:12 the guest frame, bits 11:0 the page index (one page).
/// As on Xen, the mode of the writer (`compat`: 32-bit code) chooses the domain's
/// shared_info layout.
fn fill_hypercall_page(common: &Common, value: u64, compat: bool) -> Result<(), u8> {
    if value & 0xfff != 0 {
        return Err(GP);
    }
    let vmmcall = matches!(extension(), Extension::Svm(_));
    let page = msr::hypercall_page(vmmcall);
    let services = common.domain.services().ok_or(GP)?;
    services.latch_shared_layout(compat);
    services.write_phys(value, &page).map_err(|_| GP)
}

fn port_write(common: &Common, port: u16, value: u32, size: u8) {
    if port == io::DEBUG_PORT && size == 1 {
        common.domain.debug_port_write(value as u8);
    }
}

fn port_io(cpu: &mut dyn GuestCpu, common: &Common, a: Io) -> Result<bool, u8> {
    let mask = match a.size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    };
    if !a.string {
        let r = cpu.regs();
        if a.input {
            let v = io::read(a.port, a.size) as u64;
            let rax = r.gpr[gpr::RAX];
            r.gpr[gpr::RAX] = if a.size == 4 { v } else { (rax & !mask) | v };
        } else {
            port_write(common, a.port, (r.gpr[gpr::RAX] & mask) as u32, a.size);
        }
        return Ok(true);
    }
    let amask = match a.address_size {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    };
    let count = if a.rep { cpu.regs().gpr[gpr::RCX] & amask } else { 1 };
    let batch = count.min(STRING_BATCH);
    let step = if cpu.rflags() & (1 << 10) != 0 { (a.size as u64).wrapping_neg() } else { a.size as u64 };
    let (index_reg, seg) = if a.input { (gpr::RDI, Segment::Es) } else { (gpr::RSI, a.segment) };
    let base = if cpu.in_64bit_code() && !matches!(seg, Segment::Fs | Segment::Gs) { 0 } else { cpu.segment_base(seg) };
    for _ in 0..batch {
        let index = cpu.regs().gpr[index_reg] & amask;
        let va = base.wrapping_add(index);
        if a.input {
            let ones = io::read(a.port, a.size).to_le_bytes();
            let gpa = gva_to_gpa(cpu.stage2_root(), &cpu.paging(), va, Access::Write).ok_or(GP)?;
            let services = common.domain.services().ok_or(GP)?;
            services.write_phys(gpa, &ones[..a.size as usize]).map_err(|_| GP)?;
        } else {
            let mut b = [0u8; 4];
            if !read_virt(cpu, va, Access::Read, &mut b[..a.size as usize]) {
                return Err(GP);
            }
            port_write(common, a.port, u32::from_le_bytes(b), a.size);
        }
        let r = cpu.regs();
        let next = (index.wrapping_add(step)) & amask;
        r.gpr[index_reg] = (r.gpr[index_reg] & !amask) | next;
        if a.rep {
            let c = (r.gpr[gpr::RCX] & amask) - 1;
            r.gpr[gpr::RCX] = (r.gpr[gpr::RCX] & !amask) | c;
        }
    }
    Ok(batch == count)
}

/// Whether the instruction at the guest's RIP is `vmcall` or `vmmcall` (after a #UD:
/// the other vendor's hypercall instruction), read through its page tables.
pub fn at_hypercall(cpu: &dyn GuestCpu) -> bool {
    let mut linear = cpu.segment_base(Segment::Cs).wrapping_add(cpu.rip());
    if !cpu.in_64bit_code() {
        linear &= 0xffff_ffff;
    }
    let mut bytes = [0u8; 3];
    read_virt(cpu, linear, Access::Fetch, &mut bytes)
        && (bytes == super::guest::VMCALL || bytes == super::guest::VMMCALL)
}

/// Logs a guest's triple fault with what explains one: its paging registers, its IDT,
/// and whether its own tables map the instruction it stopped at.
pub fn report_triple_fault(cpu: &dyn GuestCpu) {
    let (rip, p) = (cpu.rip(), cpu.paging());
    let (idt, limit) = cpu.idtr();
    let linear = cpu.segment_base(Segment::Cs).wrapping_add(rip);
    let fetch = match gva_to_gpa(cpu.stage2_root(), &p, linear, Access::Fetch) {
        Some(gpa) => alloc::format!("the guest's tables map RIP to GPA {gpa:#x}"),
        None => alloc::string::String::from("the guest's tables do not map RIP for a fetch"),
    };
    log::warn!(
        "triple fault (shutdown) at RIP {rip:#x}: CR0 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x}, IDT at {idt:#x} limit {limit:#x}; {fetch}",
        p.cr0,
        p.cr3,
        p.cr4,
        p.efer
    );
}

/// A task switch the guest attempted (`selector`: the new TSS): refused with the fault of
/// [`super::task_switch::refusal`] at the instruction (or event) that attempted it.
/// The event the exit reports as being delivered counts only if its IDT entry is a task
/// gate (Bochs 2.7's SVM reports a stale #GP for an `int n` through a task gate).
pub fn refuse_task_switch(cpu: &mut dyn GuestCpu, selector: u16, delivering: Option<Delivering>) -> Option<VmExit> {
    const TASK_GATE: u8 = 5;
    let delivering = delivering.filter(|d| {
        let (base, limit) = cpu.idtr();
        let offset = u64::from(d.vector) * 8;
        let mut gate = [0u8; 8];
        let readable = offset + 7 <= u64::from(limit)
            && read_virt(cpu, base.wrapping_add(offset) & 0xffff_ffff, Access::Read, &mut gate);
        !readable || gate[5] & 0x1f == TASK_GATE
    });
    log::debug!("task switch to TSS {selector:#x} at RIP {:#x} (delivering {delivering:x?}) refused", cpu.rip());
    match super::task_switch::refusal(selector, delivering) {
        Some((vector, error)) => {
            cpu.inject(vector, Some(error));
            None
        }
        None => {
            report_triple_fault(cpu);
            Some(VmExit::GuestCrash)
        }
    }
}
