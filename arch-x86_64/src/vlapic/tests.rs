use super::*;

fn x2apic(id: u32) -> (Vlapic, Irr) {
    let (mut l, irr) = (Vlapic::new(id), Irr::new());
    let base = l.base();
    assert!(l.write_base(base | BASE_X2APIC, &irr));
    (l, irr)
}

#[test]
fn apic_base_transitions() {
    let (mut l, irr) = (Vlapic::new(0), Irr::new());
    assert_eq!(l.base(), 0xfee0_0900);
    assert_eq!(l.read(&irr, reg::ID, 0), None, "x2APIC registers need x2APIC mode");
    assert!(!l.write_base(0xfed0_0900, &irr), "the base cannot move");
    assert!(!l.write_base(0xfee0_0800, &irr), "the BSP bit is read-only");
    assert!(!l.write_base(0xfee0_0500, &irr), "x2APIC without enable");
    assert!(l.write_base(0xfee0_0d00, &irr));
    assert!(!l.write_base(0xfee0_0900, &irr), "x2APIC → xAPIC");
    assert!(l.write_base(0xfee0_0100, &irr), "x2APIC → disabled");
    assert!(!irr.raise(0x40), "a disabled APIC accepts nothing");
    assert!(!l.write_base(0xfee0_0d00, &irr), "disabled → x2APIC");
    assert!(l.write_base(0xfee0_0900, &irr));
}

#[test]
fn identity_registers() {
    let (l, irr) = x2apic(19);
    assert_eq!(l.read(&irr, reg::ID, 0), Some(19));
    assert_eq!(l.read(&irr, reg::VERSION, 0), Some(0x0006_0014));
    assert_eq!(l.read(&irr, reg::LDR, 0), Some(1 << 16 | 1 << 3));
    assert_eq!(l.read(&irr, reg::SVR, 0), Some(0xff));
    assert_eq!(l.read(&irr, reg::LVT_LINT0, 0), Some(LVT_MASKED as u64));
    assert_eq!(l.read(&irr, 0x801, 0), None, "reserved");
}

#[test]
fn delivery_follows_priority() {
    let (mut l, irr) = x2apic(0);
    irr.raise(0x51);
    assert_eq!(l.deliverable(&irr), None, "software-disabled: held");
    l.write(&irr, reg::SVR, 0x1ff, 0).unwrap();
    assert_eq!(l.deliverable(&irr), Some(0x51));
    l.write(&irr, reg::TPR, 0x50, 0).unwrap();
    assert_eq!(l.deliverable(&irr), None, "same class as the TPR");
    l.write(&irr, reg::TPR, 0x4f, 0).unwrap();
    l.accept(&irr, 0x51);
    assert_eq!(l.read(&irr, reg::ISR0 + 2, 0), Some(1 << 0x11));
    assert_eq!(l.ppr(), 0x50);
    irr.raise(0x52);
    irr.raise(0x93);
    assert_eq!(l.deliverable(&irr), Some(0x93));
    l.accept(&irr, 0x93);
    assert_eq!(l.deliverable(&irr), None, "0x52 is below the 0x90 in service");
    assert_eq!(l.write(&irr, reg::EOI, 0, 0).map(|e| e.eoi), Some(Some(0x93)));
    assert_eq!(l.deliverable(&irr), None, "0x52 is in the class of 0x51, in service");
    assert_eq!(l.write(&irr, reg::EOI, 0, 0).map(|e| e.eoi), Some(Some(0x51)));
    assert_eq!(l.deliverable(&irr), Some(0x52));
    assert_eq!(l.write(&irr, reg::EOI, 1, 0), None, "EOI of a non-zero value");
    assert_eq!(l.read(&irr, reg::IRR0 + 2, 0), Some(1 << 0x12));
}

#[test]
fn ipis_self_ipis_and_errors() {
    let (mut l, irr) = x2apic(2);
    l.write(&irr, reg::SVR, 0x1ff, 0).unwrap();
    let fx = l.write(&irr, reg::ICR, 5 << 32 | 1 << 14 | 0xf3, 0).unwrap();
    let ipi = fx.ipi.unwrap();
    assert_eq!((ipi.vector, ipi.destination), (0xf3, 5));
    assert_eq!(l.write(&irr, reg::ICR, 5 << 32 | 1 << 14 | 0x0f, 0).unwrap().ipi, None, "illegal vector");
    l.write(&irr, reg::ESR, 0, 0).unwrap();
    assert_eq!(l.read(&irr, reg::ESR, 0), Some(ESR_SEND_ILLEGAL as u64));
    l.write(&irr, reg::SELF_IPI, 0x61, 0).unwrap();
    assert!(irr.contains(0x61));
    assert_eq!(l.write(&irr, reg::SELF_IPI, 0x161, 0), None);
    assert_eq!(l.write(&irr, reg::PPR, 0, 0), None, "read-only");
}

