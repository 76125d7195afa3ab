//! A reader for ELF images (System V ABI, "ELF-64 Object File Format" and the 32-bit
//! original): the header, program headers and notes, little-endian only.
//!
//! Guest kernels are hostile input: every offset and size is checked against the image
//! before it is used, so a malformed file is an [`ElfError`], never a panic or a read
//! outside the bytes given. The x86 backend loads PVH kernels with it; nothing here is
//! specific to an architecture.

use core::fmt;
use keel_abi::wire::{read_u16_le, read_u32_le, read_u64_le};

/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of a segment holding notes.
pub const PT_NOTE: u32 = 4;
/// `e_machine` values.
pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// At most this many program headers are accepted.
const MAX_PHNUM: u16 = 512;

/// Why an image is not a usable ELF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than its own header.
    Truncated,
    /// No `\x7fELF` magic.
    NotElf,
    /// Neither 32- nor 64-bit (`EI_CLASS`).
    BadClass(u8),
    /// Big-endian or unknown data encoding (`EI_DATA`).
    NotLittleEndian,
    /// Neither an executable (`ET_EXEC`) nor a position-independent one (`ET_DYN`).
    NotExecutable(u16),
    /// The program-header table lies outside the image or has a bad entry size.
    BadProgramHeaders,
    /// Segment `index` names file bytes outside the image, or more file bytes than memory.
    BadSegment { index: usize },
    /// A note in segment `index` runs past the end of its segment.
    BadNote { index: usize },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Truncated => write!(f, "shorter than an ELF header"),
            ElfError::NotElf => write!(f, "no ELF magic"),
            ElfError::BadClass(c) => write!(f, "ELF class {c} is neither 32- nor 64-bit"),
            ElfError::NotLittleEndian => write!(f, "not a little-endian ELF file"),
            ElfError::NotExecutable(t) => write!(f, "ELF type {t} is not an executable"),
            ElfError::BadProgramHeaders => write!(f, "the program-header table lies outside the file"),
            ElfError::BadSegment { index } => {
                write!(f, "program header {index} names bytes outside the file or more file than memory bytes")
            }
            ElfError::BadNote { index } => write!(f, "a note in program header {index} runs past its segment"),
        }
    }
}

/// One program header, widened to 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// One note: its owner (without the NUL), type and descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    pub owner: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

impl Note<'_> {
    /// The descriptor as a little-endian number of 4 or 8 bytes.
    pub fn desc_number(&self) -> Option<u64> {
        match self.desc.len() {
            4 => Some(u32::from_le_bytes(self.desc.try_into().ok()?) as u64),
            8 => Some(u64::from_le_bytes(self.desc.try_into().ok()?)),
            _ => None,
        }
    }
}

/// A validated ELF image.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    wide: bool,
    pub machine: u16,
    pub entry: u64,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

