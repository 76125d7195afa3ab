use super::{ConsoleUart, Kind, OutputRing};
use core::fmt::Write;
use proptest::prelude::*;
use spin::Mutex;

/// A paced UART: refuses `stall` calls after each one that took bytes, then takes up to
/// `per_call` bytes.
struct PacedUart {
    state: Mutex<Paced>,
}

struct Paced {
    out: Vec<u8>,
    per_call: usize,
    stall: u32,
    stalled: u32,
    interrupt: bool,
}

impl PacedUart {
    fn new(per_call: usize, stall: u32) -> Self {
        PacedUart { state: Mutex::new(Paced { out: Vec::new(), per_call, stall, stalled: 0, interrupt: false }) }
    }

    fn out(&self) -> Vec<u8> {
        self.state.lock().out.clone()
    }
}

impl ConsoleUart for PacedUart {
    fn send_ready(&self, bytes: &[u8]) -> usize {
        let mut s = self.state.lock();
        if s.stalled < s.stall {
            s.stalled += 1;
            return 0;
        }
        s.stalled = 0;
        let n = bytes.len().min(s.per_call);
        s.out.extend_from_slice(&bytes[..n]);
        n
    }

    fn transmit_interrupt(&self, on: bool) {
        self.state.lock().interrupt = on;
    }
}

fn write<const N: usize>(ring: &mut OutputRing<N>, uart: &PacedUart, kind: Kind, bytes: &[u8]) -> bool {
    let mut w = ring.writer(uart, kind);
    w.write_bytes(bytes);
    w.finish()
}

#[test]
fn lines_leave_in_order_and_text_ends_lines_with_crlf() {
    let uart = PacedUart::new(3, 1);
    let mut ring = OutputRing::<64>::new();
    let mut w = ring.writer(&uart, Kind::Blocking);
    writeln!(w, "[ INFO 0] one").unwrap();
    assert!(w.finish());
    assert!(write(&mut ring, &uart, Kind::Blocking, b"raw\n"));
    assert!(uart.out().is_empty(), "nothing is sent while there is room");
    ring.flush(&uart);
    assert_eq!(uart.out(), b"[ INFO 0] one\r\nraw\n");
    assert!(ring.is_empty());
}

#[test]
fn a_droppable_line_that_does_not_fit_is_dropped_whole_and_counted() {
    let uart = PacedUart::new(4, u32::MAX);
    let mut ring = OutputRing::<16>::new();
    assert!(write(&mut ring, &uart, Kind::Blocking, b"0123456789"));
    assert!(!write(&mut ring, &uart, Kind::Droppable, b"abcdefgh"), "8 bytes, 6 free");
    assert_eq!(ring.dropped(), 8);
    assert!(write(&mut ring, &uart, Kind::Droppable, b"xyz"), "a shorter one fits");
    assert_eq!(ring.len(), 13);
    assert_eq!(ring.take_dropped(), 8);
    assert_eq!(ring.dropped(), 0);
    uart.state.lock().stall = 0;
    ring.flush(&uart);
    assert_eq!(uart.out(), b"0123456789xyz");
}

#[test]
fn a_droppable_line_makes_room_from_committed_bytes_only() {
    // A UART that takes everything at once: the committed bytes leave to make room, but
    // a line longer than the ring is dropped without a byte of it on the wire.
    let uart = PacedUart::new(usize::MAX, 0);
    let mut ring = OutputRing::<8>::new();
    assert!(write(&mut ring, &uart, Kind::Blocking, b"abcdef"));
    assert!(write(&mut ring, &uart, Kind::Droppable, b"1234567"));
    assert_eq!(uart.out(), b"abcdef");
    assert!(!write(&mut ring, &uart, Kind::Droppable, b"too long a line"));
    assert_eq!(uart.out(), b"abcdef1234567");
    assert_eq!(ring.dropped(), 15);
}

#[test]
fn a_blocking_line_longer_than_the_ring_goes_out_whole() {
    let uart = PacedUart::new(1, 2);
    let mut ring = OutputRing::<4>::new();
    let line = b"a guest line much longer than the ring\n";
    assert!(write(&mut ring, &uart, Kind::Blocking, line));
    ring.flush(&uart);
    assert_eq!(uart.out(), line);
}

#[test]
fn a_uart_that_never_takes_a_byte_does_not_hang_a_blocking_writer() {
    let uart = PacedUart::new(1, u32::MAX);
    let mut ring = OutputRing::<2>::new();
    assert!(write(&mut ring, &uart, Kind::Blocking, b"abc"));
    assert_eq!(ring.len(), 2, "one byte given up to make room");
}

#[derive(Clone, Debug)]
enum Op {
    Blocking(Vec<u8>),
    Droppable(Vec<u8>),
    /// The transmit interrupt (or an idle CPU) sends what the UART takes.
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    let line = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![line.clone().prop_map(Op::Blocking), line.prop_map(Op::Droppable), Just(Op::Drain),]
}

proptest! {
    /// Whatever the interleaving of lines and drains and however the UART is paced: the
    /// wire carries exactly the blocking lines and the droppable lines that were
    /// committed, each whole and in the order written; every other droppable line's
    /// bytes are counted as dropped; and nothing is dropped while it fits.
    #[test]
    fn order_is_kept_blocking_bytes_are_never_lost_and_drops_are_counted(
        ops in proptest::collection::vec(op(), 0..80),
        per_call in 1usize..20,
        stall in 0u32..4,
    ) {
        let uart = PacedUart::new(per_call, stall);
        let mut ring = OutputRing::<64>::new();
        let mut expected = Vec::new();
        let mut dropped = 0u64;
        for op in ops {
            match op {
                Op::Blocking(l) => {
                    prop_assert!(write(&mut ring, &uart, Kind::Blocking, &l));
                    expected.extend_from_slice(&l);
                }
                Op::Droppable(l) => {
                    let free = 64 - ring.len();
                    if write(&mut ring, &uart, Kind::Droppable, &l) {
                        expected.extend_from_slice(&l);
                    } else {
                        prop_assert!(l.len() > free, "a line that fitted was dropped");
                        dropped += u64::try_from(l.len()).unwrap();
                    }
                }
                Op::Drain => {
                    ring.send_ready(&uart);
                }
            }
            prop_assert!(expected.starts_with(&uart.out()), "the wire is a prefix of what was written");
        }
        ring.flush(&uart);
        prop_assert_eq!(uart.out(), expected);
        prop_assert_eq!(ring.dropped(), dropped);
    }
}
