use super::token::*;
use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;

/// A version-17 blob around a hand-written structure block and strings block.
fn blob(tokens: &[u32], strings: &[u8]) -> Vec<u8> {
    let structs: Vec<u8> = tokens.iter().flat_map(|t| t.to_be_bytes()).collect();
    let (s_off, str_off) = (56u32, 56 + structs.len() as u32);
    let total = str_off + strings.len() as u32;
    let header = [MAGIC, total, s_off, str_off, 40, 17, 16, 0, strings.len() as u32, structs.len() as u32];
    let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&structs);
    out.extend_from_slice(strings);
    out
}

const ROOT: [u32; 2] = [BEGIN_NODE, 0];
const CHILD: [u32; 2] = [BEGIN_NODE, u32::from_be_bytes(*b"a\0\0\0")];

#[test]
fn accepts_a_minimal_tree() {
    let t = [&ROOT[..], &[PROP, 4, 0, 7], &CHILD, &[END_NODE, END_NODE, END]].concat();
    assert_eq!(validate(&blob(&t, b"x\0")), Ok(()));
}

#[test]
fn refuses_what_the_crate_would_trip_over() {
    let cases: [(&[u32], &[u8], &str); 9] = [
        (&[BEGIN_NODE, 0, END_NODE], b"", "without FDT_END"),
        (&[BEGIN_NODE, 0, END], b"", "1 node(s) open"),
        (&[BEGIN_NODE, 0, END_NODE, END_NODE, END], b"", "unbalanced"),
        (&[BEGIN_NODE, 0, NOP, END_NODE, END], b"", "FDT_NOP"),
        (&[BEGIN_NODE, 0, PROP, 100, 0, END_NODE, END], b"x\0", "run past the block"),
        (&[BEGIN_NODE, 0, PROP, 0, 9, END_NODE, END], b"x\0", "string offset 9"),
        (&[BEGIN_NODE, 0, PROP, 0, 0, PROP, 0, 0, END_NODE, END], b"x\0", "appears twice"),
        (&[BEGIN_NODE, 0, BEGIN_NODE, 0, END_NODE, PROP, 0, 0, END_NODE, END], b"x\0", "after a child node"),
        (&[BEGIN_NODE, 0xff00_0000, END_NODE, END], b"", "not NUL-terminated UTF-8"),
    ];
    for (tokens, strings, want) in cases {
        let e = validate(&blob(tokens, strings)).unwrap_err().to_string();
        assert!(e.contains(want), "{tokens:x?}: {e}");
    }
    let deep: Vec<u32> = (0..=MAX_DEPTH).flat_map(|_| [BEGIN_NODE, 0]).collect();
    assert!(validate(&blob(&deep, b"")).unwrap_err().to_string().contains("deeper"));
    let mut v = blob(&[BEGIN_NODE, 0, END_NODE, END], b"");
    v[23] = 16; // version 16
    assert!(validate(&v).unwrap_err().to_string().contains("version 16"));
}

#[test]
fn same_name_in_sibling_nodes_is_fine() {
    let t = [&ROOT[..], &CHILD, &[PROP, 0, 0, END_NODE], &CHILD, &[PROP, 0, 0, END_NODE, END_NODE, END]].concat();
    assert_eq!(validate(&blob(&t, b"x\0")), Ok(()));
}

#[test]
fn prepare_strips_nops_then_validates() {
    let t = [&[NOP, BEGIN_NODE, 0, NOP, PROP, 4, 0, 7, NOP][..], &CHILD, &[NOP, END_NODE, END_NODE, NOP, END]].concat();
    let mut b = blob(&t, b"x\0");
    let size = prepare(&mut b).unwrap();
    assert_eq!(size, b.len());
    let clean = blob(&[&ROOT[..], &[PROP, 4, 0, 7], &CHILD, &[END_NODE, END_NODE, END]].concat(), b"x\0");
    let h = Header::parse(&b).unwrap();
    let hc = Header::parse(&clean).unwrap();
    assert_eq!(h.structs.len(), hc.structs.len());
    assert_eq!(&b[h.structs], &clean[hc.structs]);
    let tree = fdt::Fdt::new(&b[..size]).unwrap();
    assert!(tree.find_node("/a").is_some());
}

#[test]
fn prepare_refuses_bad_headers() {
    assert_eq!(prepare(&mut [0u8; 10]), Err(DtbError::TooShort(10)));
    let mut b = blob(&[BEGIN_NODE, 0, END_NODE, END], b"");
    b[0] = 0;
    assert!(matches!(prepare(&mut b), Err(DtbError::BadMagic(_))));
    let mut b = blob(&[BEGIN_NODE, 0, END_NODE, END], b"");
    let n = b.len();
    assert!(matches!(prepare(&mut b[..n - 1]), Err(DtbError::BadTotalSize { .. })));
    let first8: [u8; 8] = b[..8].try_into().unwrap();
    assert_eq!(peek_total_size(&first8), Ok(n));
}

