//! The interrupt command register in x2APIC mode (Intel SDM vol. 3, 11.6.1 and 11.12.9):
//! which vCPUs an IPI reaches.

/// ICR delivery modes (bits 10:8).
pub const DELIVERY_FIXED: u8 = 0;
pub const DELIVERY_LOWEST: u8 = 1;
pub const DELIVERY_SMI: u8 = 2;
pub const DELIVERY_NMI: u8 = 4;
pub const DELIVERY_INIT: u8 = 5;
pub const DELIVERY_STARTUP: u8 = 6;
/// The broadcast destination in x2APIC physical mode.
const BROADCAST: u32 = 0xffff_ffff;
const LEVEL_ASSERT: u64 = 1 << 14;

/// A decoded ICR write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icr {
    pub vector: u8,
    pub delivery: u8,
    pub logical: bool,
    /// INIT de-assert (level 0, trigger level) is a no-op for a modern local APIC.
    pub deassert: bool,
    /// 0 none, 1 self, 2 all including self, 3 all excluding self.
    pub shorthand: u8,
    pub destination: u32,
}

impl Icr {
    pub fn decode(v: u64) -> Icr {
        Icr {
            vector: v as u8,
            delivery: ((v >> 8) & 7) as u8,
            logical: v & (1 << 11) != 0,
            deassert: v & LEVEL_ASSERT == 0 && v & (1 << 15) != 0,
            shorthand: ((v >> 18) & 3) as u8,
            destination: (v >> 32) as u32,
        }
    }
}

/// The x2APIC logical id of APIC id `id`: cluster in bits 31:16, one bit of 16.
pub fn logical_id(id: u32) -> u32 {
    (id >> 4) << 16 | 1 << (id & 0xf)
}

/// The vCPUs (APIC id = vCPU id, `0..vcpus`) the IPI reaches, sent by `sender`.
pub fn targets(icr: &Icr, sender: u32, vcpus: u32) -> impl Iterator<Item = u32> + '_ {
    let icr = *icr;
    (0..vcpus).filter(move |&id| match icr.shorthand {
        1 => id == sender,
        2 => true,
        3 => id != sender,
        _ if icr.logical => {
            let l = logical_id(id);
            l >> 16 == icr.destination >> 16 && l & icr.destination & 0xffff != 0
        }
        _ => icr.destination == BROADCAST || icr.destination == id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn to(icr: u64, sender: u32) -> Vec<u32> {
        targets(&Icr::decode(icr), sender, 20).collect()
    }

    #[test]
    fn destinations() {
        let fixed = |dest: u64| dest << 32 | LEVEL_ASSERT | 0xf3;
        assert_eq!(to(fixed(3), 0), [3]);
        assert_eq!(to(fixed(30), 0), Vec::<u32>::new());
        assert_eq!(to(fixed(0xffff_ffff), 0).len(), 20);
        assert_eq!(to(1 << 18 | 0xf3, 7), [7], "self");
        assert_eq!(to(2 << 18 | 0xf3, 7).len(), 20, "all including self");
        assert!(!to(3 << 18 | 0xf3, 7).contains(&7), "all excluding self");
        // Logical: cluster 1, members 0 and 2 are APIC ids 16 and 18.
        assert_eq!(to(1 << 11 | (1 << 16 | 0b101) << 32 | 0xf3, 0), [16, 18]);
        assert_eq!(logical_id(18), 1 << 16 | 1 << 2);
        let init = Icr::decode(5 << 8 | LEVEL_ASSERT | 1 << 15 | 2 << 32);
        assert_eq!((init.delivery, init.deassert, init.destination), (DELIVERY_INIT, false, 2));
        assert!(Icr::decode(5 << 8 | 1 << 15).deassert);
    }
}
