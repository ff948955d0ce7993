//! Fuzz target: `PacketView::parse` and the reply builders on arbitrary frames; properties in `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::packet_view(data);
});
