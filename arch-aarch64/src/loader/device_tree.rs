//! The device tree Keel writes for each guest: what a Xen arm64 domU is given (memory,
//! PSCI CPUs, the virtual GIC, the timer, the `/hypervisor` node, `/chosen`, a
//! PL011 when `vpl011` asks for one, and the `/passthrough` node of a partial tree), at
//! the addresses of Xen's guest memory map ([`crate::layout`]).

use crate::layout::*;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use keel_kernel::dtb::{FdtWriter, WriteError};
use keel_kernel::mm::Region;
use keel_kernel::passthrough::tree::copy_passthrough;

/// The interrupt controller a guest sees: the host's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestGic {
    V2,
    V3,
}

/// What goes into a guest's tree.
#[derive(Clone, Debug)]
pub struct GuestTree<'a> {
    pub ram: &'a [Region],
    pub vcpus: u32,
    pub gic: GuestGic,
    pub bootargs: Option<&'a str>,
    /// `[start, end)` of the initial ramdisk in guest-physical memory.
    pub initrd: Option<(u64, u64)>,
    pub vpl011: bool,
    /// The domain's partial device tree (`multiboot,device-tree`): its `/passthrough`
    /// node is copied in ([`keel_kernel::passthrough::tree::copy_passthrough`]).
    pub passthrough: Option<&'a [u8]>,
}

const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;
/// The first phandle the `/passthrough` subtree's own phandles are renumbered to.
const FIRST_PASSTHROUGH_PHANDLE: u32 = 0x100;
/// Xen's version as the `/hypervisor` node names it (`docs/abi.md`).
pub const HYPERVISOR_COMPATIBLE: [&str; 2] = ["xen,xen-4.19", "xen,xen"];
/// Interrupt specifier flags: level-low (`IRQ_TYPE_LEVEL_LOW`) and, for GICv2, the CPU
/// mask in bits 8-15.
const LEVEL_LOW: u32 = 8;
const LEVEL_HIGH: u32 = 4;

