//! Linux x86 `bzImage` kernels (`vmlinuz`, as distributions ship them), read the way Xen's
//! PVH loader reads them (`xen/arch/x86/bzimage.c`): the real-mode setup header (Linux
//! `Documentation/arch/x86/boot.rst`, protocol 2.08 or later) names the compressed payload,
//! which is the kernel's `vmlinux` ELF image, XZ-, Zstandard- or gzip-compressed, followed
//! by its decompressed length (4 bytes, little-endian). Debian's bookworm kernels are XZ, its
//! 6.12 kernels (bookworm-backports, trixie) Zstandard.
//!
//! [`payload`] checks the header; [`decompress`] inflates the payload into a buffer taken
//! from the heap with fallible allocation, so a damaged or huge kernel is refused by name
//! rather than crashing Keel.

#[cfg(test)]
mod tests;

use crate::gzip;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use ruzstd::io::Read;
use xz4rust::{XzDecoder, XzNextBlockResult};

/// Offset of `setup_sects` (the real-mode code's size in 512-byte sectors; 0 means 4).
const SETUP_SECTS: usize = 0x1f1;
/// Offset of the header signature `HdrS`.
const HEADER: usize = 0x202;
const HDRS: &[u8; 4] = b"HdrS";
/// Offset of the boot protocol version.
const VERSION: usize = 0x206;
/// Offsets of `payload_offset` and `payload_length` (protocol 2.08+), relative to the
/// protected-mode code, which starts after the setup sectors.
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// The oldest protocol with the payload fields.
const MIN_VERSION: u16 = 0x0208;
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// A Zstandard frame's magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// How much a Zstandard frame is decoded between two checks of the output's size.
const ZSTD_STEP: usize = 1 << 20;
/// The dictionary Linux's `scripts/xz_wrap.sh` compresses kernels with; the largest the
/// decoder accepts.
pub const XZ_DICT: usize = 32 << 20;

/// The smallest dictionary taken up front.
const MIN_DICT: usize = 64 << 10;

/// How the payload is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
}

/// The compressed `vmlinux` inside a bzImage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub compression: Compression,
    /// The compressed stream, without the 4-byte length after it.
    pub stream: &'a [u8],
    /// The decompressed length the kernel's build appended.
    pub len: u32,
}

/// Why a bzImage cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BzImageError {
    /// Too short for a setup header.
    Truncated,
    /// A boot protocol older than 2.08 (no payload fields).
    OldProtocol(u16),
    /// The payload lies (partly) outside the file.
    PayloadOutside { offset: u64, length: u64, file: usize },
    /// The payload is neither XZ, Zstandard nor gzip (LZMA, LZ4, bzip2, LZO kernels).
    UnknownCompression([u8; 4]),
    /// The decompressed length is larger than the caller allows.
    TooLarge { len: u32, limit: usize },
    /// The heap cannot hold the decompressed kernel (or the XZ dictionary).
    OutOfMemory(usize),
    /// The XZ stream is damaged, truncated or uses what a kernel stream never does.
    Xz(xz4rust::XzError),
    /// The Zstandard frame is damaged or truncated (the decoder's words).
    Zstd(String),
    /// The Zstandard frame's checksum (XXH64) does not match its content.
    ZstdChecksum { stored: u32, computed: u32 },
    /// The gzip stream is damaged or truncated.
    Gzip(gzip::GzipError<&'static str>),
    /// The stream decompresses to another length than the one appended to it.
    LengthMismatch { announced: u32, actual: u64 },
}

impl fmt::Display for BzImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BzImageError::Truncated => write!(f, "the bzImage is too short for its setup header"),
            BzImageError::OldProtocol(v) => {
                write!(f, "boot protocol {}.{:02} is older than 2.08 (no payload)", v >> 8, v & 0xff)
            }
            BzImageError::PayloadOutside { offset, length, file } => write!(
                f,
                "the payload at {offset:#x} of {length:#x} bytes lies outside the {file:#x}-byte file: truncated"
            ),
            BzImageError::UnknownCompression(m) => {
                write!(f, "the payload starts {m:02x?}: neither XZ, Zstandard nor gzip, the compressions Keel reads")
            }
            BzImageError::TooLarge { len, limit } => {
                write!(f, "the kernel decompresses to {len} bytes, more than the {limit} allowed")
            }
            BzImageError::OutOfMemory(n) => write!(f, "no heap left for {n} bytes to decompress the kernel into"),
            BzImageError::Xz(e) => write!(f, "the XZ payload is damaged or truncated ({e:?})"),
            BzImageError::Zstd(e) => write!(f, "the Zstandard payload is damaged or truncated ({e})"),
            BzImageError::ZstdChecksum { stored, computed } => {
                write!(f, "the Zstandard payload's checksum is {stored:#010x}, its content's {computed:#010x}: damaged")
            }
            BzImageError::Gzip(e) => write!(f, "the gzip payload: {e}"),
            BzImageError::LengthMismatch { announced, actual } => write!(
                f,
                "the payload decompresses to {actual} bytes, not the {announced} its trailer announces: damaged"
            ),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Whether `bytes` carries a Linux x86 setup header (`HdrS`).
