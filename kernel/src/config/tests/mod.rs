//! Configuration tests: the example trees, every validation error, and no panic on
//! malformed input.

mod builder;
mod errors;
mod examples;
mod fuzz;
