//! Stage-2 faults answered by the core (`VmExit::StageFault`, `p2m/fault.rs`): a fault
//! that raced a change of the tables runs the access again, however often it raced; a
//! hole stays a hole.

use super::programs::{wild_load, Image, DATA};
use super::world::{describe, lines_of, Guest, World};
use crate::domain::DomainState;
use crate::mock;

extern crate std;

/// Where in the data page the reader's word lies.
const WORD: u64 = 0xf00;

/// Loads the 8-byte word at `DATA + WORD` (its own RAM, holding 0x5eed) and prints it.
fn reader() -> alloc::vec::Vec<u8> {
    let mut img = Image::new();
    img.put_bytes(WORD, &0x5eed_u64.to_le_bytes());
    img.a.set(11, DATA + WORD).load(8, 8, 11, 0);
    img.print_hex("read=", 8);
    img.finish()
}

/// Runs the reader with the first `torn` walks of its data page failing, as they do
/// while another CPU splits the block holding it.
fn read_through_torn_walks(torn: u32) -> (DomainState, alloc::vec::Vec<alloc::string::String>) {
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("reader", reader())]));
    mock::tear_walks(DATA + WORD, torn);
    let ends = w.run(200_000_000);
    assert_eq!(ends.len(), 1, "{ends:?}");
    (ends[0].state, lines_of(1))
}

#[test]
fn a_fault_racing_a_split_runs_the_access_again() {
    let (state, lines) = read_through_torn_walks(1);
    assert_eq!(state, DomainState::ShutDown(crate::domain::ShutdownReason::Poweroff));
    assert_eq!(lines, ["read=0000000000005eed"]);
}

#[test]
fn there_is_no_retry_count_while_the_p2m_maps_the_page() {
    let (state, lines) = read_through_torn_walks(500);
    assert_eq!(state, DomainState::ShutDown(crate::domain::ShutdownReason::Poweroff));
    assert_eq!(lines, ["read=0000000000005eed"]);
}

#[test]
fn a_hole_still_faults_at_once() {
    let mut w = World::new(1);
    w.boot(&describe(&[Guest::new("wild", wild_load(0x9000_0000))]));
    let ends = w.run(200_000_000);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].state, DomainState::Crashed, "the mock crashes a domain that touches a hole");
}
