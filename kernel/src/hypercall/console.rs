//! `console_io`: guest output to Keel's console (see [`crate::guest_output`]), and input
//! from a per-domain buffer.

use super::{Call, HcResult};
use crate::arch::Arch;
use keel_abi::xen::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use keel_abi::Errno;

/// Bytes copied from the guest at a time.
const CHUNK: usize = 128;
/// The most bytes one `CONSOLEIO_write` may carry (Keel has no continuations).
pub const WRITE_MAX: u32 = 64 * 1024;

/// `console_io(cmd, count, buffer)`.
pub fn console_io<A: Arch>(c: &Call<'_, '_, A>) -> HcResult {
    let count = c.arg32(1);
    let buf = c.args[2];
    match c.arg32(0) as u64 {
        CONSOLEIO_WRITE => {
            if count > WRITE_MAX {
                return Err(Errno::EINVAL);
            }
            let mut chunk = [0u8; CHUNK];
            let mut done = 0u64;
            while done < count as u64 {
                let n = usize::try_from(u64::from(count) - done).unwrap_or(CHUNK).min(CHUNK);
                c.guest.read(buf.checked_add(done).ok_or(Errno::EFAULT)?, &mut chunk[..n])?;
                c.hv.console_output(c.domain, &chunk[..n]);
                done += n as u64;
            }
            Ok(0)
        }
        CONSOLEIO_READ => {
            let data = c.domain.console.lock().peek_input(count as usize);
            c.guest.write(buf, &data)?;
            c.domain.console.lock().consume_input(data.len());
            Ok(data.len() as u64)
        }
        _ => Err(Errno::ENOSYS),
    }
}
