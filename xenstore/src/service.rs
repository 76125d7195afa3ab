//! The xenstore service: connections, the request dispatcher, watches and quotas.
//!
//! A connection is one client: a domain's shared ring (made by `INTRODUCE`) or a local
//! socket-like client ([`Xenstore::connect`]). [`Xenstore::handle`] answers one request;
//! its reply and the watch events it fires wait in each connection's output queue
//! ([`Xenstore::pending_output`], [`Xenstore::consume_output`]) for the transport.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::ops;
use crate::path::resolve;
use crate::perms::{Caller, Perms};
use crate::quota::Quotas;
use crate::transaction::{Change, Transaction, View};
use crate::tree::Tree;
use crate::watch::Watch;
use crate::wire::{encode_message, error_payload, DomId, Header, MsgType, XsError};

/// A connection's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId(pub u32);

struct Outgoing {
    bytes: Vec<u8>,
    reply: bool,
}

pub(crate) struct Conn {
    pub(crate) domid: DomId,
    privileged: bool,
    pub(crate) watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    out: VecDeque<Outgoing>,
    sent: usize,
    replies: usize,
    events: usize,
}

/// What an introduced domain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain {
    pub conn: ConnId,
    pub gfn: u64,
    pub port: u32,
    pub target: Option<DomId>,
}

/// What the transport must do after a request (map or unmap a domain's ring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Map `domid`'s ring at `gfn`, bind its event channel `port`, serve it as `conn`.
    Introduce { domid: DomId, gfn: u64, port: u32, conn: ConnId },
    /// Stop serving `domid`'s ring `conn` and unmap it.
    Release { domid: DomId, conn: ConnId },
}

/// One xenstore instance.
pub struct Xenstore {
    pub(crate) tree: Tree,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    pub(crate) domains: BTreeMap<DomId, Domain>,
    pub(crate) quotas: Quotas,
    next_conn: u32,
    next_tx: u32,
    pub(crate) actions: Vec<Action>,
    pub(crate) changes: Vec<Change>,
    pub(crate) specials: Vec<&'static str>,
    initial_events: Vec<(ConnId, Vec<u8>)>,
}

impl Xenstore {
    /// An empty store (`/`, `/local`, `/local/domain`) enforcing `quotas`.
    pub fn new(quotas: Quotas) -> Xenstore {
        Xenstore {
            tree: Tree::new(),
            conns: BTreeMap::new(),
            domains: BTreeMap::new(),
            quotas,
            next_conn: 1,
            next_tx: 1,
            actions: Vec::new(),
            changes: Vec::new(),
            specials: Vec::new(),
            initial_events: Vec::new(),
        }
    }

    /// The committed store.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The introduced domains.
    pub fn domains(&self) -> &BTreeMap<DomId, Domain> {
        &self.domains
    }

