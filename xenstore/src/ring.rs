//! The shared ring page, `struct xenstore_domain_interface` (`xs_wire.h`,
//! `docs/misc/xenstore-ring.txt`), served as a state machine over [`RingMemory`].
//!
//! Indices are free running modulo 2^32; byte `i` lives at `i & 1023`. A request may
//! arrive in pieces and across the wrap; the server keeps the partial message. A ring
//! whose producer runs more than a ring ahead of its consumer, or a message longer than
//! [`PAYLOAD_MAX`], marks the connection broken (`error` field set, nothing more served)
//! until the guest asks for a reconnection; other connections are not affected.

use alloc::vec::Vec;

use crate::service::{ConnId, Xenstore};
use crate::wire::{Header, HEADER_LEN, PAYLOAD_MAX};

/// Bytes in each of the two rings (`XENSTORE_RING_SIZE`).
pub const RING_SIZE: u32 = 1024;
/// Offset of `req[]`, guest to server.
pub const REQ: usize = 0;
/// Offset of `rsp[]`, server to guest.
pub const RSP: usize = 1024;
/// Offset of `req_cons`.
pub const REQ_CONS: usize = 2048;
/// Offset of `req_prod`.
pub const REQ_PROD: usize = 2052;
/// Offset of `rsp_cons`.
pub const RSP_CONS: usize = 2056;
/// Offset of `rsp_prod`.
pub const RSP_PROD: usize = 2060;
/// Offset of `server_features`.
pub const SERVER_FEATURES: usize = 2064;
/// Offset of `connection`.
pub const CONNECTION: usize = 2068;
/// Offset of `error`.
pub const ERROR: usize = 2072;

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`.
pub const CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`.
pub const RECONNECT: u32 = 1;

/// Why a ring stopped being served (`XENSTORE_ERROR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingFault {
    /// `XENSTORE_ERROR_RINGIDX` (2): an index ran more than a ring ahead.
    BadIndex = 2,
    /// `XENSTORE_ERROR_PROTO` (3): a payload longer than `XENSTORE_PAYLOAD_MAX`.
    TooLong = 3,
}

