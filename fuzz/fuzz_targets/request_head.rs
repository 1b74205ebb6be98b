//! Fuzz target `request_head`: see `fuzz/checks.rs` (the same check runs in `tests/fuzz_regressions.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::request_head(data));