pub fn is_bzimage(bytes: &[u8]) -> bool {
    bytes.get(HEADER..HEADER + 4) == Some(HDRS.as_slice())
}

/// The compressed payload of a bzImage.
pub fn payload(bytes: &[u8]) -> Result<Payload<'_>, BzImageError> {
    if !is_bzimage(bytes) {
        return Err(BzImageError::Truncated);
    }
    let version = u16_at(bytes, VERSION).ok_or(BzImageError::Truncated)?;
    if version < MIN_VERSION {
        return Err(BzImageError::OldProtocol(version));
    }
    let sects = match bytes.get(SETUP_SECTS).copied().ok_or(BzImageError::Truncated)? {
        0 => 4,
        n => u64::from(n),
    };
    let offset = u64::from(u32_at(bytes, PAYLOAD_OFFSET).ok_or(BzImageError::Truncated)?);
    let length = u64::from(u32_at(bytes, PAYLOAD_LENGTH).ok_or(BzImageError::Truncated)?);
    // Both at most 2^32 - 1 and the setup at most 256 sectors: no overflow in u64.
    let start = (sects + 1) * 512 + offset;
    let end = start + length;
    let outside = BzImageError::PayloadOutside { offset: start, length, file: bytes.len() };
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err(outside);
    };
    let whole = bytes.get(start..end).ok_or(outside.clone())?;
    // The stream, then its decompressed length (4 bytes).
    let split = whole.len().checked_sub(4).ok_or(outside)?;
    let (stream, tail) = whole.split_at(split);
    let len = u32::from_le_bytes(tail.try_into().map_err(|_| BzImageError::Truncated)?);
    let compression = if stream.starts_with(&XZ_MAGIC) {
        Compression::Xz
    } else if stream.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else if gzip::is_gzip(stream) {
        Compression::Gzip
    } else {
        let mut magic = [0u8; 4];
        for (m, b) in magic.iter_mut().zip(stream) {
            *m = *b;
        }
        return Err(BzImageError::UnknownCompression(magic));
    };
    Ok(Payload { compression, stream, len })
}

/// A zeroed buffer of `n` bytes, or [`BzImageError::OutOfMemory`].
fn buffer(n: usize) -> Result<Vec<u8>, BzImageError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| BzImageError::OutOfMemory(n))?;
    v.resize(n, 0);
    Ok(v)
}

/// The decompressed payload (the kernel's ELF image), at most `limit` bytes. The length
/// must be the one the trailer announces; XZ checks its CRC-32, Zstandard its XXH64 (when
/// the frame carries one), gzip its CRC-32 and length.
pub fn decompress(p: &Payload<'_>, limit: usize) -> Result<Vec<u8>, BzImageError> {
    let len = usize::try_from(p.len).map_err(|_| BzImageError::TooLarge { len: p.len, limit })?;
    if len > limit {
        return Err(BzImageError::TooLarge { len: p.len, limit });
    }
    let mut out = buffer(len)?;
    let produced = match p.compression {
        Compression::Xz => unxz(p.stream, &mut out)?,
        Compression::Zstd => unzstd(p.stream, &mut out)?,
        Compression::Gzip => {
            let mut at = 0usize;
            gzip::inflate(p.stream, |chunk| {
                let end = at.checked_add(chunk.len()).filter(|&e| e <= out.len()).ok_or("")?;
                out[at..end].copy_from_slice(chunk);
                at = end;
                Ok(())
            })
            .map_err(|e| match e {
                gzip::GzipError::Sink(_) => {
                    BzImageError::LengthMismatch { announced: p.len, actual: u64::try_from(len).unwrap_or(0) + 1 }
                }
                e => BzImageError::Gzip(e),
            })?
        }
    };
    if produced != u64::from(p.len) {
        return Err(BzImageError::LengthMismatch { announced: p.len, actual: produced });
    }
    Ok(out)
}