impl GuestTree<'_> {
    fn ppi_flags(&self) -> u32 {
        match self.gic {
            GuestGic::V2 => ((1u32 << self.vcpus.min(8)) - 1) << 8 | LEVEL_LOW,
            GuestGic::V3 => LEVEL_LOW,
        }
    }

    /// A PPI specifier (`<1 n flags>`, n = INTID − 16).
    fn ppi(&self, intid: u32) -> [u32; 3] {
        [1, intid - 16, self.ppi_flags()]
    }

    /// Writes the blob.
    pub fn build(&self) -> Result<Vec<u8>, String> {
        let mut w = FdtWriter::new();
        w.begin_node("")
            .prop_u32("#address-cells", 2)
            .prop_u32("#size-cells", 2)
            .prop_strs("compatible", &["xen,xenvm-4.19", "xen,xenvm"])
            .prop_str("model", "XENVM-4.19 (Keel)")
            .prop_u32("interrupt-parent", GIC_PHANDLE);
        self.chosen(&mut w);
        self.cpus(&mut w);
        w.begin_node("psci")
            .prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2"])
            .prop_str("method", "hvc")
            .end_node();
        let ram: Vec<(u64, u64)> = self.ram.iter().map(|r| (r.start, r.size())).collect();
        let first = self.ram.first().map_or(0, |r| r.start);
        w.begin_node(&format!("memory@{first:x}")).prop_str("device_type", "memory").prop_regs("reg", &ram).end_node();
        self.gic(&mut w);
        let timers: Vec<u32> = [PPI_PHYS_TIMER_S, PPI_PHYS_TIMER_NS, PPI_VIRT_TIMER, PPI_HYP_TIMER]
            .iter()
            .flat_map(|&i| self.ppi(i))
            .collect();
        w.begin_node("timer")
            .prop_strs("compatible", &["arm,armv8-timer", "arm,armv7-timer"])
            .prop_cells("interrupts", &timers)
            .prop_empty("always-on")
            .end_node();
        w.begin_node("hypervisor")
            .prop_strs("compatible", &HYPERVISOR_COMPATIBLE)
            .prop_regs("reg", &[(GNTTAB_BASE, GNTTAB_SIZE)])
            .prop_cells("interrupts", &self.ppi(PPI_EVTCHN))
            .end_node();
        if self.vpl011 {
            self.pl011(&mut w);
        }
        if let Some(partial) = self.passthrough {
            copy_passthrough(&mut w, partial, GIC_PHANDLE, FIRST_PASSTHROUGH_PHANDLE)?;
        }
        w.end_node();
        w.finish().map_err(|e: WriteError| e.to_string())
    }

    fn chosen(&self, w: &mut FdtWriter) {
        w.begin_node("chosen");
        if let Some(args) = self.bootargs {
            w.prop_str("bootargs", args);
        }
        if let Some((start, end)) = self.initrd {
            w.prop_u64("linux,initrd-start", start).prop_u64("linux,initrd-end", end);
        }
        if self.vpl011 {
            w.prop_str("stdout-path", &format!("/pl011@{PL011_BASE:x}"));
        }
        w.end_node();
    }

    /// One node per vCPU, `reg` = its MPIDR affinity (as `VMPIDR_EL2` gives it).
    fn cpus(&self, w: &mut FdtWriter) {
        w.begin_node("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
        for id in 0..self.vcpus {
            let mpidr = vcpu_affinity(id);
            w.begin_node(&format!("cpu@{mpidr:x}"))
                .prop_str("device_type", "cpu")
                .prop_strs("compatible", &["arm,armv8"])
                .prop_str("enable-method", "psci")
                .prop_u32("reg", mpidr as u32)
                .end_node();
        }
        w.end_node();
    }

    fn gic(&self, w: &mut FdtWriter) {
        w.begin_node(&format!("interrupt-controller@{GICD_BASE:x}"));
        match self.gic {
            GuestGic::V3 => {
                let redist = GICR_STRIDE * self.vcpus as u64;
                w.prop_strs("compatible", &["arm,gic-v3"])
                    .prop_u32("#redistributor-regions", 1)
                    .prop_regs("reg", &[(GICD_BASE, GICD_V3_SIZE), (GICR_BASE, redist)]);
            }
            GuestGic::V2 => {
                w.prop_strs("compatible", &["arm,cortex-a15-gic", "arm,cortex-a9-gic"])
                    .prop_regs("reg", &[(GICD_BASE, GICD_V2_SIZE), (GICC_BASE, GICC_SIZE)]);
            }
        }
        w.prop_u32("#interrupt-cells", 3)
            .prop_u32("#address-cells", 0)
            .prop_empty("interrupt-controller")
            .prop_u32("phandle", GIC_PHANDLE)
            .end_node();
    }

    /// The PL011 as QEMU's `virt` describes its own: an AMBA PrimeCell with a 24 MHz
    /// clock, which Linux's `amba-pl011` driver needs.
    fn pl011(&self, w: &mut FdtWriter) {
        w.begin_node("apb-pclk")
            .prop_strs("compatible", &["fixed-clock"])
            .prop_u32("#clock-cells", 0)
            .prop_u32("clock-frequency", 24_000_000)
            .prop_str("clock-output-names", "clk24mhz")
            .prop_u32("phandle", CLOCK_PHANDLE)
            .end_node();
        w.begin_node(&format!("pl011@{PL011_BASE:x}"))
            .prop_strs("compatible", &["arm,pl011", "arm,primecell"])
            .prop_regs("reg", &[(PL011_BASE, PL011_SIZE)])
            .prop_cells("interrupts", &[0, PL011_SPI - 32, LEVEL_HIGH])
            .prop_cells("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])
            .prop_strs("clock-names", &["uartclk", "apb_pclk"])
            .end_node();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdt::Fdt;

    fn tree(gic: GuestGic, vcpus: u32, vpl011: bool) -> Vec<u8> {
        tree_with(gic, vcpus, vpl011, None).unwrap()
    }

    fn tree_with(gic: GuestGic, vcpus: u32, vpl011: bool, passthrough: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let ram = [Region::new(0x4000_0000, 128 << 20)];
        GuestTree {
            ram: &ram,
            vcpus,
            gic,
            bootargs: Some("keel.test=hypercalls"),
            initrd: Some((0x4400_0000, 0x4400_1000)),
            vpl011,
            passthrough,
        }
        .build()
    }

    /// A partial tree in Xen's layout with one virtio-mmio device and a clock it uses.
    fn partial() -> Vec<u8> {
        let mut w = FdtWriter::new();
        w.begin_node("").prop_u32("#address-cells", 2).prop_u32("#size-cells", 2);
        w.begin_node("gic").prop_empty("interrupt-controller").prop_u32("phandle", 65000).end_node();
        w.begin_node("passthrough").prop_strs("compatible", &["simple-bus"]).prop_empty("ranges");
        w.prop_u32("#address-cells", 2).prop_u32("#size-cells", 2);
        w.begin_node("clk").prop_u32("phandle", 2).prop_u32("interrupt-parent", 65000).end_node();
        w.begin_node("virtio@a003e00")
            .prop_strs("compatible", &["virtio,mmio"])
            .prop_regs("reg", &[(0x0a00_3e00, 0x200)])
            .prop_u32("interrupt-parent", 65000)
            .prop_cells("interrupts", &[0, 47, 1])
            .prop_cells("xen,reg", &[0, 0x0a00_3000, 0, 0x1000, 0, 0x0a00_3000])
            .prop_str("xen,path", "/virtio_mmio@a003e00")
            .prop_empty("xen,force-assign-without-iommu")
            .end_node();
        w.end_node().end_node();
        w.finish().unwrap()
    }

    #[test]
    fn the_passthrough_nodes_point_at_the_virtual_gic() {
        let b = tree_with(GuestGic::V3, 1, true, Some(&partial())).unwrap();
        keel_kernel::dtb::validate(&b).unwrap();
        let t = Fdt::new(&b).unwrap();
        let dev = t.find_node("/passthrough/virtio@a003e00").unwrap();
        assert_eq!(cells(dev.property("interrupt-parent").unwrap().value), [GIC_PHANDLE]);
        assert_eq!(cells(dev.property("interrupts").unwrap().value), [0, 47, 1]);
        assert!(dev.property("xen,reg").is_none() && dev.property("xen,path").is_none());
        let clk = t.find_node("/passthrough/clk").unwrap();
        assert_eq!(cells(clk.property("phandle").unwrap().value), [FIRST_PASSTHROUGH_PHANDLE], "not the PL011's clock");
        assert!(t.find_node("/gic").is_none());
        let e = tree_with(GuestGic::V3, 1, false, Some(&[0u8; 64])).unwrap_err();
        assert!(e.contains("malformed partial device tree"), "{e}");
    }

    fn cells(v: &[u8]) -> Vec<u32> {
        v.chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    #[test]
    fn gicv3_guest_tree() {
        let b = tree(GuestGic::V3, 20, false);
        keel_kernel::dtb::validate(&b).unwrap();
        let t = Fdt::new(&b).unwrap();
        assert_eq!(t.chosen().bootargs(), Some("keel.test=hypercalls"));
        let m = t.memory().regions().next().unwrap();
        assert_eq!((m.starting_address as u64, m.size), (0x4000_0000, Some(128 << 20)));
        let cpus: Vec<u64> = t.cpus().map(|c| c.ids().first() as u64).collect();
        assert_eq!(cpus.len(), 20);
        assert_eq!(cpus[17], 0x101); // Aff1 = 1, Aff0 = 1
        assert!(t.cpus().all(|c| c.property("enable-method").and_then(|p| p.as_str()) == Some("psci")));
        let gic = t.find_compatible(&["arm,gic-v3"]).unwrap();
        let regs: Vec<(u64, u64)> =
            gic.reg().unwrap().map(|r| (r.starting_address as u64, r.size.unwrap() as u64)).collect();
        assert_eq!(regs, [(0x0300_1000, 0x1_0000), (0x0302_0000, 20 * 0x2_0000)]);
        let hv = t.find_node("/hypervisor").unwrap();
        assert_eq!(hv.compatible().unwrap().all().collect::<Vec<_>>(), ["xen,xen-4.19", "xen,xen"]);
        let r = hv.reg().unwrap().next().unwrap();
        assert_eq!((r.starting_address as u64, r.size), (0x3800_0000, Some(0x100_0000)));
        assert_eq!(cells(hv.property("interrupts").unwrap().value), [1, 15, 8]);
        let timer = t.find_compatible(&["arm,armv8-timer"]).unwrap();
        assert_eq!(cells(timer.property("interrupts").unwrap().value), [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8]);
        let psci = t.find_compatible(&["arm,psci-1.0"]).unwrap();
        assert_eq!(psci.property("method").unwrap().as_str(), Some("hvc"));
        let chosen = t.find_node("/chosen").unwrap();
        assert_eq!(chosen.property("linux,initrd-start").unwrap().as_usize(), Some(0x4400_0000));
        assert_eq!(chosen.property("linux,initrd-end").unwrap().as_usize(), Some(0x4400_1000));
        assert!(t.find_node("/pl011@22000000").is_none());
        assert_eq!(t.root().property("interrupt-parent").unwrap().as_usize(), Some(1));
    }

    #[test]
    fn gicv2_guest_tree_with_a_pl011() {
        let b = tree(GuestGic::V2, 2, true);
        let t = Fdt::new(&b).unwrap();
        let gic = t.find_compatible(&["arm,cortex-a15-gic"]).unwrap();
        let regs: Vec<(u64, u64)> =
            gic.reg().unwrap().map(|r| (r.starting_address as u64, r.size.unwrap() as u64)).collect();
        assert_eq!(regs, [(0x0300_1000, 0x1000), (0x0300_2000, 0x2000)]);
        let hv = t.find_node("/hypervisor").unwrap();
        assert_eq!(cells(hv.property("interrupts").unwrap().value), [1, 15, 0x308]);
        let uart = t.find_node("/pl011@22000000").unwrap();
        assert_eq!(cells(uart.property("interrupts").unwrap().value), [0, 0, 4]);
        assert_eq!(t.chosen().stdout().map(|s| s.name), Some("pl011@22000000"));
    }
}
