//! [`Store`] over the xenstore client of [`crate::xenbus`]: what keelctl's device commands
//! and the hotplug agent use in a real domain. Requests between [`Store::begin`] and
//! [`Store::commit`] carry the transaction's id (`XS_TRANSACTION_START` answers it,
//! `XS_TRANSACTION_END` with `T` or `F` ends it).

use std::io::{Read, Write};

use crate::devices_store::{Perm, Store, StoreError, Watching};
use crate::xenbus::{WatchEvent, Xenbus, XsError};

const XS_DIRECTORY: u32 = 1;
const XS_READ: u32 = 2;
const XS_WATCH: u32 = 4;
const XS_TRANSACTION_START: u32 = 6;
const XS_TRANSACTION_END: u32 = 7;
const XS_WRITE: u32 = 11;
const XS_MKDIR: u32 = 12;
const XS_RM: u32 = 13;
const XS_SET_PERMS: u32 = 14;

fn store_err(e: XsError) -> StoreError {
    match e {
        XsError::Refused(name) => StoreError(name),
        other => StoreError(other.to_string()),
    }
}

/// `path` NUL-terminated, then each of `rest` (the last one unterminated when `tail`).
fn payload(path: &str, rest: &[&str], nul_last: bool) -> Vec<u8> {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    for (i, r) in rest.iter().enumerate() {
        p.extend_from_slice(r.as_bytes());
        if nul_last || i + 1 < rest.len() {
            p.push(0);
        }
    }
    p
}

impl<T: Read + Write> Xenbus<T> {
    fn call(&mut self, ty: u32, body: &[u8]) -> Result<Vec<u8>, StoreError> {
        let tx = self.tx;
        self.request_in(ty, tx, body).map_err(store_err)
    }

    /// Watches `path` (and below) with `token`; events come from [`Xenbus::next_event`]
    /// (the store fires one at once).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.request(XS_WATCH, &payload(path, &[token], true)).map(|_| ()).map_err(store_err)
    }

    /// The next watch event.
    pub fn wait(&mut self) -> Result<WatchEvent, StoreError> {
        self.next_event().map_err(store_err)
    }
}

impl<T: Read + Write> Store for Xenbus<T> {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        match self.call(XS_READ, &payload(path, &[], false)) {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            Err(e) if e.0 == "ENOENT" => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.call(XS_WRITE, &payload(path, &[value], false)).map(|_| ())
    }

    fn mkdir(&mut self, path: &str) -> Result<(), StoreError> {
        self.call(XS_MKDIR, &payload(path, &[], false)).map(|_| ())
    }

    fn rm(&mut self, path: &str) -> Result<(), StoreError> {
        match self.call(XS_RM, &payload(path, &[], false)) {
            Ok(_) => Ok(()),
            Err(e) if e.0 == "ENOENT" => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        match self.call(XS_DIRECTORY, &payload(path, &[], false)) {
            Ok(v) => Ok(v
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect()),
            Err(e) if e.0 == "ENOENT" => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn set_perms(&mut self, path: &str, perms: &[Perm]) -> Result<(), StoreError> {
        let list: Vec<String> = perms.iter().map(|p| p.to_string()).collect();
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        self.call(XS_SET_PERMS, &payload(path, &refs, true)).map(|_| ())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.tx != 0 {
            return Err(StoreError("a transaction is already open".into()));
        }
        let v = self.call(XS_TRANSACTION_START, b"\0")?;
        let id = String::from_utf8_lossy(&v);
        let id = id.trim_end_matches('\0').trim();
        self.tx = id.parse().map_err(|_| StoreError(format!("transaction id `{id}`")))?;
        if self.tx == 0 {
            return Err(StoreError("transaction id 0".into()));
        }
        Ok(())
    }

    fn commit(&mut self, commit: bool) -> Result<(), StoreError> {
        if self.tx == 0 {
            return Err(StoreError("no transaction is open".into()));
        }
        let r = self.call(XS_TRANSACTION_END, if commit { b"T\0" } else { b"F\0" });
        self.tx = 0;
        r.map(|_| ())
    }
}

impl<T: Read + Write> Watching for Xenbus<T> {
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        Xenbus::watch(self, path, token)
    }

    fn wait_event(&mut self) -> Result<String, StoreError> {
        self.wait().map(|e| e.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices_store::{transaction, Access};
    use std::io::{self, Cursor};

    struct Dev {
        replies: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Dev {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
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

    fn msg(ty: u32, id: u32, tx: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for w in [ty, id, tx, u32::try_from(body.len()).unwrap()] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        m.extend_from_slice(body);
        m
    }

    fn client(replies: Vec<Vec<u8>>) -> Xenbus<Dev> {
        Xenbus::new(Dev { replies: Cursor::new(replies.concat()), written: Vec::new() })
    }

    #[test]
    fn absent_nodes_read_as_none_and_list_empty_and_rm_quietly() {
        let enoent = |id| msg(16, id, 0, b"ENOENT\0");
        let mut x = client(vec![enoent(1), enoent(2), enoent(3)]);
        assert_eq!(Store::read(&mut x, "/a").unwrap(), None);
        assert!(x.directory("/a").unwrap().is_empty());
        x.rm("/a").unwrap();
        let mut x = client(vec![msg(16, 1, 0, b"EACCES\0")]);
        assert_eq!(Store::read(&mut x, "/a"), Err(StoreError("EACCES".into())));
    }

    #[test]
    fn directory_splits_names_and_set_perms_spells_the_list() {
        let mut x = client(vec![msg(1, 1, 0, b"0\x0051712\0"), msg(14, 2, 0, b"OK\0")]);
        assert_eq!(x.directory("/b").unwrap(), ["0", "51712"]);
        let perms = [Perm { domid: 2, access: Access::None }, Perm { domid: 1, access: Access::Read }];
        x.set_perms("/b", &perms).unwrap();
        let want = [msg(1, 1, 0, b"/b\0"), msg(14, 2, 0, b"/b\0n2\0r1\0")].concat();
        assert_eq!(x.dev.written, want);
    }

    #[test]
    fn a_transaction_carries_its_id_and_a_conflict_is_retried() {
        let mut x = client(vec![
            msg(6, 1, 0, b"7\0"),
            msg(11, 2, 7, b"OK\0"),
            msg(16, 3, 7, b"EAGAIN\0"),
            msg(6, 4, 0, b"8\0"),
            msg(11, 5, 8, b"OK\0"),
            msg(7, 6, 8, b"OK\0"),
        ]);
        transaction(&mut x, 4, |s| s.write("/c", "1")).unwrap();
        let want = [
            msg(6, 1, 0, b"\0"),
            msg(11, 2, 7, b"/c\x001"),
            msg(7, 3, 7, b"T\0"),
            msg(6, 4, 0, b"\0"),
            msg(11, 5, 8, b"/c\x001"),
            msg(7, 6, 8, b"T\0"),
        ]
        .concat();
        assert_eq!(x.dev.written, want);
        assert_eq!(x.tx, 0);
    }

    #[test]
    fn watch_events_met_during_a_request_are_kept_for_wait() {
        let mut x = client(vec![msg(15, 0, 0, b"/be\0tok\0"), msg(4, 1, 0, b"OK\0"), msg(15, 0, 0, b"/be/x\0tok\0")]);
        x.watch("/be", "tok").unwrap();
        assert_eq!(x.wait().unwrap(), WatchEvent { path: "/be".into(), token: "tok".into() });
        assert_eq!(x.wait().unwrap().path, "/be/x");
        assert!(x.wait().is_err(), "the device ends");
    }
}
