//! The boot matrix: Keel on every supported loader, emulator and CPU model.
//!
//! These boot emulators, so they are `#[ignore]`d in a plain `cargo test`; `scripts/test`
//! runs them (after `scripts/build`) with `-- --ignored`.

use keel_tests::{run, BootTest, Outcome};
use std::time::Duration;

#[path = "boot/arm64_backend.rs"]
mod arm64_backend;
#[path = "boot/arm64_blk_linux.rs"]
mod arm64_blk_linux;
#[path = "boot/arm64_consoles.rs"]
mod arm64_consoles;
#[path = "boot/arm64_control.rs"]
mod arm64_control;
#[path = "boot/arm64_create.rs"]
mod arm64_create;
#[path = "boot/arm64_devices_linux.rs"]
mod arm64_devices_linux;
#[path = "boot/arm64_driver_domain.rs"]
mod arm64_driver_domain;
#[path = "boot/arm64_guests.rs"]
mod arm64_guests;
#[path = "boot/arm64_keelctl.rs"]
mod arm64_keelctl;
#[path = "boot/arm64_linux.rs"]
mod arm64_linux;
#[path = "boot/arm64_net_hostile.rs"]
mod arm64_net_hostile;
#[path = "boot/arm64_net_linux.rs"]
mod arm64_net_linux;
#[path = "boot/arm64_passthrough.rs"]
mod arm64_passthrough;
#[path = "boot/arm64_watch.rs"]
mod arm64_watch;
#[path = "boot/arm64_xenstore.rs"]
mod arm64_xenstore;
#[path = "boot/arm64_xenstore_linux.rs"]
mod arm64_xenstore_linux;
#[path = "boot/x86_backend.rs"]
mod x86_backend;
#[path = "boot/x86_blk_linux.rs"]
mod x86_blk_linux;
#[path = "boot/x86_conform.rs"]
mod x86_conform;
#[path = "boot/x86_consoles.rs"]
mod x86_consoles;
#[path = "boot/x86_create.rs"]
mod x86_create;
#[path = "boot/x86_guests.rs"]
mod x86_guests;
#[path = "boot/x86_keelctl.rs"]
mod x86_keelctl;
#[path = "boot/x86_linux.rs"]
mod x86_linux;
#[path = "boot/x86_net_linux.rs"]
mod x86_net_linux;
#[path = "boot/x86_switching.rs"]
mod x86_switching;
#[path = "boot/x86_xenstore.rs"]
mod x86_xenstore;

const AARCH64: &str = "scripts/qemu-aarch64";
const X86_64: &str = "scripts/qemu-x86_64";
const BOCHS: &str = "scripts/bochs";
const TEST_ISO: &str = "target/images/test/keel-x86_64.iso";

/// QEMU's isa-debug-exit turns Keel's 0x10 into exit status 33, 0x11 into 35.
const QEMU_X86_PASS: i32 = 33;
const QEMU_X86_FAIL: i32 = 35;

/// Console input for a run (`--input` of the runner scripts): written under `target/`,
/// named after the test.
fn input_file(name: &str, bytes: &[u8]) -> String {
    let dir = keel_tests::repo_root().join("target/test-input");
    std::fs::create_dir_all(&dir).expect("target/test-input");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("input file");
    path.to_string_lossy().into_owned()
}

