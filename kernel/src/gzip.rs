//! gzip streams (RFC 1952), as distributions ship kernels (`vmlinuz`): the header is
//! parsed here, the deflate data inflated by `miniz_oxide` into a small window and handed
//! out in chunks, so a 40 MiB kernel goes straight to its destination without a heap copy.
//! The trailer's CRC-32 and length are checked: a damaged kernel is refused, not booted.

use alloc::boxed::Box;
use core::fmt;
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

const MAGIC: [u8; 2] = [0x1f, 0x8b];
const METHOD_DEFLATE: u8 = 8;
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;
const TRAILER_LEN: usize = 8;
/// The output window; deflate back-references reach 32 KiB, so it must be at least that.
const WINDOW: usize = 64 * 1024;

/// Whether `bytes` starts like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Why a gzip stream cannot be inflated, or why the consumer stopped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipError<E> {
    /// Too short, wrong magic, a method other than deflate, or reserved flags set.
    BadHeader,
    /// The deflate data is corrupt or ends early.
    Corrupt,
    /// The trailer's CRC-32 does not match the data.
    Checksum,
    /// The trailer's length does not match the data.
    Length,
    /// The consumer refused a chunk.
    Sink(E),
}

impl<E: fmt::Display> fmt::Display for GzipError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::BadHeader => write!(f, "not a gzip stream Keel can read (bad header)"),
            GzipError::Corrupt => write!(f, "the gzip data is corrupt or truncated"),
            GzipError::Checksum => write!(f, "the gzip CRC-32 does not match: the file is damaged"),
            GzipError::Length => write!(f, "the gzip length does not match: the file is damaged"),
            GzipError::Sink(e) => write!(f, "{e}"),
        }
    }
}

/// The length the trailer announces (modulo 4 GiB, as gzip stores it).
pub fn announced_len(stream: &[u8]) -> Option<u32> {
    let t = stream.len().checked_sub(TRAILER_LEN)?;
    Some(u32::from_le_bytes(stream[t + 4..t + 8].try_into().ok()?))
}

/// Offset of the deflate data after the header.
fn data_start(s: &[u8]) -> Option<usize> {
    if s.len() < 10 + TRAILER_LEN || !is_gzip(s) || s[2] != METHOD_DEFLATE || s[3] & FRESERVED != 0 {
        return None;
    }
    let flags = s[3];
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes([*s.get(at)?, *s.get(at + 1)?]) as usize;
        at = at.checked_add(2 + len)?;
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += s.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= s.len() - TRAILER_LEN).then_some(at)
}

/// Inflates `stream`, handing the output to `sink` in order, in chunks of at most 64 KiB.
/// Returns the output's length once the trailer has been checked. `sink` may stop the
/// work early by returning an error, which comes back as [`GzipError::Sink`].
pub fn inflate<E>(stream: &[u8], mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<u64, GzipError<E>> {
    let start = data_start(stream).ok_or(GzipError::BadHeader)?;
    let body = &stream[..stream.len() - TRAILER_LEN];
    let mut state = Box::new(DecompressorOxide::new());
    let mut window = alloc::vec![0u8; WINDOW];
    let (mut at, mut out_pos, mut total, mut crc) = (start, 0usize, 0u64, Crc32::new());
    loop {
        let flags = inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        let (status, read, written) = decompress(&mut state, &body[at..], &mut window, out_pos, flags);
        at += read;
        let chunk = &window[out_pos..out_pos + written];
        crc.update(chunk);
        total += written as u64;
        sink(chunk).map_err(GzipError::Sink)?;
        out_pos = (out_pos + written) % WINDOW;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput => {}
            // All input is there: needing more means the data ends early.
            TINFLStatus::NeedsMoreInput if read == 0 && written == 0 => return Err(GzipError::Corrupt),
            TINFLStatus::NeedsMoreInput => {}
            _ => return Err(GzipError::Corrupt),
        }
    }
    let t = stream.len() - TRAILER_LEN;
    if u32::from_le_bytes(stream[t..t + 4].try_into().unwrap_or_default()) != crc.value() {
        return Err(GzipError::Checksum);
    }
    // ISIZE is the length modulo 2^32 (RFC 1952).
    if announced_len(stream) != Some((total & 0xffff_ffff) as u32) {
        return Err(GzipError::Length);
    }
    Ok(total)
}

/// CRC-32 (IEEE 802.3, reflected), table-driven.
struct Crc32 {
    table: [u32; 256],
    value: u32,
}

impl Crc32 {
    fn new() -> Self {
        let mut table = [0u32; 256];
        for (i, entry) in (0u32..).zip(table.iter_mut()) {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *entry = c;
        }
        Crc32 { table, value: !0 }
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.value = self.table[((self.value ^ b as u32) & 0xff) as usize] ^ (self.value >> 8);
        }
    }

    fn value(&self) -> u32 {
        !self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A gzip stream of `data` with `extra` header flags' fields.
    fn gzip(data: &[u8], name: Option<&[u8]>) -> Vec<u8> {
        let mut s = vec![0x1f, 0x8b, 8, if name.is_some() { FNAME } else { 0 }, 0, 0, 0, 0, 0, 3];
        if let Some(n) = name {
            s.extend_from_slice(n);
            s.push(0);
        }
        s.extend(miniz_oxide::deflate::compress_to_vec(data, 9));
        let mut crc = Crc32::new();
        crc.update(data);
        s.extend(crc.value().to_le_bytes());
        s.extend((data.len() as u32).to_le_bytes());
        s
    }

    fn gunzip(s: &[u8]) -> Result<Vec<u8>, GzipError<()>> {
        let mut out = Vec::new();
        let n = inflate(s, |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        assert_eq!(n, out.len() as u64);
        Ok(out)
    }

    #[test]
    fn crc32_of_the_check_string() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xcbf4_3926);
    }

    #[test]
    fn round_trip_larger_than_the_window() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x3f).collect();
        let s = gzip(&data, Some(b"Image"));
        assert_eq!(announced_len(&s), Some(data.len() as u32));
        assert_eq!(gunzip(&s).unwrap(), data);
    }

    #[test]
    fn damage_is_refused() {
        let data = vec![7u8; 100_000];
        let good = gzip(&data, None);
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(gunzip(&bad_crc), Err(GzipError::Checksum));
        let mut bad_len = good.clone();
        bad_len[n - 1] ^= 1;
        assert_eq!(gunzip(&bad_len), Err(GzipError::Length));
        let mut truncated = good[..good.len() / 2].to_vec();
        truncated.extend_from_slice(&good[n - 8..]);
        assert_eq!(gunzip(&truncated), Err(GzipError::Corrupt));
        let mut method = good.clone();
        method[2] = 7;
        assert_eq!(gunzip(&method), Err(GzipError::BadHeader));
        assert_eq!(gunzip(&good[..12]), Err(GzipError::BadHeader));
    }

    #[test]
    fn the_sink_can_stop_early() {
        let s = gzip(&vec![1u8; 200_000], None);
        let mut seen = 0;
        let r = inflate(&s, |c| {
            seen += c.len();
            Err("enough")
        });
        assert_eq!(r, Err(GzipError::Sink("enough")));
        assert!(seen > 0 && seen <= WINDOW);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048), flags in any::<u8>()) {
            let mut s = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
            s.extend(tail);
            let _ = gunzip(&s);
        }

        #[test]
        fn any_data_round_trips(data in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            prop_assert_eq!(gunzip(&gzip(&data, None)).unwrap(), data);
        }
    }
}
