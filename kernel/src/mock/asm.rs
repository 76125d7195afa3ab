//! An assembler for mock guest programs, with labels for branches.

use super::isa::{Cond, Insn, Op};
use alloc::vec::Vec;

/// A position in the program, bound with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Item {
    Insn(Insn),
    Branch(Cond, u8, u8, Label),
    Jump(Label),
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Item::Insn(i) => i.encoded_len(),
            Item::Branch(..) => Insn::Branch(Cond::Eq, 0, 0, 0).encoded_len(),
            Item::Jump(_) => Insn::Jump(0).encoded_len(),
        }
    }
}

/// A program under construction.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    /// Item index each label is bound to.
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) -> &mut Self {
        self.labels[l.0] = Some(self.items.len());
        self
    }

    /// A new label bound to the next instruction.
    pub fn here(&mut self) -> Label {
        let l = self.label();
        self.bind(l);
        l
    }

    pub fn i(&mut self, insn: Insn) -> &mut Self {
        self.items.push(Item::Insn(insn));
        self
    }

    /// `rd = value`.
    pub fn set(&mut self, rd: u8, value: u64) -> &mut Self {
        self.i(Insn::Set(rd, value))
    }

    /// `rd = ra op rb`.
    pub fn alu(&mut self, op: Op, rd: u8, ra: u8, rb: u8) -> &mut Self {
        self.i(Insn::Alu(op, rd, ra, rb))
    }

    /// `rd = [base + off]`, `width` bytes.
    pub fn load(&mut self, width: u8, rd: u8, base: u8, off: i32) -> &mut Self {
        self.i(Insn::Load { width, rd, base, off })
    }

    /// `[base + off] = rs`, `width` bytes.
    pub fn store(&mut self, width: u8, rs: u8, base: u8, off: i32) -> &mut Self {
        self.i(Insn::Store { width, rs, base, off })
    }

    /// Jumps to `to` if `ra cond rb`.
    pub fn br(&mut self, cond: Cond, ra: u8, rb: u8, to: Label) -> &mut Self {
        self.items.push(Item::Branch(cond, ra, rb, to));
        self
    }

    pub fn jmp(&mut self, to: Label) -> &mut Self {
        self.items.push(Item::Jump(to));
        self
    }

    /// Hypercall `nr` with `args` in `r0..`; clobbers `r0..r4` and `r7`.
    pub fn hypercall(&mut self, nr: u64, args: &[u64]) -> &mut Self {
        for (r, &a) in (0u8..).zip(args) {
            self.set(r, a);
        }
        self.set(7, nr).i(Insn::Hypercall)
    }

    /// The machine code. Panics on a label that was never bound (a bug in the test).
    pub fn assemble(&self) -> Vec<u8> {
        let mut at = Vec::with_capacity(self.items.len() + 1);
        let mut pos = 0usize;
        for item in &self.items {
            at.push(pos);
            pos += item.len();
        }
        at.push(pos);
        let target = |l: Label| at[self.labels[l.0].expect("unbound label")];
        let mut out = Vec::with_capacity(pos);
        for (i, item) in self.items.iter().enumerate() {
            let next = at[i + 1];
            let offset = |to: usize| {
                let d = if to >= next { i32::try_from(to - next) } else { i32::try_from(next - to).map(|d| -d) };
                d.expect("branch within the program")
            };
            let insn = match *item {
                Item::Insn(insn) => insn,
                Item::Branch(c, a, b, l) => Insn::Branch(c, a, b, offset(target(l))),
                Item::Jump(l) => Insn::Jump(offset(target(l))),
            };
            insn.encode(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_resolve_forwards_and_backwards() {
        let mut a = Asm::new();
        let end = a.label();
        let top = a.here();
        a.set(1, 5).br(Cond::Eq, 1, 2, end).jmp(top).bind(end).i(Insn::Halt);
        let code = a.assemble();
        // Set (10) + Branch (8) + Jump (5) + Halt (1).
        assert_eq!(code.len(), 24);
        assert_eq!(Insn::decode(&code[10..18]), Some(Insn::Branch(Cond::Eq, 1, 2, 5)));
        assert_eq!(Insn::decode(&code[18..23]), Some(Insn::Jump(-23)));
    }
}
