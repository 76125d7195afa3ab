//! Host interrupts passed through to domains: which live domain receives each, so the
//! CPU that takes one knows where to forward it. An interrupt is routed to at most one
//! domain; a domain's routes go when it is destroyed.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use keel_abi::xen::DomId;

/// The routes, by host interrupt number.
#[derive(Debug, Default)]
pub struct IrqRoutes {
    by_irq: BTreeMap<u32, DomId>,
}

impl IrqRoutes {
    pub const fn new() -> Self {
        IrqRoutes { by_irq: BTreeMap::new() }
    }

    /// Routes every interrupt of `irqs` to `domain`, or none of them: an interrupt
    /// already routed to another domain refuses the lot, named. Routing one to its own
    /// domain again changes nothing.
    pub fn add(&mut self, domain: DomId, irqs: &[u32]) -> Result<(), String> {
        if let Some((irq, owner)) =
            irqs.iter().find_map(|i| self.by_irq.get(i).filter(|&&o| o != domain).map(|&o| (*i, o)))
        {
            return Err(format!("host interrupt {irq} is routed to domain {owner}"));
        }
        for &irq in irqs {
            self.by_irq.insert(irq, domain);
        }
        Ok(())
    }

    /// Removes every route to `domain`; returns the interrupts it had, ascending.
    pub fn remove(&mut self, domain: DomId) -> Vec<u32> {
        let gone: Vec<u32> = self.by_irq.iter().filter(|(_, &d)| d == domain).map(|(&i, _)| i).collect();
        for irq in &gone {
            self.by_irq.remove(irq);
        }
        gone
    }

    /// The domain host interrupt `irq` is routed to.
    pub fn owner(&self, irq: u32) -> Option<DomId> {
        self.by_irq.get(&irq).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_has_one_domain_until_it_is_removed() {
        let mut r = IrqRoutes::new();
        r.add(1, &[79, 78]).unwrap();
        assert_eq!(r.owner(79), Some(1));
        assert_eq!(r.add(2, &[40, 78]), Err(String::from("host interrupt 78 is routed to domain 1")));
        assert_eq!(r.owner(40), None, "all or nothing");
        r.add(1, &[79]).unwrap();
        assert_eq!(r.remove(1), [78, 79]);
        assert_eq!(r.owner(79), None);
        r.add(2, &[78]).unwrap();
        assert_eq!(r.owner(78), Some(2));
        assert!(r.remove(1).is_empty());
    }
}
