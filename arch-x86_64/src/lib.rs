//! Keel x86_64 backend (in progress).
#![no_std]
