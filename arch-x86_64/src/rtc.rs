//! The wall clock at boot, from the CMOS real-time clock (MC146818: ports 0x70/0x71),
//! for the `wc_*` fields of every domain's shared_info (the wall-clock time of system
//! time 0). The RTC is taken to run in UTC, years 2000–2099.

use crate::regs::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};

/// Unix time (ns) at system time 0; 0 if unknown.
static BOOT_WALLCLOCK_NS: AtomicU64 = AtomicU64::new(0);

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Keeps NMIs enabled (bit 7 of the index port clear).
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const UPDATE_IN_PROGRESS: u8 = 1 << 7;
const BINARY: u8 = 1 << 2;
const HOURS_24: u8 = 1 << 1;

/// The wall-clock time of system time 0 as (seconds, nanoseconds) since the Unix epoch.
pub fn boot_wallclock() -> (u64, u32) {
    let ns = BOOT_WALLCLOCK_NS.load(Ordering::Relaxed);
    (ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
}

fn read(reg: u8) -> u8 {
    // SAFETY: the CMOS index/data ports; selecting a register and reading it changes
    // nothing else (NMIs stay enabled).
    unsafe { outb(INDEX, reg) };
    inb(DATA)
}

/// The RTC's date and time: (seconds, minutes, hours, day, month, year of century) and
/// register B, read twice outside an update until two reads agree.
fn snapshot() -> Option<([u8; 6], u8)> {
    let once = || {
        for _ in 0..1_000_000 {
            if read(REG_A) & UPDATE_IN_PROGRESS == 0 {
                return Some([read(0x00), read(0x02), read(0x04), read(0x07), read(0x08), read(0x09)]);
            }
        }
        None
    };
    for _ in 0..10 {
        let (a, b) = (once()?, once()?);
        if a == b {
            return Some((a, read(REG_B)));
        }
    }
    None
}

/// Reads the RTC and records the wall clock of system time `now_ns` (call once at boot).
pub fn init(now_ns: u64) {
    let Some((raw, reg_b)) = snapshot() else {
        log::warn!("RTC: no stable reading; guests see wall-clock time 0");
        return;
    };
    match unix_seconds(raw, reg_b) {
        Some(secs) => {
            let wall = secs.saturating_mul(1_000_000_000).saturating_sub(now_ns);
            BOOT_WALLCLOCK_NS.store(wall, Ordering::Relaxed);
            log::debug!("RTC: {secs} s since the epoch");
        }
        None => log::warn!("RTC: implausible reading {raw:02x?} (register B {reg_b:#x}); guests see wall-clock time 0"),
    }
}

fn from_bcd(v: u8) -> Option<u8> {
    (v >> 4 < 10 && v & 0xf < 10).then(|| (v >> 4) * 10 + (v & 0xf))
}

/// Seconds since the Unix epoch of an RTC reading (`raw` as [`snapshot`] returns it).
pub fn unix_seconds(raw: [u8; 6], reg_b: u8) -> Option<u64> {
    let binary = reg_b & BINARY != 0;
    let decode = |v: u8| if binary { Some(v) } else { from_bcd(v) };
    let pm = reg_b & HOURS_24 == 0 && raw[2] & 0x80 != 0;
    let [s, m, h, day, month, year] = [raw[0], raw[1], raw[2] & 0x7f, raw[3], raw[4], raw[5]].map(decode);
    let (s, m, mut h, day, month, year) = (s?, m?, h?, day?, month?, year?);
    if reg_b & HOURS_24 == 0 {
        // 12-hour clock: 12 AM is 0 h, 12 PM is 12 h.
        h = (h % 12) + if pm { 12 } else { 0 };
    }
    if s > 59 || m > 59 || h > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) || year > 99 {
        return None;
    }
    let days = days_from_civil(2000 + year as i64, month as i64, day as i64);
    Some(days as u64 * 86_400 + h as u64 * 3600 + m as u64 * 60 + s as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_24_hour_reading() {
        // 2024-02-29 13:45:30 (BCD, 24-hour): 1709214330.
        let raw = [0x30, 0x45, 0x13, 0x29, 0x02, 0x24];
        assert_eq!(unix_seconds(raw, HOURS_24), Some(1_709_214_330));
    }

    #[test]
    fn binary_12_hour_reading() {
        // 2000-01-01 12:00:00 AM and PM, binary, 12-hour clock.
        assert_eq!(unix_seconds([0, 0, 12, 1, 1, 0], BINARY), Some(946_684_800));
        assert_eq!(unix_seconds([0, 0, 0x80 | 12, 1, 1, 0], BINARY), Some(946_684_800 + 12 * 3600));
        assert_eq!(unix_seconds([0, 0, 0x80 | 1, 1, 1, 0], BINARY), Some(946_684_800 + 13 * 3600));
    }

    #[test]
    fn implausible_readings_are_refused() {
        assert_eq!(unix_seconds([0xff; 6], HOURS_24), None, "no RTC: all ones");
        assert_eq!(unix_seconds([0, 0, 0, 0, 1, 0], HOURS_24 | BINARY), None, "day 0");
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
