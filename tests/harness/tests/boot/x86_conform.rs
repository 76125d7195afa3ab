//! Issue 16's x86 conformance with Xen on the x86 machines: control-register policy, task
//! switches, unbacked guest-physical accesses, and guests that never exit being preempted (`tests/guests/x86_64/configs/`
//! `conform.dts` and `preempt.dts`).

use super::boot;
use super::x86_guests::{x86_boot, x86_boot_on, x86_fail_status, x86_iso, X86Machine};
use std::time::Duration;

/// Issue 16's guests: control-register and EFER writes checked against the domain's
/// CPUID policy (every CR4 bit its CPUID does not offer, UMIP among them, gets #GP, as do
/// invalid CR0 and EFER values), and hardware task switches from 32-bit protected mode,
/// which never crash the domain: Keel refuses them with #GP(TSS selector); QEMU's TCG
/// SVM ignores the intercept and performs them itself, as Xen would. Unbacked
/// guest-physical space (`unbacked`) reads all ones and drops writes for moves,
/// read-modify-write arithmetic, XCHG, bit tests, REP string instructions, CMPXCHG, XADD,
/// MOVNTI and MOVBE, SETcc, CMPXCHG8B/16B, CMPS/SCAS with REPE/REPNE, MOVD/MOVQ with
/// XMM registers, straddling RAM
/// and a hole and on a frame given back; an instruction Keel does not emulate (PUSH of
/// memory) is #GP.
/// `HVMOP_get_param` of every index (`params`) as Xen 4.17 answers a PVH domU.
/// Hypercalls from 32-bit code (`compat`) with Xen's compat layouts: shared_info placed
/// through the 16-byte `xen_add_to_physmap`, a 32-bit reservation, ENOSYS where Keel
/// does not translate; then shared_info in Xen's 32-bit layout once 32-bit code set
/// `HVM_PARAM_CALLBACK_IRQ`: the wall clock, the pvclock and a port's pending, mask and
/// selector bits where a 32-bit guest reads them, and the 64-bit layout again after
/// 64-bit code set it. A guest calling from legacy protected mode (`legacy32`, EFER.LMA
/// clear, paging off) through the hypercall page its WRMSR installed: the compat layouts
/// of shared_info, events, `SCHEDOP_poll`, `vcpu_info`, the runstate area and grant
/// `setup_table`/`copy`; an event taken through Xen's callback vector by 32-bit code
/// under a 32-bit IDT, also waking it from HLT (a single-shot timer); then with 32-bit paging and with PAE paging, its pointers an
/// alias Keel finds through the guest's tables; last FIFO event channels set up from
/// 32-bit code and an event on its queue taken through the callback vector.
fn x86_conform(machine: X86Machine) {
    let tasks = match machine {
        X86Machine::QemuBios | X86Machine::QemuUefi => {
            "(d2) task-switch: 0 refused with #GP(TSS selector), 4 performed by the processor; the domain runs on"
        }
        X86Machine::BochsVmx | X86Machine::BochsSvm => {
            "(d2) task-switch: 4 refused with #GP(TSS selector), 0 performed by the processor; the domain runs on"
        }
    };
    let t = x86_boot(machine, &x86_iso("conform")).domains(&["registers", "tasks", "unbacked", "params", "compat", "legacy32"]).lines(&[
        "bits not offered each #GP (UMIP hidden and refused), 3 offered bits set and cleared",
        "(d1) control-registers: CR0 0x80010033, 4 invalid values each #GP",
        "(d1) control-registers: EFER 0x500, 60 bits not offered each #GP (NX offered)",
        "(d1) PASS control-registers",
        tasks,
        "(d2) PASS task-switch",
        "(d3) unbacked: 35 loads and stores at HPET, I/O APIC, the hole, past RAM and an alias: all ones, stores dropped",
        "(d3) unbacked: 22 read-modify-write instructions on all ones: results and flags as the processor's",
        "(d3) unbacked: 4 string instructions with REP (3000 and 2048 iterations) between the hole and RAM",
        "given back reads all ones, bt sets CF; straddling accesses keep the RAM half",
        "CMPXCHG, XADD, MOVNTI and MOVBE on all ones: results and flags as the processor's, stores dropped",
        "SETcc, CMPXCHG8B/16B and CMPS/SCAS with REPE/REPNE on all ones: results and flags as the processor's, stores dropped",
        "(d3) unbacked: 4 MOVD/MOVQ between XMM registers and all ones: loads zero-extended, stores dropped",
        "(d3) unbacked: push qword [the hole]: #GP (Keel does not emulate it; Xen does); the domain runs on",
        "(d3) PASS unbacked",
        // Xen 4.17's answers to a PVH domU (docs/abi.md §8): the guest-readable indices
        // with this configuration's values (a PV console at 0xfefff on port 1, no store),
        // EPERM for the rest, EINVAL from HVM_NR_PARAMS on.
        "(d4) hvm-params: readable 0=0x0 1=0x0 2=0x0 15=0x0 17=0xfefff 18=0x1 19=0x0 34=0x0 35=0x0 36=0x0 37=0x0",
        "(d4) hvm-params: EPERM 3-14 16 20-33 38; EINVAL 39-40",
        "(d4) hvm-params: CALLBACK_IRQ of a domain that does not exist ESRCH",
        "(d4) hvm-params: X87_FIP_WIDTH set 0 ok, 4 ok, 8 ok, 3 EINVAL; reads 8",
        "(d4) hvm-params: VM86_TSS set 0x1000 ok; reads 0x1000, VM86_TSS_SIZED 0x8000001000",
        "(d4) PASS hvm-params",
        "(d5) compat: add_to_physmap (16-byte layout) placed shared_info at frame",
        "; 64-bit code reading it: EINVAL",
        "(d5) compat: decrease_reservation (20-byte layout) gave back 1 frame; CONSOLE_PFN 0xfefff; poll of 129 ports EINVAL; grant setup_table ok with status -11",
        "(d5) compat: 32-bit shared_info after set_param(CALLBACK_IRQ) from 32-bit code: wall clock at 2304 (sec_hi at 2340), pvclock at 32 of vcpu_info; it ran ",
        "(d5) compat: port 40 raised in 32-bit word 1, selector 0x2 at 4; masked at 2176 until unmask",
        "(d5) compat: set_param(CALLBACK_IRQ) from 64-bit code: the wall clock at 3072 again",
        "(d5) PASS compat-hypercalls",
        // The same calls and more with EFER.LMA clear and paging off, through the
        // hypercall page that a WRMSR in that mode installed.
        "(d6) legacy32: EFER 0x0, CR0 0x10033; hypercall page from WRMSR; xen_version 0x40013",
        "(d6) (legacy32: console_io from 32-bit protected mode, paging off)",
        "(d6) legacy32: shared_info placed (16-byte add_to_physmap); wall clock at 2304: ",
        "pending in the 32-bit words, selector ",
        "poll (16-byte struct): at once when pending, ",
        "us for a 5 ms timeout; block, yield",
        "(d6) legacy32: callback vector 0xf3 taken by 32-bit code through a 32-bit IDT (CS 0x18): upcall_pending 1, selector 0x",
        "(d6) legacy32: 32-bit code halted until its single-shot timer: VIRQ_TIMER port ",
        " taken through the callback vector, ",
        "(d6) legacy32: vcpu_info registered at offset 0x80: pvclock at 32, selector 0xffffffff at 4",
        "(d6) legacy32: runstate area and get_runstate_info in 44 bytes: running, entry time at 4, times at 12",
        "(d6) legacy32: grant setup_table (u32 frame list) gave frame ",
        "; copy (24-byte op) status 0",
        "(d6) (legacy32: console_io with 32-bit paging, the text at its alias)",
        "(d6) legacy32: 32-bit paging (EFER 0x0, CR0 0x80010033, CR4 0x",
        "): console_io, send, poll and get_runstate_info through an alias at 0x80000000",
        "(d6) (legacy32: console_io with PAE paging, the text at its alias)",
        "(d6) legacy32: PAE paging (EFER 0x0, CR0 0x80010033, CR4 0x",
        "through an alias at 0x80000000 (PDPTE 2, 2 MiB and 4 KiB pages); a not-present PDPTE EFAULT",
        "(d6) legacy32: FIFO from 32-bit code: init_control (24 bytes) link_bits 17, expand_array; port ",
        " pending and linked at HEAD[7], READY 0x80; taken through the callback vector (upcall_pending 1, no selector)",
        "(d6) PASS legacy32",
    ]);
    boot(t);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_conform_qemu_bios() {
    x86_conform(X86Machine::QemuBios);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_conform_bochs_vmx() {
    x86_conform(X86Machine::BochsVmx);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_conform_bochs_svm() {
    x86_conform(X86Machine::BochsSvm);
}

/// The number of microseconds in the line of `output` that contains `before`, right after
/// it (e.g. `keel.timeout: acted 12 us after the deadline`).
pub(super) fn microseconds_after(output: &str, before: &str) -> Option<u64> {
    let rest = output.split(before).nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// Guests that never exit (`preempt`): a 3-vCPU domain whose vCPUs spin with interrupts
/// masked, two in a tight loop and one with `pause`, on `cpus` CPUs: each finishes, which
/// only preemption at the end of a slice allows while they share the CPUs; beside it a
/// tight spinner that never ends is crashed at `keel.timeout`. On Bochs, whose clock is
/// its own (instructions), no vCPU is away for more than 50 ms of its time and Keel acts
/// on the timeout within one slice (4 ms); QEMU's TCG clock is the host's, so host load
/// shows in both and they are bounded at 1 s there.
fn x86_preempt(machine: X86Machine, cpus: u32) {
    preempt_on(machine, cpus, "preempt", "masked");
}

/// [`x86_preempt`] with the guests' interrupts open (`preempt-open`, `keel.open=1`; none
/// is sent to them). Bochs Ryzen's SVM model masks host interrupts for a guest entered
/// with RFLAGS.IF clear until the guest sets it (Bochs 2.7 `svm.cc`: VMRUN loads the
/// guest's RFLAGS, and `handleInterruptMaskChange` decides, before it marks the CPU as
/// running a guest, so V_INTR_MASKING is not yet heeded); with IF set it gives
/// #VMEXIT(INTR) as a processor does, and Keel preempts and times out such guests there.
fn x86_preempt_open(machine: X86Machine, cpus: u32) {
    preempt_on(machine, cpus, "preempt-open", "open");
}

fn preempt_on(machine: X86Machine, cpus: u32, config: &str, interrupts: &str) {
    let spin = format!("(d2) spin: spinning with interrupts {interrupts}, forever (no pause)");
    let t = x86_boot_on(machine, &x86_iso(config), cpus)
        .refusal("[test] fail domain-forever: crashed", x86_fail_status(machine))
        .timeout(Duration::from_secs(300))
        .lines(&[
            "(d1) preempt: 3 vCPUs spin 300 ms each without exiting",
            "(d1) preempt: all 3 vCPUs finished",
            "(d1) PASS preempt",
            &spin,
            "domain 2 (forever): still running at keel.timeout; crashing it",
            "[test] pass domain-spinners: shut down (poweroff)",
            "[test] fail domain-forever: crashed",
        ]);
    let out = boot(t);
    let (gap_bound, late_bound) = match machine {
        // Bochs Ryzen has no TSC-deadline mode: Keel's deadline is a LAPIC one-shot count
        // scaled from the TSC, counted one slice at a time (docs/x86-guests.md, "Bochs
        // Ryzen"), so it is as exact there as Bochs Skylake's TSC deadline.
        X86Machine::BochsVmx | X86Machine::BochsSvm => (50_000, 4_000),
        X86Machine::QemuBios | X86Machine::QemuUefi => (1_000_000, 1_000_000),
    };
    let gap = microseconds_after(&out.output, "gaps, the longest ").expect("the guest reports its longest gap");
    assert!(gap <= gap_bound, "a vCPU was away for {gap} us of its time, more than {gap_bound} us");
    let late =
        microseconds_after(&out.output, "keel.timeout: acted ").expect("Keel says when it acted on keel.timeout");
    assert!(late <= late_bound, "keel.timeout acted {late} us after its deadline, more than {late_bound} us");
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_preempt_qemu_bios_2cpus() {
    x86_preempt(X86Machine::QemuBios, 2);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_preempt_qemu_bios_1cpu() {
    x86_preempt(X86Machine::QemuBios, 1);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_preempt_bochs_vmx_2cpus() {
    x86_preempt(X86Machine::BochsVmx, 2);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_preempt_bochs_vmx_1cpu() {
    x86_preempt(X86Machine::BochsVmx, 1);
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_preempt_open_bochs_svm_1cpu() {
    x86_preempt_open(X86Machine::BochsSvm, 1);
}