#[test]
fn timer_through_the_registers() {
    let (mut l, irr) = x2apic(0);
    l.write(&irr, reg::LVT_TIMER, 0x40, 0).unwrap();
    assert_eq!(l.read(&irr, reg::LVT_TIMER, 0), Some(0x1_0040), "masked while the APIC is disabled");
    l.write(&irr, reg::SVR, 0x1ff, 0).unwrap();
    l.write(&irr, reg::LVT_TIMER, 1 << 17 | 0x40, 0).unwrap();
    l.write(&irr, reg::TIMER_DIVIDE, 0b1011, 0).unwrap();
    assert!(l.write(&irr, reg::TIMER_INITIAL, 1000, 500).unwrap().timer);
    assert_eq!(l.timer.deadline(), Some(1500));
    assert_eq!(l.read(&irr, reg::TIMER_CURRENT, 900), Some(600));
    assert!(!l.tick(&irr, 1499));
    assert!(l.tick(&irr, 1500), "periodic: the deadline moves on");
    assert!(irr.contains(0x40));
    assert_eq!(l.timer.deadline(), Some(2500));
    l.write(&irr, reg::LVT_TIMER, 2 << 17 | 0x41, 0).unwrap();
    l.write(&irr, reg::TSC_DEADLINE, 9000, 0).unwrap();
    assert_eq!(l.read(&irr, reg::TSC_DEADLINE, 0), Some(9000));
    assert!(l.tick(&irr, 9001));
    assert!(irr.contains(0x41));
    assert_eq!(l.read(&irr, reg::TSC_DEADLINE, 0), Some(0));
}

#[test]
fn published_state_says_whether_a_halt_ends() {
    let (mut l, irr) = x2apic(0);
    let shared = Shared::new();
    l.publish(&shared);
    shared.irr.raise(0x80);
    assert!(!shared.pending(0), "the APIC is disabled by software");
    l.write(&irr, reg::SVR, 0x1ff, 0).unwrap();
    l.write(&irr, reg::TPR, 0x90, 0).unwrap();
    l.publish(&shared);
    assert!(!shared.pending(0), "masked by the task priority");
    l.write(&irr, reg::TPR, 0x70, 0).unwrap();
    l.publish(&shared);
    assert!(shared.pending(0));
    let quiet = Shared::new();
    l.write(&irr, reg::LVT_TIMER, 2 << 17 | 0x41, 0).unwrap();
    l.write(&irr, reg::TSC_DEADLINE, 500, 0).unwrap();
    l.publish(&quiet);
    assert!(!quiet.pending(499) && quiet.pending(500), "the timer is due");
}

#[test]
fn the_xapic_page_serves_the_registers_in_xapic_mode_only() {
    let irr = Irr::new();
    let mut l = Vlapic::new(3);
    assert_eq!(l.xapic_page(), Some(0xfee0_0000));
    assert_eq!(l.mmio_read(&irr, 0x20, 4, 0), 3 << 24);
    assert_eq!(l.mmio_read(&irr, 0x30, 4, 0), 0x0006_0014);
    assert_eq!(l.mmio_read(&irr, 0x23, 1, 0), 3);
    assert_eq!(l.mmio_read(&irr, 0x24, 4, 0), 0);
    assert_eq!(l.mmio_read(&irr, 0xe0, 4, 0), 0xffff_ffff);
    // Software enable through the SVR, then the TPR.
    assert!(l.mmio_write(&irr, 0xf0, 4, 0x1ff, 0).is_some());
    assert_eq!(l.mmio_read(&irr, 0xf0, 4, 0), 0x1ff);
    l.mmio_write(&irr, 0x80, 4, 0x20, 0);
    assert_eq!(l.tpr(), 0x20);
    // Misaligned or narrow writes and read-only registers are dropped.
    assert!(l.mmio_write(&irr, 0x81, 4, 0x30, 0).is_none());
    assert!(l.mmio_write(&irr, 0x80, 2, 0x30, 0).is_none());
    assert!(l.mmio_write(&irr, 0x30, 4, 0, 0).is_none());
    assert_eq!(l.tpr(), 0x20);
    // An IPI: destination from the high half, sent by the low half's write.
    l.mmio_write(&irr, 0x310, 4, 0x0200_0000, 0);
    let (index, fx) = l.mmio_write(&irr, 0x300, 4, 0x4041, 0).unwrap();
    assert_eq!(index, reg::ICR);
    let ipi = fx.ipi.unwrap();
    assert_eq!((ipi.vector, ipi.destination), (0x41, 2));
    assert_eq!(l.mmio_read(&irr, 0x300, 4, 0), 0x4041);
    // Physical broadcast 0xff becomes x2APIC's 0xffffffff.
    l.mmio_write(&irr, 0x310, 4, 0xff00_0000, 0);
    let (_, fx) = l.mmio_write(&irr, 0x300, 4, 0x4042, 0).unwrap();
    assert_eq!(fx.ipi.unwrap().destination, 0xffff_ffff);
    // In x2APIC mode the page is not the APIC's.
    assert!(l.write_base(BASE_ADDRESS | BASE_ENABLE | BASE_X2APIC, &irr));
    assert_eq!(l.xapic_page(), None);
}
