//! Requests the service makes of its own store through a privileged connection: the
//! basic nodes of a domain, as Xen's toolstack writes them when it builds a domain
//! (libxl `libxl__domain_make`, `init-dom0less`), and `XS_INTRODUCE`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::xen::DomId;
use keel_xenstore::wire::HEADER_LEN;
use keel_xenstore::{ConnId, Header, MsgType, Xenstore};

/// Sends one request on `conn` and takes its reply: the payload, or the error name.
pub fn request(xs: &mut Xenstore, conn: ConnId, ty: MsgType, payload: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(payload.len()).map_err(|_| String::from("E2BIG"))?;
    xs.handle(conn, Header { ty: ty as u32, req_id: 0, tx_id: 0, len }, payload);
    let mut out = Vec::new();
    while let Some(bytes) = xs.pending_output(conn) {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        out.extend_from_slice(bytes);
        xs.consume_output(conn, n);
    }
    let Some(head) = out.get(..HEADER_LEN).and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()) else {
        return Err(String::from("no reply"));
    };
    let h = Header::decode(head);
    let body = out.get(HEADER_LEN..).unwrap_or(&[]).to_vec();
    if h.ty == MsgType::Error as u32 {
        return Err(String::from_utf8_lossy(body.split(|&b| b == 0).next().unwrap_or(&[])).into_owned());
    }
    Ok(body)
}

fn write(xs: &mut Xenstore, conn: ConnId, path: &str, value: &str) -> Result<(), String> {
    let mut p = Vec::from(path.as_bytes());
    p.push(0);
    p.extend_from_slice(value.as_bytes());
    request(xs, conn, MsgType::Write, &p).map(|_| ()).map_err(|e| format!("write {path}: {e}"))
}

fn set_perms(xs: &mut Xenstore, conn: ConnId, path: &str, perms: &[String]) -> Result<(), String> {
    let mut p = Vec::from(path.as_bytes());
    p.push(0);
    for perm in perms {
        p.extend_from_slice(perm.as_bytes());
        p.push(0);
    }
    request(xs, conn, MsgType::SetPerms, &p).map(|_| ()).map_err(|e| format!("set_perms {path}: {e}"))
}

/// At most this many `cpu/<n>` nodes (Keel's vCPU limit per domain is far below it).
const MAX_VCPU_NODES: u32 = 128;

/// What a domain's basic nodes say.
pub struct Basics<'a> {
    pub domid: DomId,
    pub name: &'a str,
    pub max_kib: u64,
    pub vcpus: u32,
}

/// Writes `/local/domain/<id>` and `/vm/<uuid>` for `d`: the domain may read its
/// directory and `domid`, `name`, `vm`, `memory/*`, `cpu/*/availability`, `control`; it owns `device`, `data`,
/// `drivers`, `feature`, `attr`, `error`, `control/shutdown`, `control/feature-poweroff`,
/// `-reboot`, `-suspend` and `control/sysrq` (writes anywhere else are `EACCES`).
pub fn write_basics(xs: &mut Xenstore, conn: ConnId, d: &Basics<'_>) -> Result<(), String> {
    let id = d.domid;
    let base = format!("/local/domain/{id}");
    let uuid = format!("00000000-0000-0000-0000-{id:012x}");
    let vm = format!("/vm/{uuid}");
    let read_only = [String::from("n0"), format!("r{id}")];
    let owned = [format!("n{id}")];
    write(xs, conn, &base, "")?;
    set_perms(xs, conn, &base, &read_only)?;
    write(xs, conn, &vm, "")?;
    set_perms(xs, conn, &vm, &read_only)?;
    write(xs, conn, &format!("{vm}/uuid"), &uuid)?;
    write(xs, conn, &format!("{vm}/name"), d.name)?;
    // Linux's xen cpu_hotplug reads `cpu/<n>/availability` of each vCPU at boot, as libxl
    // writes it.
    for n in 0..d.vcpus.min(MAX_VCPU_NODES) {
        write(xs, conn, &format!("{base}/cpu/{n}/availability"), "online")?;
    }
    for (key, value) in [
        ("domid", format!("{id}")),
        ("name", String::from(d.name)),
        ("vm", vm.clone()),
        ("memory/static-max", format!("{}", d.max_kib)),
        ("memory/target", format!("{}", d.max_kib)),
        ("control", String::new()),
    ] {
        write(xs, conn, &format!("{base}/{key}"), &value)?;
    }
    // libxl makes `control/shutdown`, the `control/feature-*` nodes a guest writes to say
    // what it obeys (stock Linux writes them when its xenbus comes up), and `control/sysrq`
    // the domain's.
    for key in [
        "device",
        "data",
        "drivers",
        "feature",
        "attr",
        "error",
        "control/shutdown",
        "control/feature-poweroff",
        "control/feature-reboot",
        "control/feature-suspend",
        "control/sysrq",
    ] {
        let path = format!("{base}/{key}");
        write(xs, conn, &path, "")?;
        set_perms(xs, conn, &path, &owned)?;
    }
    Ok(())
}

/// `XS_INTRODUCE domid gfn port` on the service's own connection.
pub fn introduce(xs: &mut Xenstore, conn: ConnId, domid: DomId, gfn: u64, port: u32) -> Result<(), String> {
    let p = format!("{domid}\0{gfn}\0{port}\0");
    request(xs, conn, MsgType::Introduce, p.as_bytes()).map(|_| ()).map_err(|e| format!("introduce d{domid}: {e}"))
}
