//! `keel.test=virtio-rng keel.mmio=ADDR keel.irq=INTID`: drives a passed-through virtio
//! entropy device on QEMU's legacy virtio-mmio transport (version 1) at guest-physical
//! ADDR, in a direct-mapped domain (its queue lies at the host-physical address the
//! device reads). Each request is one device-writable buffer; the guest waits for the
//! device's interrupt (INTID, the host's SPI forwarded by Keel) and only then reads the
//! used ring. It says how many requests completed, how many interrupts came and how
//! many bytes arrived; the boot test judges the line.

use crate::gic;
use crate::platform::Arm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use keel_test_guest::{cmdline, ensure, expect_eq, say, Outcome, Platform};

/// Legacy virtio-mmio registers.
const MAGIC: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const GUEST_FEATURES: u64 = 0x020;
const GUEST_PAGE_SIZE: u64 = 0x028;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_ALIGN: u64 = 0x03c;
const QUEUE_PFN: u64 = 0x040;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
/// Status bits: ACKNOWLEDGE, DRIVER, DRIVER_OK.
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
/// The entropy device.
const RNG: u32 = 4;
/// Descriptor flag: the device writes the buffer.
const DESC_WRITE: u16 = 2;

/// Queue size and how many requests are made.
const QUEUE: usize = 8;
const ROUNDS: usize = 4;
const CHUNK: usize = 32;
const PAGE: usize = 4096;

/// The legacy split ring of [`QUEUE`] entries aligned to a page: descriptors and the
/// available ring in the first page, the used ring in the second.
#[repr(C, align(4096))]
struct Ring(UnsafeCell<[u8; 2 * PAGE]>);
#[repr(C, align(4096))]
struct Buffers(UnsafeCell<[[u8; CHUNK]; ROUNDS]>);

// SAFETY: only the boot CPU touches them, and the device through DMA.
unsafe impl Sync for Ring {}
// SAFETY: as for `Ring`.
unsafe impl Sync for Buffers {}

static RING: Ring = Ring(UnsafeCell::new([0; 2 * PAGE]));
static BUFFERS: Buffers = Buffers(UnsafeCell::new([[0; CHUNK]; ROUNDS]));
const AVAIL: usize = 16 * QUEUE;
const USED: usize = PAGE;

/// The transport and INTID being driven (0: none), and the interrupts that reported a
/// used buffer.
static BASE: AtomicU64 = AtomicU64::new(0);
static IRQ: AtomicU32 = AtomicU32::new(u32::MAX);
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

fn reg(offset: u64) -> u64 {
    BASE.load(Relaxed) + offset
}

fn ring_ptr(at: usize) -> *mut u8 {
    // SAFETY: `at` lies inside RING (callers use fixed offsets below 2 pages).
    unsafe { (RING.0.get() as *mut u8).add(at) }
}

fn put<T>(at: usize, v: T) {
    // SAFETY: an aligned field of the ring, written before the device is told of it.
    unsafe { core::ptr::write_volatile(ring_ptr(at) as *mut T, v) }
}

fn get<T: Copy>(at: usize) -> T {
    // SAFETY: an aligned field of the ring, which the device may write.
    unsafe { core::ptr::read_volatile(ring_ptr(at) as *const T) }
}

fn barrier() {
    // SAFETY: a full-system barrier orders the ring writes before the device sees the
    // notify (and its writes before our reads).
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Whether the IRQ vector's `intid` is the device's.
pub fn owns(intid: u32) -> bool {
    intid == IRQ.load(Relaxed)
}

/// The device's interrupt: acknowledge it at the transport (its line falls), count it.
pub fn on_interrupt() {
    let status = gic::read32(reg(INTERRUPT_STATUS));
    gic::write32(reg(INTERRUPT_ACK), status);
    if status & 1 != 0 {
        INTERRUPTS.fetch_add(1, Relaxed);
    }
}

pub fn run(p: &Arm) -> Outcome {
    let (Some(at), Some(intid)) =
        (cmdline::get_u64(p.cmdline(), "keel.mmio"), cmdline::get_u64(p.cmdline(), "keel.irq"))
    else {
        keel_test_guest::fail!("keel.mmio=ADDR and keel.irq=INTID are needed");
    };
    BASE.store(at, Relaxed);
    expect_eq!(gic::read32(reg(MAGIC)), 0x7472_6976, "MagicValue");
    expect_eq!(gic::read32(reg(VERSION)), 1, "transport version (legacy)");
    expect_eq!(gic::read32(reg(DEVICE_ID)), RNG, "DeviceID");
    gic::write32(reg(STATUS), 0);
    gic::write32(reg(STATUS), ACKNOWLEDGE | DRIVER);
    gic::write32(reg(GUEST_FEATURES), 0);
    gic::write32(reg(GUEST_PAGE_SIZE), PAGE as u32);
    gic::write32(reg(QUEUE_SEL), 0);
    let max = gic::read32(reg(QUEUE_NUM_MAX));
    ensure!(max as usize >= QUEUE, "queue 0 has {max} entries, fewer than {QUEUE}");
    gic::write32(reg(QUEUE_NUM), QUEUE as u32);
    gic::write32(reg(QUEUE_ALIGN), PAGE as u32);
    let ring = p.gpa(RING.0.get() as usize);
    gic::write32(reg(QUEUE_PFN), (ring / PAGE as u64) as u32);
    gic::write32(reg(STATUS), ACKNOWLEDGE | DRIVER | DRIVER_OK);

    p.init_interrupts();
    IRQ.store(intid as u32, Relaxed);
    gic::enable_spi(intid as u32);
    p.disable_interrupts();
    let mut bytes = 0;
    for round in 0..ROUNDS {
        let buf = p.gpa(BUFFERS.0.get() as usize + round * CHUNK);
        put::<u64>(0, buf);
        put::<u32>(8, CHUNK as u32);
        put::<u16>(12, DESC_WRITE);
        put::<u16>(14, 0);
        put::<u16>(AVAIL + 4 + 2 * (round % QUEUE), 0);
        barrier();
        put::<u16>(AVAIL + 2, round as u16 + 1);
        barrier();
        ensure!(INTERRUPTS.load(Relaxed) == round as u32, "an interrupt before request {round} was made");
        gic::write32(reg(QUEUE_NOTIFY), 0);
        // The virtual timer ends the wait if the device's interrupt never comes.
        let deadline = p.ticks() + 5 * p.tick_hz();
        p.set_timer(deadline);
        while INTERRUPTS.load(Relaxed) <= round as u32 {
            if p.ticks() >= deadline {
                p.stop_timer();
                keel_test_guest::fail!("no interrupt for request {round} within 5 s");
            }
            p.wait_for_interrupt();
            p.enable_interrupts();
            p.disable_interrupts();
        }
        p.stop_timer();
        barrier();
        expect_eq!(get::<u16>(USED + 2), round as u16 + 1, "used ring index after the interrupt");
        let len = get::<u32>(USED + 4 + 8 * (round % QUEUE) + 4);
        expect_eq!(len, CHUNK as u32, "bytes the device wrote");
        // SAFETY: the device finished writing this buffer (the used ring says so).
        let data = unsafe { (*BUFFERS.0.get())[round] };
        ensure!(data.iter().any(|&b| b != 0), "request {round}: {CHUNK} zero bytes");
        bytes += len;
    }
    p.enable_interrupts();
    gic::write32(reg(STATUS), 0);
    say!(
        p,
        "virtio-rng {at:#x}: {ROUNDS} requests completed, {} interrupts (INTID {intid}), {bytes} bytes",
        INTERRUPTS.load(Relaxed)
    );
    Ok(())
}
