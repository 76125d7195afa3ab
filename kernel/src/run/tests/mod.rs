//! The run loop on simulated CPUs: mock guests running real programs under the real
//! hypervisor, hooks, scheduler and per-CPU loops.

mod control;
mod create;
mod domains;
mod doorbells;
mod pingpong;
mod programs;
mod restart;
mod short_path;
mod stage_faults;
mod timers;
mod watchdog;
mod world;
