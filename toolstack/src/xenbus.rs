//! A xenstore client over Linux's `/dev/xen/xenbus` (`drivers/xen/xenbus/xenbus_dev_frontend.c`),
//! written against Xen's wire protocol (`docs/misc/xenstore.txt`, `xs_wire.h`): each request
//! is a 16-byte header (`type`, `req_id`, `tx_id`, `len`, little-endian) and its payload,
//! written at once; the reply has the same header, `XS_ERROR` with the error's name.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};

/// The device.
pub const DEVICE: &str = "/dev/xen/xenbus";

const XS_READ: u32 = 2;
const XS_WRITE: u32 = 11;
const XS_WATCH_EVENT: u32 = 15;
const XS_ERROR: u32 = 16;
/// The largest payload of a message (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;

/// Why a request failed.
#[derive(Debug)]
pub enum XsError {
    /// The device could not be reached or read.
    Io(io::Error),
    /// The store refused: the error's name (`ENOENT`, `EACCES`, ...).
    Refused(String),
    /// A reply that does not follow the protocol.
    Protocol(String),
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Io(e) => write!(f, "{DEVICE}: {e}"),
            XsError::Refused(name) => write!(f, "xenstore refused: {name}"),
            XsError::Protocol(why) => write!(f, "{DEVICE}: {why}"),
        }
    }
}

impl From<io::Error> for XsError {
    fn from(e: io::Error) -> Self {
        XsError::Io(e)
    }
}

/// A watch event: the path that changed and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// A connection to the store.
pub struct Xenbus<T> {
    pub(crate) dev: T,
    next_id: u32,
    /// The open transaction's id, 0 outside one.
    pub(crate) tx: u32,
    /// Watch events that arrived while a reply was awaited.
    events: VecDeque<WatchEvent>,
}

fn parse_event(body: &[u8]) -> WatchEvent {
    let mut parts = body.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let path = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default();
    WatchEvent { path, token }
}

impl<T: Read + Write> Xenbus<T> {
    pub fn new(dev: T) -> Self {
        Xenbus { dev, next_id: 1, tx: 0, events: VecDeque::new() }
    }

    /// Sends one request outside any transaction and returns its reply's payload.
    pub fn request(&mut self, ty: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.request_in(ty, 0, payload)
    }

    /// Reads one message: its header's type and request id, and its payload.
    fn message(&mut self) -> Result<(u32, u32, Vec<u8>), XsError> {
        let mut head = [0u8; 16];
        self.dev.read_exact(&mut head)?;
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let (rty, rid, rlen) = (word(0), word(4), word(12));
        let rlen = usize::try_from(rlen).unwrap_or(usize::MAX);
        if rlen > PAYLOAD_MAX {
            return Err(XsError::Protocol(format!("a reply of {rlen} bytes")));
        }
        let mut body = vec![0u8; rlen];
        self.dev.read_exact(&mut body)?;
        Ok((rty, rid, body))
    }

    /// The next watch event, waiting for one if none is queued.
    pub fn next_event(&mut self) -> Result<WatchEvent, XsError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        loop {
            let (rty, _, body) = self.message()?;
            if rty == XS_WATCH_EVENT {
                return Ok(parse_event(&body));
            }
            // A reply nobody waits for (there is none outside a request): ignore it.
        }
    }

    /// Sends one request in transaction `tx` (0: none) and returns its reply's payload.
    pub fn request_in(&mut self, ty: u32, tx: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(XsError::Refused("E2BIG".into()));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let len = u32::try_from(payload.len()).map_err(|_| XsError::Refused("E2BIG".into()))?;
        let mut msg = Vec::with_capacity(16 + payload.len());
        for word in [ty, id, tx, len] {
            msg.extend_from_slice(&word.to_le_bytes());
        }
        msg.extend_from_slice(payload);
        self.dev.write_all(&msg)?;
        loop {
            let (rty, rid, body) = self.message()?;
            if rty == XS_WATCH_EVENT {
                self.events.push_back(parse_event(&body));
                continue;
            }
            if rid != id {
                return Err(XsError::Protocol(format!("reply {rid} to request {id}")));
            }
            if rty == XS_ERROR {
                let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
                return Err(XsError::Refused(String::from_utf8_lossy(name).into_owned()));
            }
            if rty != ty {
                return Err(XsError::Protocol(format!("reply type {rty} to request type {ty}")));
            }
            return Ok(body);
        }
    }

    /// The value at `path`.
    pub fn read(&mut self, path: &str) -> Result<String, XsError> {
        let mut p = path.as_bytes().to_vec();
        p.push(0);
        let v = self.request(XS_READ, &p)?;
        Ok(String::from_utf8_lossy(&v).into_owned())
    }

    /// Writes `value` at `path`.
    pub fn write(&mut self, path: &str, value: &str) -> Result<(), XsError> {
        let mut p = path.as_bytes().to_vec();
        p.push(0);
        p.extend_from_slice(value.as_bytes());
        self.request(XS_WRITE, &p).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A device whose replies are queued in advance; what the client writes is kept.
    struct Dev {
        replies: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Dev {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // One byte at a time: the client must gather partial reads.
            let n = buf.len().min(1);
            self.replies.read(&mut buf[..n])
        }
    }

    impl Write for Dev {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn msg(ty: u32, id: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for w in [ty, id, 0, u32::try_from(body.len()).unwrap()] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        m.extend_from_slice(body);
        m
    }

    fn client(replies: Vec<u8>) -> Xenbus<Dev> {
        Xenbus::new(Dev { replies: Cursor::new(replies), written: Vec::new() })
    }

    #[test]
    fn read_sends_the_path_and_returns_the_value() {
        let mut x = client(msg(XS_READ, 1, b"1"));
        assert_eq!(x.read("control/feature-poweroff").unwrap(), "1");
        assert_eq!(x.dev.written, msg(XS_READ, 1, b"control/feature-poweroff\0"));
    }

    #[test]
    fn write_sends_path_nul_value_and_skips_watch_events() {
        let mut replies = msg(XS_WATCH_EVENT, 0, b"/a\0tok\0");
        replies.extend(msg(XS_WRITE, 1, b"OK\0"));
        let mut x = client(replies);
        x.write("/local/domain/2/control/shutdown", "poweroff").unwrap();
        assert_eq!(x.dev.written, msg(XS_WRITE, 1, b"/local/domain/2/control/shutdown\0poweroff"));
    }

    #[test]
    fn errors_carry_their_names_and_bad_replies_are_refused() {
        let mut x = client(msg(XS_ERROR, 1, b"EACCES\0"));
        assert!(matches!(x.write("/x", "1"), Err(XsError::Refused(n)) if n == "EACCES"));
        let mut x = client(msg(XS_READ, 7, b"1"));
        assert!(matches!(x.read("/x"), Err(XsError::Protocol(_))), "another request's reply");
        let mut huge = msg(XS_READ, 1, b"");
        huge[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert!(matches!(client(huge).read("/x"), Err(XsError::Protocol(_))), "over the payload limit");
        assert!(matches!(client(Vec::new()).read("/x"), Err(XsError::Io(_))), "the device ends");
        assert!(matches!(client(Vec::new()).write("/x", &"v".repeat(5000)), Err(XsError::Refused(_))));
    }
}
