//! `evtchn-ping PORT ROUNDS`: a static Linux program (arm64 or x86_64) for Keel's Linux
//! tests. It binds the static event channel PORT that the domain's configuration set up
//! (`xen,evtchn-v1`) through `/dev/xen/evtchn` (`IOCTL_EVTCHN_BIND_STATIC`, Linux 6.6 and
//! later), then ROUNDS times sends an event and waits for the answer from the other end.
//! It prints `evtchn: port P, sent N, received N, T ns per round trip` and exits 0, or
//! `evtchn: error: ...` and exits 1.
#![no_std]
#![no_main]

#[path = "../out.rs"]
mod out;
#[path = "../start.rs"]
mod start;
#[path = "../sys.rs"]
mod sys;

/// `_IOC(_IOC_NONE, 'E', 4, sizeof(struct ioctl_evtchn_notify))`.
const IOCTL_EVTCHN_NOTIFY: u64 = 0x0004_4504;
/// `_IOC(_IOC_NONE, 'E', 7, sizeof(struct ioctl_evtchn_bind))`.
const IOCTL_EVTCHN_BIND_STATIC: u64 = 0x0004_4507;

/// The program: `args` are its first three command-line arguments.
fn main(args: &[&[u8]; 3]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            out::line(format_args!("evtchn: error: {e}"));
            1
        }
    }
}

/// What went wrong, for the error line.
enum Error {
    Usage,
    Open(sys::Errno),
    Bind(u32, sys::Errno),
    Notify(u32, sys::Errno),
    Read(sys::Errno),
    Unmask(sys::Errno),
    WrongPort { expected: u32, got: u32 },
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Usage => write!(f, "usage: evtchn-ping PORT ROUNDS"),
            Error::Open(e) => write!(f, "cannot open /dev/xen/evtchn (errno {e}): load xen-evtchn.ko first"),
            Error::Bind(p, e) => write!(f, "IOCTL_EVTCHN_BIND_STATIC port {p}: errno {e}"),
            Error::Notify(p, e) => write!(f, "IOCTL_EVTCHN_NOTIFY port {p}: errno {e}"),
            Error::Read(e) => write!(f, "reading /dev/xen/evtchn: errno {e}"),
            Error::Unmask(e) => write!(f, "unmasking through /dev/xen/evtchn: errno {e}"),
            Error::WrongPort { expected, got } => write!(f, "an event on port {got}; only port {expected} is bound"),
        }
    }
}

fn parse(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() {
        return None;
    }
    arg.iter().try_fold(0u32, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u32::from(c - b'0'))
    })
}

fn run(args: &[&[u8]; 3]) -> Result<(), Error> {
    let (Some(port), Some(rounds)) = (parse(args[1]), parse(args[2])) else { return Err(Error::Usage) };
    let fd = sys::open(c"/dev/xen/evtchn", sys::O_RDWR).map_err(Error::Open)?;
    let mut bind = port;
    sys::ioctl_u32(fd, IOCTL_EVTCHN_BIND_STATIC, &mut bind).map_err(|e| Error::Bind(port, e))?;
    out::line(format_args!("evtchn: bound static port {port}"));

    let start = sys::monotonic_ns();
    let mut received = 0u32;
    for _ in 0..rounds {
        let mut notify = port;
        sys::ioctl_u32(fd, IOCTL_EVTCHN_NOTIFY, &mut notify).map_err(|e| Error::Notify(port, e))?;
        // The driver hands over each fired port as a u32 and masks it until written back.
        let mut buf = [0u8; 4];
        let n = sys::read(fd, &mut buf).map_err(Error::Read)?;
        let got = u32::from_ne_bytes(buf);
        if n != 4 || got != port {
            return Err(Error::WrongPort { expected: port, got });
        }
        received += 1;
        sys::write(fd, &buf).map_err(Error::Unmask)?;
    }
    let per = (sys::monotonic_ns() - start) / u64::from(rounds.max(1));
    out::line(format_args!("evtchn: port {port}, sent {rounds}, received {received}, {per} ns per round trip"));
    Ok(())
}
