//! Links each program as a static, non-PIE Linux executable with the crate's linker script,
//! and names the Linux system-call convention to build for (`cfg(linux_arch)`: the
//! target's architecture, one of the two Keel has).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(linux_arch, values(\"aarch64\", \"x86_64\"))");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "aarch64" || arch == "x86_64" {
        println!("cargo:rustc-cfg=linux_arch=\"{arch}\"");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "none" {
        return; // only the bare-metal target builds this program
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
}
