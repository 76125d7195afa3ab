//! No input makes the parser panic: random bytes, mutated real trees, and random trees
//! built from the binding's vocabulary. Every domain the parser accepts obeys the limits.

use super::builder::Dtb;
use super::examples::limits;
use crate::config::{parse, DomainSet};
use alloc::vec::Vec;
use proptest::prelude::*;

const SEEDS: [&[u8]; 4] = [
    include_bytes!("../../../../dts/two-domains.dtb"),
    include_bytes!("../../../../dts/dom0less-single.dtb"),
    include_bytes!("../../../../dts/guest-loader.dtb"),
    include_bytes!("qemu-virt-guest-loader.dtb"),
];

/// What any accepted domain must satisfy.
fn check(set: &DomainSet) {
    let l = limits();
    let mut regions = Vec::new();
    for d in set.valid() {
        assert!((1..=l.max_vcpus).contains(&d.vcpus), "{d:?}");
        assert!(d.memory_kib > 0 && d.memory_kib <= l.max_memory_kib && d.memory_kib % 4 == 0, "{d:?}");
        if let Some(banks) = &d.direct_map {
            assert_eq!(banks.iter().map(|b| b.size()).sum::<u64>(), d.memory_kib * 1024, "{d:?}");
            for b in banks {
                assert!(l.ram.iter().any(|ram| ram.start <= b.start && b.end <= ram.end), "{d:?}");
                assert!(regions.iter().all(|o: &crate::mm::Region| b.end <= o.start || o.end <= b.start), "{d:?}");
                regions.push(*b);
            }
        }
        for m in d.modules() {
            let r = m.region;
            assert!(r.start < r.end, "{m:?}");
            assert!(l.ram.iter().any(|ram| ram.start <= r.start && r.end <= ram.end), "{m:?}");
            assert!(regions.iter().all(|o: &crate::mm::Region| r.end <= o.start || o.end <= r.start), "{m:?} overlaps");
            regions.push(r);
        }
    }
}

