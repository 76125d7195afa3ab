//! Where a guest's kernel, device tree and initial ramdisk go in its RAM, following the
//! Linux arm64 boot protocol: the kernel at a 2 MiB-aligned base plus `text_offset`
//! (the lowest such base: Keel places every kernel as low as possible, which is also
//! what a kernel without the "anywhere" flag requires), the device tree 8-byte aligned
//! in a 2 MiB region of its own, the ramdisk page-aligned after it.

use super::image::Image;
use keel_kernel::mm::Region;

const MIB2: u64 = 2 << 20;
/// Largest device tree the protocol allows.
pub const DTB_MAX: u64 = MIB2;

/// Guest-physical addresses of what is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub kernel: u64,
    pub dtb: u64,
    pub initrd: Option<u64>,
    /// First byte after everything loaded.
    pub end: u64,
}

/// Places a kernel (`image`) and an initrd of `initrd_len` bytes in the first RAM bank;
/// `Err` says how many bytes that needs.
pub fn plan(ram: &[Region], image: &Image, initrd_len: Option<u64>) -> Result<Plan, u64> {
    let bank = ram.first().copied().unwrap_or_default();
    let base = bank.start.next_multiple_of(MIB2);
    let kernel = base + image.text_offset;
    let dtb = (kernel + image.image_size).next_multiple_of(MIB2);
    let after_dtb = dtb + DTB_MAX;
    let (initrd, end) = match initrd_len {
        Some(len) => (Some(after_dtb), after_dtb + len.next_multiple_of(4096)),
        None => (None, after_dtb),
    };
    if end > bank.end {
        return Err(end - bank.start);
    }
    Ok(Plan { kernel, dtb, initrd, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64) -> Image {
        Image { text_offset, image_size, page_kib: 4, anywhere: true }
    }

    #[test]
    fn places_kernel_tree_and_ramdisk() {
        let ram = [Region::new(0x4000_0000, 64 << 20)];
        let p = plan(&ram, &image(0x8_0000, 0x150_0000), Some(0x12345)).unwrap();
        assert_eq!(p.kernel, 0x4008_0000);
        assert_eq!(p.dtb, 0x4160_0000); // the next 2 MiB boundary after 0x4158_0000
        assert_eq!(p.initrd, Some(0x4180_0000));
        assert_eq!(p.end, 0x4181_3000);
        let p = plan(&ram, &image(0, 0x1000), None).unwrap();
        assert_eq!((p.kernel, p.dtb, p.initrd), (0x4000_0000, 0x4020_0000, None));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let ram = [Region::new(0x4000_0000, 4 << 20)];
        assert_eq!(plan(&ram, &image(0, 3 << 20), None), Err(6 << 20));
        assert!(plan(&[], &image(0, 4096), None).is_err());
    }
}
