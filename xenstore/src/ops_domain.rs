//! The domain operations (GET_DOMAIN_PATH, INTRODUCE, RELEASE, IS_DOMAIN_INTRODUCED,
//! RESUME, SET_TARGET) and CONTROL. All but GET_DOMAIN_PATH need a privileged connection
//! (else `EACCES`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::path::domain_path;
use crate::perms::{parse_decimal, parse_domid};
use crate::service::{args, one_arg, strings, Action, ConnId, Domain, Xenstore};
use crate::watch::{INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::wire::{DomId, XsError, DOMID_FIRST_RESERVED};

fn ok() -> Result<Vec<u8>, XsError> {
    Ok(Vec::from(&b"OK\0"[..]))
}

/// A domain id that may name a guest: 1 to `DOMID_FIRST_RESERVED - 1`.
fn guest_domid(digits: &[u8]) -> Result<DomId, XsError> {
    let d = parse_domid(digits)?;
    if d == 0 || d >= DOMID_FIRST_RESERVED {
        return Err(XsError::Einval);
    }
    Ok(d)
}

impl Xenstore {
    fn privileged(&self, conn: ConnId) -> Result<(), XsError> {
        if self.caller(conn)?.privileged {
            Ok(())
        } else {
            Err(XsError::Eacces)
        }
    }

    pub(crate) fn get_domain_path(&self, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let mut p = domain_path(parse_domid(one_arg(payload)?)?).into_bytes();
        p.push(0);
        Ok(p)
    }

    pub(crate) fn introduce(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let [d, gfn, port] = args::<3>(payload)?;
        let domid = guest_domid(d)?;
        let gfn = parse_decimal(gfn)?;
        let port = u32::try_from(parse_decimal(port)?).map_err(|_| XsError::Einval)?;
        if self.domains.contains_key(&domid) {
            return Err(XsError::Eexist);
        }
        let c = self.connect(domid, false);
        self.domains.insert(domid, Domain { conn: c, gfn, port, target: None });
        self.actions.push(Action::Introduce { domid, gfn, port, conn: c });
        self.specials.push(INTRODUCE_DOMAIN);
        log::info!("xenstore: domain {domid} introduced (ring gfn {gfn:#x}, event channel {port})");
        ok()
    }

    pub(crate) fn release(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let domid = guest_domid(one_arg(payload)?)?;
        if !self.domain_gone(domid) {
            return Err(XsError::Enoent);
        }
        ok()
    }

    /// Forgets an introduced domain (released, or dead as the hypervisor reports): its
    /// connection goes, `@releaseDomain` fires. Its nodes stay for the toolstack to remove.
    /// Returns whether the domain was introduced.
    pub fn domain_gone(&mut self, domid: DomId) -> bool {
        let Some(d) = self.domains.remove(&domid) else { return false };
        self.disconnect(d.conn);
        self.actions.push(Action::Release { domid, conn: d.conn });
        self.specials.push(RELEASE_DOMAIN);
        log::info!("xenstore: domain {domid} released");
        true
    }

    /// Sends the `@releaseDomain` events of [`Xenstore::domain_gone`] when no request is
    /// being answered (a request's own events go out after its reply).
    pub fn flush_events(&mut self) {
        self.fire_pending();
    }

    pub(crate) fn is_domain_introduced(&self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let domid = parse_domid(one_arg(payload)?)?;
        Ok(Vec::from(if self.domains.contains_key(&domid) { &b"T\0"[..] } else { &b"F\0"[..] }))
    }

    pub(crate) fn resume(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let domid = guest_domid(one_arg(payload)?)?;
        if !self.domains.contains_key(&domid) {
            return Err(XsError::Enoent);
        }
        ok()
    }

    pub(crate) fn set_target(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let [d, t] = args::<2>(payload)?;
        let domid = guest_domid(d)?;
        let target = guest_domid(t)?;
        if !self.domains.contains_key(&target) {
            return Err(XsError::Enoent);
        }
        let d = self.domains.get_mut(&domid).ok_or(XsError::Enoent)?;
        d.target = Some(target);
        ok()
    }

    /// CONTROL: `print <text>` logs the text; `check` answers OK (the store is consistent
    /// by construction); `quota` lists the quotas. Anything else: `EINVAL`.
    pub(crate) fn control(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.privileged(conn)?;
        let parts = strings(payload)?;
        let (cmd, rest) = parts.split_first().ok_or(XsError::Einval)?;
        match *cmd {
            b"print" => {
                let text: Vec<String> = rest.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
                log::info!("xenstore: {}", text.join(" "));
                ok()
            }
            b"check" => ok(),
            b"quota" => {
                let q = self.quotas;
                let mut s = format!(
                    "Quota settings:\nnodes {}\nnode-size {}\nwatches {}\ntransactions {}\nperms {}\n\
                     transaction-nodes {}\noutstanding {}\n",
                    q.entries_per_domain,
                    q.node_size,
                    q.watches_per_domain,
                    q.transactions_per_domain,
                    q.perms_per_node,
                    q.nodes_per_transaction,
                    q.outstanding_requests
                )
                .into_bytes();
                s.push(0);
                Ok(s)
            }
            _ => Err(XsError::Einval),
        }
    }
}
