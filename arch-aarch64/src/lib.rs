//! Keel arm64 backend (in progress).
#![no_std]