impl<'a> Elf<'a> {
    /// Checks the header, the program-header table and every segment's file range.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        Self::parse_head(bytes, bytes.len() as u64)
    }

    /// [`Elf::parse`] for an image of `file_len` bytes of which only the first, `head`, is
    /// at hand (it must hold the ELF header and the program-header table): every
    /// segment's file range is checked against `file_len`. Unless `head` is the whole
    /// image, [`Elf::notes`] and [`Elf::file_bytes`] see only what `head` holds: read a
    /// note segment's bytes where the image is and parse them with [`notes`].
    pub fn parse_head(bytes: &'a [u8], file_len: u64) -> Result<Self, ElfError> {
        if bytes.len() < 4 {
            return Err(ElfError::Truncated);
        }
        if &bytes[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if bytes.len() < 16 {
            return Err(ElfError::Truncated);
        }
        let wide = match bytes[4] {
            1 => false,
            2 => true,
            c => return Err(ElfError::BadClass(c)),
        };
        if bytes[5] != 1 {
            return Err(ElfError::NotLittleEndian);
        }
        let header = if wide { 64 } else { 52 };
        if bytes.len() < header {
            return Err(ElfError::Truncated);
        }
        let kind = read_u16_le(bytes, 16);
        if kind != 2 && kind != 3 {
            return Err(ElfError::NotExecutable(kind));
        }
        let machine = read_u16_le(bytes, 18);
        let (entry, phoff, phentsize, phnum) = if wide {
            (read_u64_le(bytes, 24), read_u64_le(bytes, 32), read_u16_le(bytes, 54), read_u16_le(bytes, 56))
        } else {
            (
                read_u32_le(bytes, 24) as u64,
                read_u32_le(bytes, 28) as u64,
                read_u16_le(bytes, 42),
                read_u16_le(bytes, 44),
            )
        };
        let min_entry = if wide { 56 } else { 32 };
        let table_ok = phnum <= MAX_PHNUM
            && (phnum == 0 || phentsize as usize >= min_entry)
            && phoff.checked_add(phentsize as u64 * phnum as u64).is_some_and(|end| end <= bytes.len() as u64);
        if !table_ok {
            return Err(ElfError::BadProgramHeaders);
        }
        let elf = Elf {
            bytes,
            wide,
            machine,
            entry,
            phoff: usize::try_from(phoff).map_err(|_| ElfError::BadProgramHeaders)?,
            phentsize: phentsize as usize,
            phnum: phnum as usize,
        };
        for (index, s) in elf.segments().enumerate() {
            let in_file = s.offset.checked_add(s.filesz).is_some_and(|end| end <= file_len);
            if !in_file || s.filesz > s.memsz {
                return Err(ElfError::BadSegment { index });
            }
        }
        let whole = file_len == bytes.len() as u64;
        for (index, s) in elf.segments().enumerate().filter(|(_, s)| whole && s.kind == PT_NOTE) {
            if Notes::new(elf.file_bytes(&s)).any(|n| n.is_err()) {
                return Err(ElfError::BadNote { index });
            }
        }
        Ok(elf)
    }

    /// Whether this is a 64-bit (ELFCLASS64) file.
    pub fn is_64bit(&self) -> bool {
        self.wide
    }

    /// The program headers, in file order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.phnum).map(move |i| self.segment(self.phoff + i * self.phentsize))
    }

    fn segment(&self, at: usize) -> Segment {
        let b = self.bytes;
        if self.wide {
            Segment {
                kind: read_u32_le(b, at),
                flags: read_u32_le(b, at + 4),
                offset: read_u64_le(b, at + 8),
                vaddr: read_u64_le(b, at + 16),
                paddr: read_u64_le(b, at + 24),
                filesz: read_u64_le(b, at + 32),
                memsz: read_u64_le(b, at + 40),
            }
        } else {
            Segment {
                kind: read_u32_le(b, at),
                offset: read_u32_le(b, at + 4) as u64,
                vaddr: read_u32_le(b, at + 8) as u64,
                paddr: read_u32_le(b, at + 12) as u64,
                filesz: read_u32_le(b, at + 16) as u64,
                memsz: read_u32_le(b, at + 20) as u64,
                flags: read_u32_le(b, at + 24),
            }
        }
    }

    /// The file bytes of a segment of this image (checked in [`Elf::parse`]).
    pub fn file_bytes(&self, s: &Segment) -> &'a [u8] {
        let at = |o: u64| usize::try_from(o).unwrap_or(usize::MAX).min(self.bytes.len());
        let start = at(s.offset);
        let end = at(s.offset.saturating_add(s.filesz));
        &self.bytes[start..end.max(start)]
    }

    /// Every note of every `PT_NOTE` segment.
    pub fn notes(&self) -> impl Iterator<Item = Note<'a>> + '_ {
        self.segments().filter(|s| s.kind == PT_NOTE).flat_map(move |s| Notes::new(self.file_bytes(&s)).flatten())
    }
}

/// The notes in the bytes of one `PT_NOTE` segment; `Err` where they stop making sense
/// (nothing follows it).
pub fn notes(segment: &[u8]) -> impl Iterator<Item = Result<Note<'_>, ()>> {
    Notes::new(segment)
}

/// The notes of one note segment: `namesz`, `descsz`, `type`, then name and descriptor,
/// each padded to 4 bytes (both ELF classes use 4-byte note words in practice).
struct Notes<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Notes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Notes { rest: bytes, failed: false }
    }
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<Note<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let parsed = (|| {
            if b.len() < 12 {
                return None;
            }
            let (namesz, descsz, kind) = (read_u32_le(b, 0) as usize, read_u32_le(b, 4) as usize, read_u32_le(b, 8));
            let name_end = 12usize.checked_add(namesz)?;
            let desc_start = name_end.checked_next_multiple_of(4)?;
            let desc_end = desc_start.checked_add(descsz)?;
            let next = desc_end.checked_next_multiple_of(4)?;
            if desc_end > b.len() {
                return None;
            }
            let name = &b[12..name_end];
            let owner = name.strip_suffix(&[0]).unwrap_or(name);
            Some((Note { owner, kind, desc: &b[desc_start..desc_end] }, next.min(b.len())))
        })();
        match parsed {
            Some((note, next)) => {
                self.rest = &b[next..];
                Some(Ok(note))
            }
            None => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub mod writer;

#[cfg(test)]
mod tests;
