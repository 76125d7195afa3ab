//! Hardware task switches (a task gate, `call`/`jmp` to a TSS, `iret` with EFLAGS.NT),
//! which VMX and SVM both hand to the hypervisor. Keel does not perform them (Xen's
//! `hvm_task_switch` does): it refuses each with the fault a processor gives for a task
//! switch it cannot complete, #GP with the TSS selector as the error code (EXT set when
//! an external event or exception, not an `int n`, went through a task gate), and the
//! guest goes on at its handler. A refusal while the processor delivers a contributory
//! exception or #PF becomes #DF, and one while it delivers #DF a triple fault, as for
//! any #GP at those moments. Only 32-bit protected mode has task switches; a 64-bit
//! guest never makes one (long mode raises #GP itself).

/// The event whose delivery went through a task gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivering {
    pub vector: u8,
    /// VMX's and SVM's event type (bits 10:8 of the vectoring information): 0 external
    /// interrupt, 2 NMI, 3 hardware exception, 4 software interrupt, 5 privileged
    /// software exception, 6 software exception.
    pub kind: u8,
}

const GP: u8 = 13;
const DF: u8 = 8;
const KIND_HARDWARE_EXCEPTION: u8 = 3;
const KIND_SOFTWARE_INTERRUPT: u8 = 4;
const KIND_SOFTWARE_EXCEPTION: u8 = 6;
/// Error-code bit: the fault came from delivering an external event.
const EXT: u32 = 1;

/// The exception (vector, error code) that refuses a task switch to TSS `selector`;
/// `None`: the guest triple faults.
pub fn refusal(selector: u16, delivering: Option<Delivering>) -> Option<(u8, u32)> {
    let Some(event) = delivering else { return Some((GP, u32::from(selector & 0xfffc))) };
    let external = !matches!(event.kind, KIND_SOFTWARE_INTERRUPT | KIND_SOFTWARE_EXCEPTION);
    let error = u32::from(selector & 0xfffc) | if external { EXT } else { 0 };
    if event.kind != KIND_HARDWARE_EXCEPTION {
        return Some((GP, error));
    }
    match event.vector {
        DF => None,
        // #DE, #TS, #NP, #SS, #GP (contributory) and #PF, then #GP: a double fault.
        0 | 10..=14 => Some((DF, 0)),
        _ => Some((GP, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_get_gp_with_the_selector() {
        assert_eq!(refusal(0x2b, None), Some((GP, 0x28)));
    }

    #[test]
    fn gates_say_whether_the_event_was_external() {
        let int_n = Delivering { vector: 0x80, kind: KIND_SOFTWARE_INTERRUPT };
        assert_eq!(refusal(0x28, Some(int_n)), Some((GP, 0x28)));
        let irq = Delivering { vector: 0x30, kind: 0 };
        assert_eq!(refusal(0x28, Some(irq)), Some((GP, 0x29)));
        let ud = Delivering { vector: 6, kind: KIND_HARDWARE_EXCEPTION };
        assert_eq!(refusal(0x28, Some(ud)), Some((GP, 0x29)));
    }

    #[test]
    fn faults_while_delivering_faults_escalate() {
        let gp = Delivering { vector: GP, kind: KIND_HARDWARE_EXCEPTION };
        assert_eq!(refusal(0x28, Some(gp)), Some((DF, 0)));
        let pf = Delivering { vector: 14, kind: KIND_HARDWARE_EXCEPTION };
        assert_eq!(refusal(0x28, Some(pf)), Some((DF, 0)));
        let df = Delivering { vector: DF, kind: KIND_HARDWARE_EXCEPTION };
        assert_eq!(refusal(0x28, Some(df)), None);
    }
}