/// The shared page as the server reaches it.
///
/// Contract: offsets are below 4096 and accesses within the page (the caller guarantees
/// it); the other side may change any byte at any time, so each call reads the current
/// content once. [`RingMemory::fence`] orders the accesses before it against those after
/// it as the other side sees them (a full memory barrier on shared memory).
pub trait RingMemory {
    /// Reads the little-endian `u32` at `offset`.
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes the little-endian `u32` at `offset`.
    fn write_u32(&mut self, offset: usize, value: u32);
    /// Copies `buf.len()` bytes from `offset`.
    fn read_bytes(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset`.
    fn write_bytes(&mut self, offset: usize, data: &[u8]);
    /// A full memory barrier.
    fn fence(&self) {}
}

/// A page in ordinary memory (tests, and servers that copy the page).
#[derive(Clone)]
pub struct PageBuffer(pub Vec<u8>);

impl Default for PageBuffer {
    fn default() -> Self {
        PageBuffer(alloc::vec![0; 4096])
    }
}

impl RingMemory for PageBuffer {
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read_bytes(offset, &mut b);
        u32::from_le_bytes(b)
    }
    fn write_u32(&mut self, offset: usize, value: u32) {
        self.write_bytes(offset, &value.to_le_bytes());
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        if let Some(src) = self.0.get(offset..offset.saturating_add(buf.len())) {
            buf.copy_from_slice(src);
        }
    }
    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        if let Some(dst) = self.0.get_mut(offset..offset.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
    }
}

/// The server's state for one ring.
#[derive(Clone, Debug, Default)]
pub struct RingServer {
    partial: Vec<u8>,
    fault: Option<RingFault>,
}

/// What one [`RingServer::serve`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Requests answered.
    pub requests: usize,
    /// Bytes given to the guest.
    pub bytes_out: usize,
    /// Request bytes taken off the ring (whole requests or a part of one).
    pub bytes_in: usize,
    /// Whether the guest must be signalled on the ring's event channel.
    pub notify: bool,
}

impl Served {
    /// Whether the ring moved: a transport must then serve it again after signalling the
    /// guest, before it waits for the guest's next event.
    ///
    /// Taking only part of a request counts. Linux's `xb_write` signals the server only if
    /// the server had taken everything before that write (`prod <= req_cons`), and it reads
    /// `req_cons` without a barrier after publishing `req_prod`: when the server takes the
    /// header of a request while Linux writes its payload, each side can read the other's
    /// index as it was before (the store-buffering race), so Linux does not signal and the
    /// server sees no more bytes. Xen's xenstored re-reads the ring after signalling the
    /// guest; a server that waits instead leaves the request on the ring for ever.
    pub fn moved(&self) -> bool {
        self.requests > 0 || self.bytes_out > 0 || self.bytes_in > 0
    }
}

fn ring_offset(base: usize, index: u32) -> usize {
    base + usize::try_from(index & (RING_SIZE - 1)).unwrap_or(0)
}

impl RingServer {
    /// Prepares a fresh page: advertises reconnection and the error field.
    pub fn new<M: RingMemory>(mem: &mut M) -> RingServer {
        mem.write_u32(SERVER_FEATURES, FEATURE_RECONNECTION | FEATURE_ERROR);
        RingServer::default()
    }

    /// Why the ring is no longer served, if it is not.
    pub fn fault(&self) -> Option<RingFault> {
        self.fault
    }

    fn fail<M: RingMemory>(&mut self, mem: &mut M, fault: RingFault, conn: ConnId) {
        log::warn!("xenstore: ring of connection {} broken: {:?}", conn.0, fault);
        self.fault = Some(fault);
        mem.write_u32(ERROR, fault as u32);
    }

    /// Serves the ring once: a reconnection request, then every whole request the
    /// connection may send now, then as much output as fits.
    pub fn serve<M: RingMemory>(&mut self, store: &mut Xenstore, conn: ConnId, mem: &mut M) -> Served {
        let mut served = Served::default();
        if mem.read_u32(CONNECTION) == RECONNECT {
            store.reset(conn);
            self.partial.clear();
            self.fault = None;
            for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD, ERROR] {
                mem.write_u32(off, 0);
            }
            mem.fence();
            mem.write_u32(CONNECTION, CONNECTED);
            served.notify = true;
            return served;
        }
        if self.fault.is_some() {
            return served;
        }
        while store.accepts_requests(conn) {
            match self.read_message(mem, conn, &mut served) {
                Some((header, payload)) => {
                    store.handle(conn, header, &payload);
                    served.requests += 1;
                }
                None => break,
            }
        }
        if self.fault.is_none() {
            self.write_output(store, conn, mem, &mut served);
        }
        served
    }

    /// Reads what is there of the current message; the message once whole.
    fn read_message<M: RingMemory>(
        &mut self,
        mem: &mut M,
        conn: ConnId,
        served: &mut Served,
    ) -> Option<(Header, Vec<u8>)> {
        loop {
            let want = if self.partial.len() < HEADER_LEN {
                HEADER_LEN
            } else {
                let h = self.header();
                let len = usize::try_from(h.len).unwrap_or(usize::MAX);
                if len > PAYLOAD_MAX {
                    self.fail(mem, RingFault::TooLong, conn);
                    return None;
                }
                HEADER_LEN + len
            };
            if self.partial.len() >= want {
                let payload = self.partial.split_off(HEADER_LEN);
                let header = self.header();
                self.partial.clear();
                return Some((header, payload));
            }
            let cons = mem.read_u32(REQ_CONS);
            let prod = mem.read_u32(REQ_PROD);
            let avail = prod.wrapping_sub(cons);
            if avail > RING_SIZE {
                self.fail(mem, RingFault::BadIndex, conn);
                return None;
            }
            if avail == 0 {
                return None;
            }
            mem.fence();
            // Up to the end of the ring, the message or what is there, whichever is less.
            let to_wrap = RING_SIZE - (cons & (RING_SIZE - 1));
            let need = u32::try_from(want - self.partial.len()).unwrap_or(u32::MAX);
            let n = avail.min(to_wrap).min(need);
            let start = self.partial.len();
            let n_usize = usize::try_from(n).unwrap_or(0);
            self.partial.resize(start + n_usize, 0);
            mem.read_bytes(ring_offset(REQ, cons), &mut self.partial[start..]);
            mem.fence();
            mem.write_u32(REQ_CONS, cons.wrapping_add(n));
            // `req_prod` is read again only after the new `req_cons` is visible.
            mem.fence();
            served.bytes_in += n_usize;
            served.notify = true;
        }
    }

    fn header(&self) -> Header {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.partial[..HEADER_LEN]);
        Header::decode(&h)
    }

    fn write_output<M: RingMemory>(&mut self, store: &mut Xenstore, conn: ConnId, mem: &mut M, served: &mut Served) {
        while let Some(bytes) = store.pending_output(conn) {
            let cons = mem.read_u32(RSP_CONS);
            let prod = mem.read_u32(RSP_PROD);
            let used = prod.wrapping_sub(cons);
            if used > RING_SIZE {
                self.fail(mem, RingFault::BadIndex, conn);
                return;
            }
            let space = RING_SIZE - used;
            if space == 0 {
                return;
            }
            mem.fence();
            let to_wrap = RING_SIZE - (prod & (RING_SIZE - 1));
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            let n = space.min(to_wrap).min(len);
            let n_usize = usize::try_from(n).unwrap_or(0);
            mem.write_bytes(ring_offset(RSP, prod), &bytes[..n_usize]);
            mem.fence();
            mem.write_u32(RSP_PROD, prod.wrapping_add(n));
            // `rsp_cons` is read again only after the new `rsp_prod` is visible.
            mem.fence();
            store.consume_output(conn, n_usize);
            served.bytes_out += n_usize;
            served.notify = true;
        }
    }
}
