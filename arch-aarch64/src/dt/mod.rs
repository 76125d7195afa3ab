//! The boot device tree: header checks, the console, the PSCI conduit and the command
//! line here; RAM, CPUs and the interrupt controller in [`platform`].
//!
//! The `fdt` crate panics on some malformed trees, so the tree is validated first
//! ([`blob::prepare`], the portable `keel_kernel::dtb`) and everything here reads
//! properties defensively.

mod blob;
mod platform;

pub use blob::{prepare, total_size};

pub use platform::{parse_platform, platform, set_platform, set_tree, tree, GicInfo, GicVersion, Platform, MAX_CPUS};

use crate::firmware_psci::Conduit;
use crate::uart::{Ns16550, Pl011, Uart};
use core::fmt;
use fdt::node::FdtNode;
use fdt::Fdt;
use keel_kernel::mm::Region;

/// Opens a device tree that [`prepare`] accepted.
pub fn open(bytes: &'static [u8]) -> Option<Fdt<'static>> {
    Fdt::new(bytes).ok()
}

/// Reads a 32-bit property.
pub fn prop_u32(node: FdtNode<'_, 'static>, name: &str) -> Option<u32> {
    let v = node.property(name)?.value;
    (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// Reads a 32- or 64-bit property.
pub fn prop_u64(node: FdtNode<'_, 'static>, name: &str) -> Option<u64> {
    node.property(name)?.as_usize().map(|v| v as u64)
}

/// Reads a string property.
pub fn prop_str(node: FdtNode<'_, 'static>, name: &str) -> Option<&'static str> {
    node.property(name)?.as_str()
}

/// Whether a node is enabled (`status` absent, `okay` or `ok`).
pub fn is_okay(node: FdtNode<'_, 'static>) -> bool {
    matches!(prop_str(node, "status"), None | Some("okay") | Some("ok"))
}

/// Whether one of a node's `compatible` strings is in `any`.
pub fn compatible_with(node: FdtNode<'_, 'static>, any: &[&str]) -> bool {
    node.compatible().is_some_and(|c| c.all().any(|s| any.contains(&s)))
}

/// The node's `reg` entries as regions (entries without a size are empty).
pub fn regs<'b>(node: FdtNode<'b, 'static>) -> impl Iterator<Item = Region> + 'b {
    node.reg().into_iter().flatten().map(|r| Region::new(r.starting_address as u64, r.size.unwrap_or(0) as u64))
}

/// Keel's command line: `/chosen/xen,xen-bootargs`, else `/chosen/bootargs`.
pub fn cmdline(fdt: &Fdt<'static>) -> &'static str {
    let Some(chosen) = fdt.find_node("/chosen") else { return "" };
    prop_str(chosen, "xen,xen-bootargs").or_else(|| prop_str(chosen, "bootargs")).unwrap_or("")
}

/// The PSCI conduit from the `/psci` node, if there is one with a known method.
pub fn psci_conduit(fdt: &Fdt<'static>) -> Option<Conduit> {
    let node = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])?;
    match prop_str(node, "method")? {
        "smc" => Some(Conduit::Smc),
        "hvc" => Some(Conduit::Hvc),
        _ => None,
    }
}

/// Why no console could be found.
#[derive(Clone, Copy, Debug)]
pub enum ConsoleError {
    NoChosen,
    NoStdoutPath,
    NotFound(&'static str),
    Unsupported(&'static str, &'static str),
    NoReg(&'static str),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConsoleError::NoChosen => write!(f, "no console: the device tree has no /chosen node"),
            ConsoleError::NoStdoutPath => write!(f, "no console: the device tree has no /chosen/stdout-path"),
            ConsoleError::NotFound(p) => write!(f, "no console: stdout-path '{p}' names no node"),
            ConsoleError::Unsupported(p, c) => write!(
                f,
                "no console: {p} is '{c}'; Keel drives arm,pl011 and 16550-compatible UARTs (ns16550a, snps,dw-apb-uart, ...)"
            ),
            ConsoleError::NoReg(p) => write!(f, "no console: {p} has no usable reg property"),
        }
    }
}

const NS16550_COMPATIBLE: &[&str] = &[
    "ns16550a",
    "ns16550",
    "ns16450",
    "ns8250",
    "snps,dw-apb-uart",
    "brcm,bcm2835-aux-uart",
    "nvidia,tegra20-uart",
    "ti,omap4-uart",
    "mediatek,mt6577-uart",
    "rockchip,rk3399-uart",
];

/// The node `/chosen/stdout-path` names (`path[:options]` or an alias), and its path.
fn console_node<'b>(fdt: &'b Fdt<'static>) -> Result<(&'static str, FdtNode<'b, 'static>), ConsoleError> {
    let chosen = fdt.find_node("/chosen").ok_or(ConsoleError::NoChosen)?;
    let path = prop_str(chosen, "stdout-path")
        .or_else(|| prop_str(chosen, "linux,stdout-path"))
        .ok_or(ConsoleError::NoStdoutPath)?;
    let path = path.split(':').next().unwrap_or(path);
    Ok((path, fdt.find_node(path).ok_or(ConsoleError::NotFound(path))?))
}

/// The GIC INTID of the console UART's interrupt: its first `interrupts` specifier in
/// the GIC's three-cell form (`<0 n flags>` is SPI n, `<1 n flags>` PPI n).
pub fn console_irq(fdt: &Fdt<'static>) -> Option<u32> {
    let (_, node) = console_node(fdt).ok()?;
    let raw = node.property("interrupts")?.value;
    let cell = |i: usize| Some(u32::from_be_bytes(raw.get(i * 4..i * 4 + 4)?.try_into().ok()?));
    if raw.len() % 12 != 0 {
        return None;
    }
    match (cell(0)?, cell(1)?) {
        (0, n) if n < 988 => Some(32 + n),
        (1, n) if n < 16 => Some(16 + n),
        _ => None,
    }
}

/// The console UART named by `/chosen/stdout-path`.
pub fn console(fdt: &Fdt<'static>) -> Result<Uart, ConsoleError> {
    let (path, node) = console_node(fdt)?;
    let reg = regs(node).next().filter(|r| r.start != 0).ok_or(ConsoleError::NoReg(path))?;
    let base = reg.start as usize;
    if compatible_with(node, &["arm,pl011", "arm,sbsa-uart"]) {
        return Ok(Uart::Pl011(Pl011 { base }));
    }
    if compatible_with(node, NS16550_COMPATIBLE) {
        let reg_shift = prop_u32(node, "reg-shift").unwrap_or(0).min(4);
        let io_width = if prop_u32(node, "reg-io-width") == Some(4) { 4 } else { 1 };
        return Ok(Uart::Ns16550(Ns16550 { base, reg_shift, io_width }));
    }
    let first = node.compatible().map(|c| c.all().next().unwrap_or("")).unwrap_or("(no compatible)");
    Err(ConsoleError::Unsupported(path, first))
}
