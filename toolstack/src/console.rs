//! `keelctl console`: the domain's console output goes to the terminal, the terminal's
//! input to the domain, until Ctrl-] (0x1d) is typed, the input ends or the domain goes.

use std::io::Write;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use crate::control::{Control, ControlError, DomId};

/// The byte that leaves the console (Ctrl-]).
pub const ESCAPE: u8 = 0x1d;

/// Runs one console session; `input` delivers what the user types, `idle` waits a little
/// when nothing happened.
pub fn session(
    ctl: &mut dyn Control,
    id: DomId,
    input: &Receiver<Vec<u8>>,
    out: &mut dyn Write,
    idle: &dyn Fn(Duration),
) -> Result<(), ControlError> {
    let io_err = |e: std::io::Error| ControlError::Failed(format!("writing the console: {e}"));
    loop {
        let output = match ctl.console_read(id) {
            Ok(o) => o,
            Err(ControlError::NoSuchDomain(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !output.is_empty() {
            out.write_all(&output).map_err(io_err)?;
            out.flush().map_err(io_err)?;
        }
        match input.try_recv() {
            Ok(bytes) => {
                let (send, leave) = match bytes.iter().position(|&b| b == ESCAPE) {
                    Some(i) => (&bytes[..i], true),
                    None => (&bytes[..], false),
                };
                if !send.is_empty() {
                    ctl.console_write(id, send)?;
                }
                if leave {
                    return Ok(());
                }
            }
            Err(TryRecvError::Disconnected) => {
                // Input ended: show what the domain still prints, then leave.
                let rest = ctl.console_read(id).unwrap_or_default();
                out.write_all(&rest).map_err(io_err)?;
                return Ok(());
            }
            Err(TryRecvError::Empty) if output.is_empty() => idle(Duration::from_millis(10)),
            Err(TryRecvError::Empty) => {}
        }
    }
}
