//! The scenarios, by the name `keel.test=` gives.
//!
//! | name | what it checks |
//! |---|---|
//! | `hypercalls` | `xen_version` answers (4.19, extraversion, features, changeset), `console_io`, unknown hypercalls (-ENOSYS), bad pointers (-EFAULT), pointers translated through the guest's page tables |

mod hypercalls;

use crate::{Outcome, Platform};

/// A scenario: its boot-CPU part and, optionally, what secondary CPUs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Hypercalls,
}

const ALL: &[(&str, Scenario)] = &[("hypercalls", Scenario::Hypercalls)];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    ALL.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
}

impl Scenario {
    /// The boot CPU's part.
    pub fn run<P: Platform>(self) -> fn(&P) -> Outcome {
        match self {
            Scenario::Hypercalls => hypercalls::run::<P>,
        }
    }

    /// What a secondary CPU runs, if the scenario starts any.
    pub fn secondary<P: Platform>(self) -> Option<fn(&P)> {
        match self {
            Scenario::Hypercalls => None,
        }
    }
}