/// Decodes the XZ `stream` into `out`, which must hold all of it; returns its length.
fn unxz(stream: &[u8], out: &mut [u8]) -> Result<u64, BzImageError> {
    // Taken from the heap up front, fallibly, as large as a kernel's stream asks for (or
    // its output, if smaller); the decoder grows it only for a stream that names a larger
    // dictionary than its output, up to XZ_DICT.
    let dict = buffer(XZ_DICT.min(out.len().max(MIN_DICT)))?;
    let mut dec: Box<XzDecoder<'static>> = XzDecoder::in_heap_with_alloc_dict(dict, XZ_DICT);
    let (mut read, mut written) = (0usize, 0usize);
    loop {
        let input = stream.get(read..).unwrap_or_default();
        let output = out.get_mut(written..).unwrap_or_default();
        let r = dec.decode(input, output).map_err(BzImageError::Xz)?;
        read = read.saturating_add(r.input_consumed());
        written = written.saturating_add(r.output_produced());
        match r {
            XzNextBlockResult::EndOfStream(..) => break,
            // All input is there and the output has room: no progress means it ends early
            // (or produces more than announced, when the output is full).
            XzNextBlockResult::NeedMoreData(..) if !r.made_progress() => {
                return Err(if written == out.len() {
                    BzImageError::LengthMismatch {
                        announced: u32::try_from(out.len()).unwrap_or(u32::MAX),
                        actual: u64::try_from(written).unwrap_or(u64::MAX).saturating_add(1),
                    }
                } else {
                    BzImageError::Xz(xz4rust::XzError::CorruptedData)
                });
            }
            XzNextBlockResult::NeedMoreData(..) => {}
        }
    }
    Ok(u64::try_from(written).unwrap_or(u64::MAX))
}

/// Decodes the Zstandard `stream` (one frame, as Linux's build makes) into `out`, which
/// must hold all of it; returns its length.
fn unzstd(stream: &[u8], out: &mut [u8]) -> Result<u64, BzImageError> {
    let zstd = |e: ruzstd::decoding::errors::FrameDecoderError| BzImageError::Zstd(e.to_string());
    let too_long = |out: &[u8]| BzImageError::LengthMismatch {
        announced: u32::try_from(out.len()).unwrap_or(u32::MAX),
        actual: u64::try_from(out.len()).unwrap_or(u64::MAX).saturating_add(1),
    };
    // Linux compresses its kernel with a window larger than the kernel itself, so the
    // decoder keeps all it has decoded until the frame ends: as much again as `out`, in
    // a buffer it grows without a way to fail. Refuse up front a kernel the heap cannot
    // hold twice; the checks below keep that buffer within `out`'s size (plus a step).
    drop(buffer(out.len().checked_next_power_of_two().unwrap_or(usize::MAX))?);
    let mut dec = FrameDecoder::new();
    let mut input = stream;
    dec.reset(&mut input).map_err(zstd)?;
    let mut written = 0usize;
    loop {
        let before = input.len();
        dec.decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(ZSTD_STEP)).map_err(zstd)?;
        if written.saturating_add(dec.can_collect()) > out.len() {
            return Err(too_long(out));
        }
        let n =
            dec.read(out.get_mut(written..).unwrap_or_default()).map_err(|e| BzImageError::Zstd(format!("{e:?}")))?;
        written = written.saturating_add(n);
        if dec.is_finished() && dec.can_collect() == 0 {
            break;
        }
        if input.len() == before && n == 0 {
            return Err(BzImageError::Zstd("the frame ends early".into()));
        }
    }
    if !input.is_empty() {
        return Err(BzImageError::Zstd(format!("{} bytes after the frame", input.len())));
    }
    if let (Some(stored), Some(computed)) = (dec.get_checksum_from_data(), dec.get_calculated_checksum()) {
        if stored != computed {
            return Err(BzImageError::ZstdChecksum { stored, computed });
        }
    }
    Ok(u64::try_from(written).unwrap_or(u64::MAX))
}
