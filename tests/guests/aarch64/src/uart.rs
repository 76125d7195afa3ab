//! `keel.test=vpl011 [keel.expect=TEXT]`: the PL011 Keel emulates for a domain that asks
//! for one (`vpl011`), at Xen's `GUEST_PL011_BASE`: its identification, lines written
//! to `UARTDR` coming out on Keel's console tagged with the domain, the transmit
//! interrupt status, and with `keel.expect`, one line of console input received through
//! the receive interrupt (SPI 32).

use crate::gic::{self, read32, write32};
use crate::platform::Arm;
use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering::Relaxed};
use keel_test_guest::console::Text;
use keel_test_guest::{cmdline, expect_eq, say, Outcome, Platform};

/// Xen's `GUEST_PL011_BASE` and `GUEST_VPL011_SPI`.
const BASE: u64 = 0x2200_0000;
pub const SPI: u32 = 32;

const DR: u64 = 0x000;
const FR: u64 = 0x018;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const ICR: u64 = 0x044;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;

/// Bytes received by the interrupt handler.
static RX: [AtomicU8; 128] = [const { AtomicU8::new(0) }; 128];
static RX_LEN: AtomicUsize = AtomicUsize::new(0);
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// The receive interrupt: drains the FIFO.
pub fn on_interrupt() {
    INTERRUPTS.fetch_add(1, Relaxed);
    while read32(BASE + FR) & FR_RXFE == 0 {
        let b = read32(BASE + DR) as u8;
        let n = RX_LEN.load(Relaxed);
        if let Some(slot) = RX.get(n) {
            slot.store(b, Relaxed);
            RX_LEN.store(n + 1, Relaxed);
        }
    }
    write32(BASE + ICR, INT_RX | INT_RT);
}

/// The flag register (`UARTFR`), for the `bench` scenario.
pub fn flags() -> u32 {
    read32(BASE + FR)
}

fn put(b: u8) {
    while read32(BASE + FR) & FR_TXFF != 0 {
        core::hint::spin_loop();
    }
    write32(BASE + DR, b as u32);
}

fn id(at: u64) -> u32 {
    (0..4).map(|i| (read32(BASE + at + 4 * i) & 0xff) << (8 * i)).fold(0, |a, b| a | b)
}

pub fn run(p: &Arm) -> Outcome {
    expect_eq!((id(0xfe0), id(0xff0)), (0x0014_1011, 0xb105_f00d), "PL011 identification");
    for b in b"vpl011: hello through the emulated PL011\n" {
        put(*b);
    }
    expect_eq!(read32(BASE + RIS) & INT_TX, INT_TX, "transmit interrupt status after a write");
    write32(BASE + ICR, INT_TX);
    expect_eq!(read32(BASE + RIS) & INT_TX, 0, "transmit interrupt status after clearing it");
    let Some(expect) = cmdline::get(p.cmdline(), "keel.expect") else { return Ok(()) };
    p.init_interrupts();
    gic::enable_spi(SPI);
    write32(BASE + IMSC, INT_RX | INT_RT);
    p.disable_interrupts();
    let line_end = || (0..RX_LEN.load(Relaxed)).find(|&i| RX[i].load(Relaxed) == b'\n');
    let end = loop {
        if let Some(end) = line_end() {
            break end;
        }
        p.wait_for_interrupt();
        p.enable_interrupts();
        p.disable_interrupts();
    };
    p.enable_interrupts();
    let mut got: Text<128> = Text::default();
    for slot in &RX[..end] {
        let _ = core::fmt::Write::write_char(&mut got, slot.load(Relaxed) as char);
    }
    say!(p, "vpl011 input: {} ({} interrupts)", got.as_str(), INTERRUPTS.load(Relaxed));
    expect_eq!(got.as_str(), expect, "input line");
    Ok(())
}
