//! Running domains: the scheduler wired to the core ([`SchedHooks`]) and the per-CPU run
//! loop that drives the backends' vCPUs.

mod hooks;
mod timers;

pub use hooks::{ConsoleSink, SchedHooks};
pub use timers::TimerTable;
