//! The arithmetic of the read-modify-write instructions the MMIO emulator performs on
//! guest memory, with the status flags an x86 processor computes for them (CF, PF, AF,
//! ZF, SF, OF; the rest of RFLAGS is kept). Operands and results are `size` bytes (1, 2,
//! 4, 8) in the low bits of a `u64`.

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const OF: u64 = 1 << 11;
/// The status flags.
pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

/// The two-operand arithmetic and logic instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
    Test,
}

impl Binary {
    /// Whether the result is written to the destination (CMP and TEST set flags only).
    pub fn writes(self) -> bool {
        !matches!(self, Binary::Cmp | Binary::Test)
    }
}

/// The one-operand instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    Inc,
    Dec,
    Not,
    Neg,
}

/// The bit-test instructions: each copies the bit into CF; all but BT then change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitTest {
    Bt,
    Bts,
    Btr,
    Btc,
}

/// All ones in the low `size` bytes.
pub fn mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn sign_bit(size: u8) -> u64 {
    (mask(size) >> 1) + 1
}

/// ZF, SF and PF of a result (PF: even parity of its low byte).
fn result_flags(r: u64, size: u8) -> u64 {
    let mut f = 0;
    if r & mask(size) == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    if (r & 0xff).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// `a op b` on `size` bytes: the result and the new RFLAGS (from `rflags`, whose CF
/// ADC and SBB consume). Logical operations clear CF, OF and AF.
pub fn binary(op: Binary, size: u8, a: u64, b: u64, rflags: u64) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let carry_in = rflags & CF;
    let sign = sign_bit(size);
    let (r, cf, of, af) = match op {
        Binary::Add | Binary::Adc => {
            let c = if op == Binary::Adc { carry_in } else { 0 };
            let wide = u128::from(a) + u128::from(b) + u128::from(c);
            let r = (wide & u128::from(m)) as u64;
            (r, wide > u128::from(m), (a ^ r) & (b ^ r) & sign != 0, (a ^ b ^ r) & AF)
        }
        Binary::Sub | Binary::Sbb | Binary::Cmp => {
            let c = if op == Binary::Sbb { carry_in } else { 0 };
            let r = a.wrapping_sub(b).wrapping_sub(c) & m;
            (r, u128::from(a) < u128::from(b) + u128::from(c), (a ^ b) & (a ^ r) & sign != 0, (a ^ b ^ r) & AF)
        }
        Binary::And | Binary::Test => (a & b, false, false, 0),
        Binary::Or => (a | b, false, false, 0),
        Binary::Xor => (a ^ b, false, false, 0),
    };
    let flags = (rflags & !STATUS) | if cf { CF } else { 0 } | if of { OF } else { 0 } | af | result_flags(r, size);
    (r, flags)
}

/// `op a` on `size` bytes: the result and the new RFLAGS. INC and DEC keep CF; NOT
/// changes no flag; NEG sets CF unless the operand was 0.
pub fn unary(op: Unary, size: u8, a: u64, rflags: u64) -> (u64, u64) {
    match op {
        Unary::Inc | Unary::Dec => {
            let b = if op == Unary::Inc { Binary::Add } else { Binary::Sub };
            let (r, f) = binary(b, size, a, 1, rflags);
            (r, (f & !CF) | (rflags & CF))
        }
        Unary::Not => (!a & mask(size), rflags),
        Unary::Neg => binary(Binary::Sub, size, 0, a, rflags),
    }
}

/// Bit `bit` (below `8 * size`) of `value`: the new value and the new RFLAGS (CF = the
/// bit before; the other status flags are kept).
pub fn bit_test(op: BitTest, value: u64, bit: u32, rflags: u64) -> (u64, u64) {
    let b = 1u64 << (bit & 63);
    let flags = (rflags & !CF) | if value & b != 0 { CF } else { 0 };
    let value = match op {
        BitTest::Bt => value,
        BitTest::Bts => value | b,
        BitTest::Btr => value & !b,
        BitTest::Btc => value ^ b,
    };
    (value, flags)
}

/// What CMPXCHG does besides setting the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchanged {
    /// The accumulator equalled memory: this value is stored to memory.
    Stored(u64),
    /// It did not: memory's value is loaded into the accumulator.
    Loaded(u64),
}

/// CMPXCHG of `memory` with `accumulator` and `new` on `size` bytes: what it writes
/// and the new RFLAGS (those of `cmp accumulator, memory`).
pub fn compare_exchange(size: u8, memory: u64, accumulator: u64, new: u64, rflags: u64) -> (Exchanged, u64) {
    let m = mask(size);
    let (_, flags) = binary(Binary::Cmp, size, accumulator, memory, rflags);
    if (memory ^ accumulator) & m == 0 {
        (Exchanged::Stored(new & m), flags)
    } else {
        (Exchanged::Loaded(memory & m), flags)
    }
}

/// The condition codes of SETcc (and Jcc, CMOVcc), in encoding order (`0f 90+cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    O,
    No,
    B,
    Ae,
    E,
    Ne,
    Be,
    A,
    S,
    Ns,
    P,
    Np,
    L,
    Ge,
    Le,
    G,
}

impl Condition {
    /// Whether the condition holds for `rflags`.
    pub fn holds(self, rflags: u64) -> bool {
        let flag = |f: u64| rflags & f != 0;
        let less = flag(SF) != flag(OF);
        match self {
            Condition::O => flag(OF),
            Condition::No => !flag(OF),
            Condition::B => flag(CF),
            Condition::Ae => !flag(CF),
            Condition::E => flag(ZF),
            Condition::Ne => !flag(ZF),
            Condition::Be => flag(CF) || flag(ZF),
            Condition::A => !flag(CF) && !flag(ZF),
            Condition::S => flag(SF),
            Condition::Ns => !flag(SF),
            Condition::P => flag(PF),
            Condition::Np => !flag(PF),
            Condition::L => less,
            Condition::Ge => !less,
            Condition::Le => less || flag(ZF),
            Condition::G => !less && !flag(ZF),
        }
    }
}

/// CMPXCHG8B (`half` 4) or CMPXCHG16B (`half` 8): `memory` (low, high halves) compared
/// with the accumulator pair `rdx:rax`. Equal: `rcx:rbx` is stored and ZF set; not
/// equal: memory is loaded into `rdx:rax` and ZF cleared. The other flags are kept.
pub fn compare_exchange_double(
    half: u8,
    memory: (u64, u64),
    accumulator: (u64, u64),
    new: (u64, u64),
    rflags: u64,
) -> (Exchanged2, u64) {
    let m = mask(half);
    let equal = (memory.0 ^ accumulator.0) & m == 0 && (memory.1 ^ accumulator.1) & m == 0;
    if equal {
        (Exchanged2::Stored(new.0 & m, new.1 & m), rflags | ZF)
    } else {
        (Exchanged2::Loaded(memory.0 & m, memory.1 & m), rflags & !ZF)
    }
}

/// What CMPXCHG8B/16B does with its (low, high) halves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchanged2 {
    /// Stored to memory.
    Stored(u64, u64),
    /// Loaded into RAX and RDX.
    Loaded(u64, u64),
}
