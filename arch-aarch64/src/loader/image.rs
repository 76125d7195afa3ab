//! The Linux arm64 `Image` header (Documentation/arch/arm64/booting.rst): where the
//! kernel wants to be placed and how much memory it occupies.

use core::fmt;

/// Offset of the magic `"ARM\x64"`.
const MAGIC_AT: usize = 0x38;
const MAGIC: [u8; 4] = *b"ARM\x64";
/// The header's length.
pub const HEADER_LEN: usize = 64;
/// `text_offset` to assume when `image_size` is 0 (kernels before 3.17).
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// Flags bit 0: the kernel is big-endian.
const FLAG_BIG_ENDIAN: u64 = 1;
/// Flags bits 1-2: the kernel's page size (0 unspecified, 1 4K, 2 16K, 3 64K).
const FLAG_PAGE_SIZE_SHIFT: u64 = 1;
/// Flags bit 3: the image may sit anywhere in RAM (else as low as possible).
const FLAG_ANYWHERE: u64 = 1 << 3;

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// Offset from a 2 MiB-aligned base where the image must be placed.
    pub text_offset: u64,
    /// Bytes the kernel occupies from its load address (.bss included); at least the
    /// file's length.
    pub image_size: u64,
    /// Page size the kernel uses (4, 16 or 64 KiB; 0 if unspecified).
    pub page_kib: u32,
    /// The image may be placed anywhere in RAM.
    pub anywhere: bool,
}

/// Why a module is not a kernel Keel can boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    TooShort(usize),
    /// An EFI zboot image (`"zimg"` at offset 4).
    Zboot,
    NoMagic,
    BigEndian,
    TextOffsetMisaligned(u64),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImageError::TooShort(n) => write!(f, "{n} bytes is too short for an arm64 Image header"),
            ImageError::Zboot => write!(f, "the kernel is an EFI zboot image; Keel boots an uncompressed arm64 Image"),
            ImageError::NoMagic => write!(f, "no arm64 Image magic (\"ARM\\x64\" at offset 0x38)"),
            ImageError::BigEndian => write!(f, "the kernel is big-endian; Keel runs little-endian guests"),
            ImageError::TextOffsetMisaligned(o) => write!(f, "text_offset {o:#x} is not 4 KiB aligned"),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Reads the header of a kernel file of `file.len()` bytes.
pub fn parse(file: &[u8]) -> Result<Image, ImageError> {
    parse_header(file, file.len() as u64)
}

/// Reads the header at the start of `file`, an Image of `file_len` bytes (more than
/// `file.len()` when only the start of a compressed kernel has been inflated).
pub fn parse_header(file: &[u8], file_len: u64) -> Result<Image, ImageError> {
    if file.len() < HEADER_LEN {
        return Err(ImageError::TooShort(file.len()));
    }
    if &file[4..8] == b"zimg" {
        return Err(ImageError::Zboot);
    }
    if file[MAGIC_AT..MAGIC_AT + 4] != MAGIC {
        return Err(ImageError::NoMagic);
    }
    let (mut text_offset, mut image_size, flags) = (le64(file, 8), le64(file, 16), le64(file, 24));
    if image_size == 0 {
        text_offset = LEGACY_TEXT_OFFSET;
    }
    if flags & FLAG_BIG_ENDIAN != 0 {
        return Err(ImageError::BigEndian);
    }
    if !text_offset.is_multiple_of(4096) {
        return Err(ImageError::TextOffsetMisaligned(text_offset));
    }
    image_size = image_size.max(file_len);
    let page_kib = match (flags >> FLAG_PAGE_SIZE_SHIFT) & 3 {
        1 => 4,
        2 => 16,
        3 => 64,
        _ => 0,
    };
    Ok(Image { text_offset, image_size, page_kib, anywhere: flags & FLAG_ANYWHERE != 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn reads_the_header() {
        let i = parse(&header(0x8_0000, 0x200_0000, 0xa)).unwrap();
        assert_eq!(i, Image { text_offset: 0x8_0000, image_size: 0x200_0000, page_kib: 4, anywhere: true });
        // Old kernels: image_size 0 means text_offset 0x80000 and the file's size.
        let i = parse(&header(0x1234, 0, 0)).unwrap();
        assert_eq!((i.text_offset, i.image_size, i.anywhere), (0x8_0000, 64, false));
    }

    #[test]
    fn refuses_what_it_cannot_boot() {
        assert_eq!(parse(&[0x1f, 0x8b, 8, 0]), Err(ImageError::TooShort(4)));
        assert_eq!(parse(&[0; 10]), Err(ImageError::TooShort(10)));
        assert_eq!(parse(&[0; 64]), Err(ImageError::NoMagic));
        assert_eq!(parse(&header(0, 4096, 1)), Err(ImageError::BigEndian));
        assert_eq!(parse(&header(0x100, 4096, 0)), Err(ImageError::TextOffsetMisaligned(0x100)));
        let mut z = header(0, 4096, 0);
        z[4..8].copy_from_slice(b"zimg");
        assert_eq!(parse(&z), Err(ImageError::Zboot));
        assert!(ImageError::Zboot.to_string().contains("zboot"));
        // A compressed kernel's header, with the inflated length from the gzip trailer.
        assert_eq!(parse_header(&header(0, 0x1000, 0), 0x30_0000).unwrap().image_size, 0x30_0000);
    }
}