#[test]
fn writer_round_trips_through_the_fdt_crate() {
    let mut w = FdtWriter::new();
    w.reserve(0x4800_0000, 0x1000);
    w.begin_node("")
        .prop_u32("#address-cells", 2)
        .prop_u32("#size-cells", 2)
        .prop_strs("compatible", &["keel,guest", "xen,xenvm"]);
    w.begin_node("memory@40000000").prop_str("device_type", "memory").prop_regs("reg", &[(0x4000_0000, 0x800_0000)]);
    w.end_node();
    w.begin_node("chosen").prop_str("bootargs", "keel.test=hypercalls").prop_u64("linux,initrd-start", 0x4400_0000);
    w.end_node();
    w.begin_node("hypervisor")
        .prop_strs("compatible", &["xen,xen-4.19", "xen,xen"])
        .prop_cells("interrupts", &[1, 15, 0xf08]);
    w.prop_empty("flag");
    w.end_node();
    w.end_node();
    let b = w.finish().unwrap();
    assert_eq!(validate(&b), Ok(()));
    let t = fdt::Fdt::new(&b).unwrap();
    assert_eq!(t.chosen().bootargs(), Some("keel.test=hypercalls"));
    let mem = t.memory().regions().next().unwrap();
    assert_eq!((mem.starting_address as u64, mem.size), (0x4000_0000, Some(0x800_0000)));
    let h = t.find_node("/hypervisor").unwrap();
    assert_eq!(h.compatible().unwrap().all().collect::<Vec<_>>(), ["xen,xen-4.19", "xen,xen"]);
    assert_eq!(h.property("interrupts").unwrap().value, &[0, 0, 0, 1, 0, 0, 0, 15, 0, 0, 0xf, 8]);
    assert_eq!(h.property("flag").unwrap().value.len(), 0);
    let r = t.memory_reservations().next().unwrap();
    assert_eq!((r.address() as u64, r.size()), (0x4800_0000, 0x1000));
    let chosen = t.find_node("/chosen").unwrap();
    assert_eq!(chosen.property("linux,initrd-start").unwrap().as_usize(), Some(0x4400_0000));
}

#[test]
fn writer_reports_misuse_instead_of_panicking() {
    let mut w = FdtWriter::new();
    w.begin_node("").begin_node("a").end_node().prop_u32("late", 1).end_node();
    assert_eq!(w.finish(), Err(WriteError::PropertyAfterChild));
    let mut w = FdtWriter::new();
    w.begin_node("").begin_node("a");
    assert_eq!(w.finish(), Err(WriteError::OpenNodes(2)));
    let mut w = FdtWriter::new();
    w.end_node();
    assert_eq!(w.finish(), Err(WriteError::NoOpenNode));
    assert_eq!(FdtWriter::new().finish(), Err(WriteError::Empty));
    let mut w = FdtWriter::new();
    w.begin_node("").end_node().begin_node("").end_node();
    assert_eq!(w.finish(), Err(WriteError::SecondRoot));
    let mut w = FdtWriter::new();
    w.begin_node("").prop("a\0b", &[]).end_node();
    assert_eq!(w.finish(), Err(WriteError::BadName));
}

/// A random tree description: nested nodes with random properties.
#[derive(Clone, Debug)]
struct Node {
    props: Vec<(u8, Vec<u8>)>,
    children: Vec<Node>,
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let props = prop::collection::vec((0u8..6, prop::collection::vec(any::<u8>(), 0..24)), 0..5);
    let leaf = props.clone().prop_map(|props| Node { props, children: Vec::new() });
    leaf.prop_recursive(4, 40, 4, move |inner| {
        (props.clone(), prop::collection::vec(inner, 0..4)).prop_map(|(props, children)| Node { props, children })
    })
}

fn write_node(w: &mut FdtWriter, n: &Node, name: &str) {
    w.begin_node(name);
    let mut seen = Vec::new();
    for (k, v) in &n.props {
        if !seen.contains(k) {
            seen.push(*k);
            w.prop(&alloc::format!("p{k}"), v);
        }
    }
    for (i, c) in n.children.iter().enumerate() {
        write_node(w, c, &alloc::format!("n{i}"));
    }
    w.end_node();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the writer produces is valid and readable.
    #[test]
    fn written_trees_validate(root in node_strategy()) {
        let mut w = FdtWriter::new();
        write_node(&mut w, &root, "");
        let b = w.finish().unwrap();
        prop_assert_eq!(validate(&b), Ok(()));
        let t = fdt::Fdt::new(&b).unwrap();
        prop_assert!(t.all_nodes().count() >= 1);
    }

    /// Mutated trees: prepare never panics, and what it accepts the crate can walk.
    #[test]
    fn prepare_never_panics(root in node_strategy(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut w = FdtWriter::new();
        write_node(&mut w, &root, "");
        let mut b = w.finish().unwrap();
        for (at, byte) in edits {
            let n = b.len();
            b[at % n] = byte;
        }
        if let Ok(size) = prepare(&mut b) {
            let t = fdt::Fdt::new(&b[..size]).unwrap();
            for n in t.all_nodes() {
                for p in n.properties() {
                    let _ = (p.name, p.value.len());
                }
            }
        }
    }
}
