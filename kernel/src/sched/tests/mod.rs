//! Scheduler tests: single-operation semantics, simulated fairness, latency and
//! balancing, and property tests of the invariants over random operation sequences.

mod balancing;
mod basic;
mod check;
mod fairness;
mod props;
mod sim;
