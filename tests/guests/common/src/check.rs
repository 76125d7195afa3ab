//! How scenarios fail: a message, printed by [`crate::run`] before the domain crashes
//! itself.

use crate::console::Text;
use core::fmt::{self, Write};

/// Why a scenario failed.
pub struct Failure(pub Text<200>);

impl Failure {
    pub fn new(args: fmt::Arguments<'_>) -> Self {
        let mut t = Text::new();
        let _ = t.write_fmt(args);
        Failure(t)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A scenario's result.
pub type Outcome = Result<(), Failure>;

/// `fail!("format", args...)`: returns `Err(Failure)` from the scenario.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::check::Failure::new(format_args!($($arg)*)))
    };
}

/// `ensure!(condition, "format", args...)`: fails the scenario unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::fail!($($arg)*);
        }
    };
}

/// `expect_eq!(got, want, "what")`: fails with both values unless they are equal. A
/// literal `what` is a format string (`"{name}: state"` names the value of `name`).
#[macro_export]
macro_rules! expect_eq {
    ($got:expr, $want:expr, $what:literal) => {
        $crate::expect_eq!($got, $want, format_args!($what))
    };
    ($got:expr, $want:expr, $what:expr) => {{
        let (got, want) = ($got, $want);
        if got != want {
            $crate::fail!("{}: got {:?}, expected {:?}", $what, got, want);
        }
    }};
}
