//! Fuzz target `action_decode`: parse, re-emit, re-parse, compare (properties in `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::actions(data);
});