/// Runs `test` (once more after an emulator reset, if it allows that), checks it and
/// returns what it printed, for checks of its own.
fn boot(test: BootTest) -> Outcome {
    let mut out = run(&test);
    for _ in 0..test.reset_retries {
        if !test.emulator_reset(&out) {
            break;
        }
        eprintln!(
            "---- {}: the emulator reset the machine before a verdict (QEMU TCG SVM defect, \
             docs/x86-guests.md); running it again. First run: ----\n{}",
            test.name, out.output
        );
        out = run(&test);
    }
    eprintln!("---- {} ({:.1?}, status {:?}) ----\n{}", test.name, out.elapsed, out.status, out.output);
    if let Err(e) = test.check(&out) {
        panic!("{e}");
    }
    out
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_vhe_gicv3_smp4() {
    boot(
        BootTest::new("arm64 VHE GICv3 smp4", AARCH64, &["--gic", "3", "--cpu", "max", "--smp", "4", "--test"])
            .probe_on_cpus(4)
            .fact("arch", "aarch64")
            .fact("el2", "vhe")
            .fact("gic-version", "3"),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_nvhe_gicv2_smp2() {
    boot(
        BootTest::new("arm64 nVHE GICv2 smp2", AARCH64, &["--gic", "2", "--cpu", "cortex-a57", "--smp", "2", "--test"])
            .probe_on_cpus(2)
            .fact("el2", "nvhe")
            .fact("gic-version", "2"),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_uboot_booti_vhe_gicv3() {
    boot(
        BootTest::new(
            "arm64 U-Boot booti VHE GICv3 smp4",
            AARCH64,
            &["--uboot", "--gic", "3", "--cpu", "max", "--smp", "4", "--test"],
        )
        .probe_on_cpus(4)
        .fact("el2", "vhe"),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_entered_at_el1_refuses() {
    boot(
        BootTest::new("arm64 entered at EL1", AARCH64, &["--el1", "--test"])
            .refusal("must be entered at EL2", 1)
            .timeout(Duration::from_secs(60)),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_svm_grub_bios_smp2() {
    boot(
        BootTest::new("x86 SVM GRUB BIOS smp2", X86_64, &["--smp", "2", "--test"])
            .probe_on_cpus(2)
            .exit_status(QEMU_X86_PASS)
            .fact("arch", "x86_64")
            .fact("virtualization", "svm")
            .fact("npt", "yes")
            .fact("boot-firmware", "bios"),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_svm_grub_uefi_smp2() {
    boot(
        BootTest::new("x86 SVM GRUB UEFI smp2", X86_64, &["--uefi", "--smp", "2", "--test"])
            .probe_on_cpus(2)
            .exit_status(QEMU_X86_PASS)
            .fact("virtualization", "svm")
            .fact("boot-firmware", "uefi")
            .timeout(Duration::from_secs(180)),
    );
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn x86_svm_without_npt_refuses() {
    boot(
        BootTest::new("x86 SVM without NPT", X86_64, &["--cpu", "qemu64", "--test"])
            .refusal("SVM without nested paging", QEMU_X86_FAIL),
    );
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_vmx_ept_bochs() {
    boot(
        BootTest::new(
            "x86 VMX EPT Bochs skylake",
            BOCHS,
            &["--cpu", "corei7_skylake_x", "--smp", "2", "--iso", TEST_ISO],
        )
        .probe_on_cpus(2)
        .fact("virtualization", "vmx")
        .fact("ept", "yes")
        .fact("vpid", "yes")
        .timeout(Duration::from_secs(180)),
    );
}

#[test]
#[ignore = "boots Bochs: run through scripts/test"]
fn x86_svm_nrips_bochs() {
    boot(
        BootTest::new("x86 SVM NRIPS Bochs ryzen", BOCHS, &["--cpu", "ryzen", "--smp", "2", "--iso", TEST_ISO])
            .probe_on_cpus(2)
            .fact("virtualization", "svm")
            .fact("nrips", "yes")
            .timeout(Duration::from_secs(180)),
    );
}

/// QEMU's own device tree for the arm64 `virt` machine with 2 CPUs and GICv3, edited by
/// `fdtput` with `edit` (e.g. `["-d", "/chosen", "stdout-path"]`), written to `out`.
fn edited_virt_dtb(out: &std::path::Path, edit: &[&str]) {
    let dump = format!("virt,virtualization=on,gic-version=3,dumpdtb={}", out.display());
    let status = std::process::Command::new("qemu-system-aarch64")
        .args(["-M", &dump, "-cpu", "max", "-smp", "2", "-m", "512M", "-nographic"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("qemu-system-aarch64 (run scripts/setup)");
    assert!(out.exists(), "QEMU did not dump its device tree: {status:?}");
    let ok = std::process::Command::new("fdtput").arg(out).args(edit).status().expect("fdtput (run scripts/setup)");
    assert!(ok.success(), "fdtput {edit:?} failed");
}

/// Inserts `FDT_NOP` tokens into a blob: one inside the root node and one before
/// `FDT_END`, as a loader that deleted nodes in place leaves them.
fn add_nops(dtb: &mut Vec<u8>) {
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let (structs, strings, size) = (be(dtb, 8) as usize, be(dtb, 12) as usize, be(dtb, 36) as usize);
    let nop = 4u32.to_be_bytes();
    dtb.splice(structs + size - 4..structs + size - 4, nop);
    dtb.splice(structs + 8..structs + 8, nop); // after the root node's token and empty name
    let fix = |b: &mut Vec<u8>, at: usize, add: u32| {
        let v = be(b, at) + add;
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    };
    fix(dtb, 4, 8); // totalsize
    if strings > structs {
        fix(dtb, 12, 8); // off_dt_strings
    }
    fix(dtb, 36, 8); // size_dt_struct
}

/// A boot tree with `FDT_NOP` tokens: Keel removes them in place and boots normally.
#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_device_tree_with_nops_boots() {
    let dtb = std::env::temp_dir().join(format!("keel-nops-{}.dtb", std::process::id()));
    edited_virt_dtb(&dtb, &["-t", "s", "/chosen", "bootargs", "keel.exit=test"]);
    let mut bytes = std::fs::read(&dtb).unwrap();
    add_nops(&mut bytes);
    std::fs::write(&dtb, &bytes).unwrap();
    let dtb_arg = dtb.display().to_string();
    boot(
        BootTest::new("arm64 DT with FDT_NOPs", AARCH64, &["--smp", "2", "--test", "-dtb", &dtb_arg])
            .probe_on_cpus(2)
            .fact("gic-version", "3"),
    );
    let _ = std::fs::remove_file(dtb);
}

#[test]
#[ignore = "boots QEMU: run through scripts/test"]
fn arm64_without_console_refuses() {
    let dtb = std::env::temp_dir().join(format!("keel-nocons-{}.dtb", std::process::id()));
    edited_virt_dtb(&dtb, &["-d", "/chosen", "stdout-path"]);
    let dtb_arg = dtb.display().to_string();
    boot(
        BootTest::new("arm64 DT without a console", AARCH64, &["--smp", "2", "--test", "-dtb", &dtb_arg])
            .refusal("no console: the device tree has no /chosen/stdout-path", 1),
    );
    let _ = std::fs::remove_file(dtb);
}
