//! Configuration tests: the example trees, every validation error, and no panic on
//! malformed input.

pub(crate) mod builder;
mod errors;
mod examples;
mod fuzz;
mod modules;