/// Overwrites, truncates, or inserts/deletes words in a valid tree.
#[derive(Clone, Debug)]
enum Mutation {
    Byte(usize, u8),
    Word(usize, u32),
    Truncate(usize),
    Insert(usize, u32),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (any::<usize>(), prop_oneof![0u32..16, any::<u32>()]).prop_map(|(i, w)| Mutation::Word(i, w)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u32..16).prop_map(|(i, w)| Mutation::Insert(i, w)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn apply(mut v: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if v.is_empty() {
        return v;
    }
    let n = v.len();
    match *m {
        Mutation::Byte(i, b) => v[i % n] = b,
        Mutation::Word(i, w) => {
            let at = (i % n) & !3;
            if at + 4 <= v.len() {
                v[at..at + 4].copy_from_slice(&w.to_be_bytes());
            }
        }
        Mutation::Truncate(i) => v.truncate(i % n),
        Mutation::Insert(i, w) => {
            let at = (i % n) & !3;
            v.splice(at..at, w.to_be_bytes());
        }
        Mutation::Delete(i) => {
            let at = (i % n) & !3;
            v.drain(at..(at + 4).min(v.len()));
        }
    }
    v
}

const COMPATIBLES: [&str; 10] = [
    "xen,domain",
    "multiboot,module",
    "multiboot,kernel",
    "multiboot,ramdisk",
    "multiboot,device-tree",
    "xen,linux-zimage",
    "xen,multiboot-module",
    "xen,vcpu",
    "xen,evtchn-v1",
    "other",
];

const PROPS: [&str; 18] = [
    "memory",
    "cpus",
    "reg",
    "bootargs",
    "vpl011",
    "capabilities",
    "xen,enhanced",
    "#address-cells",
    "#size-cells",
    "xen,evtchn",
    "phandle",
    "id",
    "hard-affinity",
    "keel,name",
    "direct-map",
    "xen,static-mem",
    "#xen,static-mem-address-cells",
    "#xen,static-mem-size-cells",
];

/// A property: a name from the binding and a value of 0 to 4 cells or a short string.
fn prop() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let cells = proptest::collection::vec(prop_oneof![0u32..4, 0x4000_0000u32..0x4000_4000, any::<u32>()], 0..5)
        .prop_map(|c| c.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>());
    let text = "[0-9,a-z -]{0,6}".prop_map(|s| {
        let mut v = s.into_bytes();
        v.push(0);
        v
    });
    (0..PROPS.len(), prop_oneof![cells, text])
}

/// A random `/chosen` with up to two levels of nodes below it.
fn tree() -> impl Strategy<Value = Vec<u8>> {
    let leaf = || (proptest::collection::vec(0..COMPATIBLES.len(), 0..3), proptest::collection::vec(prop(), 0..5));
    let node = (leaf(), proptest::collection::vec(leaf(), 0..4));
    proptest::collection::vec(node, 0..5).prop_map(|nodes| {
        let mut b = Dtb::new();
        b.cells("#address-cells", &[2]).cells("#size-cells", &[1]).node("chosen");
        let fill = |b: &mut Dtb, (compat, props): &(Vec<usize>, Vec<(usize, Vec<u8>)>)| {
            b.strs("compatible", &compat.iter().map(|&c| COMPATIBLES[c]).collect::<Vec<_>>());
            for (p, v) in props {
                b.prop(PROPS[*p], v);
            }
        };
        for (i, (me, kids)) in nodes.iter().enumerate() {
            b.node(&alloc::format!("n{i}"));
            fill(&mut b, me);
            for (j, kid) in kids.iter().enumerate() {
                b.node(&alloc::format!("k{j}"));
                fill(&mut b, kid);
                b.end();
            }
            b.end();
        }
        b.end();
        b.finish()
    })
}

/// A module: kind (kernel, ramdisk, device tree, none), 1 MiB slot in RAM, size in MiB.
type ModuleSpec = (usize, u32, u32);
/// A static event channel end: phandle, port, remote phandle.
type EvtchnSpec = (u32, u32, u32);

/// Mostly well-formed domains with a few faults each: memory, cpus, modules that may
/// overlap or leave RAM, event channels with small phandles that may or may not pair.
fn domain_tree() -> impl Strategy<Value = Vec<u8>> {
    let module = || (0usize..4, prop_oneof![0u32..48, Just(1023)], 1u32..4);
    let memory = prop_oneof![Just([0u32, 65536]), Just([0, 0]), Just([1, 0]), Just([0, 1023])];
    let domain = (
        memory,
        0u32..4,
        proptest::collection::vec(module(), 0..4),
        proptest::collection::vec((1u32..7, 0u32..4, 1u32..7), 0..3),
        proptest::option::of(0u32..3),
    );
    (proptest::collection::vec(module(), 0..3), proptest::collection::vec(domain, 0..5)).prop_map(
        |(initial, domains)| {
            let kinds = ["multiboot,kernel", "multiboot,ramdisk", "multiboot,device-tree", "multiboot,module"];
            let module = |b: &mut Dtb, (kind, slot, mib): ModuleSpec, cells: u32| {
                let addr = 0x4000_0000 + slot * 0x10_0000;
                b.node(&alloc::format!("module@{addr:x}")).strs("compatible", &[kinds[kind], "multiboot,module"]);
                match cells {
                    3 => b.cells("reg", &[0, addr, mib << 20]),
                    _ => b.cells("reg", &[0, addr, 0, mib << 20]),
                };
                b.end();
            };
            let ec = |b: &mut Dtb, (ph, port, remote): EvtchnSpec, i: usize| {
                b.node(&alloc::format!("ec{i}")).str("compatible", "xen,evtchn-v1");
                b.cells("phandle", &[ph]).cells("xen,evtchn", &[port, remote]).end();
            };
            let mut b = Dtb::new();
            b.cells("#address-cells", &[2]).cells("#size-cells", &[2]).node("chosen");
            for m in initial {
                module(&mut b, m, 4);
            }
            for (i, (memory, cpus, modules, ends, name)) in domains.into_iter().enumerate() {
                b.node(&alloc::format!("d{i}")).str("compatible", "xen,domain").cells("#size-cells", &[1]);
                b.cells("memory", &memory).cells("cpus", &[cpus]);
                if let Some(n) = name {
                    b.str("keel,name", ["a", "b", "c"][n as usize]);
                }
                for m in modules {
                    module(&mut b, m, 3);
                }
                for (j, e) in ends.into_iter().enumerate() {
                    ec(&mut b, e, j);
                }
                b.end();
            }
            b.end();
            b.finish()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn domain_shaped_trees_obey_the_rules(v in domain_tree()) {
        let set = parse(&v, &limits());
        check(&set);
        // Accepted channels pair up: the other end lists this one.
        for d in set.valid() {
            for c in &d.event_channels {
                let other = set.valid().find(|o| o.name == c.remote_domain).expect("the remote domain exists");
                prop_assert!(other.event_channels.iter().any(|x| x.local_port == c.remote_port && x.remote_port == c.local_port && x.remote_domain == d.name));
            }
        }
    }

    #[test]
    fn random_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), header in any::<bool>()) {
        let mut v = bytes;
        if header && v.len() >= 40 {
            // Give random bodies a plausible header so the walk gets further.
            let len = v.len() as u32;
            for (i, w) in [0xd00d_feed, len, 40, len / 2, 40, 17, 16, 0, (len / 2).saturating_sub(20), (len / 2).saturating_sub(40)].iter().enumerate() {
                v[4 * i..4 * i + 4].copy_from_slice(&u32::to_be_bytes(*w));
            }
        }
        check(&parse(&v, &limits()));
    }

    #[test]
    fn mutated_trees_do_not_panic(seed in 0..SEEDS.len(), ms in proptest::collection::vec(mutation(), 1..6)) {
        let v = ms.iter().fold(SEEDS[seed].to_vec(), apply);
        check(&parse(&v, &limits()));
    }

    #[test]
    fn random_trees_do_not_panic(v in tree()) {
        check(&parse(&v, &limits()));
    }
}