    /// A new connection for domain `domid`; `privileged` connections may do everything
    /// (dom0's are privileged whatever this says).
    pub fn connect(&mut self, domid: DomId, privileged: bool) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1).max(1);
        let conn = Conn {
            domid,
            privileged: privileged || domid == 0,
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            out: VecDeque::new(),
            sent: 0,
            replies: 0,
            events: 0,
        };
        self.conns.insert(id, conn);
        id
    }

    /// Forgets a connection with its watches, transactions and unsent output.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Drops a connection's watches, transactions and unsent output and keeps it open
    /// (`RESET_WATCHES` does the first two; a ring reconnection does all three).
    pub fn reset(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.watches.clear();
            c.transactions.clear();
            c.out.clear();
            c.sent = 0;
            c.replies = 0;
            c.events = 0;
        }
    }

    /// What the transport must do since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        core::mem::take(&mut self.actions)
    }

    /// Whether `conn` may send another request now: fewer replies than the quota wait
    /// for it to read them. A transport leaves further requests on the ring meanwhile.
    pub fn accepts_requests(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.replies < self.quotas.outstanding_requests)
    }

    /// The bytes `conn` has yet to receive, from the oldest message on (one message at a
    /// time; may be a partly sent one).
    pub fn pending_output(&self, conn: ConnId) -> Option<&[u8]> {
        let c = self.conns.get(&conn)?;
        c.out.front().map(|m| &m.bytes[c.sent.min(m.bytes.len())..])
    }

    /// Marks `n` bytes of [`Xenstore::pending_output`] as delivered.
    pub fn consume_output(&mut self, conn: ConnId, n: usize) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let Some(front) = c.out.front() else { return };
        c.sent = c.sent.saturating_add(n);
        if c.sent >= front.bytes.len() {
            if front.reply {
                c.replies = c.replies.saturating_sub(1);
            } else {
                c.events = c.events.saturating_sub(1);
            }
            c.out.pop_front();
            c.sent = 0;
        }
    }

    pub(crate) fn caller(&self, conn: ConnId) -> Result<Caller, XsError> {
        let c = self.conns.get(&conn).ok_or(XsError::Einval)?;
        let target = self.domains.get(&c.domid).and_then(|d| d.target);
        Ok(Caller { domid: c.domid, privileged: c.privileged, target })
    }

    /// Answers one request from `conn`: its reply (or `XS_ERROR`), then the watch events
    /// it fired, join the output queues.
    pub fn handle(&mut self, conn: ConnId, header: Header, payload: &[u8]) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let result = match MsgType::from_u32(header.ty) {
            Some(ty) => self.dispatch(conn, ty, header.tx_id, payload),
            None => Err(XsError::Enosys),
        };
        let msg = match (&result, MsgType::from_u32(header.ty)) {
            (Ok(body), Some(ty)) => encode_message(ty, header.req_id, header.tx_id, body),
            (Err(e), _) => encode_message(MsgType::Error, header.req_id, header.tx_id, &error_payload(*e)),
            (Ok(_), None) => return,
        };
        if let Err(e) = result {
            log::debug!("xenstore: request type {} from conn {} failed: {}", header.ty, conn.0, e.name());
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.push_back(Outgoing { bytes: msg, reply: true });
            c.replies = c.replies.saturating_add(1);
        }
        for (c, ev) in core::mem::take(&mut self.initial_events) {
            self.queue_event(c, ev);
        }
        self.fire_pending();
    }

    fn queue_event(&mut self, conn: ConnId, payload: Vec<u8>) {
        let limit = self.quotas.queued_events;
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.events >= limit {
            log::warn!("xenstore: domain {} reads no watch events; one dropped", c.domid);
            return;
        }
        c.out.push_back(Outgoing { bytes: encode_message(MsgType::WatchEvent, 0, 0, &payload), reply: false });
        c.events = c.events.saturating_add(1);
    }

    /// Sends the events for every change recorded so far.
    pub(crate) fn fire_pending(&mut self) {
        let changes = core::mem::take(&mut self.changes);
        let specials = core::mem::take(&mut self.specials);
        let mut events = Vec::new();
        for (&id, c) in &self.conns {
            let target = self.domains.get(&c.domid).and_then(|d| d.target);
            let caller = Caller { domid: c.domid, privileged: c.privileged, target };
            for ch in &changes {
                let old_read = ch.old_perms.as_ref().is_some_and(|p| p.rights(&caller).read);
                if !ch.perms.rights(&caller).read && !old_read {
                    continue;
                }
                for w in c.watches.iter().filter(|w| w.fires_for(&ch.path, ch.exact)) {
                    events.push((id, w.event(&ch.path, c.domid)));
                }
            }
            for s in &specials {
                for w in c.watches.iter().filter(|w| w.abs == *s) {
                    events.push((id, w.event(s, c.domid)));
                }
            }
        }
        for (id, ev) in events {
            self.queue_event(id, ev);
        }
    }

    fn with_view<R>(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        op: impl FnOnce(&mut View, &Caller, &Quotas) -> Result<R, XsError>,
    ) -> Result<R, XsError> {
        let caller = self.caller(conn)?;
        let quotas = self.quotas;
        let c = self.conns.get_mut(&conn).ok_or(XsError::Einval)?;
        let tx = match tx_id {
            0 => None,
            id => Some(c.transactions.get_mut(&id).ok_or(XsError::Enoent)?),
        };
        let mut view = View::new(&mut self.tree, tx, quotas.nodes_per_transaction);
        let r = op(&mut view, &caller, &quotas)?;
        let changes = view.finish();
        self.changes.extend(changes);
        Ok(r)
    }

    fn dispatch(&mut self, conn: ConnId, ty: MsgType, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let c = self.conns.get(&conn).ok_or(XsError::Einval)?;
        let domid = c.domid;
        // As the C xenstored: a transaction id must name an open transaction, except for
        // WATCH and UNWATCH, which ignore it.
        if tx_id != 0 && !matches!(ty, MsgType::Watch | MsgType::Unwatch) && !c.transactions.contains_key(&tx_id) {
            return Err(XsError::Enoent);
        }
        let ok = || Ok(Vec::from(ops::OK));
        match ty {
            MsgType::Read => {
                let p = resolve(one_arg(payload)?, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, _| ops::read(v, c, &p))
            }
            MsgType::Write => {
                let (raw, value) = split_first(payload)?;
                let p = resolve(raw, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, q| ops::write(v, c, q, &p, Some(value)))?;
                ok()
            }
            MsgType::Mkdir => {
                let p = resolve(one_arg(payload)?, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, q| ops::write(v, c, q, &p, None))?;
                ok()
            }
            MsgType::Rm => {
                let p = resolve(one_arg(payload)?, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, _| ops::rm(v, c, &p))?;
                ok()
            }
            MsgType::Directory => {
                let p = resolve(one_arg(payload)?, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, _| ops::directory(v, c, &p))
            }
            MsgType::DirectoryPart => {
                let [raw, offset] = args::<2>(payload)?;
                let p = resolve(raw, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, _| ops::directory_part(v, c, &p, offset))
            }
            MsgType::GetPerms => {
                let p = resolve(one_arg(payload)?, domid)?.abs;
                self.with_view(conn, tx_id, |v, c, _| ops::get_perms(v, c, &p))
            }
            MsgType::SetPerms => {
                let (raw, rest) = split_first(payload)?;
                let p = resolve(raw, domid)?.abs;
                let perms = Perms::parse_list(rest)?;
                self.with_view(conn, tx_id, |v, c, q| ops::set_perms(v, c, q, &p, perms))?;
                ok()
            }
            MsgType::Watch => self.watch(conn, payload),
            MsgType::Unwatch => self.unwatch(conn, payload),
            MsgType::ResetWatches => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.watches.clear();
                    c.transactions.clear();
                }
                ok()
            }
            MsgType::TransactionStart => self.transaction_start(conn, tx_id, payload),
            MsgType::TransactionEnd => self.transaction_end(conn, tx_id, payload),
            MsgType::GetDomainPath => self.get_domain_path(payload),
            MsgType::Introduce => self.introduce(conn, payload),
            MsgType::Release => self.release(conn, payload),
            MsgType::IsDomainIntroduced => self.is_domain_introduced(conn, payload),
            MsgType::Resume => self.resume(conn, payload),
            MsgType::SetTarget => self.set_target(conn, payload),
            MsgType::Control => self.control(conn, payload),
            MsgType::WatchEvent | MsgType::Error => Err(XsError::Einval),
        }
    }

    fn watch(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let parts = strings(payload)?;
        let (raw, token) = match parts.as_slice() {
            [p, t] | [p, t, _] => (*p, *t),
            _ => return Err(XsError::Einval),
        };
        let caller = self.caller(conn)?;
        let w = Watch::new(raw, token, caller.domid)?;
        let unprivileged = !caller.privileged;
        let domain_watches: usize =
            self.conns.values().filter(|c| c.domid == caller.domid).map(|c| c.watches.len()).sum();
        let limit = usize::try_from(self.quotas.watches_per_domain).unwrap_or(usize::MAX);
        let c = self.conns.get_mut(&conn).ok_or(XsError::Einval)?;
        if c.watches.iter().any(|o| o.abs == w.abs && o.token == w.token) {
            return Err(XsError::Eexist);
        }
        if unprivileged && domain_watches >= limit {
            return Err(XsError::E2big);
        }
        // The first event fires at once, naming the path as the client gave it.
        let mut ev = Vec::from(raw);
        ev.push(0);
        ev.extend_from_slice(token);
        ev.push(0);
        c.watches.push(w);
        self.initial_events.push((conn, ev));
        Ok(Vec::from(ops::OK))
    }

    fn unwatch(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let [raw, token] = args::<2>(payload)?;
        let caller = self.caller(conn)?;
        let w = Watch::new(raw, token, caller.domid)?;
        let c = self.conns.get_mut(&conn).ok_or(XsError::Einval)?;
        let i = c.watches.iter().position(|o| o.abs == w.abs && o.token == w.token).ok_or(XsError::Enoent)?;
        c.watches.remove(i);
        Ok(Vec::from(ops::OK))
    }

    fn transaction_start(&mut self, conn: ConnId, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if tx_id != 0 {
            return Err(XsError::Ebusy);
        }
        let _ = one_arg(payload);
        let limit = usize::try_from(self.quotas.transactions_per_domain).unwrap_or(usize::MAX);
        let c = self.conns.get_mut(&conn).ok_or(XsError::Einval)?;
        if !c.privileged && c.transactions.len() >= limit {
            return Err(XsError::Enospc);
        }
        let mut id = self.next_tx;
        while id == 0 || c.transactions.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_tx = id.wrapping_add(1);
        c.transactions.insert(id, Transaction::new());
        let mut reply = alloc::format!("{id}").into_bytes();
        reply.push(0);
        Ok(reply)
    }

    fn transaction_end(&mut self, conn: ConnId, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let commit = match one_arg(payload)? {
            b"T" => true,
            b"F" => false,
            _ => return Err(XsError::Einval),
        };
        let c = self.conns.get_mut(&conn).ok_or(XsError::Einval)?;
        let tx = c.transactions.remove(&tx_id).ok_or(XsError::Enoent)?;
        if commit {
            let changes = tx.commit(&mut self.tree)?;
            self.changes.extend(changes);
        }
        Ok(Vec::from(ops::OK))
    }
}

/// The single NUL-terminated string of a payload (`EINVAL` otherwise).
pub(crate) fn one_arg(payload: &[u8]) -> Result<&[u8], XsError> {
    let body = payload.strip_suffix(&[0]).ok_or(XsError::Einval)?;
    if body.contains(&0) {
        return Err(XsError::Einval);
    }
    Ok(body)
}

/// The first NUL-terminated string and the rest (WRITE, SET_PERMS).
fn split_first(payload: &[u8]) -> Result<(&[u8], &[u8]), XsError> {
    let i = payload.iter().position(|&b| b == 0).ok_or(XsError::Einval)?;
    Ok((&payload[..i], &payload[i + 1..]))
}

/// Every NUL-terminated string of a payload that ends with a NUL.
pub(crate) fn strings(payload: &[u8]) -> Result<Vec<&[u8]>, XsError> {
    let body = payload.strip_suffix(&[0]).ok_or(XsError::Einval)?;
    Ok(body.split(|&b| b == 0).collect())
}

/// Exactly `N` NUL-terminated strings.
pub(crate) fn args<const N: usize>(payload: &[u8]) -> Result<[&[u8]; N], XsError> {
    <[&[u8]; N]>::try_from(strings(payload)?).map_err(|_| XsError::Einval)
}
