//! What the xenstore domain asks Keel's control interface (`docs/control-abi.md`): the
//! live domains, their names and states, and their store page and port.

use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::control::*;
use keel_abi::xen::DomId;
use keel_abi::Wire;
use keel_test_guest::hcall::Hv;
use keel_test_guest::Platform;

/// One live domain as the service sees it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub domid: DomId,
    pub name: String,
    pub state: u8,
    pub caps: u32,
    pub max_pages: u64,
    pub vcpus: u32,
}

impl Listed {
    /// Whether the domain is on its way out (its connection is to be released).
    pub fn ending(&self) -> bool {
        matches!(self.state, CTL_STATE_SHUTDOWN | CTL_STATE_CRASHED | CTL_STATE_DYING)
    }
}

fn ctl<P: Platform, T: Wire>(p: &P, cmd: u32, s: &mut T) -> i64 {
    Hv(p).with(KEEL_CONTROL_OP, u64::from(cmd), s)
}

fn name_of(info: &CtlDomainInfo) -> String {
    let n = info.name.iter().position(|&b| b == 0).unwrap_or(info.name.len());
    String::from_utf8_lossy(&info.name[..n]).into_owned()
}

/// Every live domain, in id order; `Err` with Keel's result if the list is refused.
pub fn list<P: Platform>(p: &P) -> Result<Vec<Listed>, i64> {
    let mut out = Vec::new();
    let mut buf = alloc::vec![0u8; CtlDomainInfo::SIZE * CTL_LIST_MAX as usize];
    let mut start: u16 = 0;
    loop {
        let mut l =
            CtlList { start_domid: start, _pad: [0; 2], max_entries: CTL_LIST_MAX, buffer: buf.as_mut_ptr() as u64 };
        let n = ctl(p, CTL_LIST, &mut l);
        if n < 0 {
            return Err(n);
        }
        let n = usize::try_from(n).unwrap_or(0).min(CTL_LIST_MAX as usize);
        for chunk in buf.chunks(CtlDomainInfo::SIZE).take(n) {
            let Some(i) = CtlDomainInfo::from_bytes(chunk) else { continue };
            out.push(Listed {
                domid: i.domid,
                name: name_of(&i),
                state: i.state,
                caps: i.caps,
                max_pages: i.max_pages,
                vcpus: i.vcpus,
            });
        }
        match out.last() {
            Some(last) if n == CTL_LIST_MAX as usize && last.domid < u16::MAX => start = last.domid + 1,
            _ => return Ok(out),
        }
    }
}

/// `domid`'s store frame and port (`CTL_STORE_INFO`): `None` if it has no store page.
pub fn store_info<P: Platform>(p: &P, domid: DomId) -> Option<(u64, u32)> {
    let mut s = CtlStore { domid, _pad: [0; 2], evtchn: 0, gfn: 0 };
    if ctl(p, CTL_STORE_INFO, &mut s) != 0 || s.gfn == 0 || s.gfn == u64::MAX {
        return None;
    }
    Some((s.gfn, s.evtchn))
}
