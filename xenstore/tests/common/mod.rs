//! A test client: sends a request straight to the service and reads its output queue.
#![allow(dead_code)]

use keel_xenstore::{ConnId, Header, MsgType, Xenstore, XsError};

/// Everything queued for `c`, as (header, payload).
pub fn drain(xs: &mut Xenstore, c: ConnId) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(bytes) = xs.pending_output(c) {
        let bytes = bytes.to_vec();
        xs.consume_output(c, bytes.len());
        let h = Header::decode(bytes[..16].try_into().unwrap());
        assert_eq!(h.len as usize, bytes.len() - 16);
        out.push((h, bytes[16..].to_vec()));
    }
    out
}

/// Sends one request; its reply (or error) and the watch events queued for `c`.
pub fn call(
    xs: &mut Xenstore,
    c: ConnId,
    ty: MsgType,
    tx: u32,
    payload: &[u8],
) -> (Result<Vec<u8>, XsError>, Vec<Vec<u8>>) {
    xs.handle(c, Header { ty: ty as u32, req_id: 77, tx_id: tx, len: payload.len() as u32 }, payload);
    let mut reply = None;
    let mut events = Vec::new();
    for (h, p) in drain(xs, c) {
        if h.ty == MsgType::WatchEvent as u32 {
            assert_eq!((h.req_id, h.tx_id), (0, 0));
            events.push(p);
        } else {
            assert!(reply.is_none(), "one reply per request");
            assert_eq!(h.req_id, 77);
            reply = Some(if h.ty == MsgType::Error as u32 {
                let name = std::str::from_utf8(&p[..p.len() - 1]).unwrap();
                Err(XsError::from_name(name).unwrap())
            } else {
                assert_eq!(h.ty, ty as u32);
                Ok(p)
            });
        }
    }
    (reply.expect("a reply"), events)
}

pub fn req(xs: &mut Xenstore, c: ConnId, ty: MsgType, tx: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
    call(xs, c, ty, tx, payload).0
}

pub fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub fn write(xs: &mut Xenstore, c: ConnId, path: &str, value: &str) -> Result<Vec<u8>, XsError> {
    let mut p = nul(path);
    p.extend_from_slice(value.as_bytes());
    req(xs, c, MsgType::Write, 0, &p)
}

pub fn read(xs: &mut Xenstore, c: ConnId, path: &str) -> Result<Vec<u8>, XsError> {
    req(xs, c, MsgType::Read, 0, &nul(path))
}

/// A store with dom0 and guest `domid` introduced and its home made as xl makes it
/// (owned by the guest, readable by dom0).
pub fn with_guest(domid: u16) -> (Xenstore, ConnId, ConnId) {
    let mut xs = Xenstore::new(Default::default());
    let dom0 = xs.connect(0, true);
    let home = format!("/local/domain/{domid}");
    req(&mut xs, dom0, MsgType::Mkdir, 0, &nul(&home)).unwrap();
    let mut perms = nul(&home);
    perms.extend_from_slice(format!("n{domid}\0r0\0").as_bytes());
    req(&mut xs, dom0, MsgType::SetPerms, 0, &perms).unwrap();
    req(&mut xs, dom0, MsgType::Introduce, 0, format!("{domid}\x00{}\x001\x00", 0x39001).as_bytes()).unwrap();
    let guest = xs.domains()[&domid].conn;
    (xs, dom0, guest)
}
